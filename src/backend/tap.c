/* The tap back end: an existing tap interface, or one mote creates (when it
 * has CAP_NET_ADMIN), opened IFF_TAP | IFF_NO_PI | IFF_VNET_HDR with a
 * 12-byte vnet header (TUNSETVNETHDRSZ), non-blocking. Transmit is one
 * writev per frame; the send buffer is unlimited (TUNSETSNDBUF, as QEMU
 * does), and should a write still fail with EAGAIN the frame is dropped
 * rather than stall the event loop. A tap that disappears under mote (its interface
 * deleted: reads fail with EBADFD or EIO, or epoll reports a hang-up) is
 * dropped from the event loop for good and every later frame fails -EIO,
 * so it can never make the loop spin.
 *
 * Live migration on one host hands the tap over: mote opens it as one queue
 * of a multiqueue tap (IFF_MULTI_QUEUE; an existing single-queue tap is
 * opened as it is, and cannot be handed over; outside a migration a tap
 * another process holds is refused, as a single-queue one would be). The
 * destination attaches a second queue to the same interface and detaches it
 * at once (TUNSETQUEUE); the source detaches its queue when it stops the
 * VM; the destination attaches its queue once the VM is its own (or the
 * source attaches its own again, when the migration failed). The interface,
 * its addresses and its bridge port stay as they are throughout: it never
 * loses its last open queue, so the kernel never removes it. Frames that
 * arrive while no queue is attached, or that sat in a queue being detached,
 * are dropped, as a switch would while a port moves. Deliberately absent:
 * using more than one queue for the guest. */
#include "backend/net.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/log.h"

struct tap {
	struct net_backend nb;
	struct evloop *loop;
	struct evloop_source src;
	char name[IFNAMSIZ];
	bool watching, registered, dead;
	bool multi;    /* a queue of a multiqueue tap: can be detached */
	bool detached; /* TUNSETQUEUE IFF_DETACH_QUEUE: another process receives */
};

static struct tap *to_tap(struct net_backend *nb) { return (struct tap *)nb; }

static void tap_gone(struct tap *t, int err)
{
	if (t->dead)
		return;
	t->dead = true;
	log_ratelimited(LOG_WARN, "net tap %s: unusable (%s); its frames are dropped from now on",
			t->name, strerror(err));
	if (t->registered)
		evloop_del(t->loop, &t->src);
	t->registered = t->watching = false;
}

static int tap_send(struct net_backend *nb, const struct iovec *iov, int iovcnt)
{
	struct tap *t = to_tap(nb);
	if (t->dead)
		return -EIO;
	ssize_t n;
	do
		n = writev(t->src.fd, iov, iovcnt);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return 0;
	int err = errno;
	if (err == EBADFD || err == EIO || err == ENXIO) {
		tap_gone(t, err);
		return -EIO;
	}
	return err == EWOULDBLOCK ? -EAGAIN : -err;
}

static ssize_t tap_recv(struct net_backend *nb, void *buf, size_t len)
{
	struct tap *t = to_tap(nb);
	if (t->dead)
		return -EIO;
	ssize_t n;
	do
		n = read(t->src.fd, buf, len);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	int err = errno;
	if (err == EAGAIN || err == EWOULDBLOCK)
		return -EAGAIN;
	if (err == EBADFD || err == EIO || err == ENXIO) {
		tap_gone(t, err);
		return -EIO;
	}
	return -err;
}

static void tap_event(struct evloop_source *src, uint32_t events)
{
	struct tap *t = (struct tap *)((char *)src - offsetof(struct tap, src));
	if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN)) {
		tap_gone(t, EIO);
		return;
	}
	if (t->nb.rx_ready)
		t->nb.rx_ready(t->nb.opaque);
}

static void tap_rx_watch(struct net_backend *nb, bool on)
{
	struct tap *t = to_tap(nb);
	if (t->dead || on == t->watching)
		return;
	if (evloop_mod(t->loop, &t->src, on ? EPOLLIN : 0) == 0)
		t->watching = on;
}

static int tap_set_offload(struct net_backend *nb, unsigned offloads)
{
	struct tap *t = to_tap(nb);
	unsigned flags = 0;
	if (offloads & NET_OFFLOAD_CSUM)
		flags |= TUN_F_CSUM;
	if (offloads & NET_OFFLOAD_TSO4)
		flags |= TUN_F_TSO4;
	if (offloads & NET_OFFLOAD_TSO6)
		flags |= TUN_F_TSO6;
	if (t->dead)
		return -EIO;
	return ioctl(t->src.fd, TUNSETOFFLOAD, (unsigned long)flags) < 0 ? -errno : 0;
}

