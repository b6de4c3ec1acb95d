/* Device sections; see internal.h. What each holds:
 *   serial   the 16550's registers and its receive buffer
 *   i8042    command byte, pending commands, the output queue
 *   pm       nothing (the ACPI PM registers keep no state): present so a
 *            stream without it is recognised as incomplete
 *   pci-bus  the 0xCF8 latch and which slots hold a device
 *   pci[s]   slot s's configuration space, and its MSI-X table and PBA
 *   virtio[s] the transport (status, features, selectors, vectors, queue
 *            configuration) and each queue's device-side indexes, plus the
 *            device's configuration space, which must equal what the rebuilt
 *            device shows (same disk size, same features)
 * Validation rules: read-only PCI configuration bits must match the rebuilt
 * device; MSI-X vectors within the table; queue sizes powers of two no
 * larger than the device offers; enabled rings inside guest memory (vq_init's
 * checks); the used index must match the ring in guest memory. */
#include <endian.h>
#include <string.h>

#include "snap/internal.h"
#include "util/log.h"
#include "util/util.h"

#define REGION_MAX_CONFIG 0x1000 /* virtio_pci_init refuses larger */
#define MSIX_CTRL_ENABLE 0x8000
#define MSIX_CTRL_MASKALL 0x4000

static void save_serial(const struct serial8250 *s, struct snap_writer *w)
{
	snap_begin(w, SNAP_SERIAL, 1, 0);
	const uint8_t f[] = { s->ier, s->lcr, s->mcr, s->scr, s->fcr, s->dll, s->dlm };
	snap_put_bytes(w, f, sizeof(f));
	snap_put_u8(w, s->thr_pending);
	snap_put_u8(w, (uint8_t)s->irq_level);
	snap_put_u16(w, (uint16_t)s->rx_len);
	for (size_t i = 0; i < s->rx_len; i++)
		snap_put_u8(w, s->rx[(s->rx_head + i) % SERIAL_RX_SIZE]);
	snap_end(w);
}

static int load_serial(struct serial8250 *s, struct snap_reader *r, bool apply)
{
	struct snap_section sec;
	if (snap_find(r, SNAP_SERIAL, 0, 1, &sec))
		return -EBADMSG;
	uint8_t f[7], rx[SERIAL_RX_SIZE];
	snap_bytes(&sec, "registers", f, sizeof(f));
	bool thr = snap_bool(&sec, "thr_pending"), level = snap_bool(&sec, "irq_level");
	uint16_t n = snap_u16(&sec, "rx_len");
	if (n > SERIAL_RX_SIZE)
		return snap_fail(&sec, "rx_len", "%u (the buffer holds %u)", n, SERIAL_RX_SIZE);
	snap_bytes(&sec, "rx", rx, n);
	if (f[0] & ~0x0f)
		snap_fail(&sec, "ier", "%#x", f[0]);
	if (f[2] & ~0x1f)
		snap_fail(&sec, "mcr", "%#x", f[2]);
	if (f[4] & ~0xc9)
		snap_fail(&sec, "fcr", "%#x", f[4]);
	if (snap_done(&sec) || !apply)
		return snap_status(r);
	pthread_mutex_lock(&s->lock);
	s->ier = f[0];
	s->lcr = f[1];
	s->mcr = f[2];
	s->scr = f[3];
	s->fcr = f[4];
	s->dll = f[5];
	s->dlm = f[6];
	s->thr_pending = thr;
	s->irq_level = level; /* the line's state is in the restored irqchip */
	memcpy(s->rx, rx, n);
	s->rx_head = 0;
	s->rx_len = n;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void save_i8042(const struct i8042 *k, struct snap_writer *w)
{
	snap_begin(w, SNAP_I8042, 1, 0);
	snap_put_u8(w, k->ctr);
	snap_put_u8(w, k->pending_cmd);
	snap_put_u8(w, k->kbd_cmd);
	snap_put_u8(w, k->last_was_cmd);
	snap_put_u8(w, (uint8_t)k->irq_level);
	snap_put_u8(w, (uint8_t)k->q_len);
	for (unsigned i = 0; i < k->q_len; i++)
		snap_put_u8(w, k->queue[(k->q_head + i) % I8042_QUEUE]);
	snap_end(w);
}

static int load_i8042(struct i8042 *k, struct snap_reader *r, bool apply)
{
	struct snap_section s;
	if (snap_find(r, SNAP_I8042, 0, 1, &s))
		return -EBADMSG;
	uint8_t ctr = snap_u8(&s, "ctr"), pending = snap_u8(&s, "pending_cmd");
	uint8_t kbd = snap_u8(&s, "kbd_cmd");
	bool last = snap_bool(&s, "last_was_cmd"), level = snap_bool(&s, "irq_level");
	uint8_t n = snap_u8(&s, "queue_len"), q[I8042_QUEUE];
	if (n > I8042_QUEUE)
		return snap_fail(&s, "queue_len", "%u (the queue holds %u)", n, I8042_QUEUE);
	snap_bytes(&s, "queue", q, n);
	if (snap_done(&s) || !apply)
		return snap_status(r);
	pthread_mutex_lock(&k->lock);
	k->ctr = ctr;
	k->pending_cmd = pending;
	k->kbd_cmd = kbd;
	k->last_was_cmd = last;
	k->irq_level = level;
	memcpy(k->queue, q, n);
	k->q_head = 0;
	k->q_len = n;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

/* The virtio transport in slot's device, or NULL (the host bridge). */
static struct virtio_pci *vpci_of(const struct snap_vm *vm, const struct pci_dev *dev)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++)
		if (&vm->vpci[i].pci == dev)
			return &vm->vpci[i];
	return NULL;
}

