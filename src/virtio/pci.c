/* Virtio modern PCI transport; see pci.h. Register layout: virtio 1.2
 * §4.1.4. BAR 0 (64-bit, 64 KiB):
 *   0x0000 common configuration    0x1000 ISR status
 *   0x2000 device configuration    0x3000 notifications (queue q at +4*q)
 *   0x4000 MSI-X table             0x6000 MSI-X PBA */
#include "virtio/pci.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define BAR_SIZE 0x10000
#define COMMON_OFF 0x0000
#define COMMON_LEN 0x38
#define ISR_OFF 0x1000
#define DEVICE_OFF 0x2000
#define NOTIFY_OFF 0x3000
#define NOTIFY_MULT 4
#define MSIX_TABLE_OFF 0x4000
#define MSIX_PBA_OFF 0x6000
#define REGION_LEN 0x1000

#define PCI_CAP_VENDOR 0x09
#define PCI_CAP_MSIX 0x11
#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000

/* Common configuration registers (§4.1.4.3). */
enum {
	REG_DFSELECT = 0x00, REG_DF = 0x04, REG_GFSELECT = 0x08, REG_GF = 0x0c,
	REG_MSIX_CONFIG = 0x10, REG_NUM_QUEUES = 0x12, REG_STATUS = 0x14,
	REG_CFG_GENERATION = 0x15, REG_Q_SELECT = 0x16, REG_Q_SIZE = 0x18,
	REG_Q_MSIX = 0x1a, REG_Q_ENABLE = 0x1c, REG_Q_NOTIFY_OFF = 0x1e,
	REG_Q_DESC = 0x20, REG_Q_DRIVER = 0x28, REG_Q_DEVICE = 0x30,
};

static uint16_t valid_vector(const struct virtio_pci *vp, uint16_t v)
{
	return v < vp->msix.nr ? v : MSIX_NO_VECTOR;
}

static void queue_interrupt(struct virtio_dev *dev, unsigned q)
{
	struct virtio_pci *vp = dev->transport;
	vp->isr |= 1;
	msix_fire(&vp->msix, vp->queue_vector[q]);
}

static void config_interrupt(struct virtio_dev *dev)
{
	struct virtio_pci *vp = dev->transport;
	vp->isr |= 2;
	vp->config_generation++;
	msix_fire(&vp->msix, vp->config_vector);
}

static void reset_transport(struct virtio_pci *vp)
{
	vp->dfselect = vp->gfselect = 0;
	vp->queue_select = 0;
	vp->config_vector = MSIX_NO_VECTOR;
	vp->isr = 0;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		vp->queue_vector[q] = MSIX_NO_VECTOR;
		vp->queue_size[q] = vp->dev->ops->queue_max;
		vp->queue_desc[q] = vp->queue_driver[q] = vp->queue_device[q] = 0;
		vp->queue_enabled[q] = false;
	}
}

static void enable_queue(struct virtio_pci *vp, unsigned q)
{
	struct virtio_dev *dev = vp->dev;
	if (vp->queue_enabled[q])
		return;
	if (vp->queue_size[q] > dev->ops->queue_max) {
		virtio_broken(dev, q, "queue size above the device's maximum");
		return;
	}
	int err = vq_init(&dev->vq[q], dev->mem, vp->queue_size[q], vp->queue_desc[q],
			  vp->queue_driver[q], vp->queue_device[q],
			  virtio_has(dev, VIRTIO_F_EVENT_IDX), virtio_has(dev, VIRTIO_F_INDIRECT_DESC));
	if (err) {
		virtio_broken(dev, q, "queue enabled with a bad size or ring address");
		return;
	}
	vp->queue_enabled[q] = true;
}

static uint64_t common_read(struct virtio_pci *vp, unsigned reg)
{
	struct virtio_dev *dev = vp->dev;
	unsigned q = vp->queue_select;
	bool qok = q < dev->ops->nr_queues;
	switch (reg) {
	case REG_DFSELECT: return vp->dfselect;
	case REG_DF: return vp->dfselect < 2 ? (uint32_t)(dev->host_features >> (32 * vp->dfselect)) : 0;
	case REG_GFSELECT: return vp->gfselect;
	case REG_GF: return vp->gfselect < 2 ? (uint32_t)(dev->features >> (32 * vp->gfselect)) : 0;
	case REG_MSIX_CONFIG: return vp->config_vector;
	case REG_NUM_QUEUES: return dev->ops->nr_queues;
	case REG_STATUS: return dev->status;
	case REG_CFG_GENERATION: return vp->config_generation;
	case REG_Q_SELECT: return vp->queue_select;
	case REG_Q_SIZE: return qok ? vp->queue_size[q] : 0;
	case REG_Q_MSIX: return qok ? vp->queue_vector[q] : MSIX_NO_VECTOR;
	case REG_Q_ENABLE: return qok && vp->queue_enabled[q];
	case REG_Q_NOTIFY_OFF: return qok ? q : 0;
	case REG_Q_DESC: return qok ? vp->queue_desc[q] : 0;
	case REG_Q_DRIVER: return qok ? vp->queue_driver[q] : 0;
	case REG_Q_DEVICE: return qok ? vp->queue_device[q] : 0;
	default: return 0;
	}
}

