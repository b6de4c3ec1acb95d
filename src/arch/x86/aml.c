/* A tiny AML writer; see aml.h. */
#include "arch/x86/aml.h"

#include <string.h>

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->overflow || n > AML_MAX - a->len) {
		a->overflow = true;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void byte(struct aml *a, uint8_t b) { aml_bytes(a, &b, 1); }

/* PkgLength counts its own bytes: 1 byte below 64, else 2 to 4 bytes with
 * the low nibble in the lead byte. */
static void pkg_length(struct aml *a, size_t content)
{
	size_t total = content + 1;
	if (total < 0x40) {
		byte(a, (uint8_t)total);
		return;
	}
	unsigned extra = total + 1 < 0x1000 ? 1 : total + 2 < 0x100000 ? 2 : 3;
	total = content + 1 + extra;
	byte(a, (uint8_t)(extra << 6 | (total & 0xf)));
	for (unsigned i = 0; i < extra; i++)
		byte(a, (uint8_t)(total >> (4 + 8 * i)));
}

void aml_package(struct aml *a, const uint8_t *op, size_t op_len, const char *name,
		 const struct aml *body)
{
	if (body->overflow)
		a->overflow = true;
	aml_bytes(a, op, op_len);
	pkg_length(a, (name ? 4 : 0) + body->len);
	if (name)
		aml_bytes(a, name, 4);
	aml_bytes(a, body->buf, body->len);
}

static void integer(struct aml *a, uint32_t v)
{
	if (v == 0) {
		byte(a, 0x00); /* ZeroOp */
	} else if (v == 1) {
		byte(a, 0x01); /* OneOp */
	} else if (v <= 0xff) {
		byte(a, 0x0a);
		byte(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		byte(a, 0x0b);
		byte(a, (uint8_t)v);
		byte(a, (uint8_t)(v >> 8));
	} else {
		byte(a, 0x0c);
		for (int i = 0; i < 4; i++)
			byte(a, (uint8_t)(v >> (8 * i)));
	}
}

void aml_name_int(struct aml *a, const char *name, uint32_t value)
{
	byte(a, 0x08); /* NameOp */
	aml_bytes(a, name, 4);
	integer(a, value);
}

void aml_name_eisaid(struct aml *a, const char *name, const char *id)
{
	/* Three letters in 5 bits each, then four hex digits; stored big-endian. */
	uint16_t vendor = (uint16_t)((id[0] - 0x40) << 10 | (id[1] - 0x40) << 5 | (id[2] - 0x40));
	unsigned product = 0;
	for (int i = 3; i < 7; i++) {
		char c = id[i];
		product = product << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	byte(a, 0x08);
	aml_bytes(a, name, 4);
	byte(a, 0x0c); /* DWordConst */
	byte(a, (uint8_t)(vendor >> 8));
	byte(a, (uint8_t)vendor);
	byte(a, (uint8_t)(product >> 8));
	byte(a, (uint8_t)product);
}

void aml_name_crs(struct aml *a, const struct aml *descriptors)
{
	/* ResourceTemplate = Buffer { descriptors, End Tag with zero checksum } */
	struct aml body = { .len = 0 };
	byte(&body, 0x0a); /* BytePrefix: buffer size */
	byte(&body, (uint8_t)(descriptors->len + 2));
	aml_bytes(&body, descriptors->buf, descriptors->len);
	byte(&body, 0x79);
	byte(&body, 0x00);
	if (descriptors->overflow || descriptors->len + 2 > 0xff)
		body.overflow = true;
	byte(a, 0x08);
	aml_bytes(a, "_CRS", 4);
	static const uint8_t buffer_op = 0x11;
	aml_package(a, &buffer_op, 1, NULL, &body);
}

void aml_res_io(struct aml *a, uint16_t port, uint8_t len)
{
	const uint8_t d[8] = { 0x47, 0x01, (uint8_t)port, (uint8_t)(port >> 8),
			       (uint8_t)port, (uint8_t)(port >> 8), 0x01, len };
	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq(struct aml *a, unsigned irq)
{
	uint16_t mask = (uint16_t)(1u << (irq & 15));
	const uint8_t d[3] = { 0x22, (uint8_t)mask, (uint8_t)(mask >> 8) };
	aml_bytes(a, d, sizeof(d));
}

#define ADDR_PRODUCER_FIXED 0x0c /* producer, positive decode, min and max fixed */

/* Word Address Space Descriptor (ACPI 6.4 §6.4.3.5.3). */
static void word_space(struct aml *a, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	uint16_t len = (uint16_t)(max - min + 1);
	const uint8_t d[16] = { 0x88, 13, 0, type, ADDR_PRODUCER_FIXED, tflags, 0, 0,
				(uint8_t)min, (uint8_t)(min >> 8), (uint8_t)max, (uint8_t)(max >> 8),
				0, 0, (uint8_t)len, (uint8_t)(len >> 8) };
	aml_bytes(a, d, sizeof(d));
}

void aml_res_bus_range(struct aml *a, uint16_t min, uint16_t max)
{
	word_space(a, 2, 0, min, max);
}

/* DWord Address Space Descriptor (§6.4.3.5.2), memory, read-write. */
void aml_res_mem32_window(struct aml *a, uint32_t min, uint32_t max)
{
	uint32_t f[5] = { 0, min, max, 0, max - min + 1 }; /* gran, min, max, trans, len */
	uint8_t d[26] = { 0x87, 23, 0, 0, ADDR_PRODUCER_FIXED, 0x01 };
	for (int i = 0; i < 5; i++)
		for (int b = 0; b < 4; b++)
			d[6 + 4 * i + b] = (uint8_t)(f[i] >> (8 * b));
	aml_bytes(a, d, sizeof(d));
}
