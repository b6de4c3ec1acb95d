/*
 * hello.S — hello's entry point: the byte 'm' goes to the UART before any
 * set-up, so a benchmark can time monitor exec -> first guest output.
 *
 * The UART is idle at this point, so there is no need to poll LSR first.
 * EBX (start_info) is left untouched for pvh_start.
 */
	.section .text.boot, "ax"
	.code32
	.globl guest_entry
guest_entry:
	mov $'m', %al
	mov $0x3f8, %dx
	outb %al, %dx
	jmp pvh_start

	.section .note.GNU-stack, "", @progbits
