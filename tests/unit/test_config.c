/* Unit tests for src/config.c: `mote run` flags into struct vm_config. Each
 * bad flag or value must fail with -EINVAL and one log line naming it
 * (DESIGN.md rule 4), and nothing may depend on a previous parse: getopt
 * keeps global state, which config_parse_run() resets itself. */
#include "config.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

static struct vm_config cfg;

static int setup(void **state)
{
	unsetenv("MOTE_KVM_DEV");
	config_defaults(&cfg);
	return unit_log_begin(state);
}

static int teardown(void **state)
{
	log_set_level(LOG_WARN);
	return unit_log_end(state);
}

/* Parses a NULL-terminated list of arguments after "run". */
#define PARSE(...)                                                                                 \
	({                                                                                         \
		char *argv_[] = {"run", __VA_ARGS__, NULL};                                        \
		config_parse_run(&cfg, (int)ARRAY_SIZE(argv_) - 1, argv_);                         \
	})

static void test_defaults(void **state)
{
	assert_null(cfg.kernel);
	assert_null(cfg.initrd);
	assert_string_equal(cfg.cmdline, CONFIG_DEFAULT_CMDLINE);
	assert_int_equal(cfg.mem_mib, CONFIG_DEFAULT_MEM_MIB);
	assert_int_equal(cfg.cpus, 1);
	assert_string_equal(cfg.kvm_path, "/dev/kvm");
	assert_false(cfg.verbose);
	setenv("MOTE_KVM_DEV", "/tmp/fake-kvm", 1);
	config_defaults(&cfg);
	assert_string_equal(cfg.kvm_path, "/tmp/fake-kvm");
	setenv("MOTE_KVM_DEV", "", 1); /* empty means unset */
	config_defaults(&cfg);
	assert_string_equal(cfg.kvm_path, "/dev/kvm");
}

static void test_disk_rate_limits(void **state)
{
	char spec[] = "img,bw=10M:1000:64M,ro,ops=500:100,id=data";
	struct vm_disk d;
	assert_int_equal(config_parse_disk(spec, &d, 0), 0);
	assert_string_equal(d.path, "img");
	assert_true(d.read_only);
	assert_string_equal(d.id, "data");
	assert_int_equal(d.rl.bw.size, 10 << 20);
	assert_int_equal(d.rl.bw.refill_ms, 1000);
	assert_int_equal(d.rl.bw.one_time_burst, 64 << 20);
	assert_int_equal(d.rl.ops.size, 500);
	assert_int_equal(d.rl.ops.refill_ms, 100);
	char plain[] = "img";
	assert_int_equal(config_parse_disk(plain, &d, 3), 0);
	assert_int_equal(d.rl.bw.size, 0);
	assert_int_equal(d.rl.ops.size, 0);
	assert_int_equal(unit_log_lines(), 0);
	static const char *const bad[] = {
		"img,bw=", "img,bw=10", "img,bw=0:100", "img,ops=5:0", "img,bw=1:1:1:1",
		"img,ops=x:1", "img,bw=1:100,ops", "img,bw=99999999999999999999999999999999:1",
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		char buf[128];
		snprintf(buf, sizeof(buf), "%s", bad[i]);
		unit_log_clear();
		assert_int_equal(config_parse_disk(buf, &d, 0), -EINVAL);
		assert_int_equal(unit_log_lines(), 1);
		assert_non_null(strstr(unit_log_text(), "--disk img"));
	}
}

static void test_kernel_only(void **state)
{
	assert_int_equal(PARSE("--kernel", "vmlinuz"), 0);
	assert_string_equal(cfg.kernel, "vmlinuz");
	assert_null(cfg.initrd);
	assert_int_equal(cfg.mem_mib, CONFIG_DEFAULT_MEM_MIB);
	assert_int_equal(log_get_level(), LOG_WARN);
	assert_int_equal(unit_log_lines(), 0);
}

static void test_every_flag(void **state)
{
	assert_int_equal(PARSE("--kernel", "k", "--initrd", "i.img", "--cmdline",
			       "console=hvc0 quiet", "--mem", "512", "--cpus", "4", "--verbose"),
			 0);
	assert_string_equal(cfg.kernel, "k");
	assert_string_equal(cfg.initrd, "i.img");
	assert_string_equal(cfg.cmdline, "console=hvc0 quiet");
	assert_int_equal(cfg.mem_mib, 512);
	assert_int_equal(cfg.cpus, 4);
	assert_true(cfg.verbose);
	assert_int_equal(log_get_level(), LOG_INFO);
	assert_int_equal(unit_log_lines(), 0);
}

