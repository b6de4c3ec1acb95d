/* Unit tests for src/mem/guest_mem.c: the one checked gpa → pointer path
 * (DESIGN.md rule 1). Most tests use static regions over small host arrays
 * so that every boundary, including the top of the 64-bit address space, can
 * be placed exactly; the mapping tests check the real allocation's split. */
#include "mem/guest_mem.h"

#include "unit.h"

#define PAGE 0x1000u

static uint8_t ram_a[PAGE], ram_b[2 * PAGE], ram_top[PAGE];

/* Three regions: [0x10000, +1 page), a gap, [0x20000, +2 pages), and the
 * last page of the address space, whose end is exactly 2^64. */
static struct guest_mem mem;

static int setup_static(void **state)
{
	const struct guest_region r[] = {
		{.gpa = 0x10000, .size = PAGE, .hva = ram_a},
		{.gpa = 0x20000, .size = 2 * PAGE, .hva = ram_b},
		{.gpa = UINT64_MAX - PAGE + 1, .size = PAGE, .hva = ram_top},
	};
	assert_int_equal(guest_mem_init_static(&mem, r, 3), 0);
	return 0;
}

static void test_ptr_region_start_and_end(void **state)
{
	assert_ptr_equal(guest_mem_ptr(&mem, 0x10000, 1), ram_a);
	assert_ptr_equal(guest_mem_ptr(&mem, 0x10000, PAGE), ram_a);
	assert_ptr_equal(guest_mem_ptr(&mem, 0x10000 + PAGE - 1, 1), ram_a + PAGE - 1);
	assert_ptr_equal(guest_mem_ptr(&mem, 0x20000 + 8, 2 * PAGE - 8), ram_b + 8);
	/* First byte after a region, and the byte before it. */
	assert_null(guest_mem_ptr(&mem, 0x10000 + PAGE, 1));
	assert_null(guest_mem_ptr(&mem, 0x10000 - 1, 1));
	assert_null(guest_mem_ptr(&mem, 0x20000 + 2 * PAGE, 1));
}

static void test_ptr_crossing_end_by_one(void **state)
{
	assert_null(guest_mem_ptr(&mem, 0x10000, PAGE + 1));
	assert_null(guest_mem_ptr(&mem, 0x10000 + PAGE - 4, 5));
	assert_null(guest_mem_ptr(&mem, 0x20000 + 1, 2 * PAGE));
	assert_non_null(guest_mem_ptr(&mem, 0x10000 + PAGE - 4, 4));
}

static void test_ptr_gap_between_regions(void **state)
{
	/* Every byte of the gap misses, and a range spanning the gap from one
	 * region into the next misses even though both ends are RAM. */
	assert_null(guest_mem_ptr(&mem, 0x10000 + PAGE, 0x20000 - 0x10000 - PAGE));
	assert_null(guest_mem_ptr(&mem, 0x18000, 1));
	assert_null(guest_mem_ptr(&mem, 0x1ffff, 1));
	assert_null(guest_mem_ptr(&mem, 0x10000, 0x20000 - 0x10000 + 1));
	assert_null(guest_mem_ptr(&mem, 0, 1));
}

static void test_ptr_wraps_2_64(void **state)
{
	uint64_t top = UINT64_MAX - PAGE + 1;
	assert_ptr_equal(guest_mem_ptr(&mem, top, PAGE), ram_top);
	assert_ptr_equal(guest_mem_ptr(&mem, UINT64_MAX, 1), ram_top + PAGE - 1);
	/* gpa + len wraps past 2^64 back to 0 */
	assert_null(guest_mem_ptr(&mem, UINT64_MAX, 2));
	assert_null(guest_mem_ptr(&mem, top, PAGE + 1));
	assert_null(guest_mem_ptr(&mem, top + 1, UINT64_MAX));
	/* a wrap that would land inside the low region again */
	assert_null(guest_mem_ptr(&mem, top, PAGE + 0x10000 + 1));
	assert_null(guest_mem_ptr(&mem, 0x10000, UINT64_MAX - 0x10000 + 2));
}

