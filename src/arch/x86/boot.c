/* Kernel, initrd and command-line loading, and the boot structures: the
 * Linux zero page (boot_params) for bzImage, the hvm_start_info for PVH and
 * plain ELF. See boot.h; offsets below are those of Documentation/x86/boot.rst
 * and arch/x86/include/uapi/asm/bootparam.h. */
#include "arch/x86/boot.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "util/util.h"

/* boot_params / setup_header offsets. */
#define BP_ACPI_RSDP 0x070
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1
#define BP_SETUP_SECTS 0x1f1
#define BP_SYSSIZE 0x1f4
#define BP_BOOT_FLAG 0x1fe
#define BP_JUMP 0x200
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_HEAP_END_PTR 0x224
#define BP_CMD_LINE_PTR 0x228
#define BP_INITRD_ADDR_MAX 0x22c
#define BP_XLOADFLAGS 0x236
#define BP_CMDLINE_SIZE 0x238
#define BP_PREF_ADDRESS 0x258
#define BP_INIT_SIZE 0x260
#define BP_HDR_MAX_END 0x290 /* the setup header never reaches past this */
#define BP_E820_TABLE 0x2d0

#define LOADFLAG_CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x1
#define BOOT_PROTO_MIN 0x020c /* 2.12: xloadflags, the 64-bit entry */

/* hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h), version 1. */
#define PVH_MAGIC 0x336ec578
#define PVH_INFO_SIZE 56
#define PVH_MEMMAP_ENTRY 24
#define PVH_MODLIST_ENTRY 32

static int open_input(const char *what, const char *path, uint64_t *size)
{
	struct stat st;
	int fd = open_noblock(path, O_RDONLY, &st);
	if (fd < 0) {
		log_error("cannot open %s %s: %s", what, path, strerror(-fd));
		return fd;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("%s %s: not a regular file", what, path);
		close(fd);
		return -EINVAL;
	}
	*size = (uint64_t)st.st_size;
	return fd;
}

/* The 64-bit boot protocol: the protected-mode kernel at 1 MiB, entered at
 * +0x200 in long mode with the zero page in RSI. */
static int load_bzimage(const struct guest_mem *mem, int fd, uint64_t size, const char *path,
			uint8_t *zp, struct x86_boot *out)
{
	uint8_t hdr[1024];
	if (size < sizeof(hdr) || pread_full(fd, hdr, sizeof(hdr), 0) < 0) {
		log_error("kernel %s: truncated bzImage header", path);
		return -EIO;
	}
	uint16_t version = get_le16(hdr + BP_VERSION);
	if (version < BOOT_PROTO_MIN || !(hdr[BP_XLOADFLAGS] & XLF_KERNEL_64)) {
		log_error("kernel %s: boot protocol %u.%02u without a 64-bit entry (need 2.12+)",
			  path, version >> 8, version & 0xff);
		return -ENOEXEC;
	}
	uint64_t setup_sects = hdr[BP_SETUP_SECTS] ? hdr[BP_SETUP_SECTS] : 4;
	uint64_t setup_size = (setup_sects + 1) * 512;
	uint64_t syssize = (uint64_t)get_le32(hdr + BP_SYSSIZE) * 16;
	if (setup_size >= size || syssize > size - setup_size) {
		log_error("kernel %s: truncated (%llu bytes; the header promises %llu)", path,
			  (unsigned long long)size, (unsigned long long)(setup_size + syssize));
		return -EIO;
	}
	uint64_t ksize = size - setup_size;
	uint64_t init_size = get_le32(hdr + BP_INIT_SIZE);
	uint64_t pref = get_le64(hdr + BP_PREF_ADDRESS);
	uint64_t need = MAX(ksize, init_size);
	uint8_t *dst = guest_mem_ptr(mem, X86_KERNEL_LOAD, need);
	if (!dst || pref >= X86_HOLE_START || !guest_mem_ptr(mem, pref, MAX(init_size, 1))) {
		log_error("kernel %s: needs %llu MiB of guest RAM to boot; give it more --mem", path,
			  (unsigned long long)((MAX(X86_KERNEL_LOAD + need, pref + init_size) >> 20) + 1));
		return -ENOSPC;
	}
	if (pread_full(fd, dst, ksize, setup_size) < 0) {
		log_error("kernel %s: cannot read the kernel image", path);
		return -EIO;
	}

	/* The zero page starts as a copy of the kernel's setup header. */
	uint64_t hdr_end = MIN((uint64_t)BP_JUMP + 2 + hdr[BP_JUMP + 1], (uint64_t)BP_HDR_MAX_END);
	memset(zp, 0, 4096);
	memcpy(zp + BP_HDR, hdr + BP_HDR, hdr_end - BP_HDR);
	zp[BP_TYPE_OF_LOADER] = 0xff; /* undefined boot loader */
	zp[BP_LOADFLAGS] |= LOADFLAG_CAN_USE_HEAP;
	put_le16(zp + BP_HEAP_END_PTR, 0xfe00);
	out->mode = X86_ENTRY_LINUX64;
	out->entry = X86_KERNEL_LOAD + 0x200;
	out->boot_info = X86_ZERO_PAGE;
	/* The decompressor may run from either place; keep the initrd clear of both. */
	out->kernel_end = ALIGN_UP(MAX(X86_KERNEL_LOAD + need, pref + init_size), 4096);
	return 0;
}

