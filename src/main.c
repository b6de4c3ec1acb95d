/* mote: argv → configuration → vmm_create() → vmm_run().
 *
 * Two front ends build the same struct vm_config: `mote run ...` (flags)
 * and the drop-in mode (`mote --api-sock PATH ...`, Firecracker's flags and
 * REST API, src/api/). Both run one event loop on this thread. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "api/client.h"
#include "config.h"
#include "sandbox/jail.h"
#include "sandbox/seccomp.h"
#include "snap/migrate.h"
#include "snap/snapshot.h"
#include "util/evloop.h"
#include "util/log.h"
#include "util/util.h"
#include "vmm.h"

#include "version.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: mote run --kernel PATH [options]        (mote run --help)\n"
		   "       mote --api-sock PATH [--config-file F] ... (mote --help-api)\n"
		   "       mote jail --id ID --exec-file F --uid U --gid G ... -- ARGS (mote jail --help)\n"
		   "       mote migrate --api-sock PATH --destination tcp:IPV4:PORT ... (mote migrate --help)\n"
		   "       mote --version\n");
}

struct process {
	struct evloop loop;
	struct evloop_source sig;
	struct vm *vm;      /* the running VM, if any */
	int status;         /* exit status when there is no VM to stop */
};

/* SIGINT/SIGTERM/SIGHUP: stop the VM (or, before there is one, the loop). */
static void on_signal(struct evloop_source *src, uint32_t events)
{
	struct process *p = (struct process *)((char *)src - offsetof(struct process, sig));
	struct signalfd_siginfo si;
	if (read(src->fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_warn("stopping on signal %s", strsignal((int)si.ssi_signo));
	p->status = VMM_EXIT_SIGNAL + (int)si.ssi_signo;
	if (p->vm)
		vmm_stop(p->vm, p->status);
	else
		evloop_quit(&p->loop);
}

/* Before any thread exists: signals arrive through the loop's signalfd,
 * and a closed stdout must not kill mote. */
static int process_init(struct process *p)
{
	memset(p, 0, sizeof(*p));
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1); /* the vCPU kick: unblocked in vCPU threads only */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigdelset(&sigs, SIGUSR1);
	int err = evloop_init(&p->loop);
	if (err)
		return err;
	p->sig.fn = on_signal;
	p->sig.fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (p->sig.fd < 0)
		return -errno;
	return evloop_add(&p->loop, &p->sig, EPOLLIN);
}

static void process_fini(struct process *p)
{
	if (p->sig.fd > 0)
		close(p->sig.fd);
	evloop_fini(&p->loop);
}

static int run_main(int argc, char **argv)
{
	struct vm_config cfg;
	config_defaults(&cfg);
	int r = config_parse_run(&cfg, argc, argv);
	if (r)
		return r > 0 ? 0 : VMM_EXIT_CONFIG;
	if (seccomp_setup(cfg.no_seccomp, cfg.seccomp_filter) < 0)
		return VMM_EXIT_CONFIG;
	/* --restore: the snapshot says what machine to build (same vmm_create
	 * as a boot), then its state overwrites the fresh machine's. */
	struct snap_file snap = { 0 };
	struct stat st; /* a FIFO would hold snap_file_open's blocking open() */
	if (cfg.restore && stat(cfg.restore, &st) == 0 && !S_ISREG(st.st_mode)) {
		log_error("snapshot: %s: not a regular file", cfg.restore);
		return VMM_EXIT_CONFIG;
	}
	if (cfg.restore && snap_file_open(&snap, cfg.restore, &cfg) < 0)
		return VMM_EXIT_CONFIG;
	/* --migrate-listen: the same, with the config from the source. */
	int mig_fd = -1;
	if (cfg.migrate_listen) {
		if (migrate_accept(cfg.migrate_listen, &mig_fd) < 0)
			return VMM_EXIT_CONFIG;
		if (migrate_recv_config(mig_fd, &snap, &cfg) < 0) {
			close(mig_fd);
			return VMM_EXIT_CONFIG;
		}
		cfg.incoming = true;
	}
	struct process p;
	if (process_init(&p) < 0) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		snap_file_close(&snap);
		if (mig_fd >= 0)
			close(mig_fd);
		return VMM_EXIT_INTERNAL;
	}
	int status;
	bool arrived = false;
	if (vmm_create(&p.vm, &cfg, &p.loop, &status) == 0) {
		if (cfg.restore && vmm_restore(p.vm, &snap.r) < 0)
			status = VMM_EXIT_CONFIG;
		else if (mig_fd >= 0 && !(arrived = vmm_migrate_incoming(p.vm, mig_fd) == 0))
			status = VMM_EXIT_CONFIG;
		else
			status = vmm_run(p.vm);
		vmm_destroy(p.vm);
	}
	if (mig_fd >= 0 && !arrived)
		migrate_discard_disks(&cfg); /* the migration failed: its copies go */
	if (mig_fd >= 0)
		close(mig_fd);
	process_fini(&p);
	snap_file_close(&snap);
	return status;
}

static void api_vm_started(void *opaque, struct vm *vm)
{
	((struct process *)opaque)->vm = vm;
}

static int api_main(int argc, char **argv, uint64_t start_ns)
{
	struct api_options opts;
	int r = api_parse_options(&opts, argc, argv);
	if (r)
		return r > 0 ? 0 : VMM_EXIT_CONFIG;
	opts.start_ns = start_ns;
	if (seccomp_setup(opts.no_seccomp, opts.seccomp_filter) < 0)
		return VMM_EXIT_CONFIG;
	struct process p;
	if (process_init(&p) < 0) {
		log_error("cannot set up the event loop: %s", strerror(errno));
		return VMM_EXIT_INTERNAL;
	}
	int status = api_run(&opts, &p.loop, api_vm_started, &p);
	if (status < 0)
		status = p.status;
	process_fini(&p);
	return status;
}

int main(int argc, char **argv)
{
	uint64_t start_ns = monotonic_ns();
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("mote %s\n", MOTE_VERSION);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return run_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "jail") == 0)
		return jail_main(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "migrate") == 0)
		return api_client_migrate(argc - 1, argv + 1);
	if (argc >= 2 && strncmp(argv[1], "--", 2) == 0)
		return api_main(argc, argv, start_ns);
	if (argc >= 2)
		log_error("unknown command or option %s", argv[1]);
	usage(stderr);
	return VMM_EXIT_CONFIG;
}
