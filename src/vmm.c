/* The VM and its state machine; see vmm.h. Set-up order follows what each
 * step needs: KVM, then RAM and its memory slots, the irqchip, devices on
 * the buses, ACPI and the kernel in guest memory, vCPUs (CPUID and boot
 * registers), and last the event loop's sources. vmm_destroy() unwinds the
 * same steps in reverse, from whatever point set-up reached. */
#include "vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "arch/x86/cpu.h"
#include "arch/x86/layout.h"
#include "bus/bus.h"
#include "bus/pci.h"
#include "console.h"
#include "dev/boot_timer.h"
#include "dev/i8042.h"
#include "dev/pm.h"
#include "dev/serial.h"
#include "kvm/kvm.h"
#include "mem/guest_mem.h"
#include "sandbox/seccomp.h"
#include "snap/migjob.h"
#include "snap/migrate.h"
#include "snap/snapshot.h"
#include "util/evloop.h"
#include "util/worker.h"
#include "util/log.h"
#include "util/util.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"

#define VMM_MAX_VIRTIO 16

/* Interrupts KVM_RUN on a vCPU thread; blocked everywhere else. */
#define SIG_KICK SIGUSR1

struct vcpu {
	struct vm *vm;
	struct kvm_vcpu kvm;
	pthread_t thread;
	bool started;
	/* Exits by kind (written by this vCPU only; read racily for metrics). */
	_Atomic uint64_t io_in, io_out, mmio_read, mmio_write;
};

struct vm {
	const struct vm_config *cfg;
	struct kvm kvm;
	bool kvm_ok;
	struct guest_mem mem;
	struct bus pio, mmio;
	struct pci_bus pci;
	bool pci_ok;
	struct serial8250 serial;
	int serial_fd;                /* --serial output file, or -1 (stdout) */
	struct i8042 i8042;
	struct acpi_pm pm;
	struct boot_timer boot_timer;
	struct x86_boot boot;
	unsigned nr_vcpus;
	struct vcpu *vcpus;
	struct evloop *loop;          /* the caller's event loop */
	struct virtio_pci vpci[VMM_MAX_VIRTIO];
	struct virtio_dev *vdev[VMM_MAX_VIRTIO];
	void (*vdev_destroy[VMM_MAX_VIRTIO])(struct virtio_dev *);
	unsigned nr_virtio;
	struct console console;
	bool console_ok;
	struct evloop_source stop_ev; /* eventfd written by vmm_stop() */
	_Atomic int status;           /* -1 while running */
	/* Pause: vCPU threads park on `resume` until `paused` clears. */
	pthread_mutex_t pause_lock;
	pthread_cond_t parked_cond, resume_cond;
	_Atomic bool paused;
	unsigned parked;
	bool started;
	struct evloop_source migrated_ev; /* timerfd: stop after a migration */
	/* Live migration: the sending thread, and who to tell when it ends. */
	struct migjob mig;
	bool mig_was_paused;
	vmm_migrate_done_fn mig_done;
	void *mig_done_arg;
};

void vmm_stop(struct vm *vm, int status)
{
	int running = -1;
	if (atomic_compare_exchange_strong(&vm->status, &running, status)) {
		pthread_mutex_lock(&vm->pause_lock);
		pthread_cond_broadcast(&vm->resume_cond);
		pthread_mutex_unlock(&vm->pause_lock);
		uint64_t one = 1;
		if (write(vm->stop_ev.fd, &one, sizeof(one)) < 0)
			fatal("vmm: cannot signal the event loop: %s", strerror(errno));
	}
}

static bool stopping(struct vm *vm) { return atomic_load(&vm->status) >= 0; }
static void on_migrated(struct evloop_source *src, uint32_t events);
static const struct migjob_ops mig_ops;

static void irq_set(void *opaque, unsigned gsi, int level)
{
	struct vm *vm = opaque;
	int r = kvm_irq_line(&vm->kvm, gsi, level);
	if (r < 0)
		log_ratelimited(LOG_WARN, "vmm: cannot set IRQ %u: %s", gsi, strerror(-r));
}

static void guest_poweroff(void *opaque)
{
	log_info("guest powered off");
	vmm_stop(opaque, VMM_EXIT_OK);
}

static void guest_reset(void *opaque)
{
	log_info("guest reset");
	vmm_stop(opaque, VMM_EXIT_OK);
}

static void console_quit(void *opaque)
{
	log_info("console: quit (Ctrl-A x)");
	vmm_stop(opaque, VMM_EXIT_OK);
}

static unsigned long long vcpu_rip(const struct vcpu *v)
{
	struct kvm_regs regs;
	return kvm_vcpu_get_regs(&v->kvm, &regs) == 0 ? regs.rip : 0;
}

