/* Command-line parsing into struct vm_config; see config.h. */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
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
		"                [--cpus N] [--disk PATH[,ro][,id=NAME]]... [--net SPEC]...\n"
		"                [--rng] [--vsock cid=N,uds=PATH] [--verbose]\n"
		"                [--no-seccomp | --seccomp-filter FILE]\n"
		"       mote run --restore SNAPSHOT,MEMFILE [--verbose]\n"
		"       mote run --migrate-listen tcp:IPV4:PORT [--migrate-disk ID=PATH]...\n"
		"                [--verbose]\n"
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
		"  --net SPEC      a virtio-net interface (repeatable, at most %u):\n"
		"                    tap=NAME[,mac=MAC][,id=ID]   an existing tap (or one mote\n"
		"                                                 creates when it may)\n"
		"                    user[,hostfwd=[tcp|udp]:[HADDR]:HPORT-[GADDR]:GPORT]...\n"
		"                                   user-mode network 10.0.2.0/24 (libslirp)\n"
		"                  rate limits: ,rx-bw= ,rx-ops= ,tx-bw= ,tx-ops=\n"
		"                  SIZE:REFILL_MS[:BURST] (bytes or frames; K/M/G suffixes)\n"
		"  --rng           a virtio-rng device (entropy from the host's getrandom)\n"
		"  --vsock SPEC    a virtio-vsock device: cid=N (guest CID, >= 3), uds=PATH (host\n"
		"                  Unix socket; guest port P connects to PATH_P, host clients\n"
		"                  connect to PATH and send \"CONNECT <port>\\n\", as in Firecracker)\n"
		"  --restore SNAPSHOT,MEMFILE\n"
		"                  resume a snapshot taken through the API (PUT /snapshot/create):\n"
		"                  the machine, its disks and devices come from SNAPSHOT, guest RAM\n"
		"                  from MEMFILE (mapped copy-on-write, read lazily)\n"
		"  --migrate-listen tcp:IPV4:PORT\n"
		"                  receive a live migration (PUT /migrate on the source): the\n"
		"                  machine comes from the source, which stops once this side has\n"
		"                  verified and loaded the whole VM\n"
		"  --migrate-disk ID=PATH\n"
		"                  with --migrate-listen, when the source copies its disks\n"
		"                  (\"copy_disks\": true): disk ID's copy is written to PATH, a\n"
		"                  new file; every copied disk needs one\n"
		"  --verbose       more diagnostics on stderr (twice: debug)\n"
		"  --no-seccomp    install no seccomp filters (debugging)\n"
		"  --seccomp-filter FILE  a raw BPF program used as every thread's filter\n"
		"\n"
		"Console: the guest's COM1 on stdin/stdout; Ctrl-A x quits.\n"
		"Exit status: 0 guest powered off or reset; 1 bad configuration;\n"
		"2 guest triple fault; 3 KVM error; 4 internal error; 128+N signal N\n"
		"(159, SIGSYS: a thread made a system call its seccomp filter forbids).\n",
		CONFIG_DEFAULT_CMDLINE, CONFIG_DEFAULT_MEM_MIB, CONFIG_MIN_MEM_MIB, X86_MAX_CPUS,
		CONFIG_MAX_NETS);
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

int config_parse_mac(const char *s, size_t len, uint8_t mac[6])
{
	uint8_t m[6];
	if (len != 17)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]) ||
		    (i < 5 && p[2] != ':'))
			return -EINVAL;
		char hex[3] = { p[0], p[1], 0 };
		m[i] = (uint8_t)strtoul(hex, NULL, 16);
	}
	/* A NIC's own address: unicast (I/G bit clear) and not all zeroes. */
	if ((m[0] & 1) || !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}

