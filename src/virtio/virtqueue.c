/* Split virtqueues, device side (virtio 1.2 §2.7): ring set-up checks, chain
 * walking with validation, the used ring, and both directions of
 * notification suppression (§2.7.7, §2.7.10, EVENT_IDX included).
 *
 * Left out: packed virtqueues, VIRTIO_F_IN_ORDER, legacy (guest-endian)
 * rings, and queues larger than VQ_MAX_SIZE.
 *
 * Every guest access goes through guest_mem_ptr() with its exact length;
 * the rings are checked once in vq_init() but looked up again on each access
 * anyway, so no host pointer into guest RAM outlives one function call. */
#include "virtio/virtqueue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "util/util.h"

#define DESC_SIZE 16u
/* Offsets inside the rings (§2.7.6, §2.7.8). */
#define AVAIL_FLAGS    0
#define AVAIL_IDX      2
#define AVAIL_RING     4
#define USED_FLAGS     0
#define USED_IDX       2
#define USED_RING      4
#define USED_ELEM_SIZE 8u

/* A descriptor as copied out of guest memory, host-endian. */
struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Keeps the compiler from re-reading guest memory for a value it already
 * copied: after this, guest RAM may have changed under it, so it must use
 * the copy (the double-fetch a hostile guest would race against). */
#define guest_barrier() __asm__ __volatile__("" ::: "memory")

static uint16_t *ring_u16(const struct virtq *vq, uint64_t gpa)
{
	return guest_mem_ptr(vq->mem, gpa, sizeof(uint16_t));
}

static uint64_t avail_event_gpa(const struct virtq *vq)
{
	return vq->used_gpa + USED_RING + (uint64_t)USED_ELEM_SIZE * vq->size;
}

static uint64_t used_event_gpa(const struct virtq *vq)
{
	return vq->avail_gpa + AVAIL_RING + 2ull * vq->size;
}

/* A 16-bit driver-written field, read once. `order` is __ATOMIC_ACQUIRE for
 * avail.idx (the ring entries behind it must be read after it). Returns
 * false if the field is not in RAM, which vq_init() has ruled out. */
static bool load_u16(const struct virtq *vq, uint64_t gpa, int order, uint16_t *v)
{
	uint16_t *p = ring_u16(vq, gpa);
	if (!p)
		return false;
	*v = le16toh(__atomic_load_n(p, order));
	return true;
}

static void store_u16(const struct virtq *vq, uint64_t gpa, uint16_t v, int order)
{
	uint16_t *p = ring_u16(vq, gpa);
	if (p) {
		__atomic_store_n(p, htole16(v), order);
		guest_mem_dirty(vq->mem, gpa, sizeof(uint16_t));
	}
}

