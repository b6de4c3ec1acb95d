/* Host side of the serial console; see console.h. */
#include "console.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <termios.h>
#include <unistd.h>

#include "util/log.h"

#define CTRL_A 0x01

static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;

static void restore_terminal(void)
{
	if (tio_saved)
		tcsetattr(0, TCSANOW, &saved_tio);
}

/* A crash must not leave the user's terminal raw: restore, then die. */
static void crash_handler(int sig)
{
	restore_terminal();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int make_raw(void)
{
	if (tcgetattr(0, &saved_tio) < 0)
		return -errno;
	struct termios raw = saved_tio;
	cfmakeraw(&raw);
	raw.c_oflag |= OPOST | ONLCR; /* mote's own stderr lines stay readable */
	if (tcsetattr(0, TCSANOW, &raw) < 0)
		return -errno;
	tio_saved = 1;
	atexit(restore_terminal);
	static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL };
	for (unsigned i = 0; i < sizeof(crash_signals) / sizeof(crash_signals[0]); i++)
		signal(crash_signals[i], crash_handler);
	return 0;
}

static void set_reading(struct console *c, bool on)
{
	if (c->reading == on || c->in.fd < 0)
		return;
	if (evloop_mod(c->loop, &c->in, on ? EPOLLIN : 0) == 0)
		c->reading = on;
}

/* Hands pending input to the UART; stops reading while it is full. */
static void flush_pending(struct console *c)
{
	while (c->pending_len) {
		size_t n = serial8250_rx(c->serial, c->pending + c->pending_off, c->pending_len);
		c->pending_off += (unsigned)n;
		c->pending_len -= (unsigned)n;
		if (n == 0)
			break;
	}
	set_reading(c, c->pending_len == 0);
}

static void on_input(struct evloop_source *src, uint32_t events)
{
	struct console *c = (struct console *)((char *)src - offsetof(struct console, in));
	/* An event from the same epoll batch can arrive after reading paused:
	 * pending input must reach the UART before more is read. */
	if (c->pending_len || src->fd < 0)
		return;
	uint8_t buf[sizeof(c->pending)];
	ssize_t n = read(src->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) { /* EOF or error: the guest just gets no more input */
		evloop_del(c->loop, src);
		src->fd = -1;
		return;
	}
	c->pending_off = c->pending_len = 0;
	for (ssize_t i = 0; i < n; i++) {
		uint8_t ch = buf[i];
		if (c->is_tty && c->escape) {
			c->escape = false;
			if (ch == 'x' || ch == 'X') {
				c->quit(c->quit_opaque);
				return;
			}
			if (ch != CTRL_A)
				continue; /* unknown escape: dropped, as QEMU does */
		} else if (c->is_tty && ch == CTRL_A) {
			c->escape = true;
			continue;
		}
		c->pending[c->pending_len++] = ch;
	}
	flush_pending(c);
}

static void on_ready(struct evloop_source *src, uint32_t events)
{
	struct console *c = (struct console *)((char *)src - offsetof(struct console, ready));
	uint64_t v;
	if (read(src->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_debug("console: eventfd read: %s", strerror(errno));
	flush_pending(c);
}

/* Runs on a vCPU thread with the UART locked: only signal the loop. */
static void uart_has_room(void *opaque)
{
	struct console *c = opaque;
	uint64_t one = 1;
	if (write(c->ready.fd, &one, sizeof(one)) < 0)
		log_debug("console: eventfd write: %s", strerror(errno));
}

int console_init(struct console *c, struct evloop *loop, struct serial8250 *serial,
		 int in_fd, void (*quit)(void *), void *opaque)
{
	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->serial = serial;
	c->quit = quit;
	c->quit_opaque = opaque;
	c->in.fn = on_input;
	c->in.fd = in_fd;
	c->ready.fn = on_ready;
	c->ready.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->ready.fd < 0)
		return -errno;
	int err = evloop_add(loop, &c->ready, EPOLLIN);
	if (err)
		goto err_efd;
	serial->rx_ready = uart_has_room;
	serial->rx_ready_opaque = c;
	/* stdin may be closed, /dev/null or a regular file epoll refuses:
	 * then the guest simply gets no input. */
	if (evloop_add(loop, &c->in, EPOLLIN) < 0) {
		c->in.fd = -1;
		return 0;
	}
	c->reading = true;
	c->is_tty = isatty(in_fd);
	if (c->is_tty && make_raw() < 0)
		log_warn("console: cannot put the terminal in raw mode: %s", strerror(errno));
	return 0;
err_efd:
	close(c->ready.fd);
	return err;
}

void console_fini(struct console *c)
{
	restore_terminal();
	tio_saved = 0;
	if (c->ready.fd >= 0)
		close(c->ready.fd);
	c->ready.fd = -1;
}
