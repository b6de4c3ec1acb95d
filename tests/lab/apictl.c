/* apictl SOCKET METHOD PATH [BODY]: one HTTP/1.1 request over a Unix
 * socket, for driving mote's API inside the lab, where there is no curl or
 * Python. Prints the status line's code and the body; exits 0 for 2xx, 1
 * for any other status, 2 when the request could not be made. Built
 * static by tests/integration/test_linux.py and copied into L1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: apictl SOCKET METHOD PATH [BODY]\n");
		return 2;
	}
	const char *body = argc == 5 ? argv[4] : "";
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", argv[1]);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("apictl: connect");
		return 2;
	}
	char req[8192];
	int n = snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 argv[2], argv[3], strlen(body), body);
	if (n < 0 || n >= (int)sizeof(req) || write(fd, req, (size_t)n) != n) {
		fprintf(stderr, "apictl: cannot send the request\n");
		return 2;
	}
	char resp[16384];
	size_t len = 0;
	ssize_t r;
	while (len < sizeof(resp) - 1 && (r = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
		len += (size_t)r;
	resp[len] = '\0';
	close(fd);
	int status = 0;
	if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
		fprintf(stderr, "apictl: no HTTP answer\n");
		return 2;
	}
	char *b = strstr(resp, "\r\n\r\n");
	printf("%d %s\n", status, b ? b + 4 : "");
	return status >= 200 && status < 300 ? 0 : 1;
}