bool config_ifname_ok(const char *s, size_t len)
{
	if (len == 0 || len > CONFIG_IFNAME_LEN || (len == 1 && s[0] == '.') ||
	    (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == '%' || s[i] == ',' ||
		    !isgraph((unsigned char)s[i]))
			return false;
	return true;
}

/* An IPv4 address of [s, s + len); empty means `dflt`. */
static int parse_addr(const char *s, size_t len, uint32_t dflt, uint32_t *out)
{
	char buf[16];
	if (len == 0) {
		*out = dflt;
		return 0;
	}
	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	*out = a.s_addr;
	return 0;
}

static int parse_port(const char *s, size_t len, uint16_t *out)
{
	char buf[8];
	uint64_t v;
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (config_parse_u64(buf, 1, 65535, &v))
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int config_parse_hostfwd(const char *s, size_t len, struct vm_hostfwd *fwd)
{
	struct vm_hostfwd f = { 0 };
	const char *end = s + len, *p = s;
	const char *colon = memchr(p, ':', len);
	if (!colon)
		return -EINVAL;
	/* Protocol: "tcp", "udp" or empty (tcp). */
	size_t n = (size_t)(colon - p);
	if (n == 3 && !strncmp(p, "udp", 3))
		f.udp = true;
	else if (!(n == 0 || (n == 3 && !strncmp(p, "tcp", 3))))
		return -EINVAL;
	p = colon + 1;
	const char *dash = memchr(p, '-', (size_t)(end - p));
	if (!dash)
		return -EINVAL;
	colon = memchr(p, ':', (size_t)(dash - p));
	if (!colon || parse_addr(p, (size_t)(colon - p), 0, &f.host_addr) ||
	    parse_port(colon + 1, (size_t)(dash - colon - 1), &f.host_port))
		return -EINVAL;
	p = dash + 1;
	colon = memchr(p, ':', (size_t)(end - p));
	if (!colon || parse_addr(p, (size_t)(colon - p), htonl(0x0a00020f), &f.guest_addr) ||
	    parse_port(colon + 1, (size_t)(end - colon - 1), &f.guest_port))
		return -EINVAL;
	/* The guest's end lies in the user-mode network, not its gateway,
	 * DNS or broadcast address. */
	uint32_t g = ntohl(f.guest_addr);
	if ((g & 0xffffff00) != 0x0a000200 || (g & 0xff) < 4 || (g & 0xff) == 255)
		return -EINVAL;
	*fwd = f;
	return 0;
}

static int parse_bucket_opt(const char *arg, const char *opt, size_t len, size_t name_len,
			    struct bucket_cfg *b)
{
	char buf[64];
	size_t vlen = len - name_len;
	if (vlen >= sizeof(buf) || vlen == 0)
		goto bad;
	memcpy(buf, opt + name_len, vlen);
	buf[vlen] = '\0';
	if (ratelimit_parse_bucket(buf, b) == 0)
		return 0;
bad:
	log_error("--net %s: bad rate limit '%.*s' (SIZE:REFILL_MS[:BURST], SIZE and BURST "
		  "with K/M/G, refill 1 ms to 1 hour)", arg, (int)len, opt);
	return -EINVAL;
}

int config_parse_net(const char *arg, struct vm_net *net, unsigned index)
{
	memset(net, 0, sizeof(*net));
	snprintf(net->id, sizeof(net->id), "net%u", index);
	static const uint8_t mac0[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	memcpy(net->mac, mac0, 6);
	net->mac[5] = (uint8_t)(mac0[5] + index);
	const char *comma = strchr(arg, ',');
	size_t len = comma ? (size_t)(comma - arg) : strlen(arg);
	if (len == 4 && !strncmp(arg, "user", 4)) {
		net->kind = VM_NET_USER;
	} else if (len > 4 && !strncmp(arg, "tap=", 4)) {
		if (!config_ifname_ok(arg + 4, len - 4)) {
			log_error("--net %s: '%.*s' is not an interface name (1 to %u bytes, no "
				  "'/', ':', '%%', spaces)", arg, (int)(len - 4), arg + 4,
				  CONFIG_IFNAME_LEN);
			return -EINVAL;
		}
		net->kind = VM_NET_TAP;
		memcpy(net->tap, arg + 4, len - 4);
	} else {
		log_error("--net %s: must start with tap=NAME or user", arg);
		return -EINVAL;
	}
	for (const char *opt = comma ? comma + 1 : NULL; opt;) {
		const char *end = strchr(opt, ',');
		len = end ? (size_t)(end - opt) : strlen(opt);
#define IS(name) (len >= sizeof(name) - 1 && !strncmp(opt, name, sizeof(name) - 1))
		if (IS("mac=")) {
			if (config_parse_mac(opt + 4, len - 4, net->mac)) {
				log_error("--net %s: bad MAC address '%.*s' (aa:bb:cc:dd:ee:ff, "
					  "unicast, not zero)", arg, (int)(len - 4), opt + 4);
				return -EINVAL;
			}
		} else if (IS("id=")) {
			if (len == 3 || len - 3 > CONFIG_NET_ID_LEN) {
				log_error("--net %s: id must be 1 to %u bytes", arg,
					  CONFIG_NET_ID_LEN);
				return -EINVAL;
			}
			memcpy(net->id, opt + 3, len - 3);
			net->id[len - 3] = '\0';
		} else if (IS("hostfwd=") && net->kind == VM_NET_USER) {
			if (net->nr_fwd == CONFIG_MAX_HOSTFWD) {
				log_error("--net %s: at most %u hostfwd", arg, CONFIG_MAX_HOSTFWD);
				return -EINVAL;
			}
			if (config_parse_hostfwd(opt + 8, len - 8, &net->fwd[net->nr_fwd])) {
				log_error("--net %s: bad hostfwd '%.*s' ([tcp|udp]:[HOSTADDR]:"
					  "HOSTPORT-[GUESTADDR]:GUESTPORT, guest in 10.0.2.4-254)",
					  arg, (int)(len - 8), opt + 8);
				return -EINVAL;
			}
			net->nr_fwd++;
		} else if (IS("rx-bw=")) {
			if (parse_bucket_opt(arg, opt, len, 6, &net->rx.bw))
				return -EINVAL;
		} else if (IS("rx-ops=")) {
			if (parse_bucket_opt(arg, opt, len, 7, &net->rx.ops))
				return -EINVAL;
		} else if (IS("tx-bw=")) {
			if (parse_bucket_opt(arg, opt, len, 6, &net->tx.bw))
				return -EINVAL;
		} else if (IS("tx-ops=")) {
			if (parse_bucket_opt(arg, opt, len, 7, &net->tx.ops))
				return -EINVAL;
		} else {
			log_error("--net %s: unknown option '%.*s' (mac=, id=, %srx-bw=, rx-ops=, "
				  "tx-bw=, tx-ops=)", arg, (int)len, opt,
				  net->kind == VM_NET_USER ? "hostfwd=, " : "");
			return -EINVAL;
		}
#undef IS
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
	enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CPUS, OPT_DISK, OPT_NET,
	       OPT_RNG, OPT_VSOCK, OPT_VERBOSE, OPT_NO_SECCOMP, OPT_SECCOMP, OPT_HELP,
	       OPT_RESTORE, OPT_MIGRATE_LISTEN, OPT_MIGRATE_DISK };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "net", required_argument, NULL, OPT_NET },
		{ "rng", no_argument, NULL, OPT_RNG },
		{ "vsock", required_argument, NULL, OPT_VSOCK },
		{ "verbose", no_argument, NULL, OPT_VERBOSE },
		{ "no-seccomp", no_argument, NULL, OPT_NO_SECCOMP },
		{ "seccomp-filter", required_argument, NULL, OPT_SECCOMP },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "restore", required_argument, NULL, OPT_RESTORE },
		{ "migrate-listen", required_argument, NULL, OPT_MIGRATE_LISTEN },
		{ "migrate-disk", required_argument, NULL, OPT_MIGRATE_DISK },
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
		case OPT_NET:
			if (cfg->nr_nets == CONFIG_MAX_NETS) {
				log_error("--net %s: at most %u network interfaces", optarg,
					  CONFIG_MAX_NETS);
				return -EINVAL;
			}
			if (config_parse_net(optarg, &cfg->nets[cfg->nr_nets], cfg->nr_nets) < 0)
				return -EINVAL;
			for (unsigned i = 0; i < cfg->nr_nets; i++) {
				if (!strcmp(cfg->nets[i].id, cfg->nets[cfg->nr_nets].id)) {
					log_error("--net %s: id %s is used twice", optarg,
						  cfg->nets[i].id);
					return -EINVAL;
				}
			}
			cfg->nr_nets++;
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
		case OPT_MIGRATE_LISTEN:
			cfg->migrate_listen = optarg;
			break;
		case OPT_MIGRATE_DISK: {
			/* Cut at the '=': the strings point into argv. */
			char *eq = strchr(optarg, '=');
			struct vm_migrate_disk *d = &cfg->migrate_disks[cfg->nr_migrate_disks];
			if (!eq || eq == optarg || !eq[1] || eq - optarg > CONFIG_DISK_ID_LEN) {
				log_error("--migrate-disk %s: expected ID=PATH (ID: a disk's id, "
					  "at most %u bytes)", optarg, CONFIG_DISK_ID_LEN);
				return -EINVAL;
			}
			if (cfg->nr_migrate_disks == CONFIG_MAX_DISKS) {
				log_error("--migrate-disk: at most %u", CONFIG_MAX_DISKS);
				return -EINVAL;
			}
			*eq = '\0';
			for (unsigned i = 0; i < cfg->nr_migrate_disks; i++) {
				if (!strcmp(cfg->migrate_disks[i].id, optarg)) {
					log_error("--migrate-disk %s: given twice", optarg);
					return -EINVAL;
				}
			}
			d->id = optarg;
			d->path = eq + 1;
			cfg->nr_migrate_disks++;
			break;
		}
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
	if (cfg->nr_migrate_disks && !cfg->migrate_listen) {
		log_error("--migrate-disk needs --migrate-listen");
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
