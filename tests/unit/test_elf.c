/* Unit tests for src/arch/x86/elf.c through x86_boot_load(): ELF64 kernels
 * with and without the Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY), and the
 * hvm_start_info the loader writes for them. The ELF files are built here,
 * field by field, so each test can break exactly one thing. */
#include <elf.h>

#include "arch/x86/boot.h"
#include "arch/x86/e820.h"
#include "arch/x86/layout.h"
#include "util/log.h"
#include "util/util.h"

#include "unit.h"

#define MAX_PH 70
#define RAM    (64u << 20)

/* An ELF image under construction: header, program headers, then data. */
struct elf {
	uint8_t buf[64 * 1024];
	size_t len;
	Elf64_Ehdr *eh;
	Elf64_Phdr *ph;
};

static struct elf elf;
static const char *dir;
static struct guest_mem mem = {.fd = -1};
static unsigned fds_before;

static int setup(void **state)
{
	dir = unit_tmpdir();
	assert_int_equal(guest_mem_init(&mem, RAM, X86_HOLE_START, X86_HIGH_START), 0);
	int r = unit_log_begin(state);
	fds_before = unit_open_fds();
	return r;
}

static int teardown(void **state)
{
	guest_mem_fini(&mem);
	unit_rmdir(dir);
	return unit_log_end(state);
}

static void elf_begin(uint64_t entry, unsigned phnum)
{
	memset(&elf, 0, sizeof(elf));
	elf.eh = (Elf64_Ehdr *)elf.buf;
	elf.ph = (Elf64_Phdr *)(elf.buf + sizeof(Elf64_Ehdr));
	memcpy(elf.eh->e_ident, ELFMAG, SELFMAG);
	elf.eh->e_ident[EI_CLASS] = ELFCLASS64;
	elf.eh->e_ident[EI_DATA] = ELFDATA2LSB;
	elf.eh->e_ident[EI_VERSION] = EV_CURRENT;
	elf.eh->e_type = ET_EXEC;
	elf.eh->e_machine = EM_X86_64;
	elf.eh->e_version = EV_CURRENT;
	elf.eh->e_entry = entry;
	elf.eh->e_phoff = sizeof(Elf64_Ehdr);
	elf.eh->e_ehsize = sizeof(Elf64_Ehdr);
	elf.eh->e_phentsize = sizeof(Elf64_Phdr);
	elf.eh->e_phnum = (uint16_t)phnum;
	elf.len = sizeof(Elf64_Ehdr) + (size_t)MAX_PH * sizeof(Elf64_Phdr);
}

/* Appends bytes (8-aligned); returns their file offset. */
static uint64_t elf_data(const void *p, size_t n)
{
	elf.len = ALIGN_UP(elf.len, 8);
	assert_true(n <= sizeof(elf.buf) - elf.len);
	memcpy(elf.buf + elf.len, p, n);
	elf.len += n;
	return elf.len - n;
}

/* A PT_LOAD of `filesz` pattern bytes at paddr, `memsz` in memory. */
static void elf_load(unsigned i, uint64_t paddr, uint64_t filesz, uint64_t memsz)
{
	static uint8_t pat[16384];
	for (size_t k = 0; k < sizeof(pat); k++)
		pat[k] = (uint8_t)(k * 7 + i + 1);
	assert_true(filesz <= sizeof(pat));
	Elf64_Phdr *p = &elf.ph[i];
	p->p_type = PT_LOAD;
	p->p_offset = elf_data(pat, filesz);
	p->p_paddr = paddr;
	p->p_vaddr = 0xffffffff80000000ull + paddr; /* as vmlinux: only paddr counts */
	p->p_filesz = filesz;
	p->p_memsz = memsz;
	p->p_align = 4096;
}

