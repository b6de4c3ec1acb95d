/* The epoll event loop; see evloop.h. */
#include "util/evloop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

int evloop_init(struct evloop *loop)
{
	loop->quit = false;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	return loop->epfd < 0 ? -errno : 0;
}

void evloop_fini(struct evloop *loop)
{
	if (loop->epfd >= 0)
		close(loop->epfd);
	loop->epfd = -1;
}

static int ctl(struct evloop *loop, int op, struct evloop_source *src, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };
	return epoll_ctl(loop->epfd, op, src->fd, &ev) < 0 ? -errno : 0;
}

int evloop_add(struct evloop *loop, struct evloop_source *src, uint32_t events)
{
	return ctl(loop, EPOLL_CTL_ADD, src, events);
}

int evloop_mod(struct evloop *loop, struct evloop_source *src, uint32_t events)
{
	return ctl(loop, EPOLL_CTL_MOD, src, events);
}

void evloop_del(struct evloop *loop, struct evloop_source *src)
{
	epoll_ctl(loop->epfd, EPOLL_CTL_DEL, src->fd, NULL);
}

int evloop_run(struct evloop *loop)
{
	struct epoll_event evs[16];
	while (!loop->quit) {
		int n = epoll_wait(loop->epfd, evs, 16, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !loop->quit; i++) {
			struct evloop_source *src = evs[i].data.ptr;
			src->fn(src, evs[i].events);
		}
	}
	return 0;
}

void evloop_quit(struct evloop *loop) { loop->quit = true; }
