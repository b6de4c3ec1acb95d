/* The user-mode network back end: libslirp, with QEMU's default network
 * (10.0.2.0/24: the guest at 10.0.2.15 through libslirp's DHCP server, the
 * host and gateway at 10.0.2.2, DNS at 10.0.2.3) and QEMU's hostfwd rules.
 * No root, no tap: the guest's connections become the host's own sockets.
 *
 * libslirp runs on a thread of its own, the network thread, with its own
 * event loop and its own seccomp allowlist: the host sockets it makes for
 * the guest (and the system calls they need) stay off mote's event loop.
 * The device reaches it through a SOCK_SEQPACKET socket pair, one frame per
 * packet, as it would a tap. On that thread, libslirp's sockets go into a
 * private epoll set, one source of the thread's loop; after every call into
 * libslirp the set is brought up to date from slirp_pollfds_fill(), and one
 * timerfd is armed for the earliest of libslirp's TCP timers and its own
 * timers. An idle network with no
 * connection arms no timer at all (a listening hostfwd socket makes libslirp
 * ask for its slow timer, twice a second).
 *
 * Frames libslirp sends the guest are queued (at most SLIRP_RXQ; beyond
 * that they are dropped, as a full NIC would, and TCP retransmits) until the
 * device pulls them. Frames cross without a vnet header: the device offers
 * no checksum or segmentation offload over this back end, so the guest
 * sends complete checksums and frames no larger than its MTU.
 * libslirp is loaded with dlopen() when the first `--net user` interface is
 * made, not linked: it brings GLib and PCRE2 along (1.4 MiB of resident
 * libraries and their start-up), which every mote without user-mode
 * networking would otherwise pay for.
 *
 * Deliberately absent: IPv6, TFTP, SMB, guestfwd, restricted mode. */
#include "backend/net.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <slirp/libslirp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "sandbox/seccomp.h"
#include "util/log.h"
#include "util/util.h"

#define SLIRP_RXQ 256      /* frames waiting for the guest */
#define SLIRP_MAX_FDS 1024 /* sockets libslirp may poll at once */

struct slirp_timer {
	struct slirp_timer *next;
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
};

struct slirp_pfd {
	int fd;
	uint32_t events;  /* epoll events wanted */
	uint32_t revents; /* epoll events seen */
};

struct frame {
	size_t len;
	uint8_t *data;
};

struct slirp_be {
	struct net_backend nb;
	Slirp *slirp;
	struct evloop *loop;
	struct evloop_source ep;    /* the private epoll set */
	struct evloop_source timer; /* timerfd */
	bool ep_on, timer_on, watching;
	/* The last slirp_pollfds_fill() (indexes are its add_poll results) and
	 * what the private epoll set holds. */
	struct slirp_pfd cur[SLIRP_MAX_FDS], reg[SLIRP_MAX_FDS];
	unsigned nr_cur, nr_reg;
	bool overflow;
	struct slirp_timer *timers;
	struct frame rxq[SLIRP_RXQ];
	unsigned rx_head, rx_count;
	uint64_t rx_dropped;
	uint8_t tx_buf[NET_MAX_FRAME];
};

static struct slirp_be *to_be(struct net_backend *nb) { return (struct slirp_be *)nb; }

/* The libslirp functions mote calls, from dlopen("libslirp.so.0"). */
static struct {
	bool loaded;
	Slirp *(*new_)(const SlirpConfig *cfg, const SlirpCb *callbacks, void *opaque);
	void (*cleanup)(Slirp *slirp);
	void (*input)(Slirp *slirp, const uint8_t *pkt, int pkt_len);
	void (*fill)(Slirp *slirp, uint32_t *timeout, SlirpAddPollCb add_poll, void *opaque);
	void (*poll)(Slirp *slirp, int select_error, SlirpGetREventsCb get_revents,
		     void *opaque);
	int (*add_hostfwd)(Slirp *slirp, int is_udp, struct in_addr host_addr, int host_port,
			   struct in_addr guest_addr, int guest_port);
} lib;

