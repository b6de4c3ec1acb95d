/*
 * test.c — "mote-test: " lines, success and failure (see test.h).
 */
#include <stdarg.h>

#include "console.h"
#include "power.h"
#include "test.h"

#define PREFIX "mote-test: "

void test_log(const char *fmt, ...)
{
	va_list ap;

	console_puts(PREFIX);
	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
	console_putc('\n');
}

void test_done(void)
{
	console_puts(PREFIX "done\n");
	power_off();
}

void test_fail(const char *fmt, ...)
{
	va_list ap;

	console_newline_if_needed();
	console_puts(PREFIX "FAIL ");
	va_start(ap, fmt);
	console_vprintf(fmt, ap);
	va_end(ap);
	console_putc('\n');
	power_off();
}
