/* virtio-rng: entropy from the host's getrandom(). */
#ifndef MOTE_VIRTIO_RNG_H
#define MOTE_VIRTIO_RNG_H

#include "util/evloop.h"
#include "util/ratelimit.h"
#include "virtio/virtio.h"

/* A virtio-rng device over mem, rate limited when limit (may be NULL)
 * limits; NULL when out of memory or timerfds. */
struct virtio_dev *virtio_rng_create(const struct guest_mem *mem, struct evloop *loop,
				     const struct ratelimit_cfg *limit);
void virtio_rng_destroy(struct virtio_dev *dev);

#endif
