/* Unit tests for src/util/log.c: level names, the one-line format, and the
 * per-call-site rate limit that keeps a hostile guest from flooding the
 * host's logs (DESIGN.md rule 2). Time is simulated by moving the limiter's
 * last refill back, never by sleeping. */
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

static int setup(void **state)
{
	log_set_level(LOG_WARN);
	return unit_log_begin(state);
}

static int teardown(void **state)
{
	log_set_level(LOG_WARN);
	return unit_log_end(state);
}

static void test_parse_level(void **state)
{
	static const struct {
		const char *name;
		enum log_level level;
	} ok[] = {
		{"error", LOG_ERROR}, {"warning", LOG_WARN}, {"warn", LOG_WARN},
		{"info", LOG_INFO},   {"debug", LOG_DEBUG},  {"DEBUG", LOG_DEBUG},
		{"Warn", LOG_WARN},   {"ERROR", LOG_ERROR},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(ok); i++) {
		enum log_level l = (enum log_level)99;
		assert_int_equal(log_parse_level(ok[i].name, &l), 0);
		assert_int_equal(l, ok[i].level);
	}
	static const char *const bad[] = {"",	   "err",   "warnings", "debug ",
					  " info", "trace", "3",	"infoo"};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		enum log_level l = LOG_INFO;
		assert_int_equal(log_parse_level(bad[i], &l), -EINVAL);
		assert_int_equal(l, LOG_INFO); /* untouched on error */
	}
}

static void test_levels_filter(void **state)
{
	log_error("e %d", 1);
	log_warn("w %d", 2);
	log_info("i %d", 3);
	log_debug("d %d", 4);
	assert_string_equal(unit_log_text(), "mote: error: e 1\nmote: warning: w 2\n");
	unit_log_clear();
	log_set_level(LOG_DEBUG);
	assert_int_equal(log_get_level(), LOG_DEBUG);
	log_debug("d");
	log_info("i");
	assert_string_equal(unit_log_text(), "mote: debug: d\nmote: info: i\n");
	unit_log_clear();
	log_set_level(LOG_ERROR);
	log_warn("w");
	assert_int_equal(unit_log_lines(), 0);
}

static void test_long_message_truncated(void **state)
{
	/* a message longer than the line buffer is cut, still one line */
	static char big[4000];
	memset(big, 'x', sizeof(big) - 1);
	log_error("%s", big);
	const char *t = unit_log_text();
	assert_int_equal(unit_log_lines(), 1);
	size_t len = strlen(t);
	assert_true(len > 900 && len <= 1024);
	assert_int_equal(t[len - 1], '\n');
	assert_int_equal(t[len - 2], 'x');
}

/* One call site: the macro's static limiter is shared by every call. */
static void site(int i)
{
	log_ratelimited(LOG_WARN, "flood %d", i);
}

static void test_ratelimit_burst(void **state)
{
	for (int i = 0; i < 100; i++)
		site(i);
	/* a burst gets through, the rest is suppressed */
	unsigned lines = unit_log_lines();
	assert_in_range(lines, 1, 20);
	assert_log_contains("mote: warning: flood 0\n");
	char want[32];
	snprintf(want, sizeof(want), "flood %u\n", lines - 1);
	assert_log_contains(want);
	snprintf(want, sizeof(want), "flood %u\n", lines);
	assert_null(strstr(unit_log_text(), want));
}

static void test_ratelimit_refill_and_report(void **state)
{
	struct log_ratelimit rl = {0};
	unsigned burst = 0;
	for (int i = 0; i < 50; i++)
		log_ratelimited_msg(&rl, LOG_ERROR, "m%d", i);
	burst = unit_log_lines();
	assert_in_range(burst, 1, 20);
	assert_int_equal(atomic_load(&rl.suppressed), 50 - burst);

	/* 2.5 seconds later: two more lines, the first preceded by a count
	 * of what was suppressed meanwhile */
	unit_log_clear();
	atomic_store(&rl.last_ns, monotonic_ns() - 2500000000ull);
	for (int i = 0; i < 5; i++)
		log_ratelimited_msg(&rl, LOG_ERROR, "n%d", i);
	char want[96];
	snprintf(
		want, sizeof(want),
		"mote: error: (%u similar messages suppressed)\nmote: error: n0\nmote: error: n1\n",
		50 - burst);
	assert_string_equal(unit_log_text(), want);
	assert_int_equal(atomic_load(&rl.suppressed), 3);

	/* a long quiet spell refills only up to the burst */
	unit_log_clear();
	atomic_store(&rl.last_ns, monotonic_ns() - 3600 * 1000000000ull);
	for (int i = 0; i < 100; i++)
		log_ratelimited_msg(&rl, LOG_ERROR, "q");
	assert_int_equal(unit_log_lines(), burst + 1); /* + the suppressed count */
}

static void test_ratelimit_filtered_level(void **state)
{
	/* messages below the log level are dropped without using tokens */
	struct log_ratelimit rl = {0};
	for (int i = 0; i < 100; i++)
		log_ratelimited_msg(&rl, LOG_DEBUG, "hidden");
	assert_int_equal(unit_log_lines(), 0);
	log_ratelimited_msg(&rl, LOG_ERROR, "shown");
	assert_string_equal(unit_log_text(), "mote: error: shown\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_parse_level, setup, teardown),
		cmocka_unit_test_setup_teardown(test_levels_filter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_message_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ratelimit_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ratelimit_refill_and_report, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ratelimit_filtered_level, setup, teardown),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
