/* Live migration over TCP (pre-copy). The source sends the machine's config,
 * then all of guest memory while the guest runs, then rounds of the pages
 * dirtied meanwhile (KVM's dirty log and mote's device writes) until what is
 * left would take no longer than the downtime target at the measured rate;
 * then it has the VM paused and its devices drained (stop_world), sends the
 * last dirty pages and the state stream, and waits for the destination's
 * verdict. Only an ACK (sent after the destination validated and loaded
 * everything) ends the source; anything else — the destination gone, the
 * network down, the stream refused, no convergence (the downtime rule,
 * below) — leaves the source running (the caller resumes it).
 *
 * The downtime rule: the source switches over only when the pages left
 * would go out within downtime_ms at the rate measured so far. It gives up
 * after MIGRATE_MAX_ROUNDS rounds, or sooner when the pages left have not
 * fallen below their lowest for MIGRATE_STALL_ROUNDS rounds in a row (the
 * guest dirties memory as fast as it can be sent: more rounds cannot help).
 *
 * migrate_send runs on its own thread (snap/migjob.c) while the vCPUs and
 * the devices go on: it reads guest memory and the dirty logs only (KVM's,
 * and guest_mem's device-write bitmap, both safe to take from here), and
 * touches device state only inside stop_world, when nothing else runs.
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
 * sectors; ACK is empty; NAK (destination) and CANCEL (source, when it gives
 * up) carry a one-line reason. The destination checks every message like a
 * snapshot file: magic, type, lengths, page and block offsets inside guest
 * memory and the disk, checksums. A new kind of payload is a new type
 * number: the framing, checksum and length checks are the same for every
 * type. */
#ifndef MOTE_SNAP_MIGRATE_H
#define MOTE_SNAP_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "snap/snapshot.h"

#define MIGRATE_MAX_ROUNDS 30
#define MIGRATE_STALL_ROUNDS 8
#define MIGRATE_DEFAULT_DOWNTIME_MS 300
#define MIGRATE_MAX_DOWNTIME_MS 3600000ull
#define MIGRATE_MAX_BANDWIDTH_MBPS 1000000ull

struct migrate_opts {
	uint64_t downtime_ms;    /* target for the stop-and-copy phase */
	uint64_t bandwidth_mbps; /* 0: unlimited */
	bool copy_disks;         /* send the disks' contents too (no shared storage) */
};

enum migrate_state { MIGRATE_IDLE, MIGRATE_RUNNING, MIGRATE_COMPLETED, MIGRATE_FAILED };
enum migrate_phase { MIGRATE_CONNECT, MIGRATE_PRECOPY, MIGRATE_STOP_AND_COPY };

/* Progress, as GET /migrate reports it. Rates in bytes per second. */
struct migrate_status {
	enum migrate_state state;
	enum migrate_phase phase;
	char destination[64];
	struct migrate_opts opts;
	unsigned round;             /* 0: the first pass over all of memory */
	uint64_t bytes_sent;        /* page bytes */
	uint64_t pages_left;        /* dirty at the end of the last round */
	uint64_t dirty_rate;        /* pages dirtied in the last round / its length */
	uint64_t send_rate;         /* bytes sent / time, so far */
	uint64_t expected_downtime_ms;
	double downtime_ms;         /* measured: world stopped -> destination's ACK */
	double total_ms;            /* start -> end (so far, while running) */
	char reason[256];           /* why it failed */
};

/* What migrate_send needs from its caller. */
struct migrate_hooks {
	/* Pauses the VM and drains its devices (0 or -errno); the world stays
	 * stopped until migrate_send returns. */
	int (*stop_world)(void *opaque);
	/* Called after every message of pages and every round with the
	 * progress so far (st->state is MIGRATE_RUNNING). */
	void (*report)(void *opaque, const struct migrate_status *st);
	/* True when the migration must end now (mote is stopping). */
	bool (*cancelled)(void *opaque);
	void *opaque;
};

static inline const char *migrate_state_name(enum migrate_state s)
{
	static const char *const n[] = { "idle", "running", "completed", "failed" };
	return (unsigned)s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

static inline const char *migrate_phase_name(enum migrate_phase p)
{
	static const char *const n[] = { "connect", "precopy", "stop-and-copy" };
	return (unsigned)p < sizeof(n) / sizeof(n[0]) ? n[p] : "?";
}

/* "tcp:HOST:PORT" (an IPv4 address) -> a connected (connect) or accepted
 * (listen) socket. 0 or -errno after logging one line. */
int migrate_connect(const char *dest, int *fd);
/* Checks dest's form only. 0 or -EINVAL after logging. */
int migrate_check_dest(const char *dest);
int migrate_accept(const char *addr, int *fd);

/* Source, on the migration thread. st is filled as it goes (st->opts and
 * st->destination by the caller). 0 when the destination acknowledged: the
 * caller ends the VM, st->downtime_ms says how long the world was stopped;
 * otherwise -errno after logging why (-ETIMEDOUT: no convergence) with
 * st->reason set, and the caller resumes the VM. */
int migrate_send(const struct snap_vm *vm, int fd, struct migrate_status *st,
		 const struct migrate_hooks *h);

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
