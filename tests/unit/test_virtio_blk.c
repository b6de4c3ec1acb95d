/* Unit tests for src/virtio/blk.c through its public API, end to end: a
 * real image file in a temporary directory, real io_uring I/O
 * (backend/block.c), a real event loop whose completion source is run until
 * the used ring advances, and a fake guest RAM (a static array between two
 * guard areas checked at teardown).
 *
 * No transport: the test plays the transport's part the simple way — it
 * calls vq_init() on dev->vq[0], sets dev->features and dev->status as a
 * driver would have negotiated them, kicks by calling ops->notify with the
 * device lock held (as the transport's on_kick does), and resets through
 * virtio_set_status(dev, 0). The transport itself has its own tests
 * (test_virtio_pci.c). Request layout: virtio 1.2 §5.2.6. */
#include "virtio/blk.h"
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

#include <linux/falloc.h>
#include <sys/epoll.h>
#include <time.h>

#define RAM_GPA	   0x100000ull
#define RAM_SIZE   0x40000u
#define GUARD	   0x1000u
#define GUARD_BYTE 0xa5

static uint8_t arena[GUARD + RAM_SIZE + GUARD] __attribute__((aligned(4096)));
#define RAM (arena + GUARD)

/* Where things go in guest RAM (room for a 1024-entry queue). */
#define DESC_GPA   (RAM_GPA + 0x0000)
#define AVAIL_GPA  (RAM_GPA + 0x4000)
#define USED_GPA   (RAM_GPA + 0x5000)
#define HDR_GPA(k) (RAM_GPA + 0x8000 + 32ull * (k)) /* k < 512 */
#define ST_GPA(k)  (RAM_GPA + 0xc000 + (uint64_t)(k))
#define DATA_GPA   (RAM_GPA + 0x10000)
#define DATA_SIZE  0x30000u

#define IMG_SECTORS 2048u /* 1 MiB */
#define IMG_SIZE    (IMG_SECTORS * 512u)

/* Request types, status values and feature bits of §5.2. */
#define T_IN	       0
#define T_OUT	       1
#define T_FLUSH	       4
#define T_GET_ID       8
#define T_DISCARD      11
#define T_WRITE_ZEROES 13
#define S_OK	       0
#define S_IOERR	       1
#define S_UNSUPP       2
#define F_RO	       5
#define F_FLUSH	       9
#define F_DISCARD      13
#define F_WRITE_ZEROES 14

#define LIVE                                                                                       \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK)

static struct guest_mem mem;
static struct evloop loop;
static struct virtio_dev *dev;
static const char *dir;
static char *path;
static uint16_t qsize, drv_idx, next_desc;
static unsigned interrupts;

static uint8_t *g(uint64_t gpa)
{
	assert_true(gpa >= RAM_GPA && gpa < RAM_GPA + RAM_SIZE);
	return RAM + (gpa - RAM_GPA);
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9) * 13 + 1);
}

static void count_interrupt(struct virtio_dev *d, unsigned q)
{
	interrupts++;
}

/* ---- the image ---- */

static void image_read(uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

static void assert_image_pattern(uint64_t off, size_t len)
{
	static uint8_t buf[IMG_SIZE];
	image_read(off, buf, len);
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != pattern(off + i))
			fail_msg("image byte %#zx is %#x, not the pattern", (size_t)(off + i),
				 buf[i]);
	}
}

static void assert_image_zero(uint64_t off, size_t len)
{
	static uint8_t buf[IMG_SIZE];
	image_read(off, buf, len);
	for (size_t i = 0; i < len; i++) {
		if (buf[i])
			fail_msg("image byte %#zx is %#x, not 0", (size_t)(off + i), buf[i]);
	}
}

/* ---- device and queue ---- */

static void queue_init(uint16_t size, uint64_t features)
{
	qsize = size;
	drv_idx = next_desc = 0;
	memset(g(DESC_GPA), 0, 0x8000);
	assert_int_equal(
		vq_init(&dev->vq[0], &mem, size, DESC_GPA, AVAIL_GPA, USED_GPA, false, true), 0);
	dev->features = features | 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_INDIRECT_DESC;
	dev->status = LIVE;
	dev->interrupt = count_interrupt;
}

static void create(bool read_only, const char *id)
{
	struct vm_disk disk = {.path = path, .read_only = read_only};
	snprintf(disk.id, sizeof(disk.id), "%s", id);
	int err = 1;
	dev = virtio_blk_create(&mem, &loop, &disk, &err);
	assert_non_null(dev);
	assert_int_equal(err, 0);
	queue_init(16, 1ull << F_FLUSH);
}

static int setup(void **state)
{
	memset(arena, GUARD_BYTE, sizeof(arena));
	memset(RAM, 0, RAM_SIZE);
	const struct guest_region r = {.gpa = RAM_GPA, .size = RAM_SIZE, .hva = RAM};
	if (guest_mem_init_static(&mem, &r, 1) || evloop_init(&loop))
		return -1;
	static uint8_t img[IMG_SIZE];
	for (size_t i = 0; i < IMG_SIZE; i++)
		img[i] = pattern(i);
	dir = unit_tmpdir();
	path = unit_write_file(dir, "disk.img", img, IMG_SIZE);
	interrupts = 0;
	unit_log_begin(state);
	create(false, "serial-0123");
	return 0;
}

static int teardown(void **state)
{
	virtio_blk_destroy(dev);
	dev = NULL;
	evloop_fini(&loop);
	unit_rmdir(dir);
	if (!strncmp(path, "/dev/shm/", 9))
		unlink(path);
	free(path);
	unit_log_end(state);
	for (unsigned i = 0; i < GUARD; i++) {
		if (arena[i] != GUARD_BYTE || arena[GUARD + RAM_SIZE + i] != GUARD_BYTE)
			fail_msg("guard byte %u touched", i);
	}
	return 0;
}

