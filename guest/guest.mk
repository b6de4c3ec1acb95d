# The default Linux guest (guest/build): build/guest/{vmlinuz,initrd.img,rootfs.ext4}
# from Debian packages. The builder itself decides what is up to date (it has to
# ask apt which kernel the metapackage names), so `guest` always runs it; a run
# with nothing changed only checks, in well under a second.
LINUX_GUEST_OUT := $(BUILD)/guest

guest:
	@/usr/bin/python3 guest/build --out $(LINUX_GUEST_OUT)

guest-clean:
	rm -rf $(LINUX_GUEST_OUT)

.PHONY: guest-clean
