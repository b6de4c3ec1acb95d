/*
 * boot.h — what the PVH entry learned from the monitor, and the identity map.
 *
 * boot_main() copies hvm_start_info, the command line and the memmap into the
 * image before anything else writes memory, so guests read them only through
 * these accessors and may then reuse low memory freely (except the trampoline
 * page, see layout.h).
 */
#ifndef GUEST_BOOT_H
#define GUEST_BOOT_H

#include <stddef.h>
#include <stdint.h>

/* e820 types as the PVH memmap uses them. */
#define BOOT_MEM_RAM		1
#define BOOT_MEM_RESERVED	2
#define BOOT_MEM_ACPI		3
#define BOOT_MEM_NVS		4

#define BOOT_MEMMAP_MAX		128
#define BOOT_CMDLINE_MAX	4096

struct boot_mem_range {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

/* Called once by boot.S on the BSP; runs guest_main() and then powers off. */
void boot_main(uint32_t start_info_pa) __attribute__((noreturn));

/* The command line ("" when the monitor passed none). */
const char *boot_cmdline(void);

/* The memmap as given (unsorted); *n receives the entry count. */
const struct boot_mem_range *boot_memmap(unsigned *n);

/* hvm_start_info.rsdp_paddr: 0 when the monitor left it to a BIOS-area scan. */
uint64_t boot_rsdp(void);

/* First byte of the image and first byte past it (.bss included, 4 KiB aligned). */
uint64_t boot_image_start(void);
uint64_t boot_image_end(void);

/*
 * Returns 1 if [pa, pa + len) is identity-mapped (all of 0-4 GiB is, plus the RAM,
 * ACPI and NVS ranges of the memmap above it), 0 otherwise; len == 0 or wrap-around gives 0.
 */
int boot_is_mapped(uint64_t pa, uint64_t len);

/*
 * Identity-maps [pa, pa + len) uncached (2 MiB pages), for device registers
 * above 4 GiB such as a 64-bit PCI BAR; below 4 GiB it is already mapped, and
 * uncached unless the 2 MiB chunk also holds memory. Call before touching the
 * range. A range that wraps or lies beyond 512 GiB is a test failure.
 */
void boot_map_mmio(uint64_t pa, uint64_t len);

/* The page-table root, for CPUs started later (trampoline.S). */
extern uint64_t boot_pml4[512];

/* The guest's own code, called on the BSP with interrupts off. */
void guest_main(void);

#endif
