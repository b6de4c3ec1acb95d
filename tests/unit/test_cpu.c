/* Unit tests for src/arch/x86/cpu.c: the CPUID topology each vCPU sees
 * (one socket, N cores, APIC ID = index), the boot GDT and page tables, and
 * the registers each entry mode starts with. The KVM calls are faked: they
 * record what cpu.c would have handed to the kernel. */
#include "arch/x86/cpu.h"
#include "arch/x86/layout.h"
#include "util/util.h"

#include "unit.h"

/* ---- fake KVM vCPU calls ---- */

static struct {
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;
	struct kvm_lapic_state lapic;
	unsigned set_regs, set_sregs, set_fpu, set_cpuid, set_lapic, set_msr;
	int fail_cpuid, fail_msr, fail_sregs;
} fake;

int kvm_vcpu_get_sregs(const struct kvm_vcpu *vcpu, struct kvm_sregs *sregs)
{
	*sregs = fake.sregs;
	return 0;
}
int kvm_vcpu_set_sregs(const struct kvm_vcpu *vcpu, const struct kvm_sregs *sregs)
{
	if (fake.fail_sregs)
		return fake.fail_sregs;
	fake.sregs = *sregs;
	fake.set_sregs++;
	return 0;
}
int kvm_vcpu_set_regs(const struct kvm_vcpu *vcpu, const struct kvm_regs *regs)
{
	fake.regs = *regs;
	fake.set_regs++;
	return 0;
}
int kvm_vcpu_set_fpu(const struct kvm_vcpu *vcpu, const struct kvm_fpu *fpu)
{
	fake.fpu = *fpu;
	fake.set_fpu++;
	return 0;
}
int kvm_vcpu_set_cpuid(const struct kvm_vcpu *vcpu, const struct kvm_cpuid2 *cpuid)
{
	fake.set_cpuid++;
	return fake.fail_cpuid;
}
int kvm_vcpu_set_msr(const struct kvm_vcpu *vcpu, uint32_t index, uint64_t value)
{
	fake.set_msr++;
	return fake.fail_msr;
}
int kvm_vcpu_get_lapic(const struct kvm_vcpu *vcpu, struct kvm_lapic_state *lapic)
{
	*lapic = fake.lapic;
	return 0;
}
int kvm_vcpu_set_lapic(const struct kvm_vcpu *vcpu, const struct kvm_lapic_state *lapic)
{
	fake.lapic = *lapic;
	fake.set_lapic++;
	return 0;
}

/* ---- CPUID ---- */

/* Leaves as a host KVM reports them, with host topology values in them
 * that the patch must replace. */
#define LEAF(fn, idx, a, b, c, d)                                                                  \
	{                                                                                          \
		.function = (fn), .index = (idx), .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,        \
		.eax = (a), .ebx = (b), .ecx = (c), .edx = (d)                                     \
	}
/* one leaf a line */
/* clang-format off */
static const struct kvm_cpuid_entry2 host_leaves[] = {
	LEAF(0x1, 0, 0x000806f8, 0x3f200800, 0x7efafbff, 0x1fabfbff), /* no TSC-deadline */
	/* leaf 4: L1d, L1i, L2 (per core), L3 (shared); type 0 ends the list */
	LEAF(0x4, 0, 0xfc004121, 0x02c0003f, 0x3f, 0),
	LEAF(0x4, 1, 0xfc004122, 0x01c0003f, 0x3f, 0),
	LEAF(0x4, 2, 0xfc004143, 0x03c0003f, 0x7ff, 0),
	LEAF(0x4, 3, 0xfc3fc163, 0x0380003f, 0xbfff, 0),
	LEAF(0x4, 4, 0, 0, 0, 0),
	/* 0xb and 0x1f: the host's 2 threads x 56 cores, x2APIC ID 0x37 */
	LEAF(0xb, 0, 1, 2, 0x100, 0x37),
	LEAF(0xb, 1, 7, 112, 0x201, 0x37),
	LEAF(0xb, 2, 0, 0, 0x2, 0x37),
	LEAF(0x1f, 0, 1, 2, 0x100, 0x37),
	LEAF(0x1f, 1, 7, 112, 0x201, 0x37),
	LEAF(0x1f, 2, 0, 0, 0x2, 0x37),
	LEAF(0x80000008, 0, 0x3030, 0, 0x703f, 0),
	LEAF(0x8000001e, 0, 0x37, 0x0113, 0x0301, 0),
	LEAF(0x7, 0, 0, 0x12345678, 0, 0), /* a leaf the patch leaves alone */
};
/* clang-format on */
#define NR_LEAVES ARRAY_SIZE(host_leaves)