static int tap_set_active(struct net_backend *nb, bool active)
{
	struct tap *t = to_tap(nb);
	if (t->dead)
		return -EIO;
	if (active != t->detached)
		return 0;
	if (!t->multi) {
		log_error("tap %s: a single-queue tap cannot be handed to another process (create "
			  "it with multi_queue, or let mote create it)", t->name);
		return -EOPNOTSUPP;
	}
	struct ifreq ifr = { .ifr_flags = active ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE };
	if (ioctl(t->src.fd, TUNSETQUEUE, &ifr) < 0) {
		int err = -errno;
		log_error("tap %s: cannot %s its queue: %s", t->name, active ? "attach" : "detach",
			  strerror(errno));
		return err;
	}
	t->detached = !active;
	return 0;
}

static void tap_destroy(struct net_backend *nb)
{
	struct tap *t = to_tap(nb);
	if (t->registered)
		evloop_del(t->loop, &t->src);
	if (t->src.fd >= 0)
		close(t->src.fd);
	free(t);
}

static const struct net_backend_ops tap_ops = {
	.send = tap_send,
	.recv = tap_recv,
	.rx_watch = tap_rx_watch,
	.set_offload = tap_set_offload,
	.set_active = tap_set_active,
	.destroy = tap_destroy,
};

/* How many queues of the interface are attached: the kernel keeps one
 * queues/tx-N directory per attached queue of a tap. -1 when sysfs cannot
 * tell (not mounted, as in a jail). */
static int attached_queues(const char *name)
{
	char path[64];
	snprintf(path, sizeof(path), "/sys/class/net/%s/queues", name);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	int n = 0;
	const struct dirent *e;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, "tx-", 3);
	closedir(d);
	return n;
}

int net_tap_open(const struct vm_net *net, struct evloop *loop, bool share,
		 struct net_backend **out)
{
	struct tap *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->nb = (struct net_backend){ .ops = &tap_ops, .vnet_hdr = true };
	t->loop = loop;
	t->src.fn = tap_event;
	snprintf(t->name, sizeof(t->name), "%s", net->tap);
	int err;
	const char *step = "open /dev/net/tun";
	t->src.fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (t->src.fd < 0)
		goto err_errno;
	unsigned features = 0;
	step = "TUNGETFEATURES";
	if (ioctl(t->src.fd, TUNGETFEATURES, &features) < 0)
		goto err_errno;
	if (!(features & IFF_VNET_HDR)) {
		err = -ENOTSUP;
		log_error("tap %s: the kernel's tap driver has no vnet header support",
			  net->tap);
		goto err;
	}
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	memcpy(ifr.ifr_name, net->tap, strnlen(net->tap, IFNAMSIZ - 1));
	step = "attach (TUNSETIFF)";
	t->multi = features & IFF_MULTI_QUEUE;
	if (t->multi)
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
	if (ioctl(t->src.fd, TUNSETIFF, &ifr) < 0) {
		/* EINVAL: an existing tap made without multi_queue. */
		if (!t->multi || errno != EINVAL)
			goto err_errno;
		t->multi = false;
		ifr.ifr_flags &= (short)~IFF_MULTI_QUEUE;
		if (ioctl(t->src.fd, TUNSETIFF, &ifr) < 0)
			goto err_errno;
	}
	/* A multiqueue tap admits every opener; only a migration's destination
	 * is meant to share one. Anyone else gets what a single-queue tap in
	 * use gives: EBUSY. */
	if (t->multi && !share && attached_queues(t->name) > 1) {
		errno = EBUSY;
		goto err_errno;
	}
	int hdr = NET_HDR_LEN;
	step = "TUNSETVNETHDRSZ";
	if (ioctl(t->src.fd, TUNSETVNETHDRSZ, &hdr) < 0)
		goto err_errno;
	step = "TUNSETOFFLOAD";
	if (ioctl(t->src.fd, TUNSETOFFLOAD, 0ul) < 0)
		goto err_errno;
	/* The default send buffer (wmem_default, ~208 KiB) makes writes fail
	 * with EAGAIN whenever the host's stack lags, and each such frame is
	 * dropped (TCP then retransmits): QEMU lifts it the same way. */
	int sndbuf = INT_MAX;
	step = "TUNSETSNDBUF";
	if (ioctl(t->src.fd, TUNSETSNDBUF, &sndbuf) < 0)
		goto err_errno;
	/* Registered from the start with no events, so rx_watch is one
	 * EPOLL_CTL_MOD; only a hang-up is reported while it is off. */
	err = evloop_add(loop, &t->src, 0);
	if (err) {
		log_error("tap %s: cannot watch it: %s", net->tap, strerror(-err));
		goto err;
	}
	t->registered = true;
	*out = &t->nb;
	return 0;
err_errno:
	err = -errno;
	log_error("tap %s: %s: %s%s", net->tap, step, strerror(errno),
		  errno == EBUSY ? " (in use; a live migration's destination shares it with the "
				   "source only if it is a multi_queue tap)"
		  : errno == EPERM ? " (mote may not create it, or it belongs to another user)"
				   : "");
err:
	tap_destroy(&t->nb);
	return err;
}
