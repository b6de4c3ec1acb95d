/* virtio-blk (virtio 1.2 §5.2): one request queue over a raw image, with
 * IN, OUT, FLUSH, GET_ID, DISCARD and WRITE_ZEROES. I/O is asynchronous
 * through io_uring (backend/block.c): a kick pops every available request,
 * queues them all and submits them in one system call; completions arrive
 * on the event loop through the ring's eventfd.
 *
 * Durability: FLUSH completes only after fdatasync() of the image, and when
 * the driver did not negotiate VIRTIO_BLK_F_FLUSH every write is
 * write-through (RWF_DSYNC). A read-only disk fails writes, discards and
 * zeroing with IOERR and leaves the file untouched (it is opened O_RDONLY).
 * Requests out of range fail with IOERR; unknown types with UNSUPP.
 * Deliberately absent: multiqueue, secure erase, zoned devices, config
 * writeback toggling (the cache mode is what the driver negotiated). */
#include "virtio/blk.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>

#include "backend/block.h"
#include "util/log.h"
#include "util/util.h"

#define BLK_QUEUE_SIZE 256
#define BLK_SEG_MAX (BLK_QUEUE_SIZE - 2) /* header and status take two */
#define BLK_MAX_DISCARD_SECTORS (1u << 22) /* 2 GiB per request */

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
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
	bool busy;
	bool zero_range;     /* write-zeroes through FALLOC_FL_ZERO_RANGE */
	uint64_t off, len;   /* the byte range of a discard or write-zeroes */
	uint32_t used;       /* bytes to report in the used ring */
	uint64_t expect;     /* bytes the I/O must transfer (0: any result >= 0) */
	uint8_t *status;     /* the status byte in guest memory */
	unsigned nr_in;      /* iov[0, nr_in) receive data from the disk (IN) */
	unsigned gen;        /* device generation when submitted */
	struct iovec iov[BLK_SEG_MAX];
};

struct blk {
	struct virtio_dev dev;
	struct blk_file file;
	struct evloop *loop;
	struct evloop_source done_src; /* the ring's completion eventfd */
	char id[CONFIG_DISK_ID_LEN];
	const char *path;
	unsigned gen;                  /* bumped by reset: older completions are dropped */
	unsigned in_flight;
	struct blk_req req[BLK_QUEUE_SIZE];
	struct vq_chain chain;
	uint64_t reads, writes, flushes, errors, read_bytes, write_bytes;
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
	put_le16(cfg + 34, 1);                         /* num_queues */
	put_le32(cfg + 36, BLK_MAX_DISCARD_SECTORS);   /* max_discard_sectors */
	put_le32(cfg + 40, 1);                         /* max_discard_seg */
	put_le32(cfg + 44, 1);                         /* discard_sector_alignment */
	put_le32(cfg + 48, BLK_MAX_DISCARD_SECTORS);   /* max_write_zeroes_sectors */
	put_le32(cfg + 52, 1);                         /* max_write_zeroes_seg */
	cfg[56] = 1;                                   /* write_zeroes_may_unmap */
	memcpy(data, cfg + off, len); /* the transport bounds off + len */
}

static struct blk_req *free_req(struct blk *b)
{
	for (unsigned i = 0; i < BLK_QUEUE_SIZE; i++)
		if (!b->req[i].busy)
			return &b->req[i];
	return NULL; /* cannot happen: at most queue-size chains are outstanding */
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
	vq_push(&b->dev.vq[0], r->head, r->used);
}

/* Range check in sectors, overflow-safe. */
static bool in_range(const struct blk *b, uint64_t sector, uint64_t bytes)
{
	uint64_t cap = capacity(b), n = bytes / 512;
	return sector <= cap && n <= cap - sector;
}

