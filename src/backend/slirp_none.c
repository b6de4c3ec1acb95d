/* net_slirp_open for builds without libslirp: build/mote-static (what `mote
 * jail` copies into a jail) cannot link it, since Debian ships libslirp and
 * its GLib only as shared libraries. Only that build compiles this file
 * (tests/sandbox/sandbox.mk); build/mote uses backend/slirp.c. */
#include <errno.h>

#include "backend/net.h"
#include "util/log.h"

int net_slirp_open(const struct vm_net *net, struct evloop *loop, struct net_backend **out)
{
	(void)net;
	(void)loop;
	*out = NULL;
	log_error("--net user: this mote is linked statically, without libslirp; "
		  "use a tap (--net tap=NAME), or the dynamically linked build/mote");
	return -ENOTSUP;
}
