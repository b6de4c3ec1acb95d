/* ACPI tables; see acpi.h. The FADT sets HW_REDUCED_ACPI: no PM1 event
 * blocks, no SCI, no PM timer; power-off goes through the sleep control
 * register and reboot through the reset register, both byte ports of the
 * pm device (dev/pm.c). The DSDT holds \_S5 and the two ISA devices (COM1,
 * the i8042) with their resources, and the PCI host bridge (bus 0, config
 * ports 0xcf8, the BAR window; no _PRT: devices use MSI-X, not INTx).
 * Deliberately left out: SRAT/NUMA, HPET, FACS, MCFG (no ECAM). */
#include "arch/x86/acpi.h"

#include <string.h>

#include "arch/x86/aml.h"
#include "arch/x86/layout.h"
#include "util/util.h"

#define HDR_LEN 36
#define FADT_LEN 276
#define FADT_HW_REDUCED (1u << 20)
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_BOOT_8042 (1u << 1)
#define FADT_BOOT_NO_VGA (1u << 2)
#define FADT_BOOT_NO_CMOS_RTC (1u << 5)

static void header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put_le32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "MOTE  ", 6);
	memcpy(t + 16, "MOTEVM  ", 8);
	put_le32(t + 24, 1);
	memcpy(t + 28, "MOTE", 4);
	put_le32(t + 32, 1);
}

uint8_t acpi_checksum(const uint8_t *p, uint64_t len)
{
	uint8_t sum = 0;
	for (uint64_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)(0 - sum);
}

static void finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = acpi_checksum(t, len);
}

/* A Generic Address Structure for one byte in I/O space. */
static void gas_io8(uint8_t *p, uint16_t port)
{
	p[0] = 1; /* system I/O */
	p[1] = 8;
	p[2] = 0;
	p[3] = 1; /* byte access */
	put_le64(p + 4, port);
}

/* Device (NAME) { _HID, _UID, _CRS: I/O ports and one IRQ }. Without
 * this, hardware-reduced ACPI leaves Linux no legacy IRQ mapping for ISA
 * devices: the UART's and keyboard's request_irq() would fail. */
static void legacy_device(struct aml *scope, const char *name, const char *hid,
			  const uint16_t *ports, const uint8_t *lens, unsigned nr_ports,
			  unsigned irq)
{
	static const uint8_t device_op[2] = { 0x5b, 0x82 };
	struct aml dev = { .len = 0 }, res = { .len = 0 };
	aml_name_eisaid(&dev, "_HID", hid);
	aml_name_int(&dev, "_UID", 0);
	for (unsigned i = 0; i < nr_ports; i++)
		aml_res_io(&res, ports[i], lens[i]);
	aml_res_irq(&res, irq);
	aml_name_crs(&dev, &res);
	aml_package(scope, device_op, 2, name, &dev);
}

/* The PCI host bridge: bus 0, configuration ports, the BAR window. */
static void pci_root(struct aml *scope)
{
	static const uint8_t device_op[2] = { 0x5b, 0x82 };
	struct aml dev = { .len = 0 }, res = { .len = 0 };
	aml_name_eisaid(&dev, "_HID", "PNP0A08");
	aml_name_eisaid(&dev, "_CID", "PNP0A03");
	aml_name_int(&dev, "_SEG", 0);
	aml_name_int(&dev, "_BBN", 0);
	aml_name_int(&dev, "_UID", 0);
	aml_res_bus_range(&res, 0, 0);
	aml_res_io(&res, 0xcf8, 8);
	aml_res_mem32_window(&res, (uint32_t)X86_PCI_MMIO_BASE,
			     (uint32_t)(X86_PCI_MMIO_BASE + X86_PCI_MMIO_SIZE - 1));
	aml_name_crs(&dev, &res);
	aml_package(scope, device_op, 2, "PCI0", &dev);
}

static uint32_t build_dsdt(uint8_t *t)
{
	/* Name (_S5, Package (4) { 5, 0, 0, 0 }) */
	static const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04,
				      0x0a, ACPI_S5_TYPE, 0x00, 0x00, 0x00 };
	static const uint8_t scope_op = 0x10;
	static const uint16_t com1_port[] = { X86_COM1_PORT };
	static const uint8_t com1_len[] = { 8 };
	static const uint16_t kbd_ports[] = { X86_I8042_DATA, X86_I8042_CMD };
	static const uint8_t kbd_lens[] = { 1, 1 };
	struct aml sb = { .len = 0 }, body = { .len = 0 };
	legacy_device(&sb, "COM1", "PNP0501", com1_port, com1_len, 1, X86_COM1_IRQ);
	legacy_device(&sb, "PS2K", "PNP0303", kbd_ports, kbd_lens, 2, X86_I8042_IRQ);
	pci_root(&sb);
	aml_bytes(&body, s5, sizeof(s5));
	aml_package(&body, &scope_op, 1, "_SB_", &sb);
	if (body.overflow)
		return 0;
	uint32_t len = HDR_LEN + (uint32_t)body.len;
	header(t, "DSDT", len, 2);
	memcpy(t + HDR_LEN, body.buf, body.len);
	finish(t, len);
	return len;
}

