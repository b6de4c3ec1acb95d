/* Unit tests for src/arch/x86/acpi.c. The tables are walked the way a guest
 * does — RSDP → XSDT → FADT → DSDT, XSDT → MADT — reading only what the
 * pointers and lengths say, so a wrong pointer or length fails here rather
 * than in a booting Linux. Offsets are ACPI 6.4 §5.2. */
#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "util/util.h"

#include "unit.h"

#define RAM_SIZE (2u << 20)
static uint8_t ram[RAM_SIZE];
static struct guest_mem mem;

static int setup(void **state)
{
	struct guest_region r = {.gpa = 0, .size = RAM_SIZE, .hva = ram};
	memset(ram, 0xcc, sizeof(ram)); /* stale bytes the builder must clear */
	return guest_mem_init_static(&mem, &r, 1);
}

static uint8_t sum(const uint8_t *p, uint64_t len)
{
	uint8_t s = 0;
	for (uint64_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* A table at gpa: checks its header, that it lies inside the reserved ACPI
 * area, and that its checksum is right; returns it. */
static const uint8_t *table(uint64_t gpa, const char *sig, uint32_t min_len)
{
	assert_true(gpa >= X86_ACPI_BASE && gpa < X86_ACPI_END);
	const uint8_t *t = guest_mem_ptr(&mem, gpa, 36);
	assert_non_null(t);
	assert_memory_equal(t, sig, 4);
	uint32_t len = get_le32(t + 4);
	assert_true(len >= min_len);
	assert_true(gpa + len <= X86_ACPI_END);
	assert_int_equal(sum(t, len), 0);
	assert_memory_equal(t + 10, "MOTE  ", 6); /* OEM ID, as in the RSDP */
	return t;
}

struct tables {
	const uint8_t *rsdp, *xsdt, *fadt, *dsdt, *madt;
	uint64_t fadt_gpa, madt_gpa, dsdt_gpa, xsdt_gpa;
};

static void walk(uint64_t rsdp_gpa, struct tables *t)
{
	memset(t, 0, sizeof(*t));
	assert_int_equal(rsdp_gpa, X86_ACPI_BASE);
	/* Linux finds the RSDP by scanning 16-byte boundaries of 0xe0000-1 MiB. */
	assert_int_equal(rsdp_gpa % 16, 0);
	t->rsdp = guest_mem_ptr(&mem, rsdp_gpa, 36);
	assert_memory_equal(t->rsdp, "RSD PTR ", 8);
	assert_int_equal(sum(t->rsdp, 20), 0);
	assert_int_equal(sum(t->rsdp, 36), 0);
	assert_int_equal(t->rsdp[15], 2);
	assert_int_equal(get_le32(t->rsdp + 20), 36);
	t->xsdt_gpa = get_le64(t->rsdp + 24);
	t->xsdt = table(t->xsdt_gpa, "XSDT", 36);
	uint32_t xlen = get_le32(t->xsdt + 4);
	assert_int_equal((xlen - 36) % 8, 0);
	for (uint32_t off = 36; off < xlen; off += 8) {
		uint64_t gpa = get_le64(t->xsdt + off);
		const uint8_t *p = guest_mem_ptr(&mem, gpa, 4);
		assert_non_null(p);
		if (!memcmp(p, "FACP", 4)) {
			assert_null(t->fadt);
			t->fadt = table(gpa, "FACP", 276);
			t->fadt_gpa = gpa;
		} else if (!memcmp(p, "APIC", 4)) {
			assert_null(t->madt);
			t->madt = table(gpa, "APIC", 44);
			t->madt_gpa = gpa;
		} else {
			fail_msg("unexpected table %.4s in the XSDT", (const char *)p);
		}
	}
	assert_non_null(t->fadt);
	assert_non_null(t->madt);
	t->dsdt_gpa = get_le64(t->fadt + 140);		       /* X_DSDT */
	assert_int_equal(get_le32(t->fadt + 40), t->dsdt_gpa); /* and the 32-bit copy */
	t->dsdt = table(t->dsdt_gpa, "DSDT", 36);
}

static void test_rsdp_and_checksums(void **state)
{
	struct tables t;
	walk(x86_acpi_build(&mem, 1), &t);
	/* acpi_checksum is the byte that zeroes the sum */
	uint8_t buf[5] = {1, 2, 3, 4, 0};
	buf[4] = acpi_checksum(buf, 4);
	assert_int_equal(buf[4], (uint8_t)(0 - 10));
	assert_int_equal(sum(buf, 5), 0);
	assert_int_equal(acpi_checksum(buf, 0), 0);
}

/* Tables must not overlap each other. */
static void test_tables_disjoint(void **state)
{
	struct tables t;
	walk(x86_acpi_build(&mem, X86_MAX_CPUS), &t);
	struct {
		uint64_t a, len;
	} r[] = {
		{X86_ACPI_BASE, 36},
		{t.xsdt_gpa, get_le32(t.xsdt + 4)},
		{t.fadt_gpa, get_le32(t.fadt + 4)},
		{t.dsdt_gpa, get_le32(t.dsdt + 4)},
		{t.madt_gpa, get_le32(t.madt + 4)},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(r); i++)
		for (unsigned j = i + 1; j < ARRAY_SIZE(r); j++)
			assert_true(r[i].a + r[i].len <= r[j].a || r[j].a + r[j].len <= r[i].a);
}

static void check_gas_io8(const uint8_t *g, uint16_t port)
{
	assert_int_equal(g[0], 1); /* system I/O */
	assert_int_equal(g[1], 8); /* bit width */
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], 1); /* byte access */
	assert_int_equal(get_le64(g + 4), port);
}

