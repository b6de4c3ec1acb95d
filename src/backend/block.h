/* A raw disk image on the host, with asynchronous I/O through io_uring.
 * Requests are queued (blk_file_*), submitted in one system call per batch
 * (blk_file_submit), and their completions reaped on the event loop when
 * the ring's eventfd fires (blk_file_reap). Each request carries an opaque
 * tag back to its completion. Deliberately absent: image formats (qcow2),
 * O_DIRECT (guest buffers need not be sector-aligned in memory). */
#ifndef MOTE_BLOCK_H
#define MOTE_BLOCK_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

struct blk_file {
	int fd;
	uint64_t size;     /* bytes, a multiple of 512 */
	bool read_only;
	struct io_uring ring;
	bool ring_ok;
	int efd;           /* signalled on completions */
	unsigned queued;   /* prepared, not yet submitted */
};

/* Opens path (read-only or read-write), checks it is a regular file or
 * block device whose size is a multiple of 512, sets up a ring of depth
 * entries. Logs one line naming path on failure; 0 or -errno. */
int blk_file_open(struct blk_file *f, const char *path, bool read_only, unsigned depth);
void blk_file_close(struct blk_file *f);

/* Queue requests; -EBUSY when the ring is full (submit, then retry). */
int blk_file_readv(struct blk_file *f, const struct iovec *iov, unsigned n, uint64_t off,
		   void *tag);
int blk_file_writev(struct blk_file *f, const struct iovec *iov, unsigned n, uint64_t off,
		    bool dsync, void *tag);
int blk_file_flush(struct blk_file *f, void *tag);
/* Deallocates (punch_hole) or zeroes [off, off + len). */
int blk_file_discard(struct blk_file *f, uint64_t off, uint64_t len, bool zero, void *tag);

/* Submits what was queued. 0 or -errno. */
int blk_file_submit(struct blk_file *f);
/* Blocks until at least one submitted request has finished (its completion
 * is then reaped by blk_file_reap). 0 or -errno. */
int blk_file_wait(struct blk_file *f);
/* Calls done(tag, res) for each finished request (res: bytes or -errno). */
unsigned blk_file_reap(struct blk_file *f, void (*done)(void *tag, int res, void *arg),
		       void *arg);

#endif
