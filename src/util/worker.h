/* The worker: one thread per mote process for the work the event loop must
 * not do itself because it needs system calls the loop's seccomp filter
 * leaves out — opening and sizing files (a new drive image, a storage
 * migration's copy) and copying disk blocks. It has its own, narrow
 * allowlist, and since it is started before the loop's filter goes on, the
 * loop never needs to create threads either.
 *
 * worker_call() runs a function there and waits for it (the loop blocks for
 * the duration, as it would doing the work itself); worker_post() queues a
 * long job (a storage migration's copy passes) that runs while the loop goes
 * on. Jobs run one at a time, in order. Before worker_start() (unit tests,
 * fuzzers) and after worker_stop(), worker_call() runs the function on the
 * caller's thread and worker_post() refuses. */
#ifndef MOTE_WORKER_H
#define MOTE_WORKER_H

#include <stdbool.h>

struct worker_job {
	void (*fn)(void *arg);
	void *arg;
	bool done;               /* set (under the worker's lock) after fn returned
				  * without posting the job again */
	bool queued;
	struct worker_job *next;
};

/* Starts the thread (installing its seccomp filter). 0 or -errno. */
int worker_start(void);
/* Finishes the queued jobs and ends the thread. */
void worker_stop(void);
/* Runs fn(arg) on the worker and returns when it has. */
void worker_call(void (*fn)(void *arg), void *arg);
/* Queues job (owned by the caller until worker_wait() returned). A job may
 * post itself again from its fn to go on after the jobs queued meanwhile
 * (long work in slices). 0, or -ESRCH when no worker runs. */
int worker_post(struct worker_job *job);
/* Waits until a posted job has run. */
void worker_wait(struct worker_job *job);

#endif
