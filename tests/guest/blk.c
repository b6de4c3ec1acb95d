/*
 * blk — exercises virtio-blk devices (virtio 1.2 section 5.2) through the
 * modern virtio-pci transport, and with hostile=1 sends malformed chains.
 *
 * Command line (all optional):
 *   blk=rw|ro[,rw|ro...]  what each device (in PCI order) must be; checked
 *                         against VIRTIO_BLK_F_RO, and the device count must match
 *   pattern=1             the host wrote sector N's first 8 bytes as the
 *                         little-endian u64 N: check it (first 64 MiB and the last sector)
 *   hostile=1             after the normal tests, broken chains on the first device
 *   qsize=N               queue size to ask for (default 16, 128 with bench=; at most 256)
 *   indirect=0            decline VIRTIO_F_INDIRECT_DESC
 *   pci_assign=1          assign the device's BARs anew (tests pci.c's assignment)
 *   noise=1               every other vCPU adds noise meanwhile (lib/noise.h);
 *                         prints "mote-test: blk noise cpus=<n>" first
 *   bench=N [depth=D] [qd1=M] [event_idx=0]
 *                         benchmark instead of testing (see below)
 *   writer=N [seed=S] [total=T | secs=S] [gap_us=G]  storage-migration workload
 *                         (see below)
 *
 * bench=N (first device only; nothing else is tested, nothing is written):
 * N reads of 4 KiB (8 sectors) at sequential offsets 0, 4096, ... wrapping at
 * the capacity (rounded down to 4 KiB), with up to depth=D requests in flight
 * (default: as many as the queue holds), polling the used ring; then, with
 * qd1=M, M more reads one at a time. qsize defaults to 128 here. Each request
 * is one indirect descriptor (header, data, status), as Linux lays them out,
 * or three ring descriptors with indirect=0 (a third as many in flight).
 * EVENT_IDX is negotiated when offered (event_idx=0 declines it): the driver
 * kicks only when avail_event asks for it (without it: unless used.flags has
 * NO_NOTIFY) and keeps used_event far ahead (no interrupts: MSI-X vectors are
 * NO_VECTOR anyway). Each completion is checked (id, used length 4097,
 * status OK) and its slot sent off again at once; after each pass over the
 * used ring the driver publishes avail.idx once and kicks at most once.
 * Output, one line per pass (cycles: RDTSC from before the first submission
 * to after the last completion):
 *   mote-test: blk bench n=<N> cycles=<C> depth=<D> kicks=<notifications>
 *   mote-test: done
 * (after the device's "blk capacity=..." line, which comes first as below).
 *
 * writer=N (first device only): writes 4 KiB blocks at pseudo-random aligned
 * offsets (xorshift from seed=S, default 1) with pseudo-random contents,
 * flushing every 64 writes, until the device's config_generation changes (the
 * host switched the disk to its migrated copy) and then N more; then reads the
 * whole disk back and prints a hash of it (FNV-1a over 64-bit words), which
 * the host compares with the file it ends up with:
 *   mote-test: blk writer start
 *   mote-test: blk writer switched after=<writes>
 *   mote-test: blk writer writes=<total> hash=<hex>
 *   mote-test: done
 * Without a switch within 2^24 writes it fails. With total=T it needs no
 * switch: it stops after T writes (a live migration with the disk copied
 * happens under it, unseen); with secs=S it stops after S seconds of
 * writing (by the TSC) instead, however fast the host; gap_us=G waits G us
 * after each write (a gentler writer).
 *
 * Output, per device:
 *   mote-test: blk capacity=<sectors> ro=<0|1> seg_max=<n> blk_size=<n> flush=<0|1>
 *              discard=<0|1> write_zeroes=<0|1> indirect=<0|1> qsize=<n> pci=<bb:dd.f>
 *   mote-test: blk pattern ok sectors=<n>            (pattern=1)
 *   mote-test: blk id=<GET_ID string>
 *   mote-test: blk rw ok | mote-test: blk ro ok
 * then with hostile=1, one line per case (first device only):
 *   mote-test: hostile <case> ok (needs-reset|status=<n>)    or   ... FAIL <why>
 *   cases: next-oob loop long-chain addr-oob addr-straddle addr-wrap
 *          write-before-read nested-indirect avail-jump
 *   (addr-straddle and nested-indirect print "skipped" when not applicable)
 * and finally
 *   mote-test: blk ok
 *   mote-test: done
 *
 * What a writable disk holds afterwards (the host may check):
 *   sector 1: "mote-blk-written" then 496 zero bytes (written last, then flushed)
 *   sectors 2, 4-7 and the last: bytes 0-7 the LE u64 N, byte i >= 8 = (N * 31 + i) & 0xff
 *   sectors 8-15: zero when WRITE_ZEROES was offered (else the pattern above)
 *   sectors 16-23: discarded when DISCARD was offered (contents unspecified)
 *   every other sector: untouched. The disk needs at least 32 sectors.
 * A read-only disk is left as it was.
 */
#include "guest.h"
#include "noise.h"
#include "pci.h"
#include "virtio.h"

#define SECTOR			512
#define MIN_SECTORS		32
#define PATTERN_MAX_SECTORS	131072		/* 64 MiB checked at most */
#define HOSTILE_TIMEOUT_US	2000000
#define HOSTILE_GRACE_US	100000

/* Section 5.2.3: feature bits. */
#define BLK_F_SIZE_MAX		1
#define BLK_F_SEG_MAX		2
#define BLK_F_RO		5
#define BLK_F_BLK_SIZE		6
#define BLK_F_FLUSH		9
#define BLK_F_DISCARD		13
#define BLK_F_WRITE_ZEROES	14