/* ---- building requests as a driver does ---- */

struct seg {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

static uint16_t used_idx(void)
{
	return get_le16(g(USED_GPA + 2));
}

static uint32_t used_len(uint16_t slot)
{
	return get_le32(g(USED_GPA + 4 + 8u * (slot % qsize) + 4));
}

static uint32_t used_id(uint16_t slot)
{
	return get_le32(g(USED_GPA + 4 + 8u * (slot % qsize)));
}

/* Writes a chain of descriptors and makes it available; returns its head. */
static uint16_t post(const struct seg *s, unsigned n)
{
	uint16_t head = next_desc;
	for (unsigned i = 0; i < n; i++) {
		uint16_t idx = (uint16_t)((head + i) % qsize);
		uint8_t *d = g(DESC_GPA + 16u * idx);
		put_le64(d, s[i].gpa);
		put_le32(d + 8, s[i].len);
		put_le16(d + 12, (uint16_t)((i + 1 < n ? VIRTQ_DESC_F_NEXT : 0) |
					    (s[i].write ? VIRTQ_DESC_F_WRITE : 0)));
		put_le16(d + 14, (uint16_t)((head + i + 1) % qsize));
	}
	next_desc = (uint16_t)((head + n) % qsize);
	put_le16(g(AVAIL_GPA + 4 + 2u * (drv_idx % qsize)), head);
	put_le16(g(AVAIL_GPA + 2), ++drv_idx);
	return head;
}

static void header(unsigned k, uint32_t type, uint64_t sector)
{
	uint8_t *h = g(HDR_GPA(k));
	put_le32(h, type);
	put_le32(h + 4, 0);
	put_le64(h + 8, sector);
	*g(ST_GPA(k)) = 0xff; /* no status yet */
}

static void kick(void)
{
	pthread_mutex_lock(&dev->lock);
	dev->ops->notify(dev, 0);
	pthread_mutex_unlock(&dev->lock);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the event loop (the io_uring completion source) until done()
 * says so or timeout_ms passed; returns whether done() said so. */
static bool run_until(bool (*done)(void), unsigned timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	while (!done()) {
		uint64_t t = now_ms();
		if (t >= end)
			return false;
		struct epoll_event ev[8];
		int n = epoll_wait(loop.epfd, ev, 8, (int)MIN(end - t, 50u));
		for (int i = 0; i < n; i++) {
			struct evloop_source *src = ev[i].data.ptr;
			src->fn(src, ev[i].events);
		}
	}
	return true;
}

static bool never(void)
{
	return false;
}

static uint16_t want_used;
static bool used_reached(void)
{
	return used_idx() == want_used;
}

/* Waits for the used ring to reach idx (5 s at most). */
static void wait_used(uint16_t idx)
{
	want_used = idx;
	if (!run_until(used_reached, 5000))
		fail_msg("used.idx is %u, want %u", used_idx(), idx);
}

/* One request: header k, optional data, status byte; returns the status
 * and checks the used element (head, len). */
static uint8_t request(unsigned k, uint32_t type, uint64_t sector, uint64_t data_gpa,
		       uint32_t data_len, bool data_write, uint32_t want_len)
{
	header(k, type, sector);
	struct seg s[3] = {{HDR_GPA(k), 16, false}};
	unsigned n = 1;
	if (data_len)
		s[n++] = (struct seg){data_gpa, data_len, data_write};
	s[n++] = (struct seg){ST_GPA(k), 1, true};
	uint16_t before = used_idx();
	uint16_t head = post(s, n);
	kick();
	wait_used((uint16_t)(before + 1));
	assert_int_equal(used_id(before), head);
	assert_int_equal(used_len(before), want_len);
	assert_int_equal(dev->status, LIVE);
	return *g(ST_GPA(k));
}

/* A 16-byte discard / write-zeroes segment at gpa (§5.2.6). */
static void dz_seg(uint64_t gpa, uint64_t sector, uint32_t nr, uint32_t flags)
{
	put_le64(g(gpa), sector);
	put_le32(g(gpa + 8), nr);
	put_le32(g(gpa + 12), flags);
}

/* ---- configuration and features ---- */

static void test_config_and_features(void **state)
{
	uint8_t cfg[60];
	memset(cfg, 0xee, sizeof(cfg));
	pthread_mutex_lock(&dev->lock);
	dev->ops->config_read(dev, 0, cfg, sizeof(cfg));
	pthread_mutex_unlock(&dev->lock);
	assert_int_equal(dev->ops->config_size, 60);
	assert_int_equal(get_le64(cfg), IMG_SECTORS); /* capacity */
	assert_int_equal(get_le32(cfg + 12), 254);    /* seg_max */
	assert_int_equal(get_le32(cfg + 20), 512);    /* blk_size */
	assert_int_equal(get_le16(cfg + 34), 4);      /* num_queues */
	assert_int_equal(get_le32(cfg + 40), 1);      /* max_discard_seg */
	assert_int_equal(get_le32(cfg + 52), 1);      /* max_write_zeroes_seg */
	/* A sub-range read: just those bytes. */
	uint8_t b[2] = {0xee, 0xee};
	dev->ops->config_read(dev, 1, b, 2);
	assert_int_equal(get_le16(b), IMG_SECTORS >> 8);

	assert_int_equal(dev->ops->device_id, VIRTIO_ID_BLOCK);
	assert_int_equal(dev->ops->nr_queues, 4);
	const uint64_t rw = dev->host_features;
	assert_true(rw & 1ull << F_FLUSH);
	assert_true(rw & 1ull << F_DISCARD);
	assert_true(rw & 1ull << F_WRITE_ZEROES);
	assert_false(rw & 1ull << F_RO);
	assert_true(rw & 1ull << VIRTIO_F_VERSION_1);

	virtio_blk_destroy(dev);
	create(true, "");
	assert_true(dev->host_features & 1ull << F_RO);
	assert_false(dev->host_features & 1ull << F_DISCARD);
	assert_false(dev->host_features & 1ull << F_WRITE_ZEROES);
}

static void test_create_bad_image(void **state)
{
	struct vm_disk disk = {.path = "/nonexistent/mote-disk.img"};
	int err = 0;
	unsigned fds = unit_open_fds();
	assert_null(virtio_blk_create(&mem, &loop, &disk, &err));
	assert_int_equal(err, -ENOENT);
	assert_log_contains("cannot open disk /nonexistent/mote-disk.img");
	char *odd = unit_write_file(dir, "odd.img", "x", 1);
	disk.path = odd;
	assert_null(virtio_blk_create(&mem, &loop, &disk, &err));
	assert_int_equal(err, -EINVAL);
	assert_log_contains("is not a multiple of 512 bytes");
	assert_int_equal(unit_open_fds(), fds);
	free(odd);
}

/* ---- the request types ---- */

static void test_read(void **state)
{
	memset(g(DATA_GPA), 0, 1024);
	assert_int_equal(request(0, T_IN, 3, DATA_GPA, 1024, true, 1025), S_OK);
	for (unsigned i = 0; i < 1024; i++)
		assert_int_equal(*g(DATA_GPA + i), pattern(3 * 512 + i));
	assert_int_equal(*g(DATA_GPA + 1024), 0); /* nothing past the buffer */
	assert_true(interrupts >= 1);
	/* The last sector. */
	assert_int_equal(request(1, T_IN, IMG_SECTORS - 1, DATA_GPA, 512, true, 513), S_OK);
	assert_int_equal(*g(DATA_GPA + 511), pattern(IMG_SIZE - 1));
}

static void test_write(void **state)
{
	for (unsigned i = 0; i < 1024; i++)
		*g(DATA_GPA + i) = (uint8_t)(i ^ 0x5a);
	assert_int_equal(request(0, T_OUT, 5, DATA_GPA, 1024, false, 1), S_OK);
	uint8_t buf[1024];
	image_read(5 * 512, buf, sizeof(buf));
	assert_memory_equal(buf, g(DATA_GPA), sizeof(buf));
	assert_image_pattern(4 * 512, 512);
	assert_image_pattern(7 * 512, 512);
	/* Write-through mode (FLUSH not negotiated) writes the same. */
	queue_init(16, 0);
	memset(g(DATA_GPA), 0x77, 512);
	assert_int_equal(request(1, T_OUT, 0, DATA_GPA, 512, false, 1), S_OK);
	image_read(0, buf, 512);
	assert_memory_equal(buf, g(DATA_GPA), 512);
}

/* Data scattered over several descriptors, either way. */
static void test_multi_segment(void **state)
{
	for (unsigned i = 0; i < 1536; i++)
		*g(DATA_GPA + 0x8000 + i) = (uint8_t)(i * 3);
	header(0, T_OUT, 100);
	const struct seg w[] = {{HDR_GPA(0), 16, false},
				{DATA_GPA + 0x8000, 100, false},
				{DATA_GPA + 0x8000 + 100, 900, false},
				{DATA_GPA + 0x8000 + 1000, 536, false},
				{ST_GPA(0), 1, true}};
	post(w, 5);
	kick();
	wait_used(1);
	assert_int_equal(*g(ST_GPA(0)), S_OK);
	uint8_t buf[1536];
	image_read(100 * 512, buf, sizeof(buf));
	assert_memory_equal(buf, g(DATA_GPA + 0x8000), sizeof(buf));

	header(1, T_IN, 100);
	memset(g(DATA_GPA), 0, 2048);
	const struct seg r[] = {{HDR_GPA(1), 16, false},
				{DATA_GPA + 1024, 1, true},
				{DATA_GPA, 1023, true},
				{DATA_GPA + 1100, 512, true},
				{ST_GPA(1), 1, true}};
	post(r, 5);
	kick();
	wait_used(2);
	assert_int_equal(*g(ST_GPA(1)), S_OK);
	assert_int_equal(used_len(1), 1537);
	assert_int_equal(*g(DATA_GPA + 1024), buf[0]);
	assert_memory_equal(g(DATA_GPA), buf + 1, 1023);
	assert_memory_equal(g(DATA_GPA + 1100), buf + 1024, 512);
}

static void test_flush(void **state)
{
	assert_int_equal(request(0, T_FLUSH, 0, 0, 0, false, 1), S_OK);
	/* The sector field of a flush is ignored. */
	assert_int_equal(request(1, T_FLUSH, UINT64_MAX, 0, 0, false, 1), S_OK);
}

static void test_get_id(void **state)
{
	memset(g(DATA_GPA), 0xee, 32);
	assert_int_equal(request(0, T_GET_ID, 0, DATA_GPA, 20, true, 21), S_OK);
	assert_memory_equal(g(DATA_GPA), "serial-0123\0\0\0\0\0\0\0\0\0", 20);
	assert_int_equal(*g(DATA_GPA + 20), 0xee);

	/* 20 characters: no NUL (§5.2.6: not terminated when it fills the field). */
	virtio_blk_destroy(dev);
	create(false, "abcdefghijklmnopqrst");
	memset(g(DATA_GPA), 0xee, 32);
	assert_int_equal(request(1, T_GET_ID, 0, DATA_GPA, 20, true, 21), S_OK);
	assert_memory_equal(g(DATA_GPA), "abcdefghijklmnopqrst", 20);
	assert_int_equal(*g(DATA_GPA + 20), 0xee);

	/* A shorter buffer gets what fits and nothing beyond. */
	memset(g(DATA_GPA), 0xee, 32);
	assert_int_equal(request(2, T_GET_ID, 0, DATA_GPA, 8, true, 9), S_OK);
	assert_memory_equal(g(DATA_GPA), "abcdefgh", 8);
	assert_int_equal(*g(DATA_GPA + 8), 0xee);
}

static void test_discard(void **state)
{
	dz_seg(DATA_GPA, 8, 8, 0);
	assert_int_equal(request(0, T_DISCARD, 0, DATA_GPA, 16, false, 1), S_OK);
	assert_image_zero(8 * 512, 8 * 512);
	assert_image_pattern(0, 8 * 512);
	assert_image_pattern(16 * 512, 512);
	/* The whole disk; the file keeps its size. */
	dz_seg(DATA_GPA, 0, IMG_SECTORS, 0);
	assert_int_equal(request(1, T_DISCARD, 0, DATA_GPA, 16, false, 1), S_OK);
	assert_image_zero(0, IMG_SIZE);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, IMG_SIZE);
}

/* Whether the file system under the image can zero a range in place. */
static bool zero_range_supported(void)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	int r = fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_ZERO_RANGE, IMG_SIZE - 512, 512);
	close(fd);
	return r == 0;
}

