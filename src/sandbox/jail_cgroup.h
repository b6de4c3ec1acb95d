/* The jailer's cgroups (v1 or v2), Firecracker's way: each --cgroup
 * "<controller>.<file>=<value>" is written to <hierarchy>/<parent>/<id>/<file>
 * and the calling process is moved into that cgroup. The hierarchy is found
 * in /proc/mounts: for v1 the "cgroup" mount whose options name the
 * controller, for v2 the "cgroup2" mount (where the controller must be
 * available; it is enabled in each ancestor's cgroup.subtree_control). */
#ifndef MOTE_SANDBOX_JAIL_CGROUP_H
#define MOTE_SANDBOX_JAIL_CGROUP_H

/* settings have been checked by jail_check_cgroup(). 0, or -1 after one
 * line naming the setting and the problem. */
int jail_cgroup_apply(int version, const char *parent, const char *id,
		      const char *const *settings, unsigned n);

#endif
