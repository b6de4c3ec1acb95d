/* An interrupt line a device drives: the VMM supplies `set`, which raises
 * (level 1) or lowers (level 0) the guest interrupt `gsi`. Devices call it
 * only when their level changes; it may be called from any thread. */
#ifndef MOTE_IRQ_H
#define MOTE_IRQ_H

struct irq_line {
	void (*set)(void *opaque, unsigned gsi, int level);
	void *opaque;
	unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *irq, int level)
{
	if (irq->set)
		irq->set(irq->opaque, irq->gsi, level);
}

#endif