/* 64-bit queue addresses are written as two dwords (§4.1.3.1). */
static void set_half(uint64_t *field, unsigned half, uint32_t v)
{
	*field = half ? (*field & 0xffffffffull) | (uint64_t)v << 32
		      : (*field & ~0xffffffffull) | v;
}

static void common_write(struct virtio_pci *vp, unsigned reg, uint64_t v)
{
	struct virtio_dev *dev = vp->dev;
	unsigned q = vp->queue_select;
	/* Queue configuration is frozen once the queue or the driver is live. */
	bool qcfg = q < dev->ops->nr_queues && !vp->queue_enabled[q] &&
		    !(dev->status & VIRTIO_STATUS_DRIVER_OK);
	switch (reg) {
	case REG_DFSELECT: vp->dfselect = (uint32_t)v; break;
	case REG_GFSELECT: vp->gfselect = (uint32_t)v; break;
	case REG_GF:
		if (vp->gfselect < 2 && !(dev->status & VIRTIO_STATUS_FEATURES_OK))
			set_half(&dev->features, vp->gfselect, (uint32_t)v);
		break;
	case REG_MSIX_CONFIG: vp->config_vector = valid_vector(vp, (uint16_t)v); break;
	case REG_STATUS:
		virtio_set_status(dev, (uint8_t)v);
		/* Even while the back end drains, the driver's queue setup starts
		 * from scratch; kicks are ignored until the reset completes. */
		if ((uint8_t)v == 0)
			reset_transport(vp);
		break;
	case REG_Q_SELECT: vp->queue_select = (uint16_t)v; break;
	case REG_Q_SIZE:
		if (qcfg)
			vp->queue_size[q] = (uint16_t)v; /* checked when enabled */
		break;
	case REG_Q_MSIX:
		if (q < dev->ops->nr_queues)
			vp->queue_vector[q] = valid_vector(vp, (uint16_t)v);
		break;
	case REG_Q_ENABLE:
		if (qcfg && v == 1)
			enable_queue(vp, q);
		break;
	case REG_Q_DESC: case REG_Q_DESC + 4:
		if (qcfg) set_half(&vp->queue_desc[q], reg - REG_Q_DESC, (uint32_t)v);
		break;
	case REG_Q_DRIVER: case REG_Q_DRIVER + 4:
		if (qcfg) set_half(&vp->queue_driver[q], reg - REG_Q_DRIVER, (uint32_t)v);
		break;
	case REG_Q_DEVICE: case REG_Q_DEVICE + 4:
		if (qcfg) set_half(&vp->queue_device[q], reg - REG_Q_DEVICE, (uint32_t)v);
		break;
	default: /* read-only or unknown: ignored */
		break;
	}
}

/* Register widths (§4.1.4.3); 64-bit address registers take dword halves. */
static unsigned reg_width(unsigned off)
{
	switch (off) {
	case REG_STATUS: case REG_CFG_GENERATION: return 1;
	case REG_MSIX_CONFIG: case REG_NUM_QUEUES: case REG_Q_SELECT: case REG_Q_SIZE:
	case REG_Q_MSIX: case REG_Q_ENABLE: case REG_Q_NOTIFY_OFF: return 2;
	default: return off < COMMON_LEN && off % 4 == 0 ? 4 : 0;
	}
}

