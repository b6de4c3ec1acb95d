/*
 * power.c — power-off for the test guests (see power.h).
 *
 * There is no ACPI shutdown here on purpose: the i8042 reset and a triple fault
 * need no tables, work before anything is set up, and are what mote and
 * `qemu -no-reboot` both turn into a clean exit.
 */
#include <stdint.h>

#include "io.h"
#include "power.h"

#define I8042_CMD	0x64
#define I8042_RESET	0xfe

void power_off(void)
{
	static const struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) no_idt = { 0, 0 };

	outb(I8042_CMD, I8042_RESET);
	/*
	 * Still here: no i8042. With a zero-length IDT any exception becomes a
	 * triple fault. ud2 rather than int3: this host's PVM /dev/kvm fails to
	 * emulate int3 delivery (KVM internal error) instead of shutting down.
	 */
	__asm__ volatile("lidt %0; ud2" : : "m"(no_idt));
	cpu_halt_forever();
}
