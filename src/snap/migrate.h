/* Live migration over TCP (pre-copy). The source sends the machine's config,
 * then all of guest memory while the guest runs, then rounds of the pages
 * dirtied meanwhile (KVM's dirty log and mote's device writes) until what is
 * left would take no longer than the downtime target at the measured rate;
 * then it pauses the VM, drains the devices, sends the last dirty pages and
 * the state stream, and waits for the destination's verdict. Only an ACK
 * (sent after the destination validated and loaded everything) ends the
 * source; anything else — the destination gone, the network down, the
 * stream refused, no convergence within MIGRATE_MAX_ROUNDS — leaves the
 * source running (the caller resumes it).
 *
 * Wire: messages of {u32 magic "MMIG", u32 type, u64 length} + payload +
 * u32 CRC32C of both. CONFIG and STATE carry state streams (stream.h);
 * PAGES a u64 offset into the flat memory image and whole pages; ACK is
 * empty; NAK carries the destination's one-line reason. The destination
 * checks every message like a snapshot file: magic, type, lengths, page
 * offsets inside guest memory, checksums. */
#ifndef MOTE_SNAP_MIGRATE_H
#define MOTE_SNAP_MIGRATE_H

#include <stdint.h>

#include "snap/snapshot.h"

#define MIGRATE_MAX_ROUNDS 30
#define MIGRATE_DEFAULT_DOWNTIME_MS 300

struct migrate_opts {
	uint64_t downtime_ms;    /* target for the stop-and-copy phase */
	uint64_t bandwidth_mbps; /* 0: unlimited */
};

/* "tcp:HOST:PORT" (an IPv4 address) -> a connected (connect) or accepted
 * (listen) socket. 0 or -errno after logging one line. */
int migrate_connect(const char *dest, int *fd);
int migrate_accept(const char *addr, int *fd);

/* Source. stop_world pauses the VM and drains its devices (0 or -errno).
 * 0 when the destination acknowledged: the caller ends the VM; otherwise
 * -errno after logging why, and the caller resumes the VM. */
int migrate_send(const struct snap_vm *vm, int fd, const struct migrate_opts *o,
		 int (*stop_world)(void *opaque), void *opaque);

/* Destination: the CONFIG message into f, parsed into cfg (as
 * snap_file_parse). 0 or -errno after logging. */
int migrate_recv_config(int fd, struct snap_file *f, struct vm_config *cfg);
/* Destination, into a VM built from that config (not started): pages, then
 * the state, validated and loaded; answers ACK, or NAK with the reason.
 * 0 or -errno after logging. */
int migrate_recv(const struct snap_vm *vm, int fd);

#endif
