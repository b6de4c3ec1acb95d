/*
 * net — exercises a virtio-net device (virtio 1.2 section 5.1) through the
 * modern virtio-pci transport: configuration (MAC, link status), transmit and
 * receive of real frames (ARP, IPv4/UDP, DHCP), mergeable receive buffers,
 * and with hostile=1 malformed transmit chains and bad receive chains.
 *
 * Command line (all optional):
 *   ip=A.B.C.D     the guest's address (default 192.0.2.2)
 *   peer=A.B.C.D   where the hello datagrams go (default 192.0.2.1)
 *   port=N         UDP port the guest sends from and listens on (default 5000)
 *   user=1         user-mode network: get the address by DHCP, ARP the gateway
 *                  (10.0.2.2), send the hellos to it
 *   mrg=0|1        negotiate VIRTIO_NET_F_MRG_RXBUF (default 1)
 *   rxbuf=N        bytes per receive buffer (default 2048, at least 16)
 *   nrx=N          receive buffers posted (default 16)
 *   hellos=N       hello datagrams sent at start (default 3)
 *   csum=1         negotiate CSUM and GUEST_CSUM: datagrams go out with a
 *                  partial UDP checksum for the device (the tap) to finish
 *                  (NEEDS_CSUM), and received ones may arrive partial
 *   hostile=1      post a readable and a too-small receive chain first, and
 *                  send malformed transmit chains after "quit"
 *   flood=N        send N extra 1000-byte datagrams after the hellos
 *   wait=MS        how long to wait for "quit" (default 30000)
 *   bench=N        instead of the exchange: send N 1000-byte datagrams to
 *                  192.0.2.99 (nobody) one at a time (one frame built, then
 *                  resubmitted), time them with the TSC,
 *                  and finish; prints "mote-test: net bench n=<N> cycles=<C>"
 *
 * Behaviour: the guest answers ARP requests for its address; every UDP
 * datagram to its port is echoed to the sender with "echo " in front, except
 * "quit", which ends the loop. A datagram whose payload starts with "big "
 * must carry bytes (i % 251) after those 4 bytes.
 *
 * Output:
 *   mote-test: net pci=<bb:dd.f> mac=<mac> status=<n> features=0x<hex> mrg=<0|1>
 *   mote-test: net dhcp ip=<a.b.c.d> server=<a.b.c.d>          (user=1)
 *   mote-test: net arp <a.b.c.d> is-at <mac>                   (user=1)
 *   mote-test: net ready
 *   mote-test: net rx udp len=<frame bytes> bufs=<n> csum=<c> from=<ip>:<port> payload=<up to 32 chars>
 *              c: none (no UDP checksum), ok (complete and right), partial (NEEDS_CSUM:
 *              completed here and then right), valid (DATA_VALID); a wrong one is a FAIL
 *   mote-test: net rx big ok len=<payload bytes> bufs=<n>
 *   mote-test: net rx tcp-syn dport=<n>
 *   mote-test: hostile <case> ok                               (hostile=1)
 *   mote-test: net ok rx=<frames> tx=<frames>
 *   mote-test: done
 */
#include "guest.h"
#include "pci.h"
#include "tsc.h"
#include "virtio.h"

#define F_CSUM		0
#define F_GUEST_CSUM	1
#define F_MAC		5
#define F_HOST_TSO4	11
#define F_MRG_RXBUF	15
#define F_STATUS	16
#define HDR		12
#define RXQ		0
#define TXQ		1
#define MAX_RX		64
#define RXBUF_MAX	4096
#define FRAME_MAX	1514

static struct virtio_dev devs[VIRTIO_MAX_DEVICES];
static struct virtio_dev *d;
static uint8_t mac[6], peer_mac[6];
static uint32_t my_ip, peer_ip;
static uint16_t port;
static int mrg;
static uint32_t rxbuf_len;
static uint8_t rxbufs[MAX_RX][RXBUF_MAX];
static int rx_of_head[VIRTQ_MAX_SIZE];
static uint8_t frame[HDR + 65536 + 14 + 5000];	/* reassembled frame, header first */
static uint8_t txbuf[HDR + 70000];
static uint64_t rx_frames, tx_frames;
static int csum_offload;
static uint8_t tx_hdr[HDR];	/* the header send_frame puts first */

