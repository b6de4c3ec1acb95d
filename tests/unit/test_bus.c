/* Unit tests for src/bus/bus.c: registration (overlap, wrap, seal), the
 * binary-search lookup, and dispatch including unassigned accesses, which a
 * guest can make at will and which must never reach a device. */
#include "bus/bus.h"
#include "util/log.h"

#include "unit.h"

/* A recording device: what the last access looked like. */
struct rec {
	unsigned calls;
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint8_t data[8];
};

static void rec_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rec *r = opaque;
	r->calls++;
	r->offset = offset;
	r->len = len;
	r->is_write = is_write;
	if (is_write) {
		memcpy(r->data, data, len);
	} else {
		for (uint32_t i = 0; i < len; i++)
			data[i] = (uint8_t)(0x10 + offset + i);
	}
}

static int setup(void **state)
{
	struct bus *bus = calloc(1, sizeof(*bus));
	bus_init(bus, "test");
	*state = bus;
	return unit_log_begin(state);
}

static int teardown(void **state)
{
	bus_fini(*state);
	free(*state);
	return unit_log_end(state);
}

static void test_add_adjacent_ok(void **state)
{
	struct bus *bus = *state;
	struct rec r = {0};
	assert_int_equal(bus_add(bus, 0x100, 0x10, rec_io, &r, "b"), 0);
	assert_int_equal(bus_add(bus, 0x110, 0x10, rec_io, &r, "c"), 0); /* right after */
	assert_int_equal(bus_add(bus, 0x0f0, 0x10, rec_io, &r, "a"), 0); /* right before */
	assert_int_equal(bus->nr, 3);
	assert_int_equal(bus->ranges[0].base, 0xf0);
	assert_int_equal(bus->ranges[1].base, 0x100);
	assert_int_equal(bus->ranges[2].base, 0x110);
	assert_string_equal(bus_find(bus, 0xff, 1)->name, "a");
	assert_string_equal(bus_find(bus, 0x100, 1)->name, "b");
	assert_string_equal(bus_find(bus, 0x10f, 1)->name, "b");
	assert_string_equal(bus_find(bus, 0x110, 1)->name, "c");
	assert_int_equal(unit_log_lines(), 0);
}

static void test_add_overlap_by_one_byte(void **state)
{
	struct bus *bus = *state;
	struct rec r = {0};
	assert_int_equal(bus_add(bus, 0x100, 0x10, rec_io, &r, "dev"), 0);
	/* last byte of the new range is the first of dev */
	assert_int_equal(bus_add(bus, 0xf0, 0x11, rec_io, &r, "lo"), -EEXIST);
	assert_log_contains("lo at 0xf0+0x11 overlaps dev");
	/* first byte of the new range is the last of dev */
	assert_int_equal(bus_add(bus, 0x10f, 4, rec_io, &r, "hi"), -EEXIST);
	/* inside, around, identical */
	assert_int_equal(bus_add(bus, 0x104, 1, rec_io, &r, "in"), -EEXIST);
	assert_int_equal(bus_add(bus, 0, 0x1000, rec_io, &r, "around"), -EEXIST);
	assert_int_equal(bus_add(bus, 0x100, 0x10, rec_io, &r, "same"), -EEXIST);
	assert_int_equal(bus->nr, 1);
}

static void test_add_overlap_among_many(void **state)
{
	struct bus *bus = *state;
	struct rec r = {0};
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(bus_add(bus, 0x1000 + i * 0x100, 0x10, rec_io, &r, "x"), 0);
	/* spans a gap and lands on the 5th range: the check must look past
	 * ranges that end below the new one */
	assert_int_equal(bus_add(bus, 0x1380, 0x81, rec_io, &r, "y"), -EEXIST);
	assert_int_equal(bus_add(bus, 0x1380, 0x80, rec_io, &r, "y"), 0);
	assert_int_equal(bus->nr, 9);
}

