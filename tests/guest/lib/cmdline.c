/*
 * cmdline.c — command-line lookup (see cmdline.h) over the copy boot.c made.
 */
#include "boot.h"
#include "cmdline.h"
#include "str.h"
#include "test.h"

const char *cmdline_get(const char *key, char *buf, size_t size)
{
	const char *p = boot_cmdline();
	const char *found = NULL;
	size_t klen = strlen(key), n = 0;

	while (*p) {
		const char *word = p;

		while (*p && *p != ' ')
			p++;
		if (strncmp(word, key, klen) == 0 &&
		    (word[klen] == '=' || word + klen == p))
			found = word + klen;
		while (*p == ' ')
			p++;
	}
	if (!found)
		return NULL;
	if (*found == '=')
		found++;
	while (found[n] && found[n] != ' ' && n + 1 < size) {
		buf[n] = found[n];
		n++;
	}
	if (size)
		buf[n] = '\0';
	return buf;
}

int cmdline_parse_u64(const char *s, uint64_t *v)
{
	unsigned base = 10;
	uint64_t r = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -1;
	for (; *s; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -1;
		if (r > (UINT64_MAX - d) / base)
			return -1;
		r = r * base + d;
	}
	*v = r;
	return 0;
}

uint64_t cmdline_u64(const char *key, uint64_t dflt)
{
	char buf[32];
	uint64_t v;

	if (!cmdline_get(key, buf, sizeof(buf)))
		return dflt;
	if (cmdline_parse_u64(buf, &v))
		test_fail("cmdline: %s=%s is not a number", key, buf);
	return v;
}