/* One exit; runs on the vCPU's thread. */
static void handle_exit(struct vcpu *v)
{
	struct vm *vm = v->vm;
	struct kvm_run *run = v->kvm.run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO: {
		uint64_t size = run->io.size, count = run->io.count, off = run->io.data_offset;
		uint64_t room = (uint64_t)v->kvm.run_size;
		if (size == 0 || size > 8 || off > room || count * size > room - off) {
			log_error("vcpu %u: malformed KVM I/O exit", v->kvm.id);
			vmm_stop(vm, VMM_EXIT_KVM);
			return;
		}
		uint8_t *data = (uint8_t *)run + off;
		bool out = run->io.direction == KVM_EXIT_IO_OUT;
		atomic_fetch_add_explicit(out ? &v->io_out : &v->io_in, 1, memory_order_relaxed);
		for (uint64_t i = 0; i < count; i++)
			bus_access(&vm->pio, run->io.port, data + i * size, (uint32_t)size, out);
		return;
	}
	case KVM_EXIT_MMIO:
		if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data)) {
			log_error("vcpu %u: malformed KVM MMIO exit", v->kvm.id);
			vmm_stop(vm, VMM_EXIT_KVM);
			return;
		}
		atomic_fetch_add_explicit(run->mmio.is_write ? &v->mmio_write : &v->mmio_read, 1,
					  memory_order_relaxed);
		bus_access(&vm->mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			   run->mmio.is_write);
		return;
	case KVM_EXIT_INTR:
		return;
	case KVM_EXIT_SHUTDOWN:
		log_error("guest triple fault on vCPU %u at rip %#llx", v->kvm.id, vcpu_rip(v));
		vmm_stop(vm, VMM_EXIT_TRIPLE_FAULT);
		return;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ||
		    run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			guest_poweroff(vm);
			return;
		}
		log_error("guest crashed (system event %u) on vCPU %u", run->system_event.type,
			  v->kvm.id);
		vmm_stop(vm, VMM_EXIT_KVM);
		return;
	case KVM_EXIT_INTERNAL_ERROR:
		log_error("KVM internal error (suberror %u) on vCPU %u at rip %#llx",
			  run->internal.suberror, v->kvm.id, vcpu_rip(v));
		vmm_stop(vm, VMM_EXIT_KVM);
		return;
	case KVM_EXIT_FAIL_ENTRY:
		log_error("KVM could not enter vCPU %u (hardware reason %#llx)", v->kvm.id,
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		vmm_stop(vm, VMM_EXIT_KVM);
		return;
	default:
		log_error("unexpected KVM exit %u on vCPU %u at rip %#llx", run->exit_reason,
			  v->kvm.id, vcpu_rip(v));
		vmm_stop(vm, VMM_EXIT_KVM);
		return;
	}
}

static void kick_handler(int sig) { (void)sig; }

/* A paused vCPU waits here, out of KVM_RUN, until resume or stop. */
static void park(struct vcpu *v)
{
	struct vm *vm = v->vm;
	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->parked_cond);
	while (atomic_load(&vm->paused) && !stopping(vm))
		pthread_cond_wait(&vm->resume_cond, &vm->pause_lock);
	vm->parked--;
	if (!stopping(vm))
		v->kvm.run->immediate_exit = 0;
	pthread_mutex_unlock(&vm->pause_lock);
}

/* Makes every started vCPU leave KVM_RUN soon. */
static void kick_all(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		if (!v->started)
			continue;
		v->kvm.run->immediate_exit = 1;
		pthread_kill(v->thread, SIG_KICK);
	}
}

/* A live migration owns pausing and resuming from its start to its end;
 * disks and snapshots wait too (the destination was sent the config). */
static bool migrating(struct vm *vm, const char *what)
{
	if (!vm->mig.started || !migjob_busy(&vm->mig))
		return false;
	log_error("%s: a live migration is in progress", what);
	return true;
}

static int pause_vcpus(struct vm *vm)
{
	if (!vm->started || stopping(vm))
		return -EINVAL;
	if (atomic_exchange(&vm->paused, true))
		return 0;
	kick_all(vm);
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->parked < vm->nr_vcpus && !stopping(vm))
		pthread_cond_wait(&vm->parked_cond, &vm->pause_lock);
	pthread_mutex_unlock(&vm->pause_lock);
	log_info("vm: paused");
	return 0;
}

/* PATCH /vm Paused stops the devices too: each finishes the I/O it has in
 * flight (ops->quiesce, as for a snapshot) and then serves no queue and
 * takes no back-end input (virtio_running) until the resume. */
static void pause_devices(struct vm *vm, bool paused)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_dev *d = vm->vdev[i];
		pthread_mutex_lock(&d->lock);
		if (paused && d->ops->quiesce && d->ops->quiesce(d) < 0)
			log_warn("%s: in-flight I/O failed while pausing", d->ops->name);
		d->paused = paused;
		/* On resume, every live queue is served once: kicks that came
		 * while paused, requests a limiter's timer would have resumed,
		 * input that waited (net rx, vsock). */
		for (unsigned q = 0; !paused && q < d->ops->nr_queues; q++)
			if (vm->vpci[i].queue_enabled[q] && virtio_running(d))
				d->ops->notify(d, q);
		pthread_mutex_unlock(&d->lock);
	}
}

