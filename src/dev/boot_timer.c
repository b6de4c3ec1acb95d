/* The boot timer device; see boot_timer.h. */
#include "dev/boot_timer.h"

#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/util.h"

void boot_timer_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct boot_timer *t = opaque;
	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (offset != 0 || data[0] != BOOT_TIMER_MAGIC)
		return;
	uint64_t us = (monotonic_ns() - t->start_ns) / 1000;
	struct timespec cpu;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	uint64_t cpu_us = (uint64_t)cpu.tv_sec * 1000000 + (uint64_t)cpu.tv_nsec / 1000;
	/* Firecracker's wording, which tools grep for. */
	log_ratelimited(LOG_INFO, "Guest-boot-time = %8llu us %llu ms, %8llu CPU us %llu CPU ms",
			(unsigned long long)us, (unsigned long long)(us / 1000),
			(unsigned long long)cpu_us, (unsigned long long)(cpu_us / 1000));
}
