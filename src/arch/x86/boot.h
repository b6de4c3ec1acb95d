/* Loading a guest kernel into guest memory (Documentation/x86/boot.rst for
 * bzImage, the Xen PVH boot ABI for ELF files with a PHYS32_ENTRY note).
 *
 * x86_boot_load() recognises the file by its contents, loads it, the initrd
 * and the command line, and writes the boot structures (zero page or PVH
 * start_info, e820). It reads kernel and initrd as untrusted input: every
 * size and offset is checked against the file and guest memory, and each
 * failure logs one line naming the file and what is wrong. */
#ifndef MOTE_X86_BOOT_H
#define MOTE_X86_BOOT_H

#include <stdint.h>

#include "mem/guest_mem.h"

enum x86_entry {
	X86_ENTRY_LINUX64, /* bzImage, 64-bit boot protocol: long mode, RSI = zero page */
	X86_ENTRY_PVH,     /* ELF with PVH note: 32-bit protected mode, EBX = start_info */
	X86_ENTRY_ELF64,   /* plain ELF64, physical entry: long mode, RBX = start_info */
};

struct x86_boot {
	enum x86_entry mode;
	uint64_t entry;      /* guest-physical entry point */
	uint64_t boot_info;  /* zero page or start_info */
	uint64_t kernel_end; /* first byte above what the kernel may use while booting */
	uint64_t initrd_addr, initrd_size;
	uint64_t rsdp;       /* ACPI RSDP, 0 when absent */
};

struct x86_boot_args {
	const char *kernel;  /* path */
	const char *initrd;  /* path or NULL */
	const char *cmdline; /* never NULL */
	uint64_t rsdp;       /* where the ACPI tables were put, or 0 */
};

/* 0 or -errno: -ENOENT/-EACCES/... (cannot open), -ENOEXEC (not a kernel
 * mote can boot), -EIO (truncated), -ENOSPC (does not fit guest memory),
 * -E2BIG (command line too long). */
int x86_boot_load(const struct guest_mem *mem, const struct x86_boot_args *args,
		  struct x86_boot *out);

/* ELF loader (elf.c), used by x86_boot_load: loads PT_LOAD segments and finds
 * the PVH note; sets mode, entry and kernel_end. */
int x86_elf_load(const struct guest_mem *mem, int fd, uint64_t file_size, const char *path,
		 struct x86_boot *out);

#endif
