/* libFuzzer harness for src/virtio/vsock.c: the input is a guest-memory image
 * behind a 16-byte header. The harness sets up the rx and tx queues over it
 * as a driver would have, with real Unix sockets on the host side: the
 * device listens on DIR/v.sock, and the harness listens on DIR/v.sock_52 (so
 * a guest REQUEST to port 52 connects) and may connect to DIR/v.sock itself
 * with a CONNECT line. It kicks tx, runs the event loop (socket events), kicks
 * rx, and resets the device, which must drain and finish.
 *
 * Oracles: ASan/UBSan for mote's accesses; guest RAM lies between PROT_NONE
 * pages; a reset that never finishes aborts; after the reset the device must
 * be idle (status 0) and every connection's socket closed (the process holds
 * as many sockets as before).
 *
 * Header:
 *   0      bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 a host client sends
 *          "CONNECT <port>\n" before the kicks, bit 3 host peers write data,
 *          bit 4 host peers close, bit 5 a second tx kick at the end, after
 *          tx avail.idx grew by byte 3 (so a second batch of packets can
 *          follow the device's answers, as a driver's would)
 *   1, 2   log2 of the rx / tx queue size (mod 5: 1..16)
 *   3      how many tx chains the second batch makes available
 *   4..7   the port of the CONNECT line (little-endian)
 *   8..15  reserved
 * Rings: tx desc 0x0, avail 0x100, used 0x140; rx desc 0x200, avail 0x300,
 * used 0x340. RAM: [0, 0x10000). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "util/evloop.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/vsock.h"

#define HDR	  16
#define PAGE	  4096u
#define RAM_SIZE  0x10000u
#define MAX_PEERS 64
#define LIVE                                                                                       \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram;
static struct guest_mem mem;
static struct evloop loop;
static struct virtio_dev *dev;
static char uds[128];
static int port_listener = -1;
static int peers[MAX_PEERS];
static unsigned nr_peers;

static void no_interrupt(struct virtio_dev *d, unsigned q) {}

/* Open sockets (libFuzzer opens files and pipes of its own as it goes). */
static unsigned open_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;
	if (!d)
		abort();
	while ((e = readdir(d))) {
		char path[300], target[64];
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		ssize_t len = readlink(path, target, sizeof(target) - 1);
		n += len > 7 && !memcmp(target, "socket:", 7);
	}
	closedir(d);
	return n;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t *p = mmap(NULL, RAM_SIZE + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + PAGE, RAM_SIZE, PROT_READ | PROT_WRITE))
		abort();
	ram = p + PAGE;
	const struct guest_region regions[] = { { .gpa = 0, .size = RAM_SIZE, .hva = ram } };
	if (guest_mem_init_static(&mem, regions, 1) || evloop_init(&loop))
		abort();
	static char dir[64];
	snprintf(dir, sizeof(dir), "/tmp/mote-fuzz-vsock-XXXXXX");
	if (!mkdtemp(dir))
		abort();
	snprintf(uds, sizeof(uds), "%s/v.sock", dir);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s_52", uds);
	port_listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (port_listener < 0 || bind(port_listener, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(port_listener, 128))
		abort();
	log_set_level(LOG_ERROR); /* the guest's bad packets are expected */
	struct vm_vsock cfg = { .enabled = true, .cid = 3, .uds = uds };
	int err;
	dev = virtio_vsock_create(&mem, &loop, &cfg, &err);
	if (!dev)
		abort();
	dev->interrupt = no_interrupt;
	return 0;
}

static void dispatch(int rounds)
{
	for (int i = 0; i < rounds; i++) {
		struct epoll_event ev[16];
		int n = epoll_wait(loop.epfd, ev, 16, 0);
		for (int k = 0; k < n; k++) {
			struct evloop_source *src = ev[k].data.ptr;
			src->fn(src, ev[k].events);
		}
		int fd;
		while (nr_peers < MAX_PEERS &&
		       (fd = accept4(port_listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
			peers[nr_peers++] = fd;
		if (n <= 0)
			break;
	}
}

static void kick(unsigned q)
{
	pthread_mutex_lock(&dev->lock);
	dev->ops->notify(dev, q);
	pthread_mutex_unlock(&dev->lock);
}

static bool resetting(void)
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

static int host_client(uint32_t port)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", uds);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		abort();
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\nhost data", port);
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n)
		abort();
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	static unsigned base_fds;
	if (!base_fds)
		base_fds = open_sockets();
	size_t n = MIN(size - HDR, (size_t)RAM_SIZE);
	memcpy(ram, data + HDR, n);
	memset(ram + n, 0, RAM_SIZE - n);
	uint8_t flags = data[0];
	uint16_t rxq = (uint16_t)(1u << (data[1] % 5)), txq = (uint16_t)(1u << (data[2] % 5));

	pthread_mutex_lock(&dev->lock);
	if (vq_init(&dev->vq[0], &mem, rxq, 0x200, 0x300, 0x340, flags & 1, flags & 2) ||
	    vq_init(&dev->vq[1], &mem, txq, 0x0, 0x100, 0x140, flags & 1, flags & 2))
		abort();
	dev->features = 1ull << VIRTIO_F_VERSION_1 | (flags & 1 ? 1ull << VIRTIO_F_EVENT_IDX : 0) |
			(flags & 2 ? 1ull << VIRTIO_F_INDIRECT_DESC : 0);
	dev->status = LIVE;
	pthread_mutex_unlock(&dev->lock);

	int client = -1;
	if (flags & 4) {
		client = host_client(get_le32(data + 4));
		dispatch(4);
	}
	kick(1);
	dispatch(4);
	if (flags & 8) {
		static const char msg[100] = "data from the host";
		for (unsigned i = 0; i < nr_peers; i++)
			send(peers[i], msg, sizeof(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	if (flags & 16) {
		for (unsigned i = 0; i < nr_peers; i++)
			close(peers[i]);
		nr_peers = 0;
	}
	dispatch(4);
	kick(0);
	dispatch(4);
	if (flags & 32) {
		put_le16(ram + 0x102, (uint16_t)(get_le16(ram + 0x102) + data[3]));
		kick(1);
		dispatch(4);
	}

	/* The driver resets the device: every connection goes. */
	pthread_mutex_lock(&dev->lock);
	virtio_set_status(dev, 0);
	pthread_mutex_unlock(&dev->lock);
	uint64_t end = now_ms() + 5000;
	while (resetting()) {
		if (now_ms() > end) {
			fprintf(stderr, "fuzz_vsock: reset never finished\n");
			abort();
		}
		dispatch(1);
	}
	if (dev->status != 0 || dev->vq[0].size || dev->vq[1].size)
		abort();
	if (client >= 0)
		close(client);
	for (unsigned i = 0; i < nr_peers; i++)
		close(peers[i]);
	nr_peers = 0;
	dispatch(4); /* the client's EOF closes it if it was still handshaking */
	if (open_sockets() != base_fds) {
		fprintf(stderr, "fuzz_vsock: %u sockets open, %u before\n", open_sockets(), base_fds);
		abort();
	}
	return 0;
}
