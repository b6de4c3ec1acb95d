/* libFuzzer harness for PCI configuration and MSI-X: src/bus/pci.c (type-1
 * ports, config space, BAR placement), src/bus/msix.c (table, PBA, masking)
 * and the virtio-pci transport in front of them (src/virtio/pci.c,
 * virtio.c), with a virtio-rng device (src/virtio/rng.c) so that queue
 * kicks do real work. kvm is NULL: deliveries are counted, not injected.
 *
 * The input is a sequence of 12-byte accesses, replayed against a freshly
 * built bus each run:
 *   0      bits 0-2 what: 0 ports 0xCF8 + (off & 7); 1 MMIO at BAR 0 + off;
 *          2 MMIO around the end of BAR 0 (BAR end - 16 + (off & 31));
 *          3 guest RAM (rings and buffers): len bytes of value at off;
 *          4 an interrupt from the device: queue (off & 1 = 0) or config;
 *          5 run the event loop (queue kicks); 6-7 pci_cfg_io(slot off >> 8,
 *          offset off & 0xff)
 *          bit 7 write (else read)
 *   1      access length: (byte % 8) + 1
 *   2..3   off (little-endian)
 *   4..11  value (little-endian)
 *
 * Oracles beyond the sanitizers, checked after every access: read-only
 * configuration bits and the write masks never change; the address latch
 * keeps its reserved bits clear; reads addressing no function are all ones;
 * MSI-X state stays within its vectors; virtio vectors are valid or
 * NO_VECTOR, negotiated features were offered (with VERSION_1), and a queue
 * the transport calls enabled is the one set up in the device. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>

#include "bus/pci.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/pci.h"
#include "virtio/rng.h"

#define OP_SIZE	 12
#define PAGE	 4096u
#define RAM_SIZE 0x10000u
#define WIN_BASE 0xc0000000ull
#define WIN_SIZE 0x100000ull
#define BAR_SIZE 0x10000u
#define CF8	 0xcf8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* KVM is never reached with kvm NULL. */
int kvm_msi_route_alloc(struct kvm *kvm)
{
	abort();
}

int kvm_msi_route_set(struct kvm *kvm, unsigned gsi, uint64_t address, uint32_t data)
{
	abort();
}

int kvm_irqfd(const struct kvm *kvm, int fd, unsigned gsi, bool deassign)
{
	abort();
}

int kvm_ioeventfd(const struct kvm *kvm, uint64_t addr, int fd, bool pio, bool deassign)
{
	abort();
}

static uint8_t *ram;
static struct guest_mem mem;
static struct evloop loop;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t *p = mmap(NULL, RAM_SIZE + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || mprotect(p + PAGE, RAM_SIZE, PROT_READ | PROT_WRITE))
		abort();
	ram = p + PAGE;
	const struct guest_region r = {.gpa = 0, .size = RAM_SIZE, .hva = ram};
	if (guest_mem_init_static(&mem, &r, 1) || evloop_init(&loop))
		abort();
	log_set_level(LOG_ERROR); /* guest-triggered warnings are expected */
	return 0;
}

struct world {
	struct bus pio, mmio;
	struct pci_bus pb;
	struct virtio_dev *dev;
	struct virtio_pci vp;
	uint8_t host_cfg[PCI_CFG_SIZE], host_wmask[PCI_CFG_SIZE];
	uint8_t vp_cfg[PCI_CFG_SIZE], vp_wmask[PCI_CFG_SIZE];
};

static struct world w;

static void build(void)
{
	memset(&w, 0, sizeof(w));
	bus_init(&w.pio, "pio");
	bus_init(&w.mmio, "mmio");
	w.dev = virtio_rng_create(&mem, &loop, NULL);
	if (!w.dev || pci_bus_init(&w.pb, &w.pio, &w.mmio, WIN_BASE, WIN_SIZE) ||
	    virtio_pci_init(&w.vp, w.dev, NULL, &loop) || pci_bus_add(&w.pb, &w.vp.pci))
		abort();
	bus_seal(&w.pio);
	bus_seal(&w.mmio);
	memcpy(w.host_cfg, w.pb.host.cfg, PCI_CFG_SIZE);
	memcpy(w.host_wmask, w.pb.host.wmask, PCI_CFG_SIZE);
	memcpy(w.vp_cfg, w.vp.pci.cfg, PCI_CFG_SIZE);
	memcpy(w.vp_wmask, w.vp.pci.wmask, PCI_CFG_SIZE);
}

static void destroy(void)
{
	virtio_pci_fini(&w.vp);
	virtio_rng_destroy(w.dev);
	pci_bus_fini(&w.pb);
	bus_fini(&w.mmio);
	bus_fini(&w.pio);
}

