/*
 * layout.h — fixed addresses and sizes shared by the assembly and C parts of the
 * mote test-guest library.
 *
 * These are part of the boot contract between a monitor (mote or QEMU) and the
 * test guests; a monitor must leave the memory named here free. Kept free of C
 * syntax outside the __ASSEMBLER__ guard so boot.S and trampoline.S can include it.
 */
#ifndef GUEST_LAYOUT_H
#define GUEST_LAYOUT_H

/* Every guest image is linked to load here (physical == virtual). */
#define GUEST_LOAD_PA		0x100000

/*
 * The one page below 1 MiB the guests write to: the real-mode AP trampoline.
 * The SIPI vector is its page number, so it must be 4 KiB aligned and below
 * 1 MiB; 0x8000 sits between start_info (0x500-0x7fff) and the command line
 * (0x20000-0x2ffff), which a monitor may place there.
 */
#define SMP_TRAMPOLINE_PA	0x8000

/* GDT selectors; the AP trampoline's own GDT uses the same layout. */
#define GDT_CODE32		0x08
#define GDT_DATA		0x10
#define GDT_CODE64		0x18

/* Stacks live in .bss, inside the image. */
#define BOOT_STACK_SIZE		0x4000
#define SMP_MAX_CPUS		64
#define SMP_AP_STACK_SIZE	0x1000

/* Page-table bits used by the identity map. */
#define PTE_P			0x001
#define PTE_W			0x002
#define PTE_PWT			0x008
#define PTE_PCD			0x010
#define PTE_PS			0x080

/* Control registers and MSRs the entry code touches. */
#define CR0_PE			0x00000001
#define CR0_NE			0x00000020
#define CR0_PG			0x80000000
#define CR4_PAE			0x00000020
#define MSR_EFER		0xc0000080
#define EFER_LME		0x00000100

#endif
