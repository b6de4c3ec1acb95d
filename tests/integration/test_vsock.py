"""virtio-vsock with Firecracker's host side, driven both ways: the vsock
test guest connects to host Unix sockets (PATH_PORT) and accepts a
host-initiated connection made through PATH with "CONNECT <port>\\n"; bad
handshakes, hostile packets, bad flags and bad API bodies."""
import json
import os
import queue
import random
import socket
import subprocess
import threading
import time

import pytest

from conftest import MOTE, guest, lines, run_mote
from test_api import START, finished

HPORT = 1234
LPORT = 5252


class HostPeers:
    """Listeners for the guest's connections: PATH_HPORT answers one line
    ("host got: <line>") and then waits for EOF; PATH_(HPORT+2) accepts and
    never reads (a stalled host peer)."""

    def __init__(self, path):
        self.path = path
        self.lines = []
        self.eofs = 0
        self.socks = []
        self.held = []
        self.answer = self._listen(f"{path}_{HPORT}", self._answer)
        self.stall = self._listen(f"{path}_{HPORT + 2}", self.held.append)

    def _listen(self, where, handler):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(where)
        s.listen(16)
        self.socks.append(s)

        def loop():
            while True:
                try:
                    c, _ = s.accept()
                except OSError:
                    return
                threading.Thread(target=handler, args=(c,), daemon=True).start()
        threading.Thread(target=loop, daemon=True).start()
        return s

    def _answer(self, c):
        c.settimeout(60)
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = c.recv(256)
                if not chunk:
                    self.eofs += 1
                    return
                data += chunk
            self.lines.append(data)
            c.sendall(b"host got: " + data)
            while c.recv(256):
                pass
            self.eofs += 1
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        for s in self.socks + self.held:
            s.close()


