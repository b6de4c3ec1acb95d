/* Unit tests for src/arch/x86/boot.c with bzImage kernels (Linux boot
 * protocol, Documentation/arch/x86/boot.rst): synthetic kernels with just
 * the header fields mote reads, written to a temporary directory, loaded
 * into a real (sparse memfd) guest memory. Kernel and initrd are untrusted
 * input: every malformed file must fail with its -errno and one log line.
 * ELF/PVH kernels are in test_elf.c. */
#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

/* The synthetic kernel's header; defaults in bz_default(). */
struct bz {
	uint8_t setup_sects, jump;
	uint16_t version;
	uint8_t xloadflags, loadflags;
	uint32_t payload; /* bytes after the setup sectors */
	uint32_t syssize; /* in 16-byte units; 0: payload / 16 rounded up */
	uint32_t init_size, initrd_addr_max, cmdline_size;
	uint64_t pref;
};

static struct bz bz_default(void)
{
	return (struct bz){
		.setup_sects = 4,
		.jump = 0x66,
		.version = 0x020f,
		.xloadflags = 0x1,
		.loadflags = 0x01,
		.payload = 64 * 1024,
		.init_size = 8u << 20,
		.initrd_addr_max = 0x7fffffff,
		.cmdline_size = 2047,
		.pref = 16u << 20,
	};
}

static uint8_t payload_byte(size_t i)
{
	return (uint8_t)(i * 31 + 7);
}

static const char *dir;
static struct guest_mem mem = {.fd = -1}; /* fini before any init must not close fd 0 */
static unsigned fds_before;

static int setup(void **state)
{
	dir = unit_tmpdir();
	int r = unit_log_begin(state);
	fds_before = unit_open_fds();
	return r;
}

static int teardown(void **state)
{
	guest_mem_fini(&mem);
	unit_rmdir(dir);
	unit_log_end(state);
	return 0;
}

/* Guest RAM of `total` bytes split at hole (a real memfd, touched only
 * where the loader writes). */
static void ram(uint64_t total, uint64_t hole)
{
	guest_mem_fini(&mem);
	assert_int_equal(guest_mem_init(&mem, total, hole, MAX(hole, X86_HIGH_START)), 0);
}

/* Writes the kernel file; returns its path (freed by the caller). */
static char *write_bz(const struct bz *b, const char *name)
{
	size_t setup = ((size_t)(b->setup_sects ? b->setup_sects : 4) + 1) * 512;
	size_t len = setup + b->payload;
	uint8_t *f = calloc(1, len);
	assert_non_null(f);
	f[0x1f1] = b->setup_sects;
	put_le32(f + 0x1f4, b->syssize ? b->syssize : (b->payload + 15) / 16);
	put_le16(f + 0x1fe, 0xaa55);
	f[0x200] = 0xeb;
	f[0x201] = b->jump;
	memcpy(f + 0x202, "HdrS", 4);
	put_le16(f + 0x206, b->version);
	f[0x211] = b->loadflags;
	put_le32(f + 0x22c, b->initrd_addr_max);
	f[0x236] = b->xloadflags;
	put_le32(f + 0x238, b->cmdline_size);
	put_le64(f + 0x258, b->pref);
	put_le32(f + 0x260, b->init_size);
	for (size_t i = 0; i < b->payload; i++)
		f[setup + i] = payload_byte(i);
	char *path = unit_write_file(dir, name, f, len);
	free(f);
	return path;
}

/* Loads kernel (and initrd) with cmdline; returns x86_boot_load's result. */
static int load(const char *kernel, const char *initrd, const char *cmdline, struct x86_boot *out)
{
	struct x86_boot_args args = {
		.kernel = kernel, .initrd = initrd, .cmdline = cmdline, .rsdp = X86_ACPI_BASE};
	int r = x86_boot_load(&mem, &args, out);
	/* every path closes what it opened */
	assert_int_equal(unit_open_fds(), fds_before + (mem.fd >= 0));
	return r;
}

static uint8_t *zero_page(void)
{
	uint8_t *zp = guest_mem_ptr(&mem, X86_ZERO_PAGE, 4096);
	assert_non_null(zp);
	return zp;
}

static char *write_initrd(size_t size)
{
	uint8_t *d = malloc(size);
	assert_non_null(d);
	for (size_t i = 0; i < size; i++)
		d[i] = (uint8_t)(i * 13 + 1);
	char *p = unit_write_file(dir, "initrd", d, size);
	free(d);
	return p;
}

