/* `mote migrate`: a small client of a running mote's API that starts a live
 * migration (PUT /migrate) and prints its progress (GET /migrate, twice a
 * second, one line per new round) until the PUT is answered. HTTP/1.1 over
 * the Unix socket, one request per connection ("Connection: close"), so a
 * reply is everything up to EOF. Nothing here runs inside a VM's process. */
#include "api/client.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "snap/migrate.h"

#define REPLY_MAX (64 * 1024)

static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "mote migrate: --api-sock %s: path too long\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "mote migrate: --api-sock %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int send_request(int fd, const char *method, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "%s /migrate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			 "Accept: application/json\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n", method, body ? strlen(body) : 0);
	if (write(fd, head, (size_t)n) != n)
		return -1;
	if (body && write(fd, body, strlen(body)) != (ssize_t)strlen(body))
		return -1;
	return 0;
}

/* Reads a whole reply (until EOF): its status, its body parsed as JSON
 * (NULL when none). 0 or -1. */
static int read_reply(int fd, int *status, json_t **body)
{
	char *buf = malloc(REPLY_MAX + 1);
	size_t len = 0;
	ssize_t n = 0;
	while (buf && len < REPLY_MAX && (n = read(fd, buf + len, REPLY_MAX - len)) > 0)
		len += (size_t)n;
	if (!buf || n < 0) {
		free(buf);
		return -1;
	}
	buf[len] = 0;
	char *sep = strstr(buf, "\r\n\r\n");
	if (sscanf(buf, "HTTP/1.%*d %d", status) != 1 || !sep) {
		free(buf);
		return -1;
	}
	*body = sep[4] ? json_loads(sep + 4, 0, NULL) : NULL;
	free(buf);
	return 0;
}

static json_t *get_status(const char *sock)
{
	int fd = dial(sock), status;
	json_t *body = NULL;
	if (fd < 0)
		return NULL;
	if (send_request(fd, "GET", NULL) || read_reply(fd, &status, &body) || status != 200) {
		json_decref(body);
		body = NULL;
	}
	close(fd);
	return body;
}

static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static const char *text(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "?";
}

static void usage(FILE *f)
{
	fprintf(f, "usage: mote migrate --api-sock PATH --destination tcp:IPV4:PORT\n"
		   "                    [--downtime-ms N] [--bandwidth-mbps N]\n"
		   "Sends the VM of the mote serving PATH to a `mote run --migrate-listen` at\n"
		   "the destination and prints its progress. Exit status 0 once the destination\n"
		   "runs the VM, 1 when the migration failed (the VM goes on at the source).\n");
}

int api_client_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "api-sock", required_argument, NULL, 's' },
		{ "destination", required_argument, NULL, 'd' },
		{ "downtime-ms", required_argument, NULL, 't' },
		{ "bandwidth-mbps", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *sock = NULL, *dest = NULL;
	uint64_t downtime = 0, bw = 0;
	bool has_downtime = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'd': dest = optarg; break;
		case 't':
		case 'b':
			if (config_parse_u64(optarg, 0,
					     c == 't' ? MIGRATE_MAX_DOWNTIME_MS : MIGRATE_MAX_BANDWIDTH_MBPS,
					     c == 't' ? &downtime : &bw)) {
				fprintf(stderr, "mote migrate: --%s %s: expected a number up to %llu\n",
					c == 't' ? "downtime-ms" : "bandwidth-mbps", optarg,
					c == 't' ? MIGRATE_MAX_DOWNTIME_MS : MIGRATE_MAX_BANDWIDTH_MBPS);
				return 1;
			}
			has_downtime = has_downtime || c == 't';
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (!sock || !dest || optind < argc) {
		usage(stderr);
		return 1;
	}
	json_t *req = json_pack("{s:s}", "destination", dest);
	if (has_downtime)
		json_object_set_new(req, "downtime_ms", json_integer((json_int_t)downtime));
	if (bw)
		json_object_set_new(req, "bandwidth_mbps", json_integer((json_int_t)bw));
	char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	signal(SIGPIPE, SIG_IGN);
	int fd = dial(sock);
	if (fd < 0 || !body || send_request(fd, "PUT", body)) {
		if (fd >= 0)
			fprintf(stderr, "mote migrate: cannot send the request: %s\n", strerror(errno));
		free(body);
		return 1;
	}
	free(body);
	long long shown = -1;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (poll(&p, 1, 500) == 0) {
		json_t *st = get_status(sock);
		if (st && !strcmp(text(st, "state"), "running") && num(st, "round") != shown &&
		    !strcmp(text(st, "phase"), "precopy")) {
			shown = num(st, "round");
			printf("round %lld: %lld KiB sent, %lld KiB left, dirty rate %lld KiB/s, "
			       "expected downtime %lld ms\n", shown, num(st, "bytes_sent") >> 10,
			       num(st, "pages_left") * 4, num(st, "dirty_rate") >> 10,
			       num(st, "expected_downtime_ms"));
			fflush(stdout);
		}
		json_decref(st);
	}
	int status = 0;
	json_t *reply = NULL;
	int err = read_reply(fd, &status, &reply);
	close(fd);
	if (err) {
		fprintf(stderr, "mote migrate: no answer from %s\n", sock);
		return 1;
	}
	int ret = 1;
	if (status == 200 && reply) {
		printf("completed: %lld KiB sent in %lld rounds, downtime %.1f ms, total %.1f ms\n",
		       num(reply, "bytes_sent") >> 10, num(reply, "round") + 1,
		       (double)num(reply, "downtime_us") / 1000, (double)num(reply, "total_us") / 1000);
		ret = 0;
	} else {
		const char *why = reply ? json_string_value(json_object_get(reply, "fault_message"))
					: NULL;
		fprintf(stderr, "mote migrate: failed (HTTP %d): %s\n", status, why ? why : "?");
	}
	json_decref(reply);
	return ret;
}
