/* Live migration; see migrate.h. The source side runs on the migration
 * thread (snap/migjob.c), the destination's before its VM starts; socket
 * timeouts keep a silent peer from holding either for long. */
#include "snap/migrate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend/mirror.h"
#include "snap/internal.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/blk.h"

#define MSG_MAGIC 0x47494d4du /* "MMIG" */
#define MSG_HDR 16
#define PAGES_MAX (2u << 20)  /* bytes of pages per message */
#define IO_TIMEOUT_S 10
#define ACK_TIMEOUT_S 60

/* Message types. New ones go at the end; recv_hdr() lists which the
 * destination accepts from the source. */
enum { MSG_CONFIG = 1, MSG_PAGES, MSG_STATE, MSG_ACK, MSG_NAK, MSG_CANCEL, MSG_DISKS, MSG_DISK };
#define DISK_HDR 16    /* u32 disk index, u32 0, u64 offset */
#define DISK_ENTRY 12  /* in DISKS: u32 disk index, u64 size */

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	unsigned port;
	char extra;
	if (strncmp(s, "tcp:", 4) || sscanf(s + 4, "%63[^:]:%u%c", host, &port, &extra) != 2 ||
	    port == 0 || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -EINVAL;
}

static void set_timeouts(int fd, int send_s, int recv_s)
{
	struct timeval snd = { .tv_sec = send_s }, rcv = { .tv_sec = recv_s };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
}

int migrate_check_dest(const char *dest)
{
	struct sockaddr_in sa;
	if (strlen(dest) >= sizeof(((struct migrate_status *)0)->destination) ||
	    parse_addr(dest, &sa)) {
		log_error("migrate: destination %s: expected tcp:IPV4:PORT", dest);
		return -EINVAL;
	}
	return 0;
}

