/* The host side of a virtio-net device: a tap interface (backend/tap.c) or
 * user-mode networking through libslirp (backend/slirp.c), behind one small
 * interface the device (virtio/net.c) drives from the event loop.
 *
 * Frames cross it whole. A back end with vnet_hdr set (tap) takes and gives
 * each frame prefixed by the 12-byte virtio_net_hdr_v1, so checksum and
 * segmentation offloads pass straight through; one without it (slirp) sees
 * bare Ethernet frames, and the device offers no offloads over it.
 *
 * Receiving is pull-based: the device calls recv() until -EAGAIN. While it
 * has called rx_watch(true), the back end calls rx_ready() (event loop, no
 * device lock held) when frames may be waiting; with rx_watch(false) it
 * never does, so a guest with no receive buffers costs no wake-ups. */
#ifndef MOTE_BACKEND_NET_H
#define MOTE_BACKEND_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"
#include "util/evloop.h"

#define NET_HDR_LEN 12                  /* virtio_net_hdr_v1 (virtio 1.2 §5.1.6) */
#define NET_MAX_FRAME (65536 + 14)      /* 64 KiB of payload and an Ethernet header */

/* TUNSETOFFLOAD bits, mirrored so devices need no <linux/if_tun.h>. */
#define NET_OFFLOAD_CSUM 0x01
#define NET_OFFLOAD_TSO4 0x02
#define NET_OFFLOAD_TSO6 0x04

struct net_backend;

struct net_backend_ops {
	/* Sends one frame (with its header first when vnet_hdr). 0, or -errno:
	 * -EAGAIN when the host has no room (the frame is dropped, never
	 * waited for), -EIO when the back end is gone. */
	int (*send)(struct net_backend *nb, const struct iovec *iov, int iovcnt);
	/* Receives one frame into buf (header first when vnet_hdr): its length,
	 * -EAGAIN when none is waiting, other -errno when the back end failed
	 * for good. A frame longer than len is cut to len. */
	ssize_t (*recv)(struct net_backend *nb, void *buf, size_t len);
	/* Asks for (or stops) rx_ready() calls. */
	void (*rx_watch)(struct net_backend *nb, bool on);
	/* Receive offloads the driver accepted (NET_OFFLOAD_*); vnet_hdr only. */
	int (*set_offload)(struct net_backend *nb, unsigned offloads);
	/* Live migration: false stops receiving from the host side and lets
	 * another process that opened the same tap receive instead; true
	 * receives again. Repeating a state is a no-op. NULL: cannot be handed
	 * over. 0 or -errno. */
	int (*set_active)(struct net_backend *nb, bool active);
	void (*destroy)(struct net_backend *nb);
};

struct net_backend {
	const struct net_backend_ops *ops;
	bool vnet_hdr;
	/* Set by the device before any rx_watch(true). */
	void (*rx_ready)(void *opaque);
	void *opaque;
};

/* Opens the tap named in net (creating it when it does not exist and mote
 * may), non-blocking, with a vnet header, as a queue of a multiqueue tap
 * where the kernel has them (so a live migration's destination can attach
 * to the same tap while the source still holds it). Unless share is set (a
 * migration's destination), a tap another process has a queue of is
 * refused (-EBUSY), as a single-queue tap would be. 0 or -errno after one
 * log line. */
int net_tap_open(const struct vm_net *net, struct evloop *loop, bool share,
		 struct net_backend **out);
/* User-mode networking (QEMU's 10.0.2.0/24) with net's host forwards.
 * 0 or -errno after one log line. */
int net_slirp_open(const struct vm_net *net, struct evloop *loop, struct net_backend **out);

#endif