static void test_fadt(void **state)
{
	struct tables t;
	walk(x86_acpi_build(&mem, 2), &t);
	const uint8_t *f = t.fadt;
	assert_int_equal(f[8], 6);   /* revision 6: hardware-reduced needs >= 5 */
	assert_int_equal(f[131], 4); /* minor version */
	uint32_t flags = get_le32(f + 112);
	assert_true(flags & (1u << 20)); /* HW_REDUCED_ACPI */
	assert_true(flags & (1u << 10)); /* RESET_REG_SUP */
	/* the sleep control/status and reset registers are the pm device's */
	check_gas_io8(f + 244, X86_PM_PORT);
	check_gas_io8(f + 256, X86_PM_PORT + 1);
	check_gas_io8(f + 116, X86_PM_PORT + 2);
	assert_int_equal(f[128], X86_RESET_VALUE);
	assert_true(X86_PM_PORT + 2 < X86_PM_PORT + X86_PM_LEN);
	/* no SCI, no PM1 blocks, no FACS in a hardware-reduced FADT */
	assert_int_equal(get_le16(f + 46), 0);		/* SCI_INT */
	assert_int_equal(get_le32(f + 56), 0);		/* PM1a_EVT_BLK */
	assert_int_equal(get_le64(f + 132), 0);		/* X_FIRMWARE_CTRL */
	assert_int_equal(get_le16(f + 109) & 0x2, 0x2); /* IAPC_BOOT_ARCH: 8042 present */
	assert_memory_equal(f + 268, "MOTE-KVM", 8);
}

/* A reader for the little AML the DSDT holds (ACPI 6.4 §20): it accepts
 * only what it knows, and every PkgLength must end exactly where its
 * contents do, so a miscounted length fails here instead of confusing
 * Linux's interpreter. */
struct aml_dev {
	char name[5];
	uint32_t hid, cid;
	int uid, seg, bbn;
	uint32_t bus_min, bus_max, mem_min, mem_max; /* address-space windows */
	uint16_t io_port[4];
	uint8_t io_len[4];
	unsigned nr_io, irq_mask;
};

struct aml_seen {
	int s5_type; /* -1: no \_S5 */
	unsigned s5_elements;
	struct aml_dev dev[4];
	unsigned nr_dev;
};

/* PkgLength at p (at most `avail` bytes): returns the length it encodes
 * (counting itself) and sets *n to its own size. */
static uint32_t pkg_length(const uint8_t *p, uint32_t avail, uint32_t *n)
{
	assert_true(avail >= 1);
	unsigned extra = p[0] >> 6;
	if (!extra) {
		*n = 1;
		return p[0] & 0x3f;
	}
	assert_int_equal(p[0] & 0x30, 0); /* reserved bits */
	assert_true(avail >= 1 + extra);
	uint32_t v = p[0] & 0xf;
	for (unsigned i = 0; i < extra; i++)
		v |= (uint32_t)p[1 + i] << (4 + 8 * i);
	*n = 1 + extra;
	return v;
}

