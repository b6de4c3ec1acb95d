/* `mote jail`: Firecracker's jailer semantics for mote; see jail.h and
 * docs/JAILER.md. The order of the steps is Firecracker's (docs/jailer.md
 * there): validate, close fds, clear the environment, build the chroot
 * directory and copy the exec file in, rlimits, cgroups, network namespace,
 * mount namespace + pivot_root, device nodes, daemonize, PID namespace,
 * no_new_privs, drop to uid/gid, exec.
 *
 * The directory the jailed user will own (<chroot>) is treated as hostile
 * from a previous run: files the jailer creates in it are made with
 * O_EXCL/O_NOFOLLOW after unlinking whatever was there. Cgroups are in
 * jail_cgroup.c. */
#include "sandbox/jail.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sandbox/jail_cgroup.h"
#include "util/log.h"
#include "vmm.h"

bool jail_id_valid(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > JAIL_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	return true;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (*end || errno || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int jail_parse_rlimit(const char *arg, struct jail_rlimit *r)
{
	const char *eq = strchr(arg, '=');
	if (!eq)
		return -EINVAL;
	size_t n = (size_t)(eq - arg);
	if (n == 5 && !strncmp(arg, "fsize", 5))
		r->resource = RLIMIT_FSIZE;
	else if (n == 7 && !strncmp(arg, "no-file", 7))
		r->resource = RLIMIT_NOFILE;
	else
		return -EINVAL;
	return parse_u64(eq + 1, UINT64_MAX - 1, &r->value); /* below RLIM_INFINITY */
}

int jail_check_cgroup(const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg || !eq[1] || strchr(eq, '\n'))
		return -EINVAL;
	size_t n = (size_t)(eq - arg);
	const char *dot = memchr(arg, '.', n);
	if (!dot || dot == arg || dot == eq - 1 || n > NAME_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char c = arg[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return -EINVAL;
	}
	return 0;
}

/* A relative path of plain names: no "", ".", ".." components. */
static bool relative_clean(const char *p)
{
	if (!*p || *p == '/' || strlen(p) >= PATH_MAX / 2)
		return false;
	for (const char *c = p; *c;) {
		size_t n = strcspn(c, "/");
		if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += n;
		if (*c == '/')
			c++;
		if (!*c && c[-1] == '/')
			return false;
	}
	return true;
}

/* The exec file must run with nothing but itself in the jail: a static
 * ELF (no PT_INTERP). */
static int check_exec(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		log_error("--exec-file %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		log_error("--exec-file %s: not an executable regular file", path);
		return -EINVAL;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	bool ok = fd >= 0 && pread(fd, &eh, sizeof(eh), 0) == (ssize_t)sizeof(eh) &&
		  !memcmp(eh.e_ident, ELFMAG, SELFMAG) && eh.e_ident[EI_CLASS] == ELFCLASS64 &&
		  eh.e_phentsize == sizeof(Elf64_Phdr) && eh.e_phnum > 0 && eh.e_phnum < 256;
	bool dynamic = false;
	for (unsigned i = 0; ok && i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		ok = pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph))) ==
		     (ssize_t)sizeof(ph);
		dynamic |= ok && ph.p_type == PT_INTERP;
	}
	if (fd >= 0)
		close(fd);
	if (!ok) {
		log_error("--exec-file %s: not a 64-bit ELF executable", path);
		return -EINVAL;
	}
	if (dynamic) {
		log_error("--exec-file %s: dynamically linked, but the jail holds no shared "
			  "libraries (use build/mote-static)", path);
		return -EINVAL;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: mote jail --id ID --exec-file FILE --uid UID --gid GID\n"
		"                 [--chroot-base-dir DIR] [--netns PATH] [--new-pid-ns]\n"
		"                 [--cgroup-version 1|2] [--parent-cgroup PATH]\n"
		"                 [--cgroup FILE=VALUE]... [--resource-limit fsize|no-file=N]...\n"
		"                 [--daemonize] [-- MOTE ARGUMENTS]\n"
		"Runs FILE (a static mote) in DIR/<name of FILE>/ID/root as UID:GID; see "
		"docs/JAILER.md.\n");
}

static int parse_id_value(const char *flag, const char *s, uint64_t *v)
{
	if (parse_u64(s, UINT32_MAX - 1, v) < 0) {
		log_error("%s %s: must be a number from 0 to %u", flag, s, UINT32_MAX - 1);
		return -EINVAL;
	}
	return 0;
}