static void common_io(struct virtio_pci *vp, unsigned off, uint8_t *data, uint32_t len,
		      bool is_write)
{
	/* Split 8-byte accesses into dwords; otherwise the access must match a
	 * register exactly — anything else reads 0 and writes nothing. */
	if (len == 8 && off % 8 == 0 && off >= REG_Q_DESC && off < COMMON_LEN) {
		common_io(vp, off, data, 4, is_write);
		common_io(vp, off + 4, data + 4, 4, is_write);
		return;
	}
	if (reg_width(off) != len) {
		if (!is_write)
			memset(data, 0, len);
		log_ratelimited(LOG_DEBUG, "%s: bad common config access off=%#x len=%u",
				vp->dev->ops->name, off, len);
		return;
	}
	if (is_write) {
		uint64_t v = len == 1 ? data[0] : len == 2 ? get_le16(data) : get_le32(data);
		common_write(vp, off, v);
		return;
	}
	uint64_t v;
	if (off >= REG_Q_DESC) { /* one dword half of a 64-bit register */
		v = common_read(vp, off & ~4u);
		if (off & 4)
			v >>= 32;
	} else {
		v = common_read(vp, off);
	}
	if (len == 1)
		data[0] = (uint8_t)v;
	else if (len == 2)
		put_le16(data, (uint16_t)v);
	else
		put_le32(data, (uint32_t)v);
}

