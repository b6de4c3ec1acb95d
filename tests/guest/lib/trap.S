/*
 * trap.S — entry stubs for exception vectors 0-31 (see trap.h).
 *
 * Each stub is 16 bytes apart so trap.c can find stub N at trap_stubs + 16 * N.
 * Stubs push a zero error code where the CPU pushes none, then the vector, so
 * trap_report() always sees the same frame layout.
 */
#include "layout.h"

	.text
	.code64

.macro STUB vec, has_err
	.balign 16
	.if \has_err == 0
	push $0
	.endif
	push $\vec
	jmp trap_common
.endm

	.balign 16
	.globl trap_stubs
trap_stubs:
	STUB 0, 0
	STUB 1, 0
	STUB 2, 0
	STUB 3, 0
	STUB 4, 0
	STUB 5, 0
	STUB 6, 0
	STUB 7, 0
	STUB 8, 1
	STUB 9, 0
	STUB 10, 1
	STUB 11, 1
	STUB 12, 1
	STUB 13, 1
	STUB 14, 1
	STUB 15, 0
	STUB 16, 0
	STUB 17, 1
	STUB 18, 0
	STUB 19, 0
	STUB 20, 0
	STUB 21, 1
	STUB 22, 0
	STUB 23, 0
	STUB 24, 0
	STUB 25, 0
	STUB 26, 0
	STUB 27, 0
	STUB 28, 0
	STUB 29, 1
	STUB 30, 1
	STUB 31, 0

trap_common:
	mov %rsp, %rdi			/* struct trap_frame * */
	and $-16, %rsp
	call trap_report		/* does not return */
1:	cli
	hlt
	jmp 1b

	.section .note.GNU-stack, "", @progbits
