# The lab (tests/lab/run): Linux guests where /dev/kvm cannot run them (PVM).
#
#   make check-lab        boot checks of the default guest under mote: in the
#                         lab on a PVM host, directly on hardware KVM
#   make check-lab-qemu   the same checks under QEMU microvm (checks the lab
#                         and the guest without mote)
#   make lab-shell        an interactive shell in L1 (mote, QEMU, the guest)
#
# LAB_CHECKS picks checks (default: all of tests/lab/checks-boot.sh).
LAB_CHECKS ?=

# $(1): the VMM (mote or qemu); $(2): extra tests/lab/run options.
define lab_boot_checks
	@tier=$$(tests/lab/tier) || exit 1; \
	if [ "$$tier" = direct ]; then \
		MOTE=$(BUILD)/mote KERNEL=$(BUILD)/guest/vmlinuz INITRD=$(BUILD)/guest/initrd.img \
			sh tests/lab/checks-boot.sh $(1) $(LAB_CHECKS); \
	else \
		tests/lab/run $(2) tests/lab/checks-boot.sh $(1) $(LAB_CHECKS); \
	fi
endef

check-lab: $(BUILD)/mote guest
	$(call lab_boot_checks,mote,)

check-lab-qemu: guest
	$(call lab_boot_checks,qemu,--no-mote --with-qemu)

lab-shell: guest
	@tests/lab/run --interactive $(if $(wildcard $(BUILD)/mote),,--no-mote) --with-qemu -- sh

.PHONY: check-lab check-lab-qemu lab-shell
