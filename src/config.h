/* struct vm_config: the one place command-line flags (and, later, API
 * bodies and config files) become a VM's configuration. Validation of
 * values that do not need the files or KVM happens here, with one message
 * naming the bad value. */
#ifndef MOTE_CONFIG_H
#define MOTE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/ratelimit.h"

#define CONFIG_MIN_MEM_MIB 4
#define CONFIG_DEFAULT_MEM_MIB 256
#define CONFIG_DEFAULT_CMDLINE "console=ttyS0 reboot=k"

#define CONFIG_MAX_DISKS 8
#define CONFIG_DISK_ID_LEN 20 /* virtio-blk serial: 20 bytes */

struct vm_disk {
	const char *path;
	bool read_only;
	char id[CONFIG_DISK_ID_LEN + 1]; /* default: "disk<N>" */
	struct ratelimit_cfg rl;         /* bw=, ops=; zero: unlimited */
};

#define CONFIG_VSOCK_MIN_CID 3u            /* 0-2 are reserved (2 is the host) */
#define CONFIG_VSOCK_MAX_CID 0xfffffffeu   /* -1 is VMADDR_CID_ANY */
#define CONFIG_VSOCK_PATH_MAX 107u         /* sun_path, without the NUL */

/* --vsock cid=N,uds=PATH (Firecracker's PUT /vsock). */
struct vm_vsock {
	bool enabled;
	uint32_t cid;        /* the guest's context id, 3 .. 2^32 - 2 */
	const char *uds;     /* host socket path; guest port P connects to PATH_P */
};

struct vm_config {
	const char *kernel;
	const char *initrd;  /* NULL: none */
	const char *cmdline;
	uint64_t mem_mib;
	unsigned cpus;
	const char *kvm_path; /* /dev/kvm unless MOTE_KVM_DEV says otherwise */
	bool rng;             /* a virtio-rng device */
	struct ratelimit_cfg rng_rl; /* its rate limits (API only) */
	const char *serial_out; /* the UART's output file; NULL: stdout */
	bool boot_timer;      /* Firecracker's boot-timer device */
	uint64_t start_ns;    /* CLOCK_MONOTONIC when mote started */
	struct vm_disk disks[CONFIG_MAX_DISKS]; /* the first is /dev/vda */
	unsigned nr_disks;
	struct vm_vsock vsock;
	bool verbose;
	bool no_seccomp;            /* --no-seccomp */
	const char *seccomp_filter; /* --seccomp-filter: a raw BPF program for every thread */
};

void config_defaults(struct vm_config *cfg);

/* Parses `mote run` arguments (argv[0] is "run"). 0 on success; 1 after
 * printing the usage (--help); -EINVAL after printing one line on stderr
 * naming the bad flag or value. */
int config_parse_run(struct vm_config *cfg, int argc, char **argv);

/* Parses "PATH[,ro][,id=NAME][,bw=SIZE:MS[:BURST]][,ops=N:MS[:BURST]]" into a disk; -EINVAL after logging. */
int config_parse_disk(const char *arg, struct vm_disk *disk, unsigned index);

/* Parses "cid=N,uds=PATH" (both required, any order) into vs; checks
 * 3 <= N <= 2^32 - 2 and that PATH fits a Unix socket address. -EINVAL
 * after logging. */
int config_parse_vsock(char *arg, struct vm_vsock *vs);

/* Parses a decimal count in [min, max]; -EINVAL or -ERANGE. */
int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

void config_usage(FILE *f);

#endif