/* Appends one ELF note; returns its size. */
static size_t note(uint8_t *out, const char *name, uint32_t type, const void *desc, uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	/* Padding zeroed: the file must not carry uninitialised bytes (valgrind). */
	memset(out, 0, 12 + ALIGN_UP(namesz, 4) + ALIGN_UP(descsz, 4));
	put_le32(out, namesz);
	put_le32(out + 4, descsz);
	put_le32(out + 8, type);
	memcpy(out + 12, name, namesz);
	size_t off = 12 + ALIGN_UP(namesz, 4);
	memcpy(out + off, desc, descsz);
	return off + ALIGN_UP(descsz, 4);
}

static void elf_notes(unsigned i, const uint8_t *notes, size_t len)
{
	Elf64_Phdr *p = &elf.ph[i];
	p->p_type = PT_NOTE;
	p->p_offset = elf_data(notes, len);
	p->p_filesz = p->p_memsz = len;
	p->p_align = 4;
}

/* The PVH note with a 4- or 8-byte entry. */
static void elf_pvh(unsigned i, uint64_t entry, uint32_t descsz)
{
	uint8_t n[64], desc[8];
	put_le64(desc, entry);
	elf_notes(i, n, note(n, "Xen", 18, desc, descsz));
}

static int load_file(const char *initrd, struct x86_boot *out)
{
	char *k = unit_write_file(dir, "vmlinux", elf.buf, elf.len);
	struct x86_boot_args args = {
		.kernel = k, .initrd = initrd, .cmdline = "console=hvc0", .rsdp = X86_ACPI_BASE};
	int r = x86_boot_load(&mem, &args, out);
	assert_int_equal(unit_open_fds(), fds_before);
	free(k);
	return r;
}

/* The start_info, memmap and module list a PVH kernel reads. */
static void check_start_info(const struct x86_boot *b)
{
	const uint8_t *si = guest_mem_ptr(&mem, X86_PVH_INFO, 56);
	assert_int_equal(b->boot_info, X86_PVH_INFO);
	assert_int_equal(get_le32(si), 0x336ec578); /* magic */
	assert_int_equal(get_le32(si + 4), 1);	    /* version: has memmap */
	assert_int_equal(get_le64(si + 24), X86_CMDLINE);
	assert_string_equal(guest_mem_ptr(&mem, X86_CMDLINE, 1), "console=hvc0");
	assert_int_equal(get_le64(si + 32), X86_ACPI_BASE); /* rsdp_paddr */
	struct e820_entry e[E820_MAX];
	unsigned n = x86_e820_build(&mem, e);
	assert_int_equal(get_le64(si + 40), X86_PVH_MEMMAP);
	assert_int_equal(get_le32(si + 48), n);
	const uint8_t *mm = guest_mem_ptr(&mem, X86_PVH_MEMMAP, 24 * n);
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(get_le64(mm + 24 * i), e[i].addr);
		assert_int_equal(get_le64(mm + 24 * i + 8), e[i].size);
		assert_int_equal(get_le32(mm + 24 * i + 16), e[i].type);
		assert_int_equal(get_le32(mm + 24 * i + 20), 0);
	}
	if (b->initrd_size) {
		assert_int_equal(get_le32(si + 12), 1); /* nr_modules */
		assert_int_equal(get_le64(si + 16), X86_PVH_MODLIST);
		const uint8_t *mod = guest_mem_ptr(&mem, X86_PVH_MODLIST, 32);
		assert_int_equal(get_le64(mod), b->initrd_addr);
		assert_int_equal(get_le64(mod + 8), b->initrd_size);
		assert_int_equal(get_le64(mod + 16), 0); /* no module cmdline */
	} else {
		assert_int_equal(get_le32(si + 12), 0);
		assert_int_equal(get_le64(si + 16), 0);
	}
	/* the structures do not run into each other or the zero page */
	assert_true(X86_PVH_INFO + 56 <= X86_PVH_MODLIST);
	assert_true(X86_PVH_MODLIST + 32 <= X86_PVH_MEMMAP);
	assert_true(X86_PVH_MEMMAP + 24 * E820_MAX <= X86_ZERO_PAGE);
}

