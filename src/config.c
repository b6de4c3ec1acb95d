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
		"                [--cpus N] [--disk PATH[,ro][,id=NAME]]... [--rng] [--verbose]\n"
		"       mote run --restore SNAPSHOT,MEMFILE [--verbose]\n"
		"       mote run --migrate-listen tcp:IPV4:PORT [--verbose]\n"
		"\n"
		"  --kernel PATH   bzImage, PVH ELF (vmlinux) or ELF64 test guest\n"
		"  --initrd PATH   initial ramdisk\n"
		"  --cmdline STR   kernel command line (default \"%s\")\n"
		"  --mem MiB       guest RAM in MiB (default %u, at least %u)\n"
		"  --cpus N        vCPUs (default 1, at most %u)\n"
		"  --disk SPEC     a virtio-blk disk: PATH[,ro][,id=NAME] (raw image; repeatable,\n"
		"                  the first is /dev/vda; NAME is its serial, 20 bytes at most)\n"
		"  --rng           a virtio-rng device (entropy from the host's getrandom)\n"
		"  --restore SNAPSHOT,MEMFILE\n"
		"                  resume a snapshot taken through the API (PUT /snapshot/create):\n"
		"                  the machine, its disks and devices come from SNAPSHOT, guest RAM\n"
		"                  from MEMFILE (mapped copy-on-write, read lazily)\n"
		"  --migrate-listen tcp:IPV4:PORT\n"
		"                  receive a live migration (PUT /migrate on the source): the\n"
		"                  machine comes from the source, which stops once this side has\n"
		"                  verified and loaded the whole VM\n"
		"  --verbose       more diagnostics on stderr (twice: debug)\n"
		"\n"
		"Console: the guest's COM1 on stdin/stdout; Ctrl-A x quits.\n"
		"Exit status: 0 guest powered off or reset; 1 bad configuration;\n"
		"2 guest triple fault; 3 KVM error; 4 internal error; 128+N signal N.\n",
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
		} else {
			log_error("--disk %s: unknown option '%.*s' (ro, id=NAME)", arg, (int)len, opt);
			return -EINVAL;
		}
		opt = end ? end + 1 : NULL;
	}
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
	       OPT_VERBOSE, OPT_HELP, OPT_RESTORE, OPT_MIGRATE_LISTEN };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "rng", no_argument, NULL, OPT_RNG },
		{ "verbose", no_argument, NULL, OPT_VERBOSE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "restore", required_argument, NULL, OPT_RESTORE },
		{ "migrate-listen", required_argument, NULL, OPT_MIGRATE_LISTEN },
		{ 0 },
	};
	int verbose = 0;
	uint64_t v;
	const char *machine_flag = NULL; /* a flag that --restore replaces */
	opterr = 0;
	optind = 1;
	for (;;) {
		int prev = optind;
		int c = getopt_long_only(argc, argv, ":", opts, NULL);
		if (c == -1)
			break;
		if (c >= OPT_KERNEL && c <= OPT_RNG)
			machine_flag = argv[prev];
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
		case OPT_VERBOSE:
			verbose++;
			break;
		case OPT_MIGRATE_LISTEN:
			cfg->migrate_listen = optarg;
			break;
		case OPT_RESTORE: {
			/* Cut at the comma: the paths point into argv, as --disk's do. */
			char *comma = strchr(optarg, ',');
			if (!comma || comma == optarg || !comma[1]) {
				log_error("--restore %s: expected SNAPSHOT,MEMFILE", optarg);
				return -EINVAL;
			}
			*comma = '\0';
			cfg->restore = optarg;
			cfg->restore_mem = comma + 1;
			break;
		}
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
	if (cfg->restore && machine_flag) {
		log_error("%s: with --restore the machine comes from the snapshot", machine_flag);
		return -EINVAL;
	}
	if (cfg->migrate_listen && (machine_flag || cfg->restore)) {
		log_error("%s: with --migrate-listen the machine comes from the source",
			  machine_flag ? machine_flag : "--restore");
		return -EINVAL;
	}
	if (!cfg->kernel && !cfg->restore && !cfg->migrate_listen) {
		log_error("--kernel is required (see mote run --help)");
		return -EINVAL;
	}
	cfg->verbose = verbose > 0;
	log_set_level(verbose >= 2 ? LOG_DEBUG : verbose ? LOG_INFO : LOG_WARN);
	return 0;
}
