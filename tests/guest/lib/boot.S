/*
 * boot.S — PVH entry point shared by every test guest.
 *
 * A monitor finds `guest_entry` through the Xen PVH ELF note below and jumps to
 * it in 32-bit protected mode with paging off and EBX = the physical address of
 * struct hvm_start_info (Xen's arch-x86/hvm/start_info.h). From there we load our
 * own GDT (the monitor's GDTR is undefined), zero .bss, identity-map 0-4 GiB with
 * 2 MiB pages, enter long mode and call boot_main() in boot.c, which maps any RAM
 * above 4 GiB before the guest's own code runs.
 *
 * `guest_entry` is a weak alias of pvh_start; a guest that must run
 * something before any set-up (hello writes its first byte) defines guest_entry
 * itself and jumps to pvh_start, keeping ESI/EBX intact.
 *
 * Nothing here writes below 1 MiB, so start_info, the memmap and the command
 * line stay where the monitor put them until boot.c has copied them.
 */
#include "layout.h"

/* XEN_ELFNOTE_PHYS32_ENTRY: how QEMU's -kernel and mote recognise a PVH image. */
	.section .note.Xen, "a"
	.balign 4
	.long 4				/* namesz: "Xen\0" */
	.long 4				/* descsz: a 32-bit physical address */
	.long 18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long guest_entry
	.balign 4

	.section .text.boot, "ax"
	.code32
	.globl pvh_start
	.weak guest_entry
	.set guest_entry, pvh_start
pvh_start:
	cli
	cld
	mov %ebx, %esi			/* start_info; survives the bss wipe */

	lgdt boot_gdt_desc
	ljmp $GDT_CODE32, $1f
1:	mov $GDT_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs

	/* A loader need not zero memsz beyond filesz; the page tables below need it. */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	xor %eax, %eax
	rep stosb
	mov $(boot_stack + BOOT_STACK_SIZE), %esp

	/* PML4[0] -> PDPT; PDPT[0..3] -> the four page directories of boot_pd. */
	mov $(boot_pdpt + PTE_P + PTE_W), %eax
	mov %eax, boot_pml4
	mov $(boot_pd + PTE_P + PTE_W), %eax
	xor %ecx, %ecx
2:	mov %eax, boot_pdpt(,%ecx,8)
	add $0x1000, %eax
	inc %ecx
	cmp $4, %ecx
	jb 2b

	/*
	 * 2048 x 2 MiB = 0-4 GiB, write-back for now; boot.c makes the chunks that
	 * hold no RAM uncached once it has read the memmap.
	 */
	xor %ecx, %ecx
3:	mov %ecx, %eax
	shl $21, %eax
	or $(PTE_P + PTE_W + PTE_PS), %eax
	mov %eax, boot_pd(,%ecx,8)
	inc %ecx
	cmp $2048, %ecx
	jb 3b

	mov $boot_pml4, %eax
	mov %eax, %cr3
	mov %cr4, %eax
	or $CR4_PAE, %eax
	mov %eax, %cr4
	mov $MSR_EFER, %ecx
	rdmsr
	or $EFER_LME, %eax
	wrmsr
	mov %cr0, %eax
	or $(CR0_PG + CR0_PE + CR0_NE), %eax
	mov %eax, %cr0
	ljmp $GDT_CODE64, $boot_long_mode

	.code64
boot_long_mode:
	mov $GDT_DATA, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	xor %ebp, %ebp
	mov %esi, %edi			/* boot_main(start_info_pa) */
	call boot_main
4:	cli
	hlt
	jmp 4b

/*
 * Flat segments: 32-bit code, data, 64-bit code. The accessed bits are preset
 * so the CPU never needs to write here.
 */
	.section .data
	.balign 16
	.globl boot_gdt
boot_gdt:
	.quad 0
	.quad 0x00cf9b000000ffff	/* GDT_CODE32 */
	.quad 0x00cf93000000ffff	/* GDT_DATA */
	.quad 0x00af9b000000ffff	/* GDT_CODE64 */
boot_gdt_end:

	/* Read as 6 bytes by lgdt in 32-bit mode and as 10 bytes in 64-bit mode. */
	.balign 8
	.globl boot_gdt_desc
boot_gdt_desc:
	.word boot_gdt_end - boot_gdt - 1
	.quad boot_gdt

	.section .bss
	.balign 4096
	.globl boot_pml4, boot_pdpt, boot_pd
boot_pml4:
	.skip 4096
boot_pdpt:
	.skip 4096
boot_pd:
	.skip 4 * 4096
	.balign 16
boot_stack:
	.skip BOOT_STACK_SIZE

	.section .note.GNU-stack, "", @progbits
