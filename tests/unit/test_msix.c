/* Unit tests for src/bus/msix.c (PCI Local Bus 3.0 §6.8.2): the vector
 * table and PBA as a guest accesses them, masking at the three levels
 * (per vector, function mask, MSI-X disabled) with pending bits, and
 * delivery. Most tests run with kvm NULL, where a delivery only counts in
 * `fired`; the last ones give msix.c a fake KVM (the kvm_* functions below)
 * to check routes, irqfds and the eventfd write of a delivery. */
#include "bus/msix.h"
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

#include <sys/eventfd.h>

/* ---- a fake KVM: records what msix.c asks of it ---- */

static struct kvm fake_kvm;
static unsigned routes_alloced, route_sets, irqfd_assigns, irqfd_deassigns;
static int route_alloc_fail_at = -1; /* fail the Nth allocation */
static int route_set_result;
static uint64_t last_route_addr;
static uint32_t last_route_data;
static unsigned last_route_gsi;

int kvm_msi_route_alloc(struct kvm *kvm)
{
	assert_ptr_equal(kvm, &fake_kvm);
	if ((int)routes_alloced == route_alloc_fail_at)
		return -ENOSPC;
	return KVM_IOAPIC_PINS + (int)routes_alloced++;
}

int kvm_msi_route_set(struct kvm *kvm, unsigned gsi, uint64_t address, uint32_t data)
{
	assert_ptr_equal(kvm, &fake_kvm);
	route_sets++;
	last_route_gsi = gsi;
	last_route_addr = address;
	last_route_data = data;
	return route_set_result;
}

int kvm_irqfd(const struct kvm *kvm, int fd, unsigned gsi, bool deassign)
{
	assert_ptr_equal(kvm, &fake_kvm);
	assert_true(fd >= 0);
	assert_true(gsi >= KVM_IOAPIC_PINS);
	if (deassign)
		irqfd_deassigns++;
	else
		irqfd_assigns++;
	return 0;
}

#define NR 4

static struct msix m;

static int setup(void **state)
{
	routes_alloced = route_sets = irqfd_assigns = irqfd_deassigns = 0;
	route_alloc_fail_at = -1;
	route_set_result = 0;
	if (msix_init(&m, NULL, NR))
		return -1;
	return unit_log_begin(state);
}

static int teardown(void **state)
{
	msix_fini(&m);
	/* With kvm NULL, nothing may have reached the fake. */
	if (!m.kvm && (routes_alloced || route_sets || irqfd_assigns || irqfd_deassigns))
		fail_msg("kvm called without a kvm");
	return unit_log_end(state);
}

/* ---- access helpers ---- */