class Guest:
    """build/mote running the vsock guest; console lines arrive on a queue."""

    def __init__(self, tmp_path, cmdline, cid=3, extra=()):
        self.uds = str(tmp_path / "v.sock")
        self.proc = subprocess.Popen(
            [MOTE, "run", "--kernel", guest("vsock"), "--vsock", f"cid={cid},uds={self.uds}",
             "--cmdline", cmdline] + list(extra),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = []
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            self.out.append(line)
            self.q.put(line)
        self.q.put(None)

    def wait_line(self, prefix, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=0.5)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith(prefix):
                return line
            assert "FAIL" not in line, self.out
        raise AssertionError(f"no line {prefix!r}: {self.out}")

    def finish(self, timeout=60):
        rc = self.proc.wait(timeout)
        err = self.proc.stderr.read().decode()
        return rc, err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def vsock_guest(kvm, tmp_path):
    made = []

    def _start(cmdline, **kw):
        g = Guest(tmp_path, cmdline, **kw)
        made.append(g)
        return g
    yield _start
    for g in made:
        g.kill()


def connect_host(uds, port, timeout=30):
    """Host-initiated: CONNECT, then the "OK <local port>" line."""
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(timeout)
    c.connect(uds)
    c.sendall(f"CONNECT {port}\n".encode())
    ack = b""
    while not ack.endswith(b"\n"):
        chunk = c.recv(1)
        assert chunk, f"mote closed the connection instead of OK (got {ack!r})"
        ack += chunk
    word, local = ack.decode().split()
    assert word == "OK" and (1 << 30) <= int(local) < (1 << 31), ack
    return c


def closed(s):
    """mote closed s: EOF, or a reset when it left unread bytes behind."""
    try:
        return s.recv(64) == b""
    except ConnectionResetError:
        return True


def echo_through(c, size, stall_s=0.0):
    """Sends size random bytes through the guest's echo and returns (sent, got).
    The reader starts stall_s late, so mote holds data for a stalled peer."""
    data = random.Random(size).randbytes(size)
    got = bytearray()

    def reader():
        time.sleep(stall_s)
        while len(got) < size:
            chunk = c.recv(65536)
            if not chunk:
                return
            got.extend(chunk)
    t = threading.Thread(target=reader)
    t.start()
    c.sendall(data)
    t.join(60)
    return data, bytes(got)


def assert_clean_exit(g, peers):
    rc, err = g.finish()
    assert rc == 0, (rc, err, g.out)
    assert g.out[-2:] == ["mote-test: vsock ok", "mote-test: done"], g.out
    assert not os.path.exists(g.uds), "mote left its vsock socket behind"
    return err


def test_both_directions_with_flow_control(vsock_guest, tmp_path):
    peers = HostPeers(str(tmp_path / "v.sock"))
    try:
        g = vsock_guest(f"hport={HPORT} lport={LPORT}", cid=7)
        assert g.wait_line("mote-test: vsock cid=") .startswith("mote-test: vsock cid=7 ")
        assert g.wait_line("mote-test: vsock reply") == \
            "mote-test: vsock reply host got: hello from the guest"
        g.wait_line("mote-test: vsock connect ok")
        g.wait_line("mote-test: vsock refused ok")
        g.wait_line(f"mote-test: vsock listening port={LPORT}")
        c = connect_host(g.uds, LPORT)
        # 300 KiB through a guest that advertises 8 KiB of buffer, with the
        # host reader starting late: credit has to flow both ways.
        sent, got = echo_through(c, 300 * 1024, stall_s=0.5)
        assert got == sent, f"{len(got)} of {len(sent)} bytes came back intact"
        c.close()
        assert g.wait_line("mote-test: vsock echoed bytes=") == \
            f"mote-test: vsock echoed bytes={len(sent)}"
        err = assert_clean_exit(g, peers)
        assert peers.lines == [b"hello from the guest\n"]
        assert peers.eofs == 1, "the guest's SHUTDOWN did not reach the host as EOF"
        assert err == "", err
    finally:
        peers.close()


def test_hostile_packets_and_mote_keeps_serving(vsock_guest, tmp_path):
    peers = HostPeers(str(tmp_path / "v.sock"))
    try:
        g = vsock_guest(f"hport={HPORT} lport=0 hostile=1")
        for case in ["short-header", "wrong-src-cid", "wrong-dst-cid", "bad-type", "unknown-op",
                     "op-zero", "len-beyond-buffer", "len-above-64k", "rw-no-connection",
                     "rst-no-connection", "flood", "response-no-connection", "credit-overrun",
                     "reset-open"]:
            g.wait_line(f"mote-test: hostile {case} ok")
        err = assert_clean_exit(g, peers)
        # A peer that never reads holds mote's 64 KiB buffer (plus what its
        # socket takes) and stops the guest's credit, not other connections.
        stalled = [l for l in g.out if l.startswith("mote-test: vsock stalled-peer ok bytes=")]
        assert len(stalled) == 1 and int(stalled[0].rsplit("=", 1)[1]) >= 65536, g.out
        assert [l for l in g.out if l.startswith("mote-test: vsock reply")] == \
            ["mote-test: vsock reply host got: hello from the guest"] * 3
        # Bad packets are logged, rate-limited: 500 in a flood give a burst of
        # lines, not 500 (the suppressed ones are counted in a later line).
        bad = [l for l in err.splitlines() if "virtio-vsock: bad packet" in l]
        assert bad and len(bad) <= 30, err
        assert "source cid is not the guest's" in err
        # The connection open at the device reset was closed on the host side.
        deadline = time.monotonic() + 10
        while peers.eofs < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert peers.eofs == 4, peers.eofs
    finally:
        peers.close()


BAD_LINES = [b"HELLO 5252\n", b"CONNECT\n", b"CONNECT abc\n", b"CONNECT 4294967296\n",
             b"CONNECT -1\n", b"CONNECT 5252 x\n", b"CONNECT5252\n", b"x" * 40]


def test_bad_handshakes_are_closed_without_blocking_others(vsock_guest, tmp_path):
    peers = HostPeers(str(tmp_path / "v.sock"))
    try:
        g = vsock_guest(f"hport={HPORT} lport={LPORT}")
        g.wait_line(f"mote-test: vsock listening port={LPORT}")
        # A client that never finishes its line, and one that never writes:
        # both are closed after mote's handshake timeout, and meanwhile the
        # others are served.
        silent = socket.socket(socket.AF_UNIX)
        silent.connect(g.uds)
        partial = socket.socket(socket.AF_UNIX)
        partial.connect(g.uds)
        partial.sendall(b"CONN")
        for line in BAD_LINES:
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(30)
            s.connect(g.uds)
            s.sendall(line)
            assert closed(s), line
            s.close()
        c = connect_host(g.uds, LPORT)
        sent, got = echo_through(c, 4096)
        assert got == sent
        c.close()
        g.wait_line("mote-test: vsock echoed bytes=4096")
        for s in (silent, partial):
            s.settimeout(30)
            assert closed(s)
            s.close()
        assert_clean_exit(g, peers)
    finally:
        peers.close()


def test_case_insensitive_connect_and_data_right_after_the_line(vsock_guest, tmp_path):
    peers = HostPeers(str(tmp_path / "v.sock"))
    try:
        g = vsock_guest(f"hport={HPORT} lport={LPORT}")
        g.wait_line(f"mote-test: vsock listening port={LPORT}")
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(30)
        c.connect(g.uds)
        # Firecracker takes the keyword in any case; data sent with the line
        # reaches the guest after the connection is up.
        c.sendall(f"connect {LPORT}\nearly data".encode())
        buf = b""
        while buf.count(b"\n") < 1 or len(buf.split(b"\n", 1)[1]) < len(b"early data"):
            chunk = c.recv(256)
            assert chunk, buf
            buf += chunk
        ok, rest = buf.split(b"\n", 1)
        assert ok.startswith(b"OK ") and rest == b"early data", buf
        c.close()
        g.wait_line("mote-test: vsock echoed bytes=10")
        assert_clean_exit(g, peers)
    finally:
        peers.close()


def test_guest_connection_without_listener_is_refused(vsock_guest, tmp_path):
    # No PATH_1234 at all: the guest's first connect gets an RST.
    g = vsock_guest(f"hport={HPORT} lport=0")
    rc, _ = g.finish()
    assert "mote-test: FAIL vsock: host port 1234 refused the connection" in g.out, g.out


# ---------------------------------------------------------------- flags


@pytest.mark.parametrize("spec,needle", [
    ("cid=2,uds=/tmp/mote-v", "cid must be a number from 3"),
    ("cid=0,uds=/tmp/mote-v", "cid must be a number from 3"),
    ("cid=4294967295,uds=/tmp/mote-v", "cid must be a number from 3"),
    ("cid=99999999999,uds=/tmp/mote-v", "cid must be a number from 3"),
    ("cid=x,uds=/tmp/mote-v", "cid must be a number from 3"),
    ("cid=3", "needs cid=N and uds=PATH"),
    ("uds=/tmp/mote-v", "needs cid=N and uds=PATH"),
    ("cid=3,uds=", "uds path must be 1 to 107 bytes"),
    ("cid=3,uds=/" + "a" * 107, "uds path must be 1 to 107 bytes"),
    ("cid=3,port=5,uds=/tmp/v", "unknown option 'port=5'"),
    ("", "needs cid=N and uds=PATH"),
])
def test_bad_vsock_flags(kvm, spec, needle):
    r = run_mote(["run", "--kernel", guest("hello"), "--vsock", spec], timeout=10)
    assert r.returncode == 1, r
    err = lines(r.stderr)
    assert len(err) == 1 and needle in err[0], err


def test_two_vsock_flags(kvm, tmp_path):
    r = run_mote(["run", "--kernel", guest("hello"), "--vsock", f"cid=3,uds={tmp_path}/a",
                  "--vsock", f"cid=4,uds={tmp_path}/b"], timeout=10)
    assert r.returncode == 1 and b"only one vsock device" in r.stderr, r


@pytest.mark.parametrize("what", ["exists", "no-dir"])
def test_unusable_socket_path(kvm, tmp_path, what):
    path = tmp_path / "v.sock"
    if what == "exists":
        path.write_text("")
    else:
        path = tmp_path / "missing" / "v.sock"
    r = run_mote(["run", "--kernel", guest("hello"), "--vsock", f"cid=3,uds={path}"],
                 timeout=10)
    assert r.returncode == 1, r
    err = lines(r.stderr)
    assert len(err) == 1 and str(path) in err[0], err
    if what == "exists":
        assert path.exists() and "already exists" in err[0]


def test_path_with_comma(kvm, tmp_path):
    path = tmp_path / "a,b.sock"
    r = run_mote(["run", "--kernel", guest("hello"), "--vsock", f"uds={path},cid=3"],
                 timeout=10)
    assert r.returncode == 0, r
    assert not path.exists()


# ---------------------------------------------------------------- API


@pytest.fixture
def api(kvm, tmp_path):
    from test_api import Mote
    made = []

    def _start(*args):
        m = Mote(tmp_path, args, f"m{len(made)}")
        made.append(m)
        return m
    yield _start
    for m in made:
        m.kill()


BAD_BODIES = [
    ({}, "missing field 'guest_cid'"),
    ({"guest_cid": 3}, "missing field 'uds_path'"),
    ({"uds_path": "/tmp/x.sock"}, "missing field 'guest_cid'"),
    ({"guest_cid": 2, "uds_path": "/tmp/x.sock"}, "guest_cid 2"),
    ({"guest_cid": 4294967295, "uds_path": "/tmp/x.sock"}, "guest_cid 4294967295"),
    ({"guest_cid": -3, "uds_path": "/tmp/x.sock"}, "guest_cid"),
    ({"guest_cid": "3", "uds_path": "/tmp/x.sock"}, "guest_cid"),
    ({"guest_cid": 3.0, "uds_path": "/tmp/x.sock"}, "guest_cid"),
    ({"guest_cid": 3, "uds_path": 5}, "uds_path"),
    ({"guest_cid": 3, "uds_path": ""}, "uds_path must be 1 to 107"),
    ({"guest_cid": 3, "uds_path": "/" + "a" * 200}, "uds_path must be 1 to 107"),
    ({"guest_cid": 3, "uds_path": "/tmp/x.sock", "vsock_id": 1}, "vsock_id"),
    ({"guest_cid": 3, "uds_path": "/tmp/x.sock", "port": 1}, "unknown field 'port'"),
]


@pytest.mark.parametrize("body,needle", BAD_BODIES, ids=[n for _, n in BAD_BODIES])
def test_bad_vsock_bodies(api, body, needle):
    m = api()
    assert needle in m.refused("PUT", "/vsock", body)
    assert m.get("/vm/config").json["vsock"] is None


def test_existing_path_is_refused(api, tmp_path):
    m = api()
    (tmp_path / "v.sock").write_text("")
    assert "already exists" in m.refused("PUT", "/vsock", {"guest_cid": 3,
                                                            "uds_path": str(tmp_path / "v.sock")})


def test_put_vsock_boots_the_device_and_reports_metrics(api, tmp_path):
    peers = HostPeers(str(tmp_path / "v.sock"))
    try:
        m = api()
        uds = str(tmp_path / "v.sock")
        metrics = tmp_path / "metrics.json"
        m.ok("PUT", "/metrics", {"metrics_path": str(metrics)})
        m.ok("PUT", "/vsock", {"vsock_id": "vsock0", "guest_cid": 3, "uds_path": uds})
        m.ok("PUT", "/vsock", {"guest_cid": 9, "uds_path": uds})   # replaces
        assert m.get("/vm/config").json["vsock"] == {"guest_cid": 9, "uds_path": uds}
        m.ok("PUT", "/boot-source", {"kernel_image_path": guest("vsock"),
                                     "boot_args": f"hport={HPORT} lport=0"})
        m.ok("PUT", "/actions", START)
        assert "only valid before" in m.refused("PUT", "/vsock",
                                                {"guest_cid": 3, "uds_path": uds + "2"})
        out = finished(m)
        assert "mote-test: vsock ok" in out and "mote-test: vsock cid=9 " in " ".join(out) + " ", out
        total = {}
        for line in metrics.read_text().splitlines():
            for k, v in json.loads(line).get("vsock", {}).items():
                total[k] = total.get(k, 0) + v
        assert total["conns_added"] == 1 and total["conns_removed"] == 1, total
        assert total["tx_bytes_count"] == len("hello from the guest\n"), total
        assert total["rx_bytes_count"] == len("host got: hello from the guest\n"), total
        assert total["tx_packets_count"] >= 4 and total["rx_packets_count"] >= 4, total
    finally:
        peers.close()


def test_config_file_vsock_section(kvm, tmp_path):
    peers = HostPeers(str(tmp_path / "v.sock"))
    try:
        cfg = tmp_path / "vm.json"
        cfg.write_text(json.dumps({
            "boot-source": {"kernel_image_path": guest("vsock"),
                            "boot_args": f"hport={HPORT} lport=0"},
            "vsock": {"guest_cid": 5, "uds_path": str(tmp_path / "v.sock")}}))
        r = run_mote(["--no-api", "--config-file", str(cfg)], timeout=60)
        assert r.returncode == 0, r.stderr
        assert "mote-test: vsock cid=5 " in r.stdout.decode(), r.stdout
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"boot-source": {"kernel_image_path": guest("vsock")},
                                   "vsock": {"guest_cid": 1, "uds_path": "/tmp/v"}}))
        r = run_mote(["--no-api", "--config-file", str(bad)], timeout=10)
        assert r.returncode == 1 and b"guest_cid 1" in r.stderr, r
    finally:
        peers.close()
