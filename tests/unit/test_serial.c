/* Unit tests for src/dev/serial.c, driven the way Linux's 8250 driver and
 * probe drive the UART: registers through serial8250_io(), input through
 * serial8250_rx(), output into a pipe, COM1's interrupt line recorded. */
#include "dev/serial.h"
#include "arch/x86/layout.h"

#include "unit.h"

enum { DATA, IER, IIR, LCR, MCR, LSR, MSR, SCR };
#define FCR IIR

static struct serial8250 uart;
static int out[2]; /* pipe: [0] read by the test, [1] the UART's out_fd */
static int irq_level;
static unsigned irq_changes, rx_ready_calls;

static void irq_set(void *opaque, unsigned gsi, int level)
{
	assert_ptr_equal(opaque, &uart);
	assert_int_equal(gsi, X86_COM1_IRQ);
	/* the device calls the line only on a change of level */
	assert_int_not_equal(level, irq_level);
	irq_level = level;
	irq_changes++;
}

static void on_rx_ready(void *opaque)
{
	assert_ptr_equal(opaque, &uart);
	rx_ready_calls++;
}

static int setup(void **state)
{
	assert_int_equal(pipe2(out, O_NONBLOCK | O_CLOEXEC), 0);
	irq_level = 0;
	irq_changes = rx_ready_calls = 0;
	serial8250_init(&uart, out[1],
			(struct irq_line){.set = irq_set, .opaque = &uart, .gsi = X86_COM1_IRQ});
	uart.rx_ready = on_rx_ready;
	uart.rx_ready_opaque = &uart;
	return 0;
}

static int teardown(void **state)
{
	serial8250_fini(&uart);
	close(out[0]);
	close(out[1]);
	return 0;
}

static void wr(unsigned reg, uint8_t v)
{
	serial8250_io(&uart, reg, &v, 1, true);
}

static uint8_t rd(unsigned reg)
{
	uint8_t v = 0xee;
	serial8250_io(&uart, reg, &v, 1, false);
	return v;
}

/* What the UART wrote to out_fd so far. */
static size_t output(char *buf, size_t cap)
{
	ssize_t n = read(out[0], buf, cap);
	return n > 0 ? (size_t)n : 0;
}

static void rx(const char *s)
{
	assert_int_equal(serial8250_rx(&uart, (const uint8_t *)s, strlen(s)), strlen(s));
}

static void test_thr_to_out_fd(void **state)
{
	char buf[16];
	wr(DATA, 'h');
	wr(DATA, 'i');
	assert_int_equal(output(buf, sizeof(buf)), 2);
	assert_memory_equal(buf, "hi", 2);
	assert_int_equal(uart.tx_bytes, 2);
	/* transmission is instant: THR empty and transmitter idle at once */
	assert_int_equal(rd(LSR) & 0x60, 0x60);
	/* no interrupt was asked for */
	assert_int_equal(irq_changes, 0);
}

static void test_thr_host_write_fails(void **state)
{
	/* a broken console fd loses output but never stops the guest */
	uart.out_fd = -1;
	wr(DATA, 'x');
	assert_int_equal(rd(LSR) & 0x60, 0x60);
}

static void test_lsr_data_ready(void **state)
{
	assert_int_equal(rd(LSR), 0x60);
	rx("ab");
	assert_int_equal(rd(LSR), 0x61);
	assert_int_equal(rd(DATA), 'a');
	assert_int_equal(rd(LSR), 0x61);
	assert_int_equal(rd(DATA), 'b');
	assert_int_equal(rd(LSR), 0x60);
	assert_int_equal(rd(DATA), 0); /* empty RBR */
	assert_int_equal(uart.rx_bytes, 2);
}

static void test_thre_interrupt(void **state)
{
	assert_int_equal(rd(IIR) & 0x0f, 0x01); /* nothing pending */
	wr(IER, 0x02);				/* THRI while THR is empty */
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(IIR) & 0x0f, 0x02);
	/* reading IIR acknowledged it */
	assert_int_equal(irq_level, 0);
	assert_int_equal(rd(IIR) & 0x0f, 0x01);
	/* re-writing IER with THRI already on owes nothing new */
	wr(IER, 0x02);
	assert_int_equal(irq_level, 0);
	/* a THR write empties at once and owes THRE again */
	wr(DATA, 'z');
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(IIR) & 0x0f, 0x02);
	assert_int_equal(irq_level, 0);
	/* disabling THRI drops a pending THRE interrupt */
	wr(DATA, 'z');
	assert_int_equal(irq_level, 1);
	wr(IER, 0x00);
	assert_int_equal(irq_level, 0);
	assert_int_equal(irq_changes, 6);
}