static int load_initrd(const struct guest_mem *mem, const char *path, uint64_t max_addr,
		       struct x86_boot *out)
{
	uint64_t size;
	int fd = open_input("initrd", path, &size);
	if (fd < 0)
		return fd;
	int err = 0;
	const struct guest_region *low = guest_mem_region(mem, 0);
	uint64_t top = MIN(low->size, max_addr);
	if (size == 0) {
		log_error("initrd %s: empty file", path);
		err = -EINVAL;
		goto out;
	}
	if (size > top || ALIGN_DOWN(top - size, 4096) < out->kernel_end) {
		log_error("initrd %s: %llu bytes do not fit in guest memory below %#llx next to "
			  "the kernel; give it more --mem",
			  path, (unsigned long long)size, (unsigned long long)top);
		err = -ENOSPC;
		goto out;
	}
	uint64_t addr = ALIGN_DOWN(top - size, 4096);
	if (pread_full(fd, guest_mem_ptr(mem, addr, size), size, 0) < 0) {
		log_error("initrd %s: read failed", path);
		err = -EIO;
		goto out;
	}
	out->initrd_addr = addr;
	out->initrd_size = size;
out:
	close(fd);
	return err;
}

static void write_zero_page_tail(uint8_t *zp, const struct guest_mem *mem,
				 const struct x86_boot *b)
{
	struct e820_entry e[E820_MAX];
	unsigned n = x86_e820_build(mem, e);
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = zp + BP_E820_TABLE + 20 * i;
		put_le64(p, e[i].addr);
		put_le64(p + 8, e[i].size);
		put_le32(p + 16, e[i].type);
	}
	put_le32(zp + BP_CMD_LINE_PTR, X86_CMDLINE);
	put_le32(zp + BP_RAMDISK_IMAGE, (uint32_t)b->initrd_addr);
	put_le32(zp + BP_RAMDISK_SIZE, (uint32_t)b->initrd_size);
	put_le64(zp + BP_ACPI_RSDP, b->rsdp);
}

