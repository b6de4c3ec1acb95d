/* Unit tests for `mote jail`'s flag parsing and validation
 * (src/sandbox/jail.c): every bad flag is refused with one line naming it,
 * before the jailer touches anything. The jail itself is exercised by
 * tests/integration/test_sandbox.py. */
#include <elf.h>
#include <sys/resource.h>

#include "sandbox/jail.h"
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

static struct jail_opts o;
static const char *dir;
static char *static_exe, *dynamic_exe;

/* A minimal static ELF64 (one PT_LOAD) and one with a PT_INTERP. */
static char *make_elf(const char *name, bool interp)
{
	struct {
		Elf64_Ehdr eh;
		Elf64_Phdr ph[2];
	} f = { 0 };
	memcpy(f.eh.e_ident, ELFMAG, SELFMAG);
	f.eh.e_ident[EI_CLASS] = ELFCLASS64;
	f.eh.e_phoff = sizeof(f.eh);
	f.eh.e_phentsize = sizeof(Elf64_Phdr);
	f.eh.e_phnum = 2;
	f.ph[0].p_type = PT_LOAD;
	f.ph[1].p_type = interp ? PT_INTERP : PT_NOTE;
	char *p = unit_write_file(dir, name, &f, sizeof(f));
	assert_int_equal(chmod(p, 0755), 0);
	return p;
}

static int group_setup(void **state)
{
	(void)state;
	dir = strdup(unit_tmpdir());
	static_exe = make_elf("mote-static", false);
	dynamic_exe = make_elf("mote-dyn", true);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	free(static_exe);
	free(dynamic_exe);
	unit_rmdir(dir);
	free((void *)dir);
	return 0;
}

static int setup(void **state) { return unit_log_begin(state); }
static int teardown(void **state) { return unit_log_end(state); }

#define PARSE(...)                                                                                 \
	({                                                                                         \
		char *argv_[] = { "jail", __VA_ARGS__, NULL };                                     \
		jail_parse(&o, (int)ARRAY_SIZE(argv_) - 1, argv_);                                 \
	})
#define BASE_ARGS "--id", "vm-1", "--exec-file", static_exe, "--uid", "123", "--gid", "100", \
		  "--chroot-base-dir", (char *)dir

static void test_id(void **state)
{
	char id64[65], id65[66];
	memset(id64, 'a', 64);
	id64[64] = '\0';
	memset(id65, 'b', 65);
	id65[65] = '\0';
	assert_true(jail_id_valid("551e7604-e35c-42b3-b825-416853441234"));
	assert_true(jail_id_valid(id64));
	assert_false(jail_id_valid(id65));
	assert_false(jail_id_valid(""));
	assert_false(jail_id_valid("a_b"));
	assert_false(jail_id_valid("a/b"));
	assert_false(jail_id_valid(".."));
	assert_false(jail_id_valid("a b"));
}

static void test_rlimit(void **state)
{
	struct jail_rlimit r;
	assert_int_equal(jail_parse_rlimit("fsize=250000000", &r), 0);
	assert_int_equal(r.resource, RLIMIT_FSIZE);
	assert_int_equal(r.value, 250000000);
	assert_int_equal(jail_parse_rlimit("no-file=1024", &r), 0);
	assert_int_equal(r.resource, RLIMIT_NOFILE);
	assert_int_equal(jail_parse_rlimit("nofile=1024", &r), -EINVAL);
	assert_int_equal(jail_parse_rlimit("fsize=", &r), -EINVAL);
	assert_int_equal(jail_parse_rlimit("fsize=-1", &r), -EINVAL);
	assert_int_equal(jail_parse_rlimit("fsize=1k", &r), -EINVAL);
	assert_int_equal(jail_parse_rlimit("fsize", &r), -EINVAL);
	assert_int_equal(jail_parse_rlimit("fsize=99999999999999999999999", &r), -EINVAL);
}

static void test_cgroup_setting(void **state)
{
	assert_int_equal(jail_check_cgroup("pids.max=64"), 0);
	assert_int_equal(jail_check_cgroup("cpuset.cpus=0-1"), 0);
	assert_int_equal(jail_check_cgroup("memory.limit_in_bytes=268435456"), 0);
	assert_int_equal(jail_check_cgroup("pids=64"), -EINVAL);       /* no file part */
	assert_int_equal(jail_check_cgroup(".max=64"), -EINVAL);
	assert_int_equal(jail_check_cgroup("pids.=64"), -EINVAL);
	assert_int_equal(jail_check_cgroup("pids.max="), -EINVAL);
	assert_int_equal(jail_check_cgroup("pids.max"), -EINVAL);
	assert_int_equal(jail_check_cgroup("../tasks.x=1"), -EINVAL);
	assert_int_equal(jail_check_cgroup("pids/../x.y=1"), -EINVAL);
	assert_int_equal(jail_check_cgroup("pids.max=1\n2"), -EINVAL);
}