static void test_iir_priority(void **state)
{
	wr(IER, 0x03); /* RDI | THRI */
	assert_int_equal(irq_level, 1);
	rx("q");
	/* received data outranks THRE, and reading IIR then does not
	 * acknowledge the THRE still owed */
	assert_int_equal(rd(IIR) & 0x0f, 0x04);
	assert_int_equal(rd(IIR) & 0x0f, 0x04);
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(DATA), 'q');
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(IIR) & 0x0f, 0x02);
	assert_int_equal(irq_level, 0);
	/* RDI alone: input raises, draining lowers */
	rx("xy");
	assert_int_equal(irq_level, 1);
	rd(DATA);
	assert_int_equal(irq_level, 1);
	rd(DATA);
	assert_int_equal(irq_level, 0);
	/* input with RDI disabled raises nothing */
	wr(IER, 0x00);
	rx("z");
	assert_int_equal(irq_level, 0);
	assert_int_equal(rd(IIR) & 0x0f, 0x01);
	/* ...until RDI is enabled with the data still there */
	wr(IER, 0x01);
	assert_int_equal(irq_level, 1);
	/* IER keeps only its four defined bits */
	wr(IER, 0xf1);
	assert_int_equal(rd(IER), 0x01);
}

static void test_fifo_bits(void **state)
{
	assert_int_equal(rd(IIR) & 0xc0, 0x00);
	wr(FCR, 0x01); /* enable FIFOs */
	assert_int_equal(rd(IIR) & 0xc0, 0xc0);
	assert_int_equal(rd(IIR), 0xc1);
	/* clearing RX drops queued input */
	rx("abc");
	assert_int_equal(rd(LSR) & 0x01, 0x01);
	wr(FCR, 0x03);
	assert_int_equal(rd(LSR) & 0x01, 0x00);
	assert_int_equal(rd(IIR) & 0xc0, 0xc0);
	wr(FCR, 0x00);
	assert_int_equal(rd(IIR), 0x01);
}

