/* Internal to virtio-vsock, shared by the device (vsock.c: queues, packet
 * checks, virtio ops) and its connections (vsock_conn.c: the state machine,
 * host sockets, flow control); see vsock.c for what the device does.
 * Every function here runs on the event loop with dev.lock held. */
#ifndef MOTE_VIRTIO_VSOCK_CONN_H
#define MOTE_VIRTIO_VSOCK_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/vsock_uds.h"
#include "util/evloop.h"
#include "virtio/vsock.h"

#define QUEUE_SIZE 256
#define RXQ	   0
#define TXQ	   1
#define EVQ	   2
/* Connections and clients still handshaking. Each holds a descriptor (and
 * up to CONN_BUF of buffered data): 512 keeps a guest from exhausting the
 * usual 1024-descriptor limit the rest of mote needs (Firecracker: 1023). */
#define MAX_CONNS	 512
#define CONN_BUF	 65536u /* buf_alloc advertised to the guest */
#define CREDIT_THRESHOLD 4096u	/* update the guest when it sees less free space */
#define RST_RING	 256	/* RSTs owed for packets of no connection */
#define HANDSHAKE_MS	 5000
#define REQUEST_MS	 2000
#define SHUTDOWN_MS	 2000
#define TICK_MS		 100
#define LOCAL_PORT_FIRST (1u << 30)
#define MAX_IOV		 16
#define CONFIG_SIZE	 8

enum cstate { C_FREE, C_HANDSHAKE, C_LOCAL_INIT, C_PEER_INIT, C_ESTABLISHED, C_LOCAL_CLOSED };

/* Packets a connection owes the guest (rx), in the order they are sent. */
#define P_RESPONSE	1u
#define P_REQUEST	2u
#define P_RW		4u
#define P_CREDIT_UPDATE 8u

struct conn {
	struct evloop_source src; /* first: the event callback's argument */
	struct vsock *vs;
	enum cstate state;
	uint32_t local_port, peer_port;
	unsigned pending;	  /* P_* */
	struct conn *prev, *next; /* on the rx work list while queued */
	bool queued;
	bool readable; /* the host socket may have data (edge seen) */
	bool writable;
	bool want_credit;			       /* CREDIT_REQUEST sent, no answer yet */
	bool wr_shut;				       /* shutdown(SHUT_WR) done */
	uint8_t peer_shut;			       /* VSOCK_SHUTDOWN_* the guest sent */
	uint32_t peer_buf_alloc, peer_fwd_cnt, rx_cnt; /* host -> guest credit */
	uint32_t fwd_cnt, last_fwd_cnt;		       /* guest -> host credit */
	uint8_t *buf;				       /* CONN_BUF bytes, allocated on first need */
	uint32_t buf_head, buf_len;
	uint64_t deadline; /* monotonic ns; 0: none */
	char line[VSOCK_UDS_LINE_MAX];
	unsigned line_len;
};

struct vsock {
	struct virtio_dev dev;
	struct evloop *loop;
	uint32_t cid;
	char *uds;
	struct evloop_source listen_src, timer_src, wake_src;
	bool listening, timer_armed;
	/* Slots are allocated once and reused, never freed before destroy: an
	 * event already fetched for a closed connection then finds a free (or
	 * reused) slot and does nothing harmful, instead of freed memory. */
	struct conn *slot[MAX_CONNS];
	unsigned nr_slots;
	struct conn *work_head, *work_tail;
	struct {
		uint32_t local, peer;
	} rst[RST_RING];
	unsigned rst_head, rst_len;
	uint32_t last_local_port;
	bool rx_held; /* rx_chain was popped but not used yet */
	struct vq_chain rx_chain, tx_chain;
	/* Firecracker's vsock metric names. */
	uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes, rx_kicks, tx_kicks;
	uint64_t conns_added, conns_killed, conns_removed;
	uint64_t rx_read_fails, tx_write_fails, rx_fails, tx_fails, muxer_fails;
	uint64_t invalid_pkts, rst_dropped;
};

/* vsock.c */
bool vsock_ready(const struct vsock *vs);
/* Fills the guest's rx buffers with what connections owe it. */
void vsock_rx_pump(struct vsock *vs);
/* Counts and logs (rate-limited) a malformed guest packet. */
void vsock_bad_packet(struct vsock *vs, const struct vsock_hdr *h, const char *why);

/* vsock_conn.c */
/* A guest packet that passed vsock_hdr_check(). */
void vsock_conn_packet(struct vsock *vs, const struct vsock_hdr *h, const struct vq_chain *ch);
/* A malformed packet that deserves an RST: ends its connection, if any. */
void vsock_conn_refuse(struct vsock *vs, const struct vsock_hdr *h);
/* Whether some packet is owed to the guest; the next one into ch (its size),
 * or 0 when the connection asked had nothing after all. */
bool vsock_conn_pending(const struct vsock *vs);
uint32_t vsock_conn_next(struct vsock *vs, const struct vq_chain *ch);
/* Device reset: whether guest connections exist; closing them all (host
 * clients still handshaking stay). */
bool vsock_conn_any_guest(const struct vsock *vs);
void vsock_conn_close_guest(struct vsock *vs);
/* Closes everything and frees the slots (destroy). */
void vsock_conn_fini(struct vsock *vs);
/* Event-loop sources: the listening socket and the deadline timer. */
void vsock_conn_on_listen(struct evloop_source *src, uint32_t events);
void vsock_conn_on_timer(struct evloop_source *src, uint32_t events);

#endif
