/* Hardware-reduced ACPI power registers; see pm.h (ACPI 6.4 §4.8.3.7). */
#include "dev/pm.h"

#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"

void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	uint8_t v = data[0];
	if (offset == 0 && (v & ACPI_SLP_EN) && ((v >> 2) & 7) == ACPI_S5_TYPE)
		pm->poweroff(pm->opaque);
	else if (offset == 2 && v == X86_RESET_VALUE)
		pm->reset(pm->opaque);
}