static void kick(struct virtio_pci *vp, unsigned q)
{
	uint64_t one = 1;
	if (write(vp->kick[q].src.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_ratelimited(LOG_WARN, "%s: kick eventfd: %s", vp->dev->ops->name,
				strerror(errno));
}

static void bar_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_pci *vp = opaque;
	struct virtio_dev *dev = vp->dev;
	if (off >= MSIX_PBA_OFF) {
		msix_pba_io(&vp->msix, off - MSIX_PBA_OFF, data, len, is_write);
		return;
	}
	if (off >= MSIX_TABLE_OFF) {
		msix_table_io(&vp->msix, off - MSIX_TABLE_OFF, data, len, is_write);
		return;
	}
	if (off >= NOTIFY_OFF) {
		/* Reached only when KVM's ioeventfd did not take the write. */
		unsigned q = (unsigned)(off - NOTIFY_OFF) / NOTIFY_MULT;
		if (is_write && q < dev->ops->nr_queues)
			kick(vp, q);
		else if (!is_write)
			memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&dev->lock);
	if (off < COMMON_OFF + COMMON_LEN) {
		common_io(vp, (unsigned)off, data, len, is_write);
	} else if (off == ISR_OFF && len == 1 && !is_write) {
		data[0] = vp->isr; /* read clears (§4.1.4.5) */
		vp->isr = 0;
	} else if (off >= DEVICE_OFF && off - DEVICE_OFF < dev->ops->config_size &&
		   len <= dev->ops->config_size - (off - DEVICE_OFF)) {
		uint32_t o = (uint32_t)(off - DEVICE_OFF);
		if (is_write && dev->ops->config_write)
			dev->ops->config_write(dev, o, data, len);
		else if (!is_write && dev->ops->config_read)
			dev->ops->config_read(dev, o, data, len);
		else if (!is_write)
			memset(data, 0, len);
	} else if (!is_write) {
		memset(data, 0, len);
	}
	pthread_mutex_unlock(&dev->lock);
}

static void on_kick(struct evloop_source *src, uint32_t events)
{
	struct virtio_pci_kick *k = (struct virtio_pci_kick *)src;
	struct virtio_dev *dev = k->vp->dev;
	uint64_t n;
	if (read(src->fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&dev->lock);
	if (dev->paused) {
		/* Served when the VM resumes (vmm_resume notifies every queue). */
	} else if ((dev->status & VIRTIO_STATUS_DRIVER_OK) && !dev->resetting &&
		   !(dev->status & VIRTIO_STATUS_NEEDS_RESET) && k->vp->queue_enabled[k->q]) {
		dev->kicks++;
		dev->ops->notify(dev, k->q);
	} else if (!(dev->status & VIRTIO_STATUS_DRIVER_OK) && !dev->resetting) {
		/* §3.1.1: no buffers are used before DRIVER_OK; the kick is lost,
		 * the driver kicks again once it has set it. */
		log_ratelimited(LOG_DEBUG, "%s: queue %u: kick before DRIVER_OK ignored",
				dev->ops->name, k->q);
	}
	pthread_mutex_unlock(&dev->lock);
}

static void cfg_written(struct pci_dev *pci, unsigned off, unsigned len)
{
	struct virtio_pci *vp = pci->opaque;
	unsigned ctrl = vp->msix_cap + 2;
	if (off < ctrl + 2 && off + len > ctrl) {
		uint16_t v = get_le16(pci->cfg + ctrl);
		msix_control(&vp->msix, v & MSIX_CTRL_ENABLE, v & MSIX_CTRL_MASKALL);
	}
}

static void add_virtio_cap(struct pci_dev *pci, uint8_t type, uint32_t off, uint32_t len,
			   uint8_t cap_len)
{
	uint8_t c = pci_add_cap(pci, PCI_CAP_VENDOR, cap_len);
	pci->cfg[c + 2] = cap_len;
	pci->cfg[c + 3] = type;
	pci->cfg[c + 4] = 0; /* BAR 0 */
	put_le32(pci->cfg + c + 8, off);
	put_le32(pci->cfg + c + 12, len);
	if (type == CAP_NOTIFY)
		put_le32(pci->cfg + c + 16, NOTIFY_MULT);
}

int virtio_pci_init(struct virtio_pci *vp, struct virtio_dev *dev, struct kvm *kvm,
		    struct evloop *loop)
{
	const struct virtio_ops *ops = dev->ops;
	memset(vp, 0, sizeof(*vp));
	if (ops->nr_queues == 0 || ops->nr_queues > VIRTIO_MAX_QUEUES ||
	    ops->config_size > REGION_LEN)
		return -EINVAL;
	vp->dev = dev;
	vp->kvm = kvm;
	vp->loop = loop;
	dev->transport = vp;
	dev->interrupt = queue_interrupt;
	dev->config_interrupt = config_interrupt;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		vp->kick[q].src.fd = -1;
	reset_transport(vp);

	struct pci_dev *pci = &vp->pci;
	pci_dev_init(pci, ops->name, 0x1af4, (uint16_t)(0x1040 + ops->device_id), ops->pci_class,
		     0x1af4, ops->device_id);
	pci->opaque = vp;
	pci->cfg_written = cfg_written;
	int err = pci_dev_set_bar(pci, 0, BAR_SIZE, bar_io, vp);
	if (err)
		return err;
	add_virtio_cap(pci, CAP_COMMON, COMMON_OFF, COMMON_LEN, 16);
	add_virtio_cap(pci, CAP_ISR, ISR_OFF, 1, 16);
	if (ops->config_size)
		add_virtio_cap(pci, CAP_DEVICE, DEVICE_OFF, ops->config_size, 16);
	add_virtio_cap(pci, CAP_NOTIFY, NOTIFY_OFF, NOTIFY_MULT * ops->nr_queues, 20);
	unsigned nr_vectors = ops->nr_queues + 1;
	vp->msix_cap = pci_add_cap(pci, PCI_CAP_MSIX, 12);
	put_le16(pci->cfg + vp->msix_cap + 2, (uint16_t)(nr_vectors - 1));
	put_le16(pci->wmask + vp->msix_cap + 2, MSIX_CTRL_ENABLE | MSIX_CTRL_MASKALL);
	put_le32(pci->cfg + vp->msix_cap + 4, MSIX_TABLE_OFF); /* BIR 0 */
	put_le32(pci->cfg + vp->msix_cap + 8, MSIX_PBA_OFF);
	err = msix_init(&vp->msix, kvm, nr_vectors);
	if (err)
		return err;
	for (unsigned q = 0; q < ops->nr_queues; q++) {
		struct virtio_pci_kick *k = &vp->kick[q];
		k->vp = vp;
		k->q = q;
		k->src.fn = on_kick;
		k->src.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (k->src.fd < 0)
			return -errno; /* the caller runs virtio_pci_fini */
		err = evloop_add(loop, &k->src, EPOLLIN);
		if (err)
			return err;
	}
	return 0;
}

int virtio_pci_attach(struct virtio_pci *vp, struct pci_bus *pb)
{
	int err = pci_bus_add(pb, &vp->pci);
	if (err)
		return err;
	uint64_t notify = vp->pci.bar[0].addr + NOTIFY_OFF;
	for (unsigned q = 0; q < vp->dev->ops->nr_queues; q++) {
		err = kvm_ioeventfd(vp->kvm, notify + NOTIFY_MULT * q, vp->kick[q].src.fd, false,
				    false);
		if (err)
			return err;
	}
	vp->ioeventfds = true;
	return 0;
}

void virtio_pci_fini(struct virtio_pci *vp)
{
	if (!vp->dev)
		return;
	uint64_t notify = vp->pci.bar[0].addr + NOTIFY_OFF;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		int fd = vp->kick[q].src.fd;
		if (fd < 0)
			continue;
		if (vp->ioeventfds)
			kvm_ioeventfd(vp->kvm, notify + NOTIFY_MULT * q, fd, false, true);
		evloop_del(vp->loop, &vp->kick[q].src);
		close(fd);
	}
	msix_fini(&vp->msix);
}
