/*
 * guest.h — everything a test guest usually needs, in one include.
 *
 * A guest is one C file defining guest_main(void); boot.c calls it on the BSP
 * once the identity map and the copies of start_info are in place. It ends with
 * test_done() or test_fail(); returning powers off without "done".
 */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stddef.h>
#include <stdint.h>

#include "acpi.h"
#include "boot.h"
#include "cmdline.h"
#include "console.h"
#include "fmt.h"
#include "io.h"
#include "layout.h"
#include "power.h"
#include "smp.h"
#include "str.h"
#include "test.h"
#include "tsc.h"

#endif
