/*
 * virtio.c — virtio 1.x over PCI, modern interface, split virtqueues,
 * polled (see virtio.h).
 *
 * Register layout: virtio 1.2 section 4.1.4.3 (common configuration),
 * 4.1.4.4 (notifications), 4.1.4.5 (ISR); ring layout: section 2.7.
 * 64-bit registers are written as two 32-bit halves, low first, as the spec
 * allows and as Linux does. x86 keeps stores in order and loads in order, so
 * compiler barriers order the rings; a full fence precedes each notification.
 */
#include "boot.h"
#include "io.h"
#include "str.h"
#include "test.h"
#include "tsc.h"
#include "virtio.h"

/* Common configuration structure (section 4.1.4.3). */
#define CC_DEVICE_FEATURE_SELECT	0x00
#define CC_DEVICE_FEATURE		0x04
#define CC_DRIVER_FEATURE_SELECT	0x08
#define CC_DRIVER_FEATURE		0x0c
#define CC_CONFIG_MSIX_VECTOR		0x10
#define CC_NUM_QUEUES			0x12
#define CC_DEVICE_STATUS		0x14
#define CC_CONFIG_GENERATION		0x15
#define CC_QUEUE_SELECT			0x16
#define CC_QUEUE_SIZE			0x18
#define CC_QUEUE_MSIX_VECTOR		0x1a
#define CC_QUEUE_ENABLE			0x1c
#define CC_QUEUE_NOTIFY_OFF		0x1e
#define CC_QUEUE_DESC			0x20
#define CC_QUEUE_DRIVER			0x28
#define CC_QUEUE_DEVICE			0x30
#define CC_MIN_LEN			0x38	/* up to queue_device */

/* struct virtio_pci_cap (section 4.1.4), offsets from the capability. */
#define CAP_LEN				2
#define CAP_CFG_TYPE			3
#define CAP_BAR				4
#define CAP_OFFSET			8
#define CAP_LENGTH			12
#define CAP_NOTIFY_MULT			16
#define CAP_MIN_LEN			16
#define CAP_NOTIFY_MIN_LEN		20

#define CFG_COMMON			1
#define CFG_NOTIFY			2
#define CFG_ISR				3
#define CFG_DEVICE			4

#define TRANSITIONAL_FIRST		0x1000
#define TRANSITIONAL_LAST		0x103f
#define MODERN_LAST			0x107f

#define RESET_TIMEOUT_US		1000000
#define TRANSFER_TIMEOUT_US		10000000
#define STATUS_POLL_US			200

/*
 * Each queue's memory: descriptors, avail ring and used ring on pages of
 * their own (4096 bytes hold 256 descriptors), then an indirect table.
 */
#define RING_DESC_OFF			0
#define RING_AVAIL_OFF			4096
#define RING_USED_OFF			8192
#define RING_INDIRECT_OFF		12288
#define RING_BYTES			16384
#define RING_SLOTS			(VIRTIO_MAX_DEVICES * VIRTIO_MAX_QUEUES)

static uint8_t ring_pool[RING_SLOTS][RING_BYTES] __attribute__((aligned(4096)));
static unsigned ring_used_slots;

#define barrier() __asm__ volatile("" ::: "memory")

static uint8_t cc_read8(const struct virtio_dev *d, unsigned off)
{
	return mmio_read8(d->common + off);
}

static uint16_t cc_read16(const struct virtio_dev *d, unsigned off)
{
	return mmio_read16(d->common + off);
}

static uint32_t cc_read32(const struct virtio_dev *d, unsigned off)
{
	return mmio_read32(d->common + off);
}

static void cc_write8(const struct virtio_dev *d, unsigned off, uint8_t v)
{
	mmio_write8(d->common + off, v);
}

static void cc_write16(const struct virtio_dev *d, unsigned off, uint16_t v)
{
	mmio_write16(d->common + off, v);
}

static void cc_write32(const struct virtio_dev *d, unsigned off, uint32_t v)
{
	mmio_write32(d->common + off, v);
}

static void cc_write64(const struct virtio_dev *d, unsigned off, uint64_t v)
{
	cc_write32(d, off, (uint32_t)v);
	cc_write32(d, off + 4, (uint32_t)(v >> 32));
}

static const char *name(const struct virtio_dev *d)
{
	static char buf[8];

	return pci_name(&d->pci, buf);
}

