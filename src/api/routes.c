/* REST routes (Firecracker's paths, bodies and status codes); see
 * routes.h. Firecracker's OpenAPI description is the reference for field
 * names; errors are 400 with {"fault_message": "..."}, successes 204 or 200
 * with a body. */
#include "api/routes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/x86/layout.h"
#include "snap/migrate.h"
#include "snap/snapshot.h"
#include "util/util.h"
#include "util/log.h"
#include "util/metrics.h"
#include "version.h"
#include "vmm.h"

void api_fault(struct api_reply *r, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *o = json_pack("{s:s}", "fault_message", msg);
	r->status = status;
	r->body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
}

void api_json(struct api_reply *r, json_t *obj)
{
	r->status = 200;
	r->body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
	json_decref(obj);
}

/* ---------------------------------------------------------------- validation */

enum ftype { F_STR, F_BOOL, F_UINT, F_OBJ_OR_NULL };

struct field {
	const char *name;
	enum ftype type;
	bool required;
};

/* Checks that body is an object whose keys are all known and well typed. */
static int check_fields(json_t *body, const struct field *f, unsigned n, char *err, size_t len)
{
	if (!json_is_object(body)) {
		snprintf(err, len, "the request body must be a JSON object");
		return -EINVAL;
	}
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		unsigned i = 0;
		while (i < n && strcmp(key, f[i].name))
			i++;
		if (i == n) {
			snprintf(err, len, "unknown field '%s'", key);
			return -EINVAL;
		}
		bool ok = f[i].type == F_STR    ? json_is_string(v)
			  : f[i].type == F_BOOL ? json_is_boolean(v)
			  : f[i].type == F_UINT ? json_is_integer(v) && json_integer_value(v) >= 0
						: json_is_object(v) || json_is_null(v);
		if (!ok) {
			static const char *const names[] = { "a string", "a boolean",
							     "a non-negative integer", "an object" };
			snprintf(err, len, "field '%s' must be %s", key, names[f[i].type]);
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (f[i].required && !json_object_get(body, f[i].name)) {
			snprintf(err, len, "missing field '%s'", f[i].name);
			return -EINVAL;
		}
	}
	return 0;
}

static const char *str(json_t *body, const char *name)
{
	return json_string_value(json_object_get(body, name));
}

/* A file a request names must be there for mote, and be a regular file (a
 * drive may be a block device): a FIFO or a socket would hang or fail the
 * open at InstanceStart instead of being refused now. */
static int readable(const char *what, const char *path, bool write, char *err, size_t len)
{
	struct stat st;
	if (access(path, R_OK | (write ? W_OK : 0)) < 0 || stat(path, &st) < 0) {
		snprintf(err, len, "%s %s: %s", what, path, strerror(errno));
		return -EINVAL;
	}
	bool drive = !strcmp(what, "drive");
	if (!S_ISREG(st.st_mode) && !(drive && S_ISBLK(st.st_mode))) {
		snprintf(err, len, "%s %s: not a regular file%s", what, path,
			 drive ? " or block device" : "");
		return -EINVAL;
	}
	return 0;
}

static void replace(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
}

/* Firecracker's RateLimiter: {"bandwidth": TokenBucket, "ops": TokenBucket},
 * TokenBucket {"size", "refill_time" (ms), "one_time_burst"}; null, a missing
 * bucket, or (as in Firecracker) a size or refill_time of 0 does not limit. */
static const struct field bucket_fields[] = {
	{ "size", F_UINT, true },
	{ "refill_time", F_UINT, true },
	{ "one_time_burst", F_UINT, false },
};
static const struct field limiter_fields[] = {
	{ "bandwidth", F_OBJ_OR_NULL, false },
	{ "ops", F_OBJ_OR_NULL, false },
};

static int parse_bucket(json_t *o, const char *what, struct bucket_cfg *b, char *err, size_t len)
{
	*b = (struct bucket_cfg){ 0 };
	if (!o || json_is_null(o))
		return 0;
	char sub[256];
	if (check_fields(o, bucket_fields, 3, sub, sizeof(sub))) {
		snprintf(err, len, "rate_limiter %s: %s", what, sub);
		return -EINVAL;
	}
	b->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
	b->refill_ms = (uint64_t)json_integer_value(json_object_get(o, "refill_time"));
	b->one_time_burst = (uint64_t)json_integer_value(json_object_get(o, "one_time_burst"));
	if (!b->size || !b->refill_ms) {
		*b = (struct bucket_cfg){ 0 };
		return 0;
	}
	if (ratelimit_check_bucket(b)) {
		snprintf(err, len, "rate_limiter %s: size and one_time_burst must be at most 2^50 "
			 "and refill_time at most 3600000 ms", what);
		return -EINVAL;
	}
	return 0;
}

int api_parse_rate_limiter(json_t *rl, struct ratelimit_cfg *out, char *err, size_t len)
{
	*out = (struct ratelimit_cfg){ 0 };
	if (!rl || json_is_null(rl))
		return 0;
	char sub[256];
	if (check_fields(rl, limiter_fields, 2, sub, sizeof(sub))) {
		snprintf(err, len, "rate_limiter: %s", sub);
		return -EINVAL;
	}
	int e = parse_bucket(json_object_get(rl, "bandwidth"), "bandwidth", &out->bw, err, len);
	return e ? e : parse_bucket(json_object_get(rl, "ops"), "ops", &out->ops, err, len);
}

static json_t *bucket_json(const struct bucket_cfg *b)
{
	if (!b->size)
		return json_null();
	return json_pack("{s:I,s:I,s:I}", "size", (json_int_t)b->size, "one_time_burst",
			 (json_int_t)b->one_time_burst, "refill_time", (json_int_t)b->refill_ms);
}

json_t *api_rate_limiter_json(const struct ratelimit_cfg *rl)
{
	if (!rl->bw.size && !rl->ops.size)
		return json_null();
	return json_pack("{s:o,s:o}", "bandwidth", bucket_json(&rl->bw), "ops",
			 bucket_json(&rl->ops));
}

/* ---------------------------------------------------------------- instance */

static const char *state_name(const struct api_ctl *ctl)
{
	if (!ctl->vm)
		return "Not started";
	return vmm_is_paused(ctl->vm) ? "Paused" : "Running";
}

static void get_instance(struct api_ctl *ctl, json_t *body, const char *id, struct api_reply *r)
{
	api_json(r, json_pack("{s:s,s:s,s:s,s:s}", "id", ctl->opts->id, "state", state_name(ctl),
			      "vmm_version", MOTE_VERSION, "app_name", "mote"));
}

static void get_version(struct api_ctl *ctl, json_t *body, const char *id, struct api_reply *r)
{
	api_json(r, json_pack("{s:s}", "firecracker_version", MOTE_VERSION));
}

