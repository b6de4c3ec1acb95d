# mote — top-level build. `make` builds build/mote and the test guests;
# `make check` runs every test tier; `make run` boots the default guest.
CC      ?= cc
BUILD   := build
CSTD    := -std=gnu11
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT     ?= -O2 -g
CFLAGS  += $(CSTD) $(WARN) $(OPT) -D_GNU_SOURCE -Isrc -MMD -MP
# libslirp is dlopen()ed by backend/slirp.c when `--net user` is used.
LDLIBS  += -levent_extra -levent_core -ljansson -luring -lpthread

# backend/slirp_none.c replaces backend/slirp.c in build/mote-static only.
SRCS := $(shell find src -name '*.c' ! -name slirp_none.c | sort)
OBJS := $(SRCS:%.c=$(BUILD)/obj/%.o)

.PHONY: all clean check check-unit check-integration check-asan run smoke guest guests fmt lint
all: $(BUILD)/mote guests

PYTEST := /usr/bin/python3 -m pytest
ASAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

$(BUILD)/mote: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

-include $(OBJS:.o=.d)
-include tests/guest/guests.mk
-include guest/guest.mk
-include tests/lab/lab.mk
-include tests/unit/unit.mk
-include tests/fuzz/fuzz.mk
-include tests/sandbox/sandbox.mk

# make check: unit tests, then integration tests (test guests directly on
# /dev/kvm; Linux guests directly on hardware KVM or in the lab on PVM), then
# every fuzz harness for 30 s (tests/fuzz/fuzz.mk). The unit tests also run
# under valgrind (check-valgrind, ~50 s here).
check: all guest
	$(MAKE) --no-print-directory check-unit
	$(MAKE) --no-print-directory check-valgrind
	$(MAKE) --no-print-directory check-integration
	$(MAKE) --no-print-directory check-fuzz

check-integration: all guest
	$(PYTEST) -q tests/integration

# The same suites under ASan+UBSan (mote and the unit tests rebuilt with
# sanitizers; Linux-in-the-lab tests use the normal binary, as the lab has no
# sanitizer runtime).
check-asan: guests
	$(MAKE) --no-print-directory check-unit-asan
	$(MAKE) --no-print-directory BUILD=build/asan OPT="-O1 -g $(ASAN_FLAGS)" \
		LDFLAGS="$(ASAN_FLAGS)" build/asan/mote
	MOTE_BIN=$(CURDIR)/build/asan/mote ASAN_OPTIONS=detect_leaks=1 \
		UBSAN_OPTIONS=print_stacktrace=1 $(PYTEST) -q -m "not lab" tests/integration

run: all guest
	@scripts/boot-default

smoke: all guest
	@scripts/boot-default --smoke

fmt:
	clang-format -i $$(find src tests/unit tests/guest -name '*.[ch]')

lint:
	clang-tidy $$(find src -name '*.c') -- $(CSTD) -D_GNU_SOURCE -Isrc
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
		--suppress=missingIncludeSystem -Isrc src

clean:
	rm -rf $(BUILD)/obj $(BUILD)/mote $(BUILD)/mote-static $(BUILD)/test $(BUILD)/guests $(BUILD)/unit
