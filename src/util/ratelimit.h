/* Rate limiters with Firecracker's semantics: two token buckets, one for
 * bytes (bandwidth) and one for operations, each with a size, a refill time
 * (the time to refill `size` tokens from empty) and an optional one-time
 * burst that is spent first and never refilled.
 *
 * A device asks before doing work: ratelimit_take() takes both kinds of
 * token or neither. When it refuses, it arms the limiter's timerfd for the
 * moment enough tokens will be there, and the device retries when that fd
 * becomes readable (on the event loop) — no polling, no sleeping.
 *
 * A request bigger than a bucket can ever hold is let through when the
 * bucket is full and leaves it in debt, so large requests are neither
 * starved nor allowed to beat the long-run rate. */
#ifndef MOTE_RATELIMIT_H
#define MOTE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct bucket_cfg {
	uint64_t size;           /* tokens; 0: this bucket does not limit */
	uint64_t one_time_burst; /* extra tokens, spent once */
	uint64_t refill_ms;      /* ms to refill `size` tokens; > 0 when size > 0 */
};

struct ratelimit_cfg {
	struct bucket_cfg bw;  /* bytes */
	struct bucket_cfg ops; /* operations */
};

struct token_bucket {
	struct bucket_cfg cfg;
	int64_t budget;        /* may go negative after an oversized request */
	uint64_t burst;        /* one-time burst left */
	uint64_t last_ns;      /* when budget was last brought up to date */
};

struct ratelimit {
	struct token_bucket bw, ops;
	int timer_fd;          /* from ratelimit_init on, limits or not */
	bool active;           /* a bucket limits */
	bool armed;            /* the timer is set and not yet acknowledged */
	uint64_t throttled;    /* refusals, for metrics */
};

/* 0 or -errno (timerfd_create). The timer exists even while nothing limits,
 * so limits set later (the API's PATCH) need no new descriptor. */
int ratelimit_init(struct ratelimit *rl, const struct ratelimit_cfg *cfg);
void ratelimit_fini(struct ratelimit *rl);
/* Replaces the configuration (API PATCH); buckets start full. 0 or -errno. */
int ratelimit_update(struct ratelimit *rl, const struct ratelimit_cfg *cfg);
static inline bool ratelimit_active(const struct ratelimit *rl) { return rl->active; }
/* Whether the limiter is waiting for its timer: a device does no work on
 * the limited path until ratelimit_expired() says so. */
static inline bool ratelimit_blocked(const struct ratelimit *rl) { return rl->armed; }

/* Takes `bytes` bandwidth tokens and one operation token, or nothing and
 * arms the timer. Always true when the limiter is inactive. */
bool ratelimit_take(struct ratelimit *rl, uint64_t bytes);
/* The same at an explicit CLOCK_MONOTONIC time (tests). */
bool ratelimit_take_at(struct ratelimit *rl, uint64_t bytes, uint64_t now_ns);
/* Gives back tokens taken for work that was then not done. */
void ratelimit_put_back(struct ratelimit *rl, uint64_t bytes);
/* The timer fired (its fd was readable): acknowledges it. */
void ratelimit_expired(struct ratelimit *rl);
/* Nanoseconds until `bytes` + one op could be taken at now_ns (0: now). */
uint64_t ratelimit_wait_ns(const struct ratelimit *rl, uint64_t bytes, uint64_t now_ns);

/* Parses "SIZE:REFILL_MS[:BURST]" (SIZE and BURST take K/M/G suffixes,
 * powers of 1024). 0 or -EINVAL. */
int ratelimit_parse_bucket(const char *s, struct bucket_cfg *out);
/* Checks a bucket from any source (flags, API): -EINVAL when size is set
 * without a refill time or values are out of range. */
int ratelimit_check_bucket(const struct bucket_cfg *b);

#endif
