/* The virtio 1.x modern PCI transport (virtio 1.2 §4.1): one PCI function
 * per device with a 64-bit memory BAR holding the common configuration, ISR,
 * device configuration, notification area and the MSI-X table and PBA.
 * Queue notifications are KVM ioeventfds read by the event loop, so a guest
 * kick costs no trip through a vCPU thread and no device work happens there.
 * Interrupts are MSI-X only (no INTx; Linux's virtio-pci uses MSI-X).
 * Deliberately absent: the legacy interface, the PCI configuration access
 * capability (VIRTIO_PCI_CAP_PCI_CFG), shared memory regions. */
#ifndef MOTE_VIRTIO_PCI_H
#define MOTE_VIRTIO_PCI_H

#include "bus/msix.h"
#include "bus/pci.h"
#include "kvm/kvm.h"
#include "util/evloop.h"
#include "virtio/virtio.h"

struct virtio_pci;

struct virtio_pci_kick {
	struct evloop_source src; /* the queue's ioeventfd */
	struct virtio_pci *vp;
	unsigned q;
};

struct virtio_pci {
	struct pci_dev pci;
	struct virtio_dev *dev;
	struct msix msix;
	struct kvm *kvm;
	struct evloop *loop;
	uint32_t dfselect, gfselect;       /* feature dword selectors */
	uint16_t queue_select;
	uint16_t config_vector;
	uint16_t queue_vector[VIRTIO_MAX_QUEUES];
	uint16_t queue_size[VIRTIO_MAX_QUEUES];
	uint64_t queue_desc[VIRTIO_MAX_QUEUES], queue_driver[VIRTIO_MAX_QUEUES],
		queue_device[VIRTIO_MAX_QUEUES];
	bool queue_enabled[VIRTIO_MAX_QUEUES];
	uint8_t isr;
	uint8_t config_generation;
	struct virtio_pci_kick kick[VIRTIO_MAX_QUEUES];
	uint8_t msix_cap;                  /* offset of the MSI-X capability */
	bool ioeventfds;                   /* registered with KVM */
};

/* Builds the PCI function for dev (whose ops and features are set), with
 * MSI-X vectors and one kick eventfd per queue watched by loop. */
int virtio_pci_init(struct virtio_pci *vp, struct virtio_dev *dev, struct kvm *kvm,
		    struct evloop *loop);
/* Adds the function to the bus (placing its BAR) and registers the
 * notification ioeventfds at their final addresses. */
int virtio_pci_attach(struct virtio_pci *vp, struct pci_bus *pb);
void virtio_pci_fini(struct virtio_pci *vp);

#endif