static void test_loads_and_fills_zero_page(void **state)
{
	ram(64u << 20, X86_HOLE_START);
	struct bz b = bz_default();
	char *k = write_bz(&b, "bzImage");
	struct x86_boot out;
	assert_int_equal(load(k, NULL, "console=ttyS0 root=/dev/vda", &out), 0);
	assert_int_equal(unit_log_lines(), 0);
	assert_int_equal(out.mode, X86_ENTRY_LINUX64);
	assert_int_equal(out.entry, 0x100200);
	assert_int_equal(out.boot_info, X86_ZERO_PAGE);
	assert_int_equal(out.rsdp, X86_ACPI_BASE);
	/* the initrd must stay clear of the kernel at 1 MiB and of where it
	 * decompresses (pref_address + init_size) */
	assert_int_equal(out.kernel_end, (16u << 20) + (8u << 20));
	assert_int_equal(out.initrd_addr, 0);
	assert_int_equal(out.initrd_size, 0);

	/* the protected-mode kernel is at 1 MiB, byte for byte */
	const uint8_t *kern = guest_mem_ptr(&mem, X86_KERNEL_LOAD, b.payload);
	for (size_t i = 0; i < b.payload; i++)
		if (kern[i] != payload_byte(i))
			fail_msg("kernel byte %zu differs", i);
	assert_string_equal(guest_mem_ptr(&mem, X86_CMDLINE, 1), "console=ttyS0 root=/dev/vda");

	const uint8_t *zp = zero_page();
	assert_memory_equal(zp + 0x202, "HdrS", 4); /* setup header copied */
	assert_int_equal(get_le16(zp + 0x206), 0x020f);
	assert_int_equal(get_le32(zp + 0x260), 8u << 20); /* init_size */
	assert_int_equal(zp[0x210], 0xff);		  /* type_of_loader: undefined */
	assert_int_equal(zp[0x211], 0x81);		  /* LOADED_HIGH | CAN_USE_HEAP */
	assert_int_equal(get_le16(zp + 0x224), 0xfe00);	  /* heap_end_ptr */
	assert_int_equal(get_le32(zp + 0x228), X86_CMDLINE);
	assert_int_equal(get_le32(zp + 0x218), 0); /* no ramdisk */
	assert_int_equal(get_le32(zp + 0x21c), 0);
	assert_int_equal(get_le64(zp + 0x070), X86_ACPI_BASE); /* acpi_rsdp_addr */
	/* e820 table: the same map x86_e820_build gives */
	struct e820_entry e[E820_MAX];
	unsigned n = x86_e820_build(&mem, e);
	assert_int_equal(zp[0x1e8], n);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *p = zp + 0x2d0 + 20 * i;
		assert_int_equal(get_le64(p), e[i].addr);
		assert_int_equal(get_le64(p + 8), e[i].size);
		assert_int_equal(get_le32(p + 16), e[i].type);
	}
	free(k);
}

static void test_header_copy_bounded(void **state)
{
	ram(64u << 20, X86_HOLE_START);
	/* a jump offset past the end of any setup header: the copy stops at
	 * 0x290, so the loader's own fields are not overwritten from the file */
	struct bz b = bz_default();
	b.jump = 0xff;
	char *k = write_bz(&b, "k");
	int fd = open(k, O_WRONLY);
	assert_int_equal(pwrite(fd, "\x77\x77\x77\x77", 4, 0x290), 4);
	assert_int_equal(pwrite(fd, "\x66\x66\x66\x66", 4, 0x1e8), 4); /* e820_entries */
	close(fd);
	struct x86_boot out;
	assert_int_equal(load(k, NULL, "", &out), 0);
	const uint8_t *zp = zero_page();
	assert_int_equal(get_le32(zp + 0x290), 0);
	assert_int_not_equal(zp[0x1e8], 0x66);
	assert_int_equal(zp[0x1e8], x86_e820_build(&mem, (struct e820_entry[E820_MAX]){0}));
	free(k);
}

static void test_setup_sects_zero_means_four(void **state)
{
	ram(64u << 20, X86_HOLE_START);
	struct bz b = bz_default();
	b.setup_sects = 0;
	char *k = write_bz(&b, "k");
	struct x86_boot out;
	assert_int_equal(load(k, NULL, "", &out), 0);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&mem, X86_KERNEL_LOAD, 1), payload_byte(0));
	free(k);
}

