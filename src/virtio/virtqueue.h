/* One split-virtqueue implementation for every device (virtio 1.2 §2.7).
 *
 * The guest owns the rings, so everything read from them is hostile: each
 * descriptor is copied into a local once and validated before use — index
 * below the queue size, no loops, chains no longer than the queue, at most one
 * level of indirection (and only when VIRTIO_F_INDIRECT_DESC was negotiated),
 * indirect tables a whole number of descriptors and inside guest memory,
 * every buffer inside guest memory (overflow-safe, through guest_mem_ptr),
 * device-writable buffers only after device-readable ones, and avail.idx never
 * more than the queue size ahead of what the device consumed.
 *
 * A violation makes vq_pop() return -EBADMSG: the ring is broken, the caller
 * marks the device DEVICE_NEEDS_RESET (rule 2 of DESIGN.md) and stops using
 * the queue until the driver resets it. Nothing here logs per request; the
 * caller logs rate-limited and counts (vq->errors).
 *
 * Threading: a queue is used by one thread at a time (the event loop); the
 * transport configures it (vq_init/vq_reset) with the device lock held. */
#ifndef MOTE_VIRTQUEUE_H
#define MOTE_VIRTQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "mem/guest_mem.h"

#define VQ_MAX_SIZE 1024 /* largest queue any mote device offers */

/* Descriptor flags (§2.7.5). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
/* avail.flags / used.flags (§2.7.6, §2.7.8) */
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY 1

struct virtq {
	/* Set by the transport from the driver's configuration. */
	uint16_t size;               /* power of two, 1..VQ_MAX_SIZE */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx;              /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;               /* VIRTIO_F_INDIRECT_DESC negotiated */
	const struct guest_mem *mem;

	/* Device-side state. */
	uint16_t last_avail;         /* next avail ring entry to consume */
	uint16_t used_idx;           /* our copy of used.idx */
	uint16_t popped;             /* pops minus unpops since set-up (saturating) */
	uint16_t signalled_used;     /* used_idx when the driver was last notified */
	bool signalled_valid;        /* false: notify at the next vq_should_notify() */
	bool notify_off;             /* vq_set_notify(false) in effect */
	bool broken;                 /* a violation was seen; vq_pop fails until vq_reset */
	uint64_t errors;             /* violations seen (for metrics) */
};

/* One buffer of a chain: guest-physical, already checked to lie in RAM. */
struct vq_buf {
	uint64_t gpa;
	uint32_t len;
};

/* A popped request: readable buffers first, then writable ones. */
struct vq_chain {
	uint16_t head;               /* for vq_push */
	uint16_t nr_read, nr_write;
	uint64_t read_len, write_len; /* totals, bytes */
	struct vq_buf buf[VQ_MAX_SIZE]; /* [0, nr_read) readable, then nr_write writable */
};

/* Checks the driver's ring addresses and size (alignment per §2.7, whole
 * rings inside guest memory, used_event/avail_event included) and resets
 * device-side state, errors included. 0 or -EINVAL; on -EINVAL the queue is
 * left reset (vq_pop finds nothing, vq_push does nothing). */
int vq_init(struct virtq *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	    uint64_t avail, uint64_t used, bool event_idx, bool indirect);
/* Forgets the queue (device reset). Until the next vq_init(), a vq_push() or
 * vq_read/vq_write() for a chain popped before the reset is a harmless no-op;
 * after it, such a completion would land in the new ring, so the transport
 * drops in-flight requests across a reset. */
void vq_reset(struct virtq *vq);

/* Takes the next available chain into *chain. 1: a chain; 0: none pending;
 * -EBADMSG: the ring is broken (vq->broken set, vq->errors counted once; every
 * later call fails too, until vq_reset/vq_init). Zero-length descriptors are
 * checked like the others but give no vq_buf.
 *
 * With EVENT_IDX, finding the ring empty re-arms the driver's notifications
 * (avail_event = last_avail, unless vq_set_notify(false) is in effect) and
 * looks once more: so a device that pops until 0 after each kick never misses
 * one, and while it is still popping the driver does not kick again. */
int vq_pop(struct virtq *vq, struct vq_chain *chain);

/* Gives back the last `n` chains vq_pop() returned, which the device has not
 * pushed (it could not finish them: no room, a rate limit): the next vq_pop()
 * returns them again, in order. n is at most what was popped since the last
 * vq_init/vq_reset and not yet unpopped; returns -EINVAL (and does nothing)
 * otherwise. */
int vq_unpop(struct virtq *vq, uint16_t n);

/* Returns a chain to the driver with `written` bytes written into its
 * writable buffers (the caller never claims more than chain->write_len). */
void vq_push(struct virtq *vq, uint16_t head, uint32_t written);
/* vq_push without publishing used.idx: the element is written, but the
 * driver sees it only at the next vq_publish() (or vq_push()). For chains
 * that belong together (a frame spread over mergeable rx buffers), so the
 * driver never sees part of them. */
void vq_push_defer(struct virtq *vq, uint16_t head, uint32_t written);
void vq_publish(struct virtq *vq);

/* After one or more vq_push(): whether the driver wants an interrupt now
 * (avail.flags NO_INTERRUPT, or used_event with EVENT_IDX, §2.7.7.2).
 * Includes the memory barrier between publishing used.idx and reading the
 * driver's suppression fields. False when nothing was pushed since the last
 * call. With EVENT_IDX, true at the first call after vq_init or whenever
 * signalled_valid is false (e.g. after a restore sets used_idx): what the
 * driver last saw is unknown, and a spurious interrupt is harmless. */
bool vq_should_notify(struct virtq *vq);

/* Suppresses (false) or re-enables (true) the driver's notifications while
 * the device is already processing the queue (used.flags NO_NOTIFY, or
 * avail_event with EVENT_IDX, §2.7.10). After re-enabling, callers must pop
 * again: a chain that arrived in between would otherwise be missed (the
 * barrier that makes this safe is included). */
void vq_set_notify(struct virtq *vq, bool enable);

/* Copies between a chain's buffers and host memory, starting `off` bytes
 * into the readable (vq_read) or writable (vq_write) part. Return the number
 * of bytes copied (short when the chain is shorter). */
uint64_t vq_read(const struct virtq *vq, const struct vq_chain *c, uint64_t off, void *dst,
		 uint64_t len);
uint64_t vq_write(const struct virtq *vq, const struct vq_chain *c, uint64_t off,
		  const void *src, uint64_t len);

#endif
