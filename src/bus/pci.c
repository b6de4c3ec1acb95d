/* PCI host bridge and configuration space; see pci.h. */
#include "bus/pci.h"

#include <errno.h>
#include <string.h>

#include "util/log.h"
#include "util/util.h"

#define CF8_ENABLE 0x80000000u
#define CONFIG_ADDRESS 0xcf8
#define CONFIG_DATA 0xcfc

void pci_dev_init(struct pci_dev *dev, const char *name, uint16_t vendor, uint16_t device,
		  uint32_t class_code, uint16_t subsys_vendor, uint16_t subsys_id)
{
	memset(dev, 0, sizeof(*dev));
	dev->name = name;
	put_le16(dev->cfg + PCI_VENDOR_ID, vendor);
	put_le16(dev->cfg + PCI_DEVICE_ID, device);
	dev->cfg[PCI_REVISION] = 1;
	dev->cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	put_le16(dev->cfg + PCI_CLASS_PROG + 1, (uint16_t)(class_code >> 8));
	put_le16(dev->cfg + PCI_SUBSYS_VENDOR, subsys_vendor);
	put_le16(dev->cfg + PCI_SUBSYS_ID, subsys_id);
	put_le16(dev->wmask + PCI_COMMAND,
		 PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE);
	dev->wmask[0x0c] = 0xff; /* cache line size */
	dev->wmask[0x0d] = 0xff; /* latency timer */
	dev->wmask[0x3c] = 0xff; /* interrupt line: a scratch byte for the OS */
	dev->next_cap = 0x40;
}

int pci_dev_set_bar(struct pci_dev *dev, unsigned bar, uint64_t size, bus_io_fn fn,
		    void *opaque)
{
	if (bar >= PCI_BARS - 1 || size < 4096 || (size & (size - 1)))
		return -EINVAL;
	dev->bar[bar] = (struct pci_bar){ .size = size, .is64 = true, .fn = fn, .opaque = opaque };
	dev->cfg[PCI_BAR0 + 4 * bar] = PCI_BAR_MEM64;
	/* Address bits above the size are writable: that is how sizing works. */
	uint64_t mask = ~(size - 1);
	put_le32(dev->wmask + PCI_BAR0 + 4 * bar, (uint32_t)mask & ~0xfu);
	put_le32(dev->wmask + PCI_BAR0 + 4 * bar + 4, (uint32_t)(mask >> 32));
	return 0;
}

uint8_t pci_add_cap(struct pci_dev *dev, uint8_t id, uint8_t len)
{
	unsigned off = ALIGN_UP((unsigned)dev->next_cap, 4);
	if (len < 2 || off + len > PCI_CFG_SIZE)
		return 0;
	dev->cfg[off] = id;
	dev->cfg[off + 1] = 0;
	if (dev->last_cap)
		dev->cfg[dev->last_cap + 1] = (uint8_t)off;
	else
		dev->cfg[PCI_CAP_PTR] = (uint8_t)off;
	put_le16(dev->cfg + PCI_STATUS, get_le16(dev->cfg + PCI_STATUS) | PCI_STATUS_CAP_LIST);
	dev->last_cap = (uint8_t)off;
	dev->next_cap = (uint8_t)MIN(off + len, (unsigned)PCI_CFG_SIZE - 1);
	return (uint8_t)off;
}

void pci_cfg_io(struct pci_bus *pb, unsigned slot, unsigned off, uint8_t *data, uint32_t len,
		bool is_write)
{
	struct pci_dev *dev = slot < PCI_SLOTS ? pb->slot[slot] : NULL;
	if (!dev || off >= PCI_CFG_SIZE || len > PCI_CFG_SIZE - off) {
		if (!is_write)
			memset(data, 0xff, len); /* no device: all ones, as on hardware */
		return;
	}
	if (!is_write) {
		memcpy(data, dev->cfg + off, len);
		return;
	}
	for (uint32_t i = 0; i < len; i++) {
		uint8_t m = dev->wmask[off + i];
		dev->cfg[off + i] = (uint8_t)((dev->cfg[off + i] & ~m) | (data[i] & m));
	}
	if (dev->cfg_written)
		dev->cfg_written(dev, off, len);
}