static void save_pci(const struct snap_vm *vm, struct snap_writer *w)
{
	struct pci_bus *pb = vm->pci;
	uint32_t slots = 0;
	for (unsigned i = 0; i < PCI_SLOTS; i++)
		if (pb->slot[i])
			slots |= 1u << i;
	snap_begin(w, SNAP_PCI_BUS, 1, 0);
	snap_put_u32(w, pb->address);
	snap_put_u32(w, slots);
	snap_end(w);
	for (unsigned i = 0; i < PCI_SLOTS; i++) {
		const struct pci_dev *dev = pb->slot[i];
		if (!dev)
			continue;
		struct virtio_pci *vp = vpci_of(vm, dev);
		snap_begin(w, SNAP_PCI_DEV, 1, i);
		snap_put_bytes(w, dev->cfg, PCI_CFG_SIZE);
		const struct msix *m = vp ? &vp->msix : NULL;
		snap_put_u32(w, m ? m->nr : 0);
		if (m) {
			snap_put_u64(w, m->pending);
			for (unsigned v = 0; v < m->nr; v++) {
				snap_put_u32(w, m->v[v].addr_lo);
				snap_put_u32(w, m->v[v].addr_hi);
				snap_put_u32(w, m->v[v].data);
				snap_put_u32(w, m->v[v].ctrl);
			}
		}
		snap_end(w);
	}
}

static int load_pci_dev(const struct snap_vm *vm, struct snap_reader *r, unsigned slot,
			struct pci_dev *dev, bool apply)
{
	struct snap_section s;
	if (snap_find(r, SNAP_PCI_DEV, slot, 1, &s))
		return -EBADMSG;
	uint8_t cfg[PCI_CFG_SIZE];
	snap_bytes(&s, "config", cfg, sizeof(cfg));
	for (unsigned i = 0; i < PCI_CFG_SIZE && !r->failed; i++)
		if ((cfg[i] ^ dev->cfg[i]) & ~dev->wmask[i])
			return snap_fail(&s, "config", "read-only byte %#x is %#x, the rebuilt %s "
				         "has %#x (a different device?)", i, cfg[i], dev->name,
					 dev->cfg[i]);
	struct virtio_pci *vp = vpci_of(vm, dev);
	struct msix *m = vp ? &vp->msix : NULL;
	uint32_t nr = snap_u32(&s, "msix.vectors");
	if (!r->failed && nr != (m ? m->nr : 0))
		return snap_fail(&s, "msix.vectors", "%u, the rebuilt device has %u", nr,
				 m ? m->nr : 0);
	struct msix_vector vec[MSIX_MAX_VECTORS];
	uint64_t pending = 0;
	if (m) {
		pending = snap_u64(&s, "msix.pending");
		if (nr < 64 && (pending >> nr))
			snap_fail(&s, "msix.pending", "%#llx has bits beyond vector %u",
				  (unsigned long long)pending, nr - 1);
		for (unsigned v = 0; v < nr; v++) {
			vec[v].addr_lo = snap_u32(&s, "msix.addr_lo");
			vec[v].addr_hi = snap_u32(&s, "msix.addr_hi");
			vec[v].data = snap_u32(&s, "msix.data");
			vec[v].ctrl = snap_u32(&s, "msix.ctrl");
			if (vec[v].ctrl & ~1u)
				snap_fail(&s, "msix.ctrl", "vector %u: %#x", v, vec[v].ctrl);
		}
	}
	if (snap_done(&s) || !apply)
		return snap_status(r);
	memcpy(dev->cfg, cfg, sizeof(cfg));
	if (!m)
		return 0;
	uint16_t ctrl = get_le16(dev->cfg + vp->msix_cap + 2);
	pthread_mutex_lock(&m->lock);
	for (unsigned v = 0; v < nr; v++) {
		m->v[v].addr_lo = vec[v].addr_lo;
		m->v[v].addr_hi = vec[v].addr_hi;
		m->v[v].data = vec[v].data;
		m->v[v].ctrl = vec[v].ctrl;
		m->v[v].routed = false; /* KVM's route is set at the first delivery */
	}
	m->pending = pending;
	pthread_mutex_unlock(&m->lock);
	msix_control(m, ctrl & MSIX_CTRL_ENABLE, ctrl & MSIX_CTRL_MASKALL);
	return 0;
}