static int load_libslirp(void)
{
	if (lib.loaded)
		return 0;
	void *h = dlopen("libslirp.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		log_error("--net user: cannot load libslirp: %s (Debian package libslirp0)",
			  dlerror());
		return -ENOENT;
	}
	/* POSIX's way to turn dlsym's void * into function pointers. */
	*(void **)&lib.new_ = dlsym(h, "slirp_new");
	*(void **)&lib.cleanup = dlsym(h, "slirp_cleanup");
	*(void **)&lib.input = dlsym(h, "slirp_input");
	*(void **)&lib.fill = dlsym(h, "slirp_pollfds_fill");
	*(void **)&lib.poll = dlsym(h, "slirp_pollfds_poll");
	*(void **)&lib.add_hostfwd = dlsym(h, "slirp_add_hostfwd");
	if (!lib.new_ || !lib.cleanup || !lib.input || !lib.fill || !lib.poll ||
	    !lib.add_hostfwd) {
		log_error("--net user: libslirp.so.0 lacks a function mote needs");
		dlclose(h);
		return -ENOENT;
	}
	lib.loaded = true; /* kept loaded: GLib is not made to be unloaded */
	return 0;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------ slirp callbacks */

static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct slirp_be *s = opaque;
	if (s->rx_count == SLIRP_RXQ || len > NET_MAX_FRAME) {
		s->rx_dropped++;
		return (ssize_t)len; /* as a full NIC would: TCP retransmits */
	}
	uint8_t *copy = malloc(len);
	if (!copy) {
		s->rx_dropped++;
		return (ssize_t)len;
	}
	memcpy(copy, buf, len);
	s->rxq[(s->rx_head + s->rx_count++) % SLIRP_RXQ] = (struct frame){ len, copy };
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	log_ratelimited(LOG_WARN, "net user: guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque) { return now_ns(); }

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct slirp_be *s = opaque;
	struct slirp_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	*t = (struct slirp_timer){ .next = s->timers, .cb = cb, .cb_opaque = cb_opaque,
				   .expire_ms = -1 };
	s->timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	struct slirp_be *s = opaque;
	for (struct slirp_timer **p = &s->timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = (*p)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	if (timer)
		((struct slirp_timer *)timer)->expire_ms = expire_ms;
}

static void cb_poll_fd(int fd, void *opaque) {}
static void cb_notify(void *opaque) {} /* every call into libslirp is followed by a refresh */

static const SlirpCb callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_poll_fd,
	.unregister_poll_fd = cb_poll_fd,
	.notify = cb_notify,
};

/* ------------------------------------------------- poll set and timers */

static int add_poll(int fd, int events, void *opaque)
{
	struct slirp_be *s = opaque;
	uint32_t ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= EPOLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= EPOLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= EPOLLPRI;
	if (s->nr_cur == SLIRP_MAX_FDS) {
		s->overflow = true;
		return -1;
	}
	s->cur[s->nr_cur] = (struct slirp_pfd){ .fd = fd, .events = ev };
	return (int)s->nr_cur++;
}

static int get_revents(int idx, void *opaque)
{
	struct slirp_be *s = opaque;
	if (idx < 0 || (unsigned)idx >= s->nr_cur)
		return 0;
	uint32_t ev = s->cur[idx].revents;
	int r = 0;
	if (ev & EPOLLIN)
		r |= SLIRP_POLL_IN;
	if (ev & EPOLLOUT)
		r |= SLIRP_POLL_OUT;
	if (ev & EPOLLPRI)
		r |= SLIRP_POLL_PRI;
	if (ev & EPOLLERR)
		r |= SLIRP_POLL_ERR;
	if (ev & EPOLLHUP)
		r |= SLIRP_POLL_HUP;
	return r;
}

static struct slirp_pfd *find(struct slirp_pfd *set, unsigned n, int fd)
{
	for (unsigned i = 0; i < n; i++)
		if (set[i].fd == fd)
			return &set[i];
	return NULL;
}

