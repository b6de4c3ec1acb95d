/* Logging to stderr or a file; see log.h. A message is formatted into one
 * buffer and written with a single write() so that lines from several
 * threads never interleave. */
#include "util/log.h"
#include "util/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_BURST 10

static enum log_level log_level = LOG_WARN;
static pthread_mutex_t last_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_error[512] = "unknown error";
static int log_fd = 2;

static const char *const level_names[] = {
	[LOG_ERROR] = "error",
	[LOG_WARN] = "warning",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_set_level(enum log_level level) { log_level = level; }
enum log_level log_get_level(void) { return log_level; }
void log_set_fd(int fd)
{
	int old = log_fd;
	log_fd = fd;
	if (old > 2)
		close(old); /* a log file opened earlier (API logger, --log-path) */
}

int log_parse_level(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(name, "warn") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "mote: %s: ", level_names[level]);
	int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	if (level == LOG_ERROR) {
		pthread_mutex_lock(&last_lock);
		snprintf(last_error, sizeof(last_error), "%s", buf + n);
		pthread_mutex_unlock(&last_lock);
	}
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(buf) - 2)
		len = sizeof(buf) - 2;
	buf[len++] = '\n';
	ssize_t r = write(log_fd, buf, len);
	(void)r; /* nowhere left to report a failed log write */
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_ratelimited_msg(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
{
	if (level > log_level)
		return;
	uint64_t now = monotonic_ns(), last = atomic_load(&rl->last_ns);
	if (last == 0 || now - last >= 1000000000u) {
		/* Refill: one token per elapsed second, up to the burst. Races
		 * between threads only change how many lines get through. */
		uint64_t secs = last == 0 ? LOG_BURST : (now - last) / 1000000000u;
		uint32_t t = atomic_load(&rl->tokens) + (uint32_t)(secs > LOG_BURST ? LOG_BURST : secs);
		atomic_store(&rl->tokens, t > LOG_BURST ? LOG_BURST : t);
		atomic_store(&rl->last_ns, now);
	}
	uint32_t t = atomic_load(&rl->tokens);
	while (t > 0 && !atomic_compare_exchange_weak(&rl->tokens, &t, t - 1))
		;
	if (t == 0) {
		atomic_fetch_add(&rl->suppressed, 1);
		return;
	}
	uint32_t dropped = atomic_exchange(&rl->suppressed, 0);
	if (dropped)
		log_msg(level, "(%u similar messages suppressed)", dropped);
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

const char *log_last_error(void)
{
	static __thread char copy[sizeof(last_error)];
	pthread_mutex_lock(&last_lock);
	memcpy(copy, last_error, sizeof(copy));
	pthread_mutex_unlock(&last_lock);
	return copy;
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_ERROR, fmt, ap);
	va_end(ap);
	abort();
}
