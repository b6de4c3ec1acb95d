/*
 * noise.h — background traffic from every application processor, for hostile
 * tests that must hold with several vCPUs at once.
 *
 * noise_start() starts every AP the MADT lists; each loops over accesses a
 * monitor must survive from any vCPU at any time — port I/O and MMIO to
 * unassigned addresses (NOISE_PORT, NOISE_MMIO; both must read as all ones)
 * and the UART's scratch register — until noise_stop(). A read that is not
 * all ones is a test failure ("mote-test: FAIL noise ...").
 */
#ifndef GUEST_NOISE_H
#define GUEST_NOISE_H

#include <stdint.h>

#define NOISE_PORT	0x510		/* no device on this port */
#define NOISE_MMIO	0xf0000000ULL	/* no device at this address */

/* Starts the APs (0 when there are none); returns how many came up. */
unsigned noise_start(void);

/*
 * The same, and each AP also calls extra(slot, round) once per round (on its
 * own small stack, interrupts off): for attacks that several vCPUs make at once.
 */
unsigned noise_start_with(void (*extra)(unsigned slot, uint64_t round));

/* Stops them (they halt for good); returns the rounds they ran in all. */
uint64_t noise_stop(void);

#endif
