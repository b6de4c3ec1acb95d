/* Snapshot files: the machine's configuration and memory layout, the state
 * sections of cpu.c and devices.c, and guest memory; see snapshot.h.
 *
 * Memory file: guest RAM as one flat file, the regions one after the other
 * in the order of the memory section (the same order as the host mapping),
 * so a restore maps it MAP_PRIVATE in one piece and pages come in lazily. A
 * full snapshot writes only the pages that are not all zero into a sparse
 * file (the holes read back as zero); a diff snapshot writes the pages KVM's
 * dirty log and mote's own device writes (guest_mem_dirty) marked since the
 * previous snapshot, into the existing file. Files are written beside their
 * destination and renamed over it, so a restored VM whose memory is mapped
 * from the old file keeps its pages. */
#include "snap/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snap/internal.h"
#include "util/log.h"
#include "util/util.h"

#define CONFIG_VERSION 1
#define MEMORY_VERSION 1
#define NET_VERSION 1
#define NET_KIND_TAP 1
#define SNAP_MAX_FILE (64u << 20)
#define RUN_MAX (8u << 20) /* bytes per pwrite */

/* ------------------------------------------------------------ config */

static void put_string(struct snap_writer *w, const char *str)
{
	size_t n = str ? strlen(str) : 0;
	snap_put_u16(w, (uint16_t)n);
	snap_put_bytes(w, str, n);
}

static void save_config(const struct snap_vm *vm, struct snap_writer *w)
{
	const struct vm_config *cfg = vm->cfg;
	snap_begin(w, SNAP_CONFIG, CONFIG_VERSION, 0);
	snap_put_u64(w, cfg->mem_mib);
	snap_put_u32(w, cfg->cpus);
	snap_put_u8(w, cfg->rng);
	snap_put_u8(w, cfg->boot_timer);
	snap_put_u32(w, cfg->nr_disks);
	for (unsigned i = 0; i < cfg->nr_disks; i++) {
		snap_put_u8(w, cfg->disks[i].read_only);
		put_string(w, cfg->disks[i].id);
		put_string(w, cfg->disks[i].path);
	}
	snap_end(w);
	/* Network interfaces: one section each, so that streams written before
	 * they were carried (none) still read. Only taps (checked first). */
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		const struct vm_net *n = &cfg->nets[i];
		snap_begin(w, SNAP_NET, NET_VERSION, i);
		snap_put_u8(w, NET_KIND_TAP);
		put_string(w, n->id);
		put_string(w, n->tap);
		snap_put_bytes(w, n->mac, sizeof(n->mac));
		snap_end(w);
	}
	const struct guest_mem *mem = vm->mem;
	snap_begin(w, SNAP_MEMORY, MEMORY_VERSION, 0);
	snap_put_u64(w, mem->total);
	snap_put_u32(w, mem->nr_regions);
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		snap_put_u64(w, mem->regions[i].gpa);
		snap_put_u64(w, mem->regions[i].size);
	}
	snap_end(w);
}

/* A length-prefixed string of at most max bytes, without NULs; returns a
 * pointer into the stream (not terminated: the caller copies). */
static const uint8_t *get_string(struct snap_section *s, const char *field, size_t max,
				 uint16_t *len)
{
	*len = snap_u16(s, field);
	if (s->r->failed)
		return NULL;
	if (*len > max || *len > s->len - s->pos) {
		snap_fail(s, field, "length %u (at most %zu)", *len, max);
		return NULL;
	}
	const uint8_t *p = s->p + s->pos;
	if (memchr(p, 0, *len)) {
		snap_fail(s, field, "contains a NUL byte");
		return NULL;
	}
	s->pos += *len;
	return p;
}

/* The net[i] sections: a tap's name, the interface's id and MAC. Rate
 * limits are not carried (as for disks): the new VM runs unlimited. */