int migrate_connect(const char *dest, int *out)
{
	struct sockaddr_in sa;
	if (parse_addr(dest, &sa)) {
		log_error("migrate: destination %s: expected tcp:IPV4:PORT", dest);
		return -EINVAL;
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* The source receives only the verdict, which may take the destination
	 * a while: both timeouts are set here, once (setsockopt is the worker's
	 * to call, not the event loop's). */
	if (fd < 0 || (set_timeouts(fd, IO_TIMEOUT_S, ACK_TIMEOUT_S),
		       connect(fd, (void *)&sa, sizeof(sa))) < 0) {
		int err = -errno;
		log_error("migrate: cannot connect to %s: %s", dest, strerror(errno));
		if (fd >= 0)
			close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

int migrate_accept(const char *addr, int *out)
{
	struct sockaddr_in sa;
	if (parse_addr(addr, &sa)) {
		log_error("--migrate-listen %s: expected tcp:IPV4:PORT", addr);
		return -EINVAL;
	}
	int one = 1, err = 0;
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(l, (void *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0) {
		err = -errno;
		log_error("--migrate-listen %s: %s", addr, strerror(errno));
	} else {
		log_info("migrate: waiting for the source on %s", addr);
		int fd;
		do
			fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		while (fd < 0 && errno == EINTR);
		if (fd < 0) {
			err = -errno;
			log_error("migrate: accept: %s", strerror(errno));
		} else {
			set_timeouts(fd, IO_TIMEOUT_S, IO_TIMEOUT_S);
			*out = fd;
		}
	}
	if (l >= 0)
		close(l);
	return err;
}

/* ------------------------------------------------------------ messages */

static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The destination's read of a message's body: a short one is a source
 * that went away (or a cut connection), said once. */
static int recv_part(int fd, void *buf, size_t len)
{
	int err = recv_all(fd, buf, len);
	if (err)
		log_error("migrate: the stream was cut: %s", strerror(-err));
	return err;
}

/* One message: header, then parts a and b as the payload, then the CRC. */
static int send_msg(int fd, uint32_t type, const void *a, size_t alen, const void *b,
		    size_t blen)
{
	uint8_t hdr[MSG_HDR], tail[4];
	put_le32(hdr, MSG_MAGIC);
	put_le32(hdr + 4, type);
	put_le64(hdr + 8, alen + blen);
	uint32_t crc = snap_crc32c(0, hdr, sizeof(hdr));
	crc = snap_crc32c(crc, a, alen);
	crc = snap_crc32c(crc, b, blen);
	put_le32(tail, crc);
	int err = send_all(fd, hdr, sizeof(hdr));
	if (!err && alen)
		err = send_all(fd, a, alen);
	if (!err && blen)
		err = send_all(fd, b, blen);
	return err ? err : send_all(fd, tail, sizeof(tail));
}

/* ------------------------------------------------------------ source */

/* A disk being copied (copy_disks). */
struct disk_out {
	struct virtio_dev *dev;
	unsigned index;
	int fd;              /* the image, read with pread */
	struct blkmap map;   /* blocks not yet sent since they last changed */
	bool tracking;
};

struct sender {
	int fd;
	const struct migrate_hooks *h;
	struct migrate_status *st;
	uint64_t start_ns;   /* for the bandwidth limit and the rates */
	uint64_t run_max;    /* bytes of pages per message */
	uint8_t *bounce;     /* PAGES_MAX bytes */
	struct disk_out disk[CONFIG_MAX_DISKS];
	unsigned nr_disks;
};

static void report(struct sender *s)
{
	s->st->total_ms = (double)(monotonic_ns() - s->start_ns) / 1e6;
	if (s->h->report)
		s->h->report(s->h->opaque, s->st);
}

/* Sleeps until the average rate is back under the limit, in slices, so
 * that a cancel is seen within 100 ms. */
static int throttle(struct sender *s)
{
	uint64_t mbps = s->st->opts.bandwidth_mbps;
	if (!mbps)
		return 0;
	uint64_t due = s->start_ns + s->st->bytes_sent * 8000ull / mbps;
	for (;;) {
		if (s->h->cancelled && s->h->cancelled(s->h->opaque))
			return -ECANCELED;
		uint64_t now = monotonic_ns();
		if (due <= now)
			return 0;
		uint64_t ns = due - now < 100000000ull ? due - now : 100000000ull;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)ns };
		nanosleep(&ts, NULL);
	}
}

/* A message of len bytes of pages or blocks is out: counted, reported, and
 * paced (the limit holds for the pre-copy; the downtime is not stretched by
 * it). */
static int sent(struct sender *s, uint64_t len)
{
	s->st->bytes_sent += len;
	report(s);
	return s->st->phase == MIGRATE_PRECOPY ? throttle(s) : 0;
}

static int send_run(struct sender *s, uint64_t off, const uint8_t *p, uint64_t len)
{
	uint8_t o[8];
	put_le64(o, off);
	/* The guest (or a device) may be writing these pages: checksum and send
	 * one copy. A write after the copy has set its dirty bit again. */
	memcpy(s->bounce, p, len);
	int err = send_msg(s->fd, MSG_PAGES, o, 8, s->bounce, len);
	return err ? err : sent(s, len);
}

/* ------------------------------------------------------------ source: disks */

static void disks_end(struct sender *s)
{
	for (unsigned i = 0; i < s->nr_disks; i++) {
		struct disk_out *d = &s->disk[i];
		if (d->tracking)
			virtio_blk_track(d->dev, NULL, NULL, NULL);
		blkmap_fini(&d->map);
	}
	s->nr_disks = 0;
}

/* With copy_disks, every disk starts marking its changes and every block
 * holding data is due; then DISKS (empty without copy_disks). */
static int disks_begin(struct sender *s, const struct snap_vm *vm)
{
	unsigned n = s->st->opts.copy_disks ? vm->cfg->nr_disks : 0;
	uint8_t msg[4 + CONFIG_MAX_DISKS * DISK_ENTRY];
	put_le32(msg, n);
	for (unsigned i = 0; i < n; i++) {
		struct disk_out *d = &s->disk[i];
		struct blk_status st;
		*d = (struct disk_out){ .dev = vm->vpci[i].dev, .index = i, .fd = -1 };
		s->nr_disks = i + 1;
		virtio_blk_status(d->dev, &st);
		int err = blkmap_init(&d->map, st.size);
		uint64_t size = 0;
		if (!err)
			err = virtio_blk_track(d->dev, &d->map, &d->fd, &size);
		if (!err && size != st.size)
			err = -EBUSY; /* the file changed between the two calls */
		if (err) {
			log_error("migrate: cannot copy disk %s: %s", vm->cfg->disks[i].id,
				  strerror(-err));
			disks_end(s);
			return err;
		}
		d->tracking = true;
		blkmap_mark_data(&d->map, d->fd);
		put_le32(msg + 4 + i * DISK_ENTRY, i);
		put_le64(msg + 8 + i * DISK_ENTRY, size);
	}
	return send_msg(s->fd, MSG_DISKS, msg, 4 + n * DISK_ENTRY, NULL, 0);
}

static uint64_t disks_dirty(const struct sender *s)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < s->nr_disks; i++)
		n += blkmap_count(&s->disk[i].map) * MIRROR_BLOCK;
	return n;
}

static int send_disk_run(struct sender *s, const struct disk_out *d, uint64_t off, size_t len)
{
	uint8_t h[DISK_HDR];
	put_le32(h, d->index);
	put_le32(h + 4, 0);
	put_le64(h + 8, off);
	int err = send_msg(s->fd, MSG_DISK, h, sizeof(h), s->bounce, len);
	return err ? err : sent(s, len);
}

/* Sends every block marked since it was last sent, in runs as long as the
 * page runs (PAGES_MAX, shorter under a bandwidth limit; one block at least); each block's bit is cleared before it is read, so a
 * write completing after the read marks it again. 0 or -errno. */
static int send_disks(struct sender *s)
{
	for (unsigned i = 0; i < s->nr_disks; i++) {
		struct disk_out *d = &s->disk[i];
		uint64_t run = 0;
		size_t len = 0;
		for (uint64_t b = 0; b <= d->map.nr_blocks; b++) {
			bool want = b < d->map.nr_blocks &&
				    (!len || len + MIRROR_BLOCK <= s->run_max) &&
				    blkmap_take(&d->map, b);
			if (want) {
				if (!len)
					run = b * MIRROR_BLOCK;
				int64_t n = blkmap_read(&d->map, d->fd, b, s->bounce + len);
				if (n < 0) {
					log_error("migrate: reading disk %u: %s", d->index,
						  strerror((int)-n));
					return (int)n;
				}
				len += (size_t)n;
				continue;
			}
			if (len) {
				int err = send_disk_run(s, d, run, len);
				if (err)
					return err;
				len = 0;
				/* A block skipped only because the run was full. */
				if (b < d->map.nr_blocks)
					b--;
			}
		}
	}
	return 0;
}

static bool zero_page(const uint8_t *p)
{
	for (size_t i = 0; i < GUEST_PAGE; i += 8)
		if (*(const uint64_t *)(const void *)(p + i))
			return false;
	return true;
}

/* Sends the pages of every region selected by the bitmaps (NULL: every
 * non-zero page); returns pages sent or -errno. */
static int64_t send_pages(struct sender *s, const struct guest_mem *mem, uint64_t **bitmaps)
{
	int64_t sent = 0;
	for (unsigned r = 0; r < mem->nr_regions; r++) {
		const struct guest_region *rg = &mem->regions[r];
		uint64_t pages = rg->size / GUEST_PAGE, base = (uint64_t)(rg->hva - mem->base);
		uint64_t run = 0, len = 0;
		for (uint64_t p = 0; p <= pages; p++) {
			bool want = p < pages &&
				    (bitmaps ? (bitmaps[r][p / 64] >> (p % 64)) & 1
					     : !zero_page(rg->hva + p * GUEST_PAGE));
			if (want && len < s->run_max) {
				if (!len)
					run = p * GUEST_PAGE;
				len += GUEST_PAGE;
				sent++;
				continue;
			}
			if (len) {
				int err = send_run(s, base + run, rg->hva + run, len);
				if (err)
					return err;
				len = 0;
			}
			if (want) {
				run = p * GUEST_PAGE;
				len = GUEST_PAGE;
				sent++;
			}
		}
	}
	return sent;
}

static uint64_t count_dirty(const struct guest_mem *mem, uint64_t **bitmaps)
{
	uint64_t n = 0;
	for (unsigned r = 0; r < mem->nr_regions; r++)
		for (uint64_t w = 0; w < (mem->regions[r].size / GUEST_PAGE + 63) / 64; w++)
			n += (uint64_t)__builtin_popcountll(bitmaps[r][w]);
	return n;
}

static void free_bitmaps(uint64_t **b)
{
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++) {
		free(b[i]);
		b[i] = NULL;
	}
}

