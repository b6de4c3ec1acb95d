/*
 * tsc.h — time from the TSC, for delays and timeouts (never for verdicts: the
 * host decides from output, not from how long the guest took).
 */
#ifndef GUEST_TSC_H
#define GUEST_TSC_H

#include <stdint.h>

/*
 * TSC ticks per millisecond: from the hypervisor's CPUID leaf 0x40000010 or
 * CPUID 0x15/0x16 when present, else an assumed 3 GHz (which makes delays
 * longer, never shorter, on slower hosts). Computed once.
 */
uint64_t tsc_khz(void);

/* Busy-waits at least roughly us microseconds. */
void tsc_delay_us(uint64_t us);

/* The TSC value us microseconds from now, for bounded waits. */
uint64_t tsc_deadline_us(uint64_t us);

#endif
