#!/bin/sh
# Device checks of the default Linux guest under mote, run inside L1 by
# tests/lab/run (busybox sh), or directly on a host with hardware KVM.
# One line per check: "LAB-CHECK <name> pass|fail <detail>"; on a failure,
# the last lines mote printed, prefixed "  | ". Exits with the failure count.
#
# Environment: MOTE (default: mote on $PATH), KERNEL, INITRD, ROOTFS (an ext4
# image holding the guest's /init; default /lab/rootfs.ext4), APICTL (the
# static HTTP client tests/lab/apictl.c; default /lab/apictl), VSOCKCTL (the
# static vsock helper tests/lab/vsockctl.c; default /lab/vsockctl), LAB_TSC_KHZ,
# CHECK_TIMEOUT (s per boot, default 300), WORK (scratch directory).
MOTE="${MOTE:-mote}"
KERNEL="${KERNEL:-/guest/vmlinuz}"
INITRD="${INITRD:-/guest/initrd.img}"
ROOTFS="${ROOTFS:-/lab/rootfs.ext4}"
APICTL="${APICTL:-/lab/apictl}"
VSOCKCTL="${VSOCKCTL:-/lab/vsockctl}"
CHECK_TIMEOUT="${CHECK_TIMEOUT:-300}"
WORK="${WORK:-/tmp/checks-devices.$$}"
CMDLINE="console=ttyS0 reboot=k quiet cryptomgr.notests${LAB_TSC_KHZ:+ tsc_early_khz=$LAB_TSC_KHZ}"
OUT="$WORK/out"
failed=0
mkdir -p "$WORK"

# boot "GUEST ARGS" MOTE-ARGS...: one boot; RC and output in $OUT.
boot() {
	cl="$CMDLINE $1"
	shift
	timeout -k 5 "$CHECK_TIMEOUT" "$MOTE" run --kernel "$KERNEL" --initrd "$INITRD" \
		--mem 256 --cmdline "$cl" "$@" >"$OUT" 2>&1 </dev/null
	RC=$?
}

has() { tr -d '\r' <"$OUT" | grep -q "^mote-guest: $1"; }

report() { # NAME pass|fail DETAIL
	echo "LAB-CHECK $1 $2 $3"
	if [ "$2" != pass ]; then
		failed=$((failed + 1))
		tail -n 25 "$OUT" | tr -d '\r' | sed 's/^/  | /'
	fi
}

expect() { # NAME LINE: status 0 and the guest printed LINE
	if [ "$RC" -eq 0 ] && has "$2"; then
		report "$1" pass "$2"
	else
		report "$1" fail "status $RC; want '$2'"
	fi
}

img="$WORK/disk.img"
cp "$ROOTFS" "$img"

# Written and flushed in one boot, read back in the next.
boot "mote.test=disk_write mote.data=first-$$" --disk "$img"
expect disk-write "disk-write ok first-$$"
boot "mote.test=disk_read" --disk "$img"
expect disk-persists "disk-read first-$$"

# Booting from the disk: the initrd switches to root=/dev/vda.
boot "root=/dev/vda mote.test=root" --disk "$img"
expect root-on-vda "root=/dev/vda ext4"

# Two disks, the second read-only with a serial.
cp "$ROOTFS" "$WORK/second.img"
boot "mote.test=disks" --disk "$img" --disk "$WORK/second.img,ro,id=second-disk"
if [ "$RC" -eq 0 ] && has "disk vda sectors=[0-9]* ro=0 serial=disk0" &&
	has "disk vdb sectors=[0-9]* ro=1 serial=second-disk"; then
	report two-disks pass "vda rw, vdb ro with its serial"
else
	report two-disks fail "status $RC"
fi

# Read-only: writes fail in the guest, the image does not change.
sum=$(md5sum "$img" | cut -d' ' -f1)
boot "mote.test=disk_ro" --disk "$img,ro"
if [ "$RC" -eq 0 ] && has "disk-ro write-failed" && has "disk-ro read first-$$" &&
	[ "$(md5sum "$img" | cut -d' ' -f1)" = "$sum" ]; then
	report read-only pass "write refused, data readable, image unchanged"
else
	report read-only fail "status $RC"
fi

# SIGKILL right after the guest's sync: what was flushed is in the image.
"$MOTE" run --kernel "$KERNEL" --initrd "$INITRD" --mem 256 --disk "$img" \
	--cmdline "$CMDLINE mote.test=disk_sync_wait mote.data=killed-$$" >"$OUT" 2>&1 </dev/null &
pid=$!
i=0
while [ $i -lt "$CHECK_TIMEOUT" ] && ! has "disk-synced killed-$$"; do
	sleep 1
	i=$((i + 1))
done
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
if has "disk-synced killed-$$"; then
	boot "mote.test=disk_read" --disk "$img"
	expect kill9-after-sync "disk-read killed-$$"
else
	report kill9-after-sync fail "the guest never reported its sync"
fi

# virtio-rng feeds the kernel's hw_random.
boot "mote.test=rng" --rng
expect rng "rng current=virtio_rng.0 bytes=64"

# reboot=t makes the guest's reboot a triple fault: status 2, one line.
boot "mote.test=reboot reboot=t"
if [ "$RC" -eq 2 ] && grep -q "triple fault" "$OUT"; then
	report triple-fault pass "status 2"
else
	report triple-fault fail "status $RC (want 2 and a 'triple fault' line)"
fi

# Firecracker's API: configure and start Linux over the socket, then
# SendCtrlAltDel, which the guest's keyboard driver turns into a clean
# power-off.
sock="$WORK/api.sock"
"$MOTE" --api-sock "$sock" --id lab >"$OUT" 2>&1 </dev/null &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do
	usleep 100000
	i=$((i + 1))