static json_t *machine_json(const struct api_ctl *ctl)
{
	return json_pack("{s:I,s:I,s:b,s:b,s:s}", "vcpu_count", (json_int_t)ctl->vcpus,
			 "mem_size_mib", (json_int_t)ctl->mem_mib, "smt", 0, "track_dirty_pages",
			 ctl->track_dirty, "huge_pages", "None");
}

static json_t *drives_json(const struct api_ctl *ctl)
{
	json_t *a = json_array();
	for (unsigned i = 0; i < ctl->nr_drives; i++) {
		const struct api_drive *d = &ctl->drives[i];
		/* A running VM's drive may have moved (storage migration). */
		struct blk_status st;
		const char *path = ctl->vm && !vmm_drive_status(ctl->vm, d->index, &st) ? st.path
											   : d->path;
		json_array_append_new(a, json_pack("{s:s,s:s,s:b,s:b,s:s*,s:s,s:s,s:o}", "drive_id",
						   d->id, "path_on_host", path, "is_root_device",
						   d->root, "is_read_only", d->read_only, "partuuid",
						   d->partuuid, "cache_type", "Writeback",
						   "io_engine", "Async", "rate_limiter",
						   api_rate_limiter_json(&d->rl)));
	}
	return a;
}

static void get_vm_config(struct api_ctl *ctl, json_t *body, const char *id, struct api_reply *r)
{
	json_t *boot = ctl->kernel ? json_pack("{s:s,s:s*,s:s*}", "kernel_image_path", ctl->kernel,
					       "initrd_path", ctl->initrd, "boot_args",
					       ctl->boot_args)
				   : json_object();
	json_t *vsock = ctl->vsock_uds ? json_pack("{s:I,s:s,s:s*}", "guest_cid",
						   (json_int_t)ctl->vsock_cid, "uds_path",
						   ctl->vsock_uds, "vsock_id", ctl->vsock_id)
				       : json_null();
	api_json(r, json_pack("{s:o,s:o,s:o,s:o,s:o,s:n,s:n,s:n,s:n,s:o}", "boot-source", boot,
			      "machine-config", machine_json(ctl), "drives", drives_json(ctl),
			      "network-interfaces", api_netif_json(ctl), "vsock", vsock, "logger",
			      "metrics", "mmds-config", "balloon", "entropy",
			      ctl->rng ? json_pack("{s:o}", "rate_limiter",
						   api_rate_limiter_json(&ctl->rng_rl))
				       : json_null()));
}

/* ---------------------------------------------------------------- boot source */

static const struct field boot_fields[] = {
	{ "kernel_image_path", F_STR, true },
	{ "initrd_path", F_STR, false },
	{ "boot_args", F_STR, false },
};

static int validate_boot(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, boot_fields, 3, err, len);
	if (!e)
		e = readable("kernel", str(b, "kernel_image_path"), false, err, len);
	if (!e && str(b, "initrd_path"))
		e = readable("initrd", str(b, "initrd_path"), false, err, len);
	return e;
}

static void put_boot(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	replace(&ctl->kernel, str(b, "kernel_image_path"));
	replace(&ctl->initrd, str(b, "initrd_path"));
	replace(&ctl->boot_args, str(b, "boot_args"));
}

/* ---------------------------------------------------------------- machine config */

static const struct field machine_fields[] = {
	{ "vcpu_count", F_UINT, false },
	{ "mem_size_mib", F_UINT, false },
	{ "smt", F_BOOL, false },
	{ "track_dirty_pages", F_BOOL, false },
	{ "cpu_template", F_STR, false },
	{ "huge_pages", F_STR, false },
};

static int validate_machine(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, machine_fields, 6, err, len);
	if (e)
		return e;
	json_t *v = json_object_get(b, "vcpu_count");
	if (v && (json_integer_value(v) < 1 || json_integer_value(v) > X86_MAX_CPUS)) {
		snprintf(err, len, "vcpu_count must be from 1 to %u", X86_MAX_CPUS);
		return -EINVAL;
	}
	v = json_object_get(b, "mem_size_mib");
	if (v && (json_integer_value(v) < CONFIG_MIN_MEM_MIB ||
		  (uint64_t)json_integer_value(v) > (UINT64_MAX >> 20))) {
		snprintf(err, len, "mem_size_mib must be at least %u", CONFIG_MIN_MEM_MIB);
		return -EINVAL;
	}
	if (json_is_true(json_object_get(b, "smt"))) {
		snprintf(err, len, "smt is not supported: mote gives each vCPU its own core");
		return -EINVAL;
	}
	const char *t = str(b, "cpu_template");
	if (t && strcmp(t, "None")) {
		snprintf(err, len, "cpu_template %s is not supported (only None)", t);
		return -EINVAL;
	}
	const char *h = str(b, "huge_pages");
	if (h && strcmp(h, "None")) {
		snprintf(err, len, "huge_pages %s is not supported (mote uses transparent huge pages)",
			 h);
		return -EINVAL;
	}
	return 0;
}

static int validate_machine_put(json_t *b, const char *id, char *err, size_t len)
{
	int e = validate_machine(b, id, err, len);
	if (!e && (!json_object_get(b, "vcpu_count") || !json_object_get(b, "mem_size_mib"))) {
		snprintf(err, len, "missing field '%s'",
			 json_object_get(b, "vcpu_count") ? "mem_size_mib" : "vcpu_count");
		return -EINVAL;
	}
	return e;
}

static void patch_machine(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	json_t *v;
	if ((v = json_object_get(b, "vcpu_count")))
		ctl->vcpus = (unsigned)json_integer_value(v);
	if ((v = json_object_get(b, "mem_size_mib")))
		ctl->mem_mib = (uint64_t)json_integer_value(v);
	if ((v = json_object_get(b, "track_dirty_pages")))
		ctl->track_dirty = json_is_true(v);
}

/* PUT replaces the whole configuration: what it leaves out is the default. */
static void put_machine(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	ctl->track_dirty = false;
	patch_machine(ctl, b, id, r);
}

static void get_machine(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	api_json(r, machine_json(ctl));
}

/* ---------------------------------------------------------------- drives */

static const struct field drive_fields[] = {
	{ "drive_id", F_STR, true },
	{ "path_on_host", F_STR, true },
	{ "is_root_device", F_BOOL, true },
	{ "is_read_only", F_BOOL, false },
	{ "partuuid", F_STR, false },
	{ "cache_type", F_STR, false },
	{ "io_engine", F_STR, false },
	{ "rate_limiter", F_OBJ_OR_NULL, false },
	{ "socket", F_STR, false },
};

