/*
 * pci.c — PCI configuration mechanism #1 on bus 0, BARs, capabilities (see pci.h).
 *
 * BAR sizing follows PCI 3.0 section 6.2.5.1: with decoding off, write all
 * ones, read the mask back, restore. The monitor's configuration space is a
 * thing under test, so capability walks are bounded and a 64-bit BAR in the
 * last slot is refused rather than trusted.
 */
#include "boot.h"
#include "cmdline.h"
#include "fmt.h"
#include "io.h"
#include "pci.h"
#include "str.h"
#include "test.h"

#define PCI_CONFIG_ADDR		0xcf8
#define PCI_CONFIG_DATA		0xcfc
#define PCI_CONFIG_ENABLE	0x80000000u

#define CAP_WALK_MAX		48	/* (256 - 64) / 4 */
#define WINDOW_DEFAULT		0xe0000000ULL
#define WINDOW_END_32		0xfec00000ULL	/* IOAPIC, HPET, LAPIC above */
#define WINDOW_SPAN_64		(64ULL << 30)
#define SZ_4G			0x100000000ULL
#define MIN_ASSIGN		4096ULL		/* one BAR per page at least */

static struct pci_dev devs[PCI_MAX_DEVICES];
static unsigned ndevs;
static int scanned;
static int reassign;
static uint64_t window_next, window_end;

/* BARs reassigned so far: pci_set_reassign(1) moves each one once only. */
#define REASSIGN_MAX		32
static struct {
	uint8_t bus, dev, fn, bar;
} moved[REASSIGN_MAX];
static unsigned nmoved;

static uint32_t cfg_addr(const struct pci_dev *d, uint16_t off)
{
	return PCI_CONFIG_ENABLE | (uint32_t)d->bus << 16 |
	       (uint32_t)d->dev << 11 | (uint32_t)d->fn << 8 | (off & 0xfc);
}

uint8_t pci_read8(const struct pci_dev *d, uint16_t off)
{
	outl(PCI_CONFIG_ADDR, cfg_addr(d, off));
	return inb(PCI_CONFIG_DATA + (off & 3));
}

uint16_t pci_read16(const struct pci_dev *d, uint16_t off)
{
	outl(PCI_CONFIG_ADDR, cfg_addr(d, off));
	return inw(PCI_CONFIG_DATA + (off & 2));
}

uint32_t pci_read32(const struct pci_dev *d, uint16_t off)
{
	outl(PCI_CONFIG_ADDR, cfg_addr(d, off));
	return inl(PCI_CONFIG_DATA);
}

void pci_write8(const struct pci_dev *d, uint16_t off, uint8_t v)
{
	outl(PCI_CONFIG_ADDR, cfg_addr(d, off));
	outb(PCI_CONFIG_DATA + (off & 3), v);
}

void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v)
{
	outl(PCI_CONFIG_ADDR, cfg_addr(d, off));
	outw(PCI_CONFIG_DATA + (off & 2), v);
}

void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v)
{
	outl(PCI_CONFIG_ADDR, cfg_addr(d, off));
	outl(PCI_CONFIG_DATA, v);
}

/* Fills *d from configuration space; 0 if a function answers there, else -1. */
static int probe_fn(struct pci_dev *d, uint8_t dev, uint8_t fn)
{
	*d = (struct pci_dev){ .bus = 0, .dev = dev, .fn = fn };
	d->vendor = pci_read16(d, PCI_VENDOR_ID);
	if (d->vendor == 0xffff || d->vendor == 0)
		return -1;
	d->device = pci_read16(d, PCI_DEVICE_ID);
	d->header_type = pci_read8(d, PCI_HEADER_TYPE) & 0x7f;
	d->revision = pci_read8(d, PCI_REVISION);
	d->prog_if = pci_read8(d, PCI_PROG_IF);
	d->subclass = pci_read8(d, PCI_SUBCLASS);
	d->class_code = pci_read8(d, PCI_CLASS);
	if (d->header_type == 0) {
		d->subsys_vendor = pci_read16(d, PCI_SUBSYS_VENDOR);
		d->subsys_id = pci_read16(d, PCI_SUBSYS_ID);
	}
	return 0;
}

static void scan_once(void)
{
	struct pci_dev d;
	uint8_t dev, fn;

	if (scanned)
		return;
	scanned = 1;
	for (dev = 0; dev < 32; dev++) {
		if (probe_fn(&d, dev, 0))
			continue;
		for (fn = 0; fn < 8; fn++) {
			if (fn && probe_fn(&d, dev, fn))
				continue;
			if (ndevs < PCI_MAX_DEVICES)
				devs[ndevs] = d;
			ndevs++;
			if (fn == 0 && !(pci_read8(&d, PCI_HEADER_TYPE) &
					 PCI_HEADER_MULTI_FN))
				break;
		}
	}
}

