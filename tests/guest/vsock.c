/*
 * vsock — a tiny polled virtio-vsock driver (virtio 1.2 section 5.10) that
 * talks to the host through the monitor's device: stream connections both
 * ways, with credit-based flow control checked on the monitor's side; with
 * hostile=1 also malformed packets.
 *
 * Command line (all optional):
 *   hport=N     host port the guest connects to (default 1234): the host
 *               answers one line to the line it gets; hport+1 must have no
 *               listener; hport+2 (hostile=1) accepts and never reads
 *   lport=N     guest port the host connects to (default 5252); 0: skip
 *   hostile=1   the malformed-packet cases, then the normal exchange again
 *
 * Output:
 *   mote-test: vsock cid=<cid> pci=<bb:dd.f>
 *   mote-test: vsock reply <the host's line>
 *   mote-test: vsock connect ok
 *   mote-test: vsock refused ok
 *   mote-test: vsock listening port=<lport>
 *   mote-test: vsock echoed bytes=<n>        (host closed; all echoed back)
 *   mote-test: hostile <case> ok             (hostile=1, per case; "flood" sends
 *                                            500 packets with a wrong source cid)
 *   mote-test: vsock stalled-peer ok bytes=<n>  (hostile=1: sent to hport+2 until
 *                                            the monitor gave no more credit)
 *   mote-test: vsock ok
 *   mote-test: done
 *
 * The guest advertises a small receive buffer (GUEST_BUF) and fails if the
 * monitor ever sends more than that credit allows; it sends data only within
 * the monitor's credit (asking with CREDIT_REQUEST when it runs out), except
 * in the credit-overrun case.
 */
#include "guest.h"
#include "pci.h"
#include "virtio.h"

#define HDR		44
#define HOST_CID	2
#define OP_REQUEST	1
#define OP_RESPONSE	2
#define OP_RST		3
#define OP_SHUTDOWN	4
#define OP_RW		5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define SHUT_BOTH	3
#define RXN		16
#define RXBUF		(HDR + 4096)
#define GUEST_BUF	8192
#define WAIT_US		20000000ULL

struct hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

static struct virtio_dev devs[VIRTIO_MAX_DEVICES];
static struct virtio_dev *d;
static uint64_t cid;
static uint8_t rxbuf[RXN][RXBUF] __attribute__((aligned(64)));
static uint8_t rx_of_head[VIRTQ_MAX_SIZE];
static uint8_t evbuf[4][8];
static uint8_t txhdr[HDR];
static uint8_t payload[65536];
static uint8_t data[4096];		/* the last packet's payload */
static uint8_t ring[GUEST_BUF];		/* echo: received, not yet sent back */

