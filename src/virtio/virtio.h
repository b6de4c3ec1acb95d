/* The virtio device model shared by every device (virtio 1.2 §2): status,
 * feature negotiation, queues, reset, and the hooks a device supplies. The
 * transport (virtio/pci.c) owns the registers; a device (blk.c, rng.c...)
 * supplies a constant struct virtio_ops and processes its queues.
 *
 * Threads: register accesses arrive on vCPU threads; queue notifications and
 * back-end completions on the event loop. Both hold dev->lock while they touch
 * device state, so ops callbacks always run with it held.
 *
 * Reset: a driver's write of 0 to device_status calls ops->reset, which
 * returns how many requests are still in flight in the back end. device_status
 * reads as non-zero until the device calls virtio_reset_done() after the last
 * one finished (virtio 1.2 §2.4.1 lets the driver wait for that), so no
 * completion ever lands in memory the driver has reused. */
#ifndef MOTE_VIRTIO_H
#define MOTE_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"
#include "util/metrics.h"
#include "virtio/virtqueue.h"

#define VIRTIO_MAX_QUEUES 8

/* device_status bits (§2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Transport feature bits (§6) */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Device ids (§5) */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_RNG 4

struct virtio_dev;

struct virtio_ops {
	const char *name;           /* for logs: "virtio-blk" */
	uint16_t device_id;         /* VIRTIO_ID_* */
	uint32_t pci_class;         /* class << 16 | subclass << 8 | prog-if */
	unsigned nr_queues;
	uint16_t queue_max;         /* largest size offered, power of two */
	uint32_t config_size;       /* bytes of device configuration */
	/* Device configuration space (§4.1.4.6): off + len <= config_size. */
	void (*config_read)(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len);
	void (*config_write)(struct virtio_dev *dev, uint32_t off, const uint8_t *data,
			     uint32_t len);
	/* The driver kicked queue q (event loop; DRIVER_OK, queue ready). */
	void (*notify)(struct virtio_dev *dev, unsigned q);
	/* Device reset: drop state; return requests still in flight (0: done). */
	unsigned (*reset)(struct virtio_dev *dev);
	/* DRIVER_OK was set: features are final, queues configured. 0 or -errno
	 * (the device then reports NEEDS_RESET). */
	int (*activate)(struct virtio_dev *dev);
	/* Waits until the back end has nothing in flight, delivering every
	 * completion to the guest (lock held, event loop, vCPUs paused): a
	 * snapshot then sees rings and memory that agree. NULL: nothing to wait for.
	 * 0 or -errno (the back end failed). */
	int (*quiesce)(struct virtio_dev *dev);
	/* Live migration hands the back end's host side to another process:
	 * active false stops taking input from it (a tap's queue detached, so
	 * the destination's attached queue gets the frames), true takes it
	 * again (lock held, event loop, vCPUs paused). NULL: nothing to hand
	 * over. 0 or -errno. */
	int (*handover)(struct virtio_dev *dev, bool active);
	/* Reports the device's counters (lock held). */
	void (*metrics)(struct virtio_dev *dev, const struct metrics_sink *sink);
};

struct virtio_dev {
	const struct virtio_ops *ops;
	void *priv;                  /* the device's own state */
	pthread_mutex_t lock;
	const struct guest_mem *mem;
	uint64_t host_features;      /* offered: transport + device bits */
	uint64_t features;           /* accepted by the driver */
	uint8_t status;
	bool resetting;              /* reset requested, back end still draining */
	bool paused;                 /* the VM is paused (PATCH /vm): no queue is served,
				      * no back-end input is taken, until it resumes */
	struct virtq vq[VIRTIO_MAX_QUEUES];
	/* Set by the transport: used-buffer and configuration-change interrupts. */
	void (*interrupt)(struct virtio_dev *dev, unsigned q);
	void (*config_interrupt)(struct virtio_dev *dev);
	void *transport;
	uint64_t errors;             /* rings found broken, bad requests */
	uint64_t kicks;              /* queue notifications handled */
};

/* For devices: offered features = device_features | transport features. */
void virtio_dev_init(struct virtio_dev *dev, const struct virtio_ops *ops, void *priv,
		     const struct guest_mem *mem, uint64_t device_features);
void virtio_dev_fini(struct virtio_dev *dev);

/* Whether the device may serve its queues now: the driver is ready, the
 * device not broken, not being reset, not paused. */
static inline bool virtio_running(const struct virtio_dev *dev)
{
	return (dev->status & VIRTIO_STATUS_DRIVER_OK) &&
	       !(dev->status & VIRTIO_STATUS_NEEDS_RESET) && !dev->resetting && !dev->paused;
}

static inline bool virtio_has(const struct virtio_dev *dev, unsigned bit)
{
	return dev->features & (1ull << bit);
}

/* After pushing used buffers on queue q: interrupts the driver if it wants
 * one (lock held). */
void virtio_used(struct virtio_dev *dev, unsigned q);
/* Queue q's ring is broken (vq_pop said so) or a request was impossible to
 * answer: sets NEEDS_RESET, tells the driver, logs rate-limited (lock held). */
void virtio_broken(struct virtio_dev *dev, unsigned q, const char *why);
/* The back end drained after ops->reset returned non-zero (lock held). */
void virtio_reset_done(struct virtio_dev *dev);

/* Transport side (lock held): device_status writes and reset. */
void virtio_set_status(struct virtio_dev *dev, uint8_t status);

#endif
