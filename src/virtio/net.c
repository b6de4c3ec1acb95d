/* virtio-net (virtio 1.2 §5.1): one receive and one transmit queue, the MAC
 * address and link status in configuration space, mergeable receive
 * buffers, and over a tap (a back end with a vnet header) checksum offload
 * both ways and TSO4/TSO6 both ways, passed through the header as they are.
 *
 * Everything runs on the event loop. Transmit is driven by kicks: each kick
 * pops every frame, validates its header and sends it with one writev.
 * Receive pulls from the back end only while the guest has posted buffers:
 * the back end is watched for readability only then, so an idle guest costs
 * no wake-ups. A frame is read into a host buffer first, so its length is
 * known before any guest buffer is taken and a frame that finds too few
 * buffers waits there (its chains go back to the ring) until the next kick.
 * Each direction does at most NET_BUDGET frames per event-loop turn and
 * continues on the next, so a flood never starves other devices.
 *
 * Rate limiters (util/ratelimit.h) sit in front of both directions: a
 * throttled transmit leaves the chain in the ring (vq_unpop) and a throttled
 * receive stops reading the back end; both resume on the limiter's timer.
 *
 * Bad input from the guest never stops the device: a transmit chain with a
 * header shorter than 12 bytes, a frame shorter than an Ethernet header or
 * longer than 64 KiB + header, writable buffers, or header fields the
 * negotiated features do not allow (unknown flags, checksum offsets past
 * the frame, GSO types not negotiated, ECN, zero gso_size) is dropped and
 * counted (tx_malformed_frames); a receive chain with readable buffers or
 * too small for the frame makes that frame dropped and the chains returned
 * empty (rx_fails). Only a broken ring (vq_pop's verdict) needs a reset.
 *
 * Deliberately absent: the control queue (rx mode, VLAN filters, MAC
 * tables: the guest sees every frame the back end delivers), multiqueue,
 * UFO (Linux no longer sends it and taps cannot promise it), ECN, guest
 * announce, MTU and speed/duplex fields. */
#include "virtio/net.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

#define NET_QUEUE_SIZE 256
#define NET_BUDGET 256 /* frames per direction per event-loop turn */
#define RXQ 0
#define TXQ 1
#define ETH_HLEN 14

/* Feature bits (§5.1.3). */
#define F_CSUM 0
#define F_GUEST_CSUM 1
#define F_MAC 5
#define F_GUEST_TSO4 7
#define F_GUEST_TSO6 8
#define F_HOST_TSO4 11
#define F_HOST_TSO6 12
#define F_MRG_RXBUF 15
#define F_STATUS 16

/* virtio_net_hdr_v1 (§5.1.6). */
#define HDR_F_NEEDS_CSUM 1
#define HDR_F_DATA_VALID 2
#define GSO_NONE 0
#define GSO_TCPV4 1
#define GSO_TCPV6 4
#define GSO_ECN 0x80

#define CONFIG_SIZE 10 /* mac, status, max_virtqueue_pairs */
#define LINK_UP 1

struct net_used {
	uint16_t head;
	uint32_t len;
};

struct net {
	struct virtio_dev dev;
	struct net_backend *be;
	struct evloop *loop;
	struct evloop_source wake;           /* eventfd: a budget ran out, go on */
	struct evloop_source rx_timer, tx_timer; /* the limiters' timerfds */
	struct ratelimit rx_rl, tx_rl;
	char id[CONFIG_NET_ID_LEN + 1];
	char group[5 + CONFIG_NET_ID_LEN];   /* "net_<id>" */
	uint8_t mac[6];
	bool offload_dirty;                  /* features changed: tell the tap */
	uint32_t rx_len;                     /* frame waiting in rx_buf (header included) */
	uint64_t rx_bytes, rx_packets, rx_fails, rx_bad_chains, rx_kicks;
	uint64_t tx_bytes, tx_packets, tx_fails, tx_malformed, tx_kicks;
	struct vq_chain chain;
	struct iovec iov[NET_QUEUE_SIZE + 1];
	struct net_used used[NET_QUEUE_SIZE];
	uint8_t rx_buf[NET_HDR_LEN + NET_MAX_FRAME + 1]; /* +1: a longer frame shows */
};

static struct net *to_net(struct virtio_dev *dev) { return dev->priv; }

