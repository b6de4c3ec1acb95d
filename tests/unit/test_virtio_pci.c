/* Unit tests for src/virtio/pci.c and src/virtio/virtio.c: the virtio 1.x
 * modern PCI transport (virtio 1.2 §4.1.4) in front of a fake device with
 * two queues and 8 bytes of configuration, over a static guest RAM, with a
 * real event loop for the queue kicks and kvm NULL (MSI-X deliveries are
 * counted in vp.msix.fired, and virtio_pci_attach, which needs KVM for its
 * ioeventfds, is not used: BAR 0 is driven through its handler, or placed on
 * a real PCI bus with pci_bus_add where the test needs config space). */
#include "virtio/pci.h"
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

#include <sys/epoll.h>

/* ---- KVM is never called with kvm NULL ---- */

int kvm_msi_route_alloc(struct kvm *kvm)
{
	fail_msg("kvm_msi_route_alloc called");
	return -1;
}

int kvm_msi_route_set(struct kvm *kvm, unsigned gsi, uint64_t address, uint32_t data)
{
	fail_msg("kvm_msi_route_set called");
	return -1;
}

int kvm_irqfd(const struct kvm *kvm, int fd, unsigned gsi, bool deassign)
{
	fail_msg("kvm_irqfd called");
	return -1;
}

int kvm_ioeventfd(const struct kvm *kvm, uint64_t addr, int fd, bool pio, bool deassign)
{
	fail_msg("kvm_ioeventfd called");
	return -1;
}

/* ---- guest RAM ---- */

#define RAM_GPA	 0x100000ull
#define RAM_SIZE 0x10000u
static uint8_t ram[RAM_SIZE] __attribute__((aligned(4096)));
static struct guest_mem mem;

#define DESC_GPA(q)  (RAM_GPA + 0x1000 + 0x3000ull * (q))
#define AVAIL_GPA(q) (RAM_GPA + 0x2000 + 0x3000ull * (q))
#define USED_GPA(q)  (RAM_GPA + 0x3000 + 0x3000ull * (q))

/* ---- the fake device ---- */

#define NQ	  2
#define QMAX	  16
#define CFG_SIZE  8
#define DEV_FEATS (1ull << 0 | 1ull << 5)
#define ALL_FEATS                                                                                  \
	(DEV_FEATS | 1ull << VIRTIO_F_INDIRECT_DESC | 1ull << VIRTIO_F_EVENT_IDX |                 \
	 1ull << VIRTIO_F_VERSION_1)

struct fake {
	struct virtio_dev dev;
	uint8_t cfg[CFG_SIZE];
	unsigned notified[NQ];
	unsigned resets, activates, cfg_reads, cfg_writes;
	unsigned in_flight; /* what reset returns */
	int activate_ret;
	uint32_t last_woff, last_wlen;
};

static struct fake f;

static void assert_locked(struct virtio_dev *dev)
{
	if (pthread_mutex_trylock(&dev->lock) == 0) {
		pthread_mutex_unlock(&dev->lock);
		fail_msg("device callback without the device lock");
	}
}

static void fake_config_read(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	assert_locked(dev);
	assert_true(off + len <= CFG_SIZE);
	f.cfg_reads++;
	memcpy(data, f.cfg + off, len);
}

static void fake_config_write(struct virtio_dev *dev, uint32_t off, const uint8_t *data,
			      uint32_t len)
{
	assert_locked(dev);
	assert_true(off + len <= CFG_SIZE);
	f.cfg_writes++;
	f.last_woff = off;
	f.last_wlen = len;
	memcpy(f.cfg + off, data, len);
}

static void fake_notify(struct virtio_dev *dev, unsigned q)
{
	assert_locked(dev);
	assert_true(q < NQ);
	f.notified[q]++;
}

static unsigned fake_reset(struct virtio_dev *dev)
{
	assert_locked(dev);
	f.resets++;
	return f.in_flight;
}

static int fake_activate(struct virtio_dev *dev)
{
	assert_locked(dev);
	f.activates++;
	return f.activate_ret;
}

static const struct virtio_ops fake_ops = {
	.name = "fake",
	.device_id = 26,
	.pci_class = 0xff0000,
	.nr_queues = NQ,
	.queue_max = QMAX,
	.config_size = CFG_SIZE,
	.config_read = fake_config_read,
	.config_write = fake_config_write,
	.notify = fake_notify,
	.reset = fake_reset,
	.activate = fake_activate,
};

/* ---- fixture ---- */

static struct evloop loop;
static struct virtio_pci vp;
static unsigned fds_before;

static int setup(void **state)
{
	fds_before = unit_open_fds();
	memset(ram, 0, sizeof(ram));
	const struct guest_region r = {.gpa = RAM_GPA, .size = RAM_SIZE, .hva = ram};
	if (guest_mem_init_static(&mem, &r, 1) || evloop_init(&loop))
		return -1;
	memset(&f, 0, sizeof(f));
	for (unsigned i = 0; i < CFG_SIZE; i++)
		f.cfg[i] = (uint8_t)(0xc0 + i);
	virtio_dev_init(&f.dev, &fake_ops, &f, &mem, DEV_FEATS);
	if (virtio_pci_init(&vp, &f.dev, NULL, &loop))
		return -1;
	return unit_log_begin(state);
}

static int teardown(void **state)
{
	virtio_pci_fini(&vp);
	virtio_dev_fini(&f.dev);
	evloop_fini(&loop);
	unit_log_end(state);
	if (unit_open_fds() != fds_before)
		fail_msg("file descriptors leaked");
	return 0;
}

/* ---- BAR 0 through its handler ---- */

