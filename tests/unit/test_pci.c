/* Unit tests for src/bus/pci.c, driven the way a guest drives it: every
 * configuration access goes through bus_access() on the type-1 ports
 * 0xCF8/0xCFC..0xCFF of a real port-I/O bus, and BARs are checked on a real
 * MMIO bus (PCI Local Bus 3.0 §3.2.2.3.2 for the ports, §6.2.5.1 for BAR
 * sizing, §6.7 for the capability list). */
#include "bus/pci.h"
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

#define WIN_BASE 0xe0000000ull
#define WIN_SIZE 0x100000ull /* 1 MiB */
#define CF8	 0xcf8
#define CFC	 0xcfc

struct fixture {
	struct bus pio, mmio;
	struct pci_bus pb;
};

/* A recording BAR handler. */
struct rec {
	unsigned calls;
	uint64_t offset;
	uint32_t len;
	bool is_write;
	uint8_t data[8];
};

static void rec_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rec *r = opaque;
	r->calls++;
	r->offset = offset;
	r->len = len;
	r->is_write = is_write;
	if (is_write)
		memcpy(r->data, data, len);
	else
		memset(data, 0x5c, len);
}

static struct fixture *fx;

static int setup_window(uint64_t base, uint64_t size)
{
	fx = calloc(1, sizeof(*fx));
	if (!fx)
		return -1;
	bus_init(&fx->pio, "pio");
	bus_init(&fx->mmio, "mmio");
	if (pci_bus_init(&fx->pb, &fx->pio, &fx->mmio, base, size))
		return -1;
	return 0;
}

static int setup(void **state)
{
	if (setup_window(WIN_BASE, WIN_SIZE))
		return -1;
	return unit_log_begin(state);
}

static int teardown(void **state)
{
	pci_bus_fini(&fx->pb);
	bus_fini(&fx->mmio);
	bus_fini(&fx->pio);
	free(fx);
	fx = NULL;
	return unit_log_end(state);
}

/* ---- port helpers ---- */

