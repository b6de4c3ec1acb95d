/* The machine the snapshot and migration harnesses load state into, built
 * the way vmm_create builds one: the UART, the i8042, a PCI bus with a
 * virtio-rng function, one vCPU, 64 MiB of (lazily mapped) guest RAM. KVM is
 * faked: the set calls succeed and record nothing; the MSR list is fixed
 * (PVM's, where the seeds were taken); the get calls are never made. */
#ifndef MOTE_FUZZ_FAKE_MACHINE_H
#define MOTE_FUZZ_FAKE_MACHINE_H

#include "snap/internal.h"

#define FAKE_RAM_SIZE (64ull << 20)

/* Once per process: guest RAM, the event loop, KVM's capabilities. */
void fake_machine_init(void);
/* A fresh machine (devices reset) viewed as vm; fake_machine_free after. */
void fake_machine_build(struct snap_vm *vm);
void fake_machine_free(void);
/* After a load that succeeded: the devices are in states their own code
 * could reach; aborts otherwise. */
void fake_machine_check(const struct snap_vm *vm);

#endif
