# tests/unit/unit.mk — cmocka unit tests (included by the top-level Makefile).
#
#   make check-unit        builds build/unit/test_NAME and runs them all
#   make check-unit-asan   the same tests with ASan+UBSan, in build/unit-asan/
#   make check-valgrind    the plain build's tests under valgrind: any memory
#                          error or leak fails
#
# tests/unit/test_NAME.c links the source file it tests plus the few small
# dependencies listed in UNIT_SRCS_NAME below; everything else is faked in the
# test itself. A test file without a UNIT_SRCS_ line links no src/ file.
# Objects are rebuilt when the compiler or flags change (build/unit*/.flags),
# so `make check-unit` then `make CC=clang check-unit` really uses clang.

UNIT_DIR    := tests/unit
UNIT_NAMES  := $(sort $(patsubst $(UNIT_DIR)/test_%.c,%,$(wildcard $(UNIT_DIR)/test_*.c)))
UNIT_CFLAGS  = $(CSTD) $(WARN) $(OPT) -D_GNU_SOURCE -Isrc -I$(UNIT_DIR) -MMD -MP
UNIT_LDLIBS := -lcmocka -lpthread -luring -ljansson
UNIT_ASAN   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

UNIT_UTIL            := src/util/log.c src/util/util.c
UNIT_SRCS_guest_mem  := src/mem/guest_mem.c
UNIT_SRCS_bus        := src/bus/bus.c $(UNIT_UTIL)
UNIT_SRCS_e820       := src/arch/x86/e820.c src/mem/guest_mem.c
UNIT_SRCS_acpi       := src/arch/x86/acpi.c src/arch/x86/aml.c src/mem/guest_mem.c
UNIT_SRCS_aml        := src/arch/x86/aml.c
UNIT_SRCS_boot       := src/arch/x86/boot.c src/arch/x86/elf.c src/arch/x86/e820.c \
			src/mem/guest_mem.c $(UNIT_UTIL)
UNIT_SRCS_elf        := $(UNIT_SRCS_boot)
UNIT_SRCS_cpu        := src/arch/x86/cpu.c src/mem/guest_mem.c $(UNIT_UTIL)
UNIT_SRCS_config     := src/config.c src/util/ratelimit.c $(UNIT_UTIL)
UNIT_SRCS_serial     := src/dev/serial.c src/util/util.c
UNIT_SRCS_i8042      := src/dev/i8042.c
UNIT_SRCS_ratelimit  := src/util/ratelimit.c
UNIT_SRCS_mirror     := src/backend/mirror.c src/util/worker.c src/sandbox/seccomp.c $(UNIT_UTIL)
UNIT_SRCS_pm         := src/dev/pm.c
UNIT_SRCS_stream     := src/snap/stream.c
UNIT_SRCS_log        := $(UNIT_UTIL)
UNIT_SRCS_virtqueue  := src/virtio/virtqueue.c src/mem/guest_mem.c
UNIT_SRCS_pci        := src/bus/pci.c src/bus/bus.c $(UNIT_UTIL)
UNIT_SRCS_msix       := src/bus/msix.c $(UNIT_UTIL)
UNIT_SRCS_virtio_pci := src/virtio/pci.c src/virtio/virtio.c src/virtio/virtqueue.c \
			src/bus/msix.c src/bus/pci.c src/bus/bus.c src/mem/guest_mem.c \
			src/util/evloop.c $(UNIT_UTIL)
UNIT_SRCS_seccomp    := src/sandbox/seccomp.c $(UNIT_UTIL)
UNIT_SRCS_jail       := src/sandbox/jail.c src/sandbox/jail_cgroup.c $(UNIT_UTIL)
UNIT_SRCS_routes     := src/api/routes.c src/api/netif.c src/api/metrics.c src/config.c src/util/evloop.c \
			tests/fuzz/fake_vmm.c \
			src/util/ratelimit.c \
			$(UNIT_UTIL)
