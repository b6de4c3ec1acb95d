/* Unit tests for src/sandbox/seccomp.c: the allowlists' sizes, that each
 * thread's filter really allows its calls and kills on others (in a forked
 * child, which takes the filter and dies instead of the test), the ioctl
 * argument filter, and --seccomp-filter's validation. */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "sandbox/seccomp.h"
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

static int setup(void **state) { return unit_log_begin(state); }

static int teardown(void **state)
{
	seccomp_setup(false, NULL);
	return unit_log_end(state);
}

/* Runs fn in a child under thread type t's filter; returns its wait status. */
static int in_child(enum seccomp_thread t, void (*fn)(void))
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (seccomp_install(t) < 0)
			_exit(100);
		fn();
		/* How each thread type ends: the loop with exit_group, the others
		 * with exit (in this single-threaded child, both end it). */
		syscall(t == SECCOMP_LOOP ? SYS_exit_group : SYS_exit, 0);
	}
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	return ws;
}

static bool killed_by_sigsys(int ws) { return WIFSIGNALED(ws) && WTERMSIG(ws) == SIGSYS; }

static void test_counts(void **state)
{
	unsigned widest = 0;
	for (unsigned t = 0; t < SECCOMP_NR_THREADS; t++) {
		unsigned n = seccomp_allowed_count(t);
		print_message("seccomp: %s thread allows %u system calls\n", seccomp_thread_name(t), n);
		assert_true(n > 0);
		widest = n > widest ? n : widest;
	}
	assert_true(widest <= 30); /* the target (Firecracker's VMM thread: 50) */
}

static void do_getppid(void) { syscall(SYS_getppid); }
static void do_nothing(void) {}

static void test_forbidden_call_kills(void **state)
{
	for (unsigned t = 0; t < SECCOMP_NR_THREADS; t++)
		assert_true(killed_by_sigsys(in_child(t, do_getppid)));
	/* The loop may exit_group; it survives reaching the end. */
	int ws = in_child(SECCOMP_LOOP, do_nothing);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

static int pipe_w = -1;
static void do_write(void)
{
	/* Allowed everywhere: a write and a futex wake. */
	if (write(pipe_w, "x", 1) != 1)
		raise(SIGKILL);
	int f = 0;
	syscall(SYS_futex, &f, 1 /* FUTEX_WAKE */, 1, NULL, NULL, 0);
}

static void test_allowed_calls_pass(void **state)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pipe_w = p[1];
	for (unsigned t = 0; t < SECCOMP_NR_THREADS; t++) {
		int ws = in_child(t, do_write);
		assert_true(WIFEXITED(ws));
		assert_int_equal(WEXITSTATUS(ws), 0);
		char c;
		assert_int_equal(read(p[0], &c, 1), 1);
	}
	close(p[0]);
	close(p[1]);
}

/* On a vCPU thread ioctl is KVM_RUN and a few others, nothing else. */
static void do_kvm_run_badf(void)
{
	if (ioctl(-1, KVM_RUN, 0) == 0 || errno != EBADF)
		return;
	syscall(SYS_exit, 8);
}
static void do_tcgets(void)
{
	struct termios { char b[64]; } tio;
	ioctl(0, TCGETS, &tio);
}

static void test_ioctl_filtered_by_request(void **state)
{
	int ws = in_child(SECCOMP_VCPU, do_kvm_run_badf);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 8);
	assert_true(killed_by_sigsys(in_child(SECCOMP_VCPU, do_tcgets)));
	assert_true(killed_by_sigsys(in_child(SECCOMP_API, do_tcgets)));
}

static void test_disabled(void **state)
{
	assert_int_equal(seccomp_setup(true, NULL), 0);
	int ws = in_child(SECCOMP_VCPU, do_getppid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
}

/* A classic-BPF interpreter for the instructions seccomp_compile emits,
 * written from the kernel's description, not from the compiler: any other
 * instruction fails the test. */
static uint32_t run_bpf(const struct sock_filter *p, int len, const struct seccomp_data *d)
{
	uint32_t a = 0;
	for (int pc = 0; pc < len; pc++) {
		const struct sock_filter *f = &p[pc];
		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			assert_true(f->k % 4 == 0 && f->k + 4 <= sizeof(*d));
			memcpy(&a, (const char *)d + f->k, 4);
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == f->k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= f->k ? f->jt : f->jf;
			break;
		case BPF_RET | BPF_K:
			return f->k;
		default:
			fail_msg("instruction %d: unexpected code %#x", pc, f->code);
		}
	}
	fail_msg("ran off the end of the program");
	return 0;
}

/* What the table means, straight from its rules. */
static bool table_allows(enum seccomp_thread t, const struct seccomp_data *d)
{
	int nr, arg;
	uint64_t val;
	for (size_t i = 0; seccomp_rule(t, i, &nr, &arg, &val); i++)
		if (nr == d->nr && (arg < 0 || (uint32_t)d->args[arg] == (uint32_t)val))
			return true;
	return false;
}

static void check_verdict(enum seccomp_thread t, const struct sock_filter *p, int len,
			  const struct seccomp_data *d)
{
	uint32_t want = d->arch == AUDIT_ARCH_X86_64 && table_allows(t, d) ? SECCOMP_RET_ALLOW
									: SECCOMP_RET_KILL_PROCESS;
	uint32_t got = run_bpf(p, len, d);
	if (got != want)
		fail_msg("%s table: nr %d args %#llx %#llx %#llx: %#x, want %#x", seccomp_thread_name(t),
			 d->nr, (unsigned long long)d->args[0], (unsigned long long)d->args[1],
			 (unsigned long long)d->args[2], got, want);
}

/* Every table's program, against the table itself: each system call number
 * with arguments that match no rule, each rule's own argument value (also
 * with high bits set, which the kernel ignores for these arguments, and one
 * off), another architecture, and x32's numbers. */
