/* The host side of the serial console: mote's stdin feeds the UART, a
 * terminal on stdin is put in raw mode (and restored on every exit path,
 * crashes included), and Ctrl-A x quits as in QEMU (Ctrl-A Ctrl-A sends a
 * literal Ctrl-A). Input that the UART cannot take yet stays in the kernel's
 * pipe/tty buffer: the console stops reading until the guest drains it. */
#ifndef MOTE_CONSOLE_H
#define MOTE_CONSOLE_H

#include <stdbool.h>

#include "dev/serial.h"
#include "util/evloop.h"

struct console {
	struct evloop *loop;
	struct serial8250 *serial;
	struct evloop_source in;    /* stdin */
	struct evloop_source ready; /* eventfd: the UART has room again */
	bool is_tty, escape, reading;
	uint8_t pending[256];       /* read but not yet taken by the UART */
	unsigned pending_off, pending_len;
	void (*quit)(void *opaque); /* Ctrl-A x */
	void *quit_opaque;
};

int console_init(struct console *c, struct evloop *loop, struct serial8250 *serial,
		 int in_fd, void (*quit)(void *), void *opaque);
void console_fini(struct console *c);

#endif