static int load_pci(const struct snap_vm *vm, struct snap_reader *r, bool apply)
{
	struct pci_bus *pb = vm->pci;
	struct snap_section s;
	if (snap_find(r, SNAP_PCI_BUS, 0, 1, &s))
		return -EBADMSG;
	uint32_t address = snap_u32(&s, "address"), slots = snap_u32(&s, "slots"), ours = 0;
	for (unsigned i = 0; i < PCI_SLOTS; i++)
		if (pb->slot[i])
			ours |= 1u << i;
	if (!r->failed && address & ~0x80fffffcu)
		return snap_fail(&s, "address", "%#x", address);
	if (!r->failed && slots != ours)
		return snap_fail(&s, "slots", "devices in slots %#x, the config builds %#x", slots,
				 ours);
	if (snap_done(&s))
		return -EBADMSG;
	for (unsigned i = 0; i < PCI_SLOTS; i++)
		if (pb->slot[i] && load_pci_dev(vm, r, i, pb->slot[i], apply))
			return snap_status(r) ? snap_status(r) : -EIO;
	if (apply)
		pb->address = address;
	return 0;
}

/* ------------------------------------------------------------ virtio */

static void save_virtio(struct virtio_pci *vp, unsigned slot, struct snap_writer *w)
{
	struct virtio_dev *dev = vp->dev;
	const struct virtio_ops *ops = dev->ops;
	snap_begin(w, SNAP_VIRTIO, 1, slot);
	snap_put_u16(w, ops->device_id);
	snap_put_u64(w, dev->host_features);
	snap_put_u64(w, dev->features);
	snap_put_u8(w, dev->status);
	snap_put_u32(w, vp->dfselect);
	snap_put_u32(w, vp->gfselect);
	snap_put_u16(w, vp->queue_select);
	snap_put_u16(w, vp->config_vector);
	snap_put_u8(w, vp->isr);
	snap_put_u8(w, vp->config_generation);
	snap_put_u16(w, (uint16_t)ops->nr_queues);
	for (unsigned q = 0; q < ops->nr_queues; q++) {
		snap_put_u16(w, vp->queue_size[q]);
		snap_put_u16(w, vp->queue_vector[q]);
		snap_put_u64(w, vp->queue_desc[q]);
		snap_put_u64(w, vp->queue_driver[q]);
		snap_put_u64(w, vp->queue_device[q]);
		snap_put_u8(w, vp->queue_enabled[q]);
		snap_put_u16(w, dev->vq[q].last_avail);
		snap_put_u16(w, dev->vq[q].used_idx);
		snap_put_u8(w, dev->vq[q].broken);
	}
	uint8_t cfg[REGION_MAX_CONFIG] = { 0 };
	if (ops->config_read && ops->config_size)
		ops->config_read(dev, 0, cfg, ops->config_size);
	snap_put_u32(w, ops->config_size);
	snap_put_bytes(w, cfg, ops->config_size);
	snap_end(w);
}

struct vq_saved {
	uint16_t size, vector, last_avail, used_idx;
	uint64_t desc, driver, device;
	bool enabled, broken;
};

