/* Token buckets (see ratelimit.h). A bucket's budget is kept in
 * token-nanoseconds (tokens × refill time), so refilling is exact integer
 * arithmetic: every elapsed nanosecond adds `size` units and a token costs
 * refill_ns units. 128-bit arithmetic keeps this overflow-free for every
 * configuration ratelimit_check_bucket() accepts. */
#include "util/ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

#define MAX_SIZE (1ull << 50)        /* tokens: 1 PiB or 10^15 operations */
#define MAX_REFILL_MS (1000ull * 3600) /* one hour */
#define NS_PER_MS 1000000ull

typedef __int128 i128;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static i128 unit(const struct token_bucket *b) { return (i128)b->cfg.refill_ms * NS_PER_MS; }
static i128 cap(const struct token_bucket *b) { return (i128)b->cfg.size * unit(b); }

/* The budget in token-ns is stored as tokens plus a remainder; budget and
 * last_ns together are the state, refilled lazily. */
static i128 level(const struct token_bucket *b, uint64_t now)
{
	i128 units = (i128)b->budget * unit(b);
	if (now > b->last_ns)
		units += (i128)(now - b->last_ns) * b->cfg.size;
	return units > cap(b) ? cap(b) : units;
}

/* Writes `units` back as budget + last_ns, keeping the fraction of a token
 * by moving last_ns back by the time that fraction took to accrue. */
static void store(struct token_bucket *b, i128 units, uint64_t now)
{
	i128 u = unit(b);
	i128 tokens = units >= 0 ? units / u : -((-units + u - 1) / u);
	i128 frac = units - tokens * u; /* 0 <= frac < u */
	b->budget = (int64_t)tokens;
	b->last_ns = now - (uint64_t)(frac / b->cfg.size);
}

static void bucket_reset(struct token_bucket *b, const struct bucket_cfg *cfg, uint64_t now)
{
	b->cfg = *cfg;
	b->budget = (int64_t)cfg->size;
	b->burst = cfg->size ? cfg->one_time_burst : 0;
	b->last_ns = now;
}

/* Tokens still needed from the refilling budget after the burst. */
static uint64_t after_burst(const struct token_bucket *b, uint64_t n)
{
	return n > b->burst ? n - b->burst : 0;
}

/* Units short of being able to take n tokens (0: can take them now). */
static i128 shortfall(const struct token_bucket *b, uint64_t n, uint64_t now)
{
	if (!b->cfg.size)
		return 0;
	uint64_t rest = after_burst(b, n);
	if (!rest)
		return 0;
	/* An oversized request waits for a full bucket, not forever. */
	i128 want = (i128)MIN(rest, b->cfg.size) * unit(b);
	i128 have = level(b, now);
	return have >= want ? 0 : want - have;
}

static void take(struct token_bucket *b, uint64_t n, uint64_t now)
{
	if (!b->cfg.size)
		return;
	uint64_t rest = after_burst(b, n);
	b->burst = n >= b->burst ? 0 : b->burst - n;
	store(b, level(b, now) - (i128)rest * unit(b), now);
}

static uint64_t wait_of(const struct token_bucket *b, uint64_t n, uint64_t now)
{
	i128 s = shortfall(b, n, now);
	if (!s)
		return 0;
	i128 ns = (s + b->cfg.size - 1) / b->cfg.size;
	return ns > (i128)UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

uint64_t ratelimit_wait_ns(const struct ratelimit *rl, uint64_t bytes, uint64_t now)
{
	return MAX(wait_of(&rl->bw, bytes, now), wait_of(&rl->ops, 1, now));
}

static void arm(struct ratelimit *rl, uint64_t ns)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(ns / 1000000000ull),
						.tv_nsec = (long)(ns % 1000000000ull) } };
	if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
		its.it_value.tv_nsec = 1;
	if (timerfd_settime(rl->timer_fd, 0, &its, NULL) == 0)
		rl->armed = true;
}

