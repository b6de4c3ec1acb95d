"""Live migration between two mote processes on this host (TCP over
loopback): the counter guest, with a disk and virtio-rng, keeps counting on
the destination from where the source left it, and its dirtied pages arrive
intact; the source ends with status 0 only after the destination has loaded
the VM. When the destination refuses, dies or cannot be reached, the source keeps
running. The pre-copy runs on its own thread: the guest's disk and rng requests go on
during it, GET /migrate reports progress, and a guest that dirties memory
faster than a bandwidth limit can carry makes the source give up by the
downtime rule and keep running. One test moves the VM between two network
namespaces joined by a veth pair (127.10.0.0/24: loopback-range addresses,
never routed anywhere). With a tap interface, the tap is handed over: the
destination attaches a queue of the same multiqueue tap (the interface never
changes); a single-queue tap cannot be shared, and the source keeps
running."""
import http.client
import os
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

import test_api
from conftest import MOTE, guest, lines, run_mote
from test_api import UnixHTTPConnection
from test_snapshot import boot_counter, check_continues, counts, dirty_sums, kill, wait_count

MAGIC = 0x47494D4D


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def reap():
    """Processes (Popen or Mote) killed at the end of the test, whatever
    happened: a failed assertion must not leave a migrated guest running."""
    procs = []
    yield procs.append
    for p in procs:
        proc = getattr(p, "proc", p)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def listen_mote(tmp_path, port, host="127.0.0.1", prefix=()):
    out = open(tmp_path / "dst.out", "wb")
    err = open(tmp_path / "dst.err", "wb")
    p = subprocess.Popen(list(prefix) + [MOTE, "run", "--migrate-listen", f"tcp:{host}:{port}",
                                         "--verbose"],
                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    # It says so once it listens (a probe connection would be the one it takes).
    deadline = time.monotonic() + 30
    while b"waiting for the source" not in (tmp_path / "dst.err").read_bytes():
        assert time.monotonic() < deadline and p.poll() is None, \
            (tmp_path / "dst.err").read_text()
        time.sleep(0.02)
    return p


class FakeDestination(threading.Thread):
    """Accepts one source; reads messages; `behaviour` decides the end:
    'die' closes after ~64 KiB, 'nak' refuses at the state message, 'sink'
    reads until the source goes away."""

    def __init__(self, behaviour):
        super().__init__(daemon=True)
        self.behaviour = behaviour
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(1)
        self.port = self.srv.getsockname()[1]
        self.types = []
        self.start()

    def recv(self, c, n):
        b = b""
        while len(b) < n:
            chunk = c.recv(n - len(b))
            if not chunk:
                raise EOFError
            b += chunk
        return b

    def run(self):
        c, _ = self.srv.accept()
        got = 0
        try:
            while True:
                magic, typ, n = struct.unpack("<IIQ", self.recv(c, 16))
                assert magic == MAGIC
                self.types.append(typ)
                self.recv(c, n + 4)
                got += n
                if self.behaviour == "die" and got > 65536:
                    break
                if self.behaviour == "nak" and typ == 3:
                    msg = b"test says no\0"
                    hdr = struct.pack("<IIQ", MAGIC, 5, len(msg))
                    c.sendall(hdr + msg + b"\0\0\0\0")
                    time.sleep(0.5)
                    break
        except EOFError:
            pass
        c.close()
        self.srv.close()


def still_running(m, before):
    """The source answers and its guest counts on past `before`."""
    assert m.get("/").json["state"] == "Running"
    wait_count(m, before + 3)
    assert m.proc.poll() is None


def migrate_counter(tmp_path, reap, host="127.0.0.1", dst_prefix=()):
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    m = boot_counter(tmp_path, "blk=1 rng=1 dirty=64", disk=str(disk), rng=True,
                     machine={"vcpu_count": 2, "mem_size_mib": 256})
    reap(m)
    wait_count(m, 5)
    port = free_port()
    d = listen_mote(tmp_path, port, host, dst_prefix)
    reap(d)
    r = m.request("PUT", "/migrate", {"destination": f"tcp:{host}:{port}", "downtime_ms": 500},
                  conn=UnixHTTPConnection(m.sock, timeout=120))
    # Answered when the destination has the VM, with the final figures.
    assert r.status == 200 and r.json["state"] == "completed", r
    assert r.json["bytes_sent"] > 0 and 0 < r.json["downtime_us"] <= r.json["total_us"], r.json
    assert m.proc.wait(timeout=30) == 0, m.err()      # the source ended, status 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dst = (tmp_path / "dst.out").read_bytes()
        if len(counts(lines(dst[:dst.rfind(b"\n") + 1]))) >= 5:
            break
        assert d.poll() is None, (tmp_path / "dst.err").read_text()
        time.sleep(0.05)
    d.terminate()
    d.wait(timeout=30)
    dst = (tmp_path / "dst.out").read_bytes()
    joined = check_continues(m.out_path.read_bytes(), dst[:dst.rfind(b"\n") + 1])
    sums = dirty_sums(joined[-1][0], 64)
    assert all(s == sums[n] for n, s in joined), [(n, s) for n, s in joined if s != sums[n]]
    assert not any("FAIL" in l for l in lines(dst)), lines(dst)[-3:]


def test_migrate_continues_with_disk_and_rng(kvm, tmp_path, reap):
    migrate_counter(tmp_path, reap)


@pytest.fixture
def netns_pair():
    """Two namespaces, source and destination, joined by a veth pair."""
    tag = f"{os.getpid() % 100000}"
    src, dst = f"msnapS{tag}", f"msnapD{tag}"
    cmds = [["ip", "netns", "add", src], ["ip", "netns", "add", dst],
            ["ip", "link", "add", f"vs{tag}", "type", "veth", "peer", "name", f"vd{tag}"],
            ["ip", "link", "set", f"vs{tag}", "netns", src],
            ["ip", "link", "set", f"vd{tag}", "netns", dst]]
    for ns, dev, addr in ((src, f"vs{tag}", "127.10.0.1/24"), (dst, f"vd{tag}", "127.10.0.2/24")):
        # 127/8 off the lo device needs route_localnet.
        cmds += [["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"],
                 ["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv4.conf.{dev}.route_localnet=1"],
                 ["ip", "-n", ns, "addr", "add", addr, "dev", dev],
                 ["ip", "-n", ns, "link", "set", dev, "up"]]
    try:
        for c in cmds:
            r = subprocess.run(c, capture_output=True, text=True)
            if r.returncode:
                pytest.fail(f"cannot set up network namespaces ({' '.join(c)}): {r.stderr}")
        yield src, dst
    finally:
        for ns in (src, dst):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_migrate_between_network_namespaces(kvm, tmp_path, netns_pair, monkeypatch, reap):
    src, dst = netns_pair
    wrapper = tmp_path / "mote-in-src"
    wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {src} {MOTE} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(test_api, "MOTE", str(wrapper))   # the source runs in src
    migrate_counter(tmp_path, reap, "127.10.0.2", ("ip", "netns", "exec", dst))


def test_destination_dies_source_keeps_running(kvm, tmp_path):
    m = boot_counter(tmp_path)
    wait_count(m, 3)
    fake = FakeDestination("die")
    msg = m.refused("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{fake.port}"},
                    needle="Cannot migrate")
    assert "migrate:" in msg, msg
    still_running(m, counts(m.out())[-1][0])
    kill(m)