static void test_initrd_placement(void **state)
{
	ram(64u << 20, X86_HOLE_START);
	struct bz b = bz_default();
	char *k = write_bz(&b, "k");
	const size_t size = 100000; /* not a page multiple */
	char *i = write_initrd(size);
	struct x86_boot out;
	assert_int_equal(load(k, i, "", &out), 0);
	/* at the top of RAM, page-aligned, above the kernel */
	assert_int_equal(out.initrd_addr % 4096, 0);
	assert_int_equal(out.initrd_size, size);
	assert_true(out.initrd_addr + size <= (64u << 20));
	assert_true(out.initrd_addr + size + 4096 > (64u << 20));
	assert_true(out.initrd_addr >= out.kernel_end);
	const uint8_t *p = guest_mem_ptr(&mem, out.initrd_addr, size);
	assert_non_null(p);
	assert_int_equal(p[0], 1);
	assert_int_equal(p[size - 1], (uint8_t)((size - 1) * 13 + 1));
	const uint8_t *zp = zero_page();
	assert_int_equal(get_le32(zp + 0x218), out.initrd_addr);
	assert_int_equal(get_le32(zp + 0x21c), size);

	/* initrd_addr_max (inclusive) caps it below the top of RAM */
	b.initrd_addr_max = (40u << 20) - 1;
	char *k2 = write_bz(&b, "k2");
	assert_int_equal(load(k2, i, "", &out), 0);
	assert_int_equal(out.initrd_addr, ALIGN_DOWN((40u << 20) - size, 4096));
	free(k);
	free(k2);
	free(i);
}

static void test_initrd_below_hole(void **state)
{
	/* 3 GiB + 64 MiB: low RAM ends at the hole and the kernel's 2 GiB
	 * limit is lower still; the initrd goes below both */
	ram(GiB(3) + (64u << 20), X86_HOLE_START);
	struct bz b = bz_default();
	char *k = write_bz(&b, "k");
	char *i = write_initrd(8192);
	struct x86_boot out;
	assert_int_equal(load(k, i, "", &out), 0);
	assert_int_equal(out.initrd_addr, 0x80000000 - 8192);
	b.initrd_addr_max = 0xffffffff; /* above the hole: the hole wins */
	char *k2 = write_bz(&b, "k2");
	assert_int_equal(load(k2, i, "", &out), 0);
	assert_int_equal(out.initrd_addr, X86_HOLE_START - 8192);
	free(k);
	free(k2);
	free(i);
}

static void test_cmdline_limits(void **state)
{
	ram(64u << 20, X86_HOLE_START);
	struct bz b = bz_default();
	b.cmdline_size = 16;
	char *k = write_bz(&b, "k");
	struct x86_boot out;
	/* cmdline_size excludes the NUL: 16 characters fit, 17 do not */
	assert_int_equal(load(k, NULL, "0123456789abcdef", &out), 0);
	assert_string_equal(guest_mem_ptr(&mem, X86_CMDLINE, 1), "0123456789abcdef");
	assert_int_equal(load(k, NULL, "0123456789abcdefg", &out), -E2BIG);
	assert_log_contains("command line is 17 bytes; the kernel accepts at most 16");
	/* cmdline_size 0 (unset): mote's own buffer is the limit */
	b.cmdline_size = 0;
	char *k2 = write_bz(&b, "k2");
	char *big = malloc(X86_CMDLINE_MAX + 1);
	memset(big, 'a', X86_CMDLINE_MAX);
	big[X86_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(load(k2, NULL, big, &out), 0);
	big[X86_CMDLINE_MAX - 1] = 'a';
	big[X86_CMDLINE_MAX] = '\0';
	assert_int_equal(load(k2, NULL, big, &out), -E2BIG);
	free(big);
	free(k);
	free(k2);
}

static void test_bad_files(void **state)
{
	ram(64u << 20, X86_HOLE_START);
	struct x86_boot out;
	char *missing;
	assert_true(asprintf(&missing, "%s/nope", dir) > 0);
	assert_int_equal(load(missing, NULL, "", &out), -ENOENT);
	assert_log_contains("cannot open kernel");
	assert_log_contains("/nope");
	unit_log_clear();
	assert_int_equal(load(dir, NULL, "", &out), -EINVAL); /* a directory */
	assert_log_contains("not a regular file");

	char *empty = unit_write_file(dir, "empty", "", 0);
	unit_log_clear();
	assert_int_equal(load(empty, NULL, "", &out), -ENOEXEC);
	assert_log_contains("file too short to be a kernel");
	char *tiny = unit_write_file(dir, "tiny", "MZ", 2);
	assert_int_equal(load(tiny, NULL, "", &out), -ENOEXEC);

	/* deterministic noise, neither ELF nor bzImage */
	static uint8_t noise[8192];
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof(noise); i++) {
		x = x * 1103515245 + 12345;
		noise[i] = (uint8_t)(x >> 16);
	}
	noise[0] = 'M';
	char *rnd = unit_write_file(dir, "random", noise, sizeof(noise));
	unit_log_clear();
	assert_int_equal(load(rnd, NULL, "", &out), -ENOEXEC);
	assert_log_contains("not a kernel mote can boot");

	/* "HdrS" in a file too short for the rest of the header */
	memcpy(noise + 0x202, "HdrS", 4);
	char *shorthdr = unit_write_file(dir, "short", noise, 0x300);
	assert_int_equal(load(shorthdr, NULL, "", &out), -EIO);
	char *shorter = unit_write_file(dir, "shorter", noise, 0x205);
	assert_int_equal(load(shorter, NULL, "", &out), -ENOEXEC);
	free(missing);
	free(empty);
	free(tiny);
	free(rnd);
	free(shorthdr);
	free(shorter);
}