enum {
	DFSELECT = 0x00,
	DF = 0x04,
	GFSELECT = 0x08,
	GF = 0x0c,
	MSIX_CONFIG = 0x10,
	NUM_QUEUES = 0x12,
	STATUS = 0x14,
	CFG_GEN = 0x15,
	Q_SELECT = 0x16,
	Q_SIZE = 0x18,
	Q_MSIX = 0x1a,
	Q_ENABLE = 0x1c,
	Q_NOTIFY_OFF = 0x1e,
	Q_DESC = 0x20,
	Q_DRIVER = 0x28,
	Q_DEVICE = 0x30,
	ISR = 0x1000,
	DEVCFG = 0x2000,
	NOTIFY = 0x3000,
	MSIX_TABLE = 0x4000,
	MSIX_PBA = 0x6000,
};

#define S_ACK  VIRTIO_STATUS_ACKNOWLEDGE
#define S_DRV  VIRTIO_STATUS_DRIVER
#define S_FOK  VIRTIO_STATUS_FEATURES_OK
#define S_DOK  VIRTIO_STATUS_DRIVER_OK
#define S_NRST VIRTIO_STATUS_NEEDS_RESET

static uint64_t rd(uint64_t off, uint32_t len)
{
	uint8_t d[8];
	memset(d, 0xee, sizeof(d));
	vp.pci.bar[0].fn(vp.pci.bar[0].opaque, off, d, len, false);
	uint64_t v = 0;
	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

static void wr(uint64_t off, uint32_t len, uint64_t v)
{
	uint8_t d[8];
	put_le64(d, v);
	vp.pci.bar[0].fn(vp.pci.bar[0].opaque, off, d, len, true);
}

static uint8_t status(void)
{
	return (uint8_t)rd(STATUS, 1);
}

static void set_status(uint8_t s)
{
	wr(STATUS, 1, s);
}

static uint64_t device_features(void)
{
	wr(DFSELECT, 4, 0);
	uint64_t lo = rd(DF, 4);
	wr(DFSELECT, 4, 1);
	return lo | rd(DF, 4) << 32;
}

static void write_features(uint64_t feats)
{
	wr(GFSELECT, 4, 0);
	wr(GF, 4, (uint32_t)feats);
	wr(GFSELECT, 4, 1);
	wr(GF, 4, (uint32_t)(feats >> 32));
}

static uint64_t read_features(void)
{
	wr(GFSELECT, 4, 0);
	uint64_t lo = rd(GF, 4);
	wr(GFSELECT, 4, 1);
	return lo | rd(GF, 4) << 32;
}

/* §3.1.1 steps 1-6; returns the status read back. */
static uint8_t negotiate(uint64_t feats)
{
	set_status(0);
	set_status(S_ACK);
	set_status(S_ACK | S_DRV);
	write_features(feats);
	set_status(S_ACK | S_DRV | S_FOK);
	return status();
}

static void queue_config(unsigned q, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(Q_SELECT, 2, q);
	wr(Q_SIZE, 2, size);
	wr(Q_DESC, 4, (uint32_t)desc);
	wr(Q_DESC + 4, 4, (uint32_t)(desc >> 32));
	wr(Q_DRIVER, 4, (uint32_t)avail);
	wr(Q_DRIVER + 4, 4, (uint32_t)(avail >> 32));
	wr(Q_DEVICE, 4, (uint32_t)used);
	wr(Q_DEVICE + 4, 4, (uint32_t)(used >> 32));
}

static void queue_setup(unsigned q, uint16_t size)
{
	queue_config(q, size, DESC_GPA(q), AVAIL_GPA(q), USED_GPA(q));
	wr(Q_ENABLE, 2, 1);
}

/* The driver is up: features accepted, both queues live, DRIVER_OK. */
static void bring_up(void)
{
	assert_int_equal(negotiate(1ull << VIRTIO_F_VERSION_1 | 1), S_ACK | S_DRV | S_FOK);
	queue_setup(0, 8);
	queue_setup(1, 4);
	set_status(S_ACK | S_DRV | S_FOK | S_DOK);
	assert_int_equal(status(), S_ACK | S_DRV | S_FOK | S_DOK);
}

/* Dispatches what the event loop has ready now; returns the count. */
static int run_loop(void)
{
	struct epoll_event ev[8];
	int n = epoll_wait(loop.epfd, ev, 8, 0);
	assert_true(n >= 0);
	for (int i = 0; i < n; i++) {
		struct evloop_source *src = ev[i].data.ptr;
		src->fn(src, ev[i].events);
	}
	return n;
}

/* The guest's kick as the ioeventfd delivers it: the eventfd, then the source. */
static void kick_fd(unsigned q)
{
	uint64_t one = 1;
	assert_int_equal(write(vp.kick[q].src.fd, &one, sizeof(one)), sizeof(one));
	vp.kick[q].src.fn(&vp.kick[q].src, EPOLLIN);
}

/* ---- init ---- */

static void test_init_rejects(void **state)
{
	struct virtio_ops ops = fake_ops;
	struct virtio_dev d;
	struct virtio_pci x;
	ops.nr_queues = 0;
	virtio_dev_init(&d, &ops, NULL, &mem, 0);
	assert_int_equal(virtio_pci_init(&x, &d, NULL, &loop), -EINVAL);
	ops.nr_queues = VIRTIO_MAX_QUEUES + 1;
	assert_int_equal(virtio_pci_init(&x, &d, NULL, &loop), -EINVAL);
	ops.nr_queues = 1;
	ops.config_size = 0x1001;
	assert_int_equal(virtio_pci_init(&x, &d, NULL, &loop), -EINVAL);
	virtio_pci_fini(&x); /* after a refusal: nothing to undo, nothing closed */
	virtio_dev_fini(&d);
}

/* The PCI function a driver finds (virtio 1.2 §4.1.2, §4.1.4). */
static void test_pci_function(void **state)
{
	const uint8_t *cfg = vp.pci.cfg;
	assert_int_equal(get_le16(cfg + PCI_VENDOR_ID), 0x1af4);
	assert_int_equal(get_le16(cfg + PCI_DEVICE_ID), 0x1040 + 26);
	assert_int_equal(get_le16(cfg + PCI_SUBSYS_ID), 26);
	assert_int_equal(cfg[PCI_REVISION], 1); /* modern-only devices: >= 1 */
	assert_int_equal(vp.pci.bar[0].size, 0x10000);
	assert_true(vp.pci.bar[0].is64);

	/* Walk the capabilities: four virtio structures and MSI-X. */
	const struct {
		uint8_t type;
		uint32_t off, len;
	} want[] = {{1, 0x0000, 0x38}, {3, 0x1000, 1}, {4, 0x2000, CFG_SIZE}, {2, 0x3000, 4 * NQ}};
	unsigned n = 0, at = cfg[PCI_CAP_PTR], msix = 0;
	assert_true(get_le16(cfg + PCI_STATUS) & PCI_STATUS_CAP_LIST);
	while (at) {
		assert_in_range(n, 0, 4);
		if (cfg[at] == 0x09) {
			assert_int_equal(cfg[at + 3], want[n].type);
			assert_int_equal(cfg[at + 4], 0); /* BAR 0 */
			assert_int_equal(get_le32(cfg + at + 8), want[n].off);
			assert_int_equal(get_le32(cfg + at + 12), want[n].len);
			assert_int_equal(cfg[at + 2], want[n].type == 2 ? 20 : 16);
			if (want[n].type == 2)
				assert_int_equal(get_le32(cfg + at + 16), 4); /* multiplier */
		} else {
			assert_int_equal(cfg[at], 0x11);
			assert_int_equal(n, 4);
			msix = at;
		}
		at = cfg[at + 1];
		n++;
	}
	assert_int_equal(n, 5);
	assert_int_equal(msix, vp.msix_cap);
	assert_int_equal(get_le16(cfg + msix + 2), NQ); /* table size - 1 */
	assert_int_equal(get_le32(cfg + msix + 4), 0x4000);
	assert_int_equal(get_le32(cfg + msix + 8), 0x6000);
	assert_int_equal(vp.msix.nr, NQ + 1);
	/* One kick eventfd per queue, watched by the loop; none beyond. */
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		assert_true(q < NQ ? vp.kick[q].src.fd >= 0 : vp.kick[q].src.fd == -1);
}

/* A device without configuration gets no device-configuration capability. */
static void test_no_device_cap_without_config(void **state)
{
	struct virtio_ops ops = fake_ops;
	ops.config_size = 0;
	ops.nr_queues = 1;
	struct virtio_dev d;
	static struct virtio_pci x;
	virtio_dev_init(&d, &ops, NULL, &mem, 0);
	assert_int_equal(virtio_pci_init(&x, &d, NULL, &loop), 0);
	unsigned types = 0;
	for (unsigned at = x.pci.cfg[PCI_CAP_PTR]; at; at = x.pci.cfg[at + 1])
		if (x.pci.cfg[at] == 0x09)
			types |= 1u << x.pci.cfg[at + 3];
	assert_int_equal(types, 1u << 1 | 1u << 2 | 1u << 3);
	virtio_pci_fini(&x);
	virtio_dev_fini(&d);
}

/* ---- feature negotiation ---- */

static void test_device_features(void **state)
{
	assert_int_equal(device_features(), ALL_FEATS);
	wr(DFSELECT, 4, 1);
	assert_int_equal(rd(DFSELECT, 4), 1);
	assert_int_equal(rd(DF, 4), 1); /* VERSION_1 is bit 32 */
	wr(DFSELECT, 4, 2);
	assert_int_equal(rd(DF, 4), 0);
	wr(DFSELECT, 4, 0xffffffffu);
	assert_int_equal(rd(DF, 4), 0);
	assert_int_equal(rd(DFSELECT, 4), 0xffffffffu);
	/* device_feature is read-only */
	wr(DFSELECT, 4, 0);
	wr(DF, 4, 0);
	assert_int_equal(rd(DF, 4), (uint32_t)ALL_FEATS);
}

static void test_feature_negotiation(void **state)
{
	const uint64_t want = 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX | 1u << 5;
	set_status(S_ACK | S_DRV);
	write_features(want);
	assert_int_equal(read_features(), want);
	assert_int_equal(f.dev.features, want);
	assert_int_equal(rd(GFSELECT, 4), 1);
	/* Select 2 and above: reads 0, writes go nowhere. */
	wr(GFSELECT, 4, 2);
	wr(GF, 4, 0xffffffffu);
	assert_int_equal(rd(GF, 4), 0);
	assert_int_equal(f.dev.features, want);
	set_status(S_ACK | S_DRV | S_FOK);
	assert_int_equal(status(), S_ACK | S_DRV | S_FOK);
	assert_true(virtio_has(&f.dev, VIRTIO_F_EVENT_IDX));
	assert_false(virtio_has(&f.dev, VIRTIO_F_INDIRECT_DESC));
	/* Frozen once FEATURES_OK is set. */
	wr(GFSELECT, 4, 0);
	wr(GF, 4, 0);
	assert_int_equal(read_features(), want);
}

static void test_features_ok_needs_version_1(void **state)
{
	assert_int_equal(negotiate(1ull << VIRTIO_F_EVENT_IDX | 1), S_ACK | S_DRV);
	/* The driver may fix it and try again. */
	write_features(1ull << VIRTIO_F_VERSION_1 | 1);
	set_status(S_ACK | S_DRV | S_FOK);
	assert_int_equal(status(), S_ACK | S_DRV | S_FOK);
}

static void test_features_ok_refuses_unoffered(void **state)
{
	const uint64_t bad[] = {1ull << VIRTIO_F_VERSION_1 | 1u << 1,
				1ull << VIRTIO_F_VERSION_1 | 1ull << 63,
				1ull << VIRTIO_F_VERSION_1 | 1ull << 33, ~0ull};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (negotiate(bad[i]) != (S_ACK | S_DRV))
			fail_msg("features %#llx accepted", (unsigned long long)bad[i]);
	}
	/* Exactly what was offered is fine. */
	assert_int_equal(negotiate(ALL_FEATS), S_ACK | S_DRV | S_FOK);
}

