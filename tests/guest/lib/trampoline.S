/*
 * trampoline.S — the real-mode code an AP runs after a STARTUP IPI, and its
 * 64-bit landing in the image.
 *
 * smp.c copies smp_tramp_start..smp_tramp_end to SMP_TRAMPOLINE_PA, so code in
 * that range addresses itself through TR(), its address in the copy. It leaves
 * real mode through its own GDT (the image's is above 1 MiB, out of reach of
 * 16-bit addressing) and uses the BSP's page tables, which identity-map both
 * the copy and the image.
 */
#include "layout.h"

#define TR(x) ((x) - smp_tramp_start + SMP_TRAMPOLINE_PA)

	.text
	.balign 16
	.globl smp_tramp_start, smp_tramp_end
	.code16
smp_tramp_start:
	cli
	cld
	xor %ax, %ax
	mov %ax, %ds
	lgdtl TR(tr_gdt_desc)
	mov %cr0, %eax
	or $CR0_PE, %eax
	mov %eax, %cr0
	ljmpl $GDT_CODE32, $TR(tr_32)

	.code32
tr_32:
	mov $GDT_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $(CR0_PG + CR0_NE), %eax
	mov %eax, %cr0
	ljmp $GDT_CODE64, $TR(tr_64)

	.code64
tr_64:
	mov $smp_ap_entry64, %eax
	jmp *%rax

	/* Same selectors as boot_gdt in boot.S. */
	.balign 8
tr_gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* GDT_CODE32 */
	.quad 0x00cf93000000ffff	/* GDT_DATA */
	.quad 0x00af9b000000ffff	/* GDT_CODE64 */
tr_gdt_end:
tr_gdt_desc:
	.word tr_gdt_end - tr_gdt - 1
	.long TR(tr_gdt)
smp_tramp_end:

/*
 * In the image, 64-bit, no stack yet: take a slot, then the slot's stack.
 * Slots beyond the stacks available halt here without running any C.
 */
smp_ap_entry64:
	mov $1, %eax
	lock xadd %eax, smp_ap_next(%rip)
	cmp $(SMP_MAX_CPUS - 1), %eax
	jae 2f
	mov %eax, %edi			/* smp_ap_main(slot) */
	lea 1(%rax), %rdx
	imul $SMP_AP_STACK_SIZE, %rdx, %rdx
	lea smp_ap_stacks(%rip), %rsp
	add %rdx, %rsp
	/* Switch to the image's GDT; the selectors match, so CS stays valid. */
	lgdt boot_gdt_desc(%rip)
	mov $GDT_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	xor %ebp, %ebp
	call smp_ap_main
2:	cli
	hlt
	jmp 2b

	.section .bss
	.balign 16
smp_ap_stacks:
	.skip (SMP_MAX_CPUS - 1) * SMP_AP_STACK_SIZE

	.section .note.GNU-stack, "", @progbits