int vmm_pause(struct vm *vm)
{
	if (migrating(vm, "pause"))
		return -EBUSY;
	int err = pause_vcpus(vm);
	if (!err)
		pause_devices(vm, true);
	return err;
}

static int resume_vcpus(struct vm *vm)
{
	if (!vm->started || stopping(vm))
		return -EINVAL;
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->paused, false);
	pthread_cond_broadcast(&vm->resume_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	log_info("vm: resumed");
	return 0;
}

int vmm_resume(struct vm *vm)
{
	if (migrating(vm, "resume"))
		return -EBUSY;
	if (vm->started && !stopping(vm))
		pause_devices(vm, false);
	return resume_vcpus(vm);
}

bool vmm_is_paused(struct vm *vm) { return atomic_load(&vm->paused); }

int vmm_ctrl_alt_del(struct vm *vm) { return i8042_ctrl_alt_del(&vm->i8042); }

void vmm_metrics(struct vm *vm, const struct metrics_sink *sink)
{
	uint64_t in = 0, out = 0, rd = 0, wr = 0;
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		in += atomic_load_explicit(&vm->vcpus[i].io_in, memory_order_relaxed);
		out += atomic_load_explicit(&vm->vcpus[i].io_out, memory_order_relaxed);
		rd += atomic_load_explicit(&vm->vcpus[i].mmio_read, memory_order_relaxed);
		wr += atomic_load_explicit(&vm->vcpus[i].mmio_write, memory_order_relaxed);
	}
	metric(sink, "vcpu", "exit_io_in", in);
	metric(sink, "vcpu", "exit_io_out", out);
	metric(sink, "vcpu", "exit_mmio_read", rd);
	metric(sink, "vcpu", "exit_mmio_write", wr);
	pthread_mutex_lock(&vm->serial.lock);
	metric(sink, "uart", "write_count", vm->serial.tx_bytes);
	metric(sink, "uart", "read_count", vm->serial.rx_bytes);
	pthread_mutex_unlock(&vm->serial.lock);
	metric(sink, "vmm", "unassigned_pio", atomic_load(&vm->pio.unassigned));
	metric(sink, "vmm", "unassigned_mmio", atomic_load(&vm->mmio.unassigned));
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_dev *d = vm->vdev[i];
		if (!d->ops->metrics)
			continue;
		pthread_mutex_lock(&d->lock);
		d->ops->metrics(d, sink);
		pthread_mutex_unlock(&d->lock);
	}
}

int vmm_net_set_limits(struct vm *vm, const char *id, const struct ratelimit_cfg *rx,
		       const struct ratelimit_cfg *tx)
{
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_dev *d = vm->vdev[i];
		if (d->ops->device_id == VIRTIO_ID_NET && !strcmp(virtio_net_id(d), id))
			return virtio_net_set_limits(d, rx, tx);
	}
	return -ENOENT;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	if (seccomp_install(SECCOMP_VCPU) < 0) {
		vmm_stop(vm, VMM_EXIT_INTERNAL);
		return NULL;
	}
	while (!stopping(vm)) {
		if (atomic_load(&vm->paused)) {
			park(v);
			continue;
		}
		int r = kvm_vcpu_run(&v->kvm);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			log_error("vcpu %u: KVM_RUN failed: %s", v->kvm.id, strerror(-r));
			vmm_stop(vm, VMM_EXIT_KVM);
			break;
		}
		handle_exit(v);
	}
	return NULL;
}

static void on_stop(struct evloop_source *src, uint32_t events)
{
	struct vm *vm = (struct vm *)((char *)src - offsetof(struct vm, stop_ev));
	evloop_quit(vm->loop);
}


/* A restore's RAM: the snapshot's memory file, copy-on-write. A file shorter
 * than RAM would fault the guest (SIGBUS) later, so it is refused now. */
static int map_snapshot_memory(struct vm *vm, int *status)
{
	const char *path = vm->cfg->restore_mem;
	uint64_t total = vm->cfg->mem_mib << 20;
	struct stat st;
	int fd = open_noblock(path, O_RDONLY, &st);
	if (fd < 0) {
		log_error("snapshot: memory file %s: %s", path, strerror(-fd));
		return -EBADMSG;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("snapshot: memory file %s: not a regular file", path);
		close(fd);
		return -EBADMSG;
	}
	if ((uint64_t)st.st_size < total) {
		log_error("snapshot: memory file %s holds %llu bytes, the snapshot's guest has %llu",
			  path, (unsigned long long)st.st_size, (unsigned long long)total);
		close(fd);
		return -EBADMSG;
	}
	return guest_mem_init_file(&vm->mem, total, X86_HOLE_START, X86_HIGH_START, fd);
}

