/* Small helpers shared by every layer. */
#ifndef MOTE_UTIL_H
#define MOTE_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct stat;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]) + \
	0 * sizeof(char[1 - 2 * __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0]))]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((__typeof__(x))(a) - 1))
#define KiB(x) ((uint64_t)(x) << 10)
#define MiB(x) ((uint64_t)(x) << 20)
#define GiB(x) ((uint64_t)(x) << 30)

/* Little-endian stores and loads into byte buffers (guest structures). */
static inline void put_le16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}
static inline void put_le32(void *p, uint32_t v)
{
	put_le16(p, (uint16_t)v);
	put_le16((uint8_t *)p + 2, (uint16_t)(v >> 16));
}
static inline void put_le64(void *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}
static inline uint16_t get_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t get_le32(const void *p)
{
	return get_le16(p) | (uint32_t)get_le16((const uint8_t *)p + 2) << 16;
}
static inline uint64_t get_le64(const void *p)
{
	return get_le32(p) | (uint64_t)get_le32((const uint8_t *)p + 4) << 32;
}

/* Writes all of buf, retrying on EINTR and short writes. 0 or -errno. */
int write_full(int fd, const void *buf, size_t len);
/* Reads exactly len bytes at off; -EIO on a short file. 0 or -errno. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);
/* Opens a file the user named without ever blocking in open(): with
 * O_NONBLOCK a FIFO nobody writes to (or a device) cannot hold the caller;
 * the flag is cleared again once the file is open (O_CLOEXEC is added).
 * With O_CREAT a new file is 0600. *st receives the open file's fstat,
 * for the caller to check its type.
 * Returns the fd or -errno. */
int open_noblock(const char *path, int flags, struct stat *st);
/* Opens a log, metrics or serial output for appending (a new file is
 * created 0600) without ever blocking. A FIFO is opened read-write, as
 * Firecracker does, so that the open succeeds before anyone reads it and
 * readers may come and go; the descriptor stays O_NONBLOCK, so a full FIFO
 * loses what does not fit instead of stalling its writer. Returns the fd
 * or -errno. */
int open_append(const char *path);
/* Monotonic clock in nanoseconds. */
uint64_t monotonic_ns(void);

#endif
