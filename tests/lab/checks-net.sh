#!/bin/sh
# Network checks of the default Linux guest under mote, run inside L1 by
# tests/lab/run (busybox sh), or directly on a host with hardware KVM (as
# root). Two boots: on the user-mode network (libslirp) DHCP, ping, TCP
# guest→host under a tx rate limit, and a hostfwd to a service in the guest;
# on a tap mote creates, ping and 1 MiB of TCP each way with Linux's
# checksum and TSO offloads on.
# One line per check: "LAB-CHECK <name> pass|fail <detail>". Exits with the
# failure count. Environment as for checks-devices.sh.
MOTE="${MOTE:-mote}"
KERNEL="${KERNEL:-/guest/vmlinuz}"
INITRD="${INITRD:-/guest/initrd.img}"
CHECK_TIMEOUT="${CHECK_TIMEOUT:-300}"
WORK="${WORK:-/tmp/checks-net.$$}"
CMDLINE="console=ttyS0 reboot=k quiet cryptomgr.notests${LAB_TSC_KHZ:+ tsc_early_khz=$LAB_TSC_KHZ}"
OUT="$WORK/out"
failed=0
mkdir -p "$WORK"
# L1's loopback starts down; slirp maps the guest's 10.0.2.2 to 127.0.0.1.
ip link set lo up 2>/dev/null

report() { # NAME pass|fail DETAIL
	echo "LAB-CHECK $1 $2 $3"
	if [ "$2" != pass ]; then
		failed=$((failed + 1))
		tail -n 25 "$OUT" | tr -d '\r' | sed 's/^/  | /'
	fi
}
has() { tr -d '\r' <"$OUT" | grep -q "^mote-guest: $1"; }
line() { tr -d '\r' <"$OUT" | grep "^mote-guest: $1" | head -n 1; }
uptime_cs() { read -r u _ </proc/uptime; echo "${u%.*}${u#*.}"; } # centiseconds

# tx limit: 16 KiB per 100 ms, no burst; the guest sends 1 MiB, which
# takes at least 6.3 s at that rate (an unlimited guest is much faster).
KIB=1024
SIZE=16384
REFILL_MS=100
TCP_PORT=7000
FWD_PORT=7022
# The listener's stdin stays open (a FIFO this script holds), so it never
# half-closes the connection: it reads until the guest's FIN, then exits.
mkfifo "$WORK/hold"
nc -l -p "$TCP_PORT" <"$WORK/hold" >"$WORK/tcp.in" &
ncpid=$!
exec 3>"$WORK/hold"
t0=$(uptime_cs)
"$MOTE" run --kernel "$KERNEL" --initrd "$INITRD" --mem 256 \
	--cmdline "$CMDLINE mote.test=net_user mote.port=$TCP_PORT mote.bytes=$KIB" \
	--net "user,mac=02:00:00:00:00:42,hostfwd=tcp:127.0.0.1:$FWD_PORT-:22,tx-bw=$SIZE:$REFILL_MS" \
	>"$OUT" 2>&1 </dev/null &
pid=$!
# t0: the last look that did not find "net tcp-start" yet, so the transfer
# began after it (the measured interval is never shorter than the real one).
i=0
while [ $i -lt $((CHECK_TIMEOUT * 10)) ] && ! has "net tcp-start" && kill -0 "$pid" 2>/dev/null; do
	t0=$(uptime_cs)
	usleep 100000
	i=$((i + 1))
done
i=0
while [ $i -lt "$CHECK_TIMEOUT" ] && ! has "net listening" && kill -0 "$pid" 2>/dev/null; do
	sleep 1
	i=$((i + 1))
done
i=0
while [ $i -lt "$CHECK_TIMEOUT" ] && kill -0 "$ncpid" 2>/dev/null; do
	sleep 1
	i=$((i + 1))
done
t1=$(uptime_cs)
got=$(wc -c <"$WORK/tcp.in")
fwd=""
if has "net listening"; then
	sleep 1
	fwd=$(echo "from-host" | timeout 60 nc 127.0.0.1 "$FWD_PORT" | head -c 64)
fi
i=0
while [ $i -lt 60 ] && kill -0 "$pid" 2>/dev/null; do
	sleep 1
	i=$((i + 1))
done
kill -9 "$pid" 2>/dev/null
wait "$pid"
RC=$?
kill "$ncpid" 2>/dev/null
exec 3>&-

if has "net dhcp ip=10.0.2.15 mac=02:00:00:00:00:42"; then
	report net-dhcp pass "$(line 'net dhcp')"
else
	report net-dhcp fail "status $RC"
fi
if has "net ping ok"; then report net-ping pass "10.0.2.2 answers"; else report net-ping fail "no reply"; fi
want=$((KIB * 1024))
if has "net tcp-sent bytes=$want" && [ "$got" -eq "$want" ]; then
	report net-tcp-to-host pass "$got bytes"
else
	report net-tcp-to-host fail "host got $got of $want bytes"
fi
# Upper bound only (no timing threshold): what got through between t0 and
# t1 (the listener's end, after the last byte) is within the bucket's
# budget. How close to the limit the rate gets is bench/ material.
elapsed_ms=$(((t1 - t0) * 10))
budget=$((SIZE + SIZE * elapsed_ms / REFILL_MS))
if [ "$got" -gt 0 ] && [ "$got" -le "$budget" ]; then
	report net-tx-rate-limit pass "$got bytes in ${elapsed_ms} ms, budget $budget"
