/*
 * smp.h — starting application processors (APs) from a test guest.
 *
 * Uses the xAPIC at its MMIO base and INIT-SIPI-SIPI (Intel SDM vol. 3,
 * "MP initialization"). The trampoline is copied to SMP_TRAMPOLINE_PA (0x8000,
 * see layout.h), so the monitor must leave that page free and the guest must
 * not use it while APs start. x2APIC mode is not supported: a CPU already in
 * it, or an APIC ID above 254, is a test failure.
 */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdint.h>

/* Runs on each AP, on its own small stack (SMP_AP_STACK_SIZE), interrupts off. */
typedef void (*smp_ap_fn)(unsigned slot);

/*
 * Sends INIT-SIPI-SIPI to every APIC ID in apic_ids[0..n) (the caller leaves
 * itself out). Each AP that comes up switches to long mode on the BSP's page
 * tables, takes the next free slot (0, 1, ... in arrival order), calls
 * fn(slot) and then halts for good. Returns once the IPIs are sent, about 10 ms
 * later; it does not wait for the APs, which report back through fn.
 * At most SMP_MAX_CPUS - 1 APs.
 */
void smp_start_aps(const uint32_t *apic_ids, unsigned n, smp_ap_fn fn);

#endif