unsigned pci_scan(struct pci_dev *out, unsigned max)
{
	unsigned i;

	scan_once();
	for (i = 0; i < ndevs && i < max && i < PCI_MAX_DEVICES; i++)
		out[i] = devs[i];
	return ndevs;
}

const char *pci_name(const struct pci_dev *d, char *buf)
{
	fmt_snprintf(buf, 8, "%02x:%02x.%x", d->bus, d->dev, d->fn);
	return buf;
}

uint8_t pci_cap_next(const struct pci_dev *d, uint8_t prev)
{
	uint8_t p;
	unsigned n;

	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	/* Walk from the start every time: it bounds a looping list. */
	p = pci_read8(d, PCI_CAP_PTR) & 0xfc;
	for (n = 0; p >= 0x40 && n < CAP_WALK_MAX; n++) {
		if (!prev)
			return p;
		if (p == prev)
			prev = 0;
		p = pci_read8(d, p + 1) & 0xfc;
	}
	return 0;
}

uint8_t pci_cap_find(const struct pci_dev *d, uint8_t id, uint8_t prev)
{
	uint8_t p = prev;

	while ((p = pci_cap_next(d, p)) != 0) {
		if (pci_read8(d, p) == id)
			return p;
	}
	return 0;
}

/* 1 if BAR idx is the upper half of a 64-bit BAR below it. */
static int bar_is_upper(const struct pci_dev *d, unsigned idx)
{
	unsigned i = 0;

	while (i < idx) {
		uint32_t raw = pci_read32(d, PCI_BAR0 + 4 * i);

		if (!(raw & 1) && ((raw >> 1) & 3) == 2) {
			if (i + 1 == idx)
				return 1;
			i += 2;
		} else {
			i++;
		}
	}
	return 0;
}

/* Reads and sizes BAR idx without changing it; -1 when there is none. */
static int bar_probe(const struct pci_dev *d, unsigned idx, struct pci_bar *b)
{
	uint16_t off = PCI_BAR0 + 4 * idx, cmd;
	uint32_t lo, mlo, hi = 0, mhi = 0xffffffff;
	uint64_t mask;

	memset(b, 0, sizeof(*b));
	if (idx >= PCI_NUM_BARS || d->header_type != 0 || bar_is_upper(d, idx))
		return -1;
	lo = pci_read32(d, off);
	b->io = lo & 1;
	b->is64 = !b->io && ((lo >> 1) & 3) == 2;
	b->prefetch = !b->io && (lo & 8);
	if (b->is64 && idx + 1 >= PCI_NUM_BARS)
		test_fail("pci: %02x:%02x.%x BAR%u is 64-bit in the last slot",
			  d->bus, d->dev, d->fn, idx);

	cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
	pci_write32(d, off, 0xffffffff);
	mlo = pci_read32(d, off);
	pci_write32(d, off, lo);
	if (b->is64) {
		hi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, 0xffffffff);
		mhi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, hi);
	}
	pci_write16(d, PCI_COMMAND, cmd);

	if (b->io) {
		if (!(mlo & 0xfffc))
			return -1;
		mask = 0xffffffffffff0000ULL | (mlo & 0xfffc);
		b->base = lo & 0xfffc;
	} else {
		if (!(mlo & ~0xfu) && !(b->is64 && mhi))
			return -1;
		mask = (uint64_t)mhi << 32 | (mlo & ~0xfu);
		b->base = (uint64_t)hi << 32 | (lo & ~0xfu);
	}
	b->size = ~mask + 1;
	return 0;
}

/* Calls fn for every assigned memory BAR on bus 0 until it returns non-zero. */
static int for_each_mem_bar(int (*fn)(const struct pci_bar *b, void *ctx), void *ctx)
{
	struct pci_bar b;
	unsigned i, idx;
	int r;

	scan_once();
	for (i = 0; i < ndevs && i < PCI_MAX_DEVICES; i++) {
		for (idx = 0; idx < PCI_NUM_BARS; idx++) {
			if (bar_probe(&devs[i], idx, &b) || b.io || !b.base)
				continue;
			r = fn(&b, ctx);
			if (r)
				return r;
		}
	}
	return 0;
}

struct range {
	uint64_t addr, len;
	uint64_t hit_end;	/* end of the first thing overlapping it */
};

