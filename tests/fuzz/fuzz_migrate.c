/* libFuzzer harness for the receiving side of a live migration
 * (src/snap/migrate.c): everything a destination reads from the network —
 * message framing and checksums, CONFIG (parsed into a configuration),
 * DISKS (checked against the --migrate-disk mappings; the new files are
 * created), PAGES (into guest RAM), DISK (into the new files), STATE (loaded
 * into the fake machine of tests/fuzz/fake_machine.h) — and the NAK it sends.
 *
 * Input: one byte of flags, then the byte stream as the source would send
 * it. Flag bit 0 maps disk "disk0" (--migrate-disk disk0=FILE in a private
 * directory), bit 1 maps "disk1" too. The stream reaches migrate_recv_config
 * and migrate_recv through a socket pair, written by a thread and closed at
 * its end, as a source that hangs up would.
 *
 * Oracles beyond the sanitizers: a failed migration leaves a log line; the
 * new disk files exist only while a migration that created them is
 * accepted or in progress (migrate_discard_disks removes them), and never
 * outside the private directory; guest RAM outside the fake machine's
 * 64 MiB is never written (ASan). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_machine.h"
#include "snap/migrate.h"
#include "util/log.h"
#include "virtio/blk.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The sending side is not fuzzed; these only satisfy the linker. */
int virtio_blk_track(struct virtio_dev *dev, struct blkmap *map, int *fd, uint64_t *size)
{
	abort();
}
void virtio_blk_status(struct virtio_dev *dev, struct blk_status *st) { abort(); }
int kvm_get_dirty_log(const struct kvm *kvm, uint32_t slot, uint64_t *bitmap) { abort(); }

static char dir[] = "/tmp/mote-fuzz-migrate-XXXXXX";
static char disk_path[2][64];

static void remove_dir(void) { rmdir(dir); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	fake_machine_init();
	log_set_fd(open("/dev/null", O_WRONLY | O_CLOEXEC)); /* errors still set log_last_error */
	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	for (int i = 0; i < 2; i++)
		snprintf(disk_path[i], sizeof(disk_path[i]), "%s/disk%d.img", dir, i);
	return 0;
}

struct feed {
	int fd;
	const uint8_t *data;
	size_t size;
};

/* The source: writes the stream, hangs up, and reads what comes back (a
 * NAK) so that the destination never blocks on a full socket. */
static void *feed(void *arg)
{
	struct feed *f = arg;
	for (size_t done = 0; done < f->size;) {
		ssize_t n = send(f->fd, f->data + done, f->size - done, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	shutdown(f->fd, SHUT_WR);
	char buf[4096];
	while (recv(f->fd, buf, sizeof(buf), 0) > 0)
		;
	return NULL;
}

#define MARK "fuzz: nothing logged yet"

static bool exists(const char *path) { return access(path, F_OK) == 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	struct feed f = { .fd = sv[1], .data = data + 1, .size = size - 1 };
	pthread_t t;
	if (pthread_create(&t, NULL, feed, &f))
		abort();

	struct vm_config cfg;
	config_defaults(&cfg);
	const char *ids[2] = { "disk0", "disk1" };
	for (int i = 0; i < 2; i++) {
		if (flags & (1u << i))
			cfg.migrate_disks[cfg.nr_migrate_disks++] =
				(struct vm_migrate_disk){ .id = ids[i], .path = disk_path[i] };
	}
	struct snap_file file;
	log_error(MARK);
	int err = migrate_recv_config(sv[0], &file, &cfg);
	if (err && getenv("FUZZ_MIGRATE_VERBOSE"))
		fprintf(stderr, "migrate_recv_config: %d %s\n", err, log_last_error());
	if (err) {
		/* Refused before any machine, saying why: nothing stays on disk. */
		if (!strcmp(log_last_error(), MARK) || exists(disk_path[0]) || exists(disk_path[1]))
			abort();
	} else {
		for (unsigned i = 0; i < cfg.nr_disks; i++)
			if (cfg.disks[i].incoming && strncmp(cfg.disks[i].path, dir, strlen(dir)))
				abort();
		struct snap_vm vm;
		fake_machine_build(&vm);
		vm.cfg = &cfg;
		log_error(MARK);
		err = migrate_recv(&vm, sv[0]);
		if (err && !strcmp(log_last_error(), MARK))
			abort();
		if (getenv("FUZZ_MIGRATE_VERBOSE"))
			fprintf(stderr, "migrate_recv: %d %s\n", err, err ? log_last_error() : "ok");
		if (!err)
			fake_machine_check(&vm);
		fake_machine_free();
		migrate_discard_disks(&cfg);
		snap_file_close(&file);
		if (exists(disk_path[0]) || exists(disk_path[1]))
			abort();
	}
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
	return 0;
}