static void test_write_zeroes(void **state)
{
	/* With the unmap flag the device may deallocate (punch a hole). */
	dz_seg(DATA_GPA, 20, 4, 1);
	assert_int_equal(request(0, T_WRITE_ZEROES, 0, DATA_GPA, 16, false, 1), S_OK);
	assert_image_zero(20 * 512, 4 * 512);
	assert_image_pattern(19 * 512, 512);
	assert_image_pattern(24 * 512, 512);
	/* Without it the range is zeroed in place (FALLOC_FL_ZERO_RANGE). */
	if (!zero_range_supported())
		skip();
	dz_seg(DATA_GPA, 30, 2, 0);
	assert_int_equal(request(1, T_WRITE_ZEROES, 0, DATA_GPA, 16, false, 1), S_OK);
	assert_image_zero(30 * 512, 2 * 512);
	assert_image_pattern(29 * 512, 512);
	assert_image_pattern(32 * 512, 512);
}

/* mote offers WRITE_ZEROES whatever the image's file system; where that
 * cannot zero a range in place (tmpfs: FALLOC_FL_ZERO_RANGE is EOPNOTSUPP)
 * a write-zeroes without the unmap flag fails with IOERR, which Linux does
 * not retry another way (blkdev_issue_zeroout falls back only on NOTSUPP). */
