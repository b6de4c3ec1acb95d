/* virtio-vsock (virtio 1.2 §5.10) with Firecracker's host side: stream
 * sockets between the guest (its CID from the configuration) and Unix
 * sockets on the host (backend/vsock_uds.h). Queues: rx (device-written
 * packets), tx (guest packets), event (buffers are taken but never used:
 * mote never changes the guest's CID, so there is no TRANSPORT_RESET).
 *
 * Connections, keyed by (local = host port, peer = guest port):
 *  - guest REQUEST to host port P: mote connects to "<uds>_P" (RST if that
 *    fails) and answers RESPONSE;
 *  - a host client of "<uds>" writes "CONNECT <port>\n" (within
 *    HANDSHAKE_MS, else it is closed): mote picks a local port from
 *    [2^30, 2^31) round robin, sends REQUEST, and on the guest's RESPONSE
 *    writes "OK <local port>\n" to the client (no answer within
 *    REQUEST_MS: RST and close, as Firecracker).
 * Flow control (§5.10.6.3) both ways: host data is read straight into the
 * guest's rx buffers, never more than the guest's credit (buf_alloc minus
 * bytes in flight); guest data is written straight to the host socket, and
 * what the socket does not take is held in a per-connection buffer of
 * CONN_BUF bytes — exactly the buf_alloc mote advertises, so a guest that
 * respects its credit never overflows it (one that does not is reset). A
 * stalled host peer therefore holds at most CONN_BUF bytes of mote's
 * memory and never blocks the event loop: every socket is non-blocking and
 * edge-triggered.
 * Host EOF: SHUTDOWN (both directions) to the guest, RST after
 * SHUTDOWN_MS if it does not reset first. Guest SHUTDOWN SEND: shutdown()
 * of the host socket's write side once the buffer drained; both
 * directions: RST once drained (as Firecracker).
 * Malformed guest packets (vsock_hdr_check) are dropped or answered with
 * RST, counted and logged rate-limited. A device reset closes every guest
 * connection (on the event loop; device_status reads non-zero until then).
 * Deliberately absent: seqpacket, datagrams, the event queue's
 * TRANSPORT_RESET, several devices. */
#include "virtio/vsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"
#include "virtio/vsock_conn.h"

/* ---------------------------------------------------------------- headers */

void vsock_hdr_decode(struct vsock_hdr *h, const uint8_t raw[VSOCK_HDR_LEN])
{
	h->src_cid = get_le64(raw);
	h->dst_cid = get_le64(raw + 8);
	h->src_port = get_le32(raw + 16);
	h->dst_port = get_le32(raw + 20);
	h->len = get_le32(raw + 24);
	h->type = get_le16(raw + 28);
	h->op = get_le16(raw + 30);
	h->flags = get_le32(raw + 32);
	h->buf_alloc = get_le32(raw + 36);
	h->fwd_cnt = get_le32(raw + 40);
}

void vsock_hdr_encode(uint8_t raw[VSOCK_HDR_LEN], const struct vsock_hdr *h)
{
	put_le64(raw, h->src_cid);
	put_le64(raw + 8, h->dst_cid);
	put_le32(raw + 16, h->src_port);
	put_le32(raw + 20, h->dst_port);
	put_le32(raw + 24, h->len);
	put_le16(raw + 28, h->type);
	put_le16(raw + 30, h->op);
	put_le32(raw + 32, h->flags);
	put_le32(raw + 36, h->buf_alloc);
	put_le32(raw + 40, h->fwd_cnt);
}

enum vsock_verdict vsock_hdr_check(const struct vsock_hdr *h, uint64_t readable, uint32_t guest_cid,
				   const char **why)
{
	*why = NULL;
	if (readable < VSOCK_HDR_LEN) {
		*why = "packet shorter than its 44-byte header";
		return VSOCK_PKT_DROP;
	}
	if (h->src_cid != guest_cid) {
		*why = "source cid is not the guest's";
		return VSOCK_PKT_DROP;
	}
	if (h->dst_cid != VSOCK_HOST_CID) {
		*why = "destination cid is not the host";
		return VSOCK_PKT_DROP;
	}
	if (h->type != VSOCK_TYPE_STREAM) {
		*why = "unknown socket type";
		return VSOCK_PKT_RST;
	}
	if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST) {
		*why = "unknown op";
		return VSOCK_PKT_RST;
	}
	if (h->len > VSOCK_MAX_PAYLOAD) {
		*why = "len above 64 KiB";
		return VSOCK_PKT_RST;
	}
	if (h->len > readable - VSOCK_HDR_LEN) {
		*why = "len beyond the buffer";
		return VSOCK_PKT_RST;
	}
	return VSOCK_PKT_OK;
}

/* ---------------------------------------------------------------- the queues */

static struct vsock *of(struct virtio_dev *dev)
{
	return dev->priv;
}