static int validate_id(const char *id, char *err, size_t len)
{
	size_t n = strlen(id);
	bool ok = n > 0 && n <= API_ID_MAX;
	for (size_t i = 0; ok && i < n; i++)
		ok = (id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		     (id[i] >= '0' && id[i] <= '9') || id[i] == '_';
	if (!ok) {
		snprintf(err, len, "invalid id '%.80s': 1 to %u letters, digits or '_'", id,
			 API_ID_MAX);
		return -EINVAL;
	}
	return 0;
}

/* The path's id, the body's fields, and the body's drive_id equal to the id. */
static int check_drive_body(json_t *b, const char *id, const struct field *f, unsigned n,
			    char *err, size_t len)
{
	int e = validate_id(id, err, len);
	if (!e)
		e = check_fields(b, f, n, err, len);
	if (!e && strcmp(str(b, "drive_id"), id)) {
		snprintf(err, len, "drive_id '%s' does not match the path's '%s'",
			 str(b, "drive_id"), id);
		e = -EINVAL;
	}
	return e;
}

static int validate_drive(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_drive_body(b, id, drive_fields, 9, err, len);
	if (e)
		return e;
	const char *c = str(b, "cache_type"), *io = str(b, "io_engine");
	if (c && strcmp(c, "Unsafe") && strcmp(c, "Writeback")) {
		snprintf(err, len, "cache_type must be Unsafe or Writeback");
		return -EINVAL;
	}
	if (io && strcmp(io, "Sync") && strcmp(io, "Async")) {
		snprintf(err, len, "io_engine must be Sync or Async");
		return -EINVAL;
	}
	if (json_object_get(b, "socket")) {
		snprintf(err, len, "a vhost-user socket is not supported");
		return -EINVAL;
	}
	struct ratelimit_cfg rl;
	e = api_parse_rate_limiter(json_object_get(b, "rate_limiter"), &rl, err, len);
	if (e)
		return e;
	return readable("drive", str(b, "path_on_host"),
			!json_is_true(json_object_get(b, "is_read_only")), err, len);
}

static void put_drive(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	bool root = json_is_true(json_object_get(b, "is_root_device"));
	unsigned i = 0;
	while (i < ctl->nr_drives && strcmp(ctl->drives[i].id, id))
		i++;
	for (unsigned j = 0; root && j < ctl->nr_drives; j++) {
		if (j != i && ctl->drives[j].root) {
			api_fault(r, 400, "drive %s is already the root device", ctl->drives[j].id);
			return;
		}
	}
	if (i == ctl->nr_drives) {
		if (i == CONFIG_MAX_DISKS) {
			api_fault(r, 400, "at most %u drives", CONFIG_MAX_DISKS);
			return;
		}
		ctl->nr_drives++;
	}
	struct api_drive *d = &ctl->drives[i];
	snprintf(d->id, sizeof(d->id), "%s", id);
	replace(&d->path, str(b, "path_on_host"));
	replace(&d->partuuid, str(b, "partuuid"));
	d->read_only = json_is_true(json_object_get(b, "is_read_only"));
	d->root = root;
	char err[8];
	api_parse_rate_limiter(json_object_get(b, "rate_limiter"), &d->rl, err, sizeof(err));
}

/* Firecracker's PartialDrive: a running VM's drive gets a new backing file
 * and/or new rate limits. */
static const struct field drive_patch_fields[] = {
	{ "drive_id", F_STR, true },
	{ "path_on_host", F_STR, false },
	{ "rate_limiter", F_OBJ_OR_NULL, false },
};

static int validate_drive_patch(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_drive_body(b, id, drive_patch_fields, 3, err, len);
	if (e)
		return e;
	struct ratelimit_cfg rl;
	e = api_parse_rate_limiter(json_object_get(b, "rate_limiter"), &rl, err, len);
	if (!e && str(b, "path_on_host"))
		e = readable("drive", str(b, "path_on_host"), false, err, len);
	return e;
}

static void patch_drive(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	unsigned i = 0;
	while (i < ctl->nr_drives && strcmp(ctl->drives[i].id, id))
		i++;
	if (i == ctl->nr_drives) {
		api_fault(r, 400, "no drive %s", id);
		return;
	}
	struct api_drive *d = &ctl->drives[i];
	const char *path = str(b, "path_on_host");
	json_t *rlj = json_object_get(b, "rate_limiter");
	struct ratelimit_cfg rl;
	char err[8];
	api_parse_rate_limiter(rlj, &rl, err, sizeof(err));
	if (vmm_update_drive(ctl->vm, d->index, path, rlj ? &rl : NULL) < 0) {
		api_fault(r, 400, "drive %s: %s", id, log_last_error());
		return;
	}
	if (path)
		replace(&d->path, path);
	if (rlj)
		d->rl = rl;
}

/* ---------------------------------------------------------------- storage migration */

static struct api_drive *find_drive(struct api_ctl *ctl, const char *id)
{
	for (unsigned i = 0; i < ctl->nr_drives; i++)
		if (!strcmp(ctl->drives[i].id, id))
			return &ctl->drives[i];
	return NULL;
}

static const struct field storage_migrate_fields[] = {
	{ "drive_id", F_STR, true },
	{ "destination_path", F_STR, true },
};

static int validate_storage_migration(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, storage_migrate_fields, 2, err, len);
	if (!e && !*str(b, "destination_path")) {
		snprintf(err, len, "destination_path is empty");
		return -EINVAL;
	}
	return e;
}

static void put_storage_migration(struct api_ctl *ctl, json_t *b, const char *id,
				  struct api_reply *r)
{
	struct api_drive *d = find_drive(ctl, str(b, "drive_id"));
	if (!d) {
		api_fault(r, 400, "no drive %s", str(b, "drive_id"));
		return;
	}
	if (vmm_migrate_drive(ctl->vm, d->index, str(b, "destination_path")) < 0)
		api_fault(r, 400, "drive %s: %s", d->id, log_last_error());
}

static void get_storage_migration(struct api_ctl *ctl, json_t *b, const char *id,
				  struct api_reply *r)
{
	json_t *a = json_array();
	for (unsigned i = 0; ctl->vm && i < ctl->nr_drives; i++) {
		struct api_drive *d = &ctl->drives[i];
		struct blk_status st;
		if (vmm_drive_status(ctl->vm, d->index, &st) || !st.migration)
			continue;
		json_array_append_new(
			a, json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:i,s:s*}", "drive_id", d->id,
				     "path_on_host", st.path, "destination_path", st.dst, "state",
				     st.state, "size_bytes", (json_int_t)st.size, "copied_bytes",
				     (json_int_t)st.copied, "remaining_bytes",
				     (json_int_t)st.remaining, "passes", (int)st.passes, "error",
				     st.error ? strerror(-st.error) : NULL));
	}
	api_json(r, json_pack("{s:o}", "drives", a));
}

