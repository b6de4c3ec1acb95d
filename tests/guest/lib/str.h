/*
 * str.h — the few libc memory and string functions the guests use.
 *
 * They keep their standard names because the compiler emits calls to memcpy,
 * memset, memmove and memcmp on its own (struct copies, zeroing) even with
 * -ffreestanding.
 */
#ifndef GUEST_STR_H
#define GUEST_STR_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#endif
