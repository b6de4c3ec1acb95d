/* Command-line parsing into struct vm_config; see config.h. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "util/log.h"

void config_defaults(struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cmdline = CONFIG_DEFAULT_CMDLINE;
	cfg->mem_mib = CONFIG_DEFAULT_MEM_MIB;
	cfg->cpus = 1;
	const char *dev = getenv("MOTE_KVM_DEV");
	cfg->kvm_path = dev && *dev ? dev : "/dev/kvm";
}

void config_usage(FILE *f)
{
	fprintf(f,
		"usage: mote run --kernel PATH [--initrd PATH] [--cmdline STR] [--mem MiB]\n"
		"                [--cpus N] [--disk PATH[,ro][,id=NAME]]... [--rng]\n"
		"                [--vsock cid=N,uds=PATH] [--verbose]\n"
		"                [--no-seccomp | --seccomp-filter FILE]\n"
		"\n"
		"  --kernel PATH   bzImage, PVH ELF (vmlinux) or ELF64 test guest\n"
		"  --initrd PATH   initial ramdisk\n"
		"  --cmdline STR   kernel command line (default \"%s\")\n"
		"  --mem MiB       guest RAM in MiB (default %u, at least %u)\n"
		"  --cpus N        vCPUs (default 1, at most %u)\n"
		"  --disk SPEC     a virtio-blk disk: PATH[,ro][,id=NAME][,bw=B:MS[:BURST]]\n"
		"                  [,ops=N:MS[:BURST]] (raw image; repeatable, the first is\n"
		"                  /dev/vda; NAME is its serial, 20 bytes at most; bw/ops: rate\n"
		"                  limits, B bytes or N requests refilled every MS ms, K/M/G)\n"
		"  --rng           a virtio-rng device (entropy from the host's getrandom)\n"
		"  --vsock SPEC    a virtio-vsock device: cid=N (guest CID, >= 3), uds=PATH (host\n"
		"                  Unix socket; guest port P connects to PATH_P, host clients\n"
		"                  connect to PATH and send \"CONNECT <port>\\n\", as in Firecracker)\n"
		"  --verbose       more diagnostics on stderr (twice: debug)\n"
		"  --no-seccomp    install no seccomp filters (debugging)\n"
		"  --seccomp-filter FILE  a raw BPF program used as every thread's filter\n"
		"\n"
		"Console: the guest's COM1 on stdin/stdout; Ctrl-A x quits.\n"
		"Exit status: 0 guest powered off or reset; 1 bad configuration;\n"
		"2 guest triple fault; 3 KVM error; 4 internal error; 128+N signal N\n"
		"(159, SIGSYS: a thread made a system call its seccomp filter forbids).\n",
		CONFIG_DEFAULT_CMDLINE, CONFIG_DEFAULT_MEM_MIB, CONFIG_MIN_MEM_MIB, X86_MAX_CPUS);
}

int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int config_parse_disk(const char *arg, struct vm_disk *disk, unsigned index)
{
	memset(disk, 0, sizeof(*disk));
	snprintf(disk->id, sizeof(disk->id), "disk%u", index);
	const char *comma = strchr(arg, ',');
	size_t path_len = comma ? (size_t)(comma - arg) : strlen(arg);
	if (path_len == 0) {
		log_error("--disk %s: no path", arg);
		return -EINVAL;
	}
	/* The path points into argv (no copy): cut it at the first comma. */
	if (comma)
		*(char *)comma = '\0';
	disk->path = arg;
	for (const char *opt = comma ? comma + 1 : NULL; opt && *opt;) {
		const char *end = strchr(opt, ',');
		size_t len = end ? (size_t)(end - opt) : strlen(opt);
		if (len == 2 && !strncmp(opt, "ro", 2)) {
			disk->read_only = true;
		} else if (len > 3 && !strncmp(opt, "id=", 3)) {
			if (len - 3 > CONFIG_DISK_ID_LEN) {
				log_error("--disk %s: id is longer than %u bytes", arg,
					  CONFIG_DISK_ID_LEN);
				return -EINVAL;
			}
			memcpy(disk->id, opt + 3, len - 3);
			disk->id[len - 3] = '\0';
		} else if ((len > 3 && !strncmp(opt, "bw=", 3)) || (len > 4 && !strncmp(opt, "ops=", 4))) {
			bool bw = opt[0] == 'b';
			char val[64];
			size_t skip = bw ? 3 : 4;
			snprintf(val, sizeof(val), "%.*s", (int)(len - skip), opt + skip);
			if (len - skip >= sizeof(val) ||
			    ratelimit_parse_bucket(val, bw ? &disk->rl.bw : &disk->rl.ops)) {
				log_error("--disk %s: %.*s: expected %s=SIZE:REFILL_MS[:BURST] "
					  "(SIZE > 0, REFILL_MS 1..3600000)", arg, (int)len, opt,
					  bw ? "bw" : "ops");
				return -EINVAL;
			}
		} else {
			log_error("--disk %s: unknown option '%.*s' (ro, id=NAME, bw=, ops=)", arg,
				  (int)len, opt);
			return -EINVAL;
		}
		opt = end ? end + 1 : NULL;
	}
	return 0;
}

