/* The state stream's writer and reader; see stream.h. */
#include "snap/stream.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static const char *const names[SNAP_ID_MAX] = {
	[SNAP_HEADER] = "header",   [SNAP_CONFIG] = "config", [SNAP_VCPU] = "vcpu",
	[SNAP_PIC] = "pic",         [SNAP_IOAPIC] = "ioapic", [SNAP_PIT] = "pit",
	[SNAP_CLOCK] = "clock",     [SNAP_SERIAL] = "serial", [SNAP_I8042] = "i8042",
	[SNAP_PM] = "pm",           [SNAP_PCI_BUS] = "pci-bus", [SNAP_PCI_DEV] = "pci",
	[SNAP_VIRTIO] = "virtio",   [SNAP_MEMORY] = "memory", [SNAP_END] = "end",
	[SNAP_NET] = "net",
};

const char *snap_id_name(unsigned id)
{
	return id < SNAP_ID_MAX && names[id] ? names[id] : "unknown";
}

/* Bitwise-reflected CRC32C, polynomial 0x82F63B78: SSE4.2's crc32
 * instruction where the CPU has it (every live-migration page passes
 * through here: a table takes ~5 ms per 4 MiB, the instruction well under
 * 1), else one table. */
static uint32_t crc_table[256];
static bool crc_hw;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
#if defined(__x86_64__)
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *p,
							     size_t len)
{
	uint64_t c = crc;
	for (; len >= 8; p += 8, len -= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	crc = (uint32_t)c;
	while (len--)
		crc = __builtin_ia32_crc32qi(crc, *p++);
	return crc;
}
#endif

uint32_t snap_crc32c(uint32_t crc, const void *buf, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, crc_init);
	const uint8_t *p = buf;
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_sse42(crc, p, len);
#endif
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ------------------------------------------------------------ writer */

static uint8_t *grow(struct snap_writer *w, size_t n)
{
	if (w->err)
		return NULL;
	if (n > w->cap - w->len) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap - w->len < n)
			cap *= 2;
		uint8_t *b = realloc(w->buf, cap);
		if (!b) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->buf = b;
		w->cap = cap;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

void snap_put_bytes(struct snap_writer *w, const void *src, size_t n)
{
	uint8_t *p = grow(w, n);
	if (p && n)
		memcpy(p, src, n);
}

void snap_put_u8(struct snap_writer *w, uint8_t v) { snap_put_bytes(w, &v, 1); }

void snap_put_u16(struct snap_writer *w, uint16_t v)
{
	uint8_t *p = grow(w, 2);
	if (p)
		put_le16(p, v);
}

void snap_put_u32(struct snap_writer *w, uint32_t v)
{
	uint8_t *p = grow(w, 4);
	if (p)
		put_le32(p, v);
}

void snap_put_u64(struct snap_writer *w, uint64_t v)
{
	uint8_t *p = grow(w, 8);
	if (p)
		put_le64(p, v);
}

void snap_begin(struct snap_writer *w, enum snap_id id, uint16_t version, uint32_t index)
{
	w->sec_start = w->len;
	snap_put_u32(w, SNAP_SECTION_MAGIC);
	snap_put_u16(w, version);
	snap_put_u16(w, (uint16_t)id);
	snap_put_u32(w, index);
	snap_put_u32(w, 0); /* length, filled by snap_end */
}

void snap_end(struct snap_writer *w)
{
	if (w->err || w->sec_start == SIZE_MAX)
		return;
	size_t payload = w->len - w->sec_start - SNAP_SECTION_HDR;
	if (payload > SNAP_MAX_SECTION) {
		w->err = -EFBIG;
		return;
	}
	put_le32(w->buf + w->sec_start + 12, (uint32_t)payload);
	uint32_t crc = snap_crc32c(0, w->buf + w->sec_start, w->len - w->sec_start);
	snap_put_u32(w, crc);
	w->sec_start = SIZE_MAX;
}

void snap_writer_init(struct snap_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->sec_start = SIZE_MAX;
	snap_begin(w, SNAP_HEADER, 1, 0);
	snap_put_bytes(w, SNAP_FILE_MAGIC, 8);
	snap_put_u32(w, SNAP_STREAM_VERSION);
	snap_end(w);
}

void snap_writer_fini(struct snap_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

int snap_writer_finish(struct snap_writer *w)
{
	snap_begin(w, SNAP_END, 1, 0);
	snap_end(w);
	return w->err;
}

/* ------------------------------------------------------------ reader */

static void fail(struct snap_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct snap_reader *r, const char *fmt, ...)
{
	if (r->failed)
		return;
	r->failed = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
}

/* Parses the section header at off; 0 with *s filled and *next past its
 * checksum, or -EBADMSG. */
static int parse_at(struct snap_reader *r, size_t off, struct snap_section *s, size_t *next)
{
	size_t left = r->len - off;
	if (left < SNAP_SECTION_HDR + 4) {
		fail(r, "snapshot: truncated at byte %zu (a section header needs %u bytes, %zu left)",
		     off, SNAP_SECTION_HDR + 4, left);
		return -EBADMSG;
	}
	const uint8_t *h = r->buf + off;
	memset(s, 0, sizeof(*s));
	s->r = r;
	s->version = get_le16(h + 4);
	s->id = get_le16(h + 6);
	s->index = get_le32(h + 8);
	s->len = get_le32(h + 12);
	if (get_le32(h) != SNAP_SECTION_MAGIC) {
		fail(r, "snapshot: bad section magic %#x at byte %zu (not a mote snapshot, or "
			"corrupted)", get_le32(h), off);
		return -EBADMSG;
	}
	if (s->id == 0 || s->id >= SNAP_ID_MAX) {
		fail(r, "snapshot: unknown section id %u at byte %zu", s->id, off);
		return -EBADMSG;
	}
	if (s->len > left - SNAP_SECTION_HDR - 4) {
		fail(r, "snapshot: section %s[%u]: length %u runs past the end of the file "
			"(truncated?)", snap_id_name(s->id), s->index, s->len);
		return -EBADMSG;
	}
	uint32_t want = get_le32(h + SNAP_SECTION_HDR + s->len);
	uint32_t got = snap_crc32c(0, h, SNAP_SECTION_HDR + (size_t)s->len);
	if (want != got) {
		fail(r, "snapshot: section %s[%u]: checksum mismatch (stored %#010x, computed "
			"%#010x): the file is corrupted", snap_id_name(s->id), s->index, want, got);
		return -EBADMSG;
	}
	s->p = h + SNAP_SECTION_HDR;
	*next = off + SNAP_SECTION_HDR + s->len + 4;
	return 0;
}

int snap_reader_init(struct snap_reader *r, const void *buf, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->buf = buf;
	r->len = len;
	struct snap_section s;
	size_t off = 0, next;
	/* Say "not a snapshot" rather than "bad section magic at byte 0". */
	if (len < 4 || get_le32(buf) != SNAP_SECTION_MAGIC) {
		fail(r, "snapshot: bad magic: not a mote snapshot");
		return -EBADMSG;
	}
	if (parse_at(r, 0, &s, &next))
		return -EBADMSG;
	if (s.id != SNAP_HEADER || s.len < 12 || memcmp(s.p, SNAP_FILE_MAGIC, 8)) {
		fail(r, "snapshot: bad magic: not a mote snapshot");
		return -EBADMSG;
	}
	uint32_t version = get_le32(s.p + 8);
	if (version != SNAP_STREAM_VERSION) {
		fail(r, "snapshot: header[0]: version: stream version %u, this mote reads %u",
		     version, SNAP_STREAM_VERSION);
		return -EBADMSG;
	}
	/* Walk every section: checksums, order, duplicates, the end marker. */
	unsigned count = 0;
	for (off = next;; off = next) {
		if (parse_at(r, off, &s, &next))
			return -EBADMSG;
		if (s.id == SNAP_HEADER) {
			fail(r, "snapshot: a second header section at byte %zu", off);
			return -EBADMSG;
		}
		if (s.id == SNAP_END)
			break;
		if (++count > 100000) {
			fail(r, "snapshot: too many sections");
			return -EBADMSG;
		}
	}
	if (next != len) {
		fail(r, "snapshot: %zu bytes after the end section", len - next);
		return -EBADMSG;
	}
	/* Duplicates: quadratic, but streams have tens of sections. */
	size_t a = 0;
	struct snap_section x, y;
	parse_at(r, a, &x, &a);
	while (parse_at(r, a, &x, &a) == 0 && x.id != SNAP_END) {
		size_t b = a;
		while (parse_at(r, b, &y, &b) == 0 && y.id != SNAP_END) {
			if (y.id == x.id && y.index == x.index) {
				fail(r, "snapshot: section %s[%u] appears twice", snap_id_name(x.id),
				     x.index);
				return -EBADMSG;
			}
		}
	}
	return 0;
}

static int lookup(struct snap_reader *r, enum snap_id id, uint32_t index, struct snap_section *s)
{
	size_t off = 0, next;
	while (off < r->len && parse_at(r, off, s, &next) == 0) {
		if (s->id == (unsigned)id && s->index == index)
			return 0;
		if (s->id == SNAP_END)
			break;
		off = next;
	}
	return -ENOENT;
}

bool snap_has(struct snap_reader *r, enum snap_id id, uint32_t index)
{
	struct snap_section s;
	return !r->failed && lookup(r, id, index, &s) == 0;
}

int snap_find(struct snap_reader *r, enum snap_id id, uint32_t index, unsigned version,
	      struct snap_section *s)
{
	if (r->failed)
		return -EBADMSG;
	if (lookup(r, id, index, s) == 0) {
		if (s->version == version)
			return 0;
		fail(r, "snapshot: %s[%u]: version: section version %u, this mote reads %u",
		     snap_id_name(id), index, s->version, version);
		return -EBADMSG;
	}
	memset(s, 0, sizeof(*s));
	s->r = r;
	s->id = id;
	s->index = index;
	fail(r, "snapshot: section %s[%u] is missing", snap_id_name(id), index);
	return -ENOENT;
}

static const uint8_t *take(struct snap_section *s, const char *field, size_t n)
{
	if (s->r->failed)
		return NULL;
	if (!s->p || n > s->len - s->pos) {
		fail(s->r, "snapshot: %s[%u]: %s: truncated (section has %u bytes)",
		     snap_id_name(s->id), s->index, field, s->len);
		return NULL;
	}
	const uint8_t *p = s->p + s->pos;
	s->pos += (uint32_t)n;
	return p;
}

uint8_t snap_u8(struct snap_section *s, const char *field)
{
	const uint8_t *p = take(s, field, 1);
	return p ? *p : 0;
}

uint16_t snap_u16(struct snap_section *s, const char *field)
{
	const uint8_t *p = take(s, field, 2);
	return p ? get_le16(p) : 0;
}

uint32_t snap_u32(struct snap_section *s, const char *field)
{
	const uint8_t *p = take(s, field, 4);
	return p ? get_le32(p) : 0;
}

uint64_t snap_u64(struct snap_section *s, const char *field)
{
	const uint8_t *p = take(s, field, 8);
	return p ? get_le64(p) : 0;
}

bool snap_bool(struct snap_section *s, const char *field)
{
	uint8_t v = snap_u8(s, field);
	if (v > 1)
		snap_fail(s, field, "%u is not a boolean", v);
	return v == 1;
}

void snap_bytes(struct snap_section *s, const char *field, void *dst, size_t n)
{
	const uint8_t *p = take(s, field, n);
	if (p)
		memcpy(dst, p, n);
	else
		memset(dst, 0, n);
}

int snap_fail(struct snap_section *s, const char *field, const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail(s->r, "snapshot: %s[%u]: %s: %s", snap_id_name(s->id), s->index, field, msg);
	return -EBADMSG;
}

int snap_done(struct snap_section *s)
{
	if (!s->r->failed && s->pos != s->len)
		snap_fail(s, "length", "%u bytes left over (a newer format?)", s->len - s->pos);
	return snap_status(s->r);
}
