/* The event loop: epoll over the VM's file descriptors, run on the main
 * thread. Each source is a struct the owner embeds, so registration does no
 * allocation. Callbacks run one at a time on the loop's thread. */
#ifndef MOTE_EVLOOP_H
#define MOTE_EVLOOP_H

#include <stdbool.h>
#include <stdint.h>

struct evloop_source {
	void (*fn)(struct evloop_source *src, uint32_t events);
	int fd;
};

struct evloop {
	int epfd;
	bool quit;
};

int evloop_init(struct evloop *loop);
void evloop_fini(struct evloop *loop);
/* Watches src->fd for events (EPOLLIN...). 0 or -errno. */
int evloop_add(struct evloop *loop, struct evloop_source *src, uint32_t events);
int evloop_mod(struct evloop *loop, struct evloop_source *src, uint32_t events);
void evloop_del(struct evloop *loop, struct evloop_source *src);
/* Dispatches events until evloop_quit(). 0 or -errno from epoll_wait. */
int evloop_run(struct evloop *loop);
void evloop_quit(struct evloop *loop);

#endif
