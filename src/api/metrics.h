/* Firecracker-style metrics: one JSON object per line, written to a file or
 * FIFO on FlushMetrics, every 60 s, and when mote exits. Values are what
 * happened since the previous line (Firecracker's counters reset at each
 * flush), grouped as {"block_<id>": {"read_count": ...}, "vcpu": {...}}. */
#ifndef MOTE_API_METRICS_H
#define MOTE_API_METRICS_H

#include <jansson.h>
#include <stdint.h>

#include "util/evloop.h"

struct vm;
struct metrics_sink;

#define API_METRICS_ROUTES 64

struct api_metrics {
	int fd;                    /* -1: not configured */
	json_t *last;              /* "group.name" -> value at the previous flush */
	json_t *line;              /* the object being built */
	struct evloop *loop;
	struct evloop_source timer;/* timerfd: the periodic flush */
	struct vm **vm;            /* the running VM (may be NULL) */
	/* Requests that passed validation, and those of them that failed, by
	 * route (its index in the route table; routes.c names them). */
	uint64_t route_count[API_METRICS_ROUTES], route_fails[API_METRICS_ROUTES];
	/* Firecracker's api_server.process_startup_time_us / _cpu_us: main()
	 * to the API socket accepting, in wall-clock and process CPU time. */
	uint64_t startup_us, startup_cpu_us;
};

void api_metrics_init(struct api_metrics *m, struct evloop *loop, struct vm **vm);
/* Opens path for appending and starts the periodic flush. 0 or -errno
 * (-EEXIST when already configured). */
int api_metrics_open(struct api_metrics *m, const char *path);
/* Writes one line. 0 or -errno (-ENOENT when not configured). */
int api_metrics_flush(struct api_metrics *m);
void api_metrics_fini(struct api_metrics *m);
/* Records the start-up times (call when the API socket accepts; start_ns
 * is CLOCK_MONOTONIC at main()). */
void api_metrics_started(struct api_metrics *m, uint64_t start_ns);
/* The request counters into sink, with Firecracker's names (routes.c). */
void api_routes_metrics(const struct api_metrics *m, const struct metrics_sink *sink);

#endif