static void test_compiled_programs_match_tables(void **state)
{
	for (unsigned t = 0; t < SECCOMP_NR_THREADS; t++) {
		struct sock_filter p[SECCOMP_TABLE_INSNS];
		int len = seccomp_compile(t, SECCOMP_RET_KILL_PROCESS, p, SECCOMP_TABLE_INSNS);
		assert_true(len > 0);
		struct seccomp_data d = { .arch = AUDIT_ARCH_X86_64 };
		for (int nr = 0; nr < 600; nr++) {
			d.nr = nr;
			memset(d.args, 0xa5, sizeof(d.args));
			check_verdict(t, p, len, &d);
		}
		int nr, arg;
		uint64_t val;
		for (size_t i = 0; seccomp_rule(t, i, &nr, &arg, &val); i++) {
			d.nr = nr;
			memset(d.args, 0, sizeof(d.args));
			if (arg >= 0)
				d.args[arg] = val;
			check_verdict(t, p, len, &d);
			if (arg < 0)
				continue;
			d.args[arg] = val | 0xdead000000000000ull;
			check_verdict(t, p, len, &d);
			d.args[arg] = val + 1;
			check_verdict(t, p, len, &d);
			d.args[arg] = val ^ 0x80000000u;
			check_verdict(t, p, len, &d);
		}
		d = (struct seccomp_data){ .arch = AUDIT_ARCH_I386, .nr = SYS_write };
		check_verdict(t, p, len, &d);
		d = (struct seccomp_data){ .arch = AUDIT_ARCH_X86_64, .nr = 0x40000000 | SYS_write };
		assert_int_equal(run_bpf(p, len, &d), SECCOMP_RET_KILL_PROCESS);
		/* The deny action is the caller's; a short buffer is refused. */
		assert_true(seccomp_compile(t, SECCOMP_RET_LOG, p, SECCOMP_TABLE_INSNS) == len);
		d = (struct seccomp_data){ .arch = AUDIT_ARCH_X86_64, .nr = SYS_getppid };
		assert_int_equal(run_bpf(p, len, &d), SECCOMP_RET_LOG);
		assert_int_equal(seccomp_compile(t, SECCOMP_RET_LOG, p, (size_t)len - 1), -E2BIG);
		print_message("seccomp: %s program: %d instructions\n", seccomp_thread_name(t), len);
	}
}

static void test_check_size(void **state)
{
	assert_int_equal(seccomp_check_size(0), -EINVAL);
	assert_int_equal(seccomp_check_size(7), -EINVAL);
	assert_int_equal(seccomp_check_size(12), -EINVAL);
	assert_int_equal(seccomp_check_size(8), 0);
	assert_int_equal(seccomp_check_size(8 * SECCOMP_MAX_INSNS), 0);
	assert_int_equal(seccomp_check_size(8 * (SECCOMP_MAX_INSNS + 1)), -EINVAL);
}

static void test_custom_filter_files(void **state)
{
	const char *dir = unit_tmpdir();
	/* Kill on getppid, allow the rest. */
	struct sock_filter prog[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	char *good = unit_write_file(dir, "good.bpf", prog, sizeof(prog));
	assert_int_equal(seccomp_setup(false, good), 0);
	assert_true(killed_by_sigsys(in_child(SECCOMP_API, do_getppid)));
	int ws = in_child(SECCOMP_VCPU, do_nothing); /* exit allowed by this one */
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	seccomp_setup(false, NULL);

	assert_int_equal(seccomp_setup(true, good), -EINVAL);
	assert_log_contains("--no-seccomp and --seccomp-filter");

	char *odd = unit_write_file(dir, "odd.bpf", prog, 12);
	assert_int_equal(seccomp_setup(false, odd), -EINVAL);
	assert_log_contains("not a raw BPF program");
	char *empty = unit_write_file(dir, "empty.bpf", prog, 0);
	assert_int_equal(seccomp_setup(false, empty), -EINVAL);

	/* A jump past the end: the kernel's checker refuses it. */
	struct sock_filter bad[] = { BPF_JUMP(BPF_JMP | BPF_JA, 5, 0, 0) };
	char *badp = unit_write_file(dir, "bad.bpf", bad, sizeof(bad));
	unit_log_clear();
	assert_int_equal(seccomp_setup(false, badp), -EINVAL);
	assert_log_contains("the kernel refuses this BPF program");

	/* One that kills the child's own exit: refused, with the reason. */
	struct sock_filter killall[] = { BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS) };
	char *killp = unit_write_file(dir, "kill.bpf", killall, sizeof(killall));
	unit_log_clear();
	assert_int_equal(seccomp_setup(false, killp), -EINVAL);
	assert_log_contains("kills on exit_group");
	free(killp);

	unit_log_clear();
	assert_true(seccomp_setup(false, "/nonexistent/f.bpf") < 0);
	assert_log_contains("--seccomp-filter /nonexistent/f.bpf: No such file");
	assert_int_equal(seccomp_setup(false, dir), -EINVAL); /* a directory */
	free(good);
	free(odd);
	free(empty);
	free(badp);
	unit_rmdir(dir);
}

int main(void)
{
#if defined(__SANITIZE_ADDRESS__)
	/* mote's sanitizer builds install no filters (seccomp.c says why);
	 * make check-unit runs these tests. */
	print_message("test_seccomp: skipped in a sanitizer build\n");
	return 0;
#endif
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forbidden_call_kills, setup, teardown),
		cmocka_unit_test_setup_teardown(test_allowed_calls_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ioctl_filtered_by_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compiled_programs_match_tables, setup, teardown),
		cmocka_unit_test_setup_teardown(test_custom_filter_files, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