static uint32_t port_read(uint16_t port, uint32_t len)
{
	uint8_t d[4];
	memset(d, 0x77, sizeof(d));
	bus_access(&fx->pio, port, d, len, false);
	uint32_t v = 0;
	for (uint32_t i = 0; i < len; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

static void port_write(uint16_t port, uint32_t len, uint32_t v)
{
	uint8_t d[4];
	put_le32(d, v);
	bus_access(&fx->pio, port, d, len, true);
}

static uint32_t addr_of(unsigned bus, unsigned slot, unsigned fn, unsigned off)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (off & 0xfc);
}

/* Reads len bytes at off of 00:slot.0 through 0xCF8/0xCFC+(off & 3). */
static uint32_t cfg_read(unsigned slot, unsigned off, uint32_t len)
{
	port_write(CF8, 4, addr_of(0, slot, 0, off));
	return port_read((uint16_t)(CFC + (off & 3)), len);
}

static void cfg_write(unsigned slot, unsigned off, uint32_t len, uint32_t v)
{
	port_write(CF8, 4, addr_of(0, slot, 0, off));
	port_write((uint16_t)(CFC + (off & 3)), len, v);
}

/* A device with one 64-bit BAR 0 of bar_size bytes (0: none). */
static void make_dev(struct pci_dev *dev, uint64_t bar_size, struct rec *r)
{
	pci_dev_init(dev, "testdev", 0x1af4, 0x1042, 0x018000, 0x1af4, 0x0002);
	if (bar_size)
		assert_int_equal(pci_dev_set_bar(dev, 0, bar_size, rec_io, r), 0);
}

/* ---- the address latch ---- */

static void test_address_latch_readback(void **state)
{
	port_write(CF8, 4, 0x80000000u);
	assert_int_equal(port_read(CF8, 4), 0x80000000u);
	/* Register bits 1:0 and reserved bits 30:24 read as zero. */
	port_write(CF8, 4, 0xffffffffu);
	assert_int_equal(port_read(CF8, 4), 0x80fffffcu);
	port_write(CF8, 4, 0x12345678u);
	assert_int_equal(port_read(CF8, 4), 0x00345678u);
}

/* Linux's type-1 probe does outb(0x01, 0xCFB) first: byte and word
 * accesses to the latch do not change it, and read as all ones. */
static void test_address_latch_partial_access(void **state)
{
	port_write(CF8, 4, 0x80001234u & ~3u);
	port_write(CF8 + 3, 1, 0x01);
	port_write(CF8, 2, 0xffff);
	port_write(CF8 + 1, 1, 0xff);
	assert_int_equal(port_read(CF8, 4), 0x80001234u & ~3u);
	assert_int_equal(port_read(CF8, 1), 0xff);
	assert_int_equal(port_read(CF8 + 2, 2), 0xffff);
}

/* ---- what reads as all ones ---- */

static void test_no_function_reads_ones(void **state)
{
	/* Sanity: with the right address, slot 0 answers. */
	port_write(CF8, 4, addr_of(0, 0, 0, 0));
	assert_int_equal(port_read(CFC, 4), 0x00081b36u);

	port_write(CF8, 4, addr_of(0, 0, 0, 0) & ~0x80000000u); /* disabled latch */
	assert_int_equal(port_read(CFC, 4), 0xffffffffu);
	assert_int_equal(port_read(CFC + 2, 2), 0xffffu);
	port_write(CF8, 4, addr_of(1, 0, 0, 0)); /* bus 1 */
	assert_int_equal(port_read(CFC, 4), 0xffffffffu);
	port_write(CF8, 4, addr_of(255, 0, 0, 0));
	assert_int_equal(port_read(CFC, 4), 0xffffffffu);
	port_write(CF8, 4, addr_of(0, 0, 1, 0)); /* function 1 */
	assert_int_equal(port_read(CFC, 4), 0xffffffffu);
	port_write(CF8, 4, addr_of(0, 0, 7, 0));
	assert_int_equal(port_read(CFC + 1, 1), 0xff);
	for (unsigned slot = 1; slot < PCI_SLOTS; slot++) /* empty slots */
		assert_int_equal(cfg_read(slot, 0, 4), 0xffffffffu);
}

/* Writes that address no function change nothing, in particular not the
 * host bridge that bus 0 slot 0 function 0 would select. */
static void test_no_function_ignores_writes(void **state)
{
	uint32_t cmd = cfg_read(0, PCI_COMMAND, 2);
	uint32_t line = cfg_read(0, 0x3c, 1);
	const uint32_t addrs[] = {
		addr_of(0, 0, 0, PCI_COMMAND) & ~0x80000000u,
		addr_of(1, 0, 0, PCI_COMMAND),
		addr_of(0, 0, 3, PCI_COMMAND),
	};
	for (unsigned i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		port_write(CF8, 4, addrs[i]);
		port_write(CFC, 2, cmd ^ PCI_COMMAND_MASTER);
		port_write(CF8, 4, addrs[i] + 0x38);
		port_write(CFC, 1, line ^ 0xff);
	}
	assert_int_equal(cfg_read(0, PCI_COMMAND, 2), cmd);
	assert_int_equal(cfg_read(0, 0x3c, 1), line);
}

/* ---- the host bridge ---- */

static void test_host_bridge(void **state)
{
	assert_int_equal(cfg_read(0, PCI_VENDOR_ID, 2), 0x1b36);
	assert_int_equal(cfg_read(0, PCI_DEVICE_ID, 2), 0x0008);
	assert_int_equal(cfg_read(0, PCI_REVISION, 4) >> 8, 0x060000);
	assert_int_equal(cfg_read(0, PCI_HEADER_TYPE, 1), 0);
	assert_int_equal(cfg_read(0, PCI_STATUS, 2), 0); /* no capabilities */
	assert_int_equal(cfg_read(0, PCI_CAP_PTR, 1), 0);
	assert_int_equal(cfg_read(0, PCI_SUBSYS_VENDOR, 4), 0x00081b36u);
	assert_ptr_equal(fx->pb.slot[0], &fx->pb.host);
	assert_null(fx->pb.slot[1]);
	/* No BARs: all six read 0 and the window is untouched. */
	for (unsigned b = 0; b < PCI_BARS; b++)
		assert_int_equal(cfg_read(0, PCI_BAR0 + 4 * b, 4), 0);
	assert_int_equal(fx->pb.mmio_next, WIN_BASE);
	assert_int_equal(fx->mmio.nr, 0);
	/* The two ports are registered, nothing else. */
	assert_int_equal(fx->pio.nr, 2);
	assert_non_null(bus_find(&fx->pio, CF8, 4));
	assert_non_null(bus_find(&fx->pio, CFC, 4));
	assert_null(bus_find(&fx->pio, CFC + 4, 1));
}

/* ---- devices and BARs ---- */

static void test_bar_placed_aligned_and_registered(void **state)
{
	struct pci_dev a, b;
	struct rec ra = {0}, rb = {0};
	make_dev(&a, 0x1000, &ra);
	make_dev(&b, 0x10000, &rb);
	assert_int_equal(pci_bus_add(&fx->pb, &a), 0);
	assert_int_equal(pci_bus_add(&fx->pb, &b), 0);
	assert_ptr_equal(fx->pb.slot[1], &a);
	assert_ptr_equal(fx->pb.slot[2], &b);

	/* a at the window's start; b aligned up to its 64 KiB size. */
	assert_int_equal(a.bar[0].addr, WIN_BASE);
	assert_int_equal(b.bar[0].addr, WIN_BASE + 0x10000);
	assert_int_equal(b.bar[0].addr % 0x10000, 0);
	assert_true(b.bar[0].addr + 0x10000 <= WIN_BASE + WIN_SIZE);
	assert_int_equal(fx->pb.mmio_next, WIN_BASE + 0x20000);

	/* The guest sees the addresses with the 64-bit memory type. */
	assert_int_equal(cfg_read(1, PCI_BAR0, 4), (uint32_t)WIN_BASE | PCI_BAR_MEM64);
	assert_int_equal(cfg_read(1, PCI_BAR0 + 4, 4), 0);
	assert_int_equal(cfg_read(2, PCI_BAR0, 4), (uint32_t)(WIN_BASE + 0x10000) | PCI_BAR_MEM64);
	assert_int_equal(cfg_read(2, PCI_BAR0 + 4, 4), 0);
	/* Memory decoding on, as firmware would leave it. */
	assert_int_equal(cfg_read(1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY);
	assert_int_equal(cfg_read(2, PCI_VENDOR_ID, 4), 0x10421af4u);

	/* The MMIO bus sends accesses to the right handler with BAR offsets. */
	uint8_t d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_int_equal(bus_access(&fx->mmio, WIN_BASE + 0x10000 + 0x3008, d, 8, true), 0);
	assert_int_equal(rb.calls, 1);
	assert_int_equal(rb.offset, 0x3008);
	assert_int_equal(rb.len, 8);
	assert_true(rb.is_write);
	assert_memory_equal(rb.data, d, 8);
	assert_int_equal(ra.calls, 0);
	assert_int_equal(bus_access(&fx->mmio, WIN_BASE + 0xffc, d, 4, false), 0);
	assert_int_equal(ra.calls, 1);
	assert_int_equal(ra.offset, 0xffc);
	assert_false(ra.is_write);
	assert_int_equal(d[0], 0x5c);
	/* The hole between them (a is 4 KiB) belongs to no one. */
	assert_int_equal(bus_access(&fx->mmio, WIN_BASE + 0x1000, d, 4, false), -ENOENT);
	assert_int_equal(ra.calls + rb.calls, 2);
}

/* Window base not aligned to the BAR: the BAR is aligned up inside it. */
static void test_bar_aligned_in_unaligned_window(void **state)
{
	teardown(state);
	assert_int_equal(setup_window(WIN_BASE + 0x1000, 0x8000), 0);
	unit_log_begin(state);
	struct pci_dev a, b;
	struct rec r = {0};
	make_dev(&a, 0x4000, &r);
	make_dev(&b, 0x4000, &r);
	assert_int_equal(pci_bus_add(&fx->pb, &a), 0);
	assert_int_equal(a.bar[0].addr, WIN_BASE + 0x4000);
	/* The next 16 KiB would end at +0xc000, past the window's +0x9000. */
	assert_int_equal(pci_bus_add(&fx->pb, &b), -ENOSPC);
	assert_log_contains("pci: no room for testdev's 16384-byte BAR 0");
	assert_int_equal(fx->mmio.nr, 1);
}

static void test_bar_sizing(void **state)
{
	struct pci_dev dev;
	struct rec r = {0};
	const uint64_t size = 0x10000;
	make_dev(&dev, size, &r);
	assert_int_equal(pci_bus_add(&fx->pb, &dev), 0);
	uint32_t lo = cfg_read(1, PCI_BAR0, 4), hi = cfg_read(1, PCI_BAR0 + 4, 4);
	assert_int_equal(lo, (uint32_t)WIN_BASE | PCI_BAR_MEM64);

	/* What Linux's __pci_read_base() does. */
	cfg_write(1, PCI_BAR0, 4, 0xffffffffu);
	cfg_write(1, PCI_BAR0 + 4, 4, 0xffffffffu);
	assert_int_equal(cfg_read(1, PCI_BAR0, 4), (uint32_t) ~(size - 1) | PCI_BAR_MEM64);
	assert_int_equal(cfg_read(1, PCI_BAR0 + 4, 4), 0xffffffffu);
	cfg_write(1, PCI_BAR0, 4, lo);
	cfg_write(1, PCI_BAR0 + 4, 4, hi);
	assert_int_equal(cfg_read(1, PCI_BAR0, 4), lo);
	assert_int_equal(cfg_read(1, PCI_BAR0 + 4, 4), hi);

	/* The type bits never change, nor do address bits below the size. */
	cfg_write(1, PCI_BAR0, 4, 0x0000fff0u);
	assert_int_equal(cfg_read(1, PCI_BAR0, 4), PCI_BAR_MEM64);
	cfg_write(1, PCI_BAR0, 4, lo);

	/* BARs are fixed: the device still answers where mote put it. */
	uint8_t d[4];
	assert_int_equal(bus_access(&fx->mmio, WIN_BASE + 4, d, 4, false), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.offset, 4);
	/* Unused BARs 2..5 stay 0 whatever is written. */
	for (unsigned b = 2; b < PCI_BARS; b++) {
		cfg_write(1, PCI_BAR0 + 4 * b, 4, 0xffffffffu);
		assert_int_equal(cfg_read(1, PCI_BAR0 + 4 * b, 4), 0);
	}
}

/* A 4 GiB BAR: the size mask reaches into the high dword. */
static void test_bar_sizing_above_4g(void **state)
{
	teardown(state);
	assert_int_equal(setup_window(0x4000000000ull, 0x100000000ull), 0);
	unit_log_begin(state);
	struct pci_dev dev;
	struct rec r = {0};
	make_dev(&dev, 0x100000000ull, &r);
	assert_int_equal(pci_bus_add(&fx->pb, &dev), 0);
	assert_int_equal(cfg_read(1, PCI_BAR0, 4), PCI_BAR_MEM64);
	assert_int_equal(cfg_read(1, PCI_BAR0 + 4, 4), 0x40);
	cfg_write(1, PCI_BAR0, 4, 0xffffffffu);
	cfg_write(1, PCI_BAR0 + 4, 4, 0xffffffffu);
	assert_int_equal(cfg_read(1, PCI_BAR0, 4), PCI_BAR_MEM64);
	assert_int_equal(cfg_read(1, PCI_BAR0 + 4, 4), 0xffffffffu);
}

static void test_set_bar_rejects(void **state)
{
	struct pci_dev dev;
	make_dev(&dev, 0, NULL);
	const uint64_t bad[] = {0,
				1,
				0x800,
				0xfff,
				0x1001,
				0x3000,
				0x10000 + 0x1000,
				0xffffffffffffffffull,
				0x8000000000000001ull};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (pci_dev_set_bar(&dev, 0, bad[i], rec_io, NULL) != -EINVAL)
			fail_msg("size %#llx accepted", (unsigned long long)bad[i]);
	}
	/* A 64-bit BAR needs the next register: BAR 5 cannot be one. */
	assert_int_equal(pci_dev_set_bar(&dev, 5, 0x1000, rec_io, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(&dev, 6, 0x1000, rec_io, NULL), -EINVAL);
	assert_int_equal(pci_dev_set_bar(&dev, ~0u, 0x1000, rec_io, NULL), -EINVAL); /* no wrap */
	/* Nothing was declared by the refusals. */
	for (unsigned b = 0; b < PCI_BARS; b++) {
		assert_int_equal(dev.bar[b].size, 0);
		assert_int_equal(get_le32(dev.cfg + PCI_BAR0 + 4 * b), 0);
		assert_int_equal(get_le32(dev.wmask + PCI_BAR0 + 4 * b), 0);
	}
	/* The smallest and a large power of two are fine; so is BAR 4. */
	assert_int_equal(pci_dev_set_bar(&dev, 0, 0x1000, rec_io, NULL), 0);
	assert_int_equal(pci_dev_set_bar(&dev, 4, 0x8000000000000000ull, rec_io, NULL), 0);
	assert_int_equal(dev.bar[4].size, 0x8000000000000000ull);
	assert_true(dev.bar[4].is64);
}

/* ---- read-only fields and the command register ---- */

static void test_readonly_fields(void **state)
{
	struct pci_dev dev;
	make_dev(&dev, 0x1000, NULL);
	assert_int_not_equal(pci_add_cap(&dev, 0x09, 8), 0);
	assert_int_equal(pci_bus_add(&fx->pb, &dev), 0);
	uint8_t before[PCI_CFG_SIZE];
	for (unsigned off = 0; off < PCI_CFG_SIZE; off += 4)
		put_le32(before + off, cfg_read(1, off, 4));
	assert_int_equal(get_le16(before + PCI_STATUS), PCI_STATUS_CAP_LIST);
	assert_int_equal(before[PCI_CAP_PTR], 0x40);

	const unsigned ro[] = {PCI_VENDOR_ID,
			       PCI_DEVICE_ID,
			       PCI_STATUS,
			       PCI_REVISION,
			       PCI_CLASS_PROG,
			       PCI_CLASS_PROG + 1,
			       PCI_CLASS_PROG + 2,
			       PCI_HEADER_TYPE,
			       PCI_SUBSYS_VENDOR,
			       PCI_SUBSYS_ID,
			       PCI_CAP_PTR,
			       PCI_INTERRUPT_PIN,
			       0x40,
			       0x41,
			       0x42,
			       0xff};
	for (unsigned i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		cfg_write(1, ro[i], 1, 0xa5);
		cfg_write(1, ro[i] & ~1u, 2, 0x5a5a);
	}
	cfg_write(1, 0, 4, 0);
	cfg_write(1, PCI_REVISION, 4, 0xffffffffu);
	cfg_write(1, PCI_CAP_PTR, 4, 0xffffffffu);
	for (unsigned i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		if (cfg_read(1, ro[i], 1) != before[ro[i]])
			fail_msg("read-only byte %#x changed to %#x", ro[i], cfg_read(1, ro[i], 1));
	}
	/* Status is read-only even where the guest writes ones to clear. */
	cfg_write(1, PCI_COMMAND, 4, 0xffff0000u | PCI_COMMAND_MEMORY);
	assert_int_equal(cfg_read(1, PCI_STATUS, 2), PCI_STATUS_CAP_LIST);
}

static void test_command_writable_bits(void **state)
{
	struct pci_dev dev;
	make_dev(&dev, 0, NULL);
	assert_int_equal(pci_bus_add(&fx->pb, &dev), 0);
	cfg_write(1, PCI_COMMAND, 2, 0xffff);
	assert_int_equal(cfg_read(1, PCI_COMMAND, 2),
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	cfg_write(1, PCI_COMMAND, 2, 0);
	assert_int_equal(cfg_read(1, PCI_COMMAND, 2), 0);
	cfg_write(1, PCI_COMMAND, 2, 0x0001); /* I/O space: no I/O BARs */
	assert_int_equal(cfg_read(1, PCI_COMMAND, 2), 0);
	cfg_write(1, PCI_COMMAND + 1, 1, 0xff); /* high byte: INTx disable only */
	assert_int_equal(cfg_read(1, PCI_COMMAND, 2), PCI_COMMAND_INTX_DISABLE);
	cfg_write(1, PCI_COMMAND, 1, PCI_COMMAND_MASTER);
	assert_int_equal(cfg_read(1, PCI_COMMAND, 2),
			 PCI_COMMAND_INTX_DISABLE | PCI_COMMAND_MASTER);
	/* The scratch registers are writable: cache line, latency, int line. */
	cfg_write(1, 0x3c, 1, 0x0b);
	assert_int_equal(cfg_read(1, 0x3c, 1), 0x0b);
	cfg_write(1, 0x0c, 2, 0x4010);
	assert_int_equal(cfg_read(1, 0x0c, 2), 0x4010);
}

/* ---- capabilities ---- */

static void test_capability_list_walk(void **state)
{
	struct pci_dev dev;
	make_dev(&dev, 0, NULL);
	assert_int_equal(pci_add_cap(&dev, 0x09, 16), 0x40);
	assert_int_equal(pci_add_cap(&dev, 0x11, 12), 0x50);
	assert_int_equal(pci_add_cap(&dev, 0x05, 3), 0x5c);
	assert_int_equal(pci_add_cap(&dev, 0x10, 2), 0x60); /* aligned up from 0x5f */
	assert_int_equal(pci_bus_add(&fx->pb, &dev), 0);

	const uint8_t ids[] = {0x09, 0x11, 0x05, 0x10};
	const uint8_t offs[] = {0x40, 0x50, 0x5c, 0x60};
	assert_true(cfg_read(1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST);
	unsigned n = 0, at = cfg_read(1, PCI_CAP_PTR, 1);
	while (at) {
		assert_in_range(n, 0, 3);
		assert_int_equal(at, offs[n]);
		assert_int_equal(at % 4, 0);
		assert_int_equal(cfg_read(1, at, 1), ids[n]);
		/* id and next as one word, too */
		assert_int_equal(cfg_read(1, at, 2) & 0xff, ids[n]);
		at = cfg_read(1, at + 1, 1);
		n++;
	}
	assert_int_equal(n, 4);
}

static void test_capability_space_full(void **state)
{
	struct pci_dev dev;
	make_dev(&dev, 0, NULL);
	assert_int_equal(pci_add_cap(&dev, 0x09, 1), 0); /* no room for id + next */
	assert_int_equal(pci_add_cap(&dev, 0x09, 0), 0);
	assert_int_equal(dev.cfg[PCI_CAP_PTR], 0);
	assert_int_equal(pci_add_cap(&dev, 0x09, 0x90), 0x40);
	assert_int_equal(pci_add_cap(&dev, 0x0a, 0x31), 0); /* 0xd0 + 0x31 > 256 */
	assert_int_equal(dev.cfg[0x41], 0);
	/* Exactly to the end: next_cap saturates and nothing more fits. */
	assert_int_equal(pci_add_cap(&dev, 0x0b, 0x30), 0xd0);
	assert_int_equal(dev.cfg[0x41], 0xd0);
	assert_int_equal(pci_add_cap(&dev, 0x0c, 2), 0);
	assert_int_equal(dev.cfg[0xd0], 0x0b);
	assert_int_equal(dev.cfg[0xd1], 0);
	assert_int_equal(dev.cfg[PCI_CAP_PTR], 0x40);
}

/* ---- access widths on 0xCFC..0xCFF ---- */

static void test_subdword_reads_every_offset(void **state)
{
	/* Host bridge dword 0 = 1b36 0008, dword 8 = 01 00 00 06. */
	const uint32_t dw[] = {0x00081b36u, 0x06000001u};
	const unsigned reg[] = {0x00, 0x08};
	for (unsigned r = 0; r < 2; r++) {
		port_write(CF8, 4, addr_of(0, 0, 0, reg[r]));
		assert_int_equal(port_read(CFC, 4), dw[r]);
		for (unsigned k = 0; k < 4; k++)
			assert_int_equal(port_read((uint16_t)(CFC + k), 1),
					 (dw[r] >> (8 * k)) & 0xff);
		for (unsigned k = 0; k < 3; k++)
			assert_int_equal(port_read((uint16_t)(CFC + k), 2),
					 (dw[r] >> (8 * k)) & 0xffff);
	}
}

/* Dword 0x0c: cache line (rw), latency (rw), header type (ro), BIST (ro). */
static void test_subdword_writes_every_offset(void **state)
{
	port_write(CF8, 4, addr_of(0, 0, 0, 0x0c));
	for (unsigned k = 0; k < 4; k++)
		port_write((uint16_t)(CFC + k), 1, 0x11 * (k + 1));
	assert_int_equal(port_read(CFC, 4), 0x00002211u);
	port_write(CFC + 1, 2, 0xeeaa); /* latency and header type */
	assert_int_equal(port_read(CFC, 4), 0x0000aa11u);
	port_write(CFC + 2, 2, 0xffff);
	assert_int_equal(port_read(CFC, 4), 0x0000aa11u);
	port_write(CFC, 2, 0x3344);
	assert_int_equal(port_read(CFC, 4), 0x00003344u);
	port_write(CFC, 4, 0xffffffffu);
	assert_int_equal(port_read(CFC, 4), 0x0000ffffu);
}

/* An access that runs past 0xCFF reaches no register: all ones, dropped. */
static void test_access_straddling_cff(void **state)
{
	port_write(CF8, 4, addr_of(0, 0, 0, 0x0c));
	port_write(CFC, 4, 0);
	uint64_t unassigned = atomic_load(&fx->pio.unassigned);
	assert_int_equal(port_read(CFC + 3, 2), 0xffff);
	assert_int_equal(port_read(CFC + 2, 4), 0xffffffffu);
	assert_int_equal(port_read(CFC + 1, 4), 0xffffffffu);
	port_write(CFC + 3, 2, 0xffff);
	port_write(CFC + 1, 4, 0xffffffffu);
	assert_int_equal(atomic_load(&fx->pio.unassigned), unassigned + 5);
	assert_int_equal(port_read(CFC, 4), 0);
	/* The same through the data handler itself, past the bus check. */
	const struct bus_range *data = bus_find(&fx->pio, CFC, 4);
	assert_non_null(data);
	uint8_t d[8];
	memset(d, 0, sizeof(d));
	data->fn(data->opaque, 2, d, 4, false);
	assert_int_equal(get_le32(d), 0xffffffffu);
	memset(d, 0xff, sizeof(d));
	data->fn(data->opaque, 0, d, 8, true);
	assert_int_equal(port_read(CFC, 4), 0);
	/* The latch is not touched by any of it. */
	assert_int_equal(port_read(CF8, 4), addr_of(0, 0, 0, 0x0c));
}

/* pci_cfg_io bounds the offset and length itself. */
static void test_cfg_io_bounds(void **state)
{
	struct pci_dev *host = &fx->pb.host;
	uint8_t cfg[PCI_CFG_SIZE], wmask[PCI_CFG_SIZE];
	memcpy(cfg, host->cfg, sizeof(cfg));
	memcpy(wmask, host->wmask, sizeof(wmask));
	uint8_t d[8];
	memset(d, 0, sizeof(d));
	pci_cfg_io(&fx->pb, 0, PCI_CFG_SIZE - 2, d, 4, false);
	assert_int_equal(get_le32(d), 0xffffffffu);
	memset(d, 0, sizeof(d));
	pci_cfg_io(&fx->pb, 0, PCI_CFG_SIZE, d, 1, false);
	assert_int_equal(d[0], 0xff);
	memset(d, 0, sizeof(d));
	pci_cfg_io(&fx->pb, PCI_SLOTS, 0, d, 4, false);
	assert_int_equal(get_le32(d), 0xffffffffu);
	memset(d, 0, sizeof(d));
	pci_cfg_io(&fx->pb, ~0u, 0, d, 4, false);
	assert_int_equal(get_le32(d), 0xffffffffu);
	memset(d, 0xff, sizeof(d));
	pci_cfg_io(&fx->pb, 0, PCI_CFG_SIZE - 1, d, 2, true); /* dropped, no overrun */
	pci_cfg_io(&fx->pb, 0, 0xffffffffu, d, 2, true);
	pci_cfg_io(&fx->pb, 0, PCI_CFG_SIZE - 4, d, 8, true);
	assert_memory_equal(host->cfg, cfg, sizeof(cfg));
	assert_memory_equal(host->wmask, wmask, sizeof(wmask));
	/* The last dword is still reachable. */
	memset(d, 0, sizeof(d));
	pci_cfg_io(&fx->pb, 0, PCI_CFG_SIZE - 4, d, 4, false);
	assert_int_equal(get_le32(d), 0);
}

/* cfg_written sees exactly the guest's write, after the mask applied. */
static unsigned hook_calls, hook_off, hook_len;
static uint16_t hook_cmd;
static void hook(struct pci_dev *dev, unsigned off, unsigned len)
{
	hook_calls++;
	hook_off = off;
	hook_len = len;
	hook_cmd = get_le16(dev->cfg + PCI_COMMAND);
}

static void test_cfg_written_hook(void **state)
{
	struct pci_dev dev;
	make_dev(&dev, 0, NULL);
	dev.cfg_written = hook;
	assert_int_equal(pci_bus_add(&fx->pb, &dev), 0);
	hook_calls = 0;
	cfg_write(1, PCI_COMMAND, 2, 0xffff);
	assert_int_equal(hook_calls, 1);
	assert_int_equal(hook_off, PCI_COMMAND);
	assert_int_equal(hook_len, 2);
	assert_int_equal(hook_cmd,
			 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	cfg_write(1, 0x3f, 1, 0);
	assert_int_equal(hook_calls, 2);
	assert_int_equal(hook_off, 0x3f);
	assert_int_equal(hook_len, 1);
	/* Reads and writes that address nothing do not call it. */
	cfg_read(1, PCI_COMMAND, 2);
	port_write(CF8, 4, addr_of(0, 1, 1, PCI_COMMAND));
	port_write(CFC, 2, 0);
	assert_int_equal(hook_calls, 2);
}

/* ---- running out ---- */

static void test_add_until_slots_run_out(void **state)
{
	static struct pci_dev devs[PCI_SLOTS];
	for (unsigned i = 1; i < PCI_SLOTS; i++) {
		make_dev(&devs[i], 0, NULL);
		put_le16(devs[i].cfg + PCI_DEVICE_ID, (uint16_t)(0x1000 + i));
		assert_int_equal(pci_bus_add(&fx->pb, &devs[i]), 0);
	}
	make_dev(&devs[0], 0, NULL);
	assert_int_equal(pci_bus_add(&fx->pb, &devs[0]), -ENOSPC);
	for (unsigned i = 1; i < PCI_SLOTS; i++)
		assert_int_equal(cfg_read(i, PCI_DEVICE_ID, 2), 0x1000 + i);
	/* The refused device was not half-added. */
	assert_int_equal(get_le16(devs[0].cfg + PCI_COMMAND), 0);
}

static void test_add_until_window_runs_out(void **state)
{
	teardown(state);
	assert_int_equal(setup_window(WIN_BASE, 0x10000), 0);
	unit_log_begin(state);
	struct pci_dev devs[6];
	struct rec r = {0};
	for (unsigned i = 0; i < 4; i++) {
		make_dev(&devs[i], 0x4000, &r);
		assert_int_equal(pci_bus_add(&fx->pb, &devs[i]), 0);
		assert_int_equal(devs[i].bar[0].addr, WIN_BASE + 0x4000 * i);
	}
	make_dev(&devs[4], 0x4000, &r);
	assert_int_equal(pci_bus_add(&fx->pb, &devs[4]), -ENOSPC);
	assert_int_equal(devs[4].bar[0].addr, 0);
	assert_int_equal(fx->mmio.nr, 4);
	assert_null(fx->pb.slot[5]);
	/* A device without BARs still gets the next slot. */
	make_dev(&devs[5], 0, NULL);
	assert_int_equal(pci_bus_add(&fx->pb, &devs[5]), 0);
	assert_ptr_equal(fx->pb.slot[5], &devs[5]);
	/* A BAR larger than the whole window. */
	teardown(state);
	assert_int_equal(setup_window(WIN_BASE, 0x10000), 0);
	unit_log_begin(state);
	make_dev(&devs[0], 0x20000, &r);
	assert_int_equal(pci_bus_add(&fx->pb, &devs[0]), -ENOSPC);
	assert_int_equal(fx->mmio.nr, 0);
}

/* A device whose second BAR does not fit is refused as a whole: its first
 * BAR must not stay registered on the MMIO bus (pointing at a device in no
 * slot) nor use up the window. */
static void test_add_refused_leaves_nothing(void **state)
{
	teardown(state);
	assert_int_equal(setup_window(WIN_BASE, 0x10000), 0);
	unit_log_begin(state);
	struct pci_dev a, b;
	struct rec r = {0};
	make_dev(&a, 0x1000, &r);
	assert_int_equal(pci_dev_set_bar(&a, 2, 0x10000, rec_io, &r), 0);
	assert_int_equal(pci_bus_add(&fx->pb, &a), -ENOSPC);
	assert_int_equal(fx->mmio.nr, 0);
	assert_int_equal(fx->pb.mmio_next, WIN_BASE);
	assert_null(fx->pb.slot[1]);
	/* so the window is still whole for the next device */
	make_dev(&b, 0x10000, &r);
	assert_int_equal(pci_bus_add(&fx->pb, &b), 0);
	assert_int_equal(b.bar[0].addr, WIN_BASE);
}

/* A window ending at the very top of the address space: no wrap. */
static void test_window_at_top(void **state)
{
	teardown(state);
	assert_int_equal(setup_window(0xffffffffffff0000ull, 0xffff), 0);
	unit_log_begin(state);
	struct pci_dev devs[4];
	struct rec r = {0};
	make_dev(&devs[0], 0x8000, &r);
	assert_int_equal(pci_bus_add(&fx->pb, &devs[0]), 0);
	assert_int_equal(devs[0].bar[0].addr, 0xffffffffffff0000ull);
	make_dev(&devs[1], 0x10000, &r); /* aligning up wraps to 0 */
	assert_int_equal(pci_bus_add(&fx->pb, &devs[1]), -ENOSPC);
	make_dev(&devs[2], 0x4000, &r);
	assert_int_equal(pci_bus_add(&fx->pb, &devs[2]), 0);
	assert_int_equal(devs[2].bar[0].addr, 0xffffffffffff8000ull);
	make_dev(&devs[3], 0x4000, &r); /* would end at 2^64, past the window */
	assert_int_equal(pci_bus_add(&fx->pb, &devs[3]), -ENOSPC);
	assert_int_equal(fx->mmio.nr, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_address_latch_readback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_address_latch_partial_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_function_reads_ones, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_function_ignores_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_bridge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_placed_aligned_and_registered, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bar_aligned_in_unaligned_window, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_sizing_above_4g, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_bar_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_writable_bits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capability_list_walk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capability_space_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subdword_reads_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_subdword_writes_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_access_straddling_cff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_io_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_written_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_until_slots_run_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_until_window_runs_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_refused_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_at_top, setup, teardown),
	};
	return cmocka_run_group_tests_name("pci", tests, NULL, NULL);
}
