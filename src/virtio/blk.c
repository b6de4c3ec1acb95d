/* virtio-blk (virtio 1.2 §5.2): up to BLK_NR_QUEUES request queues
 * (VIRTIO_BLK_F_MQ; Linux takes one per vCPU) over one raw image, with IN,
 * OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES. I/O is asynchronous through
 * one io_uring (backend/block.c): a kick pops every available request,
 * queues them all and submits them in one system call; page-cache reads
 * complete inside that call and are answered at once, the rest arrive on
 * the event loop through the ring's eventfd. One interrupt decision a
 * queue per batch (EVENT_IDX), not one a request.
 *
 * Durability: FLUSH completes only after fdatasync() of the image, and when
 * the driver did not negotiate VIRTIO_BLK_F_FLUSH every write is
 * write-through (RWF_DSYNC). A read-only disk fails writes, discards and
 * zeroing with IOERR and leaves the file untouched (it is opened O_RDONLY).
 * Requests out of range fail with IOERR; unknown types with UNSUPP.
 * Rate limiting (--disk ...,bw=,ops=; the API's rate_limiter): every
 * request takes one operation token and IN/OUT their data bytes before it
 * starts; a refused request is put back in the ring and the queue waits for
 * the limiter's timerfd (no kick is needed to resume).
 *
 * The backing file can be replaced on a running VM (virtio_blk_update, the
 * API's PATCH /drives): new requests wait until the old file's in-flight I/O
 * has finished, then the new file takes over and the driver is told the
 * capacity through a configuration-change interrupt.
 *
 * Deliberately absent: secure erase, zoned devices, config
 * writeback toggling (the cache mode is what the driver negotiated). */
#include "virtio/blk.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <sys/uio.h>

#include "backend/block.h"
#include "backend/mirror.h"
#include "util/worker.h"
#include "virtio/limit.h"
#include "util/log.h"
#include "util/util.h"

#define BLK_QUEUE_SIZE 256
/* Request queues offered (VIRTIO_BLK_F_MQ); Linux uses one per vCPU up to
 * this, so a vCPU's requests complete through its own interrupt vector and
 * wake its own threads, without an IPI to another vCPU. */
#define BLK_NR_QUEUES 4
#define BLK_MAX_REQS (BLK_NR_QUEUES * BLK_QUEUE_SIZE)
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2) /* header and status take two */
#define BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per request */

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13

#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define CONFIG_SIZE 60

struct blk_req {
	struct blk *blk;
	uint16_t head;
	uint8_t q;           /* the queue it came from */
	bool busy;
	bool zero_range;     /* write-zeroes through FALLOC_FL_ZERO_RANGE */
	bool changes;        /* a write, discard or write-zeroes */
	uint64_t off, len;   /* the byte range it changes */
	uint32_t used;       /* bytes to report in the used ring */
	uint64_t expect;     /* bytes the I/O must transfer (0: any result >= 0) */
	uint8_t *status;     /* the status byte in guest memory */
	unsigned nr_in;      /* iov[0, nr_in) receive data from the disk (IN) */
	unsigned gen;        /* device generation when submitted */
	struct iovec iov[BLK_SEG_MAX]; /* last: run_queue() clears only what comes before */
};

struct blk {
	struct virtio_dev dev;
	struct blk_file file;
	struct blk_file next;          /* replacing file, while `swapping` */
	bool swapping;
	/* Storage migration (backend/mirror.h): `mirroring` from start until the
	 * switch or a failure; `draining` while requests wait for the final copy. */
	struct mirror mirror;
	bool mirror_used, mirroring, draining;
	struct evloop_source mirror_src;
	struct blkmap *track;          /* live migration with disks: changes marked */
	struct evloop *loop;
	struct evloop_source done_src; /* the ring's completion eventfd */
	struct virtio_limit limit;
	char id[CONFIG_DISK_ID_LEN];
	char *path;
	unsigned gen;                  /* bumped by reset: older completions are dropped */
	unsigned in_flight;
	unsigned pushed;               /* queues with used entries, no interrupt decided yet */
	unsigned waiting;              /* queues left with requests in the ring */
	struct blk_req req[BLK_MAX_REQS];
	struct vq_chain chain;
	uint64_t reads, writes, flushes, errors, read_bytes, write_bytes, throttled;
	char group[8 + CONFIG_DISK_ID_LEN]; /* "block_<id>" */
};

