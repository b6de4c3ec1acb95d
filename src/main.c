/* mote: argv → configuration → vmm_create() → vmm_run(). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "util/log.h"
#include "vmm.h"

#define MOTE_VERSION "0.1.0"

static void usage(FILE *f)
{
	fprintf(f, "usage: mote run --kernel PATH [options]   (mote run --help)\n"
		   "       mote --version\n");
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
		printf("mote %s\n", MOTE_VERSION);
		return 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "run") != 0) {
		if (argc >= 2)
			log_error("unknown command or option %s", argv[1]);
		usage(stderr);
		return VMM_EXIT_CONFIG;
	}

	struct vm_config cfg;
	config_defaults(&cfg);
	int r = config_parse_run(&cfg, argc - 1, argv + 1);
	if (r)
		return r > 0 ? 0 : VMM_EXIT_CONFIG;

	/* Before any thread exists: signals arrive through the event loop's
	 * signalfd, and a closed stdout must not kill mote. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct vm *vm;
	int status;
	if (vmm_create(&vm, &cfg, &status) < 0)
		return status;
	status = vmm_run(vm);
	vmm_destroy(vm);
	return status;
}
