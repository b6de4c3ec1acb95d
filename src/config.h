/* struct vm_config: the one place command-line flags (and, later, API
 * bodies and config files) become a VM's configuration. Validation of
 * values that do not need the files or KVM happens here, with one message
 * naming the bad value. */
#ifndef MOTE_CONFIG_H
#define MOTE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MIN_MEM_MIB 4
#define CONFIG_DEFAULT_MEM_MIB 256
#define CONFIG_DEFAULT_CMDLINE "console=ttyS0 reboot=k"

#define CONFIG_MAX_DISKS 8
#define CONFIG_DISK_ID_LEN 20 /* virtio-blk serial: 20 bytes */

struct vm_disk {
	const char *path;
	bool read_only;
	char id[CONFIG_DISK_ID_LEN + 1]; /* default: "disk<N>" */
};

struct vm_config {
	const char *kernel;
	const char *initrd;  /* NULL: none */
	const char *cmdline;
	uint64_t mem_mib;
	unsigned cpus;
	const char *kvm_path; /* /dev/kvm unless MOTE_KVM_DEV says otherwise */
	bool rng;             /* a virtio-rng device */
	const char *serial_out; /* the UART's output file; NULL: stdout */
	bool boot_timer;      /* Firecracker's boot-timer device */
	uint64_t start_ns;    /* CLOCK_MONOTONIC when mote started */
	struct vm_disk disks[CONFIG_MAX_DISKS]; /* the first is /dev/vda */
	unsigned nr_disks;
	bool verbose;
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
};

void config_defaults(struct vm_config *cfg);

/* Parses `mote run` arguments (argv[0] is "run"). 0 on success; 1 after
 * printing the usage (--help); -EINVAL after printing one line on stderr
 * naming the bad flag or value. */
int config_parse_run(struct vm_config *cfg, int argc, char **argv);

/* Parses "PATH[,ro][,id=NAME]" into a disk; -EINVAL after logging. */
int config_parse_disk(const char *arg, struct vm_disk *disk, unsigned index);

/* Parses a decimal count in [min, max]; -EINVAL or -ERANGE. */
int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

void config_usage(FILE *f);

#endif