/* KVM, RAM and its slots, the irqchip. */
static int create_machine(struct vm *vm, int *status)
{
	const struct vm_config *cfg = vm->cfg;
	const char *missing;
	int err = kvm_init(&vm->kvm, cfg->kvm_path, &missing);
	if (err == -ENOENT) {
		log_error("%s is missing: mote needs KVM (load kvm_intel or kvm_amd, or run on a "
			  "host with virtualization)", cfg->kvm_path);
		return err;
	}
	if (err == -ENOTSUP) {
		log_error("%s lacks %s, which mote needs", cfg->kvm_path, missing);
		return err;
	}
	if (err) {
		log_error("cannot use %s: %s", cfg->kvm_path, strerror(-err));
		return err;
	}
	vm->kvm_ok = true;
	if (cfg->cpus > vm->kvm.max_vcpus) {
		log_error("--cpus %u: KVM allows at most %u", cfg->cpus, vm->kvm.max_vcpus);
		return -EINVAL;
	}
	if (cfg->restore_mem)
		err = map_snapshot_memory(vm, status);
	else
		err = guest_mem_init(&vm->mem, cfg->mem_mib << 20, X86_HOLE_START, X86_HIGH_START);
	if (err == -EBADMSG)
		return err;
	if (!err && cfg->track_dirty && (err = guest_mem_track(&vm->mem)) == 0)
		vm->kvm.dirty_log = true;
	if (err) {
		log_error("cannot allocate %llu MiB of guest memory: %s",
			  (unsigned long long)cfg->mem_mib, strerror(-err));
		*status = VMM_EXIT_INTERNAL;
		return err;
	}
	for (unsigned i = 0; i < vm->mem.nr_regions; i++) {
		const struct guest_region *r = &vm->mem.regions[i];
		err = kvm_set_memory(&vm->kvm, i, r->gpa, r->size, r->hva);
		if (err) {
			log_error("KVM refused %llu MiB of guest memory: %s",
				  (unsigned long long)(r->size >> 20), strerror(-err));
			*status = VMM_EXIT_KVM;
			return err;
		}
	}
	err = kvm_create_irqchip(&vm->kvm, X86_TSS_ADDR);
	if (err) {
		log_error("cannot create the in-kernel irqchip and PIT: %s", strerror(-err));
		*status = VMM_EXIT_KVM;
	}
	return err;
}

/* The legacy devices a PC guest expects, on the port-I/O bus. */
static int create_devices(struct vm *vm)
{
	int out = 1;
	if (vm->cfg->serial_out) {
		out = open_append(vm->cfg->serial_out);
		if (out < 0) {
			log_error("serial output %s: %s", vm->cfg->serial_out, strerror(-out));
			return out;
		}
		vm->serial_fd = out;
	}
	serial8250_init(&vm->serial, out,
			(struct irq_line){ .set = irq_set, .opaque = vm, .gsi = X86_COM1_IRQ });
	i8042_init(&vm->i8042,
		   (struct irq_line){ .set = irq_set, .opaque = vm, .gsi = X86_I8042_IRQ },
		   guest_reset, vm);
	vm->pm = (struct acpi_pm){ .poweroff = guest_poweroff, .reset = guest_reset, .opaque = vm };
	int err = bus_add(&vm->pio, X86_COM1_PORT, 8, serial8250_io, &vm->serial, "com1");
	if (!err)
		err = bus_add(&vm->pio, X86_I8042_DATA, 1, i8042_data_io, &vm->i8042, "i8042");
	if (!err)
		err = bus_add(&vm->pio, X86_I8042_CMD, 1, i8042_cmd_io, &vm->i8042, "i8042");
	if (!err)
		err = bus_add(&vm->pio, X86_PM_PORT, X86_PM_LEN, acpi_pm_io, &vm->pm, "acpi-pm");
	if (!err && vm->cfg->boot_timer) {
		vm->boot_timer.start_ns = vm->cfg->start_ns;
		err = bus_add(&vm->mmio, BOOT_TIMER_ADDR, BOOT_TIMER_LEN, boot_timer_io,
			      &vm->boot_timer, "boot-timer");
	}
	if (err)
		log_error("cannot register legacy devices: %s", strerror(-err));
	return err;
}

static int create_vcpus(struct vm *vm)
{
	struct kvm_cpuid2 *supported, *cpuid;
	int err = kvm_get_supported_cpuid(&vm->kvm, &supported);
	if (err) {
		log_error("cannot read KVM's supported CPUID: %s", strerror(-err));
		return err;
	}
	size_t cpuid_size = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	cpuid = malloc(cpuid_size);
	vm->vcpus = calloc(vm->cfg->cpus, sizeof(*vm->vcpus));
	if (!cpuid || !vm->vcpus) {
		err = -ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < vm->cfg->cpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		v->vm = vm;
		err = kvm_vcpu_init(&vm->kvm, i, &v->kvm);
		if (err) {
			log_error("cannot create vCPU %u: %s", i, strerror(-err));
			goto out;
		}
		vm->nr_vcpus++;
		memcpy(cpuid, supported, cpuid_size);
		x86_cpuid_patch(cpuid, i, vm->cfg->cpus, vm->kvm.tsc_deadline);
		err = x86_vcpu_setup(&v->kvm, cpuid, &vm->boot);
		if (err) {
			log_error("cannot set up vCPU %u: %s", i, strerror(-err));
			goto out;
		}
	}
out:
	free(cpuid);
	free(supported);
	return err;
}

