/* vCPU set-up for x86; see cpu.h. CPUID leaves and bits follow the Intel
 * SDM vol. 2A (CPUID) and AMD APM vol. 3 appendix E. */
#include "arch/x86/cpu.h"

#include <errno.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "util/log.h"
#include "util/util.h"

#define CPUID_1_ECX_TSC_DEADLINE (1u << 24)
#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)

#define CR0_PE 0x1ull
#define CR0_ET 0x10ull
#define CR0_PG 0x80000000ull
#define CR4_PAE 0x20ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MISC_ENABLE_FAST_STRING 0x1

#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

/* Boot GDT: flat 32-bit code (PVH), 64-bit code (__BOOT_CS for Linux), flat
 * data (__BOOT_DS), and a TSS for the task register VMX insists on. */
enum { GDT_CODE32 = 1, GDT_CODE64 = 2, GDT_DATA = 3, GDT_TSS = 4, GDT_ENTRIES = 5 };
static const uint64_t boot_gdt[GDT_ENTRIES] = {
	[GDT_CODE32] = 0x00cf9b000000ffffull,
	[GDT_CODE64] = 0x00af9b000000ffffull,
	[GDT_DATA] = 0x00cf93000000ffffull,
	[GDT_TSS] = 0x00008b0000000067ull,
};

static unsigned order_of(unsigned n)
{
	unsigned s = 0;
	while ((1u << s) < n)
		s++;
	return s;
}

void x86_cpuid_patch(struct kvm_cpuid2 *cpuid, unsigned index, unsigned nr_cpus,
		     bool tsc_deadline)
{
	unsigned shift = order_of(nr_cpus);
	for (unsigned i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
		switch (e->function) {
		case 0x1:
			/* EBX[23:16] is 8 bits: 256 addressable IDs do not fit. */
			e->ebx = (e->ebx & 0xff00u) | index << 24 | MIN(1u << shift, 0xffu) << 16;
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (tsc_deadline)
				e->ecx |= CPUID_1_ECX_TSC_DEADLINE;
			if (nr_cpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 0x4:
			if (e->eax & 0x1f) {
				unsigned level = (e->eax >> 5) & 7;
				unsigned sharing = level >= 3 ? (1u << shift) - 1 : 0;
				e->eax = (e->eax & 0x3fffu) | sharing << 14 | ((1u << shift) - 1) << 26;
			}
			break;
		case 0xb:
		case 0x1f:
			/* Level 0: SMT, one thread a core; level 1: cores. */
			e->edx = index;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = 1u << 8;
			} else if (e->index == 1) {
				e->eax = shift;
				e->ebx = nr_cpus;
				e->ecx = 2u << 8 | 1;
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index & 0xff;
			}
			break;
		case 0x80000008:
			e->ecx = (e->ecx & ~0xf0ffu) | shift << 12 | (nr_cpus - 1);
			break;
		case 0x8000001e:
			e->eax = index;
			e->ebx = index & 0xff;
			e->ecx = 0;
			break;
		}
	}
}

int x86_boot_tables(const struct guest_mem *mem)
{
	uint8_t *gdt = guest_mem_ptr(mem, X86_BOOT_GDT, sizeof(boot_gdt));
	uint8_t *pml4 = guest_mem_ptr(mem, X86_PML4, 4096);
	uint8_t *pdpt = guest_mem_ptr(mem, X86_PDPT, 4096);
	uint8_t *pd = guest_mem_ptr(mem, X86_PD, 4 * 4096);
	if (!gdt || !pml4 || !pdpt || !pd)
		return -ENOSPC;
	for (unsigned i = 0; i < GDT_ENTRIES; i++)
		put_le64(gdt + 8 * i, boot_gdt[i]);
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	put_le64(pml4, X86_PDPT | 0x3); /* present, writable */
	for (uint64_t i = 0; i < 4; i++)
		put_le64(pdpt + 8 * i, (X86_PD + i * 4096) | 0x3);
	for (uint64_t i = 0; i < 4 * 512; i++)
		put_le64(pd + 8 * i, (i << 21) | 0x83); /* 2 MiB page */
	return 0;
}

