/* 16550A UART; see serial.h. Register semantics: National Semiconductor
 * PC16550D datasheet. Output is written to out_fd on the vCPU thread that
 * wrote THR (a console write is short; a blocked terminal applies
 * back-pressure to the guest as a real slow UART would). */
#include "dev/serial.h"

#include <string.h>

#include "util/util.h"

enum {
	REG_DATA = 0, /* RBR/THR, DLL when DLAB */
	REG_IER = 1,  /* DLM when DLAB */
	REG_IIR = 2,  /* FCR on write */
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

void serial8250_init(struct serial8250 *s, int out_fd, struct irq_line irq)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->irq = irq;
	s->mcr = MCR_OUT2;
	s->dll = 12; /* 9600 baud, as firmware leaves it */
}

void serial8250_fini(struct serial8250 *s) { pthread_mutex_destroy(&s->lock); }

static uint8_t iir(const struct serial8250 *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
	if ((s->ier & IER_RDI) && s->rx_len)
		return fifo | IIR_RDI;
	if ((s->ier & IER_THRI) && s->thr_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NONE;
}

static void update_irq(struct serial8250 *s)
{
	int level = !(iir(s) & IIR_NONE);
	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->irq, level);
	}
}

static void rx_push(struct serial8250 *s, uint8_t c)
{
	if (s->rx_len < SERIAL_RX_SIZE) {
		s->rx[(s->rx_head + s->rx_len) % SERIAL_RX_SIZE] = c;
		s->rx_len++;
	}
}

static uint8_t rx_pop(struct serial8250 *s)
{
	if (!s->rx_len)
		return 0;
	uint8_t c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
	s->rx_len--;
	return c;
}

static uint8_t msr(const struct serial8250 *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	/* Loopback wires the modem outputs back to the inputs. */
	return (uint8_t)((s->mcr & MCR_DTR ? MSR_DSR : 0) | (s->mcr & MCR_RTS ? MSR_CTS : 0) |
			 (s->mcr & MCR_OUT1 ? MSR_RI : 0) | (s->mcr & MCR_OUT2 ? MSR_DCD : 0));
}

static void write_reg(struct serial8250 *s, unsigned reg, uint8_t v)
{
	bool dlab = s->lcr & LCR_DLAB;
	switch (reg) {
	case REG_DATA:
		if (dlab) {
			s->dll = v;
			break;
		}
		if (s->mcr & MCR_LOOP) {
			rx_push(s, v);
		} else {
			/* Console output; nothing useful to do if the host side fails. */
			(void)write_full(s->out_fd, &v, 1);
			s->tx_bytes++;
		}
		s->thr_pending = true;
		break;
	case REG_IER:
		if (dlab) {
			s->dlm = v;
			break;
		}
		/* Enabling THRI while THR is empty owes an interrupt at once. */
		if ((v & IER_THRI) && !(s->ier & IER_THRI))
			s->thr_pending = true;
		s->ier = v & 0x0f;
		break;
	case REG_IIR:
		s->fcr = v & 0xc9;
		if (v & FCR_CLEAR_RX)
			s->rx_len = 0;
		break;
	case REG_LCR:
		s->lcr = v;
		break;
	case REG_MCR:
		s->mcr = v & 0x1f;
		break;
	case REG_SCR:
		s->scr = v;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

static uint8_t read_reg(struct serial8250 *s, unsigned reg)
{
	bool dlab = s->lcr & LCR_DLAB;
	switch (reg) {
	case REG_DATA:
		return dlab ? s->dll : rx_pop(s);
	case REG_IER:
		return dlab ? s->dlm : s->ier;
	case REG_IIR: {
		uint8_t v = iir(s);
		if ((v & 0x0f) == IIR_THRI)
			s->thr_pending = false; /* reading IIR acknowledges THRE */
		return v;
	}
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		return (uint8_t)(LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0));
	case REG_MSR:
		return msr(s);
	default:
		return s->scr;
	}
}

void serial8250_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial8250 *s = opaque;
	pthread_mutex_lock(&s->lock);
	/* Registers are bytes; a wider access touches consecutive registers. */
	for (uint32_t i = 0; i < len; i++) {
		unsigned reg = (unsigned)(offset + i);
		if (reg > REG_SCR) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (is_write)
			write_reg(s, reg, data[i]);
		else
			data[i] = read_reg(s, reg);
	}
	if (s->rx_stalled && s->rx_len == 0) {
		s->rx_stalled = false;
		if (s->rx_ready)
			s->rx_ready(s->rx_ready_opaque);
	}
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial8250_rx(struct serial8250 *s, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&s->lock);
	size_t n = MIN(len, SERIAL_RX_SIZE - s->rx_len);
	for (size_t i = 0; i < n; i++)
		rx_push(s, buf[i]);
	s->rx_bytes += n;
	if (n < len)
		s->rx_stalled = true;
	update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}
