/*
 * acpi.c — RSDP discovery, table lookup and MADT walking (see acpi.h).
 *
 * Follows ACPI 6.5 sections 5.2.5 (RSDP), 5.2.7/5.2.8 (RSDT/XSDT), 5.2.9 (FADT
 * X_DSDT/DSDT) and 5.2.12 (MADT). The monitor's tables are treated as a thing
 * under test: lengths are bounded, addresses must be mapped, and checksums are
 * verified before a table is used.
 */
#include "acpi.h"
#include "boot.h"
#include "str.h"
#include "test.h"

#define BIOS_SCAN_START	0xe0000
#define BIOS_SCAN_END	0x100000
#define TABLE_MAX_LEN	(1u << 20)	/* a sanity bound, not an ACPI limit */
#define FADT_DSDT	40		/* offset of the 32-bit DSDT address */
#define FADT_X_DSDT	140		/* offset of the 64-bit X_DSDT address */

struct acpi_rsdp_v2 {
	char sig[8];
	uint8_t checksum;
	char oem_id[6];
	uint8_t revision;
	uint32_t rsdt_addr;
	/* revision >= 2 */
	uint32_t length;
	uint64_t xsdt_addr;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

#define RSDP_V1_LEN	20

static uint8_t sum8(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;

	while (len--)
		s += *b++;
	return s;
}

static int rsdp_valid(const struct acpi_rsdp_v2 *r)
{
	return memcmp(r->sig, "RSD PTR ", 8) == 0 && sum8(r, RSDP_V1_LEN) == 0;
}

uint64_t acpi_rsdp(void)
{
	uint64_t pa = boot_rsdp();
	const struct acpi_rsdp_v2 *r;

	if (pa) {
		if (!boot_is_mapped(pa, sizeof(*r)))
			test_fail("acpi: RSDP at 0x%lx is not mapped", pa);
		r = (const void *)(uintptr_t)pa;
		if (memcmp(r->sig, "RSD PTR ", 8))
			test_fail("acpi: no RSDP signature at rsdp_paddr 0x%lx", pa);
		if (sum8(r, RSDP_V1_LEN))
			test_fail("bad checksum RSDP");
		return pa;
	}
	for (pa = BIOS_SCAN_START; pa < BIOS_SCAN_END; pa += 16) {
		if (rsdp_valid((const void *)(uintptr_t)pa))
			return pa;
	}
	return 0;
}

/* Validates the table at pa: mapped, sane length, checksum. */
static const struct acpi_sdt *table_at(uint64_t pa)
{
	const struct acpi_sdt *t;
	char sig[5] = { 0 };

	if (!pa || !boot_is_mapped(pa, sizeof(*t)))
		test_fail("acpi: table at 0x%lx is not mapped", pa);
	t = (const void *)(uintptr_t)pa;
	memcpy(sig, t->sig, 4);
	if (t->length < sizeof(*t) || t->length > TABLE_MAX_LEN ||
	    !boot_is_mapped(pa, t->length))
		test_fail("acpi: table %s at 0x%lx has bad length %u", sig, pa,
			  t->length);
	if (sum8(t, t->length))
		test_fail("bad checksum %s", sig);
	return t;
}

/* The XSDT (entries 8 bytes wide) or else the RSDT (4 bytes wide). */
static const struct acpi_sdt *root_table(unsigned *entry_size)
{
	uint64_t pa = acpi_rsdp();
	const struct acpi_rsdp_v2 *r = (const void *)(uintptr_t)pa;

	if (!pa)
		return NULL;
	if (r->revision >= 2 && r->xsdt_addr) {
		if (r->length < sizeof(*r) || !boot_is_mapped(pa, r->length))
			test_fail("acpi: RSDP length %u is bad", r->length);
		if (sum8(r, r->length))
			test_fail("bad checksum RSDP");
		*entry_size = 8;
		return table_at(r->xsdt_addr);
	}
	*entry_size = 4;
	return table_at(r->rsdt_addr);
}

static uint64_t root_entry(const struct acpi_sdt *root, unsigned size,
			   unsigned i)
{
	const uint8_t *p = (const uint8_t *)(root + 1) + (uint64_t)i * size;
	uint64_t pa = 0;

	/* Entries are not naturally aligned in the XSDT. */
	memcpy(&pa, p, size);
	return pa;
}

/* The DSDT named by a FADT, preferring X_DSDT when the FADT is long enough. */
static uint64_t fadt_dsdt(const struct acpi_sdt *fadt)
{
	uint64_t pa = 0;
	uint32_t pa32 = 0;

	if (fadt->length >= FADT_X_DSDT + 8)
		memcpy(&pa, (const uint8_t *)fadt + FADT_X_DSDT, 8);
	if (!pa && fadt->length >= FADT_DSDT + 4) {
		memcpy(&pa32, (const uint8_t *)fadt + FADT_DSDT, 4);
		pa = pa32;
	}
	return pa;
}

const struct acpi_sdt *acpi_find(const char *sig)
{
	unsigned size = 0, n, i;
	const struct acpi_sdt *root = root_table(&size);

	if (!root)
		return NULL;
	n = (root->length - sizeof(*root)) / size;
	for (i = 0; i < n; i++) {
		uint64_t pa = root_entry(root, size, i);
		const struct acpi_sdt *t;

		if (!pa || !boot_is_mapped(pa, sizeof(*t)))
			continue;
		t = (const void *)(uintptr_t)pa;
		if (memcmp(t->sig, sig, 4) == 0)
			return table_at(pa);
		if (memcmp(sig, "DSDT", 4) == 0 && memcmp(t->sig, "FACP", 4) == 0) {
			uint64_t dsdt = fadt_dsdt(table_at(pa));

			if (dsdt)
				return table_at(dsdt);
		}
	}
	return NULL;
}

void acpi_verify_all(void)
{
	unsigned size = 0, n, i;
	const struct acpi_sdt *root = root_table(&size);

	if (!root)
		return;
	n = (root->length - sizeof(*root)) / size;
	for (i = 0; i < n; i++) {
		const struct acpi_sdt *t = table_at(root_entry(root, size, i));

		if (memcmp(t->sig, "FACP", 4) == 0 && fadt_dsdt(t))
			table_at(fadt_dsdt(t));
	}
}

int acpi_madt_cpus(uint32_t *ids, unsigned max)
{
	const struct acpi_madt *madt = (const void *)acpi_find("APIC");
	const uint8_t *p, *end;
	int count = 0;

	if (!madt)
		return -1;
	if (madt->hdr.length < sizeof(*madt))
		test_fail("acpi: MADT length %u is too short", madt->hdr.length);
	p = (const uint8_t *)(madt + 1);
	end = (const uint8_t *)madt + madt->hdr.length;
	while (end - p >= 2) {
		uint8_t type = p[0], len = p[1];
		uint32_t id, flags;

		if (len < 2 || len > end - p)
			test_fail("acpi: bad MADT entry type %u length %u", type, len);
		if (type == MADT_LAPIC && len >= 8) {
			id = p[3];
			memcpy(&flags, p + 4, 4);
		} else if (type == MADT_X2APIC && len >= 16) {
			memcpy(&id, p + 4, 4);
			memcpy(&flags, p + 8, 4);
		} else {
			p += len;
			continue;
		}
		if (flags & MADT_ENABLED) {
			if ((unsigned)count < max)
				ids[count] = id;
			count++;
		}
		p += len;
	}
	return count;
}