static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v >> 16); put16(p + 2, (uint16_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

static uint32_t parse_ip(const char *key, uint32_t dflt)
{
	char buf[20];
	const char *s = cmdline_get(key, buf, sizeof(buf));
	uint32_t ip = 0, part = 0;
	int dots = 0;

	if (!s)
		return dflt;
	for (; *s; s++) {
		if (*s == '.') {
			ip = ip << 8 | part;
			part = 0;
			dots++;
		} else if (*s >= '0' && *s <= '9') {
			part = part * 10 + (uint32_t)(*s - '0');
		} else {
			test_fail("net: %s=%s is not an address", key, buf);
		}
	}
	if (dots != 3 || part > 255)
		test_fail("net: %s is not an address", key);
	return ip << 8 | part;
}

static const char *ipstr(uint32_t ip, char *buf)
{
	fmt_snprintf(buf, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255,
		     ip & 255);
	return buf;
}

static const char *macstr(const uint8_t *m, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 6; i++) {
		buf[3 * i] = hex[m[i] >> 4];
		buf[3 * i + 1] = hex[m[i] & 15];
		buf[3 * i + 2] = i < 5 ? ':' : 0;
	}
	return buf;
}

static uint16_t csum(const uint8_t *p, unsigned len)
{
	uint32_t s = 0;
	for (unsigned i = 0; i + 1 < len; i += 2)
		s += get16(p + i);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* ------------------------------------------------------------ transmit */

/* Sends txbuf[0, HDR + len) (header zeroed here) and waits for it. */
static void send_frame(unsigned len, const char *what)
{
	struct virtio_buf b[2] = {
		{ (uintptr_t)txbuf, HDR, 0 },
		{ (uintptr_t)txbuf + HDR, len, 0 },
	};
	memcpy(txbuf, tx_hdr, HDR);
	memset(tx_hdr, 0, HDR);
	/* Header and frame in separate descriptors, as Linux does. */
	virtq_transfer(&d->vq[TXQ], b, 2, 0, what);
	tx_frames++;
}

static uint8_t *eth(const uint8_t *dst, uint16_t type)
{
	uint8_t *f = txbuf + HDR;
	memcpy(f, dst, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, type);
	return f + 14;
}

static void send_udp(const uint8_t *dmac, uint32_t src, uint32_t dst, uint16_t sport,
		     uint16_t dport, const void *data, unsigned len)
{
	uint8_t *ip = eth(dmac, 0x0800), *udp = ip + 20;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(28 + len));
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, src);
	put32(ip + 16, dst);
	put16(ip + 10, csum(ip, 20));
	put16(udp, sport);
	put16(udp + 2, dport);
	put16(udp + 4, (uint16_t)(8 + len));
	put16(udp + 6, 0); /* no UDP checksum (IPv4 allows it) */
	memmove(udp + 8, data, len);
	if (csum_offload) {
		/* §5.1.6.2: the field holds the pseudo-header sum, the device
		 * sums from csum_start and stores at csum_start + csum_offset. */
		uint8_t ph[12];
		put32(ph, src);
		put32(ph + 4, dst);
		ph[8] = 0;
		ph[9] = 17;
		put16(ph + 10, (uint16_t)(8 + len));
		put16(udp + 6, (uint16_t)~csum(ph, 12));
		tx_hdr[0] = 1; /* NEEDS_CSUM */
		tx_hdr[6] = 34;	/* csum_start: Ethernet + IPv4 header, little-endian */
		tx_hdr[8] = 6;	/* csum_offset: the UDP checksum field */
	}
	send_frame(14 + 28 + len, "udp");
}

static void send_arp(uint16_t op, const uint8_t *tmac, uint32_t tip)
{
	uint8_t *a = eth(op == 1 ? bcast : tmac, 0x0806);
	put16(a, 1);
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, mac, 6);
	put32(a + 14, my_ip);
	memcpy(a + 18, op == 1 ? (const uint8_t *)"\0\0\0\0\0\0" : tmac, 6);
	put32(a + 24, tip);
	send_frame(14 + 28, "arp");
}

/* ------------------------------------------------------------- receive */

static void post_rx(int i)
{
	struct virtio_buf b = { (uintptr_t)rxbufs[i], rxbuf_len, 1 };
	uint16_t head = virtq_submit(&d->vq[RXQ], &b, 1);
	rx_of_head[head] = i;
	virtq_notify(&d->vq[RXQ]);
}