static uint64_t capacity(const struct blk *b) { return b->file.size / 512; }

static void config_read(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct blk *b = dev->priv;
	uint8_t cfg[CONFIG_SIZE] = { 0 };
	put_le64(cfg + 0, capacity(b));
	put_le32(cfg + 12, BLK_SEG_MAX);
	put_le32(cfg + 20, 512);                       /* blk_size */
	put_le16(cfg + 34, BLK_NR_QUEUES);             /* num_queues */
	put_le32(cfg + 36, BLK_MAX_DISCARD_SECTORS);   /* max_discard_sectors */
	put_le32(cfg + 40, 1);                         /* max_discard_seg */
	put_le32(cfg + 44, 1);                         /* discard_sector_alignment */
	put_le32(cfg + 48, BLK_MAX_DISCARD_SECTORS);   /* max_write_zeroes_sectors */
	put_le32(cfg + 52, 1);                         /* max_write_zeroes_seg */
	cfg[56] = 1;                                   /* write_zeroes_may_unmap */
	memcpy(data, cfg + off, len); /* the transport bounds off + len */
}

/* Each queue has its own BLK_QUEUE_SIZE slots: the transport keeps a ring
 * at that size, so a well-behaved driver never runs out. */
static struct blk_req *free_req(struct blk *b, unsigned q)
{
	struct blk_req *slots = &b->req[q * BLK_QUEUE_SIZE];
	for (unsigned i = 0; i < BLK_QUEUE_SIZE; i++)
		if (!slots[i].busy)
			return &slots[i];
	return NULL;
}

/* iovecs for [off, off + len) of a chain's readable (write=false) or
 * writable part; returns their count, 0 when it does not fit. */
static unsigned chain_iov(const struct virtio_dev *dev, const struct vq_chain *c, bool write,
			  uint64_t off, uint64_t len, struct iovec *iov, unsigned max)
{
	unsigned first = write ? c->nr_read : 0, n = write ? c->nr_write : c->nr_read, out = 0;
	for (unsigned i = first; i < first + n && len > 0; i++) {
		const struct vq_buf *buf = &c->buf[i];
		if (off >= buf->len) {
			off -= buf->len;
			continue;
		}
		uint64_t take = MIN(buf->len - off, len);
		if (out == max)
			return 0;
		/* vq_pop checked every buffer; checked again rather than trusted,
		 * since a NULL here would be written through. */
		iov[out].iov_base = guest_mem_ptr(dev->mem, buf->gpa + off, take);
		if (!iov[out].iov_base)
			return 0;
		if (write) /* the device writes it (reads from disk, status byte) */
			guest_mem_dirty(dev->mem, buf->gpa + off, take);
		iov[out].iov_len = take;
		out++;
		len -= take;
		off = 0;
	}
	return len ? 0 : out;
}

static void complete(struct blk *b, struct blk_req *r, uint8_t status)
{
	/* Marked now, when the data has landed: a dirty-page scan between
	 * submission and completion must not miss it (live migration). */
	for (unsigned i = 0; i < r->nr_in; i++)
		guest_mem_dirty_hva(b->dev.mem, r->iov[i].iov_base, r->iov[i].iov_len);
	*r->status = status;
	guest_mem_dirty_hva(b->dev.mem, r->status, 1);
	if (status != S_OK)
		b->errors++;
	/* used.idx moves at once: a driver polling the ring (or already in its
	 * interrupt handler) takes this one while the rest of the batch is
	 * still being answered. The interrupt waits for the batch (publish()). */
	vq_push(&b->dev.vq[r->q], r->head, r->used);
	b->pushed |= 1u << r->q;
}

/* After a batch: interrupts the driver on each queue that got used entries,
 * where it asks for that (one decision a queue, not one a request). */
static void publish(struct blk *b)
{
	for (unsigned q = 0; b->pushed; q++) {
		if (!(b->pushed & 1u << q))
			continue;
		b->pushed &= ~(1u << q);
		virtio_used(&b->dev, q);
	}
}

/* Range check in sectors, overflow-safe. */
static bool in_range(const struct blk *b, uint64_t sector, uint64_t bytes)
{
	uint64_t cap = capacity(b), n = bytes / 512;
	return sector <= cap && n <= cap - sector;
}

