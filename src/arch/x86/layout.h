/* The guest-physical memory map mote gives an x86 guest.
 *
 *   0x000500  boot GDT                 0x006000  PVH start_info, modules, memmap
 *   0x007000  Linux zero page          0x009000  page tables (identity, 4 GiB)
 *   0x020000  kernel command line      0x09fc00  EBDA (reserved)
 *   0x0e0000  ACPI tables (reserved)   0x100000  kernel / ELF image
 *   ...       initrd at the top of low RAM
 *   3 GiB     32-bit MMIO hole: PCI BARs (first 512 MiB), IOAPIC, LAPIC,
 *             KVM's TSS pages; 0xd0000000 the boot timer with --boot-timer
 *             (Firecracker's address; BARs never reach it: 64 KiB each)
 *   4 GiB     the rest of RAM
 *
 * Guest ports: 0x3f8 COM1 (IRQ 4), 0x60/0x64 i8042, 0x600 ACPI sleep
 * control/status and reset registers (hardware-reduced ACPI), 0xcf8-0xcff
 * PCI configuration (type 1). */
#ifndef MOTE_X86_LAYOUT_H
#define MOTE_X86_LAYOUT_H

#define X86_BOOT_GDT 0x500ull
#define X86_PVH_INFO 0x6000ull
#define X86_PVH_MODLIST 0x6040ull
#define X86_PVH_MEMMAP 0x6080ull
#define X86_ZERO_PAGE 0x7000ull
#define X86_PML4 0x9000ull
#define X86_PDPT 0xa000ull
#define X86_PD 0xb000ull /* 4 pages */
#define X86_BOOT_STACK 0x8ff0ull
#define X86_CMDLINE 0x20000ull
#define X86_CMDLINE_MAX 0x10000ull
#define X86_EBDA 0x9fc00ull
#define X86_ACPI_BASE 0xe0000ull
#define X86_ACPI_END 0x100000ull
#define X86_KERNEL_LOAD 0x100000ull

#define X86_HOLE_START 0xc0000000ull
#define X86_PCI_MMIO_BASE 0xc0000000ull /* BARs: the first 512 MiB of the hole */
#define X86_PCI_MMIO_SIZE 0x20000000ull
#define X86_HIGH_START 0x100000000ull
#define X86_IOAPIC_ADDR 0xfec00000ull
#define X86_LAPIC_ADDR 0xfee00000ull
#define X86_TSS_ADDR 0xfffbc000ull

#define X86_COM1_PORT 0x3f8
#define X86_COM1_IRQ 4
#define X86_I8042_DATA 0x60
#define X86_I8042_CMD 0x64
#define X86_I8042_IRQ 1
#define X86_PM_PORT 0x600 /* +0 sleep control, +1 sleep status, +2 reset */
#define X86_PM_LEN 4
#define X86_RESET_VALUE 0x1

/* xAPIC MADT entries carry 8-bit APIC IDs and 0xff is broadcast. */
#define X86_MAX_CPUS 254

#endif
