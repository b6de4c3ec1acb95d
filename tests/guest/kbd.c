/*
 * kbd — reads what the keyboard controller (i8042) delivers, for the host's
 * SendCtrlAltDel test: it says it is ready, then polls the controller's
 * status port for output and prints each byte it reads, and powers off once
 * it has seen a whole Ctrl-Alt-Del (8 bytes) or after 20 s.
 *
 * Output:
 *   mote-test: kbd ready
 *   mote-test: kbd bytes <hex> <hex> ...
 *   mote-test: done
 */
#include "guest.h"

#define I8042_DATA 0x60
#define I8042_STATUS 0x64
#define STATUS_OBF 0x01
#define WANT 8

void guest_main(void)
{
	uint8_t got[WANT];
	unsigned n = 0;
	test_log("kbd ready");
	uint64_t deadline = tsc_deadline_us(20000000);
	while (n < WANT && rdtsc() < deadline) {
		if (inb(I8042_STATUS) & STATUS_OBF)
			got[n++] = inb(I8042_DATA);
		else
			tsc_delay_us(1000);
	}
	char line[3 * WANT + 1];
	unsigned len = 0;
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < n; i++) {
		if (i)
			line[len++] = ' ';
		line[len++] = hex[got[i] >> 4];
		line[len++] = hex[got[i] & 15];
	}
	line[len] = '\0';
	test_log("kbd bytes %s", line);
	test_done();
}
