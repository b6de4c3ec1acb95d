/* Unit tests for src/virtio/virtqueue.c: split rings built by hand in a fake
 * guest RAM (a static array between two guard areas that every test checks
 * at teardown), the walker fed every malformation virtio 1.2 §2.7 forbids,
 * the used ring, notification suppression both ways, and the copy helpers. */
#include "virtio/virtqueue.h"

#include "unit.h"
#include "util/util.h"

#define RAM_GPA	   0x100000ull
#define RAM_SIZE   0x20000u
#define RAM_END	   (RAM_GPA + RAM_SIZE)
#define GUARD	   0x1000u
#define GUARD_BYTE 0xa5
#define QSZ	   16

/* Where the tests put things, all inside RAM. */
#define DESC_GPA  (RAM_GPA + 0x0000) /* up to 1024 descriptors */
#define AVAIL_GPA (RAM_GPA + 0x4000)
#define USED_GPA  (RAM_GPA + 0x5000)
#define IND_GPA	  (RAM_GPA + 0x8000)  /* indirect tables */
#define DATA_GPA  (RAM_GPA + 0x10000) /* buffers */

static uint8_t arena[GUARD + RAM_SIZE + GUARD] __attribute__((aligned(4096)));
#define RAM (arena + GUARD)

static struct guest_mem mem;
static struct virtq vq;
static struct vq_chain chain;
static uint16_t drv_idx; /* the driver's avail.idx */

static uint8_t *g(uint64_t gpa)
{
	assert_true(gpa >= RAM_GPA && gpa < RAM_END);
	return RAM + (gpa - RAM_GPA);
}

static void desc_at(uint64_t table, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		    uint16_t next)
{
	uint8_t *d = g(table + 16ull * i);
	put_le64(d, addr);
	put_le32(d + 8, len);
	put_le16(d + 12, flags);
	put_le16(d + 14, next);
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc_at(DESC_GPA, i, addr, len, flags, next);
}

static void set_avail_idx(uint16_t v)
{
	put_le16(g(AVAIL_GPA + 2), v);
}

/* The driver makes chain `head` available. */
static void avail_add(uint16_t head)
{
	put_le16(g(AVAIL_GPA + 4 + 2u * (drv_idx & (vq.size - 1))), head);
	set_avail_idx(++drv_idx);
}

static uint16_t used_idx(void)
{
	return get_le16(g(USED_GPA + 2));
}

static uint16_t used_flags(void)
{
	return get_le16(g(USED_GPA));
}

static void assert_used_elem(uint16_t slot, uint32_t id, uint32_t len)
{
	const uint8_t *e = g(USED_GPA + 4 + 8u * slot);
	assert_int_equal(get_le32(e), id);
	assert_int_equal(get_le32(e + 4), len);
}

static void set_used_event(uint16_t v)
{
	put_le16(g(AVAIL_GPA + 4 + 2u * vq.size), v);
}

static uint16_t avail_event(void)
{
	return get_le16(g(USED_GPA + 4 + 8u * vq.size));
}

static void queue_init(uint16_t size, bool event_idx, bool indirect)
{
	assert_int_equal(
		vq_init(&vq, &mem, size, DESC_GPA, AVAIL_GPA, USED_GPA, event_idx, indirect), 0);
	drv_idx = 0;
}

static int setup(void **state)
{
	memset(arena, GUARD_BYTE, GUARD);
	memset(arena + GUARD + RAM_SIZE, GUARD_BYTE, GUARD);
	memset(RAM, 0, RAM_SIZE);
	const struct guest_region r = {.gpa = RAM_GPA, .size = RAM_SIZE, .hva = RAM};
	assert_int_equal(guest_mem_init_static(&mem, &r, 1), 0);
	memset(&chain, 0x5a, sizeof(chain));
	queue_init(QSZ, false, true);
	return 0;
}

/* Nothing outside the fake RAM was written. */
static int teardown(void **state)
{
	for (unsigned i = 0; i < GUARD; i++) {
		if (arena[i] != GUARD_BYTE || arena[GUARD + RAM_SIZE + i] != GUARD_BYTE)
			fail_msg("guard byte %u touched", i);
	}
	return 0;
}

/* The next pop finds a violation: -EBADMSG, counted once, the queue stays
 * broken, and neither the used ring nor last_avail moved. */
static void assert_pop_broken(void)
{
	uint16_t last = vq.last_avail, uidx = used_idx();
	uint64_t errors = vq.errors;

	assert_false(vq.broken);
	assert_int_equal(vq_pop(&vq, &chain), -EBADMSG);
	assert_true(vq.broken);
	assert_int_equal(vq.errors, errors + 1);
	assert_int_equal(vq_pop(&vq, &chain), -EBADMSG);
	assert_int_equal(vq.errors, errors + 1);
	assert_int_equal(vq.last_avail, last);
	assert_int_equal(used_idx(), uidx);
}

static void assert_buf(unsigned i, uint64_t gpa, uint32_t len)
{
	assert_int_equal(chain.buf[i].gpa, gpa);
	assert_int_equal(chain.buf[i].len, len);
}

/* ---- happy paths ---- */

static void test_empty(void **state)
{
	assert_int_equal(vq_pop(&vq, &chain), 0);
	assert_int_equal(vq_pop(&vq, &chain), 0);
	assert_false(vq.broken);
}

static void test_single(void **state)
{
	desc(3, DATA_GPA, 100, 0, 0);
	avail_add(3);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.head, 3);
	assert_int_equal(chain.nr_read, 1);
	assert_int_equal(chain.nr_write, 0);
	assert_int_equal(chain.read_len, 100);
	assert_int_equal(chain.write_len, 0);
	assert_buf(0, DATA_GPA, 100);
	assert_int_equal(vq.last_avail, 1);
	assert_int_equal(vq_pop(&vq, &chain), 0);
}

