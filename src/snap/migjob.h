/* The migration thread: runs a live migration's sender (migrate_send) while
 * the vCPUs and the devices go on, and reports its progress.
 *
 * Why a thread of its own and not the worker (util/worker.h): the worker
 * runs one job at a time and the event loop waits on it for short jobs
 * (opening a drive's new image, writing a snapshot); a pre-copy holds its
 * thread for seconds to minutes (blocking sends, the bandwidth limit's
 * sleeps), which would stall those and the storage-migration copy passes
 * queued behind it. Its system calls differ too (sends, the dirty log, the
 * state ioctls), so it gets its own narrow seccomp table. It is created by
 * migjob_init() in vmm_start(), before the loop's filter forbids creating
 * threads, and sleeps until a migration starts.
 *
 * Hand-off with the event loop, which owns the devices: when the sender
 * reaches stop-and-copy, the thread asks the loop (an eventfd) to freeze
 * the VM; the loop pauses the vCPUs, drains the devices (ops->freeze), and
 * then holds itself there — no device code runs — until the thread has sent
 * the last pages and the state and has the destination's verdict. Then the
 * loop calls ops->done (on success the VM ends; otherwise it resumes, with
 * its devices). A migration that fails before stop-and-copy never stopped
 * anything: ops->done just reports it. */
#ifndef MOTE_SNAP_MIGJOB_H
#define MOTE_SNAP_MIGJOB_H

#include <pthread.h>
#include <stdbool.h>

#include "snap/migrate.h"
#include "util/evloop.h"

struct migjob_ops {
	/* Event loop: pause the vCPUs and drain the devices. 0 or -errno. */
	int (*freeze)(void *opaque);
	/* Event loop, once the migration ended: err 0 when the destination has
	 * the VM; frozen says whether freeze() had succeeded (the VM is paused
	 * and must be resumed on failure). */
	void (*done)(void *opaque, int err, bool frozen);
};

struct migjob {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct evloop *loop;
	struct evloop_source ev;     /* eventfd: the thread asks the loop */
	const struct migjob_ops *ops;
	void *opaque;
	/* Under lock. */
	bool go, quit, busy;         /* busy: from migjob_start to ops->done */
	enum { MIGJOB_NONE, MIGJOB_FREEZE, MIGJOB_DONE } req;
	bool answered;
	int freeze_err, result;
	int fd;                      /* the connection while one is open, or -1 */
	struct migrate_status st;
	struct snap_vm *view;        /* what the sender reads */
};

/* Creates the thread (parked) and registers the loop's source. Before the
 * loop's seccomp filter goes on. 0 or -errno after logging. */
int migjob_init(struct migjob *j, struct evloop *loop, const struct migjob_ops *ops,
		void *opaque);
/* Ends a running migration (the source stays as it is) and the thread. */
void migjob_fini(struct migjob *j);
/* Event loop: starts sending the VM seen through view (owned by j until
 * done) to dest. 0, or -EBUSY when one runs (view is then not taken). */
int migjob_start(struct migjob *j, struct snap_vm *view, const char *dest,
		 const struct migrate_opts *o);
/* Any thread: the progress of the current or last migration. */
void migjob_status(struct migjob *j, struct migrate_status *st);
/* True from migjob_start until ops->done has returned. */
bool migjob_busy(struct migjob *j);

#endif
