/*
 * hello — the smallest test guest: proves a monitor can load a PVH ELF, start
 * it, carry its console output, and end on its power-off.
 *
 * Output:
 *   mote-test: hello      ('m' comes from hello.S, before any set-up)
 *   mote-test: done
 */
#include "guest.h"

void guest_main(void)
{
	console_puts("ote-test: hello\n");
	test_done();
}