static void test_chain_read_write(void **state)
{
	/* A block request: header, data, status; out of table order. */
	desc(7, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 2);
	desc(2, DATA_GPA + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 15);
	desc(15, DATA_GPA + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
	avail_add(7);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.head, 7);
	assert_int_equal(chain.nr_read, 1);
	assert_int_equal(chain.nr_write, 2);
	assert_int_equal(chain.read_len, 16);
	assert_int_equal(chain.write_len, 513);
	assert_buf(0, DATA_GPA, 16);
	assert_buf(1, DATA_GPA + 0x100, 512);
	assert_buf(2, DATA_GPA + 0x400, 1);
}

static void test_indirect(void **state)
{
	desc_at(IND_GPA, 0, DATA_GPA, 16, VIRTQ_DESC_F_NEXT, 1);
	desc_at(IND_GPA, 1, DATA_GPA + 0x100, 64, VIRTQ_DESC_F_NEXT, 2);
	desc_at(IND_GPA, 2, DATA_GPA + 0x200, 1, VIRTQ_DESC_F_WRITE, 0);
	desc_at(IND_GPA, 3, 0, 0, 0, 0); /* unused slot of the table */
	/* §2.7.5.3.2: the device ignores WRITE on the table's descriptor. */
	desc(5, IND_GPA, 4 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	avail_add(5);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.head, 5);
	assert_int_equal(chain.nr_read, 2);
	assert_int_equal(chain.nr_write, 1);
	assert_int_equal(chain.read_len, 80);
	assert_int_equal(chain.write_len, 1);
	assert_buf(0, DATA_GPA, 16);
	assert_buf(1, DATA_GPA + 0x100, 64);
	assert_buf(2, DATA_GPA + 0x200, 1);
}

static void test_mixed_direct_then_indirect(void **state)
{
	/* §2.7.5.3.2: zero or more direct descriptors, then one indirect. */
	desc(0, DATA_GPA, 8, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA + 0x10, 8, VIRTQ_DESC_F_NEXT, 2);
	desc(2, IND_GPA, 2 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc_at(IND_GPA, 0, DATA_GPA + 0x20, 8, VIRTQ_DESC_F_NEXT, 1);
	desc_at(IND_GPA, 1, DATA_GPA + 0x30, 32, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.nr_read, 3);
	assert_int_equal(chain.nr_write, 1);
	assert_int_equal(chain.read_len, 24);
	assert_int_equal(chain.write_len, 32);
	assert_buf(2, DATA_GPA + 0x20, 8);
	assert_buf(3, DATA_GPA + 0x30, 32);
}

static void test_zero_length_skipped(void **state)
{
	/* Zero-length descriptors give no buf, whatever their address. */
	desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 1);
	desc(1, 0xdead0000000ull, 0, VIRTQ_DESC_F_NEXT, 2);
	desc(2, DATA_GPA + 0x10, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	desc(3, UINT64_MAX, 0, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	desc(4, 0, 0, 0, 0);
	avail_add(4);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.nr_read, 1);
	assert_int_equal(chain.nr_write, 1);
	assert_buf(0, DATA_GPA, 4);
	assert_buf(1, DATA_GPA + 0x10, 4);
	/* A chain of one empty descriptor is an empty request. */
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.head, 4);
	assert_int_equal(chain.nr_read + chain.nr_write, 0);
	assert_int_equal(chain.read_len + chain.write_len, 0);
}