static struct kvm_cpuid2 *patched(unsigned index, unsigned nr, bool tsc_deadline)
{
	static union {
		struct kvm_cpuid2 c;
		uint8_t raw[sizeof(struct kvm_cpuid2) +
			    NR_LEAVES * sizeof(struct kvm_cpuid_entry2)];
	} u;
	u.c.nent = NR_LEAVES;
	memcpy(u.c.entries, host_leaves, sizeof(host_leaves));
	x86_cpuid_patch(&u.c, index, nr, tsc_deadline);
	return &u.c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	fail_msg("no leaf %#x.%u", fn, idx);
	return NULL;
}

static unsigned order(unsigned n)
{
	unsigned s = 0;
	while ((1u << s) < n)
		s++;
	return s;
}

/* Everything the topology promises for vCPU `index` of `nr`. */
static void check_topology(unsigned index, unsigned nr)
{
	const struct kvm_cpuid2 *c = patched(index, nr, false);
	unsigned shift = order(nr);
	const struct kvm_cpuid_entry2 *l1 = leaf(c, 1, 0);
	assert_int_equal(l1->ebx >> 24, index);				 /* initial APIC ID */
	assert_int_equal((l1->ebx >> 16) & 0xff, MIN(1u << shift, 255)); /* logical count */
	assert_int_equal(l1->ebx & 0xffff, 0x0800);	    /* brand, CLFLUSH size kept */
	assert_int_equal(!!(l1->edx & (1u << 28)), nr > 1); /* HTT */
	assert_true(l1->ecx & (1u << 31));		    /* hypervisor */
	assert_int_equal(l1->eax, host_leaves[0].eax);

	for (uint32_t sub = 0; sub < 4; sub++) {
		const struct kvm_cpuid_entry2 *l4 = leaf(c, 4, sub);
		const struct kvm_cpuid_entry2 *h4 = &host_leaves[1 + sub];
		unsigned level = (h4->eax >> 5) & 7;
		assert_int_equal(l4->eax & 0x3fff, h4->eax & 0x3fff); /* type, level kept */
		assert_int_equal(l4->ebx, h4->ebx);		      /* geometry kept */
		/* sharing: per core below L3, all cores at L3 */
		assert_int_equal((l4->eax >> 14) & 0xfff, level >= 3 ? (1u << shift) - 1 : 0);
		assert_int_equal(l4->eax >> 26, MIN((1u << shift) - 1, 63));
	}
	assert_int_equal(leaf(c, 4, 4)->eax, 0); /* the terminator stays */

	for (uint32_t fn = 0xb; fn <= 0x1f; fn += 0x1f - 0xb) {
		const struct kvm_cpuid_entry2 *s0 = leaf(c, fn, 0), *s1 = leaf(c, fn, 1),
					      *s2 = leaf(c, fn, 2);
		/* SMT level: one thread per core */
		assert_int_equal(s0->eax, 0);
		assert_int_equal(s0->ebx, 1);
		assert_int_equal(s0->ecx, 0x100);
		/* core level: shift to the package ID, N cores */
		assert_int_equal(s1->eax, shift);
		assert_int_equal(s1->ebx, nr);
		assert_int_equal(s1->ecx, 0x201);
		/* beyond: an invalid level that still echoes its subleaf */
		assert_int_equal(s2->eax, 0);
		assert_int_equal(s2->ebx, 0);
		assert_int_equal(s2->ecx, 2);
		/* x2APIC ID everywhere */
		assert_int_equal(s0->edx, index);
		assert_int_equal(s1->edx, index);
		assert_int_equal(s2->edx, index);
	}

	const struct kvm_cpuid_entry2 *l88 = leaf(c, 0x80000008, 0);
	assert_int_equal(l88->ecx & 0xff, nr - 1);	 /* NC */
	assert_int_equal((l88->ecx >> 12) & 0xf, shift); /* ApicIdCoreIdSize */
	assert_int_equal(l88->ecx & 0xffff0f00, 0x0000);
	assert_int_equal(l88->eax, 0x3030);
	const struct kvm_cpuid_entry2 *l1e = leaf(c, 0x8000001e, 0);
	assert_int_equal(l1e->eax, index); /* extended APIC ID */
	assert_int_equal(l1e->ebx, index); /* core ID, one thread per core */
	assert_int_equal(l1e->ecx, 0);	   /* node 0 */
	assert_int_equal(leaf(c, 7, 0)->ebx, 0x12345678);
}

