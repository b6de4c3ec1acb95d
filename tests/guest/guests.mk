# tests/guest/guests.mk — mote's freestanding test guests (included by the top-level Makefile).
#
# `make guests` (and plain `make`) builds build/guests/NAME: static ELF64 images linked at
# 1 MiB with a Xen PVH entry note, bootable by mote and by QEMU's -kernel alike. Each guest
# prints lines starting "mote-test: " on the 16550 at 0x3f8 and powers off (i8042 reset,
# then a triple fault); a failure is a line "mote-test: FAIL <why>".
#
#   hello   mote-test: hello                      (the 'm' is written before any set-up)
#           mote-test: done
#   smp     mote-test: cpu <index> apic=<id>      (one per CPU up; 0 = BSP, then by APIC ID)
#           mote-test: smp madt=<n> up=<m>
#           mote-test: done
#   memory  mote-test: e820 0x<addr> 0x<size> <type>   (one per memmap entry)
#           mote-test: memory ram=<bytes> ranges=<n> image_end=0x<addr>
#           mote-test: memory checked=<pages> bad=<count>
#           mote-test: done
#   exits   (command line exits=N, default 100000)
#           mote-test: exits n=<N> pio_cycles=<cycles> mmio_cycles=<cycles>
#           mote-test: done
#   ticker  mote-test: cmdline <cmdline>, then mote-test: tick <n> every ~50 ms (ticks=N: N, then done)
#   kbd     mote-test: kbd ready, then mote-test: kbd bytes <hex>... (the i8042's output, 8 bytes)
#   blk     (virtio-blk over modern virtio-pci; options blk=rw|ro[,...] pattern=1 hostile=1
#            qsize=N indirect=0 pci_assign=1, see tests/guest/blk.c)
#           mote-test: blk capacity=<sectors> ro=<0|1> seg_max=<n> blk_size=<n> flush=<0|1>
#                      discard=<0|1> write_zeroes=<0|1> indirect=<0|1> qsize=<n> pci=<bb:dd.f>
#           mote-test: blk pattern ok sectors=<n>      (pattern=1)
#           mote-test: blk id=<GET_ID string>
#           mote-test: blk rw ok | mote-test: blk ro ok
#           mote-test: hostile <case> ok (needs-reset|status=<n>)   (hostile=1, per case)
#           mote-test: blk ok
#           mote-test: done
#           with bench=N [depth=D] [qd1=M] instead (a read benchmark, see tests/guest/blk.c):
#           mote-test: blk bench n=<N> cycles=<C> depth=<D> kicks=<k>   (one per pass)
#           mote-test: done
#           (noise=1: every other vCPU adds noise meanwhile, lib/noise.h; first line
#            mote-test: blk noise cpus=<n>)
#   hostile (case=NAME; needs a virtio-blk disk, --rng and >= 160 MiB; see tests/guest/hostile.c)
#           mote-test: hostile cpus=<n>
#           mote-test: hostile <case> ok <what the device did>
#           mote-test: hostile <case> after: blk ok rng ok noise ok
#           mote-test: done
#   net     (virtio-net; options ip= peer= port= user=1 mrg=0|1 rxbuf=N nrx=N hellos=N
#            csum=1 hostile=1 flood=N wait=MS bench=N, see tests/guest/net.c)
#           mote-test: net pci=<bb:dd.f> mac=<mac> status=<n> features=0x<hex> mrg=<0|1>
#           mote-test: net dhcp ip=<a.b.c.d> server=<a.b.c.d> / net arp <ip> is-at <mac> (user=1)
#           mote-test: net ready, then per datagram: net rx udp len=.. bufs=.. csum=.. from=.. payload=..
#           mote-test: hostile <case> ok                          (hostile=1, per case)
#           mote-test: net ok rx=<frames> tx=<frames>
#           mote-test: done
#   rng     (virtio-rng; options hostile=1 noise=1 qsize=N pci_assign=1, see tests/guest/rng.c)
#           mote-test: rng pci=<bb:dd.f> qsize=<n> features=0x<hex>
#           mote-test: hostile <case> ok (needs-reset|len=0)         (hostile=1, per case)
#           mote-test: rng ok bytes=<n>
#           mote-test: done
#   vsock   (virtio-vsock; options hport=N lport=N hostile=1, see tests/guest/vsock.c)
#           mote-test: vsock cid=<cid> pci=<bb:dd.f>
#           mote-test: vsock reply <the host's answer>   (guest-initiated, to PATH_<hport>)
#           mote-test: vsock connect ok | vsock refused ok
#           mote-test: vsock listening port=<lport>     (then the host sends CONNECT <lport>)
#           mote-test: vsock echoed bytes=<n>
#           mote-test: hostile <case> ok                 (hostile=1, per case)
#           mote-test: vsock ok
#           mote-test: done
#
# What a monitor must honour (mote and QEMU's PVH boot both do):
#  - enter guest_entry (from the PVH note) in 32-bit protected mode, paging off, flat CS/DS,
#    EBX = hvm_start_info below 4 GiB; memmap (version 1) below 4 GiB, command line anywhere
#    mapped; RSDP via rsdp_paddr or in 0xE0000-0xFFFFF. The guests copy all of it first.
#  - APs wait for INIT-SIPI-SIPI (xAPIC at the APIC_BASE MSR address, IDs <= 254), and the
#    page at 0x8000 (the AP trampoline) is free RAM; the MADT lists the BSP.
#  - for blk and rng: PCI configuration mechanism #1 at 0xCF8/0xCFC with the devices on
#    bus 0 (QEMU: -M q35 or pc; microvm's PCIe is ECAM-only), memory BARs either assigned
#    or left 0 (the guest then assigns from 0xE0000000, or pci_window=0x...).
#  - port 0x3f8 is a 16550 (LSR at 0x3fd), 0x3ff its scratch register; 0xF0000000 is
#    unassigned; power-off is 0xFE to port 0x64, else a triple fault.
#
# A guest is tests/guest/NAME.c (defining guest_main) plus, optionally, tests/guest/NAME.S;
# the shared code in tests/guest/lib/ is linked from an archive, so a guest pays only for
# what it uses. Add a guest by adding its file: the list below is found by wildcard.
#
# Under QEMU (what `make check-guests-qemu` runs, see tests/guest/qemu-check.sh):
#   qemu-system-x86_64 -M microvm,accel=kvm -cpu host,-arch-capabilities -m 256 -smp 2 \
#       -nodefaults -no-reboot -nographic -serial stdio -kernel build/guests/hello [-append exits=1000]
# On this machine's PVM /dev/kvm, plain `-cpu host` (and `-cpu max`) abort QEMU 7.2 before
# boot ("failed to set MSR 0x10a", IA32_ARCH_CAPABILITIES): drop that feature as above.
# accel=tcg -cpu max works too. -M q35 boots the same images (SeaBIOS prints first, and the
# i8042 write ends it); microvm has no i8042 and ends on the guest's triple fault.

