/* See limit.h. */
#include "virtio/limit.h"

#include <stddef.h>
#include <sys/epoll.h>

static void on_timer(struct evloop_source *src, uint32_t events)
{
	struct virtio_limit *l = (struct virtio_limit *)((char *)src -
							 offsetof(struct virtio_limit, src));
	struct virtio_dev *dev = l->dev;
	pthread_mutex_lock(&dev->lock);
	ratelimit_expired(&l->rl);
	if (virtio_running(dev))
		dev->ops->notify(dev, l->q);
	pthread_mutex_unlock(&dev->lock);
}

int virtio_limit_init(struct virtio_limit *l, struct virtio_dev *dev, unsigned q,
		      struct evloop *loop)
{
	*l = (struct virtio_limit){ .loop = loop, .dev = dev, .q = q };
	int err = ratelimit_init(&l->rl, NULL);
	if (err)
		return err;
	l->src.fn = on_timer;
	l->src.fd = l->rl.timer_fd;
	err = evloop_add(l->loop, &l->src, EPOLLIN);
	l->watched = !err;
	return err;
}

int virtio_limit_set(struct virtio_limit *l, const struct ratelimit_cfg *cfg)
{
	return ratelimit_update(&l->rl, cfg);
}

void virtio_limit_fini(struct virtio_limit *l)
{
	if (l->watched)
		evloop_del(l->loop, &l->src);
	l->watched = false;
	ratelimit_fini(&l->rl);
}
