/* Unit tests for src/dev/pm.c: the hardware-reduced ACPI sleep control and
 * reset registers. Only an exact S5 request powers off and only the FADT's
 * reset value resets: a guest poking other values must not stop the VM. */
#include "dev/pm.h"
#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"

#include "unit.h"

static unsigned poweroffs, resets;
static void *last_opaque;

static void on_poweroff(void *opaque)
{
	poweroffs++;
	last_opaque = opaque;
}

static void on_reset(void *opaque)
{
	resets++;
	last_opaque = opaque;
}

static int token;
static struct acpi_pm pm = {.poweroff = on_poweroff, .reset = on_reset, .opaque = &token};

static int setup(void **state)
{
	poweroffs = resets = 0;
	last_opaque = NULL;
	return 0;
}

static void wr(uint64_t offset, uint8_t v)
{
	acpi_pm_io(&pm, offset, &v, 1, true);
}

/* SLP_TYP in bits 4:2, SLP_EN bit 5 (ACPI 6.4 §4.8.3.7). */
static uint8_t slp(unsigned type, bool en)
{
	return (uint8_t)(type << 2 | (en ? ACPI_SLP_EN : 0));
}

static void test_s5_powers_off(void **state)
{
	wr(0, slp(ACPI_S5_TYPE, true));
	assert_int_equal(poweroffs, 1);
	assert_int_equal(resets, 0);
	assert_ptr_equal(last_opaque, &token);
	/* WAK_STS (bit 7) and reserved bits do not get in the way */
	wr(0, (uint8_t)(slp(ACPI_S5_TYPE, true) | 0x80 | 0x03));
	assert_int_equal(poweroffs, 2);
}

static void test_other_sleep_types_ignored(void **state)
{
	for (unsigned type = 0; type < 8; type++) {
		if (type != ACPI_S5_TYPE)
			wr(0, slp(type, true));
		wr(0, slp(type, false)); /* no SLP_EN: never a transition */
	}
	assert_int_equal(poweroffs, 0);
	assert_int_equal(resets, 0);
	/* S5 written to the status or reset register is not a sleep request */
	wr(1, slp(ACPI_S5_TYPE, true));
	wr(3, slp(ACPI_S5_TYPE, true));
	assert_int_equal(poweroffs, 0);
	assert_int_equal(resets, 0);
}

static void test_reset_register(void **state)
{
	wr(2, X86_RESET_VALUE);
	assert_int_equal(resets, 1);
	assert_ptr_equal(last_opaque, &token);
	for (unsigned v = 0; v < 256; v++)
		if (v != X86_RESET_VALUE)
			wr(2, (uint8_t)v);
	wr(0, X86_RESET_VALUE); /* the sleep register with the reset value */
	wr(1, X86_RESET_VALUE);
	assert_int_equal(resets, 1);
	assert_int_equal(poweroffs, 0);
}

static void test_reads_zero(void **state)
{
	for (uint64_t off = 0; off < X86_PM_LEN; off++) {
		uint8_t d[4] = {0xff, 0xff, 0xff, 0xff};
		acpi_pm_io(&pm, off, d, 1, false);
		assert_int_equal(d[0], 0);
		assert_int_equal(d[1], 0xff); /* only len bytes written */
	}
	uint8_t d[4] = {0xff, 0xff, 0xff, 0xff};
	acpi_pm_io(&pm, 0, d, 4, false);
	assert_memory_equal(d, "\0\0\0\0", 4);
	assert_int_equal(poweroffs + resets, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_s5_powers_off, setup),
		cmocka_unit_test_setup(test_other_sleep_types_ignored, setup),
		cmocka_unit_test_setup(test_reset_register, setup),
		cmocka_unit_test_setup(test_reads_zero, setup),
	};
	return cmocka_run_group_tests_name("pm", tests, NULL, NULL);
}
