/* The REST API's route table and the state each request acts on. A route
 * has two halves: validate() runs on the API thread (the body as untrusted
 * JSON: object, known fields, types, ranges) and apply() on the event loop
 * (the configuration or the VM). docs/API.md mirrors the table; a test keeps
 * them equal (`mote --api-routes` prints it). */
#ifndef MOTE_API_ROUTES_H
#define MOTE_API_ROUTES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "api/metrics.h"
#include "config.h"

#define API_MAX_BODY 51200 /* Firecracker's default payload limit */
#define API_ID_MAX 64

struct vm;
struct snap_file;

struct api_drive {
	char id[API_ID_MAX + 1];
	char *path;
	char *partuuid;
	bool read_only, root;
	struct ratelimit_cfg rl;
	unsigned index;         /* its place in the started VM's disks */
};

/* Everything the event loop knows about the instance. */
struct api_ctl {
	const struct api_options *opts;
	struct evloop *loop;
	char *kernel, *initrd, *boot_args;
	unsigned vcpus;
	uint64_t mem_mib;
	bool track_dirty;
	struct api_drive drives[CONFIG_MAX_DISKS];
	unsigned nr_drives;
	bool rng;
	struct ratelimit_cfg rng_rl;
	struct vm_net nets[CONFIG_MAX_NETS];
	unsigned nr_nets;
	char *serial_out;
	char *vsock_uds, *vsock_id;  /* PUT /vsock; vsock_uds NULL: no device */
	uint32_t vsock_cid;
	char cmdline[4096];          /* composed at InstanceStart */
	struct vm_config cfg;        /* built at InstanceStart */
	struct vm *vm;
	struct snap_file *snap;      /* the loaded snapshot (its config's strings) */
	char *restore_mem;
	struct api_metrics metrics;
	void (*vm_started)(void *opaque, struct vm *vm);
	void *opaque;
	/* A reply an apply left for later (PUT /migrate answers when the
	 * migration ends), or NULL; answer() hands it back to the server once
	 * filled (event loop). NULL answer: no server (config file, fuzzer). */
	struct api_reply *later;
	void (*answer)(struct api_ctl *ctl, struct api_reply *r);
};

struct api_reply {
	int status;   /* HTTP status */
	char *body;   /* malloc'd JSON, or NULL for none */
	bool later;   /* not answered yet: ctl->later points here */
};

enum api_when { API_ANY, API_PRE_BOOT, API_POST_BOOT };

struct api_route {
	const char *method;
	const char *path;        /* "/drives/" with has_id: the rest is the id */
	bool has_id;
	enum api_when when;
	const char *unsupported; /* non-NULL: refused with this message */
	/* API thread: 0, or -EINVAL with a message in err. */
	int (*validate)(json_t *body, const char *id, char *err, size_t len);
	/* Event loop. */
	void (*apply)(struct api_ctl *ctl, json_t *body, const char *id, struct api_reply *r);
	/* Metrics: <method>_api_requests.<metric>_count and _fails (PUT and
	 * PATCH), Firecracker's names where it has the request. */
	const char *metric;
};

/* The route for method and url (*id set to the path's id part), or NULL. */
const struct api_route *api_route_find(const char *method, const char *url, const char **id);
/* Prints the table: "METHOD PATH supported|unsupported". */
void api_routes_print(void);

/* One request as the API thread hands it to the event loop. */
struct api_request {
	const struct api_route *route;
	char id[API_ID_MAX + 1]; /* the path's id part, "" for routes without one */
	json_t *body;            /* validated; NULL for routes that take none */
};

/* The API thread's half of a request, without the HTTP server: finds the
 * route for method (NULL: one mote does not serve) and uri (a query string
 * is ignored), refuses unsupported routes and over-long ids, then parses
 * body (len bytes; NULL when empty) as JSON and validates it. 0 with *req
 * set (the caller owns req->body); or the HTTP status to answer (400 or
 * 405) with the reason in err. */
int api_request_parse(struct api_request *req, const char *method, const char *uri,
		      const char *body, size_t len, char *err, size_t errlen);

/* Validates and applies one request, checking the state rule first
 * (event loop). */
void api_apply(struct api_ctl *ctl, const struct api_route *route, json_t *body,
	       const char *id, struct api_reply *r);

/* Helpers for replies. */
void api_fault(struct api_reply *r, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void api_json(struct api_reply *r, json_t *obj); /* 200 with obj (stolen) */

/* Applies a Firecracker configuration file (JSON text) then starts the VM.
 * 0 or -EINVAL after logging why. */
int api_config_file(struct api_ctl *ctl, const char *text, size_t len);

void api_ctl_fini(struct api_ctl *ctl);

/* Firecracker's RateLimiter object (null: no limit) into a configuration;
 * 0, or -EINVAL with err set. */
int api_parse_rate_limiter(json_t *rl, struct ratelimit_cfg *out, char *err, size_t len);
json_t *api_rate_limiter_json(const struct ratelimit_cfg *rl);
/* /network-interfaces/{iface_id} (api/netif.c): PUT before boot, PATCH
 * (rate limiters) after; the route table's validate/apply pairs. */
int api_netif_validate_put(json_t *body, const char *id, char *err, size_t len);
void api_netif_put(struct api_ctl *ctl, json_t *body, const char *id, struct api_reply *r);
int api_netif_validate_patch(json_t *body, const char *id, char *err, size_t len);
void api_netif_patch(struct api_ctl *ctl, json_t *body, const char *id, struct api_reply *r);
/* The interfaces as GET /vm/config lists them. */
json_t *api_netif_json(const struct api_ctl *ctl);

#endif
