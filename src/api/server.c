/* The API thread and its hand-off to the event loop; see api.h.
 *
 * The API thread runs libevent's HTTP server (evhttp) on its own event base:
 * it accepts connections on the Unix socket, reads requests (bodies over
 * API_MAX_BODY get a 400; past 4 x API_MAX_BODY evhttp refuses them with
 * 413 before buffering them), and calls
 * handle() once a request is complete. handle() parses and validates the
 * body there, then queues a command and returns: the API thread never waits
 * for the VMM. The VMM's event loop (an eventfd source) takes every queued
 * command and applies it; each answered command goes back on a second queue
 * whose eventfd the API thread watches, and the API thread sends the reply.
 * So a request that takes long (PUT /migrate is answered when the migration
 * ends) holds only its own connection, and others (GET /migrate) are served
 * meanwhile. Commands are still applied one at a time, in arrival order.
 * Slow clients time out after API_CLIENT_TIMEOUT seconds (counted again
 * once a command is answered, however long it took). Before the thread
 * leaves, the replies already made are written out.
 *
 * Why libevent and not libmicrohttpd: Debian's libmicrohttpd links GnuTLS,
 * which brought eight more shared libraries (2.8 MiB of RSS, ~1 ms of
 * start-up) into every mote process for TLS it never uses. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
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
#include "sandbox/seccomp.h"
#include "util/log.h"
#include "util/util.h"
#include "vmm.h"

#define API_CLIENT_TIMEOUT 10 /* seconds */

struct api_cmd {
	const struct api_route *route;
	json_t *body;
	char id[API_ID_MAX + 1];
	struct api_reply reply;
	struct evhttp_request *req; /* the API thread's, answered from done */
	struct api_cmd *next;
};

struct api_server {
	struct api_ctl ctl;
	pthread_mutex_t lock;
	struct api_cmd *head, **tail;       /* to the event loop */
	struct api_cmd *done, **done_tail;  /* answered, to the API thread */
	struct evloop_source queue; /* eventfd: commands are waiting */
	int done_fd;                /* eventfd: answers are waiting */
	struct event *done_ev;
	struct event_base *base;       /* the API thread's */
	struct evhttp *http;
	struct event *stop_ev;          /* stop_fd readable: leave the base's loop */
	int stop_fd;
	/* API thread only: replies handed to evhttp but not yet written out,
	 * and whether the thread is to leave once they are. */
	unsigned unsent;
	bool draining;
	pthread_t thread;
	bool thread_ok;
	int sock;
	bool closing; /* the loop has ended: no one will apply commands */
};

/* ---------------------------------------------------------------- event loop side */

/* Hands an answered command back to the API thread (any thread). */
static void finish(struct api_server *s, struct api_cmd *c)
{
	pthread_mutex_lock(&s->lock);
	c->next = NULL;
	*s->done_tail = c;
	s->done_tail = &c->next;
	uint64_t one = 1;
	if (write(s->done_fd, &one, sizeof(one)) < 0)
		log_warn("api: cannot signal the API thread: %s", strerror(errno));
	pthread_mutex_unlock(&s->lock);
}

/* A reply left for later is ready (event loop). */
static void answer_later(struct api_ctl *ctl, struct api_reply *r)
{
	struct api_server *s = (struct api_server *)((char *)ctl - offsetof(struct api_server, ctl));
	finish(s, (struct api_cmd *)((char *)r - offsetof(struct api_cmd, reply)));
}

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
		if (!c->reply.later)
			finish(s, c);
	}
}

/* ---------------------------------------------------------------- API thread */

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 405: return "Method Not Allowed";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* A reply is out (evhttp wrote it all). */
static void on_sent(struct evhttp_request *req, void *arg)
{
	struct api_server *s = arg;
	if (s->unsent)
		s->unsent--;
	if (s->draining && !s->unsent)
		event_base_loopbreak(s->base);
}