bool ratelimit_take_at(struct ratelimit *rl, uint64_t bytes, uint64_t now)
{
	if (!ratelimit_active(rl))
		return true;
	if (rl->armed)
		return false; /* keep order: whoever waits first goes first */
	uint64_t wait = ratelimit_wait_ns(rl, bytes, now);
	if (wait) {
		rl->throttled++;
		arm(rl, wait);
		return false;
	}
	take(&rl->bw, bytes, now);
	take(&rl->ops, 1, now);
	return true;
}

bool ratelimit_take(struct ratelimit *rl, uint64_t bytes)
{
	return ratelimit_active(rl) ? ratelimit_take_at(rl, bytes, now_ns()) : true;
}

static void put_back(struct token_bucket *b, uint64_t n, uint64_t now)
{
	if (!b->cfg.size)
		return;
	i128 units = level(b, now) + (i128)n * unit(b);
	store(b, units > cap(b) ? cap(b) : units, now);
}

void ratelimit_put_back(struct ratelimit *rl, uint64_t bytes)
{
	if (!ratelimit_active(rl))
		return;
	uint64_t now = now_ns();
	put_back(&rl->bw, bytes, now);
	put_back(&rl->ops, 1, now);
}

void ratelimit_expired(struct ratelimit *rl)
{
	uint64_t ticks;
	if (rl->timer_fd >= 0 && read(rl->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	rl->armed = false;
}

int ratelimit_check_bucket(const struct bucket_cfg *b)
{
	if (!b->size)
		return b->one_time_burst ? -EINVAL : 0;
	if (b->size > MAX_SIZE || b->one_time_burst > MAX_SIZE)
		return -EINVAL;
	if (!b->refill_ms || b->refill_ms > MAX_REFILL_MS)
		return -EINVAL;
	return 0;
}

static bool limits(const struct ratelimit_cfg *cfg)
{
	return cfg->bw.size || cfg->ops.size;
}

int ratelimit_update(struct ratelimit *rl, const struct ratelimit_cfg *cfg)
{
	if (ratelimit_check_bucket(&cfg->bw) || ratelimit_check_bucket(&cfg->ops))
		return -EINVAL;
	if (rl->timer_fd < 0) {
		rl->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (rl->timer_fd < 0)
			return -errno;
	}
	rl->active = limits(cfg);
	uint64_t now = now_ns();
	bucket_reset(&rl->bw, &cfg->bw, now);
	bucket_reset(&rl->ops, &cfg->ops, now);
	if (rl->armed) {
		/* Whoever waits is woken at once and retries under the new limits;
		 * the fd stays, so an owner's event-loop registration stays valid. */
		arm(rl, 1);
	}
	return 0;
}

int ratelimit_init(struct ratelimit *rl, const struct ratelimit_cfg *cfg)
{
	*rl = (struct ratelimit){ .timer_fd = -1 };
	static const struct ratelimit_cfg none;
	int err = ratelimit_update(rl, cfg ? cfg : &none);
	if (err)
		ratelimit_fini(rl);
	return err;
}

void ratelimit_fini(struct ratelimit *rl)
{
	if (rl->timer_fd >= 0)
		close(rl->timer_fd);
	rl->timer_fd = -1;
	rl->armed = rl->active = false;
}

static int parse_size(const char *s, char **end, uint64_t *out)
{
	errno = 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	unsigned long long v = strtoull(s, end, 10);
	if (errno)
		return -EINVAL;
	unsigned shift = 0;
	switch (**end) {
	case 'K': case 'k': shift = 10; break;
	case 'M': case 'm': shift = 20; break;
	case 'G': case 'g': shift = 30; break;
	}
	if (shift) {
		(*end)++;
		if (v > (MAX_SIZE >> shift))
			return -EINVAL;
		v <<= shift;
	}
	*out = v;
	return 0;
}

int ratelimit_parse_bucket(const char *s, struct bucket_cfg *out)
{
	struct bucket_cfg b = { 0 };
	char *end;
	if (parse_size(s, &end, &b.size) || *end != ':')
		return -EINVAL;
	if (parse_size(end + 1, &end, &b.refill_ms))
		return -EINVAL;
	if (*end == ':' && parse_size(end + 1, &end, &b.one_time_burst))
		return -EINVAL;
	if (*end || !b.size || ratelimit_check_bucket(&b))
		return -EINVAL;
	*out = b;
	return 0;
}