static void test_pvh_note_4_bytes(void **state)
{
	elf_begin(0xffffffff81000000ull, 2); /* a virtual e_entry, as vmlinux */
	elf_load(0, 0x100000, 8192, 3 * 4096 + 100);
	elf_pvh(1, 0x100040, 4);
	memset(guest_mem_ptr(&mem, 0x100000, 0x10000), 0xaa, 0x10000);
	struct x86_boot out;
	assert_int_equal(load_file(NULL, &out), 0);
	assert_int_equal(out.mode, X86_ENTRY_PVH);
	assert_int_equal(out.entry, 0x100040);
	assert_int_equal(out.kernel_end, 0x104000);
	assert_int_equal(out.rsdp, X86_ACPI_BASE);
	/* file bytes copied, the rest of memsz (bss) zeroed, nothing beyond */
	const uint8_t *p = guest_mem_ptr(&mem, 0x100000, 0x10000);
	assert_int_equal(p[0], 1);
	assert_int_equal(p[8191], (uint8_t)(8191 * 7 + 1));
	for (unsigned k = 8192; k < 3 * 4096 + 100; k++)
		if (p[k])
			fail_msg("bss byte %#x not zeroed", k);
	assert_int_equal(p[3 * 4096 + 100], 0xaa);
	check_start_info(&out);
	assert_int_equal(unit_log_lines(), 0);
}

static void test_pvh_note_8_bytes_and_initrd(void **state)
{
	elf_begin(0, 3);
	elf_load(0, 0x200000, 4096, 4096);
	elf_load(1, 0x400000, 100, 0x2000); /* the higher segment sets kernel_end */
	elf_pvh(2, 0x200010, 8);
	char *i = unit_write_file(dir, "initrd", "initrd-bytes", 12);
	struct x86_boot out;
	assert_int_equal(load_file(i, &out), 0);
	assert_int_equal(out.mode, X86_ENTRY_PVH);
	assert_int_equal(out.entry, 0x200010);
	assert_int_equal(out.kernel_end, 0x402000);
	assert_int_equal(out.initrd_size, 12);
	assert_int_equal(out.initrd_addr, RAM - 4096);
	assert_memory_equal(guest_mem_ptr(&mem, out.initrd_addr, 12), "initrd-bytes", 12);
	check_start_info(&out);
	free(i);
}

static void test_pvh_note_among_others(void **state)
{
	/* vmlinux's note segment holds many notes; names are padded to 4 */
	uint8_t n[512], desc[20] = {1, 2, 3}, entry[4];
	size_t len = note(n, "GNU", 3, desc, 20);      /* build ID */
	len += note(n + len, "Linux", 0x100, desc, 5); /* namesz 6, descsz 5 */
	len += note(n + len, "Xen", 17, desc, 4);      /* another Xen note */
	put_le32(entry, 0x100100);
	len += note(n + len, "Xen", 18, entry, 4);
	elf_begin(0, 3);
	elf.ph[0].p_type = PT_GNU_STACK; /* ignored */
	elf_load(1, 0x100000, 4096, 4096);
	elf_notes(2, n, len);
	struct x86_boot out;
	assert_int_equal(load_file(NULL, &out), 0);
	assert_int_equal(out.mode, X86_ENTRY_PVH);
	assert_int_equal(out.entry, 0x100100);
}

static void test_elf64_without_note(void **state)
{
	elf_begin(0x100080, 1);
	elf_load(0, 0x100000, 4096, 4096);
	struct x86_boot out;
	assert_int_equal(load_file(NULL, &out), 0);
	assert_int_equal(out.mode, X86_ENTRY_ELF64);
	assert_int_equal(out.entry, 0x100080);
	check_start_info(&out); /* entered with RBX = the same start_info */

	/* the entry at the last byte of memsz (bss) still counts as inside */
	elf_begin(0x100000 + 0x1fff, 1);
	elf_load(0, 0x100000, 4096, 0x2000);
	assert_int_equal(load_file(NULL, &out), 0);
	assert_int_equal(out.mode, X86_ENTRY_ELF64);
}

