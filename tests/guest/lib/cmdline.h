/*
 * cmdline.h — key=value lookup in the boot command line.
 *
 * The command line is a list of words separated by spaces; a word is either
 * "key=value" or a bare "key". No quoting. When a key appears more than once,
 * the last occurrence wins (as in Linux).
 */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Looks key up in the command line. Returns buf holding its value (NUL-ended,
 * cut to size - 1 bytes), "" for a bare key, or NULL when the key is absent.
 */
const char *cmdline_get(const char *key, char *buf, size_t size);

/*
 * Returns key's value as an unsigned number (decimal, or hex after "0x"), or
 * dflt when the key is absent. A value that is not a number is a test failure.
 */
uint64_t cmdline_u64(const char *key, uint64_t dflt);

/*
 * Parses all of s as a decimal or "0x" hex number into *v.
 * Returns 0, or -1 if s is empty, has other characters or overflows.
 */
int cmdline_parse_u64(const char *s, uint64_t *v);

#endif