static void test_add_invalid(void **state)
{
	struct bus *bus = *state;
	struct rec r = {0};
	assert_int_equal(bus_add(bus, 0x100, 0, rec_io, &r, "zero"), -EINVAL);
	assert_int_equal(bus_add(bus, 0x100, 1, NULL, &r, "nofn"), -EINVAL);
	/* wrap-around: the last byte would be past 2^64 - 1 */
	assert_int_equal(bus_add(bus, UINT64_MAX, 2, rec_io, &r, "wrap"), -EINVAL);
	assert_int_equal(bus_add(bus, 2, UINT64_MAX, rec_io, &r, "wrap"), -EINVAL);
	assert_int_equal(bus->nr, 0);
	/* ...but ending exactly at 2^64 is fine */
	assert_int_equal(bus_add(bus, UINT64_MAX, 1, rec_io, &r, "top"), 0);
	assert_int_equal(bus_add(bus, 0, UINT64_MAX, rec_io, &r, "all-but-top"), 0);
	assert_string_equal(bus_find(bus, UINT64_MAX, 1)->name, "top");
	assert_string_equal(bus_find(bus, UINT64_MAX - 1, 1)->name, "all-but-top");
	assert_null(bus_find(bus, UINT64_MAX - 1, 2));
	assert_null(bus_find(bus, UINT64_MAX, 2));
}

static void test_add_after_seal(void **state)
{
	struct bus *bus = *state;
	struct rec r = {0};
	assert_int_equal(bus_add(bus, 0x100, 1, rec_io, &r, "a"), 0);
	bus_seal(bus);
	assert_int_equal(bus_add(bus, 0x200, 1, rec_io, &r, "late"), -EINVAL);
	assert_int_equal(bus->nr, 1);
	assert_non_null(bus_find(bus, 0x100, 1));
}

/* Many ranges in scrambled order (more than the initial capacity, so the
 * array grows): each is found at its first and last byte, every gap
 * misses, and the table stays sorted. */
static void test_find_many(void **state)
{
	struct bus *bus = *state;
	enum { N = 200 };
	static struct rec recs[N];
	static char names[N][8];
	for (unsigned k = 0; k < N; k++) {
		unsigned i = (k * 7919u) % N; /* 7919 is prime: a permutation */
		snprintf(names[i], sizeof(names[i]), "r%u", i);
		assert_int_equal(
			bus_add(bus, 0x10000 + i * 0x40, 0x20 + i % 8, rec_io, &recs[i], names[i]),
			0);
	}
	assert_int_equal(bus->nr, N);
	for (unsigned i = 1; i < N; i++)
		assert_true(bus->ranges[i - 1].base < bus->ranges[i].base);
	for (unsigned i = 0; i < N; i++) {
		uint64_t base = 0x10000 + i * 0x40, len = 0x20 + i % 8;
		const struct bus_range *r = bus_find(bus, base, 1);
		assert_non_null(r);
		assert_ptr_equal(r->opaque, &recs[i]);
		assert_ptr_equal(bus_find(bus, base + len - 1, 1), r);
		assert_ptr_equal(bus_find(bus, base + len - 4, 4), r);
		assert_null(bus_find(bus, base + len, 1)); /* first byte of the gap */
		assert_null(bus_find(bus, base - 1, 1));
		/* straddling the range's end */
		assert_null(bus_find(bus, base + len - 1, 2));
		assert_null(bus_find(bus, base + len - 3, 4));
	}
	assert_null(bus_find(bus, 0, 1));
	assert_null(bus_find(bus, UINT64_MAX, 1));
	assert_null(bus_find(bus, 0x10000 + N * 0x40, 1));
}

static void test_find_empty_and_len_zero(void **state)
{
	struct bus *bus = *state;
	struct rec r = {0};
	assert_null(bus_find(bus, 0x100, 1));
	assert_int_equal(bus_add(bus, 0x100, 4, rec_io, &r, "a"), 0);
	/* len 0 is looked up as one byte */
	assert_non_null(bus_find(bus, 0x103, 0));
	assert_null(bus_find(bus, 0x104, 0));
	assert_null(bus_find(bus, 0xff, 0));
}

