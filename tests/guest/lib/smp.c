/*
 * smp.c — AP start-up through the local APIC (see smp.h).
 *
 * The IPI sequence follows the Intel SDM's "INIT-SIPI-SIPI" recipe (INIT
 * assert and de-assert, 10 ms, two STARTUP IPIs 200 us apart), sent to all APs
 * in parallel. Monitors deliver INIT/SIPI instantly, but the delays are kept
 * so the guest would also be right on hardware.
 */
#include "io.h"
#include "layout.h"
#include "smp.h"
#include "str.h"
#include "test.h"
#include "trap.h"
#include "tsc.h"

#define MSR_APIC_BASE		0x1b
#define APIC_BASE_X2APIC	(1u << 10)
#define APIC_BASE_ENABLE	(1u << 11)
#define APIC_BASE_MASK		0xffffff000ULL

#define LAPIC_SVR		0x0f0
#define LAPIC_ICR_LO		0x300
#define LAPIC_ICR_HI		0x310
#define SVR_ENABLE		0x100
#define SVR_SPURIOUS_VEC	0xff
#define ICR_INIT		0x0500
#define ICR_STARTUP		0x0600
#define ICR_BUSY		0x1000
#define ICR_ASSERT		0x4000
#define ICR_LEVEL		0x8000

/* Shared with trampoline.S. */
extern char smp_tramp_start[], smp_tramp_end[];
void smp_ap_main(unsigned slot) __attribute__((noreturn));
uint32_t smp_ap_next;

static smp_ap_fn ap_fn;
static uint64_t lapic;

/* Called by trampoline.S on each AP, on its stack. */
void smp_ap_main(unsigned slot)
{
	trap_init();
	ap_fn(slot);
	cpu_halt_forever();
}

static void send_ipi(uint32_t apic_id, uint32_t icr)
{
	uint64_t deadline;

	mmio_write32(lapic + LAPIC_ICR_HI, apic_id << 24);
	mmio_write32(lapic + LAPIC_ICR_LO, icr);
	deadline = tsc_deadline_us(10000);
	while (mmio_read32(lapic + LAPIC_ICR_LO) & ICR_BUSY) {
		if (rdtsc() > deadline)
			test_fail("smp: IPI 0x%x to APIC %u stays pending", icr,
				  apic_id);
		cpu_pause();
	}
}

void smp_start_aps(const uint32_t *apic_ids, unsigned n, smp_ap_fn fn)
{
	size_t len = (size_t)(smp_tramp_end - smp_tramp_start);
	uint64_t base = rdmsr(MSR_APIC_BASE);
	uint32_t vector = SMP_TRAMPOLINE_PA >> 12;
	unsigned i, round;

	if (n > SMP_MAX_CPUS - 1)
		test_fail("smp: %u APs, at most %d supported", n, SMP_MAX_CPUS - 1);
	if (len > 4096)
		test_fail("smp: trampoline is %zu bytes, more than a page", len);
	if (!(base & APIC_BASE_ENABLE) || (base & APIC_BASE_X2APIC))
		test_fail("smp: APIC not in xAPIC mode (APIC_BASE 0x%lx)", base);
	for (i = 0; i < n; i++) {
		if (apic_ids[i] > 254)
			test_fail("smp: APIC ID %u needs x2APIC", apic_ids[i]);
	}
	lapic = base & APIC_BASE_MASK;
	ap_fn = fn;
	memcpy((void *)(uintptr_t)SMP_TRAMPOLINE_PA, smp_tramp_start, len);
	/* APs read ap_fn and the trampoline only after the IPIs below. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	mmio_write32(lapic + LAPIC_SVR, SVR_ENABLE | SVR_SPURIOUS_VEC);
	for (i = 0; i < n; i++)
		send_ipi(apic_ids[i], ICR_INIT | ICR_ASSERT | ICR_LEVEL);
	for (i = 0; i < n; i++)
		send_ipi(apic_ids[i], ICR_INIT | ICR_LEVEL);
	tsc_delay_us(10000);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < n; i++)
			send_ipi(apic_ids[i], ICR_STARTUP | vector);
		tsc_delay_us(200);
	}
}