static void respond(struct api_server *s, struct evhttp_request *req, const struct api_reply *r)
{
	/* Counted until written: mote may be about to exit (the answer to a
	 * live migration is this VM's last), and stop_http waits for it. A
	 * request whose client went away has no connection: evhttp_send_reply
	 * frees it, and nothing waits for it. */
	if (evhttp_request_get_connection(req)) {
		s->unsent++;
		evhttp_request_set_on_complete_cb(req, on_sent, s);
	}
	struct evbuffer *out = NULL;
	if (r->body) {
		out = evbuffer_new();
		if (out)
			evbuffer_add(out, r->body, strlen(r->body));
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "application/json");
	}
	evhttp_send_reply(req, r->status, reason(r->status), out);
	if (out)
		evbuffer_free(out);
}

static void fault(struct api_server *s, struct evhttp_request *req, int status, const char *msg)
{
	struct api_reply r = { 0 };
	api_fault(&r, status, "%s", msg);
	respond(s, req, &r);
	free(r.body);
}

static const char *method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	default: return NULL;
	}
}

static void free_cmd(struct api_cmd *c)
{
	free(c->reply.body);
	json_decref(c->body);
	free(c);
}

/* Sends the answers the event loop finished. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
	struct api_server *s = arg;
	uint64_t n;
	if (read(s->done_fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&s->lock);
	struct api_cmd *c = s->done;
	s->done = NULL;
	s->done_tail = &s->done;
	pthread_mutex_unlock(&s->lock);
	while (c) {
		struct api_cmd *next = c->next;
		/* The client's timeout counts from now: a command may take longer
		 * than it (a live migration is answered when it ends). */
		struct evhttp_connection *conn = evhttp_request_get_connection(c->req);
		event_base_update_cache_time(s->base);
		if (conn)
			evhttp_connection_set_timeout(conn, API_CLIENT_TIMEOUT);
		respond(s, c->req, &c->reply);
		free_cmd(c);
		c = next;
	}
}

static void handle(struct evhttp_request *req, void *arg)
{
	struct api_server *s = arg;
	/* evhttp frames no body after a CONNECT reply (a tunnel would follow)
	 * and keeps the connection: only closing it ends the reply (mote's
	 * 405), so it gets a 1 s idle timeout. */
	if (evhttp_request_get_command(req) == EVHTTP_REQ_CONNECT)
		evhttp_connection_set_timeout(evhttp_request_get_connection(req), 1);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	/* A body over the limit is refused by its length alone: never pulled up. */
	const char *body = len && len <= API_MAX_BODY ? (const char *)evbuffer_pullup(in, -1) : NULL;
	struct api_request r;
	char err[600];
	int status = api_request_parse(&r, method_name(evhttp_request_get_command(req)),
				       evhttp_request_get_uri(req), body, len, err, sizeof(err));
	if (status) {
		fault(s, req, status, err);
		return;
	}
	struct api_cmd *cmd = calloc(1, sizeof(*cmd));
	if (!cmd) {
		json_decref(r.body);
		fault(s, req, 500, "out of memory");
		return;
	}
	cmd->route = r.route;
	cmd->body = r.body;
	cmd->req = req;
	memcpy(cmd->id, r.id, sizeof(cmd->id));
	/* Hand over to the event loop; on_done() sends its answer. (A client
	 * that goes away meanwhile leaves evhttp a detached request, which
	 * evhttp_send_reply() frees.) */
	pthread_mutex_lock(&s->lock);
	if (s->closing) {
		pthread_mutex_unlock(&s->lock);
		json_decref(cmd->body);
		free(cmd);
		fault(s, req, 503, "the microVM has stopped");
		return;
	}
	*s->tail = cmd;
	s->tail = &cmd->next;
	uint64_t one = 1;
	if (write(s->queue.fd, &one, sizeof(one)) < 0)
		log_warn("api: cannot signal the event loop: %s", strerror(errno));
	pthread_mutex_unlock(&s->lock);
}

/* Leaves the API thread's loop once every reply already made is written
 * (at most 1 s: a client that stopped reading does not hold mote). */
