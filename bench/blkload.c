/*
 * blkload — a small block-device load generator for bench/blk, run inside a
 * Linux guest (built static: the guest's initrd has no C library).
 *
 *   blkload [-t THREADS] [-s SECONDS] [-w WORKLOAD[,WORKLOAD...]] DEVICE
 *
 * Workloads, in the order given (default: all four, in this order):
 *   randread   4 KiB reads at random 4 KiB-aligned offsets
 *   randwrite  4 KiB writes at random 4 KiB-aligned offsets
 *   seqread    1 MiB reads, sequential
 *   seqwrite   1 MiB writes, sequential
 * Each runs THREADS (default 8) threads for SECONDS (default 3) on one
 * O_DIRECT file descriptor: each thread does blocking pread/pwrite, so up to
 * THREADS requests are in flight. Sequential threads share one cursor: they
 * take consecutive 1 MiB chunks (wrapping at the end of the device), so the
 * device sees one sequential stream THREADS deep. Buffers are page-aligned
 * (O_DIRECT needs logical-block alignment of buffer, offset and length);
 * written data is pseudo-random, so nothing can be compressed or deduplicated.
 *
 * Output, one line per workload (time from the start signal until the last
 * thread finished its last request, CLOCK_MONOTONIC):
 *   BLKLOAD <workload> ops=<n> bytes=<n> secs=<s> iops=<x> mibps=<y> threads=<t>
 * and a failed request ends the program with status 1 and
 *   BLKLOAD-FAIL <what>
 * Writes are not flushed (no O_SYNC, no fsync): they measure the request
 * path, which is the same for both monitors.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS	64
#define SMALL		4096
#define LARGE		(1024 * 1024)

struct workload {
	const char *name;
	size_t size;
	int write;
	int seq;
};

static const struct workload workloads[] = {
	{ "randread", SMALL, 0, 0 },
	{ "randwrite", SMALL, 1, 0 },
	{ "seqread", LARGE, 0, 1 },
	{ "seqwrite", LARGE, 1, 1 },
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

struct worker {
	pthread_t tid;
	unsigned index;
	uint64_t ops;
	uint64_t rng;
	unsigned char *buf;
};

static int fd;
static uint64_t dev_size;
static const struct workload *cur;
static atomic_int stop;
static atomic_uint_fast64_t seq_next;
static pthread_barrier_t start_barrier;

static void fail(const char *what, int err)
{
	printf("BLKLOAD-FAIL %s: %s\n", what, strerror(err));
	fflush(stdout);
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: good enough to scatter offsets and fill buffers. */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	const struct workload *wl = cur;
	uint64_t chunks = dev_size / wl->size;
	char what[96];

	pthread_barrier_wait(&start_barrier);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		uint64_t chunk = wl->seq ? atomic_fetch_add(&seq_next, 1) % chunks :
					   next_rand(&w->rng) % chunks;
		off_t off = (off_t)(chunk * wl->size);
		ssize_t r = wl->write ? pwrite(fd, w->buf, wl->size, off) :
					pread(fd, w->buf, wl->size, off);

		if (r != (ssize_t)wl->size) {
			snprintf(what, sizeof(what), "%s of %zu bytes at %lld returned %zd",
				 wl->name, wl->size, (long long)off, r);
			fail(what, r < 0 ? errno : EIO);
		}
		w->ops++;
	}
	return NULL;
}

static void run(const struct workload *wl, struct worker *ws, unsigned threads,
		double seconds)
{
	struct timespec ts = { (time_t)seconds,
			       (long)((seconds - (time_t)seconds) * 1e9) };
	uint64_t ops = 0;
	double t0, t1;
	unsigned i;
	int err;

	cur = wl;
	atomic_store(&stop, 0);
	atomic_store(&seq_next, 0);
	pthread_barrier_init(&start_barrier, NULL, threads + 1);
	for (i = 0; i < threads; i++) {
		ws[i].ops = 0;
		err = pthread_create(&ws[i].tid, NULL, work, &ws[i]);
		if (err)
			fail("pthread_create", err);
	}
	pthread_barrier_wait(&start_barrier);
	t0 = now();
	nanosleep(&ts, NULL);
	atomic_store(&stop, 1);
	for (i = 0; i < threads; i++) {
		pthread_join(ws[i].tid, NULL);
		ops += ws[i].ops;
	}
	t1 = now();
	pthread_barrier_destroy(&start_barrier);
	printf("BLKLOAD %s ops=%llu bytes=%llu secs=%.3f iops=%.1f mibps=%.2f threads=%u\n",
	       wl->name, (unsigned long long)ops, (unsigned long long)(ops * wl->size),
	       t1 - t0, ops / (t1 - t0), ops * wl->size / (t1 - t0) / (1024.0 * 1024.0),
	       threads);
	fflush(stdout);
}

static void usage(void)
{
	fprintf(stderr, "usage: blkload [-t THREADS] [-s SECONDS] "
		"[-w randread,randwrite,seqread,seqwrite] DEVICE\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *list = "randread,randwrite,seqread,seqwrite";
	unsigned threads = 8, i;
	double seconds = 3;
	struct worker ws[MAX_THREADS];
	struct stat st;
	char *end;
	int c;

	while ((c = getopt(argc, argv, "t:s:w:")) != -1) {
		switch (c) {
		case 't':
			threads = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !threads || threads > MAX_THREADS)
				usage();
			break;
		case 's':
			seconds = strtod(optarg, &end);
			if (*end || !(seconds > 0))
				usage();
			break;
		case 'w':
			list = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();

	fd = open(argv[optind], O_RDWR | O_DIRECT);
	if (fd < 0)
		fail(argv[optind], errno);
	if (fstat(fd, &st) < 0)
		fail("fstat", errno);
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &dev_size) < 0)
			fail("BLKGETSIZE64", errno);
	} else {
		dev_size = (uint64_t)st.st_size;
	}
	if (dev_size < LARGE)
		fail("device smaller than 1 MiB", EINVAL);

	for (i = 0; i < threads; i++) {
		ws[i].index = i;
		ws[i].rng = 0x9e3779b97f4a7c15ULL * (i + 1) ^ (uint64_t)getpid();
		if (posix_memalign((void **)&ws[i].buf, 4096, LARGE))
			fail("posix_memalign", ENOMEM);
		for (size_t j = 0; j < LARGE; j += 8) {
			uint64_t v = next_rand(&ws[i].rng);
			memcpy(ws[i].buf + j, &v, 8);
		}
	}

	/* Run the workloads named in list, in its order. */
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		unsigned k;

		for (k = 0; k < NWORKLOADS; k++)
			if (strlen(workloads[k].name) == n && !strncmp(p, workloads[k].name, n))
				break;
		if (k == NWORKLOADS) {
			fprintf(stderr, "blkload: unknown workload '%.*s'\n", (int)n, p);
			usage();
		}
		run(&workloads[k], ws, threads, seconds);
		p += n;
		if (*p == ',')
			p++;
	}
	close(fd);
	return 0;
}
