/* libFuzzer harness for the kernel loaders (src/arch/x86/boot.c, elf.c): the
 * input is a kernel image (bzImage, PVH ELF or plain ELF64, as the bytes
 * say) and optionally an initrd, behind a 4-byte header. Both files are
 * memfds the loader opens by their /proc/self/fd path, so x86_boot_load()
 * runs exactly as mote runs it: open, fstat, pread into guest memory.
 *
 * Guest RAM is mapped fresh for each input with an inaccessible page on
 * each side of every region, so a write past a region crashes even where
 * ASan does not look (anonymous mappings are not instrumented).
 *
 * Oracles: ASan/UBSan; a failure returns one of the errnos boot.h lists
 * and logs a line; a success has an entry point inside guest RAM, the
 * command line in place, the initrd inside low RAM above kernel_end with
 * the file's bytes, and boot structures that describe only real RAM.
 *
 * Header:
 *   0    bits 0..2 low RAM size (index into low_sizes), bit 3 an initrd,
 *        bit 4 a 2 MiB high region at 4 GiB, bit 5 an RSDP address
 *   1    command line length / 16 (a 4095-byte one when 255)
 *   2..3 initrd length (little-endian, taken from the end of the input)
 * Then the kernel image (and the initrd after it). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "util/util.h"

#define HDR  4
#define PAGE 4096u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint64_t low_sizes[8] = {
	MiB(1), MiB(1) + PAGE, MiB(2), MiB(6), MiB(20), MiB(40), MiB(72), MiB(100),
}; /* 72: a real bzImage's pref_address + init_size fits; larger only costs time */
static int kernel_fd = -1, initrd_fd = -1;
static char kernel_path[64], initrd_path[64];
static char cmdline[4096];

static int memfd(const char *name, char *path, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	if (fd < 0)
		abort();
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	kernel_fd = memfd("kernel", kernel_path, sizeof(kernel_path));
	initrd_fd = memfd("initrd", initrd_path, sizeof(initrd_path));
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0)
		abort();
	log_set_fd(null); /* one error line per input would drown the fuzzer's output */
	return 0;
}

static void set_file(int fd, const uint8_t *p, size_t n)
{
	if (ftruncate(fd, 0) < 0 || (n && pwrite(fd, p, n, 0) != (ssize_t)n))
		abort();
}

/* size bytes, with an inaccessible page on each side. */
static uint8_t *guarded(uint64_t size)
{
	uint8_t *p = mmap(NULL, size + 2 * PAGE, PROT_NONE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED || mprotect(p + PAGE, size, PROT_READ | PROT_WRITE))
		abort();
	return p + PAGE;
}

static void unguard(uint8_t *p, uint64_t size)
{
	munmap(p - PAGE, size + 2 * PAGE);
}

static void check_success(const struct guest_mem *mem, const struct x86_boot *b,
			  const uint8_t *initrd, size_t initrd_len, bool rsdp)
{
	uint64_t low = mem->regions[0].size;
	if (!guest_mem_ptr(mem, b->entry, 1) || b->kernel_end <= X86_KERNEL_LOAD)
		abort();
	const char *cmd = guest_mem_ptr(mem, X86_CMDLINE, X86_CMDLINE_MAX);
	if (!cmd || strcmp(cmd, cmdline))
		abort();
	if (initrd) {
		const uint8_t *p = guest_mem_ptr(mem, b->initrd_addr, initrd_len);
		if (b->initrd_size != initrd_len || !p || b->initrd_addr < b->kernel_end ||
		    b->initrd_addr + initrd_len > low || b->initrd_addr % PAGE ||
		    memcmp(p, initrd, initrd_len))
			abort();
	} else if (b->initrd_addr || b->initrd_size) {
		abort();
	}
	if (b->rsdp != (rsdp ? X86_ACPI_BASE : 0))
		abort();
	const uint8_t *zp = guest_mem_ptr(mem, X86_ZERO_PAGE, PAGE);
	const uint8_t *si = guest_mem_ptr(mem, X86_PVH_INFO, 56);
	unsigned n;
	const uint8_t *map;
	unsigned stride;
	switch (b->mode) {
	case X86_ENTRY_LINUX64:
		if (b->entry != X86_KERNEL_LOAD + 0x200 || b->boot_info != X86_ZERO_PAGE)
			abort();
		n = zp[0x1e8];
		map = zp + 0x2d0;
		stride = 20;
		if (get_le32(zp + 0x228) != X86_CMDLINE || get_le32(zp + 0x218) != b->initrd_addr)
			abort();
		break;
	case X86_ENTRY_PVH:
	case X86_ENTRY_ELF64:
		if (b->boot_info != X86_PVH_INFO || get_le32(si) != 0x336ec578)
			abort();
		n = get_le32(si + 48);
		map = guest_mem_ptr(mem, get_le64(si + 40), E820_MAX * 24);
		stride = 24;
		if (!map || get_le64(si + 24) != X86_CMDLINE)
			abort();
		break;
	default:
		abort();
	}
	/* Every RAM entry of the memory map is guest RAM. */
	if (n == 0 || n > E820_MAX)
		abort();
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = map + i * stride;
		if (get_le32(e + 16) == E820_RAM && !guest_mem_ptr(mem, get_le64(e), get_le64(e + 8)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < HDR)
		return 0;
	uint8_t flags = data[0];
	size_t initrd_len = (flags & 8) ? get_le16(data + 2) : 0;
	size_t body = size - HDR;
	if (initrd_len > body)
		initrd_len = body;
	const uint8_t *kernel = data + HDR, *initrd = (flags & 8) ? data + size - initrd_len : NULL;
	set_file(kernel_fd, kernel, body - initrd_len);
	if (initrd)
		set_file(initrd_fd, initrd, initrd_len);

	size_t clen = data[1] == 255 ? sizeof(cmdline) - 1 : (size_t)data[1] * 16;
	memset(cmdline, 'c', clen);
	cmdline[clen] = '\0';

	uint64_t low = low_sizes[flags & 7];
	struct guest_region regions[2] = {
		{ .gpa = 0, .size = low, .hva = guarded(low) },
		{ .gpa = X86_HIGH_START, .size = MiB(2) },
	};
	unsigned nr = 1;
	if (flags & 16) {
		regions[1].hva = guarded(regions[1].size);
		nr = 2;
	}
	struct guest_mem mem;
	if (guest_mem_init_static(&mem, regions, nr))
		abort();

	struct x86_boot_args args = {
		.kernel = kernel_path,
		.initrd = initrd ? initrd_path : NULL,
		.cmdline = cmdline,
		.rsdp = (flags & 32) ? X86_ACPI_BASE : 0,
	};
	struct x86_boot b;
	int err = x86_boot_load(&mem, &args, &b);
	if (err == 0)
		check_success(&mem, &b, initrd, initrd_len, flags & 32);
	else if (err != -ENOEXEC && err != -EIO && err != -ENOSPC && err != -E2BIG &&
		 err != -EINVAL && err != -ENOMEM)
		abort();

	unguard(regions[0].hva, regions[0].size);
	if (nr == 2)
		unguard(regions[1].hva, regions[1].size);
	return 0;
}