/* The next used receive element; its buffer index, or -1 on timeout. */
static int rx_elem(uint64_t us, uint32_t *len)
{
	struct virtq_used_elem e;
	int r = virtq_wait(&d->vq[RXQ], us, &e);
	if (r == VIRTQ_NEEDS_RESET)
		test_fail("net: receive queue needs reset");
	if (r != VIRTQ_DONE)
		return -1;
	*len = e.len;
	return rx_of_head[e.id];
}

/* Receives one frame into `frame` (header first); its length past the
 * header, 0 on timeout. *bufs: buffers it took. */
static unsigned rx_frame(uint64_t us, unsigned *bufs)
{
	uint32_t len, total = 0;
	int i;

	for (;;) {
		i = rx_elem(us, &len);
		if (i < 0)
			return 0;
		if (i >= MAX_RX) /* a hostile chain came back */
			test_fail("net: a hostile receive chain was used (len %u)", len);
		if (len >= HDR)
			break;
		test_fail("net: receive used len %u, shorter than a header", len);
	}
	if (len > rxbuf_len)
		test_fail("net: used len %u > buffer %u", len, rxbuf_len);
	memcpy(frame, rxbufs[i], len);
	total = len;
	post_rx(i);
	unsigned n = (unsigned)(frame[10] | frame[11] << 8);
	if (!mrg && n != 1)
		test_fail("net: num_buffers %u without MRG_RXBUF", n);
	if (n == 0 || n > MAX_RX)
		test_fail("net: num_buffers %u", n);
	for (unsigned k = 1; k < n; k++) {
		i = rx_elem(2000000, &len);
		if (i < 0)
			test_fail("net: buffer %u of %u missing", k + 1, n);
		if (len > rxbuf_len || total + len > sizeof(frame))
			test_fail("net: used len %u", len);
		memcpy(frame + total, rxbufs[i], len);
		total += len;
		post_rx(i);
	}
	*bufs = n;
	rx_frames++;
	return total - HDR;
}

/* -------------------------------------------------------------- frames */

/* The UDP checksum of a received datagram, checked (and first completed
 * when the header says NEEDS_CSUM): "none", "ok", "partial" or "valid". */
static const char *udp_csum_check(uint8_t *hdr_and_frame, const uint8_t *ip, const uint8_t *udp,
				  unsigned ulen)
{
	uint8_t *h = hdr_and_frame, *f = hdr_and_frame + HDR;
	uint8_t ph[12];
	const char *what = "ok";

	if (h[0] & 2)
		return "valid";
	if (h[0] & 1) {
		if (!csum_offload)
			test_fail("net: NEEDS_CSUM without GUEST_CSUM");
		unsigned start = (unsigned)(h[6] | h[7] << 8), off = (unsigned)(h[8] | h[9] << 8);
		if (start != 34 || off != 6)
			test_fail("net: partial checksum at %u+%u", start, off);
		put16(f + start + off, csum(f + start, ulen));
		what = "partial";
	} else if (!get16(udp + 6)) {
		return "none";
	}
	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = 17;
	put16(ph + 10, (uint16_t)ulen);
	/* Ones' complement sum of pseudo-header and datagram: all ones. */
	uint32_t sum = (uint16_t)~csum(ph, 12) + (uint32_t)(uint16_t)~csum(udp, ulen);
	sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff)
		test_fail("net: bad UDP checksum (%s)", what);
	return what;
}

