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
	bool incoming;                   /* a live migration is copying it here */
};

/* --migrate-disk ID=PATH: where an incoming migration puts disk ID. */
struct vm_migrate_disk {
	const char *id;
	const char *path;
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

#define CONFIG_MAX_NETS 4
#define CONFIG_MAX_HOSTFWD 8
#define CONFIG_NET_ID_LEN 64 /* the API's iface_id */
#define CONFIG_IFNAME_LEN 15 /* IFNAMSIZ - 1 */

enum vm_net_kind { VM_NET_TAP, VM_NET_USER };

/* A user-mode network's host forward (QEMU's hostfwd): addresses in
 * network byte order, ports in host order. */
struct vm_hostfwd {
	bool udp;
	uint32_t host_addr;  /* 0: every host address */
	uint16_t host_port;
	uint32_t guest_addr; /* inside 10.0.2.0/24; default 10.0.2.15 */
	uint16_t guest_port;
};

struct vm_net {
	enum vm_net_kind kind;
	char id[CONFIG_NET_ID_LEN + 1];     /* default "net<N>" */
	char tap[CONFIG_IFNAME_LEN + 1];    /* VM_NET_TAP */
	uint8_t mac[6];                     /* default 52:54:00:12:34:56 + N */
	struct vm_hostfwd fwd[CONFIG_MAX_HOSTFWD]; /* VM_NET_USER */
	unsigned nr_fwd;
	struct ratelimit_cfg rx, tx;
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
	struct vm_net nets[CONFIG_MAX_NETS];
	unsigned nr_nets;
	bool verbose;
	bool no_seccomp;            /* --no-seccomp */
	const char *seccomp_filter; /* --seccomp-filter: a raw BPF program for every thread */
	/* Snapshots (src/snap/): a restore maps restore_mem as guest RAM instead
	 * of loading a kernel, and may start with its vCPUs paused; track_dirty
	 * makes KVM log dirty pages for diff snapshots. */
	const char *restore;      /* --restore: the snapshot file */
	const char *restore_mem;  /* its memory file */
	bool start_paused;
	bool track_dirty;
	/* Live migration (snap/migrate.c): the destination listens here, then
	 * builds the VM from the config the source sends (incoming: RAM is
	 * filled from the stream, nothing is booted). */
	const char *migrate_listen;
	bool incoming;
	struct vm_migrate_disk migrate_disks[CONFIG_MAX_DISKS];
	unsigned nr_migrate_disks;
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
/* Parses "tap=NAME|user[,mac=MAC][,id=ID][,hostfwd=...]...[,rx-bw=B][,rx-ops=B]
 * [,tx-bw=B][,tx-ops=B]" (B: SIZE:REFILL_MS[:BURST]) into a network
 * interface; -EINVAL after logging one line naming the bad part. */
int config_parse_net(const char *arg, struct vm_net *net, unsigned index);
/* "aa:bb:cc:dd:ee:ff", a unicast address other than zero: 0 or -EINVAL. */
int config_parse_mac(const char *s, size_t len, uint8_t mac[6]);
/* QEMU's "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"; the guest
 * address must lie in 10.0.2.0/24. 0 or -EINVAL. */
int config_parse_hostfwd(const char *s, size_t len, struct vm_hostfwd *fwd);
/* A network interface name the kernel would take: 1-15 bytes, no '/',
 * ':', '%', whitespace, not "." or "..". */
bool config_ifname_ok(const char *s, size_t len);

/* Parses a decimal count in [min, max]; -EINVAL or -ERANGE. */
int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

void config_usage(FILE *f);

#endif
