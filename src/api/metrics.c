/* Metrics lines; see metrics.h. */
#include "api/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/metrics.h"
#include "util/util.h"
#include "vmm.h"

#define METRICS_PERIOD_S 60

void api_metrics_init(struct api_metrics *m, struct evloop *loop, struct vm **vm)
{
	memset(m, 0, sizeof(*m));
	m->fd = m->timer.fd = -1;
	m->loop = loop;
	m->vm = vm;
}

/* The sink: value minus what the previous line reported. */
static void put(void *opaque, const char *group, const char *name, uint64_t value)
{
	struct api_metrics *m = opaque;
	char key[128];
	snprintf(key, sizeof(key), "%s.%s", group, name);
	json_t *prev = json_object_get(m->last, key);
	uint64_t before = prev ? (uint64_t)json_integer_value(prev) : 0;
	json_object_set_new(m->last, key, json_integer((json_int_t)value));
	json_t *g = json_object_get(m->line, group);
	if (!g) {
		g = json_object();
		json_object_set_new(m->line, group, g);
	}
	json_object_set_new(g, name, json_integer((json_int_t)(value - before)));
}

int api_metrics_flush(struct api_metrics *m)
{
	if (m->fd < 0)
		return -ENOENT;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	m->line = json_object();
	json_object_set_new(m->line, "utc_timestamp_ms",
			    json_integer((json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
	struct metrics_sink sink = { .put = put, .opaque = m };
	/* Values, not deltas, as Firecracker's store metrics. */
	json_t *api = json_object();
	json_object_set_new(api, "process_startup_time_us", json_integer((json_int_t)m->startup_us));
	json_object_set_new(api, "process_startup_time_cpu_us",
			    json_integer((json_int_t)m->startup_cpu_us));
	json_object_set_new(m->line, "api_server", api);
	api_routes_metrics(m, &sink);
	if (*m->vm)
		vmm_metrics(*m->vm, &sink);
	char *text = json_dumps(m->line, JSON_COMPACT);
	json_decref(m->line);
	m->line = NULL;
	if (!text)
		return -ENOMEM;
	size_t len = strlen(text);
	text[len] = '\n'; /* json_dumps leaves room: the terminator becomes the newline */
	int err = write_full(m->fd, text, len + 1);
	free(text);
	if (err)
		log_ratelimited(LOG_WARN, "metrics: write failed: %s", strerror(-err));
	return err;
}

static void on_timer(struct evloop_source *src, uint32_t events)
{
	struct api_metrics *m = (struct api_metrics *)((char *)src - offsetof(struct api_metrics, timer));
	uint64_t n;
	if (read(src->fd, &n, sizeof(n)) == sizeof(n))
		api_metrics_flush(m);
}

int api_metrics_open(struct api_metrics *m, const char *path)
{
	if (m->fd >= 0)
		return -EEXIST;
	/* Non-blocking: a FIFO nobody reads must not stall the event loop. */
	int fd = open_append(path);
	if (fd < 0)
		return fd;
	m->timer.fn = on_timer;
	m->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec period = { .it_interval.tv_sec = METRICS_PERIOD_S,
				     .it_value.tv_sec = METRICS_PERIOD_S };
	if (m->timer.fd < 0 || timerfd_settime(m->timer.fd, 0, &period, NULL) < 0 ||
	    evloop_add(m->loop, &m->timer, EPOLLIN) < 0) {
		int err = -errno;
		if (m->timer.fd >= 0)
			close(m->timer.fd);
		m->timer.fd = -1;
		close(fd);
		return err;
	}
	m->fd = fd;
	m->last = json_object();
	return 0;
}

void api_metrics_started(struct api_metrics *m, uint64_t start_ns)
{
	struct timespec cpu;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	m->startup_us = (monotonic_ns() - start_ns) / 1000;
	m->startup_cpu_us = (uint64_t)cpu.tv_sec * 1000000 + (uint64_t)cpu.tv_nsec / 1000;
}

void api_metrics_fini(struct api_metrics *m)
{
	if (m->timer.fd >= 0) {
		evloop_del(m->loop, &m->timer);
		close(m->timer.fd);
	}
	if (m->fd >= 0)
		close(m->fd);
	json_decref(m->last);
	m->fd = m->timer.fd = -1;
	m->last = NULL;
}
