/*
 * console.c — polled 16550 output (see console.h).
 *
 * No initialisation: both VMMs' UARTs accept THR writes at reset and the baud
 * rate means nothing to them. Each byte waits for LSR.THRE, but only for a
 * bounded number of polls so a missing UART (LSR reading 0xff or 0) cannot hang
 * a test: the byte is then written anyway.
 */
#include "console.h"
#include "fmt.h"
#include "io.h"

#define UART_THR	0	/* transmit holding register */
#define UART_LSR	5	/* line status register */
#define LSR_THRE	0x20	/* THR empty */
#define THRE_POLLS	100000

/*
 * Lets a FAIL line start on its own line even mid-output. It starts set because
 * a guest's entry may already have written something (hello's 'm'); at worst a
 * FAIL line is preceded by an empty one.
 */
static int mid_line = 1;

void console_putc(char c)
{
	for (int i = 0; i < THRE_POLLS; i++) {
		if (inb(CONSOLE_PORT + UART_LSR) & LSR_THRE)
			break;
		cpu_pause();
	}
	outb(CONSOLE_PORT + UART_THR, (uint8_t)c);
	mid_line = c != '\n';
}

void console_newline_if_needed(void)
{
	if (mid_line)
		console_putc('\n');
}

void console_puts(const char *s)
{
	while (*s)
		console_putc(*s++);
}

static void console_emit(char c, void *ctx)
{
	(void)ctx;
	console_putc(c);
}

int console_vprintf(const char *fmt, va_list ap)
{
	return fmt_vformat(console_emit, 0, fmt, ap);
}

int console_printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = console_vprintf(fmt, ap);
	va_end(ap);
	return n;
}
