/* The e820 memory map: the one description of guest RAM that the Linux zero
 * page, the PVH memmap and mote's tests share. */
#ifndef MOTE_X86_E820_H
#define MOTE_X86_E820_H

#include <stdint.h>

#include "mem/guest_mem.h"

#define E820_RAM 1
#define E820_RESERVED 2

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

#define E820_MAX 8

/* Fills out[] (E820_MAX entries) from mem's regions; returns the count. */
unsigned x86_e820_build(const struct guest_mem *mem, struct e820_entry *out);

#endif
