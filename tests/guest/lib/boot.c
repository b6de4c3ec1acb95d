/*
 * boot.c — the C half of the PVH entry: copies what the monitor handed over
 * (hvm_start_info, memmap, command line) into .bss, completes the identity map,
 * then runs the guest.
 *
 * Follows Xen's public/arch-x86/hvm/start_info.h (versions 0 and 1). Modules
 * (nr_modules/modlist_paddr) are ignored: no test guest takes an initrd.
 * The monitor's structures are checked as a test of the monitor: a bad magic,
 * a wrapping memmap entry or an unterminated command line is a FAIL.
 */
#include "boot.h"
#include "io.h"
#include "layout.h"
#include "power.h"
#include "str.h"
#include "test.h"
#include "trap.h"

#define START_INFO_MAGIC	0x336ec578
#define SZ_2M			0x200000ULL
#define SZ_4G			0x100000000ULL
#define PDPT_SPAN		(512ULL << 30)

/*
 * Page directories for memory above 4 GiB, one per GiB touched: 60 of them with
 * the four below 4 GiB cover a 64 GiB physical address space at 2 MiB pages.
 */
#define PD_POOL			60

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	/* version >= 1 */
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

extern char __image_start[], __image_end[];
extern uint64_t boot_pdpt[512];
extern uint64_t boot_pd[4][512];

static char cmdline[BOOT_CMDLINE_MAX];
static struct boot_mem_range memmap[BOOT_MEMMAP_MAX];
static unsigned memmap_n;
static uint64_t rsdp;
static uint64_t pd_pool[PD_POOL][512] __attribute__((aligned(4096)));
static unsigned pd_used;

const char *boot_cmdline(void)
{
	return cmdline;
}

const struct boot_mem_range *boot_memmap(unsigned *n)
{
	*n = memmap_n;
	return memmap;
}

uint64_t boot_rsdp(void)
{
	return rsdp;
}

uint64_t boot_image_start(void)
{
	return (uintptr_t)__image_start;
}

uint64_t boot_image_end(void)
{
	return (uintptr_t)__image_end;
}

/* RAM, ACPI data and NVS are cacheable memory; anything else may be a device. */
static int is_memory_type(uint32_t type)
{
	return type == BOOT_MEM_RAM || type == BOOT_MEM_ACPI ||
	       type == BOOT_MEM_NVS;
}

static int chunk_holds_memory(uint64_t start)
{
	unsigned i;

	for (i = 0; i < memmap_n; i++) {
		const struct boot_mem_range *r = &memmap[i];

		if (is_memory_type(r->type) && r->addr < start + SZ_2M &&
		    start < r->addr + r->size)
			return 1;
	}
	return 0;
}

/* The page directory covering the GiB at pa, taken from the pool if new. */
static uint64_t *pd_for(uint64_t pa)
{
	uint64_t gb = pa >> 30;

	if (pa >= PDPT_SPAN)
		test_fail("boot: memory at 0x%lx is beyond the 512 GiB the map covers",
			  pa);
	if (!(boot_pdpt[gb] & PTE_P)) {
		if (pd_used == PD_POOL)
			test_fail("boot: memory at 0x%lx needs more than %d page directories",
				  pa, PD_POOL);
		boot_pdpt[gb] = (uintptr_t)pd_pool[pd_used++] | PTE_P | PTE_W;
	}
	return (uint64_t *)(uintptr_t)(boot_pdpt[gb] & ~0xfffULL);
}

/*
 * boot.S mapped 0-4 GiB write-back. Make the 2 MiB chunks that hold no memory
 * uncached (the LAPIC and other MMIO must not be cached on real hardware), and
 * map the memory ranges above 4 GiB.
 */
static void map_memory(void)
{
	unsigned i;
	uint64_t a;

	/* Without a memmap nothing is known to be a device: leave it all cached. */
	for (i = 0; memmap_n && i < 2048; i++) {
		if (!chunk_holds_memory((uint64_t)i * SZ_2M))
			boot_pd[i / 512][i % 512] |= PTE_PCD | PTE_PWT;
	}
	for (i = 0; i < memmap_n; i++) {
		const struct boot_mem_range *r = &memmap[i];
		uint64_t end = r->addr + r->size;

		/* Reserved ranges up there (QEMU's at 1012 GiB) are no concern. */
		if (end <= SZ_4G || !is_memory_type(r->type))
			continue;
		a = r->addr < SZ_4G ? SZ_4G : r->addr & ~(SZ_2M - 1);
		for (; a < end; a += SZ_2M)
			pd_for(a)[(a >> 21) & 511] = a | PTE_P | PTE_W | PTE_PS;
	}
	write_cr3(read_cr3());
}

