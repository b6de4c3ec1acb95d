/* The KVM API: the only code in mote that calls ioctl(KVM_*).
 *
 * kvm.c holds the system and VM file descriptors (capabilities, memory
 * slots, in-kernel irqchip and PIT, interrupt lines); vcpu.c the per-vCPU
 * calls. Everything returns 0 or -errno and logs nothing: callers know what
 * the failure means to the user. */
#ifndef MOTE_KVM_H
#define MOTE_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* GSIs 0-23 are the IOAPIC's pins; MSI routes are allocated above them. */
#define KVM_IOAPIC_PINS 24
#define KVM_MAX_MSI_ROUTES 1024

struct kvm {
	int sys_fd;          /* /dev/kvm */
	int vm_fd;
	int run_mmap_size;   /* bytes of struct kvm_run per vCPU */
	unsigned max_vcpus;  /* KVM_CAP_MAX_VCPUS */
	bool tsc_deadline;   /* KVM_CAP_TSC_DEADLINE_TIMER */
	bool ioeventfd_any;  /* KVM_CAP_IOEVENTFD_ANY_LENGTH */
	/* State save/restore (snapshots): what this KVM can read and write. */
	size_t xsave_size;   /* bytes of KVM_GET_XSAVE(2) state; 0: no XSAVE (use FPU) */
	bool xcrs, debugregs, vcpu_events, clock;
	bool dirty_log;      /* set before kvm_set_memory: slots log dirty pages */
	/* GSI routing: KVM_SET_GSI_ROUTING replaces the whole table, so mote
	 * keeps it (irqchip pins + MSI routes) and rewrites it on each change. */
	pthread_mutex_t routes_lock;
	struct kvm_irq_routing *routes;
	unsigned next_msi_gsi;
	/* KVM_GET_SUPPORTED_CPUID, asked on a short-lived thread from
	 * kvm_init on (it costs ~0.5 ms on some hosts and needs only
	 * /dev/kvm), collected by kvm_get_supported_cpuid. */
	pthread_t cpuid_thread;
	bool cpuid_started;
	struct kvm_cpuid2 *cpuid;
	int cpuid_err;
};

/* Opens path (normally /dev/kvm), checks the API version and the
 * capabilities mote depends on, starts asking for the supported CPUID
 * (in parallel), creates a VM. -ENOENT when path is missing,
 * -EACCES without permission, -ENOTSUP when a required capability is absent
 * (*missing names it). */
int kvm_init(struct kvm *kvm, const char *path, const char **missing);
void kvm_fini(struct kvm *kvm);

int kvm_check_extension(const struct kvm *kvm, long cap);

/* Maps [gpa, gpa + size) of guest-physical space to host memory hva. */
int kvm_set_memory(const struct kvm *kvm, uint32_t slot, uint64_t gpa, uint64_t size,
		   void *hva);

/* The dirty bitmap of slot (one bit per 4 KiB page, bitmap large enough for
 * the slot), cleared by the call. Needs dirty_log set when the slot was made. */
int kvm_get_dirty_log(const struct kvm *kvm, uint32_t slot, uint64_t *bitmap);

/* In-kernel irqchip, PIT and kvmclock state (snapshots). chip: KVM_IRQCHIP_*. */
int kvm_get_irqchip(const struct kvm *kvm, struct kvm_irqchip *chip);
int kvm_set_irqchip(const struct kvm *kvm, const struct kvm_irqchip *chip);
int kvm_get_pit(const struct kvm *kvm, struct kvm_pit_state2 *pit);
int kvm_set_pit(const struct kvm *kvm, const struct kvm_pit_state2 *pit);
int kvm_get_clock(const struct kvm *kvm, struct kvm_clock_data *clock);
int kvm_set_clock(const struct kvm *kvm, const struct kvm_clock_data *clock);
/* The MSRs KVM saves and restores (KVM_GET_MSR_INDEX_LIST); the caller
 * frees *out. */
int kvm_msr_index_list(const struct kvm *kvm, uint32_t **out, unsigned *n);

/* In-kernel LAPIC/IOAPIC/PIC and PIT, plus the x86 TSS/identity-map pages
 * KVM needs inside the 32-bit MMIO hole at tss_addr (3 pages). */
int kvm_create_irqchip(struct kvm *kvm, uint64_t tss_addr);

/* Drives an interrupt line (GSI) of the in-kernel irqchip. */
int kvm_irq_line(const struct kvm *kvm, uint32_t gsi, int level);

