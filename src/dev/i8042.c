/* i8042 keyboard controller; see i8042.h. Command set: the IBM PC/AT
 * technical reference, as Linux's drivers/input/serio/i8042.c uses it. */
#include "dev/i8042.h"

#include <errno.h>
#include <string.h>

#define STS_OBF 0x01
#define STS_SYS 0x04
#define STS_CMD 0x08
#define STS_UNLOCKED 0x10 /* keyboard not inhibited (no keylock) */
#define CTR_KBD_INT 0x01
#define CTR_SYS 0x04
#define CTR_KBD_DISABLE 0x10
#define CTR_AUX_DISABLE 0x20
#define CTR_XLATE 0x40

#define KBD_ACK 0xfa

void i8042_init(struct i8042 *k, struct irq_line irq, void (*reset)(void *), void *opaque)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->ctr = CTR_KBD_INT | CTR_SYS | CTR_AUX_DISABLE | CTR_XLATE;
	k->irq = irq;
	k->reset = reset;
	k->reset_opaque = opaque;
}

void i8042_fini(struct i8042 *k) { pthread_mutex_destroy(&k->lock); }

static void push(struct i8042 *k, uint8_t v)
{
	if (k->q_len < I8042_QUEUE)
		k->queue[(k->q_head + k->q_len++) % I8042_QUEUE] = v;
}

static void update_irq(struct i8042 *k)
{
	int level = k->q_len && (k->ctr & CTR_KBD_INT);
	if (level != k->irq_level) {
		k->irq_level = level;
		irq_line_set(&k->irq, level);
	}
}

int i8042_ctrl_alt_del(struct i8042 *k)
{
	/* Ctrl, Alt, Del (extended) down, then up in reverse. */
	static const uint8_t keys[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	int err = 0;
	pthread_mutex_lock(&k->lock);
	if ((k->ctr & CTR_KBD_DISABLE) || k->q_len + sizeof(keys) > I8042_QUEUE) {
		err = -EAGAIN;
	} else {
		for (unsigned i = 0; i < sizeof(keys); i++)
			push(k, keys[i]);
		update_irq(k);
	}
	pthread_mutex_unlock(&k->lock);
	return err;
}

static void keyboard_write(struct i8042 *k, uint8_t v)
{
	if (k->kbd_cmd) { /* the argument of LED/scancode-set/typematic commands */
		k->kbd_cmd = 0;
		push(k, KBD_ACK);
		return;
	}
	switch (v) {
	case 0xff: /* reset: ack, then self-test passed */
		push(k, KBD_ACK);
		push(k, 0xaa);
		break;
	case 0xf2: /* identify: an MF2 keyboard */
		push(k, KBD_ACK);
		push(k, 0xab);
		push(k, 0x83);
		break;
	case 0xed: /* LEDs */
	case 0xf0: /* scancode set */
	case 0xf3: /* typematic rate */
		k->kbd_cmd = v;
		push(k, KBD_ACK);
		break;
	default: /* enable, disable, defaults, echo...: acknowledged */
		push(k, v == 0xee ? 0xee : KBD_ACK);
		break;
	}
}

static void command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case 0x20: /* read CTR */
		push(k, k->ctr);
		break;
	case 0x60: /* write CTR */
	case 0xd1: /* write output port */
	case 0xd2: /* write keyboard output buffer */
	case 0xd3: /* write AUX output buffer */
	case 0xd4: /* write to AUX device */
		k->pending_cmd = cmd;
		break;
	case 0xa7:
		k->ctr |= CTR_AUX_DISABLE;
		break;
	case 0xa8:
		k->ctr &= (uint8_t)~CTR_AUX_DISABLE;
		break;
	case 0xa9: /* AUX interface test: no AUX port (clock line stuck low) */
		push(k, 0x01);
		break;
	case 0xaa: /* controller self-test */
		push(k, 0x55);
		break;
	case 0xab: /* keyboard interface test */
		push(k, 0x00);
		break;
	case 0xad:
		k->ctr |= CTR_KBD_DISABLE;
		break;
	case 0xae:
		k->ctr &= (uint8_t)~CTR_KBD_DISABLE;
		break;
	default:
		/* 0xF0-0xFF pulse output lines; bit 0 clear pulses CPU reset. */
		if (cmd >= 0xf0 && !(cmd & 1) && k->reset)
			k->reset(k->reset_opaque);
		break;
	}
}

static void data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;
	k->pending_cmd = 0;
	switch (cmd) {
	case 0x60:
		k->ctr = v;
		break;
	case 0xd1:
		if (!(v & 1) && k->reset)
			k->reset(k->reset_opaque);
		break;
	case 0xd2:
		push(k, v);
		break;
	case 0xd3:
	case 0xd4: /* no AUX device: swallowed */
		break;
	default:
		keyboard_write(k, v);
		break;
	}
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->last_was_cmd = false;
		data_write(k, data[0]);
	} else {
		memset(data, 0, len);
		if (k->q_len) {
			data[0] = k->queue[k->q_head];
			k->q_head = (k->q_head + 1) % I8042_QUEUE;
			k->q_len--;
			/* A real controller holds one byte: the next one arrives as a
			 * new edge on IRQ 1, and Linux's handler reads one byte per
			 * interrupt. Pulse the (edge-triggered) line for each byte. */
			if (k->q_len && k->irq_level) {
				irq_line_set(&k->irq, 0);
				irq_line_set(&k->irq, 1);
			}
		}
	}
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->last_was_cmd = true;
		command(k, data[0]);
	} else {
		memset(data, 0, len);
		data[0] = (uint8_t)(STS_UNLOCKED | (k->q_len ? STS_OBF : 0) | (k->ctr & CTR_SYS ? STS_SYS : 0) |
				    (k->last_was_cmd ? STS_CMD : 0));
	}
	update_irq(k);
	pthread_mutex_unlock(&k->lock);
}
