"""virtio-net from mote's net test guest, directly on this machine's KVM.

Tap: each test makes its own network namespace with a tap inside it
(192.0.2.1/24 on the host side, the guest at 192.0.2.2; documentation
addresses, never routed anywhere), runs mote in it, and talks to the guest
with UDP sockets created in that namespace. User mode: libslirp's DHCP and
ARP answer the guest, its datagrams to 10.0.2.2 reach a socket on the host's
127.0.0.1, and hostfwd rules reach the guest. Rate limits are checked
against the token budget (bytes that got through ≤ what the buckets allowed
in the time that passed, plus throttle counts), never against timings."""
import ctypes
import itertools
import json
import os
import select
import socket
import subprocess
import threading
import time

import pytest

from conftest import MOTE, guest, lines, netns_with_tap, run_mote

CLONE_NEWNET = 0x40000000
HOST_IP, GUEST_IP, PORT = "192.0.2.1", "192.0.2.2", 5000
_ns_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*cmd):
    r = subprocess.run(list(cmd), capture_output=True, text=True)
    assert r.returncode == 0, (cmd, r.stderr)
    return r.stdout


class Netns:
    def __init__(self, name):
        self.name = name

    def socket(self, *args):
        """A socket created inside the namespace (setns in a helper thread,
        so the test process itself never changes namespace)."""
        box = {}

        def work():
            fd = os.open(f"/var/run/netns/{self.name}", os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns")
                box["s"] = socket.socket(*args)
            except Exception as e:  # handed to the caller
                box["e"] = e
            finally:
                os.close(fd)
        t = threading.Thread(target=work)
        t.start()
        t.join()
        if "e" in box:
            raise box["e"]
        return box["s"]

    def udp(self, port=PORT):
        s = self.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for every datagram a test expects, however late it reads them.
        s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE (root)
        s.bind((HOST_IP, port))
        return s

    def popen(self, args):
        return subprocess.Popen(["ip", "netns", "exec", self.name, MOTE] + list(args),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)


@pytest.fixture
def netns(kvm):
    with netns_with_tap(f"mote-t{os.getpid()}-{next(_ns_counter)}", "mtap0") as ns:
        sh(*ns, "ip", "link", "set", "lo", "up")
        # No IPv6 chatter from the host side: every frame is the test's own.
        subprocess.run(ns + ["sysctl", "-qw", "net.ipv6.conf.mtap0.disable_ipv6=1"],
                       capture_output=True)
        sh(*ns, "ip", "addr", "add", f"{HOST_IP}/24", "dev", "mtap0")
        sh(*ns, "ip", "link", "set", "mtap0", "up")
        yield Netns(ns[-1])


def recv_until(sock, n, timeout=60, proc=None):
    """Up to n datagrams [(payload, addr, time)] within timeout."""
    got, deadline = [], time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            break
        if select.select([sock], [], [], 0.2)[0]:
            d, a = sock.recvfrom(70000)
            got.append((d, a, time.monotonic()))
    return got


def finish(proc, timeout=60):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, lines(out), lines(err)


def check_guest(rc, out, err):
    assert rc == 0, (rc, out, err)
    assert not any("FAIL" in l for l in out), out
    assert out[-1] == "mote-test: done", out
    assert any(l.startswith("mote-test: net ok") for l in out), out


def converse(s, proc, big=1400, hellos=3):
    """The host side of the guest's script: answer the hellos, send a big
    datagram, collect the echoes, then quit."""
    got = recv_until(s, hellos, proc=proc)
    assert len(got) == hellos, (got, proc.poll())
    for d, a, _ in got:
        assert d.startswith(b"hello ") and a == (GUEST_IP, PORT), (d, a)
        s.sendto(b"reply to " + d, a)
    payload = b"big " + bytes(i % 251 for i in range(4, big))
    s.sendto(payload, (GUEST_IP, PORT))
    echoes = recv_until(s, hellos + 1, proc=proc)
    s.sendto(b"quit", (GUEST_IP, PORT))
    return [d for d, _, _ in echoes], payload


def test_tap_frames_both_ways_mergeable(netns):
    s = netns.udp()
    p = netns.popen(["run", "--kernel", guest("net"), "--cmdline", "rxbuf=512",
                     "--net", "tap=mtap0,mac=02:00:00:00:00:07"])
    echoes, big = converse(s, p)
    rc, out, err = finish(p)
    check_guest(rc, out, err)
    assert "mac=02:00:00:00:00:07 status=1" in out[0], out
    assert sorted(echoes) == sorted([b"echo reply to hello %d from 192.0.2.2" % i
                                     for i in range(3)] + [b"echo " + big]), echoes
    # 1400 bytes of payload + headers in 512-byte buffers: three buffers.
    assert "mote-test: net rx big ok len=1400 bufs=3" in out, out
    rx = [l for l in out if l.startswith("mote-test: net rx udp")]
    assert len(rx) == 3 and all("from=192.0.2.1:5000" in l and "bufs=1" in l for l in rx), rx
    # No GUEST_CSUM: the host's checksums arrive complete (and right).
    assert all("csum=ok" in l for l in rx), rx
    assert err == [], err


def test_tap_checksum_offload_both_ways(netns):
    """csum=1: the guest negotiates CSUM and GUEST_CSUM. Its datagrams carry
    only the pseudo-header sum with NEEDS_CSUM, so the host's UDP socket gets
    them only if the header crossed to the tap intact; the host's replies
    arrive partial (the tap's offload was switched on) and check out once
    the guest completes them."""
    s = netns.udp()
    p = netns.popen(["run", "--kernel", guest("net"), "--cmdline", "csum=1 rxbuf=512",
                     "--net", "tap=mtap0"])
    echoes, big = converse(s, p)
    rc, out, err = finish(p)
    check_guest(rc, out, err)
    assert "features=0x100018023" in out[0], out[0]   # + CSUM, GUEST_CSUM
    assert sorted(echoes) == sorted([b"echo reply to hello %d from 192.0.2.2" % i
                                     for i in range(3)] + [b"echo " + big]), echoes
    rx = [l for l in out if l.startswith("mote-test: net rx udp")]
    assert len(rx) == 3 and all("csum=partial" in l for l in rx), rx
    assert err == [], err


def test_tap_without_mergeable_buffers(netns):
    s = netns.udp()
    p = netns.popen(["run", "--kernel", guest("net"), "--cmdline", "mrg=0 rxbuf=1536",
                     "--net", "tap=mtap0"])
    echoes, big = converse(s, p)
    rc, out, err = finish(p)
    check_guest(rc, out, err)
    assert "mac=52:54:00:12:34:56" in out[0] and "mrg=0" in out[0], out
    assert "mote-test: net rx big ok len=1400 bufs=1" in out, out
    assert len(echoes) == 4


def metrics_total(path, group):
    tot = {}
    for l in path.read_text().splitlines():
        for k, v in json.loads(l).get(group, {}).items():
            tot[k] = tot.get(k, 0) + v
    return tot


def config(tmp_path, boot_args, iface, metrics=True):
    cfg = {"boot-source": {"kernel_image_path": guest("net"), "boot_args": boot_args},
           "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
           "network-interfaces": [iface]}
    if metrics:
        cfg["metrics"] = {"metrics_path": str(tmp_path / "metrics.json")}
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def test_hostile_guest_is_counted_and_the_device_keeps_working(netns, tmp_path):
    s = netns.udp()
    cfg = config(tmp_path, "hostile=1", {"iface_id": "eth0", "host_dev_name": "mtap0",
                                          "guest_mac": "02:00:00:00:00:09"})
    p = netns.popen(["--no-api", "--config-file", cfg])
    echoes, _ = converse(s, p)
    after = recv_until(s, 1, proc=p)
    rc, out, err = finish(p)
    check_guest(rc, out, err)
    assert [d for d, _, _ in after] == [b"after-hostile"]
    for case in ("rx-readable", "rx-too-small", "tx-short-header", "tx-short-frame",
                 "tx-oversized", "tx-writable", "tx-gso-not-negotiated", "tx-gso-udp",
                 "tx-bad-flags", "tx-csum-past-end", "tx-still-works"):
        assert f"mote-test: hostile {case} ok" in out, (case, out)
    m = metrics_total(tmp_path / "metrics.json", "net_eth0")
    assert m["tx_malformed_frames"] == 8, m
    assert m["rx_bad_chains"] == 2 and m["rx_fails"] >= 2, m
    assert m["event_fails"] == 0, m   # nothing needed a reset
    tx = int([l for l in out if l.startswith("mote-test: net ok")][0].split("tx=")[1])
    assert m["tx_packets_count"] == tx, (m, out)
    assert m["rx_packets_count"] >= 4 and m["rx_bytes_count"] > 1400, m
    # Each malformed frame is logged (rate-limited), and nothing worse.
    assert sum("transmit frame dropped" in l for l in err) == 8, err
    assert not any("needs reset" in l for l in err), err


def test_rate_limits_hold_both_ways(netns, tmp_path):
    """tx: a bandwidth bucket of two frames' worth refilled every 200 ms, and
    the guest sends 20 frames; rx: an ops bucket of 2 frames refilled every
    200 ms, and the host sends 20 datagrams the guest echoes. Both directions
    then run at ~10 frames/s, far below what the guest and mote manage, so
    the limiters must throttle, nothing is dropped, and no more passed than
    the buckets allowed in the time it took (bytes and frames counted, the
    time measured generously: from before mote started)."""
    frame, n, refill = 1000 + 42, 20, 200
    tx_bucket = {"bandwidth": {"size": 2 * frame, "refill_time": refill}}
    rx_bucket = {"ops": {"size": 2, "refill_time": refill}}
    s = netns.udp()
    cfg = config(tmp_path, f"hellos=0 flood={n} nrx=32 wait=120000",
                 {"iface_id": "eth0", "host_dev_name": "mtap0",
                  "rx_rate_limiter": rx_bucket, "tx_rate_limiter": tx_bucket})
    t0 = time.monotonic()
    p = netns.popen(["--no-api", "--config-file", cfg])
    flood = recv_until(s, n, timeout=120, proc=p)
    assert len(flood) == n and all(len(d) == 1000 for d, _, _ in flood), (len(flood), p.poll())
    tx_elapsed_ms = (flood[-1][2] - t0) * 1000
    assert n * frame <= 2 * frame + 2 * frame * tx_elapsed_ms / refill, tx_elapsed_ms
    t1 = time.monotonic()
    for i in range(n):
        s.sendto(b"n%03d" % i + bytes(996), (GUEST_IP, PORT))
    echoes = recv_until(s, n, timeout=120, proc=p)
    s.sendto(b"quit", (GUEST_IP, PORT))
    rc, out, err = finish(p, 120)
    check_guest(rc, out, err)
    assert sorted(d[5:9] for d, _, _ in echoes) == [b"n%03d" % i for i in range(n)], (
        len(echoes), out[-3:], err)
    # Each echo answers a frame that passed the rx limiter (so did the
    # host's ARP request, hence n + 1): at most 2 + 2 per 200 ms since t1.
    rx_elapsed_ms = (echoes[-1][2] - t1) * 1000
    assert n + 1 <= 2 + 2 * rx_elapsed_ms / refill + 1, rx_elapsed_ms
    m = metrics_total(tmp_path / "metrics.json", "net_eth0")
    assert m["tx_rate_limiter_throttled"] > 0, m
    assert m["rx_rate_limiter_throttled"] > 0, m
    assert m["tx_packets_count"] >= 2 * n and m["rx_packets_count"] >= n + 1, m


def test_patch_rate_limiters_while_running(netns, tmp_path):
    s = netns.udp()
    sock = str(tmp_path / "api.sock")
    cfg = config(tmp_path, "hellos=1 wait=60000", {"iface_id": "eth0",
                                                     "host_dev_name": "mtap0"}, metrics=False)
    p = netns.popen(["--api-sock", sock, "--config-file", cfg])
    assert len(recv_until(s, 1, proc=p)) == 1      # running, first frame out
    from test_api import UnixHTTPConnection

    def req(method, path, body):
        c = UnixHTTPConnection(sock)
        c.request(method, path, body=json.dumps(body),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    lim = {"bandwidth": {"size": 1000000, "refill_time": 1000},
           "ops": {"size": 100, "one_time_burst": 10, "refill_time": 1000}}
    assert req("PATCH", "/network-interfaces/eth0",
               {"iface_id": "eth0", "tx_rate_limiter": lim})[0] == 204
    c = UnixHTTPConnection(sock)
    c.request("GET", "/vm/config")
    vmcfg = json.loads(c.getresponse().read())
    c.close()
    ni = vmcfg["network-interfaces"]
    assert ni[0]["iface_id"] == "eth0" and ni[0]["host_dev_name"] == "mtap0", ni
    assert ni[0]["tx_rate_limiter"]["ops"] == {"size": 100, "one_time_burst": 10,
                                               "refill_time": 1000}, ni
    assert ni[0]["rx_rate_limiter"] is None, ni
    for body, needle in [({"iface_id": "eth1"}, b"match"),
                         ({"iface_id": "eth0", "rx_rate_limiter": {"bw": {}}}, b"unknown"),
                         ({"iface_id": "eth0", "host_dev_name": "x"}, b"unknown"),
                         ({"iface_id": "eth0", "tx_rate_limiter": {"ops": {"size": -1,
                                                                           "refill_time": 1}}},
                          b"non-negative")]:
        st, data = req("PATCH", "/network-interfaces/eth0", body)
        assert st == 400 and needle in data, (body, st, data)
    st, data = req("PATCH", "/network-interfaces/nope", {"iface_id": "nope"})
    assert st == 400 and b"no network interface" in data, data
    st, data = req("PUT", "/network-interfaces/eth1",
                   {"iface_id": "eth1", "host_dev_name": "mtap1"})
    assert st == 400 and b"before the microVM starts" in data, data
    # The device still works under the new limits.
    s.sendto(b"after patch", (GUEST_IP, PORT))
    assert [d for d, _, _ in recv_until(s, 1, proc=p)] == [b"echo after patch"]
    s.sendto(b"quit", (GUEST_IP, PORT))
    rc, out, err = finish(p)
    check_guest(rc, out, err)


def test_user_mode_dhcp_arp_udp_and_hostfwd(kvm):
    host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host.bind(("127.0.0.1", 0))
    port = host.getsockname()[1]
    free = []
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        t = socket.socket(socket.AF_INET, kind)
        t.bind(("127.0.0.1", 0))
        free.append(t.getsockname()[1])
        t.close()
    udp_fwd, tcp_fwd = free
    p = subprocess.Popen([MOTE, "run", "--kernel", guest("net"), "--cmdline",
                          f"user=1 port={port} hostile=1",
                          "--net", f"user,hostfwd=udp:127.0.0.1:{udp_fwd}-:{port},"
                          f"hostfwd=tcp:127.0.0.1:{tcp_fwd}-10.0.2.15:22"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    hellos = recv_until(host, 3, proc=p)
    assert [d for d, _, _ in hellos] == [b"hello %d from 10.0.2.15" % i for i in range(3)]
    for d, a, _ in hellos:
        host.sendto(b"reply " + d, a)
    fwd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    fwd.sendto(b"via hostfwd", ("127.0.0.1", udp_fwd))
    tcp = socket.socket()
    tcp.setblocking(False)
    tcp.connect_ex(("127.0.0.1", tcp_fwd))
    echoes = recv_until(host, 3, proc=p) + recv_until(fwd, 1, proc=p)
    fwd.sendto(b"quit", ("127.0.0.1", udp_fwd))
    rc, out, err = finish(p)
    tcp.close()
    check_guest(rc, out, err)
    assert "mote-test: net dhcp ip=10.0.2.15 server=10.0.2.2" in out, out
    assert "mote-test: net arp 10.0.2.2 is-at 52:55:0a:00:02:02" in out, out
    assert sorted(d for d, _, _ in echoes) == sorted(
        [b"echo reply hello %d from 10.0.2.15" % i for i in range(3)] + [b"echo via hostfwd"])
    assert "mote-test: net rx tcp-syn dport=22" in out, out
    # No offloads over slirp: only MAC, MRG_RXBUF, STATUS (and VERSION_1).
    assert "features=0x100018020" in out[0], out[0]
    assert "mote-test: hostile tx-csum-past-end ok" in out


BAD_FLAGS = [
    ("tap=", "must start with"),
    ("tap", "must start with"),
    ("bridge=br0", "must start with"),
    ("tap=a/b", "not an interface name"),
    ("tap=" + "x" * 16, "not an interface name"),
    ("tap=t0,mac=01:00:00:00:00:01", "bad MAC"),
    ("tap=t0,mac=00:00:00:00:00:00", "bad MAC"),
    ("tap=t0,mac=52:54:00:12:34", "bad MAC"),
    ("tap=t0,mac=52:54:00:12:34:zz", "bad MAC"),
    ("tap=t0,hostfwd=tcp::1-:2", "unknown option"),
    ("user,hostfwd=tcp:127.0.0.1:0-:22", "bad hostfwd"),
    ("user,hostfwd=tcp:127.0.0.1:2222-:70000", "bad hostfwd"),
    ("user,hostfwd=sctp::2222-:22", "bad hostfwd"),
    ("user,hostfwd=tcp:1.2.3:2222-:22", "bad hostfwd"),
    ("user,hostfwd=tcp::2222-10.0.3.15:22", "bad hostfwd"),
    ("user,hostfwd=tcp::2222-10.0.2.2:22", "bad hostfwd"),
    ("user,hostfwd=tcp::2222:22", "bad hostfwd"),
    ("user,rx-bw=10", "bad rate limit"),
    ("user,tx-bw=10:0", "bad rate limit"),
    ("user,tx-ops=1K:100:x", "bad rate limit"),
    ("user,rx-ops=", "bad rate limit"),
    ("user,id=", "id must be"),
    ("user,speed=10", "unknown option"),
]


@pytest.mark.parametrize("spec,needle", BAD_FLAGS, ids=[s for s, _ in BAD_FLAGS])
def test_bad_net_flags(kvm, spec, needle):
    r = run_mote(["run", "--kernel", guest("hello"), "--net", spec])
    err = lines(r.stderr)
    assert r.returncode == 1 and len(err) == 1, (r.returncode, err)
    assert needle in err[0] and spec.split(",")[0][:10] in err[0], err


def test_too_many_and_duplicate_interfaces(kvm):
    r = run_mote(["run", "--kernel", guest("hello")] + ["--net", "user"] * 5)
    assert r.returncode == 1 and b"at most 4" in r.stderr, r.stderr
    r = run_mote(["run", "--kernel", guest("hello"), "--net", "user,id=a", "--net",
                  "user,id=a"])
    assert r.returncode == 1 and b"id a is used twice" in r.stderr, r.stderr


def test_hostfwd_port_in_use_is_refused(kvm):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    r = run_mote(["run", "--kernel", guest("hello"), "--net",
                  f"user,hostfwd=tcp:127.0.0.1:{port}-:22"])
    busy.close()
    assert r.returncode == 1, r.stderr
    assert f"hostfwd tcp:127.0.0.1:{port}".encode() in r.stderr, r.stderr


def test_guest_without_network_driver_idles_quietly(netns):
    """A guest that never touches the NIC: mote starts and ends cleanly and
    never reads the tap (frames sent to it just queue in the kernel)."""
    s = netns.udp()
    for _ in range(5):
        s.sendto(b"nobody listens", (GUEST_IP, PORT))
    p = netns.popen(["run", "--kernel", guest("hello"), "--net", "tap=mtap0"])
    rc, out, err = finish(p)
    assert rc == 0 and out == ["mote-test: hello", "mote-test: done"], (rc, out, err)
    assert err == [], err


# ------------------------------------------------------------ API bodies

from test_api import mote, start  # noqa: E402,F401  (fixtures)

BAD_PUTS = [
    ({"host_dev_name": "tap0"}, "missing field 'iface_id'"),
    ({"iface_id": "eth1", "host_dev_name": "tap0"}, "does not match"),
    ({"iface_id": "eth0"}, "missing field 'host_dev_name'"),
    ({"iface_id": "eth0", "host_dev_name": ""}, "host_dev_name"),
    ({"iface_id": "eth0", "host_dev_name": "a/b"}, "host_dev_name"),
    ({"iface_id": "eth0", "host_dev_name": "x" * 16}, "host_dev_name"),
    ({"iface_id": "eth0", "host_dev_name": 7}, "host_dev_name"),
    ({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "ff:ff:ff:ff:ff:ff"},
     "guest_mac"),
    ({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "52:54:00:12:34"}, "guest_mac"),
    ({"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": 5}, "guest_mac"),
    ({"iface_id": "eth0", "host_dev_name": "tap0", "allow_mmds_requests": True},
     "unknown field"),
    ({"iface_id": "eth0", "host_dev_name": "tap0", "rx_rate_limiter": []}, "JSON object"),
    ({"iface_id": "eth0", "host_dev_name": "tap0",
      "rx_rate_limiter": {"bandwidth": {"size": 1}}}, "refill_time"),
    ({"iface_id": "eth0", "host_dev_name": "tap0",
      "tx_rate_limiter": {"ops": {"size": "1", "refill_time": 1}}}, "non-negative"),
    ({"iface_id": "eth0", "host_dev_name": "tap0",
      "tx_rate_limiter": {"ops": {"size": 1, "refill_time": 1.5}}}, "non-negative"),
    ({"iface_id": "eth0", "host_dev_name": "tap0",
      "tx_rate_limiter": {"bandwidth": {"size": 1, "refill_time": 3600001}}}, "refill_time"),
    ({"iface_id": "eth0", "host_dev_name": "tap0",
      "tx_rate_limiter": {"bandwidth": {"size": 1 << 51, "refill_time": 10}}}, "2^50"),
    ({"iface_id": "eth0", "host_dev_name": "tap0",
      "tx_rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1, "x": 1}}},
     "unknown field 'x'"),
]


@pytest.mark.parametrize("body,needle", BAD_PUTS, ids=[n for _, n in BAD_PUTS])
def test_bad_network_interface_bodies(mote, body, needle):
    mote.refused("PUT", "/network-interfaces/eth0", body, needle=needle)
    assert mote.get("/vm/config").json["network-interfaces"] == []


def test_network_interfaces_show_in_vm_config(mote):
    lim = {"bandwidth": {"size": 4096, "one_time_burst": 0, "refill_time": 10}, "ops": None}
    mote.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                                "rx_rate_limiter": lim})
    mote.ok("PUT", "/network-interfaces/eth1", {"iface_id": "eth1", "host_dev_name": "tap1",
                                                "guest_mac": "02:aa:bb:cc:dd:ee",
                                                "tx_rate_limiter": {"ops": {
                                                    "size": 0, "refill_time": 5}}})
    assert "already used by eth0" in mote.refused(
        "PUT", "/network-interfaces/eth2", {"iface_id": "eth2", "host_dev_name": "tap0"})
    # PUT again replaces.
    mote.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "tap0",
                                                "rx_rate_limiter": lim})
    ni = mote.get("/vm/config").json["network-interfaces"]
    assert ni == [
        {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "52:54:00:12:34:56",
         "rx_rate_limiter": lim, "tx_rate_limiter": None},
        {"iface_id": "eth1", "host_dev_name": "tap1", "guest_mac": "02:aa:bb:cc:dd:ee",
         "rx_rate_limiter": None, "tx_rate_limiter": None},   # size 0: no limit
    ], ni
    assert "only valid after" in mote.refused("PATCH", "/network-interfaces/eth0",
                                              {"iface_id": "eth0"})


def test_missing_tap_fails_instance_start(mote, tmp_path):
    """A tap name mote can neither open nor create (a name the kernel
    refuses only when asked: a non-tap device of that name)."""
    mote.ok("PUT", "/boot-source", {"kernel_image_path": guest("hello")})
    mote.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "lo"})
    msg = mote.refused("PUT", "/actions", {"action_type": "InstanceStart"})
    assert "tap lo: attach (TUNSETIFF)" in msg, msg


def test_tap_deleted_under_mote(netns):
    """The tap disappears while the guest runs: mote logs it once, stops
    watching it (no spinning on its hang-up), and the VM goes on to the end
    (the guest, never told to quit, reports its own timeout)."""
    s = netns.udp()
    p = netns.popen(["run", "--kernel", guest("net"), "--cmdline", "wait=3000",
                     "--net", "tap=mtap0"])
    assert len(recv_until(s, 3, proc=p)) == 3
    sh("ip", "netns", "exec", netns.name, "ip", "link", "del", "mtap0")
    rc, out, err = finish(p)
    assert rc == 0, (rc, err)
    assert out[-1] == "mote-test: FAIL net: no quit datagram in time", out
    assert err == ["mote: warning: net tap mtap0: unusable (Input/output error); its frames "
                   "are dropped from now on"], err
