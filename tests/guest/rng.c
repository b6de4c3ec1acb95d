/*
 * rng — exercises a virtio entropy device (virtio 1.2 section 5.4) through the
 * modern virtio-pci transport; with hostile=1 also sends malformed requests.
 *
 * Command line (all optional):
 *   hostile=1     after the normal requests, the hostile cases below
 *   qsize=N       queue size to ask for (default 16, at most 256)
 *   noise=1       every other vCPU adds noise meanwhile (lib/noise.h); prints
 *                 "mote-test: rng noise cpus=<n>" first
 *   pci_assign=1  assign the device's BARs anew (tests pci.c's assignment)
 *
 * Output:
 *   mote-test: rng pci=<bb:dd.f> qsize=<n> features=0x<negotiated>
 *   mote-test: hostile readable-only ok (needs-reset|len=0)   or ... FAIL <why>
 *   mote-test: hostile addr-oob ok (needs-reset|len=0)        or ... FAIL <why>
 *   mote-test: rng ok bytes=<total bytes the device returned>
 *   mote-test: done
 *
 * Requests: 1, 64 (twice, which must differ), 4096 bytes, and one chain of two
 * writable buffers (32 + 100 bytes). Every used length must be 1..requested
 * (section 5.4.6: the device may return fewer bytes than asked for). Only the
 * first device found is used.
 */
#include "guest.h"
#include "noise.h"
#include "pci.h"
#include "virtio.h"

#define HOSTILE_TIMEOUT_US	2000000
#define DIFFER_TRIES		4

static struct virtio_dev devs[VIRTIO_MAX_DEVICES];
static uint8_t one[1];
static uint8_t r64a[64], r64b[64];
static uint8_t page[4096] __attribute__((aligned(4096)));
static uint8_t part1[32], part2[100];
static uint64_t total;

static struct virtio_buf wr(void *p, uint32_t len)
{
	return (struct virtio_buf){ (uintptr_t)p, len, 1 };
}

/* One request of writable buffers; returns the used length, checked. */
static uint32_t rng_read(struct virtq *q, const struct virtio_buf *bufs, unsigned n,
			 const char *what)
{
	uint32_t want = 0, len;
	unsigned i;

	for (i = 0; i < n; i++)
		want += bufs[i].len;
	len = virtq_transfer(q, bufs, n, 0, what);
	if (!len || len > want)
		test_fail("rng %s: used len %u for %u bytes asked", what, len, want);
	total += len;
	return len;
}

static uint32_t read_one(struct virtq *q, void *p, uint32_t len, const char *what)
{
	struct virtio_buf b = wr(p, len);

	memset(p, 0, len);
	return rng_read(q, &b, 1, what);
}

static void normal_requests(struct virtq *q)
{
	struct virtio_buf two[2] = { wr(part1, sizeof(part1)), wr(part2, sizeof(part2)) };
	uint32_t la, lb, len, i;
	int tries;

	read_one(q, one, 1, "1 byte");

	/* Two 64-byte reads must differ where both were filled. */
	for (tries = 0;; tries++) {
		la = read_one(q, r64a, sizeof(r64a), "64 bytes");
		lb = read_one(q, r64b, sizeof(r64b), "64 bytes again");
		len = la < lb ? la : lb;
		if (memcmp(r64a, r64b, len))
			break;
		/* Identical short answers can be chance; 16 equal bytes are not. */
		if (len >= 16 || tries + 1 == DIFFER_TRIES)
			test_fail("rng: two 64-byte reads returned the same %u bytes", len);
	}

	len = read_one(q, page, sizeof(page), "4096 bytes");
	for (i = 0; i < len && !page[i]; i++)
		;
	if (len >= 64 && i == len)
		test_fail("rng: 4096-byte read returned %u zero bytes", len);

	memset(part1, 0, sizeof(part1));
	memset(part2, 0, sizeof(part2));
	rng_read(q, two, 2, "two buffers");
}

/* hostile=1 --------------------------------------------------------------- */

static int hostile_case(struct virtio_dev *d, const char *name,
			const struct virtio_buf *buf)
{
	struct virtq *q = &d->vq[0];
	struct virtq_used_elem e;
	uint64_t features = d->features;
	uint8_t s;
	int r, failed = 0;

	virtq_submit(q, buf, 1);
	virtq_notify(q);
	r = virtq_wait(q, HOSTILE_TIMEOUT_US, &e);
	s = virtio_status(d);
	if (s & VIRTIO_STATUS_NEEDS_RESET) {
		test_log("hostile %s ok (needs-reset)", name);
	} else if (r == VIRTQ_DONE && e.len == 0) {
		test_log("hostile %s ok (len=0)", name);
	} else if (r == VIRTQ_DONE) {
		test_log("hostile %s FAIL completed with used len %u", name, e.len);
		failed = 1;
	} else {
		test_log("hostile %s FAIL no completion and device_status 0x%x", name, s);
		failed = 1;
	}

	virtio_reset(d);
	if (virtio_init(d, features, 1, q->size) != features)
		test_fail("rng hostile %s: features 0x%lx after reset, were 0x%lx", name,
			  d->features, features);
	read_one(&d->vq[0], r64a, sizeof(r64a), "read after hostile");
	return failed;
}

static int run_hostile(struct virtio_dev *d)
{
	struct virtio_buf b;
	int failed = 0;

	/* A chain with nothing for the device to write into. */
	b = (struct virtio_buf){ (uintptr_t)r64a, sizeof(r64a), 0 };
	failed += hostile_case(d, "readable-only", &b);
	b = wr(NULL, 64);
	b.addr = virtio_outside_ram(64, 0);
	failed += hostile_case(d, "addr-oob", &b);
	return failed;
}

void guest_main(void)
{
	uint64_t qsize = cmdline_u64("qsize", 16);
	int hostile = cmdline_u64("hostile", 0) != 0, failed = 0;
	int noise = cmdline_u64("noise", 0) != 0;
	uint64_t counted;
	struct virtio_dev *d = &devs[0];
	char pci[8];

	pci_set_reassign(cmdline_u64("pci_assign", 0) != 0);
	if (!qsize || qsize > VIRTQ_MAX_SIZE)
		test_fail("rng: qsize=%lu is not 1-%d", qsize, VIRTQ_MAX_SIZE);
	if (!virtio_probe(VIRTIO_ID_RNG, devs, VIRTIO_MAX_DEVICES))
		test_fail("rng: no virtio-rng device on PCI bus 0");
	if (noise)
		test_log("rng noise cpus=%u", noise_start() + 1);
	virtio_init(d, 0, 1, (uint16_t)qsize);
	test_log("rng pci=%s qsize=%u features=0x%lx", pci_name(&d->pci, pci),
		 d->vq[0].size, d->features);
	normal_requests(&d->vq[0]);
	counted = total;
	if (hostile)
		failed = run_hostile(d);
	virtio_reset(d);
	if (failed)
		test_fail("rng: %d hostile case(s) failed", failed);
	if (noise)
		noise_stop();
	test_log("rng ok bytes=%lu", counted);
	test_done();
}
