/* The seccomp allowlists, one table per thread type, and their
 * installation; see seccomp.h.
 *
 * Every rule names its user. The tables were found by running the test
 * suite (direct test guests and the API tests) under `strace -f` with the
 * filters in place and reading what each thread calls after its filter
 * went on (docs/ARCHITECTURE.md, "seccomp", says how to repeat that when a
 * feature needs a new call). Calls made only during set-up (open, mmap of
 * guest RAM, KVM_CREATE_*, io_uring_setup, thread creation) are not here:
 * after set-up they are refused.
 *
 * ioctl is filtered by request number on every thread that may call it;
 * the comparison is on the low 32 bits, which is what the kernel reads.
 * Not filtered: file descriptor numbers (which fd a request targets) and
 * futex operations (glibc's locks and condition variables use several).
 *
 * io_uring note: the block back end's reads and writes are submitted with
 * io_uring_enter and executed by the kernel without passing through this
 * filter; io_uring_setup and io_uring_register are refused after set-up,
 * so no new ring or registered file can appear. */
#include "sandbox/seccomp.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"

struct seccomp_rule {
	int nr;       /* __NR_name */
	int arg;      /* -1: any arguments; else this argument must equal val */
	uint64_t val; /* compared on its low 32 bits */
};

#define ANY(name)         { __NR_##name, -1, 0 }
#define ARG(name, i, v)   { __NR_##name, (i), (uint64_t)(v) }
#define IOCTL(req)        ARG(ioctl, 1, req)

/* What a snapshot or a migration reads of a paused VM (snap/cpu.c). */
#define SNAP_STATE_IOCTLS                                                                          \
	IOCTL(KVM_GET_REGS), IOCTL(KVM_GET_SREGS), IOCTL(KVM_GET_FPU), IOCTL(KVM_GET_XSAVE),       \
	IOCTL(KVM_GET_XSAVE2), IOCTL(KVM_GET_XCRS), IOCTL(KVM_GET_DEBUGREGS),                      \
	IOCTL(KVM_GET_VCPU_EVENTS), IOCTL(KVM_GET_MP_STATE), IOCTL(KVM_GET_MSRS),                   \
	IOCTL(KVM_GET_LAPIC), IOCTL(KVM_GET_IRQCHIP), IOCTL(KVM_GET_PIT2), IOCTL(KVM_GET_CLOCK),  \
	IOCTL(KVM_GET_MSR_INDEX_LIST) /* which MSRs to save */

/* vCPU threads: KVM_RUN and the bus handlers it dispatches to. */
static const struct seccomp_rule vcpu_rules[] = {
	IOCTL(KVM_RUN),             /* vcpu_thread: run the guest */
	IOCTL(KVM_GET_REGS),        /* vcpu_rip: the guest's rip in an error line */
	IOCTL(KVM_IRQ_LINE),        /* UART / i8042: interrupt line from a register write */
	IOCTL(KVM_SET_GSI_ROUTING), /* msix: a vector unmasked after its entry changed */
	ANY(write),                 /* UART output, log lines, vmm_stop's and irqfd eventfds */
	ANY(futex),                 /* serial/device/pause locks, the pause condition */
	ANY(clock_gettime),         /* boot timer (CPU time); monotonic where there is no vDSO */
	ANY(rt_sigreturn),          /* return from the SIGUSR1 kick handler */
	ANY(rt_sigprocmask),        /* glibc: blocks signals while the thread exits */
	ARG(madvise, 2, MADV_DONTNEED), /* glibc: frees the thread's stack at exit */
	ANY(exit),                  /* thread exit */
};

/* The event loop (main thread), from vmm_start() until mote exits: device
 * back ends, the console, API commands, then vmm_destroy() and exit. */
