/* The transport-independent part of a virtio device; see virtio.h. */
#include "virtio/virtio.h"

#include <string.h>

#include "util/log.h"

void virtio_dev_init(struct virtio_dev *dev, const struct virtio_ops *ops, void *priv,
		     const struct guest_mem *mem, uint64_t device_features)
{
	memset(dev, 0, sizeof(*dev));
	pthread_mutex_init(&dev->lock, NULL);
	dev->ops = ops;
	dev->priv = priv;
	dev->mem = mem;
	dev->host_features = device_features | 1ull << VIRTIO_F_VERSION_1 |
			     1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX;
}

void virtio_dev_fini(struct virtio_dev *dev) { pthread_mutex_destroy(&dev->lock); }

void virtio_used(struct virtio_dev *dev, unsigned q)
{
	if (q < dev->ops->nr_queues && vq_should_notify(&dev->vq[q]) && dev->interrupt)
		dev->interrupt(dev, q);
}

void virtio_broken(struct virtio_dev *dev, unsigned q, const char *why)
{
	dev->errors++;
	log_ratelimited(LOG_WARN, "%s: queue %u: %s; device needs reset", dev->ops->name, q, why);
	if (dev->status & VIRTIO_STATUS_NEEDS_RESET)
		return;
	dev->status |= VIRTIO_STATUS_NEEDS_RESET;
	if ((dev->status & VIRTIO_STATUS_DRIVER_OK) && dev->config_interrupt)
		dev->config_interrupt(dev);
}

static void finish_reset(struct virtio_dev *dev)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vq_reset(&dev->vq[q]);
	dev->features = 0;
	dev->status = 0;
	dev->resetting = false;
}

void virtio_reset_done(struct virtio_dev *dev)
{
	if (dev->resetting)
		finish_reset(dev);
}

void virtio_set_status(struct virtio_dev *dev, uint8_t status)
{
	if (status == 0) {
		unsigned in_flight = dev->ops->reset ? dev->ops->reset(dev) : 0;
		dev->resetting = true;
		if (in_flight == 0)
			finish_reset(dev);
		return;
	}
	if (dev->resetting)
		return; /* the driver must wait for status 0 first */
	uint8_t old = dev->status;
	/* FEATURES_OK sticks only for a feature set the device accepts
	 * (§3.1.1): offered bits only, and VERSION_1 — mote has no legacy mode. */
	if ((status & VIRTIO_STATUS_FEATURES_OK) && !(old & VIRTIO_STATUS_FEATURES_OK)) {
		if ((dev->features & ~dev->host_features) ||
		    !(dev->features & (1ull << VIRTIO_F_VERSION_1)))
			status &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
	}
	/* NEEDS_RESET is the device's to set; the driver cannot clear it. */
	status = (uint8_t)((status & ~VIRTIO_STATUS_NEEDS_RESET) |
			   (old & VIRTIO_STATUS_NEEDS_RESET));
	dev->status = status;
	if ((status & VIRTIO_STATUS_DRIVER_OK) && !(old & VIRTIO_STATUS_DRIVER_OK)) {
		if (!(status & VIRTIO_STATUS_FEATURES_OK)) {
			virtio_broken(dev, 0, "DRIVER_OK without FEATURES_OK");
			return;
		}
		if (dev->ops->activate && dev->ops->activate(dev) < 0)
			virtio_broken(dev, 0, "activation failed");
	}
}