static int parse_nets(struct snap_reader *r, struct vm_config *cfg)
{
	cfg->nr_nets = 0;
	for (unsigned i = 0; snap_has(r, SNAP_NET, i); i++) {
		struct snap_section s;
		if (i == CONFIG_MAX_NETS) {
			s = (struct snap_section){ .r = r, .id = SNAP_NET, .index = i };
			return snap_fail(&s, "index", "more than %u network interfaces",
					 CONFIG_MAX_NETS);
		}
		if (snap_find(r, SNAP_NET, i, NET_VERSION, &s))
			return -EBADMSG;
		struct vm_net *n = &cfg->nets[i];
		memset(n, 0, sizeof(*n));
		uint8_t kind = snap_u8(&s, "kind");
		if (!r->failed && kind != NET_KIND_TAP)
			return snap_fail(&s, "kind", "%u (only taps are saved)", kind);
		n->kind = VM_NET_TAP;
		uint16_t len;
		const uint8_t *p = get_string(&s, "id", CONFIG_NET_ID_LEN, &len);
		if (!p)
			return -EBADMSG;
		if (len == 0)
			return snap_fail(&s, "id", "empty");
		memcpy(n->id, p, len);
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(cfg->nets[k].id, n->id))
				return snap_fail(&s, "id", "%s is used twice", n->id);
		p = get_string(&s, "tap", CONFIG_IFNAME_LEN, &len);
		if (!p)
			return -EBADMSG;
		if (!config_ifname_ok((const char *)p, len))
			return snap_fail(&s, "tap", "not an interface name");
		memcpy(n->tap, p, len);
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(cfg->nets[k].tap, n->tap))
				return snap_fail(&s, "tap", "%s is used twice", n->tap);
		snap_bytes(&s, "mac", n->mac, sizeof(n->mac));
		static const uint8_t zero[6];
		if (!r->failed && ((n->mac[0] & 1) || !memcmp(n->mac, zero, 6)))
			return snap_fail(&s, "mac", "not a unicast address");
		if (snap_done(&s))
			return -EBADMSG;
		cfg->nr_nets = i + 1;
	}
	return snap_status(r);
}

static int parse_config(struct snap_file *f, struct vm_config *cfg)
{
	struct snap_reader *r = &f->r;
	struct snap_section s;
	if (snap_find(r, SNAP_CONFIG, 0, CONFIG_VERSION, &s))
		return -EBADMSG;
	uint64_t mem = snap_u64(&s, "mem_mib");
	uint32_t cpus = snap_u32(&s, "cpus");
	bool rng = snap_bool(&s, "rng"), timer = snap_bool(&s, "boot_timer");
	uint32_t nr = snap_u32(&s, "disks");
	if (r->failed)
		return -EBADMSG;
	if (mem < CONFIG_MIN_MEM_MIB || mem > (1ull << 24))
		return snap_fail(&s, "mem_mib", "%llu MiB (from %u MiB to 16 TiB)",
				 (unsigned long long)mem, CONFIG_MIN_MEM_MIB);
	if (cpus < 1 || cpus > X86_MAX_CPUS)
		return snap_fail(&s, "cpus", "%u (from 1 to %u)", cpus, X86_MAX_CPUS);
	if (nr > CONFIG_MAX_DISKS)
		return snap_fail(&s, "disks", "%u (at most %u)", nr, CONFIG_MAX_DISKS);
	cfg->mem_mib = mem;
	cfg->cpus = cpus;
	cfg->rng = rng;
	cfg->boot_timer = timer;
	cfg->nr_disks = 0;
	for (unsigned i = 0; i < nr; i++) {
		struct vm_disk *d = &cfg->disks[i];
		memset(d, 0, sizeof(*d));
		d->read_only = snap_bool(&s, "disk.read_only");
		uint16_t len;
		const uint8_t *id = get_string(&s, "disk.id", CONFIG_DISK_ID_LEN, &len);
		if (!id)
			return -EBADMSG;
		memcpy(d->id, id, len);
		const uint8_t *path = get_string(&s, "disk.path", 4095, &len);
		if (!path)
			return -EBADMSG;
		if (len == 0)
			return snap_fail(&s, "disk.path", "disk %u has an empty path", i);
		f->disk_path[i] = strndup((const char *)path, len);
		if (!f->disk_path[i])
			return -ENOMEM;
		d->path = f->disk_path[i];
		cfg->nr_disks++;
	}
	if (snap_done(&s))
		return -EBADMSG;
	return parse_nets(r, cfg);
}

int snap_file_parse(struct snap_file *f, struct vm_config *cfg, const char *what)
{
	if (snap_reader_init(&f->r, f->buf, f->len) || parse_config(f, cfg)) {
		log_error("%s (%s)", f->r.failed ? f->r.err : "snapshot: out of memory", what);
		snap_file_close(f);
		return -EBADMSG;
	}
	return 0;
}

int snap_file_open(struct snap_file *f, const char *path, struct vm_config *cfg)
{
	memset(f, 0, sizeof(*f));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_error("snapshot: %s: %s", path, strerror(errno));
		return -errno;
	}
	struct stat st;
	int err = 0;
	if (fstat(fd, &st) < 0) {
		err = -errno;
	} else if (!S_ISREG(st.st_mode) || st.st_size > SNAP_MAX_FILE) {
		log_error("snapshot: %s: not a regular file of at most %u MiB", path,
			  SNAP_MAX_FILE >> 20);
		err = -EINVAL;
	} else {
		f->len = (size_t)st.st_size;
		f->buf = malloc(f->len ? f->len : 1);
		err = !f->buf ? -ENOMEM : pread_full(fd, f->buf, f->len, 0);
	}
	close(fd);
	if (err) {
		if (err != -EINVAL)
			log_error("snapshot: %s: %s", path, strerror(-err));
		snap_file_close(f);
		return err;
	}
	return snap_file_parse(f, cfg, path);
}

