/* virtio-vsock's connections (see vsock.c for the device and the protocol
 * choices): the state machine per connection, the host's Unix sockets
 * (non-blocking, edge-triggered on the event loop), credit-based flow
 * control both ways, the CONNECT handshake of host clients, and the
 * deadlines (handshake, unanswered REQUEST, shutdown). */
#include "virtio/vsock_conn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

/* ---------------------------------------------------------------- helpers */

static void arm_timer(struct vsock *vs)
{
	if (vs->timer_armed)
		return;
	struct itimerspec t = {.it_interval.tv_nsec = TICK_MS * 1000000L,
			       .it_value.tv_nsec = TICK_MS * 1000000L};
	if (timerfd_settime(vs->timer_src.fd, 0, &t, NULL) == 0)
		vs->timer_armed = true;
}

static void set_deadline(struct vsock *vs, struct conn *c, unsigned ms)
{
	c->deadline = monotonic_ns() + (uint64_t)ms * 1000000;
	arm_timer(vs);
}

static void work_add(struct vsock *vs, struct conn *c)
{
	if (c->queued)
		return;
	c->queued = true;
	c->next = NULL;
	c->prev = vs->work_tail;
	if (vs->work_tail)
		vs->work_tail->next = c;
	else
		vs->work_head = c;
	vs->work_tail = c;
}

static void work_del(struct vsock *vs, struct conn *c)
{
	if (!c->queued)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		vs->work_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		vs->work_tail = c->prev;
	c->queued = false;
	c->prev = c->next = NULL;
}

static void want(struct vsock *vs, struct conn *c, unsigned p)
{
	c->pending |= p;
	work_add(vs, c);
}

static void rst_enqueue(struct vsock *vs, uint32_t local, uint32_t peer)
{
	if (vs->rst_len == RST_RING) {
		vs->rst_dropped++; /* the guest's own timeout ends that socket */
		return;
	}
	unsigned i = (vs->rst_head + vs->rst_len++) % RST_RING;
	vs->rst[i].local = local;
	vs->rst[i].peer = peer;
}

static struct conn *conn_alloc(struct vsock *vs)
{
	for (unsigned i = 0; i < vs->nr_slots; i++)
		if (vs->slot[i]->state == C_FREE)
			return vs->slot[i];
	if (vs->nr_slots == MAX_CONNS)
		return NULL;
	struct conn *c = calloc(1, sizeof(*c));
	if (c)
		vs->slot[vs->nr_slots++] = c;
	return c;
}

static struct conn *conn_find(struct vsock *vs, uint32_t local, uint32_t peer)
{
	for (unsigned i = 0; i < vs->nr_slots; i++) {
		struct conn *c = vs->slot[i];
		if (c->state > C_HANDSHAKE && c->local_port == local && c->peer_port == peer)
			return c;
	}
	return NULL;
}

static void conn_event(struct evloop_source *src, uint32_t events);

/* Starts a slot with a connected fd; 0 or -errno (the fd is then closed). */
static int conn_start(struct vsock *vs, struct conn *c, int fd, enum cstate state)
{
	memset(c, 0, sizeof(*c));
	c->vs = vs;
	c->src.fn = conn_event;
	c->src.fd = fd;
	c->state = state;
	c->writable = true;
	int err = evloop_add(vs->loop, &c->src, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET);
	if (err) {
		close(fd);
		c->state = C_FREE;
	}
	return err;
}

static void conn_close(struct vsock *vs, struct conn *c)
{
	if (c->state == C_FREE)
		return;
	if (c->state != C_HANDSHAKE)
		vs->conns_removed++;
	evloop_del(vs->loop, &c->src);
	close(c->src.fd);
	c->src.fd = -1;
	work_del(vs, c);
	free(c->buf);
	c->buf = NULL;
	c->state = C_FREE;
}

/* Ends a guest connection with an RST to the guest. */
static void conn_kill(struct vsock *vs, struct conn *c)
{
	if (c->state > C_HANDSHAKE) {
		vs->conns_killed++;
		rst_enqueue(vs, c->local_port, c->peer_port);
	}
	conn_close(vs, c);
}

