/*
 * hostile — attacks the virtio-pci transport, MSI-X, PCI configuration and
 * the buses of a monitor while every other vCPU adds noise (lib/noise.h),
 * then checks that the devices recover and the rest of the machine still
 * works. The ring-walking attacks (loops, long chains, addresses outside
 * RAM, avail.idx jumps, nested indirect tables) are blk's hostile=1; this
 * guest covers what lies around the rings.
 *
 * Needs a virtio-blk disk of at least 1 sector and a virtio-rng device, and
 * at least 160 MiB of RAM (len-overflow points descriptors at 128 MiB).
 *
 * Command line: case=<name>, one of
 *   len-overflow   a chain whose lengths add up past 2^32 (all inside RAM)
 *   qsize          queue sizes 12 (not a power of two) and twice the maximum
 *   notify-early   a request and a kick before DRIVER_OK: nothing may be used;
 *                  after DRIVER_OK and a second kick it completes
 *   ro-fields      writes to read-only common-config fields, to device config,
 *                  ISR, the PBA, live queue registers, and a wrong-width access
 *   msix-garbage   MSI-X on, every table entry garbage and unmasked, vectors
 *                  out of range, misaligned table accesses, then requests
 *   unassigned     port I/O and MMIO where nothing is (reads are all ones)
 *   pci-config     writes to the host bridge, to absent functions, to the
 *                  disk's BARs, command register and read-only config bytes
 *   race           every AP attacks the disk at once (resets, status bits, queue
 *                  select/size/addresses/enable, MSI-X entries, kicks) while the
 *                  BSP keeps sending requests; rings the APs point the device at
 *                  lie in a zeroed scratch area, so the device can only write there
 *                  or into the BSP's own buffers
 *
 * Output:
 *   mote-test: hostile cpus=<vCPUs running noise + 1>
 *   mote-test: hostile <case> ok <what the device did>     (or FAIL <why>)
 *                  (race: "ok requests=<sent> completed=<n> attacks=<n>")
 *   mote-test: hostile <case> after: blk ok rng ok noise ok
 *   mote-test: done
 */
#include "guest.h"
#include "noise.h"
#include "pci.h"
#include "virtio.h"

/* Common configuration offsets (virtio 1.2 section 4.1.4.3). */
#define CC_DFSELECT	0x00
#define CC_DF		0x04
#define CC_GFSELECT	0x08
#define CC_GF		0x0c
#define CC_MSIX_CONFIG	0x10
#define CC_NUM_QUEUES	0x12
#define CC_STATUS	0x14
#define CC_GENERATION	0x15
#define CC_Q_SELECT	0x16
#define CC_Q_SIZE	0x18
#define CC_Q_MSIX	0x1a
#define CC_Q_ENABLE	0x1c
#define CC_Q_NOTIFY_OFF	0x1e
#define CC_Q_DESC	0x20
#define CC_Q_DRIVER	0x28
#define CC_Q_DEVICE	0x30

#define T_IN		0
#define S_OK		0
#define QSIZE		64
#define WAIT_US		2000000
#define QUIET_US	300000		/* how long "nothing happened" is watched */
#define BIG_LEN		0x8000000u	/* 128 MiB */
#define BIG_ADDR	0x2000000u	/* 32 MiB: inside RAM, clear of the image */

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

static struct virtio_dev blk, rng;
static struct blk_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t sector_buf[512] __attribute__((aligned(512)));
static uint8_t rng_buf[64];
static struct virtq_desc table[40] __attribute__((aligned(16)));
static const char *name;

static uint8_t cc8(struct virtio_dev *d, unsigned off) { return mmio_read8(d->common + off); }
static uint16_t cc16(struct virtio_dev *d, unsigned off) { return mmio_read16(d->common + off); }
static uint32_t cc32(struct virtio_dev *d, unsigned off) { return mmio_read32(d->common + off); }
static void wcc8(struct virtio_dev *d, unsigned off, uint8_t v) { mmio_write8(d->common + off, v); }
static void wcc16(struct virtio_dev *d, unsigned off, uint16_t v) { mmio_write16(d->common + off, v); }
static void wcc32(struct virtio_dev *d, unsigned off, uint32_t v) { mmio_write32(d->common + off, v); }

