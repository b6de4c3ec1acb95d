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

struct api_metrics {
	int fd;                    /* -1: not configured */
	json_t *last;              /* "group.name" -> value at the previous flush */
	json_t *line;              /* the object being built */
	struct evloop *loop;
	struct evloop_source timer;/* timerfd: the periodic flush */
	struct vm **vm;            /* the running VM (may be NULL) */
	uint64_t api_requests, api_fails;
};

void api_metrics_init(struct api_metrics *m, struct evloop *loop, struct vm **vm);
/* Opens path for appending and starts the periodic flush. 0 or -errno
 * (-EEXIST when already configured). */
int api_metrics_open(struct api_metrics *m, const char *path);
/* Writes one line. 0 or -errno (-ENOENT when not configured). */
int api_metrics_flush(struct api_metrics *m);
void api_metrics_fini(struct api_metrics *m);

#endif