def test_destination_refuses_source_keeps_running(kvm, tmp_path):
    m = boot_counter(tmp_path)
    wait_count(m, 3)
    fake = FakeDestination("nak")
    m.refused("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{fake.port}"},
              needle="refused the VM: test says no")
    fake.join(timeout=10)
    assert fake.types[0] == 1 and 2 in fake.types and fake.types[-1] == 3, fake.types
    still_running(m, counts(m.out())[-1][0])
    kill(m)


def test_no_destination(kvm, tmp_path):
    m = boot_counter(tmp_path)
    wait_count(m, 2)
    m.refused("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{free_port()}"},
              needle="cannot connect")
    m.refused("PUT", "/migrate", {"destination": "udp:1.2.3.4:5"}, needle="tcp:IPV4:PORT")
    m.refused("PUT", "/migrate", {"destination": "tcp:nohost:5"}, needle="tcp:IPV4:PORT")
    m.refused("PUT", "/migrate", {"destination": "tcp:127.0.0.1:5", "downtime_ms": 3600001},
              needle="downtime_ms 3600001: at most 3600000")
    m.refused("PUT", "/migrate", {"destination": "tcp:127.0.0.1:5", "bandwidth_mbps": 1 << 62},
              needle="bandwidth_mbps 4611686018427387904: at most 1000000")
    m.refused("PUT", "/migrate", {"destination": "tcp:127.0.0.1:5", "downtime_ms": -1})
    # The one that ran (and could not connect) is what GET /migrate reports.
    g = m.get("/migrate").json
    assert g["state"] == "failed" and "cannot connect" in g["reason"], g
    still_running(m, counts(m.out())[-1][0])
    kill(m)


