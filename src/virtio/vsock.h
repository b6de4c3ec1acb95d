/* virtio-vsock with Firecracker's Unix-socket host side; see vsock.c. */
#ifndef MOTE_VIRTIO_VSOCK_H
#define MOTE_VIRTIO_VSOCK_H

#include <stdint.h>

#include "config.h"
#include "util/evloop.h"
#include "virtio/virtio.h"

#define VIRTIO_ID_VSOCK	  19
#define VSOCK_HOST_CID	  2
#define VSOCK_HDR_LEN	  44	/* struct virtio_vsock_hdr, packed */
#define VSOCK_MAX_PAYLOAD 65536 /* the most one packet may carry (as Firecracker) */

#define VSOCK_TYPE_STREAM 1
enum vsock_op {
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};
#define VSOCK_SHUTDOWN_RCV  1
#define VSOCK_SHUTDOWN_SEND 2

/* virtio 1.2 §5.10.6, decoded from little-endian. */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t raw[VSOCK_HDR_LEN]);
void vsock_hdr_encode(uint8_t raw[VSOCK_HDR_LEN], const struct vsock_hdr *h);

/* What to do with a packet the guest sent (tx queue). */
enum vsock_verdict {
	VSOCK_PKT_OK,
	VSOCK_PKT_DROP, /* not addressed from this guest to the host: no reply */
	VSOCK_PKT_RST,	/* malformed but addressable: answer RST (never to an RST) */
};

/* Checks a guest packet's header against the device: readable is how many
 * bytes the chain holds (header included). Short chains and wrong cids are
 * dropped (a reply could not be addressed, or would answer a spoofed
 * source); an unknown type or op, or a len beyond the chain or above
 * VSOCK_MAX_PAYLOAD, is answered with RST. *why names the problem. */
enum vsock_verdict vsock_hdr_check(const struct vsock_hdr *h, uint64_t readable, uint32_t guest_cid,
				   const char **why);

/* Creates the device and its listening socket at vs->uds (logging one line
 * naming the path on failure). NULL with *err set on failure. */
struct virtio_dev *virtio_vsock_create(const struct guest_mem *mem, struct evloop *loop,
				       const struct vm_vsock *vs, int *err);
void virtio_vsock_destroy(struct virtio_dev *dev);

#endif
