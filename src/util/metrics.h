/* Metrics: each component reports its counters into a sink, by group and
 * name (Firecracker's names where they exist: "block_<id>.read_count",
 * "vcpu.exit_io_out"...). The sink decides the format (the API writes JSON
 * lines); components keep plain cumulative counters and never format. */
#ifndef MOTE_METRICS_H
#define MOTE_METRICS_H

#include <stdint.h>

struct metrics_sink {
	void (*put)(void *opaque, const char *group, const char *name, uint64_t value);
	void *opaque;
};

static inline void metric(const struct metrics_sink *s, const char *group, const char *name,
			  uint64_t value)
{
	s->put(s->opaque, group, name, value);
}

#endif
