/* Unit tests for src/snap/stream.c: the state stream's framing and field
 * getters. A stream written by the writer reads back field for field; every
 * kind of damage (truncation at any byte, any flipped bit, bad magic, an
 * unknown stream or section version, trailing bytes, duplicates, a missing
 * end) is refused with a message naming what is wrong, and a getter past the
 * end of a section names the section and field instead of reading on. */
#include "snap/stream.h"
#include "util/util.h"

#include "unit.h"

/* A stream with a config-like section and two vCPU sections. */
static size_t sample(struct snap_writer *w)
{
	snap_writer_init(w);
	snap_begin(w, SNAP_CONFIG, 1, 0);
	snap_put_u64(w, 0x1122334455667788ull);
	snap_put_u32(w, 4);
	snap_put_u16(w, 0xbeef);
	snap_put_u8(w, 1);
	snap_put_bytes(w, "disk", 4);
	snap_end(w);
	for (uint32_t i = 0; i < 2; i++) {
		snap_begin(w, SNAP_VCPU, 1, i);
		snap_put_u64(w, 0x1000 + i);
		snap_end(w);
	}
	assert_int_equal(snap_writer_finish(w), 0);
	return w->len;
}

static void roundtrip(void **state)
{
	struct snap_writer w;
	sample(&w);
	struct snap_reader r;
	assert_int_equal(snap_reader_init(&r, w.buf, w.len), 0);
	struct snap_section s;
	assert_int_equal(snap_find(&r, SNAP_CONFIG, 0, 1, &s), 0);
	assert_true(snap_u64(&s, "a") == 0x1122334455667788ull);
	assert_int_equal(snap_u32(&s, "b"), 4);
	assert_int_equal(snap_u16(&s, "c"), 0xbeef);
	assert_true(snap_bool(&s, "d"));
	char name[4];
	snap_bytes(&s, "e", name, 4);
	assert_memory_equal(name, "disk", 4);
	assert_int_equal(snap_done(&s), 0);
	assert_int_equal(snap_find(&r, SNAP_VCPU, 1, 1, &s), 0);
	assert_true(snap_u64(&s, "rip") == 0x1001);
	assert_int_equal(snap_done(&s), 0);
	assert_true(snap_has(&r, SNAP_VCPU, 0));
	assert_false(snap_has(&r, SNAP_VCPU, 2));
	assert_false(r.failed);
	snap_writer_fini(&w);
}

/* Fields are little-endian bytes whatever the host. */
static void little_endian(void **state)
{
	struct snap_writer w;
	snap_writer_init(&w);
	size_t at = w.len + SNAP_SECTION_HDR;
	snap_begin(&w, SNAP_PM, 1, 0);
	snap_put_u32(&w, 0x01020304);
	snap_end(&w);
	static const uint8_t want[] = { 4, 3, 2, 1 };
	assert_memory_equal(w.buf + at, want, 4);
	/* Header: magic "MSEC", version 1, id, index 0, length 4. */
	assert_memory_equal(w.buf + at - SNAP_SECTION_HDR, "MSEC", 4);
	assert_int_equal(w.buf[at - 4], 4);
	snap_writer_fini(&w);
}

static void truncated_anywhere(void **state)
{
	struct snap_writer w;
	size_t len = sample(&w);
	for (size_t cut = 0; cut < len; cut++) {
		struct snap_reader r;
		assert_int_equal(snap_reader_init(&r, w.buf, cut), -EBADMSG);
		assert_true(r.failed);
		assert_non_null(strstr(r.err, "snapshot: "));
	}
	snap_writer_fini(&w);
}

static void every_bit_flip(void **state)
{
	struct snap_writer w;
	size_t len = sample(&w);
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			w.buf[i] ^= (uint8_t)(1 << bit);
			struct snap_reader r;
			assert_int_equal(snap_reader_init(&r, w.buf, len), -EBADMSG);
			assert_non_null(strstr(r.err, "snapshot: "));
			w.buf[i] ^= (uint8_t)(1 << bit);
		}
	}
	snap_writer_fini(&w);
}

static void bad_magic(void **state)
{
	struct snap_reader r;
	static const char junk[64] = "this is not a snapshot at all";
	assert_int_equal(snap_reader_init(&r, junk, sizeof(junk)), -EBADMSG);
	assert_string_equal(r.err, "snapshot: bad magic: not a mote snapshot");
	assert_int_equal(snap_reader_init(&r, junk, 0), -EBADMSG);
}

/* A valid section with a changed field, checksum recomputed. */
static void reseal(uint8_t *sec, size_t payload)
{
	put_le32(sec + SNAP_SECTION_HDR + payload,
		 snap_crc32c(0, sec, SNAP_SECTION_HDR + payload));
}

static void versions(void **state)
{
	struct snap_writer w;
	size_t len = sample(&w);
	struct snap_reader r;
	/* The stream version inside the header section. */
	put_le32(w.buf + SNAP_SECTION_HDR + 8, 2);
	reseal(w.buf, 12);
	assert_int_equal(snap_reader_init(&r, w.buf, len), -EBADMSG);
	assert_non_null(strstr(r.err, "stream version 2"));
	snap_writer_fini(&w);
	/* A section's own version: the stream reads, that section does not. */
	sample(&w);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len), 0);
	struct snap_section s;
	assert_int_equal(snap_find(&r, SNAP_CONFIG, 0, 2, &s), -EBADMSG);
	assert_non_null(strstr(r.err, "config[0]: version: section version 1, this mote reads 2"));
	snap_writer_fini(&w);
}