/* 1: quit. */
static int handle(unsigned len, unsigned bufs)
{
	const uint8_t *f = frame + HDR;
	char a[16], m[18];

	if (len < 14)
		test_fail("net: %u-byte frame", len);
	uint16_t type = get16(f + 12);
	if (type == 0x0806 && len >= 42) {
		const uint8_t *arp = f + 14;
		if (get16(arp + 6) == 1 && get32(arp + 24) == my_ip)
			send_arp(2, arp + 8, get32(arp + 14));
		else if (get16(arp + 6) == 2 && get32(arp + 14) == peer_ip)
			memcpy(peer_mac, arp + 8, 6);
		return 0;
	}
	if (type != 0x0800 || len < 34)
		return 0;
	const uint8_t *ip = f + 14;
	unsigned ihl = (ip[0] & 15) * 4u, tot = get16(ip + 2);
	if (ihl < 20 || tot > len - 14 || tot < ihl + 8 || get32(ip + 16) != my_ip)
		return 0;
	if (csum(ip, ihl) != 0)
		test_fail("net: bad IP header checksum from %s", ipstr(get32(ip + 12), a));
	const uint8_t *l4 = ip + ihl;
	if (ip[9] == 6 && (l4[13] & 0x12) == 0x02) {
		test_log("net rx tcp-syn dport=%u", get16(l4 + 2));
		return 0;
	}
	if (ip[9] != 17 || get16(l4 + 2) != port)
		return 0;
	unsigned plen = get16(l4 + 4) - 8u;
	const uint8_t *p = l4 + 8;
	if (plen > tot - ihl - 8)
		test_fail("net: UDP length %u past the datagram", plen);
	const char *cs = udp_csum_check(frame, ip, l4, plen + 8);
	if (plen == 4 && !memcmp(p, "quit", 4))
		return 1;
	if (plen >= 4 && !memcmp(p, "big ", 4)) {
		for (unsigned i = 4; i < plen; i++)
			if (p[i] != i % 251)
				test_fail("net: big datagram byte %u is %u", i, p[i]);
		test_log("net rx big ok len=%u bufs=%u", plen, bufs);
	} else {
		char shown[33];
		unsigned n = plen < 32 ? plen : 32;
		for (unsigned i = 0; i < n; i++)
			shown[i] = p[i] >= 32 && p[i] < 127 ? (char)p[i] : '.';
		shown[n] = 0;
		test_log("net rx udp len=%u bufs=%u csum=%s from=%s:%u payload=%s", len, bufs, cs,
			 ipstr(get32(ip + 12), a), get16(l4), shown);
	}
	/* Echo to the sender, "echo " first. */
	static uint8_t echo[1500];
	unsigned elen = plen + 5 <= sizeof(echo) - 28 ? plen + 5 : sizeof(echo) - 28;
	memcpy(echo, "echo ", 5);
	memcpy(echo + 5, p, elen - 5);
	macstr(f + 6, m);
	send_udp(f + 6, my_ip, get32(ip + 12), port, get16(l4), echo, elen);
	return 0;
}

/* user=1: DHCP (discover → offer) and ARP for the gateway. */
static void user_setup(void)
{
	static uint8_t dhcp[300];
	char a[16], b[16], m[18];
	unsigned len, bufs;

	memset(dhcp, 0, sizeof(dhcp));
	dhcp[0] = 1;		/* BOOTREQUEST */
	dhcp[1] = 1;
	dhcp[2] = 6;
	put32(dhcp + 4, 0x6d6f7465); /* xid */
	memcpy(dhcp + 28, mac, 6);
	put32(dhcp + 236, 0x63825363); /* magic cookie */
	dhcp[240] = 53; dhcp[241] = 1; dhcp[242] = 1; /* DHCPDISCOVER */
	dhcp[243] = 255;
	send_udp(bcast, 0, 0xffffffff, 68, 67, dhcp, sizeof(dhcp));
	uint64_t end = tsc_deadline_us(10000000);
	for (uint32_t offered = 0; !offered;) {
		if (rdtsc() > end)
			test_fail("net: no DHCP offer");
		len = rx_frame(1000000, &bufs);
		const uint8_t *f = frame + HDR;
		if (len < 14 + 28 + 240 || get16(f + 12) != 0x0800 || f[14 + 9] != 17 ||
		    get16(f + 14 + 20 + 2) != 68)
			continue;
		const uint8_t *bp = f + 14 + 28;
		if (bp[0] != 2 || get32(bp + 4) != 0x6d6f7465)
			continue;
		offered = my_ip = get32(bp + 16);
		test_log("net dhcp ip=%s server=%s", ipstr(my_ip, a), ipstr(get32(f + 14 + 12), b));
	}
	send_arp(1, bcast, peer_ip);
	end = tsc_deadline_us(10000000);
	while (!(peer_mac[0] | peer_mac[1] | peer_mac[2] | peer_mac[3] | peer_mac[4] | peer_mac[5])) {
		if (rdtsc() > end)
			test_fail("net: no ARP reply from %s", ipstr(peer_ip, a));
		len = rx_frame(1000000, &bufs);
		if (len)
			handle(len, bufs);
	}
	test_log("net arp %s is-at %s", ipstr(peer_ip, a), macstr(peer_mac, m));
}

/* ------------------------------------------------------------- hostile */

