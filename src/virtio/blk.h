/* virtio-blk over a raw image file. */
#ifndef MOTE_VIRTIO_BLK_H
#define MOTE_VIRTIO_BLK_H

#include <limits.h>

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

/* Storage migration (event loop, running VM): copies the disk to dst (a new
 * file) while the guest keeps using it, then switches the disk to the copy.
 * 0 once started, or -errno after logging. Progress: virtio_blk_status. */
int virtio_blk_migrate(struct virtio_dev *dev, const char *dst);

/* Live migration with the disk (any thread): from now on every request
 * that changes the image marks map (whose size must be the image's); *fd
 * and *size are the image the copier reads (pread; valid while tracking,
 * since no file change can start meanwhile). map NULL stops. 0, or -EBUSY
 * after logging while a storage migration or file change runs. */
struct blkmap;
int virtio_blk_track(struct virtio_dev *dev, struct blkmap *map, int *fd, uint64_t *size);

struct blk_status {
	char path[PATH_MAX];  /* the file in use now */
	uint64_t size;
	bool migration;       /* one was started: the fields below describe it */
	char dst[PATH_MAX];
	const char *state;    /* copying, switching, completed, failed */
	uint64_t copied, remaining;
	unsigned passes;
	int error;            /* -errno when failed */
};
void virtio_blk_status(struct virtio_dev *dev, struct blk_status *st);

#endif