/* Starts one request, whose header the caller copied out of guest memory
 * once; returns false when it completed at once. */
static bool start(struct blk *b, struct blk_req *r, const struct vq_chain *c,
		  const uint8_t hdr[16])
{
	struct virtio_dev *dev = &b->dev;
	uint32_t type = get_le32(hdr);
	uint64_t sector = get_le64(hdr + 8);
	uint64_t data_out = c->read_len - 16, data_in = c->write_len - 1;
	int err = 0;
	switch (type) {
	case T_IN:
	case T_OUT: {
		bool out = type == T_OUT;
		uint64_t len = out ? data_out : data_in;
		if (out && b->file.read_only)
			break;
		if (len % 512 || !in_range(b, sector, len))
			break;
		unsigned n = chain_iov(dev, c, !out, out ? 16 : 0, len, r->iov, BLK_SEG_MAX);
		if (len && !n)
			break; /* more segments than seg_max: the driver broke its limit */
		r->expect = len;
		r->off = sector * 512;
		r->len = len;
		r->changes = out;
		if (out) {
			b->writes++;
			b->write_bytes += len;
			err = blk_file_writev(&b->file, r->iov, n, sector * 512,
					      !virtio_has(dev, VIRTIO_BLK_F_FLUSH), r);
		} else {
			r->nr_in = n;
			b->reads++;
			b->read_bytes += len;
			err = blk_file_readv(&b->file, r->iov, n, sector * 512, r);
		}
		if (err)
			break; /* the submission queue is full: fail rather than lose it */
		return true;
	}
	case T_FLUSH:
		b->flushes++;
		r->expect = 0;
		if (blk_file_flush(&b->file, r))
			break;
		return true;
	case T_GET_ID: {
		uint8_t id[CONFIG_DISK_ID_LEN] = { 0 };
		memcpy(id, b->id, sizeof(id));
		vq_write(&dev->vq[r->q], c, 0, id, MIN(data_in, sizeof(id)));
		complete(b, r, S_OK);
		return false;
	}
	case T_DISCARD:
	case T_WRITE_ZEROES: {
		uint8_t seg[16];
		if (b->file.read_only || data_out != sizeof(seg))
			break; /* one segment per request (max_*_seg = 1) */
		vq_read(&dev->vq[r->q], c, 16, seg, sizeof(seg));
		uint64_t start_sector = get_le64(seg);
		uint32_t nr = get_le32(seg + 8), flags = get_le32(seg + 12);
		/* §5.2.6.2: unknown flags, and unmap on a discard, are unsupported. */
		if ((flags & ~1u) || (type == T_DISCARD && (flags & 1))) {
			complete(b, r, S_UNSUPP);
			return false;
		}
		if (nr > BLK_MAX_DISCARD_SECTORS || !in_range(b, start_sector, (uint64_t)nr * 512))
			break;
		r->expect = 0;
		r->off = start_sector * 512;
		r->len = (uint64_t)nr * 512;
		/* Write-zeroes may deallocate when the driver allows it (unmap bit). */
		r->zero_range = type == T_WRITE_ZEROES && !(flags & 1);
		r->changes = true;
		if (blk_file_discard(&b->file, r->off, r->len, r->zero_range, r))
			break;
		return true;
	}
	default:
		complete(b, r, S_UNSUPP);
		return false;
	}
	complete(b, r, S_IOERR);
	return false;
}

static void done(void *tag, int res, void *arg);

/* Opening an image needs system calls the event loop's seccomp filter does
 * not allow: the worker does it (util/worker.h). */
struct open_args {
	struct blk_file *f;
	const char *path;
	bool read_only;
	int err;
};

static void open_fn(void *arg)
{
	struct open_args *o = arg;
	o->err = blk_file_open(o->f, o->path, o->read_only, BLK_MAX_REQS);
}

static int open_on_worker(struct blk_file *f, const char *path, bool read_only)
{
	struct open_args o = { .f = f, .path = path, .read_only = read_only };
	worker_call(open_fn, &o);
	return o.err;
}

/* Bandwidth tokens a request takes: its data bytes for reads and writes. */
static uint64_t cost(const struct vq_chain *c, const uint8_t hdr[16])
{
	switch (get_le32(hdr)) {
	case T_IN: return c->write_len - 1;
	case T_OUT: return c->read_len - 16;
	default: return 0;
	}
}

