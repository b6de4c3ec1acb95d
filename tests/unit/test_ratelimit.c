/* Unit tests for src/util/ratelimit.c: token-bucket arithmetic at simulated
 * times (ratelimit_take_at), the one-time burst, oversized requests, the
 * long-run rate, and the flag syntax. No test sleeps: the timerfd is only
 * checked for being armed. */
#include "util/ratelimit.h"

#include "unit.h"

#define MS 1000000ull
#define T0 (1000ull * 1000 * MS) /* an arbitrary monotonic start */

static struct ratelimit limiter(uint64_t bw, uint64_t bw_ms, uint64_t burst, uint64_t ops,
				uint64_t ops_ms)
{
	struct ratelimit_cfg cfg = { .bw = { bw, burst, bw_ms }, .ops = { ops, 0, ops_ms } };
	struct ratelimit rl;
	assert_int_equal(ratelimit_init(&rl, &cfg), 0);
	/* Buckets start full at "now"; move them to the simulated clock. */
	rl.bw.last_ns = rl.ops.last_ns = T0;
	return rl;
}

static void test_inactive_never_limits(void **state)
{
	(void)state;
	struct ratelimit rl;
	assert_int_equal(ratelimit_init(&rl, NULL), 0);
	assert_false(ratelimit_active(&rl));
	for (int i = 0; i < 1000; i++)
		assert_true(ratelimit_take(&rl, 1ull << 40));
	ratelimit_fini(&rl);
}

static void test_bandwidth_bucket(void **state)
{
	(void)state;
	/* 1000 bytes per 100 ms. */
	struct ratelimit rl = limiter(1000, 100, 0, 0, 0);
	assert_true(ratelimit_take_at(&rl, 600, T0));
	assert_true(ratelimit_take_at(&rl, 400, T0));
	assert_false(ratelimit_take_at(&rl, 1, T0));
	assert_true(rl.armed);
	assert_int_equal(rl.throttled, 1);
	/* Armed: even a request that would fit waits its turn. */
	assert_false(ratelimit_take_at(&rl, 1, T0 + 50 * MS));
	ratelimit_expired(&rl);
	assert_false(rl.armed);
	/* 50 ms refill 500 bytes. */
	assert_int_equal(ratelimit_wait_ns(&rl, 500, T0 + 50 * MS), 0);
	assert_int_equal(ratelimit_wait_ns(&rl, 501, T0 + 50 * MS), 100000); /* 0.1 ms/byte */
	assert_true(ratelimit_take_at(&rl, 500, T0 + 50 * MS));
	assert_false(ratelimit_take_at(&rl, 1, T0 + 50 * MS));
	ratelimit_fini(&rl);
}

static void test_refill_caps_at_size(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(1000, 100, 0, 0, 0);
	assert_true(ratelimit_take_at(&rl, 1000, T0));
	/* An hour idle refills only to the bucket size. */
	uint64_t later = T0 + 3600ull * 1000 * MS;
	assert_true(ratelimit_take_at(&rl, 1000, later));
	assert_false(ratelimit_take_at(&rl, 1, later));
	ratelimit_fini(&rl);
}

static void test_ops_bucket(void **state)
{
	(void)state;
	/* 10 operations per second, bytes unlimited. */
	struct ratelimit rl = limiter(0, 0, 0, 10, 1000);
	for (int i = 0; i < 10; i++)
		assert_true(ratelimit_take_at(&rl, 1ull << 30, T0));
	assert_false(ratelimit_take_at(&rl, 0, T0));
	ratelimit_expired(&rl);
	assert_int_equal(ratelimit_wait_ns(&rl, 0, T0), 100 * MS);
	assert_true(ratelimit_take_at(&rl, 0, T0 + 100 * MS));
	ratelimit_fini(&rl);
}

static void test_both_or_neither(void **state)
{
	(void)state;
	/* Plenty of bytes, one op: a refused op must not spend bytes. */
	struct ratelimit rl = limiter(1000, 1000, 0, 1, 1000);
	assert_true(ratelimit_take_at(&rl, 100, T0));
	assert_false(ratelimit_take_at(&rl, 100, T0));
	ratelimit_expired(&rl);
	assert_int_equal(rl.bw.budget, 900);
	ratelimit_fini(&rl);
}

static void test_one_time_burst(void **state)
{
	(void)state;
	/* 100 bytes per second plus a one-time 1000. */
	struct ratelimit rl = limiter(100, 1000, 1000, 0, 0);
	assert_true(ratelimit_take_at(&rl, 1000, T0)); /* all from the burst */
	assert_true(ratelimit_take_at(&rl, 100, T0));  /* then the bucket */
	assert_false(ratelimit_take_at(&rl, 1, T0));
	ratelimit_expired(&rl);
	/* The burst never comes back. */
	uint64_t later = T0 + 100000ull * MS;
	assert_true(ratelimit_take_at(&rl, 100, later));
	assert_false(ratelimit_take_at(&rl, 1, later));
	ratelimit_fini(&rl);
}