static bool valid_vector(const struct virtio_pci *vp, uint16_t v)
{
	return v == MSIX_NO_VECTOR || v < vp->msix.nr;
}

static int load_virtio(struct virtio_pci *vp, unsigned slot, struct snap_reader *r, bool apply)
{
	struct virtio_dev *dev = vp->dev;
	const struct virtio_ops *ops = dev->ops;
	struct snap_section s;
	if (snap_find(r, SNAP_VIRTIO, slot, 1, &s))
		return -EBADMSG;
	uint16_t id = snap_u16(&s, "device_id");
	if (!r->failed && id != ops->device_id)
		return snap_fail(&s, "device_id", "%u, the rebuilt device is %s", id, ops->name);
	uint64_t host = snap_u64(&s, "host_features"), features = snap_u64(&s, "features");
	if (!r->failed && host != dev->host_features)
		return snap_fail(&s, "host_features", "%#llx, the rebuilt %s offers %#llx",
				 (unsigned long long)host, ops->name,
				 (unsigned long long)dev->host_features);
	if (!r->failed && (features & ~host))
		return snap_fail(&s, "features", "%#llx were never offered",
				 (unsigned long long)(features & ~host));
	uint8_t status = snap_u8(&s, "status");
	if (!r->failed && (status & 0x30))
		return snap_fail(&s, "status", "%#x has undefined bits", status);
	if (!r->failed && (status & VIRTIO_STATUS_DRIVER_OK) &&
	    !(status & VIRTIO_STATUS_FEATURES_OK))
		return snap_fail(&s, "status", "DRIVER_OK without FEATURES_OK");
	uint32_t dfselect = snap_u32(&s, "dfselect"), gfselect = snap_u32(&s, "gfselect");
	uint16_t qsel = snap_u16(&s, "queue_select"), cvec = snap_u16(&s, "config_vector");
	uint8_t isr = snap_u8(&s, "isr"), gen = snap_u8(&s, "config_generation");
	if (!r->failed && !valid_vector(vp, cvec))
		return snap_fail(&s, "config_vector", "%u (the device has %u vectors)", cvec,
				 vp->msix.nr);
	if (!r->failed && isr > 3)
		return snap_fail(&s, "isr", "%#x", isr);
	uint16_t nq = snap_u16(&s, "queues");
	if (!r->failed && nq != ops->nr_queues)
		return snap_fail(&s, "queues", "%u, %s has %u", nq, ops->name, ops->nr_queues);
	struct vq_saved q[VIRTIO_MAX_QUEUES] = { 0 };
	for (unsigned i = 0; i < nq && !r->failed; i++) {
		q[i].size = snap_u16(&s, "queue.size");
		q[i].vector = snap_u16(&s, "queue.vector");
		q[i].desc = snap_u64(&s, "queue.desc");
		q[i].driver = snap_u64(&s, "queue.driver");
		q[i].device = snap_u64(&s, "queue.device");
		q[i].enabled = snap_bool(&s, "queue.enabled");
		q[i].last_avail = snap_u16(&s, "queue.last_avail");
		q[i].used_idx = snap_u16(&s, "queue.used_idx");
		q[i].broken = snap_bool(&s, "queue.broken");
		if (r->failed)
			break;
		if (!valid_vector(vp, q[i].vector))
			return snap_fail(&s, "queue.vector", "queue %u: %u (the device has %u vectors)",
					 i, q[i].vector, vp->msix.nr);
		if (q[i].size > ops->queue_max || (q[i].enabled && (q[i].size == 0 ||
						   (q[i].size & (q[i].size - 1)))))
			return snap_fail(&s, "queue.size", "queue %u: %u (a power of two, at most %u)",
					 i, q[i].size, ops->queue_max);
		if (!q[i].enabled)
			continue;
		/* The same checks as a driver's enable: rings aligned, inside RAM. */
		struct virtq probe;
		memset(&probe, 0, sizeof(probe));
		if (vq_init(&probe, dev->mem, q[i].size, q[i].desc, q[i].driver, q[i].device, false,
			    false))
			return snap_fail(&s, "queue.desc", "queue %u: rings at %#llx/%#llx/%#llx are "
					 "not inside guest memory", i, (unsigned long long)q[i].desc,
					 (unsigned long long)q[i].driver,
					 (unsigned long long)q[i].device);
		uint16_t ring_used = 0;
		if (guest_mem_read(dev->mem, q[i].device + 2, &ring_used, 2) == 0 &&
		    le16toh(ring_used) != q[i].used_idx)
			return snap_fail(&s, "queue.used_idx", "queue %u: %u, but the used ring in "
					 "guest memory says %u", i, q[i].used_idx, le16toh(ring_used));
	}
	uint32_t csize = snap_u32(&s, "config_size");
	if (!r->failed && csize != ops->config_size)
		return snap_fail(&s, "config_size", "%u, %s has %u", csize, ops->name,
				 ops->config_size);
	uint8_t saved[REGION_MAX_CONFIG], now[REGION_MAX_CONFIG] = { 0 };
	snap_bytes(&s, "config", saved, r->failed ? 0 : csize);
	if (!r->failed && ops->config_read && csize) {
		ops->config_read(dev, 0, now, csize);
		if (memcmp(saved, now, csize))
			return snap_fail(&s, "config", "%s's configuration differs from the rebuilt "
					 "device's (a different disk size?)", ops->name);
	}
	if (snap_done(&s) || !apply)
		return snap_status(r);
	pthread_mutex_lock(&dev->lock);
	dev->features = features;
	dev->status = status;
	dev->resetting = false;
	vp->dfselect = dfselect;
	vp->gfselect = gfselect;
	vp->queue_select = qsel;
	vp->config_vector = cvec;
	vp->isr = isr;
	vp->config_generation = gen;
	int err = 0;
	for (unsigned i = 0; i < nq; i++) {
		vp->queue_size[i] = q[i].size;
		vp->queue_vector[i] = q[i].vector;
		vp->queue_desc[i] = q[i].desc;
		vp->queue_driver[i] = q[i].driver;
		vp->queue_device[i] = q[i].device;
		vp->queue_enabled[i] = q[i].enabled;
		struct virtq *vq = &dev->vq[i];
		vq_reset(vq);
		if (!q[i].enabled)
			continue;
		err = vq_init(vq, dev->mem, q[i].size, q[i].desc, q[i].driver, q[i].device,
			      virtio_has(dev, VIRTIO_F_EVENT_IDX),
			      virtio_has(dev, VIRTIO_F_INDIRECT_DESC));
		if (err)
			break;
		vq->last_avail = q[i].last_avail;
		vq->used_idx = q[i].used_idx;
		vq->signalled_valid = false; /* what the driver last saw is unknown */
		vq->broken = q[i].broken;
	}
	/* The device's own view of DRIVER_OK (a tap's offloads follow the
	 * features the driver accepted): as when the driver set it. */
	if (!err && (status & VIRTIO_STATUS_DRIVER_OK) && !(status & VIRTIO_STATUS_NEEDS_RESET) &&
	    ops->activate && ops->activate(dev) < 0)
		virtio_broken(dev, 0, "activation failed");
	pthread_mutex_unlock(&dev->lock);
	if (err)
		return snap_fail(&s, "queue", "cannot set up a queue: %s", strerror(-err));
	return 0;
}

