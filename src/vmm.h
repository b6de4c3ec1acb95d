/* The VM: what it owns (KVM VM, guest memory, buses, devices, vCPU
 * threads, event loop) and its state machine:
 *
 *   configuring --vmm_start--> running <--pause/resume--> paused
 *                                 \--guest power-off/reset/error/signal--> stopped
 *
 * vCPU threads only run KVM_RUN and the bus
 * handlers; everything else happens on the event loop, in vmm_run's thread.
 * Any thread may end the VM with vmm_stop(); the first status wins. */
#ifndef MOTE_VMM_H
#define MOTE_VMM_H

#include <stdbool.h>

#include "config.h"
#include "virtio/blk.h"
#include "util/evloop.h"
#include "util/metrics.h"

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

/* Builds the VM from cfg: KVM, memory, devices, the guest's kernel; its
 * event sources join loop (which the caller runs). On failure one line
 * explains why; returns -errno and *status says which exit status mote
 * should end with. */
int vmm_create(struct vm **out, const struct vm_config *cfg, struct evloop *loop,
	       int *status);
/* Starts the vCPU threads (configuring -> running). 0 or -errno. */
int vmm_start(struct vm *vm);
/* After the loop returned (the VM stopped): joins the vCPUs, returns mote's
 * exit status. */
int vmm_wait(struct vm *vm);
/* vmm_start, run the loop until the VM stops, vmm_wait. */
int vmm_run(struct vm *vm);

/* Event-loop thread only. Pause returns once every vCPU is out of KVM_RUN;
 * both are idempotent; -EINVAL before start or after stop, -EBUSY during a
 * live migration (logged). */
int vmm_pause(struct vm *vm);
int vmm_resume(struct vm *vm);
bool vmm_is_paused(struct vm *vm);
/* Reports every counter of the VM and its devices (event loop). */
void vmm_metrics(struct vm *vm, const struct metrics_sink *sink);
/* Presses Ctrl-Alt-Del on the guest's keyboard. 0 or -EAGAIN. */
int vmm_ctrl_alt_del(struct vm *vm);
/* Event loop, running VM: disk `index` (its place in cfg->disks) gets a new
 * backing file and/or rate limits (NULL: unchanged). 0 or -errno, after
 * logging why. */
int vmm_update_drive(struct vm *vm, unsigned index, const char *path,
		     const struct ratelimit_cfg *rl);
/* Storage migration of disk `index` to the new file dst (event loop). */
int vmm_migrate_drive(struct vm *vm, unsigned index, const char *dst);
/* Disk `index`'s file and migration progress; -ENOENT for no such disk. */
int vmm_drive_status(struct vm *vm, unsigned index, struct blk_status *st);
/* Replaces the rate limiters of network interface `id` (NULL: unchanged).
 * Event loop. 0, -ENOENT (no such interface) or -errno. */
struct ratelimit_cfg;
int vmm_net_set_limits(struct vm *vm, const char *id, const struct ratelimit_cfg *rx,
		       const struct ratelimit_cfg *tx);
void vmm_destroy(struct vm *vm);

struct snap_reader;
/* Snapshots (event loop). vmm_snapshot writes a paused VM's state to
 * snap_path and its memory to mem_path (diff: only pages dirtied since the
 * last snapshot, into the existing file; needs cfg->track_dirty), after
 * letting every device's in-flight I/O finish. -EINVAL when not paused.
 * vmm_restore loads a snapshot into a VM that vmm_create built from that
 * snapshot's config (cfg->restore_mem set) and that has not started; it
 * validates the whole stream first. Both log one line on failure. */
int vmm_snapshot(struct vm *vm, const char *snap_path, const char *mem_path, bool diff);
int vmm_restore(struct vm *vm, struct snap_reader *r);
/* Live migration (event loop; see snap/migrate.h and snap/migjob.h).
 * vmm_migrate starts sending the running VM to dest ("tcp:IPV4:PORT") on
 * the migration thread and returns at once: 0, or -errno after logging
 * (-EBUSY: one runs already). While it runs the vCPUs and devices go on,
 * and pause, resume, snapshots and disk changes are refused (-EBUSY).
 * done(arg, err, st) is called later on the event loop, never from inside
 * vmm_migrate: err 0 when the destination has the VM (this VM then stops
 * with status 0), else -errno with st->reason, the VM running again.
 * vmm_migrate_status (event loop) reports the current or last migration.
 * vmm_migrate_incoming fills a VM built with cfg->incoming from the
 * connected socket fd; 0 or -errno after logging. */
struct migrate_opts;
struct migrate_status;
typedef void (*vmm_migrate_done_fn)(void *arg, int err, const struct migrate_status *st);
int vmm_migrate(struct vm *vm, const char *dest, const struct migrate_opts *o,
		vmm_migrate_done_fn done, void *arg);
void vmm_migrate_status(struct vm *vm, struct migrate_status *st);
int vmm_migrate_incoming(struct vm *vm, int fd);

/* Ends the VM with status (first caller wins); safe from any thread. */
void vmm_stop(struct vm *vm, int status);

#endif