static const struct seccomp_rule loop_rules[] = {
	ANY(epoll_wait),            /* evloop_run */
	ANY(epoll_ctl),             /* console: stop/start reading stdin; evloop_del at exit */
	ANY(read),                  /* stdin, eventfds (kicks, stop, API queue, io_uring), signalfd */
	ANY(write),                 /* log lines, irqfd eventfds, metrics, --serial output */
	ANY(writev),                /* virtio-net: a frame to the tap or the network thread */
	ANY(futex),                 /* device locks, the API queue, pause, joining vCPU threads */
	ANY(io_uring_enter),        /* virtio-blk: submit requests */
	ANY(getrandom),             /* virtio-rng */
	ANY(clock_gettime),         /* metrics timestamps where there is no vDSO */
	ANY(tgkill),                /* pthread_kill: SIGUSR1 kicks vCPUs out of KVM_RUN */
	ANY(getpid),                /* pthread_kill (glibc checks the target's process) */
	ANY(rt_sigprocmask),        /* pthread_kill blocks signals around tgkill */
	IOCTL(KVM_IRQ_LINE),        /* UART: receive interrupt for console input */
	IOCTL(KVM_SET_GSI_ROUTING), /* msix: first delivery after the guest changed an entry */
	IOCTL(KVM_IRQFD),           /* virtio_pci_fini: deassign MSI-X irqfds */
	IOCTL(KVM_IOEVENTFD),       /* virtio_pci_fini: deassign kick ioeventfds */
	IOCTL(TCSETS),              /* console_fini: restore the terminal */
	IOCTL(TCGETS),              /* glibc's tcsetattr reads the mode back to check it */
	IOCTL(TUNSETOFFLOAD),       /* virtio-net: the offloads the driver accepted, on the tap */
	IOCTL(TUNSETQUEUE),         /* live migration: the tap's queue handed over, or back */
	IOCTL(KVM_SET_USER_MEMORY_REGION), /* live migration: dirty logging on for live slots */
	ANY(brk),                   /* malloc: the one arena grows or shrinks (M_ARENA_MAX 1) */
	ARG(mmap, 2, PROT_READ | PROT_WRITE), /* malloc: large blocks */
	ARG(madvise, 2, MADV_DONTNEED), /* malloc trimming; vCPU stacks freed after join */
	ANY(munmap),                /* vmm_destroy: guest RAM, kvm_run pages, io_uring rings */
	ANY(close),                 /* vmm_destroy: device fds, eventfds, KVM fds */
	ANY(unlink),                /* api_run: remove the API socket at exit; vsock: its
				     * socket; storage migration: a failed copy */
	ANY(exit_group),            /* exit */
	ANY(timerfd_settime),       /* rate limiters: a throttled request arms the timer;
				     * the end of a VM that migrated away */
	/* virtio-vsock (virtio/vsock_conn.c, backend/vsock_uds.c): host sockets. */
	ANY(socket),                /* guest-initiated connection to PATH_P */
	ANY(connect),               /* ... non-blocking */
	ANY(accept4),               /* host-initiated connection on PATH */
	ANY(recvfrom),              /* the CONNECT line, peeked */
	ANY(readv),                 /* host data into the guest's rx buffers */
	ANY(sendmsg),               /* guest data to the host socket */
	ANY(sendto),                /* the OK line */
	ANY(shutdown),              /* half-close from the guest; a live migration's
				     * connection when mote stops during one */
};

/* The API thread: libevent's evhttp on its own epoll base, jansson, and the
 * request validators (which check that files named in bodies exist). */
static const struct seccomp_rule api_rules[] = {
	ANY(epoll_wait),            /* event_base_dispatch */
	ANY(epoll_ctl),             /* libevent: connection fds in and out */
	ANY(accept4),               /* evhttp: a new client (non-blocking, close-on-exec) */
	IOCTL(FIONREAD),            /* evbuffer_read: how much a connection has */
	ANY(read),                  /* the stop eventfd */
	ANY(readv),                 /* evbuffer_read: request bytes */
	ANY(writev),                /* evbuffer_write: responses */
	ANY(write),                 /* handle(): the event loop's queue eventfd; log lines */
	ANY(shutdown),              /* evhttp: closing a connection */
	ANY(close),                 /* a finished connection */
	ANY(futex),                 /* the command queue (mutex and condition variable) */
	ANY(access),                /* validators: kernel, initrd and drive files readable */
	ANY(newfstatat),            /* PUT /vsock: uds_path must not exist yet (lstat) */
	ANY(clock_gettime),         /* libevent timeouts where there is no vDSO */
	ANY(brk),                   /* malloc: the one arena grows or shrinks (M_ARENA_MAX 1) */
	ARG(mmap, 2, PROT_READ | PROT_WRITE), /* malloc: large blocks */
	ARG(madvise, 2, MADV_DONTNEED), /* malloc trimming; the stack at thread exit */
	ANY(munmap),                /* free of large blocks */
	ANY(rt_sigprocmask),        /* glibc: blocks signals while the thread exits */
	ANY(exit),                  /* thread exit */
};

