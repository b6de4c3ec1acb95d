/* VM-level KVM calls; see kvm.h. */
#include "kvm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

/* Capabilities mote cannot run without, with the name a user can search. */
static const struct {
	long cap;
	const char *name;
} required_caps[] = {
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR" },
};

static int xioctl(int fd, unsigned long req, const void *arg)
{
	int r;
	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

int kvm_check_extension(const struct kvm *kvm, long cap)
{
	int r = ioctl(kvm->vm_fd >= 0 ? kvm->vm_fd : kvm->sys_fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

static int ask_cpuid(int sys_fd, struct kvm_cpuid2 **out);

static void *cpuid_thread(void *arg)
{
	struct kvm *kvm = arg;
	kvm->cpuid_err = ask_cpuid(kvm->sys_fd, &kvm->cpuid);
	return NULL;
}

int kvm_init(struct kvm *kvm, const char *path, const char **missing)
{
	memset(kvm, 0, sizeof(*kvm));
	kvm->vm_fd = -1;
	*missing = NULL;
	kvm->sys_fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->sys_fd < 0)
		return -errno;
	int err;
	if (ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		*missing = "KVM API version 12";
		err = -ENOTSUP;
		goto err_sys;
	}
	for (unsigned i = 0; i < sizeof(required_caps) / sizeof(required_caps[0]); i++) {
		if (kvm_check_extension(kvm, required_caps[i].cap) <= 0) {
			*missing = required_caps[i].name;
			err = -ENOTSUP;
			goto err_sys;
		}
	}
	kvm->run_mmap_size = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (kvm->run_mmap_size < (int)sizeof(struct kvm_run)) {
		err = kvm->run_mmap_size < 0 ? -errno : -EINVAL;
		goto err_sys;
	}
	/* A small stack: the thread makes one ioctl. Without a thread, the
	 * vCPUs' creation asks itself. */
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 << 10);
	kvm->cpuid_started = pthread_create(&kvm->cpuid_thread, &attr, cpuid_thread, kvm) == 0;
	pthread_attr_destroy(&attr);
	do
		kvm->vm_fd = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
	while (kvm->vm_fd < 0 && errno == EINTR);
	if (kvm->vm_fd < 0) {
		err = -errno;
		goto err_sys;
	}
	int n = kvm_check_extension(kvm, KVM_CAP_MAX_VCPUS);
	if (n <= 0)
		n = kvm_check_extension(kvm, KVM_CAP_NR_VCPUS);
	kvm->max_vcpus = n > 0 ? (unsigned)n : 1;
	kvm->tsc_deadline = kvm_check_extension(kvm, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	kvm->ioeventfd_any = kvm_check_extension(kvm, KVM_CAP_IOEVENTFD_ANY_LENGTH) > 0;
	int xsave2 = kvm_check_extension(kvm, KVM_CAP_XSAVE2);
	if (xsave2 > (int)sizeof(struct kvm_xsave))
		kvm->xsave_size = (size_t)xsave2;
	else if (kvm_check_extension(kvm, KVM_CAP_XSAVE) > 0)
		kvm->xsave_size = sizeof(struct kvm_xsave);
	kvm->xcrs = kvm_check_extension(kvm, KVM_CAP_XCRS) > 0;
	kvm->debugregs = kvm_check_extension(kvm, KVM_CAP_DEBUGREGS) > 0;
	kvm->vcpu_events = kvm_check_extension(kvm, KVM_CAP_VCPU_EVENTS) > 0;
	kvm->clock = kvm_check_extension(kvm, KVM_CAP_ADJUST_CLOCK) > 0;
	pthread_mutex_init(&kvm->routes_lock, NULL);
	kvm->next_msi_gsi = KVM_IOAPIC_PINS;
	return 0;
err_sys:
	if (kvm->cpuid_started)
		pthread_join(kvm->cpuid_thread, NULL);
	free(kvm->cpuid);
	kvm->cpuid = NULL;
	kvm->cpuid_started = false;
	close(kvm->sys_fd);
	kvm->sys_fd = -1;
	return err;
}

void kvm_fini(struct kvm *kvm)
{
	if (kvm->cpuid_started)
		pthread_join(kvm->cpuid_thread, NULL);
	kvm->cpuid_started = false;
	free(kvm->cpuid);
	kvm->cpuid = NULL;
	free(kvm->routes);
	kvm->routes = NULL;
	pthread_mutex_destroy(&kvm->routes_lock);
	if (kvm->vm_fd >= 0)
		close(kvm->vm_fd);
	if (kvm->sys_fd >= 0)
		close(kvm->sys_fd);
	kvm->vm_fd = kvm->sys_fd = -1;
}

int kvm_set_memory(const struct kvm *kvm, uint32_t slot, uint64_t gpa, uint64_t size,
		   void *hva)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
		.flags = kvm->dirty_log ? KVM_MEM_LOG_DIRTY_PAGES : 0,
	};
	int r = xioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
	return r < 0 ? r : 0;
}