else
	report net-tx-rate-limit fail "$got bytes in ${elapsed_ms} ms, budget $budget"
fi
case "$fwd" in
"mote-net-hostfwd 10.0.2.15"*)
	if has "net hostfwd-got from-host"; then
		report net-hostfwd pass "both ways through 127.0.0.1:$FWD_PORT"
	else
		report net-hostfwd fail "the guest did not get the host's line"
	fi ;;
*) report net-hostfwd fail "host read '$fwd'" ;;
esac
if [ "$RC" -eq 0 ]; then report net-poweroff pass "status 0"; else report net-poweroff fail "status $RC"; fi

# ---- a tap mote creates (L1 is root): Linux negotiates checksum and TSO
# offloads, so 64 KiB TCP segments cross the vnet header both ways.
OUT="$WORK/out-tap"
TAP=mtap0
rm -f "$WORK/hold"
mkfifo "$WORK/hold"
nc -l -p "$TCP_PORT" <"$WORK/hold" >"$WORK/tap.in" &
ncpid=$!
exec 3>"$WORK/hold"
"$MOTE" run --kernel "$KERNEL" --initrd "$INITRD" --mem 256 \
	--cmdline "$CMDLINE mote.test=net_tap mote.port=$TCP_PORT mote.bytes=$KIB" \
	--net "tap=$TAP,mac=02:00:00:00:00:43" >"$OUT" 2>&1 </dev/null &
pid=$!
i=0
while [ $i -lt 100 ] && [ ! -e /sys/class/net/$TAP ]; do
	usleep 100000
	i=$((i + 1))
done
ip addr add 192.0.2.1/24 dev $TAP 2>/dev/null
ip link set $TAP up 2>/dev/null
i=0
while [ $i -lt "$CHECK_TIMEOUT" ] && ! has "net listening" && kill -0 "$pid" 2>/dev/null; do
	sleep 1
	i=$((i + 1))
done
i=0
while [ $i -lt 60 ] && kill -0 "$ncpid" 2>/dev/null; do
	sleep 1
	i=$((i + 1))
done
kill "$ncpid" 2>/dev/null
exec 3>&-
got=$(wc -c <"$WORK/tap.in")
if has "net listening"; then
	sleep 1
	dd if=/dev/zero bs=1024 count="$KIB" 2>/dev/null | timeout 120 nc 192.0.2.2 $((TCP_PORT + 1))
fi
i=0
while [ $i -lt 120 ] && kill -0 "$pid" 2>/dev/null; do
	sleep 1
	i=$((i + 1))
done
kill -9 "$pid" 2>/dev/null
wait "$pid"
RC=$?
if has "net ping ok"; then report tap-ping pass "192.0.2.1 answers"; else report tap-ping fail "no reply"; fi
if has "net tcp-sent bytes=$want" && [ "$got" -eq "$want" ]; then
	report tap-tcp-to-host pass "$got bytes"
else
	report tap-tcp-to-host fail "host got $got of $want bytes"
fi
if has "net tcp-got bytes=$want"; then
	report tap-tcp-to-guest pass "$want bytes"
else
	report tap-tcp-to-guest fail "$(line 'net tcp-got')"
fi
if [ "$RC" -eq 0 ]; then report tap-poweroff pass "status 0"; else report tap-poweroff fail "status $RC"; fi

# ---- two guests on one bridge: taps mote creates, joined by a bridge in
# L1; the client pings the server and sends it a line over TCP.
ip link add mbr0 type bridge 2>/dev/null
ip link set mbr0 up
start_pair() { # NAME ROLE IP PEER MAC
	"$MOTE" run --kernel "$KERNEL" --initrd "$INITRD" --mem 128 \
		--cmdline "$CMDLINE mote.test=net_pair mote.role=$2 mote.ip=$3 mote.peer=$4" \
		--net "tap=$1,mac=$5" >"$WORK/out-$1" 2>&1 </dev/null &
}
start_pair mtapa server 192.0.2.10/24 192.0.2.11 02:00:00:00:00:0a
pa=$!
start_pair mtapb client 192.0.2.11/24 192.0.2.10 02:00:00:00:00:0b
pb=$!
for t in mtapa mtapb; do
	i=0
	while [ $i -lt 100 ] && [ ! -e /sys/class/net/$t ]; do
		usleep 100000
		i=$((i + 1))
	done
	ip link set $t master mbr0 2>/dev/null
	ip link set $t up 2>/dev/null
done
i=0
while [ $i -lt "$CHECK_TIMEOUT" ] && { kill -0 "$pa" 2>/dev/null || kill -0 "$pb" 2>/dev/null; }; do
	sleep 1
	i=$((i + 1))
done
kill -9 "$pa" "$pb" 2>/dev/null
wait "$pa" "$pb" 2>/dev/null
OUT="$WORK/out-mtapa"
if has "net pair got hello-from-192.0.2.11"; then
	report bridge-two-guests pass "192.0.2.11 pinged and reached 192.0.2.10 through the bridge"
else
	OUT="$WORK/out-mtapb"
	report bridge-two-guests fail "server: $(tr -d '\r' <"$WORK/out-mtapa" | grep 'net pair' | tr '\n' ' ')"
fi
ip link del mbr0 2>/dev/null

rm -rf "$WORK"
echo "LAB-CHECKS net failed=$failed"
exit "$failed"