/* The virtio device ID a PCI function stands for, or 0 if it is not virtio. */
static uint16_t virtio_id_of(const struct pci_dev *p)
{
	if (p->vendor != VIRTIO_PCI_VENDOR || p->header_type != 0)
		return 0;
	if (p->device > TRANSITIONAL_LAST && p->device <= MODERN_LAST)
		return p->device - VIRTIO_PCI_MODERN_BASE;
	/* Section 4.1.2.1: a transitional device's subsystem ID is its virtio ID. */
	if (p->device >= TRANSITIONAL_FIRST)
		return p->subsys_id;
	return 0;
}

/* Parses the vendor capabilities into d; -1 if the modern ones are missing. */
static int parse_caps(struct virtio_dev *d)
{
	const struct pci_dev *p = &d->pci;
	uint64_t addr[CFG_DEVICE + 1] = { 0 };
	uint32_t len[CFG_DEVICE + 1] = { 0 };
	uint8_t c = 0;

	while ((c = pci_cap_find(p, PCI_CAP_ID_VENDOR, c)) != 0) {
		uint8_t cap_len = pci_read8(p, c + CAP_LEN);
		uint8_t type = pci_read8(p, c + CAP_CFG_TYPE);
		uint8_t bar = pci_read8(p, c + CAP_BAR);
		uint32_t off = pci_read32(p, c + CAP_OFFSET);
		uint32_t length = pci_read32(p, c + CAP_LENGTH);
		struct pci_bar b;

		if (cap_len < CAP_MIN_LEN)
			test_fail("virtio %s: capability at 0x%x has cap_len %u",
				  name(d), c, cap_len);
		/* The first of each type this driver knows; BAR values 6+ are reserved. */
		if (type < CFG_COMMON || type > CFG_DEVICE || addr[type] ||
		    bar >= PCI_NUM_BARS)
			continue;
		if (type == CFG_NOTIFY) {
			if (cap_len < CAP_NOTIFY_MIN_LEN)
				test_fail("virtio %s: notify capability has cap_len %u",
					  name(d), cap_len);
			d->notify_mult = pci_read32(p, c + CAP_NOTIFY_MULT);
		}
		if (pci_bar(p, bar, &b))
			test_fail("virtio %s: capability type %u names BAR%u, which is not there",
				  name(d), type, bar);
		if (b.io)
			test_fail("virtio %s: capability type %u is in I/O BAR%u (not supported here)",
				  name(d), type, bar);
		if (off > b.size || length > b.size - off)
			test_fail("virtio %s: capability type %u (0x%x+0x%x) is outside BAR%u (0x%lx bytes)",
				  name(d), type, off, length, bar, b.size);
		addr[type] = b.base + off;
		len[type] = length;
	}
	if (!addr[CFG_COMMON])
		return -1;
	if (len[CFG_COMMON] < CC_MIN_LEN)
		test_fail("virtio %s: common configuration is %u bytes", name(d),
			  len[CFG_COMMON]);
	if (!addr[CFG_NOTIFY] || !addr[CFG_ISR] || !len[CFG_ISR])
		test_fail("virtio %s: no notify or ISR capability", name(d));
	d->common = addr[CFG_COMMON];
	d->notify_base = addr[CFG_NOTIFY];
	d->notify_len = len[CFG_NOTIFY];
	d->isr = addr[CFG_ISR];
	d->device_cfg = addr[CFG_DEVICE];
	d->device_cfg_len = len[CFG_DEVICE];
	return 0;
}

unsigned virtio_probe(uint16_t virtio_id, struct virtio_dev *devs, unsigned max)
{
	struct pci_dev all[PCI_MAX_DEVICES];
	unsigned n = pci_scan(all, PCI_MAX_DEVICES), i, found = 0;

	if (n > PCI_MAX_DEVICES)
		n = PCI_MAX_DEVICES;
	for (i = 0; i < n && found < max; i++) {
		struct virtio_dev *d = &devs[found];

		if (virtio_id_of(&all[i]) != virtio_id)
			continue;
		memset(d, 0, sizeof(*d));
		d->pci = all[i];
		d->virtio_id = virtio_id;
		d->has_msix = pci_cap_find(&all[i], PCI_CAP_ID_MSIX, 0) != 0;
		if (parse_caps(d)) {
			/* Legacy-only transitional devices are not for this driver. */
			if (all[i].device >= VIRTIO_PCI_MODERN_BASE)
				test_fail("virtio %s: no common configuration capability",
					  name(d));
			continue;
		}
		found++;
	}
	return found;
}

uint8_t virtio_status(const struct virtio_dev *d)
{
	return cc_read8(d, CC_DEVICE_STATUS);
}