/* One connection's state, as the spec's credit accounting needs it. */
struct conn {
	uint32_t local, peer;		/* guest port, host port */
	uint32_t rx_total, fwd_cnt;	/* received / consumed (ours) */
	uint32_t tx_cnt;		/* sent */
	uint32_t peer_alloc, peer_fwd;	/* the monitor's credit fields */
	int asked;			/* CREDIT_REQUEST outstanding */
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static void encode(uint8_t *p, const struct hdr *h)
{
	put64(p, h->src_cid);
	put64(p + 8, h->dst_cid);
	put32(p + 16, h->src_port);
	put32(p + 20, h->dst_port);
	put32(p + 24, h->len);
	put16(p + 28, h->type);
	put16(p + 30, h->op);
	put32(p + 32, h->flags);
	put32(p + 36, h->buf_alloc);
	put32(p + 40, h->fwd_cnt);
}

static void post_rx(unsigned i)
{
	struct virtio_buf b = { (uintptr_t)rxbuf[i], RXBUF, 1 };
	uint16_t head = virtq_submit(&d->vq[0], &b, 1);

	rx_of_head[head] = (uint8_t)i;
}

/* Sends a raw packet: hdr bytes (hdr_len of them) and an optional payload. */
static void send_raw(const struct hdr *h, uint32_t hdr_len, const void *p, uint32_t len)
{
	struct virtio_buf b[2] = { { (uintptr_t)txhdr, hdr_len, 0 }, { (uintptr_t)p, len, 0 } };

	encode(txhdr, h);
	virtq_transfer(&d->vq[1], b, len ? 2 : 1, 0, "vsock tx");
}

static void send_op(struct conn *c, uint16_t op, uint32_t flags, const void *p, uint32_t len)
{
	struct hdr h = { cid, HOST_CID, c->local, c->peer, len, 1, op, flags, GUEST_BUF,
			 c->fwd_cnt };

	send_raw(&h, HDR, p, len);
	if (op == OP_RW)
		c->tx_cnt += len;
}

/* The next packet from the monitor (payload into data[]); 0, or -1 on timeout. */
static int recv_pkt(struct hdr *h, uint64_t timeout_us)
{
	struct virtq_used_elem e;
	const uint8_t *p;
	unsigned i;
	int r = virtq_wait(&d->vq[0], timeout_us, &e);

	if (r == VIRTQ_TIMEOUT)
		return -1;
	if (r != VIRTQ_DONE)
		test_fail("vsock: rx: device needs reset (status 0x%x)", virtio_status(d));
	i = rx_of_head[e.id];
	p = rxbuf[i];
	*h = (struct hdr){ get64(p), get64(p + 8), get32(p + 16), get32(p + 20), get32(p + 24),
			   get16(p + 28), get16(p + 30), get32(p + 32), get32(p + 36),
			   get32(p + 40) };
	if (e.len < HDR || h->len > RXBUF - HDR || e.len != HDR + h->len)
		test_fail("vsock: rx used len %u for a packet of len %u", e.len, h->len);
	if (h->src_cid != HOST_CID || h->dst_cid != cid || h->type != 1)
		test_fail("vsock: rx packet from cid %lu to %lu type %u", h->src_cid, h->dst_cid,
			  h->type);
	memcpy(data, p + HDR, h->len);
	post_rx(i);
	virtq_notify(&d->vq[0]);
	return 0;
}

static void must_recv(struct hdr *h, const char *what)
{
	if (recv_pkt(h, WAIT_US))
		test_fail("vsock: %s: nothing from the device in %llu s", what, WAIT_US / 1000000);
}

static int for_conn(const struct hdr *h, const struct conn *c)
{
	return h->src_port == c->peer && h->dst_port == c->local;
}

/* A second open connection whose packets may arrive in between (its credit
 * updates): accounted and skipped by the loops that wait for another one. */
static struct conn *side;

static void account(struct conn *c, const struct hdr *h);

static int for_side(const struct hdr *h)
{
	if (!side || !for_conn(h, side))
		return 0;
	account(side, h);
	if (h->op != OP_CREDIT_UPDATE)
		test_fail("vsock: op %u on the other connection", h->op);
	return 1;
}

/* Accounts a packet of c: credit fields, and the flow-control check. */
static void account(struct conn *c, const struct hdr *h)
{
	c->peer_alloc = h->buf_alloc;
	c->peer_fwd = h->fwd_cnt;
	if (h->op == OP_RW) {
		c->rx_total += h->len;
		if (c->rx_total - c->fwd_cnt > GUEST_BUF)
			test_fail("vsock: the device sent %u bytes beyond the guest's credit of %u",
				  c->rx_total - c->fwd_cnt - GUEST_BUF, GUEST_BUF);
	}
	if (h->op == OP_CREDIT_REQUEST)
		send_op(c, OP_CREDIT_UPDATE, 0, 0, 0);
}

static uint32_t credit(const struct conn *c)
{
	uint32_t used = c->tx_cnt - c->peer_fwd;

	return used >= c->peer_alloc ? 0 : c->peer_alloc - used;
}

/* Guest-initiated: 1 connected, 0 refused (RST). */
static int connect(struct conn *c, uint32_t local, uint32_t port)
{
	struct hdr h;

	*c = (struct conn){ .local = local, .peer = port };
	send_op(c, OP_REQUEST, 0, 0, 0);
	for (;;) {
		must_recv(&h, "connect");
		if (for_side(&h))
			continue;
		if (!for_conn(&h, c))
			test_fail("vsock: connect: op %u for port %u -> %u", h.op, h.src_port,
				  h.dst_port);
		if (h.op == OP_RST)
			return 0;
		if (h.op != OP_RESPONSE)
			test_fail("vsock: connect: op %u instead of RESPONSE", h.op);
		account(c, &h);
		return 1;
	}
}

/* Closes c from the guest side and waits for the monitor's RST. */
static void close_conn(struct conn *c)
{
	struct hdr h;

	send_op(c, OP_SHUTDOWN, SHUT_BOTH, 0, 0);
	do {
		must_recv(&h, "close");
		if (c != side && for_side(&h))
			continue;
		if (!for_conn(&h, c))
			test_fail("vsock: close: packet for port %u -> %u", h.src_port, h.dst_port);
		account(c, &h);
	} while (h.op != OP_RST);
}

static void talk_to_host(uint32_t hport, uint32_t local)
{
	static const char msg[] = "hello from the guest\n";
	char line[128];
	unsigned n = 0;
	struct conn c;
	struct hdr h;

	if (!connect(&c, local, hport))
		test_fail("vsock: host port %u refused the connection", hport);
	send_op(&c, OP_RW, 0, msg, sizeof(msg) - 1);
	while (!n || line[n - 1] != '\n') {
		must_recv(&h, "reply");
		if (for_side(&h))
			continue;
		if (!for_conn(&h, &c))
			test_fail("vsock: reply: packet for port %u -> %u", h.src_port, h.dst_port);
		account(&c, &h);
		if (h.op == OP_RST || h.op == OP_SHUTDOWN)
			test_fail("vsock: the host closed before replying (op %u)", h.op);
		if (h.op != OP_RW)
			continue;
		if (h.len > sizeof(line) - 1 - n)
			test_fail("vsock: reply longer than %zu bytes", sizeof(line) - 1);
		memcpy(line + n, data, h.len);
		n += h.len;
		c.fwd_cnt += h.len;
	}
	line[n - 1] = 0;
	test_log("vsock reply %s", line);
	close_conn(&c);
	test_log("vsock connect ok");
}

static void refused(uint32_t port, uint32_t local)
{
	struct conn c;

	if (connect(&c, local, port))
		test_fail("vsock: port %u accepted a connection nobody listens for", port);
}

/* Host-initiated: waits for the REQUEST, then echoes until the host closes. */
static void echo(uint32_t lport)
{
	uint32_t head = 0, len = 0, total = 0;
	struct conn c;
	struct hdr h;
	int closing = 0;

	test_log("vsock listening port=%u", lport);
	for (;;) {
		if (recv_pkt(&h, 60000000ULL))
			test_fail("vsock: no connection to port %u within 60 s", lport);
		if (h.op == OP_REQUEST && h.dst_port == lport)
			break;
		test_fail("vsock: op %u for port %u while listening", h.op, h.dst_port);
	}
	c = (struct conn){ .local = lport, .peer = h.src_port };
	account(&c, &h);
	send_op(&c, OP_RESPONSE, 0, 0, 0);
	for (;;) {
		/* Send back what the credit allows. */
		while (len && credit(&c)) {
			uint32_t n = len, cr = credit(&c);

			if (n > cr)
				n = cr;
			if (n > GUEST_BUF - head)
				n = GUEST_BUF - head;
			if (n > 4096)
				n = 4096;
			c.fwd_cnt += n; /* consumed: the header below carries it */
			send_op(&c, OP_RW, 0, ring + head, n);
			head = (head + n) % GUEST_BUF;
			len -= n;
			total += n;
			c.asked = 0;
		}
		if (len && !c.asked) {
			send_op(&c, OP_CREDIT_REQUEST, 0, 0, 0);
			c.asked = 1;
		}
		if (closing && !len)
			break;
		must_recv(&h, "echo");
		if (!for_conn(&h, &c))
			test_fail("vsock: echo: packet for port %u -> %u", h.src_port, h.dst_port);
		account(&c, &h);
		if (h.op == OP_RST && !closing)
			test_fail("vsock: echo: the device reset the connection");
		if (h.op == OP_RST)
			break; /* it timed out our close: done */
		if (h.op == OP_SHUTDOWN)
			closing = 1;
		if (h.op == OP_RW) {
			uint32_t tail = (head + len) % GUEST_BUF, first = h.len;

			if (first > GUEST_BUF - tail)
				first = GUEST_BUF - tail;
			memcpy(ring + tail, data, first);
			memcpy(ring, data + first, h.len - first);
			len += h.len;
		}
		if (closing && len && !credit(&c))
			break; /* the host is gone: what it did not take is lost */
	}
	send_op(&c, OP_RST, 0, 0, 0);
	test_log("vsock echoed bytes=%u", total);
}

/* hostile=1 ----------------------------------------------------------------- */

/*
 * Sends a bad packet, then a probe (a REQUEST to the port without a listener,
 * from a fresh guest port). The device handles tx in order, so whatever it
 * answers to the bad packet arrives before the probe's RST: want_rst says
 * whether an RST for (bad.dst_port -> bad.src_port) must be among it.
 */
static void hostile(const char *name, const struct hdr *bad, uint32_t hdr_len, uint32_t len,
		    int want_rst, uint32_t probe_port, uint32_t *next_local)
{
	struct conn probe = { .local = (*next_local)++, .peer = probe_port };
	int got_rst = 0;
	struct hdr h;

	send_raw(bad, hdr_len, payload, len);
	send_op(&probe, OP_REQUEST, 0, 0, 0);
	for (;;) {
		must_recv(&h, name);
		if (for_conn(&h, &probe) && h.op == OP_RST)
			break;
		if (h.op == OP_RST && h.src_port == bad->dst_port && h.dst_port == bad->src_port &&
		    !got_rst) {
			got_rst = 1;
			continue;
		}
		test_fail("hostile %s: unexpected op %u for port %u -> %u", name, h.op, h.src_port,
			  h.dst_port);
	}
	if (got_rst != want_rst)
		test_fail("hostile %s: %s", name, want_rst ? "no RST" : "an RST for a dropped packet");
	if (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET)
		test_fail("hostile %s: the device needs reset", name);
	test_log("hostile %s ok", name);
}

/* Many dropped packets: the monitor's log of them must stay rate-limited. */
static void flood(const struct hdr *base, uint32_t probe_port, uint32_t *next_local)
{
	struct hdr h = *base;
	unsigned i;

	h.src_cid = cid + 1;
	h.op = OP_RW;
	for (i = 0; i < 499; i++)
		send_raw(&h, HDR, payload, 0);
	hostile("flood", &h, HDR, 0, 0, probe_port, next_local);
}

/*
 * A host peer that never reads: the guest sends within its credit until the
 * monitor, asked with CREDIT_REQUEST, has no more to give (its buffer and the
 * socket's are full). Another connection must still work meanwhile; closing
 * the stalled one ends in an RST once the monitor gives up draining it.
 */
static void stalled_peer(uint32_t stall_port, uint32_t hport, uint32_t *local)
{
	struct conn c;
	struct hdr h;
	uint32_t sent = 0;

	if (!connect(&c, (*local)++, stall_port))
		test_fail("vsock stalled-peer: port %u refused", stall_port);
	for (;;) {
		uint32_t n = credit(&c);

		if (n > 4096)
			n = 4096;
		if (n) {
			send_op(&c, OP_RW, 0, payload, n);
			sent += n;
			continue;
		}
		send_op(&c, OP_CREDIT_REQUEST, 0, 0, 0);
		do {
			must_recv(&h, "stalled-peer credit");
			if (!for_conn(&h, &c))
				test_fail("vsock stalled-peer: packet for %u -> %u", h.src_port, h.dst_port);
			account(&c, &h);
			if (h.op == OP_RST)
				test_fail("vsock stalled-peer: reset after %u bytes", sent);
		} while (h.op != OP_CREDIT_UPDATE);
		if (!credit(&c))
			break;
		if (sent > 64 * 1024 * 1024)
			test_fail("vsock stalled-peer: 64 MiB taken for a peer that never reads");
	}
	side = &c; /* a credit update may still be on its way */
	talk_to_host(hport, (*local)++);
	close_conn(&c);
	side = NULL;
	test_log("vsock stalled-peer ok bytes=%u", sent);
}

/* RW packets far beyond the credit, to a host peer that never reads. */
static void credit_overrun(uint32_t port, uint32_t none, uint32_t local)
{
	struct conn c, probe = { .local = local + 1000, .peer = none };
	struct hdr h = { 0 };
	unsigned i, rsts = 0;

	if (!connect(&c, local, port))
		test_fail("hostile credit-overrun: port %u refused", port);
	/* 4 MiB: more than any host socket buffer plus the 64 KiB of credit */
	for (i = 0; i < 64 && !rsts; i++) {
		send_op(&c, OP_RW, 0, payload, sizeof(payload));
		while (recv_pkt(&h, 0) == 0) {
			if (!for_conn(&h, &c))
				test_fail("hostile credit-overrun: packet for %u -> %u", h.src_port,
					  h.dst_port);
			rsts += h.op == OP_RST;
		}
	}
	/* Later RW packets may each draw an RST too ("no such connection"):
	 * the probe's RST comes after all of them. */
	send_op(&probe, OP_REQUEST, 0, 0, 0);
	for (;;) {
		must_recv(&h, "credit-overrun");
		if (for_conn(&h, &probe) && h.op == OP_RST)
			break;
		if (!for_conn(&h, &c) || h.op != OP_RST)
			test_fail("hostile credit-overrun: op %u for %u -> %u", h.op, h.src_port,
				  h.dst_port);
		rsts++;
	}
	if (!rsts)
		test_fail("hostile credit-overrun: 4 MiB sent on 64 KiB of credit and no RST");
	test_log("hostile credit-overrun ok");
}

/* A device reset with a connection open: afterwards it serves again. */
static void reset_open(uint32_t hport, uint32_t local)
{
	struct conn c;
	uint16_t qs = d->vq[0].size;
	unsigned i;

	if (!connect(&c, local, hport))
		test_fail("hostile reset-open: port %u refused", hport);
	virtio_init(d, 0, 3, qs);
	for (i = 0; i < RXN; i++)
		post_rx(i);
	virtq_notify(&d->vq[0]);
	test_log("hostile reset-open ok");
}

static void run_hostile(uint32_t hport, uint32_t *local)
{
	uint32_t none = hport + 1;
	struct hdr h = { cid, HOST_CID, 0, 7000, 0, 1, OP_RW, 0, GUEST_BUF, 0 };

	h.src_port = 40000;
	hostile("short-header", &h, 10, 0, 0, none, local);
	h.src_cid = cid + 1;
	hostile("wrong-src-cid", &h, HDR, 0, 0, none, local);
	h.src_cid = cid;
	h.dst_cid = 7;
	hostile("wrong-dst-cid", &h, HDR, 0, 0, none, local);
	h.dst_cid = HOST_CID;
	h.type = 2;
	h.op = OP_REQUEST;
	hostile("bad-type", &h, HDR, 0, 1, none, local);
	h.type = 1;
	h.op = 99;
	hostile("unknown-op", &h, HDR, 0, 1, none, local);
	h.op = 0;
	hostile("op-zero", &h, HDR, 0, 1, none, local);
	h.op = OP_RW;
	h.len = 1000;
	hostile("len-beyond-buffer", &h, HDR, 10, 1, none, local);
	h.len = 70000;
	hostile("len-above-64k", &h, HDR, 65536, 1, none, local);
	h.len = 5;
	hostile("rw-no-connection", &h, HDR, 5, 1, none, local);
	h.len = 0;
	h.op = OP_RST;
	hostile("rst-no-connection", &h, HDR, 0, 0, none, local);
	flood(&h, none, local);
	h.op = OP_RESPONSE;
	hostile("response-no-connection", &h, HDR, 0, 1, none, local);
	stalled_peer(hport + 2, hport, local);
	credit_overrun(hport + 2, none, (*local)++);
	reset_open(hport, (*local)++);
}

void guest_main(void)
{
	uint32_t hport = (uint32_t)cmdline_u64("hport", 1234);
	uint32_t lport = (uint32_t)cmdline_u64("lport", 5252);
	uint32_t local = 3000;
	unsigned i;
	char pci[8];

	if (!virtio_probe(VIRTIO_ID_VSOCK, devs, VIRTIO_MAX_DEVICES))
		test_fail("vsock: no virtio-vsock device on PCI bus 0");
	d = &devs[0];
	virtio_init(d, 0, 3, 64);
	if (d->device_cfg_len < 8)
		test_fail("vsock: device configuration is %u bytes", d->device_cfg_len);
	cid = virtio_cfg64(d, 0);
	test_log("vsock cid=%lu pci=%s", cid, pci_name(&d->pci, pci));
	for (i = 0; i < RXN; i++)
		post_rx(i);
	for (i = 0; i < 4; i++) {
		struct virtio_buf b = { (uintptr_t)evbuf[i], sizeof(evbuf[i]), 1 };

		virtq_submit(&d->vq[2], &b, 1);
	}
	virtq_notify(&d->vq[2]);
	virtq_notify(&d->vq[0]);
	for (i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7);

	talk_to_host(hport, local++);
	refused(hport + 1, local++);
	test_log("vsock refused ok");
	if (lport)
		echo(lport);
	if (cmdline_u64("hostile", 0)) {
		run_hostile(hport, &local);
		talk_to_host(hport, local++);
	}
	virtio_reset(d);
	test_log("vsock ok");
	test_done();
}
