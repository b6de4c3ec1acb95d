/* The API thread and its hand-off to the event loop; see api.h.
 *
 * libmicrohttpd runs one internal thread that accepts connections on the
 * Unix socket, reads requests (body capped at API_MAX_BODY), and calls
 * handle() once a request is complete. handle() parses and validates the
 * body there, then queues a command and waits; the event loop's source
 * (an eventfd) takes every queued command, applies it, and wakes the waiter.
 * Slow clients time out (API_CLIENT_TIMEOUT); the number of connections is
 * capped. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/api.h"
#include "api/routes.h"
#include "util/log.h"
#include "vmm.h"

#define API_CLIENT_TIMEOUT 10 /* seconds */
#define API_MAX_CONNECTIONS 64

struct api_cmd {
	const struct api_route *route;
	json_t *body;
	char id[API_ID_MAX + 1];
	struct api_reply reply;
	bool done;
	struct api_cmd *next;
};

struct api_server {
	struct api_ctl ctl;
	pthread_mutex_t lock;
	pthread_cond_t done;
	struct api_cmd *head, **tail;
	struct evloop_source queue; /* eventfd: commands are waiting */
	struct MHD_Daemon *mhd;
	int sock;
	bool closing; /* the loop has ended: no one will apply commands */
};

/* Per connection: the body as it arrives. */
struct api_conn {
	char *body;
	size_t len;
	bool too_big;
};

/* ---------------------------------------------------------------- event loop side */