/* Not while paused: rx then stops watching the back end (frames wait in
 * the tap, as in a paused NIC's queue), and the resume serves both queues. */
static bool live(const struct virtio_dev *dev) { return virtio_running(dev); }

static void config_read(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct net *n = to_net(dev);
	uint8_t cfg[CONFIG_SIZE];
	memcpy(cfg, n->mac, 6);
	put_le16(cfg + 6, LINK_UP);
	put_le16(cfg + 8, 1); /* max_virtqueue_pairs */
	memcpy(data, cfg + off, len); /* the transport bounds off + len */
}

static void wake(struct net *n)
{
	uint64_t one = 1;
	if (write(n->wake.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_ratelimited(LOG_ERROR, "virtio-net %s: cannot wake the event loop: %s", n->id,
				strerror(errno));
}

static void apply_offload(struct net *n)
{
	if (!n->offload_dirty || !n->be->vnet_hdr)
		return;
	n->offload_dirty = false;
	unsigned o = 0;
	if (virtio_has(&n->dev, F_GUEST_CSUM))
		o |= NET_OFFLOAD_CSUM;
	if (virtio_has(&n->dev, F_GUEST_TSO4))
		o |= NET_OFFLOAD_TSO4;
	if (virtio_has(&n->dev, F_GUEST_TSO6))
		o |= NET_OFFLOAD_TSO6;
	int err = n->be->ops->set_offload(n->be, o);
	if (err)
		log_ratelimited(LOG_WARN, "virtio-net %s: cannot set the tap's offloads: %s",
				n->id, strerror(-err));
}

/* ------------------------------------------------------------ transmit */

/* Why the header h of a frame of flen bytes is unacceptable, or NULL. */
static const char *tx_header_bad(const struct virtio_dev *dev, const uint8_t *h, uint32_t flen)
{
	uint8_t flags = h[0], gso = h[1];
	uint32_t hdr_len = get_le16(h + 2), gso_size = get_le16(h + 4);
	uint32_t csum_start = get_le16(h + 6), csum_off = get_le16(h + 8);

	if (flags & ~HDR_F_NEEDS_CSUM)
		return "unknown or device-only header flags";
	if (flags & HDR_F_NEEDS_CSUM) {
		if (!virtio_has(dev, F_CSUM))
			return "checksum offload not negotiated";
		if (csum_start + csum_off + 2 > flen)
			return "checksum field past the frame";
	}
	if (gso == GSO_NONE)
		return NULL;
	if (gso == GSO_TCPV4 && !virtio_has(dev, F_HOST_TSO4))
		return "TSO4 not negotiated";
	if (gso == GSO_TCPV6 && !virtio_has(dev, F_HOST_TSO6))
		return "TSO6 not negotiated";
	if (gso != GSO_TCPV4 && gso != GSO_TCPV6)
		return "unsupported GSO type";
	if (!(flags & HDR_F_NEEDS_CSUM))
		return "GSO without checksum offload";
	if (gso_size == 0 || hdr_len > flen)
		return "bad gso_size or hdr_len";
	return NULL;
}

/* One transmit chain: validated, sent or dropped, counted. */
static void tx_one(struct net *n, const struct vq_chain *c)
{
	struct virtio_dev *dev = &n->dev;
	uint8_t h[NET_HDR_LEN];
	const char *why = NULL;
	uint64_t flen = c->read_len >= NET_HDR_LEN ? c->read_len - NET_HDR_LEN : 0;

	if (c->nr_write)
		why = "writable buffer in a transmit chain";
	else if (c->read_len < NET_HDR_LEN + ETH_HLEN)
		why = "shorter than a header and an Ethernet header";
	else if (flen > NET_MAX_FRAME)
		why = "frame longer than 64 KiB + Ethernet header";
	if (!why) {
		/* The header is copied once and checked; the copy is sent. */
		vq_read(&dev->vq[TXQ], c, 0, h, sizeof(h));
		why = tx_header_bad(dev, h, (uint32_t)flen);
		put_le16(h + 10, 0); /* num_buffers: meaningless on transmit */
		if (!why && !n->be->vnet_hdr && (h[0] || h[1]))
			why = "offload requested from a back end without offloads";
	}
	if (why) {
		n->tx_malformed++;
		log_ratelimited(LOG_WARN, "virtio-net %s: transmit frame dropped: %s", n->id, why);
		return;
	}
	/* Payload straight from guest memory (a guest racing with its own
	 * frame only garbles that frame); the header from the checked copy. */
	int cnt = 0;
	if (n->be->vnet_hdr)
		n->iov[cnt++] = (struct iovec){ .iov_base = h, .iov_len = NET_HDR_LEN };
	uint64_t off = NET_HDR_LEN;
	for (unsigned i = 0; i < c->nr_read; i++) {
		const struct vq_buf *b = &c->buf[i];
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		void *p = guest_mem_ptr(dev->mem, b->gpa + off, b->len - off);
		if (!p || cnt == (int)ARRAY_SIZE(n->iov)) {
			n->tx_fails++;
			return;
		}
		n->iov[cnt++] = (struct iovec){ .iov_base = p, .iov_len = b->len - off };
		off = 0;
	}
	int err = n->be->ops->send(n->be, n->iov, cnt);
	if (err) {
		n->tx_fails++;
		log_ratelimited(LOG_WARN, "virtio-net %s: transmit frame dropped: %s", n->id,
				err == -EAGAIN ? "the back end is full" : strerror(-err));
		return;
	}
	n->tx_packets++;
	n->tx_bytes += flen;
}

static void rx_process(struct net *n);

static void tx_process(struct net *n)
{
	struct virtio_dev *dev = &n->dev;
	struct virtq *vq = &dev->vq[TXQ];
	struct vq_chain *c = &n->chain;
	unsigned done = 0;
	int r = 0;

	if (!live(dev))
		return;
	while (!ratelimit_blocked(&n->tx_rl)) {
		if (done == NET_BUDGET) {
			wake(n);
			break;
		}
		r = vq_pop(vq, c);
		if (r <= 0)
			break;
		uint64_t flen = c->read_len > NET_HDR_LEN ? c->read_len - NET_HDR_LEN : 0;
		if (!ratelimit_take(&n->tx_rl, flen)) {
			vq_unpop(vq, 1); /* sent when the limiter's timer fires */
			break;
		}
		tx_one(n, c);
		vq_push_defer(vq, c->head, 0);
		done++;
	}
	if (r < 0)
		virtio_broken(dev, TXQ, "broken ring");
	if (done) {
		vq_publish(vq);
		virtio_used(dev, TXQ);
		/* A back end answering at once (slirp: ARP, DHCP) queued its
		 * replies while we sent. */
		if (!n->be->vnet_hdr)
			rx_process(n);
	}
}

/* ------------------------------------------------------------- receive */

enum rx_result { RX_DONE, RX_WAIT, RX_DROPPED };

/* The guest-physical address of byte `off` of a chain's writable part. */
static uint64_t write_gpa(const struct vq_chain *c, uint64_t off)
{
	for (unsigned i = c->nr_read; i < c->nr_read + c->nr_write; i++) {
		if (off < c->buf[i].len)
			return c->buf[i].gpa + off;
		off -= c->buf[i].len;
	}
	return 0;
}

static void rx_drop(struct net *n, unsigned k, const char *why)
{
	struct virtq *vq = &n->dev.vq[RXQ];
	for (unsigned i = 0; i < k; i++)
		vq_push_defer(vq, n->used[i].head, 0);
	vq_publish(vq);
	n->rx_fails++;
	n->rx_bad_chains++;
	log_ratelimited(LOG_WARN, "virtio-net %s: receive frame dropped: %s", n->id, why);
}

/* Puts the frame in rx_buf into the guest's buffers. */
static enum rx_result rx_deliver(struct net *n, bool *delivered)
{
	struct virtio_dev *dev = &n->dev;
	struct virtq *vq = &dev->vq[RXQ];
	struct vq_chain *c = &n->chain;
	uint32_t total = n->rx_len, flen = total - NET_HDR_LEN, off = 0;
	bool mrg = virtio_has(dev, F_MRG_RXBUF);
	uint64_t nb_gpa[2] = { 0, 0 };
	unsigned k = 0;
	uint8_t *h = n->rx_buf;

	/* Offloads the driver did not accept must not reach it (§5.1.6.4). */
	if (!virtio_has(dev, F_GUEST_CSUM))
		h[0] = 0;
	h[0] &= HDR_F_NEEDS_CSUM | HDR_F_DATA_VALID;
	if ((h[1] == GSO_TCPV4 && !virtio_has(dev, F_GUEST_TSO4)) ||
	    (h[1] == GSO_TCPV6 && !virtio_has(dev, F_GUEST_TSO6)) ||
	    (h[1] != GSO_NONE && h[1] != GSO_TCPV4 && h[1] != GSO_TCPV6)) {
		n->rx_fails++;
		return RX_DROPPED;
	}
	put_le16(h + 10, 1);
	if (!ratelimit_take(&n->rx_rl, flen))
		return RX_WAIT;
	while (off < total) {
		int r = vq_pop(vq, c);
		if (r < 0) {
			virtio_broken(dev, RXQ, "broken ring");
			return RX_DROPPED;
		}
		if (r == 0) {
			/* Too few buffers: they go back, the frame waits. */
			vq_unpop(vq, (uint16_t)k);
			ratelimit_put_back(&n->rx_rl, flen);
			return RX_WAIT;
		}
		n->used[k++] = (struct net_used){ .head = c->head, .len = 0 };
		if (c->nr_read) {
			rx_drop(n, k, "readable buffer in a receive chain");
			return RX_DROPPED;
		}
		if (c->write_len < (k == 1 ? NET_HDR_LEN : 1) || (!mrg && c->write_len < total)) {
			rx_drop(n, k, "receive buffers too small");
			return RX_DROPPED;
		}
		if (k == ARRAY_SIZE(n->used) && off + c->write_len < total) {
			rx_drop(n, k, "frame spread over too many buffers");
			return RX_DROPPED;
		}
		if (k == 1) {
			nb_gpa[0] = write_gpa(c, 10);
			nb_gpa[1] = write_gpa(c, 11);
		}
		uint32_t want = (uint32_t)MIN(c->write_len, (uint64_t)(total - off));
		vq_write(vq, c, 0, n->rx_buf + off, want);
		n->used[k - 1].len = want;
		off += want;
	}
	/* num_buffers, now that it is known (the first chain got 1). */
	for (unsigned i = 0; i < 2; i++) {
		uint8_t *p = guest_mem_ptr(dev->mem, nb_gpa[i], 1);
		if (p)
			*p = (uint8_t)(k >> (8 * i));
	}
	/* All of a frame's buffers become visible together. */
	for (unsigned i = 0; i < k; i++)
		vq_push_defer(vq, n->used[i].head, n->used[i].len);
	vq_publish(vq);
	n->rx_packets++;
	n->rx_bytes += flen;
	*delivered = true;
	return RX_DONE;
}

static void rx_process(struct net *n)
{
	struct virtio_dev *dev = &n->dev;
	bool watch = false, delivered = false;
	size_t hdr = n->be->vnet_hdr ? 0 : NET_HDR_LEN;

	if (!live(dev))
		goto out;
	apply_offload(n);
	for (unsigned i = 0;; i++) {
		if (ratelimit_blocked(&n->rx_rl))
			break; /* the limiter's timer resumes */
		if (i == NET_BUDGET) {
			wake(n);
			break;
		}
		if (!n->rx_len) {
			ssize_t len = n->be->ops->recv(n->be, n->rx_buf + hdr, sizeof(n->rx_buf) - hdr);
			if (len == -EAGAIN) {
				watch = true;
				break;
			}
			if (len < 0) {
				n->rx_fails++;
				break;
			}
			len += (ssize_t)hdr;
			if (len < NET_HDR_LEN + ETH_HLEN || len > NET_HDR_LEN + NET_MAX_FRAME) {
				n->rx_fails++;
				log_ratelimited(LOG_WARN, "virtio-net %s: back end gave a %zd-byte "
						"frame; dropped", n->id, len - NET_HDR_LEN);
				continue;
			}
			if (hdr)
				memset(n->rx_buf, 0, NET_HDR_LEN);
			n->rx_len = (uint32_t)len;
		}
		if (rx_deliver(n, &delivered) == RX_WAIT)
			break; /* no buffers (the next rx kick resumes) or throttled */
		n->rx_len = 0;
	}
out:
	n->be->ops->rx_watch(n->be, watch);
	if (delivered)
		virtio_used(dev, RXQ);
}

/* -------------------------------------------------------------- events */

static void net_notify(struct virtio_dev *dev, unsigned q)
{
	struct net *n = to_net(dev);
	if (q == RXQ) {
		n->rx_kicks++;
		rx_process(n);
	} else if (q == TXQ) {
		n->tx_kicks++;
		tx_process(n);
	}
}

static void rx_ready(void *opaque)
{
	struct net *n = opaque;
	pthread_mutex_lock(&n->dev.lock);
	rx_process(n);
	pthread_mutex_unlock(&n->dev.lock);
}

static void on_wake(struct evloop_source *src, uint32_t events)
{
	struct net *n = (struct net *)((char *)src - offsetof(struct net, wake));
	uint64_t v;
	if (read(src->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&n->dev.lock);
	tx_process(n);
	rx_process(n);
	pthread_mutex_unlock(&n->dev.lock);
}

static void on_rx_timer(struct evloop_source *src, uint32_t events)
{
	struct net *n = (struct net *)((char *)src - offsetof(struct net, rx_timer));
	pthread_mutex_lock(&n->dev.lock);
	ratelimit_expired(&n->rx_rl);
	rx_process(n);
	pthread_mutex_unlock(&n->dev.lock);
}

static void on_tx_timer(struct evloop_source *src, uint32_t events)
{
	struct net *n = (struct net *)((char *)src - offsetof(struct net, tx_timer));
	pthread_mutex_lock(&n->dev.lock);
	ratelimit_expired(&n->tx_rl);
	tx_process(n);
	pthread_mutex_unlock(&n->dev.lock);
}

/* Watches a limiter's timer once it has one (it may appear on an update). */
static int watch_timer(struct net *n, struct ratelimit *rl, struct evloop_source *src)
{
	if (rl->timer_fd < 0 || src->fd == rl->timer_fd)
		return 0;
	src->fd = rl->timer_fd;
	int err = evloop_add(n->loop, src, EPOLLIN);
	if (err)
		src->fd = -1;
	return err;
}

/* §5.1.3.1: offloads need the checksum feature of their direction. */
static int net_activate(struct virtio_dev *dev)
{
	struct net *n = to_net(dev);
	bool guest_gso = virtio_has(dev, F_GUEST_TSO4) || virtio_has(dev, F_GUEST_TSO6);
	bool host_gso = virtio_has(dev, F_HOST_TSO4) || virtio_has(dev, F_HOST_TSO6);
	if ((guest_gso && !virtio_has(dev, F_GUEST_CSUM)) || (host_gso && !virtio_has(dev, F_CSUM)))
		return -EINVAL;
	n->offload_dirty = true; /* applied on the event loop, before receiving */
	return 0;
}

static unsigned net_reset(struct virtio_dev *dev)
{
	struct net *n = to_net(dev);
	n->rx_len = 0; /* nothing is in flight: transmit completes at once */
	return 0;
}

/* A frame read from the back end but not yet delivered (rx_buf) lives only
 * in this process and is not in the saved state: after a migration it is
 * lost, as frames are while a switch port moves (TCP sends them again).
 * Taking the tap back (a failed migration) sets its offloads again: they
 * belong to the interface, and the destination reset them when it opened it. */
static int net_handover(struct virtio_dev *dev, bool active)
{
	struct net *n = to_net(dev);
	int err = n->be->ops->set_active ? n->be->ops->set_active(n->be, active) : 0;
	if (!err && active && live(dev))
		n->offload_dirty = true;
	return err;
}

static void net_metrics(struct virtio_dev *dev, const struct metrics_sink *s)
{
	struct net *n = to_net(dev);
	metric(s, n->group, "rx_bytes_count", n->rx_bytes);
	metric(s, n->group, "rx_packets_count", n->rx_packets);
	metric(s, n->group, "rx_fails", n->rx_fails);
	metric(s, n->group, "rx_bad_chains", n->rx_bad_chains);
	metric(s, n->group, "rx_queue_event_count", n->rx_kicks);
	metric(s, n->group, "rx_rate_limiter_throttled", n->rx_rl.throttled);
	metric(s, n->group, "tx_bytes_count", n->tx_bytes);
	metric(s, n->group, "tx_packets_count", n->tx_packets);
	metric(s, n->group, "tx_fails", n->tx_fails);
	metric(s, n->group, "tx_malformed_frames", n->tx_malformed);
	metric(s, n->group, "tx_queue_event_count", n->tx_kicks);
	metric(s, n->group, "tx_rate_limiter_throttled", n->tx_rl.throttled);
	metric(s, n->group, "event_fails", dev->errors);
}

static const struct virtio_ops net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.pci_class = 0x020000, /* network, Ethernet */
	.nr_queues = 2,
	.queue_max = NET_QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.config_read = config_read,
	.notify = net_notify,
	.reset = net_reset,
	.activate = net_activate,
	.handover = net_handover,
	.metrics = net_metrics,
};

const char *virtio_net_id(struct virtio_dev *dev) { return to_net(dev)->id; }

int virtio_net_set_limits(struct virtio_dev *dev, const struct ratelimit_cfg *rx,
			  const struct ratelimit_cfg *tx)
{
	struct net *n = to_net(dev);
	int err = 0;
	pthread_mutex_lock(&dev->lock);
	if (rx && !(err = ratelimit_update(&n->rx_rl, rx)))
		err = watch_timer(n, &n->rx_rl, &n->rx_timer);
	if (!err && tx && !(err = ratelimit_update(&n->tx_rl, tx)))
		err = watch_timer(n, &n->tx_rl, &n->tx_timer);
	pthread_mutex_unlock(&dev->lock);
	return err;
}

struct virtio_dev *virtio_net_create(const struct guest_mem *mem, struct evloop *loop,
				     const struct vm_net *net, struct net_backend *be, int *err)
{
	struct net *n = calloc(1, sizeof(*n));
	if (!n) {
		be->ops->destroy(be);
		*err = -ENOMEM;
		return NULL;
	}
	n->be = be;
	n->loop = loop;
	n->wake.fd = n->rx_timer.fd = n->tx_timer.fd = -1;
	n->rx_rl.timer_fd = n->tx_rl.timer_fd = -1;
	n->wake.fn = on_wake;
	n->rx_timer.fn = on_rx_timer;
	n->tx_timer.fn = on_tx_timer;
	snprintf(n->id, sizeof(n->id), "%s", net->id);
	snprintf(n->group, sizeof(n->group), "net_%s", net->id);
	memcpy(n->mac, net->mac, 6);
	uint64_t features = 1ull << F_MAC | 1ull << F_STATUS | 1ull << F_MRG_RXBUF;
	if (be->vnet_hdr)
		features |= 1ull << F_CSUM | 1ull << F_GUEST_CSUM | 1ull << F_HOST_TSO4 |
			    1ull << F_HOST_TSO6 | 1ull << F_GUEST_TSO4 | 1ull << F_GUEST_TSO6;
	virtio_dev_init(&n->dev, &net_ops, n, mem, features);
	be->rx_ready = rx_ready;
	be->opaque = n;
	*err = ratelimit_init(&n->rx_rl, &net->rx);
	if (!*err)
		*err = ratelimit_init(&n->tx_rl, &net->tx);
	if (!*err)
		*err = watch_timer(n, &n->rx_rl, &n->rx_timer);
	if (!*err)
		*err = watch_timer(n, &n->tx_rl, &n->tx_timer);
	if (!*err) {
		n->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		*err = n->wake.fd < 0 ? -errno : evloop_add(loop, &n->wake, EPOLLIN);
	}
	if (*err) {
		log_error("virtio-net %s: cannot set up: %s", n->id, strerror(-*err));
		virtio_net_destroy(&n->dev);
		return NULL;
	}
	return &n->dev;
}

void virtio_net_destroy(struct virtio_dev *dev)
{
	if (!dev)
		return;
	struct net *n = to_net(dev);
	struct evloop_source *srcs[] = { &n->wake, &n->rx_timer, &n->tx_timer };
	for (unsigned i = 0; i < ARRAY_SIZE(srcs); i++)
		if (srcs[i]->fd >= 0)
			evloop_del(n->loop, srcs[i]);
	if (n->wake.fd >= 0)
		close(n->wake.fd);
	ratelimit_fini(&n->rx_rl);
	ratelimit_fini(&n->tx_rl);
	n->be->ops->destroy(n->be);
	virtio_dev_fini(dev);
	free(n);
}
