/*
 * exits — measures the round trip of the two VM exits every emulated device
 * pays for: port I/O and MMIO.
 *
 * Command line: exits=N (default 100000).
 * Output:
 *   mote-test: exits n=<N> pio_cycles=<TSC cycles> mmio_cycles=<TSC cycles>
 *   mote-test: done
 *
 * Port I/O goes to 0x3ff, the 16550 scratch register, so both monitors run a
 * real (trivial) device handler. MMIO goes to 0xF0000000, which nothing claims
 * in mote or QEMU microvm, so each write exits to the monitor and is dropped.
 * The cycle totals include the loop itself, which is noise next to an exit.
 */
#include "guest.h"

#define EXITS_DEFAULT	100000
#define PIO_PORT	0x3ff
#define MMIO_ADDR	0xf0000000ULL

void guest_main(void)
{
	uint64_t n = cmdline_u64("exits", EXITS_DEFAULT);
	uint64_t t0, pio, mmio, i;

	t0 = rdtsc();
	for (i = 0; i < n; i++)
		outb(PIO_PORT, (uint8_t)i);
	pio = rdtsc() - t0;

	t0 = rdtsc();
	for (i = 0; i < n; i++)
		mmio_write32(MMIO_ADDR, (uint32_t)i);
	mmio = rdtsc() - t0;

	test_log("exits n=%lu pio_cycles=%lu mmio_cycles=%lu", n, pio, mmio);
	test_done();
}