static uint32_t build_fadt(uint8_t *t, uint64_t dsdt)
{
	memset(t, 0, FADT_LEN);
	header(t, "FACP", FADT_LEN, 6);
	put_le32(t + 40, (uint32_t)dsdt);
	put_le16(t + 109, FADT_BOOT_8042 | FADT_BOOT_NO_VGA | FADT_BOOT_NO_CMOS_RTC);
	put_le32(t + 112, FADT_HW_REDUCED | FADT_RESET_REG_SUP);
	gas_io8(t + 116, X86_PM_PORT + 2);
	t[128] = X86_RESET_VALUE;
	t[131] = 4; /* FADT minor version: 6.4 */
	put_le64(t + 140, dsdt);
	gas_io8(t + 244, X86_PM_PORT);
	gas_io8(t + 256, X86_PM_PORT + 1);
	memcpy(t + 268, "MOTE-KVM", 8);
	finish(t, FADT_LEN);
	return FADT_LEN;
}

static uint32_t build_madt(uint8_t *t, unsigned nr_cpus)
{
	uint32_t len = HDR_LEN + 8;
	put_le32(t + HDR_LEN, X86_LAPIC_ADDR);
	put_le32(t + HDR_LEN + 4, 0); /* no PCAT_COMPAT: the 8259s are not described */
	for (unsigned i = 0; i < nr_cpus; i++) {
		uint8_t *e = t + len;
		e[0] = 0; /* Processor Local APIC */
		e[1] = 8;
		e[2] = (uint8_t)i; /* ACPI processor UID */
		e[3] = (uint8_t)i; /* APIC ID */
		put_le32(e + 4, 1); /* enabled */
		len += 8;
	}
	uint8_t *io = t + len;
	io[0] = 1; /* I/O APIC */
	io[1] = 12;
	io[2] = 0;
	io[3] = 0;
	put_le32(io + 4, X86_IOAPIC_ADDR);
	put_le32(io + 8, 0);
	len += 12;
	uint8_t *iso = t + len;
	iso[0] = 2; /* Interrupt Source Override: the PIT's IRQ 0 is GSI 2 */
	iso[1] = 10;
	iso[2] = 0;
	iso[3] = 0;
	put_le32(iso + 4, 2);
	put_le16(iso + 8, 0);
	len += 10;
	uint8_t *nmi = t + len;
	nmi[0] = 4; /* Local APIC NMI on LINT1 of every processor */
	nmi[1] = 6;
	nmi[2] = 0xff;
	put_le16(nmi + 3, 0);
	nmi[5] = 1;
	len += 6;
	header(t, "APIC", len, 5);
	finish(t, len);
	return len;
}

uint64_t x86_acpi_build(const struct guest_mem *mem, unsigned nr_cpus)
{
	uint64_t size = X86_ACPI_END - X86_ACPI_BASE;
	uint8_t *base = guest_mem_ptr(mem, X86_ACPI_BASE, size);
	if (!base || nr_cpus == 0 || nr_cpus > X86_MAX_CPUS)
		return 0;
	memset(base, 0, size);
	/* RSDP at the start, then each table 16-byte aligned. */
	uint64_t off = 64, xsdt = off;
	const unsigned nr_entries = 2;
	off = ALIGN_UP(off + HDR_LEN + 8 * nr_entries, 16);
	uint64_t dsdt = off;
	uint32_t dsdt_len = build_dsdt(base + dsdt);
	if (!dsdt_len)
		return 0;
	off = ALIGN_UP(off + dsdt_len, 16);
	uint64_t fadt = off;
	off = ALIGN_UP(off + build_fadt(base + fadt, X86_ACPI_BASE + dsdt), 16);
	uint64_t madt = off;
	off += build_madt(base + madt, nr_cpus);
	if (off > size)
		return 0;

	uint8_t *x = base + xsdt;
	header(x, "XSDT", HDR_LEN + 8 * nr_entries, 1);
	put_le64(x + HDR_LEN, X86_ACPI_BASE + fadt);
	put_le64(x + HDR_LEN + 8, X86_ACPI_BASE + madt);
	finish(x, HDR_LEN + 8 * nr_entries);

	uint8_t *r = base;
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, "MOTE  ", 6);
	r[15] = 2; /* ACPI 2.0+: XSDT */
	put_le32(r + 20, 36);
	put_le64(r + 24, X86_ACPI_BASE + xsdt);
	r[8] = acpi_checksum(r, 20);
	r[32] = acpi_checksum(r, 36);
	return X86_ACPI_BASE;
}
