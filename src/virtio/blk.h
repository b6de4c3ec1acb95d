/* virtio-blk over a raw image file. */
#ifndef MOTE_VIRTIO_BLK_H
#define MOTE_VIRTIO_BLK_H

#include "config.h"
#include "util/evloop.h"
#include "virtio/virtio.h"

/* Opens the disk's image (logging one line naming it on failure) and
 * returns the device, or NULL; *err says why. */
struct virtio_dev *virtio_blk_create(const struct guest_mem *mem, struct evloop *loop,
				     const struct vm_disk *disk, int *err);
void virtio_blk_destroy(struct virtio_dev *dev);
/* On a running VM (event loop): replaces the backing file (path, opened
 * with the disk's read-only mode; the switch happens once the old file's
 * in-flight I/O finished, and the driver gets a configuration-change
 * interrupt) and/or the rate limits. NULL leaves that part as it is.
 * 0, or -errno after logging one line. */
int virtio_blk_update(struct virtio_dev *dev, const char *path, const struct ratelimit_cfg *rl);

#endif
