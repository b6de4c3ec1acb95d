/* Storage migration's copy; see mirror.h. */
#include "backend/mirror.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define MAX_PASSES 30
#define FINAL_BLOCKS 64 /* at most 4 MiB left for the quiesced final copy */

int blkmap_init(struct blkmap *map, uint64_t size)
{
	map->size = size;
	map->nr_blocks = (size + MIRROR_BLOCK - 1) / MIRROR_BLOCK;
	map->bits = calloc((map->nr_blocks + 63) / 64 + 1, sizeof(*map->bits));
	return map->bits ? 0 : -ENOMEM;
}

void blkmap_fini(struct blkmap *map)
{
	free(map->bits);
	map->bits = NULL;
}

bool blkmap_take(struct blkmap *map, uint64_t b)
{
	uint64_t bit = 1ull << (b % 64);
	return atomic_fetch_and(&map->bits[b / 64], ~bit) & bit;
}

void blkmap_mark(struct blkmap *map, uint64_t off, uint64_t len)
{
	if (!len || off >= map->size)
		return;
	uint64_t end = len > map->size - off ? map->size : off + len; /* overflow-safe */
	uint64_t first = off / MIRROR_BLOCK, last = (end - 1) / MIRROR_BLOCK;
	for (uint64_t b = first; b <= last; b++)
		atomic_fetch_or(&map->bits[b / 64], 1ull << (b % 64));
}

uint64_t blkmap_count(const struct blkmap *map)
{
	uint64_t n = 0;
	for (uint64_t w = 0; w < (map->nr_blocks + 63) / 64; w++)
		n += (uint64_t)__builtin_popcountll(atomic_load(&map->bits[w]));
	return n;
}

void blkmap_mark_data(struct blkmap *map, int fd)
{
	off_t off = 0;
	while ((uint64_t)off < map->size) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0)
			break; /* ENXIO: no data after off */
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > map->size)
			hole = (off_t)map->size;
		blkmap_mark(map, (uint64_t)data, (uint64_t)(hole - data));
		off = hole;
	}
}