void snap_file_close(struct snap_file *f)
{
	for (unsigned i = 0; i < CONFIG_MAX_DISKS; i++)
		free(f->disk_path[i]);
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

/* ------------------------------------------------------------ memory */

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)(const void *)p;
	for (size_t i = 0; i < GUEST_PAGE / 8; i++)
		if (q[i])
			return false;
	return true;
}

/* Writes the pages of region `reg` for which want(page) holds, in runs. */
static int write_pages(int fd, const struct guest_mem *mem, unsigned reg, const uint64_t *bitmap)
{
	const struct guest_region *rg = &mem->regions[reg];
	uint64_t pages = rg->size / GUEST_PAGE, base = (uint64_t)(rg->hva - mem->base);
	uint64_t run = 0, run_len = 0;
	for (uint64_t p = 0; p <= pages; p++) {
		bool want = false;
		if (p < pages)
			want = bitmap ? (bitmap[p / 64] >> (p % 64)) & 1
				      : !page_is_zero(rg->hva + p * GUEST_PAGE);
		if (want && run_len < RUN_MAX) {
			if (!run_len)
				run = p * GUEST_PAGE;
			run_len += GUEST_PAGE;
			continue;
		}
		if (run_len) {
			ssize_t n = pwrite(fd, rg->hva + run, run_len, (off_t)(base + run));
			if (n != (ssize_t)run_len)
				return n < 0 ? -errno : -EIO;
			run_len = 0;
		}
		if (want) { /* the run was full: this page starts the next one */
			run = p * GUEST_PAGE;
			run_len = GUEST_PAGE;
		}
	}
	return 0;
}

/* The dirty pages of every region since the last call (KVM's log OR mote's
 * own writes); bitmaps[i] has one bit per page of region i. */
int snap_take_dirty(const struct snap_vm *vm, uint64_t **bitmaps)
{
	const struct guest_mem *mem = vm->mem;
	for (unsigned i = 0; i < mem->nr_regions; i++) {
		uint64_t pages = mem->regions[i].size / GUEST_PAGE;
		bitmaps[i] = calloc((pages + 63) / 64, sizeof(uint64_t));
		if (!bitmaps[i])
			return -ENOMEM;
		int err = kvm_get_dirty_log(vm->kvm, i, bitmaps[i]);
		if (err) {
			log_error("snapshot: cannot read KVM's dirty log: %s", strerror(-err));
			return err;
		}
		guest_mem_take_dirty(mem, (uint64_t)(mem->regions[i].hva - mem->base) / GUEST_PAGE,
				     pages, bitmaps[i]);
	}
	return 0;
}

static int write_memory(const struct snap_vm *vm, const char *path, bool diff)
{
	const struct guest_mem *mem = vm->mem;
	uint64_t *dirty[GUEST_MEM_MAX_REGIONS] = { 0 };
	char tmp[4096];
	int err = 0, fd = -1;
	/* Even a full snapshot takes the dirty log: the next diff starts here. */
	if (vm->kvm->dirty_log && (err = snap_take_dirty(vm, dirty)))
		goto out;
	if (diff) {
		fd = open(path, O_WRONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size != mem->total) {
			log_error("snapshot: a Diff snapshot writes into an existing memory file of "
				  "%llu bytes (from a Full snapshot); %s is %s",
				  (unsigned long long)mem->total, path,
				  fd < 0 ? strerror(errno) : "of another size");
			err = -EINVAL;
			goto out;
		}
	} else {
		if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
			log_error("snapshot: memory file path too long");
			err = -ENAMETOOLONG;
			goto out;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, (off_t)mem->total) < 0) {
			err = -errno;
			log_error("snapshot: memory file %s: %s", path, strerror(errno));
			goto out;
		}
	}
	for (unsigned i = 0; i < mem->nr_regions && !err; i++)
		err = write_pages(fd, mem, i, diff ? dirty[i] : NULL);
	if (err)
		log_error("snapshot: writing memory to %s: %s", path, strerror(-err));
	if (!err && !diff && rename(tmp, path) < 0) {
		err = -errno;
		log_error("snapshot: memory file %s: %s", path, strerror(errno));
	}
	if (err && !diff)
		unlink(tmp);
out:
	if (fd >= 0)
		close(fd);
	for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
		free(dirty[i]);
	return err;
}

