/*
 * trap.h — CPU exceptions become a "mote-test: FAIL exception ..." line instead
 * of a silent triple fault, so a guest that faults under a monitor says where.
 *
 * Only vectors 0-31 are set up: the guests run with interrupts disabled, and a
 * stray external interrupt then shows up as a #GP report.
 */
#ifndef GUEST_TRAP_H
#define GUEST_TRAP_H

/* Builds the IDT (first call only) and loads it on the calling CPU. */
void trap_init(void);

#endif