int jail_parse(struct jail_opts *o, int argc, char **argv)
{
	enum { O_ID = 256, O_EXEC, O_UID, O_GID, O_BASE, O_NETNS, O_PIDNS, O_CGV, O_CG, O_PCG,
	       O_RLIM, O_DAEMON, O_HELP };
	static const struct option opts[] = {
		{ "id", required_argument, NULL, O_ID },
		{ "exec-file", required_argument, NULL, O_EXEC },
		{ "uid", required_argument, NULL, O_UID },
		{ "gid", required_argument, NULL, O_GID },
		{ "chroot-base-dir", required_argument, NULL, O_BASE },
		{ "netns", required_argument, NULL, O_NETNS },
		{ "new-pid-ns", no_argument, NULL, O_PIDNS },
		{ "cgroup-version", required_argument, NULL, O_CGV },
		{ "cgroup", required_argument, NULL, O_CG },
		{ "parent-cgroup", required_argument, NULL, O_PCG },
		{ "resource-limit", required_argument, NULL, O_RLIM },
		{ "daemonize", no_argument, NULL, O_DAEMON },
		{ "help", no_argument, NULL, O_HELP },
		{ 0 },
	};
	memset(o, 0, sizeof(*o));
	o->base = JAIL_DEFAULT_BASE;
	o->cgroup_version = 1;
	uint64_t v;
	opterr = 0;
	optind = 1;
	for (;;) {
		int prev = optind;
		int c = getopt_long(argc, argv, "+:", opts, NULL);
		if (c == -1)
			break;
		switch (c) {
		case O_ID:
			if (!jail_id_valid(optarg)) {
				log_error("--id %s: 1 to %d letters, digits and hyphens", optarg,
					  JAIL_ID_MAX);
				return -EINVAL;
			}
			o->id = optarg;
			break;
		case O_EXEC: o->exec_file = optarg; break;
		case O_UID:
			if (parse_id_value("--uid", optarg, &v) < 0)
				return -EINVAL;
			o->uid = (uid_t)v;
			o->have_uid = true;
			break;
		case O_GID:
			if (parse_id_value("--gid", optarg, &v) < 0)
				return -EINVAL;
			o->gid = (gid_t)v;
			o->have_gid = true;
			break;
		case O_BASE: o->base = optarg; break;
		case O_NETNS: o->netns = optarg; break;
		case O_PIDNS: o->new_pid_ns = true; break;
		case O_CGV:
			if (strcmp(optarg, "1") && strcmp(optarg, "2")) {
				log_error("--cgroup-version %s: 1 or 2", optarg);
				return -EINVAL;
			}
			o->cgroup_version = optarg[0] - '0';
			break;
		case O_CG:
			if (jail_check_cgroup(optarg) < 0) {
				log_error("--cgroup %s: must be <controller>.<file>=<value> "
					  "(e.g. pids.max=64)", optarg);
				return -EINVAL;
			}
			if (o->nr_cgroups == JAIL_MAX_CGROUPS) {
				log_error("--cgroup %s: at most %d", optarg, JAIL_MAX_CGROUPS);
				return -EINVAL;
			}
			o->cgroups[o->nr_cgroups++] = optarg;
			break;
		case O_PCG:
			if (!relative_clean(optarg)) {
				log_error("--parent-cgroup %s: a relative path without . or .. parts",
					  optarg);
				return -EINVAL;
			}
			o->parent_cgroup = optarg;
			break;
		case O_RLIM:
			if (o->nr_rlimits == JAIL_MAX_RLIMITS ||
			    jail_parse_rlimit(optarg, &o->rlimits[o->nr_rlimits]) < 0) {
				log_error("--resource-limit %s: fsize=<bytes> or no-file=<count>",
					  optarg);
				return -EINVAL;
			}
			o->nr_rlimits++;
			break;
		case O_DAEMON: o->daemonize = true; break;
		case O_HELP: usage(stdout); return 1;
		case ':':
			log_error("%s needs a value", argv[prev]);
			return -EINVAL;
		default:
			log_error("unknown option %s (see mote jail --help)", argv[prev]);
			return -EINVAL;
		}
	}
	/* "--" ends the jailer's flags; getopt has consumed it if present. */
	if (optind < argc && strcmp(argv[optind - 1], "--")) {
		log_error("unexpected argument %s (mote's arguments go after --)", argv[optind]);
		return -EINVAL;
	}
	o->args = argv + optind;
	o->nr_args = argc - optind;
	const char *missing = !o->id ? "--id" : !o->exec_file ? "--exec-file"
			    : !o->have_uid ? "--uid" : !o->have_gid ? "--gid" : NULL;
	if (missing) {
		log_error("%s is required (see mote jail --help)", missing);
		return -EINVAL;
	}
	const char *slash = strrchr(o->exec_file, '/');
	o->exec_name = slash ? slash + 1 : o->exec_file;
	if (!*o->exec_name || !strcmp(o->exec_name, ".") || !strcmp(o->exec_name, "..")) {
		log_error("--exec-file %s: names no file", o->exec_file);
		return -EINVAL;
	}
	if (!o->parent_cgroup)
		o->parent_cgroup = o->exec_name;
	if (check_exec(o->exec_file) < 0)
		return -EINVAL;
	struct stat st;
	if (o->base[0] != '/' || stat(o->base, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    strlen(o->base) > PATH_MAX / 2) {
		log_error("--chroot-base-dir %s: must be an existing directory, given as an "
			  "absolute path", o->base);
		return -EINVAL;
	}
	if (o->netns && (stat(o->netns, &st) < 0)) {
		log_error("--netns %s: %s", o->netns, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

/* ---------------------------------------------------------------- steps */

static int fail(const char *step, const char *what)
{
	log_error("jail: %s %s: %s", step, what, strerror(errno));
	return -1;
}

static int mkdir_p(char *path, mode_t mode)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = mkdir(path, mode);
		*p = '/';
		if (r < 0 && errno != EEXIST)
			return -1;
	}
	return mkdir(path, mode) < 0 && errno != EEXIST ? -1 : 0;
}

/* Copies src into dirfd/name: a fresh root-owned 0755 file, never
 * following whatever a previous jailed process left at that name. */
static int copy_exec(const char *src, int dirfd, const char *name)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -1;
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT) {
		close(in);
		return -1;
	}
	int out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0755);
	if (out < 0) {
		close(in);
		return -1;
	}
	ssize_t n;
	char buf[65536];
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				n = -1;
				break;
			}
			off += w;
		}
		if (n < 0)
			break;
	}
	int err = n < 0 || fchmod(out, 0755) < 0 ? -1 : 0;
	close(in);
	close(out);
	return err;
}

