/* virtio-rng: entropy from the host's getrandom(). */
#ifndef MOTE_VIRTIO_RNG_H
#define MOTE_VIRTIO_RNG_H

#include "virtio/virtio.h"

/* A virtio-rng device over mem, or NULL when out of memory. */
struct virtio_dev *virtio_rng_create(const struct guest_mem *mem);
void virtio_rng_destroy(struct virtio_dev *dev);

#endif