static void test_topology_one_cpu(void **state)
{
	check_topology(0, 1);
}

static void test_topology_smp(void **state)
{
	static const unsigned nrs[] = {2, 3, 4, 5, 8, 64, 128};
	for (unsigned i = 0; i < ARRAY_SIZE(nrs); i++) {
		check_topology(0, nrs[i]);
		check_topology(nrs[i] - 1, nrs[i]);
		check_topology(nrs[i] / 2, nrs[i]);
	}
}

/* More than 128 vCPUs: CPUID.1:EBX[23:16] is 8 bits but 1 << 8 is
 * written into it, which carries into the APIC ID field [31:24]. */
static void test_topology_max_cpus(void **state)
{
	check_topology(0, X86_MAX_CPUS);
	check_topology(200, X86_MAX_CPUS);
}

static void test_hypervisor_and_tsc_deadline(void **state)
{
	assert_false(host_leaves[0].ecx & (1u << 24));
	assert_false(host_leaves[0].ecx & (1u << 31));
	const struct kvm_cpuid2 *c = patched(0, 1, false);
	/* without KVM's TSC-deadline timer the bit stays clear */
	assert_false(leaf(c, 1, 0)->ecx & (1u << 24));
	assert_true(leaf(c, 1, 0)->ecx & (1u << 31));
	/* the other feature bits pass through */
	assert_int_equal(leaf(c, 1, 0)->ecx & ~(1u << 31), host_leaves[0].ecx);
	c = patched(0, 1, true);
	assert_true(leaf(c, 1, 0)->ecx & (1u << 24));
	assert_true(leaf(c, 1, 0)->ecx & (1u << 31));
	/* HTT is cleared for one vCPU even when the host reports it */
	assert_true(host_leaves[0].edx & (1u << 28));
	assert_false(patched(0, 1, true)->entries[0].edx & (1u << 28));
	assert_true(patched(0, 2, true)->entries[0].edx & (1u << 28));
}

/* ---- boot GDT and page tables ---- */

#define RAM_SIZE (1u << 20)
static uint8_t ram[RAM_SIZE];
static struct guest_mem mem;

static int setup_mem(void **state)
{
	struct guest_region r = {.gpa = 0, .size = RAM_SIZE, .hva = ram};
	memset(&fake, 0, sizeof(fake));
	return guest_mem_init_static(&mem, &r, 1);
}