/* Allocates a GSI for an MSI route (initially address 0, masked by not
 * being fired). Returns the GSI or -ENOSPC. */
int kvm_msi_route_alloc(struct kvm *kvm);
/* Points GSI gsi at MSI (address, data). Thread-safe. 0 or -errno. */
int kvm_msi_route_set(struct kvm *kvm, unsigned gsi, uint64_t address, uint32_t data);
/* Binds (or with deassign, unbinds) eventfd fd to interrupt gsi: a write
 * to fd injects the interrupt without a trip through mote. */
int kvm_irqfd(const struct kvm *kvm, int fd, unsigned gsi, bool deassign);
/* Makes guest writes of any length to [addr] (MMIO, or port I/O when pio)
 * signal eventfd fd in the kernel instead of exiting to mote. */
int kvm_ioeventfd(const struct kvm *kvm, uint64_t addr, int fd, bool pio, bool deassign);

/* Supported CPUID entries; the caller frees the result. */
int kvm_get_supported_cpuid(struct kvm *kvm, struct kvm_cpuid2 **out);

struct kvm_vcpu {
	int fd;
	unsigned id;
	struct kvm_run *run; /* shared with the kernel */
	int run_size;
};

int kvm_vcpu_init(const struct kvm *kvm, unsigned id, struct kvm_vcpu *vcpu);
void kvm_vcpu_fini(struct kvm_vcpu *vcpu);

/* One KVM_RUN. -EINTR when a signal or immediate_exit interrupted it. */
int kvm_vcpu_run(struct kvm_vcpu *vcpu);

int kvm_vcpu_get_regs(const struct kvm_vcpu *vcpu, struct kvm_regs *regs);
int kvm_vcpu_set_regs(const struct kvm_vcpu *vcpu, const struct kvm_regs *regs);
int kvm_vcpu_get_sregs(const struct kvm_vcpu *vcpu, struct kvm_sregs *sregs);
int kvm_vcpu_set_sregs(const struct kvm_vcpu *vcpu, const struct kvm_sregs *sregs);
int kvm_vcpu_set_fpu(const struct kvm_vcpu *vcpu, const struct kvm_fpu *fpu);
int kvm_vcpu_set_cpuid(const struct kvm_vcpu *vcpu, const struct kvm_cpuid2 *cpuid);
/* Sets one MSR. */
int kvm_vcpu_set_msr(const struct kvm_vcpu *vcpu, uint32_t index, uint64_t value);
int kvm_vcpu_get_lapic(const struct kvm_vcpu *vcpu, struct kvm_lapic_state *lapic);
int kvm_vcpu_get_fpu(const struct kvm_vcpu *vcpu, struct kvm_fpu *fpu);
/* XSAVE area of size bytes (kvm->xsave_size; KVM_GET_XSAVE2 above 4 KiB). */
int kvm_vcpu_get_xsave(const struct kvm_vcpu *vcpu, void *buf, size_t size);
int kvm_vcpu_set_xsave(const struct kvm_vcpu *vcpu, const void *buf, size_t size);
int kvm_vcpu_get_xcrs(const struct kvm_vcpu *vcpu, struct kvm_xcrs *xcrs);
int kvm_vcpu_set_xcrs(const struct kvm_vcpu *vcpu, const struct kvm_xcrs *xcrs);
int kvm_vcpu_get_debugregs(const struct kvm_vcpu *vcpu, struct kvm_debugregs *d);
int kvm_vcpu_set_debugregs(const struct kvm_vcpu *vcpu, const struct kvm_debugregs *d);
int kvm_vcpu_get_events(const struct kvm_vcpu *vcpu, struct kvm_vcpu_events *e);
int kvm_vcpu_set_events(const struct kvm_vcpu *vcpu, const struct kvm_vcpu_events *e);
int kvm_vcpu_get_mp_state(const struct kvm_vcpu *vcpu, struct kvm_mp_state *mp);
int kvm_vcpu_set_mp_state(const struct kvm_vcpu *vcpu, const struct kvm_mp_state *mp);
/* Reads (or writes) msrs->nmsrs MSRs; returns how many KVM processed (it
 * stops at the first it refuses) or -errno. */
int kvm_vcpu_get_msrs(const struct kvm_vcpu *vcpu, struct kvm_msrs *msrs);
int kvm_vcpu_set_msrs(const struct kvm_vcpu *vcpu, const struct kvm_msrs *msrs);
int kvm_vcpu_set_lapic(const struct kvm_vcpu *vcpu, const struct kvm_lapic_state *lapic);

#endif