static void test_write_zeroes_without_zero_range(void **state)
{
	if (access("/dev/shm", W_OK))
		skip();
	virtio_blk_destroy(dev);
	static uint8_t img[IMG_SIZE];
	for (size_t i = 0; i < IMG_SIZE; i++)
		img[i] = pattern(i);
	char *shm = unit_write_file("/dev/shm", "mote-unit-blk.img", img, IMG_SIZE);
	free(path);
	path = shm;
	create(false, "shm");
	dz_seg(DATA_GPA, 30, 2, 0);
	uint8_t st = request(0, T_WRITE_ZEROES, 0, DATA_GPA, 16, false, 1);
	unlink(shm);
	assert_int_equal(st, S_OK);
}

/* ---- failures ---- */

static void test_ioerr_range(void **state)
{
	struct {
		uint32_t type;
		uint64_t sector;
		uint32_t len;
	} bad[] = {
		{T_IN, IMG_SECTORS, 512},      /* just past the end */
		{T_IN, IMG_SECTORS - 1, 1024}, /* runs past the end */
		{T_OUT, IMG_SECTORS - 1, 1024},
		{T_IN, UINT64_MAX, 512}, /* sector + len wraps */
		{T_OUT, UINT64_MAX - 1, 1024},
		{T_IN, 1ull << 55, 512}, /* sector * 512 wraps */
		{T_OUT, UINT64_MAX / 512 + 1, 512},
		{T_IN, 0, 513}, /* not a whole number of sectors */
		{T_IN, 0, 100},
		{T_OUT, 0, 511},
		{T_OUT, 2, 1},
	};
	memset(g(DATA_GPA), 0x42, 2048);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool in = bad[i].type == T_IN;
		uint8_t st = request(i, bad[i].type, bad[i].sector, DATA_GPA, bad[i].len, in,
				     in ? bad[i].len + 1 : 1);
		if (st != S_IOERR)
			fail_msg("request %u: status %u, not IOERR", i, st);
	}
	/* Nothing was read into the buffers or written to the image. */
	for (unsigned i = 0; i < 2048; i++)
		assert_int_equal(*g(DATA_GPA + i), 0x42);
	assert_image_pattern(0, IMG_SIZE);
	/* Reaching exactly the end is fine; so is a zero-length read there. */
	assert_int_equal(request(20, T_IN, IMG_SECTORS - 2, DATA_GPA, 1024, true, 1025), S_OK);
	assert_int_equal(request(21, T_IN, IMG_SECTORS, 0, 0, true, 1), S_OK);
}

static void test_ioerr_read_only(void **state)
{
	virtio_blk_destroy(dev);
	create(true, "ro");
	memset(g(DATA_GPA), 0x99, 512);
	assert_int_equal(request(0, T_OUT, 0, DATA_GPA, 512, false, 1), S_IOERR);
	dz_seg(DATA_GPA + 0x1000, 0, 8, 0);
	assert_int_equal(request(1, T_DISCARD, 0, DATA_GPA + 0x1000, 16, false, 1), S_IOERR);
	assert_int_equal(request(2, T_WRITE_ZEROES, 0, DATA_GPA + 0x1000, 16, false, 1), S_IOERR);
	dz_seg(DATA_GPA + 0x1000, 0, 8, 1);
	assert_int_equal(request(3, T_WRITE_ZEROES, 0, DATA_GPA + 0x1000, 16, false, 1), S_IOERR);
	assert_image_pattern(0, IMG_SIZE);
	/* Reads and flushes still work. */
	assert_int_equal(request(4, T_IN, 1, DATA_GPA, 512, true, 513), S_OK);
	assert_int_equal(*g(DATA_GPA), pattern(512));
	assert_int_equal(request(5, T_FLUSH, 0, 0, 0, false, 1), S_OK);
}