static void test_entry_outside_segments(void **state)
{
	elf_begin(0x100000 + 4096, 1); /* one past the segment */
	elf_load(0, 0x100000, 4096, 4096);
	struct x86_boot out;
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	assert_log_contains("no PVH entry note, and entry point 0x101000 is not a loaded");
	/* a PVH entry outside RAM */
	elf_begin(0, 2);
	elf_load(0, 0x100000, 4096, 4096);
	elf_pvh(1, RAM, 4);
	unit_log_clear();
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	assert_log_contains("PVH entry");
	elf_pvh(1, X86_HIGH_START + 0x1000, 8); /* not reachable in 32-bit mode */
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
}

static void test_segment_placement(void **state)
{
	struct x86_boot out;
	elf_begin(0, 1);
	elf_load(0, X86_KERNEL_LOAD - 4096, 4096, 4096); /* over the ACPI tables */
	assert_int_equal(load_file(NULL, &out), -ENOSPC);
	assert_log_contains("segment 0 at 0xff000+0x1000 is outside guest RAM above 1 MiB");
	elf_begin(0, 1);
	elf_load(0, X86_KERNEL_LOAD - 1, 4096, 4096); /* straddles 1 MiB */
	assert_int_equal(load_file(NULL, &out), -ENOSPC);
	elf_begin(0, 1);
	elf_load(0, RAM - 4096, 4096, 4097); /* bss one byte past RAM */
	assert_int_equal(load_file(NULL, &out), -ENOSPC);
	elf_begin(0, 1);
	elf_load(0, 0xfffffffffffff000ull, 16, 0x2000); /* wraps */
	assert_int_equal(load_file(NULL, &out), -ENOSPC);
	elf_begin(0, 1);
	elf_load(0, RAM - 4096, 4096, 4096); /* the last page is fine */
	elf.eh->e_entry = RAM - 4096;
	assert_int_equal(load_file(NULL, &out), 0);
	assert_int_equal(out.kernel_end, RAM);
	/* ...but then no initrd fits above it */
	char *i = unit_write_file(dir, "initrd", "x", 1);
	assert_int_equal(load_file(i, &out), -ENOSPC);
	free(i);
}

static void test_bad_segments(void **state)
{
	struct x86_boot out;
	elf_begin(0x100000, 1);
	elf_load(0, 0x100000, 4096, 4095); /* p_filesz > p_memsz */
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	assert_log_contains("file size above memory size");
	elf_begin(0x100000, 1);
	elf_load(0, 0x100000, 4096, 4096);
	elf.len -= 1; /* the segment's last byte is missing */
	assert_int_equal(load_file(NULL, &out), -EIO);
	assert_log_contains("segment 0 lies past the end of the file");
	elf_begin(0x100000, 1);
	elf_load(0, 0x100000, 4096, 4096);
	elf.ph[0].p_offset = UINT64_MAX - 100; /* offset + filesz wraps */
	assert_int_equal(load_file(NULL, &out), -EIO);
	/* no loadable segment at all: memsz 0 is skipped */
	elf_begin(0x100000, 1);
	elf_load(0, 0x100000, 0, 0);
	unit_log_clear();
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	assert_log_contains("no loadable segment");
}

static void test_bad_program_headers(void **state)
{
	struct x86_boot out;
	elf_begin(0x100000, 0);
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	assert_log_contains("bad ELF program header table (0 entries");
	elf_begin(0x100000, 65); /* more than the loader reads */
	for (unsigned i = 0; i < 65; i++)
		elf_load(i, 0x100000 + i * 4096, 16, 16);
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	elf_begin(0x100000, 64); /* the most it reads */
	for (unsigned i = 0; i < 64; i++)
		elf_load(i, 0x100000 + i * 4096, 16, 16);
	assert_int_equal(load_file(NULL, &out), 0);
	elf_begin(0x100000, 1);
	elf_load(0, 0x100000, 16, 16);
	elf.eh->e_phentsize = sizeof(Elf64_Phdr) - 1;
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	elf_begin(0x100000, 1);
	elf_load(0, 0x100000, 16, 16);
	elf.eh->e_phoff = elf.len - 8; /* table runs past the end of the file */
	assert_int_equal(load_file(NULL, &out), -EIO);
	elf.eh->e_phoff = UINT64_MAX - 8;
	assert_int_equal(load_file(NULL, &out), -EIO);
}

