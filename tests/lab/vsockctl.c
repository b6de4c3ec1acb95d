/* vsockctl: both ends of the lab's vsock check, where there is no socat or
 * Python (busybox has no vsock). Built static by tests/integration/test_linux.py;
 * the host side runs in L1, the guest side inside the Linux guest (which
 * reads this binary from a raw disk, see guest/init's mode_vsock).
 *
 *   vsockctl serve PATH              host: listen on the Unix socket PATH
 *                                    (mote's uds_PORT), answer one line
 *                                    with "host got: LINE", wait for EOF
 *   vsockctl hconnect UDS PORT MSG   host: connect to mote's UDS, "CONNECT
 *                                    PORT", then send MSG and print the
 *                                    answer; retried until the guest listens
 *   vsockctl gconnect PORT MSG       guest: AF_VSOCK to the host (CID 2)
 *                                    PORT, send MSG, print the answer
 *   vsockctl glisten PORT            guest: accept one AF_VSOCK connection
 *                                    on PORT, answer its line with "guest
 *                                    got: LINE", print "served LINE"
 * Exit status 0 on success, 1 on failure (with a message on stderr). */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "vsockctl: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Reads one line (without '\n') into buf; its length, or -1 at EOF first. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;
	while (n < size - 1) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		buf[n++] = c;
	}
	buf[n] = 0;
	return (int)n;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t w = write(fd, s, len);
		if (w <= 0)
			return -1;
		s += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Answers one line with PREFIX LINE, then waits for the peer's EOF. */
static int answer(int c, const char *prefix, char *line, size_t size)
{
	char out[600];
	if (read_line(c, line, size) < 0)
		return fail("no line from the peer");
	int n = snprintf(out, sizeof(out), "%s%s\n", prefix, line);
	if (write_all(c, out, (size_t)n))
		return fail("write");
	while (read(c, out, sizeof(out)) > 0)
		;
	return 0;
}

static int serve(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4))
		return fail(path);
	int c = accept(l, NULL, NULL);
	if (c < 0)
		return fail("accept");
	char line[256];
	return answer(c, "host got: ", line, sizeof(line));
}

static int hconnect(const char *uds, const char *port, const char *msg)
{
	char line[256], out[300];
	for (int tries = 0; tries < 3000; tries++) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", uds);
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (c < 0)
			return fail("socket");
		int n = snprintf(out, sizeof(out), "CONNECT %s\n", port);
		if (connect(c, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		    write_all(c, out, (size_t)n) == 0 && read_line(c, line, sizeof(line)) > 0) {
			if (strncmp(line, "OK ", 3)) {
				fprintf(stderr, "vsockctl: mote answered '%s'\n", line);
				return 1;
			}
			n = snprintf(out, sizeof(out), "%s\n", msg);
			if (write_all(c, out, (size_t)n) || read_line(c, line, sizeof(line)) < 0)
				return fail("exchange");
			printf("%s\n", line);
			close(c);
			return 0;
		}
		close(c); /* mote not up yet, or the guest not listening yet */
		struct timespec ts = { 0, 100 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "vsockctl: the guest never accepted on port %s\n", port);
	return 1;
}

static int vsock_socket(void)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		fail("AF_VSOCK socket");
	return s;
}

static int gconnect(const char *port, const char *msg)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST,
				 .svm_port = (unsigned)atoi(port) };
	char line[256], out[300];
	int s = vsock_socket();
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)))
		return fail("vsock connect");
	int n = snprintf(out, sizeof(out), "%s\n", msg);
	if (write_all(s, out, (size_t)n) || read_line(s, line, sizeof(line)) < 0)
		return fail("vsock exchange");
	printf("%s\n", line);
	close(s);
	return 0;
}

static int glisten(const char *port)
{
	struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				 .svm_port = (unsigned)atoi(port) };
	int l = vsock_socket();
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 4))
		return fail("vsock listen");
	int c = accept(l, NULL, NULL);
	if (c < 0)
		return fail("vsock accept");
	char line[256];
	if (answer(c, "guest got: ", line, sizeof(line)))
		return 1;
	printf("served %s\n", line);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "serve"))
		return serve(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "hconnect"))
		return hconnect(argv[2], argv[3], argv[4]);
	if (argc == 4 && !strcmp(argv[1], "gconnect"))
		return gconnect(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "glisten"))
		return glisten(argv[2]);
	fprintf(stderr, "usage: vsockctl serve PATH | hconnect UDS PORT MSG | "
			"gconnect PORT MSG | glisten PORT\n");
	return 1;
}
