/*
 * trap.c — the IDT and the exception report (see trap.h).
 */
#include <stdint.h>

#include "io.h"
#include "layout.h"
#include "test.h"
#include "trap.h"

#define NVEC		32
#define STUB_SIZE	16
#define GATE_INTR	0x8e	/* present, DPL 0, 64-bit interrupt gate */

/* What trap.S leaves on the stack, lowest address first. */
struct trap_frame {
	uint64_t vec;
	uint64_t err;
	uint64_t rip;
	uint64_t cs;
	uint64_t rflags;
	uint64_t rsp;
	uint64_t ss;
};

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
};

extern char trap_stubs[];
void trap_report(const struct trap_frame *f) __attribute__((noreturn));

static struct idt_gate idt[NVEC] __attribute__((aligned(16)));

void trap_init(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = { sizeof(idt) - 1, (uintptr_t)idt };

	if (!idt[0].type) {
		for (unsigned v = 0; v < NVEC; v++) {
			uint64_t off = (uintptr_t)trap_stubs + v * STUB_SIZE;

			idt[v] = (struct idt_gate){
				.off_lo = (uint16_t)off,
				.sel = GDT_CODE64,
				.type = GATE_INTR,
				.off_mid = (uint16_t)(off >> 16),
				.off_hi = (uint32_t)(off >> 32),
			};
		}
	}
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void trap_report(const struct trap_frame *f)
{
	test_fail("exception %lu err=0x%lx rip=0x%lx rsp=0x%lx cr2=0x%lx apic=%u",
		  f->vec, f->err, f->rip, f->rsp, read_cr2(), cpu_apic_id());
}