/* The worker (util/worker.c): files opened and disks copied for the event
 * loop, so that the loop itself needs none of these calls. */
static const struct seccomp_rule worker_rules[] = {
	ANY(openat),                /* PATCH /drives: the new image; storage migration: the copy */
	ANY(newfstatat),            /* blk_file_open: the image's type and size */
	ARG(fcntl, 1, F_SETFL),     /* open_noblock: O_NONBLOCK off once the image is open */
	IOCTL(BLKGETSIZE64),        /* blk_file_open: the size of a block-device image */
	ANY(io_uring_setup),        /* blk_file_open: the new image's ring */
	ANY(io_uring_register),     /* ... and its completion eventfd */
	ANY(eventfd2),              /* ... that eventfd; the migration's signal to the loop */
	ARG(mmap, 2, PROT_READ | PROT_WRITE), /* io_uring rings; malloc: large blocks */
	ANY(munmap),                /* a failed open's ring; malloc */
	ANY(brk),                   /* malloc: the one arena (M_ARENA_MAX 1) */
	ARG(madvise, 2, MADV_DONTNEED), /* malloc trimming; the stack at thread exit */
	ANY(fallocate),             /* storage migration: reserve the copy's size */
	ANY(ftruncate),             /* ... where the file system cannot fallocate */
	ANY(lseek),                 /* SEEK_DATA/SEEK_HOLE: the first pass skips holes */
	ANY(pread64),               /* a block of the image */
	ANY(pwrite64),              /* ... into the copy */
	ANY(fdatasync),             /* the copy is durable before the switch */
	ANY(unlink),                /* a failed copy is removed */
	ANY(rename),                /* a snapshot's files replace the old ones at once */
	IOCTL(KVM_GET_DIRTY_LOG),   /* a diff snapshot's pages */
	SNAP_STATE_IOCTLS,          /* a snapshot's vCPU, irqchip, PIT and clock state */
	ANY(close),                 /* a failed open */
	ANY(write),                 /* log lines; the eventfd to the loop */
	ANY(futex),                 /* the job queue */
	ANY(rt_sigprocmask),        /* glibc: blocks signals while the thread exits */
	ANY(exit),                  /* thread exit */
};

/* The migration thread (snap/migjob.c): a live migration's sender, while
 * the VM runs; it reads guest memory and the dirty logs, and the VM's state
 * once the loop has frozen it. */
static const struct seccomp_rule migrate_rules[] = {
	ANY(socket),                /* the connection to the destination */
	ANY(connect),               /* ... */
	ANY(setsockopt),            /* ... with send and receive timeouts */
	ANY(sendto),                /* messages: config, pages, state */
	ANY(recvfrom),              /* the destination's verdict */
	ANY(close),                 /* the connection at the end */
	ANY(clock_nanosleep),       /* the bandwidth limit */
	ANY(lseek),                 /* copy_disks: SEEK_DATA/SEEK_HOLE, the blocks holding data */
	ANY(pread64),               /* copy_disks: the disks' blocks */
	IOCTL(KVM_GET_DIRTY_LOG),   /* each round's dirty pages */
	SNAP_STATE_IOCTLS,          /* the frozen VM's vCPU, irqchip, PIT and clock state */
	ANY(write),                 /* log lines; the eventfd to the loop */
	ANY(futex),                 /* its job and progress lock; device locks in the state */
	ANY(clock_gettime),         /* rates and downtime where there is no vDSO */
	ANY(brk),                   /* malloc: the one arena (M_ARENA_MAX 1) */
	ARG(mmap, 2, PROT_READ | PROT_WRITE), /* malloc: bitmaps, the bounce buffer */
	ANY(munmap),                /* ... freed */
	ARG(madvise, 2, MADV_DONTNEED), /* malloc trimming; the stack at thread exit */
	ANY(rt_sigprocmask),        /* glibc: blocks signals while the thread exits */
	ANY(exit),                  /* thread exit */
};

