/* The fake machine of the state-loading harnesses; see fake_machine.h. */
#include "fake_machine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/log.h"
#include "virtio/rng.h"

/* ---- KVM, faked ---- */
int kvm_msr_index_list(const struct kvm *kvm, uint32_t **out, unsigned *n)
{
	/* What PVM's KVM lists (the seeds were taken there). */
	static const uint32_t list[] = {
		0x174,	    0x175,	0x176,	    0xc0000081, 0xc0000083, 0xc0000102, 0xc0000084,
		0xc0000082, 0x10,	0x277,	    0xc0010117, 0x1d9,	    0x1db,	0x1dc,
		0x1dd,	    0x1de,	0x12,	    0x11,	0x4b564d01, 0x4b564d00, 0x4b564d02,
		0x4b564d03, 0x4b564d04, 0x4b564d06, 0x4b564d07, 0x3b,	    0x6e0,	0x10a,
		0x345,	    0x1a0,	0x17a,	    0x17b,	0x34,	    0xce,	0x140,
		0xc001011f, 0x1fc,	0x8b,	    0xc0010015, 0x4b564d05,
	};
	*out = malloc(sizeof(list));
	if (!*out)
		return -ENOMEM;
	memcpy(*out, list, sizeof(list));
	*n = sizeof(list) / sizeof(list[0]);
	return 0;
}
#define OK_SET(name, type)                                  \
	int name(const struct kvm_vcpu *v, const type *arg) \
	{                                                   \
		return 0;                                   \
	}
OK_SET(kvm_vcpu_set_regs, struct kvm_regs)
OK_SET(kvm_vcpu_set_sregs, struct kvm_sregs)
OK_SET(kvm_vcpu_set_fpu, struct kvm_fpu)
OK_SET(kvm_vcpu_set_lapic, struct kvm_lapic_state)
OK_SET(kvm_vcpu_set_xcrs, struct kvm_xcrs)
OK_SET(kvm_vcpu_set_debugregs, struct kvm_debugregs)
OK_SET(kvm_vcpu_set_events, struct kvm_vcpu_events)
OK_SET(kvm_vcpu_set_mp_state, struct kvm_mp_state)
int kvm_vcpu_set_xsave(const struct kvm_vcpu *v, const void *buf, size_t size) { return 0; }
int kvm_vcpu_set_msrs(const struct kvm_vcpu *v, const struct kvm_msrs *m) { return (int)m->nmsrs; }
int kvm_set_irqchip(const struct kvm *kvm, const struct kvm_irqchip *c) { return 0; }
int kvm_set_pit(const struct kvm *kvm, const struct kvm_pit_state2 *p) { return 0; }
int kvm_set_clock(const struct kvm *kvm, const struct kvm_clock_data *c) { return 0; }
/* Saving is not fuzzed; these only satisfy the linker. */
#define NEVER(name, type)                             \
	int name(const struct kvm_vcpu *v, type *arg) \
	{                                             \
		abort();                              \
	}
NEVER(kvm_vcpu_get_regs, struct kvm_regs)
NEVER(kvm_vcpu_get_sregs, struct kvm_sregs)
NEVER(kvm_vcpu_get_fpu, struct kvm_fpu)
NEVER(kvm_vcpu_get_lapic, struct kvm_lapic_state)
NEVER(kvm_vcpu_get_xcrs, struct kvm_xcrs)
NEVER(kvm_vcpu_get_debugregs, struct kvm_debugregs)
NEVER(kvm_vcpu_get_events, struct kvm_vcpu_events)
NEVER(kvm_vcpu_get_mp_state, struct kvm_mp_state)
NEVER(kvm_vcpu_get_msrs, struct kvm_msrs)
int kvm_vcpu_get_xsave(const struct kvm_vcpu *v, void *buf, size_t size) { abort(); }
int kvm_get_irqchip(const struct kvm *kvm, struct kvm_irqchip *c) { abort(); }
int kvm_get_pit(const struct kvm *kvm, struct kvm_pit_state2 *p) { abort(); }
int kvm_get_clock(const struct kvm *kvm, struct kvm_clock_data *c) { abort(); }
int kvm_msi_route_alloc(struct kvm *kvm) { abort(); }
int kvm_msi_route_set(struct kvm *kvm, unsigned gsi, uint64_t a, uint32_t d) { abort(); }
int kvm_irqfd(const struct kvm *kvm, int fd, unsigned gsi, bool deassign) { abort(); }
int kvm_ioeventfd(const struct kvm *kvm, uint64_t a, int fd, bool pio, bool deassign) { abort(); }