enum run_end { RUN_EMPTY, RUN_LIMITED, RUN_BROKEN };

/* Pops, starts and submits every available request of queue q, until the
 * ring is empty (RUN_EMPTY), the limiter refuses one (RUN_LIMITED: it stays
 * in the ring) or the ring is broken (RUN_BROKEN). Requests that finish
 * meanwhile (inline failures, and page-cache reads, which complete inside
 * the submit) are pushed; whether to interrupt is publish()'s to decide. */
static enum run_end run_queue(struct blk *b, unsigned q)
{
	struct virtio_dev *dev = &b->dev;
	struct virtq *vq = &dev->vq[q];
	struct vq_chain *c = &b->chain;
	enum run_end end = RUN_BROKEN;
	bool started = false;
	int r;
	while ((r = vq_pop(vq, c)) > 0) {
		/* A request needs its 16-byte header and a status byte (§5.2.6). */
		if (c->read_len < 16 || c->write_len < 1) {
			virtio_broken(dev, q, "request without header or status byte");
			break; /* still submit what was queued before it */
		}
		/* The header is read once: the limiter and the request see the same. */
		uint8_t hdr[16];
		vq_read(vq, c, 0, hdr, sizeof(hdr));
		if (!ratelimit_take(&b->limit.rl, cost(c, hdr))) {
			vq_unpop(vq, 1);
			end = RUN_LIMITED;
			break;
		}
		struct blk_req *req = free_req(b, q);
		uint64_t status_off = c->write_len - 1;
		struct iovec st;
		if (!req || !chain_iov(dev, c, true, status_off, 1, &st, 1)) {
			virtio_broken(dev, q, "no room for the request");
			break;
		}
		/* Everything but the iovecs (4 KiB, filled as needed by start()). */
		memset(req, 0, offsetof(struct blk_req, iov));
		req->blk = b;
		req->head = c->head;
		req->q = (uint8_t)q;
		req->busy = true;
		req->used = (uint32_t)c->write_len;
		req->status = st.iov_base;
		req->gen = b->gen;
		if (start(b, req, c, hdr)) {
			b->in_flight++;
			started = true;
		} else {
			req->busy = false;
		}
		if (b->file.queued >= BLK_QUEUE_SIZE / 2)
			blk_file_submit(&b->file);
	}
	if (r < 0)
		virtio_broken(dev, q, "broken ring");
	else if (r == 0)
		end = RUN_EMPTY;
	int err = blk_file_submit(&b->file);
	if (err)
		log_ratelimited(LOG_ERROR, "virtio-blk %s: io_uring submit: %s", b->path,
				strerror(-err));
	/* Reads served from the page cache complete inside the submit: answer
	 * them now rather than one event-loop turn later. */
	if (started)
		blk_file_reap(&b->file, done, NULL);
	return end;
}

/* Serves queue q: RUN_LIMITED when requests stay in its ring. The driver's
 * notifications are re-armed when vq_pop finds the ring empty, before the
 * batch is submitted (keeping them off until it was answered, then looking
 * again, saved a few kicks at depth but made depth-1 runs slower more often:
 * docs/ARCHITECTURE.md). */
static enum run_end serve(struct blk *b, unsigned q)
{
	enum run_end end = run_queue(b, q);
	publish(b);
	return end;
}

/* A kick on queue q, or (limiter timer, file switch) a chance to resume the
 * queues left waiting. */
static void blk_notify(struct virtio_dev *dev, unsigned q)
{
	struct blk *b = dev->priv;
	if (q < BLK_NR_QUEUES)
		b->waiting |= 1u << q;
	/* Waiting for the limiter's timer, a file swap or the VM's resume: the
	 * requests stay in the rings until then. */
	if (b->swapping || b->draining || dev->paused || ratelimit_blocked(&b->limit.rl))
		return;
	while (b->waiting) {
		unsigned i = (unsigned)__builtin_ctz(b->waiting);
		b->waiting &= ~(1u << i);
		if (serve(b, i) == RUN_LIMITED) {
			b->waiting |= 1u << i; /* the limiter's timer resumes it */
			break;
		}
	}
}