/* Section 5.2.4: configuration layout. */
#define CFG_CAPACITY		0
#define CFG_SIZE_MAX		8
#define CFG_SEG_MAX		12
#define CFG_BLK_SIZE		20
#define CFG_MAX_DISCARD_SECTORS	36
#define CFG_MAX_DISCARD_SEG	40
#define CFG_DISCARD_ALIGN	44
#define CFG_MAX_WZ_SECTORS	48
#define CFG_MAX_WZ_SEG		52

/* Section 5.2.6: request types and status values. */
#define T_IN			0
#define T_OUT			1
#define T_FLUSH			4
#define T_GET_ID		8
#define T_DISCARD		11
#define T_WRITE_ZEROES		13
#define T_UNDEFINED		200	/* no request type has this number */
#define S_OK			0
#define S_IOERR			1
#define S_UNSUPP		2
#define ID_BYTES		20

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_seg {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

struct blk {
	struct virtio_dev *v;
	struct virtq *q;
	uint64_t want;
	uint16_t qsize;
	uint64_t capacity;
	uint32_t seg_max, size_max, blk_size;
	int ro;
};

static struct virtio_dev devs[VIRTIO_MAX_DEVICES];
static int pattern;

static struct blk_hdr hdr __attribute__((aligned(16)));
static uint8_t status_byte;
static struct blk_seg seg __attribute__((aligned(16)));
static uint8_t buf_a[4096] __attribute__((aligned(4096)));
static uint8_t buf_b[4096] __attribute__((aligned(4096)));
static uint8_t buf_c[4096] __attribute__((aligned(4096)));
static uint8_t want_buf[4096] __attribute__((aligned(4096)));
static struct virtq_desc hostile_table[VIRTQ_MAX_SIZE + 1] __attribute__((aligned(16)));
static struct virtq_desc nested_table[2] __attribute__((aligned(16)));
static uint8_t id_buf[ID_BYTES];
static uint8_t junk[16];

static uint8_t status_now(void)
{
	return *(volatile uint8_t *)&status_byte;
}

static struct virtio_buf rd(const void *p, uint32_t len)
{
	return (struct virtio_buf){ (uintptr_t)p, len, 0 };
}

static struct virtio_buf wr(void *p, uint32_t len)
{
	return (struct virtio_buf){ (uintptr_t)p, len, 1 };
}

/*
 * One request: header, the data buffers, a status byte. Returns the status,
 * having checked the used length: never more than the writable bytes, and
 * all of them when the request succeeded.
 */
static uint8_t blk_req(struct blk *b, uint32_t type, uint64_t sector,
		       const struct virtio_buf *data, unsigned ndata, int indirect,
		       const char *what)
{
	struct virtio_buf bufs[4];
	uint32_t writable = 1, len;
	unsigned i, n = 0;
	uint8_t s;

	if (ndata > 2)
		test_fail("blk: %u data buffers", ndata);
	hdr = (struct blk_hdr){ .type = type, .sector = sector };
	status_byte = 0xff;
	bufs[n++] = rd(&hdr, sizeof(hdr));
	for (i = 0; i < ndata; i++) {
		bufs[n++] = data[i];
		if (data[i].write)
			writable += data[i].len;
	}
	bufs[n++] = wr(&status_byte, 1);
	len = virtq_transfer(b->q, bufs, n, indirect, what);
	s = status_now();
	if (s == 0xff)
		test_fail("blk %s: completed without a status (used len %u)", what, len);
	if (len > writable)
		test_fail("blk %s: used len %u, only %u bytes writable", what, len,
			  writable);
	if (s == S_OK && len != writable)
		test_fail("blk %s: used len %u after success, %u written", what, len,
			  writable);
	return s;
}

static void expect_status(uint8_t got, uint8_t want, const char *what)
{
	if (got != want)
		test_fail("blk %s: status %u, expected %u", what, got, want);
}

/* Data written by the tests: the sector number, then bytes derived from it. */
static void fill_sector(uint8_t *p, uint64_t n)
{
	memcpy(p, &n, 8);
	for (unsigned i = 8; i < SECTOR; i++)
		p[i] = (uint8_t)(n * 31 + i);
}

static void read_sectors(struct blk *b, uint64_t sector, void *buf, uint32_t count,
			 int indirect, const char *what)
{
	struct virtio_buf d = wr(buf, count * SECTOR);

	memset(buf, 0xa5, count * SECTOR);
	expect_status(blk_req(b, T_IN, sector, &d, 1, indirect, what), S_OK, what);
}

static void write_sectors(struct blk *b, uint64_t sector, const void *buf,
			  uint32_t count, const char *what)
{
	struct virtio_buf d = rd(buf, count * SECTOR);

	expect_status(blk_req(b, T_OUT, sector, &d, 1, 0, what), S_OK, what);
}

static void compare(const void *got, const void *want, uint32_t len, const char *what)
{
	const uint8_t *g = got, *w = want;

	for (uint32_t i = 0; i < len; i++) {
		if (g[i] != w[i])
			test_fail("blk %s: byte %u reads 0x%02x, expected 0x%02x", what,
				  i, g[i], w[i]);
	}
}

static void flush(struct blk *b, const char *what)
{
	if (b->v->features & VIRTIO_BIT(BLK_F_FLUSH))
		expect_status(blk_req(b, T_FLUSH, 0, NULL, 0, 0, what), S_OK, what);
}

static int has(const struct blk *b, unsigned bit)
{
	return (b->v->features & VIRTIO_BIT(bit)) != 0;
}

static void blk_setup(struct blk *b)
{
	uint8_t gen;

	virtio_init(b->v, b->want, 1, b->qsize);
	b->q = &b->v->vq[0];
	do {
		gen = virtio_cfg_begin(b->v);
		b->capacity = virtio_cfg64(b->v, CFG_CAPACITY);
		b->size_max = has(b, BLK_F_SIZE_MAX) ? virtio_cfg32(b->v, CFG_SIZE_MAX) : 0;
		b->seg_max = has(b, BLK_F_SEG_MAX) ? virtio_cfg32(b->v, CFG_SEG_MAX) : 0;
		b->blk_size = has(b, BLK_F_BLK_SIZE) ? virtio_cfg32(b->v, CFG_BLK_SIZE) :
						       SECTOR;
	} while (virtio_cfg_end(b->v, gen));
	b->ro = has(b, BLK_F_RO);
}

/* pattern=1: sector N starts with N, over the first 64 MiB and the last sector. */
static void check_pattern(struct blk *b)
{
	uint64_t n = b->capacity < PATTERN_MAX_SECTORS ? b->capacity : PATTERN_MAX_SECTORS;
	uint64_t s, checked = 0, v;
	uint32_t count, i;

	for (s = 0; s < n; s += count) {
		count = n - s < 8 ? (uint32_t)(n - s) : 8;
		read_sectors(b, s, buf_a, count, 0, "pattern read");
		for (i = 0; i < count; i++, checked++) {
			memcpy(&v, buf_a + i * SECTOR, 8);
			if (v != s + i)
				test_fail("blk pattern: sector %lu starts with 0x%lx",
					  s + i, v);
		}
	}
	if (n < b->capacity) {
		read_sectors(b, b->capacity - 1, buf_a, 1, 0, "pattern read last");
		memcpy(&v, buf_a, 8);
		if (v != b->capacity - 1)
			test_fail("blk pattern: sector %lu starts with 0x%lx",
				  b->capacity - 1, v);
		checked++;
	}
	test_log("blk pattern ok sectors=%lu", checked);
}

/* Requests every device must refuse or answer, read-only or not. */
static void common_tests(struct blk *b)
{
	struct virtio_buf d[2];
	char id[ID_BYTES + 1];
	unsigned i;

	d[0] = wr(buf_a, SECTOR);
	expect_status(blk_req(b, T_IN, b->capacity, d, 1, 0, "read past the end"),
	       S_IOERR, "read past the end");
	d[0] = wr(buf_a, 2 * SECTOR);
	expect_status(blk_req(b, T_IN, b->capacity - 1, d, 1, 0, "read across the end"),
	       S_IOERR, "read across the end");
	expect_status(blk_req(b, T_UNDEFINED, 0, NULL, 0, 0, "undefined type"),
	       S_UNSUPP, "undefined type");

	memset(id_buf, 0, sizeof(id_buf));
	d[0] = wr(id_buf, ID_BYTES);
	expect_status(blk_req(b, T_GET_ID, 0, d, 1, 0, "GET_ID"), S_OK, "GET_ID");
	for (i = 0; i < ID_BYTES && id_buf[i]; i++)
		id[i] = id_buf[i] >= 0x20 && id_buf[i] < 0x7f ? (char)id_buf[i] : '?';
	id[i] = '\0';
	test_log("blk id=%s", id);
}

static void test_rw(struct blk *b)
{
	struct virtio_buf d[2];
	uint64_t last = b->capacity - 1;
	int ind = has(b, VIRTIO_F_INDIRECT_DESC);
	unsigned i;

	/* Single-buffer writes: sector 2 and the last sector. */
	fill_sector(buf_a, 2);
	write_sectors(b, 2, buf_a, 1, "write sector 2");
	fill_sector(buf_a, last);
	write_sectors(b, last, buf_a, 1, "write last sector");

	/* Sectors 4-7 from two buffers of two sectors each. */
	for (i = 0; i < 4; i++)
		fill_sector(want_buf + i * SECTOR, 4 + i);
	memcpy(buf_a, want_buf, 2 * SECTOR);
	memcpy(buf_b, want_buf + 2 * SECTOR, 2 * SECTOR);
	d[0] = rd(buf_a, 2 * SECTOR);
	d[1] = rd(buf_b, 2 * SECTOR);
	expect_status(blk_req(b, T_OUT, 4, d, 2, 0, "write 4-7"), S_OK, "write 4-7");
	flush(b, "flush");

	/* Read back, sector 2 through an indirect table when there is one. */
	read_sectors(b, 2, buf_c, 1, ind, "read sector 2");
	fill_sector(want_buf + 3 * SECTOR, 2);
	compare(buf_c, want_buf + 3 * SECTOR, SECTOR, "sector 2");
	read_sectors(b, last, buf_c, 1, 0, "read last sector");
	fill_sector(want_buf + 3 * SECTOR, last);
	compare(buf_c, want_buf + 3 * SECTOR, SECTOR, "last sector");
	/* Sectors 4-7 into buffers split differently from the write: 1 + 3. */
	for (i = 0; i < 4; i++)
		fill_sector(want_buf + i * SECTOR, 4 + i);
	memset(buf_a, 0xa5, 4096);
	memset(buf_b, 0xa5, 4096);
	d[0] = wr(buf_a, SECTOR);
	d[1] = wr(buf_b, 3 * SECTOR);
	expect_status(blk_req(b, T_IN, 4, d, 2, ind, "read 4-7"), S_OK, "read 4-7");
	compare(buf_a, want_buf, SECTOR, "sector 4");
	compare(buf_b, want_buf + SECTOR, 3 * SECTOR, "sectors 5-7");

	common_tests(b);

	if (has(b, BLK_F_WRITE_ZEROES)) {
		uint32_t max = virtio_cfg32(b->v, CFG_MAX_WZ_SECTORS);

		if (max < 8 || !virtio_cfg32(b->v, CFG_MAX_WZ_SEG))
			test_fail("blk: WRITE_ZEROES offered with max_write_zeroes_sectors=%u",
				  max);
		for (i = 0; i < 8; i++)
			fill_sector(buf_a + i * SECTOR, 8 + i);
		write_sectors(b, 8, buf_a, 8, "write 8-15");
		seg = (struct blk_seg){ .sector = 8, .num_sectors = 8 };
		d[0] = rd(&seg, sizeof(seg));
		expect_status(blk_req(b, T_WRITE_ZEROES, 0, d, 1, 0, "write zeroes"),
		       S_OK, "write zeroes");
		read_sectors(b, 8, buf_c, 8, 0, "read 8-15");
		memset(want_buf, 0, 8 * SECTOR);
		compare(buf_c, want_buf, 8 * SECTOR, "zeroed sectors 8-15");
	}
	if (has(b, BLK_F_DISCARD)) {
		uint32_t max = virtio_cfg32(b->v, CFG_MAX_DISCARD_SECTORS);
		uint32_t align = virtio_cfg32(b->v, CFG_DISCARD_ALIGN);

		if (max < 8 || !virtio_cfg32(b->v, CFG_MAX_DISCARD_SEG))
			test_fail("blk: DISCARD offered with max_discard_sectors=%u", max);
		if (align > 1 && 16 % align)
			test_fail("blk: discard_sector_alignment %u does not divide 16", align);
		seg = (struct blk_seg){ .sector = 16, .num_sectors = 8 };
		d[0] = rd(&seg, sizeof(seg));
		expect_status(blk_req(b, T_DISCARD, 0, d, 1, 0, "discard"), S_OK, "discard");
	}

	/* Last: the marker the host looks for in the image, then a flush. */
	memset(buf_a, 0, SECTOR);
	memcpy(buf_a, "mote-blk-written", 16);
	write_sectors(b, 1, buf_a, 1, "write sector 1");
	flush(b, "final flush");
	read_sectors(b, 1, buf_c, 1, 0, "read sector 1");
	compare(buf_c, buf_a, SECTOR, "sector 1");
	test_log("blk rw ok");
}

static void test_ro(struct blk *b)
{
	uint64_t v;

	read_sectors(b, 1, buf_b, 1, 0, "read sector 1");
	if (pattern) {
		memcpy(&v, buf_b, 8);
		if (v != 1)
			test_fail("blk pattern: sector 1 starts with 0x%lx", v);
	}
	fill_sector(buf_a, 0x6d6f7465);
	{
		struct virtio_buf d = rd(buf_a, SECTOR);

		expect_status(blk_req(b, T_OUT, 1, &d, 1, 0, "write to read-only"),
		       S_IOERR, "write to read-only");
	}
	read_sectors(b, 1, buf_c, 1, 0, "re-read sector 1");
	compare(buf_c, buf_b, SECTOR, "sector 1 after refused write");
	common_tests(b);
	test_log("blk ro ok");
}

/* ---- hostile=1 ---------------------------------------------------------- */

static void set_desc(struct virtq *q, uint16_t i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	q->desc[i].addr = addr;
	q->desc[i].len = len;
	q->desc[i].flags = flags;
	q->desc[i].next = next;
}

/* A read of sector 0: header, one writable sector, status; from index i. */
static void read_chain(struct virtq *q, uint16_t i, uint64_t data, uint32_t len)
{
	uint16_t m = q->size - 1;

	set_desc(q, i, (uintptr_t)&hdr, sizeof(hdr), VIRTQ_DESC_F_NEXT, (i + 1) & m);
	set_desc(q, (i + 1) & m, data, len, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
		 (i + 2) & m);
	set_desc(q, (i + 2) & m, (uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0);
}

static void go(struct virtq *q, uint16_t head)
{
	virtq_publish(q, head);
	virtq_notify(q);
}

static void h_next_oob(struct blk *b, struct virtq *q)
{
	(void)b;
	/* The first index past the table. */
	set_desc(q, 0, (uintptr_t)&hdr, sizeof(hdr), VIRTQ_DESC_F_NEXT, q->size);
	go(q, 0);
}

static void h_loop(struct blk *b, struct virtq *q)
{
	(void)b;
	set_desc(q, 1, (uintptr_t)&hdr, sizeof(hdr), VIRTQ_DESC_F_NEXT, 2);
	set_desc(q, 2, (uintptr_t)buf_a, SECTOR, VIRTQ_DESC_F_NEXT, 1);
	go(q, 1);
}

/*
 * size + 1 descriptors: through an indirect table when one was negotiated
 * (otherwise well-formed), else every descriptor of the ring back to the head.
 */
static void h_long_chain(struct blk *b, struct virtq *q)
{
	uint16_t i, n = q->size + 1;

	if (has(b, VIRTIO_F_INDIRECT_DESC)) {
		hostile_table[0] = (struct virtq_desc){ (uintptr_t)&hdr, sizeof(hdr),
							VIRTQ_DESC_F_NEXT, 1 };
		for (i = 1; i + 1 < n; i++)
			hostile_table[i] = (struct virtq_desc){
				(uintptr_t)buf_a, SECTOR,
				VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1) };
		hostile_table[n - 1] = (struct virtq_desc){ (uintptr_t)&status_byte, 1,
							    VIRTQ_DESC_F_WRITE, 0 };
		set_desc(q, 0, (uintptr_t)hostile_table, n * sizeof(hostile_table[0]),
			 VIRTQ_DESC_F_INDIRECT, 0);
	} else {
		set_desc(q, 0, (uintptr_t)&hdr, sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
		for (i = 1; i < q->size; i++)
			set_desc(q, i, (uintptr_t)buf_a, SECTOR, VIRTQ_DESC_F_NEXT,
				 (uint16_t)((i + 1) & (q->size - 1)));
	}
	go(q, 0);
}

static void h_addr_oob(struct blk *b, struct virtq *q)
{
	(void)b;
	read_chain(q, 3, virtio_outside_ram(SECTOR, 0), SECTOR);
	go(q, 3);
}

static void h_addr_straddle(struct blk *b, struct virtq *q)
{
	(void)b;
	read_chain(q, 5, virtio_outside_ram(SECTOR, 1), SECTOR);
	go(q, 5);
}

static void h_addr_wrap(struct blk *b, struct virtq *q)
{
	(void)b;
	/* 2 sectors from 512 bytes below 2^64: wraps to 0-511. */
	read_chain(q, q->size - 1, 0xfffffffffffffe00ULL, 2 * SECTOR);
	go(q, q->size - 1);
}

static void h_write_before_read(struct blk *b, struct virtq *q)
{
	(void)b;
	set_desc(q, 0, (uintptr_t)junk, sizeof(junk),
		 VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
	read_chain(q, 1, (uintptr_t)buf_a, SECTOR);
	go(q, 0);
}

/*
 * Header, then a descriptor pointing at a second table (data, status). A device
 * that follows it reads sector 0 and answers OK; one that takes it for a plain
 * buffer has no status byte to write.
 */
static void h_nested_indirect(struct blk *b, struct virtq *q)
{
	(void)b;
	nested_table[0] = (struct virtq_desc){ (uintptr_t)buf_a, SECTOR,
					       VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1 };
	nested_table[1] = (struct virtq_desc){ (uintptr_t)&status_byte, 1,
					       VIRTQ_DESC_F_WRITE, 0 };
	hostile_table[0] = (struct virtq_desc){ (uintptr_t)&hdr, sizeof(hdr),
						VIRTQ_DESC_F_NEXT, 1 };
	hostile_table[1] = (struct virtq_desc){ (uintptr_t)nested_table,
						sizeof(nested_table),
						VIRTQ_DESC_F_INDIRECT, 0 };
	set_desc(q, 2, (uintptr_t)hostile_table, 2 * sizeof(hostile_table[0]),
		 VIRTQ_DESC_F_INDIRECT, 0);
	go(q, 2);
}

/* One valid chain, but avail.idx moves size + 1 entries past the device. */
static void h_avail_jump(struct blk *b, struct virtq *q)
{
	uint16_t i;

	(void)b;
	read_chain(q, 0, (uintptr_t)buf_a, SECTOR);
	for (i = 0; i < q->size; i++)
		q->avail->ring[i] = 0;
	/* More than a full ring ahead of what the device consumed (§2.7.13). */
	q->avail_idx = (uint16_t)(q->avail_idx + q->size + 1);
	__asm__ volatile("" ::: "memory");
	q->avail->idx = q->avail_idx;
	virtq_notify(q);
}

struct hostile_case {
	const char *name;
	void (*send)(struct blk *b, struct virtq *q);
	int needs_indirect;
	int needs_straddle;
};

static const struct hostile_case cases[] = {
	{ "next-oob", h_next_oob, 0, 0 },
	{ "loop", h_loop, 0, 0 },
	{ "long-chain", h_long_chain, 0, 0 },
	{ "addr-oob", h_addr_oob, 0, 0 },
	{ "addr-straddle", h_addr_straddle, 0, 1 },
	{ "addr-wrap", h_addr_wrap, 0, 0 },
	{ "write-before-read", h_write_before_read, 0, 0 },
	{ "nested-indirect", h_nested_indirect, 1, 0 },
	{ "avail-jump", h_avail_jump, 0, 0 },
};

/* Reset, initialize again, and read sector 0 the ordinary way. */
static void recover(struct blk *b, const char *name)
{
	uint64_t before = b->v->features, v;
	char what[48];

	virtio_reset(b->v);
	blk_setup(b);
	if (b->v->features != before)
		test_fail("blk hostile %s: features 0x%lx after reset, were 0x%lx", name,
			  b->v->features, before);
	fmt_snprintf(what, sizeof(what), "read after hostile %s", name);
	read_sectors(b, 0, buf_c, 1, 0, what);
	memcpy(&v, buf_c, 8);
	if (pattern && v != 0)
		test_fail("blk %s: sector 0 starts with 0x%lx", what, v);
}

static int run_hostile(struct blk *b)
{
	struct virtq_used_elem e;
	unsigned i, failed = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct hostile_case *c = &cases[i];
		uint8_t dev_status, s;
		int r;

		if ((c->needs_indirect && !has(b, VIRTIO_F_INDIRECT_DESC)) ||
		    (c->needs_straddle && !virtio_outside_ram(SECTOR, 1))) {
			test_log("hostile %s skipped", c->name);
			continue;
		}
		hdr = (struct blk_hdr){ .type = T_IN, .sector = 0 };
		status_byte = 0xff;
		c->send(b, b->q);
		r = virtq_wait(b->q, HOSTILE_TIMEOUT_US, &e);
		s = status_now();
		/* A device may complete a valid chain before it finds the bad one. */
		if (r == VIRTQ_DONE && s == S_OK)
			tsc_delay_us(HOSTILE_GRACE_US);
		dev_status = virtio_status(b->v);
		if (dev_status & VIRTIO_STATUS_NEEDS_RESET) {
			test_log("hostile %s ok (needs-reset)", c->name);
		} else if (r == VIRTQ_DONE && (s == S_IOERR || s == S_UNSUPP)) {
			test_log("hostile %s ok (status=%u)", c->name, s);
		} else if (r == VIRTQ_DONE) {
			test_log("hostile %s FAIL completed with status %u, used len %u",
				 c->name, s, e.len);
			failed++;
		} else {
			test_log("hostile %s FAIL no completion and device_status 0x%x",
				 c->name, dev_status);
			failed++;
		}
		recover(b, c->name);
	}
	return (int)failed;
}

/* ---- bench=N ------------------------------------------------------------ */

#define BENCH_BYTES		4096
#define BENCH_SECTORS		(BENCH_BYTES / SECTOR)
#define BENCH_QSIZE		128
#define BENCH_STALL_US		10000000	/* no completion for this long: FAIL */
#define VIRTQ_USED_F_NO_NOTIFY	1

static struct blk_hdr bench_hdr[VIRTQ_MAX_SIZE] __attribute__((aligned(16)));
static uint8_t bench_status[VIRTQ_MAX_SIZE];
static uint8_t bench_buf[VIRTQ_MAX_SIZE][BENCH_BYTES] __attribute__((aligned(4096)));
static struct virtq_desc bench_table[VIRTQ_MAX_SIZE][3] __attribute__((aligned(16)));

/* Section 2.7.10: the driver must notify when new_idx passed event since old. */
static int need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

/*
 * Slot s is a fixed chain: ring descriptor s pointing at its own indirect
 * table, or ring descriptors 3s..3s+2; its head never changes, so a request
 * costs the driver only its header's sector and one avail ring entry.
 */
static uint16_t bench_chain(struct virtq *q, unsigned s, int ind)
{
	struct virtq_desc d[3] = {
		{ (uintptr_t)&bench_hdr[s], sizeof(bench_hdr[s]), VIRTQ_DESC_F_NEXT, 1 },
		{ (uintptr_t)bench_buf[s], BENCH_BYTES,
		  VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2 },
		{ (uintptr_t)&bench_status[s], 1, VIRTQ_DESC_F_WRITE, 0 },
	};
	uint16_t head = (uint16_t)(ind ? s : 3 * s);
	unsigned i;

	bench_hdr[s] = (struct blk_hdr){ .type = T_IN };
	if (ind) {
		for (i = 0; i < 3; i++)
			bench_table[s][i] = d[i];
		q->desc[head] = (struct virtq_desc){ (uintptr_t)bench_table[s],
						     sizeof(bench_table[s]),
						     VIRTQ_DESC_F_INDIRECT, 0 };
	} else {
		for (i = 0; i < 3; i++) {
			q->desc[head + i] = d[i];
			q->desc[head + i].next = (uint16_t)(head + i + 1);
		}
	}
	return head;
}

/*
 * The loop is short on purpose: on a PVM /dev/kvm every instruction of a
 * ring-0 guest is interpreted by the host kernel (~0.5 us each), so each one
 * here would count as device time.
 */
static void run_bench(struct blk *b, uint64_t n, uint64_t depth)
{
	struct virtq *q = b->q;
	int ind = has(b, VIRTIO_F_INDIRECT_DESC), evidx = has(b, VIRTIO_F_EVENT_IDX);
	unsigned slots = ind ? q->size : q->size / 3, per = ind ? 1 : 3;
	uint64_t end = b->capacity / BENCH_SECTORS * BENCH_SECTORS, next = 0;
	uint64_t submitted = 0, completed = 0, kicks = 0, t0, t1, stall_ticks, stall;
	volatile uint16_t *used_event = &q->avail->ring[q->size];
	volatile uint16_t *avail_event = (volatile uint16_t *)&q->used->ring[q->size];
	volatile uint64_t *used_ring = (volatile uint64_t *)q->used->ring;
	volatile uint16_t *avail_ring = q->avail->ring;
	uint16_t mask = (uint16_t)(q->size - 1), seen = q->used_seen, aidx = q->avail_idx;
	uint16_t old, used;
	unsigned s, spins;

	if (!depth)
		depth = slots;
	if (depth > slots)
		test_fail("blk bench: depth=%lu is not 1-%u (queue of %u%s)", depth, slots,
			  q->size, ind ? "" : ", three descriptors a request");
	if (!end)
		test_fail("blk bench: capacity %lu sectors is below 4 KiB", b->capacity);
	if (n < depth)
		depth = n;
	for (s = 0; s < depth; s++)
		bench_chain(q, s, ind);
	*used_event = (uint16_t)(seen + 0x8000);	/* no interrupts wanted */
	stall_ticks = tsc_deadline_us(BENCH_STALL_US) - rdtsc();

	t0 = rdtsc();
	old = aidx;
	for (s = 0; s < depth; s++) {
		bench_status[s] = 0xff;
		bench_hdr[s].sector = next;
		next += BENCH_SECTORS;
		if (next == end)
			next = 0;
		avail_ring[aidx++ & mask] = (uint16_t)(s * per);
	}
	submitted = depth;
	for (;;) {
		/* Publish what was queued; kick only when the device asks for it. */
		if (aidx != old) {
			__asm__ volatile("" ::: "memory");
			q->avail->idx = aidx;
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			if (evidx ? need_event(*avail_event, aidx, old) :
				    !(q->used->flags & VIRTQ_USED_F_NO_NOTIFY)) {
				mmio_write16(q->notify_addr, q->index);
				kicks++;
			}
			old = aidx;
		}
		if (completed == n)
			break;
		stall = rdtsc() + stall_ticks;
		for (spins = 1; (used = q->used->idx) == seen; spins++) {
			cpu_pause();
			if (!(spins & 4095) && rdtsc() > stall)
				test_fail("blk bench: no completion for %d s after %lu of %lu (status 0x%x)",
					  BENCH_STALL_US / 1000000, completed, n,
					  virtio_status(b->v));
		}
		__asm__ volatile("" ::: "memory");
		/* Each completion: check it, and send its slot off again at once. */
		do {
			uint64_t e = used_ring[seen++ & mask];
			uint32_t id = (uint32_t)e;

			s = id / per;
			if ((e >> 32) != BENCH_BYTES + 1 || s >= depth || id != s * per ||
			    bench_status[s] != S_OK)
				test_fail("blk bench: used id %u len %u, status %u (depth %lu)",
					  id, (uint32_t)(e >> 32), s < depth ? bench_status[s] : 0xff,
					  depth);
			completed++;
			if (submitted < n) {
				bench_status[s] = 0xff;
				bench_hdr[s].sector = next;
				next += BENCH_SECTORS;
				if (next == end)
					next = 0;
				avail_ring[aidx++ & mask] = (uint16_t)id;
				submitted++;
			}
		} while (seen != used);
		*used_event = (uint16_t)(seen + 0x8000);
	}
	t1 = rdtsc();
	q->used_seen = seen;
	q->avail_idx = aidx;
	test_log("blk bench n=%lu cycles=%lu depth=%lu kicks=%lu", n, t1 - t0, depth, kicks);
}

/* ---- main --------------------------------------------------------------- */

/* The n-th word of "rw,ro,...": 0 rw, 1 ro, -1 absent; -2 no list at all. */
/* ---- writer=N ------------------------------------------------------------ */

static uint64_t xorshift(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Word-wise FNV-1a style hash (per 64-bit little-endian word, not per
 * byte: guest code is slow under PVM, and the host computes the same). */
static uint64_t hash_words(uint64_t h, const uint64_t *w, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		h = (h ^ w[i]) * 0x100000001b3ull;
	return h;
}

/* The writer's own record of each 4 KiB block it wrote last: the write's
 * number + 1 (0: never written) and which pattern it carried. */
#define WRITER_MAX_BLOCKS 65536 /* 256 MiB disks */
static uint32_t writer_last[WRITER_MAX_BLOCKS];
static uint8_t writer_pattern[WRITER_MAX_BLOCKS];

static void run_writer(struct blk *b, uint64_t after, uint64_t seed, uint64_t total,
		       uint64_t secs, uint64_t gap_us)
{
	uint64_t until = secs ? tsc_deadline_us(secs * 1000000) : 0;
	uint64_t x = seed ? seed : 1, blocks = b->capacity / 8, writes = 0, switched = 0;
	uint64_t limit = 1ull << 24, h = 0xcbf29ce484222325ull;
	uint64_t *src[3] = { (uint64_t *)buf_a, (uint64_t *)buf_b, (uint64_t *)buf_c };
	uint8_t gen = virtio_cfg_begin(b->v);

	if (!blocks || blocks > WRITER_MAX_BLOCKS)
		test_fail("blk writer: the disk holds %lu 4 KiB blocks (1 to %u)", blocks,
			  WRITER_MAX_BLOCKS);
	/* Three random blocks, made once; each write sends one of them with
	 * its own number and place in the first two words. */
	for (unsigned k = 0; k < 3; k++)
		for (unsigned i = 0; i < 4096 / 8; i++)
			src[k][i] = xorshift(&x);
	test_log("blk writer start");
	while (until ? rdtsc() < until
		     : total ? writes < total : !switched || writes < switched + after) {
		uint64_t r = xorshift(&x), block = r % blocks;
		uint64_t *w = src[(r >> 32) % 3];
		w[0] = writes;
		w[1] = block;
		write_sectors(b, block * 8, w, 8, "writer write");
		writer_last[block] = (uint32_t)writes + 1;
		writer_pattern[block] = (uint8_t)((r >> 32) % 3);
		if (gap_us)
			tsc_delay_us(gap_us);
		if (++writes % 64 == 0)
			flush(b, "writer flush");
		if (!switched && virtio_cfg_end(b->v, gen)) {
			switched = writes;
			test_log("blk writer switched after=%lu", writes);
		}
		if (!total && !until && writes >= limit)
			test_fail("blk writer: no switch after %lu writes", writes);
	}
	flush(b, "writer flush");
	/* Read it all back: the hash is for the host to compare with the file;
	 * every block written must hold its last write (its number, place and
	 * pattern), which a lost write would not. */
	uint64_t checked = 0, bad = 0;
	for (uint64_t s = 0; s < b->capacity; s += 8) {
		uint32_t n = b->capacity - s < 8 ? (uint32_t)(b->capacity - s) : 8;
		read_sectors(b, s, want_buf, n, 0, "writer read");
		h = hash_words(h, (const uint64_t *)want_buf, n * SECTOR / 8);
		const uint64_t *got = (const uint64_t *)want_buf;
		uint64_t k = s / 8;
		if (n == 8 && writer_last[k]) {
			const uint64_t *pat = src[writer_pattern[k]];
			checked++;
			if (got[0] != writer_last[k] - 1u || got[1] != k || got[2] != pat[2] ||
			    got[511] != pat[511]) {
				if (bad++ < 4)
					test_log("blk writer block %lu holds write %lu, the last was %u",
						 k, got[0], writer_last[k] - 1u);
			}
		}
	}
	test_log("blk writer verified=%lu bad=%lu", checked, bad);
	test_log("blk writer writes=%lu hash=%lx", writes, h);
}

static int expected_ro(const char *list, unsigned n)
{
	const char *p = list;

	if (!list)
		return -2;
	while (n--) {
		while (*p && *p != ',')
			p++;
		if (!*p)
			return -1;
		p++;
	}
	if (!strncmp(p, "rw", 2) && (p[2] == ',' || !p[2]))
		return 0;
	if (!strncmp(p, "ro", 2) && (p[2] == ',' || !p[2]))
		return 1;
	if (!*p || *p == ',')
		return -1;
	test_fail("blk: blk=%s: each entry must be rw or ro", list);
}

static unsigned list_len(const char *list)
{
	unsigned n = 1;

	for (; *list; list++)
		n += *list == ',';
	return n;
}

void guest_main(void)
{
	char listbuf[64], pci[8];
	const char *list = cmdline_get("blk", listbuf, sizeof(listbuf));
	uint64_t bench = cmdline_u64("bench", 0);
	uint64_t qsize = cmdline_u64("qsize", bench ? BENCH_QSIZE : 16);
	int hostile = cmdline_u64("hostile", 0) != 0, failed = 0;
	int noise = cmdline_u64("noise", 0) != 0;
	unsigned n, i;

	pattern = cmdline_u64("pattern", 0) != 0;
	pci_set_reassign(cmdline_u64("pci_assign", 0) != 0);
	if (!qsize || qsize > VIRTQ_MAX_SIZE)
		test_fail("blk: qsize=%lu is not 1-%d", qsize, VIRTQ_MAX_SIZE);

	n = virtio_probe(VIRTIO_ID_BLK, devs, VIRTIO_MAX_DEVICES);
	if (!n)
		test_fail("blk: no virtio-blk device on PCI bus 0");
	if (noise)
		test_log("blk noise cpus=%u", noise_start() + 1);
	if (list && list_len(list) != n)
		test_fail("blk: %u devices found, blk=%s lists %u", n, list, list_len(list));

	for (i = 0; i < n; i++) {
		struct blk b = {
			.v = &devs[i],
			.qsize = (uint16_t)qsize,
			.want = VIRTIO_BIT(BLK_F_SIZE_MAX) | VIRTIO_BIT(BLK_F_SEG_MAX) |
				VIRTIO_BIT(BLK_F_RO) | VIRTIO_BIT(BLK_F_BLK_SIZE) |
				VIRTIO_BIT(BLK_F_FLUSH) | VIRTIO_BIT(BLK_F_DISCARD) |
				VIRTIO_BIT(BLK_F_WRITE_ZEROES),
		};
		int want_ro = expected_ro(list, i);

		if (cmdline_u64("indirect", 1))
			b.want |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
		if (bench && cmdline_u64("event_idx", 1))
			b.want |= VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
		blk_setup(&b);
		test_log("blk capacity=%lu ro=%d seg_max=%u blk_size=%u flush=%d discard=%d write_zeroes=%d indirect=%d qsize=%u pci=%s",
			 b.capacity, b.ro, b.seg_max, b.blk_size, has(&b, BLK_F_FLUSH),
			 has(&b, BLK_F_DISCARD), has(&b, BLK_F_WRITE_ZEROES),
			 has(&b, VIRTIO_F_INDIRECT_DESC), b.q->size,
			 pci_name(&b.v->pci, pci));
		if (want_ro >= 0 && want_ro != b.ro)
			test_fail("blk: device %u is %s, blk=%s expects %s", i,
				  b.ro ? "read-only" : "writable", list,
				  want_ro ? "ro" : "rw");
		if (b.q->size < 4)
			test_fail("blk: queue of %u entries, the tests need 4", b.q->size);
		if (b.capacity < MIN_SECTORS)
			test_fail("blk: capacity %lu sectors, at least %d needed",
				  b.capacity, MIN_SECTORS);
		if (has(&b, BLK_F_SEG_MAX) && b.seg_max < 2)
			test_fail("blk: seg_max %u, the tests need 2", b.seg_max);
		if (has(&b, BLK_F_SIZE_MAX) && b.size_max < 4096)
			test_fail("blk: size_max %u, the tests need 4096", b.size_max);
		if (cmdline_u64("writer", 0) || cmdline_u64("total", 0) || cmdline_u64("secs", 0)) {
			run_writer(&b, cmdline_u64("writer", 0), cmdline_u64("seed", 1),
				   cmdline_u64("total", 0), cmdline_u64("secs", 0),
				   cmdline_u64("gap_us", 0));
			virtio_reset(b.v);
			test_done();
		}
		if (bench) {
			run_bench(&b, bench, cmdline_u64("depth", 0));
			if (cmdline_u64("qd1", 0))
				run_bench(&b, cmdline_u64("qd1", 0), 1);
			virtio_reset(b.v);
			test_done();
		}
		if (pattern)
			check_pattern(&b);
		if (b.ro)
			test_ro(&b);
		else
			test_rw(&b);
		if (hostile && i == 0)
			failed = run_hostile(&b);
		virtio_reset(b.v);
	}
	if (failed)
		test_fail("blk: %d hostile case(s) failed", failed);
	if (noise)
		noise_stop();
	test_log("blk ok");
	test_done();
}