/* The network thread (backend/slirp.c): libslirp making the host's sockets
 * for a guest on the user-mode network, frames to and from the device over
 * a socket pair. */
static const struct seccomp_rule net_rules[] = {
	ANY(epoll_wait),            /* the thread's loop; libslirp's private epoll set */
	ANY(epoll_ctl),             /* ... kept up to date with libslirp's sockets */
	ANY(read),                  /* frames from the device; timerfd; the stop eventfd */
	ANY(write),                 /* frames to the device; log lines */
	ANY(timerfd_settime),       /* the earliest of libslirp's timers */
	ANY(socket),                /* libslirp: a guest's TCP/UDP/ICMP flow becomes a socket */
	ANY(connect),               /* ... to where the guest connects */
	ANY(accept),                /* ... hostfwd: a host connection to the guest */
	ANY(sendto),                /* ... data out */
	ANY(recvfrom),              /* ... data in */
	ANY(recvmsg),               /* ... ICMP errors (MSG_ERRQUEUE) */
	ANY(setsockopt),            /* ... SO_REUSEADDR, SO_OOBINLINE, TCP_NODELAY, IP_TTL */
	ANY(getsockopt),            /* ... SO_ERROR after a non-blocking connect */
	ANY(getsockname),           /* ... its own address */
	ANY(getpeername),           /* ... hostfwd: who connected */
	ANY(fcntl),                 /* ... O_NONBLOCK */
	IOCTL(FIONREAD),            /* ... how much a socket has */
	ANY(shutdown),              /* ... a half-closed flow */
	ANY(close),                 /* ... a flow's end */
	ANY(openat),                /* libslirp: /etc/resolv.conf at the first DNS query */
	ANY(newfstatat),            /* ... and whether it changed since */
	ANY(futex),                 /* GLib's and libc's locks */
	ANY(clock_gettime),         /* libslirp's clock where there is no vDSO */
	ANY(brk),                   /* malloc (GLib allocates through it) */
	ARG(mmap, 2, PROT_READ | PROT_WRITE), /* ... large blocks */
	ANY(munmap),
	ARG(madvise, 2, MADV_DONTNEED), /* ... trimming; the stack at thread exit */
	ANY(rt_sigprocmask),        /* glibc: blocks signals while the thread exits */
	ANY(exit),                  /* thread exit */
};

struct seccomp_table {
	const char *name;
	const struct seccomp_rule *rules;
	size_t nr;
};

#define TABLE(n, r) { n, r, sizeof(r) / sizeof((r)[0]) }
static const struct seccomp_table tables[SECCOMP_NR_THREADS] = {
	[SECCOMP_VCPU] = TABLE("vcpu", vcpu_rules),
	[SECCOMP_LOOP] = TABLE("loop", loop_rules),
	[SECCOMP_API] = TABLE("api", api_rules),
	[SECCOMP_WORKER] = TABLE("worker", worker_rules),
	[SECCOMP_NET] = TABLE("net", net_rules),
	[SECCOMP_MIGRATE] = TABLE("migrate", migrate_rules),
};

static struct {
	bool disabled;
	bool log_only;
	struct sock_fprog custom; /* --seccomp-filter: .filter != NULL */
} policy;

const char *seccomp_thread_name(enum seccomp_thread t) { return tables[t].name; }

unsigned seccomp_allowed_count(enum seccomp_thread t)
{
	const struct seccomp_table *tb = &tables[t];
	unsigned n = 0;
	for (size_t i = 0; i < tb->nr; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = tb->rules[j].nr == tb->rules[i].nr;
		n += !seen;
	}
	return n;
}

bool seccomp_rule(enum seccomp_thread t, size_t i, int *nr, int *arg, uint64_t *val)
{
	if (i >= tables[t].nr)
		return false;
	*nr = tables[t].rules[i].nr;
	*arg = tables[t].rules[i].arg;
	*val = tables[t].rules[i].val;
	return true;
}