/* 0xCF8: the address latch, written and read as a whole dword. */
static void address_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
		       bool is_write)
{
	struct pci_bus *pb = opaque;
	pthread_mutex_lock(&pb->lock);
	if (len == 4 && is_write)
		pb->address = get_le32(data) & 0x80fffffcu;
	else if (len == 4)
		put_le32(data, pb->address);
	else if (!is_write)
		memset(data, 0xff, len);
	pthread_mutex_unlock(&pb->lock);
}

/* 0xCFC-0xCFF: the selected dword of bus 0, any width inside it. */
static void data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pci_bus *pb = opaque;
	pthread_mutex_lock(&pb->lock);
	uint32_t a = pb->address;
	unsigned bus = (a >> 16) & 0xff, slot = (a >> 11) & 0x1f, fn = (a >> 8) & 7;
	if (!(a & CF8_ENABLE) || bus != 0 || fn != 0 || offset + len > 4) {
		if (!is_write)
			memset(data, 0xff, len);
	} else {
		pci_cfg_io(pb, slot, (a & 0xfc) + (unsigned)offset, data, len, is_write);
	}
	pthread_mutex_unlock(&pb->lock);
}

int pci_bus_init(struct pci_bus *pb, struct bus *pio, struct bus *mmio, uint64_t mmio_base,
		 uint64_t mmio_size)
{
	memset(pb, 0, sizeof(*pb));
	pthread_mutex_init(&pb->lock, NULL);
	pb->mmio = mmio;
	pb->mmio_next = mmio_base;
	pb->mmio_end = mmio_base + mmio_size;
	int err = bus_add(pio, CONFIG_ADDRESS, 4, address_io, pb, "pci-address");
	if (!err)
		err = bus_add(pio, CONFIG_DATA, 4, data_io, pb, "pci-data");
	if (err)
		return err;
	/* Linux's type-1 sanity check wants a host bridge on bus 0. */
	pci_dev_init(&pb->host, "host-bridge", 0x1b36, 0x0008, 0x060000, 0x1b36, 0x0008);
	return pci_bus_add(pb, &pb->host);
}

void pci_bus_fini(struct pci_bus *pb) { pthread_mutex_destroy(&pb->lock); }

int pci_bus_add(struct pci_bus *pb, struct pci_dev *dev)
{
	unsigned slot = 0;
	while (slot < PCI_SLOTS && pb->slot[slot])
		slot++;
	if (slot == PCI_SLOTS)
		return -ENOSPC;
	/* Place every BAR first, so a device that does not fit leaves nothing
	 * registered behind. */
	uint64_t next = pb->mmio_next, addr[PCI_BARS] = { 0 };
	for (unsigned b = 0; b < PCI_BARS; b++) {
		struct pci_bar *bar = &dev->bar[b];
		if (!bar->size)
			continue;
		addr[b] = ALIGN_UP(next, bar->size);
		if (addr[b] < next || addr[b] > pb->mmio_end || bar->size > pb->mmio_end - addr[b]) {
			log_error("pci: no room for %s's %llu-byte BAR %u", dev->name,
				  (unsigned long long)bar->size, b);
			return -ENOSPC;
		}
		next = addr[b] + bar->size;
	}
	for (unsigned b = 0; b < PCI_BARS; b++) {
		struct pci_bar *bar = &dev->bar[b];
		if (!bar->size)
			continue;
		int err = bus_add(pb->mmio, addr[b], bar->size, bar->fn, bar->opaque, dev->name);
		if (err)
			return err; /* an overlap: a bug in mote's layout, logged by bus_add */
		bar->addr = addr[b];
		uint32_t flags = dev->cfg[PCI_BAR0 + 4 * b] & 0xfu;
		put_le32(dev->cfg + PCI_BAR0 + 4 * b, (uint32_t)addr[b] | flags);
		put_le32(dev->cfg + PCI_BAR0 + 4 * b + 4, (uint32_t)(addr[b] >> 32));
	}
	pb->mmio_next = next;
	/* Firmware would have enabled decoding of what it placed. */
	put_le16(dev->cfg + PCI_COMMAND, get_le16(dev->cfg + PCI_COMMAND) | PCI_COMMAND_MEMORY);
	pb->slot[slot] = dev;
	return 0;
}
