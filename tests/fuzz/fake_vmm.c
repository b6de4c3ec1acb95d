/* A stand-in for src/vmm.c for the API and flag harnesses: the API's route
 * table and config-file path link against it instead of KVM. vmm_create()
 * checks what the API composed (the struct vm_config every boot starts
 * from) and aborts on anything mote's VM set-up could not trust; then it
 * "runs" a VM that only remembers whether it is paused, so that post-boot
 * requests are reachable too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/layout.h"
#include "snap/migrate.h"
#include "snap/snapshot.h"
#include "util/log.h"
#include "vmm.h"

#include "fake_vmm.h"

unsigned fake_vmm_creates;

struct vm {
	bool paused;
	struct vm_config cfg;
};

static void check_config(const struct vm_config *cfg)
{
	if (!cfg->kernel || !cfg->cmdline || strlen(cfg->cmdline) >= 4096)
		abort();
	if (cfg->cpus < 1 || cfg->cpus > X86_MAX_CPUS || cfg->mem_mib < CONFIG_MIN_MEM_MIB)
		abort();
	if (cfg->nr_disks > CONFIG_MAX_DISKS)
		abort();
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		const struct vm_disk *d = &cfg->disks[i];
		if (!d->path || memchr(d->id, '\0', sizeof(d->id)) == NULL)
			abort();
	}
}

int vmm_create(struct vm **out, const struct vm_config *cfg, struct evloop *loop, int *status)
{
	check_config(cfg);
	fake_vmm_creates++;
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		*status = VMM_EXIT_INTERNAL;
		return -ENOMEM;
	}
	vm->cfg = *cfg;
	*out = vm;
	return 0;
}

int vmm_start(struct vm *vm) { return 0; }
int vmm_wait(struct vm *vm) { return 0; }
int vmm_run(struct vm *vm) { return 0; }
void vmm_destroy(struct vm *vm) { free(vm); }
void vmm_stop(struct vm *vm, int status) {}
bool vmm_is_paused(struct vm *vm) { return vm->paused; }
int vmm_ctrl_alt_del(struct vm *vm) { return vm->paused ? -EAGAIN : 0; }

int vmm_pause(struct vm *vm)
{
	vm->paused = true;
	return 0;
}

int vmm_resume(struct vm *vm)
{
	vm->paused = false;
	return 0;
}

void vmm_metrics(struct vm *vm, const struct metrics_sink *sink)
{
	for (unsigned i = 0; i < vm->cfg.nr_disks; i++) {
		char group[64];
		snprintf(group, sizeof(group), "block_%s", vm->cfg.disks[i].id);
		metric(sink, group, "read_count", i);
	}
	metric(sink, "vcpu", "exit_io_out", vm->cfg.cpus);
}

int vmm_update_drive(struct vm *vm, unsigned index, const char *path,
		     const struct ratelimit_cfg *rl)
{
	return 0;
}

int vmm_migrate_drive(struct vm *vm, unsigned index, const char *dst) { return 0; }

int vmm_drive_status(struct vm *vm, unsigned index, struct blk_status *st) { return -ENOENT; }

int vmm_net_set_limits(struct vm *vm, const char *id, const struct ratelimit_cfg *rx,
		       const struct ratelimit_cfg *tx)
{
	return 0;
}

/* Snapshots: the request path, not the state stream (fuzz_snapshot). */
int vmm_snapshot(struct vm *vm, const char *snap_path, const char *mem_path, bool diff)
{
	return 0;
}
int vmm_restore(struct vm *vm, struct snap_reader *r) { return 0; }
/* A migration that "completes" at once (the real one answers later, from
 * the loop; without a server, ctl->answer is NULL and the reply is filled
 * in place). */
int vmm_migrate(struct vm *vm, const char *dest, const struct migrate_opts *o,
		vmm_migrate_done_fn done, void *arg)
{
	if (strncmp(dest, "tcp:", 4)) {
		log_error("migrate: destination %s: expected tcp:IPV4:PORT", dest);
		return -EINVAL;
	}
	struct migrate_status st = { .state = MIGRATE_COMPLETED, .opts = *o };
	snprintf(st.destination, sizeof(st.destination), "%s", dest);
	done(arg, 0, &st);
	return 0;
}
void vmm_migrate_status(struct vm *vm, struct migrate_status *st)
{
	*st = (struct migrate_status){ .state = MIGRATE_IDLE };
}
int snap_file_open(struct snap_file *f, const char *path, struct vm_config *cfg)
{
	log_error("snapshot: %s: not read by this fake", path);
	return -EBADMSG;
}
void snap_file_close(struct snap_file *f) {}