static void check_cfg(const struct pci_dev *d, const uint8_t *cfg0, const uint8_t *wmask0)
{
	if (memcmp(d->wmask, wmask0, PCI_CFG_SIZE))
		abort();
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
		if ((d->cfg[i] ^ cfg0[i]) & ~wmask0[i])
			abort();
}

static bool vector_ok(const struct virtio_pci *vp, uint16_t v)
{
	return v == MSIX_NO_VECTOR || v < vp->msix.nr;
}

static void check_invariants(void)
{
	check_cfg(&w.pb.host, w.host_cfg, w.host_wmask);
	check_cfg(&w.vp.pci, w.vp_cfg, w.vp_wmask);
	if (w.pb.address & ~0x80fffffcu)
		abort();

	const struct msix *m = &w.vp.msix;
	if (m->nr < 64 && (m->pending >> m->nr))
		abort();
	for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++) {
		const struct msix_vector *v = &m->v[i];
		if (v->ctrl > 1)
			abort();
		if (i >= m->nr && (v->addr_lo || v->addr_hi || v->data || v->ctrl != 1))
			abort();
	}

	const struct virtio_pci *vp = &w.vp;
	const struct virtio_dev *dev = w.dev;
	if (!vector_ok(vp, vp->config_vector))
		abort();
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		if (!vector_ok(vp, vp->queue_vector[q]))
			abort();
		if (q >= dev->ops->nr_queues &&
		    (vp->queue_enabled[q] || vp->queue_size[q] != dev->ops->queue_max ||
		     vp->queue_desc[q] || vp->queue_vector[q] != MSIX_NO_VECTOR))
			abort();
		if (vp->queue_enabled[q] && (dev->vq[q].size != vp->queue_size[q] ||
					     dev->vq[q].desc_gpa != vp->queue_desc[q]))
			abort();
	}
	if (dev->status & VIRTIO_STATUS_FEATURES_OK) {
		if ((dev->features & ~dev->host_features) ||
		    !(dev->features & (1ull << VIRTIO_F_VERSION_1)))
			abort();
	}
}

/* What a read of the data port must give when it addresses no function. */
static bool no_function(void)
{
	uint32_t a = w.pb.address;
	unsigned slot = (a >> 11) & 0x1f;
	return !(a & 0x80000000u) || ((a >> 16) & 0xff) || ((a >> 8) & 7) || slot > 1;
}

static void run_loop(void)
{
	struct epoll_event ev[4];
	int n = epoll_wait(loop.epfd, ev, 4, 0);
	for (int i = 0; i < n; i++) {
		struct evloop_source *src = ev[i].data.ptr;
		src->fn(src, ev[i].events);
	}
}

static void one(const uint8_t *op)
{
	unsigned what = op[0] & 7;
	bool write = op[0] & 0x80;
	uint32_t len = (op[1] % 8) + 1;
	uint16_t off = get_le16(op + 2);
	uint8_t val[8];
	memcpy(val, op + 4, 8);
	uint64_t bar = w.vp.pci.bar[0].addr;

	switch (what) {
	case 0: {
		uint16_t port = (uint16_t)(CF8 + (off & 7));
		bool data_port = port >= CF8 + 4 && port + len <= CF8 + 8;
		bool none = no_function();
		bus_access(&w.pio, port, val, len, write);
		if (!write && data_port && none) {
			for (uint32_t i = 0; i < len; i++)
				if (val[i] != 0xff)
					abort();
		}
		break;
	}
	case 1:
		bus_access(&w.mmio, bar + off, val, len, write);
		break;
	case 2:
		bus_access(&w.mmio, bar + BAR_SIZE - 16 + (off & 31), val, len, write);
		break;
	case 3:
		if ((size_t)off + len <= RAM_SIZE)
			memcpy(ram + off, val, len);
		break;
	case 4:
		pthread_mutex_lock(&w.dev->lock);
		if (off & 1)
			w.dev->config_interrupt(w.dev);
		else
			w.dev->interrupt(w.dev, 0);
		pthread_mutex_unlock(&w.dev->lock);
		break;
	case 5:
		run_loop();
		break;
	default:
		pci_cfg_io(&w.pb, off >> 8, off & 0xff, val, len, write);
		break;
	}
	check_invariants();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	memset(ram, 0, RAM_SIZE);
	build();
	check_invariants();
	for (size_t at = 0; at + OP_SIZE <= size; at += OP_SIZE)
		one(data + at);
	run_loop();
	check_invariants();
	destroy();
	return 0;
}