/* ---------------------------------------------------------------- devices */

static const struct field entropy_fields[] = { { "rate_limiter", F_OBJ_OR_NULL, false } };

static int validate_entropy(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, entropy_fields, 1, err, len);
	struct ratelimit_cfg rl;
	return e ? e : api_parse_rate_limiter(json_object_get(b, "rate_limiter"), &rl, err, len);
}

static void put_entropy(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	ctl->rng = true;
	char err[8];
	api_parse_rate_limiter(json_object_get(b, "rate_limiter"), &ctl->rng_rl, err, sizeof(err));
}

/* Firecracker's Vsock object: the device is created (and its socket bound)
 * at InstanceStart; a second PUT replaces the first. */
static const struct field vsock_fields[] = {
	{ "guest_cid", F_UINT, true },
	{ "uds_path", F_STR, true },
	{ "vsock_id", F_STR, false },
};

static int validate_vsock(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, vsock_fields, 3, err, len);
	if (e)
		return e;
	json_int_t cid = json_integer_value(json_object_get(b, "guest_cid"));
	if (cid < CONFIG_VSOCK_MIN_CID || cid > (json_int_t)CONFIG_VSOCK_MAX_CID) {
		snprintf(err, len, "guest_cid %lld: must be from %u to %u", (long long)cid,
			 CONFIG_VSOCK_MIN_CID, CONFIG_VSOCK_MAX_CID);
		return -EINVAL;
	}
	const char *path = str(b, "uds_path");
	if (!*path || strlen(path) > CONFIG_VSOCK_PATH_MAX) {
		snprintf(err, len, "uds_path must be 1 to %u bytes (a Unix socket address)",
			 CONFIG_VSOCK_PATH_MAX);
		return -EINVAL;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		snprintf(err, len, "uds_path %.200s already exists", path);
		return -EINVAL;
	}
	return 0;
}

static void put_vsock(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	ctl->vsock_cid = (uint32_t)json_integer_value(json_object_get(b, "guest_cid"));
	replace(&ctl->vsock_uds, str(b, "uds_path"));
	replace(&ctl->vsock_id, str(b, "vsock_id"));
}

static const struct field serial_fields[] = { { "serial_out_path", F_STR, true } };

static int validate_serial(json_t *b, const char *id, char *err, size_t len)
{
	return check_fields(b, serial_fields, 1, err, len);
}

static void put_serial(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	replace(&ctl->serial_out, str(b, "serial_out_path"));
}

static const struct field logger_fields[] = {
	{ "log_path", F_STR, false },   { "level", F_STR, false },
	{ "show_level", F_BOOL, false }, { "show_log_origin", F_BOOL, false },
	{ "module", F_STR, false },
};

static int validate_logger(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, logger_fields, 5, err, len);
	enum log_level l;
	const char *level = str(b, "level");
	if (!e && level && strcmp(level, "Trace") && strcmp(level, "Off") &&
	    log_parse_level(level, &l) < 0) {
		snprintf(err, len, "level %s: one of Off, Error, Warning, Info, Debug, Trace", level);
		return -EINVAL;
	}
	return e;
}

static void put_logger(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	const char *path = str(b, "log_path"), *level = str(b, "level");
	if (path) {
		int fd = open_append(path);
		if (fd < 0) {
			api_fault(r, 400, "log_path %s: %s", path, strerror(-fd));
			return;
		}
		log_set_fd(fd);
	}
	enum log_level l = LOG_WARN;
	if (level && !strcmp(level, "Trace"))
		l = LOG_DEBUG;
	else if (level && !strcmp(level, "Off"))
		l = LOG_ERROR;
	else if (level)
		log_parse_level(level, &l);
	if (level)
		log_set_level(l);
}

static const struct field metrics_fields[] = { { "metrics_path", F_STR, true } };

static int validate_metrics(json_t *b, const char *id, char *err, size_t len)
{
	return check_fields(b, metrics_fields, 1, err, len);
}

static void put_metrics(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	int e = api_metrics_open(&ctl->metrics, str(b, "metrics_path"));
	if (e == -EEXIST)
		api_fault(r, 400, "metrics are already configured");
	else if (e)
		api_fault(r, 400, "metrics_path %s: %s", str(b, "metrics_path"), strerror(-e));
}

/* ---------------------------------------------------------------- actions */

static const struct field action_fields[] = { { "action_type", F_STR, true } };

static int validate_action(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, action_fields, 1, err, len);
	const char *t = e ? NULL : str(b, "action_type");
	if (t && strcmp(t, "InstanceStart") && strcmp(t, "SendCtrlAltDel") &&
	    strcmp(t, "FlushMetrics")) {
		snprintf(err, len, "action_type %s: one of InstanceStart, SendCtrlAltDel, FlushMetrics",
			 t);
		return -EINVAL;
	}
	return e;
}

static void instance_start(struct api_ctl *ctl, struct api_reply *r);

static void put_action(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	const char *t = str(b, "action_type");
	if (!strcmp(t, "InstanceStart"))
		instance_start(ctl, r);
	else if (!strcmp(t, "SendCtrlAltDel")) {
		if (!ctl->vm)
			api_fault(r, 400, "SendCtrlAltDel: the microVM is not running");
		else if (vmm_ctrl_alt_del(ctl->vm) < 0)
			api_fault(r, 400, "SendCtrlAltDel: the guest's keyboard is not enabled");
	} else if (api_metrics_flush(&ctl->metrics) == -ENOENT) {
		api_fault(r, 400, "FlushMetrics: metrics are not configured");
	}
}

static const struct field vm_fields[] = { { "state", F_STR, true } };

static int validate_vm(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, vm_fields, 1, err, len);
	const char *s = e ? NULL : str(b, "state");
	if (s && strcmp(s, "Paused") && strcmp(s, "Resumed")) {
		snprintf(err, len, "state %s: Paused or Resumed", s);
		return -EINVAL;
	}
	return e;
}

static void patch_vm(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	int e = !strcmp(str(b, "state"), "Paused") ? vmm_pause(ctl->vm) : vmm_resume(ctl->vm);
	if (e)
		api_fault(r, 400, "%s", e == -EBUSY ? log_last_error() : "the microVM is not running");
}

/* ---------------------------------------------------------------- start */

