/*
 * pci.h — PCI configuration access for the test guests: configuration
 * mechanism #1 (ports 0xCF8/0xCFC), bus 0 only, BARs and capability lists.
 *
 * Follows the PCI Local Bus Specification 3.0, chapter 6 (configuration space
 * header type 0, BARs, the capability list). No bridges, no ECAM, no I/O BAR
 * assignment: the guests need only the memory BARs of devices on bus 0.
 *
 * What the firmware or monitor assigned is used as is. A memory BAR reading 0
 * (or every BAR, after pci_set_reassign(1)) is given an address from a window
 * below 4 GiB that starts at 0xE0000000 (command line "pci_window=0x..."),
 * skipping the memmap and every BAR already assigned on bus 0.
 */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdint.h>

/* Configuration space header offsets (type 0). */
#define PCI_VENDOR_ID		0x00
#define PCI_DEVICE_ID		0x02
#define PCI_COMMAND		0x04
#define PCI_STATUS		0x06
#define PCI_REVISION		0x08
#define PCI_PROG_IF		0x09
#define PCI_SUBCLASS		0x0a
#define PCI_CLASS		0x0b
#define PCI_HEADER_TYPE		0x0e
#define PCI_BAR0		0x10
#define PCI_SUBSYS_VENDOR	0x2c
#define PCI_SUBSYS_ID		0x2e
#define PCI_CAP_PTR		0x34

#define PCI_COMMAND_IO		0x0001
#define PCI_COMMAND_MEMORY	0x0002
#define PCI_COMMAND_MASTER	0x0004
#define PCI_STATUS_CAP_LIST	0x0010
#define PCI_HEADER_MULTI_FN	0x80

#define PCI_CAP_ID_MSIX		0x11
#define PCI_CAP_ID_VENDOR	0x09

#define PCI_MAX_DEVICES		64	/* functions pci_scan() reports at most */
#define PCI_NUM_BARS		6

struct pci_dev {
	uint8_t bus, dev, fn;
	uint8_t header_type;		/* without the multi-function bit */
	uint16_t vendor, device;
	uint16_t subsys_vendor, subsys_id;	/* header type 0 only */
	uint8_t class_code, subclass, prog_if, revision;
};

struct pci_bar {
	uint64_t base;		/* as decoded (or assigned); 0 when absent */
	uint64_t size;		/* 0 when the BAR is not implemented */
	int io;			/* 1: an I/O BAR (never assigned here) */
	int is64;		/* 1: a 64-bit memory BAR (uses idx + 1 too) */
	int prefetch;
};

uint8_t pci_read8(const struct pci_dev *d, uint16_t off);
uint16_t pci_read16(const struct pci_dev *d, uint16_t off);
uint32_t pci_read32(const struct pci_dev *d, uint16_t off);
void pci_write8(const struct pci_dev *d, uint16_t off, uint8_t v);
void pci_write16(const struct pci_dev *d, uint16_t off, uint16_t v);
void pci_write32(const struct pci_dev *d, uint16_t off, uint32_t v);

/*
 * Lists the functions on bus 0 (devices 0-31, function 0, and functions 1-7
 * of multi-function devices) into out[0..max), in that order. Returns how
 * many exist (which may exceed max); 0 when port 0xCF8 has no PCI host behind it.
 */
unsigned pci_scan(struct pci_dev *out, unsigned max);

/* "bb:dd.f" into buf (at least 8 bytes); returns buf. */
const char *pci_name(const struct pci_dev *d, char *buf);

/*
 * Capability list: returns the configuration offset of the first capability
 * (prev == 0) or of the one after prev, or 0 at the end. A list that is not
 * advertised, points below 0x40 or loops ends the walk (after 48 entries).
 */
uint8_t pci_cap_next(const struct pci_dev *d, uint8_t prev);

/* The first capability with the given ID after prev (0: from the start), or 0. */
uint8_t pci_cap_find(const struct pci_dev *d, uint8_t id, uint8_t prev);

/*
 * Reads BAR idx (sizing it with decoding off for the moment). An unassigned
 * memory BAR is assigned (see the top of this file); then memory decoding and
 * bus mastering are enabled in the command register, and a BAR above 4 GiB is
 * mapped (boot_map_mmio). Returns 0, or -1 when idx holds no implemented BAR
 * (out of range, size 0, or the upper half of a 64-bit BAR).
 */
int pci_bar(const struct pci_dev *d, unsigned idx, struct pci_bar *out);

/*
 * 1: pci_bar() moves every memory BAR it is asked for (once per BAR) to the
 * window, ignoring the firmware's choice, to test that path. The monitor must
 * then decode the BAR at its new address.
 */
void pci_set_reassign(int on);

/*
 * Returns 1 if [addr, addr + len) overlaps a memory BAR assigned on bus 0
 * (the MMIO a DMA test must not hit by accident), else 0.
 */
int pci_overlaps_bar(uint64_t addr, uint64_t len);

#endif
