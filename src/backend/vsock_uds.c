/* Unix-socket helpers for vsock's host side; see vsock_uds.h. */
#include "backend/vsock_uds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int vsock_uds_parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char kw[] = "connect";
	size_t i = 0, k = sizeof(kw) - 1;
	if (len == 0 || len > VSOCK_UDS_LINE_MAX || line[len - 1] != '\n')
		return -EINVAL;
	len--; /* the '\n' */
	if (len < k)
		return -EINVAL;
	for (; i < k; i++) {
		char c = line[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != kw[i])
			return -EINVAL;
	}
	size_t blanks = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t')) {
		i++;
		blanks++;
	}
	if (!blanks || i == len || line[i] < '0' || line[i] > '9')
		return -EINVAL;
	uint64_t v = 0;
	while (i < len && line[i] >= '0' && line[i] <= '9') {
		v = v * 10 + (uint64_t)(line[i] - '0');
		if (v > UINT32_MAX)
			return -EINVAL;
		i++;
	}
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
		i++;
	if (i != len)
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

static int make_addr(struct sockaddr_un *a, const char *path, const char *suffix)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path, sizeof(a->sun_path), "%s%s", path, suffix);
	if (n < 0 || (size_t)n >= sizeof(a->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int vsock_uds_listen(const char *path)
{
	struct sockaddr_un a;
	int err = make_addr(&a, path, "");
	if (err)
		return err;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int vsock_uds_connect(const char *path, uint32_t port)
{
	struct sockaddr_un a;
	char suffix[16];
	snprintf(suffix, sizeof(suffix), "_%u", port);
	int err = make_addr(&a, path, suffix);
	if (err)
		return err;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A Unix stream connect completes at once or fails; with O_NONBLOCK a
	 * full backlog is EAGAIN instead of a wait on the event loop. */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int vsock_uds_accept(int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	return fd < 0 ? -errno : fd;
}