int kvm_create_irqchip(struct kvm *kvm, uint64_t tss_addr)
{
	int r = xioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, (void *)(uintptr_t)tss_addr);
	if (r < 0)
		return r;
	uint64_t ident = tss_addr + 3 * 4096;
	if (kvm_check_extension(kvm, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		r = xioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident);
		if (r < 0)
			return r;
	}
	r = xioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, NULL);
	if (r < 0)
		return r;
	/* Mirror KVM's default routing (IOAPIC pins, and the PICs for 0-15) so
	 * that adding MSI routes later keeps the legacy interrupts working. */
	kvm->routes = calloc(1, sizeof(*kvm->routes) +
				 (KVM_IOAPIC_PINS + 16 + KVM_MAX_MSI_ROUTES) *
					 sizeof(kvm->routes->entries[0]));
	if (!kvm->routes)
		return -ENOMEM;
	unsigned n = 0;
	for (unsigned pin = 0; pin < KVM_IOAPIC_PINS; pin++) {
		struct kvm_irq_routing_entry *e = &kvm->routes->entries[n++];
		e->gsi = pin;
		e->type = KVM_IRQ_ROUTING_IRQCHIP;
		e->u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
		e->u.irqchip.pin = pin;
		if (pin < 16) {
			e = &kvm->routes->entries[n++];
			e->gsi = pin;
			e->type = KVM_IRQ_ROUTING_IRQCHIP;
			e->u.irqchip.irqchip = pin < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			e->u.irqchip.pin = pin % 8;
		}
	}
	kvm->routes->nr = n;
	/* The PIT's speaker port is not emulated: nothing a cloud guest needs. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	r = xioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit);
	return r < 0 ? r : 0;
}

int kvm_irq_line(const struct kvm *kvm, uint32_t gsi, int level)
{
	struct kvm_irq_level irq = { .irq = gsi, .level = (uint32_t)level };
	int r = xioctl(kvm->vm_fd, KVM_IRQ_LINE, &irq);
	return r < 0 ? r : 0;
}

int kvm_msi_route_alloc(struct kvm *kvm)
{
	pthread_mutex_lock(&kvm->routes_lock);
	int gsi = -ENOSPC;
	if (kvm->routes && kvm->next_msi_gsi < KVM_IOAPIC_PINS + KVM_MAX_MSI_ROUTES) {
		gsi = (int)kvm->next_msi_gsi++;
		struct kvm_irq_routing_entry *e = &kvm->routes->entries[kvm->routes->nr++];
		memset(e, 0, sizeof(*e));
		e->gsi = (uint32_t)gsi;
		e->type = KVM_IRQ_ROUTING_MSI;
	}
	pthread_mutex_unlock(&kvm->routes_lock);
	return gsi;
}

int kvm_msi_route_set(struct kvm *kvm, unsigned gsi, uint64_t address, uint32_t data)
{
	int r = -ENOENT;
	pthread_mutex_lock(&kvm->routes_lock);
	for (unsigned i = 0; kvm->routes && i < kvm->routes->nr; i++) {
		struct kvm_irq_routing_entry *e = &kvm->routes->entries[i];
		if (e->gsi != gsi || e->type != KVM_IRQ_ROUTING_MSI)
			continue;
		if (e->u.msi.address_lo == (uint32_t)address &&
		    e->u.msi.address_hi == (uint32_t)(address >> 32) && e->u.msi.data == data) {
			r = 0; /* unchanged: no need to rewrite the table */
			break;
		}
		e->u.msi.address_lo = (uint32_t)address;
		e->u.msi.address_hi = (uint32_t)(address >> 32);
		e->u.msi.data = data;
		r = xioctl(kvm->vm_fd, KVM_SET_GSI_ROUTING, kvm->routes);
		r = r < 0 ? r : 0;
		break;
	}
	pthread_mutex_unlock(&kvm->routes_lock);
	return r;
}

