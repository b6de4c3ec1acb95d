# tests/fuzz/fuzz.mk — libFuzzer harnesses (included by the top-level Makefile).
#
#   make fuzz-NAME [FUZZ_SECONDS=N]   builds build/fuzz/fuzz_NAME with clang
#       (-fsanitize=fuzzer,address,undefined) and runs it for FUZZ_SECONDS on
#       the committed seeds in tests/fuzz/corpus/NAME/ (read only) plus what it
#       finds, kept in build/fuzz/corpus/NAME/; the run's output goes to
#       build/fuzz/NAME.log and one line reports its executions; a crash is
#       written to build/fuzz/crash-* (leak-*, timeout-*) and fails the
#       target. Add a crash that was fixed to tests/fuzz/corpus/NAME/ so that
#       every later run replays it.
#   make fuzz [FUZZ_SECONDS=N]        every harness, one after the other
#       (-j2: two at a time); FUZZ_SECONDS defaults to 10
#   make check-fuzz                   every harness for 30 s, two at a time
#       (what `make check` and CI run)
#   make fuzz-build                   builds every harness, runs none
#
# tests/fuzz/fuzz_NAME.c links the source files listed in FUZZ_SRCS_NAME (and
# the libraries in FUZZ_LIBS_NAME, the libFuzzer options in FUZZ_OPTS_NAME):
# a new harness is its file plus those lines.

FUZZ_DIR     := tests/fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 10
FUZZ_CHECK_SECONDS ?= 30
FUZZ_NAMES   := $(sort $(patsubst $(FUZZ_DIR)/fuzz_%.c,%,$(wildcard $(FUZZ_DIR)/fuzz_*.c)))
FUZZ_CFLAGS   = $(CSTD) $(WARN) -O1 -g -D_GNU_SOURCE -Isrc -MMD -MP \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

FUZZ_SRCS_virtqueue := src/virtio/virtqueue.c src/mem/guest_mem.c
FUZZ_OPTS_virtqueue := -max_len=65552  # 16-byte header + 64 KiB of guest RAM

FUZZ_SRCS_blk := src/virtio/blk.c src/virtio/virtio.c src/virtio/virtqueue.c \
		 src/backend/block.c src/mem/guest_mem.c src/util/evloop.c src/util/log.c \
		 src/util/util.c src/util/ratelimit.c src/virtio/limit.c src/backend/mirror.c \
		 src/util/worker.c src/sandbox/seccomp.c
FUZZ_LIBS_blk := -luring
FUZZ_OPTS_blk := -max_len=69648  # 16-byte header + 64 KiB + 4 KiB of guest RAM

FUZZ_SRCS_pci := src/bus/pci.c src/bus/msix.c src/bus/bus.c src/virtio/pci.c \
		 src/virtio/virtio.c src/virtio/virtqueue.c src/virtio/rng.c \
		 src/mem/guest_mem.c src/util/evloop.c src/util/log.c src/util/util.c \
		 src/util/ratelimit.c src/virtio/limit.c
FUZZ_OPTS_pci := -max_len=1200  # up to 100 accesses of 12 bytes

FUZZ_SRCS_vsock := src/virtio/vsock.c src/virtio/vsock_conn.c src/backend/vsock_uds.c \
		   src/virtio/virtio.c src/virtio/virtqueue.c src/mem/guest_mem.c src/util/evloop.c \
		   src/util/log.c src/util/util.c
FUZZ_OPTS_vsock := -max_len=65552  # 16-byte header + 64 KiB of guest RAM

FUZZ_SRCS_boot := src/arch/x86/boot.c src/arch/x86/elf.c src/arch/x86/e820.c \
		  src/mem/guest_mem.c src/util/log.c src/util/util.c
FUZZ_OPTS_boot := -max_len=65536  # 4-byte header + kernel (+ initrd)

FUZZ_SRCS_api := src/api/routes.c src/api/netif.c src/api/metrics.c src/config.c tests/fuzz/fake_vmm.c \
		 src/util/ratelimit.c \
		 src/util/evloop.c src/util/log.c src/util/util.c
FUZZ_LIBS_api := -ljansson
FUZZ_OPTS_api := -max_len=16384 -dict=tests/fuzz/api.dict

