/*
 * spawn — run one monitor and time it from the outside, for bench/.
 *
 *   spawn [-m MARKER] [-t SECONDS] [-q] -- CMD [ARG...]
 *
 * Starts CMD with stdin on /dev/null, stdout on a pipe and stderr inherited,
 * copies CMD's stdout to our stdout (unless -q), and when CMD has ended
 * prints one line:
 *
 *   SPAWN first_ns=<exec -> first stdout byte> marker_ns=<exec -> MARKER seen>
 *         total_ns=<exec -> exit reaped> maxrss_kb=<peak RSS> status=<code>
 *
 * (on one line; -1 for an event that did not happen). status is the exit
 * code, 128+N for signal N, or "timeout" when -t expired and CMD was killed.
 *
 * Why a C program rather than Python's subprocess: the clock starts right
 * before posix_spawn, with no interpreter work in the measured span; and
 * ru_maxrss of a child is the larger of its own peak and the peak of the
 * address space it exec'd from (Linux carries it over at exec). Spawned from
 * Python that floor is the interpreter's RSS (~10+ MB); from this static
 * program it is a few hundred KiB, and bench/ reports it next to the results.
 * Built with -static so the same file also runs in the lab's busybox L1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void usage(void)
{
	fprintf(stderr, "usage: spawn [-m MARKER] [-t SECONDS] [-q] -- CMD [ARG...]\n");
	exit(2);
}

static void write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return;	/* our reader went away: keep measuring */
		}
		p += w;
		n -= (size_t)w;
	}
}

int main(int argc, char **argv)
{
	const char *marker = NULL;
	double timeout_s = 0;
	int quiet = 0, opt;

	while ((opt = getopt(argc, argv, "+m:t:q")) != -1) {
		switch (opt) {
		case 'm': marker = optarg; break;
		case 't': timeout_s = atof(optarg); break;
		case 'q': quiet = 1; break;
		default: usage();
		}
	}
	if (optind >= argc || (marker && !*marker))
		usage();

	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		perror("spawn: pipe");
		return 2;
	}
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);

	/* The marker may straddle two reads: keep a tail of the last one. */
	size_t mlen = marker ? strlen(marker) : 0;
	char *tail = calloc(1, mlen * 2 + 65536 + 1);
	size_t tail_len = 0;
	long long first = -1, seen = -1, total;
	pid_t pid;

	long long t0 = now_ns();
	int err = posix_spawnp(&pid, argv[optind], &fa, NULL, argv + optind, environ);
	if (err) {
		fprintf(stderr, "spawn: %s: %s\n", argv[optind], strerror(err));
		return 2;
	}
	close(pfd[1]);

	long long deadline = timeout_s > 0 ? t0 + (long long)(timeout_s * 1e9) : 0;
	int timed_out = 0;
	char buf[65536];
	for (;;) {
		int wait_ms = -1;
		if (deadline) {
			long long left = deadline - now_ns();
			if (left <= 0) {
				timed_out = 1;
				kill(pid, SIGKILL);
				break;
			}
			wait_ms = (int)(left / 1000000) + 1;
		}
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		int r = poll(&p, 1, wait_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		ssize_t n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		long long t = now_ns();
		if (first < 0)
			first = t - t0;
		if (marker && seen < 0) {
			memcpy(tail + tail_len, buf, (size_t)n);
			tail_len += (size_t)n;
			if (memmem(tail, tail_len, marker, mlen))
				seen = t - t0;
			else if (tail_len >= mlen) {
				memmove(tail, tail + tail_len - (mlen - 1), mlen - 1);
				tail_len = mlen - 1;
			}
		}
		if (!quiet)
			write_all(1, buf, (size_t)n);
	}

	int st;
	struct rusage ru;
	while (wait4(pid, &st, 0, &ru) < 0) {
		if (errno != EINTR) {
			perror("spawn: wait4");
			return 2;
		}
	}
	total = now_ns() - t0;
	close(pfd[0]);

	char status[32];
	if (timed_out)
		snprintf(status, sizeof(status), "timeout");
	else if (WIFEXITED(st))
		snprintf(status, sizeof(status), "%d", WEXITSTATUS(st));
	else
		snprintf(status, sizeof(status), "%d", 128 + WTERMSIG(st));
	fflush(stdout);
	dprintf(1, "\nSPAWN first_ns=%lld marker_ns=%lld total_ns=%lld maxrss_kb=%ld status=%s\n",
		first, seen, total, ru.ru_maxrss, status);
	return 0;
}
