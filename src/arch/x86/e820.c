/* The e820 map: low RAM up to the EBDA, the EBDA and the ACPI/BIOS area
 * reserved, then RAM from 1 MiB to the hole and above 4 GiB. */
#include "arch/x86/e820.h"

#include "arch/x86/layout.h"

static unsigned add(struct e820_entry *out, unsigned n, uint64_t addr, uint64_t size,
		    uint32_t type)
{
	if (size == 0 || n >= E820_MAX)
		return n;
	out[n] = (struct e820_entry){ addr, size, type };
	return n + 1;
}

unsigned x86_e820_build(const struct guest_mem *mem, struct e820_entry *out)
{
	unsigned n = 0;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		uint64_t end = r->gpa + r->size;
		if (r->gpa == 0) {
			/* Low memory always reaches past 1 MiB (config enforces it). */
			n = add(out, n, 0, X86_EBDA, E820_RAM);
			n = add(out, n, X86_EBDA, 0xa0000 - X86_EBDA, E820_RESERVED);
			n = add(out, n, X86_ACPI_BASE, X86_ACPI_END - X86_ACPI_BASE, E820_RESERVED);
			if (end > X86_KERNEL_LOAD)
				n = add(out, n, X86_KERNEL_LOAD, end - X86_KERNEL_LOAD, E820_RAM);
		} else {
			n = add(out, n, r->gpa, r->size, E820_RAM);
		}
	}
	return n;
}