static void on_queue(struct evloop_source *src, uint32_t events)
{
	struct api_server *s = (struct api_server *)((char *)src - offsetof(struct api_server, queue));
	uint64_t n;
	if (read(src->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	for (;;) {
		pthread_mutex_lock(&s->lock);
		struct api_cmd *c = s->head;
		if (c) {
			s->head = c->next;
			if (!s->head)
				s->tail = &s->head;
		}
		pthread_mutex_unlock(&s->lock);
		if (!c)
			break;
		api_apply(&s->ctl, c->route, c->body, c->id, &c->reply);
		pthread_mutex_lock(&s->lock);
		c->done = true;
		pthread_cond_broadcast(&s->done);
		pthread_mutex_unlock(&s->lock);
	}
}

/* ---------------------------------------------------------------- API thread */

static enum MHD_Result respond(struct MHD_Connection *conn, const struct api_reply *r)
{
	const char *body = r->body ? r->body : "";
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (r->body)
		MHD_add_response_header(resp, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result fault(struct MHD_Connection *conn, int status, const char *msg)
{
	struct api_reply r = { 0 };
	api_fault(&r, status, "%s", msg);
	enum MHD_Result ret = respond(conn, &r);
	free(r.body);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct api_server *s = cls;
	struct api_conn *c = *con_cls;
	if (!c) { /* headers only so far */
		c = calloc(1, sizeof(*c));
		if (!c)
			return MHD_NO;
		*con_cls = c;
		return MHD_YES;
	}
	if (*upload_size) { /* a piece of the body */
		if (c->too_big || *upload_size > API_MAX_BODY - c->len) {
			c->too_big = true;
		} else {
			char *b = realloc(c->body, c->len + *upload_size + 1);
			if (!b)
				return MHD_NO;
			memcpy(b + c->len, upload, *upload_size);
			c->body = b;
			c->len += *upload_size;
			b[c->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (c->too_big) {
		char msg[128];
		snprintf(msg, sizeof(msg), "the request body is larger than the limit of %d bytes",
			 API_MAX_BODY);
		return fault(conn, 400, msg);
	}
	const char *id;
	const struct api_route *route = api_route_find(method, url, &id);
	if (!route) {
		char msg[300];
		snprintf(msg, sizeof(msg), "no route %.16s %.200s", method, url);
		return fault(conn, strcmp(method, "GET") && strcmp(method, "PUT") &&
						   strcmp(method, "PATCH")
					   ? 405
					   : 400,
			     msg);
	}
	if (route->unsupported)
		return fault(conn, 400, route->unsupported);
	struct api_cmd *cmd = calloc(1, sizeof(*cmd));
	if (!cmd)
		return MHD_NO;
	cmd->route = route;
	if (id)
		snprintf(cmd->id, sizeof(cmd->id), "%s", id);
	if (id && strlen(id) > API_ID_MAX) {
		free(cmd);
		return fault(conn, 400, "the id in the path is too long");
	}
	if (route->validate) {
		json_error_t jerr;
		char err[512];
		cmd->body = c->len ? json_loadb(c->body, c->len, 0, &jerr) : NULL;
		if (!cmd->body) {
			snprintf(err, sizeof(err), c->len ? "invalid JSON: %s" : "a JSON body is required",
				 jerr.text);
			free(cmd);
			return fault(conn, 400, err);
		}
		if (route->validate(cmd->body, cmd->id, err, sizeof(err)) < 0) {
			json_decref(cmd->body);
			free(cmd);
			return fault(conn, 400, err);
		}
	}
	/* Hand over to the event loop and wait for its answer. */
	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		json_decref(cmd->body);
		free(cmd);
		return fault(conn, 503, "the microVM has stopped");
	}
	*s->tail = cmd;
	s->tail = &cmd->next;
	uint64_t one = 1;
	if (write(s->queue.fd, &one, sizeof(one)) < 0)
		log_warn("api: cannot signal the event loop: %s", strerror(errno));
	while (!cmd->done)
		pthread_cond_wait(&s->done, &s->lock);
	pthread_mutex_unlock(&s->lock);
	enum MHD_Result ret = respond(conn, &cmd->reply);
	free(cmd->reply.body);
	json_decref(cmd->body);
	free(cmd);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct api_conn *c = *con_cls;
	if (c) {
		free(c->body);
		free(c);
	}
	*con_cls = NULL;
}

static int listen_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("--api-sock %s: path too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0) {
		int err = -errno;
		log_error("--api-sock %s: %s", path, strerror(errno));
		close(fd);
		return err;
	}
	return fd;
}

/* ---------------------------------------------------------------- options */

int api_parse_options(struct api_options *o, int argc, char **argv)
{
	enum { O_SOCK = 256, O_CONFIG, O_NO_API, O_ID, O_LOG, O_LEVEL, O_METRICS, O_BOOT_TIMER,
	       O_SECCOMP, O_NO_SECCOMP, O_SHOW_LEVEL, O_SHOW_ORIGIN, O_ROUTES, O_HELP };
	static const struct option opts[] = {
		{ "api-sock", required_argument, NULL, O_SOCK },
		{ "config-file", required_argument, NULL, O_CONFIG },
		{ "no-api", no_argument, NULL, O_NO_API },
		{ "id", required_argument, NULL, O_ID },
		{ "log-path", required_argument, NULL, O_LOG },
		{ "level", required_argument, NULL, O_LEVEL },
		{ "show-level", no_argument, NULL, O_SHOW_LEVEL },
		{ "show-log-origin", no_argument, NULL, O_SHOW_ORIGIN },
		{ "metrics-path", required_argument, NULL, O_METRICS },
		{ "boot-timer", no_argument, NULL, O_BOOT_TIMER },
		{ "seccomp-filter", required_argument, NULL, O_SECCOMP },
		{ "no-seccomp", no_argument, NULL, O_NO_SECCOMP },
		{ "api-routes", no_argument, NULL, O_ROUTES },
		{ "help-api", no_argument, NULL, O_HELP },
		{ 0 },
	};
	memset(o, 0, sizeof(*o));
	o->api_sock = "/run/mote.socket";
	o->id = "anonymous-instance";
	bool no_api = false;
	opterr = 0;
	optind = 1;
	for (;;) {
		int prev = optind;
		int c = getopt_long(argc, argv, ":", opts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case O_SOCK: o->api_sock = optarg; break;
		case O_CONFIG: o->config_file = optarg; break;
		case O_NO_API: no_api = true; break;
		case O_ID: o->id = optarg; break;
		case O_LOG: o->log_path = optarg; break;
		case O_LEVEL:
			if (strcmp(optarg, "Trace") && strcmp(optarg, "Off") &&
			    log_parse_level(optarg, &o->level) < 0) {
				log_error("--level %s: one of Off, Error, Warning, Info, Debug, Trace",
					  optarg);
				return -EINVAL;
			}
			o->level = !strcmp(optarg, "Trace") ? LOG_DEBUG
				   : !strcmp(optarg, "Off") ? LOG_ERROR : o->level;
			o->level_set = true;
			break;
		case O_SHOW_LEVEL: case O_SHOW_ORIGIN: break; /* mote's lines always show the level */
		case O_METRICS: o->metrics_path = optarg; break;
		case O_BOOT_TIMER: o->boot_timer = true; break;
		case O_SECCOMP: o->seccomp_filter = optarg; break;
		case O_NO_SECCOMP: o->no_seccomp = true; break;
		case O_ROUTES: api_routes_print(); return 1;
		case O_HELP:
			printf("usage: mote --api-sock PATH [--config-file F] [--no-api] [--id ID]\n"
			       "            [--log-path P] [--level L] [--boot-timer] [--no-seccomp]\n"
			       "Firecracker's flags and REST API; see docs/API.md.\n");
			return 1;
		case ':':
			log_error("%s needs a value", argv[prev]);
			return -EINVAL;
		default:
			log_error("unknown option %s (see mote --help-api)", argv[prev]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument %s", argv[optind]);
		return -EINVAL;
	}
	if (no_api)
		o->api_sock = NULL;
	if (no_api && !o->config_file) {
		log_error("--no-api needs --config-file: nothing could start the microVM");
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- run */

static int read_file(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		int err = -errno;
		log_error("--config-file %s: %s", path, strerror(errno));
		return err;
	}
	char *buf = malloc(1 << 20);
	size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
	bool too_big = buf && n == 1 << 20;
	fclose(f);
	if (!buf || too_big) {
		log_error("--config-file %s: larger than 1 MiB", path);
		free(buf);
		return -EFBIG;
	}
	*out = buf;
	*len = n;
	return 0;
}

int api_run(const struct api_options *o, struct evloop *loop,
	    void (*vm_started)(void *opaque, struct vm *vm), void *opaque)
{
	struct api_server s = { .sock = -1 };
	s.ctl = (struct api_ctl){ .opts = o, .loop = loop, .vcpus = 1,
				  .mem_mib = CONFIG_DEFAULT_MEM_MIB, .vm_started = vm_started,
				  .opaque = opaque };
	api_metrics_init(&s.ctl.metrics, loop, &s.ctl.vm);
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.done, NULL);
	s.tail = &s.head;
	s.queue.fn = on_queue;
	s.queue.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int status = VMM_EXIT_INTERNAL;
	if (s.queue.fd < 0 || evloop_add(loop, &s.queue, EPOLLIN) < 0)
		goto out;
	if (o->log_path) {
		int fd = open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK,
			      0600);
		if (fd < 0) {
			log_error("--log-path %s: %s", o->log_path, strerror(errno));
			status = VMM_EXIT_CONFIG;
			goto out;
		}
		log_set_fd(fd);
	}
	if (o->level_set)
		log_set_level(o->level);
	if (o->metrics_path) {
		int err = api_metrics_open(&s.ctl.metrics, o->metrics_path);
		if (err) {
			log_error("--metrics-path %s: %s", o->metrics_path, strerror(-err));
			status = VMM_EXIT_CONFIG;
			goto out;
		}
	}
	if (o->config_file) {
		char *text = NULL;
		size_t len = 0;
		status = VMM_EXIT_CONFIG;
		if (read_file(o->config_file, &text, &len) < 0)
			goto out;
		int err = api_config_file(&s.ctl, text, len);
		free(text);
		if (err)
			goto out;
	}
	if (o->api_sock) {
		status = VMM_EXIT_CONFIG;
		s.sock = listen_unix(o->api_sock);
		if (s.sock < 0)
			goto out;
		s.mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL,
					 NULL, handle, &s, MHD_OPTION_LISTEN_SOCKET, s.sock,
					 MHD_OPTION_NOTIFY_COMPLETED, completed, &s,
					 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)API_CLIENT_TIMEOUT,
					 MHD_OPTION_CONNECTION_LIMIT, (unsigned)API_MAX_CONNECTIONS,
					 MHD_OPTION_END);
		if (!s.mhd) {
			log_error("--api-sock %s: cannot start the HTTP server", o->api_sock);
			status = VMM_EXIT_INTERNAL;
			goto out;
		}
	}
	int err = evloop_run(loop);
	if (err)
		log_error("event loop failed: %s", strerror(-err));
	status = s.ctl.vm ? vmm_wait(s.ctl.vm) : -1;
out:
	/* Requests still waiting get an answer before the API thread is joined. */
	pthread_mutex_lock(&s.lock);
	s.closing = true;
	for (struct api_cmd *c = s.head; c; c = c->next) {
		api_fault(&c->reply, 503, "the microVM has stopped");
		c->done = true;
	}
	s.head = NULL;
	s.tail = &s.head;
	pthread_cond_broadcast(&s.done);
	pthread_mutex_unlock(&s.lock);
	if (s.mhd)
		MHD_stop_daemon(s.mhd); /* waits for the API thread */
	if (s.sock >= 0) {
		close(s.sock);
		unlink(o->api_sock);
	}
	api_metrics_flush(&s.ctl.metrics); /* the last line, while the VM still exists */
	if (s.ctl.vm)
		vmm_destroy(s.ctl.vm);
	s.ctl.vm = NULL;
	if (s.queue.fd >= 0) {
		evloop_del(loop, &s.queue);
		close(s.queue.fd);
	}
	api_ctl_fini(&s.ctl);
	pthread_cond_destroy(&s.done);
	pthread_mutex_destroy(&s.lock);
	return status;
}