/* Reads the destination's verdict. */
static int verdict(int fd)
{
	uint8_t hdr[MSG_HDR], msg[512] = "", tail[4];
	int err = recv_all(fd, hdr, sizeof(hdr));
	if (err) {
		log_error("migrate: no answer from the destination: %s", strerror(-err));
		return err;
	}
	uint32_t type = get_le32(hdr + 4);
	uint64_t len = get_le64(hdr + 8);
	if (get_le32(hdr) != MSG_MAGIC || (type != MSG_ACK && type != MSG_NAK) ||
	    len >= sizeof(msg)) {
		log_error("migrate: the destination answered garbage");
		return -EPROTO;
	}
	err = recv_all(fd, msg, (size_t)len);
	if (!err)
		err = recv_all(fd, tail, sizeof(tail));
	if (err) {
		log_error("migrate: the destination's answer was cut: %s", strerror(-err));
		return err;
	}
	if (type == MSG_NAK) {
		log_error("migrate: the destination refused the VM: %s", (char *)msg);
		return -EPROTO;
	}
	return 0;
}

/* One round's decision: 1 to stop and copy, 0 to go on, -ETIMEDOUT to
 * give up (the downtime rule, migrate.h). */
static int decide(struct sender *s, uint64_t left, uint64_t disk, uint64_t *best,
		  unsigned *stalled)
{
	struct migrate_status *st = s->st;
	uint64_t el = monotonic_ns() - s->start_ns;
	/* Rate: what the migration achieved so far (at least 1 MB/s). */
	uint64_t rate = el ? st->bytes_sent * 1000000000ull / el : 0;
	if (rate < 1000000)
		rate = 1000000;
	uint64_t bytes = left * GUEST_PAGE + disk, expect_us = bytes * 1000000 / rate;
	st->send_rate = rate;
	st->pages_left = left;
	st->expected_downtime_ms = (expect_us + 999) / 1000;
	log_info("migrate: round %u: %llu KiB sent in all, %llu KiB dirty (%llu KiB of disk), "
		 "dirty rate %llu KiB/s, %llu MB/s, expected downtime %llu ms", st->round,
		 (unsigned long long)(st->bytes_sent >> 10), (unsigned long long)(bytes >> 10),
		 (unsigned long long)(disk >> 10),
		 (unsigned long long)(st->dirty_rate >> 10), (unsigned long long)(rate / 1000000),
		 (unsigned long long)st->expected_downtime_ms);
	report(s);
	if (expect_us <= st->opts.downtime_ms * 1000)
		return 1;
	if (bytes < *best) {
		*best = bytes;
		*stalled = 0;
	} else {
		++*stalled;
	}
	if (st->round + 1 >= MIGRATE_MAX_ROUNDS || *stalled >= MIGRATE_STALL_ROUNDS) {
		snprintf(st->reason, sizeof(st->reason),
			 "no convergence after %u rounds: %llu KiB still dirty (dirty rate %llu "
			 "KiB/s, send rate %llu KiB/s), expected downtime %llu ms > target %llu ms",
			 st->round + 1, (unsigned long long)(bytes >> 10),
			 (unsigned long long)(st->dirty_rate >> 10),
			 (unsigned long long)(rate >> 10),
			 (unsigned long long)st->expected_downtime_ms,
			 (unsigned long long)st->opts.downtime_ms);
		log_error("migrate: giving up: %s", st->reason);
		return -ETIMEDOUT;
	}
	return 0;
}