bool vsock_ready(const struct vsock *vs)
{
	return virtio_running(&vs->dev);
}

void vsock_bad_packet(struct vsock *vs, const struct vsock_hdr *h, const char *why)
{
	vs->invalid_pkts++;
	log_ratelimited(LOG_WARN, "virtio-vsock: bad packet (op %u, port %u -> %u): %s", h->op,
			h->src_port, h->dst_port, why);
}

static void guest_packet(struct vsock *vs, const struct vq_chain *ch)
{
	struct virtq *vq = &vs->dev.vq[TXQ];
	uint8_t raw[VSOCK_HDR_LEN] = {0};
	struct vsock_hdr h;
	const char *why;
	vq_read(vq, ch, 0, raw, sizeof(raw));
	vsock_hdr_decode(&h, raw);
	enum vsock_verdict v = vsock_hdr_check(&h, ch->read_len, vs->cid, &why);
	if (v == VSOCK_PKT_OK) {
		vsock_conn_packet(vs, &h, ch);
		return;
	}
	vsock_bad_packet(vs, &h, why);
	if (v == VSOCK_PKT_RST && h.op != VSOCK_OP_RST)
		vsock_conn_refuse(vs, &h);
}

static void tx_process(struct vsock *vs)
{
	struct virtq *vq = &vs->dev.vq[TXQ];
	int r;
	while ((r = vq_pop(vq, &vs->tx_chain)) > 0) {
		vs->tx_packets++;
		guest_packet(vs, &vs->tx_chain);
		vq_push(vq, vs->tx_chain.head, 0);
	}
	if (r < 0) {
		vs->tx_fails++;
		virtio_broken(&vs->dev, TXQ, "broken ring");
	}
	virtio_used(&vs->dev, TXQ);
}

void vsock_rx_pump(struct vsock *vs)
{
	struct virtio_dev *dev = &vs->dev;
	struct virtq *vq = &dev->vq[RXQ];
	struct vq_chain *ch = &vs->rx_chain;
	bool pushed = false;
	if (!vsock_ready(vs))
		return;
	while (vsock_conn_pending(vs)) {
		if (!vs->rx_held) {
			int r = vq_pop(vq, ch);
			if (r < 0) {
				vs->rx_fails++;
				virtio_broken(dev, RXQ, "broken ring");
				break;
			}
			if (r == 0)
				break;
			if (ch->nr_read || ch->write_len < VSOCK_HDR_LEN) {
				vs->rx_fails++;
				virtio_broken(dev, RXQ, "rx buffer not writable or under 44 bytes");
				break;
			}
			vs->rx_held = true;
		}
		uint32_t n = vsock_conn_next(vs, ch);
		if (!n)
			continue; /* the chain stays held for the next packet */
		vq_push(vq, ch->head, n);
		vs->rx_held = false;
		vs->rx_packets++;
		pushed = true;
	}
	if (pushed)
		virtio_used(dev, RXQ);
}

