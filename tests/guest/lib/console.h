/*
 * console.h — output on the 16550 UART at I/O port 0x3f8, which both mote and
 * QEMU provide.
 *
 * Polled, no interrupts, no input. Not locked: print from one CPU at a time
 * (the tests print only from the BSP).
 */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H

#include <stdarg.h>

#define CONSOLE_PORT	0x3f8

void console_putc(char c);
void console_puts(const char *s);	/* no newline added */
int console_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int console_vprintf(const char *fmt, va_list ap);

/* Ends the current line if something has been written on it. */
void console_newline_if_needed(void);

#endif