/* Pre-copy: round 0 sends every non-zero page, each later round what was
 * dirtied meanwhile. Returns with the last round's bitmaps in dirty (to be
 * sent once the world has stopped), or -errno. */
static int precopy(struct sender *s, const struct snap_vm *vm, uint64_t **dirty)
{
	struct migrate_status *st = s->st;
	/* Round 0: everything, after clearing the logs. */
	int err = snap_take_dirty(vm, dirty);
	free_bitmaps(dirty);
	if (err)
		return err;
	uint64_t round_ns = monotonic_ns(), best = UINT64_MAX;
	unsigned stalled = 0;
	int64_t n = send_pages(s, vm->mem, NULL);
	for (;;) {
		if (n >= 0 && (err = send_disks(s)))
			n = err;
		if (n < 0)
			return (int)n;
		if ((err = snap_take_dirty(vm, dirty)) < 0)
			return err;
		uint64_t left = count_dirty(vm->mem, dirty), now = monotonic_ns();
		st->dirty_rate = now > round_ns ? left * GUEST_PAGE * 1000000000ull / (now - round_ns)
						: 0;
		round_ns = now;
		int d = decide(s, left, disks_dirty(s), &best, &stalled);
		if (d)
			return d < 0 ? d : 0;
		st->round++;
		n = send_pages(s, vm->mem, dirty);
		free_bitmaps(dirty);
	}
}