static void test_bad_headers(void **state)
{
	ram(64u << 20, X86_HOLE_START);
	struct x86_boot out;
	struct bz b = bz_default();
	b.syssize = (b.payload + 16) / 16 + 1; /* promises more than the file has */
	char *k = write_bz(&b, "trunc");
	assert_int_equal(load(k, NULL, "", &out), -EIO);
	assert_log_contains("truncated");
	free(k);

	b = bz_default();
	b.setup_sects = 200; /* setup alone past the end of the file */
	b.payload = 0;
	b.syssize = 1;
	k = write_bz(&b, "setup");
	/* write_bz sized the file to hold the setup; cut it */
	assert_int_equal(truncate(k, 150 * 512), 0);
	assert_int_equal(load(k, NULL, "", &out), -EIO);
	free(k);

	b = bz_default();
	b.version = 0x020b; /* 2.11: no 64-bit entry protocol */
	k = write_bz(&b, "old");
	unit_log_clear();
	assert_int_equal(load(k, NULL, "", &out), -ENOEXEC);
	assert_log_contains("boot protocol 2.11 without a 64-bit entry");
	free(k);

	b = bz_default();
	b.xloadflags = 0x2; /* XLF_CAN_BE_LOADED_ABOVE_4G but not XLF_KERNEL_64 */
	k = write_bz(&b, "no64");
	assert_int_equal(load(k, NULL, "", &out), -ENOEXEC);
	free(k);
}

static void test_memory_too_small(void **state)
{
	struct x86_boot out;
	struct bz b = bz_default();
	char *k = write_bz(&b, "k");
	/* 16 MiB pref + 8 MiB init_size does not fit 20 MiB */
	ram(20u << 20, X86_HOLE_START);
	unit_log_clear();
	assert_int_equal(load(k, NULL, "", &out), -ENOSPC);
	assert_log_contains("needs 25 MiB of guest RAM");
	ram(24u << 20, X86_HOLE_START); /* exactly enough */
	assert_int_equal(load(k, NULL, "", &out), 0);

	/* a pref_address in or above the 32-bit hole is refused */
	b.pref = X86_HOLE_START;
	char *k2 = write_bz(&b, "k2");
	ram(GiB(4), X86_HOLE_START);
	assert_int_equal(load(k2, NULL, "", &out), -ENOSPC);

	/* guest memory without room for the zero page and command line */
	guest_mem_fini(&mem);
	assert_int_equal(guest_mem_init(&mem, X86_CMDLINE + 4096, X86_HOLE_START, X86_HIGH_START),
			 0);
	assert_int_equal(load(k, NULL, "", &out), -ENOSPC);
	assert_log_contains("guest memory too small to boot");
	free(k);
	free(k2);
}

static void test_initrd_errors(void **state)
{
	ram(32u << 20, X86_HOLE_START);
	struct bz b = bz_default();
	b.pref = 1u << 20;
	b.init_size = 4u << 20; /* kernel_end = 5 MiB */
	char *k = write_bz(&b, "k");
	struct x86_boot out;
	char *i = write_initrd((27u << 20) + 1); /* one byte over the room */
	unit_log_clear();
	assert_int_equal(load(k, i, "", &out), -ENOSPC);
	assert_log_contains("initrd");
	assert_log_contains("do not fit");
	free(i);
	i = write_initrd(27u << 20); /* exactly the room above the kernel */
	assert_int_equal(load(k, i, "", &out), 0);
	assert_int_equal(out.initrd_addr, 5u << 20);
	free(i);
	i = write_initrd((64u << 20)); /* more than all of RAM */
	assert_int_equal(load(k, i, "", &out), -ENOSPC);
	free(i);

	char *missing;
	assert_true(asprintf(&missing, "%s/no-initrd", dir) > 0);
	assert_int_equal(load(k, missing, "", &out), -ENOENT);
	assert_log_contains("cannot open initrd");
	char *empty = unit_write_file(dir, "empty", "", 0);
	assert_int_equal(load(k, empty, "", &out), -EINVAL);
	assert_log_contains("empty file");
	assert_int_equal(load(k, dir, "", &out), -EINVAL);
	free(missing);
	free(empty);
	free(k);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_loads_and_fills_zero_page),
		T(test_header_copy_bounded),
		T(test_setup_sects_zero_means_four),
		T(test_initrd_placement),
		T(test_initrd_below_hole),
		T(test_cmdline_limits),
		T(test_bad_files),
		T(test_bad_headers),
		T(test_memory_too_small),
		T(test_initrd_errors),
	};
	return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}
