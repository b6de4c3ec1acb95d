/*
 * memory — checks the memory map a monitor reports, and that every page it
 * calls RAM really is distinct, working RAM (including above 4 GiB).
 *
 * Output:
 *   mote-test: e820 0x<addr> 0x<size> <type>   one per memmap entry, as given
 *   mote-test: memory ram=<bytes of type-1 RAM, decimal> ranges=<entries> image_end=0x<hex>
 *   mote-test: memory checked=<pages> bad=<count>
 *   mote-test: done
 * Failures: "mote-test: FAIL memory ..." (no memmap, overlapping RAM ranges,
 * bad > 0); the first few bad addresses are listed as
 * "mote-test: memory mismatch addr=0x.. got=0x.. want=0x..".
 *
 * Only RAM above the guest image is written: below it lie the monitor's boot
 * structures. Each 4 KiB page gets an address-derived value in its first
 * 8 bytes and each range one in its last 8; everything is written before
 * anything is read back, so two addresses aliasing one host page show up.
 */
#include "guest.h"

#define PAGE		4096ULL
#define MISMATCH_SHOW	4

static uint64_t checked, bad;

/* Distinct for every address: multiplying by an odd constant is a bijection. */
static uint64_t pattern(uint64_t pa)
{
	return (pa * 0x9e3779b97f4a7c15ULL) ^ 0x6d6f74652d6d656dULL;
}

static uint64_t test_start(const struct boot_mem_range *r)
{
	uint64_t start = r->addr > boot_image_end() ? r->addr : boot_image_end();

	return (start + PAGE - 1) & ~(PAGE - 1);
}

/* The last 8 bytes of the range, unless they overlap a page's first 8. */
static int has_tail(const struct boot_mem_range *r, uint64_t *tail)
{
	uint64_t end = r->addr + r->size;

	if (r->size < 8 || end - 8 < test_start(r))
		return 0;
	*tail = end - 8;
	return (*tail & (PAGE - 1)) >= 8;
}

static void check(uint64_t pa, uint64_t want)
{
	uint64_t got = mmio_read64(pa);

	if (got == want)
		return;
	if (bad++ < MISMATCH_SHOW)
		test_log("memory mismatch addr=0x%lx got=0x%lx want=0x%lx", pa,
			 got, want);
}

/*
 * write == 1 fills the range, write == 0 verifies it. The volatile mmio_*
 * accessors make every access happen exactly once, in order.
 */
static void walk(const struct boot_mem_range *r, int write)
{
	uint64_t end = r->addr + r->size, a, tail;

	for (a = test_start(r); a < end && end - a >= 8; a += PAGE) {
		if (write) {
			mmio_write64(a, pattern(a));
		} else {
			check(a, pattern(a));
			checked++;
		}
	}
	if (has_tail(r, &tail)) {
		if (write)
			mmio_write64(tail, ~pattern(tail));
		else
			check(tail, ~pattern(tail));
	}
}

static void check_overlaps(const struct boot_mem_range *map, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = i + 1; j < n; j++) {
			const struct boot_mem_range *a = &map[i], *b = &map[j];

			if (a->type == BOOT_MEM_RAM && b->type == BOOT_MEM_RAM &&
			    a->addr < b->addr + b->size && b->addr < a->addr + a->size)
				test_fail("memory: RAM ranges %u and %u overlap", i, j);
		}
	}
}

void guest_main(void)
{
	unsigned n, i;
	const struct boot_mem_range *map = boot_memmap(&n);
	uint64_t ram = 0;

	if (!n)
		test_fail("memory: the monitor passed no memmap");
	for (i = 0; i < n; i++) {
		test_log("e820 0x%lx 0x%lx %u", map[i].addr, map[i].size,
			 map[i].type);
		if (map[i].type == BOOT_MEM_RAM)
			ram += map[i].size;
	}
	test_log("memory ram=%lu ranges=%u image_end=0x%lx", ram, n,
		 boot_image_end());
	check_overlaps(map, n);

	for (i = 0; i < n; i++) {
		if (map[i].type == BOOT_MEM_RAM)
			walk(&map[i], 1);
	}
	for (i = 0; i < n; i++) {
		if (map[i].type == BOOT_MEM_RAM)
			walk(&map[i], 0);
	}
	test_log("memory checked=%lu bad=%lu", checked, bad);
	if (bad)
		test_fail("memory bad=%lu", bad);
	test_done();
}