/* One finished I/O (event loop, device lock held). */
static void done(void *tag, int res, void *arg)
{
	struct blk_req *r = tag;
	struct blk *b = r->blk;
	r->busy = false;
	b->in_flight--;
	/* Even a failed or dropped write may have changed the file. */
	if (r->changes && b->mirroring)
		mirror_mark(&b->mirror, r->off, r->len);
	if (r->changes && b->track)
		blkmap_mark(b->track, r->off, r->len);
	if (r->gen != b->gen) { /* the device was reset meanwhile: drop it */
		for (unsigned i = 0; i < r->nr_in; i++) /* but the data did land */
			guest_mem_dirty_hva(b->dev.mem, r->iov[i].iov_base, r->iov[i].iov_len);
		return;
	}
	/* Some file systems (tmpfs) cannot zero a range in place: a punched
	 * hole reads back as zeroes too. */
	if (res == -EOPNOTSUPP && r->zero_range) {
		r->zero_range = false;
		if (blk_file_discard(&b->file, r->off, r->len, false, r) == 0 &&
		    blk_file_submit(&b->file) == 0) {
			r->busy = true;
			b->in_flight++;
			return;
		}
	}
	bool ok = res >= 0 && (r->expect == 0 || (uint64_t)res == r->expect);
	if (!ok)
		log_ratelimited(LOG_WARN, "virtio-blk %s: I/O failed: %s", b->path,
				res < 0 ? strerror(-res) : "short transfer");
	complete(b, r, ok ? S_OK : S_IOERR);
}

/* The old file has no I/O in flight: the new one takes over (lock held). */
static void finish_swap(struct blk *b)
{
	evloop_del(b->loop, &b->done_src);
	blk_file_close(&b->file);
	b->file = b->next;
	b->swapping = false;
	b->done_src.fd = b->file.efd;
	int err = evloop_add(b->loop, &b->done_src, EPOLLIN);
	if (err)
		log_error("virtio-blk %s: cannot watch the new file: %s", b->path, strerror(-err));
	if (b->dev.config_interrupt && (b->dev.status & VIRTIO_STATUS_DRIVER_OK))
		b->dev.config_interrupt(&b->dev); /* the capacity may have changed */
	if ((b->dev.status & VIRTIO_STATUS_DRIVER_OK) && !b->dev.resetting)
		blk_notify(&b->dev, 0);
}

static void stop_mirror(struct blk *b)
{
	evloop_del(b->loop, &b->mirror_src);
	b->mirroring = b->draining = false;
}

/* Nothing in flight, nothing starting: the last copy, then the switch (lock
 * held). Whatever fails, the guest goes on with the file it had. */
static void finish_mirror(struct blk *b)
{
	int err = mirror_finish(&b->mirror);
	char *dst = err ? NULL : strdup(b->mirror.dst_path);
	if (!err && !dst)
		err = -ENOMEM;
	if (!err)
		err = open_on_worker(&b->next, dst, b->file.read_only);
	stop_mirror(b);
	if (err) {
		if (atomic_load(&b->mirror.state) == MIRROR_DONE) {
			b->mirror.error = err;
			atomic_store(&b->mirror.state, MIRROR_FAILED);
		}
		free(dst);
		if ((b->dev.status & VIRTIO_STATUS_DRIVER_OK) && !b->dev.resetting)
			blk_notify(&b->dev, 0);
		return;
	}
	log_info("virtio-blk %s: storage migration done, now on %s", b->path, dst);
	free(b->path);
	b->path = dst;
	b->swapping = true;
	finish_swap(b);
}

/* Delivers finished I/O (lock held). */
static void reap(struct blk *b)
{
	unsigned gen = b->gen;
	unsigned n = blk_file_reap(&b->file, done, NULL);
	if (b->dev.resetting && b->in_flight == 0)
		virtio_reset_done(&b->dev);
	else if (n && gen == b->gen)
		publish(b);
	if (b->swapping && b->in_flight == 0)
		finish_swap(b);
	if (b->draining && b->in_flight == 0)
		finish_mirror(b);
}

static void on_done(struct evloop_source *src, uint32_t events)
{
	struct blk *b = (struct blk *)((char *)src - offsetof(struct blk, done_src));
	pthread_mutex_lock(&b->dev.lock);
	reap(b);
	pthread_mutex_unlock(&b->dev.lock);
}

