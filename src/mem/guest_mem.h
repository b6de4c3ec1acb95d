/* Guest memory: the only code that turns a guest-physical address into a
 * host pointer (DESIGN.md rule 1).
 *
 * Guest RAM is one anonymous mapping; on x86 it is split into a low region
 * below the 32-bit MMIO hole and a high region above 4 GiB. Every guest
 * address goes through guest_mem_ptr(), which checks that the whole range
 * [gpa, gpa + len) lies inside one region, overflow-safe. */
#ifndef MOTE_GUEST_MEM_H
#define MOTE_GUEST_MEM_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define GUEST_MEM_MAX_REGIONS 4
#define GUEST_MEM_ALIGN (2ull << 20) /* host huge page */

struct guest_region {
	uint64_t gpa;  /* first guest-physical address */
	uint64_t size; /* bytes; never 0 */
	uint8_t *hva;  /* host mapping of gpa */
};

struct guest_mem {
	struct guest_region regions[GUEST_MEM_MAX_REGIONS];
	unsigned nr_regions;
	uint8_t *base;    /* the whole mapping: the flat image snapshots and
			   * migration address by offset */
	bool borrowed;    /* base is the caller's (guest_mem_init_static) */
	uint64_t total;   /* bytes of RAM */
	int fd;           /* a file backing RAM (snapshot restore), or -1 */
	/* Pages mote itself wrote (device DMA), one bit per 4 KiB page from
	 * base, or NULL when not tracking. KVM's dirty log only sees the
	 * guest's own writes; diff snapshots need both. */
	uint64_t *dirty;
};

#define GUEST_PAGE 4096ull

/* Allocates `total` bytes of guest RAM placed below `hole_start` and, for
 * what does not fit, from `high_start` on. 0 or -errno (-ENOMEM when the
 * host cannot map it). */
int guest_mem_init(struct guest_mem *mem, uint64_t total, uint64_t hole_start,
		   uint64_t high_start);
void guest_mem_fini(struct guest_mem *mem);

/* Like guest_mem_init, but RAM is the file fd (at least `total` bytes)
 * mapped MAP_PRIVATE: pages are read in lazily when first touched and the
 * guest's writes never reach the file (snapshot restore). Takes fd. */
int guest_mem_init_file(struct guest_mem *mem, uint64_t total, uint64_t hole_start,
			uint64_t high_start, int fd);

/* Starts tracking the pages mote writes (guest_mem_dirty). 0 or -ENOMEM. */
int guest_mem_track(struct guest_mem *mem);
/* Records that mote wrote [gpa, gpa + len) (no-op when not tracking);
 * call it after the write, never before only (see guest_mem_take_dirty). */
void guest_mem_dirty(const struct guest_mem *mem, uint64_t gpa, uint64_t len);
/* The same for host memory inside RAM (p from guest_mem_ptr). */
void guest_mem_dirty_hva(const struct guest_mem *mem, const void *p, uint64_t len);
/* Takes the bits for pages [first, first + n) of the mapping (by page index
 * from base) into bitmap (OR), clearing them. Safe on another thread while
 * devices mark pages (each bit is taken with one atomic read-and-clear): a
 * page marked after its bit was taken is in the next call's bitmap. */
void guest_mem_take_dirty(const struct guest_mem *mem, uint64_t first, uint64_t n,
			  uint64_t *bitmap);

/* Builds a guest memory over caller-owned host memory (tests, fuzzers). */
int guest_mem_init_static(struct guest_mem *mem, const struct guest_region *regions,
			  unsigned nr);

/* Host pointer for [gpa, gpa + len) or NULL when any byte of it lies outside
 * guest RAM or the range wraps. len 0 is checked as len 1. */
void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Copies between guest RAM and host buffers; -EFAULT when out of range. */
int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, size_t len);
int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, size_t len);

/* The region containing gpa, or NULL. */
const struct guest_region *guest_mem_region(const struct guest_mem *mem, uint64_t gpa);

#endif
