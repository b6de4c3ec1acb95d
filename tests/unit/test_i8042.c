/* Unit tests for src/dev/i8042.c: the reset paths Linux uses (reboot=k:
 * 0xFE on the command port; the output port with bit 0 clear), the
 * controller command byte, and the keyboard replies atkbd's probe needs,
 * with the interrupt line recorded. */
#include "dev/i8042.h"
#include "arch/x86/layout.h"

#include "unit.h"

#define STS_OBF	    0x01
#define STS_SYS	    0x04
#define STS_CMD	    0x08
#define CTR_KBD_INT 0x01

static unsigned resets, irq_changes;
static int irq_level = -1;
static unsigned irq_gsi;
static struct i8042 kbd;

static void on_reset(void *opaque)
{
	assert_ptr_equal(opaque, &kbd);
	resets++;
}

static void irq_set(void *opaque, unsigned gsi, int level)
{
	assert_ptr_equal(opaque, &kbd);
	/* devices call the line only when its level changes */
	assert_int_not_equal(level, irq_level);
	irq_level = level;
	irq_gsi = gsi;
	irq_changes++;
}

static int setup(void **state)
{
	resets = irq_changes = 0;
	irq_level = 0;
	i8042_init(&kbd, (struct irq_line){.set = irq_set, .opaque = &kbd, .gsi = X86_I8042_IRQ},
		   on_reset, &kbd);
	return 0;
}

static int teardown(void **state)
{
	i8042_fini(&kbd);
	return 0;
}

static void cmd(uint8_t v)
{
	i8042_cmd_io(&kbd, 0, &v, 1, true);
}

static void data_w(uint8_t v)
{
	i8042_data_io(&kbd, 0, &v, 1, true);
}

static uint8_t status(void)
{
	uint8_t v = 0;
	i8042_cmd_io(&kbd, 0, &v, 1, false);
	return v;
}

static uint8_t data_r(void)
{
	uint8_t v = 0;
	i8042_data_io(&kbd, 0, &v, 1, false);
	return v;
}

static void test_reset_command(void **state)
{
	cmd(0xfe);
	assert_int_equal(resets, 1);
	/* 0xF0-0xFF pulse output lines; only those with bit 0 clear reset */
	cmd(0xff);
	cmd(0xfd);
	assert_int_equal(resets, 1);
	cmd(0xf0);
	assert_int_equal(resets, 2);
	/* neighbouring commands do not reset */
	cmd(0xef);
	cmd(0xd0);
	assert_int_equal(resets, 2);
}

static void test_output_port_reset(void **state)
{
	cmd(0xd1);
	data_w(0xfe); /* bit 0 (CPU reset line) clear */
	assert_int_equal(resets, 1);
	cmd(0xd1);
	data_w(0xdf); /* bit 0 set: no reset (A20 toggling, as DOS did) */
	assert_int_equal(resets, 1);
	/* without the 0xD1 prefix, 0xFE on the data port goes to the
	 * keyboard (resend), never to the reset line */
	data_w(0xfe);
	assert_int_equal(resets, 1);
}

static void test_reset_without_callback(void **state)
{
	struct i8042 k;
	i8042_init(&k, (struct irq_line){0}, NULL, NULL);
	uint8_t v = 0xfe;
	i8042_cmd_io(&k, 0, &v, 1, true); /* must not crash */
	v = 0xd1;
	i8042_cmd_io(&k, 0, &v, 1, true);
	v = 0x00;
	i8042_data_io(&k, 0, &v, 1, true);
	i8042_fini(&k);
}

static void test_ctr_read_write(void **state)
{
	cmd(0x20);
	assert_true(status() & STS_OBF);
	uint8_t ctr = data_r();
	assert_true(ctr & CTR_KBD_INT);
	assert_true(ctr & 0x04); /* system flag: POST passed */
	assert_false(status() & STS_OBF);

	cmd(0x60);
	data_w(0x45);
	assert_int_equal(resets, 0);
	cmd(0x20);
	assert_int_equal(data_r(), 0x45);

	/* the keyboard disable/enable commands show in the CTR */
	cmd(0xad);
	cmd(0x20);
	assert_int_equal(data_r() & 0x10, 0x10);
	cmd(0xae);
	cmd(0x20);
	assert_int_equal(data_r() & 0x10, 0);
	/* SYS bit of the status follows the CTR */
	cmd(0x60);
	data_w(0x00);
	assert_false(status() & STS_SYS);
	cmd(0x60);
	data_w(0x04);
	assert_true(status() & STS_SYS);
}

