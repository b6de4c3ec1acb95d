/* libFuzzer harness for src/virtio/virtqueue.c: the input is a guest-memory
 * image (up to 64 KiB) behind a 16-byte header of queue parameters; the
 * harness sets a queue up over it and drives it like a device would, checking
 * what vq_pop() promises about every chain it returns. Guest RAM is three
 * separate arrays (ASan puts redzones between them), one at the very top of
 * the 64-bit address space so that gpa + len wraps are reachable.
 *
 * Header (little-endian):
 *   0     log2 of the queue size (mod 11: 1..1024)
 *   1     bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bit 2 vq_set_notify() between
 *         pops, bit 3 start both indexes at bytes 8..9, bit 4 ring offsets
 *         used as given (otherwise aligned down)
 *   2..7  descriptor table, avail ring, used ring: guest addresses 0..0xffff
 *   8..9  starting last_avail / used_idx (bit 3)
 *   10..13 offsets for vq_read / vq_write
 *   14..15 bytes claimed written per chain
 * Image: RAM at [0, 0xe000), [0x10000, 0x12000), [2^64 - 0x1000, 2^64). */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "virtio/virtqueue.h"

#define HDR	  16
#define RAM0_SIZE 0xe000u
#define RAM1_GPA  0x10000u
#define RAM1_SIZE 0x2000u
#define RAM2_GPA  (UINT64_MAX - 0xfffu)
#define RAM2_SIZE 0x1000u

static uint8_t ram0[RAM0_SIZE] __attribute__((aligned(4096)));
static uint8_t ram1[RAM1_SIZE] __attribute__((aligned(4096)));
static uint8_t ram2[RAM2_SIZE] __attribute__((aligned(4096)));
static uint8_t scratch[4096];
static struct vq_chain chain;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load_image(const uint8_t *img, size_t len)
{
	uint8_t *const parts[] = {ram0, ram1, ram2};
	const size_t sizes[] = {RAM0_SIZE, RAM1_SIZE, RAM2_SIZE};
	for (unsigned i = 0; i < 3; i++) {
		size_t n = MIN(len, sizes[i]);
		memcpy(parts[i], img, n);
		memset(parts[i] + n, 0, sizes[i] - n);
		img += n;
		len -= n;
	}
}

/* What vq_pop() promises about a chain it returned. */
static void check_chain(const struct guest_mem *mem, const struct virtq *vq)
{
	uint64_t rd = 0, wr = 0;
	unsigned n = chain.nr_read + chain.nr_write;

	if (chain.head >= vq->size || n > vq->size)
		abort();
	for (unsigned i = 0; i < n; i++) {
		const struct vq_buf *b = &chain.buf[i];
		if (b->len == 0 || !guest_mem_ptr(mem, b->gpa, b->len))
			abort();
		*(i < chain.nr_read ? &rd : &wr) += b->len;
	}
	if (rd != chain.read_len || wr != chain.write_len || rd + wr > UINT32_MAX)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	load_image(data + HDR, size - HDR);

	const struct guest_region regions[] = {
		{.gpa = 0, .size = RAM0_SIZE, .hva = ram0},
		{.gpa = RAM1_GPA, .size = RAM1_SIZE, .hva = ram1},
		{.gpa = RAM2_GPA, .size = RAM2_SIZE, .hva = ram2},
	};
	struct guest_mem mem;
	if (guest_mem_init_static(&mem, regions, 3))
		abort();

	uint16_t qsize = (uint16_t)(1u << (data[0] % 11));
	uint8_t flags = data[1];
	uint64_t desc = get_le16(data + 2), avail = get_le16(data + 4), used = get_le16(data + 6);
	if (!(flags & 16)) {
		desc &= ~15ull;
		avail &= ~1ull;
		used &= ~3ull;
	}
	struct virtq vq;
	if (vq_init(&vq, &mem, qsize, desc, avail, used, flags & 1, flags & 2)) {
		/* a refused queue is inert */
		if (vq.size || vq_pop(&vq, &chain) != 0 || vq_should_notify(&vq))
			abort();
		vq_push(&vq, 0, 0);
		vq_set_notify(&vq, true);
		return 0;
	}
	if (flags & 8) {
		vq.last_avail = vq.used_idx = get_le16(data + 8);
		vq.signalled_used = vq.used_idx;
	}
	uint16_t roff = get_le16(data + 10), woff = get_le16(data + 12);
	uint32_t written = get_le16(data + 14);

	/* At most size chains can be pending, but pushes may rewrite the
	 * avail ring when the rings overlap: bound the loop. */
	for (unsigned iter = 0; iter < 2u * qsize + 8; iter++) {
		int r = vq_pop(&vq, &chain);
		if (r < 0) {
			if (r != -EBADMSG || !vq.broken || vq.errors != 1 ||
			    vq_pop(&vq, &chain) != -EBADMSG || vq.errors != 1)
				abort();
			break;
		}
		if (r == 0) {
			if (!(flags & 4))
				break;
			vq_set_notify(&vq, true);
			if (vq_pop(&vq, &chain) != 1)
				break;
		}
		check_chain(&mem, &vq);
		if (vq_read(&vq, &chain, roff, scratch, sizeof(scratch)) > sizeof(scratch) ||
		    vq_write(&vq, &chain, woff, scratch, sizeof(scratch)) > sizeof(scratch))
			abort();
		if (vq_read(&vq, &chain, 0, scratch, sizeof(scratch)) !=
		    MIN(chain.read_len, sizeof(scratch)))
			abort();
		vq_push(&vq, chain.head, (uint32_t)MIN(written, chain.write_len));
		vq_should_notify(&vq);
		if (flags & 4)
			vq_set_notify(&vq, iter & 1);
	}
	vq_reset(&vq);
	if (vq_pop(&vq, &chain) != 0)
		abort();
	return 0;
}