static int create_loop(struct vm *vm)
{
	vm->stop_ev.fn = on_stop;
	vm->stop_ev.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_ev.fd < 0)
		return -errno;
	int err = evloop_add(vm->loop, &vm->stop_ev, EPOLLIN);
	if (err)
		return err;
	/* The timer that ends the VM after a live migration: made now, at
	 * set-up, so that the event loop's seccomp filter needs no timerfd_create. */
	vm->migrated_ev.fn = on_migrated;
	vm->migrated_ev.fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (vm->migrated_ev.fd < 0)
		return -errno;
	err = evloop_add(vm->loop, &vm->migrated_ev, EPOLLIN);
	if (err) {
		close(vm->migrated_ev.fd);
		vm->migrated_ev.fd = -1;
		return err;
	}
	err = console_init(&vm->console, vm->loop, &vm->serial, 0, console_quit, vm);
	vm->console_ok = err == 0;
	return err;
}

/* Adds a virtio device on the PCI bus; takes ownership of dev (freed by
 * destroy) whether or not it succeeds. */
static int add_virtio(struct vm *vm, struct virtio_dev *dev, void (*destroy)(struct virtio_dev *))
{
	if (!dev)
		return -ENOMEM;
	if (vm->nr_virtio == VMM_MAX_VIRTIO) {
		destroy(dev);
		log_error("too many virtio devices (at most %u)", VMM_MAX_VIRTIO);
		return -ENOSPC;
	}
	unsigned i = vm->nr_virtio++;
	vm->vdev[i] = dev;
	vm->vdev_destroy[i] = destroy;
	int err = virtio_pci_init(&vm->vpci[i], dev, &vm->kvm, vm->loop);
	if (!err)
		err = virtio_pci_attach(&vm->vpci[i], &vm->pci);
	if (err)
		log_error("%s: cannot attach: %s", dev->ops->name, strerror(-err));
	return err;
}

/* Every device's host side to (active false) or back from another process
 * (virtio_ops.handover); stops at the first failure. */
static int handover(struct vm *vm, bool active)
{
	int err = 0;
	for (unsigned i = 0; i < vm->nr_virtio && !err; i++) {
		struct virtio_dev *d = vm->vdev[i];
		if (!d->ops->handover)
			continue;
		pthread_mutex_lock(&d->lock);
		err = d->ops->handover(d, active);
		pthread_mutex_unlock(&d->lock);
	}
	return err;
}

static int create_pci(struct vm *vm, int *status)
{
	int err = pci_bus_init(&vm->pci, &vm->pio, &vm->mmio, X86_PCI_MMIO_BASE,
			       X86_PCI_MMIO_SIZE);
	if (err) {
		log_error("cannot create the PCI bus: %s", strerror(-err));
		return err;
	}
	vm->pci_ok = true;
	for (unsigned i = 0; i < vm->cfg->nr_disks; i++) {
		struct virtio_dev *blk = virtio_blk_create(&vm->mem, vm->loop, &vm->cfg->disks[i],
							   &err);
		if (!blk) {
			*status = VMM_EXIT_CONFIG; /* the disk image was refused */
			return err;
		}
		err = add_virtio(vm, blk, virtio_blk_destroy);
		if (err)
			return err;
	}
	for (unsigned i = 0; i < vm->cfg->nr_nets; i++) {
		const struct vm_net *net = &vm->cfg->nets[i];
		struct net_backend *be;
		err = net->kind == VM_NET_TAP ? net_tap_open(net, vm->loop, vm->cfg->incoming, &be)
					      : net_slirp_open(net, vm->loop, &be);
		if (err) {
			*status = VMM_EXIT_CONFIG; /* the tap or a hostfwd was refused */
			return err;
		}
		struct virtio_dev *nd = virtio_net_create(&vm->mem, vm->loop, net, be, &err);
		if (!nd)
			return err;
		err = add_virtio(vm, nd, virtio_net_destroy);
		if (err)
			return err;
	}
	if (vm->cfg->rng) {
		err = add_virtio(vm, virtio_rng_create(&vm->mem, vm->loop, &vm->cfg->rng_rl), virtio_rng_destroy);
		if (err)
			return err;
	}
	if (vm->cfg->vsock.enabled) {
		struct virtio_dev *vs = virtio_vsock_create(&vm->mem, vm->loop, &vm->cfg->vsock, &err);
		if (!vs) {
			*status = VMM_EXIT_CONFIG; /* the socket path was refused */
			return err;
		}
		err = add_virtio(vm, vs, virtio_vsock_destroy);
		if (err)
			return err;
	}
	/* An incoming migration's taps are still the source's: attached, but
	 * not receiving, until the VM has arrived (backend/tap.c). */
	if (vm->cfg->incoming && (err = handover(vm, false)))
		*status = VMM_EXIT_CONFIG;
	return err;
}

