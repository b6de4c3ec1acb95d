/* libFuzzer harness for src/virtio/net.c: the input is a guest-memory image
 * behind a 16-byte header; the harness sets up the receive and transmit
 * queues over it as a driver would have, with a feature set from the header,
 * kicks the transmit queue (every frame is popped, its header checked, and
 * sent or dropped) and, when asked, feeds one received frame through the
 * receive queue. A fake back end stands in for the tap or slirp.
 *
 * Oracles: ASan/UBSan for mote's own accesses (guest RAM lies between
 * PROT_NONE pages); the fake back end aborts on any frame the device should
 * have dropped — a header with flags, GSO type or checksum offsets the
 * negotiated features do not allow, a frame shorter than an Ethernet header
 * or longer than 64 KiB + header, a header towards a back end without vnet
 * headers — and reads every byte it is given; every transmit chain popped
 * must be returned unless the ring broke; reset must leave the device idle.
 *
 * Header (little-endian):
 *   0      log2 of both queue sizes (mod 9: 1..256)
 *   1      bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 tap-like back end
 *          (vnet header) rather than slirp-like, bit 3 MRG_RXBUF, bit 4 CSUM and
 *          HOST_TSO4/6, bit 5 GUEST_CSUM and GUEST_TSO4/6, bit 6 receive a frame,
 *          bit 7 ring addresses used as given (otherwise aligned down)
 *   2..7   transmit queue: descriptor table, avail ring, used ring (0..0xffff)
 *   8..13  receive queue: the same
 *   14..15 length of the received frame (its bytes: the image from 0x8000,
 *          vnet header first for the tap-like back end)
 * Image: RAM at [0, 0x10000). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#include "backend/net.h"
#include "util/evloop.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/net.h"

#define HDR	 16
#define PAGE	 4096u
#define RAM_SIZE 0x10000u
#define RX_SRC	 0x8000u
#define LIVE                                                                                       \
	(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |            \
	 VIRTIO_STATUS_DRIVER_OK)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fake {
	struct net_backend nb;
	const uint8_t *rx;
	size_t rx_len;
	bool rx_pending;
};

static uint8_t *ram;
static struct guest_mem mem;
static struct evloop loop;
static struct fake fakes[2];
static struct virtio_dev *devs[2];
static uint64_t features;
static volatile uint8_t sink;
static unsigned long sent[2], received[2]; /* frames, per back end (FUZZ_NET_STATS=1) */

static void stats(void)
{
	fprintf(stderr, "fuzz_net: sent slirp-like %lu tap-like %lu, received %lu %lu\n", sent[0],
		sent[1], received[0], received[1]);
}

static uint8_t *guarded(size_t size)
{
	uint8_t *p = mmap(NULL, size + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + PAGE, size, PROT_READ | PROT_WRITE))
		abort();
	return p + PAGE;
}

static void bad(const char *why)
{
	fprintf(stderr, "fuzz_net: the device sent a frame it should have dropped: %s\n", why);
	abort();
}

static int fake_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
	uint8_t h[NET_HDR_LEN];
	size_t total = 0, got = 0;
	for (int i = 0; i < iovcnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		for (size_t j = 0; j < iov[i].iov_len; j++, got++) {
			sink ^= p[j]; /* every byte must be readable */
			if (nb->vnet_hdr && got < NET_HDR_LEN)
				h[got] = p[j];
		}
		total += iov[i].iov_len;
	}
	size_t flen = nb->vnet_hdr ? total - NET_HDR_LEN : total;
	sent[nb->vnet_hdr]++;
	if (nb->vnet_hdr && total < NET_HDR_LEN)
		bad("no header");
	if (flen < 14 || flen > NET_MAX_FRAME)
		bad("frame length");
	if (!nb->vnet_hdr)
		return 0;
	uint8_t flags = h[0], gso = h[1];
	if (flags & ~1)
		bad("header flags");
	if ((flags & 1) && (!(features & 1) ||
			    (size_t)get_le16(h + 6) + get_le16(h + 8) + 2 > flen))
		bad("checksum offload");
	if (gso != 0 && (!(gso == 1 || gso == 4) || !(features & (1ull << (gso == 1 ? 11 : 12))) ||
			 !(flags & 1) || !get_le16(h + 4) || get_le16(h + 2) > flen))
		bad("GSO");
	if (get_le16(h + 10))
		bad("num_buffers");
	return 0;
}

static ssize_t fake_recv(struct net_backend *nb, void *buf, size_t len)
{
	struct fake *f = (struct fake *)nb;
	if (!f->rx_pending)
		return -EAGAIN;
	f->rx_pending = false;
	received[nb->vnet_hdr]++;
	size_t n = MIN(len, f->rx_len);
	memcpy(buf, f->rx, n);
	return (ssize_t)n;
}

