/* libFuzzer harness for src/virtio/blk.c: the input is a guest-memory image
 * behind a 16-byte header; the harness sets queue 0 up over it as a driver
 * would have, kicks the device (every available request is popped, checked
 * and started on a real io_uring over a small image file), lets the
 * completions land, and resets the device, which must drain and finish.
 *
 * Oracles: ASan/UBSan for mote's own accesses; guest RAM lies between
 * PROT_NONE pages, so an access past it crashes even where ASan does not
 * look, and an I/O the kernel does with a buffer outside guest RAM fails
 * with EFAULT, which the device logs ("Bad address") — the harness aborts on
 * that line; a reset that never finishes (requests lost) aborts; after the
 * reset the device must be idle (status 0, queue forgotten).
 *
 * Header (little-endian):
 *   0      log2 of the queue size (mod 11: 1..1024)
 *   1      bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 the read-only disk,
 *          bit 3 VIRTIO_BLK_F_FLUSH negotiated (else writes are write-through),
 *          bit 4 reset right after the kick (completions then dropped),
 *          bit 5 kick a second time after the completions,
 *          bit 6 ring addresses used as given (otherwise aligned down)
 *   2..7   descriptor table, avail ring, used ring: guest addresses 0..0xffff
 *   8..9   starting last_avail / used_idx
 *   10..15 reserved
 * Image: RAM at [0, 0x10000), then [2^64 - 0x1000, 2^64). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "util/evloop.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/blk.h"

#define HDR	  16
#define PAGE	  4096u
#define RAM0_SIZE 0x10000u
#define RAM1_GPA  (UINT64_MAX - 0xfffu)
#define RAM1_SIZE 0x1000u
#define IMG_SIZE  (64u * 1024)
#define F_FLUSH	  9
#define LIVE                                                                                       \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram0, *ram1;
static struct guest_mem mem;
static struct evloop loop;
static struct virtio_dev *rw_dev, *ro_dev;
static int log_fd = -1;
static unsigned interrupts;

/* size bytes of RAM with an inaccessible page on each side. */
static uint8_t *guarded(size_t size)
{
	uint8_t *p = mmap(NULL, size + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + PAGE, size, PROT_READ | PROT_WRITE))
		abort();
	return p + PAGE;
}

static void count_interrupt(struct virtio_dev *dev, unsigned q)
{
	interrupts++;
}

static struct virtio_dev *make_disk(const char *path, bool read_only, const char *id)
{
	struct vm_disk disk = {.path = path, .read_only = read_only};
	snprintf(disk.id, sizeof(disk.id), "%s", id);
	int err;
	struct virtio_dev *dev = virtio_blk_create(&mem, &loop, &disk, &err);
	if (!dev) {
		fprintf(stderr, "fuzz_blk: cannot create the disk on %s: %s\n", path,
			strerror(-err));
		abort();
	}
	return dev;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ram0 = guarded(RAM0_SIZE);
	ram1 = guarded(RAM1_SIZE);
	const struct guest_region regions[] = {
		{.gpa = 0, .size = RAM0_SIZE, .hva = ram0},
		{.gpa = RAM1_GPA, .size = RAM1_SIZE, .hva = ram1},
	};
	if (guest_mem_init_static(&mem, regions, 2) || evloop_init(&loop))
		abort();

