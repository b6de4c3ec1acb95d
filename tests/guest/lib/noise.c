/*
 * noise.c — see noise.h. The APs run with interrupts off and never touch the
 * devices the BSP tests, so they cannot disturb its results, only the monitor.
 */
#include "noise.h"

#include "acpi.h"
#include "io.h"
#include "layout.h"
#include "smp.h"
#include "test.h"
#include "tsc.h"

#define WAIT_US		3000000
#define ROUND_GAP_US	20	/* leave the BSP some of the host's CPU time */

static volatile uint32_t stop;
static uint32_t up, running;
static uint64_t rounds, bad;
static uint32_t bad_value;
static void (*extra_fn)(unsigned slot, uint64_t round);

static void ap_main(unsigned slot)
{
	uint64_t n = 0;

	__atomic_fetch_add(&up, 1, __ATOMIC_RELEASE);
	__atomic_fetch_add(&running, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
		uint32_t v;

		outb(NOISE_PORT + (n & 3), (uint8_t)n);
		if ((v = inb(NOISE_PORT)) != 0xff || (v = inl(NOISE_PORT + 4)) != 0xffffffff) {
			bad_value = v;
			__atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
		}
		mmio_write32(NOISE_MMIO + 4 * (slot & 15), (uint32_t)n);
		if ((v = mmio_read32(NOISE_MMIO)) != 0xffffffff) {
			bad_value = v;
			__atomic_fetch_add(&bad, 1, __ATOMIC_RELAXED);
		}
		outb(0x3ff, (uint8_t)slot); /* the UART's scratch register */
		(void)inb(0x3ff);
		if (extra_fn)
			extra_fn(slot, n);
		n++;
		tsc_delay_us(ROUND_GAP_US);
	}
	__atomic_fetch_add(&rounds, n, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&running, 1, __ATOMIC_RELEASE);
}

unsigned noise_start(void)
{
	return noise_start_with(0);
}

unsigned noise_start_with(void (*extra)(unsigned slot, uint64_t round))
{
	uint32_t listed[SMP_MAX_CPUS], aps[SMP_MAX_CPUS];
	uint32_t bsp = cpu_apic_id();
	unsigned n = 0;
	uint64_t deadline;
	int madt = acpi_madt_cpus(listed, SMP_MAX_CPUS);

	for (int i = 0; i < madt && i < SMP_MAX_CPUS; i++) {
		if (listed[i] != bsp)
			aps[n++] = listed[i];
	}
	if (!n)
		return 0;
	extra_fn = extra;
	smp_start_aps(aps, n, ap_main);
	deadline = tsc_deadline_us(WAIT_US);
	while (__atomic_load_n(&up, __ATOMIC_ACQUIRE) < n && rdtsc() < deadline)
		cpu_pause();
	return __atomic_load_n(&up, __ATOMIC_ACQUIRE);
}

uint64_t noise_stop(void)
{
	uint64_t deadline = tsc_deadline_us(WAIT_US);

	__atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
	while (__atomic_load_n(&running, __ATOMIC_ACQUIRE) && rdtsc() < deadline)
		cpu_pause();
	if (__atomic_load_n(&running, __ATOMIC_ACQUIRE))
		test_fail("noise: %u APs did not stop", running);
	if (bad)
		test_fail("noise: %lu reads of unassigned addresses were not all ones (0x%x)",
			  bad, bad_value);
	return rounds;
}
