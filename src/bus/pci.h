/* PCI: one host bridge, bus 0, configuration through the type-1 ports
 * 0xCF8/0xCFC (PCI Local Bus 3.0 §3.2.2.3.2). Just enough for Linux and
 * mote's devices: a 256-byte configuration header per function with a
 * write mask, memory BARs that mote places in the 32-bit hole at set-up, a
 * capability list, and a hook for writes the device must see (MSI-X enable).
 *
 * BARs are fixed: the guest can size them (write all ones, read the size
 * mask) and the register behaves as hardware does, but the device stays
 * where mote put it, so the MMIO bus never changes after set-up (and needs
 * no lock). Linux keeps firmware-assigned BARs that lie inside the host
 * bridge window the DSDT describes. Deliberately absent: I/O BARs, INTx,
 * bridges, extended (PCIe) configuration space, hotplug. */
#ifndef MOTE_PCI_H
#define MOTE_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/bus.h"

#define PCI_SLOTS 32
#define PCI_CFG_SIZE 256
#define PCI_BARS 6

/* Configuration header offsets. */
#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID 0x2e
#define PCI_CAP_PTR 0x34
#define PCI_INTERRUPT_PIN 0x3d

#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_BAR_MEM64 0x4

struct pci_dev;

struct pci_bar {
	uint64_t size;   /* power of two >= 4 KiB, or 0 for an unused BAR */
	uint64_t addr;   /* where mote placed it */
	bool is64;       /* a 64-bit BAR also uses the next register */
	bus_io_fn fn;    /* MMIO handler, offset from the BAR's start */
	void *opaque;
};

struct pci_dev {
	const char *name;
	uint8_t cfg[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE]; /* bits the guest may change */
	struct pci_bar bar[PCI_BARS];
	uint8_t next_cap;            /* where pci_add_cap puts the next capability */
	uint8_t last_cap;
	/* Called after the guest wrote [off, off + len) (lock held: keep it short). */
	void (*cfg_written)(struct pci_dev *dev, unsigned off, unsigned len);
	void *opaque;
};

struct pci_bus {
	pthread_mutex_t lock;        /* config space accesses */
	uint32_t address;            /* the 0xCF8 latch */
	struct pci_dev *slot[PCI_SLOTS];
	uint64_t mmio_next, mmio_end;/* BAR window still free */
	struct bus *mmio;
	struct pci_dev host;         /* 00:00.0, the host bridge */
};

/* Registers the config ports on pio; BARs will be placed in
 * [mmio_base, mmio_base + mmio_size) on mmio. Adds the host bridge. */
int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio, uint64_t mmio_base,
		 uint64_t mmio_size);
void pci_bus_fini(struct pci_bus *pb);

/* Fills a device's header: IDs, class (class << 16 | subclass << 8 | prog-if). */
void pci_dev_init(struct pci_dev *dev, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id);
/* Declares a 64-bit memory BAR of size bytes (power of two) served by fn. */
int pci_dev_set_bar(struct pci_dev *dev, unsigned bar, uint64_t size, bus_io_fn fn,
		    void *opaque);
/* Appends a capability of len bytes (id at +0, next at +1); returns its
 * offset in configuration space, or 0 when the space is full. */
uint8_t pci_add_cap(struct pci_dev *dev, uint8_t id, uint8_t len);

/* Puts dev in the next free slot, places its BARs, registers them on the
 * MMIO bus. 0, -ENOSPC (no slot or window left) or a bus_add error. */
int pci_bus_add(struct pci_bus *pb, struct pci_dev *dev);

/* Configuration access as the type-1 mechanism delivers it (bus tests). */
void pci_cfg_io(struct pci_bus *pb, unsigned slot, unsigned off, uint8_t *data, uint32_t len,
		bool is_write);

#endif