/* ---- queues ---- */

static void test_queue_defaults(void **state)
{
	assert_int_equal(rd(NUM_QUEUES, 2), NQ);
	for (unsigned q = 0; q < NQ; q++) {
		wr(Q_SELECT, 2, q);
		assert_int_equal(rd(Q_SELECT, 2), q);
		assert_int_equal(rd(Q_SIZE, 2), QMAX);
		assert_int_equal(rd(Q_MSIX, 2), MSIX_NO_VECTOR);
		assert_int_equal(rd(Q_ENABLE, 2), 0);
		assert_int_equal(rd(Q_NOTIFY_OFF, 2), q);
		assert_int_equal(rd(Q_DESC, 8), 0);
	}
	assert_int_equal(rd(MSIX_CONFIG, 2), MSIX_NO_VECTOR);
	/* A queue that does not exist: size 0 (§4.1.4.3), and inert. */
	wr(Q_SELECT, 2, NQ);
	assert_int_equal(rd(Q_SIZE, 2), 0);
	assert_int_equal(rd(Q_MSIX, 2), MSIX_NO_VECTOR);
	wr(Q_SIZE, 2, 4);
	wr(Q_DESC, 4, 0x1000);
	wr(Q_MSIX, 2, 0);
	wr(Q_ENABLE, 2, 1);
	assert_int_equal(rd(Q_SIZE, 2), 0);
	assert_int_equal(rd(Q_DESC, 4), 0);
	assert_int_equal(rd(Q_ENABLE, 2), 0);
	assert_int_equal(rd(Q_MSIX, 2), MSIX_NO_VECTOR);
	assert_int_equal(rd(Q_NOTIFY_OFF, 2), 0);
	wr(Q_SELECT, 2, 0xffff);
	assert_int_equal(rd(Q_SIZE, 2), 0);
	/* num_queues is read-only */
	wr(NUM_QUEUES, 2, 7);
	assert_int_equal(rd(NUM_QUEUES, 2), NQ);
}