int config_parse_vsock(char *arg, struct vm_vsock *vs)
{
	char orig[512]; /* for messages: arg is cut up below */
	snprintf(orig, sizeof(orig), "%s", arg);
	memset(vs, 0, sizeof(*vs));
	bool have_cid = false;
	uint64_t cid = 0;
	for (char *opt = *arg ? arg : NULL; opt;) {
		char *end = strchr(opt, ',');
		/* A path may hold commas: uds= runs to the next ",cid=" or the end. */
		if (!strncmp(opt, "uds=", 4)) {
			char *next = end;
			while (next && strncmp(next + 1, "cid=", 4))
				next = strchr(next + 1, ',');
			end = next;
		}
		if (end)
			*end = '\0';
		if (!strncmp(opt, "cid=", 4)) {
			if (config_parse_u64(opt + 4, CONFIG_VSOCK_MIN_CID, CONFIG_VSOCK_MAX_CID, &cid) < 0) {
				log_error("--vsock %s: cid must be a number from %u to %u", orig,
					  CONFIG_VSOCK_MIN_CID, CONFIG_VSOCK_MAX_CID);
				return -EINVAL;
			}
			have_cid = true;
		} else if (!strncmp(opt, "uds=", 4)) {
			vs->uds = opt + 4;
		} else {
			log_error("--vsock %s: unknown option '%s' (cid=N,uds=PATH)", orig, opt);
			return -EINVAL;
		}
		opt = end ? end + 1 : NULL;
	}
	if (!have_cid || !vs->uds) {
		log_error("--vsock %s: needs cid=N and uds=PATH", orig);
		return -EINVAL;
	}
	if (!*vs->uds || strlen(vs->uds) > CONFIG_VSOCK_PATH_MAX) {
		log_error("--vsock %s: uds path must be 1 to %u bytes (a Unix socket address)", orig,
			  CONFIG_VSOCK_PATH_MAX);
		return -EINVAL;
	}
	vs->cid = (uint32_t)cid;
	vs->enabled = true;
	return 0;
}

static uint64_t host_mem_mib(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	if (pages <= 0 || psize <= 0)
		return UINT64_MAX;
	return (uint64_t)pages * (uint64_t)psize >> 20;
}

int config_parse_run(struct vm_config *cfg, int argc, char **argv)
{
	enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CPUS, OPT_DISK, OPT_RNG,
	       OPT_VSOCK, OPT_VERBOSE, OPT_NO_SECCOMP, OPT_SECCOMP, OPT_HELP };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "rng", no_argument, NULL, OPT_RNG },
		{ "vsock", required_argument, NULL, OPT_VSOCK },
		{ "verbose", no_argument, NULL, OPT_VERBOSE },
		{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
		{ "seccomp-filter", required_argument, NULL, OPT_SECCOMP },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	int verbose = 0;
	uint64_t v;
	opterr = 0;
	optind = 1;
	for (;;) {
		int prev = optind;
		int c = getopt_long_only(argc, argv, ":", opts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case OPT_KERNEL:
			cfg->kernel = optarg;
			break;
		case OPT_INITRD:
			cfg->initrd = optarg;
			break;
		case OPT_CMDLINE:
			cfg->cmdline = optarg;
			break;
		case OPT_MEM: {
			uint64_t host = host_mem_mib();
			int r = config_parse_u64(optarg, 0, UINT64_MAX >> 20, &v);
			if (r == -EINVAL) {
				log_error("--mem %s: not a number of MiB", optarg);
				return -EINVAL;
			}
			if (r == 0 && v < CONFIG_MIN_MEM_MIB) {
				log_error("--mem %s: must be at least %u MiB", optarg, CONFIG_MIN_MEM_MIB);
				return -EINVAL;
			}
			if (r < 0 || v > host) {
				log_error("--mem %s: more than the host's %llu MiB of RAM", optarg,
					  (unsigned long long)host);
				return -EINVAL;
			}
			cfg->mem_mib = v;
			break;
		}
		case OPT_CPUS:
			if (config_parse_u64(optarg, 1, X86_MAX_CPUS, &v) < 0) {
				log_error("--cpus %s: must be a number from 1 to %u", optarg,
					  X86_MAX_CPUS);
				return -EINVAL;
			}
			cfg->cpus = (unsigned)v;
			break;
		case OPT_DISK:
			if (cfg->nr_disks == CONFIG_MAX_DISKS) {
				log_error("--disk %s: at most %u disks", optarg, CONFIG_MAX_DISKS);
				return -EINVAL;
			}
			if (config_parse_disk(optarg, &cfg->disks[cfg->nr_disks], cfg->nr_disks) < 0)
				return -EINVAL;
			cfg->nr_disks++;
			break;
		case OPT_RNG:
			cfg->rng = true;
			break;
		case OPT_VSOCK:
			if (cfg->vsock.enabled) {
				log_error("--vsock %s: only one vsock device", optarg);
				return -EINVAL;
			}
			if (config_parse_vsock(optarg, &cfg->vsock) < 0)
				return -EINVAL;
			break;
		case OPT_VERBOSE:
			verbose++;
			break;
		case OPT_NO_SECCOMP:
			cfg->no_seccomp = true;
			break;
		case OPT_SECCOMP:
			cfg->seccomp_filter = optarg;
			break;
		case OPT_HELP:
			config_usage(stdout);
			return 1;
		case ':':
			log_error("%s needs a value", argv[prev]);
			return -EINVAL;
		default:
			log_error("unknown option %s (see mote run --help)", argv[prev]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument %s (see mote run --help)", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->kernel) {
		log_error("--kernel is required (see mote run --help)");
		return -EINVAL;
	}
	cfg->verbose = verbose > 0;
	log_set_level(verbose >= 2 ? LOG_DEBUG : verbose ? LOG_INFO : LOG_WARN);
	return 0;
}