static void test_ptr_len_zero_checked_as_one(void **state)
{
	assert_ptr_equal(guest_mem_ptr(&mem, 0x10000, 0), ram_a);
	assert_ptr_equal(guest_mem_ptr(&mem, 0x10000 + PAGE - 1, 0), ram_a + PAGE - 1);
	assert_null(guest_mem_ptr(&mem, 0x10000 + PAGE, 0));
	assert_null(guest_mem_ptr(&mem, 0, 0));
}

static void test_ptr_huge_len(void **state)
{
	assert_null(guest_mem_ptr(&mem, 0x10000, UINT64_MAX));
	assert_null(guest_mem_ptr(&mem, 0x10000, 1ull << 63));
	assert_null(guest_mem_ptr(&mem, 0x20000, (uint64_t)SIZE_MAX));
	assert_null(guest_mem_ptr(&mem, UINT64_MAX, UINT64_MAX));
}

static void test_region_lookup(void **state)
{
	assert_ptr_equal(guest_mem_region(&mem, 0x10000), &mem.regions[0]);
	assert_ptr_equal(guest_mem_region(&mem, 0x21fff), &mem.regions[1]);
	assert_ptr_equal(guest_mem_region(&mem, UINT64_MAX), &mem.regions[2]);
	assert_null(guest_mem_region(&mem, 0x22000));
	assert_null(guest_mem_region(&mem, 0xffff));
}

static void test_read_write(void **state)
{
	uint8_t buf[16], back[16];
	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(guest_mem_write(&mem, 0x20000 + 2 * PAGE - 16, buf, 16), 0);
	assert_memory_equal(ram_b + 2 * PAGE - 16, buf, 16);
	memset(back, 0, sizeof(back));
	assert_int_equal(guest_mem_read(&mem, 0x20000 + 2 * PAGE - 16, back, 16), 0);
	assert_memory_equal(back, buf, 16);

	/* One byte over the end: -EFAULT and nothing copied either way. */
	memset(ram_a, 0x11, PAGE);
	assert_int_equal(guest_mem_write(&mem, 0x10000 + PAGE - 15, buf, 16), -EFAULT);
	assert_int_equal(ram_a[PAGE - 15], 0x11);
	memset(back, 0x22, sizeof(back));
	assert_int_equal(guest_mem_read(&mem, 0x10000 + PAGE - 15, back, 16), -EFAULT);
	assert_int_equal(back[0], 0x22);
	assert_int_equal(guest_mem_read(&mem, 0x18000, back, 1), -EFAULT);
	assert_int_equal(guest_mem_write(&mem, UINT64_MAX, buf, 2), -EFAULT);
	assert_int_equal(guest_mem_read(&mem, UINT64_MAX, back, 1), 0);
}

static void test_init_static_rejects(void **state)
{
	struct guest_mem m;
	struct guest_region r = {.gpa = 0, .size = PAGE, .hva = ram_a};
	assert_int_equal(guest_mem_init_static(&m, &r, 0), -EINVAL);
	struct guest_region many[GUEST_MEM_MAX_REGIONS + 1];
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS + 1; i++)
		many[i] = (struct guest_region){.gpa = i * PAGE, .size = PAGE, .hva = ram_a};
	assert_int_equal(guest_mem_init_static(&m, many, GUEST_MEM_MAX_REGIONS + 1), -EINVAL);
	assert_int_equal(guest_mem_init_static(&m, many, GUEST_MEM_MAX_REGIONS), 0);
	assert_int_equal(m.total, GUEST_MEM_MAX_REGIONS * PAGE);
	r.size = 0;
	assert_int_equal(guest_mem_init_static(&m, &r, 1), -EINVAL);
	/* ending exactly at 2^64 is fine, one byte more wraps */
	r = (struct guest_region){.gpa = UINT64_MAX - PAGE + 2, .size = PAGE, .hva = ram_a};
	assert_int_equal(guest_mem_init_static(&m, &r, 1), -EINVAL);
	r.gpa--;
	assert_int_equal(guest_mem_init_static(&m, &r, 1), 0);
	assert_int_equal(m.fd, -1);
}

