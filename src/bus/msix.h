/* MSI-X for mote's PCI devices (PCI Local Bus 3.0 §6.8.2): the capability's
 * message-control bits, the vector table and the pending-bit array, and
 * delivery through KVM — one GSI route and one irqfd per vector, so firing
 * a vector from the event loop is a single eventfd write.
 *
 * The table is written by vCPU threads (MMIO) and vectors are fired from
 * the event loop; a mutex orders them. A masked vector (per-vector mask,
 * function mask, or MSI-X disabled) sets its pending bit instead, and is
 * delivered when unmasked. The KVM route is rewritten lazily, on the first
 * delivery after the guest changed the entry's address or data. */
#ifndef MOTE_MSIX_H
#define MOTE_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "kvm/kvm.h"

#define MSIX_MAX_VECTORS 64
#define MSIX_ENTRY_SIZE 16
#define MSIX_NO_VECTOR 0xffff

struct msix_vector {
	uint32_t addr_lo, addr_hi, data, ctrl; /* the guest's table entry */
	int gsi;                /* KVM route, or -1 */
	int fd;                 /* irqfd, or -1 */
	bool routed;            /* route matches the entry */
};

struct msix {
	pthread_mutex_t lock;
	struct kvm *kvm;        /* NULL in unit tests: delivery counts only */
	unsigned nr;
	bool enabled, function_masked;
	struct msix_vector v[MSIX_MAX_VECTORS];
	uint64_t pending;       /* the PBA: one bit per vector */
	uint64_t fired;         /* interrupts delivered (metrics, tests) */
	bool ok;                /* initialised (fini is idempotent) */
};

/* nr vectors (1..MSIX_MAX_VECTORS), all masked. With a kvm, allocates a
 * route and an irqfd per vector. 0 or -errno. */
int msix_init(struct msix *m, struct kvm *kvm, unsigned nr);
void msix_fini(struct msix *m);

/* The table and PBA in a BAR: offset from the table's / PBA's start. */
void msix_table_io(struct msix *m, uint64_t off, uint8_t *data, uint32_t len, bool is_write);
void msix_pba_io(struct msix *m, uint64_t off, uint8_t *data, uint32_t len, bool is_write);

/* The capability's Message Control enable and function-mask bits changed. */
void msix_control(struct msix *m, bool enabled, bool function_masked);

/* Fires vector (MSIX_NO_VECTOR or out of range: nothing). */
void msix_fire(struct msix *m, uint16_t vector);

/* Back to power-on state: disabled, all vectors masked, no pending bits. */
void msix_reset(struct msix *m);

#endif