static void cancel(int fd, const char *why)
{
	send_msg(fd, MSG_CANCEL, why, strlen(why) + 1, NULL, 0);
}

int migrate_send(const struct snap_vm *vm, int fd, struct migrate_status *st,
		 const struct migrate_hooks *h)
{
	struct sender s = { .fd = fd, .h = h, .st = st, .start_ns = monotonic_ns(),
			    .bounce = malloc(PAGES_MAX), .run_max = PAGES_MAX };
	uint64_t *dirty[GUEST_MEM_MAX_REGIONS] = { 0 };
	struct snap_writer w;
	if (!s.bounce)
		return -ENOMEM;
	/* Under a bandwidth limit, messages of about 100 ms each, so that the
	 * limit is smooth and a cancel is seen soon. */
	uint64_t per_100ms = st->opts.bandwidth_mbps * 1000000 / 8 / 10;
	if (st->opts.bandwidth_mbps && per_100ms < PAGES_MAX)
		s.run_max = per_100ms > GUEST_PAGE ? per_100ms / GUEST_PAGE * GUEST_PAGE : GUEST_PAGE;
	st->phase = MIGRATE_PRECOPY;
	int err = snap_build(vm, &w, false);
	if (!err) {
		err = send_msg(fd, MSG_CONFIG, w.buf, w.len, NULL, 0);
		snap_writer_fini(&w);
	}
	if (!err)
		err = disks_begin(&s, vm);
	if (!err)
		err = precopy(&s, vm, dirty);
	if (err) {
		if (err == -ETIMEDOUT)
			cancel(fd, st->reason);
		else if (err == -ECANCELED)
			log_error("migrate: cancelled (mote is stopping)");
		else
			log_error("migrate: sending memory: %s", strerror(-err));
		free_bitmaps(dirty);
		disks_end(&s);
		free(s.bounce);
		return err;
	}
	/* Stop and copy: what the last bitmaps saw, and what changed since;
	 * the drained disks' last writes. */
	st->phase = MIGRATE_STOP_AND_COPY;
	s.run_max = PAGES_MAX;
	report(&s);
	/* Where the downtime goes, for the log: t[0] stop asked, t[1] frozen,
	 * t[2] last pages out, t[3] state out, then the verdict. */
	uint64_t t[4] = { monotonic_ns() };
	err = h->stop_world(h->opaque);
	t[1] = monotonic_ns();
	int64_t n = 0;
	if (!err)
		n = send_pages(&s, vm->mem, dirty);
	free_bitmaps(dirty);
	if (!err && n >= 0)
		err = snap_take_dirty(vm, dirty);
	if (!err && n >= 0)
		n = send_pages(&s, vm->mem, dirty);
	free_bitmaps(dirty);
	if (!err && n < 0)
		err = (int)n;
	if (!err)
		err = send_disks(&s);
	t[2] = monotonic_ns();
	if (!err && !(err = snap_build(vm, &w, true))) {
		err = send_msg(fd, MSG_STATE, w.buf, w.len, NULL, 0);
		snap_writer_fini(&w);
	}
	t[3] = monotonic_ns();
	free(s.bounce);
	if (err) {
		log_error("migrate: stop-and-copy failed: %s", strerror(-err));
		cancel(fd, "the source failed in stop-and-copy");
		disks_end(&s);
		return err;
	}
	err = verdict(fd);
	/* The source stops after an ACK and resumes otherwise: either way its
	 * disks stop being tracked. */
	disks_end(&s);
	uint64_t end = monotonic_ns();
	st->downtime_ms = (double)(end - t[0]) / 1e6;
	st->total_ms = (double)(end - s.start_ns) / 1e6;
	if (!err)
		log_info("migrate: done: %llu KiB in %u rounds, downtime %.1f ms (freeze %.1f, last "
			 "pages %.1f, state %.1f, verdict %.1f), total %.1f ms",
			 (unsigned long long)(st->bytes_sent >> 10), st->round + 1, st->downtime_ms,
			 (double)(t[1] - t[0]) / 1e6, (double)(t[2] - t[1]) / 1e6,
			 (double)(t[3] - t[2]) / 1e6, (double)(end - t[3]) / 1e6, st->total_ms);
	return err;
}