static void test_ioerr_discard_segments(void **state)
{
	struct {
		uint64_t sector;
		uint32_t nr, flags, len;
	} bad[] = {
		{IMG_SECTORS - 4, 8, 0, 16}, /* past the end */
		{UINT64_MAX - 1, 4, 0, 16},  /* wraps */
		{0, (1u << 22) + 1, 0, 16},  /* above max_discard_sectors */
		{0, 8, 0, 32},		     /* two segments: max_discard_seg is 1 */
		{0, 8, 0, 8},		     /* half a segment */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t seg = DATA_GPA + 0x100 * i;
		dz_seg(seg, bad[i].sector, bad[i].nr, bad[i].flags);
		dz_seg(seg + 16, 0, 8, 0);
		for (unsigned t = 0; t < 2; t++) {
			uint32_t type = t ? T_WRITE_ZEROES : T_DISCARD;
			uint8_t st = request(2 * i + t, type, 0, seg, bad[i].len, false, 1);
			if (st != S_IOERR)
				fail_msg("segment %u type %u: status %u, not IOERR", i, type, st);
		}
	}
	assert_image_pattern(0, IMG_SIZE);
	/* The whole disk in one segment is fine. */
	dz_seg(DATA_GPA, 0, IMG_SECTORS, 1);
	assert_int_equal(request(30, T_WRITE_ZEROES, 0, DATA_GPA, 16, false, 1), S_OK);
	assert_image_zero(0, IMG_SIZE);
}

/* §5.2.6.2: discard with the unmap flag, and unknown flags on either
 * command, are UNSUPP. mote fails unknown flags with IOERR and accepts
 * discard + unmap. */
static void test_discard_flags_unsupp(void **state)
{
	dz_seg(DATA_GPA, 0, 8, 1);
	assert_int_equal(request(0, T_DISCARD, 0, DATA_GPA, 16, false, 1), S_UNSUPP);
	dz_seg(DATA_GPA, 0, 8, 2);
	assert_int_equal(request(1, T_DISCARD, 0, DATA_GPA, 16, false, 1), S_UNSUPP);
	assert_int_equal(request(2, T_WRITE_ZEROES, 0, DATA_GPA, 16, false, 1), S_UNSUPP);
	assert_image_pattern(0, IMG_SIZE);
}

static void test_unsupported_type(void **state)
{
	const uint32_t types[] = {2, 3, 5, 7, 9, 10, 12, 14, 15, 99, 0x80000000u, 0xffffffffu};
	memset(g(DATA_GPA), 0x42, 512);
	for (unsigned i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		uint8_t st = request(i, types[i], 0, DATA_GPA, 512, true, 513);
		if (st != S_UNSUPP)
			fail_msg("type %#x: status %u, not UNSUPP", types[i], st);
	}
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(*g(DATA_GPA + i), 0x42);
	assert_image_pattern(0, IMG_SIZE);
	assert_int_equal(dev->status, LIVE);
}

/* ---- request layouts ---- */

static void test_header_split(void **state)
{
	/* 8 + 8 bytes, then data, then status. */
	header(0, T_IN, 9);
	const struct seg a[] = {{HDR_GPA(0), 8, false},
				{HDR_GPA(0) + 8, 8, false},
				{DATA_GPA, 512, true},
				{ST_GPA(0), 1, true}};
	post(a, 4);
	kick();
	wait_used(1);
	assert_int_equal(*g(ST_GPA(0)), S_OK);
	assert_int_equal(*g(DATA_GPA + 5), pattern(9 * 512 + 5));

	/* 1 + 15 bytes, from places not next to each other. */
	header(1, T_IN, 0);
	uint8_t *h = g(HDR_GPA(1));
	*g(HDR_GPA(2)) = h[0];
	memmove(g(HDR_GPA(3)), h + 1, 15);
	put_le32(h, 0xdeadbeefu); /* must not be read */
	const struct seg b[] = {{HDR_GPA(2), 1, false},
				{HDR_GPA(3), 15, false},
				{DATA_GPA, 512, true},
				{ST_GPA(1), 1, true}};
	put_le64(g(HDR_GPA(3)) + 7, 10); /* sector 10 */
	post(b, 4);
	kick();
	wait_used(2);
	assert_int_equal(*g(ST_GPA(1)), S_OK);
	assert_int_equal(*g(DATA_GPA), pattern(10 * 512));

	/* Header and data in one buffer; data and status in one buffer. */
	header(4, T_OUT, 12);
	uint64_t buf = DATA_GPA + 0x2000;
	memcpy(g(buf), g(HDR_GPA(4)), 16);
	memset(g(buf + 16), 0x3c, 512);
	const struct seg c[] = {{buf, 16 + 512, false}, {ST_GPA(4), 1, true}};
	post(c, 2);
	kick();
	wait_used(3);
	assert_int_equal(*g(ST_GPA(4)), S_OK);
	uint8_t img[512];
	image_read(12 * 512, img, sizeof(img));
	for (unsigned i = 0; i < 512; i++)
		assert_int_equal(img[i], 0x3c);

	header(5, T_IN, 13);
	uint64_t ds = DATA_GPA + 0x3000;
	*g(ds + 512) = 0xff;
	const struct seg d[] = {{HDR_GPA(5), 16, false}, {ds, 513, true}};
	post(d, 2);
	kick();
	wait_used(4);
	assert_int_equal(used_len(3), 513);
	assert_int_equal(*g(ds + 512), S_OK);
	assert_int_equal(*g(ds), pattern(13 * 512));
	assert_int_equal(*g(ds + 511), pattern(14 * 512 - 1));
}