int seccomp_check_size(size_t bytes)
{
	if (bytes == 0 || bytes % sizeof(struct sock_filter) ||
	    bytes / sizeof(struct sock_filter) > SECCOMP_MAX_INSNS)
		return -EINVAL;
	return 0;
}

static int load_custom(const struct sock_fprog *prog)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -errno;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, prog) < 0)
		return -errno;
	return 0;
}

/* Reads the program and loads it in a short-lived child: the kernel's
 * verdict on it (EINVAL for a malformed program) comes before any thread
 * or guest exists. */
static int read_custom(const char *path)
{
	struct stat st;
	int fd = open_noblock(path, O_RDONLY, &st);
	if (fd < 0) {
		log_error("--seccomp-filter %s: %s", path, strerror(-fd));
		return fd;
	}
	if (!S_ISREG(st.st_mode) || seccomp_check_size((size_t)st.st_size)) {
		log_error("--seccomp-filter %s: not a raw BPF program (a regular file of 8-byte "
			  "instructions, 1 to %u of them)", path, SECCOMP_MAX_INSNS);
		close(fd);
		return -EINVAL;
	}
	size_t size = (size_t)st.st_size;
	struct sock_filter *insns = malloc(size);
	ssize_t n = insns ? read(fd, insns, size) : -1;
	close(fd);
	if (n != (ssize_t)size) {
		log_error("--seccomp-filter %s: cannot read it", path);
		free(insns);
		return -EIO;
	}
	struct sock_fprog prog = { .len = (unsigned short)(size / sizeof(*insns)), .filter = insns };
	pid_t pid = fork();
	if (pid == 0)
		_exit(load_custom(&prog) == 0 ? 0 : 1);
	int ws = 0;
	if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
		if (pid > 0 && WIFSIGNALED(ws))
			log_error("--seccomp-filter %s: the program kills on exit_group, which every "
				  "mote process needs", path);
		else
			log_error("--seccomp-filter %s: the kernel refuses this BPF program", path);
		free(insns);
		return -EINVAL;
	}
	policy.custom = prog;
	return 0;
}

/* Sanitizer runtimes make calls no mote thread makes (LeakSanitizer's
 * exit-time check clones a thread and ptraces it; ASan maps shadow
 * memory): filters would kill them. make check-asan tests everything else;
 * the normal build's suite runs with the filters. */
#if defined(__SANITIZE_ADDRESS__)
#define SECCOMP_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SECCOMP_SANITIZER 1
#endif
#endif

int seccomp_setup(bool disabled, const char *filter_file)
{
#ifdef SECCOMP_SANITIZER
	if (!disabled && !filter_file)
		log_info("seccomp: no filters in a sanitizer build");
	disabled = disabled || !filter_file;
#endif
	policy.disabled = disabled;
	free(policy.custom.filter);
	policy.custom = (struct sock_fprog){ 0 };
	/* glibc reads /etc/localtime on the first tzset(), which libevent's
	 * Date header calls on the API thread: load it before any filter. */
	tzset();
	/* One malloc arena (grown with brk, large blocks mmap'd): a thread's
	 * private arena would need mmap(PROT_NONE)/mprotect to grow, and
	 * glibc opens /proc/sys/vm/overcommit_memory the first time it
	 * shrinks one. mote's few threads allocate little. */
	mallopt(M_ARENA_MAX, 1);
	const char *env = getenv("MOTE_SECCOMP_LOG");
	policy.log_only = env && *env && strcmp(env, "0");
	if (disabled && filter_file) {
		log_error("--no-seccomp and --seccomp-filter %s exclude each other", filter_file);
		return -EINVAL;
	}
	if (disabled || !filter_file)
		return 0;
	return read_custom(filter_file);
}