static uint32_t peer_credit(const struct conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* The guest learns our fwd_cnt from every packet; when its idea of our free
 * space runs low while we have more, tell it (§5.10.6.3). */
static void credit_check(struct vsock *vs, struct conn *c)
{
	uint32_t seen_used = c->fwd_cnt + c->buf_len - c->last_fwd_cnt;
	if (c->fwd_cnt != c->last_fwd_cnt && CONN_BUF - seen_used < CREDIT_THRESHOLD)
		want(vs, c, P_CREDIT_UPDATE);
}

/* Host data is worth reading into the guest's buffers. */
static void maybe_rw(struct vsock *vs, struct conn *c)
{
	if (c->state == C_ESTABLISHED && c->readable && !(c->peer_shut & VSOCK_SHUTDOWN_RCV) &&
	    (peer_credit(c) || !c->want_credit))
		want(vs, c, P_RW);
}

/* iovecs over [off, off + len) of a chain's readable or writable part; the
 * count, or 0 when it needs more than max (or len is 0). */
static unsigned chain_iov(const struct virtio_dev *dev, const struct vq_chain *ch, bool write,
			  uint64_t off, uint64_t len, struct iovec *iov, unsigned max)
{
	unsigned first = write ? ch->nr_read : 0, n = write ? ch->nr_write : ch->nr_read, out = 0;
	for (unsigned i = first; i < first + n && len > 0; i++) {
		const struct vq_buf *b = &ch->buf[i];
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		uint64_t take = MIN(b->len - off, len);
		if (out == max)
			return 0;
		iov[out].iov_base = guest_mem_ptr(dev->mem, b->gpa + off, take);
		if (!iov[out].iov_base)
			return 0;
		iov[out++].iov_len = take;
		len -= take;
		off = 0;
	}
	return len ? 0 : out;
}

/* ---------------------------------------------------------------- guest -> host data */

static void after_drain(struct vsock *vs, struct conn *c);

/* Writes buffered guest data to the host socket. */
static void flush(struct vsock *vs, struct conn *c)
{
	while (c->buf_len && c->writable) {
		struct iovec iov[2];
		uint32_t first = MIN(c->buf_len, CONN_BUF - c->buf_head);
		iov[0] = (struct iovec){c->buf + c->buf_head, first};
		iov[1] = (struct iovec){c->buf, c->buf_len - first};
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = iov[1].iov_len ? 2 : 1};
		ssize_t n = sendmsg(c->src.fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			c->writable = errno == EINTR;
			continue;
		}
		if (n <= 0) {
			vs->tx_write_fails++;
			log_ratelimited(LOG_INFO, "virtio-vsock: port %u: host write: %s",
					c->local_port, n < 0 ? strerror(errno) : "no progress");
			conn_kill(vs, c);
			return;
		}
		c->buf_head = (c->buf_head + (uint32_t)n) % CONN_BUF;
		c->buf_len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	after_drain(vs, c);
}

static void after_drain(struct vsock *vs, struct conn *c)
{
	credit_check(vs, c);
	if (c->buf_len)
		return;
	if ((c->peer_shut & VSOCK_SHUTDOWN_SEND) && !c->wr_shut) {
		shutdown(c->src.fd, SHUT_WR);
		c->wr_shut = true;
	}
	if (c->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND))
		conn_kill(vs, c);
}

/* One RW packet's payload: straight to the socket when nothing is queued,
 * the rest into the buffer (room guaranteed by the credit check). */
static void guest_data(struct vsock *vs, struct conn *c, const struct vq_chain *ch, uint32_t len)
{
	struct virtq *vq = &vs->dev.vq[TXQ];
	uint32_t done = 0;
	if (!c->buf_len && c->writable) {
		struct iovec iov[MAX_IOV];
		unsigned n = chain_iov(&vs->dev, ch, false, VSOCK_HDR_LEN, len, iov, MAX_IOV);
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = n};
		ssize_t w = n ? sendmsg(c->src.fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT) : 0;
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			vs->tx_write_fails++;
			log_ratelimited(LOG_INFO, "virtio-vsock: port %u: host write: %s",
					c->local_port, strerror(errno));
			conn_kill(vs, c);
			return;
		}
		if (w < 0)
			c->writable = false;
		else
			done = (uint32_t)w;
		c->fwd_cnt += done;
	}
	if (done < len) {
		if (!c->buf && !(c->buf = malloc(CONN_BUF))) {
			log_ratelimited(LOG_ERROR, "virtio-vsock: out of memory for a buffer");
			conn_kill(vs, c);
			return;
		}
		uint32_t rest = len - done, tail = (c->buf_head + c->buf_len) % CONN_BUF;
		uint32_t first = MIN(rest, CONN_BUF - tail);
		vq_read(vq, ch, VSOCK_HDR_LEN + done, c->buf + tail, first);
		vq_read(vq, ch, VSOCK_HDR_LEN + done + first, c->buf, rest - first);
		c->buf_len += rest;
	}
	flush(vs, c);
}

