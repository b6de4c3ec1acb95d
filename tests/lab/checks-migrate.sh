#!/bin/sh
# Live migration of the default Linux guest between two mote processes,
# run inside L1 by tests/lab/run (busybox sh), or directly on a host with
# hardware KVM (as root).
#
# The source (drop-in mode, driven through its API) boots the guest in
# mote.test=migrate with a disk (an ext4 image) and a tap that mote creates,
# enslaved to a bridge that holds the host's address. The guest streams a
# counter over one TCP connection to a server here (busybox nc) and appends
# each number to a file on its disk with fsync. Once numbers flow, a
# destination `mote run --migrate-listen` starts and PUT /migrate moves the
# VM to it; the tap is handed over (backend/tap.c: the destination attaches
# a queue of the same multiqueue tap, so the interface and its bridge port
# never change). Before that, a migration to a destination killed once the
# source has paused must fail and leave the guest streaming from the source,
# its tap taken back. After more numbers have arrived from the destination,
# the server answers "stop"; the guest checks its file, unmounts, prints the
# md5 of its whole disk and powers off the destination.
#
# One line per check: "LAB-CHECK <name> pass|fail <detail>". Exits with the
# failure count. Environment: MOTE, KERNEL, INITRD, ROOTFS, APICTL, WORK,
# CHECK_TIMEOUT. The disk moves along ("copy_disks": true): the destination
# writes it to DST_DISK (--migrate-disk), a new file, whose md5 must equal
# what the guest reads; SHARED_DISK=1 migrates with the disk left in place
# (shared storage) instead.
MOTE="${MOTE:-mote}"
KERNEL="${KERNEL:-/guest/vmlinuz}"
INITRD="${INITRD:-/guest/initrd.img}"
ROOTFS="${ROOTFS:-/lab/rootfs.ext4}"
APICTL="${APICTL:-/lab/apictl}"
CHECK_TIMEOUT="${CHECK_TIMEOUT:-300}"
WORK="${WORK:-/tmp/checks-migrate.$$}"
CMDLINE="console=ttyS0 reboot=k quiet cryptomgr.notests${LAB_TSC_KHZ:+ tsc_early_khz=$LAB_TSC_KHZ}"
TAP=mtapm
BRIDGE=mbrm
PORT=7200      # the counter stream
MIG_PORT=7201  # the migration
FAKE_PORT=7202 # a destination that dies
BEFORE=30      # numbers to see before migrating
AFTER=30       # numbers to see from the destination before stopping
failed=0
mkdir -p "$WORK"
SRC_DISK="$WORK/disk.img"
if [ "${SHARED_DISK:-0}" = 1 ]; then
	DST_DISK="$SRC_DISK"
	COPY=false
	DST_FLAGS=""
else
	DST_DISK="$WORK/moved.img"
	COPY=true
	DST_FLAGS="--migrate-disk disk=$DST_DISK"
fi
OUT="$WORK/src.out"
ip link set lo up 2>/dev/null

report() { # NAME pass|fail DETAIL
	echo "LAB-CHECK $1 $2 $3"
	if [ "$2" != pass ]; then
		failed=$((failed + 1))
		for f in "$WORK/src.out" "$WORK/dst.out" "$WORK/dst.err"; do
			[ -s "$f" ] || continue
			echo "  | -- $(basename "$f")"
			tail -n 15 "$f" | tr -d '\r' | sed 's/^/  | /'
		done
	fi
}
has() { [ -e "$1" ] && tr -d '\r' <"$1" | grep -q "$2"; }
wait_for() { # SECONDS COMMAND...: poll every 0.2 s
	n=$(($1 * 5))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		usleep 200000
		n=$((n - 1))
	done
	return 1
}
gone() { ! kill -0 "$1" 2>/dev/null; }
lines() { wc -l <"$WORK/stream" 2>/dev/null || echo 0; }
streamed() { [ "$(lines)" -ge "$1" ]; } # at least N numbers arrived
api() { "$APICTL" "$sock" "$@" >>"$WORK/api.log" 2>&1; }

cp "$ROOTFS" "$SRC_DISK"
ip link add "$BRIDGE" type bridge 2>/dev/null
ip addr add 192.0.2.1/24 dev "$BRIDGE" 2>/dev/null
ip link set "$BRIDGE" up

