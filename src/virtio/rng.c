/* virtio-rng (virtio 1.2 §5.4): one queue of device-writable buffers,
 * filled from getrandom(). Each request is bounded (RNG_MAX_REQUEST bytes),
 * so one kick can never make mote produce more than queue size × that.
 * A request with a device-readable buffer breaks the spec (§5.4.6.1) and
 * marks the device as needing reset. With a rate limit (the API's entropy
 * rate_limiter), each request takes one operation and its bytes. */
#include "virtio/rng.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "util/log.h"
#include "util/util.h"
#include "virtio/limit.h"

#define RNG_MAX_REQUEST 65536

struct rng {
	struct virtio_dev dev;
	struct vq_chain chain;
	struct virtio_limit limit;
	uint64_t bytes;
};

static unsigned rng_reset(struct virtio_dev *dev) { return 0; }

static void rng_notify(struct virtio_dev *dev, unsigned q)
{
	struct rng *rng = dev->priv;
	struct virtq *vq = &dev->vq[q];
	struct vq_chain *c = &rng->chain;
	int r;
	if (dev->paused || ratelimit_blocked(&rng->limit.rl))
		return; /* the limiter's timer, or the resume, serves the queue again */
	while ((r = vq_pop(vq, c)) > 0) {
		if (c->nr_read) {
			virtio_broken(dev, q, "request with a device-readable buffer");
			return;
		}
		if (!ratelimit_take(&rng->limit.rl, MIN(c->write_len, RNG_MAX_REQUEST))) {
			vq_unpop(vq, 1);
			break;
		}
		uint32_t written = 0;
		for (unsigned i = 0; i < c->nr_write && written < RNG_MAX_REQUEST; i++) {
			const struct vq_buf *b = &c->buf[i];
			uint32_t want = MIN(b->len, RNG_MAX_REQUEST - written);
			uint8_t *dst = guest_mem_ptr(dev->mem, b->gpa, want);
			ssize_t n = dst ? getrandom(dst, want, 0) : -1;
			if (n <= 0)
				break;
			guest_mem_dirty(dev->mem, b->gpa, (uint64_t)n);
			written += (uint32_t)n;
			if ((uint32_t)n < want)
				break;
		}
		rng->bytes += written;
		vq_push(vq, c->head, written);
	}
	if (r < 0) {
		virtio_broken(dev, q, "broken ring");
		return;
	}
	virtio_used(dev, q);
}

static void rng_metrics(struct virtio_dev *dev, const struct metrics_sink *s)
{
	struct rng *rng = dev->priv;
	metric(s, "entropy", "entropy_bytes", rng->bytes);
	metric(s, "entropy", "entropy_event_count", dev->kicks);
	metric(s, "entropy", "entropy_event_fails", dev->errors);
	metric(s, "entropy", "entropy_rate_limiter_throttled", rng->limit.rl.throttled);
}

static const struct virtio_ops rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.pci_class = 0xff0000, /* unclassified device */
	.nr_queues = 1,
	.queue_max = 256,
	.config_size = 0,
	.notify = rng_notify,
	.reset = rng_reset,
	.metrics = rng_metrics,
};

struct virtio_dev *virtio_rng_create(const struct guest_mem *mem, struct evloop *loop,
				     const struct ratelimit_cfg *limit)
{
	struct rng *rng = calloc(1, sizeof(*rng));
	if (!rng)
		return NULL;
	virtio_dev_init(&rng->dev, &rng_ops, rng, mem, 0);
	if (virtio_limit_init(&rng->limit, &rng->dev, 0, loop) ||
	    (limit && virtio_limit_set(&rng->limit, limit))) {
		log_error("virtio-rng: cannot set up the rate limiter");
		virtio_rng_destroy(&rng->dev);
		return NULL;
	}
	return &rng->dev;
}

void virtio_rng_destroy(struct virtio_dev *dev)
{
	if (!dev)
		return;
	struct rng *rng = dev->priv;
	virtio_limit_fini(&rng->limit);
	virtio_dev_fini(dev);
	free(dev->priv);
}
