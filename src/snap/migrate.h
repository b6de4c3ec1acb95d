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
 * Disks: with copy_disks the source also copies every disk's image, the
 * same way: all blocks holding data first, then the blocks the guest wrote
 * meanwhile (backend/mirror.h's blkmap, marked when a write completes), the
 * last ones with the devices drained; the destination writes them into new
 * files (`--migrate-disk ID=PATH`) and makes them durable before it loads
 * the state. Without it, the disks must be at the same paths on both sides.
 *
 * Wire: messages of {u32 magic "MMIG", u32 type, u64 length} + payload +
 * u32 CRC32C of both. CONFIG and STATE carry state streams (stream.h);
 * DISKS (always right after CONFIG) the disks being copied: u32 count, then
 * {u32 disk index, u64 size} each; PAGES a u64 offset into the flat memory
 * image and whole pages; DISK {u32 disk index, u32 0, u64 offset} and whole
 * sectors; ACK is empty; NAK carries the destination's one-line reason. The destination
 * checks every message like a snapshot file: magic, type, lengths, page
 * offsets inside guest memory, checksums. */
#ifndef MOTE_SNAP_MIGRATE_H
#define MOTE_SNAP_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "snap/snapshot.h"

#define MIGRATE_MAX_ROUNDS 30
#define MIGRATE_DEFAULT_DOWNTIME_MS 300

struct migrate_opts {
	uint64_t downtime_ms;    /* target for the stop-and-copy phase */
	uint64_t bandwidth_mbps; /* 0: unlimited */
	bool copy_disks;         /* send the disks' contents too (no shared storage) */
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
 * snap_file_parse). 0 or -errno after logging (f is then closed). */
int migrate_recv_config(int fd, struct snap_file *f, struct vm_config *cfg);
/* ... which also reads DISKS: each disk the source copies must have a
 * --migrate-disk mapping in cfg and the reverse; its new file is created
 * (it must not exist) at the source's size and becomes the disk's path,
 * with vm_disk.incoming set. migrate_discard_disks removes those files
 * when the migration fails. */
void migrate_discard_disks(const struct vm_config *cfg);
/* Destination, into a VM built from that config (not started): pages, then
 * the state, validated and loaded; answers ACK, or NAK with the reason.
 * 0 or -errno after logging. */
int migrate_recv(const struct snap_vm *vm, int fd);

#endif