def test_destination_refuses_garbage(kvm, tmp_path):
    port = free_port()
    d = listen_mote(tmp_path, port)
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert d.wait(timeout=30) == 1
    s.close()
    err = (tmp_path / "dst.err").read_text()
    assert "migrate: not a mote migration stream" in err, err


def test_migrate_listen_flags(kvm, tmp_path):
    r = run_mote(["run", "--migrate-listen", "tcp:127.0.0.1:1", "--mem", "64"])
    assert r.returncode == 1 and b"--mem" in r.stderr, r.stderr
    r = run_mote(["run", "--migrate-listen", "127.0.0.1:80"])
    assert r.returncode == 1 and b"tcp:IPV4:PORT" in r.stderr, r.stderr


@pytest.fixture
def tap_name(kvm):
    if os.geteuid() != 0:
        pytest.skip("taps need root")
    name = f"mtm{os.getpid() % 100000}"
    yield name
    subprocess.run(["ip", "link", "del", name], capture_output=True)


def ifindex(name):
    with open(f"/sys/class/net/{name}/ifindex") as f:
        return int(f.read())


def test_migrate_hands_over_the_tap(tmp_path, tap_name):
    m = boot_counter(tmp_path, tap=tap_name)      # mote creates it (multiqueue)
    wait_count(m, 3)
    idx = ifindex(tap_name)
    port = free_port()
    d = listen_mote(tmp_path, port)
    r = m.request("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{port}"},
                  conn=UnixHTTPConnection(m.sock, timeout=120))
    assert r.status == 200 and r.json["state"] == "completed", r
    assert m.proc.wait(timeout=30) == 0, m.err()
    deadline = time.monotonic() + 60
    while len(counts(lines((tmp_path / "dst.out").read_bytes()))) < 3:
        assert time.monotonic() < deadline and d.poll() is None, \
            (tmp_path / "dst.err").read_text()
        time.sleep(0.05)
    # The same interface (its addresses, its bridge port) now serves the
    # destination; it goes when the destination, its last user, exits.
    assert ifindex(tap_name) == idx
    d.terminate()
    d.wait(timeout=30)
    assert not os.path.exists(f"/sys/class/net/{tap_name}")


def test_single_queue_tap_cannot_move(tmp_path, tap_name):
    subprocess.run(["ip", "tuntap", "add", "dev", tap_name, "mode", "tap"], check=True)
    m = boot_counter(tmp_path, tap=tap_name)
    wait_count(m, 3)
    port = free_port()
    d = listen_mote(tmp_path, port)
    m.refused("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{port}"},
              needle="Cannot migrate")
    assert d.wait(timeout=30) == 1
    assert "multi_queue" in (tmp_path / "dst.err").read_text()
    still_running(m, counts(m.out())[-1][0])
    kill(m)