/* An integer constant; returns its size. */
static uint32_t aml_int(const uint8_t *p, uint32_t avail, uint32_t *v)
{
	assert_true(avail >= 1);
	switch (p[0]) {
	case 0x00:
		*v = 0;
		return 1;
	case 0x01:
		*v = 1;
		return 1;
	case 0x0a:
		assert_true(avail >= 2);
		*v = p[1];
		return 2;
	case 0x0b:
		assert_true(avail >= 3);
		*v = get_le16(p + 1);
		return 3;
	case 0x0c:
		assert_true(avail >= 5);
		*v = get_le32(p + 1);
		return 5;
	}
	fail_msg("not an integer constant: op %#x", p[0]);
	return 0;
}

/* A ResourceTemplate buffer's descriptors, up to the End Tag. */
static void aml_crs(const uint8_t *p, uint32_t len, struct aml_dev *d)
{
	uint32_t off = 0;
	for (;;) {
		assert_true(off < len);
		uint8_t tag = p[off];
		if (tag == 0x79) { /* End Tag: its checksum byte, then nothing */
			assert_int_equal(off + 2, len);
			return;
		}
		if (tag == 0x47) { /* I/O port: min == max, 16-bit decode */
			assert_true(len - off >= 8);
			assert_int_equal(get_le16(p + off + 2), get_le16(p + off + 4));
			assert_true(d->nr_io < 4);
			d->io_port[d->nr_io] = get_le16(p + off + 2);
			d->io_len[d->nr_io++] = p[off + 7];
			off += 8;
		} else if (tag == 0x88) { /* Word address space: here, bus numbers */
			assert_true(len - off >= 16);
			assert_int_equal(get_le16(p + off + 1), 13);
			assert_int_equal(p[off + 3], 2); /* bus number range */
			assert_int_equal(p[off + 4], 0x0c); /* producer, min/max fixed */
			d->bus_min = get_le16(p + off + 8);
			d->bus_max = get_le16(p + off + 10);
			assert_int_equal(get_le16(p + off + 14), d->bus_max - d->bus_min + 1);
			off += 16;
		} else if (tag == 0x87) { /* DWord address space: memory window */
			assert_true(len - off >= 26);
			assert_int_equal(get_le16(p + off + 1), 23);
			assert_int_equal(p[off + 3], 0); /* memory */
			assert_int_equal(p[off + 4], 0x0c);
			d->mem_min = get_le32(p + off + 10);
			d->mem_max = get_le32(p + off + 14);
			assert_int_equal(get_le32(p + off + 22), d->mem_max - d->mem_min + 1);
			off += 26;
		} else if (tag == 0x22) { /* IRQ, edge, active high */
			assert_true(len - off >= 3);
			d->irq_mask = get_le16(p + off + 1);
			off += 3;
		} else {
			fail_msg("unexpected resource descriptor %#x", tag);
		}
	}
}

static void aml_terms(const uint8_t *p, uint32_t len, struct aml_seen *s, struct aml_dev *dev);

static void aml_name(const uint8_t *p, uint32_t len, uint32_t *used, struct aml_seen *s,
		     struct aml_dev *dev)
{
	assert_true(len >= 6);
	const uint8_t *name = p + 1, *obj = p + 5;
	uint32_t avail = len - 5, v, n;
	if (obj[0] == 0x12 || obj[0] == 0x11) { /* Package, Buffer */
		uint32_t pl = pkg_length(obj + 1, avail - 1, &n);
		assert_true(pl >= n && pl <= avail - 1);
		const uint8_t *body = obj + 1 + n;
		uint32_t blen = pl - n;
		if (obj[0] == 0x12) {
			assert_memory_equal(name, "_S5_", 4);
			assert_true(blen >= 2);
			s->s5_elements = body[0];
			uint32_t used_el = 1;
			for (unsigned i = 0; i < s->s5_elements; i++) {
				used_el += aml_int(body + used_el, blen - used_el, &v);
				if (i == 0)
					s->s5_type = (int)v;
			}
			assert_int_equal(used_el, blen);
		} else {
			assert_memory_equal(name, "_CRS", 4);
			assert_non_null(dev);
			uint32_t size, k = aml_int(body, blen, &size);
			assert_int_equal(size, blen - k);
			aml_crs(body + k, blen - k, dev);
		}
		*used = 5 + 1 + pl;
		return;
	}
	uint32_t k = aml_int(obj, avail, &v);
	assert_non_null(dev);
	if (!memcmp(name, "_HID", 4))
		dev->hid = v;
	else if (!memcmp(name, "_CID", 4))
		dev->cid = v;
	else if (!memcmp(name, "_UID", 4))
		dev->uid = (int)v;
	else if (!memcmp(name, "_SEG", 4))
		dev->seg = (int)v;
	else if (!memcmp(name, "_BBN", 4))
		dev->bbn = (int)v;
	else
		fail_msg("unexpected Name %.4s", (const char *)name);
	*used = 5 + k;
}

