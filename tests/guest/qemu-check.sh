#!/bin/bash
# qemu-check.sh — boots every test guest under QEMU and checks its "mote-test:" lines.
#
# This is the reference run: the same images must give the same results under mote.
# Usage: tests/guest/qemu-check.sh [DIR]      (DIR defaults to build/guests)
# Environment:
#   QEMU=qemu-system-x86_64   QEMU_MACHINE=microvm (or q35)
#   QEMU_ACCEL=kvm|tcg        (default kvm when /dev/kvm is usable, else tcg)
#   QEMU_CPU                  (default host,-arch-capabilities with kvm, max with tcg;
#                              this host's PVM /dev/kvm rejects the IA32_ARCH_CAPABILITIES
#                              MSR that plain -cpu host sets)
#   MEMORY_BIG=1              also run memory with -m 4096 (RAM above 4 GiB; ~30 s on PVM)
# Exit status 0 when every check passed.
set -u

DIR=${1:-build/guests}
QEMU=${QEMU:-qemu-system-x86_64}
MACHINE=${QEMU_MACHINE:-microvm}
if [ -z "${QEMU_ACCEL:-}" ]; then
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then QEMU_ACCEL=kvm; else QEMU_ACCEL=tcg; fi
fi
if [ -z "${QEMU_CPU:-}" ]; then
	if [ "$QEMU_ACCEL" = kvm ]; then QEMU_CPU=host,-arch-capabilities; else QEMU_CPU=max; fi
fi

failed=0

# run NAME MEM_MIB CPUS APPEND: prints the guest's output; status is QEMU's.
# Firmware text (SeaBIOS under q35) may share a line with the first guest line: cut it.
run() {
	local append=()
	[ -n "$4" ] && append=(-append "$4")
	timeout 180 "$QEMU" -M "$MACHINE,accel=$QEMU_ACCEL" -cpu "$QEMU_CPU" -m "$2" -smp "$3" \
		-nodefaults -no-reboot -nographic -serial stdio -kernel "$DIR/$1" "${append[@]}" 2>&1 |
		sed 's/^.*\(mote-test: \)/\1/'
	return "${PIPESTATUS[0]}"
}

# check LABEL OUTPUT STATUS REGEX...: every regex must match a line; no FAIL line.
check() {
	local label=$1 out=$2 status=$3 re
	shift 3
	local ok=1
	[ "$status" -eq 0 ] || ok=0
	grep -q '^mote-test: FAIL' <<<"$out" && ok=0
	for re in "$@" '^mote-test: done$'; do
		grep -Eq "$re" <<<"$out" || ok=0
	done
	if [ $ok = 1 ]; then
		echo "ok   $label"
	else
		echo "FAIL $label (qemu status $status)"
		sed 's/^/     | /' <<<"$out"
		failed=1
	fi
}

echo "# $QEMU -M $MACHINE,accel=$QEMU_ACCEL -cpu $QEMU_CPU"

out=$(run hello 256 2 ""); check "hello" "$out" $? '^mote-test: hello$'

for n in 1 2 4; do
	out=$(run smp 256 "$n" ""); st=$?
	check "smp -smp $n" "$out" $st "^mote-test: smp madt=$n up=$n\$" "^mote-test: cpu $((n - 1)) apic="
done

mems="128 256"
[ "${MEMORY_BIG:-0}" = 1 ] && mems="$mems 4096"
for m in $mems; do
	out=$(run memory "$m" 1 ""); st=$?
	check "memory -m $m" "$out" $st '^mote-test: memory ram=[0-9]+ ' \
		'^mote-test: memory checked=[1-9][0-9]* bad=0$'
done

out=$(run exits 256 1 "exits=1000"); st=$?
check "exits exits=1000" "$out" $st '^mote-test: exits n=1000 pio_cycles=[0-9]+ mmio_cycles=[0-9]+$'

exit $failed
