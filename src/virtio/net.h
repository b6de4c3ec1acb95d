/* virtio-net over a tap or user-mode (slirp) back end. */
#ifndef MOTE_VIRTIO_NET_H
#define MOTE_VIRTIO_NET_H

#include "backend/net.h"
#include "config.h"
#include "util/evloop.h"
#include "util/ratelimit.h"
#include "virtio/virtio.h"

/* The device for net over back end be (which it owns from now on, and
 * destroys even on failure). NULL on failure; *err says why. */
struct virtio_dev *virtio_net_create(const struct guest_mem *mem, struct evloop *loop,
				     const struct vm_net *net, struct net_backend *be, int *err);
void virtio_net_destroy(struct virtio_dev *dev);

/* The interface's id ("net0", or the API's iface_id). */
const char *virtio_net_id(struct virtio_dev *dev);
/* Replaces the rx and/or tx limiters (NULL: unchanged), buckets full.
 * Event loop. 0 or -errno. */
int virtio_net_set_limits(struct virtio_dev *dev, const struct ratelimit_cfg *rx,
			  const struct ratelimit_cfg *tx);

#endif
