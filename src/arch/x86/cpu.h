/* vCPU set-up for x86: CPUID with a consistent topology (one socket, N
 * cores, one thread each; APIC ID = vCPU index), the LAPIC's LINT pins, and
 * the boot processor's registers for each entry mode of boot.h. */
#ifndef MOTE_X86_CPU_H
#define MOTE_X86_CPU_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "arch/x86/boot.h"
#include "kvm/kvm.h"

/* Rewrites a copy of KVM's supported CPUID for vCPU `index` of `nr_cpus`. */
void x86_cpuid_patch(struct kvm_cpuid2 *cpuid, unsigned index, unsigned nr_cpus,
		     bool tsc_deadline);

/* Writes the boot GDT and the identity page tables (first 4 GiB). */
int x86_boot_tables(const struct guest_mem *mem);

/* CPUID, LAPIC LINT0/1 and MSRs for every vCPU; registers for the boot
 * processor (index 0) only — the others wait for INIT/SIPI from the guest. */
int x86_vcpu_setup(const struct kvm_vcpu *vcpu, const struct kvm_cpuid2 *cpuid,
		   const struct x86_boot *boot);

#endif