FUZZ_SRCS_flags := src/config.c src/api/server.c src/api/routes.c src/api/netif.c src/api/metrics.c \
		   src/util/ratelimit.c src/sandbox/seccomp.c \
		   tests/fuzz/fake_vmm.c src/util/evloop.c src/util/log.c src/util/util.c
FUZZ_LIBS_flags := -levent_extra -levent_core -ljansson -lpthread
FUZZ_OPTS_flags := -max_len=4096 -dict=tests/fuzz/flags.dict

FUZZ_SRCS_net := src/virtio/net.c src/virtio/virtio.c src/virtio/virtqueue.c src/mem/guest_mem.c \
		 src/util/evloop.c src/util/log.c src/util/util.c src/util/ratelimit.c
FUZZ_OPTS_net := -max_len=65552  # 16-byte header + 64 KiB of guest RAM

FUZZ_SRCS_snapshot := tests/fuzz/fake_machine.c src/snap/stream.c src/snap/cpu.c src/snap/devices.c src/dev/serial.c \
		      src/dev/i8042.c src/bus/pci.c src/bus/msix.c src/bus/bus.c src/virtio/pci.c \
		      src/virtio/virtio.c src/virtio/virtqueue.c src/virtio/rng.c \
		      src/mem/guest_mem.c src/util/evloop.c src/util/log.c src/util/util.c \
		      src/util/ratelimit.c src/virtio/limit.c

FUZZ_SRCS_migrate := tests/fuzz/fake_machine.c src/snap/migrate.c src/snap/snapshot.c \
		     src/backend/mirror.c src/util/worker.c src/sandbox/seccomp.c src/config.c \
		     $(filter-out tests/fuzz/fake_machine.c,$(FUZZ_SRCS_snapshot))
FUZZ_LIBS_migrate := -lpthread
FUZZ_OPTS_migrate := -max_len=1048576

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

# $(1): harness name
define fuzz_target
$(BUILD)/fuzz/fuzz_$(1): $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(FUZZ_DIR)/fuzz_$(1).c $(FUZZ_SRCS_$(1)))
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ $$^ $$(FUZZ_LIBS_$(1))

.PHONY: fuzz-$(1)
fuzz-$(1): $(BUILD)/fuzz/fuzz_$(1)
	@mkdir -p $(BUILD)/fuzz/corpus/$(1)
	@echo "fuzz $(1): $$(FUZZ_SECONDS) s (log: $(BUILD)/fuzz/$(1).log)"
	@$$< -max_total_time=$$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
		-artifact_prefix=$(BUILD)/fuzz/ $$(FUZZ_OPTS_$(1)) \
		$(BUILD)/fuzz/corpus/$(1) $(FUZZ_DIR)/corpus/$(1) > $(BUILD)/fuzz/$(1).log 2>&1; \
	st=$$$$?; runs=$$$$(sed -n 's/^stat::number_of_executed_units: *//p' $(BUILD)/fuzz/$(1).log); \
	if [ $$$$st -ne 0 ]; then tail -n 60 $(BUILD)/fuzz/$(1).log; \
		echo "fuzz $(1): FAILED (exit $$$$st) after $$$${runs:-?} runs"; exit 1; fi; \
	echo "fuzz $(1): $$$${runs:-?} runs in $$(FUZZ_SECONDS) s, no crash"
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_target,$(n))))
-include $(patsubst %.c,$(BUILD)/fuzz/obj/%.d,$(sort $(foreach n,$(FUZZ_NAMES),$(FUZZ_DIR)/fuzz_$(n).c $(FUZZ_SRCS_$(n)))))

.PHONY: fuzz check-fuzz fuzz-build clean-fuzz
fuzz: $(addprefix fuzz-,$(FUZZ_NAMES))

check-fuzz: fuzz-build
	$(MAKE) --no-print-directory -j2 FUZZ_SECONDS=$(FUZZ_CHECK_SECONDS) fuzz

fuzz-build: $(addprefix $(BUILD)/fuzz/fuzz_,$(FUZZ_NAMES))

clean: clean-fuzz
clean-fuzz:
	rm -rf $(BUILD)/fuzz