static int set_rlimits(const struct jail_opts *o)
{
	bool nofile = false;
	for (unsigned i = 0; i < o->nr_rlimits; i++) {
		const struct jail_rlimit *r = &o->rlimits[i];
		struct rlimit rl = { .rlim_cur = r->value, .rlim_max = r->value };
		nofile |= r->resource == RLIMIT_NOFILE;
		if (setrlimit(r->resource, &rl) < 0)
			return fail("setrlimit", r->resource == RLIMIT_NOFILE ? "no-file" : "fsize");
	}
	struct rlimit def = { .rlim_cur = JAIL_DEFAULT_NOFILE, .rlim_max = JAIL_DEFAULT_NOFILE };
	if (!nofile && setrlimit(RLIMIT_NOFILE, &def) < 0)
		return fail("setrlimit", "no-file");
	return 0;
}

static int enter_root(const char *root)
{
	if (unshare(CLONE_NEWNS) < 0)
		return fail("unshare", "mount namespace");
	if (mount(NULL, "/", NULL, MS_PRIVATE | MS_REC, NULL) < 0)
		return fail("mount", "/ private");
	if (mount(root, root, NULL, MS_BIND | MS_NOSUID, NULL) < 0)
		return fail("bind mount", root);
	if (chdir(root) < 0)
		return fail("chdir", root);
	if (mkdir("old_root", 0700) < 0 && errno != EEXIST)
		return fail("mkdir", "old_root");
	if (syscall(SYS_pivot_root, ".", "old_root") < 0)
		return fail("pivot_root", root);
	if (umount2("old_root", MNT_DETACH) < 0)
		return fail("umount", "old_root");
	if (rmdir("old_root") < 0)
		return fail("rmdir", "old_root");
	if (chroot(".") < 0 || chdir("/") < 0)
		return fail("chroot", root);
	return 0;
}

/* A character device node for the jailed user, made afresh. */
static int make_node(const char *path, dev_t rdev, uid_t uid, gid_t gid)
{
	if (unlink(path) < 0 && errno != ENOENT)
		return fail("unlink", path);
	if (mknod(path, S_IFCHR | 0600, rdev) < 0)
		return fail("mknod", path);
	if (fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return fail("chown", path);
	return 0;
}

static int make_devices(const struct jail_opts *o, dev_t kvm, dev_t tun)
{
	if ((mkdir("/dev", 0755) < 0 && errno != EEXIST))
		return fail("mkdir", "/dev");
	if (make_node("/dev/kvm", kvm, o->uid, o->gid) < 0)
		return -1;
	if (tun) {
		if (mkdir("/dev/net", 0755) < 0 && errno != EEXIST)
			return fail("mkdir", "/dev/net");
		if (make_node("/dev/net/tun", tun, o->uid, o->gid) < 0)
			return -1;
	}
	if (chown("/", o->uid, o->gid) < 0)
		return fail("chown", "the jail's root");
	return 0;
}

/* The parent's half of --new-pid-ns: record the child's pid, then leave. */
static void write_pid_file(const char *exec_name, pid_t pid)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/%s.pid", exec_name);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		fail("open", path);
		return;
	}
	dprintf(fd, "%d\n", (int)pid);
	close(fd);
}