/* The program is built here, not by libseccomp: the tables are
 * constants, so a straight line of compares does (libseccomp cost ~0.3 ms
 * a thread on the start-up path and 120 KiB of resident library). Layout:
 *
 *	ld arch;  jeq AUDIT_ARCH_X86_64 ? next : deny
 *	ld nr;    jge X32 bit ? deny : next
 *	per system call, in table order:
 *	  any arguments:  jeq nr ? allow : next
 *	  by argument:    jeq nr ? block : past block
 *	                  block: (ld args[i] low word; jeq v ? allow : next)...; deny
 *	deny
 *
 * "allow" and "deny" are return instructions placed inline, so every jump
 * is forward and short (classic BPF jumps at most 255 instructions). An
 * argument is compared on its low 32 bits: what the kernel reads of an
 * ioctl request or an int. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "seccomp: the argument offsets assume a little-endian machine"
#endif
#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8 * (i)))

struct bpf_out {
	struct sock_filter *insn;
	size_t len, cap;
	bool full;
};

static size_t put(struct bpf_out *o, uint16_t code, uint32_t k, uint8_t jt, uint8_t jf)
{
	if (o->len == o->cap) {
		o->full = true;
		return o->len;
	}
	o->insn[o->len] = (struct sock_filter){ .code = code, .jt = jt, .jf = jf, .k = k };
	return o->len++;
}

/* The block that checks one system call's arguments (table entries from
 * first on with the same number), ending in deny. Returns false if a jump
 * would not fit. */
static bool put_arg_block(struct bpf_out *o, const struct seccomp_table *tb, size_t first,
			  uint32_t deny)
{
	int nr = tb->rules[first].nr;
	size_t jeq = put(o, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 0);
	for (int arg = 0; arg < 6; arg++) {
		bool loaded = false;
		for (size_t i = first; i < tb->nr; i++) {
			const struct seccomp_rule *r = &tb->rules[i];
			if (r->nr != nr || r->arg != arg)
				continue;
			if (!loaded)
				put(o, BPF_LD | BPF_W | BPF_ABS, ARG_LO(arg), 0, 0);
			loaded = true;
			put(o, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)r->val, 0, 1);
			put(o, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
		}
	}
	put(o, BPF_RET | BPF_K, deny, 0, 0);
	size_t skip = o->len - jeq - 1;
	if (skip > 255)
		return false;
	if (!o->full)
		o->insn[jeq].jf = (uint8_t)skip;
	return true;
}

int seccomp_compile(enum seccomp_thread t, uint32_t deny, struct sock_filter *insn, size_t cap)
{
	const struct seccomp_table *tb = &tables[t];
	struct bpf_out o = { .insn = insn, .cap = cap };
	put(&o, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch), 0, 0);
	put(&o, BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	put(&o, BPF_RET | BPF_K, deny, 0, 0);
	put(&o, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr), 0, 0);
	put(&o, BPF_JMP | BPF_JGE | BPF_K, 0x40000000 /* __X32_SYSCALL_BIT */, 0, 1);
	put(&o, BPF_RET | BPF_K, deny, 0, 0);
	for (size_t i = 0; i < tb->nr; i++) {
		int nr = tb->rules[i].nr;
		bool seen = false, any = false;
		for (size_t j = 0; j < tb->nr; j++) {
			seen |= j < i && tb->rules[j].nr == nr;
			any |= tb->rules[j].nr == nr && tb->rules[j].arg < 0;
		}
		if (seen)
			continue;
		if (any) {
			put(&o, BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1);
			put(&o, BPF_RET | BPF_K, SECCOMP_RET_ALLOW, 0, 0);
		} else if (!put_arg_block(&o, tb, i, deny)) {
			return -E2BIG;
		}
	}
	put(&o, BPF_RET | BPF_K, deny, 0, 0);
	return o.full ? -E2BIG : (int)o.len;
}

int seccomp_install(enum seccomp_thread t)
{
	if (policy.disabled)
		return 0;
	if (policy.custom.filter) {
		int err = load_custom(&policy.custom);
		if (err)
			log_error("seccomp: cannot install --seccomp-filter on the %s thread: %s",
				  tables[t].name, strerror(-err));
		return err;
	}
	struct sock_filter insn[SECCOMP_TABLE_INSNS];
	int n = seccomp_compile(t, policy.log_only ? SECCOMP_RET_LOG : SECCOMP_RET_KILL_PROCESS,
				insn, SECCOMP_TABLE_INSNS);
	int err = n;
	if (n > 0)
		err = load_custom(&(struct sock_fprog){ .len = (unsigned short)n, .filter = insn });
	if (err)
		log_error("seccomp: cannot install the %s thread's filter: %s", tables[t].name,
			  strerror(-err));
	return err;
}