/* ------------------------------------------------------------ destination */

/* A message header; checks magic, type and length bounds. */
static int recv_hdr(int fd, uint32_t *type, uint64_t *len, uint8_t *hdr)
{
	int err = recv_all(fd, hdr, MSG_HDR);
	if (err) {
		log_error("migrate: the source went away: %s", strerror(-err));
		return err;
	}
	*type = get_le32(hdr + 4);
	*len = get_le64(hdr + 8);
	if (get_le32(hdr) == MSG_MAGIC && *type == MSG_CANCEL && *len > 0 && *len <= 512) {
		/* The source gave up: say why, in one line. */
		char why[513];
		if (!recv_all(fd, why, (size_t)*len)) {
			why[*len] = 0;
			for (char *c = why; *c; c++) /* untrusted: one printable line */
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = '?';
			log_error("migrate: the source cancelled the migration: %s", why);
		} else {
			log_error("migrate: the source cancelled the migration");
		}
		return -ECANCELED;
	}
	if (get_le32(hdr) != MSG_MAGIC || *type < MSG_CONFIG || *type > MSG_DISK ||
	    *type == MSG_ACK || *type == MSG_NAK || *type == MSG_CANCEL) {
		log_error("migrate: not a mote migration stream (magic %#x, type %u)",
			  get_le32(hdr), *type);
		return -EPROTO;
	}
	return 0;
}

static int recv_crc(int fd, uint32_t crc)
{
	uint8_t tail[4];
	int err = recv_part(fd, tail, sizeof(tail));
	if (!err && get_le32(tail) != crc) {
		log_error("migrate: checksum mismatch: the stream was corrupted");
		return -EBADMSG;
	}
	return err;
}

/* A CONFIG or STATE stream into a malloc'd buffer. */
static int recv_stream(int fd, uint32_t want, uint8_t **buf, size_t *len)
{
	uint8_t hdr[MSG_HDR];
	uint32_t type;
	uint64_t n;
	int err = recv_hdr(fd, &type, &n, hdr);
	if (err)
		return err;
	if (type != want || n > 64u << 20) {
		log_error("migrate: expected a %s message, got type %u of %llu bytes",
			  want == MSG_CONFIG ? "config" : want == MSG_DISKS ? "disks" : "state", type,
			  (unsigned long long)n);
		return -EPROTO;
	}
	*buf = malloc(n ? n : 1);
	if (!*buf) {
		log_error("migrate: no memory for a %llu-byte message", (unsigned long long)n);
		return -ENOMEM;
	}
	*len = n;
	err = recv_part(fd, *buf, n);
	if (!err)
		err = recv_crc(fd, snap_crc32c(snap_crc32c(0, hdr, MSG_HDR), *buf, n));
	if (err) {
		free(*buf);
		*buf = NULL;
	}
	return err;
}

void migrate_discard_disks(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_disks; i++)
		if (cfg->disks[i].incoming)
			unlink(cfg->disks[i].path);
}

/* The new file for an incoming disk, sized and with its room reserved
 * (the guest must not meet a full file system later). */
static int create_disk(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		int err = -errno;
		log_error("--migrate-disk %s: %s", path, strerror(errno));
		return err;
	}
	int e = posix_fallocate(fd, 0, (off_t)size);
	if (e == EOPNOTSUPP || e == EINVAL)
		e = ftruncate(fd, (off_t)size) < 0 ? errno : 0;
	close(fd);
	if (e) {
		log_error("--migrate-disk %s: cannot make room for %llu bytes: %s", path,
			  (unsigned long long)size, strerror(e));
		unlink(path);
		return -e;
	}
	return 0;
}

