/* i8042 keyboard controller, just enough to reset the machine (command
 * 0xFE, Linux's reboot=k) and to let Linux's i8042/atkbd drivers probe a
 * keyboard that acknowledges commands. No mouse (AUX) port, no scancode
 * translation. */
#ifndef MOTE_I8042_H
#define MOTE_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "bus/irq.h"

#define I8042_QUEUE 16

struct i8042 {
	pthread_mutex_t lock;
	uint8_t ctr;         /* controller command byte */
	uint8_t pending_cmd; /* controller command waiting for its data byte */
	uint8_t kbd_cmd;     /* keyboard command waiting for its argument */
	bool last_was_cmd;
	uint8_t queue[I8042_QUEUE];
	unsigned q_head, q_len;
	int irq_level;
	struct irq_line irq;
	void (*reset)(void *opaque); /* called on a reset pulse; must not block */
	void *reset_opaque;
};

void i8042_init(struct i8042 *k, struct irq_line irq, void (*reset)(void *), void *opaque);
void i8042_fini(struct i8042 *k);
/* Types Ctrl-Alt-Del (set 1 scancodes, as the controller's translation
 * delivers them). -EAGAIN when the keyboard is disabled or the queue full. */
int i8042_ctrl_alt_del(struct i8042 *k);
/* Bus handlers for the data (0x60) and command/status (0x64) ports. */
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