/* ---- guest_mem_init: a real anonymous mapping ---- */

static void test_init_below_hole(void **state)
{
	struct guest_mem m;
	unsigned fds = unit_open_fds();
	assert_int_equal(guest_mem_init(&m, 4 * PAGE, 8 * PAGE, 16 * PAGE), 0);
	assert_int_equal(m.nr_regions, 1);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, 4 * PAGE);
	assert_ptr_equal(m.regions[0].hva, m.base);
	assert_int_equal(m.total, 4 * PAGE);
	assert_int_equal(m.fd, -1);
	/* 2 MiB aligned, so host huge pages can back guest huge pages. */
	assert_int_equal((uintptr_t)m.base % GUEST_MEM_ALIGN, 0);
	assert_null(guest_mem_ptr(&m, 4 * PAGE, 1));
	assert_null(guest_mem_ptr(&m, 16 * PAGE, 1));
	guest_mem_fini(&m);
	assert_int_equal(m.fd, -1);
	assert_null(m.base);
	assert_int_equal(unit_open_fds(), fds);
}

static void test_init_exactly_hole(void **state)
{
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 8 * PAGE, 8 * PAGE, 16 * PAGE), 0);
	assert_int_equal(m.nr_regions, 1);
	assert_int_equal(m.regions[0].size, 8 * PAGE);
	guest_mem_fini(&m);
}

static void test_init_split_across_hole(void **state)
{
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, 11 * PAGE, 8 * PAGE, 16 * PAGE), 0);
	assert_int_equal(m.nr_regions, 2);
	assert_int_equal(m.regions[0].gpa, 0);
	assert_int_equal(m.regions[0].size, 8 * PAGE);
	assert_int_equal(m.regions[1].gpa, 16 * PAGE);
	assert_int_equal(m.regions[1].size, 3 * PAGE);
	assert_ptr_equal(m.regions[1].hva, m.base + 8 * PAGE);
	assert_int_equal(m.total, 11 * PAGE);
	/* The hole is not RAM; the high region ends where RAM ends. */
	assert_null(guest_mem_ptr(&m, 8 * PAGE, 1));
	assert_null(guest_mem_ptr(&m, 16 * PAGE - 1, 1));
	assert_null(guest_mem_ptr(&m, 19 * PAGE, 1));
	assert_null(guest_mem_ptr(&m, 8 * PAGE - 1, 2));

	/* Both regions are the one mapping: a write through gpa shows up at
	 * the offset the split promises. */
	uint32_t v = 0x5a5aa5a5, back = 0;
	assert_int_equal(guest_mem_write(&m, 16 * PAGE + 8, &v, 4), 0);
	memcpy(&back, m.base + 8 * PAGE + 8, 4);
	assert_int_equal(back, v);
	assert_int_equal(guest_mem_write(&m, 8 * PAGE - 4, &v, 4), 0);
	memcpy(&back, m.base + 8 * PAGE - 4, 4);
	assert_int_equal(back, v);
	guest_mem_fini(&m);
}

static void test_init_no_hole(void **state)
{
	struct guest_mem m;
	/* high_start == hole_start: two regions, back to back. */
	assert_int_equal(guest_mem_init(&m, 3 * PAGE, 2 * PAGE, 2 * PAGE), 0);
	assert_int_equal(m.nr_regions, 2);
	assert_int_equal(m.regions[1].gpa, 2 * PAGE);
	assert_int_equal(m.regions[1].size, PAGE);
	assert_non_null(guest_mem_ptr(&m, PAGE, PAGE));
	/* ...but an access may still not cross from one region into the next */
	assert_null(guest_mem_ptr(&m, 2 * PAGE - 1, 2));
	guest_mem_fini(&m);
}