static void getters_past_the_end(void **state)
{
	struct snap_writer w;
	sample(&w);
	struct snap_reader r;
	assert_int_equal(snap_reader_init(&r, w.buf, w.len), 0);
	struct snap_section s;
	assert_int_equal(snap_find(&r, SNAP_VCPU, 0, 1, &s), 0);
	snap_u32(&s, "regs.rax");
	assert_int_equal(snap_u64(&s, "regs.rbx"), 0); /* 4 bytes left, 8 wanted */
	assert_true(r.failed);
	assert_non_null(strstr(r.err, "snapshot: vcpu[0]: regs.rbx: truncated"));
	/* Sticky: later getters return 0 and keep the first message. */
	assert_int_equal(snap_u8(&s, "other"), 0);
	assert_non_null(strstr(r.err, "regs.rbx"));
	assert_int_equal(snap_status(&r), -EBADMSG);
	snap_writer_fini(&w);
}

static void leftover_and_bool(void **state)
{
	struct snap_writer w;
	sample(&w);
	struct snap_reader r;
	struct snap_section s;
	assert_int_equal(snap_reader_init(&r, w.buf, w.len), 0);
	assert_int_equal(snap_find(&r, SNAP_CONFIG, 0, 1, &s), 0);
	snap_u64(&s, "a");
	assert_int_equal(snap_done(&s), -EBADMSG);
	assert_non_null(strstr(r.err, "config[0]: length: 11 bytes left over"));
	snap_writer_fini(&w);

	snap_writer_init(&w);
	snap_begin(&w, SNAP_PM, 1, 0);
	snap_put_u8(&w, 2);
	snap_end(&w);
	snap_writer_finish(&w);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len), 0);
	assert_int_equal(snap_find(&r, SNAP_PM, 0, 1, &s), 0);
	snap_bool(&s, "flag");
	assert_non_null(strstr(r.err, "pm[0]: flag: 2 is not a boolean"));
	snap_writer_fini(&w);
}

static void missing_and_duplicate(void **state)
{
	struct snap_writer w;
	sample(&w);
	struct snap_reader r;
	struct snap_section s;
	assert_int_equal(snap_reader_init(&r, w.buf, w.len), 0);
	assert_int_equal(snap_find(&r, SNAP_SERIAL, 0, 1, &s), -ENOENT);
	assert_string_equal(r.err, "snapshot: section serial[0] is missing");
	snap_writer_fini(&w);

	snap_writer_init(&w);
	for (int i = 0; i < 2; i++) {
		snap_begin(&w, SNAP_VCPU, 1, 3);
		snap_end(&w);
	}
	snap_writer_finish(&w);
	assert_int_equal(snap_reader_init(&r, w.buf, w.len), -EBADMSG);
	assert_string_equal(r.err, "snapshot: section vcpu[3] appears twice");
	snap_writer_fini(&w);
}

static void end_marker(void **state)
{
	struct snap_writer w;
	size_t len = sample(&w);
	struct snap_reader r;
	/* Without the end section (20 bytes). */
	assert_int_equal(snap_reader_init(&r, w.buf, len - 20), -EBADMSG);
	/* Bytes after it. */
	uint8_t *more = calloc(1, len + 3);
	memcpy(more, w.buf, len);
	assert_int_equal(snap_reader_init(&r, more, len + 3), -EBADMSG);
	assert_non_null(strstr(r.err, "3 bytes after the end section"));
	free(more);
	snap_writer_fini(&w);
}

static void oversized_length(void **state)
{
	struct snap_writer w;
	size_t len = sample(&w);
	struct snap_reader r;
	/* The config section (right after the 32-byte header section) claims
	 * more bytes than the file has. */
	put_le32(w.buf + 32 + 12, 0xfffffff0u);
	assert_int_equal(snap_reader_init(&r, w.buf, len), -EBADMSG);
	assert_non_null(strstr(r.err, "config[0]: length 4294967280 runs past the end"));
	snap_writer_fini(&w);
}

/* RFC 3720's CRC32C check value. */
static void crc_known_answer(void **state)
{
	assert_int_equal(snap_crc32c(0, "123456789", 9), 0xe3069283);
	assert_int_equal(snap_crc32c(0, "", 0), 0);
}

/* Whatever the implementation (SSE4.2's instruction or the table), every
 * length, alignment and split agrees with the bit-by-bit definition. */
static uint32_t crc_bitwise(const uint8_t *p, size_t len)
{
	uint32_t c = ~0u;
	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return ~c;
}

static void crc_matches_definition(void **state)
{
	static uint8_t buf[600];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 3) * 7 + 1);
	for (size_t off = 0; off < 9; off++) {
		for (size_t len = 0; len + off <= sizeof(buf); len += 1 + len / 7) {
			uint32_t want = crc_bitwise(buf + off, len);
			assert_int_equal(snap_crc32c(0, buf + off, len), want);
			size_t cut = len / 3; /* incremental, split at an odd place */
			uint32_t c = snap_crc32c(0, buf + off, cut);
			assert_int_equal(snap_crc32c(c, buf + off + cut, len - cut), want);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip),
		cmocka_unit_test(crc_matches_definition),
		cmocka_unit_test(little_endian),
		cmocka_unit_test(truncated_anywhere),
		cmocka_unit_test(every_bit_flip),
		cmocka_unit_test(bad_magic),
		cmocka_unit_test(versions),
		cmocka_unit_test(getters_past_the_end),
		cmocka_unit_test(leftover_and_bool),
		cmocka_unit_test(missing_and_duplicate),
		cmocka_unit_test(end_marker),
		cmocka_unit_test(oversized_length),
		cmocka_unit_test(crc_known_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