static void expect(int ok, const char *what, uint64_t got)
{
	if (!ok)
		test_fail("hostile %s: %s (read 0x%lx)", name, what, got);
}

/* A read of sector 0 through the ring; returns the status byte. */
static uint8_t blk_read(void)
{
	struct virtio_buf b[3] = {
		{ (uintptr_t)&hdr, sizeof(hdr), 0 },
		{ (uintptr_t)sector_buf, sizeof(sector_buf), 1 },
		{ (uintptr_t)&status_byte, 1, 1 },
	};

	hdr = (struct blk_hdr){ .type = T_IN };
	status_byte = 0xff;
	virtq_transfer(&blk.vq[0], b, 3, 0, "blk read");
	return status_byte;
}

static void rng_read(void)
{
	struct virtio_buf b = { (uintptr_t)rng_buf, sizeof(rng_buf), 1 };

	if (virtq_transfer(&rng.vq[0], &b, 1, 0, "rng read") == 0)
		test_fail("hostile %s: rng gave no bytes", name);
}

/* Waits for the device to set NEEDS_RESET (and not use the chain). */
static void expect_needs_reset(struct virtio_dev *d)
{
	uint64_t deadline = tsc_deadline_us(WAIT_US);

	while (!(virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET)) {
		if (rdtsc() > deadline)
			test_fail("hostile %s: no NEEDS_RESET (status 0x%x, used idx %u)", name,
				  virtio_status(d), d->vq[0].used->idx);
		cpu_pause();
	}
}

/* ---- the cases ------------------------------------------------------- */

static void c_len_overflow(void)
{
	struct virtq *q = &blk.vq[0];
	unsigned i, n = 0;
	uint16_t head;

	if (!(blk.features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)))
		test_fail("hostile %s: needs INDIRECT_DESC", name);
	/* Header, 33 x 128 MiB (4.125 GiB) writable, status: 35 entries. */
	table[n++] = (struct virtq_desc){ (uintptr_t)&hdr, sizeof(hdr), VIRTQ_DESC_F_NEXT, 1 };
	for (i = 0; i < 33; i++, n++)
		table[n] = (struct virtq_desc){ BIG_ADDR, BIG_LEN,
						VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
						(uint16_t)(n + 1) };
	table[n++] = (struct virtq_desc){ (uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0 };
	hdr = (struct blk_hdr){ .type = T_IN };
	status_byte = 0xff;
	head = virtq_claim(q, 1);
	q->desc[head].addr = (uintptr_t)table;
	q->desc[head].len = n * sizeof(table[0]);
	q->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
	q->desc[head].next = 0;
	virtq_publish(q, head);
	virtq_notify(q);
	expect_needs_reset(&blk);
	expect(status_byte == 0xff, "status byte written", status_byte);
	test_log("hostile %s ok needs-reset", name);
}

