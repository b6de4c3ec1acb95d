/* The hardware-reduced ACPI power registers the FADT points at: sleep
 * control (a write of SLP_TYP=5 with SLP_EN powers off), sleep status
 * (always reads 0), and the reset register. Nothing else of ACPI PM. */
#ifndef MOTE_PM_H
#define MOTE_PM_H

#include <stdbool.h>
#include <stdint.h>

struct acpi_pm {
	void (*poweroff)(void *opaque);
	void (*reset)(void *opaque);
	void *opaque;
};

/* Bus handler for the X86_PM_LEN ports at X86_PM_PORT. */
void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
