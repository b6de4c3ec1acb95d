#!/bin/bash
# qemu-check-virtio.sh — runs the virtio test guests (blk, rng) under QEMU, the reference
# the same images must match under mote.
#
# Usage: tests/guest/qemu-check-virtio.sh [DIR]      (DIR defaults to build/guests)
# Environment: QEMU, QEMU_ACCEL, QEMU_CPU as for qemu-check.sh; QEMU_MACHINE defaults to
# q35 here (microvm's PCIe is ECAM-only, and the guests use ports 0xCF8/0xCFC).
#
# Disk images are what a mote integration test should create too: 2048 sectors (1 MiB),
# sector N's first 8 bytes the little-endian u64 N, the rest zero.
#
# hostile=1: QEMU flags next-oob, loop, write-before-read and nested-indirect
# (DEVICE_NEEDS_RESET), but completes long-chain (indirect tables may exceed the
# queue size there), addr-oob/addr-straddle/addr-wrap (DMA to unassigned space goes
# through a bounce buffer and is dropped) and avail-jump (QEMU checks avail.idx only
# when counting available bytes) with status OK, so the guest ends in FAIL. Those
# lines are checked here for what QEMU does; mote must answer every case "ok".
# For rng, QEMU never completes a chain without writable buffers and fills a buffer
# outside RAM through the bounce buffer, so both hostile rng cases FAIL under QEMU.
set -u

DIR=${1:-build/guests}
QEMU=${QEMU:-qemu-system-x86_64}
MACHINE=${QEMU_MACHINE:-q35}
if [ -z "${QEMU_ACCEL:-}" ]; then
	if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then QEMU_ACCEL=kvm; else QEMU_ACCEL=tcg; fi
fi
if [ -z "${QEMU_CPU:-}" ]; then
	if [ "$QEMU_ACCEL" = kvm ]; then QEMU_CPU=host,-arch-capabilities; else QEMU_CPU=max; fi
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
failed=0

# make_disk PATH: 2048 sectors, sector N starting with the LE u64 N.
make_disk() {
	python3 - "$1" <<'EOF'
import struct, sys
with open(sys.argv[1], "wb") as f:
    for n in range(2048):
        f.write(struct.pack("<Q", n) + bytes(504))
EOF
}

# check_disk PATH: what blk leaves on a writable disk (see tests/guest/blk.c).
check_disk() {
	python3 - "$1" <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
S, last = 512, len(d) // 512 - 1
sec = lambda n: d[n * S:(n + 1) * S]
def pat(n): return struct.pack("<Q", n) + bytes((n * 31 + i) & 0xff for i in range(8, S))
ok = sec(1) == b"mote-blk-written" + bytes(496)
ok &= all(sec(n) == pat(n) for n in (2, 4, 5, 6, 7, last))
ok &= all(sec(n) == bytes(S) for n in range(8, 16))
ok &= all(sec(n) == struct.pack("<Q", n) + bytes(504) for n in [0, 3] + list(range(24, last)))
sys.exit(0 if ok else 1)
EOF
}

# run NAME APPEND QEMU-ARGS...: the guest's mote-test lines (and QEMU's own complaints).
run() {
	local name=$1 append=$2
	shift 2
	timeout 300 "$QEMU" -M "$MACHINE,accel=$QEMU_ACCEL" -cpu "$QEMU_CPU" -m 256 \
		-nodefaults -no-reboot -nographic -serial stdio -kernel "$DIR/$name" \
		${append:+-append "$append"} "$@" 2>&1 |
		sed 's/^.*\(mote-test: \)/\1/'
	return "${PIPESTATUS[0]}"
}