done
api() { "$APICTL" "$sock" "$@" >>"$WORK/api.log" 2>&1; }
if api PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"$CMDLINE mote.test=wait_cad\"}" &&
	api PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}' &&
	api PUT /drives/scratch "{\"drive_id\": \"scratch\", \"path_on_host\": \"$img\", \"is_root_device\": false, \"is_read_only\": true}" &&
	api PUT /actions '{"action_type": "InstanceStart"}'; then
	i=0
	while [ $i -lt "$CHECK_TIMEOUT" ] && ! has "waiting for ctrl-alt-del"; do
		sleep 1
		i=$((i + 1))
	done
	api PUT /actions '{"action_type": "SendCtrlAltDel"}'
	i=0
	while [ $i -lt 60 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 1
		i=$((i + 1))
	done
	kill -9 "$pid" 2>/dev/null
	wait "$pid"
	RC=$?
	if [ "$RC" -eq 0 ] && has "ctrl-alt-del"; then
		report api-boot-ctrl-alt-del pass "booted through the API, powered off on Ctrl-Alt-Del"
	else
		report api-boot-ctrl-alt-del fail "status $RC; API log: $(tr '\n' ' ' <"$WORK/api.log")"
	fi
else
	kill -9 "$pid" 2>/dev/null
	wait "$pid"
	report api-boot-ctrl-alt-del fail "API refused: $(tr '\n' ' ' <"$WORK/api.log")"
fi

# Storage migration under Linux: the disk moves to a new file while the
# guest writes and fsyncs files; after the switch it writes more, then reads
# the whole disk back: its md5 must be the new file's.
sock="$WORK/mig.sock"
cp "$ROOTFS" "$WORK/churn.img"
"$MOTE" --api-sock "$sock" --id lab-mig >"$OUT" 2>&1 </dev/null &
pid=$!
i=0
while [ ! -S "$sock" ] && [ $i -lt 100 ]; do
	usleep 100000
	i=$((i + 1))
done
wait_line() { # LINE SECONDS
	i=0
	while [ $i -lt "$2" ] && ! has "$1"; do
		sleep 1
		i=$((i + 1))
	done
	has "$1"
}
detail=""
if api PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"$CMDLINE mote.test=disk_churn\"}" &&
	api PUT /drives/churn "{\"drive_id\": \"churn\", \"path_on_host\": \"$WORK/churn.img\", \"is_root_device\": false}" &&
	api PUT /actions '{"action_type": "InstanceStart"}' && wait_line churning "$CHECK_TIMEOUT"; then
	sleep 2
	api PUT /storage-migration "{\"drive_id\": \"churn\", \"destination_path\": \"$WORK/moved.img\"}"
	i=0
	while [ $i -lt 120 ] && ! "$APICTL" "$sock" GET /storage-migration 2>/dev/null | grep -q '"completed"'; do
		sleep 1
		i=$((i + 1))
	done
	sleep 2 # writes after the switch land in the new file only
	api PUT /actions '{"action_type": "SendCtrlAltDel"}'
	wait_line "churn writes=" 120
	i=0
	while [ $i -lt 60 ] && kill -0 "$pid" 2>/dev/null; do
		sleep 1
		i=$((i + 1))
	done
	guest=$(tr -d '\r' <"$OUT" | sed -n 's/^mote-guest: churn writes=.* md5=//p')
	host=$(md5sum "$WORK/moved.img" 2>/dev/null | cut -d' ' -f1)
	detail="guest $guest, copy $host"
fi
kill -9 "$pid" 2>/dev/null
wait "$pid"
if [ -n "$host" ] && [ "$guest" = "$host" ] && ! cmp -s "$WORK/churn.img" "$WORK/moved.img"; then
	report storage-migration pass "disk moved under writes; $detail"
else
	report storage-migration fail "$detail; API log: $(tail -n 5 "$WORK/api.log" | tr '\n' ' ')"
fi
# vsock both ways: the guest connects to host port 1234 (served on
# uds_1234), then accepts a host connection made with "CONNECT 5252".
# The guest's side of vsockctl comes on a raw disk.
vs="$WORK/v.sock"
dd if="$VSOCKCTL" of="$WORK/vsockctl.img" bs=512 conv=sync 2>/dev/null
"$VSOCKCTL" serve "${vs}_1234" >"$WORK/vserve.out" 2>&1 &
spid=$!
"$VSOCKCTL" hconnect "$vs" 5252 hello-from-host >"$WORK/vconn.out" 2>&1 &
cpid=$!
boot "mote.test=vsock mote.hport=1234 mote.lport=5252" --disk "$WORK/vsockctl.img,ro" \
	--vsock "cid=3,uds=$vs"
kill "$spid" "$cpid" 2>/dev/null
wait "$spid" "$cpid" 2>/dev/null
expect vsock-guest-to-host "vsock host got: hello-from-linux"
if [ "$RC" -eq 0 ] && has "vsock served hello-from-host" &&
	grep -q "^guest got: hello-from-host" "$WORK/vconn.out"; then
	report vsock-host-to-guest pass "CONNECT 5252, echoed by the guest"
else
	report vsock-host-to-guest fail "status $RC; host side: $(tr '\n' ' ' <"$WORK/vconn.out")"
fi
[ -e "$vs" ] && report vsock-socket-removed fail "$vs is still there"

rm -rf "$WORK"
echo "LAB-CHECKS devices failed=$failed"
exit "$failed"