int vmm_update_drive(struct vm *vm, unsigned index, const char *path,
		     const struct ratelimit_cfg *rl)
{
	/* Disks are the first virtio devices, in cfg->disks order. */
	if (index >= vm->cfg->nr_disks || index >= vm->nr_virtio) {
		log_error("no disk %u", index);
		return -ENOENT;
	}
	if (path && migrating(vm, "a new backing file"))
		return -EBUSY;
	return virtio_blk_update(vm->vdev[index], path, rl);
}

int vmm_migrate_drive(struct vm *vm, unsigned index, const char *dst)
{
	if (index >= vm->cfg->nr_disks || index >= vm->nr_virtio) {
		log_error("no disk %u", index);
		return -ENOENT;
	}
	if (migrating(vm, "storage migration"))
		return -EBUSY;
	return virtio_blk_migrate(vm->vdev[index], dst);
}

int vmm_drive_status(struct vm *vm, unsigned index, struct blk_status *st)
{
	if (index >= vm->cfg->nr_disks || index >= vm->nr_virtio)
		return -ENOENT;
	virtio_blk_status(vm->vdev[index], st);
	return 0;
}

int vmm_create(struct vm **out, const struct vm_config *cfg, struct evloop *loop,
	       int *status)
{
	*status = VMM_EXIT_CONFIG;
	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm) {
		*status = VMM_EXIT_INTERNAL;
		return -ENOMEM;
	}
	vm->cfg = cfg;
	vm->status = -1;
	vm->mem.fd = vm->stop_ev.fd = vm->serial_fd = vm->migrated_ev.fd = -1;
	vm->loop = loop;
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->parked_cond, NULL);
	pthread_cond_init(&vm->resume_cond, NULL);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");

	int err = create_machine(vm, status);
	if (err)
		goto err;
	*status = VMM_EXIT_INTERNAL;
	err = create_devices(vm);
	if (err)
		goto err;
	err = create_pci(vm, status);
	if (err)
		goto err;
	/* A restore's memory already holds the tables and the kernel (an
	 * incoming migration's will, once it has arrived). */
	if (!cfg->restore_mem && !cfg->incoming) {
		uint64_t rsdp = x86_acpi_build(&vm->mem, cfg->cpus);
		err = x86_boot_tables(&vm->mem);
		if (!rsdp || err)
			fatal("vmm: boot tables do not fit the layout");
		*status = VMM_EXIT_CONFIG;
		struct x86_boot_args args = { .kernel = cfg->kernel, .initrd = cfg->initrd,
					      .cmdline = cfg->cmdline, .rsdp = rsdp };
		err = x86_boot_load(&vm->mem, &args, &vm->boot);
		if (err)
			goto err;
	}
	*status = VMM_EXIT_KVM;
	err = create_vcpus(vm);
	if (err)
		goto err;
	*status = VMM_EXIT_INTERNAL;
	err = create_loop(vm);
	if (err) {
		log_error("cannot set up the event loop: %s", strerror(-err));
		goto err;
	}
	bus_seal(&vm->pio);
	bus_seal(&vm->mmio);
	*out = vm;
	return 0;
err:
	vmm_destroy(vm);
	return err;
}

static void stop_vcpus(struct vm *vm)
{
	kick_all(vm);
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		if (vm->vcpus[i].started)
			pthread_join(vm->vcpus[i].thread, NULL);
		vm->vcpus[i].started = false;
	}
}

int vmm_start(struct vm *vm)
{
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	sigaction(SIG_KICK, &sa, NULL);
	if (vm->cfg->start_paused) {
		atomic_store(&vm->paused, true);
		for (unsigned i = 0; i < vm->nr_virtio; i++)
			vm->vdev[i]->paused = true; /* no thread serves them yet */
	}
	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];
		int err = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (err) {
			log_error("cannot start vCPU %u's thread: %s", i, strerror(err));
			vmm_stop(vm, VMM_EXIT_INTERNAL);
			return -err;
		}
		v->started = true;
		char name[16];
		snprintf(name, sizeof(name), "vcpu%u", i);
		pthread_setname_np(v->thread, name);
	}
	vm->started = true;
	/* The worker does the loop's file work (util/worker.h); it exists before
	 * the loop's filter, which forbids creating threads. */
	if (worker_start() < 0) {
		vmm_stop(vm, VMM_EXIT_INTERNAL);
		return -EAGAIN;
	}
	/* So does the migration thread (snap/migjob.h), asleep until used. */
	if (migjob_init(&vm->mig, vm->loop, &mig_ops, vm) < 0) {
		vmm_stop(vm, VMM_EXIT_INTERNAL);
		return -EAGAIN;
	}
	/* This thread's filter goes on last: threads inherit their creator's. */
	if (seccomp_install(SECCOMP_LOOP) < 0) {
		vmm_stop(vm, VMM_EXIT_INTERNAL);
		return -EPERM;
	}
	return 0;
}