static void test_queue_enable(void **state)
{
	assert_int_equal(negotiate(1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_EVENT_IDX),
			 S_ACK | S_DRV | S_FOK);
	queue_config(1, 8, DESC_GPA(1), AVAIL_GPA(1), USED_GPA(1));
	assert_int_equal(rd(Q_SIZE, 2), 8);
	assert_int_equal(rd(Q_DESC, 4), (uint32_t)DESC_GPA(1));
	assert_int_equal(rd(Q_DESC + 4, 4), 0);
	assert_int_equal(rd(Q_DRIVER, 8), AVAIL_GPA(1));
	assert_int_equal(rd(Q_DEVICE, 8), USED_GPA(1));
	assert_int_equal(f.dev.vq[1].size, 0); /* not yet */
	wr(Q_ENABLE, 2, 1);
	assert_int_equal(rd(Q_ENABLE, 2), 1);
	assert_int_equal(status(), S_ACK | S_DRV | S_FOK);
	const struct virtq *vq = &f.dev.vq[1];
	assert_int_equal(vq->size, 8);
	assert_int_equal(vq->desc_gpa, DESC_GPA(1));
	assert_int_equal(vq->avail_gpa, AVAIL_GPA(1));
	assert_int_equal(vq->used_gpa, USED_GPA(1));
	assert_true(vq->event_idx);
	assert_false(vq->indirect);
	/* Queue 0 was not touched. */
	wr(Q_SELECT, 2, 0);
	assert_int_equal(rd(Q_ENABLE, 2), 0);
	assert_int_equal(rd(Q_SIZE, 2), QMAX);
	assert_int_equal(f.dev.vq[0].size, 0);
}

static void test_queue_bad_ring_needs_reset(void **state)
{
	negotiate(1ull << VIRTIO_F_VERSION_1);
	queue_config(0, 8, RAM_GPA + RAM_SIZE, AVAIL_GPA(0), USED_GPA(0)); /* outside RAM */
	wr(Q_ENABLE, 2, 1);
	assert_int_equal(rd(Q_ENABLE, 2), 0);
	assert_int_equal(status(), S_ACK | S_DRV | S_FOK | S_NRST);
	assert_int_equal(f.dev.vq[0].size, 0);
	assert_int_equal(f.dev.errors, 1);
	assert_log_contains("fake: queue 0: queue enabled with a bad size or ring address");

	const struct {
		uint16_t size;
		uint64_t desc, avail, used;
	} bad[] = {
		{6, DESC_GPA(0), AVAIL_GPA(0), USED_GPA(0)},	       /* not a power of two */
		{0, DESC_GPA(0), AVAIL_GPA(0), USED_GPA(0)},	       /* zero */
		{8, DESC_GPA(0) + 8, AVAIL_GPA(0), USED_GPA(0)},       /* misaligned table */
		{8, DESC_GPA(0), RAM_GPA + RAM_SIZE - 4, USED_GPA(0)}, /* ring runs out of RAM */
		{8, DESC_GPA(0), AVAIL_GPA(0), 1ull << 40},	       /* used ring nowhere */
		{8, DESC_GPA(0) | 1ull << 63, AVAIL_GPA(0), USED_GPA(0)},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		negotiate(1ull << VIRTIO_F_VERSION_1);
		assert_int_equal(status(), S_ACK | S_DRV | S_FOK); /* reset cleared it */
		queue_config(0, bad[i].size, bad[i].desc, bad[i].avail, bad[i].used);
		wr(Q_ENABLE, 2, 1);
		if (rd(Q_ENABLE, 2) != 0 || !(status() & S_NRST))
			fail_msg("bad queue %u accepted", i);
	}
	/* The driver cannot clear NEEDS_RESET except by resetting. */
	set_status(S_ACK | S_DRV | S_FOK | S_DOK);
	assert_true(status() & S_NRST);
}

