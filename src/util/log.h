/* Logging: one line per message to stderr (or a log file), subsystem first.
 * Messages a guest can trigger go through log_ratelimited() so a hostile
 * guest cannot flood the host's logs. */
#ifndef MOTE_LOG_H
#define MOTE_LOG_H

#include <stdatomic.h>
#include <stdint.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Messages above this level are dropped; default LOG_WARN. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warning"/"warn", "info", "debug" (any case); -EINVAL otherwise. */
int log_parse_level(const char *name, enum log_level *out);
/* Sends later messages to fd (default 2). A previous log fd other than
 * 0-2 is closed: the logger owns the files it is given. */
void log_set_fd(int fd);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* A token bucket per call site: at most LOG_BURST messages, refilled at one
 * per second; what is suppressed is counted and reported with the next one. */
struct log_ratelimit {
	_Atomic uint64_t last_ns;
	_Atomic uint32_t tokens;
	_Atomic uint32_t suppressed;
};

void log_ratelimited_msg(struct log_ratelimit *rl, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_ratelimited(level, ...)                                    \
	do {                                                           \
		static struct log_ratelimit rl_;                       \
		log_ratelimited_msg(&rl_, (level), __VA_ARGS__);       \
	} while (0)

/* The last error message logged (without the "mote: error: " prefix), for
 * replies that must say why something failed. Never NULL. */
const char *log_last_error(void);

/* For broken internal invariants only (never for guest or user input). */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