/* ---------------------------------------------------------------- guest packets (tx) */

/* A packet for a connection that just ended is a normal race, not an attack:
 * counted with the bad ones, logged at info level. */
static void stray_packet(struct vsock *vs, const struct vsock_hdr *h)
{
	vs->invalid_pkts++;
	log_ratelimited(LOG_INFO, "virtio-vsock: op %u for no connection (port %u -> %u): RST",
			h->op, h->src_port, h->dst_port);
}

static void guest_request(struct vsock *vs, const struct vsock_hdr *h)
{
	struct conn *c = conn_alloc(vs);
	if (!c) {
		log_ratelimited(LOG_WARN, "virtio-vsock: %u connections: refusing port %u",
				MAX_CONNS, h->dst_port);
		rst_enqueue(vs, h->dst_port, h->src_port);
		return;
	}
	int fd = vsock_uds_connect(vs->uds, h->dst_port);
	if (fd < 0) {
		log_ratelimited(LOG_DEBUG, "virtio-vsock: %s_%u: %s", vs->uds, h->dst_port,
				strerror(-fd));
		rst_enqueue(vs, h->dst_port, h->src_port);
		return;
	}
	if (conn_start(vs, c, fd, C_PEER_INIT) < 0) {
		rst_enqueue(vs, h->dst_port, h->src_port);
		return;
	}
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	vs->conns_added++;
	want(vs, c, P_RESPONSE);
}

