/* Unit tests for src/arch/x86/e820.c: the memory map Linux and PVH guests
 * trust. Guest memory is laid out as guest_mem_init() does (low RAM below
 * the 3 GiB hole, the rest from 4 GiB) with static regions; e820 only looks
 * at the regions, never at the bytes, so no host memory backs them. */
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "util/util.h"

#include "unit.h"

/* Regions as guest_mem_init(total, X86_HOLE_START, X86_HIGH_START) makes them. */
static void layout(struct guest_mem *mem, uint64_t total)
{
	static uint8_t dummy;
	struct guest_region r[2];
	unsigned n = 1;
	uint64_t low = MIN(total, X86_HOLE_START);
	r[0] = (struct guest_region){.gpa = 0, .size = low, .hva = &dummy};
	if (total > low) {
		r[1] = (struct guest_region){
			.gpa = X86_HIGH_START, .size = total - low, .hva = &dummy};
		n = 2;
	}
	assert_int_equal(guest_mem_init_static(mem, r, n), 0);
}

/* Invariants every map must hold, whatever the size. */
static unsigned check_map(const struct guest_mem *mem, struct e820_entry *e)
{
	/* Entries past the count are poisoned to catch a wrong count. */
	for (unsigned i = 0; i < E820_MAX; i++)
		e[i] = (struct e820_entry){0xdead, 0xbeef, 99};
	unsigned n = x86_e820_build(mem, e);
	assert_in_range(n, 1, E820_MAX);
	uint64_t ram = 0;
	for (unsigned i = 0; i < n; i++) {
		assert_true(e[i].size > 0);
		assert_true(e[i].type == E820_RAM || e[i].type == E820_RESERVED);
		assert_true(e[i].addr + e[i].size > e[i].addr); /* no wrap */
		if (i > 0)					/* sorted, no overlap */
			assert_true(e[i - 1].addr + e[i - 1].size <= e[i].addr);
		if (e[i].type == E820_RAM) {
			/* every RAM byte is backed by guest memory */
			assert_non_null(guest_mem_region(mem, e[i].addr));
			assert_ptr_equal(guest_mem_region(mem, e[i].addr),
					 guest_mem_region(mem, e[i].addr + e[i].size - 1));
			ram += e[i].size;
			/* nothing RAM in the 32-bit MMIO hole */
			assert_true(e[i].addr + e[i].size <= X86_HOLE_START ||
				    e[i].addr >= X86_HIGH_START);
		}
	}
	/* All RAM is described except the EBDA and 0xa0000-1 MiB. */
	assert_int_equal(ram, mem->total - (X86_KERNEL_LOAD - X86_EBDA));
	return n;
}

static void expect(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, size);
	assert_int_equal(e->type, type);
}

/* The low part every map starts with: RAM to the EBDA, the EBDA and the
 * ACPI area reserved (the guest must not reuse the tables' pages). */
static void expect_low(const struct e820_entry *e)
{
	expect(&e[0], 0, X86_EBDA, E820_RAM);
	expect(&e[1], X86_EBDA, 0xa0000 - X86_EBDA, E820_RESERVED);
	expect(&e[2], X86_ACPI_BASE, X86_ACPI_END - X86_ACPI_BASE, E820_RESERVED);
}

static void test_small_memory(void **state)
{
	struct guest_mem mem;
	struct e820_entry e[E820_MAX];
	layout(&mem, MiB(4)); /* CONFIG_MIN_MEM_MIB */
	assert_int_equal(check_map(&mem, e), 4);
	expect_low(e);
	expect(&e[3], X86_KERNEL_LOAD, MiB(3), E820_RAM);
}

static void test_below_hole(void **state)
{
	struct guest_mem mem;
	struct e820_entry e[E820_MAX];
	layout(&mem, MiB(256));
	assert_int_equal(check_map(&mem, e), 4);
	expect_low(e);
	expect(&e[3], X86_KERNEL_LOAD, MiB(255), E820_RAM);
}

static void test_exactly_3g(void **state)
{
	struct guest_mem mem;
	struct e820_entry e[E820_MAX];
	layout(&mem, GiB(3));
	assert_int_equal(mem.nr_regions, 1);
	assert_int_equal(check_map(&mem, e), 4);
	expect(&e[3], X86_KERNEL_LOAD, X86_HOLE_START - X86_KERNEL_LOAD, E820_RAM);
}

static void test_one_page_above_hole(void **state)
{
	struct guest_mem mem;
	struct e820_entry e[E820_MAX];
	layout(&mem, GiB(3) + 4096);
	assert_int_equal(check_map(&mem, e), 5);
	expect(&e[3], X86_KERNEL_LOAD, X86_HOLE_START - X86_KERNEL_LOAD, E820_RAM);
	expect(&e[4], X86_HIGH_START, 4096, E820_RAM);
}

static void test_above_hole(void **state)
{
	struct guest_mem mem;
	struct e820_entry e[E820_MAX];
	layout(&mem, GiB(64));
	assert_int_equal(check_map(&mem, e), 5);
	expect_low(e);
	expect(&e[4], X86_HIGH_START, GiB(61), E820_RAM);
}

/* A low region ending exactly at 1 MiB: no empty RAM entry above it. */
static void test_low_ends_at_1m(void **state)
{
	struct guest_mem mem;
	struct e820_entry e[E820_MAX];
	layout(&mem, X86_KERNEL_LOAD);
	assert_int_equal(check_map(&mem, e), 3);
	expect_low(e);
	assert_int_equal(e[3].type, 99); /* untouched */
}

/* The most regions guest memory allows still fit E820_MAX. */
static void test_max_regions_fit(void **state)
{
	static uint8_t dummy;
	struct guest_region r[GUEST_MEM_MAX_REGIONS];
	r[0] = (struct guest_region){.gpa = 0, .size = MiB(64), .hva = &dummy};
	for (unsigned i = 1; i < GUEST_MEM_MAX_REGIONS; i++)
		r[i] = (struct guest_region){.gpa = GiB(4) * i, .size = GiB(1), .hva = &dummy};
	struct guest_mem mem;
	assert_int_equal(guest_mem_init_static(&mem, r, GUEST_MEM_MAX_REGIONS), 0);
	struct e820_entry e[E820_MAX];
	assert_int_equal(check_map(&mem, e), 4 + GUEST_MEM_MAX_REGIONS - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_memory),	cmocka_unit_test(test_below_hole),
		cmocka_unit_test(test_exactly_3g),	cmocka_unit_test(test_one_page_above_hole),
		cmocka_unit_test(test_above_hole),	cmocka_unit_test(test_low_ends_at_1m),
		cmocka_unit_test(test_max_regions_fit),
	};
	return cmocka_run_group_tests_name("e820", tests, NULL, NULL);
}