static void test_flag_spellings(void **state)
{
	/* --flag=value, and getopt_long_only's single dash */
	assert_int_equal(PARSE("--kernel=a", "-mem=64", "-cpus", "2", "--cmdline="), 0);
	assert_string_equal(cfg.kernel, "a");
	assert_int_equal(cfg.mem_mib, 64);
	assert_int_equal(cfg.cpus, 2);
	assert_string_equal(cfg.cmdline, "");
	/* the last of a repeated flag wins; --verbose twice means debug */
	assert_int_equal(PARSE("--kernel", "a", "--kernel", "b", "--verbose", "--verbose"), 0);
	assert_string_equal(cfg.kernel, "b");
	assert_int_equal(log_get_level(), LOG_DEBUG);
}

static void test_missing_kernel(void **state)
{
	assert_int_equal(PARSE("--mem", "64"), -EINVAL);
	assert_log_contains("--kernel is required");
	char *argv[] = {"run", NULL};
	assert_int_equal(config_parse_run(&cfg, 1, argv), -EINVAL);
}

static void test_unknown_flag(void **state)
{
	assert_int_equal(PARSE("--kernel", "k", "--bogus"), -EINVAL);
	assert_log_contains("unknown option --bogus");
	unit_log_clear();
	assert_int_equal(PARSE("--kernel", "k", "-x"), -EINVAL);
	assert_log_contains("unknown option -x");
	/* a flag that takes no value, given one */
	unit_log_clear();
	assert_int_equal(PARSE("--kernel", "k", "--verbose=yes"), -EINVAL);
	assert_log_contains("--verbose=yes");
}

static void test_missing_value(void **state)
{
	static const char *const flags[] = {"--kernel", "--initrd", "--cmdline", "--mem", "--cpus"};
	for (unsigned i = 0; i < ARRAY_SIZE(flags); i++) {
		unit_log_clear();
		char *argv[] = {"run", "--kernel", "k", (char *)flags[i], NULL};
		assert_int_equal(config_parse_run(&cfg, 4, argv), -EINVAL);
		char want[64];
		snprintf(want, sizeof(want), "%s needs a value", flags[i]);
		assert_log_contains(want);
	}
}

static void test_mem_values(void **state)
{
	static const char *const bad[] = {"0", "3", "abc", "", "-1", "64M", " 64", "1e3", "0x100"};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		unit_log_clear();
		assert_int_equal(PARSE("--kernel", "k", "--mem", (char *)bad[i]), -EINVAL);
		char want[32];
		snprintf(want, sizeof(want), "--mem %s:", bad[i]);
		assert_log_contains(want);
	}
	assert_int_equal(PARSE("--kernel", "k", "--mem", "4"), 0); /* CONFIG_MIN_MEM_MIB */
	assert_int_equal(cfg.mem_mib, CONFIG_MIN_MEM_MIB);
}

static void test_mem_beyond_host(void **state)
{
	/* more than any host has, but still a valid MiB count */
	assert_int_equal(PARSE("--kernel", "k", "--mem", "1000000000000"), -EINVAL);
	assert_log_contains("--mem 1000000000000: more than the host's");
	/* beyond what fits in bytes, and beyond 64 bits */
	unit_log_clear();
	assert_int_equal(PARSE("--kernel", "k", "--mem", "17592186044416"), -EINVAL);
	assert_log_contains("--mem 17592186044416");
	unit_log_clear();
	assert_int_equal(PARSE("--kernel", "k", "--mem", "99999999999999999999999"), -EINVAL);
	assert_log_contains("--mem 99999999999999999999999");
	assert_int_equal(cfg.mem_mib, CONFIG_DEFAULT_MEM_MIB); /* untouched */
}

/* A --mem too large for 64-bit bytes is reported as too small. */
static void test_mem_overflow_message(void **state)
{
	assert_int_equal(PARSE("--kernel", "k", "--mem", "17592186044416"), -EINVAL);
	assert_null(strstr(unit_log_text(), "must be at least"));
}

static void test_cpus_values(void **state)
{
	static const char *const bad[] = {"0", "255", "abc", "", "-1", "1000", "2x"};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		unit_log_clear();
		assert_int_equal(PARSE("--kernel", "k", "--cpus", (char *)bad[i]), -EINVAL);
		char want[64];
		snprintf(want, sizeof(want), "--cpus %s: must be a number from 1 to %u", bad[i],
			 X86_MAX_CPUS);
		assert_log_contains(want);
	}
	assert_int_equal(cfg.cpus, 1);
	assert_int_equal(PARSE("--kernel", "k", "--cpus", "254"), 0);
	assert_int_equal(cfg.cpus, X86_MAX_CPUS);
}