/* Firecracker's rule: the root drive is /dev/vda and the kernel is told so. */
static int compose(struct api_ctl *ctl, struct api_reply *r)
{
	struct vm_config *cfg = &ctl->cfg;
	config_defaults(cfg);
	cfg->kernel = ctl->kernel;
	cfg->initrd = ctl->initrd;
	cfg->cpus = ctl->vcpus;
	cfg->mem_mib = ctl->mem_mib;
	cfg->rng = ctl->rng;
	cfg->rng_rl = ctl->rng_rl;
	memcpy(cfg->nets, ctl->nets, sizeof(cfg->nets));
	cfg->nr_nets = ctl->nr_nets;
	cfg->serial_out = ctl->serial_out;
	if (ctl->vsock_uds)
		cfg->vsock = (struct vm_vsock){ .enabled = true, .cid = ctl->vsock_cid,
						.uds = ctl->vsock_uds };
	cfg->boot_timer = ctl->opts->boot_timer;
	cfg->start_ns = ctl->opts->start_ns;
	cfg->track_dirty = ctl->track_dirty;
	const struct api_drive *root = NULL;
	for (unsigned i = 0; i < ctl->nr_drives; i++)
		if (ctl->drives[i].root)
			root = &ctl->drives[i];
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < ctl->nr_drives; i++) {
			struct api_drive *d = &ctl->drives[i];
			if ((pass == 0) != (d == root))
				continue;
			d->index = cfg->nr_disks;
			struct vm_disk *disk = &cfg->disks[cfg->nr_disks++];
			disk->rl = d->rl;
			disk->path = d->path;
			disk->read_only = d->read_only;
			/* The serial keeps the id's first 20 bytes. (Not snprintf: both
			 * lie in *ctl, and gcc's -Wrestrict cannot tell them apart.) */
			size_t n = strnlen(d->id, CONFIG_DISK_ID_LEN);
			memcpy(disk->id, d->id, n);
			disk->id[n] = '\0';
		}
	}
	char root_arg[API_ID_MAX + 64] = "";
	if (root && root->partuuid)
		snprintf(root_arg, sizeof(root_arg), " root=PARTUUID=%.36s %s", root->partuuid,
			 root->read_only ? "ro" : "rw");
	else if (root)
		snprintf(root_arg, sizeof(root_arg), " root=/dev/vda %s", root->read_only ? "ro" : "rw");
	/* One snprintf for both parts: its result says whether they fit. */
	int n = snprintf(ctl->cmdline, sizeof(ctl->cmdline), "%s%s",
			 ctl->boot_args ? ctl->boot_args : CONFIG_DEFAULT_CMDLINE, root_arg);
	if (n < 0 || (size_t)n >= sizeof(ctl->cmdline)) {
		api_fault(r, 400, "boot_args are too long (at most %zu bytes with the root device)",
			  sizeof(ctl->cmdline) - 1 - strlen(root_arg));
		return -E2BIG;
	}
	cfg->cmdline = ctl->cmdline;
	return 0;
}

static void instance_start(struct api_ctl *ctl, struct api_reply *r)
{
	if (ctl->vm) { /* a second start would lose the first VM */
		api_fault(r, 400, "the microVM is already running");
		return;
	}
	if (!ctl->kernel) {
		api_fault(r, 400, "Cannot start microvm without kernel configuration.");
		return;
	}
	if (compose(ctl, r) < 0)
		return;
	int status;
	struct vm *vm;
	if (vmm_create(&vm, &ctl->cfg, ctl->loop, &status) < 0) {
		api_fault(r, 400, "Cannot start microvm: %s", log_last_error());
		return;
	}
	if (vmm_start(vm) < 0) {
		vmm_destroy(vm); /* vmm_start stopped what it started */
		api_fault(r, 500, "Cannot start microvm: %s", log_last_error());
		return;
	}
	ctl->vm = vm;
	if (ctl->vm_started)
		ctl->vm_started(ctl->opaque, vm);
}

/* ---------------------------------------------------------------- snapshots */

static const struct field snap_create_fields[] = {
	{ "snapshot_type", F_STR, false },
	{ "snapshot_path", F_STR, true },
	{ "mem_file_path", F_STR, true },
	{ "version", F_STR, false },
};

static int validate_snap_create(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, snap_create_fields, 4, err, len);
	const char *t = e ? NULL : str(b, "snapshot_type");
	if (t && strcmp(t, "Full") && strcmp(t, "Diff")) {
		snprintf(err, len, "snapshot_type %s: Full or Diff", t);
		return -EINVAL;
	}
	/* A Diff writes into the existing memory file, opened blocking (a Full
	 * one replaces it): a FIFO there would hold the snapshot for good. */
	struct stat st;
	if (t && !strcmp(t, "Diff") && stat(str(b, "mem_file_path"), &st) == 0 &&
	    !S_ISREG(st.st_mode)) {
		snprintf(err, len, "mem_file_path %s: not a regular file", str(b, "mem_file_path"));
		return -EINVAL;
	}
	return e;
}

static void put_snap_create(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	if (!vmm_is_paused(ctl->vm)) {
		api_fault(r, 400, "a snapshot can only be created while the microVM is Paused");
		return;
	}
	const char *t = str(b, "snapshot_type");
	bool diff = t && !strcmp(t, "Diff");
	if (vmm_snapshot(ctl->vm, str(b, "snapshot_path"), str(b, "mem_file_path"), diff) < 0)
		api_fault(r, 400, "Cannot create snapshot: %s", log_last_error());
}

static const struct field snap_load_fields[] = {
	{ "snapshot_path", F_STR, true },
	{ "mem_file_path", F_STR, false },
	{ "mem_backend", F_OBJ_OR_NULL, false },
	{ "enable_diff_snapshots", F_BOOL, false },
	{ "track_dirty_pages", F_BOOL, false },
	{ "resume_vm", F_BOOL, false },
};

static const struct field mem_backend_fields[] = {
	{ "backend_type", F_STR, true },
	{ "backend_path", F_STR, true },
};

/* The memory file: mem_file_path (older) or mem_backend {File, path}. */
static const char *snap_mem_path(json_t *b)
{
	json_t *mb = json_object_get(b, "mem_backend");
	return mb && json_is_object(mb) ? str(mb, "backend_path") : str(b, "mem_file_path");
}

static int validate_snap_load(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, snap_load_fields, 6, err, len);
	if (e)
		return e;
	json_t *mb = json_object_get(b, "mem_backend");
	bool has_mb = mb && !json_is_null(mb), has_path = json_object_get(b, "mem_file_path");
	if (has_mb == has_path) {
		snprintf(err, len, "give exactly one of mem_backend and mem_file_path");
		return -EINVAL;
	}
	if (has_mb) {
		if ((e = check_fields(mb, mem_backend_fields, 2, err, len)))
			return e;
		const char *t = str(mb, "backend_type");
		if (strcmp(t, "File")) {
			snprintf(err, len, "mem_backend backend_type %s is not supported (only File)",
				 t);
			return -EINVAL;
		}
	}
	e = readable("snapshot", str(b, "snapshot_path"), false, err, len);
	return e ? e : readable("memory file", snap_mem_path(b), false, err, len);
}