static void test_init_errors(void **state)
{
	struct guest_mem m;
	unsigned fds = unit_open_fds();
	assert_int_equal(guest_mem_init(&m, 0, 8 * PAGE, 16 * PAGE), -EINVAL);
	assert_int_equal(m.fd, -1);
	assert_int_equal(guest_mem_init(&m, PAGE, 0, 16 * PAGE), -EINVAL);
	assert_int_equal(guest_mem_init(&m, PAGE, 8 * PAGE, 4 * PAGE), -EINVAL);
	/* More than any address space can map: mmap fails. */
	assert_int_equal(guest_mem_init(&m, 1ull << 60, 8 * PAGE, 16 * PAGE), -ENOMEM);
	assert_int_equal(m.fd, -1);
	assert_null(m.base);
	/* Sizes that would overflow the alignment slack: refused, nothing leaked. */
	assert_true(guest_mem_init(&m, UINT64_MAX, 8 * PAGE, 16 * PAGE) < 0);
	assert_int_equal(m.fd, -1);
	assert_int_equal(unit_open_fds(), fds);
	/* fini after a failed init is harmless */
	guest_mem_fini(&m);
	assert_int_equal(unit_open_fds(), fds);
}

/* ---------------------------------------------------------------- device-write bitmap */

#define TRACK_PAGES 256u

static void test_dirty_take_clears(void **state)
{
	struct guest_mem m;
	assert_int_equal(guest_mem_init(&m, TRACK_PAGES * PAGE, 1ull << 32, 1ull << 32), 0);
	assert_int_equal(guest_mem_track(&m), 0);
	guest_mem_dirty(&m, 0, 1);                      /* page 0 */
	guest_mem_dirty(&m, 5 * PAGE - 1, 2);           /* pages 4 and 5 */
	guest_mem_dirty(&m, 70 * PAGE, 3 * PAGE);       /* 70, 71, 72 */
	guest_mem_dirty(&m, 200 * PAGE, 0);             /* nothing */
	guest_mem_dirty(&m, TRACK_PAGES * PAGE, 1);     /* outside RAM: nothing */
	uint64_t b[TRACK_PAGES / 64] = { 0 };
	/* Unaligned first: pages 3.. 99 (bit i is page 3 + i). */
	guest_mem_take_dirty(&m, 3, 97, b);
	assert_int_equal(b[0], (1ull << 1) | (1ull << 2));   /* pages 4, 5 */
	assert_int_equal(b[1], 7ull << 3);                  /* pages 70..72: bits 67..69 */
	/* Aligned, whole words: only page 0 is left. */
	memset(b, 0, sizeof(b));
	guest_mem_take_dirty(&m, 0, TRACK_PAGES, b);
	assert_int_equal(b[0], 1);
	assert_int_equal(b[1] | b[2] | b[3], 0);
	memset(b, 0, sizeof(b));
	guest_mem_take_dirty(&m, 0, TRACK_PAGES, b);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	guest_mem_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ptr_region_start_and_end),
		cmocka_unit_test(test_ptr_crossing_end_by_one),
		cmocka_unit_test(test_ptr_gap_between_regions),
		cmocka_unit_test(test_ptr_wraps_2_64),
		cmocka_unit_test(test_ptr_len_zero_checked_as_one),
		cmocka_unit_test(test_ptr_huge_len),
		cmocka_unit_test(test_region_lookup),
		cmocka_unit_test(test_read_write),
		cmocka_unit_test(test_init_static_rejects),
		cmocka_unit_test(test_init_below_hole),
		cmocka_unit_test(test_init_exactly_hole),
		cmocka_unit_test(test_init_split_across_hole),
		cmocka_unit_test(test_init_no_hole),
		cmocka_unit_test(test_init_errors),
		cmocka_unit_test(test_dirty_take_clears),
	};
	return cmocka_run_group_tests_name("guest_mem", tests, setup_static, NULL);
}