static void test_queue_frozen_after_enable(void **state)
{
	negotiate(1ull << VIRTIO_F_VERSION_1);
	queue_setup(0, 8);
	queue_config(0, 4, DESC_GPA(1), AVAIL_GPA(1), USED_GPA(1));
	wr(Q_DESC, 8, 0);
	assert_int_equal(rd(Q_SIZE, 2), 8);
	assert_int_equal(rd(Q_DESC, 8), DESC_GPA(0));
	assert_int_equal(rd(Q_DRIVER, 8), AVAIL_GPA(0));
	assert_int_equal(rd(Q_DEVICE, 8), USED_GPA(0));
	wr(Q_ENABLE, 2, 0); /* §4.1.4.3.2: the driver MUST NOT write 0 */
	assert_int_equal(rd(Q_ENABLE, 2), 1);
	assert_int_equal(f.dev.vq[0].size, 8);
	/* Enabling twice does not reinitialize the ring state. */
	f.dev.vq[0].last_avail = 3;
	wr(Q_ENABLE, 2, 1);
	assert_int_equal(f.dev.vq[0].last_avail, 3);
	/* The vector stays writable (§4.1.5.1.3: drivers retarget it). */
	wr(Q_MSIX, 2, 1);
	assert_int_equal(rd(Q_MSIX, 2), 1);
	/* After DRIVER_OK even a queue not enabled is frozen. */
	set_status(S_ACK | S_DRV | S_FOK | S_DOK);
	wr(Q_SELECT, 2, 1);
	queue_config(1, 4, DESC_GPA(1), AVAIL_GPA(1), USED_GPA(1));
	wr(Q_ENABLE, 2, 1);
	assert_int_equal(rd(Q_SIZE, 2), QMAX);
	assert_int_equal(rd(Q_DESC, 8), 0);
	assert_int_equal(rd(Q_ENABLE, 2), 0);
	assert_int_equal(f.dev.vq[1].size, 0);
}

static void test_queue_enable_value_must_be_1(void **state)
{
	negotiate(1ull << VIRTIO_F_VERSION_1);
	queue_config(0, 8, DESC_GPA(0), AVAIL_GPA(0), USED_GPA(0));
	wr(Q_ENABLE, 2, 2);
	wr(Q_ENABLE, 2, 0xffff);
	assert_int_equal(rd(Q_ENABLE, 2), 0);
	wr(Q_ENABLE, 2, 1);
	assert_int_equal(rd(Q_ENABLE, 2), 1);
}

/* ---- MSI-X vectors ---- */

static void test_msix_vector_registers(void **state)
{
	/* NQ + 1 = 3 vectors: 0..2 valid. */
	wr(MSIX_CONFIG, 2, 2);
	assert_int_equal(rd(MSIX_CONFIG, 2), 2);
	wr(MSIX_CONFIG, 2, 3);
	assert_int_equal(rd(MSIX_CONFIG, 2), MSIX_NO_VECTOR);
	wr(MSIX_CONFIG, 2, 0);
	assert_int_equal(rd(MSIX_CONFIG, 2), 0);
	wr(MSIX_CONFIG, 2, 0x8000);
	assert_int_equal(rd(MSIX_CONFIG, 2), MSIX_NO_VECTOR);
	wr(Q_SELECT, 2, 1);
	wr(Q_MSIX, 2, 1);
	assert_int_equal(rd(Q_MSIX, 2), 1);
	wr(Q_MSIX, 2, 3);
	assert_int_equal(rd(Q_MSIX, 2), MSIX_NO_VECTOR);
	wr(Q_MSIX, 2, 2);
	wr(Q_SELECT, 2, 0);
	wr(Q_MSIX, 2, 0x1234);
	assert_int_equal(rd(Q_MSIX, 2), MSIX_NO_VECTOR);
	wr(Q_SELECT, 2, 1);
	assert_int_equal(rd(Q_MSIX, 2), 2);
}

/* ---- register widths ---- */

static void test_wrong_width_ignored(void **state)
{
	/* Reads of the wrong width give 0, whatever the register holds. */
	assert_int_equal(rd(NUM_QUEUES, 4), 0);
	assert_int_equal(rd(NUM_QUEUES, 1), 0);
	assert_int_equal(rd(NUM_QUEUES, 2), NQ);
	assert_int_equal(rd(DF, 2), 0);
	assert_int_equal(rd(DF, 1), 0);
	assert_int_equal(rd(DF + 2, 2), 0);
	assert_int_equal(rd(DF, 8), 0); /* 8 bytes only on the queue addresses */
	assert_int_equal(rd(Q_SIZE, 4), 0);
	assert_int_equal(rd(Q_SIZE + 1, 1), 0);
	assert_int_equal(rd(MSIX_CONFIG, 1), 0);
	assert_int_equal(rd(Q_DESC + 2, 2), 0);
	assert_int_equal(rd(0x37, 1), 0);
	assert_int_equal(rd(0x38, 4), 0); /* past the structure */
	assert_int_equal(rd(0x100, 4), 0);

	set_status(S_ACK);
	wr(STATUS, 2, S_ACK | S_DRV);
	wr(STATUS, 4, S_ACK | S_DRV);
	assert_int_equal(rd(STATUS, 2), 0);
	assert_int_equal(status(), S_ACK);
	wr(DFSELECT, 2, 1);
	wr(DFSELECT, 1, 1);
	assert_int_equal(rd(DFSELECT, 4), 0);
	wr(Q_SELECT, 4, 1);
	wr(Q_SELECT + 1, 1, 1);
	assert_int_equal(rd(Q_SELECT, 2), 0);
	wr(Q_SIZE, 4, 4);
	assert_int_equal(rd(Q_SIZE, 2), QMAX);
	wr(Q_DESC, 2, 0x1234);
	wr(Q_DESC + 1, 4, 0x1234);
	assert_int_equal(rd(Q_DESC, 4), 0);
	wr(MSIX_CONFIG, 4, 0);
	assert_int_equal(rd(MSIX_CONFIG, 2), MSIX_NO_VECTOR);
	/* Generation is one byte, read-only. */
	f.dev.config_interrupt(&f.dev);
	assert_int_equal(rd(CFG_GEN, 1), 1);
	assert_int_equal(rd(CFG_GEN, 2), 0);
	assert_int_equal(rd(CFG_GEN - 1, 2), 0);
	wr(CFG_GEN, 1, 9);
	assert_int_equal(rd(CFG_GEN, 1), 1);
}

