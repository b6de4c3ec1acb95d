/*
 * fmt.h — printf-style formatting without libc, for the console and for
 * building strings.
 *
 * Supported: %d %i %u %x %X %p %s %c %%, flags '-' and '0', a width and a
 * precision (digits or '*'; precision limits %s), length modifiers hh h l ll z.
 * No floating point: the guests are built without SSE/x87.
 */
#ifndef GUEST_FMT_H
#define GUEST_FMT_H

#include <stdarg.h>
#include <stddef.h>

/* Receives each output character in order. */
typedef void (*fmt_emit_fn)(char c, void *ctx);

/* Formats into emit; returns the number of characters emitted. */
int fmt_vformat(fmt_emit_fn emit, void *ctx, const char *fmt, va_list ap);

/*
 * Like C's vsnprintf: writes at most size - 1 characters plus a NUL (nothing
 * when size == 0) and returns the length the full output would have had.
 */
int fmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int fmt_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
