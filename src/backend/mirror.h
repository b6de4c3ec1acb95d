/* Storage migration: a disk image copied to a new file while the guest keeps
 * writing to it.
 *
 * The copy's whole size is reserved at the start (posix_fallocate), so a
 * destination without room fails the migration at once rather than the
 * guest's writes later. The copy runs on the worker (util/worker.h), one pass
 * per job so other worker calls get their turn: the first pass copies every
 * block that holds data, each later one the blocks written
 * since the block was last copied. The device marks blocks dirty when a
 * write, discard or write-zeroes *completes* (mirror_mark), and the thread
 * clears a block's bit *before* it reads the block, so a write that lands
 * after the read always leaves the bit set: no write can be missed, and
 * nothing needs a lock.
 *
 * When a pass leaves little dirty (or passes stop shrinking it), the thread
 * signals `efd`; the device then stops starting requests, waits for those
 * in flight, and calls mirror_finish() — which copies the last dirty
 * blocks and fdatasyncs the copy — before switching to the new file. A
 * failure at any point leaves the source file in use and untouched. */
#ifndef MOTE_MIRROR_H
#define MOTE_MIRROR_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/worker.h"

#define MIRROR_BLOCK (64u * 1024) /* bytes per dirty bit */

/* The dirty blocks of a disk image, one bit per MIRROR_BLOCK: any thread
 * marks (blkmap_mark), one copier takes (blkmap_take clears a bit *before*
 * the block is read, so a write landing after the read leaves it set).
 * Shared by storage migration and live migration with disks. */
struct blkmap {
	uint64_t size;          /* bytes */
	uint64_t nr_blocks;
	_Atomic uint64_t *bits;
};

/* 0 or -ENOMEM; blkmap_fini frees. */
int blkmap_init(struct blkmap *map, uint64_t size);
void blkmap_fini(struct blkmap *map);
/* Bytes [off, off + len) changed (clipped to the image). */
void blkmap_mark(struct blkmap *map, uint64_t off, uint64_t len);
/* Marks every block of fd holding data (SEEK_DATA/SEEK_HOLE; a file
 * system without them reports it all as data): a first full pass. */
void blkmap_mark_data(struct blkmap *map, int fd);
/* Clears block b's bit; whether it was set. */
bool blkmap_take(struct blkmap *map, uint64_t b);
uint64_t blkmap_count(const struct blkmap *map);
/* Reads block b of fd into buf (MIRROR_BLOCK bytes, less for the last
 * block); its length, or -errno. */
int64_t blkmap_read(const struct blkmap *map, int fd, uint64_t b, uint8_t *buf);

enum mirror_state {
	MIRROR_COPYING,   /* passes running */
	MIRROR_CONVERGED, /* efd signalled: the device should quiesce and finish */
	MIRROR_DONE,      /* mirror_finish() succeeded */
	MIRROR_FAILED,    /* see `error` */
};

struct mirror {
	int src_fd, dst_fd;
	struct blkmap map;           /* what still differs from the copy */
	int efd;                     /* eventfd: converged or failed */
	struct worker_job job;       /* the copy passes */
	bool posted;
	uint64_t prev_left;          /* dirty blocks after the previous pass */
	uint8_t *buf;
	_Atomic int state;           /* enum mirror_state */
	_Atomic bool stop;
	int error;                   /* -errno when FAILED */
	/* Progress (written by the copy thread, read racily by the API). */
	_Atomic uint64_t copied;     /* bytes copied so far, all passes */
	_Atomic uint64_t remaining;  /* dirty bytes after the last pass */
	_Atomic unsigned passes;
	char *dst_path;
};

/* Creates dst_path (it must not exist), sizes it like the source and starts
 * the copy on the worker. src_fd stays the caller's. 0 or -errno after
 * logging. */
int mirror_start(struct mirror *m, int src_fd, uint64_t size, const char *dst_path);
/* Bytes [off, off + len) were changed in the source (any thread). */
void mirror_mark(struct mirror *m, uint64_t off, uint64_t len);
/* With no write in flight or to come: copies what is still dirty and makes
 * the copy durable (on the worker; the caller waits). 0 or -errno (the
 * mirror is then FAILED). */
int mirror_finish(struct mirror *m);
/* Stops the copy; removes it unless it finished. */
void mirror_destroy(struct mirror *m);
const char *mirror_state_name(int state);

#endif