def test_answer_outlives_the_client_timeout(kvm, tmp_path):
    """A migration that takes longer than the API's 10 s client timeout (a
    bandwidth limit makes it so) still gets its answer: the timeout counts
    from the answer, not from the request."""
    m = boot_counter(tmp_path, "dirty=1024", machine={"vcpu_count": 1, "mem_size_mib": 64})
    wait_count(m, 3)
    port = free_port()
    d = listen_mote(tmp_path, port)
    t0 = time.monotonic()
    conn = test_api.UnixHTTPConnection(m.sock, timeout=120)   # this client waits
    r = m.request("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{port}",
                                      "bandwidth_mbps": 1, "downtime_ms": 60000}, conn=conn)
    conn.close()
    took = time.monotonic() - t0
    assert r.status == 200 and r.json["state"] == "completed", r
    assert m.proc.wait(timeout=30) == 0, m.err()
    d.terminate()
    d.wait(timeout=30)
    assert took > 10, f"the migration took only {took:.1f} s: the test proves nothing"


def test_tap_in_use_is_refused(tmp_path, tap_name):
    """Taps are multiqueue so that a migration's destination can share one;
    any other second user is refused, as it is for a single-queue tap."""
    m = boot_counter(tmp_path, tap=tap_name)
    wait_count(m, 2)
    m2 = test_api.Mote(tmp_path, name="second")
    m2.ok("PUT", "/boot-source", {"kernel_image_path": guest("counter")})
    m2.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": tap_name})
    m2.refused("PUT", "/actions", {"action_type": "InstanceStart"},
               needle=f"tap {tap_name}: attach (TUNSETIFF): Device or resource busy (in use")
    m2.proc.kill()
    m2.proc.wait()
    still_running(m, counts(m.out())[-1][0])
    kill(m)


# ------------------------------------------------------------ while it runs

def start_migration(m, body):
    """PUT /migrate on a thread of its own (it is answered when the migration
    ends); returns the thread and a dict that gets the reply."""
    res = {}

    def put():
        try:
            res["r"] = m.request("PUT", "/migrate", body,
                                 conn=UnixHTTPConnection(m.sock, timeout=300))
        except (OSError, http.client.HTTPException) as e:    # mote went away
            res["exc"] = e

    t = threading.Thread(target=put, daemon=True)
    t.start()
    return t, res


def last_count(m):
    c = counts(m.out())
    return c[-1][0] if c else 0