int vmm_wait(struct vm *vm)
{
	stop_vcpus(vm);
	return atomic_load(&vm->status);
}

int vmm_run(struct vm *vm)
{
	if (vmm_start(vm) == 0) {
		int err = evloop_run(vm->loop);
		if (err) {
			log_error("event loop failed: %s", strerror(-err));
			vmm_stop(vm, VMM_EXIT_INTERNAL);
		}
	}
	return vmm_wait(vm);
}

void vmm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	migjob_fini(&vm->mig); /* first: it reads guest memory and the devices */
	stop_vcpus(vm);
	if (vm->console_ok)
		console_fini(&vm->console);
	if (vm->stop_ev.fd >= 0)
		close(vm->stop_ev.fd);
	if (vm->migrated_ev.fd >= 0) {
		evloop_del(vm->loop, &vm->migrated_ev);
		close(vm->migrated_ev.fd);
	}
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		virtio_pci_fini(&vm->vpci[i]);
		vm->vdev_destroy[i](vm->vdev[i]);
	}
	worker_stop(); /* after the devices: a storage migration's copy has stopped */
	if (vm->pci_ok)
		pci_bus_fini(&vm->pci);
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		kvm_vcpu_fini(&vm->vcpus[i].kvm);
	free(vm->vcpus);
	pthread_cond_destroy(&vm->resume_cond);
	pthread_cond_destroy(&vm->parked_cond);
	pthread_mutex_destroy(&vm->pause_lock);
	i8042_fini(&vm->i8042);
	serial8250_fini(&vm->serial);
	if (vm->serial_fd >= 0)
		close(vm->serial_fd);
	bus_fini(&vm->mmio);
	bus_fini(&vm->pio);
	if (vm->kvm_ok)
		kvm_fini(&vm->kvm);
	guest_mem_fini(&vm->mem);
	free(vm);
}

static void snap_view(struct vm *vm, struct snap_vm *v)
{
	memset(v, 0, sizeof(*v));
	v->cfg = vm->cfg;
	v->kvm = &vm->kvm;
	v->mem = &vm->mem;
	v->nr_vcpus = vm->nr_vcpus;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		v->vcpu[i] = &vm->vcpus[i].kvm;
	v->serial = &vm->serial;
	v->i8042 = &vm->i8042;
	v->pci = &vm->pci;
	v->vpci = vm->vpci;
	v->nr_virtio = vm->nr_virtio;
}

struct save_args {
	const struct snap_vm *v;
	const char *snap_path, *mem_path;
	bool diff;
	int err;
};

static void save_fn(void *arg)
{
	struct save_args *a = arg;
	a->err = snap_save(a->v, a->snap_path, a->mem_path, a->diff);
}

int vmm_snapshot(struct vm *vm, const char *snap_path, const char *mem_path, bool diff)
{
	if (!vm->started || stopping(vm) || !atomic_load(&vm->paused)) {
		log_error("snapshot: the microVM must be paused");
		return -EINVAL;
	}
	if (migrating(vm, "snapshot"))
		return -EBUSY; /* it would take the migration's dirty log */
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_dev *d = vm->vdev[i];
		pthread_mutex_lock(&d->lock);
		int err = d->ops->quiesce ? d->ops->quiesce(d) : 0;
		pthread_mutex_unlock(&d->lock);
		if (err)
			return err;
	}
	struct snap_vm *v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	snap_view(vm, v);
	/* Files are the worker's to open and write (util/worker.h). */
	struct save_args a = { v, snap_path, mem_path, diff, 0 };
	worker_call(save_fn, &a);
	free(v);
	return a.err;
}

int vmm_restore(struct vm *vm, struct snap_reader *r)
{
	if (vm->started || !(vm->cfg->restore_mem || vm->cfg->incoming))
		return -EINVAL;
	struct snap_vm *v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	snap_view(vm, v);
	int err = snap_restore(v, r);
	free(v);
	return err;
}

/* Stop-and-copy (event loop, asked by the migration thread): the vCPUs out
 * of KVM_RUN, the devices drained, their host sides (taps) handed over. The
 * loop then holds still until the migration ends (snap/migjob.h). */
static int mig_freeze(void *opaque)
{
	struct vm *vm = opaque;
	int err = pause_vcpus(vm);
	if (err)
		return err;
	for (unsigned i = 0; i < vm->nr_virtio && !err; i++) {
		struct virtio_dev *d = vm->vdev[i];
		pthread_mutex_lock(&d->lock);
		err = d->ops->quiesce ? d->ops->quiesce(d) : 0;
		pthread_mutex_unlock(&d->lock);
	}
	if (!err && (err = handover(vm, false)))
		handover(vm, true); /* the taps given away so far come back */
	if (err && !vm->mig_was_paused)
		resume_vcpus(vm); /* not frozen after all: the guest goes on */
	return err;
}