# The server: its stdin is a FIFO this script holds, so it says "stop" when
# told and never half-closes first; it exits at the guest's FIN.
mkfifo "$WORK/hold"
nc -l -p "$PORT" <"$WORK/hold" >"$WORK/stream" &
ncpid=$!
exec 3>"$WORK/hold"

sock="$WORK/src.sock"
"$MOTE" --api-sock "$sock" --id lab-mig-src --level Info >"$OUT" 2>&1 </dev/null &
src=$!
wait_for 20 test -S "$sock"
started=no
if api PUT /boot-source "{\"kernel_image_path\": \"$KERNEL\", \"initrd_path\": \"$INITRD\", \"boot_args\": \"$CMDLINE mote.test=migrate mote.port=$PORT\"}" &&
	api PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}' &&
	api PUT /drives/disk "{\"drive_id\": \"disk\", \"path_on_host\": \"$SRC_DISK\", \"is_root_device\": false}" &&
	api PUT /network-interfaces/eth0 "{\"iface_id\": \"eth0\", \"host_dev_name\": \"$TAP\", \"guest_mac\": \"02:00:00:00:00:51\"}" &&
	api PUT /actions '{"action_type": "InstanceStart"}'; then
	started=yes
	wait_for 20 test -e "/sys/class/net/$TAP"
	ip link set "$TAP" master "$BRIDGE"
	ip link set "$TAP" up
