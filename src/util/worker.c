/* See worker.h. */
#include "util/worker.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "sandbox/seccomp.h"
#include "util/log.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t more, finished;
	struct worker_job *head, **tail;
	pthread_t thread;
	bool running, quit;
} w = { .lock = PTHREAD_MUTEX_INITIALIZER,
	.more = PTHREAD_COND_INITIALIZER,
	.finished = PTHREAD_COND_INITIALIZER };

static void *worker_thread(void *arg)
{
	(void)arg;
	if (seccomp_install(SECCOMP_WORKER) < 0)
		fatal("worker: cannot install its seccomp filter");
	pthread_mutex_lock(&w.lock);
	for (;;) {
		while (!w.head && !w.quit)
			pthread_cond_wait(&w.more, &w.lock);
		struct worker_job *job = w.head;
		if (!job)
			break; /* quit, and nothing left */
		w.head = job->next;
		if (!w.head)
			w.tail = &w.head;
		job->queued = false;
		pthread_mutex_unlock(&w.lock);
		job->fn(job->arg);
		pthread_mutex_lock(&w.lock);
		if (!job->queued) {
			job->done = true;
			pthread_cond_broadcast(&w.finished);
		}
	}
	pthread_mutex_unlock(&w.lock);
	return NULL;
}

int worker_start(void)
{
	if (w.running)
		return 0;
	w.head = NULL;
	w.tail = &w.head;
	w.quit = false;
	int err = pthread_create(&w.thread, NULL, worker_thread, NULL);
	if (err) {
		log_error("cannot start the worker thread: %s", strerror(err));
		return -err;
	}
	pthread_setname_np(w.thread, "worker");
	w.running = true;
	return 0;
}

void worker_stop(void)
{
	if (!w.running)
		return;
	pthread_mutex_lock(&w.lock);
	w.quit = true;
	pthread_cond_signal(&w.more);
	pthread_mutex_unlock(&w.lock);
	pthread_join(w.thread, NULL);
	w.running = false;
}

int worker_post(struct worker_job *job)
{
	if (!w.running)
		return -ESRCH;
	pthread_mutex_lock(&w.lock);
	job->done = false;
	job->queued = true;
	job->next = NULL;
	*w.tail = job;
	w.tail = &job->next;
	pthread_cond_signal(&w.more);
	pthread_mutex_unlock(&w.lock);
	return 0;
}

void worker_wait(struct worker_job *job)
{
	pthread_mutex_lock(&w.lock);
	while (!job->done)
		pthread_cond_wait(&w.finished, &w.lock);
	pthread_mutex_unlock(&w.lock);
}

void worker_call(void (*fn)(void *arg), void *arg)
{
	struct worker_job job = { .fn = fn, .arg = arg };
	if (worker_post(&job) < 0) {
		fn(arg); /* no worker: the caller's thread does it */
		return;
	}
	worker_wait(&job);
}