static void epoll_set(struct slirp_be *s, int op, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	if (epoll_ctl(s->ep.fd, op, fd, &ev) < 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
		epoll_ctl(s->ep.fd, EPOLL_CTL_ADD, fd, &ev); /* closed and reused meanwhile */
}

/* Brings the private epoll set and the timer up to date with what libslirp
 * wants now. */
static void refresh(struct slirp_be *s)
{
	uint32_t timeout = UINT32_MAX;
	s->nr_cur = 0;
	lib.fill(s->slirp, &timeout, add_poll, s);
	if (s->overflow) {
		s->overflow = false;
		log_ratelimited(LOG_WARN, "net user: more than %u sockets; some are not polled",
				SLIRP_MAX_FDS);
	}
	/* Stale ones first: reg then stays a subset of cur, within its array. */
	for (unsigned i = 0; i < s->nr_reg;) {
		if (find(s->cur, s->nr_cur, s->reg[i].fd)) {
			i++;
			continue;
		}
		/* Closed fds left the set by themselves; EBADF/ENOENT is fine. */
		epoll_ctl(s->ep.fd, EPOLL_CTL_DEL, s->reg[i].fd, NULL);
		s->reg[i] = s->reg[--s->nr_reg];
	}
	/* New fds are added, changed ones modified (libslirp lists each fd once). */
	for (unsigned i = 0; i < s->nr_cur; i++) {
		struct slirp_pfd *c = &s->cur[i];
		struct slirp_pfd *r = find(s->reg, s->nr_reg, c->fd);
		if (!r) {
			r = &s->reg[s->nr_reg++];
			*r = (struct slirp_pfd){ .fd = c->fd, .events = c->events };
			epoll_set(s, EPOLL_CTL_ADD, c->fd, c->events);
		} else if (r->events != c->events) {
			r->events = c->events;
			epoll_set(s, EPOLL_CTL_MOD, c->fd, c->events);
		}
	}
	/* One timer for the earliest of libslirp's deadlines. */
	int64_t now = now_ns(), due = INT64_MAX;
	if (timeout != UINT32_MAX)
		due = now + (int64_t)timeout * 1000000;
	for (struct slirp_timer *t = s->timers; t; t = t->next)
		if (t->expire_ms >= 0)
			due = MIN(due, t->expire_ms < INT64_MAX / 1000000 ? t->expire_ms * 1000000
									 : INT64_MAX - 1);
	struct itimerspec its = { 0 };
	if (due != INT64_MAX) {
		due = MAX(due, now + 1);
		its.it_value.tv_sec = due / 1000000000;
		its.it_value.tv_nsec = due % 1000000000;
	}
	timerfd_settime(s->timer.fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void deliver(struct slirp_be *s)
{
	if (s->watching && s->rx_count && s->nb.rx_ready)
		s->nb.rx_ready(s->nb.opaque);
}

static void on_sockets(struct evloop_source *src, uint32_t events)
{
	struct slirp_be *s = (struct slirp_be *)((char *)src - offsetof(struct slirp_be, ep));
	struct epoll_event evs[64];
	int n = epoll_wait(s->ep.fd, evs, ARRAY_SIZE(evs), 0);
	for (int i = 0; i < n; i++) {
		struct slirp_pfd *c = find(s->cur, s->nr_cur, evs[i].data.fd);
		if (c)
			c->revents = evs[i].events;
	}
	lib.poll(s->slirp, n < 0, get_revents, s);
	for (unsigned i = 0; i < s->nr_cur; i++)
		s->cur[i].revents = 0;
	refresh(s);
	deliver(s);
}

static void on_timer(struct evloop_source *src, uint32_t events)
{
	struct slirp_be *s = (struct slirp_be *)((char *)src - offsetof(struct slirp_be, timer));
	uint64_t ticks;
	if (read(s->timer.fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	/* libslirp's TCP timers run inside slirp_pollfds_poll. */
	lib.poll(s->slirp, 0, get_revents, s);
	int64_t now_ms = now_ns() / 1000000;
	for (bool again = true; again;) {
		again = false; /* a callback may free or re-arm timers: rescan */
		for (struct slirp_timer *t = s->timers; t; t = t->next) {
			if (t->expire_ms >= 0 && t->expire_ms <= now_ms) {
				t->expire_ms = -1;
				t->cb(t->cb_opaque);
				again = true;
				break;
			}
		}
	}
	refresh(s);
	deliver(s);
}

/* ---------------------------------------------------------- back end */

static int slirp_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
	struct slirp_be *s = to_be(nb);
	size_t len = 0;
	for (int i = 0; i < iovcnt; i++) {
		if (iov[i].iov_len > sizeof(s->tx_buf) - len)
			return -EMSGSIZE;
		memcpy(s->tx_buf + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	lib.input(s->slirp, s->tx_buf, (int)len);
	refresh(s);
	return 0;
}

static ssize_t slirp_recv(struct net_backend *nb, void *buf, size_t len)
{
	struct slirp_be *s = to_be(nb);
	if (!s->rx_count)
		return -EAGAIN;
	struct frame *f = &s->rxq[s->rx_head];
	size_t n = MIN(len, f->len);
	memcpy(buf, f->data, n);
	free(f->data);
	s->rx_head = (s->rx_head + 1) % SLIRP_RXQ;
	s->rx_count--;
	return (ssize_t)n;
}

static void slirp_rx_watch(struct net_backend *nb, bool on) { to_be(nb)->watching = on; }

static int slirp_set_offload(struct net_backend *nb, unsigned offloads)
{
	return offloads ? -ENOTSUP : 0;
}

static void slirp_destroy(struct net_backend *nb)
{
	struct slirp_be *s = to_be(nb);
	if (s->slirp)
		lib.cleanup(s->slirp);
	while (s->timers)
		cb_timer_free(s->timers, s);
	while (s->rx_count)
		slirp_recv(nb, s->tx_buf, 0);
	if (s->ep_on)
		evloop_del(s->loop, &s->ep);
	if (s->timer_on)
		evloop_del(s->loop, &s->timer);
	if (s->ep.fd >= 0)
		close(s->ep.fd);
	if (s->timer.fd >= 0)
		close(s->timer.fd);
	free(s);
}

static const struct net_backend_ops slirp_ops = {
	.send = slirp_send,
	.recv = slirp_recv,
	.rx_watch = slirp_rx_watch,
	.set_offload = slirp_set_offload,
	.destroy = slirp_destroy,
};

static struct in_addr ip4(uint32_t host_order)
{
	return (struct in_addr){ .s_addr = htonl(host_order) };
}

static int slirp_open(const struct vm_net *net, struct evloop *loop, struct net_backend **out)
{
	struct slirp_be *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->nb = (struct net_backend){ .ops = &slirp_ops, .vnet_hdr = false };
	s->loop = loop;
	s->ep.fn = on_sockets;
	s->timer.fn = on_timer;
	int err;
	s->ep.fd = epoll_create1(EPOLL_CLOEXEC);
	s->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->ep.fd < 0 || s->timer.fd < 0) {
		err = -errno;
		log_error("--net user: %s", strerror(errno));
		goto err;
	}
	SlirpConfig cfg = {
		.version = 1,
		.in_enabled = true,
		.vnetwork = ip4(0x0a000200),
		.vnetmask = ip4(0xffffff00),
		.vhost = ip4(0x0a000202),
		.vdhcp_start = ip4(0x0a00020f),
		.vnameserver = ip4(0x0a000203),
	};
	s->slirp = lib.new_(&cfg, &callbacks, s);
	if (!s->slirp) {
		err = -ENOMEM;
		log_error("--net user: libslirp refused its configuration");
		goto err;
	}
	for (unsigned i = 0; i < net->nr_fwd; i++) {
		const struct vm_hostfwd *f = &net->fwd[i];
		struct in_addr host = { .s_addr = f->host_addr }, guest = { .s_addr = f->guest_addr };
		if (lib.add_hostfwd(s->slirp, f->udp, host, f->host_port, guest,
				      f->guest_port) < 0) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &host, a, sizeof(a));
			log_error("--net user: hostfwd %s:%s:%u: cannot listen there (in use, or "
				  "not a local address)", f->udp ? "udp" : "tcp", a, f->host_port);
			err = -EADDRINUSE;
			goto err;
		}
	}
	err = evloop_add(loop, &s->ep, EPOLLIN);
	s->ep_on = !err;
	if (!err)
		err = evloop_add(loop, &s->timer, EPOLLIN);
	s->timer_on = s->ep_on && !err;
	if (err) {
		log_error("--net user: cannot watch its sockets: %s", strerror(-err));
		goto err;
	}
	refresh(s);
	*out = &s->nb;
	return 0;
err:
	slirp_destroy(&s->nb);
	return err;
}

/* ------------------------------------------------- the network thread */

struct slirp_thread {
	struct net_backend nb;         /* what the device sees */
	struct net_backend *inner;     /* libslirp, on the thread's loop */
	struct evloop *loop;           /* mote's event loop */
	struct evloop tloop;           /* the network thread's */
	bool tloop_ok;
	int sp[2];                     /* frames: [0] the device's end, [1] the thread's */
	struct evloop_source dev_src;  /* sp[0] on mote's loop, while the device watches */
	bool dev_watching;
	struct evloop_source thr_src;  /* sp[1] on the thread's loop */
	struct evloop_source stop_src; /* eventfd: the thread ends */
	pthread_t thread;
	bool running;
	size_t pending;                /* a frame for the device that did not fit yet */
	uint8_t out[NET_MAX_FRAME];
	uint8_t in[NET_MAX_FRAME];
};

static struct slirp_thread *to_st(struct net_backend *nb) { return (struct slirp_thread *)nb; }

/* Device side (mote's event loop). */

static int st_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
	if (writev(to_st(nb)->sp[0], iov, iovcnt) >= 0)
		return 0;
	return errno == EAGAIN || errno == ENOBUFS ? -EAGAIN : -EIO;
}

static ssize_t st_recv(struct net_backend *nb, void *buf, size_t len)
{
	ssize_t n = read(to_st(nb)->sp[0], buf, len);
	if (n > 0)
		return n;
	return n == 0 ? -EIO : errno == EAGAIN ? -EAGAIN : -errno;
}

static void on_frames_for_device(struct evloop_source *src, uint32_t events)
{
	struct slirp_thread *t =
		(struct slirp_thread *)((char *)src - offsetof(struct slirp_thread, dev_src));
	if (t->nb.rx_ready)
		t->nb.rx_ready(t->nb.opaque);
}

static void st_rx_watch(struct net_backend *nb, bool on)
{
	struct slirp_thread *t = to_st(nb);
	if (on == t->dev_watching)
		return;
	if (on ? evloop_add(t->loop, &t->dev_src, EPOLLIN) == 0
	       : (evloop_del(t->loop, &t->dev_src), true))
		t->dev_watching = on;
}

/* Thread side. */

/* Frames libslirp made for the guest go to the device's end; one that does
 * not fit waits (EPOLLOUT) rather than being lost. */
static void drain_to_device(void *opaque)
{
	struct slirp_thread *t = opaque;
	for (;;) {
		if (!t->pending) {
			ssize_t n = t->inner->ops->recv(t->inner, t->out, sizeof(t->out));
			if (n <= 0)
				break;
			t->pending = (size_t)n;
		}
		if (write(t->sp[1], t->out, t->pending) < 0) {
			if (errno == EAGAIN || errno == ENOBUFS) {
				evloop_mod(&t->tloop, &t->thr_src, EPOLLIN | EPOLLOUT);
				return;
			}
			log_ratelimited(LOG_WARN, "net user: frame to the device lost: %s",
					strerror(errno));
		}
		t->pending = 0;
	}
	evloop_mod(&t->tloop, &t->thr_src, EPOLLIN);
}

static void on_frames_from_device(struct evloop_source *src, uint32_t events)
{
	struct slirp_thread *t =
		(struct slirp_thread *)((char *)src - offsetof(struct slirp_thread, thr_src));
	if (events & EPOLLOUT)
		drain_to_device(t);
	for (unsigned i = 0; i < 256 && (events & EPOLLIN); i++) {
		ssize_t n = read(t->sp[1], t->in, sizeof(t->in));
		if (n <= 0)
			break;
		struct iovec iov = { t->in, (size_t)n };
		t->inner->ops->send(t->inner, &iov, 1);
	}
	drain_to_device(t);
}

static void on_stop(struct evloop_source *src, uint32_t events)
{
	struct slirp_thread *t =
		(struct slirp_thread *)((char *)src - offsetof(struct slirp_thread, stop_src));
	evloop_quit(&t->tloop);
}

static void *net_thread(void *arg)
{
	struct slirp_thread *t = arg;
	if (seccomp_install(SECCOMP_NET) < 0)
		fatal("net user: cannot install the network thread's seccomp filter");
	int err = evloop_run(&t->tloop);
	if (err)
		log_error("net user: the network thread's loop failed: %s", strerror(-err));
	return NULL;
}

static int st_set_offload(struct net_backend *nb, unsigned offloads)
{
	return offloads ? -ENOTSUP : 0;
}

static void st_destroy(struct net_backend *nb)
{
	struct slirp_thread *t = to_st(nb);
	if (t->running) {
		uint64_t one = 1;
		if (write(t->stop_src.fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(t->thread, NULL);
	}
	st_rx_watch(nb, false);
	if (t->inner)
		t->inner->ops->destroy(t->inner);
	if (t->tloop_ok)
		evloop_fini(&t->tloop);
	if (t->stop_src.fd >= 0)
		close(t->stop_src.fd);
	for (int i = 0; i < 2; i++)
		if (t->sp[i] >= 0)
			close(t->sp[i]);
	free(t);
}

static const struct net_backend_ops thread_ops = {
	.send = st_send,
	.recv = st_recv,
	.rx_watch = st_rx_watch,
	.set_offload = st_set_offload,
	.destroy = st_destroy,
};

int net_slirp_open(const struct vm_net *net, struct evloop *loop, struct net_backend **out)
{
	int err = load_libslirp();
	if (err)
		return err;
	struct slirp_thread *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	*t = (struct slirp_thread){ .nb = { .ops = &thread_ops, .vnet_hdr = false },
				    .loop = loop, .sp = { -1, -1 } };
	t->dev_src.fn = on_frames_for_device;
	t->thr_src.fn = on_frames_from_device;
	t->stop_src.fn = on_stop;
	t->stop_src.fd = -1;
	err = evloop_init(&t->tloop);
	t->tloop_ok = !err;
	if (!err && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, t->sp) < 0)
		err = -errno;
	if (!err) {
		/* Room for bursts both ways (a TCP window's worth of frames). */
		int size = 4 << 20;
		for (int i = 0; i < 2; i++) {
			setsockopt(t->sp[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
			setsockopt(t->sp[i], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		}
		t->stop_src.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (t->stop_src.fd < 0)
			err = -errno;
	}
	if (err) {
		log_error("--net user: %s", strerror(-err));
		st_destroy(&t->nb);
		return err;
	}
	t->dev_src.fd = t->sp[0];
	t->thr_src.fd = t->sp[1];
	err = slirp_open(net, &t->tloop, &t->inner);
	if (err) {
		st_destroy(&t->nb);
		return err;
	}
	t->inner->rx_ready = drain_to_device;
	t->inner->opaque = t;
	t->inner->ops->rx_watch(t->inner, true);
	err = evloop_add(&t->tloop, &t->thr_src, EPOLLIN);
	if (!err)
		err = evloop_add(&t->tloop, &t->stop_src, EPOLLIN);
	if (!err) {
		err = -pthread_create(&t->thread, NULL, net_thread, t);
		t->running = !err;
	}
	if (err) {
		log_error("--net user: cannot start the network thread: %s", strerror(-err));
		st_destroy(&t->nb);
		return err;
	}
	pthread_setname_np(t->thread, "net");
	*out = &t->nb;
	return 0;
}
