/* The jailer's cgroups; see jail_cgroup.h. Leaves out Firecracker's
 * --node (NUMA) shorthand: cpuset.cpus/cpuset.mems say the same. */
#include "sandbox/jail_cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/jail.h"
#include "util/log.h"

static int write_file(const char *dir, const char *name, const char *value)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = strlen(value);
	ssize_t n = write(fd, value, len);
	int saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)len ? 0 : -1;
}

static int read_file(const char *dir, const char *name, char *buf, size_t len)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The mount point of the v1 hierarchy holding controller, or of cgroup2. */
static int find_mount(int version, const char *controller, char *out, size_t len)
{
	FILE *f = setmntent("/proc/mounts", "re");
	if (!f)
		return -1;
	struct mntent *m;
	int found = -1;
	while ((m = getmntent(f))) {
		bool match = version == 2 ? !strcmp(m->mnt_type, "cgroup2")
					  : !strcmp(m->mnt_type, "cgroup") && hasmntopt(m, controller);
		if (match && strlen(m->mnt_dir) < len) {
			strcpy(out, m->mnt_dir);
			found = 0;
			break;
		}
	}
	endmntent(f);
	return found;
}

/* v1 cpuset: a new cgroup starts with empty cpus/mems, and no task can
 * join it until they are set; inherit the parent's, as Firecracker does. */
static int cpuset_inherit(const char *dir, const char *parent)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
	for (unsigned i = 0; i < 2; i++) {
		char mine[4096], theirs[4096];
		if (read_file(dir, files[i], mine, sizeof(mine)) < 0)
			return -1;
		if (mine[0])
			continue;
		if (read_file(parent, files[i], theirs, sizeof(theirs)) < 0 ||
		    write_file(dir, files[i], theirs) < 0)
			return -1;
	}
	return 0;
}

/* Creates mnt/rel level by level (v2: enabling controller below each
 * level; v1 cpuset: inheriting cpus and mems). */
static int make_path(int version, const char *mnt, const char *rel, const char *controller,
		     char *dir, size_t len)
{
	if (snprintf(dir, len, "%s/%s", mnt, rel) >= (int)len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	size_t base = strlen(mnt);
	for (char *p = dir + base + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char c = *p;
		*p = '\0';
		/* dir is now one level; its parent ends at the last '/'. */
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", dir);
		*strrchr(parent, '/') = '\0';
		if (version == 2 && strcmp(controller, "cgroup")) {
			char plus[NAME_MAX + 2];
			snprintf(plus, sizeof(plus), "+%s", controller);
			if (write_file(parent, "cgroup.subtree_control", plus) < 0) {
				*p = c;
				return -1;
			}
		}
		bool made = mkdir(dir, 0755) == 0;
		if (!made && errno != EEXIST) {
			*p = c;
			return -1;
		}
		if (version == 1 && !strcmp(controller, "cpuset") && cpuset_inherit(dir, parent) < 0) {
			*p = c;
			return -1;
		}
		*p = c;
		if (!c)
			return 0;
	}
}

int jail_cgroup_apply(int version, const char *parent, const char *id,
		      const char *const *settings, unsigned n)
{
	char joined[JAIL_MAX_CGROUPS][PATH_MAX];
	unsigned nr_joined = 0;
	char rel[PATH_MAX];
	snprintf(rel, sizeof(rel), "%s/%s", parent, id);
	for (unsigned i = 0; i < n; i++) {
		const char *s = settings[i];
		const char *eq = strchr(s, '=');
		char file[NAME_MAX + 1], controller[NAME_MAX + 1];
		snprintf(file, sizeof(file), "%.*s", (int)(eq - s), s);
		snprintf(controller, sizeof(controller), "%.*s", (int)strcspn(file, "."), file);
		char mnt[PATH_MAX], dir[PATH_MAX];
		if (find_mount(version, controller, mnt, sizeof(mnt)) < 0) {
			log_error("--cgroup %s: no cgroup v%d hierarchy %s", s, version,
				  version == 2 ? "is mounted" : "holds this controller");
			return -1;
		}
		if (version == 2 && strcmp(controller, "cgroup")) {
			char avail[4096];
			bool ok = read_file(mnt, "cgroup.controllers", avail, sizeof(avail)) == 0;
			char *tok, *save = NULL;
			bool listed = false;
			for (tok = ok ? strtok_r(avail, " ", &save) : NULL; tok && !listed;
			     tok = strtok_r(NULL, " ", &save))
				listed = !strcmp(tok, controller);
			if (!listed) {
				log_error("--cgroup %s: controller %s is not available in the v2 "
					  "hierarchy at %s (bound to v1?)", s, controller, mnt);
				return -1;
			}
		}
		if (make_path(version, mnt, rel, controller, dir, sizeof(dir)) < 0) {
			log_error("--cgroup %s: cannot create %s/%s: %s", s, mnt, rel, strerror(errno));
			return -1;
		}
		if (write_file(dir, file, eq + 1) < 0) {
			log_error("--cgroup %s: cannot write %s/%s: %s", s, dir, file, strerror(errno));
			return -1;
		}
		bool seen = false;
		for (unsigned j = 0; j < nr_joined && !seen; j++)
			seen = !strcmp(joined[j], dir);
		if (seen)
			continue;
		char pid[32];
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		if (write_file(dir, "cgroup.procs", pid) < 0) {
			log_error("--cgroup %s: cannot join %s: %s", s, dir, strerror(errno));
			return -1;
		}
		strcpy(joined[nr_joined++], dir);
	}
	return 0;
}
