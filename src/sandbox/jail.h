/* `mote jail`: Firecracker's jailer for mote. Run as root, it builds a
 * per-VM root directory, enters it in a new mount namespace (pivot_root),
 * creates only the device nodes mote needs, joins an optional network
 * namespace and a new PID namespace, sets cgroup limits (v1 or v2) and
 * rlimits, closes inherited fds, clears the environment, sets no_new_privs,
 * drops to --uid/--gid and execs the copied mote. docs/JAILER.md has the
 * flags, the layout and what differs from Firecracker. */
#ifndef MOTE_SANDBOX_JAIL_H
#define MOTE_SANDBOX_JAIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define JAIL_ID_MAX 64
#define JAIL_MAX_CGROUPS 16
#define JAIL_MAX_RLIMITS 8
#define JAIL_DEFAULT_BASE "/srv/jailer"
#define JAIL_DEFAULT_NOFILE 2048 /* as Firecracker, when no no-file limit is given */

struct jail_rlimit {
	int resource; /* RLIMIT_FSIZE or RLIMIT_NOFILE */
	uint64_t value;
};

struct jail_opts {
	const char *id;
	const char *exec_file;
	const char *exec_name;   /* the last component of exec_file */
	uid_t uid;
	gid_t gid;
	bool have_uid, have_gid;
	const char *base;        /* --chroot-base-dir */
	const char *netns;       /* NULL: stay in this one */
	bool new_pid_ns;
	bool daemonize;
	int cgroup_version;      /* 1 or 2 */
	const char *parent_cgroup; /* default: exec_name */
	const char *cgroups[JAIL_MAX_CGROUPS]; /* "file=value", validated */
	unsigned nr_cgroups;
	struct jail_rlimit rlimits[JAIL_MAX_RLIMITS];
	unsigned nr_rlimits;
	char **args;             /* what follows "--": mote's arguments */
	int nr_args;
};

/* Parses and validates `mote jail` flags (argv[0] is "jail") without
 * touching the system beyond stat(): 0; 1 after printing help; -EINVAL
 * after one line naming the bad flag or value. */
int jail_parse(struct jail_opts *o, int argc, char **argv);

/* A valid --id: 1 to JAIL_ID_MAX characters of [A-Za-z0-9-]. */
bool jail_id_valid(const char *id);

/* Parses "fsize=N" or "no-file=N" into r. 0 or -EINVAL. */
int jail_parse_rlimit(const char *arg, struct jail_rlimit *r);

/* Checks "controller.file=value" (no '/', no "..", non-empty value without
 * a newline). 0 or -EINVAL. */
int jail_check_cgroup(const char *arg);

/* `mote jail ...`: does it all and execs mote; returns only on failure,
 * with mote's exit status for bad configuration (1) or a failed step (4). */
int jail_main(int argc, char **argv);

#endif