static void fake_rx_watch(struct net_backend *nb, bool on) {}
static int fake_set_offload(struct net_backend *nb, unsigned offloads)
{
	return nb->vnet_hdr || !offloads ? 0 : -ENOTSUP;
}
static void fake_destroy(struct net_backend *nb) {}

static const struct net_backend_ops fake_ops = {
	.send = fake_send,
	.recv = fake_recv,
	.rx_watch = fake_rx_watch,
	.set_offload = fake_set_offload,
	.destroy = fake_destroy,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	ram = guarded(RAM_SIZE);
	const struct guest_region r = { .gpa = 0, .size = RAM_SIZE, .hva = ram };
	if (guest_mem_init_static(&mem, &r, 1) || evloop_init(&loop))
		abort();
	if (getenv("FUZZ_NET_STATS"))
		atexit(stats);
	log_set_level(LOG_ERROR); /* dropped frames are expected, and logged at WARN */
	for (int i = 0; i < 2; i++) {
		struct vm_net net = { .kind = i ? VM_NET_TAP : VM_NET_USER,
				      .mac = { 2, 0, 0, 0, 0, 1 } };
		snprintf(net.id, sizeof(net.id), "fuzz%d", i);
		fakes[i].nb = (struct net_backend){ .ops = &fake_ops, .vnet_hdr = i == 1 };
		int err;
		devs[i] = virtio_net_create(&mem, &loop, &net, &fakes[i].nb, &err);
		if (!devs[i])
			abort();
	}
	return 0;
}

/* Runs what the device left for the event loop (its wake-up eventfd). */
static void dispatch(void)
{
	struct epoll_event ev[4];
	int n = epoll_wait(loop.epfd, ev, 4, 0);
	for (int i = 0; i < n; i++) {
		struct evloop_source *src = ev[i].data.ptr;
		src->fn(src, ev[i].events);
	}
}

static bool queue(struct virtq *vq, uint16_t qsize, const uint8_t *a, uint8_t flags)
{
	uint64_t desc = get_le16(a), avail = get_le16(a + 2), used = get_le16(a + 4);
	if (!(flags & 128)) {
		desc &= ~15ull;
		avail &= ~1ull;
		used &= ~3ull;
	}
	return vq_init(vq, &mem, qsize, desc, avail, used, flags & 1, flags & 2) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	size_t n = MIN(size - HDR, RAM_SIZE);
	memcpy(ram, data + HDR, n);
	memset(ram + n, 0, RAM_SIZE - n);

	uint16_t qsize = (uint16_t)(1u << (data[0] % 9));
	uint8_t flags = data[1];
	int which = flags & 4 ? 1 : 0;
	struct virtio_dev *dev = devs[which];
	features = 1ull << VIRTIO_F_VERSION_1 | 1ull << 5 | 1ull << 16;
	if (flags & 1)
		features |= 1ull << VIRTIO_F_EVENT_IDX;
	if (flags & 2)
		features |= 1ull << VIRTIO_F_INDIRECT_DESC;
	if (flags & 8)
		features |= 1ull << 15;
	if (flags & 16)
		features |= 1ull << 0 | 1ull << 11 | 1ull << 12;
	if (flags & 32)
		features |= 1ull << 1 | 1ull << 7 | 1ull << 8;
	features &= dev->host_features; /* the transport refuses anything else */

	pthread_mutex_lock(&dev->lock);
	if (!queue(&dev->vq[1], qsize, data + 2, flags) ||
	    !queue(&dev->vq[0], qsize, data + 8, flags)) {
		virtio_set_status(dev, 0);
		pthread_mutex_unlock(&dev->lock);
		return 0;
	}
	dev->features = features;
	dev->status = LIVE;
	if (dev->ops->activate(dev) == 0) {
		dev->ops->notify(dev, 1);
		struct virtq *tx = &dev->vq[1];
		if (!(dev->status & VIRTIO_STATUS_NEEDS_RESET) && tx->last_avail != tx->used_idx) {
			fprintf(stderr, "fuzz_net: %u transmit chains not returned\n",
				(uint16_t)(tx->last_avail - tx->used_idx));
			abort();
		}
		if (flags & 64) {
			fakes[which].rx = ram + RX_SRC;
			fakes[which].rx_len = get_le16(data + 14) % (RAM_SIZE - RX_SRC);
			fakes[which].rx_pending = true;
			dev->ops->notify(dev, 0);
		}
	}
	pthread_mutex_unlock(&dev->lock);
	dispatch();
	pthread_mutex_lock(&dev->lock);
	virtio_set_status(dev, 0);
	if (dev->status != 0 || dev->vq[0].size || dev->vq[1].size || dev->features)
		abort();
	pthread_mutex_unlock(&dev->lock);
	fakes[which].rx_pending = false;
	return 0;
}