static int write_file(const char *path, const void *buf, size_t len)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	int err = write_full(fd, buf, len);
	close(fd);
	if (!err && rename(tmp, path) < 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/* Devices whose host side lives only in this process cannot be saved:
 * libslirp's connections and NAT state, vsock's host sockets. */
static int check_savable(const struct vm_config *cfg)
{
	for (unsigned i = 0; i < cfg->nr_nets; i++) {
		if (cfg->nets[i].kind != VM_NET_TAP) {
			log_error("snapshot: network interface %s: user-mode networking keeps "
				  "its connections inside this process; only tap interfaces can "
				  "be saved or migrated", cfg->nets[i].id);
			return -EOPNOTSUPP;
		}
	}
	if (cfg->vsock.enabled) {
		log_error("snapshot: the vsock device's host sockets cannot be saved or migrated");
		return -EOPNOTSUPP;
	}
	return 0;
}

int snap_build(const struct snap_vm *vm, struct snap_writer *w, bool state)
{
	snap_writer_init(w);
	int err = check_savable(vm->cfg);
	if (err)
		return err;
	save_config(vm, w);
	err = state ? snap_save_cpus(vm, w) : 0;
	if (!err && state)
		err = snap_save_devices(vm, w);
	if (!err)
		err = snap_writer_finish(w);
	if (err == -ENOMEM)
		log_error("snapshot: out of memory");
	return err;
}

int snap_save(const struct snap_vm *vm, const char *snap_path, const char *mem_path, bool diff)
{
	if (diff && !vm->kvm->dirty_log) {
		log_error("snapshot: a Diff snapshot needs dirty page tracking "
			  "(track_dirty_pages, or enable_diff_snapshots on load)");
		return -EINVAL;
	}
	struct snap_writer w;
	int err = snap_build(vm, &w, true);
	if (!err)
		err = write_memory(vm, mem_path, diff);
	if (!err && (err = write_file(snap_path, w.buf, w.len)))
		log_error("snapshot: %s: %s", snap_path, strerror(-err));
	if (!err)
		log_info("snapshot: %s snapshot written to %s (%zu bytes of state) and %s",
			 diff ? "diff" : "full", snap_path, w.len, mem_path);
	snap_writer_fini(&w);
	return err;
}

/* ------------------------------------------------------------ restore */

static int check_memory(const struct snap_vm *vm, struct snap_reader *r)
{
	struct snap_section s;
	if (snap_find(r, SNAP_MEMORY, 0, MEMORY_VERSION, &s))
		return -EBADMSG;
	const struct guest_mem *mem = vm->mem;
	uint64_t total = snap_u64(&s, "total");
	uint32_t nr = snap_u32(&s, "regions");
	if (!r->failed && (total != mem->total || nr != mem->nr_regions))
		return snap_fail(&s, "total", "%llu bytes in %u regions; the config builds %llu "
				 "in %u", (unsigned long long)total, nr,
				 (unsigned long long)mem->total, mem->nr_regions);
	for (unsigned i = 0; i < nr && !r->failed; i++) {
		uint64_t gpa = snap_u64(&s, "region.gpa"), size = snap_u64(&s, "region.size");
		if (!r->failed && (gpa != mem->regions[i].gpa || size != mem->regions[i].size))
			return snap_fail(&s, "region", "region %u at %#llx+%#llx differs from the "
					 "built layout", i, (unsigned long long)gpa,
					 (unsigned long long)size);
	}
	return snap_done(&s);
}

int snap_restore(const struct snap_vm *vm, struct snap_reader *r)
{
	int err = check_memory(vm, r);
	/* First validate everything, then load: a bad stream changes nothing. */
	for (int apply = 0; apply < 2 && !err; apply++) {
		err = snap_load_cpus(vm, r, apply);
		if (!err)
			err = snap_load_devices(vm, r, apply);
	}
	if (err == -EBADMSG && r->failed)
		log_error("%s", r->err);
	else if (err == -ENOMEM)
		log_error("snapshot: out of memory");
	if (err)
		return err;
	/* A kick the guest made just before the snapshot was never seen by the
	 * device: look at every live queue once. */
	for (unsigned i = 0; i < vm->nr_virtio; i++) {
		struct virtio_pci *vp = &vm->vpci[i];
		for (unsigned q = 0; q < vp->dev->ops->nr_queues; q++) {
			uint64_t one = 1;
			if (vp->queue_enabled[q] && write(vp->kick[q].src.fd, &one, sizeof(one)) < 0)
				log_warn("snapshot: cannot kick %s: %s", vp->dev->ops->name,
					 strerror(errno));
		}
	}
	return 0;
}