/* The copy converged or failed (event loop). */
static void on_mirror(struct evloop_source *src, uint32_t events)
{
	struct blk *b = (struct blk *)((char *)src - offsetof(struct blk, mirror_src));
	uint64_t n;
	pthread_mutex_lock(&b->dev.lock);
	if (read(src->fd, &n, sizeof(n)) == sizeof(n) && b->mirroring) {
		if (atomic_load(&b->mirror.state) == MIRROR_CONVERGED) {
			b->draining = true; /* no new requests until the switch */
			if (b->in_flight == 0)
				finish_mirror(b);
		} else {
			stop_mirror(b); /* failed: the source stays */
		}
	}
	pthread_mutex_unlock(&b->dev.lock);
}

/* Pause alone stops the vCPUs, but io_uring completions would still land in
 * guest memory afterwards: a snapshot waits for them here first. */
static int blk_quiesce(struct virtio_dev *dev)
{
	struct blk *b = dev->priv;
	blk_file_submit(&b->file);
	while (b->in_flight) {
		int err = blk_file_wait(&b->file);
		if (err) {
			log_error("virtio-blk %s: waiting for I/O: %s", b->path, strerror(-err));
			return err;
		}
		reap(b);
	}
	return 0;
}

static unsigned blk_reset(struct virtio_dev *dev)
{
	struct blk *b = dev->priv;
	b->gen++;
	b->waiting = b->pushed = 0;
	return b->in_flight;
}

static void blk_metrics(struct virtio_dev *dev, const struct metrics_sink *s)
{
	struct blk *b = dev->priv;
	metric(s, b->group, "read_count", b->reads);
	metric(s, b->group, "write_count", b->writes);
	metric(s, b->group, "read_bytes", b->read_bytes);
	metric(s, b->group, "write_bytes", b->write_bytes);
	metric(s, b->group, "flush_count", b->flushes);
	metric(s, b->group, "execute_fails", b->errors);
	metric(s, b->group, "invalid_reqs_count", dev->errors);
	metric(s, b->group, "queue_event_count", dev->kicks);
	metric(s, b->group, "rate_limiter_throttled_events", b->limit.rl.throttled);
}

static const struct virtio_ops blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.pci_class = 0x018000, /* mass storage, other */
	.nr_queues = BLK_NR_QUEUES,
	.queue_max = BLK_QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.config_read = config_read,
	.notify = blk_notify,
	.reset = blk_reset,
	.quiesce = blk_quiesce,
	.metrics = blk_metrics,
};

struct virtio_dev *virtio_blk_create(const struct guest_mem *mem, struct evloop *loop,
				     const struct vm_disk *disk, int *err)
{
	struct blk *b = calloc(1, sizeof(*b));
	if (!b) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = blk_file_open(&b->file, disk->path, disk->read_only, BLK_MAX_REQS);
	if (*err) {
		free(b);
		return NULL;
	}
	b->loop = loop;
	b->limit.rl.timer_fd = -1; /* nothing to close until virtio_limit_init */
	b->path = strdup(disk->path);
	if (!b->path) {
		*err = -ENOMEM;
		blk_file_close(&b->file);
		free(b);
		return NULL;
	}
	memcpy(b->id, disk->id, MIN(strlen(disk->id), sizeof(b->id)));
	snprintf(b->group, sizeof(b->group), "block_%s", disk->id);
	uint64_t features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			    1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_MQ;
	if (disk->read_only)
		features |= 1ull << VIRTIO_BLK_F_RO;
	else
		features |= 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	virtio_dev_init(&b->dev, &blk_ops, b, mem, features);
	b->done_src.fn = on_done;
	b->done_src.fd = b->file.efd;
	*err = evloop_add(loop, &b->done_src, EPOLLIN);
	if (!*err)
		*err = virtio_limit_init(&b->limit, &b->dev, 0, loop);
	if (!*err)
		*err = virtio_limit_set(&b->limit, &disk->rl);
	if (*err) {
		virtio_blk_destroy(&b->dev);
		return NULL;
	}
	return &b->dev;
}

void virtio_blk_destroy(struct virtio_dev *dev)
{
	if (!dev)
		return;
	struct blk *b = dev->priv;
	evloop_del(b->loop, &b->done_src);
	virtio_limit_fini(&b->limit);
	if (b->mirroring)
		stop_mirror(b);
	if (b->mirror_used)
		mirror_destroy(&b->mirror);
	blk_file_close(&b->file);
	if (b->swapping)
		blk_file_close(&b->next);
	virtio_dev_fini(dev);
	free(b->path);
	free(b);
}