static void test_good(void **state)
{
	/* o.args points into argv: keep it in this scope (PARSE's is not). */
	char *argv[] = { "jail", BASE_ARGS, "--netns", "/proc/self/ns/net", "--new-pid-ns",
			 "--cgroup-version", "2", "--cgroup", "pids.max=10",
			 "--resource-limit", "no-file=64", "--daemonize", "--", "run",
			 "--kernel", "/hello", NULL };
	assert_int_equal(jail_parse(&o, (int)ARRAY_SIZE(argv) - 1, argv), 0);
	assert_string_equal(o.id, "vm-1");
	assert_string_equal(o.exec_name, "mote-static");
	assert_string_equal(o.parent_cgroup, "mote-static");
	assert_int_equal(o.uid, 123);
	assert_int_equal(o.gid, 100);
	assert_int_equal(o.cgroup_version, 2);
	assert_int_equal(o.nr_cgroups, 1);
	assert_int_equal(o.nr_rlimits, 1);
	assert_true(o.new_pid_ns && o.daemonize);
	assert_int_equal(o.nr_args, 3);
	assert_string_equal(o.args[0], "run");
	assert_int_equal(unit_log_lines(), 0);
	/* The default base is Firecracker's /srv/jailer. */
	struct stat st;
	int r = PARSE("--id", "x", "--exec-file", static_exe, "--uid", "0", "--gid", "0");
	if (stat(JAIL_DEFAULT_BASE, &st) == 0 && S_ISDIR(st.st_mode)) {
		assert_int_equal(r, 0);
		assert_string_equal(o.base, JAIL_DEFAULT_BASE);
	} else {
		assert_int_equal(r, -EINVAL);
		assert_log_contains("--chroot-base-dir /srv/jailer");
	}
}

/* Each bad flag: -EINVAL and one line naming it. */
static void bad(char **argv, int argc, const char *needle)
{
	unit_log_clear();
	assert_int_equal(jail_parse(&o, argc, argv), -EINVAL);
	assert_log_contains(needle);
	assert_int_equal(unit_log_lines(), 1);
}
#define BAD(needle, ...)                                                                           \
	do {                                                                                       \
		char *argv_[] = { "jail", __VA_ARGS__, NULL };                                     \
		bad(argv_, (int)ARRAY_SIZE(argv_) - 1, needle);                                    \
	} while (0)

static void test_bad_flags(void **state)
{
	BAD("--id a_b: 1 to 64", "--id", "a_b", "--exec-file", static_exe);
	BAD("--id is required", "--exec-file", static_exe, "--uid", "1", "--gid", "1");
	BAD("--exec-file is required", "--id", "a", "--uid", "1", "--gid", "1");
	BAD("--uid is required", "--id", "a", "--exec-file", static_exe, "--gid", "1");
	BAD("--gid is required", "--id", "a", "--exec-file", static_exe, "--uid", "1");
	BAD("--uid -1: must be a number", "--uid", "-1");
	BAD("--uid 4294967295: must be a number", "--uid", "4294967295");
	BAD("--gid x: must be a number", "--gid", "x");
	BAD("--cgroup-version 3: 1 or 2", "--cgroup-version", "3");
	BAD("--cgroup pids: must be", "--cgroup", "pids");
	BAD("--parent-cgroup ../x: a relative path", "--parent-cgroup", "../x");
	BAD("--parent-cgroup /abs: a relative path", "--parent-cgroup", "/abs");
	BAD("--resource-limit cpu=1: fsize", "--resource-limit", "cpu=1");
	BAD("unknown option --node", "--node", "0");
	BAD("--id needs a value", "--id");
	BAD("unexpected argument run (mote's arguments go after --)", BASE_ARGS, "run");
	BAD("dynamically linked", "--id", "a", "--exec-file", dynamic_exe, "--uid", "1", "--gid",
	    "1", "--chroot-base-dir", (char *)dir);
	BAD("--exec-file /nonexistent/mote: No such file", "--id", "a", "--exec-file",
	    "/nonexistent/mote", "--uid", "1", "--gid", "1");
	BAD("not an executable regular file", "--id", "a", "--exec-file", (char *)dir, "--uid",
	    "1", "--gid", "1");
	BAD("--chroot-base-dir rel: must be an existing directory", "--id", "a", "--exec-file",
	    static_exe, "--uid", "1", "--gid", "1", "--chroot-base-dir", "rel");
	BAD("--netns /nonexistent/ns: No such file", BASE_ARGS, "--netns", "/nonexistent/ns");
}

static void test_bad_exec_elf(void **state)
{
	char *txt = unit_write_file(dir, "script", "#!/bin/sh\n", 10);
	assert_int_equal(chmod(txt, 0755), 0);
	BAD("not a 64-bit ELF executable", "--id", "a", "--exec-file", txt, "--uid", "1", "--gid",
	    "1");
	free(txt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_rlimit),
		cmocka_unit_test(test_cgroup_setting),
		cmocka_unit_test_setup_teardown(test_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_exec_elf, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
