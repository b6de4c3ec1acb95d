/* libFuzzer harness for the REST API's request -> configuration path
 * (src/api/routes.c), without the HTTP server or a VM: each input is a
 * sequence of requests, each parsed and validated as the API thread does
 * (api_request_parse) and applied to one instance as the event loop does
 * (api_apply), up to InstanceStart, whose composed struct vm_config goes to
 * fake_vmm.c's vmm_create() for checking; later requests then meet a
 * "running" VM (pause, resume, SendCtrlAltDel, FlushMetrics). A chunk that
 * starts "CONFIG" is a Firecracker config file for api_config_file().
 *
 * Oracles: ASan/UBSan and LeakSanitizer (every input ends with the
 * instance torn down, so anything a request leaked is reported); every
 * reply has a status mote uses and, if any, a body that is JSON; the
 * instance never holds more drives than mote supports or two root drives;
 * fake_vmm.c checks the composed configuration.
 *
 * Input: chunks separated by "\n===\n"; a chunk is "METHOD URI\n" and the
 * body (no body when the chunk has no newline). METHOD other than GET, PUT
 * or PATCH is a method mote does not serve. Bodies are JSON bytes as sent;
 * the harness only points "log_path" and "metrics_path" at /dev/null after
 * parsing (the fuzzer must not create files). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/routes.h"
#include "util/log.h"
#include "vmm.h"

#define SEP "\n===\n"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct evloop loop;
static struct api_options opts;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0 || evloop_init(&loop) < 0)
		abort();
	log_set_fd(null);
	opts.id = "fuzz-instance";
	return 0;
}

/* Points every file a request would create or append to at /dev/null. */
static void sandbox(json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;
	if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			sandbox(v);
		return;
	}
	json_object_foreach(j, key, v) {
		if ((!strcmp(key, "log_path") || !strcmp(key, "metrics_path")) && json_is_string(v))
			json_string_set(v, "/dev/null");
		else
			sandbox(v);
	}
}

static void check_reply(const struct api_reply *r)
{
	if (r->status != 200 && r->status != 204 && r->status != 400 && r->status != 500)
		abort();
	if ((r->status == 204) != (r->body == NULL))
		abort();
	if (r->body) {
		json_t *j = json_loads(r->body, 0, NULL);
		if (!j)
			abort();
		json_decref(j);
	}
}

static void check_ctl(const struct api_ctl *ctl)
{
	unsigned roots = 0;
	if (ctl->nr_drives > CONFIG_MAX_DISKS || ctl->vcpus < 1 || ctl->vcpus > 254 ||
	    ctl->mem_mib < CONFIG_MIN_MEM_MIB)
		abort();
	for (unsigned i = 0; i < ctl->nr_drives; i++)
		roots += ctl->drives[i].root;
	if (roots > 1)
		abort();
}

static void config_file(struct api_ctl *ctl, const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	if (!j) {
		api_config_file(ctl, text, len); /* refused before any file is opened */
		return;
	}
	sandbox(j);
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s)
		api_config_file(ctl, s, strlen(s));
	free(s);
}

static void request(struct api_ctl *ctl, const char *chunk, size_t len)
{
	const char *nl = memchr(chunk, '\n', len);
	size_t line = nl ? (size_t)(nl - chunk) : len;
	const char *body = nl ? nl + 1 : NULL;
	size_t blen = nl ? len - line - 1 : 0;
	if (line >= 6 && !memcmp(chunk, "CONFIG", 6)) {
		config_file(ctl, body ? body : "", blen);
		return;
	}
	char head[600];
	if (line >= sizeof(head))
		return;
	memcpy(head, chunk, line);
	head[line] = '\0';
	char *uri = strchr(head, ' ');
	if (!uri)
		return;
	*uri++ = '\0';
	const char *method = !strcmp(head, "GET") || !strcmp(head, "PUT") || !strcmp(head, "PATCH")
				     ? head : NULL;
	struct api_request req;
	char err[600];
	int status = api_request_parse(&req, method, uri, blen ? body : NULL, blen, err,
				       sizeof(err));
	if (status) {
		if ((status != 400 && status != 405) || !err[0] || req.body)
			abort();
		return;
	}
	if (!req.route || !req.route->apply || (req.route->validate && !req.body))
		abort();
	if (req.body)
		sandbox(req.body);
	struct api_reply r;
	api_apply(ctl, req.route, req.body, req.id, &r);
	check_reply(&r);
	free(r.body);
	json_decref(req.body);
	check_ctl(ctl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	log_set_level(LOG_WARN);
	struct api_ctl ctl = { .opts = &opts, .loop = &loop, .vcpus = 1,
			       .mem_mib = CONFIG_DEFAULT_MEM_MIB };
	api_metrics_init(&ctl.metrics, &loop, &ctl.vm);
	/* A copy, NUL-terminated: chunks are handed on as (pointer, length). */
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *p = buf, *end = buf + size; p <= end;) {
		char *sep = memmem(p, (size_t)(end - p), SEP, strlen(SEP));
		size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);
		if (len)
			request(&ctl, p, len);
		if (!sep)
			break;
		p = sep + strlen(SEP);
	}
	free(buf);
	api_metrics_flush(&ctl.metrics);
	if (ctl.vm)
		vmm_destroy(ctl.vm);
	ctl.vm = NULL;
	api_ctl_fini(&ctl);
	return 0;
}