static struct guest_mem mem;
static struct evloop loop;
static struct kvm kvm;
static struct kvm_vcpu vcpu;
static struct serial8250 serial;
static struct i8042 kbd;
static struct bus pio, mmio;
static struct pci_bus pb;
static struct virtio_pci vp;
static struct virtio_dev *dev;

void fake_machine_init(void)
{
	uint8_t *ram = mmap(NULL, FAKE_RAM_SIZE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	const struct guest_region r = { .gpa = 0, .size = FAKE_RAM_SIZE, .hva = ram };
	if (ram == MAP_FAILED || guest_mem_init_static(&mem, &r, 1) || evloop_init(&loop))
		abort();
	kvm.xsave_size = 4096;
	kvm.xcrs = kvm.debugregs = kvm.vcpu_events = kvm.clock = true;
	log_set_level(LOG_ERROR); /* a bad stream logs nothing here; KVM errors cannot happen */
}

void fake_machine_build(struct snap_vm *vm)
{
	serial8250_init(&serial, -1, (struct irq_line){ 0 });
	i8042_init(&kbd, (struct irq_line){ 0 }, NULL, NULL);
	bus_init(&pio, "pio");
	bus_init(&mmio, "mmio");
	dev = virtio_rng_create(&mem, &loop, NULL);
	if (!dev || pci_bus_init(&pb, &pio, &mmio, 0xc0000000ull, 0x20000000ull) ||
	    virtio_pci_init(&vp, dev, NULL, &loop) || pci_bus_add(&pb, &vp.pci))
		abort();
	*vm = (struct snap_vm){ .kvm = &kvm, .mem = &mem, .nr_vcpus = 1, .serial = &serial,
				.i8042 = &kbd, .pci = &pb, .vpci = &vp, .nr_virtio = 1 };
	vm->vcpu[0] = &vcpu;
}

void fake_machine_free(void)
{
	virtio_pci_fini(&vp);
	virtio_rng_destroy(dev);
	pci_bus_fini(&pb);
	bus_fini(&mmio);
	bus_fini(&pio);
	i8042_fini(&kbd);
	serial8250_fini(&serial);
}

void fake_machine_check(const struct snap_vm *vm)
{
	const struct virtio_pci *p = &vm->vpci[0];
	const struct virtio_dev *d = p->dev;
	if (d->features & ~d->host_features)
		abort();
	if (p->config_vector != MSIX_NO_VECTOR && p->config_vector >= p->msix.nr)
		abort();
	for (unsigned q = 0; q < d->ops->nr_queues; q++) {
		if (p->queue_vector[q] != MSIX_NO_VECTOR && p->queue_vector[q] >= p->msix.nr)
			abort();
		if (p->queue_enabled[q] &&
		    (!guest_mem_ptr(&mem, p->queue_desc[q], 16ull * p->queue_size[q]) ||
		     p->queue_size[q] > d->ops->queue_max || d->vq[q].size != p->queue_size[q]))
			abort();
	}
	if (p->msix.pending >> p->msix.nr)
		abort();
	if (vm->serial->rx_len > SERIAL_RX_SIZE || vm->i8042->q_len > I8042_QUEUE)
		abort();
}