int snap_save_devices(const struct snap_vm *vm, struct snap_writer *w)
{
	save_serial(vm->serial, w);
	save_i8042(vm->i8042, w);
	snap_begin(w, SNAP_PM, 1, 0);
	snap_end(w);
	save_pci(vm, w);
	for (unsigned i = 0; i < PCI_SLOTS; i++) {
		struct virtio_pci *vp = vm->pci->slot[i] ? vpci_of(vm, vm->pci->slot[i]) : NULL;
		if (vp)
			save_virtio(vp, i, w);
	}
	return w->err;
}

int snap_load_devices(const struct snap_vm *vm, struct snap_reader *r, bool apply)
{
	struct snap_section s;
	if (load_serial(vm->serial, r, apply) || load_i8042(vm->i8042, r, apply))
		return -EBADMSG;
	if (snap_find(r, SNAP_PM, 0, 1, &s) || snap_done(&s))
		return -EBADMSG;
	int err = load_pci(vm, r, apply);
	if (err)
		return err;
	for (unsigned i = 0; i < PCI_SLOTS; i++) {
		struct virtio_pci *vp = vm->pci->slot[i] ? vpci_of(vm, vm->pci->slot[i]) : NULL;
		if (vp && (err = load_virtio(vp, i, r, apply)))
			return err;
	}
	return 0;
}