fi
at_mig=0
mig_rc=none
src_rc=none
fail_rc=none
paused() { [ "$(tr -d '\r' <"$OUT" | grep -c 'vm: paused')" -ge 1 ]; }
if [ $started = yes ] && wait_for "$CHECK_TIMEOUT" streamed "$BEFORE"; then
	# First a migration that fails after the source stopped the VM and
	# handed its tap over: a "destination" that swallows everything and is
	# killed once the source has paused. The source must take the tap back
	# and resume, and the numbers keep coming from it.
	nc -l -p "$FAKE_PORT" >/dev/null &
	fake=$!
	usleep 200000
	"$APICTL" "$sock" PUT /migrate "{\"destination\": \"tcp:127.0.0.1:$FAKE_PORT\", \"copy_disks\": $COPY}" \
		>"$WORK/fail.reply" 2>&1 &
	failing=$!
	wait_for "$CHECK_TIMEOUT" paused
	kill -9 "$fake" 2>/dev/null
	wait "$fake" 2>/dev/null
	wait "$failing"
	fail_rc=$?
	at_fail=$(lines)
	wait_for "$CHECK_TIMEOUT" streamed $((at_fail + AFTER / 3))
	resumed=$(lines)
	# The destination: the VM's config comes from the source; its disk goes
	# to DST_DISK.
	# shellcheck disable=SC2086 # DST_FLAGS is empty or two words
	"$MOTE" run --migrate-listen "tcp:127.0.0.1:$MIG_PORT" $DST_FLAGS --verbose >"$WORK/dst.out" \
		2>"$WORK/dst.err" </dev/null &
	dst=$!
	wait_for 20 has "$WORK/dst.err" "waiting for the source"
	at_mig=$(lines)
	read -r t0 _ </proc/uptime
	"$APICTL" "$sock" PUT /migrate "{\"destination\": \"tcp:127.0.0.1:$MIG_PORT\", \"copy_disks\": $COPY}" \
		>"$WORK/migrate.reply" 2>&1
	mig_rc=$?
	read -r t1 _ </proc/uptime
	mig_ms=$(((${t1%.*}${t1#*.} - ${t0%.*}${t0#*.}) * 10))
	wait_for 60 gone "$src"
	kill -9 "$src" 2>/dev/null
	wait "$src"
	src_rc=$?
	# The guest runs at the destination: its numbers must keep coming.
	wait_for "$CHECK_TIMEOUT" streamed $((at_mig + AFTER))
	after=$(lines)
	echo stop >&3
	wait_for "$CHECK_TIMEOUT" has "$WORK/dst.out" "mote-guest: migrate done"
	wait_for 60 gone "$dst"
	kill -9 "$dst" 2>/dev/null
	wait "$dst"
	dst_rc=$?
else
	kill -9 "$src" 2>/dev/null
	wait "$src"
fi
exec 3>&-
wait_for 10 gone "$ncpid"
kill "$ncpid" 2>/dev/null

# The failed migration: 400, and the guest streamed on from the source.
if [ "$fail_rc" = 1 ] && [ "${resumed:-0}" -ge $((at_fail + AFTER / 3)) ] &&
	has "$OUT" "vm: resumed"; then
	report migrate-failed-resumes pass "destination killed after the source paused: $(tr '\n' ' ' <"$WORK/fail.reply" | cut -c1-120); $((resumed - at_fail)) more numbers from the source"
else
	report migrate-failed-resumes fail "PUT /migrate: $fail_rc ($(tr '\n' ' ' <"$WORK/fail.reply" 2>/dev/null)), ${at_fail:-?} numbers then ${resumed:-?}"
fi
# The source: 204 to PUT /migrate, status 0, and its log says the
# destination acknowledged.
if [ "$mig_rc" = 0 ] && [ "$src_rc" = 0 ] && has "$OUT" "migrate: done"; then
	report migrate-source-exit pass "$(tr -d '\r' <"$OUT" | grep -o 'migrate: done.*' | head -n 1)"
else
	report migrate-source-exit fail "PUT /migrate: $mig_rc ($(tr '\n' ' ' <"$WORK/migrate.reply" 2>/dev/null)), source status $src_rc, streamed $(lines)"
fi
# The stream: 1..N, each once, and N is the guest's last number.
done_line=$(tr -d '\r' <"$WORK/dst.out" 2>/dev/null | grep '^mote-guest: migrate done' | head -n 1)
count=$(echo "$done_line" | sed -n 's/.* count=\([0-9]*\).*/\1/p')
stream=$(awk 'NR != $1 { bad = NR } END { print (bad ? "bad-at-" bad : "ok") " " NR }' "$WORK/stream")
if [ "$stream" = "ok $count" ] && [ "${after:-0}" -ge $((at_mig + AFTER)) ]; then
	# The guest's clock beside the last number before PUT /migrate and the
	# next one: what the guest saw of the migration (pre-copy + downtime).
	seen=$(awk 'NR > 1 && $2 - last > gap { gap = $2 - last; at = $1 } { last = $2 }
		END { printf "%.2f s before number %d", gap, at }' "$WORK/stream")
	report migrate-tcp-stream pass "numbers 1..$count, no gap or repeat; $at_mig before the migration, which took ${mig_ms} ms; the guest's longest pause: $seen"
else
	report migrate-tcp-stream fail "stream: $stream, guest: '$done_line', $at_mig before migrating, ${after:-?} after"
fi
if echo "$done_line" | grep -q "log=ok count=$count" && [ "${count:-0}" -gt "$at_mig" ]; then
	report migrate-disk-writes pass "the guest's file holds 1..$count (fsync'd each), $((count - at_mig)) written after the migration began; its clock never went back"
else
	report migrate-disk-writes fail "guest: '$done_line', $at_mig before migrating"
fi
# The guest kernel said nothing while it streamed and moved: no clock
# source change, lockup, RCU stall, hung task or device timeout.
if echo "$done_line" | grep -q " kmsg=0 "; then
	report migrate-guest-kernel-quiet pass "no kernel messages across the migration"
else
	report migrate-guest-kernel-quiet fail "$(cat "$WORK/src.out" "$WORK/dst.out" | tr -d '\r' | grep 'migrate kmsg' | head -n 5 | tr '\n' ' ')"
fi
guest_md5=$(echo "$done_line" | sed -n 's/.* md5=\([0-9a-f]*\).*/\1/p')
host_md5=$(md5sum "$DST_DISK" | cut -d' ' -f1)
if [ -n "$guest_md5" ] && [ "$guest_md5" = "$host_md5" ]; then
	report migrate-disk-md5 pass "guest and host read $host_md5 ($DST_DISK)"
else
	report migrate-disk-md5 fail "guest '$guest_md5', host $host_md5"
fi
if [ "${dst_rc:-none}" = 0 ] && [ -n "$done_line" ]; then
	report migrate-dest-poweroff pass "status 0"
else
	report migrate-dest-poweroff fail "status ${dst_rc:-none}"
fi

ip link del "$BRIDGE" 2>/dev/null
ip link del "$TAP" 2>/dev/null
rm -rf "$WORK"
echo "LAB-CHECKS migrate failed=$failed"
exit "$failed"
