/* Shared between the snapshot files (not for the rest of mote): each part
 * writes its sections, and validates then loads them. A load function reads
 * and checks every field of its sections before it changes anything, and
 * returns 0 or -EBADMSG (r->err says why) or -errno from KVM (logged).
 * Loading runs twice: with apply false it only validates every section, so
 * a bad stream changes nothing; with apply true it loads. */
#ifndef MOTE_SNAP_INTERNAL_H
#define MOTE_SNAP_INTERNAL_H

#include "snap/snapshot.h"

/* snap/cpu.c: vCPUs, PIC, IOAPIC, PIT, kvmclock. */
int snap_save_cpus(const struct snap_vm *vm, struct snap_writer *w);
int snap_load_cpus(const struct snap_vm *vm, struct snap_reader *r, bool apply);

/* snap/devices.c: serial, i8042, PM, PCI, MSI-X, virtio. */
int snap_save_devices(const struct snap_vm *vm, struct snap_writer *w);
int snap_load_devices(const struct snap_vm *vm, struct snap_reader *r, bool apply);

/* snapshot.c: a stream of the config and memory layout, plus (state) every
 * vCPU and device; w is initialised here, the caller finis it. 0 or -errno. */
int snap_build(const struct snap_vm *vm, struct snap_writer *w, bool state);
/* Pages dirtied since the last call, KVM's log OR mote's device writes;
 * bitmaps[i] (allocated here, the caller frees) covers region i. */
int snap_take_dirty(const struct snap_vm *vm, uint64_t **bitmaps);

#endif
