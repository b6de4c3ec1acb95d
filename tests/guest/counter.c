/*
 * counter — a guest whose progress lives in its memory, for snapshot tests:
 * it counts, and prints the count on the serial port every tick. A restored
 * snapshot must go on from the count it was saved at, not from 0. With blk=1
 * each tick also writes the count to sector 0 of the first virtio-blk disk and
 * reads it back (so queue indexes and the disk survive a restore); with rng=1
 * it also reads 16 bytes from the first virtio-rng device.
 *
 * Command line (all optional):
 *   ticks=N     stop after count N and power off (default 0: forever)
 *   tick_us=N   delay between ticks (default 20000)
 *   blk=1 rng=1 use those devices as above
 *   dirty=N     touch N pages of a 4 MiB buffer per tick (default 0), so a
 *               diff snapshot has guest-dirtied pages to carry
 *   spin=N      between ticks, keep writing the first N pages of that buffer
 *               (a byte past the one the checksum reads) as fast as it can:
 *               a guest that dirties memory continuously, for live
 *               migration's give-up rule
 *
 * Output:
 *   mote-test: counter start blk=<0|1> rng=<0|1>
 *   mote-test: count <n> sum=<checksum of the dirty buffer>   (n = 1, 2, ...)
 *   mote-test: done                                             (with ticks=N)
 * A virtio request that fails or returns other data ends in "mote-test: FAIL".
 */
#include "guest.h"
#include "pci.h"
#include "io.h"
#include "tsc.h"
#include "virtio.h"

#define T_IN 0
#define T_OUT 1
#define DIRTY_PAGES 1024

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static struct virtio_dev blkdev[VIRTIO_MAX_DEVICES], rngdev[VIRTIO_MAX_DEVICES];
static struct blk_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t sector_out[512] __attribute__((aligned(512)));
static uint8_t sector_in[512] __attribute__((aligned(512)));
static uint8_t random[16];
static uint8_t dirty_buf[DIRTY_PAGES * 4096] __attribute__((aligned(4096)));
/* The state a restore must bring back. */
static volatile uint64_t count;

static void blk_io(struct virtq *q, uint32_t type, uint8_t *data, const char *what)
{
	struct virtio_buf bufs[3] = {
		{ (uintptr_t)&hdr, sizeof(hdr), 0 },
		{ (uintptr_t)data, 512, type == T_IN },
		{ (uintptr_t)&status_byte, 1, 1 },
	};
	hdr = (struct blk_hdr){ .type = type, .sector = 0 };
	status_byte = 0xff;
	virtq_transfer(q, bufs, 3, 0, what);
	if (status_byte != 0)
		test_fail("counter: blk %s: status %u", what, status_byte);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void guest_main(void)
{
	uint64_t ticks = cmdline_u64("ticks", 0), tick_us = cmdline_u64("tick_us", 20000);
	uint64_t use_blk = cmdline_u64("blk", 0), use_rng = cmdline_u64("rng", 0);
	uint64_t dirty = cmdline_u64("dirty", 0), spin = cmdline_u64("spin", 0);
	struct virtq *bq = 0, *rq = 0;

	if (dirty > DIRTY_PAGES)
		dirty = DIRTY_PAGES;
	if (spin > DIRTY_PAGES)
		spin = DIRTY_PAGES;
	if (use_blk) {
		if (!virtio_probe(VIRTIO_ID_BLK, blkdev, VIRTIO_MAX_DEVICES))
			test_fail("counter: no virtio-blk device");
		virtio_init(&blkdev[0], 0, 1, 16);
		bq = &blkdev[0].vq[0];
	}
	if (use_rng) {
		if (!virtio_probe(VIRTIO_ID_RNG, rngdev, VIRTIO_MAX_DEVICES))
			test_fail("counter: no virtio-rng device");
		virtio_init(&rngdev[0], 0, 1, 16);
		rq = &rngdev[0].vq[0];
	}
	test_log("counter start blk=%lu rng=%lu", use_blk ? 1ul : 0ul, use_rng ? 1ul : 0ul);
	for (;;) {
		uint64_t n = ++count, sum = 0;
		for (uint64_t p = 0; p < dirty; p++)
			dirty_buf[((n * 7 + p) % DIRTY_PAGES) * 4096] = (uint8_t)n;
		for (uint64_t p = 0; p < DIRTY_PAGES; p++)
			sum += dirty_buf[p * 4096];
		if (bq) {
			put_u64(sector_out, n);
			blk_io(bq, T_OUT, sector_out, "write");
			blk_io(bq, T_IN, sector_in, "read");
			if (get_u64(sector_in) != n)
				test_fail("counter: disk holds %lu, wrote %lu", get_u64(sector_in), n);
		}
		if (rq) {
			struct virtio_buf b = { (uintptr_t)random, sizeof(random), 1 };
			uint32_t len = virtq_transfer(rq, &b, 1, 0, "rng");
			if (!len || len > sizeof(random))
				test_fail("counter: rng returned %u bytes", len);
		}
		test_log("count %lu sum=%lu", n, sum);
		if (ticks && n >= ticks)
			test_done();
		if (!spin) {
			tsc_delay_us(tick_us);
			continue;
		}
		uint64_t end = tsc_deadline_us(tick_us);
		for (uint64_t k = 0; rdtsc() < end; k++)
			((volatile uint8_t *)dirty_buf)[(k % spin) * 4096 + 8] = (uint8_t)k;
	}
}
