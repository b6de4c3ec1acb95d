/* The state stream: how snapshots (and, later, migration) carry a VM's
 * state (DESIGN.md rule 5). A stream is a sequence of sections:
 *
 *   header  (16 bytes, little-endian)
 *     u32 magic    SNAP_SECTION_MAGIC ("MSEC")
 *     u16 version  the section's own format version
 *     u16 id       enum snap_id: what the section describes
 *     u32 index    which one (vCPU number, PCI slot, ...)
 *     u32 length   payload bytes
 *   payload (length bytes: explicit little-endian fields, never raw structs
 *            or host pointers)
 *   u32 crc32c   over header and payload
 *
 * The first section is SNAP_HEADER (the file magic "MOTESNAP" and the stream
 * version), the last SNAP_END; nothing may follow it. A (id, index) pair
 * appears at most once.
 *
 * The reader treats the stream as untrusted: snap_reader_init() checks the
 * whole framing (magics, lengths, checksums, order, duplicates) before any
 * field is read, and every getter is bounds-checked. The first error is kept
 * as one message, "snapshot: <section>[<index>]: <field>: <what>", and makes
 * every later getter return 0, so a restore can read a whole section and
 * check failure once. Nothing here allocates per field or logs. */
#ifndef MOTE_SNAP_STREAM_H
#define MOTE_SNAP_STREAM_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_FILE_MAGIC "MOTESNAP"
#define SNAP_SECTION_MAGIC 0x4345534du /* "MSEC" */
#define SNAP_STREAM_VERSION 1
#define SNAP_SECTION_HDR 16
#define SNAP_MAX_SECTION (16u << 20) /* no section is anywhere near this */

enum snap_id {
	SNAP_HEADER = 1,
	SNAP_CONFIG,  /* the machine: memory, vCPUs, devices present */
	SNAP_VCPU,    /* index: vCPU number */
	SNAP_PIC,     /* index: 0 master, 1 slave */
	SNAP_IOAPIC,
	SNAP_PIT,
	SNAP_CLOCK,   /* kvmclock */
	SNAP_SERIAL,
	SNAP_I8042,
	SNAP_PM,
	SNAP_PCI_BUS,
	SNAP_PCI_DEV, /* index: slot: configuration space (+ MSI-X for virtio) */
	SNAP_VIRTIO,  /* index: slot: transport and device state */
	SNAP_MEMORY,  /* guest memory layout and how it was saved */
	SNAP_END,
	SNAP_NET,     /* index: network interface: its host side (config streams) */
	SNAP_ID_MAX,
};

/* The name of a section id for messages ("vcpu", "virtio", ...). */
const char *snap_id_name(unsigned id);

/* CRC32C (Castagnoli), as iSCSI and ext4 use it. */
uint32_t snap_crc32c(uint32_t crc, const void *buf, size_t len);

/* ------------------------------------------------------------ writer */

struct snap_writer {
	uint8_t *buf;
	size_t len, cap;
	size_t sec_start;  /* offset of the open section's header, or SIZE_MAX */
	int err;           /* -ENOMEM once an allocation failed */
};

/* Starts a stream (writes the SNAP_HEADER section). */
void snap_writer_init(struct snap_writer *w);
void snap_writer_fini(struct snap_writer *w);
void snap_begin(struct snap_writer *w, enum snap_id id, uint16_t version, uint32_t index);
void snap_end(struct snap_writer *w);
void snap_put_u8(struct snap_writer *w, uint8_t v);
void snap_put_u16(struct snap_writer *w, uint16_t v);
void snap_put_u32(struct snap_writer *w, uint32_t v);
void snap_put_u64(struct snap_writer *w, uint64_t v);
void snap_put_bytes(struct snap_writer *w, const void *p, size_t n);
/* Appends SNAP_END. 0, or -ENOMEM when any write failed. */
int snap_writer_finish(struct snap_writer *w);

/* ------------------------------------------------------------ reader */

#define SNAP_ERR_LEN 256

struct snap_reader {
	const uint8_t *buf;
	size_t len;
	bool failed;
	char err[SNAP_ERR_LEN];
};

struct snap_section {
	struct snap_reader *r;
	unsigned id, version;
	uint32_t index;
	const uint8_t *p;
	uint32_t len, pos;
};

/* Checks the framing of the whole stream in buf (which must outlive the
 * reader). 0, or -EBADMSG with r->err set. */
int snap_reader_init(struct snap_reader *r, const void *buf, size_t len);

/* Finds section (id, index) of format `version`. 0; -ENOENT when it is
 * missing, -EBADMSG when its version differs (r->err says which, r->failed
 * is set). */
int snap_find(struct snap_reader *r, enum snap_id id, uint32_t index, unsigned version,
	      struct snap_section *s);
/* Whether section (id, index) is present (no error when it is not). */
bool snap_has(struct snap_reader *r, enum snap_id id, uint32_t index);

/* Field getters: 0 after any error (a truncated section names the field). */
uint8_t snap_u8(struct snap_section *s, const char *field);
uint16_t snap_u16(struct snap_section *s, const char *field);
uint32_t snap_u32(struct snap_section *s, const char *field);
uint64_t snap_u64(struct snap_section *s, const char *field);
bool snap_bool(struct snap_section *s, const char *field); /* a u8 that must be 0 or 1 */
void snap_bytes(struct snap_section *s, const char *field, void *dst, size_t n);
/* Records the first error: "snapshot: <section>[<index>]: <field>: <fmt...>". */
int snap_fail(struct snap_section *s, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Checks every byte of the section was read. 0 or -EBADMSG (and r->failed). */
int snap_done(struct snap_section *s);
/* 0 or -EBADMSG: whether any error was recorded. */
static inline int snap_status(const struct snap_reader *r) { return r->failed ? -EBADMSG : 0; }

#endif