/* Submits a transmit chain that must come back dropped (len 0) while the
 * device keeps working. */
static void tx_hostile(const char *name, const struct virtio_buf *b, unsigned n)
{
	struct virtq_used_elem e;
	virtq_submit(&d->vq[TXQ], b, n);
	virtq_notify(&d->vq[TXQ]);
	int r = virtq_wait(&d->vq[TXQ], 2000000, &e);
	if (r != VIRTQ_DONE)
		test_fail("hostile %s: no completion (%d), status 0x%x", name, r, virtio_status(d));
	if (e.len != 0)
		test_fail("hostile %s: used len %u", name, e.len);
	test_log("hostile %s ok", name);
}

static void run_tx_hostile(void)
{
	struct virtio_buf b[2];
	uint8_t *h = txbuf, *f = txbuf + HDR;

	memset(txbuf, 0, HDR + 64);
	memcpy(f, bcast, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, 0x88b5); /* local experimental ethertype */
	b[0] = (struct virtio_buf){ (uintptr_t)txbuf, 8, 0 };
	tx_hostile("tx-short-header", b, 1);
	b[0] = (struct virtio_buf){ (uintptr_t)txbuf, HDR + 10, 0 };
	tx_hostile("tx-short-frame", b, 1);
	b[0] = (struct virtio_buf){ (uintptr_t)txbuf, HDR + 65536 + 14 + 1, 0 };
	tx_hostile("tx-oversized", b, 1);
	b[0] = (struct virtio_buf){ (uintptr_t)txbuf, HDR, 0 };
	b[1] = (struct virtio_buf){ (uintptr_t)f, 60, 1 };
	tx_hostile("tx-writable", b, 2);
	b[0] = (struct virtio_buf){ (uintptr_t)txbuf, HDR + 60, 0 };
	h[1] = 1; /* GSO TCPv4 (not negotiated by this driver) */
	put16(h + 4, 1448);
	tx_hostile("tx-gso-not-negotiated", b, 1);
	h[1] = 3; /* UFO: never offered */
	tx_hostile("tx-gso-udp", b, 1);
	h[1] = 0;
	h[0] = 0x40; /* unknown flag */
	tx_hostile("tx-bad-flags", b, 1);
	h[0] = 1; /* NEEDS_CSUM, field far past the frame */
	put16(h + 6, 60000);
	put16(h + 8, 6);
	tx_hostile("tx-csum-past-end", b, 1);
	memset(txbuf, 0, HDR);
	/* The device still sends a good frame after all that. */
	static const char after[] = "after-hostile";
	send_udp(peer_mac, my_ip, peer_ip, port, port, after, sizeof(after) - 1);
	test_log("hostile tx-still-works ok");
}

/* Posts receive chains the device must refuse: one with a readable buffer,
 * one too small for a header. They come back with len 0. */
static uint8_t bad_rx[2][64];
static void post_rx_hostile(void)
{
	struct virtio_buf rd = { (uintptr_t)bad_rx[0], 64, 0 };
	struct virtio_buf tiny = { (uintptr_t)bad_rx[1], 8, 1 };
	rx_of_head[virtq_submit(&d->vq[RXQ], &rd, 1)] = MAX_RX;
	rx_of_head[virtq_submit(&d->vq[RXQ], &tiny, 1)] = MAX_RX + 1;
}

/* Frames to fill them: ARP requests for the peer, whose replies land there. */
static void expect_rx_hostile(void)
{
	uint32_t len;
	for (int k = 0; k < 2; k++) {
		int i = -1;
		for (int tries = 0; i < 0 && tries < 20; tries++) {
			send_arp(1, bcast, peer_ip);
			i = rx_elem(1000000, &len);
		}
		if (i != MAX_RX + k || len != 0)
			test_fail("hostile rx: element %d: buffer %d len %u", k, i, len);
		test_log("hostile %s ok", k ? "rx-too-small" : "rx-readable");
	}
}

