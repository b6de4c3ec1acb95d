/* libFuzzer harness for command-line parsing: `mote run` flags
 * (config_parse_run in src/config.c, with --disk specs, counts and sizes)
 * and Firecracker's flags (api_parse_options in src/api/server.c, with log
 * levels). The input is the argument vector: strings separated by NUL
 * bytes, after a first byte that picks the parser (bit 0: `mote run`).
 * Both parsers run many times in one process here, unlike in mote, so stale
 * getopt state between calls is found too.
 *
 * Oracles: ASan/UBSan; each parser returns only what its header promises
 * (0, 1 for help, -EINVAL); a successful `mote run` parse has a kernel, a
 * CPU count, memory size and disks within mote's limits, each disk with a
 * non-empty path and a NUL-terminated id; Firecracker's flags leave an
 * instance id and, with --no-api, a config file. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "arch/x86/layout.h"
#include "config.h"
#include "util/log.h"

#define MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0 || dup2(null, STDOUT_FILENO) < 0) /* --help and --api-routes print */
		abort();
	log_set_fd(null);
	return 0;
}

static void check_run(const struct vm_config *cfg, int r)
{
	if (r == 1 || r == -EINVAL)
		return;
	/* A restore or an incoming migration takes its machine from elsewhere:
	 * no kernel then, but both halves of --restore. */
	bool elsewhere = cfg->restore || cfg->migrate_listen;
	if (cfg->restore && (!cfg->restore[0] || !cfg->restore_mem || !cfg->restore_mem[0]))
		abort();
	if (r != 0 || (!cfg->kernel && !elsewhere) || !cfg->cmdline || cfg->cpus < 1 ||
	    cfg->cpus > X86_MAX_CPUS || cfg->mem_mib < CONFIG_MIN_MEM_MIB ||
	    cfg->nr_disks > CONFIG_MAX_DISKS)
		abort();
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const struct vm_disk *d = &cfg->disks[i];
		if (!d->path || !d->path[0] || strchr(d->path, ',') ||
		    !memchr(d->id, '\0', sizeof(d->id)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool run = data[0] & 1;
	/* One mutable copy (parsers cut --disk specs in place), NUL-terminated. */
	char *buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	char *argv[MAX_ARGS + 2];
	int argc = 0;
	argv[argc++] = run ? "run" : "mote";
	for (char *p = buf; p < buf + size && argc <= MAX_ARGS; p += strlen(p) + 1) {
		argv[argc++] = p;
		if (p + strlen(p) == buf + size - 1)
			break;
	}
	argv[argc] = NULL;

	if (run) {
		struct vm_config cfg;
		config_defaults(&cfg);
		check_run(&cfg, config_parse_run(&cfg, argc, argv));
	} else {
		struct api_options o;
		int r = api_parse_options(&o, argc, argv);
		if (r != 0 && r != 1 && r != -EINVAL)
			abort();
		if (r == 0 && (!o.id || (!o.api_sock && !o.config_file)))
			abort();
	}
	log_set_level(LOG_WARN);
	free(buf);
	return 0;
}