static void assert_needs_reset(const char *why)
{
	assert_true(dev->status & VIRTIO_STATUS_NEEDS_RESET);
	assert_int_equal(dev->errors, 1);
	assert_log_contains(why);
}

static void test_no_status_byte_needs_reset(void **state)
{
	header(0, T_OUT, 0);
	const struct seg s[] = {{HDR_GPA(0), 16, false}, {DATA_GPA, 512, false}};
	post(s, 2);
	kick();
	assert_needs_reset("virtio-blk: queue 0: request without header or status byte");
	assert_int_equal(used_idx(), 0);
	assert_image_pattern(0, 512);
	run_until(never, 50);
	assert_int_equal(used_idx(), 0);
}

static void test_short_header_needs_reset(void **state)
{
	header(0, T_IN, 0);
	const struct seg s[] = {
		{HDR_GPA(0), 15, false}, {DATA_GPA, 512, true}, {ST_GPA(0), 1, true}};
	post(s, 3);
	kick();
	assert_needs_reset("request without header or status byte");
	assert_int_equal(*g(ST_GPA(0)), 0xff);
	assert_int_equal(used_idx(), 0);
}

static void test_broken_ring_needs_reset(void **state)
{
	header(0, T_IN, 0);
	const struct seg s[] = {
		{HDR_GPA(0), 16, false}, {RAM_GPA + RAM_SIZE - 8, 512, true}, {ST_GPA(0), 1, true}};
	post(s, 3);
	kick();
	assert_needs_reset("virtio-blk: queue 0: broken ring");
	assert_int_equal(used_idx(), 0);
}

/* ---- many requests, reset ---- */

static void test_many_in_one_kick(void **state)
{
	for (unsigned k = 0; k < 4; k++) {
		header(k, T_IN, 40 + 3 * k);
		const struct seg s[] = {{HDR_GPA(k), 16, false},
					{DATA_GPA + 0x1000 * k, 1024, true},
					{ST_GPA(k), 1, true}};
		post(s, 3);
	}
	header(4, T_FLUSH, 0);
	const struct seg f[] = {{HDR_GPA(4), 16, false}, {ST_GPA(4), 1, true}};
	post(f, 2);
	kick();
	wait_used(5);
	for (unsigned k = 0; k < 4; k++) {
		assert_int_equal(*g(ST_GPA(k)), S_OK);
		assert_int_equal(*g(DATA_GPA + 0x1000 * k + 700),
				 pattern((40 + 3 * k) * 512 + 700));
	}
	assert_int_equal(*g(ST_GPA(4)), S_OK);
	/* Every head came back exactly once. */
	unsigned seen = 0;
	for (uint16_t i = 0; i < 5; i++)
		seen |= 1u << used_id(i);
	assert_int_equal(seen, 1u << 0 | 1u << 3 | 1u << 6 | 1u << 9 | 1u << 12);
	/* A kick with nothing new does nothing. */
	unsigned irq = interrupts;
	kick();
	run_until(never, 20);
	assert_int_equal(used_idx(), 5);
	assert_int_equal(interrupts, irq);
}

static bool reset_finished(void)
{
	pthread_mutex_lock(&dev->lock);
	bool r = !dev->resetting;
	pthread_mutex_unlock(&dev->lock);
	return r;
}

static void test_reset_idle(void **state)
{
	pthread_mutex_lock(&dev->lock);
	virtio_set_status(dev, 0);
	pthread_mutex_unlock(&dev->lock);
	assert_int_equal(dev->status, 0);
	assert_false(dev->resetting);
	assert_int_equal(dev->vq[0].size, 0);
}

static unsigned statuses_set(void)
{
	unsigned n = 0;
	for (unsigned k = 0; k < 3; k++)
		n += *g(ST_GPA(k)) != 0xff;
	return n;
}

static void test_reset_with_io_in_flight(void **state)
{
	/* Reads the page cache serves, and even the flush, may complete within
	 * the kick (the device reaps right after submitting): the scenario is
	 * retried, on a fresh queue, until something is still in flight when
	 * the driver resets. */
	uint16_t before = 3;
	for (unsigned attempt = 0; attempt < 50 && before == 3; attempt++) {
		memset(g(AVAIL_GPA), 0, 0x1000);
		memset(g(USED_GPA), 0, 0x3000);
		queue_init(16, 1ull << F_FLUSH);
		memset(g(DATA_GPA), 0, 4096);
		for (unsigned k = 0; k < 3; k++) {
			header(k, k == 2 ? T_FLUSH : T_IN, 8 * k);
			const struct seg s[] = {{HDR_GPA(k), 16, false},
						{DATA_GPA + 1024 * k, 1024, true},
						{ST_GPA(k), 1, true}};
			const struct seg fl[] = {{HDR_GPA(k), 16, false}, {ST_GPA(k), 1, true}};
			if (k == 2)
				post(fl, 2);
			else
				post(s, 3);
		}
		kick();
		before = used_idx();
	}
	assert_true(before < 3);
	assert_int_equal(statuses_set(), before);
	pthread_mutex_lock(&dev->lock);
	virtio_set_status(dev, 0);
	pthread_mutex_unlock(&dev->lock);
	assert_true(dev->resetting);
	assert_int_equal(dev->status, LIVE);
	/* The driver may not restart meanwhile. */
	pthread_mutex_lock(&dev->lock);
	virtio_set_status(dev, VIRTIO_STATUS_ACKNOWLEDGE);
	pthread_mutex_unlock(&dev->lock);
	assert_int_equal(dev->status, LIVE);

	if (!run_until(reset_finished, 5000))
		fail_msg("reset never finished");
	assert_int_equal(dev->status, 0);
	assert_int_equal(dev->features, 0);
	/* What completed after the reset was dropped: no new used entries, and
	 * the requests still in flight got no status byte. */
	assert_int_equal(used_idx(), before);
	assert_int_equal(statuses_set(), before);

	/* The device works again after the driver sets it up anew. */
	memset(g(AVAIL_GPA), 0, 0x1000);
	memset(g(USED_GPA), 0, 0x3000);
	queue_init(16, 1ull << F_FLUSH);
	assert_int_equal(request(0, T_IN, 1, DATA_GPA, 512, true, 513), S_OK);
	assert_int_equal(*g(DATA_GPA), pattern(512));
}

