/*
 * ticker — a guest that runs until the monitor stops it, for the host's
 * post-boot API tests (pause, resume, requests refused once running): it
 * prints a numbered line about every 50 ms. It first echoes its command
 * line, so the host can check what the monitor composed (boot_args plus
 * root=...).
 *
 * Command line: ticks=N prints N ticks and then "done" (default 0: forever).
 * Output:
 *   mote-test: cmdline <the whole command line>
 *   mote-test: tick <n>        (n = 0, 1, 2, ...)
 *   mote-test: done            (only with ticks=N)
 */
#include "guest.h"

#define TICK_US 50000

void guest_main(void)
{
	uint64_t limit = cmdline_u64("ticks", 0);

	test_log("cmdline %s", boot_cmdline());
	for (uint64_t n = 0; !limit || n < limit; n++) {
		test_log("tick %lu", n);
		tsc_delay_us(TICK_US);
	}
	test_done();
}