/* Reset teardown and post-activation work, moved off the vCPU thread. */
static void wake_event(struct evloop_source *src, uint32_t events)
{
	struct vsock *vs = (struct vsock *)((char *)src - offsetof(struct vsock, wake_src));
	uint64_t n;
	if (read(src->fd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&vs->dev.lock);
	if (vs->dev.resetting) {
		vsock_conn_close_guest(vs);
		virtio_reset_done(&vs->dev);
	} else {
		vsock_rx_pump(vs);
	}
	pthread_mutex_unlock(&vs->dev.lock);
}

static void wake(struct vsock *vs)
{
	uint64_t one = 1;
	if (write(vs->wake_src.fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_ratelimited(LOG_ERROR, "virtio-vsock: cannot wake the event loop: %s",
				strerror(errno));
}

/* ---------------------------------------------------------------- virtio ops */

static void config_read(struct virtio_dev *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	uint8_t cfg[CONFIG_SIZE];
	put_le64(cfg, of(dev)->cid);
	memcpy(data, cfg + off, len); /* the transport bounds off + len */
}

static void vsock_notify(struct virtio_dev *dev, unsigned q)
{
	struct vsock *vs = of(dev);
	if (q == TXQ) {
		vs->tx_kicks++;
		tx_process(vs);
	} else if (q == RXQ) {
		vs->rx_kicks++;
	}
	vsock_rx_pump(vs); /* event-queue buffers are kept for events mote never sends */
}

static unsigned vsock_reset(struct virtio_dev *dev)
{
	struct vsock *vs = of(dev);
	vs->rx_held = false;
	vs->rst_len = 0;
	if (!vsock_conn_any_guest(vs))
		return 0;
	wake(vs); /* sockets are closed on the event loop */
	return 1;
}

static int vsock_activate(struct virtio_dev *dev)
{
	wake(of(dev)); /* buffers posted before DRIVER_OK, and pending requests */
	return 0;
}

static void vsock_metrics(struct virtio_dev *dev, const struct metrics_sink *s)
{
	struct vsock *vs = of(dev);
	metric(s, "vsock", "rx_queue_event_count", vs->rx_kicks);
	metric(s, "vsock", "tx_queue_event_count", vs->tx_kicks);
	metric(s, "vsock", "rx_queue_event_fails", vs->rx_fails);
	metric(s, "vsock", "tx_queue_event_fails", vs->tx_fails);
	metric(s, "vsock", "muxer_event_fails", vs->muxer_fails);
	metric(s, "vsock", "rx_bytes_count", vs->rx_bytes);
	metric(s, "vsock", "tx_bytes_count", vs->tx_bytes);
	metric(s, "vsock", "rx_packets_count", vs->rx_packets);
	metric(s, "vsock", "tx_packets_count", vs->tx_packets);
	metric(s, "vsock", "conns_added", vs->conns_added);
	metric(s, "vsock", "conns_killed", vs->conns_killed);
	metric(s, "vsock", "conns_removed", vs->conns_removed);
	metric(s, "vsock", "rx_read_fails", vs->rx_read_fails);
	metric(s, "vsock", "tx_write_fails", vs->tx_write_fails);
	/* mote's own: malformed guest packets, and RSTs the full ring lost */
	metric(s, "vsock", "invalid_pkts_count", vs->invalid_pkts);
	metric(s, "vsock", "rst_dropped_count", vs->rst_dropped);
}

static const struct virtio_ops vsock_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.pci_class = 0xff0000, /* unclassified device */
	.nr_queues = 3,
	.queue_max = QUEUE_SIZE,
	.config_size = CONFIG_SIZE,
	.config_read = config_read,
	.notify = vsock_notify,
	.reset = vsock_reset,
	.activate = vsock_activate,
	.metrics = vsock_metrics,
};

#define VIRTIO_VSOCK_F_STREAM 0

struct virtio_dev *virtio_vsock_create(const struct guest_mem *mem, struct evloop *loop,
				       const struct vm_vsock *cfg, int *err)
{
	struct vsock *vs = calloc(1, sizeof(*vs));
	if (!vs) {
		*err = -ENOMEM;
		return NULL;
	}
	virtio_dev_init(&vs->dev, &vsock_ops, vs, mem, 1ull << VIRTIO_VSOCK_F_STREAM);
	vs->loop = loop;
	vs->cid = cfg->cid;
	vs->listen_src.fd = vs->timer_src.fd = vs->wake_src.fd = -1;
	vs->uds = strdup(cfg->uds);
	if (!vs->uds) {
		*err = -ENOMEM;
		goto fail;
	}
	vs->listen_src.fn = vsock_conn_on_listen;
	vs->timer_src.fn = vsock_conn_on_timer;
	vs->wake_src.fn = wake_event;
	vs->wake_src.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vs->timer_src.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (vs->wake_src.fd < 0 || vs->timer_src.fd < 0) {
		*err = -errno;
		log_error("virtio-vsock: %s", strerror(errno));
		goto fail;
	}
	vs->listen_src.fd = vsock_uds_listen(cfg->uds);
	if (vs->listen_src.fd < 0) {
		*err = vs->listen_src.fd;
		log_error("vsock uds path %s: %s", cfg->uds,
			  *err == -EADDRINUSE ? "already exists (remove it first)"
					      : strerror(-*err));
		goto fail;
	}
	if ((*err = evloop_add(loop, &vs->wake_src, EPOLLIN)) < 0 ||
	    (*err = evloop_add(loop, &vs->timer_src, EPOLLIN)) < 0 ||
	    (*err = evloop_add(loop, &vs->listen_src, EPOLLIN)) < 0) {
		log_error("virtio-vsock: cannot watch its sockets: %s", strerror(-*err));
		goto fail;
	}
	vs->listening = true;
	vs->last_local_port = LOCAL_PORT_FIRST - 1;
	return &vs->dev;
fail:
	virtio_vsock_destroy(&vs->dev);
	return NULL;
}

void virtio_vsock_destroy(struct virtio_dev *dev)
{
	if (!dev)
		return;
	struct vsock *vs = of(dev);
	vsock_conn_fini(vs);
	if (vs->listen_src.fd >= 0) {
		if (vs->listening)
			evloop_del(vs->loop, &vs->listen_src);
		close(vs->listen_src.fd);
		unlink(vs->uds); /* mote made it; as Firecracker's API socket, it goes with mote */
	}
	if (vs->timer_src.fd >= 0) {
		evloop_del(vs->loop, &vs->timer_src);
		close(vs->timer_src.fd);
	}
	if (vs->wake_src.fd >= 0) {
		evloop_del(vs->loop, &vs->wake_src);
		close(vs->wake_src.fd);
	}
	free(vs->uds);
	virtio_dev_fini(dev);
	free(vs);
}