static void aml_terms(const uint8_t *p, uint32_t len, struct aml_seen *s, struct aml_dev *dev)
{
	uint32_t off = 0, n;
	while (off < len) {
		const uint8_t *t = p + off;
		uint32_t avail = len - off, used = 0;
		if (t[0] == 0x08) { /* NameOp */
			aml_name(t, avail, &used, s, dev);
		} else if (t[0] == 0x10 || (t[0] == 0x5b && avail >= 2 && t[1] == 0x82)) {
			/* ScopeOp / DeviceOp: PkgLength, NameSeg, terms */
			uint32_t op = t[0] == 0x10 ? 1 : 2;
			uint32_t pl = pkg_length(t + op, avail - op, &n);
			assert_true(pl >= n + 4 && pl <= avail - op);
			struct aml_dev *d = NULL;
			if (op == 2) {
				assert_true(s->nr_dev < 4);
				d = &s->dev[s->nr_dev++];
				memcpy(d->name, t + op + n, 4);
				d->uid = d->seg = d->bbn = -1;
			} else {
				assert_memory_equal(t + op + n, "_SB_", 4);
			}
			aml_terms(t + op + n + 4, pl - n - 4, s, d);
			used = op + pl;
		} else {
			fail_msg("unexpected AML op %#x at %u", t[0], off);
		}
		off += used;
	}
	assert_int_equal(off, len);
}

static const struct aml_dev *find_dev(const struct aml_seen *s, const char *name)
{
	for (unsigned i = 0; i < s->nr_dev; i++)
		if (!strcmp(s->dev[i].name, name))
			return &s->dev[i];
	fail_msg("no Device %s in the DSDT", name);
	return NULL;
}

static void test_dsdt(void **state)
{
	struct tables t;
	walk(x86_acpi_build(&mem, 1), &t);
	uint32_t len = get_le32(t.dsdt + 4);
	struct aml_seen s = {.s5_type = -1};
	aml_terms(t.dsdt + 36, len - 36, &s, NULL);
	/* \_S5 = Package { SLP_TYPa = 5, ... }: what pm.c powers off on */
	assert_int_equal(s.s5_type, ACPI_S5_TYPE);
	assert_int_equal(s.s5_elements, 4);
	/* COM1 and the keyboard, with the ports and IRQs mote's devices use:
	 * under hardware-reduced ACPI these are Linux's only IRQ mapping. */
	assert_int_equal(s.nr_dev, 3);
	const struct aml_dev *com = find_dev(&s, "COM1");
	assert_int_equal(com->hid, 0x0105d041); /* EisaId("PNP0501") */
	assert_int_equal(com->uid, 0);
	assert_int_equal(com->nr_io, 1);
	assert_int_equal(com->io_port[0], X86_COM1_PORT);
	assert_int_equal(com->io_len[0], 8);
	assert_int_equal(com->irq_mask, 1u << X86_COM1_IRQ);
	const struct aml_dev *kbd = find_dev(&s, "PS2K");
	assert_int_equal(kbd->hid, 0x0303d041); /* EisaId("PNP0303") */
	assert_int_equal(kbd->nr_io, 2);
	assert_int_equal(kbd->io_port[0], X86_I8042_DATA);
	assert_int_equal(kbd->io_len[0], 1);
	assert_int_equal(kbd->io_port[1], X86_I8042_CMD);
	assert_int_equal(kbd->io_len[1], 1);
	assert_int_equal(kbd->irq_mask, 1u << X86_I8042_IRQ);
	/* The PCI host bridge: PCIe/PCI IDs, bus 0 only, config ports, the BAR
	 * window exactly, and no IRQ (devices use MSI-X). */
	const struct aml_dev *pci = find_dev(&s, "PCI0");
	assert_int_equal(pci->hid, 0x080ad041); /* EisaId("PNP0A08") */
	assert_int_equal(pci->cid, 0x030ad041); /* EisaId("PNP0A03") */
	assert_int_equal(pci->seg, 0);
	assert_int_equal(pci->bbn, 0);
	assert_int_equal(pci->bus_min, 0);
	assert_int_equal(pci->bus_max, 0);
	assert_int_equal(pci->nr_io, 1);
	assert_int_equal(pci->io_port[0], 0xcf8);
	assert_int_equal(pci->io_len[0], 8);
	assert_int_equal(pci->mem_min, X86_PCI_MMIO_BASE);
	assert_int_equal(pci->mem_max, X86_PCI_MMIO_BASE + X86_PCI_MMIO_SIZE - 1);
	assert_int_equal(pci->irq_mask, 0);
}