int boot_is_mapped(uint64_t pa, uint64_t len)
{
	uint64_t end, a;

	if (len == 0 || len > UINT64_MAX - pa)
		return 0;
	end = pa + len;
	if (end <= SZ_4G)
		return 1;
	if (end > PDPT_SPAN)
		return 0;
	for (a = pa & ~(SZ_2M - 1); a < end; a += SZ_2M) {
		uint64_t pdpte = boot_pdpt[a >> 30];
		const uint64_t *pd;

		if (!(pdpte & PTE_P))
			return 0;
		pd = (const uint64_t *)(uintptr_t)(pdpte & ~0xfffULL);
		if (!(pd[(a >> 21) & 511] & PTE_P))
			return 0;
	}
	return 1;
}

void boot_map_mmio(uint64_t pa, uint64_t len)
{
	uint64_t end, a;

	if (len == 0 || len > UINT64_MAX - pa)
		test_fail("boot: cannot map MMIO 0x%lx size 0x%lx", pa, len);
	end = pa + len;
	if (end <= SZ_4G)
		return;
	/* Below 4 GiB everything is mapped already, and uncached where no memory is. */
	for (a = (pa < SZ_4G ? SZ_4G : pa) & ~(SZ_2M - 1); a < end; a += SZ_2M)
		pd_for(a)[(a >> 21) & 511] =
			a | PTE_P | PTE_W | PTE_PS | PTE_PCD | PTE_PWT;
	write_cr3(read_cr3());
}

static void copy_memmap(uint64_t pa, uint32_t n)
{
	const struct boot_mem_range *src;
	unsigned i;

	if (n > BOOT_MEMMAP_MAX)
		test_fail("boot: memmap has %u entries, more than %d", n,
			  BOOT_MEMMAP_MAX);
	/* Only 0-4 GiB is mapped until the memmap has been read. */
	if (pa >= SZ_4G || (uint64_t)n * sizeof(*src) > SZ_4G - pa)
		test_fail("boot: memmap at 0x%lx is not below 4 GiB", pa);
	src = (const struct boot_mem_range *)(uintptr_t)pa;
	for (i = 0; i < n; i++) {
		memmap[i] = src[i];
		/* QEMU's PVH ROM pads the table with empty entries: allowed. */
		if (memmap[i].size > UINT64_MAX - memmap[i].addr)
			test_fail("boot: bad memmap entry %u: 0x%lx size 0x%lx", i,
				  memmap[i].addr, memmap[i].size);
	}
	memmap_n = n;
}

static void copy_cmdline(uint64_t pa)
{
	const char *src = (const char *)(uintptr_t)pa;
	size_t i;

	for (i = 0; i < BOOT_CMDLINE_MAX; i++) {
		if (!boot_is_mapped(pa + i, 1))
			test_fail("boot: command line at 0x%lx is not mapped", pa);
		cmdline[i] = src[i];
		if (!cmdline[i])
			return;
	}
	test_fail("boot: command line longer than %d bytes", BOOT_CMDLINE_MAX - 1);
}

void boot_main(uint32_t start_info_pa)
{
	struct hvm_start_info si;

	trap_init();
	if (!start_info_pa)
		test_fail("boot: no start_info (EBX=0)");
	memcpy(&si, (const void *)(uintptr_t)start_info_pa, sizeof(si));
	if (si.magic != START_INFO_MAGIC)
		test_fail("boot: bad start_info magic 0x%x", si.magic);
	if (si.version >= 1 && si.memmap_entries)
		copy_memmap(si.memmap_paddr, si.memmap_entries);
	map_memory();
	if (si.cmdline_paddr)
		copy_cmdline(si.cmdline_paddr);
	rsdp = si.rsdp_paddr;

	guest_main();
	power_off();
}