static void put_snap_load(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	if (ctl->kernel || ctl->nr_drives || ctl->rng || ctl->snap) {
		api_fault(r, 400, "a snapshot loads into a fresh microVM: nothing may be configured "
			  "before PUT /snapshot/load");
		return;
	}
	struct snap_file *f = calloc(1, sizeof(*f));
	replace(&ctl->restore_mem, snap_mem_path(b));
	if (!f || !ctl->restore_mem) {
		free(f);
		api_fault(r, 500, "out of memory");
		return;
	}
	struct vm_config *cfg = &ctl->cfg;
	config_defaults(cfg);
	cfg->serial_out = ctl->serial_out;
	cfg->boot_timer = ctl->opts->boot_timer;
	cfg->start_ns = ctl->opts->start_ns;
	if (snap_file_open(f, str(b, "snapshot_path"), cfg) < 0) {
		free(f);
		api_fault(r, 400, "Cannot load snapshot: %s", log_last_error());
		return;
	}
	cfg->restore_mem = ctl->restore_mem;
	cfg->track_dirty = json_is_true(json_object_get(b, "enable_diff_snapshots")) ||
			   json_is_true(json_object_get(b, "track_dirty_pages"));
	cfg->start_paused = !json_is_true(json_object_get(b, "resume_vm"));
	int status;
	struct vm *vm;
	if (vmm_create(&vm, cfg, ctl->loop, &status) < 0) {
		snap_file_close(f);
		free(f);
		api_fault(r, 400, "Cannot load snapshot: %s", log_last_error());
		return;
	}
	if (vmm_restore(vm, &f->r) < 0 || vmm_start(vm) < 0) {
		vmm_destroy(vm);
		snap_file_close(f);
		free(f);
		api_fault(r, 400, "Cannot load snapshot: %s", log_last_error());
		return;
	}
	ctl->snap = f;
	ctl->vcpus = cfg->cpus;
	ctl->mem_mib = cfg->mem_mib;
	ctl->track_dirty = cfg->track_dirty;
	ctl->vm = vm;
	if (ctl->vm_started)
		ctl->vm_started(ctl->opaque, vm);
}

/* ---------------------------------------------------------------- migration */

static const struct field migrate_fields[] = {
	{ "destination", F_STR, true },
	{ "downtime_ms", F_UINT, false },
	{ "bandwidth_mbps", F_UINT, false },
	{ "copy_disks", F_BOOL, false },
};

static int validate_migrate(json_t *b, const char *id, char *err, size_t len)
{
	int e = check_fields(b, migrate_fields, 4, err, len);
	if (!e && strncmp(str(b, "destination"), "tcp:", 4)) {
		snprintf(err, len, "destination %s: expected tcp:IPV4:PORT", str(b, "destination"));
		return -EINVAL;
	}
	/* Bounds that keep the rate arithmetic far from overflowing: an hour
	 * of downtime, a terabit per second. */
	static const struct { const char *name; json_int_t max; } lim[] = {
		{ "downtime_ms", MIGRATE_MAX_DOWNTIME_MS },
		{ "bandwidth_mbps", MIGRATE_MAX_BANDWIDTH_MBPS },
	};
	for (size_t i = 0; !e && i < sizeof(lim) / sizeof(lim[0]); i++) {
		json_t *v = json_object_get(b, lim[i].name);
		if (v && json_integer_value(v) > lim[i].max) {
			snprintf(err, len, "%s %lld: at most %lld", lim[i].name,
				 (long long)json_integer_value(v), (long long)lim[i].max);
			return -EINVAL;
		}
	}
	return e;
}

/* GET /migrate's object: "state", and while or after a migration its
 * progress (rates in bytes per second). */
static json_t *migrate_json(const struct migrate_status *st)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "state", json_string(migrate_state_name(st->state)));
	if (st->state == MIGRATE_IDLE)
		return o;
	const struct { const char *name; uint64_t v; } n[] = {
		{ "downtime_target_ms", st->opts.downtime_ms },
		{ "bandwidth_mbps", st->opts.bandwidth_mbps },
		{ "round", st->round },
		{ "bytes_sent", st->bytes_sent },
		{ "pages_left", st->pages_left },
		{ "dirty_rate", st->dirty_rate },
		{ "send_rate", st->send_rate },
		{ "expected_downtime_ms", st->expected_downtime_ms },
	};
	json_object_set_new(o, "phase", json_string(migrate_phase_name(st->phase)));
	json_object_set_new(o, "destination", json_string(st->destination));
	for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++)
		json_object_set_new(o, n[i].name, json_integer((json_int_t)n[i].v));
	/* Measured times in microseconds (integers: no float noise in JSON). */
	json_object_set_new(o, "total_us", json_integer((json_int_t)(st->total_ms * 1000)));
	if (st->state == MIGRATE_COMPLETED)
		json_object_set_new(o, "downtime_us",
				    json_integer((json_int_t)(st->downtime_ms * 1000)));
	if (st->state == MIGRATE_FAILED)
		json_object_set_new(o, "reason", json_string(st->reason));
	return o;
}

/* The migration ended (event loop): the PUT /migrate left for later gets
 * its answer. */
static void migrate_done(void *arg, int err, const struct migrate_status *st)
{
	struct api_ctl *ctl = arg;
	struct api_reply *r = ctl->later;
	if (!r)
		return; /* the server answered it already (mote is stopping) */
	ctl->later = NULL;
	r->later = false;
	if (err)
		api_fault(r, 400, "Cannot migrate: %s", st->reason);
	else
		api_json(r, migrate_json(st));
	if (ctl->answer)
		ctl->answer(ctl, r);
}

static void put_migrate(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	json_t *d = json_object_get(b, "downtime_ms"), *bw = json_object_get(b, "bandwidth_mbps");
	struct migrate_opts o = {
		.downtime_ms = d ? (uint64_t)json_integer_value(d) : MIGRATE_DEFAULT_DOWNTIME_MS,
		.bandwidth_mbps = bw ? (uint64_t)json_integer_value(bw) : 0,
		.copy_disks = json_is_true(json_object_get(b, "copy_disks")),
	};
	if (ctl->later) { /* the reply of the migration that runs */
		api_fault(r, 400, "Cannot migrate: a live migration is in progress");
		return;
	}
	/* Answered when the migration ends (migrate_done); meanwhile the API
	 * serves other requests, GET /migrate among them. */
	r->later = true;
	ctl->later = r;
	if (vmm_migrate(ctl->vm, str(b, "destination"), &o, migrate_done, ctl) < 0) {
		ctl->later = NULL;
		r->later = false;
		api_fault(r, 400, "Cannot migrate: %s", log_last_error());
	}
}