static void guest_response(struct vsock *vs, struct conn *c)
{
	if (c->state != C_LOCAL_INIT) {
		conn_kill(vs, c);
		return;
	}
	char msg[24];
	int n = snprintf(msg, sizeof(msg), "OK %u\n", c->local_port);
	/* A dozen bytes into a fresh socket: a short write means it is broken. */
	if (send(c->src.fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		vs->tx_write_fails++;
		conn_kill(vs, c);
		return;
	}
	c->state = C_ESTABLISHED;
	c->deadline = 0;
}

static void guest_shutdown(struct vsock *vs, struct conn *c, uint32_t flags)
{
	if (c->state == C_LOCAL_CLOSED) {
		conn_kill(vs, c); /* both sides are done */
		return;
	}
	if (c->state != C_ESTABLISHED) {
		conn_kill(vs, c);
		return;
	}
	c->peer_shut |= (uint8_t)(flags & (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND));
	if (c->peer_shut == (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND) && c->buf_len)
		set_deadline(vs, c, SHUTDOWN_MS); /* drain, but not forever */
	after_drain(vs, c);
}

void vsock_conn_refuse(struct vsock *vs, const struct vsock_hdr *h)
{
	struct conn *c = conn_find(vs, h->dst_port, h->src_port);
	if (c)
		conn_kill(vs, c);
	else
		rst_enqueue(vs, h->dst_port, h->src_port);
}

void vsock_conn_packet(struct vsock *vs, const struct vsock_hdr *h, const struct vq_chain *ch)
{
	struct conn *c = conn_find(vs, h->dst_port, h->src_port);
	if (!c) {
		if (h->op == VSOCK_OP_REQUEST) {
			guest_request(vs, h);
		} else if (h->op != VSOCK_OP_RST) {
			stray_packet(vs, h);
			rst_enqueue(vs, h->dst_port, h->src_port);
		}
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (peer_credit(c))
		c->want_credit = false; /* asking again when it runs out */
	switch (h->op) {
	case VSOCK_OP_RST:
		conn_close(vs, c);
		return;
	case VSOCK_OP_REQUEST:
		vsock_bad_packet(vs, h, "request for an existing connection");
		conn_kill(vs, c);
		return;
	case VSOCK_OP_RESPONSE:
		guest_response(vs, c);
		break;
	case VSOCK_OP_SHUTDOWN:
		guest_shutdown(vs, c, h->flags);
		break;
	case VSOCK_OP_RW:
		if (c->state == C_LOCAL_CLOSED)
			return; /* the host end is gone: nowhere to deliver */
		if (c->state != C_ESTABLISHED || (c->peer_shut & VSOCK_SHUTDOWN_SEND)) {
			vsock_bad_packet(vs, h, "data outside an open connection");
			conn_kill(vs, c);
			return;
		}
		if (h->len > CONN_BUF - c->buf_len) {
			vsock_bad_packet(vs, h, "data beyond the credit mote gave");
			conn_kill(vs, c);
			return;
		}
		vs->tx_bytes += h->len;
		guest_data(vs, c, ch, h->len);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		want(vs, c, P_CREDIT_UPDATE);
		break;
	}
	if (c->state != C_FREE)
		maybe_rw(vs, c);
}

/* ---------------------------------------------------------------- packets to the guest (rx) */

/* Writes a packet header to the guest, from (VSOCK_HOST_CID, local) to
 * (guest, peer); a connection's packets carry its credit. */
static uint32_t put_hdr_ports(struct vsock *vs, const struct vq_chain *ch, uint32_t local,
			      uint32_t peer, uint16_t op, uint32_t len, uint32_t flags,
			      uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct vsock_hdr h = {.src_cid = VSOCK_HOST_CID,
			      .dst_cid = vs->cid,
			      .src_port = local,
			      .dst_port = peer,
			      .len = len,
			      .type = VSOCK_TYPE_STREAM,
			      .op = op,
			      .flags = flags,
			      .buf_alloc = buf_alloc,
			      .fwd_cnt = fwd_cnt};
	uint8_t raw[VSOCK_HDR_LEN];
	vsock_hdr_encode(raw, &h);
	vq_write(&vs->dev.vq[RXQ], ch, 0, raw, sizeof(raw));
	return VSOCK_HDR_LEN + len;
}

static uint32_t put_hdr(struct vsock *vs, const struct vq_chain *ch, struct conn *c, uint16_t op,
			uint32_t len, uint32_t flags)
{
	c->last_fwd_cnt = c->fwd_cnt;
	return put_hdr_ports(vs, ch, c->local_port, c->peer_port, op, len, flags, CONN_BUF,
			     c->fwd_cnt);
}

/* Host data into the chain: the packet's size, or 0 (P_RW cleared). */
static uint32_t host_data(struct vsock *vs, struct conn *c, const struct vq_chain *ch)
{
	uint32_t credit = peer_credit(c);
	if (!credit) {
		c->pending &= ~P_RW;
		if (c->want_credit)
			return 0; /* the guest's next packet tells */
		c->want_credit = true;
		return put_hdr(vs, ch, c, VSOCK_OP_CREDIT_REQUEST, 0, 0);
	}
	uint64_t room = MIN(ch->write_len - VSOCK_HDR_LEN, (uint64_t)VSOCK_MAX_PAYLOAD);
	uint32_t max = (uint32_t)MIN(room, (uint64_t)credit);
	struct iovec iov[MAX_IOV];
	unsigned n = max ? chain_iov(&vs->dev, ch, true, VSOCK_HDR_LEN, max, iov, MAX_IOV) : 0;
	if (!n && max) /* too scattered for one read: take the first pieces */
		for (uint32_t m = max / 2; m && !n; m /= 2)
			n = chain_iov(&vs->dev, ch, true, VSOCK_HDR_LEN, m, iov, MAX_IOV);
	if (!n) {
		c->pending &= ~P_RW; /* a header-only buffer: wait for a bigger one */
		return 0;
	}
	ssize_t r = readv(c->src.fd, iov, (int)n);
	if (r > 0) {
		c->rx_cnt += (uint32_t)r;
		vs->rx_bytes += (uint64_t)r;
		return put_hdr(vs, ch, c, VSOCK_OP_RW, (uint32_t)r, 0);
	}
	c->pending &= ~P_RW;
	if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
		c->readable = errno == EINTR;
		return 0;
	}
	if (r < 0) {
		vs->rx_read_fails++;
		log_ratelimited(LOG_INFO, "virtio-vsock: port %u: host read: %s", c->local_port,
				strerror(errno));
		conn_kill(vs, c);
		return 0;
	}
	/* EOF: the host end closed; the guest gets SHUTDOWN, then RST. */
	c->state = C_LOCAL_CLOSED;
	c->readable = false;
	set_deadline(vs, c, SHUTDOWN_MS);
	return put_hdr(vs, ch, c, VSOCK_OP_SHUTDOWN, 0, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
}

/* The next packet a connection owes the guest: its size, or 0 if none. */
static uint32_t conn_packet(struct vsock *vs, struct conn *c, const struct vq_chain *ch)
{
	if (c->pending & P_RESPONSE) {
		c->pending &= ~P_RESPONSE;
		c->state = C_ESTABLISHED;
		maybe_rw(vs, c); /* the host may have written already */
		return put_hdr(vs, ch, c, VSOCK_OP_RESPONSE, 0, 0);
	}
	if (c->pending & P_REQUEST) {
		c->pending &= ~P_REQUEST;
		set_deadline(vs, c, REQUEST_MS);
		return put_hdr(vs, ch, c, VSOCK_OP_REQUEST, 0, 0);
	}
	if (c->pending & P_RW) {
		if (c->state == C_ESTABLISHED && c->readable &&
		    !(c->peer_shut & VSOCK_SHUTDOWN_RCV)) {
			uint32_t n = host_data(vs, c, ch);
			if (n)
				return n;
		} else {
			c->pending &= ~P_RW;
		}
	}
	if (c->state != C_FREE && (c->pending & P_CREDIT_UPDATE)) {
		c->pending &= ~P_CREDIT_UPDATE;
		return put_hdr(vs, ch, c, VSOCK_OP_CREDIT_UPDATE, 0, 0);
	}
	return 0;
}

bool vsock_conn_pending(const struct vsock *vs)
{
	return vs->rst_len || vs->work_head;
}

uint32_t vsock_conn_next(struct vsock *vs, const struct vq_chain *ch)
{
	if (vs->rst_len) {
		uint32_t n = put_hdr_ports(vs, ch, vs->rst[vs->rst_head].local,
					   vs->rst[vs->rst_head].peer, VSOCK_OP_RST, 0, 0, 0, 0);
		vs->rst_head = (vs->rst_head + 1) % RST_RING;
		vs->rst_len--;
		return n;
	}
	struct conn *c = vs->work_head;
	uint32_t n = conn_packet(vs, c, ch);
	/* Round robin: a busy connection goes to the back. */
	work_del(vs, c);
	if (c->state != C_FREE && c->pending)
		work_add(vs, c);
	return n;
}

/* ---------------------------------------------------------------- host sockets */

static void handshake(struct vsock *vs, struct conn *c)
{
	for (;;) {
		char *p = c->line + c->line_len;
		size_t room = sizeof(c->line) - c->line_len;
		/* Peek, then take exactly the line: bytes after '\n' are data. */
		ssize_t n = recv(c->src.fd, p, room, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0)
			goto bad;
		char *nl = memchr(p, '\n', (size_t)n);
		size_t take = nl ? (size_t)(nl - p) + 1 : (size_t)n;
		if (read(c->src.fd, p, take) != (ssize_t)take)
			goto bad;
		c->line_len += (unsigned)take;
		if (!nl) {
			if (c->line_len == sizeof(c->line))
				goto bad;
			continue;
		}
		uint32_t port;
		if (vsock_uds_parse_connect(c->line, c->line_len, &port) < 0)
			goto bad;
		uint32_t local = vs->last_local_port;
		do {
			local = local + 1 >= (1u << 31) || local < LOCAL_PORT_FIRST
					? LOCAL_PORT_FIRST
					: local + 1;
		} while (conn_find(vs, local, port));
		vs->last_local_port = local;
		c->state = C_LOCAL_INIT;
		c->local_port = local;
		c->peer_port = port;
		c->deadline = 0;
		c->readable = true; /* data may follow the line at once */
		vs->conns_added++;
		want(vs, c, P_REQUEST);
		return;
	}
bad:
	vs->muxer_fails++;
	log_ratelimited(LOG_INFO,
			"virtio-vsock: %s: closing a client without a valid "
			"\"CONNECT <port>\" line",
			vs->uds);
	conn_close(vs, c);
}

static void conn_event(struct evloop_source *src, uint32_t events)
{
	struct conn *c = (struct conn *)src;
	struct vsock *vs = c->vs;
	pthread_mutex_lock(&vs->dev.lock);
	if (c->state == C_HANDSHAKE) {
		handshake(vs, c);
	} else if (c->state != C_FREE) {
		if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
			c->writable = true;
			flush(vs, c);
		}
		if (c->state != C_FREE && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
			c->readable = true;
			maybe_rw(vs, c);
		}
	}
	vsock_rx_pump(vs);
	pthread_mutex_unlock(&vs->dev.lock);
}

void vsock_conn_on_listen(struct evloop_source *src, uint32_t events)
{
	struct vsock *vs = (struct vsock *)((char *)src - offsetof(struct vsock, listen_src));
	pthread_mutex_lock(&vs->dev.lock);
	for (;;) {
		int fd = vsock_uds_accept(src->fd);
		if (fd == -EAGAIN || fd == -ECONNABORTED || fd == -EINTR) {
			if (fd == -EAGAIN)
				break;
			continue;
		}
		if (fd < 0) {
			/* Out of descriptors: stop listening for a tick rather than spin. */
			vs->muxer_fails++;
			log_ratelimited(LOG_WARN, "virtio-vsock: %s: accept: %s", vs->uds,
					strerror(-fd));
			evloop_del(vs->loop, src);
			vs->listening = false;
			arm_timer(vs);
			break;
		}
		struct conn *c = conn_alloc(vs);
		if (!c) {
			vs->muxer_fails++;
			log_ratelimited(LOG_WARN, "virtio-vsock: %u connections: refusing a client",
					MAX_CONNS);
			close(fd);
			continue;
		}
		if (conn_start(vs, c, fd, C_HANDSHAKE) < 0)
			continue;
		set_deadline(vs, c, HANDSHAKE_MS);
		handshake(vs, c);
	}
	vsock_rx_pump(vs);
	pthread_mutex_unlock(&vs->dev.lock);
}

void vsock_conn_on_timer(struct evloop_source *src, uint32_t events)
{
	struct vsock *vs = (struct vsock *)((char *)src - offsetof(struct vsock, timer_src));
	uint64_t ticks;
	if (read(src->fd, &ticks, sizeof(ticks)) < 0)
		return;
	pthread_mutex_lock(&vs->dev.lock);
	uint64_t now = monotonic_ns();
	bool more = false;
	for (unsigned i = 0; i < vs->nr_slots; i++) {
		struct conn *c = vs->slot[i];
		if (c->state == C_FREE || !c->deadline)
			continue;
		if (now < c->deadline) {
			more = true;
			continue;
		}
		if (c->state == C_HANDSHAKE) {
			vs->muxer_fails++;
			log_ratelimited(LOG_INFO, "virtio-vsock: %s: no CONNECT line in %d ms",
					vs->uds, HANDSHAKE_MS);
		} else if (c->state == C_LOCAL_INIT) {
			log_ratelimited(LOG_INFO,
					"virtio-vsock: guest port %u did not answer in %d ms",
					c->peer_port, REQUEST_MS);
		}
		conn_kill(vs, c);
	}
	if (!vs->listening && evloop_add(vs->loop, &vs->listen_src, EPOLLIN) == 0)
		vs->listening = true;
	if (!more && vs->listening) {
		struct itimerspec off = {0};
		timerfd_settime(src->fd, 0, &off, NULL);
		vs->timer_armed = false;
	}
	vsock_rx_pump(vs);
	pthread_mutex_unlock(&vs->dev.lock);
}

bool vsock_conn_any_guest(const struct vsock *vs)
{
	for (unsigned i = 0; i < vs->nr_slots; i++)
		if (vs->slot[i]->state > C_HANDSHAKE)
			return true;
	return false;
}

void vsock_conn_close_guest(struct vsock *vs)
{
	vs->rst_len = 0;
	for (unsigned i = 0; i < vs->nr_slots; i++)
		if (vs->slot[i]->state > C_HANDSHAKE)
			conn_close(vs, vs->slot[i]);
}

void vsock_conn_fini(struct vsock *vs)
{
	for (unsigned i = 0; i < vs->nr_slots; i++) {
		conn_close(vs, vs->slot[i]);
		free(vs->slot[i]);
	}
	vs->nr_slots = 0;
}
