/* Firecracker's boot timer (--boot-timer): a guest that writes the magic
 * byte 123 to offset 0 of this MMIO page gets a log line with the time since
 * mote started, so orchestrators can measure boot time from inside the
 * guest. Nothing else. */
#ifndef MOTE_BOOT_TIMER_H
#define MOTE_BOOT_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#define BOOT_TIMER_ADDR 0xd0000000ull /* Firecracker's address */
#define BOOT_TIMER_LEN 0x1000
#define BOOT_TIMER_MAGIC 123

struct boot_timer {
	uint64_t start_ns; /* CLOCK_MONOTONIC when mote started */
};

void boot_timer_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