static void test_oversized_request_pays_debt(void **state)
{
	(void)state;
	/* 1000 bytes per second; a 3000-byte request is let through when the
	 * bucket is full, and the next byte waits for the 2000-byte debt plus
	 * itself: 2.001 s. */
	struct ratelimit rl = limiter(1000, 1000, 0, 0, 0);
	assert_true(ratelimit_take_at(&rl, 3000, T0));
	assert_false(ratelimit_take_at(&rl, 1, T0));
	ratelimit_expired(&rl);
	assert_int_equal(ratelimit_wait_ns(&rl, 1, T0), 2001 * MS);
	/* A second oversized one waits until the bucket is full again. */
	assert_int_equal(ratelimit_wait_ns(&rl, 3000, T0), 3000 * MS);
	ratelimit_fini(&rl);
}

static void test_long_run_rate_exact(void **state)
{
	(void)state;
	/* 1 MiB/s in odd-sized requests at odd times: over 10 s the bytes let
	 * through never exceed size + rate × time, and come within one request
	 * of it (fractions of a token are never lost). */
	const uint64_t rate = 1 << 20, req = 4099;
	struct ratelimit rl = limiter(rate, 1000, 0, 0, 0);
	uint64_t t = T0, passed = 0;
	while (t < T0 + 10000 * MS) {
		if (ratelimit_take_at(&rl, req, t)) {
			passed += req;
		} else {
			ratelimit_expired(&rl);
			t += ratelimit_wait_ns(&rl, req, t);
		}
		t += 7; /* a few ns of "work" between requests */
	}
	uint64_t allowed = rate + rate * 10;
	assert_true(passed <= allowed);
	assert_true(passed + 2 * req >= allowed);
	ratelimit_fini(&rl);
}

static void test_put_back(void **state)
{
	(void)state;
	/* Real time here: ratelimit_put_back reads the clock. 1000 bytes per
	 * hour, so the refill during the test is nil. */
	struct ratelimit_cfg cfg = { .bw = { 1000, 0, 3600 * 1000 } };
	struct ratelimit rl;
	assert_int_equal(ratelimit_init(&rl, &cfg), 0);
	assert_true(ratelimit_take(&rl, 1000));
	ratelimit_put_back(&rl, 400);
	assert_int_equal(rl.bw.budget, 400);
	ratelimit_put_back(&rl, 4000); /* never above the bucket size */
	assert_int_equal(rl.bw.budget, 1000);
	ratelimit_fini(&rl);
}

static void test_update_refills_and_wakes(void **state)
{
	(void)state;
	struct ratelimit rl = limiter(10, 1000, 0, 0, 0);
	assert_true(ratelimit_take_at(&rl, 10, T0));
	assert_false(ratelimit_take_at(&rl, 10, T0));
	int fd = rl.timer_fd;
	struct ratelimit_cfg bigger = { .bw = { 1000, 0, 1000 } };
	assert_int_equal(ratelimit_update(&rl, &bigger), 0);
	assert_int_equal(rl.timer_fd, fd); /* registrations stay valid */
	assert_int_equal(rl.bw.budget, 1000);
	/* Lifting every limit keeps the fd but lets everything through. */
	struct ratelimit_cfg none = { 0 };
	assert_int_equal(ratelimit_update(&rl, &none), 0);
	ratelimit_expired(&rl);
	assert_true(ratelimit_take_at(&rl, 1ull << 40, T0));
	struct ratelimit_cfg bad = { .bw = { 10, 0, 0 } };
	assert_int_equal(ratelimit_update(&rl, &bad), -EINVAL);
	ratelimit_fini(&rl);
}

static void test_parse_bucket(void **state)
{
	(void)state;
	struct bucket_cfg b;
	assert_int_equal(ratelimit_parse_bucket("1000:100", &b), 0);
	assert_int_equal(b.size, 1000);
	assert_int_equal(b.refill_ms, 100);
	assert_int_equal(b.one_time_burst, 0);
	assert_int_equal(ratelimit_parse_bucket("10M:1000:1G", &b), 0);
	assert_int_equal(b.size, 10ull << 20);
	assert_int_equal(b.one_time_burst, 1ull << 30);
	assert_int_equal(ratelimit_parse_bucket("4k:1", &b), 0);
	assert_int_equal(b.size, 4096);
	static const char *const bad[] = {
		"", "1000", "1000:", ":100", "0:100", "1000:0", "-1:100", "1000:-5",
		"1000:100:", "1000:100:x", "1000:100:5:6", "10X:100", "1000:100 ",
		"99999999999999999999:1", "2000000G:1", "1000:3600001", " 1000:100",
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(ratelimit_parse_bucket(bad[i], &b), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inactive_never_limits),
		cmocka_unit_test(test_bandwidth_bucket),
		cmocka_unit_test(test_refill_caps_at_size),
		cmocka_unit_test(test_ops_bucket),
		cmocka_unit_test(test_both_or_neither),
		cmocka_unit_test(test_one_time_burst),
		cmocka_unit_test(test_oversized_request_pays_debt),
		cmocka_unit_test(test_long_run_rate_exact),
		cmocka_unit_test(test_put_back),
		cmocka_unit_test(test_update_refills_and_wakes),
		cmocka_unit_test(test_parse_bucket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
