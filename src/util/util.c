/* Small helpers shared by every layer; see util.h. */
#include "util/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int write_full(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int open_noblock(const char *path, int flags, struct stat *st)
{
	int fd = open(path, flags | O_NONBLOCK | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0 || fcntl(fd, F_SETFL, flags & (O_APPEND | O_NOATIME)) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int open_append(const char *path)
{
	int flags = O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK;
	int fd = open(path, O_RDWR | flags, 0600);
	if (fd < 0 && errno == EACCES) /* a file we may only write to */
		fd = open(path, O_WRONLY | flags, 0600);
	return fd < 0 ? -errno : fd;
}

uint64_t monotonic_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