/* DISKS against the --migrate-disk mappings; creates the new files. */
static int take_disks(const uint8_t *msg, size_t len, struct vm_config *cfg)
{
	uint32_t n = len >= 4 ? get_le32(msg) : UINT32_MAX;
	if (n > cfg->nr_disks || len != 4 + (size_t)n * DISK_ENTRY) {
		log_error("migrate: bad disk list (%zu bytes)", len);
		return -EPROTO;
	}
	bool mapped[CONFIG_MAX_DISKS] = { false };
	int err = 0;
	for (uint32_t k = 0; k < n && !err; k++) {
		uint32_t i = get_le32(msg + 4 + k * DISK_ENTRY);
		uint64_t size = get_le64(msg + 8 + k * DISK_ENTRY);
		struct vm_disk *d = i < cfg->nr_disks ? &cfg->disks[i] : NULL;
		if (!d || d->incoming || size == 0 || size % 512) {
			log_error("migrate: bad disk list entry %u (disk %u, %llu bytes)", k, i,
				  (unsigned long long)size);
			err = -EPROTO;
			break;
		}
		unsigned m = 0;
		while (m < cfg->nr_migrate_disks && strcmp(cfg->migrate_disks[m].id, d->id))
			m++;
		if (m == cfg->nr_migrate_disks) {
			log_error("migrate: the source copies disk %s: give it a new file with "
				  "--migrate-disk %s=PATH", d->id, d->id);
			err = -EINVAL;
			break;
		}
		if ((err = create_disk(cfg->migrate_disks[m].path, size)))
			break;
		d->path = cfg->migrate_disks[m].path;
		d->incoming = true;
		mapped[m] = true;
	}
	for (unsigned m = 0; m < cfg->nr_migrate_disks && !err; m++) {
		if (!mapped[m]) {
			log_error("--migrate-disk %s: the source %s", cfg->migrate_disks[m].id,
				  n ? "does not copy that disk" : "copies no disks (copy_disks)");
			err = -EINVAL;
		}
	}
	if (err)
		migrate_discard_disks(cfg);
	return err;
}

int migrate_recv_config(int fd, struct snap_file *f, struct vm_config *cfg)
{
	memset(f, 0, sizeof(*f));
	int err = recv_stream(fd, MSG_CONFIG, &f->buf, &f->len);
	if (!err)
		err = snap_file_parse(f, cfg, "migration stream");
	uint8_t *disks = NULL;
	size_t len = 0;
	if (!err)
		err = recv_stream(fd, MSG_DISKS, &disks, &len);
	if (!err)
		err = take_disks(disks, len, cfg);
	free(disks);
	if (err)
		snap_file_close(f); /* cfg's disk paths may point into it: cfg is done too */
	return err;
}

static void nak(int fd, const char *why)
{
	send_msg(fd, MSG_NAK, why, strlen(why) + 1, NULL, 0);
}

/* One DISK message's blocks into the disk's new file. */
static int recv_disk(int fd, const uint8_t *hdr, uint64_t len, const int *disk_fd,
		     const struct vm_config *cfg, uint8_t *buf)
{
	uint8_t h[DISK_HDR];
	int err;
	if (len < DISK_HDR + 512 || len > DISK_HDR + PAGES_MAX || (len - DISK_HDR) % 512 ||
	    (err = recv_all(fd, h, sizeof(h)))) {
		log_error("migrate: bad disk message (%llu bytes)", (unsigned long long)len);
		return -EPROTO;
	}
	uint32_t i = get_le32(h);
	uint64_t off = get_le64(h + 8), n = len - DISK_HDR;
	if (i >= cfg->nr_disks || disk_fd[i] < 0 || get_le32(h + 4) || off % 512) {
		log_error("migrate: blocks for disk %u, which is not being copied here", i);
		return -EPROTO;
	}
	struct stat st;
	if (fstat(disk_fd[i], &st) < 0 || off > (uint64_t)st.st_size ||
	    n > (uint64_t)st.st_size - off) {
		log_error("migrate: blocks at %#llx+%#llx lie outside disk %s",
			  (unsigned long long)off, (unsigned long long)n, cfg->disks[i].id);
		return -EPROTO;
	}
	if ((err = recv_part(fd, buf, n)))
		return err;
	uint32_t crc = snap_crc32c(snap_crc32c(snap_crc32c(0, hdr, MSG_HDR), h, sizeof(h)), buf, n);
	if ((err = recv_crc(fd, crc)))
		return err;
	for (uint64_t done = 0; done < n;) {
		ssize_t w = pwrite(disk_fd[i], buf + done, n - done, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = w < 0 ? -errno : -EIO;
			log_error("migrate: writing disk %s: %s", cfg->disks[i].path, strerror(-err));
			return err;
		}
		done += (uint64_t)w;
	}
	return 0;
}

