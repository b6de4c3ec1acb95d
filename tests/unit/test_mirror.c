/* Unit tests for src/backend/mirror.c: the copy of a file that keeps
 * changing. The test plays the device: it changes the source with pwrite
 * and reports each change with mirror_mark, as blk.c does when a write
 * completes, then finishes the copy and compares the files. The copy runs on
 * the real worker thread (without its seccomp filter). */
#include "backend/mirror.h"
#include "sandbox/seccomp.h"
#include "util/log.h"
#include "util/worker.h"

#include "unit.h"

#include <poll.h>

#define SIZE (4u << 20)

static const char *dir;
static char *src_path;
static int src_fd;

static int setup(void **state)
{
	dir = unit_tmpdir();
	static uint8_t data[SIZE / 2];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + (i >> 12));
	src_path = unit_write_file(dir, "src.img", data, sizeof(data));
	src_fd = open(src_path, O_RDWR | O_CLOEXEC);
	if (src_fd < 0 || ftruncate(src_fd, SIZE) < 0) /* second half: a hole */
		return -1;
	return unit_log_begin(state);
}

static int teardown(void **state)
{
	close(src_fd);
	unit_rmdir(dir);
	free(src_path);
	return unit_log_end(state);
}

static char *path_in_dir(const char *name)
{
	char *p;
	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void assert_same_files(const char *a, const char *b)
{
	static uint8_t x[SIZE], y[SIZE];
	int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
	assert_true(fa >= 0 && fb >= 0);
	assert_int_equal(pread(fa, x, SIZE, 0), SIZE);
	assert_int_equal(pread(fb, y, SIZE, 0), SIZE);
	assert_memory_equal(x, y, SIZE);
	close(fa);
	close(fb);
}

static void wait_signalled(struct mirror *m)
{
	struct pollfd p = { .fd = m->efd, .events = POLLIN };
	assert_int_equal(poll(&p, 1, 10000), 1);
}

static void change(struct mirror *m, uint64_t off, size_t len, uint8_t v)
{
	static uint8_t buf[256 * 1024];
	memset(buf, v, len);
	assert_int_equal(pwrite(src_fd, buf, len, (off_t)off), (ssize_t)len);
	mirror_mark(m, off, len);
}

static void test_copy_with_writes_during_and_after(void **state)
{
	char *dst = path_in_dir("dst.img");
	struct mirror m;
	assert_int_equal(mirror_start(&m, src_fd, SIZE, dst), 0);
	/* Changes while the passes run, some into the hole, one across the
	 * end of a block, one at the very end of the file. */
	change(&m, 100, 1000, 0x11);
	change(&m, SIZE - 4096, 4096, 0x22);
	change(&m, 3 * MIRROR_BLOCK - 10, 20, 0x33);
	wait_signalled(&m);
	assert_int_equal(atomic_load(&m.state), MIRROR_CONVERGED);
	/* Changes after the thread converged: the final copy takes them. */
	change(&m, SIZE / 2 + 12345, 5000, 0x44);
	change(&m, 0, 1, 0x55);
	assert_int_equal(mirror_finish(&m), 0);
	assert_int_equal(atomic_load(&m.state), MIRROR_DONE);
	assert_true(atomic_load(&m.copied) >= SIZE / 2);
	assert_same_files(src_path, dst);
	mirror_destroy(&m); /* a finished copy stays */
	assert_int_equal(access(dst, F_OK), 0);
	free(dst);
}

static void test_marks_out_of_range_are_ignored(void **state)
{
	char *dst = path_in_dir("dst.img");
	struct mirror m;
	assert_int_equal(mirror_start(&m, src_fd, SIZE, dst), 0);
	mirror_mark(&m, SIZE, 4096);
	mirror_mark(&m, UINT64_MAX - 10, 100);
	/* A huge length from near the end marks up to the end (no wrap). */
	change(&m, SIZE - 1, 1, 0x66);
	mirror_mark(&m, SIZE - 1, UINT64_MAX);
	mirror_mark(&m, 0, 0);
	wait_signalled(&m);
	assert_int_equal(mirror_finish(&m), 0);
	assert_same_files(src_path, dst);
	mirror_destroy(&m);
	free(dst);
}

static void test_existing_destination_is_refused(void **state)
{
	char *dst = unit_write_file(dir, "keep.img", "keep", 4);
	struct mirror m;
	assert_int_equal(mirror_start(&m, src_fd, SIZE, dst), -EEXIST);
	assert_non_null(strstr(unit_log_text(), "File exists"));
	char buf[8] = { 0 };
	int fd = open(dst, O_RDONLY);
	assert_int_equal(read(fd, buf, sizeof(buf)), 4);
	assert_string_equal(buf, "keep");
	close(fd);
	free(dst);
}

static void test_unfinished_copy_is_removed(void **state)
{
	char *dst = path_in_dir("gone.img");
	struct mirror m;
	assert_int_equal(mirror_start(&m, src_fd, SIZE, dst), 0);
	mirror_destroy(&m); /* stops the thread wherever it is */
	assert_int_equal(access(dst, F_OK), -1);
	free(dst);
}

static void test_no_worker_no_copy(void **state)
{
	worker_stop();
	char *dst = path_in_dir("none.img");
	struct mirror m;
	assert_int_equal(mirror_start(&m, src_fd, SIZE, dst), -ESRCH);
	assert_non_null(strstr(unit_log_text(), "no worker thread"));
	assert_int_equal(access(dst, F_OK), -1); /* nothing left behind */
	assert_int_equal(worker_start(), 0);
	free(dst);
}

static int group_setup(void **state)
{
	return seccomp_setup(true, NULL) || worker_start();
}

static int group_teardown(void **state)
{
	worker_stop();
	return 0;
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_copy_with_writes_during_and_after),
		T(test_marks_out_of_range_are_ignored),
		T(test_existing_destination_is_refused),
		T(test_unfinished_copy_is_removed),
		T(test_no_worker_no_copy),
	};
#undef T
	return cmocka_run_group_tests_name("mirror", tests, group_setup, group_teardown);
}
