/*
 * test.h — the output protocol every test guest follows.
 *
 * Host-side tests and benchmarks parse the console for lines starting with
 * "mote-test: ". A guest ends with test_done() ("mote-test: done") or
 * test_fail() ("mote-test: FAIL <why>"); both power off.
 */
#ifndef GUEST_TEST_H
#define GUEST_TEST_H

/* Prints one line: "mote-test: " + the formatted text + "\n". */
void test_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "mote-test: done" and powers off. */
void test_done(void) __attribute__((noreturn));

/* Prints "mote-test: FAIL " + the formatted text and powers off. */
void test_fail(const char *fmt, ...)
	__attribute__((noreturn, format(printf, 1, 2)));

#endif
