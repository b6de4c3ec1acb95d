/* 16550A UART (COM1), just enough for Linux's 8250 driver and a console:
 * THR/RBR, IER, IIR/FCR, LCR, MCR (with loopback, which Linux's probe
 * uses), LSR, MSR, SCR and the divisor latch. Transmission is instant (no
 * baud-rate timing); no line-status errors, no modem-status interrupts.
 *
 * Register accesses run on vCPU threads (via the bus); input arrives from
 * the event loop through serial8250_rx(). A mutex guards the state. */
#ifndef MOTE_SERIAL_H
#define MOTE_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/irq.h"

#define SERIAL_RX_SIZE 1024

struct serial8250 {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_pending; /* THR-empty interrupt owed to the guest */
	int irq_level;
	uint8_t rx[SERIAL_RX_SIZE];
	size_t rx_head, rx_len;
	int out_fd;
	struct irq_line irq;
	/* Called (lock held, vCPU thread) when input space frees up after
	 * serial8250_rx() found the buffer full; must not block. */
	void (*rx_ready)(void *opaque);
	void *rx_ready_opaque;
	bool rx_stalled;
	uint64_t tx_bytes, rx_bytes;
};

void serial8250_init(struct serial8250 *s, int out_fd, struct irq_line irq);
void serial8250_fini(struct serial8250 *s);

/* The bus handler for the 8 registers at the UART's base port. */
void serial8250_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Queues guest input; returns how many bytes were taken (fewer than len
 * when the receive buffer is full; rx_ready then fires once the guest has
 * drained the buffer). */
size_t serial8250_rx(struct serial8250 *s, const uint8_t *buf, size_t len);

#endif
