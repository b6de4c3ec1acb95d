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

#endif