static void on_api_stop(evutil_socket_t fd, short what, void *arg)
{
	struct api_server *s = arg;
	on_done(s->done_fd, EV_READ, s); /* the last answers first */
	if (!s->unsent) {
		event_base_loopbreak(s->base);
		return;
	}
	s->draining = true;
	struct timeval cap = { .tv_sec = 1 };
	event_base_loopexit(s->base, &cap);
}

static void *api_thread(void *arg)
{
	struct api_server *s = arg;
	if (seccomp_install(SECCOMP_API) < 0)
		fatal("api: cannot go on without the API thread's seccomp filter");
	event_base_dispatch(s->base);
	return NULL;
}

static int start_http(struct api_server *s)
{
	s->base = event_base_new();
	s->http = s->base ? evhttp_new(s->base) : NULL;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s->http || s->stop_fd < 0 || s->done_fd < 0)
		return -ENOMEM;
	/* jansson seeds its hash function from /dev/urandom on first use; do it
	 * here, before the API thread's seccomp filter forbids opening files. */
	json_object_seed(0);
	s->stop_ev = event_new(s->base, s->stop_fd, EV_READ, on_api_stop, s);
	s->done_ev = event_new(s->base, s->done_fd, EV_READ | EV_PERSIST, on_done, s);
	if (!s->stop_ev || event_add(s->stop_ev, NULL) < 0 || !s->done_ev ||
	    event_add(s->done_ev, NULL) < 0)
		return -ENOMEM;
	/* Up to 4x the limit is buffered so that handle() can answer an
	 * oversized body with Firecracker's JSON 400; beyond that evhttp
	 * refuses it (413) without buffering it. */
	evhttp_set_max_body_size(s->http, 4 * API_MAX_BODY);
	evhttp_set_timeout(s->http, API_CLIENT_TIMEOUT);
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_POST | EVHTTP_REQ_DELETE |
						    EVHTTP_REQ_HEAD | EVHTTP_REQ_OPTIONS |
						    /* evhttp's own 501 to these never closes
						     * the connection: mote answers them. */
						    EVHTTP_REQ_CONNECT | EVHTTP_REQ_TRACE);
	evhttp_set_gencb(s->http, handle, s);
	if (evutil_make_socket_nonblocking(s->sock) < 0 || evhttp_accept_socket(s->http, s->sock) < 0)
		return -EIO;
	int err = pthread_create(&s->thread, NULL, api_thread, s);
	if (err)
		return -err;
	pthread_setname_np(s->thread, "api");
	s->thread_ok = true;
	return 0;
}

static void stop_http(struct api_server *s)
{
	if (s->thread_ok) {
		uint64_t one = 1;
		if (write(s->stop_fd, &one, sizeof(one)) < 0)
			log_warn("api: cannot stop the API thread: %s", strerror(errno));
		pthread_join(s->thread, NULL);
	}
	if (s->stop_ev)
		event_free(s->stop_ev);
	if (s->done_ev)
		event_free(s->done_ev);
	if (s->http)
		evhttp_free(s->http); /* closes the listening socket */
	else if (s->sock >= 0)
		close(s->sock);
	if (s->base)
		event_base_free(s->base);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->done_fd >= 0)
		close(s->done_fd);
	/* Answers the API thread never sent (it did not run, or stopped). */
	for (struct api_cmd *c = s->done, *next; c; c = next) {
		next = c->next;
		free_cmd(c);
	}
	s->done = NULL;
}

/* Binds and listens under a temporary name, then renames it to path: the
 * socket appears only once it accepts connections. */