static void test_not_x86_64_exec(void **state)
{
	struct x86_boot out;
	static const struct {
		unsigned off;
		uint8_t val;
	} bad[] = {
		{EI_CLASS, ELFCLASS32},
		{EI_DATA, ELFDATA2MSB},
		{offsetof(Elf64_Ehdr, e_machine), EM_386},
		{offsetof(Elf64_Ehdr, e_type), ET_DYN},
		{offsetof(Elf64_Ehdr, e_type), ET_REL},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		elf_begin(0x100000, 1);
		elf_load(0, 0x100000, 16, 16);
		elf.buf[bad[i].off] = bad[i].val;
		unit_log_clear();
		assert_int_equal(load_file(NULL, &out), -ENOEXEC);
		assert_log_contains("not an x86-64 executable ELF file");
	}
	/* ELF magic, then the file ends inside the header */
	elf_begin(0x100000, 1);
	elf.len = 40;
	assert_int_equal(load_file(NULL, &out), -EIO);
	assert_log_contains("truncated ELF header");
}

static void test_malformed_notes(void **state)
{
	struct x86_boot out;
	uint8_t n[64], desc[8] = {0};
	size_t len = note(n, "Xen", 18, desc, 4);
	put_le32(n + 4, 64); /* descsz past the end of the segment */
	elf_begin(0x100000, 2);
	elf_load(0, 0x100000, 16, 16);
	elf_notes(1, n, len);
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	assert_log_contains("malformed ELF note");
	put_le32(n + 4, 4);
	put_le32(n, 0xfffffff0); /* namesz wrapping when aligned */
	elf_begin(0x100000, 2);
	elf_load(0, 0x100000, 16, 16);
	elf_notes(1, n, len);
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	/* a PVH note with a 2-byte entry */
	len = note(n, "Xen", 18, desc, 2);
	elf_begin(0x100000, 2);
	elf_load(0, 0x100000, 16, 16);
	elf_notes(1, n, len);
	assert_int_equal(load_file(NULL, &out), -ENOEXEC);
	/* a note segment past the end of the file */
	elf_begin(0x100000, 2);
	elf_load(0, 0x100000, 16, 16);
	elf_pvh(1, 0x100000, 4);
	elf.ph[1].p_filesz += 4096;
	assert_int_equal(load_file(NULL, &out), -EIO);
}

/* A valid PT_NOTE segment larger than the loader's 4 KiB read buffer, whose
 * notes do not end exactly at 4096 bytes: the chunked read cuts a note in
 * two and rejects the file as malformed. */
static void test_large_note_segment(void **state)
{
	static uint8_t n[8192], desc[4100];
	uint8_t entry[4];
	size_t len = note(n, "GNU", 0x1234, desc, sizeof(desc)); /* crosses 4096 */
	put_le32(entry, 0x100000);
	len += note(n + len, "Xen", 18, entry, 4);
	elf_begin(0, 2);
	elf_load(0, 0x100000, 16, 16);
	elf_notes(1, n, len);
	struct x86_boot out;
	assert_int_equal(load_file(NULL, &out), 0);
	assert_int_equal(out.mode, X86_ENTRY_PVH);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_pvh_note_4_bytes),	T(test_pvh_note_8_bytes_and_initrd),
		T(test_pvh_note_among_others),	T(test_elf64_without_note),
		T(test_entry_outside_segments), T(test_segment_placement),
		T(test_bad_segments),		T(test_bad_program_headers),
		T(test_not_x86_64_exec),	T(test_malformed_notes),
		T(test_large_note_segment),
	};
	return cmocka_run_group_tests_name("elf", tests, NULL, NULL);
}
