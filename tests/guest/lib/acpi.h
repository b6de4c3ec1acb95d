/*
 * acpi.h — finding ACPI tables the monitor built (ACPI 6.x, chapter 5.2).
 *
 * Read-only. Every table handed out has had its length sanity-checked and its
 * checksum verified; a bad checksum is reported as
 * "mote-test: FAIL bad checksum <signature>" (the RSDP reports as "RSDP").
 */
#ifndef GUEST_ACPI_H
#define GUEST_ACPI_H

#include <stdint.h>

struct acpi_sdt {
	char sig[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

/* MADT (signature "APIC"): the header, then variable-length entries. */
struct acpi_madt {
	struct acpi_sdt hdr;
	uint32_t lapic_addr;
	uint32_t flags;
} __attribute__((packed));

#define MADT_LAPIC	0	/* Processor Local APIC */
#define MADT_X2APIC	9	/* Processor Local x2APIC */
#define MADT_ENABLED	1	/* flags bit 0 of both */

/*
 * The RSDP's physical address: hvm_start_info.rsdp_paddr when non-zero, else
 * the first valid "RSD PTR " on a 16-byte boundary in 0xE0000-0xFFFFF.
 * Returns 0 when there is none.
 */
uint64_t acpi_rsdp(void);

/*
 * Returns the first table with signature sig (4 characters) listed in the
 * XSDT (or the RSDT when there is no XSDT), or NULL. Also finds the DSDT,
 * through the FADT.
 */
const struct acpi_sdt *acpi_find(const char *sig);

/* Verifies the checksum of every table reachable from the RSDP. */
void acpi_verify_all(void);

/*
 * Lists the APIC IDs of the enabled CPUs in the MADT (Local APIC and Local
 * x2APIC entries), in table order, into ids[0..max). Returns how many enabled
 * CPUs the MADT lists (which may exceed max), or -1 when there is no MADT.
 */
int acpi_madt_cpus(uint32_t *ids, unsigned max);

#endif