static void test_buffer_at_ram_edges(void **state)
{
	desc(0, RAM_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc(1, RAM_END - 8, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
	desc(2, RAM_GPA, RAM_SIZE, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.write_len, RAM_SIZE + 8);
}

static void test_many_requests_and_used_ring(void **state)
{
	/* A full ring: QSZ one-descriptor chains; completed out of order. */
	for (unsigned i = 0; i < QSZ; i++) {
		desc(i, DATA_GPA + 0x100 * i, 0x10 + i, VIRTQ_DESC_F_WRITE, 0);
		avail_add((uint16_t)(QSZ - 1 - i));
	}
	uint16_t heads[QSZ];
	for (unsigned i = 0; i < QSZ; i++) {
		assert_int_equal(vq_pop(&vq, &chain), 1);
		heads[i] = chain.head;
		assert_int_equal(chain.head, QSZ - 1 - i);
		assert_int_equal(chain.write_len, 0x10 + chain.head);
	}
	assert_int_equal(vq_pop(&vq, &chain), 0);
	for (unsigned i = 0; i < QSZ; i++) {
		uint16_t h = heads[QSZ - 1 - i];
		vq_push(&vq, h, 0x10 + h);
		assert_int_equal(used_idx(), i + 1);
		assert_int_equal(vq.used_idx, i + 1);
	}
	for (unsigned i = 0; i < QSZ; i++)
		assert_used_elem((uint16_t)i, i, 0x10 + i);
	/* The driver refills: the ring goes round again. */
	avail_add(9);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.head, 9);
	vq_push(&vq, 9, 3);
	assert_used_elem(0, 9, 3);
	assert_int_equal(used_idx(), QSZ + 1);
}

static void test_index_wrap(void **state)
{
	/* Both free-running indexes cross 65535 → 0 (§2.7.13.3). */
	vq.last_avail = vq.used_idx = 65533;
	drv_idx = 65533;
	set_avail_idx(drv_idx);
	put_le16(g(USED_GPA + 2), 65533);
	for (uint16_t i = 0; i < 6; i++) {
		desc(i, DATA_GPA + 0x10 * i, 4, VIRTQ_DESC_F_WRITE, 0);
		avail_add(i);
	}
	assert_int_equal(drv_idx, 3);
	for (uint16_t i = 0; i < 6; i++) {
		assert_int_equal(vq_pop(&vq, &chain), 1);
		assert_int_equal(chain.head, i);
		vq_push(&vq, chain.head, i);
	}
	assert_int_equal(vq_pop(&vq, &chain), 0);
	assert_int_equal(vq.last_avail, 3);
	assert_int_equal(used_idx(), 3);
	/* 65533 % 16 = 13: slots 13, 14, 15, 0, 1, 2 */
	assert_used_elem(13, 0, 0);
	assert_used_elem(15, 2, 2);
	assert_used_elem(0, 3, 3);
	assert_used_elem(2, 5, 5);
}

static void test_longest_chains(void **state)
{
	/* Exactly QSZ descriptors is legal: direct, indirect, and mixed. */
	for (unsigned i = 0; i < QSZ; i++)
		desc(i, DATA_GPA + i, 1, i + 1 < QSZ ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.nr_read, QSZ);

	for (unsigned i = 0; i < QSZ; i++)
		desc_at(IND_GPA, i, DATA_GPA + i, 1, i + 1 < QSZ ? VIRTQ_DESC_F_NEXT : 0,
			(uint16_t)(i + 1));
	desc(0, IND_GPA, QSZ * 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.nr_read, QSZ);

	/* 12 direct + 4 from the table: entry 0, then 13..15 via next */
	for (unsigned i = 0; i < 12; i++)
		desc(i, DATA_GPA + i, 1, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	desc(12, IND_GPA, QSZ * 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc_at(IND_GPA, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 13);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.nr_read, QSZ);
}

static void test_max_size_queue(void **state)
{
	/* VQ_MAX_SIZE entries pending, the first a VQ_MAX_SIZE-entry indirect
	 * chain that fills chain.buf exactly. */
	queue_init(VQ_MAX_SIZE, false, true);
	const uint64_t table = DATA_GPA; /* 16 KiB */
	for (unsigned i = 0; i < VQ_MAX_SIZE; i++) {
		desc_at(table, i, RAM_GPA + i, 1,
			VIRTQ_DESC_F_WRITE | (i + 1 < VQ_MAX_SIZE ? VIRTQ_DESC_F_NEXT : 0),
			(uint16_t)(i + 1));
		desc(i, RAM_GPA + 2 * i, 2, 0, 0);
	}
	desc(0, table, VQ_MAX_SIZE * 16, VIRTQ_DESC_F_INDIRECT, 0);
	for (unsigned i = 0; i < VQ_MAX_SIZE; i++)
		avail_add((uint16_t)i);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.nr_write, VQ_MAX_SIZE);
	assert_buf(VQ_MAX_SIZE - 1, RAM_GPA + VQ_MAX_SIZE - 1, 1);
	for (unsigned i = 1; i < VQ_MAX_SIZE; i++) {
		assert_int_equal(vq_pop(&vq, &chain), 1);
		assert_int_equal(chain.head, i);
	}
	assert_int_equal(vq_pop(&vq, &chain), 0);
}

static void test_push_after_reset_is_noop(void **state)
{
	desc(0, DATA_GPA, 4, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	vq_push(&vq, 0, 4);
	assert_int_equal(used_idx(), 1);
	/* a head the queue never had: ignored */
	vq_push(&vq, QSZ, 4);
	assert_int_equal(used_idx(), 1);
	vq_reset(&vq);
	vq_push(&vq, 0, 4);
	assert_int_equal(used_idx(), 1);
	assert_int_equal(vq_pop(&vq, &chain), 0);
	assert_false(vq_should_notify(&vq));
	vq_set_notify(&vq, false);
	assert_int_equal(used_flags(), 0);
	uint8_t b[4];
	assert_int_equal(vq_write(&vq, &chain, 0, "abcd", 4), 0);
	assert_int_equal(vq_read(&vq, &chain, 0, b, 4), 0);
}

/* ---- malformed rings: each one breaks the queue ---- */

static void test_bad_avail_idx(void **state)
{
	set_avail_idx(QSZ + 1);
	assert_pop_broken();

	/* a driver that moved avail.idx backwards (§2.7.6.1) */
	queue_init(QSZ, false, true);
	set_avail_idx(0xffff);
	assert_pop_broken();

	/* too far ahead across the wrap */
	queue_init(QSZ, false, true);
	vq.last_avail = 0xfff0;
	set_avail_idx((uint16_t)(0xfff0 + QSZ + 1));
	assert_pop_broken();

	/* exactly QSZ ahead is a full ring, not a violation */
	queue_init(QSZ, false, true);
	vq.last_avail = 0xfff0;
	set_avail_idx((uint16_t)(0xfff0 + QSZ));
	assert_int_equal(vq_pop(&vq, &chain), 1);
}

static void test_bad_head(void **state)
{
	avail_add(QSZ);
	assert_pop_broken();
	queue_init(QSZ, false, true);
	avail_add(0xffff);
	assert_pop_broken();
}

static void test_bad_next(void **state)
{
	desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, QSZ);
	avail_add(0);
	assert_pop_broken();
}

static void test_loops(void **state)
{
	desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 0);
	avail_add(0);
	assert_pop_broken();

	queue_init(QSZ, false, true);
	desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 2);
	desc(2, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 0);
	avail_add(0);
	assert_pop_broken();

	/* a loop of empty descriptors is still a loop */
	queue_init(QSZ, false, true);
	desc(0, 0, 0, VIRTQ_DESC_F_NEXT, 1);
	desc(1, 0, 0, VIRTQ_DESC_F_NEXT, 0);
	avail_add(0);
	assert_pop_broken();

	/* a loop inside an indirect table */
	queue_init(QSZ, false, true);
	desc_at(IND_GPA, 0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 1);
	desc_at(IND_GPA, 1, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 0);
	desc(0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	assert_pop_broken();
}