void guest_main(void)
{
	char pci[8], m[18], a[16];
	uint64_t want = VIRTIO_BIT(F_MAC) | VIRTIO_BIT(F_STATUS);
	int user = cmdline_u64("user", 0) != 0, hostile = cmdline_u64("hostile", 0) != 0;
	uint64_t nrx = cmdline_u64("nrx", 16), hellos = cmdline_u64("hellos", 3);
	uint64_t flood = cmdline_u64("flood", 0);

	mrg = cmdline_u64("mrg", 1) != 0;
	rxbuf_len = (uint32_t)cmdline_u64("rxbuf", 2048);
	port = (uint16_t)cmdline_u64("port", 5000);
	my_ip = parse_ip("ip", user ? 0x0a00020f : 0xc0000202);
	peer_ip = parse_ip("peer", user ? 0x0a000202 : 0xc0000201);
	if (rxbuf_len < 16 || rxbuf_len > RXBUF_MAX || !nrx || nrx > MAX_RX)
		test_fail("net: rxbuf 16-%u, nrx 1-%u", RXBUF_MAX, MAX_RX);
	if (!mrg && rxbuf_len < HDR + FRAME_MAX)
		test_fail("net: without mrg, rxbuf must hold %u bytes", HDR + FRAME_MAX);
	if (mrg)
		want |= VIRTIO_BIT(F_MRG_RXBUF);
	if (cmdline_u64("csum", 0))
		want |= VIRTIO_BIT(F_CSUM) | VIRTIO_BIT(F_GUEST_CSUM);
	if (!virtio_probe(VIRTIO_ID_NET, devs, VIRTIO_MAX_DEVICES))
		test_fail("net: no virtio-net device on PCI bus 0");
	d = &devs[0];
	virtio_init(d, want, 2, 64);
	if (!(d->features & VIRTIO_BIT(F_MAC)) || !(d->features & VIRTIO_BIT(F_STATUS)))
		test_fail("net: MAC/STATUS not offered (0x%lx)", d->offered);
	for (int i = 0; i < 6; i++)
		mac[i] = virtio_cfg8(d, (uint32_t)i);
	if ((want & VIRTIO_BIT(F_CSUM)) && !(d->features & VIRTIO_BIT(F_CSUM)))
		test_fail("net: checksum offload not offered (0x%lx)", d->offered);
	csum_offload = (d->features & VIRTIO_BIT(F_CSUM)) != 0;
	test_log("net pci=%s mac=%s status=%u features=0x%lx mrg=%d", pci_name(&d->pci, pci),
		 macstr(mac, m), virtio_cfg16(d, 6), d->features, mrg);
	if (hostile)
		post_rx_hostile();
	for (int i = 0; i < (int)nrx; i++)
		post_rx(i);
	if (hostile)
		expect_rx_hostile();
	if (user)
		user_setup();
	else
		memcpy(peer_mac, bcast, 6);
	for (uint64_t i = 0; i < hellos; i++) {
		char hello[32];
		int n = fmt_snprintf(hello, sizeof(hello), "hello %lu from %s", i, ipstr(my_ip, a));
		send_udp(peer_mac, my_ip, peer_ip, port, port, hello, (unsigned)n);
	}
	static uint8_t fl[1000];
	for (uint64_t i = 0; i < flood; i++) {
		memset(fl, (int)(i & 0xff), sizeof(fl));
		send_udp(peer_mac, my_ip, peer_ip, port, port, fl, sizeof(fl));
	}
	uint64_t bench = cmdline_u64("bench", 0);
	if (bench) {
		/* One frame built, then sent again and again: the guest's own
		 * (slow, on PVM: ring-0 code is interpreted) work stays small. */
		static uint8_t bp[1000];
		uint64_t t0 = rdtsc();
		send_udp(bcast, my_ip, 0xc0000263, port, 9, bp, sizeof(bp));
		for (uint64_t i = 1; i < bench; i++)
			send_frame(14 + 28 + sizeof(bp), "bench");
		uint64_t cycles = rdtsc() - t0;
		test_log("net bench n=%lu cycles=%lu", bench, cycles);
		virtio_reset(d);
		test_done();
	}
	test_log("net ready");
	uint64_t end = tsc_deadline_us(cmdline_u64("wait", 30000) * 1000);
	for (;;) {
		unsigned bufs, len;
		if (rdtsc() > end)
			test_fail("net: no quit datagram in time");
		len = rx_frame(200000, &bufs);
		if (len && handle(len, bufs))
			break;
	}
	if (hostile)
		run_tx_hostile();
	if (virtio_status(d) & VIRTIO_STATUS_NEEDS_RESET)
		test_fail("net: device needs reset at the end");
	test_log("net ok rx=%lu tx=%lu", rx_frames, tx_frames);
	virtio_reset(d);
	test_done();
}
