/*
 * smp — checks that every CPU a monitor lists in its ACPI MADT can be started
 * and reports the APIC ID the MADT promised.
 *
 * Output:
 *   mote-test: cpu <index> apic=<id>     one per CPU that came up: index 0 is
 *                                        the BSP, then the APs by APIC ID
 *   mote-test: smp madt=<enabled CPUs in the MADT> up=<CPUs that came up>
 *   mote-test: done
 * A bad ACPI checksum is "mote-test: FAIL bad checksum <sig>"; fewer CPUs up
 * than listed (after waiting WAIT_US) is "mote-test: FAIL smp ...".
 *
 * The AP trampoline uses the page at 0x8000 (see lib/layout.h).
 */
#include "guest.h"

/* How long the BSP waits for APs; it stops early once all have checked in. */
#define WAIT_US		3000000

static uint32_t ap_apic[SMP_MAX_CPUS];
static uint32_t ap_seen[SMP_MAX_CPUS];
static uint32_t ap_count;

static void ap_main(unsigned slot)
{
	ap_apic[slot] = cpu_apic_id();
	__atomic_store_n(&ap_seen[slot], 1, __ATOMIC_RELEASE);
	__atomic_fetch_add(&ap_count, 1, __ATOMIC_RELEASE);
}

static void sort_ids(uint32_t *ids, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		uint32_t v = ids[i];
		unsigned j = i;

		for (; j > 0 && ids[j - 1] > v; j--)
			ids[j] = ids[j - 1];
		ids[j] = v;
	}
}

void guest_main(void)
{
	uint32_t listed[SMP_MAX_CPUS], aps[SMP_MAX_CPUS], up_ids[SMP_MAX_CPUS];
	uint32_t bsp = cpu_apic_id();
	unsigned n_aps = 0, up = 0, i;
	uint64_t deadline;
	int madt;

	acpi_verify_all();
	madt = acpi_madt_cpus(listed, SMP_MAX_CPUS);
	if (madt < 0)
		test_fail("smp: no MADT");
	if (madt > SMP_MAX_CPUS)
		test_fail("smp: MADT lists %d CPUs, at most %d supported", madt,
			  SMP_MAX_CPUS);
	for (i = 0; i < (unsigned)madt; i++) {
		if (listed[i] != bsp)
			aps[n_aps++] = listed[i];
	}
	if (n_aps == (unsigned)madt)
		test_fail("smp: BSP APIC ID %u is not in the MADT", bsp);

	if (n_aps)
		smp_start_aps(aps, n_aps, ap_main);
	deadline = tsc_deadline_us(WAIT_US);
	while (__atomic_load_n(&ap_count, __ATOMIC_ACQUIRE) < n_aps &&
	       rdtsc() < deadline)
		cpu_pause();

	up_ids[up++] = bsp;
	for (i = 0; i < SMP_MAX_CPUS - 1; i++) {
		if (__atomic_load_n(&ap_seen[i], __ATOMIC_ACQUIRE))
			up_ids[up++] = ap_apic[i];
	}
	sort_ids(up_ids + 1, up - 1);
	for (i = 0; i < up; i++)
		test_log("cpu %u apic=%u", i, up_ids[i]);
	test_log("smp madt=%d up=%u", madt, up);
	if (up != (unsigned)madt)
		test_fail("smp only %u of %d CPUs came up", up, madt);
	test_done();
}