static void test_queue_address_qword(void **state)
{
	negotiate(1ull << VIRTIO_F_VERSION_1);
	wr(Q_SELECT, 2, 0);
	wr(Q_DESC, 8, 0x123456789abcdef0ull);
	wr(Q_DRIVER, 8, 0x0fedcba987654320ull);
	wr(Q_DEVICE, 8, 0x1111222233334440ull);
	assert_int_equal(rd(Q_DESC, 4), 0x9abcdef0u);
	assert_int_equal(rd(Q_DESC + 4, 4), 0x12345678u);
	assert_int_equal(rd(Q_DESC, 8), 0x123456789abcdef0ull);
	assert_int_equal(rd(Q_DRIVER, 8), 0x0fedcba987654320ull);
	assert_int_equal(rd(Q_DEVICE + 4, 4), 0x11112222u);
	/* Halves replace only their half. */
	wr(Q_DESC + 4, 4, 0);
	assert_int_equal(rd(Q_DESC, 8), 0x9abcdef0ull);
	wr(Q_DESC, 4, 0x1000);
	assert_int_equal(rd(Q_DESC, 8), 0x1000);
	/* A qword not on a register boundary is refused. */
	wr(Q_DESC + 4, 8, ~0ull);
	wr(Q_DEVICE + 4, 8, ~0ull);
	assert_int_equal(rd(Q_DESC, 8), 0x1000);
	assert_int_equal(rd(Q_DRIVER, 8), 0x0fedcba987654320ull);
	assert_int_equal(rd(Q_DEVICE, 8), 0x1111222233334440ull);
	assert_int_equal(rd(Q_DESC + 4, 8), 0);
}

/* ---- device configuration and ISR ---- */

static void test_device_config_bounded(void **state)
{
	assert_int_equal(rd(DEVCFG, 4), 0xc3c2c1c0u);
	assert_int_equal(rd(DEVCFG + 4, 4), 0xc7c6c5c4u);
	assert_int_equal(rd(DEVCFG + 7, 1), 0xc7);
	assert_int_equal(rd(DEVCFG, 8), 0xc7c6c5c4c3c2c1c0ull);
	assert_int_equal(f.cfg_reads, 4);
	/* Past config_size: zeros, and the device is not asked. */
	assert_int_equal(rd(DEVCFG + 6, 4), 0);
	assert_int_equal(rd(DEVCFG + 1, 8), 0);
	assert_int_equal(rd(DEVCFG + 8, 1), 0);
	assert_int_equal(rd(DEVCFG + 0xffc, 4), 0);
	assert_int_equal(f.cfg_reads, 4);
	wr(DEVCFG + 2, 2, 0xbbaa);
	assert_int_equal(f.cfg_writes, 1);
	assert_int_equal(f.last_woff, 2);
	assert_int_equal(f.last_wlen, 2);
	assert_int_equal(rd(DEVCFG, 4), 0xbbaac1c0u);
	wr(DEVCFG + 7, 2, 0xffff);
	wr(DEVCFG + 8, 1, 0xff);
	assert_int_equal(f.cfg_writes, 1);
	/* Between the regions: nothing. */
	assert_int_equal(rd(0x800, 4), 0);
	assert_int_equal(rd(NOTIFY, 4), 0);
	assert_int_equal(rd(NOTIFY + 4, 2), 0);
}

static void test_isr_read_to_clear(void **state)
{
	assert_int_equal(rd(ISR, 1), 0);
	f.dev.interrupt(&f.dev, 0);
	assert_int_equal(rd(ISR, 4), 0); /* wrong width: 0, not cleared */
	assert_int_equal(rd(ISR, 1), 1);
	assert_int_equal(rd(ISR, 1), 0);
	assert_int_equal(rd(CFG_GEN, 1), 0);
	f.dev.config_interrupt(&f.dev);
	f.dev.interrupt(&f.dev, 1);
	wr(ISR, 1, 0); /* writes do not clear it */
	assert_int_equal(rd(CFG_GEN, 1), 1);
	assert_int_equal(rd(ISR, 1), 3);
	assert_int_equal(rd(ISR, 1), 0);
	assert_int_equal(rd(ISR + 1, 1), 0);
	/* No vectors assigned, MSI-X off: nothing delivered. */
	assert_int_equal(vp.msix.fired, 0);
}

/* ---- reset ---- */

static void test_reset(void **state)
{
	bring_up();
	wr(MSIX_CONFIG, 2, 0);
	wr(Q_SELECT, 2, 1);
	wr(Q_MSIX, 2, 2);
	f.dev.interrupt(&f.dev, 0);
	wr(DFSELECT, 4, 1);
	unsigned resets = f.resets;
	set_status(0);
	assert_int_equal(f.resets, resets + 1);
	assert_int_equal(status(), 0);
	assert_false(f.dev.resetting);
	assert_int_equal(f.dev.features, 0);
	assert_int_equal(read_features(), 0);
	assert_int_equal(rd(DFSELECT, 4), 0);
	assert_int_equal(rd(MSIX_CONFIG, 2), MSIX_NO_VECTOR);
	assert_int_equal(rd(ISR, 1), 0);
	for (unsigned q = 0; q < NQ; q++) {
		wr(Q_SELECT, 2, q);
		assert_int_equal(rd(Q_ENABLE, 2), 0);
		assert_int_equal(rd(Q_SIZE, 2), QMAX);
		assert_int_equal(rd(Q_MSIX, 2), MSIX_NO_VECTOR);
		assert_int_equal(rd(Q_DESC, 8), 0);
		assert_int_equal(f.dev.vq[q].size, 0);
	}
	/* And the device comes up again. */
	bring_up();
	assert_int_equal(f.activates, 2);
}