static void get_migrate(struct api_ctl *ctl, json_t *b, const char *id, struct api_reply *r)
{
	struct migrate_status st = { .state = MIGRATE_IDLE };
	if (ctl->vm)
		vmm_migrate_status(ctl->vm, &st);
	api_json(r, migrate_json(&st));
}

/* ---------------------------------------------------------------- the table */

#define NOT_YET(m, p, id, why) { m, p, id, API_ANY, why, NULL, NULL, NULL }

static const struct api_route routes[] = {
	{ "GET", "/", false, API_ANY, NULL, NULL, get_instance, "instance_info" },
	{ "GET", "/version", false, API_ANY, NULL, NULL, get_version, "vmm_version" },
	{ "GET", "/vm/config", false, API_ANY, NULL, NULL, get_vm_config, "vm_config" },
	{ "PUT", "/actions", false, API_ANY, NULL, validate_action, put_action, "actions" },
	{ "PATCH", "/vm", false, API_POST_BOOT, NULL, validate_vm, patch_vm, "vm" },
	{ "PUT", "/boot-source", false, API_PRE_BOOT, NULL, validate_boot, put_boot,
	  "boot_source" },
	{ "GET", "/machine-config", false, API_ANY, NULL, NULL, get_machine, "machine_cfg" },
	{ "PUT", "/machine-config", false, API_PRE_BOOT, NULL, validate_machine_put, put_machine,
	  "machine_cfg" },
	{ "PATCH", "/machine-config", false, API_PRE_BOOT, NULL, validate_machine, patch_machine,
	  "machine_cfg" },
	{ "PUT", "/drives/", true, API_PRE_BOOT, NULL, validate_drive, put_drive, "drive" },
	{ "PATCH", "/drives/", true, API_POST_BOOT, NULL, validate_drive_patch, patch_drive,
	  "drive" },
	{ "PUT", "/storage-migration", false, API_POST_BOOT, NULL, validate_storage_migration,
	  put_storage_migration, "storage_migration" },
	{ "GET", "/storage-migration", false, API_ANY, NULL, NULL, get_storage_migration,
	  "storage_migration" },
	{ "PUT", "/network-interfaces/", true, API_PRE_BOOT, NULL, api_netif_validate_put,
	  api_netif_put, "network" },
	{ "PATCH", "/network-interfaces/", true, API_POST_BOOT, NULL, api_netif_validate_patch,
	  api_netif_patch, "network" },
	{ "PUT", "/vsock", false, API_PRE_BOOT, NULL, validate_vsock, put_vsock, "vsock" },
	{ "PUT", "/entropy", false, API_PRE_BOOT, NULL, validate_entropy, put_entropy,
	  "entropy" },
	{ "PUT", "/logger", false, API_PRE_BOOT, NULL, validate_logger, put_logger, "logger" },
	{ "PUT", "/metrics", false, API_PRE_BOOT, NULL, validate_metrics, put_metrics,
	  "metrics" },
	{ "PUT", "/serial", false, API_PRE_BOOT, NULL, validate_serial, put_serial, "serial" },
	NOT_YET("GET", "/balloon", false, "the balloon device is not supported"),
	NOT_YET("PUT", "/balloon", false, "the balloon device is not supported"),
	NOT_YET("PATCH", "/balloon", false, "the balloon device is not supported"),
	NOT_YET("GET", "/balloon/statistics", false, "the balloon device is not supported"),
	NOT_YET("PATCH", "/balloon/statistics", false, "the balloon device is not supported"),
	NOT_YET("PATCH", "/balloon/hinting/start", false, "the balloon device is not supported"),
	NOT_YET("GET", "/balloon/hinting/status", false, "the balloon device is not supported"),
	NOT_YET("PATCH", "/balloon/hinting/stop", false, "the balloon device is not supported"),
	{ "PUT", "/snapshot/create", false, API_POST_BOOT, NULL, validate_snap_create,
	  put_snap_create, "snapshot_create" },
	{ "PUT", "/snapshot/load", false, API_PRE_BOOT, NULL, validate_snap_load, put_snap_load,
	  "snapshot_load" },
	{ "PUT", "/migrate", false, API_POST_BOOT, NULL, validate_migrate, put_migrate, "migrate" },
	{ "GET", "/migrate", false, API_ANY, NULL, NULL, get_migrate, "migrate" },
	NOT_YET("GET", "/mmds", false, "MMDS is not supported"),
	NOT_YET("PUT", "/mmds", false, "MMDS is not supported"),
	NOT_YET("PATCH", "/mmds", false, "MMDS is not supported"),
	NOT_YET("PUT", "/mmds/config", false, "MMDS is not supported"),
	NOT_YET("PUT", "/cpu-config", false, "custom CPU templates are not supported"),
	NOT_YET("GET", "/hotplug/memory", false, "memory hotplug is not supported"),
	NOT_YET("PUT", "/hotplug/memory", false, "memory hotplug is not supported"),
	NOT_YET("PATCH", "/hotplug/memory", false, "memory hotplug is not supported"),
	NOT_YET("PUT", "/pmem/", true, "virtio-pmem is not supported"),
	NOT_YET("PATCH", "/pmem/", true, "virtio-pmem is not supported"),
};

const struct api_route *api_route_find(const char *method, const char *url, const char **id)
{
	*id = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct api_route *r = &routes[i];
		if (strcmp(method, r->method))
			continue;
		size_t n = strlen(r->path);
		if (r->has_id ? (!strncmp(url, r->path, n) && url[n]) : !strcmp(url, r->path)) {
			*id = r->has_id ? url + n : NULL;
			return r;
		}
	}
	return NULL;
}

void api_routes_print(void)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		printf("%s %s%s %s\n", routes[i].method, routes[i].path, routes[i].has_id ? "{id}" : "",
		       routes[i].unsupported ? "unsupported" : "supported");
}

int api_request_parse(struct api_request *req, const char *method, const char *uri,
		      const char *body, size_t len, char *err, size_t errlen)
{
	memset(req, 0, sizeof(*req));
	if (!method) {
		snprintf(err, errlen, "only GET, PUT and PATCH are served");
		return 405;
	}
	char url[512];
	size_t ulen = strcspn(uri, "?#");
	if (ulen >= sizeof(url)) {
		snprintf(err, errlen, "the path is too long");
		return 400;
	}
	memcpy(url, uri, ulen);
	url[ulen] = '\0';
	const char *id;
	const struct api_route *route = api_route_find(method, url, &id);
	if (!route) {
		snprintf(err, errlen, "no route %s %s", method, url);
		return 400;
	}
	if (route->unsupported) {
		snprintf(err, errlen, "%s", route->unsupported);
		return 400;
	}
	if (id && strlen(id) > API_ID_MAX) {
		snprintf(err, errlen, "the id in the path is too long");
		return 400;
	}
	if (id)
		snprintf(req->id, sizeof(req->id), "%s", id);
	if (route->validate) {
		if (len > API_MAX_BODY) {
			snprintf(err, errlen,
				 "the request body of %zu bytes is larger than the limit of %d", len,
				 API_MAX_BODY);
			return 400;
		}
		json_error_t jerr;
		json_t *j = body && len ? json_loadb(body, len, 0, &jerr) : NULL;
		if (!j) {
			if (body && len)
				snprintf(err, errlen, "invalid JSON: %s", jerr.text);
			else
				snprintf(err, errlen, "a JSON body is required");
			return 400;
		}
		if (route->validate(j, req->id, err, errlen) < 0) {
			json_decref(j);
			return 400;
		}
		req->body = j;
	}
	req->route = route;
	return 0;
}