static void on_migrated(struct evloop_source *src, uint32_t events)
{
	struct vm *vm = (struct vm *)((char *)src - offsetof(struct vm, migrated_ev));
	vmm_stop(vm, VMM_EXIT_OK);
}

/* The VM lives on elsewhere: end this one, a moment later, so that the
 * answer to PUT /migrate still reaches the client before mote exits. */
static void stop_soon(struct vm *vm)
{
	struct itimerspec its = { .it_value = { .tv_nsec = 100 * 1000 * 1000 } };
	if (timerfd_settime(vm->migrated_ev.fd, 0, &its, NULL) < 0)
		vmm_stop(vm, VMM_EXIT_OK);
}

/* The migration ended (event loop). */
static void mig_done(void *opaque, int err, bool frozen)
{
	struct vm *vm = opaque;
	struct migrate_status st;
	migjob_status(&vm->mig, &st);
	if (!err) {
		log_info("migrate: the VM now runs at %s; stopping here", st.destination);
		stop_soon(vm);
	} else if (frozen) {
		handover(vm, true); /* the taps the freeze gave away come back */
		if (!vm->mig_was_paused)
			resume_vcpus(vm); /* the guest saw a pause, nothing more */
	}
	vmm_migrate_done_fn done = vm->mig_done;
	vm->mig_done = NULL;
	if (done)
		done(vm->mig_done_arg, err, &st);
}

static const struct migjob_ops mig_ops = { .freeze = mig_freeze, .done = mig_done };

int vmm_migrate(struct vm *vm, const char *dest, const struct migrate_opts *o,
		vmm_migrate_done_fn done, void *arg)
{
	if (!vm->started || stopping(vm) || !vm->mig.started) {
		log_error("migrate: the microVM is not running");
		return -EINVAL;
	}
	if (migrating(vm, "migrate"))
		return -EBUSY;
	int err = migrate_check_dest(dest);
	if (err)
		return err;
	/* The destination opens the disks the config names: none may be
	 * switching to a new file meanwhile. */
	for (unsigned i = 0; i < vm->cfg->nr_disks && i < vm->nr_virtio; i++) {
		struct blk_status *bs = malloc(sizeof(*bs));
		if (!bs)
			return -ENOMEM;
		virtio_blk_status(vm->vdev[i], bs);
		bool busy = bs->migration && bs->state &&
			    (!strcmp(bs->state, "copying") || !strcmp(bs->state, "switching"));
		free(bs);
		if (busy) {
			log_error("migrate: a storage migration of disk %u is in progress", i);
			return -EBUSY;
		}
	}
	/* Dirty logging can be switched on for live slots (flags-only change). */
	if (!vm->mem.dirty && (err = guest_mem_track(&vm->mem))) {
		log_error("migrate: out of memory for the dirty bitmap");
		return err;
	}
	if (!vm->kvm.dirty_log) {
		vm->kvm.dirty_log = true;
		for (unsigned i = 0; i < vm->mem.nr_regions && !err; i++) {
			const struct guest_region *r = &vm->mem.regions[i];
			err = kvm_set_memory(&vm->kvm, i, r->gpa, r->size, r->hva);
		}
		if (err) {
			log_error("migrate: KVM cannot log dirty pages: %s", strerror(-err));
			return err;
		}
	}
	struct snap_vm *v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	snap_view(vm, v);
	vm->mig_was_paused = atomic_load(&vm->paused);
	vm->mig_done = done;
	vm->mig_done_arg = arg;
	log_info("migrate: to %s (downtime target %llu ms, bandwidth %s%llu Mbit/s)", dest,
		 (unsigned long long)o->downtime_ms, o->bandwidth_mbps ? "" : "unlimited, ",
		 (unsigned long long)o->bandwidth_mbps);
	err = migjob_start(&vm->mig, v, dest, o);
	if (err) {
		vm->mig_done = NULL;
		free(v);
	}
	return err;
}

void vmm_migrate_status(struct vm *vm, struct migrate_status *st)
{
	if (vm->mig.started)
		migjob_status(&vm->mig, st);
	else
		*st = (struct migrate_status){ .state = MIGRATE_IDLE };
}

int vmm_migrate_incoming(struct vm *vm, int fd)
{
	if (vm->started || !vm->cfg->incoming)
		return -EINVAL;
	struct snap_vm *v = malloc(sizeof(*v));
	if (!v)
		return -ENOMEM;
	snap_view(vm, v);
	int err = migrate_recv(v, fd);
	free(v);
	/* The VM is ours (the source has its ACK): its taps' frames too. A
	 * failure here is logged and the VM runs on, without them. */
	if (!err)
		handover(vm, true);
	return err;
}
