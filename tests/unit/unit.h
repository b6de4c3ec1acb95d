/* Shared helpers for mote's cmocka unit tests: cmocka's includes in the
 * order it needs, a capture of the log (to assert the one line a failure
 * must print), and temporary files. Everything is static inline so that a
 * test which does not use a helper neither links its dependencies nor warns. */
#ifndef MOTE_UNIT_H
#define MOTE_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four above first. */
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- log capture (for tests that link src/util/log.c) ---- */

#ifdef MOTE_LOG_H
static int unit_log_fd = -1;

/* Sends the log to a memfd until unit_log_end(); returns 0 for use as a
 * cmocka setup function. */
static inline int unit_log_begin(void **state)
{
	(void)state;
	unit_log_fd = memfd_create("unit-log", MFD_CLOEXEC);
	if (unit_log_fd < 0)
		return -1;
	log_set_fd(unit_log_fd);
	return 0;
}

static inline int unit_log_end(void **state)
{
	(void)state;
	log_set_fd(2);
	if (unit_log_fd >= 0)
		close(unit_log_fd);
	unit_log_fd = -1;
	return 0;
}

/* Everything logged since unit_log_begin() or the last unit_log_clear(),
 * NUL-terminated (a static buffer: valid until the next call). */
static inline const char *unit_log_text(void)
{
	static char buf[16384];
	ssize_t n = unit_log_fd < 0 ? 0 : pread(unit_log_fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static inline void unit_log_clear(void)
{
	if (unit_log_fd >= 0) {
		assert_int_equal(ftruncate(unit_log_fd, 0), 0);
		assert_int_equal(lseek(unit_log_fd, 0, SEEK_SET), 0);
	}
}

static inline unsigned unit_log_lines(void)
{
	unsigned n = 0;
	for (const char *p = unit_log_text(); *p; p++)
		n += *p == '\n';
	return n;
}

/* Fails the test unless the log holds `needle`, showing the log if not. */
#define assert_log_contains(needle)                                                                \
	do {                                                                                       \
		const char *log_ = unit_log_text();                                                \
		if (!strstr(log_, (needle)))                                                       \
			fail_msg("log lacks \"%s\"; it holds:\n%s", (needle), log_);               \
	} while (0)
#endif

/* ---- temporary files ---- */

/* A fresh directory under $TMPDIR (or /tmp); path in a static buffer. */
static inline const char *unit_tmpdir(void)
{
	static char dir[256];
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/mote-unit-XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(dir));
	return dir;
}

/* Removes the (flat) directory made by unit_tmpdir(). */
static inline void unit_rmdir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	char path[512];
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) < 0)
			rmdir(path);
	}
	closedir(d);
	rmdir(dir);
}

/* Writes dir/name with len bytes of buf; returns the path (caller frees). */
static inline char *unit_write_file(const char *dir, const char *name, const void *buf, size_t len)
{
	char *path;
	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
	return path;
}

/* Open file descriptors of this process (to catch leaks on error paths). */
static inline unsigned unit_open_fds(void)
{
	unsigned n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

#endif