static void test_extra_argument(void **state)
{
	assert_int_equal(PARSE("--kernel", "k", "extra"), -EINVAL);
	assert_log_contains("unexpected argument extra");
	/* GNU getopt moves operands to the end: found before the flags too */
	unit_log_clear();
	assert_int_equal(PARSE("first", "--kernel", "k"), -EINVAL);
	assert_log_contains("unexpected argument first");
}

static void test_help(void **state)
{
	/* usage goes to stdout; catch it to check it and keep the output clean */
	int saved = dup(1), mfd = memfd_create("stdout", 0);
	assert_true(saved >= 0 && mfd >= 0);
	fflush(stdout);
	dup2(mfd, 1);
	int r = PARSE("--help");
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	assert_int_equal(r, 1);
	char buf[4096] = {0};
	assert_true(pread(mfd, buf, sizeof(buf) - 1, 0) > 0);
	close(mfd);
	assert_non_null(strstr(buf, "usage: mote run --kernel PATH"));
	assert_non_null(strstr(buf, "--cpus N"));
	assert_int_equal(unit_log_lines(), 0);
}

/* A failed parse leaves getopt mid-way; the next parse starts clean. */
static void test_state_reset_between_parses(void **state)
{
	assert_int_equal(PARSE("--kernel", "k", "--bogus", "--mem", "8"), -EINVAL);
	assert_int_equal(PARSE("op", "--kernel", "k"), -EINVAL);
	assert_int_equal(PARSE("--kernel", "k2", "--mem", "8"), 0);
	assert_string_equal(cfg.kernel, "k2");
	assert_int_equal(cfg.mem_mib, 8);
	assert_int_equal(PARSE("--cpus", "3", "--kernel", "k3"), 0);
	assert_string_equal(cfg.kernel, "k3");
	assert_int_equal(cfg.cpus, 3);
}