uint8_t virtio_isr(const struct virtio_dev *d)
{
	return mmio_read8(d->isr);
}

void virtio_reset(struct virtio_dev *d)
{
	uint64_t deadline = tsc_deadline_us(RESET_TIMEOUT_US);
	uint8_t s;

	cc_write8(d, CC_DEVICE_STATUS, 0);
	while ((s = cc_read8(d, CC_DEVICE_STATUS)) != 0) {
		if (rdtsc() > deadline)
			test_fail("virtio %s: device_status reads 0x%x a second after reset",
				  name(d), s);
		cpu_pause();
	}
}

static void set_status(struct virtio_dev *d, uint8_t bits)
{
	cc_write8(d, CC_DEVICE_STATUS, cc_read8(d, CC_DEVICE_STATUS) | bits);
}

static uint64_t read_features(const struct virtio_dev *d)
{
	uint64_t f;

	cc_write32(d, CC_DEVICE_FEATURE_SELECT, 0);
	f = cc_read32(d, CC_DEVICE_FEATURE);
	cc_write32(d, CC_DEVICE_FEATURE_SELECT, 1);
	return f | (uint64_t)cc_read32(d, CC_DEVICE_FEATURE) << 32;
}

static void write_features(const struct virtio_dev *d, uint64_t f)
{
	cc_write32(d, CC_DRIVER_FEATURE_SELECT, 0);
	cc_write32(d, CC_DRIVER_FEATURE, (uint32_t)f);
	cc_write32(d, CC_DRIVER_FEATURE_SELECT, 1);
	cc_write32(d, CC_DRIVER_FEATURE, (uint32_t)(f >> 32));
}

static void setup_queue(struct virtio_dev *d, uint16_t i, uint16_t want)
{
	struct virtq *q = &d->vq[i];
	uint16_t max, size, off;
	uint8_t *mem;

	cc_write16(d, CC_QUEUE_SELECT, i);
	max = cc_read16(d, CC_QUEUE_SIZE);
	if (!max)
		test_fail("virtio %s: queue %u has size 0", name(d), i);
	if (cc_read16(d, CC_QUEUE_ENABLE))
		test_fail("virtio %s: queue %u is enabled after reset", name(d), i);
	size = max < want ? max : want;
	while (size & (size - 1))
		size &= size - 1;

	if (!d->ring_mem[i]) {
		if (ring_used_slots == RING_SLOTS)
			test_fail("virtio: more than %d queues", RING_SLOTS);
		d->ring_mem[i] = ring_pool[ring_used_slots++];
	}
	mem = d->ring_mem[i];
	memset(mem, 0, RING_BYTES);
	*q = (struct virtq){
		.dev = d,
		.index = i,
		.size = size,
		.desc = (volatile struct virtq_desc *)(mem + RING_DESC_OFF),
		.avail = (volatile struct virtq_avail *)(mem + RING_AVAIL_OFF),
		.used = (volatile struct virtq_used *)(mem + RING_USED_OFF),
		.indirect = (struct virtq_desc *)(mem + RING_INDIRECT_OFF),
	};
	q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;

	cc_write16(d, CC_QUEUE_SIZE, size);
	cc_write16(d, CC_QUEUE_MSIX_VECTOR, VIRTIO_MSI_NO_VECTOR);
	cc_write64(d, CC_QUEUE_DESC, (uintptr_t)q->desc);
	cc_write64(d, CC_QUEUE_DRIVER, (uintptr_t)q->avail);
	cc_write64(d, CC_QUEUE_DEVICE, (uintptr_t)q->used);
	off = cc_read16(d, CC_QUEUE_NOTIFY_OFF);
	/* Section 4.1.4.4: the notify structure covers every queue's address. */
	if ((uint64_t)off * d->notify_mult + 2 > d->notify_len)
		test_fail("virtio %s: queue %u notify offset %u x %u is outside the %u-byte notify structure",
			  name(d), i, off, d->notify_mult, d->notify_len);
	q->notify_addr = d->notify_base + (uint64_t)off * d->notify_mult;
	cc_write16(d, CC_QUEUE_ENABLE, 1);
}