/* Copies descriptor `idx` of the table at `table` into *d, once. */
static int desc_load(const struct guest_mem *mem, uint64_t table, uint32_t idx, struct vq_desc *d)
{
	const uint8_t *p = guest_mem_ptr(mem, table + (uint64_t)idx * DESC_SIZE, DESC_SIZE);
	uint8_t raw[DESC_SIZE];

	if (!p)
		return -EBADMSG;
	memcpy(raw, p, sizeof(raw));
	guest_barrier();
	d->addr = get_le64(raw);
	d->len = get_le32(raw + 8);
	d->flags = get_le16(raw + 12);
	d->next = get_le16(raw + 14);
	return 0;
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* The ring at gpa (len bytes) lies in RAM and is aligned both as a guest
 * address and as a host pointer (the atomics below need the latter). */
static bool ring_ok(const struct guest_mem *mem, uint64_t gpa, uint64_t len, uint64_t align)
{
	void *p = guest_mem_ptr(mem, gpa, len);
	return p && !(gpa & (align - 1)) && !((uintptr_t)p & (align - 1));
}

int vq_init(struct virtq *vq, const struct guest_mem *mem, uint16_t size, uint64_t desc,
	    uint64_t avail, uint64_t used, bool event_idx, bool indirect)
{
	vq_reset(vq);
	if (!mem || !is_pow2(size) || size > VQ_MAX_SIZE)
		return -EINVAL;
	/* §2.7: alignment 16/2/4; sizes 16*n, 6+2*n, 6+8*n. The sizes include
	 * used_event/avail_event whether or not EVENT_IDX is negotiated. */
	if (!ring_ok(mem, desc, (uint64_t)DESC_SIZE * size, 16) ||
	    !ring_ok(mem, avail, 6 + 2ull * size, 2) ||
	    !ring_ok(mem, used, 6 + (uint64_t)USED_ELEM_SIZE * size, 4))
		return -EINVAL;
	vq->mem = mem;
	vq->size = size;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	return 0;
}

void vq_reset(struct virtq *vq)
{
	memset(vq, 0, sizeof(*vq));
}

static int vq_fail(struct virtq *vq)
{
	vq->broken = true;
	vq->errors++;
	return -EBADMSG;
}

/* Walks the chain starting at `head` into *c. Every descriptor read is
 * counted (zero-length ones too) and a chain may hold at most vq->size of
 * them, direct and indirect together, not counting the descriptor that
 * points to an indirect table: this bounds loops, keeps c->buf in range and
 * follows "a driver MUST NOT create a descriptor chain longer than the
 * Queue Size" (§2.7.5.3.1). */
static int chain_walk(struct virtq *vq, uint16_t head, struct vq_chain *c)
{
	uint64_t table = vq->desc_gpa;
	uint32_t entries = vq->size; /* of the table being walked */
	uint32_t idx = head, nr = 0;
	uint64_t total = 0;
	bool in_indirect = false, writable = false;
	struct vq_desc d;

	/* head >= vq->size fails the first idx check below. */
	c->head = head;
	c->nr_read = c->nr_write = 0;
	c->read_len = c->write_len = 0;
	for (;;) {
		if (idx >= entries || desc_load(vq->mem, table, idx, &d))
			return -EBADMSG;
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			/* §2.7.5.3.1: only when negotiated, never with NEXT,
			 * never inside a table. Its WRITE flag is ignored
			 * (§2.7.5.3.2). */
			if (!vq->indirect || in_indirect || (d.flags & VIRTQ_DESC_F_NEXT))
				return -EBADMSG;
			if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > vq->size ||
			    !guest_mem_ptr(vq->mem, d.addr, d.len))
				return -EBADMSG;
			table = d.addr;
			entries = d.len / DESC_SIZE;
			idx = 0;
			in_indirect = true;
			continue;
		}
		if (++nr > vq->size)
			return -EBADMSG;
		/* §2.7.4.2: device-writable elements after device-readable ones. */
		if (d.flags & VIRTQ_DESC_F_WRITE)
			writable = true;
		else if (writable)
			return -EBADMSG;
		/* §2.7.5.2: no chain longer than 2^32 bytes; used.len is 32 bits. */
		total += d.len;
		if (total > UINT32_MAX)
			return -EBADMSG;
		if (d.len) {
			if (!guest_mem_ptr(vq->mem, d.addr, d.len))
				return -EBADMSG;
			c->buf[c->nr_read + c->nr_write] =
				(struct vq_buf){.gpa = d.addr, .len = d.len};
			if (writable) {
				c->nr_write++;
				c->write_len += d.len;
			} else {
				c->nr_read++;
				c->read_len += d.len;
			}
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

/* How many chains the driver has made available, or -EBADMSG when avail.idx
 * is further ahead than a ring of vq->size entries allows. */
static int avail_pending(struct virtq *vq)
{
	uint16_t idx;

	if (!load_u16(vq, vq->avail_gpa + AVAIL_IDX, __ATOMIC_ACQUIRE, &idx))
		return -EBADMSG;
	uint16_t n = (uint16_t)(idx - vq->last_avail);
	return n > vq->size ? -EBADMSG : n;
}

int vq_pop(struct virtq *vq, struct vq_chain *chain)
{
	if (vq->broken)
		return -EBADMSG;
	if (!vq->size)
		return 0;
	int n = avail_pending(vq);
	if (n == 0 && vq->event_idx && !vq->notify_off) {
		/* Re-arm the driver's kick (§2.7.10), then look again: a chain
		 * made available before the driver saw avail_event gets no
		 * kick. The fence orders our store before our load. */
		store_u16(vq, avail_event_gpa(vq), vq->last_avail, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		n = avail_pending(vq);
	}
	if (n <= 0)
		return n < 0 ? vq_fail(vq) : 0;

	uint16_t head;
	uint64_t slot = vq->avail_gpa + AVAIL_RING + 2ull * (vq->last_avail & (vq->size - 1));
	if (!load_u16(vq, slot, __ATOMIC_RELAXED, &head) || chain_walk(vq, head, chain))
		return vq_fail(vq);
	vq->last_avail++;
	if (vq->popped < UINT16_MAX)
		vq->popped++;
	return 1;
}

int vq_unpop(struct virtq *vq, uint16_t n)
{
	/* A caller bug, not a guest's: still never rewind past what was
	 * popped since set-up, nor by more than a ring. */
	if (n > vq->popped || n > vq->size)
		return -EINVAL;
	vq->last_avail = (uint16_t)(vq->last_avail - n);
	vq->popped -= n;
	return 0;
}

void vq_push_defer(struct virtq *vq, uint16_t head, uint32_t written)
{
	/* size 0: the queue was reset while the request was in flight. */
	if (!vq->size || head >= vq->size)
		return;
	uint64_t slot = (uint64_t)(vq->used_idx & (vq->size - 1)) * USED_ELEM_SIZE;
	uint8_t *e = guest_mem_ptr(vq->mem, vq->used_gpa + USED_RING + slot, USED_ELEM_SIZE);
	if (!e)
		return;
	put_le32(e, head);
	put_le32(e + 4, written);
	guest_mem_dirty(vq->mem, vq->used_gpa + USED_RING + slot, USED_ELEM_SIZE);
	vq->used_idx++;
}

void vq_publish(struct virtq *vq)
{
	if (!vq->size)
		return;
	/* §2.7.8.2: the elements (and the data written before them) before
	 * used.idx. */
	store_u16(vq, vq->used_gpa + USED_IDX, vq->used_idx, __ATOMIC_RELEASE);
}

void vq_push(struct virtq *vq, uint16_t head, uint32_t written)
{
	vq_push_defer(vq, head, written);
	vq_publish(vq);
}

/* §2.7.7.2 with EVENT_IDX: notify when this batch wrote the used ring entry
 * numbered used_event, i.e. old_idx <= event < new_idx modulo 2^16 (the
 * virtq_need_event() rule of the spec's virtio_ring.h, §2.7.11). */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool vq_should_notify(struct virtq *vq)
{
	if (!vq->size)
		return false;
	/* used.idx is published; the driver's flags/used_event must be read
	 * after it, or the driver may go to sleep on an interrupt we skip. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t old_idx = vq->signalled_used, new_idx = vq->used_idx, v;
	bool valid = vq->signalled_valid;

	vq->signalled_used = new_idx;
	vq->signalled_valid = true;
	if (valid && old_idx == new_idx)
		return false;
	if (!vq->event_idx) {
		/* §2.7.7.2: flags 1 means "SHOULD NOT"; other bits ignored. */
		if (!load_u16(vq, vq->avail_gpa + AVAIL_FLAGS, __ATOMIC_RELAXED, &v))
			return true;
		return !(v & VIRTQ_AVAIL_F_NO_INTERRUPT);
	}
	if (!valid || !load_u16(vq, used_event_gpa(vq), __ATOMIC_RELAXED, &v))
		return true;
	return need_event(v, new_idx, old_idx);
}

void vq_set_notify(struct virtq *vq, bool enable)
{
	if (!vq->size)
		return;
	vq->notify_off = !enable;
	if (vq->event_idx) {
		/* §2.7.10: flags stay 0. Disabling just stops moving
		 * avail_event, which the driver's next index soon passes. */
		if (enable)
			store_u16(vq, avail_event_gpa(vq), vq->last_avail, __ATOMIC_RELAXED);
	} else {
		store_u16(vq, vq->used_gpa + USED_FLAGS, enable ? 0 : VIRTQ_USED_F_NO_NOTIFY,
			  __ATOMIC_RELAXED);
	}
	/* The caller pops again next: our store must be visible before it
	 * reads avail.idx. */
	if (enable)
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* Copies between the bufs [first, first + nr) of c and host memory,
 * starting `off` bytes in; `host` is only read when to_guest. */
static uint64_t chain_copy(const struct virtq *vq, const struct vq_chain *c, unsigned first,
			   unsigned nr, uint64_t off, uint8_t *host, uint64_t len, bool to_guest)
{
	uint64_t done = 0;

	if (!vq->mem)
		return 0;
	for (unsigned i = first; i < first + nr && done < len; i++) {
		const struct vq_buf *b = &c->buf[i];
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		uint64_t n = MIN(b->len - off, len - done);
		uint8_t *g = guest_mem_ptr(vq->mem, b->gpa + off, n);
		if (!g)
			break;
		if (to_guest) {
			memcpy(g, host + done, n);
			guest_mem_dirty(vq->mem, b->gpa + off, n);
		} else
			memcpy(host + done, g, n);
		done += n;
		off = 0;
	}
	return done;
}

uint64_t vq_read(const struct virtq *vq, const struct vq_chain *c, uint64_t off, void *dst,
		 uint64_t len)
{
	return chain_copy(vq, c, 0, c->nr_read, off, dst, len, false);
}

uint64_t vq_write(const struct virtq *vq, const struct vq_chain *c, uint64_t off, const void *src,
		  uint64_t len)
{
	return chain_copy(vq, c, c->nr_read, c->nr_write, off, (uint8_t *)(uintptr_t)src, len,
			  true);
}