static void test_chain_longer_than_queue(void **state)
{
	/* 15 direct + a 2-entry table = 17 descriptors > QSZ */
	for (unsigned i = 0; i < 15; i++)
		desc(i, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, (uint16_t)(i + 1));
	desc(15, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	desc_at(IND_GPA, 0, DATA_GPA, 1, VIRTQ_DESC_F_NEXT, 1);
	desc_at(IND_GPA, 1, DATA_GPA, 1, 0, 0);
	avail_add(0);
	assert_pop_broken();
}

static void test_indirect_not_negotiated(void **state)
{
	queue_init(QSZ, false, false);
	desc_at(IND_GPA, 0, DATA_GPA, 4, 0, 0);
	desc(0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	assert_pop_broken();
}

static void test_indirect_with_next(void **state)
{
	desc_at(IND_GPA, 0, DATA_GPA, 4, 0, 0);
	desc(0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA, 4, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	assert_pop_broken();
}

static void test_nested_indirect(void **state)
{
	desc_at(IND_GPA + 0x100, 0, DATA_GPA, 4, 0, 0);
	desc_at(IND_GPA, 0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 1);
	desc_at(IND_GPA, 1, IND_GPA + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc(0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	assert_pop_broken();
}

static void test_bad_indirect_table(void **state)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{IND_GPA, 0},  /* empty */
		{IND_GPA, 24}, /* not whole descriptors */
		{IND_GPA, 15},
		{IND_GPA, (QSZ + 1) * 16}, /* longer than the queue */
		{RAM_END - 16, 32},	   /* runs off the end of RAM */
		{RAM_GPA - 16, 32},	   /* starts before RAM */
		{0x10, 16},		   /* not RAM at all */
		{UINT64_MAX - 15, 32},	   /* addr + len wraps */
		{UINT64_MAX - 15, 16},	   /* ends exactly at 2^64, not RAM */
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		queue_init(QSZ, false, true);
		desc(0, bad[i].addr, bad[i].len, VIRTQ_DESC_F_INDIRECT, 0);
		avail_add(0);
		assert_pop_broken();
	}
}

static void test_bad_indirect_next(void **state)
{
	/* next indexes the table, which has 2 entries here (QSZ in the ring) */
	desc_at(IND_GPA, 0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 2);
	desc_at(IND_GPA, 2, DATA_GPA, 4, 0, 0);
	desc(0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	assert_pop_broken();
}

static void test_buffer_outside_ram(void **state)
{
	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{RAM_END, 1},	  /* just past the end */
		{RAM_END - 8, 9}, /* straddles the end */
		{RAM_GPA - 1, 2}, /* straddles the start */
		{RAM_GPA, RAM_SIZE + 1},
		{0, 16},	      /* below RAM */
		{UINT64_MAX - 7, 16}, /* addr + len wraps to 8 */
		{RAM_END - 1, UINT32_MAX},
		{UINT64_MAX, 1},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		/* as a direct descriptor after a good one, and inside a table */
		queue_init(QSZ, false, true);
		desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 1);
		desc(1, bad[i].addr, bad[i].len, VIRTQ_DESC_F_WRITE, 0);
		avail_add(0);
		assert_pop_broken();

		queue_init(QSZ, false, true);
		desc_at(IND_GPA, 0, bad[i].addr, bad[i].len, 0, 0);
		desc(0, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
		avail_add(0);
		assert_pop_broken();
	}
}

static void test_readable_after_writable(void **state)
{
	desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(1, DATA_GPA, 4, 0, 0);
	avail_add(0);
	assert_pop_broken();

	/* inside a table */
	queue_init(QSZ, false, true);
	desc_at(IND_GPA, 0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc_at(IND_GPA, 1, DATA_GPA, 4, 0, 0);
	desc(0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	assert_pop_broken();

	/* writable direct, then a readable one in the table */
	queue_init(QSZ, false, true);
	desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(1, IND_GPA, 16, VIRTQ_DESC_F_INDIRECT, 0);
	desc_at(IND_GPA, 0, DATA_GPA, 4, 0, 0);
	avail_add(0);
	assert_pop_broken();

	/* an empty readable one after a writable one is still out of order */
	queue_init(QSZ, false, true);
	desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(1, 0, 0, 0, 0);
	avail_add(0);
	assert_pop_broken();
}

/* Two descriptors of 3 GiB + 1 GiB: more than used.len can say. Needs a
 * guest region that large: address space only, never touched. */
static void test_total_length_overflow(void **state)
{
	const uint64_t big = 3ull << 30, big_gpa = 1ull << 32;
	uint8_t *p = mmap(NULL, big, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		skip();
	struct guest_mem m;
	const struct guest_region r[] = {
		{.gpa = RAM_GPA, .size = RAM_SIZE, .hva = RAM},
		{.gpa = big_gpa, .size = big, .hva = p},
	};
	assert_int_equal(guest_mem_init_static(&m, r, 2), 0);

	/* 2^32 - 1 in total is the most a chain may hold */
	assert_int_equal(vq_init(&vq, &m, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, false, true), 0);
	drv_idx = 0;
	desc(0, big_gpa, 3u << 30, VIRTQ_DESC_F_NEXT, 1);
	desc(1, big_gpa, (1u << 30) - 1, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.read_len + chain.write_len, UINT32_MAX);

	desc(1, big_gpa, 1u << 30, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	assert_pop_broken();

	/* the same through an indirect table */
	assert_int_equal(vq_init(&vq, &m, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, false, true), 0);
	drv_idx = 0;
	desc_at(IND_GPA, 0, big_gpa, 3u << 30, VIRTQ_DESC_F_NEXT, 1);
	desc_at(IND_GPA, 1, big_gpa, 1u << 30, 0, 0);
	desc(0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	assert_pop_broken();
	vq_reset(&vq);
	munmap(p, big);
}

static void test_broken_until_reinit(void **state)
{
	desc(0, DATA_GPA, 4, 0, 0);
	avail_add(QSZ); /* bad head */
	avail_add(0);	/* a good one behind it */
	assert_pop_broken();
	/* the driver fixed the entry, but the device still needs a reset */
	put_le16(g(AVAIL_GPA + 4), 0);
	assert_int_equal(vq_pop(&vq, &chain), -EBADMSG);
	vq_reset(&vq);
	assert_false(vq.broken);
	assert_int_equal(vq_pop(&vq, &chain), 0);
	queue_init(QSZ, false, true);
	assert_int_equal(vq.errors, 0);
	set_avail_idx(2);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(vq_pop(&vq, &chain), 1);
}

/* ---- vq_init ---- */

static void test_init_sizes(void **state)
{
	static const uint16_t bad[] = {0, 3, 6, 1000, 2 * VQ_MAX_SIZE, 0xffff, 0x8000};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(
			vq_init(&vq, &mem, bad[i], DESC_GPA, AVAIL_GPA, USED_GPA, false, false),
			-EINVAL);
		assert_int_equal(vq.size, 0);
		assert_int_equal(vq_pop(&vq, &chain), 0);
	}
	for (unsigned s = 1; s <= VQ_MAX_SIZE; s <<= 1)
		assert_int_equal(
			vq_init(&vq, &mem, (uint16_t)s, DESC_GPA, AVAIL_GPA, USED_GPA, true, true),
			0);
	assert_int_equal(vq_init(&vq, NULL, 16, DESC_GPA, AVAIL_GPA, USED_GPA, false, false),
			 -EINVAL);
}

static void test_init_alignment(void **state)
{
	const struct {
		uint64_t desc, avail, used;
	} bad[] = {
		{DESC_GPA + 8, AVAIL_GPA, USED_GPA}, {DESC_GPA + 1, AVAIL_GPA, USED_GPA},
		{DESC_GPA, AVAIL_GPA + 1, USED_GPA}, {DESC_GPA, AVAIL_GPA, USED_GPA + 2},
		{DESC_GPA, AVAIL_GPA, USED_GPA + 1},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(vq_init(&vq, &mem, QSZ, bad[i].desc, bad[i].avail, bad[i].used,
					 false, false),
				 -EINVAL);
	/* the minimum alignments are enough */
	assert_int_equal(
		vq_init(&vq, &mem, QSZ, DESC_GPA + 16, AVAIL_GPA + 2, USED_GPA + 4, false, false),
		0);
}

static void test_init_host_alignment(void **state)
{
	/* A region whose host mapping is not aligned like its guest address:
	 * the ring fields could not be accessed atomically. */
	struct guest_mem m;
	const struct guest_region r = {.gpa = RAM_GPA, .size = RAM_SIZE - 16, .hva = RAM + 2};
	assert_int_equal(guest_mem_init_static(&m, &r, 1), 0);
	assert_int_equal(vq_init(&vq, &m, QSZ, DESC_GPA, AVAIL_GPA, USED_GPA, false, false),
			 -EINVAL);
	/* ...and the other way round: misaligned guest addresses are refused
	 * even where the host pointer happens to be aligned. */
	const struct guest_region r2 = {.gpa = RAM_GPA + 2, .size = RAM_SIZE - 16, .hva = RAM};
	assert_int_equal(guest_mem_init_static(&m, &r2, 1), 0);
	assert_int_equal(
		vq_init(&vq, &m, QSZ, DESC_GPA + 2, AVAIL_GPA + 2, USED_GPA + 2, false, false),
		-EINVAL);
	assert_int_equal(
		vq_init(&vq, &m, QSZ, DESC_GPA + 0x12, AVAIL_GPA + 2, USED_GPA + 2, false, false),
		-EINVAL);
}

static void test_init_rings_in_ram(void **state)
{
	const uint16_t n = 64;
	const uint64_t desc_end = RAM_END - 16ull * n, avail_end = RAM_END - (6 + 2ull * n),
		       used_end = RAM_END - (6 + 8ull * n);
	/* Each ring ending exactly at the end of RAM is fine... */
	assert_int_equal(vq_init(&vq, &mem, n, desc_end, AVAIL_GPA, USED_GPA, true, true), 0);
	assert_int_equal(vq_init(&vq, &mem, n, DESC_GPA, avail_end, USED_GPA, true, true), 0);
	assert_int_equal(
		vq_init(&vq, &mem, n, DESC_GPA, AVAIL_GPA, ALIGN_DOWN(used_end, 4), true, true), 0);
	/* ...one aligned step further is not (avail's step drops used_event,
	 * used's drops avail_event: checked without EVENT_IDX too). */
	const struct {
		uint64_t desc, avail, used;
	} bad[] = {
		{desc_end + 16, AVAIL_GPA, USED_GPA},
		{DESC_GPA, avail_end + 2, USED_GPA},
		{DESC_GPA, AVAIL_GPA, ALIGN_DOWN(used_end, 4) + 4},
		{RAM_GPA - 0x1000, AVAIL_GPA, USED_GPA},
		{0, AVAIL_GPA, USED_GPA},
		{DESC_GPA, 0x2000, USED_GPA},
		{DESC_GPA, AVAIL_GPA, 0x3000},
		{UINT64_MAX - 0xf, AVAIL_GPA, USED_GPA},
		{DESC_GPA, UINT64_MAX - 1, USED_GPA},
		{DESC_GPA, AVAIL_GPA, UINT64_MAX - 3},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(
			vq_init(&vq, &mem, n, bad[i].desc, bad[i].avail, bad[i].used, false, false),
			-EINVAL);
		assert_null(vq.mem);
	}
}

static void test_init_resets_state(void **state)
{
	vq.last_avail = 7;
	vq.used_idx = 9;
	vq.broken = true;
	vq.errors = 3;
	vq.notify_off = true;
	vq.signalled_valid = true;
	queue_init(QSZ, true, false);
	assert_int_equal(vq.last_avail, 0);
	assert_int_equal(vq.used_idx, 0);
	assert_false(vq.broken);
	assert_int_equal(vq.errors, 0);
	assert_false(vq.notify_off);
	assert_false(vq.signalled_valid);
	assert_true(vq.event_idx);
	assert_false(vq.indirect);
	assert_int_equal(vq.desc_gpa, DESC_GPA);
	assert_int_equal(vq.avail_gpa, AVAIL_GPA);
	assert_int_equal(vq.used_gpa, USED_GPA);
	assert_ptr_equal(vq.mem, &mem);
}

/* ---- notifications ---- */

/* Makes n one-descriptor chains available, pops and pushes them. */
static void complete(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		desc(0, DATA_GPA, 4, VIRTQ_DESC_F_WRITE, 0);
		avail_add(0);
		assert_int_equal(vq_pop(&vq, &chain), 1);
		vq_push(&vq, 0, 4);
	}
}

static void test_notify_flags(void **state)
{
	complete(1);
	assert_true(vq_should_notify(&vq));
	/* nothing new since */
	assert_false(vq_should_notify(&vq));
	put_le16(g(AVAIL_GPA), VIRTQ_AVAIL_F_NO_INTERRUPT);
	complete(1);
	assert_false(vq_should_notify(&vq));
	put_le16(g(AVAIL_GPA), 0);
	complete(2);
	assert_true(vq_should_notify(&vq));
	/* only bit 0 is the flag; used_event is ignored without EVENT_IDX */
	put_le16(g(AVAIL_GPA), 0xfffe);
	set_used_event(0x1234);
	complete(1);
	assert_true(vq_should_notify(&vq));
}

static void test_notify_event_idx(void **state)
{
	queue_init(QSZ, true, false);
	complete(1);
	/* First call after init: notify, we cannot know what was signalled. */
	set_used_event(100);
	assert_true(vq_should_notify(&vq)); /* signalled at 1 */

	static const struct {
		unsigned pushes;
		uint16_t used_event;
		bool notify;
	} steps[] = {
		{1, 1, true},	/* used.idx 1 → 2 passes entry 1 */
		{1, 1, false},	/* 2 → 3: already past */
		{3, 4, true},	/* 3 → 6 covers 4 */
		{3, 5, false},	/* 6 → 9: 5 is behind */
		{1, 9, true},	/* 9 → 10: exactly */
		{2, 12, false}, /* 10 → 12: driver waits for entry 12 (idx 13) */
		{1, 12, true},	/* 12 → 13 */
		{0, 13, false}, /* nothing pushed */
		{1, 200, false},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(steps); i++) {
		complete(steps[i].pushes);
		set_used_event(steps[i].used_event);
		if (vq_should_notify(&vq) != steps[i].notify)
			fail_msg("step %u: used_event %u, used.idx %u", i, steps[i].used_event,
				 vq.used_idx);
	}
	/* avail.flags is ignored with EVENT_IDX (§2.7.7.2) */
	put_le16(g(AVAIL_GPA), VIRTQ_AVAIL_F_NO_INTERRUPT);
	set_used_event(vq.used_idx);
	complete(1);
	assert_true(vq_should_notify(&vq));
}

static void test_notify_event_idx_wrap(void **state)
{
	static const struct {
		uint16_t used_event;
		bool notify;
	} cases[] = {
		/* entries 65534, 65535 and 0 were written */
		{65534, true}, {65535, true},  {0, true},	{1, false}, /* entry 1 not yet */
		{2, false},    {65533, false}, {0x8000, false},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		queue_init(QSZ, true, false);
		vq.last_avail = vq.used_idx = vq.signalled_used = 65534;
		vq.signalled_valid = true;
		drv_idx = 65534;
		complete(3); /* used.idx 65534 → 1 */
		assert_int_equal(used_idx(), 1);
		set_used_event(cases[i].used_event);
		if (vq_should_notify(&vq) != cases[i].notify)
			fail_msg("used_event %u", cases[i].used_event);
	}
}

static void test_set_notify_flags(void **state)
{
	put_le16(g(USED_GPA + 4 + 8 * QSZ), 0x4242);
	vq_set_notify(&vq, false);
	assert_int_equal(used_flags(), VIRTQ_USED_F_NO_NOTIFY);
	vq_set_notify(&vq, true);
	assert_int_equal(used_flags(), 0);
	/* avail_event is left alone without EVENT_IDX */
	assert_int_equal(avail_event(), 0x4242);
	complete(1);
	assert_int_equal(vq_pop(&vq, &chain), 0);
	assert_int_equal(avail_event(), 0x4242);
}

static void test_set_notify_event_idx(void **state)
{
	queue_init(QSZ, true, false);
	put_le16(g(USED_GPA + 4 + 8 * QSZ), 0x4242);
	for (unsigned i = 0; i < 3; i++) {
		desc(0, DATA_GPA, 4, 0, 0);
		avail_add(0);
	}
	/* busy: disabling leaves avail_event where it was, flags at 0 */
	vq_set_notify(&vq, false);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(avail_event(), 0x4242);
	assert_int_equal(used_flags(), 0);
	/* re-enabling asks for a kick at the next entry not yet consumed */
	vq_set_notify(&vq, true);
	assert_int_equal(avail_event(), 2);
	assert_int_equal(used_flags(), 0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(avail_event(), 2); /* not moved while chains remain */
	/* finding the ring empty re-arms: kick me at entry 3 */
	assert_int_equal(vq_pop(&vq, &chain), 0);
	assert_int_equal(avail_event(), 3);
	/* ...but not while the device has notifications off */
	vq_set_notify(&vq, false);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(vq_pop(&vq, &chain), 0);
	assert_int_equal(avail_event(), 3);
	vq_set_notify(&vq, true);
	assert_int_equal(avail_event(), 4);
}

/* ---- vq_read / vq_write ---- */

static void test_read_across_buffers(void **state)
{
	/* readable 3 + 5 + 7 bytes holding 0..14, then a writable one */
	for (unsigned i = 0; i < 15; i++)
		*g(DATA_GPA + (i < 3 ? i : i < 8 ? 0x100 + i - 3 : 0x200 + i - 8)) = (uint8_t)i;
	desc(0, DATA_GPA, 3, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA + 0x100, 5, VIRTQ_DESC_F_NEXT, 2);
	desc(2, DATA_GPA + 0x200, 7, VIRTQ_DESC_F_NEXT, 3);
	desc(3, DATA_GPA + 0x300, 8, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);

	uint8_t b[32];
	memset(b, 0xff, sizeof(b));
	assert_int_equal(vq_read(&vq, &chain, 0, b, 15), 15);
	for (unsigned i = 0; i < 15; i++)
		assert_int_equal(b[i], i);
	assert_int_equal(b[15], 0xff);

	static const struct {
		uint64_t off, len, got;
	} cases[] = {
		{2, 4, 4},		  /* crosses the first boundary */
		{3, 5, 5},		  /* exactly the second buffer */
		{1, 13, 13},		  /* through all three */
		{8, 32, 7},		  /* short: the chain ends */
		{14, 32, 1},  {15, 4, 0}, /* at the end */
		{1000, 4, 0}, {UINT64_MAX, 4, 0}, {5, 0, 0},
	};
	for (unsigned c = 0; c < ARRAY_SIZE(cases); c++) {
		memset(b, 0xff, sizeof(b));
		assert_int_equal(vq_read(&vq, &chain, cases[c].off, b, cases[c].len), cases[c].got);
		for (unsigned i = 0; i < cases[c].got; i++)
			assert_int_equal(b[i], cases[c].off + i);
		assert_int_equal(b[cases[c].got], 0xff);
	}
}

static void test_write_across_buffers(void **state)
{
	/* readable 4, then writable 4 + 1 + 6 */
	memset(g(DATA_GPA), 0xee, 0x400);
	desc(0, DATA_GPA, 4, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA_GPA + 0x100, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	desc(2, DATA_GPA + 0x200, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 3);
	desc(3, DATA_GPA + 0x300, 6, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.write_len, 11);

	const uint8_t src[16] = "ABCDEFGHIJKLMNOP";
	/* from offset 3: 1 byte, 1 byte, then 3 of the last buffer */
	assert_int_equal(vq_write(&vq, &chain, 3, src, 5), 5);
	assert_memory_equal(g(DATA_GPA + 0x100),
			    "\xee\xee\xee"
			    "A",
			    4);
	assert_int_equal(*g(DATA_GPA + 0x200), 'B');
	assert_memory_equal(g(DATA_GPA + 0x300), "CDE\xee\xee\xee", 6);
	/* the readable buffer is not part of the writable space */
	assert_memory_equal(g(DATA_GPA), "\xee\xee\xee\xee", 4);
	/* short at the end, nothing past it */
	assert_int_equal(vq_write(&vq, &chain, 9, src, 16), 2);
	assert_memory_equal(g(DATA_GPA + 0x300),
			    "CDE\xee"
			    "AB",
			    6);
	assert_int_equal(*g(DATA_GPA + 0x306), 0xee);
	assert_int_equal(vq_write(&vq, &chain, 11, src, 1), 0);
	assert_int_equal(vq_write(&vq, &chain, 0, src, 11), 11);
	assert_memory_equal(g(DATA_GPA + 0x100), "ABCD", 4);
	assert_int_equal(*g(DATA_GPA + 0x200), 'E');
	assert_memory_equal(g(DATA_GPA + 0x300), "FGHIJK", 6);
	/* reading sees only the readable part */
	uint8_t b[8];
	assert_int_equal(vq_read(&vq, &chain, 0, b, 8), 4);
	assert_memory_equal(b, "\xee\xee\xee\xee", 4);
}

static void test_copy_offset_at_buffer_end(void **state)
{
	/* The first buffer ends at the last byte of RAM; starting exactly at
	 * its end must move on to the next buffer, not stop there. */
	desc(0, RAM_END - 4, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
	desc(1, DATA_GPA, 4, VIRTQ_DESC_F_WRITE, 0);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(vq_write(&vq, &chain, 4, "wxyz", 4), 4);
	assert_memory_equal(g(DATA_GPA), "wxyz", 4);
	assert_int_equal(vq_write(&vq, &chain, 2, "abcd", 4), 4);
	assert_memory_equal(g(RAM_END - 2), "ab", 2);
	assert_memory_equal(g(DATA_GPA), "cdyz", 4);
}

static void test_copy_through_indirect(void **state)
{
	desc_at(IND_GPA, 0, DATA_GPA, 2, VIRTQ_DESC_F_NEXT, 1);
	desc_at(IND_GPA, 1, RAM_END - 3, 3, VIRTQ_DESC_F_WRITE, 0);
	desc(0, IND_GPA, 32, VIRTQ_DESC_F_INDIRECT, 0);
	avail_add(0);
	memcpy(g(DATA_GPA), "hi", 2);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	uint8_t b[4] = {0};
	assert_int_equal(vq_read(&vq, &chain, 0, b, 4), 2);
	assert_memory_equal(b, "hi", 2);
	/* right up to the last byte of RAM, not one further (guards) */
	assert_int_equal(vq_write(&vq, &chain, 0, "xyzw", 4), 3);
	assert_memory_equal(g(RAM_END - 3), "xyz", 3);
	vq_push(&vq, chain.head, 3);
	assert_used_elem(0, 0, 3);
}

/* ---- unpop and deferred publication ---- */

static void test_unpop_returns_chains_in_order(void **state)
{
	desc(1, DATA_GPA, 10, VIRTQ_DESC_F_WRITE, 0);
	desc(2, DATA_GPA + 100, 20, VIRTQ_DESC_F_WRITE, 0);
	avail_add(1);
	avail_add(2);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.head, 2);
	assert_int_equal(vq_unpop(&vq, 2), 0);
	assert_int_equal(vq.last_avail, 0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.head, 1);
	assert_int_equal(chain.write_len, 10);
	/* Only the second goes back this time. */
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(vq_unpop(&vq, 1), 0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(chain.head, 2);
	assert_int_equal(vq_pop(&vq, &chain), 0);
	assert_int_equal(used_idx(), 0);
}

static void test_unpop_refuses_more_than_popped(void **state)
{
	assert_int_equal(vq_unpop(&vq, 1), -EINVAL);
	desc(0, DATA_GPA, 10, 0, 0);
	avail_add(0);
	assert_int_equal(vq_pop(&vq, &chain), 1);
	assert_int_equal(vq_unpop(&vq, 2), -EINVAL);
	assert_int_equal(vq.last_avail, 1);
	assert_int_equal(vq_unpop(&vq, 1), 0);
	assert_int_equal(vq_unpop(&vq, 1), -EINVAL);
	assert_int_equal(vq.last_avail, 0);
	vq_reset(&vq);
	assert_int_equal(vq_unpop(&vq, 1), -EINVAL);
}

static void test_push_defer_publishes_once(void **state)
{
	for (uint16_t i = 0; i < 3; i++) {
		desc(i, DATA_GPA + 100u * i, 50, VIRTQ_DESC_F_WRITE, 0);
		avail_add(i);
	}
	for (uint16_t i = 0; i < 3; i++) {
		assert_int_equal(vq_pop(&vq, &chain), 1);
		vq_push_defer(&vq, chain.head, 40 + i);
	}
	/* The elements are written, used.idx is not: the driver sees none. */
	assert_int_equal(used_idx(), 0);
	assert_used_elem(2, 2, 42);
	vq_publish(&vq);
	assert_int_equal(used_idx(), 3);
	assert_used_elem(0, 0, 40);
	assert_used_elem(1, 1, 41);
	assert_true(vq_should_notify(&vq));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_empty),
		T(test_single),
		T(test_chain_read_write),
		T(test_indirect),
		T(test_mixed_direct_then_indirect),
		T(test_zero_length_skipped),
		T(test_buffer_at_ram_edges),
		T(test_many_requests_and_used_ring),
		T(test_index_wrap),
		T(test_longest_chains),
		T(test_max_size_queue),
		T(test_push_after_reset_is_noop),
		T(test_bad_avail_idx),
		T(test_bad_head),
		T(test_bad_next),
		T(test_loops),
		T(test_chain_longer_than_queue),
		T(test_indirect_not_negotiated),
		T(test_indirect_with_next),
		T(test_nested_indirect),
		T(test_bad_indirect_table),
		T(test_bad_indirect_next),
		T(test_buffer_outside_ram),
		T(test_readable_after_writable),
		T(test_total_length_overflow),
		T(test_broken_until_reinit),
		T(test_init_sizes),
		T(test_init_alignment),
		T(test_init_host_alignment),
		T(test_init_rings_in_ram),
		T(test_init_resets_state),
		T(test_notify_flags),
		T(test_notify_event_idx),
		T(test_notify_event_idx_wrap),
		T(test_set_notify_flags),
		T(test_set_notify_event_idx),
		T(test_read_across_buffers),
		T(test_write_across_buffers),
		T(test_copy_offset_at_buffer_end),
		T(test_copy_through_indirect),
		T(test_unpop_returns_chains_in_order),
		T(test_unpop_refuses_more_than_popped),
		T(test_push_defer_publishes_once),
	};
#undef T
	return cmocka_run_group_tests_name("virtqueue", tests, NULL, NULL);
}
