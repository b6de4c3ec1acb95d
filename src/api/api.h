/* The drop-in front end: Firecracker's command-line flags and REST API
 * (HTTP/1.1 over a Unix socket), so that tools that drive Firecracker can
 * drive mote unchanged. docs/API.md lists every endpoint and mote's status.
 *
 * Threads: the API thread (libevent's evhttp) parses and validates a
 * request into a command and queues it to the event loop, which applies it
 * and hands the reply back for the API thread to send; the API thread never
 * waits for the loop. Only the event loop touches the configuration or the
 * VM. */
#ifndef MOTE_API_H
#define MOTE_API_H

#include <stdbool.h>
#include <stdint.h>

#include "util/evloop.h"
#include "util/log.h"

struct vm;

struct api_options {
	const char *api_sock;     /* NULL with --no-api */
	const char *config_file;  /* Firecracker's JSON config, or NULL */
	const char *id;           /* instance id, "anonymous-instance" by default */
	const char *log_path;
	enum log_level level;
	bool level_set;
	const char *metrics_path;
	bool boot_timer;
	uint64_t start_ns;        /* CLOCK_MONOTONIC at start, for the boot timer */
	bool no_seccomp;
	const char *seccomp_filter;
};

/* Parses Firecracker's flags. 0; 1 after printing help; -EINVAL after one
 * line naming the bad flag. */
int api_parse_options(struct api_options *o, int argc, char **argv);

/* Serves the API (and/or boots from the config file) on loop until the VM
 * stops. vm_started is told about the VM once it runs (so signals can stop
 * it). Returns mote's exit status, or -1 when the loop ended before a VM
 * ever ran (a signal: the caller knows its status). */
int api_run(const struct api_options *o, struct evloop *loop,
	    void (*vm_started)(void *opaque, struct vm *vm), void *opaque);

#endif