static void test_parse_u64(void **state)
{
	uint64_t v = 77;
	assert_int_equal(config_parse_u64("0", 0, 10, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(config_parse_u64("10", 0, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(config_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
	assert_int_equal(v, UINT64_MAX);
	v = 77;
	assert_int_equal(config_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(config_parse_u64("11", 0, 10, &v), -ERANGE);
	assert_int_equal(config_parse_u64("4", 5, 10, &v), -ERANGE);
	static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "0x1", "1.0", "1k", "k"};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(config_parse_u64(bad[i], 0, UINT64_MAX, &v), -EINVAL);
	assert_int_equal(config_parse_u64(NULL, 0, 10, &v), -EINVAL);
	assert_int_equal(v, 77);				 /* never written on failure */
	assert_int_equal(config_parse_u64("007", 0, 10, &v), 0); /* decimal, not octal */
	assert_int_equal(v, 7);
}

static void test_vsock(void **state)
{
	char a[] = "cid=3,uds=/tmp/v.sock";
	assert_int_equal(PARSE("--kernel", "k", "--vsock", a), 0);
	assert_true(cfg.vsock.enabled);
	assert_int_equal(cfg.vsock.cid, 3);
	assert_string_equal(cfg.vsock.uds, "/tmp/v.sock");
	/* Either order; a path may hold commas (up to a ",cid=") */
	char b[] = "uds=/tmp/a,b,cid=4294967294";
	assert_int_equal(config_parse_vsock(b, &cfg.vsock), 0);
	assert_int_equal(cfg.vsock.cid, 4294967294u);
	assert_string_equal(cfg.vsock.uds, "/tmp/a,b");
	char path[CONFIG_VSOCK_PATH_MAX + 1];
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = 0;
	char c[200];
	snprintf(c, sizeof(c), "cid=9,uds=%s", path); /* exactly sun_path - 1 */
	assert_int_equal(config_parse_vsock(c, &cfg.vsock), 0);
	assert_int_equal(strlen(cfg.vsock.uds), CONFIG_VSOCK_PATH_MAX);
	assert_int_equal(unit_log_lines(), 0);
}

static void test_vsock_bad(void **state)
{
	static const char *const bad[] = {
		"", "cid=3", "uds=/x", "cid=2,uds=/x", "cid=0,uds=/x", "cid=4294967295,uds=/x",
		"cid=-3,uds=/x", "cid=3x,uds=/x", "cid=,uds=/x", "cid=3,uds=", "port=1,cid=3,uds=/x",
		"cid=3,cid=4,uds=", "CID=3,uds=/x",
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		char arg[64];
		snprintf(arg, sizeof(arg), "%s", bad[i]);
		struct vm_vsock vs = { .enabled = true };
		assert_int_equal(config_parse_vsock(arg, &vs), -EINVAL);
		assert_false(vs.enabled);
		assert_int_equal(unit_log_lines(), i + 1);
	}
	char longp[200] = "cid=3,uds=/";
	memset(longp + strlen(longp), 'p', CONFIG_VSOCK_PATH_MAX);
	assert_int_equal(config_parse_vsock(longp, &cfg.vsock), -EINVAL);
	char a1[] = "cid=3,uds=/a", a2[] = "cid=4,uds=/b";
	assert_int_equal(PARSE("--kernel", "k", "--vsock", a1, "--vsock", a2), -EINVAL);
}

/* ---- --net ---- */

#include <arpa/inet.h>

static void test_parse_mac(void **state)
{
	uint8_t m[6] = { 9, 9, 9, 9, 9, 9 };
	assert_int_equal(config_parse_mac("02:aB:cd:EF:00:19", 17, m), 0);
	static const uint8_t want[6] = { 0x02, 0xab, 0xcd, 0xef, 0x00, 0x19 };
	assert_memory_equal(m, want, 6);
	/* Only the first len bytes count: a MAC inside a longer option string. */
	assert_int_equal(config_parse_mac("52:54:00:12:34:56,id=x", 17, m), 0);
	assert_int_equal(m[5], 0x56);
	static const char *const bad[] = {
		"",			/* empty */
		"52:54:00:12:34",	/* five bytes */
		"52:54:00:12:34:567",	/* too long */
		"52-54-00-12-34-56",	/* wrong separator */
		"52:54:00:12:34:5g",	/* not hex */
		"5:254:00:12:34:56",	/* misplaced colon */
		"01:00:5e:00:00:01",	/* multicast */
		"ff:ff:ff:ff:ff:ff",	/* broadcast */
		"00:00:00:00:00:00",	/* zero */
		" 2:54:00:12:34:56",	/* space */
	};
	memcpy(m, want, 6);
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(config_parse_mac(bad[i], strlen(bad[i]), m), -EINVAL);
	assert_memory_equal(m, want, 6); /* untouched on failure */
}

static void test_ifname(void **state)
{
	assert_true(config_ifname_ok("tap0", 4));
	assert_true(config_ifname_ok("a", 1));
	assert_true(config_ifname_ok("x23456789012345", 15));
	assert_false(config_ifname_ok("x234567890123456", 16));
	assert_false(config_ifname_ok("", 0));
	assert_false(config_ifname_ok(".", 1));
	assert_false(config_ifname_ok("..", 2));
	assert_true(config_ifname_ok("...", 3));
	static const char *const bad[] = { "a/b", "a:b", "a%b", "a b", "a\tb", "a,b", "\x7f" };
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		assert_false(config_ifname_ok(bad[i], strlen(bad[i])));
}

static void assert_fwd(const char *s, bool udp, const char *haddr, uint16_t hport,
		       const char *gaddr, uint16_t gport)
{
	struct vm_hostfwd f;
	assert_int_equal(config_parse_hostfwd(s, strlen(s), &f), 0);
	assert_int_equal(f.udp, udp);
	assert_int_equal(f.host_addr, inet_addr(haddr));
	assert_int_equal(f.host_port, hport);
	assert_int_equal(f.guest_addr, inet_addr(gaddr));
	assert_int_equal(f.guest_port, gport);
}

static void test_parse_hostfwd(void **state)
{
	assert_fwd("tcp:127.0.0.1:2222-:22", false, "127.0.0.1", 2222, "10.0.2.15", 22);
	assert_fwd("udp::5353-10.0.2.20:53", true, "0.0.0.0", 5353, "10.0.2.20", 53);
	assert_fwd(":127.0.0.1:1-:65535", false, "127.0.0.1", 1, "10.0.2.15", 65535);
	assert_fwd("tcp:0.0.0.0:8080-10.0.2.4:80", false, "0.0.0.0", 8080, "10.0.2.4", 80);
	static const char *const bad[] = {
		"",
		"tcp",
		"tcp:127.0.0.1:2222",		/* no guest part */
		"tcp:127.0.0.1:2222-:",		/* no guest port */
		"tcp:127.0.0.1:-:22",		/* no host port */
		"tcp:127.0.0.1:0-:22",		/* port 0 */
		"tcp:127.0.0.1:65536-:22",
		"tcp:127.0.0.1:22x-:22",
		"tcp:127.0.0.1:2222-:22:1",
		"sctp::2222-:22",
		"TCP::2222-:22",
		"tcp:localhost:2222-:22",	/* names are not resolved */
		"tcp:1.2.3:2222-:22",
		"tcp:1.2.3.4.5:2222-:22",
		"tcp::2222-10.0.3.15:22",	/* outside the user network */
		"tcp::2222-10.0.2.2:22",	/* the gateway */
		"tcp::2222-10.0.2.3:22",	/* DNS */
		"tcp::2222-10.0.2.255:22",	/* broadcast */
		"tcp::2222-10.0.2.0:22",
		"tcp:127.0.0.1:2222-22",
		"tcp:2222-:22",
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		struct vm_hostfwd f;
		if (config_parse_hostfwd(bad[i], strlen(bad[i]), &f) != -EINVAL)
			fail_msg("hostfwd '%s' was accepted", bad[i]);
	}
}

static void test_net_flags(void **state)
{
	assert_int_equal(PARSE("--kernel", "k", "--net", "tap=tap0", "--net",
			       "user,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:53-:53,"
			       "mac=02:00:00:00:00:01,id=wan,rx-bw=1M:100:2M,tx-ops=100:10"),
			 0);
	assert_int_equal(cfg.nr_nets, 2);
	const struct vm_net *t = &cfg.nets[0], *u = &cfg.nets[1];
	assert_int_equal(t->kind, VM_NET_TAP);
	assert_string_equal(t->tap, "tap0");
	assert_string_equal(t->id, "net0");
	static const uint8_t mac0[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };
	assert_memory_equal(t->mac, mac0, 6);
	assert_int_equal(t->rx.bw.size, 0);
	assert_int_equal(u->kind, VM_NET_USER);
	assert_string_equal(u->id, "wan");
	assert_int_equal(u->mac[0], 2);
	assert_int_equal(u->mac[5], 1);
	assert_int_equal(u->nr_fwd, 2);
	assert_true(u->fwd[1].udp);
	assert_int_equal(u->fwd[1].host_port, 53);
	assert_int_equal(u->rx.bw.size, 1u << 20);
	assert_int_equal(u->rx.bw.refill_ms, 100);
	assert_int_equal(u->rx.bw.one_time_burst, 2u << 20);
	assert_int_equal(u->tx.ops.size, 100);
	assert_int_equal(u->tx.ops.refill_ms, 10);
	assert_int_equal(u->tx.bw.size, 0);
	assert_int_equal(unit_log_lines(), 0);
	/* The default MAC follows the interface's index. */
	config_defaults(&cfg);
	assert_int_equal(PARSE("--kernel", "k", "--net", "user", "--net", "user,id=b"), 0);
	assert_int_equal(cfg.nets[1].mac[5], 0x57);
}

static void test_bad_net_flags(void **state)
{
	static const char *const bad[] = {
		"tap=", "tap", "user=x", "users", "tap=a/b", "tap=t,mac=01:00:00:00:00:01",
		"tap=t,hostfwd=tcp::1-:2", "user,hostfwd=tcp::0-:2", "user,rx-bw=1",
		"user,rx-bw=0:10", "user,tx-bw=1:0", "user,tx-ops=1:10:", "user,id=",
		"user,id=x12345678901234567890123456789012345678901234567890123456789012345",
		"user,,", "user,mac=", "tap=t0,foo",
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		config_defaults(&cfg);
		unit_log_clear();
		char *arg = strdup(bad[i]);
		if (PARSE("--kernel", "k", "--net", arg) != -EINVAL)
			fail_msg("--net %s was accepted", bad[i]);
		assert_int_equal(unit_log_lines(), 1);
		free(arg);
	}
	/* Nine hostfwd rules: one too many. */
	config_defaults(&cfg);
	unit_log_clear();
	char many[512] = "user";
	for (int i = 1; i <= 9; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), ",hostfwd=::%d-:%d", i, i);
	assert_int_equal(PARSE("--kernel", "k", "--net", many), -EINVAL);
	assert_int_equal(unit_log_lines(), 1);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_kernel_only),
		T(test_disk_rate_limits),
		T(test_every_flag),
		T(test_flag_spellings),
		T(test_missing_kernel),
		T(test_unknown_flag),
		T(test_missing_value),
		T(test_mem_values),
		T(test_mem_beyond_host),
		T(test_mem_overflow_message),
		T(test_cpus_values),
		T(test_extra_argument),
		T(test_help),
		T(test_state_reset_between_parses),
		T(test_parse_u64),
		T(test_vsock),
		T(test_vsock_bad),
		T(test_parse_mac),
		T(test_ifname),
		T(test_parse_hostfwd),
		T(test_net_flags),
		T(test_bad_net_flags),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