static void test_boot_tables(void **state)
{
	memset(ram, 0xcc, sizeof(ram));
	assert_int_equal(x86_boot_tables(&mem), 0);
	/* GDT: null, code32, code64, data, TSS */
	assert_int_equal(get_le64(ram + X86_BOOT_GDT), 0);
	assert_int_equal(get_le64(ram + X86_BOOT_GDT + 8), 0x00cf9b000000ffffull);
	assert_int_equal(get_le64(ram + X86_BOOT_GDT + 16), 0x00af9b000000ffffull);
	assert_int_equal(get_le64(ram + X86_BOOT_GDT + 24), 0x00cf93000000ffffull);
	/* one PML4 entry → one PDPT with 4 entries → 4 page directories of
	 * 2 MiB pages: the first 4 GiB identity-mapped, nothing else */
	assert_int_equal(get_le64(ram + X86_PML4), X86_PDPT | 3);
	for (unsigned i = 1; i < 512; i++)
		assert_int_equal(get_le64(ram + X86_PML4 + 8 * i), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(get_le64(ram + X86_PDPT + 8 * i), (X86_PD + 4096 * i) | 3);
	for (unsigned i = 4; i < 512; i++)
		assert_int_equal(get_le64(ram + X86_PDPT + 8 * i), 0);
	for (uint64_t i = 0; i < 2048; i++)
		assert_int_equal(get_le64(ram + X86_PD + 8 * i), (i << 21) | 0x83);
	/* the tables stay clear of what the boot loader writes */
	assert_true(X86_PD + 4 * 4096 <= X86_CMDLINE);
	assert_true(X86_PML4 >= X86_ZERO_PAGE + 4096);
}

static void test_boot_tables_no_room(void **state)
{
	struct guest_mem small;
	struct guest_region r = {.gpa = 0, .size = X86_PD + 4 * 4096 - 1, .hva = ram};
	assert_int_equal(guest_mem_init_static(&small, &r, 1), 0);
	assert_int_equal(x86_boot_tables(&small), -ENOSPC);
}

/* ---- vCPU registers per entry mode ---- */

static void setup_vcpu(unsigned id, enum x86_entry mode)
{
	struct kvm_vcpu vcpu = {.fd = -1, .id = id};
	struct x86_boot boot = {.mode = mode, .entry = 0x1234567, .boot_info = 0x7000};
	if (mode != X86_ENTRY_LINUX64)
		boot.boot_info = X86_PVH_INFO;
	/* LVT registers with other bits set that must survive */
	put_le32(fake.lapic.regs + 0x350, 0x00010700 | 0x1000);
	put_le32(fake.lapic.regs + 0x360, 0x00010000 | 0x2000 | 0x300);
	union {
		struct kvm_cpuid2 c;
		uint8_t raw[sizeof(struct kvm_cpuid2)];
	} u = {.c.nent = 0};
	assert_int_equal(x86_vcpu_setup(&vcpu, &u.c, &boot), 0);
	assert_int_equal(fake.set_cpuid, 1);
	assert_int_equal(fake.set_lapic, 1);
	/* LINT0: ExtINT, LINT1: NMI, other bits as they were */
	assert_int_equal(get_le32(fake.lapic.regs + 0x350), 0x00010700 | 0x1000);
	assert_int_equal(get_le32(fake.lapic.regs + 0x360), 0x00010400 | 0x2000);
}

static void test_vcpu_linux64(void **state)
{
	setup_vcpu(0, X86_ENTRY_LINUX64);
	struct kvm_sregs *s = &fake.sregs;
	assert_int_equal(fake.regs.rip, 0x1234567);
	assert_int_equal(fake.regs.rsi, 0x7000); /* zero page */
	assert_int_equal(fake.regs.rsp, X86_BOOT_STACK);
	assert_int_equal(fake.regs.rflags, 2);
	assert_int_equal(s->cr0 & 0x80000001, 0x80000001); /* PE, PG */
	assert_int_equal(s->cr3, X86_PML4);
	assert_true(s->cr4 & 0x20);		  /* PAE */
	assert_int_equal(s->efer & 0x500, 0x500); /* LME, LMA */
	assert_int_equal(s->cs.l, 1);
	assert_int_equal(s->cs.db, 0);
	assert_int_equal(s->cs.selector, 0x10); /* __BOOT_CS */
	assert_int_equal(s->ds.selector, 0x18); /* __BOOT_DS */
	assert_int_equal(s->ss.selector, 0x18);
	assert_int_equal(s->ds.limit, 0xffffffff);
	assert_int_equal(s->gdt.base, X86_BOOT_GDT);
	assert_int_equal(s->gdt.limit, 5 * 8 - 1);
	/* a usable TSS for VMX: present, busy 64-bit type */
	assert_int_equal(s->tr.selector, 0x20);
	assert_int_equal(s->tr.type, 0xb);
	assert_int_equal(s->tr.present, 1);
	assert_int_equal(s->tr.s, 0);
	assert_int_equal(fake.fpu.fcw, 0x37f);
	assert_int_equal(fake.fpu.mxcsr, 0x1f80);
}

static void test_vcpu_pvh(void **state)
{
	setup_vcpu(0, X86_ENTRY_PVH);
	struct kvm_sregs *s = &fake.sregs;
	/* 32-bit protected mode, paging off, EBX = start_info */
	assert_int_equal(fake.regs.rbx, X86_PVH_INFO);
	assert_int_equal(fake.regs.rip, 0x1234567);
	assert_int_equal(s->cr0 & 0x80000001, 0x1);
	assert_int_equal(s->efer, 0);
	assert_int_equal(s->cr4, 0);
	assert_int_equal(s->cs.l, 0);
	assert_int_equal(s->cs.db, 1);
	assert_int_equal(s->cs.base, 0);
	assert_int_equal(s->cs.limit, 0xffffffff);
	assert_int_equal(s->cs.selector, 0x08);
}

static void test_vcpu_elf64(void **state)
{
	setup_vcpu(0, X86_ENTRY_ELF64);
	assert_int_equal(fake.regs.rbx, X86_PVH_INFO);
	assert_int_equal(fake.regs.rsi, 0);
	assert_int_equal(fake.sregs.cs.l, 1);
	assert_int_equal(fake.sregs.efer & 0x500, 0x500);
}

static void test_vcpu_ap_gets_no_registers(void **state)
{
	/* application processors wait for INIT/SIPI from the guest */
	setup_vcpu(3, X86_ENTRY_LINUX64);
	assert_int_equal(fake.set_regs, 0);
	assert_int_equal(fake.set_sregs, 0);
	assert_int_equal(fake.set_msr, 1);
}

static void test_vcpu_errors(void **state)
{
	struct kvm_vcpu vcpu = {.fd = -1, .id = 0};
	struct x86_boot boot = {.mode = X86_ENTRY_PVH, .entry = 0x100000};
	struct kvm_cpuid2 c = {.nent = 0};
	/* an MSR KVM refuses (PVM) is not fatal */
	fake.fail_msr = -EINVAL;
	assert_int_equal(x86_vcpu_setup(&vcpu, &c, &boot), 0);
	assert_int_equal(fake.set_regs, 1);
	/* the others are, with their error */
	fake.fail_sregs = -EFAULT;
	assert_int_equal(x86_vcpu_setup(&vcpu, &c, &boot), -EFAULT);
	fake.fail_cpuid = -E2BIG;
	assert_int_equal(x86_vcpu_setup(&vcpu, &c, &boot), -E2BIG);
	assert_int_equal(fake.set_lapic, 2); /* stopped before the LAPIC */
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup(fn, setup_mem)
	const struct CMUnitTest tests[] = {
		T(test_topology_one_cpu),
		T(test_topology_smp),
		T(test_topology_max_cpus),
		T(test_hypervisor_and_tsc_deadline),
		T(test_boot_tables),
		T(test_boot_tables_no_room),
		T(test_vcpu_linux64),
		T(test_vcpu_pvh),
		T(test_vcpu_elf64),
		T(test_vcpu_ap_gets_no_registers),
		T(test_vcpu_errors),
	};
	return cmocka_run_group_tests_name("cpu", tests, NULL, NULL);
}