UNIT_SRCS_virtio_blk := src/virtio/blk.c src/virtio/virtio.c src/virtio/virtqueue.c \
			src/backend/block.c src/mem/guest_mem.c src/util/evloop.c src/util/ratelimit.c \
			src/virtio/limit.c src/backend/mirror.c src/util/worker.c \
			src/sandbox/seccomp.c \
			$(UNIT_UTIL)

UNIT_SRCS_vsock      := src/virtio/vsock.c src/virtio/vsock_conn.c src/backend/vsock_uds.c \
			src/virtio/virtio.c src/virtio/virtqueue.c src/mem/guest_mem.c src/util/evloop.c $(UNIT_UTIL)

UNIT_ALL := $(sort $(foreach n,$(UNIT_NAMES),$(UNIT_DIR)/test_$(n).c $(UNIT_SRCS_$(n))))

# Runs every binary given, keeps going past a failure, fails at the end.
UNIT_RUN = @fail=0; for t in $(1); do echo "=== $$t"; $(2) $$t || { echo "FAILED: $$t"; fail=$$((fail + 1)); }; \
	done; echo "=== unit: $(words $(1)) test programs, $$fail failed"; [ $$fail -eq 0 ]

# $(1): output directory under $(BUILD); $(2): the name of a variable holding
# extra compiler and linker flags (a name, because the flags contain commas).
define unit_variant
$(1)_BINS := $$(addprefix $(BUILD)/$(1)/test_,$(UNIT_NAMES))

$(BUILD)/$(1)/.flags: unit-force
	@mkdir -p $$(@D)
	@echo '$$(CC) $$(UNIT_CFLAGS) $$($(2))' | cmp -s - $$@ || echo '$$(CC) $$(UNIT_CFLAGS) $$($(2))' > $$@

$(BUILD)/$(1)/obj/%.o: %.c $(BUILD)/$(1)/.flags
	@mkdir -p $$(@D)
	$$(CC) $$(UNIT_CFLAGS) $$($(2)) -c -o $$@ $$<

$$(foreach n,$(UNIT_NAMES),$$(eval $$(call unit_link,$(1),$$(n),$(2))))
-include $(patsubst %.c,$(BUILD)/$(1)/obj/%.d,$(UNIT_ALL))
endef

# $(1): output directory; $(2): test name; $(3): name of the extra flags.
define unit_link
$(BUILD)/$(1)/test_$(2): $(BUILD)/$(1)/obj/$(UNIT_DIR)/test_$(2).o \
		$(patsubst %.c,$(BUILD)/$(1)/obj/%.o,$(UNIT_SRCS_$(2)))
	$$(CC) $$(UNIT_CFLAGS) $$($(3)) -o $$@ $$^ $$(UNIT_LDLIBS)
endef

UNIT_PLAIN :=
$(eval $(call unit_variant,unit,UNIT_PLAIN))
$(eval $(call unit_variant,unit-asan,UNIT_ASAN))

.PHONY: check-unit check-unit-asan check-valgrind unit-force clean-unit-asan
unit-force:

check-unit: $(unit_BINS)
	$(call UNIT_RUN,$^)

# Leaks are errors too; UBSan aborts on its first report (no recovery).
check-unit-asan: export ASAN_OPTIONS := detect_leaks=1:abort_on_error=0:halt_on_error=1
check-unit-asan: export UBSAN_OPTIONS := print_stacktrace=1:halt_on_error=1
check-unit-asan: $(unit-asan_BINS)
	$(call UNIT_RUN,$^)

# Every leak kind counts (a test that leaks hides the leaks of the code it tests).
UNIT_VALGRIND := valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=all \
	--errors-for-leak-kinds=all --track-origins=yes
# Valgrind cannot run the seccomp system call (317): test_seccomp runs in
# check-unit and check-unit-asan only.
check-valgrind: $(filter-out %/test_seccomp,$(unit_BINS))
	$(call UNIT_RUN,$^,$(UNIT_VALGRIND))

clean: clean-unit-asan
clean-unit-asan:
	rm -rf $(BUILD)/unit-asan
