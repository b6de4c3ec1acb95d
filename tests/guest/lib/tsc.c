/*
 * tsc.c — TSC frequency and delays (see tsc.h).
 *
 * No calibration against a timer: mote has no PIT or HPET, and a guest that
 * only needs "a few milliseconds, give or take" does not need one.
 */
#include "io.h"
#include "tsc.h"

#define FALLBACK_KHZ	3000000ULL

static uint64_t khz;

static uint64_t probe_khz(void)
{
	uint32_t a, b, c, d, max;

	/* Hypervisor leaves: 0x40000010 EAX is the TSC rate in kHz (VMware, QEMU). */
	cpuid(1, 0, &a, &b, &c, &d);
	if (c & (1u << 31)) {
		cpuid(0x40000000, 0, &max, &b, &c, &d);
		if (max >= 0x40000010 && max < 0x40010000) {
			cpuid(0x40000010, 0, &a, &b, &c, &d);
			if (a)
				return a;
		}
	}
	cpuid(0, 0, &max, &b, &c, &d);
	if (max >= 0x15) {
		cpuid(0x15, 0, &a, &b, &c, &d);
		if (a && b && c)
			return (uint64_t)c * b / a / 1000;
	}
	if (max >= 0x16) {
		cpuid(0x16, 0, &a, &b, &c, &d);
		if (a & 0xffff)
			return (uint64_t)(a & 0xffff) * 1000;
	}
	return FALLBACK_KHZ;
}

uint64_t tsc_khz(void)
{
	if (!khz)
		khz = probe_khz();
	return khz;
}

uint64_t tsc_deadline_us(uint64_t us)
{
	return rdtsc() + us * tsc_khz() / 1000;
}

void tsc_delay_us(uint64_t us)
{
	uint64_t end = tsc_deadline_us(us);

	while (rdtsc() < end)
		cpu_pause();
}