static void test_divisor_latch(void **state)
{
	char buf[4];
	wr(IER, 0x05);
	wr(LCR, 0x83); /* DLAB, 8N1 */
	assert_int_equal(rd(LCR), 0x83);
	wr(DATA, 0x01); /* DLL: 115200 baud */
	wr(IER, 0x00);	/* DLM */
	assert_int_equal(rd(DATA), 0x01);
	assert_int_equal(rd(IER), 0x00);
	assert_int_equal(output(buf, sizeof(buf)), 0); /* nothing transmitted */
	wr(LCR, 0x03);
	assert_int_equal(uart.dll, 1);
	assert_int_equal(uart.dlm, 0);
	assert_int_equal(rd(IER), 0x05); /* IER untouched by the DLM write */
	wr(DATA, 'k');
	assert_int_equal(output(buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'k');
	/* the firmware default divisor is 12 (9600 baud) */
	struct serial8250 fresh;
	serial8250_init(&fresh, -1, (struct irq_line){0});
	uint8_t v = 0x80;
	serial8250_io(&fresh, LCR, &v, 1, true);
	serial8250_io(&fresh, DATA, &v, 1, false);
	assert_int_equal(v, 12);
	serial8250_fini(&fresh);
}

static void test_scratch(void **state)
{
	for (unsigned v = 0; v < 256; v += 51) {
		wr(SCR, (uint8_t)v);
		assert_int_equal(rd(SCR), v);
	}
	/* LSR and MSR are read-only */
	wr(LSR, 0x00);
	wr(MSR, 0x00);
	assert_int_equal(rd(LSR), 0x60);
	assert_int_equal(rd(MSR), 0xb0);
}

static void test_loopback(void **state)
{
	char buf[4];
	/* outside loopback: carrier, DSR and CTS asserted */
	assert_int_equal(rd(MSR) & 0xf0, 0xb0);
	/* Linux's 8250 probe: MCR = LOOP | RTS | OUT2, expects MSR 0x90 */
	wr(MCR, 0x1a);
	assert_int_equal(rd(MSR) & 0xf0, 0x90);
	wr(MCR, 0x1f);
	assert_int_equal(rd(MSR) & 0xf0, 0xf0);
	wr(MCR, 0x10);
	assert_int_equal(rd(MSR) & 0xf0, 0x00);
	wr(MCR, 0x11); /* DTR → DSR */
	assert_int_equal(rd(MSR) & 0xf0, 0x20);
	wr(MCR, 0x14); /* OUT1 → RI */
	assert_int_equal(rd(MSR) & 0xf0, 0x40);
	/* THR comes back on RBR instead of leaving the UART */
	wr(DATA, 0xa5);
	assert_int_equal(output(buf, sizeof(buf)), 0);
	assert_int_equal(rd(LSR) & 0x01, 0x01);
	assert_int_equal(rd(DATA), 0xa5);
	assert_int_equal(rd(LSR) & 0x01, 0x00);
	assert_int_equal(uart.tx_bytes, 0);
	/* MCR keeps its five defined bits; leaving loopback restores output */
	wr(MCR, 0xeb);
	assert_int_equal(rd(MCR), 0x0b);
	wr(DATA, 'o');
	assert_int_equal(output(buf, sizeof(buf)), 1);
}

static void test_rx_full_and_ready(void **state)
{
	static uint8_t big[SERIAL_RX_SIZE + 100];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	assert_int_equal(serial8250_rx(&uart, big, 10), 10);
	assert_int_equal(serial8250_rx(&uart, big + 10, sizeof(big) - 10), SERIAL_RX_SIZE - 10);
	assert_int_equal(serial8250_rx(&uart, big, 1), 0); /* full */
	assert_int_equal(uart.rx_bytes, SERIAL_RX_SIZE);
	/* bytes come out in order; the callback waits until all are read */
	for (size_t i = 0; i < SERIAL_RX_SIZE; i++) {
		assert_int_equal(rx_ready_calls, 0);
		assert_int_equal(rd(DATA), big[i]);
	}
	assert_int_equal(rx_ready_calls, 1);
	/* and fires once, not on every later access */
	rd(LSR);
	rd(DATA);
	assert_int_equal(rx_ready_calls, 1);
	/* draining after input that fitted does not call it */
	rx("fits");
	for (int i = 0; i < 4; i++)
		rd(DATA);
	assert_int_equal(rx_ready_calls, 1);
	/* clearing the FIFO also frees the space a stalled producer waits for */
	assert_int_equal(serial8250_rx(&uart, big, sizeof(big)), SERIAL_RX_SIZE);
	wr(FCR, 0x03);
	assert_int_equal(rx_ready_calls, 2);
}

static void test_rx_ring_wraps(void **state)
{
	static uint8_t a[SERIAL_RX_SIZE];
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (uint8_t)(i ^ 0x5c);
	assert_int_equal(serial8250_rx(&uart, a, 700), 700);
	for (size_t i = 0; i < 600; i++)
		assert_int_equal(rd(DATA), a[i]);
	/* 100 left; 924 fit, wrapping past the end of the ring */
	assert_int_equal(serial8250_rx(&uart, a, sizeof(a)), SERIAL_RX_SIZE - 100);
	for (size_t i = 600; i < 700; i++)
		assert_int_equal(rd(DATA), a[i]);
	for (size_t i = 0; i < SERIAL_RX_SIZE - 100; i++)
		assert_int_equal(rd(DATA), a[i]);
	assert_int_equal(rd(LSR) & 0x01, 0);
}

static void test_wide_access(void **state)
{
	/* a 2-byte read at MSR covers MSR and SCR; bytes past the last
	 * register read as all ones */
	wr(SCR, 0x42);
	uint8_t v[4] = {0, 0, 0, 0};
	serial8250_io(&uart, MSR, v, 4, false);
	assert_int_equal(v[0], 0xb0);
	assert_int_equal(v[1], 0x42);
	assert_int_equal(v[2], 0xff);
	assert_int_equal(v[3], 0xff);
	/* a write past the last register is dropped */
	uint8_t w[2] = {0x24, 0x99};
	serial8250_io(&uart, SCR, w, 2, true);
	assert_int_equal(rd(SCR), 0x24);
}

static void test_irq_only_on_change(void **state)
{
	wr(IER, 0x01);
	rx("a");
	rx("b");
	rx("c");
	assert_int_equal(irq_changes, 1);
	rd(LSR);
	rd(DATA);
	rd(DATA);
	assert_int_equal(irq_changes, 1);
	rd(DATA);
	assert_int_equal(irq_changes, 2);
	assert_int_equal(irq_level, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_thr_to_out_fd),	    T(test_thr_host_write_fails),
		T(test_lsr_data_ready),	    T(test_thre_interrupt),
		T(test_iir_priority),	    T(test_fifo_bits),
		T(test_divisor_latch),	    T(test_scratch),
		T(test_loopback),	    T(test_rx_full_and_ready),
		T(test_rx_ring_wraps),	    T(test_wide_access),
		T(test_irq_only_on_change),
	};
	return cmocka_run_group_tests_name("serial", tests, NULL, NULL);
}