/* Up to FEATURES_OK, then queue 0 with the given size; returns device_status. */
static uint8_t try_queue_size(uint16_t size)
{
	struct virtq *q = &blk.vq[0];

	virtio_reset(&blk);
	wcc8(&blk, CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wcc32(&blk, CC_GFSELECT, 1);
	wcc32(&blk, CC_GF, 1); /* VERSION_1 */
	wcc8(&blk, CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				      VIRTIO_STATUS_FEATURES_OK);
	wcc16(&blk, CC_Q_SELECT, 0);
	wcc16(&blk, CC_Q_SIZE, size);
	wcc32(&blk, CC_Q_DESC, (uint32_t)(uintptr_t)q->desc);
	wcc32(&blk, CC_Q_DESC + 4, 0);
	wcc32(&blk, CC_Q_DRIVER, (uint32_t)(uintptr_t)q->avail);
	wcc32(&blk, CC_Q_DRIVER + 4, 0);
	wcc32(&blk, CC_Q_DEVICE, (uint32_t)(uintptr_t)q->used);
	wcc32(&blk, CC_Q_DEVICE + 4, 0);
	wcc16(&blk, CC_Q_ENABLE, 1);
	expect(cc16(&blk, CC_Q_ENABLE) == 0, "queue enabled", cc16(&blk, CC_Q_ENABLE));
	return virtio_status(&blk);
}

static void c_qsize(void)
{
	uint16_t max;

	virtio_reset(&blk);
	wcc16(&blk, CC_Q_SELECT, 0);
	max = cc16(&blk, CC_Q_SIZE);
	expect(try_queue_size(12) & VIRTIO_STATUS_NEEDS_RESET, "size 12: no NEEDS_RESET", 0);
	expect(try_queue_size((uint16_t)(max * 2)) & VIRTIO_STATUS_NEEDS_RESET,
	       "twice the maximum: no NEEDS_RESET", max);
	test_log("hostile %s ok needs-reset max=%u", name, max);
}

static void c_notify_early(void)
{
	struct virtio_buf b[3] = {
		{ (uintptr_t)&hdr, sizeof(hdr), 0 },
		{ (uintptr_t)sector_buf, sizeof(sector_buf), 1 },
		{ (uintptr_t)&status_byte, 1, 1 },
	};
	struct virtq_used_elem e;
	struct virtq *q = &blk.vq[0];

	virtio_init_begin(&blk, ~0ULL, 1, QSIZE);
	hdr = (struct blk_hdr){ .type = T_IN };
	status_byte = 0xff;
	virtq_submit(q, b, 3);
	virtq_notify(q);
	expect(virtq_wait(q, QUIET_US, &e) == VIRTQ_TIMEOUT, "used before DRIVER_OK",
	       q->used->idx);
	expect(status_byte == 0xff, "status written before DRIVER_OK", status_byte);
	virtio_driver_ok(&blk);
	virtq_notify(q);
	expect(virtq_wait(q, WAIT_US, &e) == VIRTQ_DONE, "no completion after DRIVER_OK", 0);
	expect(status_byte == S_OK, "status after DRIVER_OK", status_byte);
	test_log("hostile %s ok ignored-until-driver-ok", name);
}

static void c_ro_fields(void)
{
	uint32_t df, cap_lo, cap_hi;
	uint16_t nq, noff, qsize;
	uint8_t gen;
	uint64_t qdesc;

	wcc32(&blk, CC_DFSELECT, 0);
	df = cc32(&blk, CC_DF);
	nq = cc16(&blk, CC_NUM_QUEUES);
	gen = cc8(&blk, CC_GENERATION);
	wcc16(&blk, CC_Q_SELECT, 0);
	noff = cc16(&blk, CC_Q_NOTIFY_OFF);
	qsize = cc16(&blk, CC_Q_SIZE);
	qdesc = cc32(&blk, CC_Q_DESC) | (uint64_t)cc32(&blk, CC_Q_DESC + 4) << 32;
	cap_lo = mmio_read32(blk.device_cfg);
	cap_hi = mmio_read32(blk.device_cfg + 4);

	wcc32(&blk, CC_DF, ~df);
	wcc16(&blk, CC_NUM_QUEUES, 7);
	wcc8(&blk, CC_GENERATION, (uint8_t)(gen + 0x55));
	wcc16(&blk, CC_Q_NOTIFY_OFF, 9);
	/* Queue 0 is live: its size and addresses are frozen (§4.1.4.3.2). */
	wcc16(&blk, CC_Q_SIZE, 2);
	wcc32(&blk, CC_Q_DESC, 0x1000);
	wcc32(&blk, CC_Q_DESC + 4, 0xffffffff);
	/* The negotiated features are frozen after FEATURES_OK. */
	wcc32(&blk, CC_GFSELECT, 1);
	wcc32(&blk, CC_GF, 0);
	mmio_write32(blk.device_cfg, 0);	/* capacity */
	mmio_write32(blk.device_cfg + 4, 0);
	mmio_write8(blk.isr, 0xff);
	mmio_write8(blk.common + CC_Q_DESC + 1, 0x77);	/* wrong width */

	wcc32(&blk, CC_DFSELECT, 0);
	expect(cc32(&blk, CC_DF) == df, "device_feature changed", cc32(&blk, CC_DF));
	expect(cc16(&blk, CC_NUM_QUEUES) == nq, "num_queues changed", cc16(&blk, CC_NUM_QUEUES));
	expect(cc8(&blk, CC_GENERATION) == gen, "config_generation changed",
	       cc8(&blk, CC_GENERATION));
	expect(cc16(&blk, CC_Q_NOTIFY_OFF) == noff, "queue_notify_off changed",
	       cc16(&blk, CC_Q_NOTIFY_OFF));
	expect(cc16(&blk, CC_Q_SIZE) == qsize, "live queue_size changed", cc16(&blk, CC_Q_SIZE));
	expect((cc32(&blk, CC_Q_DESC) | (uint64_t)cc32(&blk, CC_Q_DESC + 4) << 32) == qdesc,
	       "live queue_desc changed", cc32(&blk, CC_Q_DESC));
	wcc32(&blk, CC_GFSELECT, 1);
	expect(cc32(&blk, CC_GF) == 1, "driver_feature changed after FEATURES_OK",
	       cc32(&blk, CC_GF));
	expect(mmio_read32(blk.device_cfg) == cap_lo && mmio_read32(blk.device_cfg + 4) == cap_hi,
	       "capacity changed", mmio_read32(blk.device_cfg));
	expect(!(virtio_status(&blk) & VIRTIO_STATUS_NEEDS_RESET), "NEEDS_RESET", 0);
	/* Still working, without a reset. */
	expect(blk_read() == S_OK, "read after the writes", status_byte);
	test_log("hostile %s ok unchanged", name);
}

static void c_msix_garbage(void)
{
	uint8_t cap = pci_cap_find(&blk.pci, PCI_CAP_ID_MSIX, 0);
	struct pci_bar bar;
	uint16_t ctrl, n, i;
	uint32_t tbl;
	uint64_t t;

	expect(cap != 0, "no MSI-X capability", 0);
	ctrl = pci_read16(&blk.pci, cap + 2);
	n = (uint16_t)((ctrl & 0x7ff) + 1);
	tbl = pci_read32(&blk.pci, cap + 4);
	expect(pci_bar(&blk.pci, tbl & 7, &bar) == 0, "MSI-X table BAR", tbl);
	t = bar.base + (tbl & ~7u);
	pci_write16(&blk.pci, cap + 2, (uint16_t)(ctrl | 0x8000));	/* enable */
	for (i = 0; i < n; i++) {
		/* Fixed delivery to an APIC ID no vCPU has; the rest garbage. */
		mmio_write32(t + 16 * i, 0xfedd000cu ^ (i << 4));
		mmio_write32(t + 16 * i + 4, 0xdeadbeef ^ i);
		mmio_write32(t + 16 * i + 8, 0xa5a500eeu ^ ((uint32_t)i << 16));
		mmio_write32(t + 16 * i + 12, 0xfffffffe);	/* unmasked, reserved bits set */
	}
	{
		uint32_t pba = pci_read32(&blk.pci, cap + 8);
		uint64_t p = bar.base + (pba & ~7u);
		uint32_t before = mmio_read32(p);

		mmio_write32(p, ~before);		/* the PBA is read-only */
		expect(mmio_read32(p) == before, "PBA written", mmio_read32(p));
	}
	mmio_write16(t + 2, 0x1234);			/* misaligned */
	mmio_write32(t + 16 * n, 0xffffffff);		/* one entry past the table */
	expect(mmio_read32(t + 16 * n) == 0xffffffff, "read past the table", mmio_read32(t + 16 * n));
	wcc16(&blk, CC_MSIX_CONFIG, 0);
	wcc16(&blk, CC_Q_SELECT, 0);
	wcc16(&blk, CC_Q_MSIX, 0x7fff);
	expect(cc16(&blk, CC_Q_MSIX) == VIRTIO_MSI_NO_VECTOR, "vector 0x7fff accepted",
	       cc16(&blk, CC_Q_MSIX));
	wcc16(&blk, CC_Q_MSIX, (uint16_t)(n - 1));
	expect(cc16(&blk, CC_Q_MSIX) == n - 1, "last vector refused", cc16(&blk, CC_Q_MSIX));
	blk.vq[0].avail->flags = 0;	/* ask for interrupts: they go nowhere */
	for (i = 0; i < 4; i++)
		expect(blk_read() == S_OK, "read with garbage MSI-X", status_byte);
	pci_write16(&blk.pci, cap + 2, ctrl);		/* MSI-X off again */
	test_log("hostile %s ok vectors=%u", name, n);
}

static void c_unassigned(void)
{
	uint32_t v;

	outb(NOISE_PORT, 0x5a);
	outw(NOISE_PORT + 2, 0x5a5a);
	outl(NOISE_PORT + 4, 0x5a5a5a5a);
	v = inb(NOISE_PORT);
	expect(v == 0xff, "port read", v);
	v = inw(NOISE_PORT + 2);
	expect(v == 0xffff, "port read", v);
	v = inl(NOISE_PORT + 4);
	expect(v == 0xffffffff, "port read", v);
	mmio_write32(NOISE_MMIO + 0x100, 0x5a5a5a5a);
	v = mmio_read32(NOISE_MMIO + 0x100);
	expect(v == 0xffffffff, "MMIO read", v);
	/* The PCI data port with the enable bit clear: nothing is selected. */
	outl(0xcf8, 0x00000000);
	v = inl(0xcfc);
	expect(v == 0xffffffff, "PCI data without enable", v);
	test_log("hostile %s ok all-ones", name);
}

static void c_pci_config(void)
{
	struct pci_dev host = { .bus = 0, .dev = 0 };
	struct pci_dev absent = { .bus = 0, .dev = 31 };
	struct pci_dev other_bus = { .bus = 1, .dev = 0 };
	uint32_t host_id = pci_read32(&host, PCI_VENDOR_ID);
	uint32_t id = pci_read32(&blk.pci, PCI_VENDOR_ID);
	uint32_t bar0 = pci_read32(&blk.pci, PCI_BAR0), bar1 = pci_read32(&blk.pci, PCI_BAR0 + 4);
	uint8_t capp = pci_read8(&blk.pci, PCI_CAP_PTR);
	uint16_t cmd = pci_read16(&blk.pci, PCI_COMMAND);
	uint8_t msix = pci_cap_find(&blk.pci, PCI_CAP_ID_MSIX, 0);
	uint32_t tbl = pci_read32(&blk.pci, msix + 4);
	unsigned off;

	for (off = 0; off < 0x40; off += 4)
		pci_write32(&host, (uint16_t)off, 0xffffffff);
	expect(pci_read32(&host, PCI_VENDOR_ID) == host_id, "host bridge ID changed",
	       pci_read32(&host, PCI_VENDOR_ID));
	pci_write32(&absent, PCI_BAR0, 0x12345678);
	expect(pci_read32(&absent, PCI_VENDOR_ID) == 0xffffffff, "absent function answers",
	       pci_read32(&absent, PCI_VENDOR_ID));
	pci_write32(&other_bus, PCI_COMMAND, 0xffffffff);
	expect(pci_read32(&other_bus, PCI_VENDOR_ID) == 0xffffffff, "bus 1 answers",
	       pci_read32(&other_bus, PCI_VENDOR_ID));

	pci_write32(&blk.pci, PCI_VENDOR_ID, 0);
	pci_write8(&blk.pci, PCI_CAP_PTR, 0x44);
	pci_write32(&blk.pci, msix + 4, 0xffffffff);
	pci_write32(&blk.pci, 0xfc, 0xffffffff);
	expect(pci_read32(&blk.pci, PCI_VENDOR_ID) == id, "disk ID changed",
	       pci_read32(&blk.pci, PCI_VENDOR_ID));
	expect(pci_read8(&blk.pci, PCI_CAP_PTR) == capp, "capability pointer changed",
	       pci_read8(&blk.pci, PCI_CAP_PTR));
	expect(pci_read32(&blk.pci, msix + 4) == tbl, "MSI-X table offset changed",
	       pci_read32(&blk.pci, msix + 4));
	/* BARs: sized, moved (mote keeps them where it put them), put back. */
	pci_write32(&blk.pci, PCI_BAR0, 0xffffffff);
	pci_write32(&blk.pci, PCI_BAR0 + 4, 0xffffffff);
	expect((pci_read32(&blk.pci, PCI_BAR0) & ~0xfu) != 0, "BAR0 size", 0);
	pci_write32(&blk.pci, PCI_BAR0, 0xe1230000);
	pci_write32(&blk.pci, PCI_BAR0 + 4, 0x7);
	pci_write32(&blk.pci, PCI_BAR0, bar0);
	pci_write32(&blk.pci, PCI_BAR0 + 4, bar1);
	pci_write16(&blk.pci, PCI_COMMAND, 0xffff);
	pci_write16(&blk.pci, PCI_COMMAND, cmd);
	expect(pci_read32(&blk.pci, PCI_BAR0) == bar0, "BAR0 not restored",
	       pci_read32(&blk.pci, PCI_BAR0));
	expect(blk_read() == S_OK, "read after the writes", status_byte);
	test_log("hostile %s ok ignored", name);
}

/* race: a scratch area for the rings the APs make up (zeroed: no descriptor
 * in it points anywhere), and per-AP xorshift generators. */
static uint8_t scratch[65536] __attribute__((aligned(4096)));
static uint64_t attacks;

static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void race_attack(unsigned slot, uint64_t round)
{
	static uint64_t seed[SMP_MAX_CPUS];
	uint64_t *s = &seed[slot % SMP_MAX_CPUS], r;
	uint64_t ring = (uintptr_t)scratch;

	if (!*s)
		*s = 0x9e3779b97f4a7c15ULL * (slot + 1);
	r = next_rand(s);
	switch (r % 10) {
	case 0: wcc8(&blk, CC_STATUS, 0); break;
	case 1: wcc8(&blk, CC_STATUS, (uint8_t)(r >> 8) & 0x0f); break;
	case 2: wcc16(&blk, CC_Q_SELECT, (uint16_t)((r >> 8) & 3)); break;
	case 3: wcc16(&blk, CC_Q_SIZE, (uint16_t)(1u << ((r >> 8) % 10))); break;
	case 4:
		wcc32(&blk, CC_Q_DESC + 8 * ((r >> 8) % 3), (uint32_t)(ring + ((r >> 16) & 0x7ff0)));
		wcc32(&blk, CC_Q_DESC + 8 * ((r >> 8) % 3) + 4, 0);
		break;
	case 5: wcc16(&blk, CC_Q_ENABLE, 1); break;
	case 6: wcc16(&blk, CC_Q_MSIX, (uint16_t)(r >> 8)); break;
	case 7: wcc16(&blk, CC_MSIX_CONFIG, (uint16_t)(r >> 8)); break;
	case 8: mmio_write32(blk.vq[0].notify_addr, 0); break;
	default: (void)cc32(&blk, (unsigned)((r >> 8) % 0x38) & ~3u); break;
	}
	__atomic_fetch_add(&attacks, 1, __ATOMIC_RELAXED);
	(void)round;
}

/*
 * Sets the disk up again by raw register writes, checking nothing: the APs
 * may undo any step at any moment. The BSP's ring memory and sizes stay as
 * the first virtio_init() left them.
 */
static void race_reinit(struct virtq *q)
{
	unsigned i;

	wcc8(&blk, CC_STATUS, 0);
	for (i = 0; i < 1000 && cc8(&blk, CC_STATUS); i++)
		cpu_pause();
	q->avail->idx = 0;
	q->used->idx = 0;
	q->avail_idx = q->used_seen = q->next_desc = 0;
	wcc8(&blk, CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wcc32(&blk, CC_GFSELECT, 0);
	wcc32(&blk, CC_GF, (uint32_t)blk.features);
	wcc32(&blk, CC_GFSELECT, 1);
	wcc32(&blk, CC_GF, (uint32_t)(blk.features >> 32));
	wcc8(&blk, CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				      VIRTIO_STATUS_FEATURES_OK);
	wcc16(&blk, CC_Q_SELECT, 0);
	wcc16(&blk, CC_Q_SIZE, q->size);
	wcc32(&blk, CC_Q_DESC, (uint32_t)(uintptr_t)q->desc);
	wcc32(&blk, CC_Q_DESC + 4, 0);
	wcc32(&blk, CC_Q_DRIVER, (uint32_t)(uintptr_t)q->avail);
	wcc32(&blk, CC_Q_DRIVER + 4, 0);
	wcc32(&blk, CC_Q_DEVICE, (uint32_t)(uintptr_t)q->used);
	wcc32(&blk, CC_Q_DEVICE + 4, 0);
	wcc16(&blk, CC_Q_MSIX, VIRTIO_MSI_NO_VECTOR);
	wcc16(&blk, CC_Q_ENABLE, 1);
	wcc8(&blk, CC_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				      VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/*
 * The BSP keeps sending reads while the APs attack; what completes is
 * counted, nothing is checked (the APs may have reset the device under any
 * request). Afterwards guest_main resets the device and checks it works.
 */
static void c_race(void)
{
	struct virtio_buf b[3] = {
		{ (uintptr_t)&hdr, sizeof(hdr), 0 },
		{ (uintptr_t)sector_buf, sizeof(sector_buf), 1 },
		{ (uintptr_t)&status_byte, 1, 1 },
	};
	struct virtq *q = &blk.vq[0];
	unsigned i, sent = 0, completed = 0;

	for (i = 0; i < 300; i++) {
		uint64_t deadline;

		if (i % 30 == 0 || (virtio_status(&blk) & VIRTIO_STATUS_NEEDS_RESET))
			race_reinit(q);
		hdr = (struct blk_hdr){ .type = T_IN };
		status_byte = 0xff;
		virtq_submit(q, b, 3);
		virtq_notify(q);
		sent++;
		deadline = tsc_deadline_us(2000);
		while (q->used->idx == q->used_seen && rdtsc() < deadline)
			cpu_pause();
		if (q->used->idx != q->used_seen) {
			completed++;
			q->used_seen = q->used->idx;
		}
	}
	test_log("hostile %s ok requests=%u completed=%u attacks=%lu", name, sent, completed,
		 __atomic_load_n(&attacks, __ATOMIC_RELAXED));
}

struct hcase {
	const char *name;
	void (*run)(void);
};

static const struct hcase cases[] = {
	{ "len-overflow", c_len_overflow },
	{ "qsize", c_qsize },
	{ "notify-early", c_notify_early },
	{ "ro-fields", c_ro_fields },
	{ "msix-garbage", c_msix_garbage },
	{ "unassigned", c_unassigned },
	{ "pci-config", c_pci_config },
	{ "race", c_race },
};

void guest_main(void)
{
	char want[32];
	const struct hcase *c = NULL;
	unsigned i, cpus;

	if (!cmdline_get("case", want, sizeof(want)))
		test_fail("hostile: no case= on the command line");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (!strcmp(want, cases[i].name))
			c = &cases[i];
	if (!c)
		test_fail("hostile: unknown case %s", want);
	name = c->name;
	if (virtio_probe(VIRTIO_ID_BLK, &blk, 1) != 1 || virtio_probe(VIRTIO_ID_RNG, &rng, 1) != 1)
		test_fail("hostile: needs a virtio-blk and a virtio-rng device");
	virtio_init(&blk, ~0ULL, 1, QSIZE);
	virtio_init(&rng, 0, 1, 16);

	cpus = (c->run == c_race ? noise_start_with(race_attack) : noise_start()) + 1;
	test_log("hostile cpus=%u", cpus);
	c->run();
	if (c->run == c_race)
		noise_stop(); /* the attacks end before the device is checked */
	/* The other device and the console were never touched: still fine. */
	rng_read();
	/* The attacked device: reset, set up again, one ordinary read. */
	virtio_init(&blk, ~0ULL, 1, QSIZE);
	if (blk_read() != S_OK)
		test_fail("hostile %s: read after reset: status %u", name, status_byte);
	rng_read();
	if (c->run != c_race)
		noise_stop();
	test_log("hostile %s after: blk ok rng ok noise ok", name);
	test_done();
}