void api_apply(struct api_ctl *ctl, const struct api_route *route, json_t *body,
	       const char *id, struct api_reply *r)
{
	r->status = 204;
	r->body = NULL;
	size_t n = (size_t)(route - routes);
	ctl->metrics.route_count[n]++;
	if (route->when == API_PRE_BOOT && ctl->vm) {
		api_fault(r, 400, "%s %s%s is only valid before the microVM starts", route->method,
			  route->path, route->has_id ? id : "");
		return;
	}
	if (route->when == API_POST_BOOT && !ctl->vm) {
		api_fault(r, 400, "%s %s is only valid after the microVM starts", route->method,
			  route->path);
		return;
	}
	route->apply(ctl, body, id, r);
	if (r->status >= 400)
		ctl->metrics.route_fails[n]++;
}

_Static_assert(ARRAY_SIZE(routes) <= API_METRICS_ROUTES, "API_METRICS_ROUTES is too small");

void api_routes_metrics(const struct api_metrics *m, const struct metrics_sink *sink)
{
	for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
		const struct api_route *r = &routes[i];
		if (!r->metric)
			continue;
		char group[32], name[64];
		snprintf(group, sizeof(group), "%s_api_requests", r->method);
		for (char *c = group; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
		snprintf(name, sizeof(name), "%s_count", r->metric);
		metric(sink, group, name, m->route_count[i]);
		if (strcmp(r->method, "GET")) {
			snprintf(name, sizeof(name), "%s_fails", r->metric);
			metric(sink, group, name, m->route_fails[i]);
		}
	}
}

/* ---------------------------------------------------------------- config file */

/* One section of the file through the same validate/apply as the API. */
static int section(struct api_ctl *ctl, const char *method, const char *path, json_t *body,
		   const char *id)
{
	char url[256], err[512];
	snprintf(url, sizeof(url), "%s%s", path, id ? id : "");
	const char *rid;
	const struct api_route *route = api_route_find(method, url, &rid);
	if (!route || route->unsupported) {
		log_error("config file: %s", route ? route->unsupported : "unknown section");
		return -EINVAL;
	}
	if (route->validate && route->validate(body, rid, err, sizeof(err)) < 0) {
		log_error("config file: %s: %s", path, err);
		return -EINVAL;
	}
	struct api_reply r;
	api_apply(ctl, route, body, rid, &r);
	if (r.status >= 300) {
		log_error("config file: %s: %s", path, r.body ? r.body : "refused");
		free(r.body);
		return -EINVAL;
	}
	free(r.body);
	return 0;
}

int api_config_file(struct api_ctl *ctl, const char *text, size_t len)
{
	json_error_t jerr;
	json_t *root = json_loadb(text, len, 0, &jerr);
	if (!json_is_object(root)) {
		log_error("config file: not a JSON object (line %d: %s)", jerr.line, jerr.text);
		json_decref(root);
		return -EINVAL;
	}
	int err = 0;
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v) {
		if (err)
			break;
		/* Empty sections, as GET /vm/config writes them. */
		if (json_is_null(v) && (!strcmp(key, "vsock") || !strcmp(key, "metrics") ||
					!strcmp(key, "logger") || !strcmp(key, "entropy") ||
					!strcmp(key, "balloon") || !strcmp(key, "mmds-config")))
			continue;
		if (!strcmp(key, "metrics"))
			err = section(ctl, "PUT", "/metrics", v, NULL);
		else if (!strcmp(key, "boot-source"))
			err = section(ctl, "PUT", "/boot-source", v, NULL);
		else if (!strcmp(key, "machine-config"))
			err = section(ctl, "PUT", "/machine-config", v, NULL);
		else if (!strcmp(key, "entropy"))
			err = section(ctl, "PUT", "/entropy", v, NULL);
		else if (!strcmp(key, "logger"))
			err = section(ctl, "PUT", "/logger", v, NULL);
		else if (!strcmp(key, "serial"))
			err = section(ctl, "PUT", "/serial", v, NULL);
		else if (!strcmp(key, "vsock"))
			err = section(ctl, "PUT", "/vsock", v, NULL);
		else if (!strcmp(key, "drives") && json_is_array(v)) {
			size_t i;
			json_t *d;
			json_array_foreach(v, i, d) {
				const char *did = json_string_value(json_object_get(d, "drive_id"));
				if (!did) {
					log_error("config file: drives[%zu] has no drive_id", i);
					err = -EINVAL;
					break;
				}
				if ((err = section(ctl, "PUT", "/drives/", d, did)))
					break;
			}
		} else if (!strcmp(key, "network-interfaces") && json_is_array(v)) {
			size_t i;
			json_t *n;
			json_array_foreach(v, i, n) {
				const char *nid = json_string_value(json_object_get(n, "iface_id"));
				if (!nid) {
					log_error("config file: network-interfaces[%zu] has no iface_id", i);
					err = -EINVAL;
					break;
				}
				if ((err = section(ctl, "PUT", "/network-interfaces/", n, nid)))
					break;
			}
		} else {
			log_error("config file: section '%s' is not supported", key);
			err = -EINVAL;
		}
	}
	json_decref(root);
	if (err)
		return err;
	struct api_reply r = { 0 };
	instance_start(ctl, &r);
	if (r.status >= 300) {
		log_error("config file: %s", r.body ? r.body : "cannot start");
		free(r.body);
		return -EINVAL;
	}
	return 0;
}

void api_ctl_fini(struct api_ctl *ctl)
{
	if (ctl->snap) {
		snap_file_close(ctl->snap);
		free(ctl->snap);
	}
	free(ctl->restore_mem);
	api_metrics_fini(&ctl->metrics);
	free(ctl->kernel);
	free(ctl->initrd);
	free(ctl->boot_args);
	free(ctl->serial_out);
	free(ctl->vsock_uds);
	free(ctl->vsock_id);
	for (unsigned i = 0; i < ctl->nr_drives; i++) {
		free(ctl->drives[i].path);
		free(ctl->drives[i].partuuid);
	}
}