GUEST_CC    ?= $(CC)
GUEST_SRC   := tests/guest
GUEST_OUT   := $(BUILD)/guests
GUEST_OBJ   := $(GUEST_OUT)/.obj
GUEST_LDS   := $(GUEST_SRC)/lib/guest.ld

# No SSE/x87 (no FPU state is set up), no red zone (exceptions push onto the
# stack in place), static and non-PIC at the addresses in guest.ld.
GUEST_CFLAGS := -std=gnu11 $(WARN) -O2 -g -ffreestanding -fno-pic -fno-pie \
	-mno-red-zone -mcmodel=small -mno-sse -mno-sse2 -mno-mmx -mno-80387 \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
	-I$(GUEST_SRC)/lib -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -Wl,-T,$(GUEST_LDS) -Wl,--build-id=none \
	-Wl,-z,max-page-size=4096 -Wl,-z,noexecstack

# Everything depends on this file, which changes only when the compiler or flags
# do: `make CC=clang guests` after a gcc build rebuilds all of it.
GUEST_STAMP := $(GUEST_OBJ)/build-flags
GUEST_FLAGS_NOW := $(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS)
$(shell mkdir -p $(GUEST_OBJ) && echo '$(GUEST_FLAGS_NOW)' | cmp -s - $(GUEST_STAMP) || \
	echo '$(GUEST_FLAGS_NOW)' > $(GUEST_STAMP))

GUEST_NAMES    := $(sort $(basename $(notdir $(wildcard $(GUEST_SRC)/*.c))))
GUEST_BINS     := $(addprefix $(GUEST_OUT)/,$(GUEST_NAMES))
GUEST_LIB_SRCS := $(filter-out $(GUEST_SRC)/lib/boot.S,$(wildcard $(GUEST_SRC)/lib/*.c $(GUEST_SRC)/lib/*.S))
GUEST_LIB_OBJS := $(GUEST_LIB_SRCS:$(GUEST_SRC)/%=$(GUEST_OBJ)/%.o)
GUEST_BOOT_OBJ := $(GUEST_OBJ)/lib/boot.S.o
GUEST_LIB_A    := $(GUEST_OBJ)/libguest.a

guests: $(GUEST_BINS)

$(GUEST_OBJ)/%.c.o: $(GUEST_SRC)/%.c $(GUEST_STAMP)
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OBJ)/%.S.o: $(GUEST_SRC)/%.S $(GUEST_STAMP)
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_LIB_A): $(GUEST_LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

# boot.S is linked as an object: only the ELF entry and the PVH note refer to it,
# which would not pull it out of the archive.
define GUEST_template
$(GUEST_OUT)/$(1): $(patsubst $(GUEST_SRC)/%,$(GUEST_OBJ)/%.o,$(wildcard $(GUEST_SRC)/$(1).c $(GUEST_SRC)/$(1).S)) \
		$(GUEST_BOOT_OBJ) $(GUEST_LIB_A) $(GUEST_LDS)
	$$(GUEST_CC) $$(GUEST_LDFLAGS) -o $$@ $$(filter %.o,$$^) $(GUEST_LIB_A)
endef
$(foreach g,$(GUEST_NAMES),$(eval $(call GUEST_template,$(g))))

.PHONY: check-guests-qemu check-guests-qemu-virtio
check-guests-qemu: guests
	$(GUEST_SRC)/qemu-check.sh $(GUEST_OUT)

check-guests-qemu-virtio: guests
	$(GUEST_SRC)/qemu-check-virtio.sh $(GUEST_OUT)

-include $(wildcard $(GUEST_OBJ)/*.d $(GUEST_OBJ)/lib/*.d)
