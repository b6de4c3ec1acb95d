/*
 * power.h — ending a test guest the same way under every monitor.
 */
#ifndef GUEST_POWER_H
#define GUEST_POWER_H

/*
 * Writes 0xFE to the i8042 command port 0x64 (mote exits with status 0 on it,
 * QEMU q35 resets), then, for machines without an i8042 (QEMU microvm),
 * forces a triple fault (zero-length IDT, then ud2), which ends QEMU when it
 * runs with -no-reboot. Never returns.
 */
void power_off(void) __attribute__((noreturn));

#endif
