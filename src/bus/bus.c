/* Port-I/O and MMIO dispatch; see bus.h. */
#include "bus/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

void bus_init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

void bus_fini(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nr = bus->cap = 0;
}

int bus_add(struct bus *bus, uint64_t base, uint64_t len, bus_io_fn fn, void *opaque,
	    const char *name)
{
	if (bus->sealed || len == 0 || !fn || base + (len - 1) < base)
		return -EINVAL;
	uint64_t last = base + (len - 1);
	unsigned pos = 0;
	while (pos < bus->nr && bus->ranges[pos].base <= last) {
		const struct bus_range *r = &bus->ranges[pos];
		if (base <= r->base + (r->len - 1)) {
			log_error("%s bus: %s at %#llx+%#llx overlaps %s", bus->name, name,
				  (unsigned long long)base, (unsigned long long)len, r->name);
			return -EEXIST;
		}
		pos++;
	}
	if (bus->nr == bus->cap) {
		unsigned cap = bus->cap ? bus->cap * 2 : 16;
		struct bus_range *n = realloc(bus->ranges, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		bus->ranges = n;
		bus->cap = cap;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->nr - pos) * sizeof(*bus->ranges));
	bus->ranges[pos] = (struct bus_range){ base, len, fn, opaque, name };
	bus->nr++;
	return 0;
}

void bus_seal(struct bus *bus) { bus->sealed = true; }

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, uint32_t len)
{
	unsigned lo = 0, hi = bus->nr;
	/* Last range whose base <= addr. */
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		if (bus->ranges[mid].base <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	const struct bus_range *r = &bus->ranges[lo - 1];
	uint64_t off = addr - r->base;
	if (off >= r->len || (len ? len : 1) > r->len - off)
		return NULL;
	return r;
}

int bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr, len);
	if (!r) {
		atomic_fetch_add_explicit(&bus->unassigned, 1, memory_order_relaxed);
		if (!is_write)
			memset(data, 0xff, len);
		log_ratelimited(LOG_DEBUG, "%s bus: unassigned %s of %u bytes at %#llx", bus->name,
				is_write ? "write" : "read", len, (unsigned long long)addr);
		return -ENOENT;
	}
	r->fn(r->opaque, addr - r->base, data, len, is_write);
	return 0;
}