static struct kvm_segment segment(unsigned index)
{
	uint64_t d = boot_gdt[index];
	struct kvm_segment s = {
		.base = (d >> 16 & 0xffffff) | (d >> 56 & 0xff) << 24,
		.limit = (uint32_t)((d & 0xffff) | (d >> 48 & 0xf) << 16),
		.selector = (uint16_t)(index * 8),
		.type = (uint8_t)(d >> 40 & 0xf),
		.s = (uint8_t)(d >> 44 & 1),
		.dpl = (uint8_t)(d >> 45 & 3),
		.present = (uint8_t)(d >> 47 & 1),
		.avl = (uint8_t)(d >> 52 & 1),
		.l = (uint8_t)(d >> 53 & 1),
		.db = (uint8_t)(d >> 54 & 1),
		.g = (uint8_t)(d >> 55 & 1),
	};
	if (s.g)
		s.limit = s.limit << 12 | 0xfff;
	return s;
}

static int setup_boot_regs(const struct kvm_vcpu *vcpu, const struct x86_boot *boot)
{
	struct kvm_sregs sregs;
	int r = kvm_vcpu_get_sregs(vcpu, &sregs);
	if (r < 0)
		return r;
	sregs.gdt.base = X86_BOOT_GDT;
	sregs.gdt.limit = sizeof(boot_gdt) - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	struct kvm_segment data = segment(GDT_DATA);
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.tr = segment(GDT_TSS);
	struct kvm_regs regs = { .rflags = 0x2 };
	if (boot->mode == X86_ENTRY_PVH) {
		sregs.cs = segment(GDT_CODE32);
		sregs.cr0 = CR0_PE | CR0_ET;
		sregs.cr4 = 0;
		sregs.efer = 0;
		regs.rbx = boot->boot_info;
	} else {
		sregs.cs = segment(GDT_CODE64);
		sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
		sregs.cr3 = X86_PML4;
		sregs.cr4 = CR4_PAE;
		sregs.efer = EFER_LME | EFER_LMA;
		if (boot->mode == X86_ENTRY_LINUX64)
			regs.rsi = boot->boot_info;
		else
			regs.rbx = boot->boot_info;
		regs.rsp = X86_BOOT_STACK;
	}
	regs.rip = boot->entry;
	r = kvm_vcpu_set_sregs(vcpu, &sregs);
	if (r < 0)
		return r;
	r = kvm_vcpu_set_regs(vcpu, &regs);
	if (r < 0)
		return r;
	struct kvm_fpu fpu = { .fcw = 0x37f, .mxcsr = 0x1f80 };
	return kvm_vcpu_set_fpu(vcpu, &fpu);
}

static void set_lvt(struct kvm_lapic_state *lapic, unsigned reg, uint32_t mode)
{
	uint32_t v = get_le32(lapic->regs + reg);
	put_le32(lapic->regs + reg, (v & ~0x700u) | mode << 8);
}

int x86_vcpu_setup(const struct kvm_vcpu *vcpu, const struct kvm_cpuid2 *cpuid,
		   const struct x86_boot *boot)
{
	int r = kvm_vcpu_set_cpuid(vcpu, cpuid);
	if (r < 0)
		return r;
	/* LINT0 delivers the 8259's ExtINT, LINT1 NMIs, as firmware leaves them. */
	struct kvm_lapic_state lapic;
	r = kvm_vcpu_get_lapic(vcpu, &lapic);
	if (r < 0)
		return r;
	set_lvt(&lapic, APIC_LVT_LINT0, APIC_MODE_EXTINT);
	set_lvt(&lapic, APIC_LVT_LINT1, APIC_MODE_NMI);
	r = kvm_vcpu_set_lapic(vcpu, &lapic);
	if (r < 0)
		return r;
	/* Fast strings help guests' memcpy; not every KVM (PVM) accepts it. */
	if (kvm_vcpu_set_msr(vcpu, MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING) < 0)
		log_debug("vcpu %u: IA32_MISC_ENABLE not settable", vcpu->id);
	return vcpu->id == 0 ? setup_boot_regs(vcpu, boot) : 0;
}
