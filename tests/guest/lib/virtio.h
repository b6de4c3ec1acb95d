/*
 * virtio.h — a minimal virtio 1.x driver over PCI (modern interface only) with
 * split virtqueues, for test guests that exercise a monitor's virtio devices.
 *
 * Follows virtio 1.2: section 3.1 (device initialization), 4.1 (virtio over
 * PCI: vendor 0x1af4, device ID 0x1040 + virtio ID, or a transitional
 * 0x1000-0x103f with the modern capabilities; common, notify, ISR and device
 * configuration structures) and 2.7 (split virtqueues).
 *
 * Deliberately small: no interrupts (MSI-X vectors are set to NO_VECTOR and
 * the driver polls the used ring, with avail.flags NO_INTERRUPT), no event
 * index, no packed rings, one request in flight per queue. Descriptors are
 * handed out round-robin from the table so that chains start at varying
 * indices and wrap around its end. The rings are public so a test can write
 * malformed chains itself.
 *
 * The monitor's side is under test: a missing capability, a capability
 * outside its BAR, a device refusing FEATURES_OK or a reset that never
 * completes is reported as "mote-test: FAIL virtio ...".
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdint.h>

#include "pci.h"

#define VIRTIO_PCI_VENDOR	0x1af4
#define VIRTIO_PCI_MODERN_BASE	0x1040
#define VIRTIO_ID_NET		1
#define VIRTIO_ID_BLK		2
#define VIRTIO_ID_RNG		4
#define VIRTIO_ID_VSOCK		19

/* device_status bits (section 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE	1
#define VIRTIO_STATUS_DRIVER		2
#define VIRTIO_STATUS_DRIVER_OK		4
#define VIRTIO_STATUS_FEATURES_OK	8
#define VIRTIO_STATUS_NEEDS_RESET	64
#define VIRTIO_STATUS_FAILED		128

/* Device-independent feature bits (section 6). */
#define VIRTIO_F_INDIRECT_DESC	28
#define VIRTIO_F_EVENT_IDX	29
#define VIRTIO_F_VERSION_1	32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED	34
#define VIRTIO_BIT(b)		(1ULL << (b))

#define VIRTQ_DESC_F_NEXT	1
#define VIRTQ_DESC_F_WRITE	2
#define VIRTQ_DESC_F_INDIRECT	4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTIO_MSI_NO_VECTOR	0xffff

#define VIRTQ_MAX_SIZE		256	/* largest queue this driver sets up */
#define VIRTIO_MAX_QUEUES	3	/* per device */
#define VIRTIO_MAX_DEVICES	4	/* that virtio_probe() will take */

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];	/* size entries, then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[];	/* size entries, then avail_event */
};

struct virtio_dev;

struct virtq {
	struct virtio_dev *dev;
	uint16_t index;			/* queue number */
	uint16_t size;			/* entries, a power of two */
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	uint64_t notify_addr;
	uint16_t avail_idx;		/* the next avail.idx the driver publishes */
	uint16_t used_seen;		/* used entries consumed so far */
	uint16_t next_desc;		/* where the next chain starts */
	struct virtq_desc *indirect;	/* VIRTQ_MAX_SIZE entries for virtq_transfer */
};

struct virtio_dev {
	struct pci_dev pci;
	uint16_t virtio_id;
	uint64_t common;		/* common configuration structure */
	uint64_t isr;
	uint64_t device_cfg;		/* 0 when the device has none */
	uint32_t device_cfg_len;
	uint64_t notify_base;
	uint32_t notify_len;
	uint32_t notify_mult;		/* notify_off_multiplier */
	int has_msix;
	uint64_t offered;		/* device features, as last read */
	uint64_t features;		/* negotiated */
	unsigned nqueues;
	struct virtq vq[VIRTIO_MAX_QUEUES];
	uint8_t *ring_mem[VIRTIO_MAX_QUEUES];
};

/* One buffer of a chain: guest-physical (== virtual) address and length. */
struct virtio_buf {
	uint64_t addr;
	uint32_t len;
	int write;			/* 1: device-writable */
};

/*
 * Finds the virtio PCI functions of type virtio_id on bus 0 (see the top of
 * this file for which IDs count) and fills devs[0..max) in bus order:
 * capabilities parsed, BARs enabled, nothing written to the device itself.
 * Returns how many were found (at most max).
 */
unsigned virtio_probe(uint16_t virtio_id, struct virtio_dev *devs, unsigned max);

