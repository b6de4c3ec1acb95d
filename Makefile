# mote — top-level build. `make` builds build/mote and the test guests;
# `make check` runs every test tier; `make run` boots the default guest.
CC      ?= cc
BUILD   := build
CSTD    := -std=gnu11
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT     ?= -O2 -g
CFLAGS  += $(CSTD) $(WARN) $(OPT) -D_GNU_SOURCE -Isrc -MMD -MP
LDLIBS  += -lpthread

SRCS := $(shell find src -name '*.c' | sort)
OBJS := $(SRCS:%.c=$(BUILD)/obj/%.o)

.PHONY: all clean check check-unit check-guests check-lab check-asan run smoke guest guests fmt lint
all: $(BUILD)/mote guests

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

clean:
	rm -rf $(BUILD)/obj $(BUILD)/mote $(BUILD)/guests $(BUILD)/unit