# check LABEL OUTPUT STATUS REGEX...: every regex must match a line.
check() {
	local label=$1 out=$2 status=$3 re ok=1
	shift 3
	[ "$status" -eq 0 ] || ok=0
	for re in "$@"; do
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

blk_dev() {	# blk_dev ID FILE [readonly]
	echo "-device virtio-blk-pci,drive=$1,disable-legacy=on,serial=mote-$1" \
		"-drive if=none,id=$1,file=$2,format=raw${3:+,readonly=on}"
}

echo "# $QEMU -M $MACHINE,accel=$QEMU_ACCEL -cpu $QEMU_CPU"
nofail='^mote-test: (blk|rng) ok'
blk_info='^mote-test: blk capacity=2048 ro=%d seg_max=[0-9]+ blk_size=512 flush=1 discard=1 write_zeroes=1 indirect=1 qsize=16 pci='

make_disk "$TMP/rw.img"
# shellcheck disable=SC2046
out=$(run blk "blk=rw pattern=1" $(blk_dev d0 "$TMP/rw.img")); st=$?
check "blk rw" "$out" $st "$(printf "$blk_info" 0)" '^mote-test: blk pattern ok sectors=2048$' \
	'^mote-test: blk id=mote-d0$' '^mote-test: blk rw ok$' "$nofail" '^mote-test: done$'
if check_disk "$TMP/rw.img"; then echo "ok   blk rw image"; else echo "FAIL blk rw image"; failed=1; fi

make_disk "$TMP/ro.img"
sum=$(md5sum <"$TMP/ro.img")
# shellcheck disable=SC2046
out=$(run blk "blk=ro pattern=1" $(blk_dev d1 "$TMP/ro.img" ro)); st=$?
check "blk ro" "$out" $st "$(printf "$blk_info" 1)" '^mote-test: blk id=mote-d1$' \
	'^mote-test: blk ro ok$' "$nofail" '^mote-test: done$'
[ "$(md5sum <"$TMP/ro.img")" = "$sum" ] && echo "ok   blk ro image unchanged" ||
	{ echo "FAIL blk ro image changed"; failed=1; }

make_disk "$TMP/rw.img"
# shellcheck disable=SC2046
out=$(run blk "blk=rw,ro pattern=1 pci_assign=1 qsize=64" $(blk_dev d0 "$TMP/rw.img") \
	$(blk_dev d1 "$TMP/ro.img" ro)); st=$?
check "blk rw+ro pci_assign=1" "$out" $st '^mote-test: blk rw ok$' '^mote-test: blk ro ok$' \
	"$nofail" '^mote-test: done$'

make_disk "$TMP/rw.img"
# shellcheck disable=SC2046
out=$(run blk "blk=rw pattern=1 hostile=1" $(blk_dev d0 "$TMP/rw.img")); st=$?
check "blk hostile (QEMU's answers)" "$out" $st '^mote-test: blk rw ok$' \
	'^mote-test: hostile next-oob ok \(needs-reset\)$' \
	'^mote-test: hostile loop ok \(needs-reset\)$' \
	'^mote-test: hostile long-chain FAIL completed with status 0' \
	'^mote-test: hostile addr-oob FAIL completed with status 0' \
	'^mote-test: hostile addr-wrap FAIL completed with status 0' \
	'^mote-test: hostile write-before-read ok \(needs-reset\)$' \
	'^mote-test: hostile nested-indirect ok \(needs-reset\)$' \
	'^mote-test: hostile avail-jump FAIL completed with status 0' \
	'^mote-test: FAIL blk: 4 hostile case\(s\) failed$'
if check_disk "$TMP/rw.img"; then echo "ok   blk hostile image"; else echo "FAIL blk hostile image"; failed=1; fi

make_disk "$TMP/rw.img"
# shellcheck disable=SC2046
out=$(run blk "blk=rw hostile=1 indirect=0" $(blk_dev d0 "$TMP/rw.img")); st=$?
check "blk hostile indirect=0 (QEMU's answers)" "$out" $st \
	'^mote-test: hostile long-chain ok \(needs-reset\)$' \
	'^mote-test: hostile nested-indirect skipped$'

out=$(run rng "" -device virtio-rng-pci,disable-legacy=on); st=$?
check "rng" "$out" $st '^mote-test: rng pci=' '^mote-test: rng ok bytes=4357$' '^mote-test: done$'

out=$(run rng "hostile=1" -device virtio-rng-pci,disable-legacy=on); st=$?
check "rng hostile (QEMU's answers)" "$out" $st \
	'^mote-test: hostile readable-only FAIL no completion' \
	'^mote-test: hostile addr-oob FAIL completed with used len 64$' \
	'^mote-test: FAIL rng: 2 hostile case\(s\) failed$'

exit $failed
