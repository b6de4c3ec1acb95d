/* Snapshots of a whole VM: the machine's configuration, every vCPU, the
 * in-kernel irqchip, PIT and kvmclock, and every device, written as a state
 * stream (stream.h), plus guest memory in a separate file.
 *
 * The VM (vmm.c) hands this code a view of what it owns (struct snap_vm);
 * nothing here builds a VM. A restore is: snap_file_open() reads and checks
 * the stream and fills a struct vm_config; vmm_create() builds the machine
 * from it exactly as for a boot (guest memory mapped from the memory file);
 * snap_restore() then overwrites the state, validating every field first
 * against the machine that was built. */
#ifndef MOTE_SNAP_SNAPSHOT_H
#define MOTE_SNAP_SNAPSHOT_H

#include <stdbool.h>

#include "bus/pci.h"
#include "arch/x86/layout.h"
#include "config.h"
#include "dev/i8042.h"
#include "dev/serial.h"
#include "kvm/kvm.h"
#include "mem/guest_mem.h"
#include "snap/stream.h"
#include "virtio/pci.h"

struct snap_vm {
	const struct vm_config *cfg;
	struct kvm *kvm;
	struct guest_mem *mem;
	unsigned nr_vcpus;
	struct kvm_vcpu *vcpu[X86_MAX_CPUS];
	struct serial8250 *serial;
	struct i8042 *i8042;
	struct pci_bus *pci;
	struct virtio_pci *vpci;
	unsigned nr_virtio;
};

/* A snapshot read from disk, and the configuration it describes (whose
 * strings point into it: keep it open while the VM lives). */
struct snap_file {
	uint8_t *buf;
	size_t len;
	struct snap_reader r;
	char *disk_path[CONFIG_MAX_DISKS];
};

/* Reads path, checks the stream's framing and its config section, and
 * fills cfg's machine fields (memory, vCPUs, disks, tap interfaces, rng,
 * boot timer) over what cfg already holds. 0, or -errno after logging one line
 * ("snapshot: ..."). */
int snap_file_open(struct snap_file *f, const char *path, struct vm_config *cfg);
void snap_file_close(struct snap_file *f);
/* The same from f->buf/f->len already filled (f owns the malloc'd buffer);
 * `what` names the source in the message. Closes f on failure. */
int snap_file_parse(struct snap_file *f, struct vm_config *cfg, const char *what);

/* Writes the device and vCPU state of a paused, quiesced VM to snap_path
 * and its memory to mem_path: all of it (diff false), or only the pages
 * dirtied since the last snapshot into the existing mem_path (diff true;
 * needs dirty tracking). Both files are replaced atomically for a full
 * snapshot. 0 or -errno after logging one line. */
int snap_save(const struct snap_vm *vm, const char *snap_path, const char *mem_path,
	      bool diff);

/* Validates the stream against the VM built from its config, then loads
 * it. 0, or -EBADMSG after logging one line naming section and field. The
 * VM must not have run. */
int snap_restore(const struct snap_vm *vm, struct snap_reader *r);

#endif