/* Requests popped in the same kick as a malformed one must still be
 * submitted: otherwise they never complete, and a reset waits for them
 * for ever (device_status never reads 0 again). */
static void test_bad_request_after_good_ones(void **state)
{
	for (unsigned k = 0; k < 2; k++) {
		header(k, T_IN, k);
		const struct seg s[] = {{HDR_GPA(k), 16, false},
					{DATA_GPA + 1024 * k, 512, true},
					{ST_GPA(k), 1, true}};
		post(s, 3);
	}
	header(2, T_OUT, 0);
	const struct seg bad[] = {{HDR_GPA(2), 16, false}};
	post(bad, 1);
	kick();
	assert_needs_reset("request without header or status byte");
	/* The two good ones complete. */
	want_used = 2;
	bool done = run_until(used_reached, 1000);
	pthread_mutex_lock(&dev->lock);
	virtio_set_status(dev, 0);
	pthread_mutex_unlock(&dev->lock);
	bool reset = run_until(reset_finished, 1000);
	if (!done || !reset)
		fail_msg("requests before the bad one: %s; reset: %s",
			 done ? "completed" : "never completed", reset ? "done" : "never finished");
	assert_int_equal(*g(ST_GPA(0)), S_OK);
	assert_int_equal(*g(ST_GPA(1)), S_OK);
}

/* A driver may pick a queue larger than the device's 256 requests: more
 * requests than request slots break the device instead of overrunning. */
static void test_more_requests_than_slots(void **state)
{
	queue_init(1024, 1ull << F_FLUSH);
	const unsigned n = 257;
	for (unsigned k = 0; k < n; k++) {
		header(k, T_FLUSH, 0);
		const struct seg s[] = {{HDR_GPA(k), 16, false}, {ST_GPA(k), 1, true}};
		post(s, 2);
	}
	kick();
	assert_needs_reset("virtio-blk: queue 0: no room for the request");
	wait_used(256);
	for (unsigned k = 0; k < 256; k++)
		assert_int_equal(*g(ST_GPA(k)), S_OK);
	assert_int_equal(*g(ST_GPA(256)), 0xff);
	pthread_mutex_lock(&dev->lock);
	virtio_set_status(dev, 0);
	pthread_mutex_unlock(&dev->lock);
	assert_true(run_until(reset_finished, 5000));
	assert_int_equal(dev->status, 0);
}

/* A second request queue (VIRTIO_BLK_F_MQ), 8 entries between queue 0's
 * used ring and the headers: its requests complete into its own used ring
 * with its own interrupt; a request the limiter holds back there is resumed
 * by the limiter's timer, with no kick, though the timer names queue 0. */
#define Q1_DESC  (RAM_GPA + 0x7800)
#define Q1_AVAIL (RAM_GPA + 0x7900)
#define Q1_USED  (RAM_GPA + 0x7a00)

static unsigned q1_interrupts;
static void count_q1_interrupt(struct virtio_dev *d, unsigned q)
{
	if (q == 1)
		q1_interrupts++;
	else
		interrupts++;
}

static bool q1_two_used(void)
{
	return get_le16(g(Q1_USED + 2)) == 2;
}

static void q1_post(unsigned k, uint16_t head, uint64_t sector)
{
	header(k, T_IN, sector);
	const struct seg s[] = {{HDR_GPA(k), 16, false}, {DATA_GPA + 512u * k, 512, true},
				{ST_GPA(k), 1, true}};
	for (unsigned i = 0; i < 3; i++) {
		uint8_t *d = g(Q1_DESC + 16u * (head + i));
		put_le64(d, s[i].gpa);
		put_le32(d + 8, s[i].len);
		put_le16(d + 12, (uint16_t)((i < 2 ? VIRTQ_DESC_F_NEXT : 0) |
					    (s[i].write ? VIRTQ_DESC_F_WRITE : 0)));
		put_le16(d + 14, (uint16_t)(head + i + 1));
	}
	uint16_t idx = get_le16(g(Q1_AVAIL + 2));
	put_le16(g(Q1_AVAIL + 4 + 2u * (idx % 8)), head);
	put_le16(g(Q1_AVAIL + 2), (uint16_t)(idx + 1));
}

static void test_second_queue(void **state)
{
	assert_true(dev->host_features & 1ull << 12); /* VIRTIO_BLK_F_MQ */
	memset(g(Q1_DESC), 0, 0x800);
	assert_int_equal(vq_init(&dev->vq[1], &mem, 8, Q1_DESC, Q1_AVAIL, Q1_USED, false, true), 0);
	dev->interrupt = count_q1_interrupt;
	const struct ratelimit_cfg rl = { .ops = { 1, 0, 100 } };
	assert_int_equal(virtio_blk_update(dev, NULL, &rl), 0);
	q1_post(0, 0, 3);
	q1_post(1, 3, 5);
	pthread_mutex_lock(&dev->lock);
	dev->ops->notify(dev, 1);
	pthread_mutex_unlock(&dev->lock);
	want_used = 0;
	assert_true(run_until(never, 30) == false);
	assert_int_equal(get_le16(g(Q1_USED + 2)), 1);
	assert_int_equal(*g(ST_GPA(1)), 0xff); /* held back by the limiter */
	assert_true(run_until(q1_two_used, 5000));
	for (unsigned k = 0; k < 2; k++) {
		assert_int_equal(get_le32(g(Q1_USED + 4 + 8u * k)), 3 * k); /* head */
		assert_int_equal(get_le32(g(Q1_USED + 8 + 8u * k)), 513);
		assert_int_equal(*g(ST_GPA(k)), S_OK);
	}
	assert_int_equal(*g(DATA_GPA), pattern(3 * 512));
	assert_int_equal(*g(DATA_GPA + 512), pattern(5 * 512));
	assert_int_equal(used_idx(), 0); /* queue 0 saw nothing */
	assert_int_equal(interrupts, 0);
	assert_true(q1_interrupts >= 1);
	assert_int_equal(dev->status, LIVE);
}