int64_t blkmap_read(const struct blkmap *map, int fd, uint64_t b, uint8_t *buf)
{
	uint64_t off = b * MIRROR_BLOCK;
	size_t len = (size_t)MIN((uint64_t)MIRROR_BLOCK, map->size - off);
	for (size_t done = 0; done < len;) {
		ssize_t n = pread(fd, buf + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return (int64_t)len;
}

void mirror_mark(struct mirror *m, uint64_t off, uint64_t len)
{
	blkmap_mark(&m->map, off, len);
}

/* Copies one block; 0 or -errno. */
static int copy_block(struct mirror *m, uint64_t b, uint8_t *buf)
{
	int64_t len = blkmap_read(&m->map, m->src_fd, b, buf);
	if (len < 0)
		return (int)len;
	uint64_t off = b * MIRROR_BLOCK;
	for (int64_t done = 0; done < len;) {
		ssize_t n = pwrite(m->dst_fd, buf + done, (size_t)(len - done), (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += n;
	}
	atomic_fetch_add(&m->copied, (uint64_t)len);
	return 0;
}

/* One pass over the dirty bits; returns the blocks copied or -errno. */
static int64_t pass(struct mirror *m, uint8_t *buf)
{
	int64_t n = 0;
	for (uint64_t b = 0; b < m->map.nr_blocks && !atomic_load(&m->stop); b++) {
		if (!blkmap_take(&m->map, b))
			continue;
		int err = copy_block(m, b, buf);
		if (err)
			return err;
		n++;
	}
	return n;
}

static void signal_efd(struct mirror *m)
{
	uint64_t one = 1;
	if (write(m->efd, &one, sizeof(one)) < 0)
		log_ratelimited(LOG_ERROR, "mirror: cannot signal the event loop: %s",
				strerror(errno));
}

static void converge(struct mirror *m, int err)
{
	if (err) {
		m->error = err;
		atomic_store(&m->state, MIRROR_FAILED);
		unlink(m->dst_path);
		log_error("storage migration to %s failed: %s", m->dst_path, strerror(-err));
	} else {
		atomic_store(&m->state, MIRROR_CONVERGED);
	}
	signal_efd(m);
}

/* One pass (worker); posts itself again until the passes converge. */
static void copy_pass(void *arg)
{
	struct mirror *m = arg;
	if (atomic_load(&m->stop))
		return;
	if (atomic_load(&m->passes) == 0 && m->prev_left == UINT64_MAX)
		blkmap_mark_data(&m->map, m->src_fd);
	int64_t n = pass(m, m->buf);
	if (atomic_load(&m->stop))
		return;
	if (n < 0) {
		converge(m, (int)n);
		return;
	}
	unsigned passes = atomic_fetch_add(&m->passes, 1) + 1;
	uint64_t left = blkmap_count(&m->map);
	atomic_store(&m->remaining, left * MIRROR_BLOCK);
	/* Converged: little left, or the guest writes as fast as we copy (the
	 * final copy then takes what is left with the device quiet). */
	if (left <= FINAL_BLOCKS || passes >= MAX_PASSES || (passes > 3 && left >= m->prev_left)) {
		converge(m, 0);
		return;
	}
	m->prev_left = left;
	if (worker_post(&m->job) < 0)
		converge(m, -ESRCH);
}

/* Worker: the copy file, its room, the eventfd. */
static void open_files(void *arg)
{
	struct mirror *m = arg;
	m->dst_fd = open(m->dst_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (m->dst_fd < 0) {
		m->error = -errno;
		log_error("storage migration: cannot create %s: %s", m->dst_path, strerror(errno));
		return;
	}
	/* Reserve the whole size: a copy that fits now must not turn into the
	 * guest's write errors later, when it fills the holes. */
	int err = posix_fallocate(m->dst_fd, 0, (off_t)m->map.size);
	if (err == EOPNOTSUPP || err == EINVAL)
		err = ftruncate(m->dst_fd, (off_t)m->map.size) < 0 ? errno : 0;
	if (err) {
		log_error("storage migration: cannot make room for %s: %s", m->dst_path,
			  strerror(err));
		m->error = -err;
		unlink(m->dst_path);
		return;
	}
	m->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->efd < 0) {
		m->error = -errno;
		unlink(m->dst_path);
	}
}

int mirror_start(struct mirror *m, int src_fd, uint64_t size, const char *dst_path)
{
	*m = (struct mirror){ .src_fd = src_fd, .dst_fd = -1, .efd = -1,
			      .prev_left = UINT64_MAX };
	int err = blkmap_init(&m->map, size);
	m->dst_path = strdup(dst_path);
	m->buf = malloc(MIRROR_BLOCK);
	if (!err && (!m->dst_path || !m->buf))
		err = -ENOMEM;
	if (err)
		goto fail;
	worker_call(open_files, m);
	err = m->error;
	if (err)
		goto fail;
	atomic_store(&m->state, MIRROR_COPYING);
	m->job = (struct worker_job){ .fn = copy_pass, .arg = m };
	err = worker_post(&m->job);
	if (err) {
		log_error("storage migration: no worker thread to copy");
		unlink(dst_path);
		goto fail;
	}
	m->posted = true;
	return 0;
fail:
	m->error = 0;
	mirror_destroy(m);
	return err;
}

static void wait_copy(struct mirror *m)
{
	if (m->posted)
		worker_wait(&m->job);
	m->posted = false;
}

/* Worker: the last dirty blocks, then the copy made durable. */
static void final_pass(void *arg)
{
	struct mirror *m = arg;
	int64_t n = pass(m, m->buf);
	int err = n < 0 ? (int)n : 0;
	if (!err && fdatasync(m->dst_fd) < 0)
		err = -errno;
	m->error = err;
}

int mirror_finish(struct mirror *m)
{
	wait_copy(m);
	int err = m->error;
	if (!err && atomic_load(&m->state) != MIRROR_CONVERGED)
		err = -EINVAL;
	if (!err) {
		worker_call(final_pass, m);
		err = m->error;
	}
	atomic_store(&m->remaining, 0);
	if (err) {
		m->error = err;
		atomic_store(&m->state, MIRROR_FAILED);
		unlink(m->dst_path);
		log_error("storage migration to %s failed: %s", m->dst_path, strerror(-err));
		return err;
	}
	atomic_store(&m->state, MIRROR_DONE);
	return 0;
}

void mirror_destroy(struct mirror *m)
{
	atomic_store(&m->stop, true);
	wait_copy(m);
	if (m->dst_fd >= 0) {
		close(m->dst_fd);
		if (atomic_load(&m->state) != MIRROR_DONE && m->dst_path)
			unlink(m->dst_path);
	}
	if (m->efd >= 0)
		close(m->efd);
	blkmap_fini(&m->map);
	free(m->dst_path);
	free(m->buf);
	m->dst_path = NULL;
	m->buf = NULL;
	m->dst_fd = m->efd = -1;
}

const char *mirror_state_name(int state)
{
	switch (state) {
	case MIRROR_COPYING: return "copying";
	case MIRROR_CONVERGED: return "switching";
	case MIRROR_DONE: return "completed";
	default: return "failed";
	}
}
