/* ACPI tables for an x86 guest: RSDP, XSDT, FADT (hardware-reduced), DSDT,
 * MADT. They describe the CPUs (MADT), the IOAPIC and the power-off and
 * reset registers, so that Linux finds SMP and `poweroff -f` reaches S5.
 * Follows ACPI 6.4 §5.2; AML is hand-assembled (a few fixed bytes). */
#ifndef MOTE_X86_ACPI_H
#define MOTE_X86_ACPI_H

#include <stdint.h>

#include "mem/guest_mem.h"

/* SLP_TYP value for S5 in \_S5 and in the sleep control register. */
#define ACPI_S5_TYPE 5
#define ACPI_SLP_EN 0x20

/* Writes the tables into [X86_ACPI_BASE, X86_ACPI_END). Returns the RSDP's
 * guest-physical address, or 0 when they do not fit (a build-time bug). */
uint64_t x86_acpi_build(const struct guest_mem *mem, unsigned nr_cpus);

/* The ACPI checksum: the byte that makes the sum of len bytes zero. */
uint8_t acpi_checksum(const uint8_t *p, uint64_t len);

#endif