	/* A small image, on tmpfs where there is one (fdatasync is then free). */
	static char path[256];
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(path, sizeof(path), "%s/mote-fuzz-blk-XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0 || ftruncate(fd, IMG_SIZE) < 0)
		abort();
	static uint8_t img[IMG_SIZE];
	for (unsigned i = 0; i < IMG_SIZE; i++)
		img[i] = (uint8_t)(i * 7 + 1);
	if (pwrite(fd, img, sizeof(img), 0) != (ssize_t)sizeof(img))
		abort();
	close(fd);
	rw_dev = make_disk(path, false, "fuzz-rw");
	ro_dev = make_disk(path, true, "fuzz-ro-0123456789ab");
	unlink(path); /* both are open; nothing is left behind */

	/* The device's log goes to a memfd the harness reads (and truncates). */
	log_fd = memfd_create("fuzz-blk-log", MFD_CLOEXEC);
	if (log_fd < 0)
		abort();
	log_set_fd(log_fd);
	return 0;
}

static void load_image(const uint8_t *img, size_t len)
{
	uint8_t *const parts[] = {ram0, ram1};
	const size_t sizes[] = {RAM0_SIZE, RAM1_SIZE};
	for (unsigned i = 0; i < 2; i++) {
		size_t n = MIN(len, sizes[i]);
		memcpy(parts[i], img, n);
		memset(parts[i] + n, 0, sizes[i] - n);
		img += n;
		len -= n;
	}
}

static void kick(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	dev->ops->notify(dev, 0);
	pthread_mutex_unlock(&dev->lock);
}

/* Runs the event loop (the io_uring completion source) once. */
static int dispatch(int timeout_ms)
{
	struct epoll_event ev[4];
	int n = epoll_wait(loop.epfd, ev, 4, timeout_ms);
	for (int i = 0; i < n; i++) {
		struct evloop_source *src = ev[i].data.ptr;
		src->fn(src, ev[i].events);
	}
	return n;
}

static bool resetting(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	bool r = dev->resetting;
	pthread_mutex_unlock(&dev->lock);
	return r;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Lets the requests started complete: every chain popped is pushed back,
 * except the one a device that needs a reset gave up on. Bounded (2 s): a
 * request that never completes is caught by reset_and_drain(). */
static void settle(struct virtio_dev *dev)
{
	const struct virtq *vq = &dev->vq[0];
	uint64_t end = now_ms() + 2000;
	for (;;) {
		pthread_mutex_lock(&dev->lock);
		uint16_t outstanding = (uint16_t)(vq->last_avail - vq->used_idx);
		bool broken = dev->status & VIRTIO_STATUS_NEEDS_RESET;
		pthread_mutex_unlock(&dev->lock);
		if (outstanding <= (broken ? 1 : 0) || now_ms() > end)
			return;
		dispatch(1);
	}
}

/* The driver resets the device: device_status must reach 0 once the back
 * end drained, and nothing of the queue may survive. */
static void reset_and_drain(struct virtio_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	virtio_set_status(dev, 0);
	pthread_mutex_unlock(&dev->lock);
	uint64_t end = now_ms() + 5000;
	while (resetting(dev)) {
		if (now_ms() > end) {
			fprintf(stderr, "fuzz_blk: reset never finished\n");
			abort();
		}
		dispatch(10);
	}
	if (dev->status != 0 || dev->vq[0].size != 0 || dev->features != 0)
		abort();
}

/* An I/O with a buffer outside guest RAM fails with EFAULT, which the device
 * logs: that must never happen. */
static void check_log(void)
{
	static char buf[8192];
	ssize_t n = pread(log_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (strstr(buf, "Bad address")) {
		fprintf(stderr, "fuzz_blk: I/O outside guest RAM:\n%s", buf);
		abort();
	}
	if (ftruncate(log_fd, 0) < 0 || lseek(log_fd, 0, SEEK_SET) < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	load_image(data + HDR, size - HDR);

	uint16_t qsize = (uint16_t)(1u << (data[0] % 11));
	uint8_t flags = data[1];
	uint64_t desc = get_le16(data + 2), avail = get_le16(data + 4), used = get_le16(data + 6);
	if (!(flags & 64)) {
		desc &= ~15ull;
		avail &= ~1ull;
		used &= ~3ull;
	}
	struct virtio_dev *dev = flags & 4 ? ro_dev : rw_dev;
	struct virtq *vq = &dev->vq[0];
	if (vq_init(vq, &mem, qsize, desc, avail, used, flags & 1, flags & 2))
		return 0; /* the transport would have refused the queue */
	vq->last_avail = vq->used_idx = vq->signalled_used = get_le16(data + 8);
	dev->features = 1ull << VIRTIO_F_VERSION_1 | (flags & 1 ? 1ull << VIRTIO_F_EVENT_IDX : 0) |
			(flags & 2 ? 1ull << VIRTIO_F_INDIRECT_DESC : 0) |
			(flags & 8 ? 1ull << F_FLUSH : 0);
	dev->status = LIVE;
	dev->interrupt = count_interrupt;

	kick(dev);
	if (!(flags & 16)) {
		settle(dev);
		if ((flags & 32) && !(dev->status & VIRTIO_STATUS_NEEDS_RESET)) {
			kick(dev);
			settle(dev);
		}
	}
	reset_and_drain(dev);
	check_log();
	return 0;
}
