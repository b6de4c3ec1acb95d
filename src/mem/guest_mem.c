/* Guest RAM allocation and the checked gpa → host pointer accessor.
 * See guest_mem.h. RAM is private anonymous memory, 2 MiB aligned, with
 * MADV_HUGEPAGE above the first 2 MiB: measured in the lab, a memfd (shmem) got no transparent
 * huge pages under Debian's default shmem_enabled=never and Linux took about
 * 2 s longer to boot, every guest page faulted in 4 KiB at a time. Pages are
 * only touched when the guest touches them (MAP_NORESERVE). */
#include "mem/guest_mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/util.h"


static int map_ram(struct guest_mem *mem, uint64_t total, uint64_t hole_start,
		   uint64_t high_start, int fd)
{
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	if (total == 0 || hole_start == 0 || high_start < hole_start ||
	    total > UINT64_MAX - GUEST_MEM_ALIGN)
		return -EINVAL;
	/* Over-map by one huge page, then trim, so the mapping starts 2 MiB
	 * aligned: only then can host huge pages back 2 MiB guest pages. */
	size_t span = total + GUEST_MEM_ALIGN;
	uint8_t *p = mmap(NULL, span, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return errno == EINVAL ? -ENOMEM : -errno;
	uint8_t *base = (uint8_t *)ALIGN_UP((uintptr_t)p, GUEST_MEM_ALIGN);
	if (base > p)
		munmap(p, (size_t)(base - p));
	if (base + total < p + span)
		munmap(base + total, (size_t)(p + span - (base + total)));
	if (fd >= 0) {
		/* The file replaces the anonymous placeholder, aligned the same. */
		void *f = mmap(base, total, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, 0);
		if (f == MAP_FAILED) {
			int err = -errno;
			munmap(base, total);
			return err;
		}
	}
	/* Not the first 2 MiB: mote writes its boot structures and the test
	 * guests' images there before the first guest instruction, and a huge
	 * page fault zeroes all 2 MiB (measured: ~5 ms of a 7 ms start-up on
	 * this nested host); Linux keeps that range in small pages anyway. */
	if (total > GUEST_MEM_ALIGN)
		madvise(base + GUEST_MEM_ALIGN, total - GUEST_MEM_ALIGN, MADV_HUGEPAGE);
	/* Guest RAM is not worth dumping with mote's core. */
	madvise(base, total, MADV_DONTDUMP);
	mem->base = base;
	mem->total = total;
	uint64_t low = total < hole_start ? total : hole_start;
	mem->regions[0] = (struct guest_region){ .gpa = 0, .size = low, .hva = base };
	mem->nr_regions = 1;
	if (total > low) {
		mem->regions[1] = (struct guest_region){
			.gpa = high_start, .size = total - low, .hva = base + low };
		mem->nr_regions = 2;
	}
	return 0;
}

int guest_mem_init(struct guest_mem *mem, uint64_t total, uint64_t hole_start,
		   uint64_t high_start)
{
	return map_ram(mem, total, hole_start, high_start, -1);
}

int guest_mem_init_file(struct guest_mem *mem, uint64_t total, uint64_t hole_start,
			uint64_t high_start, int fd)
{
	int err = map_ram(mem, total, hole_start, high_start, fd);
	if (err)
		close(fd);
	else
		mem->fd = fd;
	return err;
}

int guest_mem_track(struct guest_mem *mem)
{
	uint64_t pages = (mem->total + GUEST_PAGE - 1) / GUEST_PAGE;
	mem->dirty = calloc((pages + 63) / 64, sizeof(uint64_t));
	return mem->dirty ? 0 : -ENOMEM;
}

void guest_mem_dirty(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (mem->dirty && mem->base && len)
		guest_mem_dirty_hva(mem, guest_mem_ptr(mem, gpa, len), len);
}

void guest_mem_dirty_hva(const struct guest_mem *mem, const void *hva, uint64_t len)
{
	const uint8_t *p = hva;
	if (!mem->dirty || !mem->base || !p || len == 0 || p < mem->base ||
	    (uint64_t)(p - mem->base) > mem->total || len > mem->total - (uint64_t)(p - mem->base))
		return;
	uint64_t first = (uint64_t)(p - mem->base) / GUEST_PAGE;
	uint64_t last = (uint64_t)(p - mem->base + len - 1) / GUEST_PAGE;
	/* Release: the data written before this call is visible to a thread
	 * that sees the bit (guest_mem_take_dirty). A device marks a page
	 * after writing it and the migration thread clears the bit before
	 * reading the page, so a write racing with a send leaves the bit set
	 * for the next round: nothing a device writes is lost. */
	for (uint64_t i = first; i <= last; i++)
		__atomic_fetch_or(&mem->dirty[i / 64], 1ull << (i % 64), __ATOMIC_RELEASE);
}

void guest_mem_take_dirty(const struct guest_mem *mem, uint64_t first, uint64_t n,
			  uint64_t *bitmap)
{
	uint64_t i = 0;
	/* Whole words at a time where the range is aligned (regions start on
	 * 2 MiB boundaries): an idle word costs one load. */
	for (; mem->dirty && first % 64 == 0 && i + 64 <= n; i += 64) {
		uint64_t *w = &mem->dirty[(first + i) / 64];
		if (__atomic_load_n(w, __ATOMIC_RELAXED))
			bitmap[i / 64] |= __atomic_exchange_n(w, 0, __ATOMIC_ACQ_REL);
	}
	for (; mem->dirty && i < n; i++) {
		uint64_t page = first + i, bit = 1ull << (page % 64);
		/* Acquire: pairs with guest_mem_dirty_hva's release, and the page
		 * is read only after its bit is cleared. */
		if (__atomic_fetch_and(&mem->dirty[page / 64], ~bit, __ATOMIC_ACQ_REL) & bit)
			bitmap[i / 64] |= 1ull << (i % 64);
	}
}

void guest_mem_fini(struct guest_mem *mem)
{
	free(mem->dirty);
	if (mem->base && !mem->borrowed)
		munmap(mem->base, mem->total);
	if (mem->fd >= 0)
		close(mem->fd);
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
}

int guest_mem_init_static(struct guest_mem *mem, const struct guest_region *regions,
			  unsigned nr)
{
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	if (nr == 0 || nr > GUEST_MEM_MAX_REGIONS)
		return -EINVAL;
	for (unsigned i = 0; i < nr; i++) {
		const struct guest_region *r = &regions[i];
		if (r->size == 0 || r->gpa + r->size - 1 < r->gpa)
			return -EINVAL;
		mem->regions[i] = *r;
		mem->total += r->size;
	}
	mem->nr_regions = nr;
	/* One flat image (what snapshots and migration address by offset)
	 * only where the regions follow each other in host memory. */
	mem->base = regions[0].hva;
	mem->borrowed = true;
	for (unsigned i = 1; i < nr; i++)
		if (regions[i].hva != regions[i - 1].hva + regions[i - 1].size)
			mem->base = NULL;
	return 0;
}

const struct guest_region *guest_mem_region(const struct guest_mem *mem, uint64_t gpa)
{
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		const struct guest_region *r = &mem->regions[i];
		if (gpa >= r->gpa && gpa - r->gpa < r->size)
			return r;
	}
	return NULL;
}

void *guest_mem_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	const struct guest_region *r = guest_mem_region(mem, gpa);
	if (!r)
		return NULL;
	/* Subtract, then compare: neither side can overflow. */
	uint64_t off = gpa - r->gpa;
	if (len > r->size - off)
		return NULL;
	return r->hva + off;
}

int guest_mem_read(const struct guest_mem *mem, uint64_t gpa, void *dst, size_t len)
{
	const void *p = guest_mem_ptr(mem, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int guest_mem_write(const struct guest_mem *mem, uint64_t gpa, const void *src, size_t len)
{
	void *p = guest_mem_ptr(mem, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}