static uint64_t tbl_read(uint64_t off, uint32_t len)
{
	uint8_t d[8];
	memset(d, 0x33, sizeof(d));
	msix_table_io(&m, off, d, len, false);
	uint64_t v = 0;
	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

static void tbl_write(uint64_t off, uint32_t len, uint64_t v)
{
	uint8_t d[8];
	put_le64(d, v);
	msix_table_io(&m, off, d, len, true);
}

static uint64_t pba_read(uint64_t off, uint32_t len)
{
	uint8_t d[8];
	memset(d, 0x33, sizeof(d));
	msix_pba_io(&m, off, d, len, false);
	uint64_t v = 0;
	for (uint32_t i = 0; i < len; i++)
		v |= (uint64_t)d[i] << (8 * i);
	return v;
}

#define ENTRY(i)   ((uint64_t)(i)*MSIX_ENTRY_SIZE)
#define ADDR_LO(i) (ENTRY(i) + 0)
#define ADDR_HI(i) (ENTRY(i) + 4)
#define DATA(i)	   (ENTRY(i) + 8)
#define CTRL(i)	   (ENTRY(i) + 12)

static void unmask(unsigned i)
{
	tbl_write(CTRL(i), 4, 0);
}

static void mask(unsigned i)
{
	tbl_write(CTRL(i), 4, 1);
}

/* ---- init and the table ---- */

static void test_init(void **state)
{
	struct msix x;
	assert_int_equal(msix_init(&x, NULL, 0), -EINVAL);
	assert_int_equal(msix_init(&x, NULL, MSIX_MAX_VECTORS + 1), -EINVAL);
	assert_int_equal(msix_init(&x, NULL, MSIX_MAX_VECTORS), 0);
	assert_int_equal(x.nr, MSIX_MAX_VECTORS);
	msix_fini(&x);

	/* Power-on state: disabled, every vector masked, zero, nothing pending. */
	assert_false(m.enabled);
	assert_false(m.function_masked);
	for (unsigned i = 0; i < NR; i++) {
		assert_int_equal(tbl_read(ADDR_LO(i), 4), 0);
		assert_int_equal(tbl_read(ADDR_HI(i), 4), 0);
		assert_int_equal(tbl_read(DATA(i), 4), 0);
		assert_int_equal(tbl_read(CTRL(i), 4), 1);
		assert_int_equal(m.v[i].fd, -1);
		assert_int_equal(m.v[i].gsi, -1);
	}
	assert_int_equal(pba_read(0, 8), 0);
}

static void test_table_dword_access(void **state)
{
	tbl_write(ADDR_LO(2), 4, 0xfee01000u);
	tbl_write(ADDR_HI(2), 4, 0x12345678u);
	tbl_write(DATA(2), 4, 0x4041u);
	tbl_write(CTRL(2), 4, 0);
	assert_int_equal(tbl_read(ADDR_LO(2), 4), 0xfee01000u);
	assert_int_equal(tbl_read(ADDR_HI(2), 4), 0x12345678u);
	assert_int_equal(tbl_read(DATA(2), 4), 0x4041u);
	assert_int_equal(tbl_read(CTRL(2), 4), 0);
	assert_int_equal(m.v[2].addr_lo, 0xfee01000u);
	assert_int_equal(m.v[2].data, 0x4041u);
	/* Neighbours untouched. */
	assert_int_equal(tbl_read(DATA(1), 4), 0);
	assert_int_equal(tbl_read(ADDR_LO(3), 4), 0);
	assert_int_equal(tbl_read(CTRL(1), 4), 1);
	assert_int_equal(tbl_read(CTRL(3), 4), 1);
	/* Vector control: only the mask bit is implemented (others reserved). */
	tbl_write(CTRL(2), 4, 0xfffffffeu);
	assert_int_equal(tbl_read(CTRL(2), 4), 0);
	tbl_write(CTRL(2), 4, 0xffffffffu);
	assert_int_equal(tbl_read(CTRL(2), 4), 1);
}

static void test_table_qword_access(void **state)
{
	tbl_write(ENTRY(1), 8, 0x00000001fee02000ull);	   /* address */
	tbl_write(ENTRY(1) + 8, 8, 0x0000000000004052ull); /* data, unmasked */
	assert_int_equal(tbl_read(ADDR_LO(1), 4), 0xfee02000u);
	assert_int_equal(tbl_read(ADDR_HI(1), 4), 1);
	assert_int_equal(tbl_read(DATA(1), 4), 0x4052u);
	assert_int_equal(tbl_read(CTRL(1), 4), 0);
	assert_int_equal(tbl_read(ENTRY(1), 8), 0x00000001fee02000ull);
	assert_int_equal(tbl_read(ENTRY(1) + 8, 8), 0x0000000000004052ull);
	/* The last entry's second half is still inside the table. */
	tbl_write(ENTRY(NR - 1) + 8, 8, 0x0000000100000077ull);
	assert_int_equal(tbl_read(DATA(NR - 1), 4), 0x77);
	assert_int_equal(tbl_read(CTRL(NR - 1), 4), 1);
}

static void test_table_bad_accesses_ignored(void **state)
{
	tbl_write(ENTRY(0), 8, 0x1111111122222222ull);
	tbl_write(ENTRY(0) + 8, 8, 0x0000000033333333ull);
	struct msix_vector before[NR];
	memcpy(before, m.v, sizeof(before));

	struct {
		uint64_t off;
		uint32_t len;
	} bad[] = {
		{2, 4},
		{1, 4},
		{4, 8},
		{12, 8},
		{0, 1},
		{0, 2},
		{3, 1},
		{8, 2},
		{6, 2},
		{ENTRY(NR), 4},
		{ENTRY(NR), 8},
		{ENTRY(NR) + 12, 4},
		{0x800, 4},
		{UINT64_MAX - 3, 4},
		{UINT64_MAX - 7, 8},
		{0, 3},
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t v = tbl_read(bad[i].off, bad[i].len);
		uint64_t ones = bad[i].len == 8 ? UINT64_MAX : (1ull << (8 * bad[i].len)) - 1;
		if (v != ones)
			fail_msg("read off=%#llx len=%u gave %#llx", (unsigned long long)bad[i].off,
				 bad[i].len, (unsigned long long)v);
		tbl_write(bad[i].off, bad[i].len, 0);
	}
	assert_memory_equal(m.v, before, sizeof(before));
}

/* ---- masking and pending bits ---- */

static void test_disabled_sets_pending(void **state)
{
	unmask(1);
	msix_fire(&m, 1); /* MSI-X not enabled yet */
	assert_int_equal(m.fired, 0);
	assert_int_equal(pba_read(0, 1), 0x02);
	msix_control(&m, true, false);
	assert_int_equal(m.fired, 1);
	assert_int_equal(pba_read(0, 1), 0);
	msix_control(&m, true, false); /* delivered once only */
	assert_int_equal(m.fired, 1);
	msix_fire(&m, 1);
	assert_int_equal(m.fired, 2);
	assert_int_equal(pba_read(0, 8), 0);
}

static void test_masked_vector_sets_pba(void **state)
{
	msix_control(&m, true, false);
	msix_fire(&m, 2);
	msix_fire(&m, 2); /* still one pending bit, one delivery later */
	assert_int_equal(m.fired, 0);
	assert_int_equal(pba_read(0, 8), 1u << 2);
	assert_int_equal(m.pending, 1u << 2);
	unmask(3); /* another vector's unmask does not deliver vector 2 */
	assert_int_equal(m.fired, 0);
	unmask(2);
	assert_int_equal(m.fired, 1);
	assert_int_equal(pba_read(0, 8), 0);
	unmask(2); /* unmasking again delivers nothing more */
	tbl_write(DATA(2), 4, 0x99);
	assert_int_equal(m.fired, 1);
	/* Mask again: the next fire is held. */
	mask(2);
	msix_fire(&m, 2);
	assert_int_equal(m.fired, 1);
	assert_int_equal(pba_read(0, 1), 1u << 2);
	/* Unmasking through the 8-byte form of the control dword. */
	tbl_write(ENTRY(2) + 8, 8, 0x99);
	assert_int_equal(m.fired, 2);
	assert_int_equal(pba_read(0, 1), 0);
}

static void test_function_mask(void **state)
{
	msix_control(&m, true, false);
	unmask(0);
	unmask(3);
	msix_control(&m, true, true);
	msix_fire(&m, 0);
	msix_fire(&m, 3);
	assert_int_equal(m.fired, 0);
	assert_int_equal(pba_read(0, 1), 0x09);
	/* Unmasking a vector under the function mask delivers nothing. */
	mask(3);
	unmask(3);
	assert_int_equal(m.fired, 0);
	msix_control(&m, true, false);
	assert_int_equal(m.fired, 2);
	assert_int_equal(pba_read(0, 1), 0);
	/* Disabling holds them too; re-enabling with the function masked does not. */
	msix_control(&m, false, false);
	msix_fire(&m, 0);
	msix_control(&m, true, true);
	assert_int_equal(m.fired, 2);
	assert_int_equal(pba_read(0, 1), 0x01);
	msix_control(&m, true, false);
	assert_int_equal(m.fired, 3);
}

static void test_fire_out_of_range(void **state)
{
	msix_control(&m, true, false);
	for (unsigned i = 0; i < NR; i++)
		unmask(i);
	msix_fire(&m, NR);
	msix_fire(&m, MSIX_MAX_VECTORS - 1);
	msix_fire(&m, MSIX_MAX_VECTORS);
	msix_fire(&m, 1000);
	msix_fire(&m, MSIX_NO_VECTOR);
	assert_int_equal(m.fired, 0);
	assert_int_equal(m.pending, 0);
	/* and the same with every vector masked: no pending bit either */
	for (unsigned i = 0; i < NR; i++)
		mask(i);
	msix_fire(&m, NR);
	msix_fire(&m, MSIX_NO_VECTOR);
	assert_int_equal(m.pending, 0);
	msix_fire(&m, NR - 1);
	assert_int_equal(m.pending, 1u << (NR - 1));
}

static void test_reset(void **state)
{
	msix_control(&m, true, true);
	for (unsigned i = 0; i < NR; i++) {
		tbl_write(ENTRY(i), 8, 0xfee00000u + i);
		tbl_write(ENTRY(i) + 8, 8, 0x40 + i);
		msix_fire(&m, (uint16_t)i);
	}
	assert_int_equal(m.pending, (1u << NR) - 1);
	msix_reset(&m);
	assert_false(m.enabled);
	assert_false(m.function_masked);
	assert_int_equal(pba_read(0, 8), 0);
	for (unsigned i = 0; i < NR; i++) {
		assert_int_equal(tbl_read(ENTRY(i), 8), 0);
		assert_int_equal(tbl_read(DATA(i), 4), 0);
		assert_int_equal(tbl_read(CTRL(i), 4), 1);
	}
	/* Nothing pending is delivered by a later enable. */
	msix_control(&m, true, false);
	for (unsigned i = 0; i < NR; i++)
		unmask(i);
	assert_int_equal(m.fired, 0);
	assert_int_equal(m.nr, NR);
}

/* ---- the PBA ---- */

static void test_pba_reads(void **state)
{
	msix_control(&m, true, false);
	msix_fire(&m, 0);
	msix_fire(&m, 3);
	assert_int_equal(pba_read(0, 8), 0x09);
	assert_int_equal(pba_read(0, 4), 0x09);
	assert_int_equal(pba_read(0, 2), 0x09);
	assert_int_equal(pba_read(0, 1), 0x09);
	assert_int_equal(pba_read(1, 1), 0);
	assert_int_equal(pba_read(4, 4), 0);
	/* Past the one qword that NR vectors need: zero. */
	assert_int_equal(pba_read(8, 8), 0);
	assert_int_equal(pba_read(0x1000, 4), 0);
	assert_int_equal(pba_read(UINT64_MAX - 3, 4), 0);
}

static void test_pba_all_64(void **state)
{
	msix_fini(&m);
	assert_int_equal(msix_init(&m, NULL, MSIX_MAX_VECTORS), 0);
	msix_control(&m, true, false);
	msix_fire(&m, 63);
	msix_fire(&m, 32);
	msix_fire(&m, 7);
	assert_int_equal(pba_read(0, 8), 1ull << 63 | 1ull << 32 | 1u << 7);
	assert_int_equal(pba_read(7, 1), 0x80);
	assert_int_equal(pba_read(4, 4), 0x80000001u);
	assert_int_equal(pba_read(6, 4), 0x8000); /* straddles the end: zero beyond */
	unmask(63);
	assert_int_equal(m.fired, 1);
	assert_int_equal(pba_read(4, 4), 0x00000001u);
	/* The last table entry is reachable, the one after it is not. */
	tbl_write(DATA(63), 4, 0x1234);
	assert_int_equal(tbl_read(DATA(63), 4), 0x1234);
	assert_int_equal(tbl_read(ENTRY(64), 4), 0xffffffffu);
}

static void test_pba_writes_ignored(void **state)
{
	msix_control(&m, true, false);
	msix_fire(&m, 1);
	uint8_t d[8];
	memset(d, 0, sizeof(d));
	msix_pba_io(&m, 0, d, 8, true);
	assert_int_equal(pba_read(0, 8), 0x02);
	memset(d, 0xff, sizeof(d));
	msix_pba_io(&m, 0, d, 8, true);
	assert_int_equal(pba_read(0, 8), 0x02);
	assert_int_equal(m.fired, 0);
	unmask(1);
	assert_int_equal(m.fired, 1);
}

/* ---- with a (fake) KVM ---- */

static void use_kvm(unsigned nr)
{
	msix_fini(&m);
	assert_int_equal(msix_init(&m, &fake_kvm, nr), 0);
}

static uint64_t eventfd_count(int fd)
{
	uint64_t n = 0;
	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void test_kvm_routes_and_irqfds(void **state)
{
	unsigned fds = unit_open_fds();
	use_kvm(NR);
	assert_int_equal(routes_alloced, NR);
	assert_int_equal(irqfd_assigns, NR);
	assert_int_equal(unit_open_fds(), fds + NR);
	for (unsigned i = 0; i < NR; i++) {
		assert_int_equal(m.v[i].gsi, KVM_IOAPIC_PINS + (int)i);
		assert_true(m.v[i].fd >= 0);
	}
	for (unsigned i = NR; i < MSIX_MAX_VECTORS; i++)
		assert_int_equal(m.v[i].fd, -1);
	msix_fini(&m);
	assert_int_equal(irqfd_deassigns, NR);
	assert_int_equal(unit_open_fds(), fds);
	assert_int_equal(msix_init(&m, NULL, NR), 0); /* for teardown */
	routes_alloced = irqfd_assigns = irqfd_deassigns = 0;
}

static void test_kvm_delivery_routes_lazily(void **state)
{
	use_kvm(NR);
	msix_control(&m, true, false);
	tbl_write(ENTRY(1), 8, 0x00000002fee01000ull);
	tbl_write(DATA(1), 4, 0x4021);
	unmask(1);
	assert_int_equal(route_sets, 0); /* nothing fired yet */
	msix_fire(&m, 1);
	assert_int_equal(route_sets, 1);
	assert_int_equal(last_route_gsi, KVM_IOAPIC_PINS + 1);
	assert_int_equal(last_route_addr, 0x00000002fee01000ull);
	assert_int_equal(last_route_data, 0x4021);
	assert_int_equal(eventfd_count(m.v[1].fd), 1);
	assert_int_equal(m.fired, 1);
	/* Same entry: no new route. Mask/unmask and rewriting the same
	 * values do not count as changes. */
	msix_fire(&m, 1);
	mask(1);
	unmask(1);
	tbl_write(DATA(1), 4, 0x4021);
	msix_fire(&m, 1);
	assert_int_equal(route_sets, 1);
	assert_int_equal(eventfd_count(m.v[1].fd), 2);
	/* A new data value is routed at the next delivery. */
	tbl_write(DATA(1), 4, 0x4022);
	assert_int_equal(route_sets, 1);
	msix_fire(&m, 1);
	assert_int_equal(route_sets, 2);
	assert_int_equal(last_route_data, 0x4022);
	assert_int_equal(eventfd_count(m.v[0].fd), 0);
	assert_int_equal(m.fired, 4);
}

static void test_kvm_route_failure_not_delivered(void **state)
{
	use_kvm(NR);
	msix_control(&m, true, false);
	unmask(0);
	route_set_result = -ENOSPC;
	msix_fire(&m, 0);
	assert_int_equal(m.fired, 0);
	assert_int_equal(eventfd_count(m.v[0].fd), 0);
	assert_log_contains("msix: cannot route vector 0");
	/* Retried at the next delivery. */
	route_set_result = 0;
	msix_fire(&m, 0);
	assert_int_equal(route_sets, 2);
	assert_int_equal(m.fired, 1);
	assert_int_equal(eventfd_count(m.v[0].fd), 1);
}

static void test_kvm_init_failure_unwinds(void **state)
{
	msix_fini(&m);
	unsigned fds = unit_open_fds();
	route_alloc_fail_at = 2;
	assert_int_equal(msix_init(&m, &fake_kvm, NR), -ENOSPC);
	assert_int_equal(unit_open_fds(), fds);
	assert_int_equal(irqfd_deassigns, irqfd_assigns);
	for (unsigned i = 0; i < MSIX_MAX_VECTORS; i++)
		assert_int_equal(m.v[i].fd, -1);
	route_alloc_fail_at = -1;
	assert_int_equal(msix_init(&m, NULL, NR), 0); /* for teardown */
	routes_alloced = irqfd_assigns = irqfd_deassigns = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_dword_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_qword_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_table_bad_accesses_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled_sets_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_masked_vector_sets_pba, setup, teardown),
		cmocka_unit_test_setup_teardown(test_function_mask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fire_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pba_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pba_all_64, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pba_writes_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kvm_routes_and_irqfds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kvm_delivery_routes_lazily, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kvm_route_failure_not_delivered, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_kvm_init_failure_unwinds, setup, teardown),
	};
	return cmocka_run_group_tests_name("msix", tests, NULL, NULL);
}