static void write_pvh_info(const struct guest_mem *mem, const struct x86_boot *b)
{
	uint8_t *si = guest_mem_ptr(mem, X86_PVH_INFO, PVH_INFO_SIZE);
	uint8_t *mod = guest_mem_ptr(mem, X86_PVH_MODLIST, PVH_MODLIST_ENTRY);
	uint8_t *mm = guest_mem_ptr(mem, X86_PVH_MEMMAP, E820_MAX * PVH_MEMMAP_ENTRY);
	struct e820_entry e[E820_MAX];
	unsigned n = x86_e820_build(mem, e);
	memset(si, 0, PVH_INFO_SIZE);
	memset(mod, 0, PVH_MODLIST_ENTRY);
	memset(mm, 0, E820_MAX * PVH_MEMMAP_ENTRY);
	put_le32(si, PVH_MAGIC);
	put_le32(si + 4, 1); /* version: has the memmap */
	if (b->initrd_size) {
		put_le32(si + 12, 1);
		put_le64(si + 16, X86_PVH_MODLIST);
		put_le64(mod, b->initrd_addr);
		put_le64(mod + 8, b->initrd_size);
	}
	put_le64(si + 24, X86_CMDLINE);
	put_le64(si + 32, b->rsdp);
	put_le64(si + 40, X86_PVH_MEMMAP);
	put_le32(si + 48, n);
	for (unsigned i = 0; i < n; i++) {
		put_le64(mm + i * PVH_MEMMAP_ENTRY, e[i].addr);
		put_le64(mm + i * PVH_MEMMAP_ENTRY + 8, e[i].size);
		put_le32(mm + i * PVH_MEMMAP_ENTRY + 16, e[i].type);
	}
}

int x86_boot_load(const struct guest_mem *mem, const struct x86_boot_args *args,
		  struct x86_boot *out)
{
	memset(out, 0, sizeof(*out));
	out->rsdp = args->rsdp;
	const struct guest_region *low = guest_mem_region(mem, 0);
	uint8_t *zp = guest_mem_ptr(mem, X86_ZERO_PAGE, 4096);
	char *cmd = guest_mem_ptr(mem, X86_CMDLINE, X86_CMDLINE_MAX);
	if (!low || !zp || !cmd || !guest_mem_ptr(mem, X86_KERNEL_LOAD, 1)) {
		log_error("guest memory too small to boot");
		return -ENOSPC;
	}

	uint64_t size;
	int fd = open_input("kernel", args->kernel, &size);
	if (fd < 0)
		return fd;
	uint8_t magic[0x206];
	int err;
	if (size < 4 || pread_full(fd, magic, MIN(size, sizeof(magic)), 0) < 0) {
		log_error("kernel %s: file too short to be a kernel", args->kernel);
		err = -ENOEXEC;
		goto out;
	}
	uint64_t cmdline_max = X86_CMDLINE_MAX - 1, initrd_max = X86_HOLE_START; /* exclusive */
	if (memcmp(magic, ELFMAG, SELFMAG) == 0) {
		err = x86_elf_load(mem, fd, size, args->kernel, out);
		out->boot_info = X86_PVH_INFO;
	} else if (size >= sizeof(magic) && memcmp(magic + BP_HEADER, "HdrS", 4) == 0) {
		err = load_bzimage(mem, fd, size, args->kernel, zp, out);
		if (!err) {
			uint32_t csz = get_le32(zp + BP_CMDLINE_SIZE);
			if (csz)
				cmdline_max = MIN(cmdline_max, csz);
			initrd_max = MIN(initrd_max, (uint64_t)get_le32(zp + BP_INITRD_ADDR_MAX) + 1);
		}
	} else {
		log_error("kernel %s: not a kernel mote can boot (neither ELF nor bzImage)",
			  args->kernel);
		err = -ENOEXEC;
	}
	if (err)
		goto out;

	size_t clen = strlen(args->cmdline);
	if (clen > cmdline_max) {
		log_error("command line is %zu bytes; the kernel accepts at most %llu", clen,
			  (unsigned long long)cmdline_max);
		err = -E2BIG;
		goto out;
	}
	memcpy(cmd, args->cmdline, clen + 1);
	if (args->initrd) {
		err = load_initrd(mem, args->initrd, initrd_max, out);
		if (err)
			goto out;
	}
	if (out->mode == X86_ENTRY_LINUX64)
		write_zero_page_tail(zp, mem, out);
	else
		write_pvh_info(mem, out);
out:
	close(fd);
	return err;
}