def test_devices_run_during_precopy(kvm, tmp_path, reap):
    """A slow (bandwidth-limited) pre-copy: meanwhile the guest keeps doing
    virtio-blk writes and reads and virtio-rng requests (each count line is
    one of each), GET /migrate answers with progress, requests that would
    disturb the migration are refused; then it completes."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    m = boot_counter(tmp_path, "blk=1 rng=1 dirty=64", disk=str(disk), rng=True,
                     machine={"vcpu_count": 2, "mem_size_mib": 256}, args=("--level", "Info"))
    reap(m)
    wait_count(m, 5)
    assert m.get("/migrate").json == {"state": "idle"}
    port = free_port()
    d = listen_mote(tmp_path, port)
    reap(d)
    # 4 Mbit/s: round 0 alone (every non-zero page, ~4 MiB) takes seconds;
    # the downtime target is loose enough to switch over after it.
    t, res = start_migration(m, {"destination": f"tcp:127.0.0.1:{port}", "downtime_ms": 60000,
                                 "bandwidth_mbps": 4})
    # Two observations inside the pre-copy; the count lines printed between
    # them are device I/O completed during it.
    first = None
    while True:
        assert t.is_alive(), res
        g = m.get("/migrate").json
        if g["state"] == "idle" or g.get("phase") == "connect":   # not started yet
            continue
        assert g["state"] == "running", g
        if g["phase"] != "precopy":
            break
        n = last_count(m)
        if first is None:
            first = (g, n)
            # Meanwhile the API refuses what would disturb the migration.
            m.refused("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{port}"},
                      needle="a live migration is in progress")
            m.refused("PATCH", "/vm", {"state": "Paused"}, needle="a live migration is in progress")
        elif n >= first[1] + 3:
            # Still pre-copy after these counts: the guest made progress.
            g2 = m.get("/migrate").json
            if g2["phase"] == "precopy":
                break
        time.sleep(0.1)
    assert first is not None, "the migration left pre-copy before it was observed"
    g1, n1 = first
    assert g2["phase"] == "precopy" and last_count(m) >= n1 + 3, (g1, g2)
    assert g2["bytes_sent"] > g1["bytes_sent"], (g1, g2)
    assert g2["destination"] == f"tcp:127.0.0.1:{port}" and g2["bandwidth_mbps"] == 4, g2
    t.join(timeout=120)
    assert "r" in res, (m.get("/migrate").json, m.err()[-2000:])
    r = res["r"]
    assert r.status == 200 and r.json["state"] == "completed", r
    assert m.proc.wait(timeout=30) == 0, m.err()
    # One progress line per round on stderr, then the result.
    err = "\n".join(m.err())
    assert re.search(r"migrate: round 0: \d+ KiB sent in all, \d+ KiB dirty \(0 KiB of disk\), "
                     r"dirty rate \d+ KiB/s, \d+ MB/s, expected downtime \d+ ms", err), err[-2000:]
    assert "migrate: done:" in err, err[-2000:]
    # The destination goes on counting from where the source stopped.
    deadline = time.monotonic() + 60
    while len(counts(lines((tmp_path / "dst.out").read_bytes()))) < 3:
        assert time.monotonic() < deadline and d.poll() is None, (tmp_path / "dst.err").read_text()
        time.sleep(0.05)
    d.terminate()
    d.wait(timeout=30)
    dst = (tmp_path / "dst.out").read_bytes()
    check_continues(m.out_path.read_bytes(), dst[:dst.rfind(b"\n") + 1])


def test_gives_up_by_the_downtime_rule(kvm, tmp_path, reap):
    """A guest that rewrites 128 pages continuously (far faster than the
    4 Mbit/s limit carries them away) and a 1 ms downtime target: even one
    page left would take 8 ms, and every round (about a second: long enough
    that a vCPU the loaded host leaves waiting still writes in each) finds
    them dirty again, so the source gives up (`mote migrate` says why and
    fails), keeps running, reports the failure on GET /migrate, and the
    destination exits non-zero saying the source cancelled."""
    m = boot_counter(tmp_path, "spin=128 tick_us=50000",
                     machine={"vcpu_count": 1, "mem_size_mib": 64})
    reap(m)
    wait_count(m, 3)
    port = free_port()
    d = listen_mote(tmp_path, port)
    reap(d)
    r = subprocess.run([MOTE, "migrate", "--api-sock", m.sock, "--destination",
                        f"tcp:127.0.0.1:{port}", "--downtime-ms", "1", "--bandwidth-mbps", "4"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, (r.stdout, r.stderr)
    # Progress was printed (each line the round going on when polled).
    assert re.search(r"^round \d+: \d+ KiB sent, \d+ KiB left", r.stdout, re.M), r.stdout
    assert "no convergence after" in r.stderr and "target 1 ms" in r.stderr, r.stderr
    g = m.get("/migrate").json
    assert g["state"] == "failed" and "no convergence" in g["reason"], g
    assert g["expected_downtime_ms"] > 1 and g["pages_left"] > 0, g
    # The source goes on, running and counting.
    still_running(m, last_count(m))
    assert d.wait(timeout=30) == 1
    err = (tmp_path / "dst.err").read_text()
    assert "migrate: the source cancelled the migration: no convergence after" in err, err
    kill(m)


def test_stop_during_migration(kvm, tmp_path, reap):
    """SIGTERM while a slow pre-copy runs: mote ends at once with the
    signal's status (the migration thread is cancelled, the PUT answered)."""
    m = boot_counter(tmp_path, "dirty=64")
    reap(m)
    wait_count(m, 3)
    fake = FakeDestination("sink")
    t, res = start_migration(m, {"destination": f"tcp:127.0.0.1:{fake.port}",
                                 "bandwidth_mbps": 1})
    deadline = time.monotonic() + 30
    while m.get("/migrate").json.get("bytes_sent", 0) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    m.proc.terminate()
    assert m.proc.wait(timeout=30) == 128 + 15, m.err()
    t.join(timeout=30)
    assert not t.is_alive()
    # Answered 503, or the connection closed as mote went (not left hanging).
    assert ("r" in res and res["r"].status == 503) or "exc" in res, res