uint64_t virtio_init_begin(struct virtio_dev *d, uint64_t want, unsigned nqueues,
			   uint16_t qsize)
{
	uint16_t n;
	uint8_t s;
	unsigned i;

	if (nqueues > VIRTIO_MAX_QUEUES || !qsize || qsize > VIRTQ_MAX_SIZE)
		test_fail("virtio: %u queues of %u entries asked for", nqueues, qsize);
	virtio_reset(d);
	set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(d, VIRTIO_STATUS_DRIVER);
	d->offered = read_features(d);
	if (!(d->offered & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
		test_fail("virtio %s: device does not offer VERSION_1 (features 0x%lx)",
			  name(d), d->offered);
	d->features = d->offered & (want | VIRTIO_BIT(VIRTIO_F_VERSION_1));
	write_features(d, d->features);
	set_status(d, VIRTIO_STATUS_FEATURES_OK);
	s = virtio_status(d);
	if (!(s & VIRTIO_STATUS_FEATURES_OK))
		test_fail("virtio %s: device refused features 0x%lx (status 0x%x)",
			  name(d), d->features, s);

	n = cc_read16(d, CC_NUM_QUEUES);
	if (n < nqueues)
		test_fail("virtio %s: %u queues, %u needed", name(d), n, nqueues);
	cc_write16(d, CC_CONFIG_MSIX_VECTOR, VIRTIO_MSI_NO_VECTOR);
	for (i = 0; i < nqueues; i++)
		setup_queue(d, (uint16_t)i, qsize);
	d->nqueues = nqueues;
	return d->features;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	uint8_t s;

	set_status(d, VIRTIO_STATUS_DRIVER_OK);
	s = virtio_status(d);
	if ((s & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED)) ||
	    !(s & VIRTIO_STATUS_DRIVER_OK))
		test_fail("virtio %s: status 0x%x after DRIVER_OK", name(d), s);
}

uint64_t virtio_init(struct virtio_dev *d, uint64_t want, unsigned nqueues,
		     uint16_t qsize)
{
	uint64_t f = virtio_init_begin(d, want, nqueues, qsize);

	virtio_driver_ok(d);
	return f;
}

static void cfg_check(const struct virtio_dev *d, uint32_t off, uint32_t width)
{
	if (!d->device_cfg || off > d->device_cfg_len ||
	    width > d->device_cfg_len - off)
		test_fail("virtio %s: config offset %u (%u bytes) beyond its %u bytes",
			  name(d), off, width, d->device_cfg_len);
}

uint8_t virtio_cfg8(const struct virtio_dev *d, uint32_t off)
{
	cfg_check(d, off, 1);
	return mmio_read8(d->device_cfg + off);
}

uint16_t virtio_cfg16(const struct virtio_dev *d, uint32_t off)
{
	cfg_check(d, off, 2);
	return mmio_read16(d->device_cfg + off);
}

uint32_t virtio_cfg32(const struct virtio_dev *d, uint32_t off)
{
	cfg_check(d, off, 4);
	return mmio_read32(d->device_cfg + off);
}

uint64_t virtio_cfg64(const struct virtio_dev *d, uint32_t off)
{
	cfg_check(d, off, 8);
	return mmio_read32(d->device_cfg + off) |
	       (uint64_t)mmio_read32(d->device_cfg + off + 4) << 32;
}

uint8_t virtio_cfg_begin(const struct virtio_dev *d)
{
	return cc_read8(d, CC_CONFIG_GENERATION);
}

int virtio_cfg_end(const struct virtio_dev *d, uint8_t generation)
{
	return cc_read8(d, CC_CONFIG_GENERATION) != generation;
}

uint16_t virtq_claim(struct virtq *q, unsigned count)
{
	uint16_t head = q->next_desc;

	q->next_desc = (uint16_t)((head + count) & (q->size - 1));
	return head;
}

void virtq_publish(struct virtq *q, uint16_t head)
{
	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	barrier();
	q->avail->idx = ++q->avail_idx;
}

uint16_t virtq_submit(struct virtq *q, const struct virtio_buf *bufs, unsigned n)
{
	uint16_t head, idx;
	unsigned i;

	if (!n || n > q->size)
		test_fail("virtio: chain of %u buffers for a queue of %u", n, q->size);
	head = virtq_claim(q, n);
	for (i = 0, idx = head; i < n; i++) {
		uint16_t next = (idx + 1) & (q->size - 1);

		q->desc[idx].addr = bufs[i].addr;
		q->desc[idx].len = bufs[i].len;
		q->desc[idx].flags = (bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				     (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
		q->desc[idx].next = i + 1 < n ? next : 0;
		idx = next;
	}
	virtq_publish(q, head);
	return head;
}

uint16_t virtq_submit_indirect(struct virtq *q, struct virtq_desc *table,
			       const struct virtio_buf *bufs, unsigned n)
{
	uint16_t head;
	unsigned i;

	if (!(q->dev->features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)))
		test_fail("virtio: indirect chain without VIRTIO_F_INDIRECT_DESC");
	if (!n || n > q->size)
		test_fail("virtio: indirect chain of %u for a queue of %u", n, q->size);
	for (i = 0; i < n; i++) {
		table[i] = (struct virtq_desc){
			.addr = bufs[i].addr,
			.len = bufs[i].len,
			.flags = (bufs[i].write ? VIRTQ_DESC_F_WRITE : 0) |
				 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0),
			.next = i + 1 < n ? (uint16_t)(i + 1) : 0,
		};
	}
	head = virtq_claim(q, 1);
	q->desc[head].addr = (uintptr_t)table;
	q->desc[head].len = n * sizeof(*table);
	q->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
	q->desc[head].next = 0;
	virtq_publish(q, head);
	return head;
}

void virtq_notify(struct virtq *q)
{
	/* avail.idx must be visible before the device hears of it. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	mmio_write16(q->notify_addr, q->index);
}

int virtq_wait(struct virtq *q, uint64_t timeout_us, struct virtq_used_elem *elem)
{
	uint64_t deadline = tsc_deadline_us(timeout_us), next_check = 0, now;

	for (;;) {
		if (q->used->idx != q->used_seen) {
			barrier();
			elem->id = q->used->ring[q->used_seen & (q->size - 1)].id;
			elem->len = q->used->ring[q->used_seen & (q->size - 1)].len;
			q->used_seen++;
			if (elem->id >= q->size)
				test_fail("virtio %s: used id %u, queue size %u",
					  name(q->dev), elem->id, q->size);
			return VIRTQ_DONE;
		}
		/* device_status is an exit each time: look now and then only. */
		now = rdtsc();
		if (now >= next_check) {
			if (virtio_status(q->dev) & VIRTIO_STATUS_NEEDS_RESET)
				return VIRTQ_NEEDS_RESET;
			if (now > deadline)
				return VIRTQ_TIMEOUT;
			next_check = tsc_deadline_us(STATUS_POLL_US);
		}
		cpu_pause();
	}
}

