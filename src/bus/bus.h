/* Port-I/O and MMIO dispatch: guest address → device handler.
 *
 * Port I/O and MMIO share one handler type and one lookup (a sorted array of
 * non-overlapping ranges, binary search, overflow-checked). Devices register
 * at set-up, before any vCPU runs; after bus_seal() the table is read-only, so
 * vCPU threads look it up without locks. A handler runs on the vCPU thread
 * that exited: it must be short and must never block. */
#ifndef MOTE_BUS_H
#define MOTE_BUS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* offset: from the start of the registered range; data: len bytes, little
 * endian, to fill on a read or to consume on a write; len is 1, 2, 4 or 8. */
typedef void (*bus_io_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_io_fn fn;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for logs */
	struct bus_range *ranges;
	unsigned nr, cap;
	bool sealed;
	_Atomic uint64_t unassigned; /* accesses that hit no device */
};

void bus_init(struct bus *bus, const char *name);
void bus_fini(struct bus *bus);

/* Registers [base, base + len). 0, -EINVAL (len 0, wraps, sealed) or
 * -EEXIST (overlaps a registered range, named in the log), -ENOMEM. */
int bus_add(struct bus *bus, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
	    const char *name);
/* Ends registration; lookups are lock-free afterwards. */
void bus_seal(struct bus *bus);

/* The range that holds all of [addr, addr + len), or NULL. */
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, uint32_t len);

/* Dispatches one access. An access that hits no device (or straddles a
 * range's end) reads as all ones, is dropped on write, is counted, and
 * returns -ENOENT; 0 otherwise. */
int bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