/* Starts one request; returns false when it completed at once. */
static bool start(struct blk *b, struct blk_req *r, const struct vq_chain *c)
{
	struct virtio_dev *dev = &b->dev;
	uint8_t hdr[16];
	vq_read(&dev->vq[0], c, 0, hdr, sizeof(hdr));
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
		vq_write(&dev->vq[0], c, 0, id, MIN(data_in, sizeof(id)));
		complete(b, r, S_OK);
		return false;
	}
	case T_DISCARD:
	case T_WRITE_ZEROES: {
		uint8_t seg[16];
		if (b->file.read_only || data_out != sizeof(seg))
			break; /* one segment per request (max_*_seg = 1) */
		vq_read(&dev->vq[0], c, 16, seg, sizeof(seg));
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

static void blk_notify(struct virtio_dev *dev, unsigned q)
{
	struct blk *b = dev->priv;
	struct virtq *vq = &dev->vq[q];
	struct vq_chain *c = &b->chain;
	bool completed = false;
	int r;
	while ((r = vq_pop(vq, c)) > 0) {
		/* A request needs its 16-byte header and a status byte (§5.2.6). */
		if (c->read_len < 16 || c->write_len < 1) {
			virtio_broken(dev, q, "request without header or status byte");
			break; /* still submit what was queued before it */
		}
		struct blk_req *req = free_req(b);
		uint64_t status_off = c->write_len - 1;
		struct iovec st;
		if (!req || !chain_iov(dev, c, true, status_off, 1, &st, 1)) {
			virtio_broken(dev, q, "no room for the request");
			break;
		}
		*req = (struct blk_req){ .blk = b, .head = c->head, .busy = true,
					 .used = (uint32_t)c->write_len, .status = st.iov_base,
					 .gen = b->gen };
		if (start(b, req, c)) {
			b->in_flight++;
		} else {
			req->busy = false;
			completed = true;
		}
		if (b->file.queued >= BLK_QUEUE_SIZE / 2)
			blk_file_submit(&b->file);
	}
	if (r < 0)
		virtio_broken(dev, q, "broken ring");
	int err = blk_file_submit(&b->file);
	if (err)
		log_ratelimited(LOG_ERROR, "virtio-blk %s: io_uring submit: %s", b->path,
				strerror(-err));
	/* Reads served from the page cache complete inside the submit: answer
	 * them now rather than one event-loop turn later. */
	if (b->in_flight && blk_file_reap(&b->file, done, NULL))
		completed = true;
	if (completed)
		virtio_used(dev, q);
}

/* One finished I/O (event loop, device lock held). */
static void done(void *tag, int res, void *arg)
{
	struct blk_req *r = tag;
	struct blk *b = r->blk;
	r->busy = false;
	b->in_flight--;
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

/* Delivers finished I/O (lock held). */
static void reap(struct blk *b)
{
	unsigned gen = b->gen;
	unsigned n = blk_file_reap(&b->file, done, NULL);
	if (b->dev.resetting && b->in_flight == 0)
		virtio_reset_done(&b->dev);
	else if (n && gen == b->gen)
		virtio_used(&b->dev, 0);
}

static void on_done(struct evloop_source *src, uint32_t events)
{
	struct blk *b = (struct blk *)((char *)src - offsetof(struct blk, done_src));
	pthread_mutex_lock(&b->dev.lock);
	reap(b);
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
}

static const struct virtio_ops blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.pci_class = 0x018000, /* mass storage, other */
	.nr_queues = 1,
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
	*err = blk_file_open(&b->file, disk->path, disk->read_only, BLK_QUEUE_SIZE);
	if (*err) {
		free(b);
		return NULL;
	}
	b->loop = loop;
	b->path = disk->path;
	memcpy(b->id, disk->id, MIN(strlen(disk->id), sizeof(b->id)));
	snprintf(b->group, sizeof(b->group), "block_%s", disk->id);
	uint64_t features = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			    1ull << VIRTIO_BLK_F_FLUSH;
	if (disk->read_only)
		features |= 1ull << VIRTIO_BLK_F_RO;
	else
		features |= 1ull << VIRTIO_BLK_F_DISCARD | 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	virtio_dev_init(&b->dev, &blk_ops, b, mem, features);
	b->done_src.fn = on_done;
	b->done_src.fd = b->file.efd;
	*err = evloop_add(loop, &b->done_src, EPOLLIN);
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
	blk_file_close(&b->file);
	virtio_dev_fini(dev);
	free(b);
}
