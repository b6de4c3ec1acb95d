# tests/sandbox/sandbox.mk (included by the top-level Makefile)
#
#   build/mote-static     mote linked statically: what `mote jail` copies
#                         into a jail, which holds no shared libraries
#   build/test/forbid.so  the tests' LD_PRELOAD shim that makes a thread
#                         issue a forbidden system call (never in mote)

all: $(BUILD)/mote-static $(BUILD)/test/forbid.so

# glibc warns that getaddrinfo's helpers need its shared NSS modules when
# linked statically; libevent links them, mote never calls them.
# Debian ships libslirp (and GLib) only as shared libraries: the static
# build has no user-mode networking (backend/slirp_none.c says so).
STATIC_OBJS := $(filter-out $(BUILD)/obj/src/backend/slirp.o,$(OBJS)) \
	       $(BUILD)/obj/src/backend/slirp_none.o
$(BUILD)/mote-static: $(STATIC_OBJS)
	@rm -f $@.tmp
	$(CC) $(CFLAGS) $(LDFLAGS) -static -o $@.tmp $^ $(LDLIBS) 2>$@.log || { cat $@.log >&2; exit 1; }
	@grep -v 'statically linked applications requires at runtime\|(evutil.o): in function' $@.log >&2 || true
	@rm -f $@.log
	@mv $@.tmp $@

$(BUILD)/test/forbid.so: tests/sandbox/forbid.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -O2 -fPIC -shared -o $@ $< -ldl
