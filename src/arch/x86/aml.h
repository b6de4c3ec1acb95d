/* A tiny AML (ACPI Machine Language) writer: just the constructs mote's
 * DSDT uses — Scope, Device, Name with integers, EISA IDs and resource
 * templates (I/O ports, IRQs). ACPI 6.4 §20 (encoding) and §6.4
 * (resource descriptors). Writers never overflow: a full buffer sets
 * `overflow` and later writes are dropped. */
#ifndef MOTE_X86_AML_H
#define MOTE_X86_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_MAX 1024

struct aml {
	uint8_t buf[AML_MAX];
	size_t len;
	bool overflow;
};

void aml_bytes(struct aml *a, const void *p, size_t n);
/* Appends `op` (1-2 bytes), a PkgLength covering `name` and body, `name`
 * (4-char NameSeg or NULL) and body. */
void aml_package(struct aml *a, const uint8_t *op, size_t op_len, const char *name,
		 const struct aml *body);
/* Name (NAME, value) with an integer, or with EisaId("PNPxxxx"). */
void aml_name_int(struct aml *a, const char *name, uint32_t value);
void aml_name_eisaid(struct aml *a, const char *name, const char *id);
/* Name (_CRS, ResourceTemplate () { ... }) from raw descriptors. */
void aml_name_crs(struct aml *a, const struct aml *descriptors);
/* Resource descriptors: fixed 16-bit-decoded I/O range; one edge IRQ. */
void aml_res_io(struct aml *a, uint16_t port, uint8_t len);
void aml_res_irq(struct aml *a, unsigned irq);
/* Address-space descriptors a bridge produces (min and max fixed):
 * bus numbers, a 32-bit memory range. */
void aml_res_bus_range(struct aml *a, uint16_t min, uint16_t max);
void aml_res_mem32_window(struct aml *a, uint32_t min, uint32_t max);

#endif