static void test_reset_clears_needs_reset(void **state)
{
	bring_up();
	pthread_mutex_lock(&f.dev.lock);
	virtio_broken(&f.dev, 1, "test");
	pthread_mutex_unlock(&f.dev.lock);
	assert_true(status() & S_NRST);
	set_status(0);
	assert_int_equal(status(), 0);
	bring_up();
}

/* ops->reset says two requests are still in flight: device_status stays
 * non-zero until virtio_reset_done(), and the driver cannot restart it. */
static void test_reset_waits_for_in_flight(void **state)
{
	bring_up();
	f.in_flight = 2;
	unsigned resets = f.resets;
	set_status(0);
	assert_int_equal(f.resets, resets + 1);
	assert_true(f.dev.resetting);
	assert_int_equal(status(), S_ACK | S_DRV | S_FOK | S_DOK);
	set_status(S_ACK); /* ignored while draining */
	assert_int_equal(status(), S_ACK | S_DRV | S_FOK | S_DOK);
	kick_fd(0); /* no notifications while draining */
	assert_int_equal(f.notified[0], 0);
	assert_int_equal(f.dev.vq[0].size, 8);

	pthread_mutex_lock(&f.dev.lock);
	virtio_reset_done(&f.dev);
	pthread_mutex_unlock(&f.dev.lock);
	assert_int_equal(status(), 0);
	assert_false(f.dev.resetting);
	assert_int_equal(f.dev.features, 0);
	assert_int_equal(f.dev.vq[0].size, 0);
	/* A second call is harmless. */
	pthread_mutex_lock(&f.dev.lock);
	virtio_reset_done(&f.dev);
	pthread_mutex_unlock(&f.dev.lock);
	assert_int_equal(f.resets, resets + 1);
	assert_int_equal(status(), 0);
}

/* After a reset that had to wait, the transport is reset too: the driver
 * finds every queue disabled and configurable again (Linux's setup_vq()
 * refuses a queue whose queue_enable reads 1). */
static void test_reset_deferred_resets_transport(void **state)
{
	bring_up();
	wr(MSIX_CONFIG, 2, 0);
	f.in_flight = 1;
	set_status(0);
	f.in_flight = 0;
	pthread_mutex_lock(&f.dev.lock);
	virtio_reset_done(&f.dev);
	pthread_mutex_unlock(&f.dev.lock);
	assert_int_equal(status(), 0);
	wr(Q_SELECT, 2, 0);
	assert_int_equal(rd(Q_ENABLE, 2), 0);
	assert_int_equal(rd(Q_SIZE, 2), QMAX);
	assert_int_equal(rd(MSIX_CONFIG, 2), MSIX_NO_VECTOR);
	/* and the driver can bring it up again */
	bring_up();
	wr(Q_SELECT, 2, 0);
	assert_int_equal(f.dev.vq[0].size, 8);
}

/* ---- notifications ---- */

static void test_notify_needs_driver_ok(void **state)
{
	assert_int_equal(negotiate(1ull << VIRTIO_F_VERSION_1), S_ACK | S_DRV | S_FOK);
	queue_setup(0, 8);
	kick_fd(0);
	assert_int_equal(f.notified[0], 0);
	/* The eventfd was drained all the same: the loop has nothing left. */
	assert_int_equal(run_loop(), 0);
	set_status(S_ACK | S_DRV | S_FOK | S_DOK);
	kick_fd(0);
	assert_int_equal(f.notified[0], 1);
	/* Queue 1 is not enabled: its kick goes nowhere. */
	kick_fd(1);
	assert_int_equal(f.notified[1], 0);
	assert_int_equal(f.notified[0], 1);
}

static void test_notify_through_loop_and_bar(void **state)
{
	bring_up();
	/* The ioeventfd path: the kick eventfd is watched by the loop. */
	uint64_t one = 1;
	assert_int_equal(write(vp.kick[1].src.fd, &one, sizeof(one)), sizeof(one));
	assert_int_equal(write(vp.kick[1].src.fd, &one, sizeof(one)), sizeof(one));
	assert_int_equal(run_loop(), 1);
	assert_int_equal(f.notified[1], 1); /* two kicks, one notify */
	assert_int_equal(f.notified[0], 0);
	/* Without ioeventfds, a write to the notify area lands in the BAR. */
	wr(NOTIFY + 0, 2, 0);
	assert_int_equal(run_loop(), 1);
	assert_int_equal(f.notified[0], 1);
	wr(NOTIFY + 4 * NQ, 2, 0); /* no such queue */
	wr(NOTIFY + 0xffc, 2, 0);
	assert_int_equal(run_loop(), 0);
	assert_int_equal(f.notified[0] + f.notified[1], 2);
}

static void test_notify_ignored_after_needs_reset(void **state)
{
	bring_up();
	pthread_mutex_lock(&f.dev.lock);
	virtio_broken(&f.dev, 0, "test");
	pthread_mutex_unlock(&f.dev.lock);
	kick_fd(0);
	kick_fd(1);
	assert_int_equal(f.notified[0] + f.notified[1], 0);
}

/* ---- DRIVER_OK ---- */

