/* ELF64 loader for PVH kernels (Linux vmlinux) and mote's test guests.
 * Loads PT_LOAD segments at their physical addresses and looks for the Xen
 * PVH note (XEN_ELFNOTE_PHYS32_ENTRY). Without the note, the ELF entry point
 * must itself be a physical address inside a loaded segment; it is then
 * entered in 64-bit mode. Deliberately absent: relocation, dynamic linking,
 * program interpreters. */
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/boot.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "util/util.h"

#define ELF_MAX_PHDRS 64
#define ELF_MAX_NOTES 65536
#define XEN_ELFNOTE_PHYS32_ENTRY 18

/* Walks one PT_NOTE segment's contents for the PVH entry note. */
static int find_pvh_note(const uint8_t *p, uint64_t len, uint64_t *entry)
{
	uint64_t off = 0;
	while (len - off >= 12) {
		uint32_t namesz = get_le32(p + off), descsz = get_le32(p + off + 4);
		uint32_t type = get_le32(p + off + 8);
		uint64_t name_off = off + 12;
		uint64_t desc_off = name_off + ALIGN_UP((uint64_t)namesz, 4);
		uint64_t next = desc_off + ALIGN_UP((uint64_t)descsz, 4);
		if (desc_off > len || next > len)
			return -ENOEXEC;
		if (namesz == 4 && memcmp(p + name_off, "Xen", 4) == 0 &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			if (descsz == 4)
				*entry = get_le32(p + desc_off);
			else if (descsz == 8)
				*entry = get_le64(p + desc_off);
			else
				return -ENOEXEC;
			return 1;
		}
		off = next;
	}
	return 0;
}

int x86_elf_load(const struct guest_mem *mem, int fd, uint64_t file_size, const char *path,
		 struct x86_boot *out)
{
	Elf64_Ehdr eh;
	if (file_size < sizeof(eh) || pread_full(fd, &eh, sizeof(eh), 0) < 0) {
		log_error("kernel %s: truncated ELF header", path);
		return -EIO;
	}
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC) {
		log_error("kernel %s: not an x86-64 executable ELF file", path);
		return -ENOEXEC;
	}
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
	    eh.e_phnum > ELF_MAX_PHDRS) {
		log_error("kernel %s: bad ELF program header table (%u entries of %u bytes)", path,
			  eh.e_phnum, eh.e_phentsize);
		return -ENOEXEC;
	}
	Elf64_Phdr ph[ELF_MAX_PHDRS];
	uint64_t ph_bytes = (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
	if (eh.e_phoff > file_size || ph_bytes > file_size - eh.e_phoff ||
	    pread_full(fd, ph, ph_bytes, eh.e_phoff) < 0) {
		log_error("kernel %s: truncated ELF program headers", path);
		return -EIO;
	}

	uint64_t pvh_entry = 0, end = 0;
	int have_pvh = 0, loaded = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type != PT_LOAD && p->p_type != PT_NOTE)
			continue;
		if (p->p_offset > file_size || p->p_filesz > file_size - p->p_offset) {
			log_error("kernel %s: segment %u lies past the end of the file (truncated?)",
				  path, i);
			return -EIO;
		}
		if (p->p_type == PT_NOTE) {
			if (have_pvh || p->p_filesz > ELF_MAX_NOTES)
				continue;
			/* One buffer for the whole segment: notes may cross any boundary. */
			uint8_t *notes = malloc(p->p_filesz ? p->p_filesz : 1);
			if (!notes)
				return -ENOMEM;
			int r = pread_full(fd, notes, p->p_filesz, p->p_offset);
			if (r == 0)
				r = find_pvh_note(notes, p->p_filesz, &pvh_entry);
			free(notes);
			if (r < 0) {
				log_error("kernel %s: malformed ELF note", path);
				return -ENOEXEC;
			}
			have_pvh = r;
			continue;
		}
		if (p->p_memsz == 0)
			continue;
		if (p->p_filesz > p->p_memsz) {
			log_error("kernel %s: segment %u has file size above memory size", path, i);
			return -ENOEXEC;
		}
		uint8_t *dst = guest_mem_ptr(mem, p->p_paddr, p->p_memsz);
		if (p->p_paddr < X86_KERNEL_LOAD || !dst) {
			log_error("kernel %s: segment %u at %#llx+%#llx is outside guest RAM above 1 MiB",
				  path, i, (unsigned long long)p->p_paddr,
				  (unsigned long long)p->p_memsz);
			return -ENOSPC;
		}
		if (pread_full(fd, dst, p->p_filesz, p->p_offset) < 0) {
			log_error("kernel %s: cannot read segment %u", path, i);
			return -EIO;
		}
		memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
		end = MAX(end, p->p_paddr + p->p_memsz);
		loaded++;
	}
	if (!loaded) {
		log_error("kernel %s: ELF file has no loadable segment", path);
		return -ENOEXEC;
	}
	if (have_pvh) {
		if (pvh_entry >= X86_HIGH_START || !guest_mem_ptr(mem, pvh_entry, 1)) {
			log_error("kernel %s: PVH entry %#llx is outside guest RAM", path,
				  (unsigned long long)pvh_entry);
			return -ENOEXEC;
		}
		out->mode = X86_ENTRY_PVH;
		out->entry = pvh_entry;
	} else {
		int inside = 0;
		for (unsigned i = 0; i < eh.e_phnum; i++)
			if (ph[i].p_type == PT_LOAD && eh.e_entry >= ph[i].p_paddr &&
			    eh.e_entry - ph[i].p_paddr < ph[i].p_memsz)
				inside = 1;
		if (!inside) {
			log_error("kernel %s: no PVH entry note, and entry point %#llx is not a "
				  "loaded physical address",
				  path, (unsigned long long)eh.e_entry);
			return -ENOEXEC;
		}
		out->mode = X86_ENTRY_ELF64;
		out->entry = eh.e_entry;
	}
	out->kernel_end = ALIGN_UP(end, 4096);
	return 0;
}
