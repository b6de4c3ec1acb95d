/* Per-thread seccomp-bpf filters: each thread type of mote
 * (vCPU, event loop, API) gets an allowlist of exactly the system calls it
 * makes once set-up is over; anything else kills the whole process
 * (SECCOMP_RET_KILL_PROCESS: mote dies of SIGSYS, exit status 159 in a shell).
 *
 * A filter is per thread and inherited by threads created afterwards, so
 * each thread installs its own, and a thread that creates others installs
 * its filter only after creating them:
 *   - API thread: first thing in the thread (its socket already listens);
 *   - vCPU threads: first thing in the thread, before the first KVM_RUN;
 *   - event loop (main thread): in vmm_start(), right after the vCPU threads
 *     exist (in API mode that is at InstanceStart).
 * The tables are in seccomp.c, one commented line per rule. */
#ifndef MOTE_SANDBOX_SECCOMP_H
#define MOTE_SANDBOX_SECCOMP_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum seccomp_thread {
	SECCOMP_VCPU,
	SECCOMP_LOOP,
	SECCOMP_API,
	SECCOMP_WORKER,
	SECCOMP_NET,
	SECCOMP_MIGRATE,
	SECCOMP_NR_THREADS,
};

/* The largest --seccomp-filter program accepted, in instructions (the
 * kernel's BPF_MAXINSNS). */
#define SECCOMP_MAX_INSNS 4096

/* Sets the process-wide policy, once, before any thread exists:
 * disabled (--no-seccomp) installs nothing; filter_file (--seccomp-filter)
 * is a raw classic-BPF program (struct sock_filter[], 8 bytes each) that
 * replaces mote's tables on every thread. The file is read and tried in a
 * child process now, so a bad one is refused before anything runs.
 * MOTE_SECCOMP_LOG=1 in the environment makes violations log (SECCOMP_RET_LOG,
 * to the kernel's audit log) instead of kill, for finding a missing call.
 * 0, or -errno after one line naming the problem. */
int seccomp_setup(bool disabled, const char *filter_file);

/* Installs the calling thread's filter for its type t (or the custom
 * program, or nothing when disabled). 0, or -errno after one log line. */
int seccomp_install(enum seccomp_thread t);

/* The most instructions a table's program may take (seccomp_compile). */
#define SECCOMP_TABLE_INSNS 512

/* Builds t's classic-BPF program into insn (cap instructions): anything
 * not in t's table returns deny (SECCOMP_RET_KILL_PROCESS or
 * SECCOMP_RET_LOG). The length, or -E2BIG. Tests run it through an
 * interpreter of their own. */
int seccomp_compile(enum seccomp_thread t, uint32_t deny, struct sock_filter *insn, size_t cap);

/* How many distinct system calls t's table allows (docs and tests). */
unsigned seccomp_allowed_count(enum seccomp_thread t);

/* Rule i of t's table: system call nr, allowed with any arguments (arg <
 * 0) or when argument arg's low 32 bits equal val's. False past the end. */
bool seccomp_rule(enum seccomp_thread t, size_t i, int *nr, int *arg, uint64_t *val);

/* "vcpu", "loop", "api", "worker", "net", "migrate". */
const char *seccomp_thread_name(enum seccomp_thread t);

/* Checks a raw BPF program's size: not empty, a multiple of 8 bytes, at
 * most SECCOMP_MAX_INSNS instructions. 0 or -EINVAL. */
int seccomp_check_size(size_t bytes);

#endif