/* The incoming disks' files made durable, before the verdict. */
static int sync_disks(const int *disk_fd, const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		if (disk_fd[i] >= 0 && fdatasync(disk_fd[i]) < 0) {
			int err = -errno;
			log_error("migrate: disk %s: %s", cfg->disks[i].path, strerror(errno));
			return err;
		}
	}
	return 0;
}

int migrate_recv(const struct snap_vm *vm, int fd)
{
	const struct guest_mem *mem = vm->mem;
	const struct vm_config *cfg = vm->cfg;
	uint8_t hdr[MSG_HDR];
	uint32_t type;
	uint64_t len;
	int disk_fd[CONFIG_MAX_DISKS], err = 0;
	uint8_t *dbuf = NULL;
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		disk_fd[i] = -1;
	for (unsigned i = 0; i < cfg->nr_disks && !err; i++) {
		if (!cfg->disks[i].incoming)
			continue;
		disk_fd[i] = open(cfg->disks[i].path, O_WRONLY | O_CLOEXEC);
		if (disk_fd[i] < 0) {
			err = -errno;
			log_error("migrate: %s: %s", cfg->disks[i].path, strerror(errno));
		} else if (!dbuf && !(dbuf = malloc(PAGES_MAX))) {
			log_error("migrate: no memory for disk blocks");
			err = -ENOMEM;
		}
	}
	for (;;) {
		if (err || (err = recv_hdr(fd, &type, &len, hdr)))
			break;
		if (type == MSG_STATE)
			break;
		if (type == MSG_DISK && dbuf) {
			err = recv_disk(fd, hdr, len, disk_fd, cfg, dbuf);
			continue;
		}
		uint8_t o[8];
		if (type != MSG_PAGES || len < 8 + GUEST_PAGE || len > 8 + PAGES_MAX ||
		    (len - 8) % GUEST_PAGE || (err = recv_all(fd, o, 8))) {
			log_error("migrate: bad message (type %u, %llu bytes)", type,
				  (unsigned long long)len);
			err = err ? err : -EPROTO;
			break;
		}
		uint64_t off = get_le64(o), n = len - 8;
		if (off % GUEST_PAGE || off > mem->total || n > mem->total - off) {
			log_error("migrate: pages at %#llx+%#llx lie outside guest memory",
				  (unsigned long long)off, (unsigned long long)n);
			err = -EPROTO;
			break;
		}
		/* Straight into guest RAM: nothing runs there yet, and a bad
		 * checksum ends the migration anyway. */
		if ((err = recv_part(fd, mem->base + off, n)))
			break;
		uint32_t crc = snap_crc32c(snap_crc32c(snap_crc32c(0, hdr, MSG_HDR), o, 8),
					   mem->base + off, n);
		err = recv_crc(fd, crc);
	}
	if (!err)
		err = sync_disks(disk_fd, cfg);
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		if (disk_fd[i] >= 0)
			close(disk_fd[i]);
	free(dbuf);
	if (err)
		return err;
	if (len > 64u << 20) {
		log_error("migrate: state of %llu bytes", (unsigned long long)len);
		return -EPROTO;
	}
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf) {
		log_error("migrate: no memory for the state");
		return -ENOMEM;
	}
	err = recv_part(fd, buf, len);
	if (!err)
		err = recv_crc(fd, snap_crc32c(snap_crc32c(0, hdr, MSG_HDR), buf, len));
	struct snap_reader r;
	if (!err && snap_reader_init(&r, buf, len)) {
		log_error("%s", r.err);
		err = -EBADMSG;
	}
	if (!err)
		err = snap_restore(vm, &r);
	if (err) {
		nak(fd, log_last_error());
	} else if ((err = send_msg(fd, MSG_ACK, NULL, 0, NULL, 0))) {
		log_error("migrate: cannot acknowledge: %s", strerror(-err));
	}
	free(buf);
	return err;
}