static int overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int bar_hits(const struct pci_bar *b, void *ctx)
{
	struct range *r = ctx;

	if (!overlaps(r->addr, r->len, b->base, b->size))
		return 0;
	r->hit_end = b->base + b->size;
	return 1;
}

int pci_overlaps_bar(uint64_t addr, uint64_t len)
{
	struct range r = { addr, len, 0 };

	return for_each_mem_bar(bar_hits, &r);
}

/* The end of the first memmap range or BAR overlapping [a, a + len), or 0. */
static uint64_t conflict_end(uint64_t a, uint64_t len)
{
	const struct boot_mem_range *map;
	struct range r = { a, len, 0 };
	unsigned n, i;

	map = boot_memmap(&n);
	for (i = 0; i < n; i++) {
		if (map[i].size && overlaps(a, len, map[i].addr, map[i].size))
			return map[i].addr + map[i].size;
	}
	if (for_each_mem_bar(bar_hits, &r))
		return r.hit_end;
	return 0;
}

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static uint64_t window_alloc(const struct pci_dev *d, unsigned idx,
			     const struct pci_bar *b)
{
	uint64_t size = b->size < MIN_ASSIGN ? MIN_ASSIGN : b->size;
	uint64_t a, end;

	if (!window_next) {
		window_next = cmdline_u64("pci_window", WINDOW_DEFAULT);
		window_end = window_next < WINDOW_END_32 ? WINDOW_END_32 :
			     window_next + WINDOW_SPAN_64;
	}
	if (!b->is64 && window_next >= SZ_4G)
		test_fail("pci: %02x:%02x.%x BAR%u is 32-bit, pci_window=0x%lx is above 4 GiB",
			  d->bus, d->dev, d->fn, idx, window_next);
	a = align_up(window_next, size);
	while (a < window_end && window_end - a >= size) {
		end = conflict_end(a, size);
		if (!end) {
			window_next = a + size;
			return a;
		}
		a = align_up(end, size);
	}
	test_fail("pci: no room for %02x:%02x.%x BAR%u (0x%lx bytes) below 0x%lx",
		  d->bus, d->dev, d->fn, idx, b->size, window_end);
}

void pci_set_reassign(int on)
{
	reassign = on;
}

/* Whether BAR idx of d is still to be moved in reassign mode; records it. */
static int must_move(const struct pci_dev *d, unsigned idx)
{
	unsigned i;

	if (!reassign)
		return 0;
	for (i = 0; i < nmoved; i++) {
		if (moved[i].bus == d->bus && moved[i].dev == d->dev &&
		    moved[i].fn == d->fn && moved[i].bar == idx)
			return 0;
	}
	if (nmoved == REASSIGN_MAX)
		test_fail("pci: more than %d BARs to reassign", REASSIGN_MAX);
	moved[nmoved].bus = d->bus;
	moved[nmoved].dev = d->dev;
	moved[nmoved].fn = d->fn;
	moved[nmoved].bar = (uint8_t)idx;
	nmoved++;
	return 1;
}

int pci_bar(const struct pci_dev *d, unsigned idx, struct pci_bar *out)
{
	uint16_t off = PCI_BAR0 + 4 * idx, cmd;

	if (bar_probe(d, idx, out))
		return -1;
	if (out->io)
		return 0;
	if (must_move(d, idx) || !out->base) {
		uint64_t a;

		cmd = pci_read16(d, PCI_COMMAND);
		pci_write16(d, PCI_COMMAND, cmd & ~PCI_COMMAND_MEMORY);
		/* Not a conflict with itself while the window is searched. */
		pci_write32(d, off, 0);
		if (out->is64)
			pci_write32(d, off + 4, 0);
		a = window_alloc(d, idx, out);
		pci_write32(d, off, (uint32_t)a);
		if (out->is64)
			pci_write32(d, off + 4, (uint32_t)(a >> 32));
		pci_write16(d, PCI_COMMAND, cmd);
		if (bar_probe(d, idx, out) || out->base != a)
			test_fail("pci: %02x:%02x.%x BAR%u reads 0x%lx after assigning 0x%lx",
				  d->bus, d->dev, d->fn, idx, out->base, a);
	}
	cmd = pci_read16(d, PCI_COMMAND);
	if ((cmd & (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER)) !=
	    (PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER))
		pci_write16(d, PCI_COMMAND,
			    cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	if (out->base + out->size > SZ_4G)
		boot_map_mmio(out->base, out->size);
	return 0;
}