int kvm_irqfd(const struct kvm *kvm, int fd, unsigned gsi, bool deassign)
{
	struct kvm_irqfd irqfd = { .fd = (uint32_t)fd, .gsi = gsi,
				   .flags = deassign ? KVM_IRQFD_FLAG_DEASSIGN : 0 };
	int r = xioctl(kvm->vm_fd, KVM_IRQFD, &irqfd);
	return r < 0 ? r : 0;
}

int kvm_ioeventfd(const struct kvm *kvm, uint64_t addr, int fd, bool pio, bool deassign)
{
	struct kvm_ioeventfd io = {
		.addr = addr,
		.len = kvm->ioeventfd_any ? 0 : 2, /* else: Linux's 16-bit notify writes */
		.fd = fd,
		.flags = (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
			 (deassign ? KVM_IOEVENTFD_FLAG_DEASSIGN : 0),
	};
	int r = xioctl(kvm->vm_fd, KVM_IOEVENTFD, &io);
	return r < 0 ? r : 0;
}

int kvm_get_supported_cpuid(struct kvm *kvm, struct kvm_cpuid2 **out)
{
	if (kvm->cpuid_started) {
		pthread_join(kvm->cpuid_thread, NULL);
		kvm->cpuid_started = false;
		*out = kvm->cpuid;
		kvm->cpuid = NULL;
		if (kvm->cpuid_err || !*out)
			return kvm->cpuid_err ? kvm->cpuid_err : -ENOMEM;
		return 0;
	}
	return ask_cpuid(kvm->sys_fd, out);
}

static int ask_cpuid(int sys_fd, struct kvm_cpuid2 **out)
{
	/* The kernel says E2BIG until the buffer is large enough. */
	for (unsigned n = 256; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return -ENOMEM;
		c->nent = n;
		int r = xioctl(sys_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (r >= 0) {
			*out = c;
			return 0;
		}
		free(c);
		if (r != -E2BIG)
			return r;
	}
	return -E2BIG;
}

int kvm_get_dirty_log(const struct kvm *kvm, uint32_t slot, uint64_t *bitmap)
{
	struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = bitmap };
	int r = xioctl(kvm->vm_fd, KVM_GET_DIRTY_LOG, &log);
	return r < 0 ? r : 0;
}

int kvm_get_irqchip(const struct kvm *kvm, struct kvm_irqchip *chip)
{
	int r = xioctl(kvm->vm_fd, KVM_GET_IRQCHIP, chip);
	return r < 0 ? r : 0;
}

int kvm_set_irqchip(const struct kvm *kvm, const struct kvm_irqchip *chip)
{
	int r = xioctl(kvm->vm_fd, KVM_SET_IRQCHIP, chip);
	return r < 0 ? r : 0;
}

int kvm_get_pit(const struct kvm *kvm, struct kvm_pit_state2 *pit)
{
	int r = xioctl(kvm->vm_fd, KVM_GET_PIT2, pit);
	return r < 0 ? r : 0;
}

int kvm_set_pit(const struct kvm *kvm, const struct kvm_pit_state2 *pit)
{
	int r = xioctl(kvm->vm_fd, KVM_SET_PIT2, pit);
	return r < 0 ? r : 0;
}

int kvm_get_clock(const struct kvm *kvm, struct kvm_clock_data *clock)
{
	int r = xioctl(kvm->vm_fd, KVM_GET_CLOCK, clock);
	return r < 0 ? r : 0;
}

int kvm_set_clock(const struct kvm *kvm, const struct kvm_clock_data *clock)
{
	int r = xioctl(kvm->vm_fd, KVM_SET_CLOCK, clock);
	return r < 0 ? r : 0;
}

int kvm_msr_index_list(const struct kvm *kvm, uint32_t **out, unsigned *n)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	int r = xioctl(kvm->sys_fd, KVM_GET_MSR_INDEX_LIST, &probe);
	if (r < 0 && r != -E2BIG)
		return r;
	/* The first call said how many there are. */
	struct kvm_msr_list *l = calloc(1, sizeof(*l) + probe.nmsrs * sizeof(uint32_t));
	if (!l)
		return -ENOMEM;
	l->nmsrs = probe.nmsrs;
	r = xioctl(kvm->sys_fd, KVM_GET_MSR_INDEX_LIST, l);
	if (r < 0) {
		free(l);
		return r;
	}
	uint32_t *list = malloc((l->nmsrs ? l->nmsrs : 1) * sizeof(uint32_t));
	if (!list) {
		free(l);
		return -ENOMEM;
	}
	memcpy(list, l->indices, l->nmsrs * sizeof(uint32_t));
	*n = l->nmsrs;
	*out = list;
	free(l);
	return 0;
}