/* Why the image cannot change hands now (a new file, a storage migration, a
 * live migration's copy), or NULL (lock held). */
static const char *image_busy(const struct blk *b)
{
	return b->mirroring ? "a storage migration is running"
	       : b->track   ? "a live migration is copying it"
	       : b->swapping ? "a file change still waits for I/O"
			     : NULL;
}

int virtio_blk_update(struct virtio_dev *dev, const char *path, const struct ratelimit_cfg *rl)
{
	struct blk *b = dev->priv;
	char *copy = NULL;
	bool opened = false;
	int err = 0;
	pthread_mutex_lock(&dev->lock);
	if (path) {
		if (image_busy(b)) {
			log_error("virtio-blk %s: %s", b->path, image_busy(b));
			err = -EBUSY;
		} else if (!(copy = strdup(path))) {
			err = -ENOMEM;
		} else {
			err = open_on_worker(&b->next, path, b->file.read_only);
			opened = !err;
		}
	}
	if (!err && rl)
		err = virtio_limit_set(&b->limit, rl);
	if (err) {
		if (opened)
			blk_file_close(&b->next);
		free(copy);
		pthread_mutex_unlock(&dev->lock);
		return err;
	}
	if (path) {
		log_info("virtio-blk %s: now backed by %s (%" PRIu64 " bytes)", b->path, copy,
			 b->next.size);
		free(b->path);
		b->path = copy;
		b->swapping = true;
		if (b->in_flight == 0)
			finish_swap(b);
	} else if ((dev->status & VIRTIO_STATUS_DRIVER_OK) && !dev->resetting) {
		blk_notify(dev, 0); /* looser limits may let waiting requests go */
	}
	pthread_mutex_unlock(&dev->lock);
	return err;
}

int virtio_blk_migrate(struct virtio_dev *dev, const char *dst)
{
	struct blk *b = dev->priv;
	int err = 0;
	pthread_mutex_lock(&dev->lock);
	if (image_busy(b)) {
		log_error("virtio-blk %s: %s", b->path, image_busy(b));
		err = -EBUSY;
		goto out;
	}
	if (b->mirror_used)
		mirror_destroy(&b->mirror); /* forget the previous one */
	b->mirror_used = false;
	err = mirror_start(&b->mirror, b->file.fd, b->file.size, dst);
	if (err)
		goto out;
	b->mirror_used = b->mirroring = true;
	b->mirror_src.fn = on_mirror;
	b->mirror_src.fd = b->mirror.efd;
	err = evloop_add(b->loop, &b->mirror_src, EPOLLIN);
	if (err) {
		b->mirroring = false;
		mirror_destroy(&b->mirror);
		b->mirror_used = false;
		log_error("virtio-blk %s: cannot watch the migration: %s", b->path, strerror(-err));
		goto out;
	}
	log_info("virtio-blk %s: storage migration to %s started", b->path, dst);
out:
	pthread_mutex_unlock(&dev->lock);
	return err;
}

int virtio_blk_track(struct virtio_dev *dev, struct blkmap *map, int *fd, uint64_t *size)
{
	struct blk *b = dev->priv;
	int err = 0;
	pthread_mutex_lock(&dev->lock);
	if (map && image_busy(b)) {
		log_error("virtio-blk %s: cannot copy it with the VM: %s", b->path, image_busy(b));
		err = -EBUSY;
	} else {
		b->track = map;
		if (fd)
			*fd = b->file.fd;
		if (size)
			*size = b->file.size;
	}
	pthread_mutex_unlock(&dev->lock);
	return err;
}

void virtio_blk_status(struct virtio_dev *dev, struct blk_status *st)
{
	struct blk *b = dev->priv;
	pthread_mutex_lock(&dev->lock);
	*st = (struct blk_status){ .size = b->file.size };
	snprintf(st->path, sizeof(st->path), "%s", b->path);
	if (b->mirror_used) {
		st->migration = true;
		snprintf(st->dst, sizeof(st->dst), "%s", b->mirror.dst_path);
		st->state = mirror_state_name(atomic_load(&b->mirror.state));
		st->copied = atomic_load(&b->mirror.copied);
		st->remaining = atomic_load(&b->mirror.remaining);
		st->passes = atomic_load(&b->mirror.passes);
		st->error = b->mirror.error;
	}
	pthread_mutex_unlock(&dev->lock);
}
