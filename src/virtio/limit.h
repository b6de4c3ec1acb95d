/* A rate limiter on one of a device's queues (util/ratelimit.h), with its
 * timer on the event loop: a device asks ratelimit_take(&l->rl, bytes)
 * before serving a request and, when refused, puts the request back
 * (vq_unpop) and stops; when the timer fires the queue is served again as
 * if the driver had kicked it (ops->notify, device lock held). */
#ifndef MOTE_VIRTIO_LIMIT_H
#define MOTE_VIRTIO_LIMIT_H

#include "util/evloop.h"
#include "util/ratelimit.h"
#include "virtio/virtio.h"

struct virtio_limit {
	struct ratelimit rl;
	struct evloop_source src; /* the limiter's timerfd */
	struct evloop *loop;
	struct virtio_dev *dev;
	unsigned q;
	bool watched;
};

/* Creates the (idle) limiter and watches its timer: at set-up, so that
 * limits set later need no new descriptor. 0 or -errno. */
int virtio_limit_init(struct virtio_limit *l, struct virtio_dev *dev, unsigned q,
		      struct evloop *loop);
/* Applies (or, all zero, lifts) limits; buckets start full. 0 or -errno. */
int virtio_limit_set(struct virtio_limit *l, const struct ratelimit_cfg *cfg);
void virtio_limit_fini(struct virtio_limit *l);

#endif