uint32_t virtq_transfer(struct virtq *q, const struct virtio_buf *bufs,
			unsigned n, int indirect, const char *what)
{
	struct virtq_used_elem e;
	uint16_t head;
	int r;

	head = indirect ? virtq_submit_indirect(q, q->indirect, bufs, n) :
			  virtq_submit(q, bufs, n);
	virtq_notify(q);
	r = virtq_wait(q, TRANSFER_TIMEOUT_US, &e);
	if (r == VIRTQ_TIMEOUT)
		test_fail("virtio %s: %s: no completion within %d s (status 0x%x)",
			  name(q->dev), what, TRANSFER_TIMEOUT_US / 1000000,
			  virtio_status(q->dev));
	if (r == VIRTQ_NEEDS_RESET)
		test_fail("virtio %s: %s: device needs reset (status 0x%x)",
			  name(q->dev), what, virtio_status(q->dev));
	if (e.id != head)
		test_fail("virtio %s: %s: used id %u, head was %u", name(q->dev),
			  what, e.id, head);
	return e.len;
}

/* 1 if [a, a + len) meets a memmap range of any type or a BAR. */
static int address_used(uint64_t a, uint64_t len)
{
	const struct boot_mem_range *map;
	unsigned n, i;

	map = boot_memmap(&n);
	for (i = 0; i < n; i++) {
		if (map[i].size && a < map[i].addr + map[i].size &&
		    map[i].addr < a + len)
			return 1;
	}
	/* 0xFEC00000-0xFFFFFFFF: IOAPIC, HPET, LAPIC, firmware. */
	if (a < 0x100000000ULL && a + len > 0xfec00000ULL)
		return 1;
	return pci_overlaps_bar(a, len);
}

uint64_t virtio_outside_ram(uint64_t len, int straddle)
{
	const struct boot_mem_range *map;
	uint64_t ram_end = 0, all_end = 0x100000000ULL, end, half = len / 2;
	unsigned n, i;

	map = boot_memmap(&n);
	for (i = 0; i < n; i++) {
		end = map[i].addr + map[i].size;
		if (map[i].type == BOOT_MEM_RAM && end > ram_end)
			ram_end = end;
		if (end > all_end)
			all_end = end;
	}
	if (straddle)
		return ram_end > half && !address_used(ram_end, len - half) ?
			       ram_end - half : 0;
	if (ram_end && !address_used(ram_end, len))
		return ram_end;
	return ((all_end + (1ULL << 30) - 1) & ~((1ULL << 30) - 1)) + (1ULL << 30);
}