/* MADT entries: walked by their own lengths, which must tile the table. */
static void check_madt(const uint8_t *m, unsigned nr_cpus)
{
	uint32_t len = get_le32(m + 4);
	assert_int_equal(get_le32(m + 36), X86_LAPIC_ADDR);
	unsigned cpus = 0, ioapics = 0;
	uint8_t seen[256] = {0};
	uint32_t off = 44;
	while (off < len) {
		assert_true(len - off >= 2);
		uint8_t type = m[off], elen = m[off + 1];
		assert_true(elen >= 2 && elen <= len - off);
		const uint8_t *e = m + off;
		switch (type) {
		case 0: /* Processor Local APIC */
			assert_int_equal(elen, 8);
			assert_int_equal(get_le32(e + 4) & 1, 1); /* enabled */
			assert_true(e[3] < nr_cpus);
			assert_int_equal(seen[e[3]], 0);
			seen[e[3]] = 1;
			assert_int_equal(e[2], e[3]); /* UID = APIC ID here */
			cpus++;
			break;
		case 1: /* I/O APIC */
			assert_int_equal(elen, 12);
			assert_int_equal(get_le32(e + 4), X86_IOAPIC_ADDR);
			assert_int_equal(get_le32(e + 8), 0); /* GSI base */
			ioapics++;
			break;
		case 2: /* Interrupt Source Override */
			assert_int_equal(elen, 10);
			break;
		case 4: /* Local APIC NMI */
			assert_int_equal(elen, 6);
			break;
		default:
			fail_msg("unexpected MADT entry type %u", type);
		}
		off += elen;
	}
	assert_int_equal(off, len);
	assert_int_equal(cpus, nr_cpus);
	assert_int_equal(ioapics, 1);
	for (unsigned i = 0; i < nr_cpus; i++)
		assert_int_equal(seen[i], 1);
}

static void test_madt_cpu_counts(void **state)
{
	static const unsigned counts[] = {1, 2, 3, 8, 64, 253, X86_MAX_CPUS};
	for (unsigned i = 0; i < ARRAY_SIZE(counts); i++) {
		struct tables t;
		walk(x86_acpi_build(&mem, counts[i]), &t);
		check_madt(t.madt, counts[i]);
	}
	/* Building fewer CPUs after more leaves no stale entries behind. */
	struct tables t;
	walk(x86_acpi_build(&mem, 2), &t);
	check_madt(t.madt, 2);
}

static void test_rejects_cpu_counts(void **state)
{
	assert_int_equal(x86_acpi_build(&mem, 0), 0);
	assert_int_equal(x86_acpi_build(&mem, X86_MAX_CPUS + 1), 0);
	assert_int_equal(x86_acpi_build(&mem, 255), 0);
	assert_int_equal(x86_acpi_build(&mem, ~0u), 0);
}

static void test_rejects_small_memory(void **state)
{
	/* guest RAM that stops one byte short of 1 MiB cannot hold the tables */
	struct guest_mem small;
	struct guest_region r = {.gpa = 0, .size = X86_ACPI_END - 1, .hva = ram};
	assert_int_equal(guest_mem_init_static(&small, &r, 1), 0);
	assert_int_equal(x86_acpi_build(&small, 1), 0);
	r.size = X86_ACPI_END;
	assert_int_equal(guest_mem_init_static(&small, &r, 1), 0);
	assert_int_equal(x86_acpi_build(&small, 1), X86_ACPI_BASE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp_and_checksums),
		cmocka_unit_test(test_tables_disjoint),
		cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_dsdt),
		cmocka_unit_test(test_madt_cpu_counts),
		cmocka_unit_test(test_rejects_cpu_counts),
		cmocka_unit_test(test_rejects_small_memory),
	};
	return cmocka_run_group_tests_name("acpi", tests, setup, NULL);
}
