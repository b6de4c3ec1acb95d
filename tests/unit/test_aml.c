/* Unit tests for src/arch/x86/aml.c, the AML writer behind the DSDT: the
 * byte encodings of ACPI 6.4 §20.2 (PkgLength, integers, EisaId) and §6.4
 * (resource descriptors), and that a full buffer never overflows. */
#include "arch/x86/aml.h"

#include "unit.h"

/* Decodes the PkgLength at p; *n is its own size. */
static size_t decode_pkg_length(const uint8_t *p, size_t *n)
{
	unsigned extra = p[0] >> 6;
	if (!extra) {
		*n = 1;
		return p[0] & 0x3f;
	}
	assert_int_equal(p[0] & 0x30, 0);
	size_t v = p[0] & 0xf;
	for (unsigned i = 0; i < extra; i++)
		v |= (size_t)p[1 + i] << (4 + 8 * i);
	*n = 1 + extra;
	return v;
}

/* A package with `body_len` bytes of body and a name: the PkgLength must
 * count itself, the name and the body, in as few bytes as it fits. */
static void check_package(size_t body_len, size_t want_pl_bytes)
{
	struct aml a = {.len = 0}, body = {.len = 0};
	for (size_t i = 0; i < body_len; i++)
		aml_bytes(&body, "\x5a", 1);
	assert_false(body.overflow);
	static const uint8_t op = 0x10;
	aml_package(&a, &op, 1, "ABCD", &body);
	assert_false(a.overflow);
	assert_int_equal(a.buf[0], 0x10);
	size_t n, pl = decode_pkg_length(a.buf + 1, &n);
	assert_int_equal(n, want_pl_bytes);
	assert_int_equal(pl, n + 4 + body_len);
	assert_int_equal(a.len, 1 + pl); /* the package ends where the op said */
	assert_memory_equal(a.buf + 1 + n, "ABCD", 4);
	if (body_len)
		assert_int_equal(a.buf[a.len - 1], 0x5a);
}

static void test_pkg_length_boundaries(void **state)
{
	check_package(0, 1);
	check_package(0x3f - 1 - 4, 1); /* total 0x3f: the largest one-byte length */
	check_package(0x3f - 4, 2);	/* total 0x40 needs two bytes */
	check_package(0x100, 2);
	check_package(AML_MAX - 1 - 2 - 4, 2); /* as large as a buffer holds */
}

static void test_package_without_name(void **state)
{
	struct aml a = {.len = 0}, body = {.len = 0};
	aml_bytes(&body, "\x01\x02", 2);
	static const uint8_t op[2] = {0x5b, 0x82};
	aml_package(&a, op, 2, NULL, &body);
	assert_int_equal(a.len, 5);
	assert_memory_equal(a.buf, "\x5b\x82\x03\x01\x02", 5);
}

static void check_int(uint32_t v, const void *enc, size_t len)
{
	struct aml a = {.len = 0};
	aml_name_int(&a, "_UID", v);
	assert_int_equal(a.len, 5 + len);
	assert_memory_equal(a.buf, "\x08_UID", 5);
	assert_memory_equal(a.buf + 5, enc, len);
}

static void test_integers(void **state)
{
	check_int(0, "\x00", 1);     /* ZeroOp */
	check_int(1, "\x01", 1);     /* OneOp */
	check_int(2, "\x0a\x02", 2); /* BytePrefix */
	check_int(0xff, "\x0a\xff", 2);
	check_int(0x100, "\x0b\x00\x01", 3); /* WordPrefix */
	check_int(0xffff, "\x0b\xff\xff", 3);
	check_int(0x10000, "\x0c\x00\x00\x01\x00", 5); /* DWordPrefix */
	check_int(0xfffffffe, "\x0c\xfe\xff\xff\xff", 5);
}

