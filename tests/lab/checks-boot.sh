#!/bin/sh
# Boot checks of the default Linux guest, run inside L1 by tests/lab/run
# (busybox sh). One L1 boot runs all of them:
#   tests/lab/run tests/lab/checks-boot.sh                 # against /bin/mote
#   tests/lab/run --no-mote --with-qemu tests/lab/checks-boot.sh qemu   # against QEMU
# On a host with hardware KVM it runs directly too, given KERNEL and INITRD.
#
# Prints one line per check: "LAB-CHECK <name> pass|fail <detail>", and on a
# failure the last lines the VMM printed, each prefixed with "  | ". Exits
# with the number of failed checks.
#
# Arguments: [VMM] [CHECK...] — the VMM (mote or qemu; default $VMM or mote)
# and the checks to run (default: all, in the order below).
# Environment: VMM, MOTE (path of mote, default: mote on $PATH), KERNEL,
# INITRD, CHECK_TIMEOUT (s per boot, default 300), CMDLINE_EXTRA (appended
# to the guest command line), LAB_TSC_KHZ (set by tests/lab/run).

VMM="${1:-${VMM:-mote}}"
[ $# -gt 0 ] && shift
CHECKS="${*:-info-1cpu-128m info-2cpu-512m reboot}"
MOTE="${MOTE:-mote}"
KERNEL="${KERNEL:-/guest/vmlinuz}"
INITRD="${INITRD:-/guest/initrd.img}"
CHECK_TIMEOUT="${CHECK_TIMEOUT:-300}"
# quiet: every console byte is a trapped port write, slow in the lab;
# cryptomgr.notests skips the crypto self-tests; tsc_early_khz avoids the
# occasional hang when TSC calibration against the PIT fails.
CMDLINE="console=ttyS0 reboot=k quiet cryptomgr.notests${LAB_TSC_KHZ:+ tsc_early_khz=$LAB_TSC_KHZ}"
[ -n "$CMDLINE_EXTRA" ] && CMDLINE="$CMDLINE $CMDLINE_EXTRA"
OUT="${TMPDIR:-/tmp}/checks-boot.$$"
failed=0

now() { read -r up _ </proc/uptime; echo "$up"; }

# boot MEM_MIB CPUS TEST_MODE: boot the guest once; sets RC, SECS; output in $OUT.
boot() {
	cl="$CMDLINE mote.test=$3"
	t0=$(now)
	case "$VMM" in
	mote)
		timeout -k 5 "$CHECK_TIMEOUT" "$MOTE" run --kernel "$KERNEL" --initrd "$INITRD" \
			--cmdline "$cl" --mem "$1" --cpus "$2" >"$OUT" 2>&1 </dev/null
		;;
	qemu)
		# rtc=on: microvm under KVM has no RTC by default, and Linux then
		# spends ~4 s probing one that reads back 0xff. reboot=t: microvm
		# has no i8042, and reboot=k would poll its absent status port
		# 64K times (~50 s here) before falling back to a triple fault.
		timeout -k 5 "$CHECK_TIMEOUT" qemu-system-x86_64 -M microvm,accel=kvm,rtc=on \
			-cpu host -m "$1" -smp "$2" -nodefaults -no-reboot -nographic \
			-serial stdio -kernel "$KERNEL" -initrd "$INITRD" -append "$cl reboot=t" \
			>"$OUT" 2>&1 </dev/null
		;;
	*)
		echo "checks-boot: unknown VMM '$VMM' (mote or qemu)" >"$OUT"
		false
		;;
	esac
	RC=$?
	SECS=$(awk "BEGIN { printf \"%.1f\", $(now) - $t0 }")
	# A VMM that exits cleanly on SIGTERM (QEMU does) hides the timeout.
	TIMED_OUT=$(awk "BEGIN { print ($SECS >= $CHECK_TIMEOUT) ? 1 : 0 }")
}

report() { # NAME pass|fail DETAIL
	echo "LAB-CHECK $1 $2 $3 time=${SECS}s vmm=$VMM"
	if [ "$2" != pass ]; then
		failed=$((failed + 1))
		tail -n 25 "$OUT" | tr -d '\r' | sed 's/^/  | /'
	fi
}

status_detail() {
	if [ "$TIMED_OUT" = 1 ]; then
		echo "timed out after ${CHECK_TIMEOUT}s (status $RC)"
	else
		echo "status $RC"
	fi
}

# check_info NAME MEM CPUS: the guest reports CPUS CPUs and a MemTotal that
# fits in MEM MiB (at least half of it: the kernel keeps some for itself).
check_info() {
	boot "$2" "$3" info
	line=$(tr -d '\r' <"$OUT" | grep -o 'mote-guest: cpus=[0-9]* memtotal_kb=[0-9]*' | head -n 1)
	detail="${line#mote-guest: }"
	cpus=$(echo "$line" | sed -n 's/.*cpus=\([0-9]*\).*/\1/p')
	kb=$(echo "$line" | sed -n 's/.*memtotal_kb=\([0-9]*\).*/\1/p')
	if [ "$RC" -ne 0 ] || [ "$TIMED_OUT" = 1 ]; then
		report "$1" fail "$(status_detail); ${detail:-no cpus/memtotal line}"
	elif [ -z "$cpus" ] || [ -z "$kb" ]; then
		# ([ "" -gt N ] is an error, which is false: it must not fall through to pass.)
		report "$1" fail "no complete 'mote-guest: cpus=N memtotal_kb=K' line: '$line'"
	elif [ "$cpus" -ne "$3" ]; then
		report "$1" fail "$detail (want cpus=$3)"
	elif [ "$kb" -gt $(($2 * 1024)) ] || [ "$kb" -lt $(($2 * 512)) ]; then
		report "$1" fail "$detail (want memtotal_kb in $(($2 * 512))..$(($2 * 1024)))"
	else
		report "$1" pass "$detail"
	fi
}

# check_end NAME MODE: the guest reaches its ready line and the VMM exits 0.
check_end() {
	boot 256 1 "$2"
	if [ "$RC" -ne 0 ] || [ "$TIMED_OUT" = 1 ]; then
		report "$1" fail "$(status_detail)"
	elif ! grep -q 'mote-guest: ready' "$OUT"; then
		report "$1" fail "status 0 but no 'mote-guest: ready' line"
	else
		report "$1" pass "status 0 after mote.test=$2"
	fi
}

for c in $CHECKS; do
	case "$c" in
	info-1cpu-128m) check_info "$c" 128 1 ;;
	info-2cpu-512m) check_info "$c" 512 2 ;;
	reboot) check_end "$c" reboot ;;
	poweroff) check_end "$c" poweroff ;;
	*) SECS=0; echo "unknown check" >"$OUT"; report "$c" fail "unknown check" ;;
	esac
done
rm -f "$OUT"
echo "LAB-CHECKS $VMM failed=$failed"
exit "$failed"