static void test_self_test(void **state)
{
	assert_false(status() & STS_OBF);
	cmd(0xaa);
	uint8_t st = status();
	assert_true(st & STS_OBF);
	assert_true(st & STS_CMD); /* last write went to the command port */
	assert_int_equal(data_r(), 0x55);
	assert_false(status() & STS_OBF);
	/* the command/data bit tells which port was last written */
	data_w(0xf4);
	assert_false(status() & STS_CMD);
	assert_int_equal(data_r(), 0xfa);
	/* keyboard interface test passes; there is no AUX port */
	cmd(0xab);
	assert_int_equal(data_r(), 0x00);
	cmd(0xa9);
	assert_int_not_equal(data_r(), 0x00);
	/* an empty output buffer reads 0, without side effects */
	assert_int_equal(data_r(), 0);
}

static void test_keyboard_reset_and_identify(void **state)
{
	data_w(0xff);
	assert_int_equal(data_r(), 0xfa); /* ACK */
	assert_int_equal(data_r(), 0xaa); /* self-test passed */
	assert_false(status() & STS_OBF);
	data_w(0xf2);
	assert_int_equal(data_r(), 0xfa);
	assert_int_equal(data_r(), 0xab);
	assert_int_equal(data_r(), 0x83);
	/* a command with an argument: both bytes are acknowledged, and the
	 * argument is not taken as a command */
	data_w(0xed);
	data_w(0xff); /* LED bits, not a reset */
	assert_int_equal(data_r(), 0xfa);
	assert_int_equal(data_r(), 0xfa);
	assert_false(status() & STS_OBF);
	data_w(0xee); /* echo */
	assert_int_equal(data_r(), 0xee);
	data_w(0xf4); /* enable */
	assert_int_equal(data_r(), 0xfa);
}

static void test_queue_overflow(void **state)
{
	/* 3 bytes per identify: more than the queue holds, dropped at the
	 * end, never written past it */
	for (unsigned i = 0; i < I8042_QUEUE; i++)
		data_w(0xf2);
	assert_int_equal(kbd.q_len, I8042_QUEUE);
	unsigned n = 0;
	while (status() & STS_OBF) {
		data_r();
		n++;
	}
	assert_int_equal(n, I8042_QUEUE);
}

static void test_irq1(void **state)
{
	assert_int_equal(irq_level, 0);
	data_w(0xff); /* two bytes queued, CTR kbd-int set by default */
	assert_int_equal(irq_level, 1);
	assert_int_equal(irq_gsi, X86_I8042_IRQ);
	assert_int_equal(irq_changes, 1);
	data_r();
	/* One byte still pending: the line is pulsed (low, high) so that the
	 * next byte is a new edge, as a real controller's one-byte buffer
	 * makes it; Linux's handler reads one byte per interrupt. */
	assert_int_equal(irq_level, 1);
	assert_int_equal(irq_changes, 3);
	data_r();
	assert_int_equal(irq_level, 0);
	assert_int_equal(irq_changes, 4);

	/* with the interrupt disabled in the CTR, output stays silent */
	cmd(0x60);
	data_w(0x00);
	data_w(0xff);
	assert_true(status() & STS_OBF);
	assert_int_equal(irq_level, 0);
	/* and enabling it with output pending raises the line */
	cmd(0x60);
	data_w(CTR_KBD_INT);
	assert_int_equal(irq_level, 1);
	data_r();
	data_r();
	assert_int_equal(irq_level, 0);
}

static void test_wide_reads(void **state)
{
	/* a 2- or 4-byte access fills only byte 0 with the register and zeroes
	 * the rest, instead of leaving stale bytes */
	uint8_t v[4] = {0xee, 0xee, 0xee, 0xee};
	i8042_cmd_io(&kbd, 0, v, 4, false);
	assert_int_equal(v[1] | v[2] | v[3], 0);
	cmd(0xaa);
	memset(v, 0xee, sizeof(v));
	i8042_data_io(&kbd, 0, v, 2, false);
	assert_int_equal(v[0], 0x55);
	assert_int_equal(v[1], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reset_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_output_port_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_without_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctr_read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_test, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keyboard_reset_and_identify, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_overflow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_irq1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wide_reads, setup, teardown),
	};
	return cmocka_run_group_tests_name("i8042", tests, NULL, NULL);
}
