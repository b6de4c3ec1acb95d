/*
 * tsc — the host's TSC rate in kHz, for bench/exits (guest cycles -> ns).
 *
 *   tsc [MILLISECONDS]        (default 200; prints one line: the kHz)
 *
 * Counts RDTSC ticks against CLOCK_MONOTONIC_RAW (not slewed by NTP) over the
 * interval, five times, and prints the median. Each end of the interval
 * brackets the clock read between two RDTSCs and takes their midpoint, so a
 * preemption between the two reads shows up as a wide bracket; the narrowest
 * of a few tries is kept.
 *
 * The guest's RDTSC counts at this same rate: neither mote nor QEMU sets
 * KVM_SET_TSC_KHZ here (and PVM has no TSC scaling), so a guest sees the host
 * TSC plus an offset.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

static long long raw_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One (tsc, ns) pair, from the narrowest of 20 brackets. */
static void sample(uint64_t *tsc, long long *ns)
{
	uint64_t best = UINT64_MAX;

	for (int i = 0; i < 20; i++) {
		uint64_t a = __rdtsc();
		long long t = raw_ns();
		uint64_t b = __rdtsc();
		if (b - a < best) {
			best = b - a;
			*tsc = a + (b - a) / 2;
			*ns = t;
		}
	}
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	long ms = argc > 1 ? atol(argv[1]) : 200;
	double khz[5];

	if (ms <= 0)
		ms = 200;
	for (int r = 0; r < 5; r++) {
		uint64_t c0, c1;
		long long t0, t1;
		struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };

		sample(&c0, &t0);
		nanosleep(&d, NULL);
		sample(&c1, &t1);
		khz[r] = (double)(c1 - c0) * 1e6 / (double)(t1 - t0);
	}
	qsort(khz, 5, sizeof(khz[0]), cmp);
	printf("%.0f\n", khz[2]);
	return 0;
}