static void test_driver_ok_without_features_ok(void **state)
{
	set_status(S_ACK);
	set_status(S_ACK | S_DRV);
	write_features(1ull << VIRTIO_F_VERSION_1);
	set_status(S_ACK | S_DRV | S_DOK);
	assert_int_equal(status(), S_ACK | S_DRV | S_DOK | S_NRST);
	assert_int_equal(f.activates, 0);
	assert_log_contains("fake: queue 0: DRIVER_OK without FEATURES_OK; device needs reset");
	/* The config interrupt told the driver. */
	assert_int_equal(rd(ISR, 1), 2);
	assert_int_equal(rd(CFG_GEN, 1), 1);
	/* Even refused features then DRIVER_OK. */
	assert_int_equal(negotiate(1), S_ACK | S_DRV);
	set_status(S_ACK | S_DRV | S_FOK | S_DOK);
	assert_true(status() & S_NRST);
	assert_false(status() & S_FOK);
	assert_int_equal(f.activates, 0);
}

static void test_driver_ok_activates_once(void **state)
{
	bring_up();
	assert_int_equal(f.activates, 1);
	set_status(S_ACK | S_DRV | S_FOK | S_DOK);
	assert_int_equal(f.activates, 1);
	/* A failing activation: NEEDS_RESET, and the driver hears of it. */
	f.activate_ret = -EIO;
	assert_int_equal(negotiate(1ull << VIRTIO_F_VERSION_1), S_ACK | S_DRV | S_FOK);
	set_status(S_ACK | S_DRV | S_FOK | S_DOK);
	assert_int_equal(f.activates, 2);
	assert_int_equal(status(), S_ACK | S_DRV | S_FOK | S_DOK | S_NRST);
	assert_int_equal(rd(ISR, 1), 2);
	/* NEEDS_RESET is the device's to set; FAILED is the driver's. */
	set_status(0);
	set_status(S_ACK | S_NRST);
	assert_int_equal(status(), S_ACK);
	set_status(S_ACK | VIRTIO_STATUS_FAILED);
	assert_int_equal(status(), S_ACK | VIRTIO_STATUS_FAILED);
}

/* ---- through the buses, as a guest sees it ---- */

static void test_msix_through_buses(void **state)
{
	struct bus pio, mmio;
	struct pci_bus pb;
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	assert_int_equal(pci_bus_init(&pb, &pio, &mmio, 0xc0000000ull, 0x100000), 0);
	assert_int_equal(pci_bus_add(&pb, &vp.pci), 0);
	const uint64_t bar = vp.pci.bar[0].addr;
	assert_int_equal(bar, 0xc0000000ull);
	uint8_t d[8];

	/* Common config through MMIO. */
	assert_int_equal(bus_access(&mmio, bar + NUM_QUEUES, d, 2, false), 0);
	assert_int_equal(get_le16(d), NQ);
	bring_up();

	/* The MSI-X table through MMIO: vector 1 for queue 0, unmasked. */
	put_le32(d, 0xfee00000u);
	bus_access(&mmio, bar + MSIX_TABLE + 16, d, 4, true);
	put_le32(d, 0);
	bus_access(&mmio, bar + MSIX_TABLE + 16 + 12, d, 4, true);
	wr(Q_SELECT, 2, 0);
	wr(Q_MSIX, 2, 1);
	f.dev.interrupt(&f.dev, 0);
	assert_int_equal(vp.msix.fired, 0); /* MSI-X not enabled yet */
	bus_access(&mmio, bar + MSIX_PBA, d, 8, false);
	assert_int_equal(get_le64(d), 1u << 1);

	/* Enable MSI-X in the capability's Message Control via 0xCF8/0xCFC. */
	unsigned ctrl = vp.msix_cap + 2;
	put_le32(d, 0x80000000u | 1u << 11 | (ctrl & 0xfc));
	bus_access(&pio, 0xcf8, d, 4, true);
	put_le16(d, 0x8000 | 0x07ff); /* the table size bits are read-only */
	bus_access(&pio, 0xcfc + (ctrl & 3), d, 2, true);
	assert_true(vp.msix.enabled);
	assert_false(vp.msix.function_masked);
	assert_int_equal(vp.msix.fired, 1); /* the pending one */
	bus_access(&pio, 0xcfc + (ctrl & 3), d, 2, false);
	assert_int_equal(get_le16(d), 0x8000 | NQ);
	f.dev.interrupt(&f.dev, 0);
	assert_int_equal(vp.msix.fired, 2);
	/* Function mask through config space. */
	put_le16(d, 0xc000);
	bus_access(&pio, 0xcfc + (ctrl & 3), d, 2, true);
	assert_true(vp.msix.function_masked);
	f.dev.interrupt(&f.dev, 0);
	assert_int_equal(vp.msix.fired, 2);
	/* Config interrupt on vector 0 (masked in the table): pending. */
	wr(MSIX_CONFIG, 2, 0);
	f.dev.config_interrupt(&f.dev);
	assert_int_equal(vp.msix.pending, 1u << 0 | 1u << 1);

	pci_bus_fini(&pb);
	bus_fini(&mmio);
	bus_fini(&pio);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_init_rejects),
		T(test_pci_function),
		T(test_no_device_cap_without_config),
		T(test_device_features),
		T(test_feature_negotiation),
		T(test_features_ok_needs_version_1),
		T(test_features_ok_refuses_unoffered),
		T(test_queue_defaults),
		T(test_queue_enable),
		T(test_queue_bad_ring_needs_reset),
		T(test_queue_frozen_after_enable),
		T(test_queue_enable_value_must_be_1),
		T(test_msix_vector_registers),
		T(test_wrong_width_ignored),
		T(test_queue_address_qword),
		T(test_device_config_bounded),
		T(test_isr_read_to_clear),
		T(test_reset),
		T(test_reset_clears_needs_reset),
		T(test_reset_waits_for_in_flight),
		T(test_reset_deferred_resets_transport),
		T(test_notify_needs_driver_ok),
		T(test_notify_through_loop_and_bar),
		T(test_notify_ignored_after_needs_reset),
		T(test_driver_ok_without_features_ok),
		T(test_driver_ok_activates_once),
		T(test_msix_through_buses),
	};
#undef T
	return cmocka_run_group_tests_name("virtio_pci", tests, NULL, NULL);
}