static void test_eisaid(void **state)
{
	struct aml a = {.len = 0};
	aml_name_eisaid(&a, "_HID", "PNP0501");
	/* what iasl emits for EisaId("PNP0501"): DWordConst 0x0105D041 */
	assert_int_equal(a.len, 10);
	assert_memory_equal(a.buf, "\x08_HID\x0c\x41\xd0\x05\x01", 10);
	a.len = 0;
	aml_name_eisaid(&a, "_HID", "PNP0A03"); /* upper-case hex digit */
	assert_memory_equal(a.buf + 6, "\x41\xd0\x0a\x03", 4);
	a.len = 0;
	aml_name_eisaid(&a, "_HID", "PNP0a03"); /* lower-case too */
	assert_memory_equal(a.buf + 6, "\x41\xd0\x0a\x03", 4);
}

static void test_resources(void **state)
{
	struct aml res = {.len = 0}, a = {.len = 0};
	aml_res_io(&res, 0x3f8, 8);
	assert_memory_equal(res.buf, "\x47\x01\xf8\x03\xf8\x03\x01\x08", 8);
	aml_res_irq(&res, 4);
	assert_memory_equal(res.buf + 8, "\x22\x10\x00", 3);
	aml_res_irq(&res, 15);
	assert_memory_equal(res.buf + 11, "\x22\x00\x80", 3);
	aml_name_crs(&a, &res);
	/* Name (_CRS, Buffer (size) { descriptors, End Tag }) */
	assert_memory_equal(a.buf, "\x08_CRS\x11", 6);
	size_t n, pl = decode_pkg_length(a.buf + 6, &n);
	assert_int_equal(a.len, 6 + pl);
	assert_int_equal(a.buf[6 + n], 0x0a);
	assert_int_equal(a.buf[7 + n], res.len + 2); /* buffer size */
	assert_memory_equal(a.buf + 8 + n, res.buf, res.len);
	assert_memory_equal(a.buf + a.len - 2, "\x79\x00", 2);
	assert_false(a.overflow);
}

static void test_overflow_is_sticky(void **state)
{
	struct aml a = {.len = 0};
	uint8_t big[AML_MAX];
	memset(big, 0x77, sizeof(big));
	aml_bytes(&a, big, AML_MAX - 1);
	aml_bytes(&a, big, 1); /* exactly full */
	assert_false(a.overflow);
	assert_int_equal(a.len, AML_MAX);
	aml_bytes(&a, big, 1);
	assert_true(a.overflow);
	assert_int_equal(a.len, AML_MAX);

	/* once overflowed, even a write that would fit is dropped */
	struct aml b = {.len = 0};
	aml_bytes(&b, big, AML_MAX + 1);
	assert_true(b.overflow);
	assert_int_equal(b.len, 0);
	aml_bytes(&b, big, 1);
	assert_int_equal(b.len, 0);

	/* an overflowed body makes its package overflow */
	struct aml c = {.len = 0};
	static const uint8_t op = 0x10;
	aml_package(&c, &op, 1, "_SB_", &b);
	assert_true(c.overflow);
}

static void test_crs_too_large(void **state)
{
	/* a ResourceTemplate's size is one BytePrefix byte: more than 253
	 * bytes of descriptors cannot be described and must not be truncated */
	struct aml res = {.len = 0}, a = {.len = 0};
	for (unsigned i = 0; i < 32; i++)
		aml_res_io(&res, (uint16_t)i, 1); /* 256 bytes */
	assert_false(res.overflow);
	aml_name_crs(&a, &res);
	assert_true(a.overflow);

	struct aml ok = {.len = 0}, b = {.len = 0};
	uint8_t raw[253];
	memset(raw, 0x22, sizeof(raw));
	aml_bytes(&ok, raw, sizeof(raw));
	aml_name_crs(&b, &ok);
	assert_false(b.overflow);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkg_length_boundaries),
		cmocka_unit_test(test_package_without_name),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_eisaid),
		cmocka_unit_test(test_resources),
		cmocka_unit_test(test_overflow_is_sticky),
		cmocka_unit_test(test_crs_too_large),
	};
	return cmocka_run_group_tests_name("aml", tests, NULL, NULL);
}
