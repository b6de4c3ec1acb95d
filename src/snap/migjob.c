/* The migration thread and its hand-off with the event loop; see migjob.h. */
#include "snap/migjob.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/seccomp.h"
#include "util/log.h"

static void poke_loop(struct migjob *j)
{
	uint64_t one = 1;
	if (write(j->ev.fd, &one, sizeof(one)) < 0)
		log_warn("migrate: cannot signal the event loop: %s", strerror(errno));
}

/* ------------------------------------------------------------ migration thread */

static void hook_report(void *opaque, const struct migrate_status *st)
{
	struct migjob *j = opaque;
	pthread_mutex_lock(&j->lock);
	j->st = *st;
	j->st.state = MIGRATE_RUNNING;
	pthread_mutex_unlock(&j->lock);
}

static bool hook_cancelled(void *opaque)
{
	struct migjob *j = opaque;
	pthread_mutex_lock(&j->lock);
	bool quit = j->quit;
	pthread_mutex_unlock(&j->lock);
	return quit;
}

/* Asks the loop to freeze the VM and waits for its answer. */
static int hook_stop_world(void *opaque)
{
	struct migjob *j = opaque;
	pthread_mutex_lock(&j->lock);
	j->req = MIGJOB_FREEZE;
	j->answered = false;
	poke_loop(j);
	while (!j->answered && !j->quit)
		pthread_cond_wait(&j->cond, &j->lock);
	int err = j->answered ? j->freeze_err : -ECANCELED;
	pthread_mutex_unlock(&j->lock);
	return err;
}

static int run(struct migjob *j, struct migrate_status *st)
{
	int fd;
	int err = migrate_connect(st->destination, &fd);
	if (err)
		return err;
	pthread_mutex_lock(&j->lock);
	j->fd = fd;
	bool quit = j->quit;
	pthread_mutex_unlock(&j->lock);
	struct migrate_hooks h = { .stop_world = hook_stop_world, .report = hook_report,
				   .cancelled = hook_cancelled, .opaque = j };
	err = quit ? -ECANCELED : migrate_send(j->view, fd, st, &h);
	pthread_mutex_lock(&j->lock);
	j->fd = -1;
	pthread_mutex_unlock(&j->lock);
	close(fd);
	return err;
}

static void *migjob_thread(void *arg)
{
	struct migjob *j = arg;
	if (seccomp_install(SECCOMP_MIGRATE) < 0)
		fatal("migrate: cannot install the migration thread's seccomp filter");
	pthread_mutex_lock(&j->lock);
	for (;;) {
		while (!j->go && !j->quit)
			pthread_cond_wait(&j->cond, &j->lock);
		if (j->quit)
			break;
		j->go = false;
		struct migrate_status st = j->st;
		pthread_mutex_unlock(&j->lock);
		int err = run(j, &st);
		if (err && !st.reason[0])
			snprintf(st.reason, sizeof(st.reason), "%s", log_last_error());
		if (err)
			log_info("migrate: failed; the VM goes on here");
		pthread_mutex_lock(&j->lock);
		st.state = err ? MIGRATE_FAILED : MIGRATE_COMPLETED;
		j->st = st;
		j->result = err;
		j->req = MIGJOB_DONE;
		pthread_cond_broadcast(&j->cond); /* the loop may be holding the VM frozen */
		poke_loop(j);
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

/* ------------------------------------------------------------ event loop */

static void on_request(struct evloop_source *src, uint32_t events)
{
	struct migjob *j = (struct migjob *)((char *)src - offsetof(struct migjob, ev));
	uint64_t n;
	(void)events;
	if (read(src->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	bool frozen = false;
	pthread_mutex_lock(&j->lock);
	if (j->req == MIGJOB_FREEZE) {
		j->req = MIGJOB_NONE;
		pthread_mutex_unlock(&j->lock);
		int err = j->ops->freeze(j->opaque);
		pthread_mutex_lock(&j->lock);
		j->freeze_err = err;
		j->answered = true;
		pthread_cond_broadcast(&j->cond);
		/* Hold the VM frozen: no device code may run until the last pages
		 * and the state are out and the destination has answered. */
		frozen = !err;
		while (frozen && j->req != MIGJOB_DONE && !j->quit)
			pthread_cond_wait(&j->cond, &j->lock);
	}
	if (j->req != MIGJOB_DONE) {
		pthread_mutex_unlock(&j->lock);
		return;
	}
	j->req = MIGJOB_NONE;
	int err = j->result;
	pthread_mutex_unlock(&j->lock);
	j->ops->done(j->opaque, err, frozen);
	pthread_mutex_lock(&j->lock);
	j->busy = false;
	free(j->view);
	j->view = NULL;
	pthread_mutex_unlock(&j->lock);
}

int migjob_init(struct migjob *j, struct evloop *loop, const struct migjob_ops *ops,
		void *opaque)
{
	memset(j, 0, sizeof(*j));
	j->loop = loop;
	j->ops = ops;
	j->opaque = opaque;
	j->fd = -1;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cond, NULL);
	j->ev.fn = on_request;
	j->ev.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int err = j->ev.fd < 0 ? -errno : evloop_add(loop, &j->ev, EPOLLIN);
	if (!err)
		err = -pthread_create(&j->thread, NULL, migjob_thread, j);
	if (err) {
		log_error("cannot start the migration thread: %s", strerror(-err));
		if (j->ev.fd >= 0) {
			evloop_del(loop, &j->ev);
			close(j->ev.fd);
			j->ev.fd = -1;
		}
		return err;
	}
	pthread_setname_np(j->thread, "migrate");
	j->started = true;
	return 0;
}

void migjob_fini(struct migjob *j)
{
	if (!j->started)
		return;
	pthread_mutex_lock(&j->lock);
	j->quit = true;
	if (j->fd >= 0)
		shutdown(j->fd, SHUT_RDWR); /* a blocked send or receive returns */
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	pthread_join(j->thread, NULL);
	j->started = false;
	evloop_del(j->loop, &j->ev);
	close(j->ev.fd);
	j->ev.fd = -1;
	free(j->view);
	j->view = NULL;
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->lock);
}

int migjob_start(struct migjob *j, struct snap_vm *view, const char *dest,
		 const struct migrate_opts *o)
{
	pthread_mutex_lock(&j->lock);
	if (j->busy || !j->started) {
		pthread_mutex_unlock(&j->lock);
		return -EBUSY;
	}
	j->busy = true;
	j->view = view;
	j->st = (struct migrate_status){ .state = MIGRATE_RUNNING, .phase = MIGRATE_CONNECT,
					 .opts = *o };
	snprintf(j->st.destination, sizeof(j->st.destination), "%s", dest);
	j->req = MIGJOB_NONE;
	j->go = true;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
	return 0;
}

void migjob_status(struct migjob *j, struct migrate_status *st)
{
	pthread_mutex_lock(&j->lock);
	*st = j->st;
	pthread_mutex_unlock(&j->lock);
}

bool migjob_busy(struct migjob *j)
{
	pthread_mutex_lock(&j->lock);
	bool busy = j->busy;
	pthread_mutex_unlock(&j->lock);
	return busy;
}