static void test_access_dispatch(void **state)
{
	struct bus *bus = *state;
	struct rec a = {0}, b = {0};
	assert_int_equal(bus_add(bus, 0x3f8, 8, rec_io, &a, "com1"), 0);
	assert_int_equal(bus_add(bus, 0xd0000000, 0x1000, rec_io, &b, "mmio"), 0);
	bus_seal(bus);

	uint8_t d[8] = {0x41};
	assert_int_equal(bus_access(bus, 0x3f8, d, 1, true), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.offset, 0);
	assert_int_equal(a.len, 1);
	assert_true(a.is_write);
	assert_int_equal(a.data[0], 0x41);

	memset(d, 0, sizeof(d));
	assert_int_equal(bus_access(bus, 0x3fd, d, 2, false), 0);
	assert_int_equal(a.calls, 2);
	assert_int_equal(a.offset, 5);
	assert_int_equal(a.len, 2);
	assert_false(a.is_write);
	assert_int_equal(d[0], 0x15); /* the handler's fill reaches the caller */
	assert_int_equal(d[1], 0x16);

	uint8_t q[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_int_equal(bus_access(bus, 0xd0000ff8, q, 8, true), 0);
	assert_int_equal(b.offset, 0xff8);
	assert_int_equal(b.len, 8);
	assert_memory_equal(b.data, q, 8);
	assert_int_equal(a.calls, 2);
	assert_int_equal(atomic_load(&bus->unassigned), 0);
}

static void test_access_unassigned(void **state)
{
	struct bus *bus = *state;
	struct rec a = {0};
	assert_int_equal(bus_add(bus, 0x60, 1, rec_io, &a, "i8042"), 0);
	bus_seal(bus);

	uint8_t d[8];
	memset(d, 0x00, sizeof(d));
	assert_int_equal(bus_access(bus, 0x80, d, 4, false), -ENOENT);
	/* exactly len bytes of 0xff: a read never leaks stale caller data
	 * and never writes past len */
	assert_memory_equal(d, "\xff\xff\xff\xff\0\0\0\0", 8);
	assert_int_equal(atomic_load(&bus->unassigned), 1);

	memset(d, 0x5a, sizeof(d));
	assert_int_equal(bus_access(bus, 0x80, d, 8, true), -ENOENT);
	assert_int_equal(d[0], 0x5a); /* a dropped write leaves data alone */
	assert_int_equal(atomic_load(&bus->unassigned), 2);

	/* straddles the end of a one-byte device: missed, device untouched */
	memset(d, 0, sizeof(d));
	assert_int_equal(bus_access(bus, 0x60, d, 2, false), -ENOENT);
	assert_int_equal(d[0], 0xff);
	assert_int_equal(d[1], 0xff);
	assert_int_equal(a.calls, 0);
	assert_int_equal(atomic_load(&bus->unassigned), 3);

	assert_int_equal(bus_access(bus, 0x60, d, 1, false), 0);
	assert_int_equal(a.calls, 1);
	assert_int_equal(atomic_load(&bus->unassigned), 3);
}

/* A guest can hammer unassigned ports: the debug log stays rate-limited
 * while the counter counts every access. */
static void test_unassigned_log_ratelimited(void **state)
{
	struct bus *bus = *state;
	enum log_level old = log_get_level();
	log_set_level(LOG_DEBUG);
	uint8_t d[4];
	for (unsigned i = 0; i < 1000; i++)
		bus_access(bus, 0x1234, d, 1, false);
	log_set_level(old);
	assert_int_equal(atomic_load(&bus->unassigned), 1000);
	assert_in_range(unit_log_lines(), 1, 20);
	assert_log_contains("test bus: unassigned read of 1 bytes at 0x1234");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_adjacent_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_overlap_by_one_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_overlap_among_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_after_seal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_empty_and_len_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_dispatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_unassigned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unassigned_log_ratelimited, setup, teardown),
	};
	return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