static int listen_unix(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	char tmp[sizeof(addr.sun_path)];
	if (snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) >= (int)sizeof(tmp)) {
		log_error("--api-sock %s: path too long", path);
		return -ENAMETOOLONG;
	}
	if (access(path, F_OK) == 0) {
		log_error("--api-sock %s: already exists", path);
		return -EEXIST;
	}
	strcpy(addr.sun_path, tmp);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(tmp);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 64) < 0 ||
	    rename(tmp, path) < 0) {
		int err = -errno;
		log_error("--api-sock %s: %s", path, strerror(errno));
		unlink(tmp);
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
			       "            [--log-path P] [--level L] [--boot-timer]\n"
			       "            [--no-seccomp | --seccomp-filter F]\n"
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
	/* Not opened blocking: a FIFO nobody writes to then reads as empty
	 * (refused) instead of holding mote; a pipe with a writer, as bash's
	 * <(...) gives, is read to its end. */
	struct stat st;
	int fd = open_noblock(path, O_RDONLY, &st);
	FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
	if (!f) {
		int err = fd < 0 ? fd : -errno;
		log_error("--config-file %s: %s", path, strerror(-err));
		if (fd >= 0)
			close(fd);
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
	struct api_server s = { .sock = -1, .stop_fd = -1, .done_fd = -1 };
	s.ctl = (struct api_ctl){ .opts = o, .loop = loop, .vcpus = 1,
				  .mem_mib = CONFIG_DEFAULT_MEM_MIB, .vm_started = vm_started,
				  .opaque = opaque, .answer = answer_later };
	api_metrics_init(&s.ctl.metrics, loop, &s.ctl.vm);
	pthread_mutex_init(&s.lock, NULL);
	s.tail = &s.head;
	s.done_tail = &s.done;
	s.queue.fn = on_queue;
	s.queue.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	int status = VMM_EXIT_INTERNAL;
	if (s.queue.fd < 0 || evloop_add(loop, &s.queue, EPOLLIN) < 0)
		goto out;
	if (o->log_path) {
		int fd = open_append(o->log_path);
		if (fd < 0) {
			log_error("--log-path %s: %s", o->log_path, strerror(-fd));
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
	/* The API thread first: a config file may start the VM, and from then
	 * on the event loop's seccomp filter allows no new socket or thread.
	 * Requests wait in the queue until the loop runs. */
	if (o->api_sock) {
		status = VMM_EXIT_CONFIG;
		s.sock = listen_unix(o->api_sock);
		if (s.sock < 0)
			goto out;
		int err = start_http(&s);
		if (err) {
			log_error("--api-sock %s: cannot start the HTTP server: %s", o->api_sock,
				  strerror(-err));
			status = VMM_EXIT_INTERNAL;
			goto out;
		}
		api_metrics_started(&s.ctl.metrics, o->start_ns);
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
	int err = evloop_run(loop);
	if (err)
		log_error("event loop failed: %s", strerror(-err));
	status = s.ctl.vm ? vmm_wait(s.ctl.vm) : -1;
out:
	/* Requests still waiting get an answer before the API thread is joined:
	 * the queued ones, and one left for later (a migration mote did not
	 * finish). */
	pthread_mutex_lock(&s.lock);
	s.closing = true;
	struct api_cmd *waiting = s.head;
	s.head = NULL;
	s.tail = &s.head;
	pthread_mutex_unlock(&s.lock);
	for (struct api_cmd *c = waiting, *next; c; c = next) {
		next = c->next;
		api_fault(&c->reply, 503, "the microVM has stopped");
		finish(&s, c);
	}
	if (s.ctl.later) {
		struct api_reply *r = s.ctl.later;
		s.ctl.later = NULL;
		r->later = false;
		api_fault(r, 503, "the microVM has stopped");
		answer_later(&s.ctl, r);
	}
	stop_http(&s); /* joins the API thread */
	if (s.sock >= 0)
		unlink(o->api_sock);
	api_metrics_flush(&s.ctl.metrics); /* the last line, while the VM still exists */
	if (s.ctl.vm)
		vmm_destroy(s.ctl.vm);
	s.ctl.vm = NULL;
	if (s.queue.fd >= 0) {
		evloop_del(loop, &s.queue);
		close(s.queue.fd);
	}
	api_ctl_fini(&s.ctl);
	pthread_mutex_destroy(&s.lock);
	return status;
}
