/* The VM: what it owns (KVM VM, guest memory, buses, devices, vCPU
 * threads, event loop) and its state machine:
 *
 *   configuring --vmm_run--> running --guest power-off/reset/error--> stopped
 *
 * (paused comes with the API.) vCPU threads only run KVM_RUN and the bus
 * handlers; everything else happens on the event loop, in vmm_run's thread.
 * Any thread may end the VM with vmm_stop(); the first status wins. */
#ifndef MOTE_VMM_H
#define MOTE_VMM_H

#include "config.h"

/* Exit statuses of mote (also documented in the README and --help). */
enum vmm_status {
	VMM_EXIT_OK = 0,          /* guest powered off or reset */
	VMM_EXIT_CONFIG = 1,      /* bad flags or input files; nothing ran */
	VMM_EXIT_TRIPLE_FAULT = 2,
	VMM_EXIT_KVM = 3,         /* KVM internal error, failed entry, unknown exit */
	VMM_EXIT_INTERNAL = 4,    /* mote could not go on (host resource failure) */
	VMM_EXIT_SIGNAL = 128,    /* + signal number */
};

struct vm;

/* Builds the VM from cfg: KVM, memory, devices, the guest's kernel. On
 * failure one line explains why; returns -errno and *status says which
 * exit status mote should end with. */
int vmm_create(struct vm **out, const struct vm_config *cfg, int *status);
/* Runs the guest until it stops; returns mote's exit status. */
int vmm_run(struct vm *vm);
void vmm_destroy(struct vm *vm);

/* Ends the VM with status (first caller wins); safe from any thread. */
void vmm_stop(struct vm *vm, int status);

#endif