static int drop_privileges(const struct jail_opts *o)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return fail("prctl", "no_new_privs");
	if (setgroups(0, NULL) < 0)
		return fail("setgroups", "[]");
	if (setresgid(o->gid, o->gid, o->gid) < 0)
		return fail("setresgid", "--gid");
	if (setresuid(o->uid, o->uid, o->uid) < 0)
		return fail("setresuid", "--uid");
	if (o->uid != 0 && setuid(0) == 0) {
		log_error("jail: root could be regained after dropping to uid %u", (unsigned)o->uid);
		return -1;
	}
	return 0;
}

static dev_t host_rdev(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISCHR(st.st_mode) ? st.st_rdev : 0;
}

int jail_main(int argc, char **argv)
{
	struct jail_opts o;
	int r = jail_parse(&o, argc, argv);
	if (r)
		return r > 0 ? 0 : VMM_EXIT_CONFIG;
	if (geteuid() != 0) {
		log_error("mote jail must run as root (it creates namespaces, device nodes, cgroups)");
		return VMM_EXIT_CONFIG;
	}
	if (close_range(3, ~0U, 0) < 0)
		return fail("close_range", "inherited fds"), VMM_EXIT_INTERNAL;
	clearenv();
	dev_t kvm = host_rdev("/dev/kvm"), tun = host_rdev("/dev/net/tun");
	if (!kvm) {
		log_error("jail: /dev/kvm is missing: mote needs KVM");
		return VMM_EXIT_CONFIG;
	}
	char root[PATH_MAX];
	if (snprintf(root, sizeof(root), "%s/%s/%s/root", o.base, o.exec_name, o.id) >=
	    (int)sizeof(root)) {
		log_error("--chroot-base-dir %s: the jail's path is too long", o.base);
		return VMM_EXIT_CONFIG;
	}
	if (mkdir_p(root, 0700) < 0)
		return fail("mkdir", root), VMM_EXIT_INTERNAL;
	int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0 || copy_exec(o.exec_file, rootfd, o.exec_name) < 0)
		return fail("copy the exec file into", root), VMM_EXIT_INTERNAL;
	close(rootfd);
	if (set_rlimits(&o) < 0)
		return VMM_EXIT_INTERNAL;
	if (o.nr_cgroups && jail_cgroup_apply(o.cgroup_version, o.parent_cgroup, o.id, o.cgroups,
					      o.nr_cgroups) < 0)
		return VMM_EXIT_CONFIG;
	if (o.netns) {
		int fd = open(o.netns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
			return fail("join the network namespace", o.netns), VMM_EXIT_CONFIG;
		close(fd);
	}
	int devnull = -1;
	if (o.daemonize && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
		return fail("open", "/dev/null"), VMM_EXIT_INTERNAL;
	if (enter_root(root) < 0 || make_devices(&o, kvm, tun) < 0)
		return VMM_EXIT_INTERNAL;
	if (o.daemonize) {
		if (setsid() < 0)
			return fail("setsid", "(is the jailer a process group leader?)"),
			       VMM_EXIT_INTERNAL;
		if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0)
			return VMM_EXIT_INTERNAL;
		close(devnull);
	}
	if (o.new_pid_ns) {
		if (unshare(CLONE_NEWPID) < 0)
			return fail("unshare", "PID namespace"), VMM_EXIT_INTERNAL;
		pid_t pid = fork();
		if (pid < 0)
			return fail("fork", "into the PID namespace"), VMM_EXIT_INTERNAL;
		if (pid > 0) {
			/* _exit: nothing of this process is left to clean up, and
			 * no exit handler may create threads here (the PID
			 * namespace is already set for new children). */
			write_pid_file(o.exec_name, pid);
			_exit(0);
		}
	}
	if (drop_privileges(&o) < 0)
		return VMM_EXIT_INTERNAL;
	/* argv: the exec name, Firecracker's --id in drop-in mode, then mote's
	 * arguments as given. */
	char exec_path[PATH_MAX], id_arg[JAIL_ID_MAX + 8];
	snprintf(exec_path, sizeof(exec_path), "/%s", o.exec_name);
	snprintf(id_arg, sizeof(id_arg), "--id=%s", o.id);
	bool api_mode = o.nr_args == 0 || o.args[0][0] == '-';
	char **args = calloc((size_t)o.nr_args + 3, sizeof(*args));
	if (!args)
		return VMM_EXIT_INTERNAL;
	int n = 0;
	args[n++] = (char *)o.exec_name;
	if (api_mode)
		args[n++] = id_arg;
	for (int i = 0; i < o.nr_args; i++)
		args[n++] = o.args[i];
	char *envp[] = { NULL };
	execve(exec_path, args, envp);
	fail("exec", exec_path);
	free(args);
	return VMM_EXIT_INTERNAL;
}
