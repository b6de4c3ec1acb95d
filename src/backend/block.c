/* Raw disk images over io_uring; see block.h. */
#include "backend/block.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

int blk_file_open(struct blk_file *f, const char *path, bool read_only, unsigned depth)
{
	memset(f, 0, sizeof(*f));
	f->efd = -1;
	f->read_only = read_only;
	struct stat st;
	f->fd = open_noblock(path, read_only ? O_RDONLY : O_RDWR, &st);
	if (f->fd < 0) {
		int err = f->fd;
		log_error("cannot open disk %s: %s", path, strerror(-err));
		return err;
	}
	int err;
	if (S_ISREG(st.st_mode)) {
		f->size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(f->fd, BLKGETSIZE64, &f->size) < 0) {
			err = -errno;
			log_error("disk %s: cannot get its size: %s", path, strerror(errno));
			goto err_fd;
		}
	} else {
		log_error("disk %s: not a regular file or block device", path);
		err = -EINVAL;
		goto err_fd;
	}
	if (f->size % 512) {
		log_error("disk %s: size %llu is not a multiple of 512 bytes", path,
			  (unsigned long long)f->size);
		err = -EINVAL;
		goto err_fd;
	}
	err = io_uring_queue_init(depth, &f->ring, 0);
	if (err < 0) {
		log_error("disk %s: cannot set up io_uring: %s", path, strerror(-err));
		goto err_fd;
	}
	f->ring_ok = true;
	f->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (f->efd < 0) {
		err = -errno;
		goto err_ring;
	}
	err = io_uring_register_eventfd(&f->ring, f->efd);
	if (err < 0) {
		log_error("disk %s: cannot register the io_uring eventfd: %s", path, strerror(-err));
		goto err_efd;
	}
	return 0;
err_efd:
	close(f->efd);
	f->efd = -1;
err_ring:
	io_uring_queue_exit(&f->ring);
	f->ring_ok = false;
err_fd:
	close(f->fd);
	f->fd = -1;
	return err;
}

void blk_file_close(struct blk_file *f)
{
	if (f->ring_ok)
		io_uring_queue_exit(&f->ring);
	if (f->efd >= 0)
		close(f->efd);
	if (f->fd >= 0)
		close(f->fd);
	f->ring_ok = false;
	f->efd = f->fd = -1;
}

static struct io_uring_sqe *next_sqe(struct blk_file *f, void *tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&f->ring);
	if (sqe) {
		io_uring_sqe_set_data(sqe, tag);
		f->queued++;
	}
	return sqe;
}

int blk_file_readv(struct blk_file *f, const struct iovec *iov, unsigned n, uint64_t off,
		   void *tag)
{
	struct io_uring_sqe *sqe = next_sqe(f, tag);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_readv(sqe, f->fd, iov, n, off);
	return 0;
}

int blk_file_writev(struct blk_file *f, const struct iovec *iov, unsigned n, uint64_t off,
		    bool dsync, void *tag)
{
	struct io_uring_sqe *sqe = next_sqe(f, tag);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_writev(sqe, f->fd, iov, n, off);
	if (dsync)
		sqe->rw_flags = RWF_DSYNC; /* write-through when the driver cannot flush */
	return 0;
}

int blk_file_flush(struct blk_file *f, void *tag)
{
	struct io_uring_sqe *sqe = next_sqe(f, tag);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, f->fd, IORING_FSYNC_DATASYNC);
	return 0;
}

int blk_file_discard(struct blk_file *f, uint64_t off, uint64_t len, bool zero, void *tag)
{
	struct io_uring_sqe *sqe = next_sqe(f, tag);
	if (!sqe)
		return -EBUSY;
	int mode = FALLOC_FL_KEEP_SIZE | (zero ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE);
	io_uring_prep_fallocate(sqe, f->fd, mode, off, len);
	return 0;
}

int blk_file_submit(struct blk_file *f)
{
	if (!f->queued)
		return 0;
	int r = io_uring_submit(&f->ring);
	if (r < 0)
		return r;
	f->queued = 0;
	return 0;
}

int blk_file_wait(struct blk_file *f)
{
	struct io_uring_cqe *cqe;
	int r;
	do
		r = io_uring_wait_cqe(&f->ring, &cqe);
	while (r == -EINTR);
	return r < 0 ? r : 0;
}

unsigned blk_file_reap(struct blk_file *f, void (*done)(void *tag, int res, void *arg),
		       void *arg)
{
	uint64_t n;
	if (read(f->efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_ratelimited(LOG_WARN, "disk: eventfd read: %s", strerror(errno));
	struct io_uring_cqe *cqe;
	unsigned count = 0;
	while (io_uring_peek_cqe(&f->ring, &cqe) == 0) {
		void *tag = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&f->ring, cqe);
		done(tag, res, arg);
		count++;
	}
	return count;
}