/* ---- rate limits and backing-file changes ---- */

/* An ops limit of 2 per 200 ms: two requests pass at once, the third stays
 * in the ring (no status) until the limiter's timer lets it through — with
 * no further kick from the driver. */
static void test_rate_limited_ops(void **state)
{
	const struct ratelimit_cfg rl = { .ops = { 2, 0, 200 } };
	assert_int_equal(virtio_blk_update(dev, NULL, &rl), 0);
	for (unsigned k = 0; k < 3; k++) {
		header(k, T_IN, k);
		const struct seg s[] = {{HDR_GPA(k), 16, false}, {DATA_GPA + 512u * k, 512, true},
					{ST_GPA(k), 1, true}};
		post(s, 3);
	}
	uint64_t t0 = now_ms();
	kick();
	wait_used(2);
	assert_int_equal(*g(ST_GPA(2)), 0xff); /* still waiting */
	kick();                                /* a kick does not jump the queue */
	assert_int_equal(*g(ST_GPA(2)), 0xff);
	wait_used(3);
	/* A token every 100 ms: the third cannot have started sooner (a lower
	 * bound set by the limiter, not a performance threshold). */
	assert_true(now_ms() - t0 >= 90);
	for (unsigned k = 0; k < 3; k++)
		assert_int_equal(*g(ST_GPA(k)), S_OK);
	assert_int_equal(*g(DATA_GPA + 1024), pattern(2 * 512));
	assert_int_equal(dev->status, LIVE);
}

/* Bandwidth: 4 KiB per 100 ms; 8 KiB of reads take at least one refill. */
static void test_rate_limited_bandwidth(void **state)
{
	const struct ratelimit_cfg rl = { .bw = { 4096, 0, 100 } };
	assert_int_equal(virtio_blk_update(dev, NULL, &rl), 0);
	uint64_t t0 = now_ms();
	assert_int_equal(request(0, T_IN, 0, DATA_GPA, 4096, true, 4097), S_OK);
	assert_int_equal(request(1, T_IN, 8, DATA_GPA, 4096, true, 4097), S_OK);
	assert_true(now_ms() - t0 >= 90);
	/* Lifting the limit lets requests through at once again. */
	const struct ratelimit_cfg none = { 0 };
	assert_int_equal(virtio_blk_update(dev, NULL, &none), 0);
	assert_int_equal(request(2, T_IN, 16, DATA_GPA, 4096, true, 4097), S_OK);
}

static unsigned config_changes;
static void count_config(struct virtio_dev *d)
{
	config_changes++;
}

/* A new backing file: later reads see it, the old file is closed, the
 * driver is told (configuration-change interrupt) and the capacity is the
 * new file's. */
static void test_swap_file(void **state)
{
	dev->config_interrupt = count_config;
	config_changes = 0;
	static uint8_t img[8 * 512];
	memset(img, 0x3c, sizeof(img));
	char *other = unit_write_file(dir, "other.img", img, sizeof(img));
	unsigned fds = unit_open_fds();
	assert_int_equal(virtio_blk_update(dev, other, NULL), 0);
	assert_int_equal(config_changes, 1);
	assert_true(unit_open_fds() <= fds); /* the old file and its ring are gone */
	uint8_t cfg[8];
	dev->ops->config_read(dev, 0, cfg, 8);
	assert_int_equal(get_le64(cfg), 8);
	memset(g(DATA_GPA), 0, 512);
	assert_int_equal(request(0, T_IN, 7, DATA_GPA, 512, true, 513), S_OK);
	assert_int_equal(*g(DATA_GPA + 100), 0x3c);
	/* Beyond the new, smaller capacity: an I/O error. */
	assert_int_equal(request(1, T_IN, 8, DATA_GPA, 512, true, 513), S_IOERR);
	/* A file that cannot be used is refused; the current one stays. */
	assert_int_equal(virtio_blk_update(dev, "/nonexistent/x.img", NULL), -ENOENT);
	assert_int_equal(request(2, T_IN, 0, DATA_GPA, 512, true, 513), S_OK);
	assert_int_equal(*g(DATA_GPA), 0x3c);
	free(other);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_config_and_features),
		T(test_create_bad_image),
		T(test_read),
		T(test_write),
		T(test_multi_segment),
		T(test_flush),
		T(test_get_id),
		T(test_discard),
		T(test_write_zeroes),
		T(test_write_zeroes_without_zero_range),
		T(test_ioerr_range),
		T(test_ioerr_read_only),
		T(test_ioerr_discard_segments),
		T(test_discard_flags_unsupp),
		T(test_unsupported_type),
		T(test_header_split),
		T(test_no_status_byte_needs_reset),
		T(test_short_header_needs_reset),
		T(test_broken_ring_needs_reset),
		T(test_many_in_one_kick),
		T(test_reset_idle),
		T(test_reset_with_io_in_flight),
		T(test_bad_request_after_good_ones),
		T(test_more_requests_than_slots),
		T(test_second_queue),
		T(test_rate_limited_ops),
		T(test_rate_limited_bandwidth),
		T(test_swap_file),
	};
#undef T
	return cmocka_run_group_tests_name("virtio_blk", tests, NULL, NULL);
}