/* Writes 0 to device_status and waits (bounded) for it to read back 0. */
void virtio_reset(struct virtio_dev *d);

/*
 * Resets the device and initializes it (section 3.1.1): ACKNOWLEDGE, DRIVER,
 * features = offered & want (VERSION_1 is required and always wanted),
 * FEATURES_OK checked, nqueues queues of min(device maximum, qsize) entries
 * (rounded down to a power of two, qsize <= VIRTQ_MAX_SIZE) with zeroed
 * rings, then DRIVER_OK. Returns the negotiated features.
 */
uint64_t virtio_init(struct virtio_dev *d, uint64_t want, unsigned nqueues,
		     uint16_t qsize);

/* virtio_init in two steps: everything up to enabling the queues, then
 * DRIVER_OK (checked: no NEEDS_RESET or FAILED, DRIVER_OK reads back). */
uint64_t virtio_init_begin(struct virtio_dev *d, uint64_t want, unsigned nqueues,
			   uint16_t qsize);
void virtio_driver_ok(struct virtio_dev *d);

/* Reads device_status (to see DEVICE_NEEDS_RESET, for instance). */
uint8_t virtio_status(const struct virtio_dev *d);

/* Reads the ISR status byte (which clears it). */
uint8_t virtio_isr(const struct virtio_dev *d);

/*
 * Device-specific configuration, read at its natural width; a 64-bit field is
 * read as two 32-bit halves. virtio_cfg_begin/end bracket a consistent read:
 * loop while virtio_cfg_end() returns non-zero (config_generation changed).
 * Reads beyond the device configuration structure are a test failure.
 */
uint8_t virtio_cfg8(const struct virtio_dev *d, uint32_t off);
uint16_t virtio_cfg16(const struct virtio_dev *d, uint32_t off);
uint32_t virtio_cfg32(const struct virtio_dev *d, uint32_t off);
uint64_t virtio_cfg64(const struct virtio_dev *d, uint32_t off);
uint8_t virtio_cfg_begin(const struct virtio_dev *d);
int virtio_cfg_end(const struct virtio_dev *d, uint8_t generation);

/*
 * Writes bufs[0..n) as one chain of fresh descriptors and publishes it
 * (avail ring, then avail.idx) without notifying. Callers put device-readable
 * buffers first. Returns the head index. n <= q->size.
 */
uint16_t virtq_submit(struct virtq *q, const struct virtio_buf *bufs, unsigned n);

/*
 * Like virtq_submit, but the chain is written into table (16-byte aligned,
 * room for n descriptors) and published through one INDIRECT descriptor.
 */
uint16_t virtq_submit_indirect(struct virtq *q, struct virtq_desc *table,
			       const struct virtio_buf *bufs, unsigned n);

/* The next descriptor index virtq_submit would use, and claims count of them. */
uint16_t virtq_claim(struct virtq *q, unsigned count);

/* Puts head in the avail ring and advances avail.idx by one (after a barrier). */
void virtq_publish(struct virtq *q, uint16_t head);

/* Notifies the device that queue q has new buffers. */
void virtq_notify(struct virtq *q);

/*
 * A guest-physical address range [a, a + len) that holds neither memory nor
 * a device: the end of the highest RAM range when nothing lies right after
 * it, else a gigabyte past everything the memmap lists (and past 4 GiB). For
 * chains that must point outside RAM. With straddle set, the range starts
 * len / 2 bytes before the end of RAM instead, or 0 is returned when the end
 * of RAM is not followed by a hole.
 */
uint64_t virtio_outside_ram(uint64_t len, int straddle);

#define VIRTQ_DONE		0	/* a used element was taken */
#define VIRTQ_TIMEOUT		(-1)	/* nothing within the time given */
#define VIRTQ_NEEDS_RESET	(-2)	/* device_status has DEVICE_NEEDS_RESET */

/*
 * Waits up to timeout_us for used.idx to advance, checking device_status now
 * and then. On VIRTQ_DONE, *elem holds the used element (id checked to be
 * below the queue size, else a test failure) and it is consumed.
 */
int virtq_wait(struct virtq *q, uint64_t timeout_us, struct virtq_used_elem *elem);

/*
 * Submit, notify and wait for the chain with the normal timeout; anything but
 * completion of that very chain is a test failure (what names the request).
 * Returns the used length.
 */
uint32_t virtq_transfer(struct virtq *q, const struct virtio_buf *bufs,
			unsigned n, int indirect, const char *what);

#endif
