"""The drop-in mode: Firecracker's flags and REST API (HTTP/1.1 on a Unix
socket), driven the way Firecracker's clients drive it, against mote's own
test guests on this machine's KVM. docs/API.md is the compatibility table;
the last tests keep it equal to `mote --api-routes`."""
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import MOTE, ROOT, guest, lines, netns_with_tap, run_mote
from test_virtio import pattern_image

DOC = os.path.join(ROOT, "docs", "API.md")
MAX_BODY = 51200
START = {"action_type": "InstanceStart"}


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over AF_UNIX, as Firecracker's clients talk to its socket."""

    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Reply:
    def __init__(self, status, body, headers):
        self.status = status
        self.raw = body
        self.headers = headers
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None    # fault() reports it

    def fault(self):
        """The fault_message of an error reply (checked to be JSON and non-empty)."""
        assert isinstance(self.json, dict), f"error body is not JSON: {self}"
        assert self.headers["Content-Type"] == "application/json", self
        msg = self.json.get("fault_message")
        assert isinstance(msg, str) and msg, self.raw
        return msg

    def __repr__(self):
        return f"Reply({self.status}, {self.raw!r})"


class Mote:
    """One `mote --api-sock` process; its console goes to a file."""

    def __init__(self, tmp_path, args=(), name="mote", prefix=()):
        self.sock = str(tmp_path / f"{name}.sock")
        self.out_path = tmp_path / f"{name}.out"
        self.err_path = tmp_path / f"{name}.err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(list(prefix) + [MOTE, "--api-sock", self.sock] + list(args),
                                     stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, cwd=str(tmp_path))
        # As Firecracker's clients do: wait for the socket to accept. (The
        # path exists from bind(); connecting before listen() is refused.)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"mote exited with {self.proc.returncode}: {self.err()}")
            if time.monotonic() > deadline:
                raise AssertionError("mote's API socket never accepted a connection")
            if os.path.exists(self.sock):
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(self.sock)
                    break
                except (ConnectionRefusedError, FileNotFoundError):
                    pass
                finally:
                    s.close()
            time.sleep(0.005)

    def request(self, method, path, body=None, raw=None, headers=None, conn=None):
        c = conn or UnixHTTPConnection(self.sock)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        h = {"Accept": "application/json"}
        if data is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            return Reply(r.status, r.read(), r.headers)
        finally:
            if conn is None:
                c.close()

    def get(self, path):
        return self.request("GET", path)

    def put(self, path, body=None, raw=None):
        return self.request("PUT", path, body, raw)

    def patch(self, path, body=None, raw=None):
        return self.request("PATCH", path, body, raw)

    def ok(self, method, path, body=None):
        r = self.request(method, path, body)
        assert r.status == 204, (method, path, r)
        return r

    def refused(self, method, path, body=None, raw=None, status=400, needle=None):
        r = self.request(method, path, body, raw)
        assert r.status == status, (method, path, body if raw is None else raw[:200], r)
        msg = r.fault()
        if needle:
            assert needle in msg, (needle, msg)
        return msg

    def out(self):
        return lines(self.out_path.read_bytes())

    def err(self):
        return lines(self.err_path.read_bytes())

    def fds(self, at_most=None):
        """Open descriptors. A connection a client just closed is closed by
        mote a moment later, so without at_most this waits until the count
        has held still for 0.3 s (a baseline without stray connections); with
        at_most it waits up to 2 s for the count to drop that low."""
        def count():
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        deadline = time.monotonic() + 2
        n, since = count(), time.monotonic()
        while time.monotonic() < deadline:
            if at_most is not None and n <= at_most:
                break
            if at_most is None and time.monotonic() - since >= 0.3:
                break
            time.sleep(0.02)
            m = count()
            if m != n:
                n, since = m, time.monotonic()
        return n

    def alive(self):
        return self.proc.poll() is None

    def wait(self, timeout=20):
        return self.proc.wait(timeout)

    def wait_for(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.out()
            if pred(out):
                return out
            if not self.alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"timed out; console {self.out()[-5:]}, stderr {self.err()}")

    def ticks(self):
        return sum(1 for l in self.out() if re.fullmatch(r"mote-test: tick \d+", l))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()
        self._err.close()


@pytest.fixture
def start(kvm, tmp_path):
    """start(*flags) → a running `mote --api-sock` in tmp_path; all killed at teardown."""
    procs = []

    def _start(*args, name=None):
        m = Mote(tmp_path, args, name or f"mote{len(procs)}")
        procs.append(m)
        return m

    yield _start
    for m in procs:
        m.kill()


@pytest.fixture
def mote(start):
    return start("--id", "test-vm")


def boot(m, name, boot_args=None, **machine):
    body = {"kernel_image_path": guest(name)}
    if boot_args is not None:
        body["boot_args"] = boot_args
    m.ok("PUT", "/boot-source", body)
    if machine:
        m.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128, **machine})
    m.ok("PUT", "/actions", START)


def finished(m, status=0):
    """The guest powered off: mote ends with status and removes its socket."""
    assert m.wait(20) == status, m.err()
    assert not os.path.exists(m.sock)
    return m.out()


def ticking(m, boot_args=None):
    """Boots the ticker and waits for its first tick."""
    boot(m, "ticker", boot_args)
    m.wait_for(lambda out: any(l.startswith("mote-test: tick") for l in out))


def drive(drive_id, path, root=False, **extra):
    return {"drive_id": drive_id, "path_on_host": str(path), "is_root_device": root, **extra}


# ---------------------------------------------------------------- happy paths


def test_instance_info_before_boot(mote):
    r = mote.get("/")
    assert r.status == 200 and r.headers["Content-Type"] == "application/json"
    assert r.json["id"] == "test-vm"
    assert r.json["state"] == "Not started"
    assert r.json["app_name"] == "mote" and r.json["vmm_version"]


def test_default_id(start):
    assert start().get("/").json["id"] == "anonymous-instance"


def test_version(mote):
    r = mote.get("/version")
    assert r.status == 200
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", r.json["firecracker_version"]), r
    assert r.json["firecracker_version"] == mote.get("/").json["vmm_version"]


def test_machine_config_defaults(mote):
    r = mote.get("/machine-config")
    assert r.status == 200
    assert r.json["vcpu_count"] == 1
    assert r.json["mem_size_mib"] == 256
    assert r.json["smt"] is False and r.json["track_dirty_pages"] is False


def test_machine_config_put_then_patch(mote):
    mote.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128, "smt": False,
                                       "cpu_template": "None"})
    assert mote.get("/machine-config").json["vcpu_count"] == 2
    mote.ok("PATCH", "/machine-config", {"mem_size_mib": 64})
    cfg = mote.get("/machine-config").json
    assert (cfg["vcpu_count"], cfg["mem_size_mib"]) == (2, 64)
    mote.ok("PATCH", "/machine-config", {"track_dirty_pages": True})
    assert mote.get("/machine-config").json["track_dirty_pages"] is True
    assert mote.get("/vm/config").json["machine-config"] == mote.get("/machine-config").json


def test_machine_config_put_resets_omitted_fields(mote):
    """Firecracker: PUT sets every optional field it omits back to its default."""
    mote.ok("PATCH", "/machine-config", {"track_dirty_pages": True})
    mote.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128})
    assert mote.get("/machine-config").json["track_dirty_pages"] is False


def test_boot_source_and_drives_show_in_vm_config(mote, tmp_path):
    img = pattern_image(tmp_path / "a.img")
    ro = pattern_image(tmp_path / "b.img")
    mote.ok("PUT", "/boot-source", {"kernel_image_path": guest("hello"), "boot_args": "x=1"})
    mote.ok("PUT", "/drives/rootfs", drive("rootfs", img, True))
    mote.ok("PUT", "/drives/data_1", drive("data_1", ro, is_read_only=True,
                                           cache_type="Unsafe", io_engine="Sync"))
    mote.ok("PUT", "/entropy", {})
    cfg = mote.get("/vm/config").json
    assert cfg["boot-source"]["kernel_image_path"] == guest("hello")
    assert cfg["boot-source"]["boot_args"] == "x=1"
    drives = {d["drive_id"]: d for d in cfg["drives"]}
    assert set(drives) == {"rootfs", "data_1"}
    assert drives["rootfs"]["path_on_host"] == img and drives["rootfs"]["is_root_device"]
    assert not drives["rootfs"]["is_read_only"]
    assert drives["data_1"]["is_read_only"] and not drives["data_1"]["is_root_device"]
    assert cfg["entropy"] is not None
    # PUT on an existing id replaces that drive.
    mote.ok("PUT", "/drives/data_1", drive("data_1", img))
    drives = {d["drive_id"]: d for d in mote.get("/vm/config").json["drives"]}
    assert len(drives) == 2 and drives["data_1"]["path_on_host"] == img


def test_drive_rate_limiter_shows_in_vm_config(mote, tmp_path):
    img = pattern_image(tmp_path / "a.img")
    rl = {"bandwidth": {"size": 1048576, "refill_time": 100, "one_time_burst": 4096},
          "ops": {"size": 100, "refill_time": 1000}}
    mote.ok("PUT", "/drives/d", drive("d", img, rate_limiter=rl))
    got = mote.get("/vm/config").json["drives"][0]["rate_limiter"]
    assert got["bandwidth"] == rl["bandwidth"]
    assert got["ops"] == {**rl["ops"], "one_time_burst": 0}
    mote.ok("PUT", "/drives/d", drive("d", img, rate_limiter={"ops": None}))
    assert mote.get("/vm/config").json["drives"][0]["rate_limiter"] is None


def test_patch_drive_on_a_running_vm(mote, tmp_path):
    """PATCH /drives swaps the backing file and the rate limits of a running
    VM; a file that cannot be opened, an unknown drive or a bad limiter is
    refused and changes nothing."""
    a, b = pattern_image(tmp_path / "a.img"), pattern_image(tmp_path / "b.img", 64)
    mote.ok("PUT", "/drives/data", drive("data", a))
    ticking(mote)
    rl = {"ops": {"size": 10, "refill_time": 100}}
    mote.ok("PATCH", "/drives/data", {"drive_id": "data", "path_on_host": b, "rate_limiter": rl})
    d = mote.get("/vm/config").json["drives"][0]
    assert d["path_on_host"] == b and d["rate_limiter"]["ops"]["size"] == 10
    assert "/no/such.img" in mote.refused("PATCH", "/drives/data",
                                          {"drive_id": "data", "path_on_host": "/no/such.img"})
    odd = tmp_path / "odd.img"
    odd.write_bytes(bytes(1000))
    assert mote.alive(), mote.err()
    assert "512" in mote.refused("PATCH", "/drives/data",
                                 {"drive_id": "data", "path_on_host": str(odd)})
    assert "no drive" in mote.refused("PATCH", "/drives/other", {"drive_id": "other"})
    mote.refused("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {"ops": 5}})
    assert mote.get("/vm/config").json["drives"][0] == d
    mote.ok("PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": None})
    assert mote.get("/vm/config").json["drives"][0]["rate_limiter"] is None
    assert mote.alive()


def test_instance_start_boots_the_guest_and_mote_exits_with_it(mote):
    boot(mote, "hello")
    assert finished(mote) == ["mote-test: hello", "mote-test: done"]
    with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
        mote.get("/")


def test_serial_out_path_takes_the_console(mote, tmp_path):
    path = tmp_path / "serial.log"
    mote.ok("PUT", "/serial", {"serial_out_path": str(path)})
    boot(mote, "hello")
    assert finished(mote) == []
    assert lines(path.read_bytes()) == ["mote-test: hello", "mote-test: done"]


def test_entropy_device_reaches_the_guest(mote):
    mote.ok("PUT", "/entropy", {"rate_limiter": None})
    boot(mote, "rng")
    out = finished(mote)
    assert any(l.startswith("mote-test: rng ok") for l in out), out
    assert out[-1] == "mote-test: done"


def test_rate_limited_entropy_still_serves_the_guest(mote, tmp_path):
    """1 KiB per 10 ms and 2 requests per 10 ms: the rng guest's requests are
    throttled (the metrics say so), and all of them still come back filled."""
    rl = {"bandwidth": {"size": 1024, "refill_time": 10}, "ops": {"size": 2, "refill_time": 10}}
    path = tmp_path / "metrics.json"
    mote.ok("PUT", "/metrics", {"metrics_path": str(path)})
    mote.ok("PUT", "/entropy", {"rate_limiter": rl})
    assert mote.get("/vm/config").json["entropy"]["rate_limiter"]["ops"]["size"] == 2
    boot(mote, "rng")
    out = finished(mote)
    assert any(l.startswith("mote-test: rng ok") for l in out), out
    throttled = sum(l.get("entropy", {}).get("entropy_rate_limiter_throttled", 0)
                    for l in metric_lines(path))
    assert throttled > 0


def test_machine_config_reaches_the_guest(mote):
    boot(mote, "smp", vcpu_count=2, mem_size_mib=64)
    out = finished(mote)
    assert "mote-test: smp madt=2 up=2" in out, out


def test_logger_file_gets_mote_lines(mote, tmp_path):
    log = tmp_path / "mote.log"
    mote.ok("PUT", "/logger", {"log_path": str(log), "level": "Info", "show_level": True,
                               "show_log_origin": False})
    mote.refused("PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 1})
    # mote does not log refused requests (the client has the fault_message)...
    boot(mote, "hello")
    finished(mote)
    # ...but its own lines go to the logger's file, not to stderr.
    text = log.read_text()
    assert "mote: info:" in text, text
    assert mote.err() == []


def test_log_path_and_level_flags(start, tmp_path):
    log = tmp_path / "flag.log"
    m = start("--log-path", str(log), "--level", "Info")
    boot(m, "hello")
    finished(m)
    assert "mote: info:" in log.read_text()
    assert m.err() == []


def metric_lines(path):
    out = [json.loads(l) for l in path.read_text().splitlines()]
    for line in out:
        assert isinstance(line["utc_timestamp_ms"], int), line
    return out


def test_metrics_flush_and_exit(mote, tmp_path):
    path = tmp_path / "metrics.json"
    mote.ok("PUT", "/metrics", {"metrics_path": str(path)})
    assert "already" in mote.refused("PUT", "/metrics", {"metrics_path": str(path)})
    mote.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    first = metric_lines(path)
    assert len(first) == 1 and "api_server" in first[0], first
    boot(mote, "hello")
    finished(mote)
    lines_ = metric_lines(path)
    assert len(lines_) >= 2, lines_      # and one more at exit
    assert lines_[-1]["utc_timestamp_ms"] >= first[0]["utc_timestamp_ms"]


def test_metrics_while_running(mote, tmp_path):
    path = tmp_path / "metrics.json"
    mote.ok("PUT", "/metrics", {"metrics_path": str(path)})
    ticking(mote)
    mote.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    mote.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    got = metric_lines(path)
    assert len(got) == 2 and len(got[0]) > 2, got   # the VM's groups too


def test_flush_metrics_without_metrics(mote):
    assert "metrics" in mote.refused("PUT", "/actions", {"action_type": "FlushMetrics"})


def test_metrics_path_flag(start, tmp_path):
    path = tmp_path / "m.json"
    m = start("--metrics-path", str(path))
    assert "already" in m.refused("PUT", "/metrics", {"metrics_path": str(path)})
    boot(m, "hello")
    finished(m)
    assert metric_lines(path)


def read_fifo(path):
    """What is waiting in a FIFO now (mote holds it open, so this never blocks)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    data = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data.decode()


def pause_resume(m):
    m.ok("PATCH", "/vm", {"state": "Paused"})
    m.ok("PATCH", "/vm", {"state": "Resumed"})


def test_logger_and_metrics_to_fifos_nobody_reads_yet(mote, tmp_path):
    """As with Firecracker, a FIFO that nobody reads yet is accepted (mote
    opens it read-write); its reader, coming later, finds the lines."""
    log, met = tmp_path / "log.fifo", tmp_path / "metrics.fifo"
    os.mkfifo(log)
    os.mkfifo(met)
    mote.ok("PUT", "/logger", {"log_path": str(log), "level": "Info"})
    mote.ok("PUT", "/metrics", {"metrics_path": str(met)})
    ticking(mote)
    pause_resume(mote)
    mote.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    text = read_fifo(log)
    assert "mote: info: vm: paused" in text and "mote: info: vm: resumed" in text, text
    got = [json.loads(l) for l in read_fifo(met).splitlines()]
    assert got and "api_server" in got[-1] and "vcpu" in got[-1], got
    assert mote.alive() and mote.err() == []


def test_log_and_metrics_path_flags_to_fifos(start, tmp_path):
    log, met = tmp_path / "log.fifo", tmp_path / "metrics.fifo"
    os.mkfifo(log)
    os.mkfifo(met)
    m = start("--log-path", str(log), "--level", "Info", "--metrics-path", str(met))
    ticking(m)
    pause_resume(m)
    m.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    assert "mote: info: vm: paused" in read_fifo(log)
    got = [json.loads(l) for l in read_fifo(met).splitlines()]
    assert got and "api_server" in got[-1], got


def test_serial_out_path_to_a_fifo_nobody_reads_yet(mote, tmp_path):
    """InstanceStart does not wait for a reader; one that comes later reads
    the console."""
    fifo = tmp_path / "serial.fifo"
    os.mkfifo(fifo)
    mote.ok("PUT", "/serial", {"serial_out_path": str(fifo)})
    boot(mote, "ticker")
    deadline = time.monotonic() + 20
    text = ""
    while "mote-test: tick" not in text and time.monotonic() < deadline:
        text += read_fifo(fifo)
        time.sleep(0.05)
    assert "mote-test: tick" in text, (text, mote.err())
    assert mote.out() == []


def test_boot_source_files_must_be_regular_files(mote, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    before = mote.get("/vm/config").json
    for body in ({"kernel_image_path": str(fifo)},
                 {"kernel_image_path": guest("hello"), "initrd_path": str(fifo)},
                 {"kernel_image_path": str(tmp_path)}):
        msg = mote.refused("PUT", "/boot-source", body, needle="not a regular file")
        assert str(fifo) in msg or str(tmp_path) in msg, msg
    assert mote.get("/vm/config").json == before


def metric_totals(path):
    """Each counter summed over all lines (each line holds the change since
    the one before), as {"group.name": total}; store values (api_server)
    are left out."""
    totals = {}
    for line in metric_lines(path):
        for group, values in line.items():
            if isinstance(values, dict) and group != "api_server":
                for name, v in values.items():
                    totals[f"{group}.{name}"] = totals.get(f"{group}.{name}", 0) + v
    return totals


def test_metrics_startup_time_and_request_counters(mote, tmp_path):
    """Firecracker's api_server.process_startup_time_us/_cpu_us (values, the
    same in every line) and its per-request groups."""
    path = tmp_path / "metrics.json"
    mote.ok("PUT", "/metrics", {"metrics_path": str(path)})
    mote.get("/machine-config")
    mote.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    mote.refused("PATCH", "/machine-config", {"vcpu_count": 1, "huge_pages": "2M"})  # invalid
    mote.refused("PUT", "/drives/x", drive("x", tmp_path / "none"))                  # invalid
    mote.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
    boot(mote, "hello")
    finished(mote)
    got = metric_lines(path)
    api = got[0]["api_server"]
    assert api["process_startup_time_us"] > 0 and api["process_startup_time_cpu_us"] > 0, api
    assert all(l["api_server"] == api for l in got), got
    t = metric_totals(path)
    assert t["get_api_requests.machine_cfg_count"] == 1, t
    assert t["put_api_requests.machine_cfg_count"] == 1, t
    assert t["put_api_requests.machine_cfg_fails"] == 0, t
    assert t["put_api_requests.metrics_count"] == 1, t
    assert t["put_api_requests.boot_source_count"] == 1, t
    assert t["put_api_requests.actions_count"] == 2, t     # FlushMetrics, InstanceStart
    # Refused by validation (before the event loop): not counted, as documented.
    assert t["patch_api_requests.machine_cfg_count"] == 0, t
    assert t["put_api_requests.drive_count"] == 0, t


def test_block_metrics_count_the_guests_requests(mote, tmp_path):
    """blk's writer mode with total=100 on a 1 MiB disk: 100 writes of 4 KiB,
    a flush every 64 and one at the end, then the disk read back 4 KiB at a
    time."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    path = tmp_path / "metrics.json"
    mote.ok("PUT", "/metrics", {"metrics_path": str(path)})
    mote.ok("PUT", "/drives/data", drive("data", disk))
    boot(mote, "blk", "total=100")
    out = finished(mote)
    assert any(l.startswith("mote-test: blk writer writes=100 ") for l in out), out
    t = metric_totals(path)
    assert t["block_data.write_count"] == 100, t
    assert t["block_data.write_bytes"] == 100 * 4096, t
    assert t["block_data.flush_count"] == 2, t
    assert t["block_data.read_count"] == (1 << 20) // 4096, t
    assert t["block_data.read_bytes"] == 1 << 20, t
    assert t["block_data.execute_fails"] == 0 and t["block_data.invalid_reqs_count"] == 0, t


def test_pause_stops_device_work_too(mote, tmp_path):
    """A paused VM's devices serve nothing: the blk guest keeps 128 reads in
    flight against an ops limit (200 a second), so the limiter's timer would
    go on serving them with the vCPUs stopped; while paused the disk's read
    count stands still, and after the resume it moves again."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(4 << 20))
    path = tmp_path / "metrics.json"
    mote.ok("PUT", "/metrics", {"metrics_path": str(path)})
    mote.ok("PUT", "/drives/data", drive("data", disk,
                                         rate_limiter={"ops": {"size": 20, "refill_time": 100}}))
    boot(mote, "blk", "bench=1000000")

    def reads():
        mote.ok("PUT", "/actions", {"action_type": "FlushMetrics"})
        return metric_totals(path).get("block_data.read_count", 0)

    mote.wait_for(lambda out: reads() > 100, timeout=60)
    mote.ok("PATCH", "/vm", {"state": "Paused"})
    before = reads()
    time.sleep(1.5)   # ~300 reads' worth of the limiter's refills
    assert reads() == before
    mote.ok("PATCH", "/vm", {"state": "Resumed"})
    mote.wait_for(lambda out: reads() > before + 20, timeout=60)


def test_vcpu_metrics_count_exits_by_kind(mote, tmp_path):
    """The exits guest makes exactly 1000 port writes to the UART's scratch
    register and 1000 MMIO writes nothing claims; its other port writes are
    its console bytes (uart.write_count) and the power-off."""
    path = tmp_path / "metrics.json"
    mote.ok("PUT", "/metrics", {"metrics_path": str(path)})
    boot(mote, "exits", "exits=1000")
    finished(mote)
    t = metric_totals(path)
    console = len(mote.out_path.read_bytes())
    assert t["uart.write_count"] == console, (t, console)
    assert t["vcpu.exit_mmio_write"] == 1000 and t["vmm.unassigned_mmio"] == 1000, t
    assert 0 < t["vcpu.exit_io_out"] - 1000 - console <= 4, t
    assert t["vcpu.exit_mmio_read"] == 0, t


def test_keep_alive_connection_serves_many_requests(mote):
    c = UnixHTTPConnection(mote.sock)
    try:
        for _ in range(5):
            assert mote.request("GET", "/", conn=c).status == 200
            assert mote.request("PATCH", "/machine-config", {"vcpu_count": 1}, conn=c).status == 204
            assert mote.request("PUT", "/vsock", {}, conn=c).status == 400
    finally:
        c.close()


def test_expect_100_continue(mote):
    """curl sends Expect: 100-continue for large bodies and waits for the 100."""
    body = json.dumps({"vcpu_count": 2, "mem_size_mib": 128}).encode()
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(mote.sock)
    s.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    assert s.recv(4096).startswith(b"HTTP/1.1 100")
    s.sendall(body)
    assert s.recv(4096).startswith(b"HTTP/1.1 204")
    s.close()
    assert mote.get("/machine-config").json["vcpu_count"] == 2


# ---------------------------------------------------------------- a client's sequence


@pytest.fixture
def tap_netns(kvm):
    """A network namespace holding a tap, mgo0, made by the test; yields the
    command prefix that runs a program in it."""
    with netns_with_tap(f"mote-go{os.getpid()}", "mgo0") as ns:
        yield ns


def test_go_sdk_sequence_attaches_the_root_drive_as_vda(tmp_path, tap_netns):
    """What firecracker-go-sdk sends for a simple VM, headers included:
    boot-source, machine-config, drives, network-interfaces, InstanceStart."""
    m = Mote(tmp_path, ["--id", "go-vm"], "go", prefix=tap_netns)
    try:
        img = pattern_image(tmp_path / "rootfs.ext4")
        go = {"User-Agent": "Go-http-client/1.1", "Accept-Encoding": "gzip"}
        seq = [
            ("GET", "/machine-config", None, 200),     # the SDK's wait for the socket
            ("PUT", "/boot-source", {"kernel_image_path": guest("blk"),
                                     "boot_args": "blk=rw pattern=1"}, 204),
            ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128, "smt": False},
             204),
            ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": img,
                                       "is_root_device": True, "is_read_only": False}, 204),
            ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": "mgo0",
                                                 "guest_mac": "02:fc:00:00:00:05"}, 204),
            ("PUT", "/actions", START, 204),
        ]
        for method, path, body, status in seq:
            r = m.request(method, path, body, headers=go)
            assert r.status == status, (method, path, r)
        out = finished(m)
        assert "mote-test: blk pattern ok sectors=2048" in out, out
        assert "mote-test: blk id=rootfs" in out, out       # the drive's id is its serial
        assert "mote-test: blk rw ok" in out, out
        assert out[-2:] == ["mote-test: blk ok", "mote-test: done"], out
        assert m.err() == []
    finally:
        m.kill()


def cmdline_of(m):
    out = finished(m)
    line = [l for l in out if l.startswith("mote-test: cmdline ")]
    assert line, out
    return line[0][len("mote-test: cmdline "):]


def test_root_drive_appends_root_to_boot_args(mote, tmp_path):
    mote.ok("PUT", "/drives/rootfs", drive("rootfs", pattern_image(tmp_path / "r.img"), True))
    boot(mote, "ticker", "ticks=1 console=ttyS0")
    assert cmdline_of(mote) == "ticks=1 console=ttyS0 root=/dev/vda rw"


def test_read_only_root_with_partuuid(mote, tmp_path):
    mote.ok("PUT", "/drives/rootfs", drive("rootfs", pattern_image(tmp_path / "r.img"), True,
                                           is_read_only=True, partuuid="0eaa91a0-01"))
    mote.ok("PUT", "/drives/data", drive("data", pattern_image(tmp_path / "d.img")))
    boot(mote, "ticker", "ticks=1")
    assert cmdline_of(mote) == "ticks=1 root=PARTUUID=0eaa91a0-01 ro"


def test_default_boot_args(mote):
    ticking(mote)          # no boot_args: the default ones do not stop the ticker
    m = mote.out()
    assert "mote-test: cmdline console=ttyS0 reboot=k" in m, m


# ---------------------------------------------------------------- state rules


PRE_BOOT = [
    ("PUT", "/boot-source", {"kernel_image_path": DOC}),
    ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 128}),
    ("PATCH", "/machine-config", {"vcpu_count": 1}),
    ("PUT", "/drives/late", {"drive_id": "late", "path_on_host": DOC,
                             "is_root_device": False, "is_read_only": True}),
    ("PUT", "/entropy", {}),
    ("PUT", "/logger", {"level": "Info"}),
    ("PUT", "/serial", {"serial_out_path": "/dev/null"}),
]


def test_pre_boot_requests_are_refused_once_running(mote):
    ticking(mote)
    for method, path, body in PRE_BOOT:
        msg = mote.refused(method, path, body)
        assert "only valid before the microVM starts" in msg, (path, msg)
    assert mote.refused("PUT", "/actions", START) == "the microVM is already running"
    r = mote.get("/")
    assert r.status == 200 and r.json["state"] == "Running"
    assert mote.get("/machine-config").status == 200
    assert mote.get("/vm/config").json["boot-source"]["kernel_image_path"] == guest("ticker")
    assert mote.alive()


def test_patch_vm_before_boot_is_refused(mote):
    msg = mote.refused("PATCH", "/vm", {"state": "Paused"})
    assert "only valid after the microVM starts" in msg
    assert mote.get("/").json["state"] == "Not started"


def test_pause_stops_the_guest_and_resume_continues_it(mote):
    ticking(mote)
    mote.ok("PATCH", "/vm", {"state": "Paused"})
    assert mote.get("/").json["state"] == "Paused"
    time.sleep(0.1)                 # a line the UART was carrying
    before = mote.ticks()
    time.sleep(0.6)
    assert mote.ticks() == before, "the guest kept ticking while paused"
    mote.ok("PATCH", "/vm", {"state": "Paused"})       # idempotent, as Firecracker
    assert mote.get("/").json["state"] == "Paused"
    mote.ok("PATCH", "/vm", {"state": "Resumed"})
    assert mote.get("/").json["state"] == "Running"
    mote.wait_for(lambda out: mote.ticks() >= before + 3)
    mote.ok("PATCH", "/vm", {"state": "Resumed"})
    assert mote.alive()


def test_instance_start_twice(mote):
    boot(mote, "ticker")
    assert "already running" in mote.refused("PUT", "/actions", START)


def test_instance_start_without_boot_source(mote):
    assert "kernel" in mote.refused("PUT", "/actions", START)
    assert mote.get("/").json["state"] == "Not started"
    boot(mote, "hello")             # and the instance can still start afterwards
    assert finished(mote)[-1] == "mote-test: done"


def test_failed_instance_start_can_be_retried(mote, tmp_path):
    mote.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 1 << 43})
    mote.ok("PUT", "/boot-source", {"kernel_image_path": guest("hello")})
    fds = mote.fds()
    assert "Cannot start microvm" in mote.refused("PUT", "/actions", START)
    mote.ok("PUT", "/serial", {"serial_out_path": str(tmp_path / "no" / "such" / "dir")})
    mote.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    assert "Cannot start microvm" in mote.refused("PUT", "/actions", START)
    assert mote.fds(at_most=fds) <= fds, "a failed InstanceStart left file descriptors open"
    assert mote.get("/").json["state"] == "Not started"
    mote.ok("PUT", "/serial", {"serial_out_path": str(tmp_path / "serial.out")})
    mote.ok("PUT", "/actions", START)
    finished(mote)
    assert lines((tmp_path / "serial.out").read_bytes())[-1] == "mote-test: done"


def test_send_ctrl_alt_del_before_boot(mote):
    assert "not running" in mote.refused("PUT", "/actions", {"action_type": "SendCtrlAltDel"})


# ---------------------------------------------------------------- errors


BAD_BODIES = [
    # (method, path, raw body, words the fault_message must contain)
    ("PUT", "/machine-config", '{"vcpu_count": 1, ', "invalid JSON"),
    ("PUT", "/machine-config", "not json", "invalid JSON"),
    ("PUT", "/machine-config", "", "body is required"),
    ("PUT", "/machine-config", "[1, 2]", "JSON object"),
    ("PUT", "/machine-config", '"vcpu_count"', "invalid JSON"),
    ("PUT", "/machine-config", "null", "invalid JSON"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 128, "cpus": 2}', "cpus"),
    ("PUT", "/machine-config", '{"vcpu_count": "1", "mem_size_mib": 128}', "vcpu_count"),
    ("PUT", "/machine-config", '{"vcpu_count": 1.5, "mem_size_mib": 128}', "vcpu_count"),
    ("PUT", "/machine-config", '{"vcpu_count": -1, "mem_size_mib": 128}', "vcpu_count"),
    ("PUT", "/machine-config", '{"vcpu_count": 0, "mem_size_mib": 128}', "vcpu_count"),
    ("PUT", "/machine-config", '{"vcpu_count": 255, "mem_size_mib": 128}', "vcpu_count"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 0}', "mem_size_mib"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 99999999999999999999}',
     "invalid JSON"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 9223372036854775807}',
     "mem_size_mib"),
    ("PUT", "/machine-config", '{"vcpu_count": 1}', "mem_size_mib"),
    ("PUT", "/machine-config", '{"mem_size_mib": 128}', "vcpu_count"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 128, "smt": 1}', "smt"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 128, "smt": true}', "smt"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 128, "cpu_template": "T2"}',
     "T2"),
    ("PUT", "/machine-config", '{"vcpu_count": 1, "mem_size_mib": 128, "huge_pages": "2M"}',
     "huge_pages"),
    ("PATCH", "/machine-config", '{"vcpu_count": 0}', "vcpu_count"),
    ("PATCH", "/machine-config", '{"bogus": 0}', "bogus"),
    ("PUT", "/boot-source", "{}", "kernel_image_path"),
    ("PUT", "/boot-source", '{"kernel_image_path": 7}', "kernel_image_path"),
    ("PUT", "/boot-source", '{"kernel_image_path": "/no/such/kernel"}', "/no/such/kernel"),
    ("PUT", "/boot-source", json.dumps({"kernel_image_path": DOC, "initrd_path": "/no/initrd"}),
     "/no/initrd"),
    ("PUT", "/actions", '{"action_type": "Reboot"}', "Reboot"),
    ("PUT", "/actions", '{}', "action_type"),
    ("PUT", "/actions", '{"action_type": "InstanceStart", "x": 1}', "'x'"),
    ("PUT", "/vm", '{"state": "Paused"}', "no route"),
    ("PATCH", "/vm", '{"state": "Stopped"}', "Stopped"),
    ("PUT", "/entropy", '{"rate_limiter": {"bandwidth": {"size": 1}}}', "refill_time"),
    ("PUT", "/entropy", '{"extra": true}', "extra"),
    ("PUT", "/logger", '{"level": "Loud"}', "Loud"),
    ("PUT", "/logger", '{"log_path": 5}', "log_path"),
    ("PUT", "/serial", "{}", "serial_out_path"),
    ("PUT", "/drives/rootfs", '{"drive_id": "rootfs"}', "path_on_host"),
    ("PUT", "/drives/rootfs",
     '{"drive_id": "other", "path_on_host": "/dev/null", "is_root_device": false}', "other"),
    ("PUT", "/drives/rootfs",
     '{"drive_id": "rootfs", "path_on_host": "/no/such.img", "is_root_device": false}',
     "/no/such.img"),
    ("PUT", "/drives/rootfs",
     '{"drive_id": "rootfs", "path_on_host": "/dev/null", "is_root_device": "yes"}',
     "is_root_device"),
    ("PUT", "/drives/rootfs", '{"drive_id": "rootfs", "path_on_host": "/dev/null", '
     '"is_root_device": false, "cache_type": "None"}', "cache_type"),
    ("PUT", "/drives/rootfs", '{"drive_id": "rootfs", "path_on_host": "/dev/null", '
     '"is_root_device": false, "io_engine": "Fast"}', "io_engine"),
    ("PUT", "/drives/rootfs", '{"drive_id": "rootfs", "path_on_host": "/dev/null", '
     '"is_root_device": false, "socket": "/tmp/vhost"}', "vhost-user"),
    ("PUT", "/drives/bad-id", '{"drive_id": "bad-id", "path_on_host": "/dev/null", '
     '"is_root_device": false}', "bad-id"),
    ("PUT", "/drives/a.b", '{"drive_id": "a.b", "path_on_host": "/dev/null", '
     '"is_root_device": false}', "a.b"),
    ("PUT", "/drives/" + "d" * 65, '{"drive_id": "' + "d" * 65 + '", "path_on_host": '
     '"/dev/null", "is_root_device": false}', "too long"),
    ("PUT", "/drives/", '{}', "no route"),
    ("PUT", "/drives/d", '{"drive_id": "d", "path_on_host": "/dev/null", "is_root_device": false, '
     '"rate_limiter": {"bandwidth": {"size": 1}}}', "refill_time"),
    ("PUT", "/drives/d", '{"drive_id": "d", "path_on_host": "/dev/null", "is_root_device": false, '
     '"rate_limiter": {"ops": {"size": 10, "refill_time": 3600001}}}', "refill_time"),
    ("PUT", "/drives/d", '{"drive_id": "d", "path_on_host": "/dev/null", "is_root_device": false, '
     '"rate_limiter": {"ops": {"size": -1, "refill_time": 10}}}', "size"),
    ("PUT", "/drives/d", '{"drive_id": "d", "path_on_host": "/dev/null", "is_root_device": false, '
     '"rate_limiter": {"bw": {"size": 1, "refill_time": 10}}}', "bw"),
    ("PUT", "/drives/d", '{"drive_id": "d", "path_on_host": "/dev/null", "is_root_device": false, '
     '"rate_limiter": {"ops": {"size": 1125899906842625, "refill_time": 10}}}', "2^50"),
    ("PUT", "/drives/d", '{"drive_id": "d", "path_on_host": "/dev/null", "is_root_device": false, '
     '"rate_limiter": {"ops": {"size": 1, "refill_time": 10, "burst": 5}}}', "burst"),
    ("PATCH", "/drives/d", '{"drive_id": "d"}', "only valid after"),
]


@pytest.mark.parametrize("method,path,raw,needle", BAD_BODIES,
                         ids=[f"{m} {p[:24]} {r[:30]}" for m, p, r, _ in BAD_BODIES])
def test_bad_request_is_refused_with_a_reason(mote, method, path, raw, needle):
    mote.refused(method, path, raw=raw, needle=needle)
    assert mote.get("/").status == 200


def test_refused_requests_change_nothing(mote):
    before = mote.get("/vm/config").json
    for method, path, raw, _ in BAD_BODIES:
        mote.request(method, path, raw=raw)
    assert mote.get("/vm/config").json == before


def test_second_root_drive(mote, tmp_path):
    mote.ok("PUT", "/drives/rootfs", drive("rootfs", pattern_image(tmp_path / "a.img"), True))
    msg = mote.refused("PUT", "/drives/other", drive("other", pattern_image(tmp_path / "b.img"),
                                                     True))
    assert "rootfs" in msg and "root" in msg
    # The same drive may be put again as root.
    mote.ok("PUT", "/drives/rootfs", drive("rootfs", tmp_path / "b.img", True))
    assert len(mote.get("/vm/config").json["drives"]) == 1


def test_read_write_drive_must_be_writable(mote, tmp_path):
    """A drive mote may not write is refused unless it is read-only. Root
    writes through mode bits, so as root the file is made immutable."""
    img = tmp_path / "ro.img"
    pattern_image(img)
    img.chmod(0o444)
    immutable = os.geteuid() == 0
    if immutable:
        r = subprocess.run(["chattr", "+i", str(img)], capture_output=True)
        assert r.returncode == 0, r.stderr   # the test's own precondition
    try:
        assert str(img) in mote.refused("PUT", "/drives/d", drive("d", img))
        mote.ok("PUT", "/drives/d", drive("d", img, is_read_only=True))
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(img)])


UNSUPPORTED = [
    ("PUT", "/balloon", {"amount_mib": 0, "deflate_on_oom": True}),
    ("GET", "/balloon", None),
    ("PATCH", "/balloon", {"amount_mib": 1}),
    ("GET", "/balloon/statistics", None),
    ("PATCH", "/balloon/statistics", {"stats_polling_interval_s": 1}),
    ("PUT", "/mmds", {"latest": {}}),
    ("GET", "/mmds", None),
    ("PATCH", "/mmds", {}),
    ("PUT", "/mmds/config", {"network_interfaces": ["eth0"]}),
    ("PUT", "/cpu-config", {}),
    ("PUT", "/hotplug/memory", {"total_size_mib": 1024}),
    ("GET", "/hotplug/memory", None),
    ("PATCH", "/hotplug/memory", {"requested_size_mib": 0}),
    ("PUT", "/pmem/p0", {"id": "p0", "path_on_host": "/dev/null"}),
    ("PATCH", "/pmem/p0", {"id": "p0"}),
    ("PATCH", "/balloon/hinting/start", {"acknowledge_on_stop": True}),
    ("GET", "/balloon/hinting/status", None),
    ("PATCH", "/balloon/hinting/stop", {}),
]


@pytest.mark.parametrize("method,path,body", UNSUPPORTED,
                         ids=[f"{m} {p}" for m, p, _ in UNSUPPORTED])
def test_unsupported_endpoint(mote, method, path, body):
    """Firecracker endpoints mote does not build: a 400 that says so (not
    "no route"), whatever the body, and nothing changes."""
    before = mote.get("/vm/config").json
    msg = mote.refused(method, path, body)
    assert "not supported" in msg, msg
    assert mote.get("/vm/config").json == before


@pytest.mark.parametrize("path", ["/nope", "/drives", "/machine-config/x", "//", "/version/"])
def test_unknown_path(mote, path):
    assert "no route" in mote.refused("GET", path)


def test_very_long_path(mote):
    msg = mote.refused("GET", "/" + "a" * 2000)
    assert "no route" in msg or "too long" in msg
    msg = mote.refused("PUT", "/drives/" + "a" * 4000, raw="{}")
    assert "too long" in msg


@pytest.mark.parametrize("method", ["DELETE", "POST", "OPTIONS", "TRACE", "CONNECT"])
def test_unknown_method(mote, method):
    mote.refused(method, "/", status=405)
    mote.refused(method, "/machine-config", raw="{}", status=405)


@pytest.mark.parametrize("method", ["FOO", "BREW"])
def test_method_unknown_to_http_server(mote, method):
    """Methods the HTTP library itself does not parse never reach mote's
    routes: evhttp answers 501 (its own HTML page, see docs/API.md), and
    mote goes on serving. (CONNECT and TRACE reach mote: test_unknown_method.)
    The reply is read from a raw socket, its head is all that matters."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(mote.sock)
    s.sendall(b"%s / HTTP/1.1\r\nHost: localhost\r\n\r\n" % method.encode())
    head = s.recv(4096)
    s.close()
    assert head.startswith(b"HTTP/1.1 501 "), head
    assert mote.get("/").status == 200


def test_head_is_refused_without_a_body(mote):
    r = mote.request("HEAD", "/")
    assert r.status == 405 and r.raw == b""


def test_body_size_limit(mote):
    small = json.dumps({"vcpu_count": 2, "mem_size_mib": 128})
    r = mote.put("/machine-config", raw=small + " " * (MAX_BODY - len(small)))
    assert r.status == 204, r
    msg = mote.refused("PUT", "/machine-config", raw=small + " " * (MAX_BODY + 1 - len(small)))
    assert str(MAX_BODY) in msg
    mote.refused("PUT", "/boot-source", raw="x" * (4 * MAX_BODY))
    assert mote.get("/machine-config").json["vcpu_count"] == 2


def test_huge_body_is_refused_unread(mote):
    """Past 4 x 51200 bytes evhttp answers by itself (413, its own HTML page:
    see docs/API.md) from the headers, without buffering the body; mote goes
    on serving."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(mote.sock)
    s.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (5 * MAX_BODY))
    try:
        s.sendall(b" " * (5 * MAX_BODY))
    except OSError:
        pass        # mote may answer and close before reading it all
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert re.match(rb"HTTP/1.1 413 ", head), data
    assert mote.get("/").status == 200


def test_overlong_boot_args_with_a_root_drive(mote, tmp_path):
    """boot_args longer than mote's 4096-byte command-line buffer, with a root
    drive so that root=/dev/vda is appended: refused, and mote unharmed. The
    lengths sweep the bytes after the buffer, so a write past its end (at
    cmdline + strlen(boot_args)) hits the pointers that follow it whatever the
    struct's layout, and the next start or request shows it."""
    mote.ok("PUT", "/drives/rootfs", drive("rootfs", pattern_image(tmp_path / "r.img"), True))
    for n in list(range(4096, 4096 + 1536, 8)) + [8000, 40000]:
        mote.ok("PUT", "/boot-source", {"kernel_image_path": guest("ticker"),
                                        "boot_args": "x" * n})
        assert "too long" in mote.refused("PUT", "/actions", START)
    mote.ok("PUT", "/boot-source", {"kernel_image_path": guest("ticker"),
                                    "boot_args": "ticks=1"})
    mote.ok("PUT", "/actions", START)
    assert cmdline_of(mote) == "ticks=1 root=/dev/vda rw"


# ---------------------------------------------------------------- robustness


def test_many_concurrent_clients(mote):
    results = []
    lock = threading.Lock()

    def client():
        try:
            r = mote.get("/")
            res = (r.status, r.json["state"])
        except Exception as e:  # noqa: BLE001 — recorded and asserted below
            res = repr(e)
        with lock:
            results.append(res)

    threads = [threading.Thread(target=client) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [(200, "Not started")] * 50


def test_stalled_clients_do_not_block_others(mote):
    stalled = []
    for head in (b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"vc",
                 b"GET / HTT", b"PUT /actions HTTP/1.1\r\nHost: x\r\n"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(mote.sock)
        s.sendall(head)
        stalled.append(s)
    for _ in range(3):
        assert mote.get("/").status == 200
    # ...answered while every stalled client still holds its connection,
    # unanswered (no bytes, no end of stream yet).
    for s in stalled:
        s.setblocking(False)
        with pytest.raises(BlockingIOError):
            s.recv(1)
        s.setblocking(True)
    # The stalled connections are dropped after mote's client timeout (10 s).
    for s in stalled:
        s.settimeout(20)
        assert s.recv(4096) == b""
        s.close()
    assert mote.get("/").status == 200


def test_half_closed_client_gets_its_answer(mote):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(mote.sock)
    s.sendall(b"GET /machine-config HTTP/1.1\r\nHost: localhost\r\n\r\n")
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 200"), data
    assert b'"vcpu_count":1' in data


def test_clients_that_vanish(mote):
    for head in (b"PUT /machine-config HTTP/1.1\r\nContent-Length: 50000\r\n\r\n{",
                 b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x00\xff" * 100, b"\r\n\r\n"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(mote.sock)
        s.sendall(head)
        s.close()
    assert mote.get("/").status == 200


def test_garbage_request_line(mote):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(mote.sock)
    s.sendall(b"\x16\x03\x01 garbage \xff\xfe\r\n\r\n")
    data = s.recv(4096)
    s.close()
    assert data == b"" or data.startswith(b"HTTP/1.1 4"), data
    assert mote.get("/").status == 200


def test_no_fd_leak(mote):
    mote.get("/")
    before = mote.fds()
    for i in range(200):
        if i % 4 == 0:
            mote.get("/")
        elif i % 4 == 1:
            mote.patch("/machine-config", {"vcpu_count": 1})
        elif i % 4 == 2:
            mote.put("/machine-config", raw="{bad")
        else:
            mote.put("/vsock", {})
    assert mote.fds(at_most=before) <= before


def test_logger_put_again_does_not_leak_fds(mote, tmp_path):
    mote.ok("PUT", "/logger", {"log_path": str(tmp_path / "l.log")})
    before = mote.fds()
    for _ in range(20):
        mote.ok("PUT", "/logger", {"log_path": str(tmp_path / "l.log")})
    assert mote.fds(at_most=before) <= before, f"{mote.fds() - before} descriptors leaked"


def test_requests_after_the_guest_exited(mote):
    boot(mote, "hello")
    finished(mote)
    with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
        mote.get("/")


def test_sigterm_while_running_removes_the_socket(mote):
    ticking(mote)
    mote.proc.send_signal(signal.SIGTERM)
    assert mote.wait(10) != 0
    assert not os.path.exists(mote.sock)


# ---------------------------------------------------------------- --config-file


def write_config(path, **sections):
    path.write_text(json.dumps(sections))
    return str(path)


def test_config_file_boots_without_api_calls(start, tmp_path):
    img = pattern_image(tmp_path / "root.img")
    cfg = write_config(tmp_path / "vm.json",
                       **{"boot-source": {"kernel_image_path": guest("blk"),
                                          "boot_args": "blk=rw pattern=1"},
                          "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
                          "drives": [drive("rootfs", img, True, is_read_only=False)],
                          "network-interfaces": [], "vsock": None})
    m = start("--config-file", cfg)
    out = finished(m)
    assert "mote-test: blk id=rootfs" in out and out[-1] == "mote-test: done", out


def test_config_file_with_no_api(kvm, tmp_path):
    cfg = write_config(tmp_path / "vm.json",
                       **{"boot-source": {"kernel_image_path": guest("hello")},
                          "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}})
    r = run_mote(["--no-api", "--config-file", cfg])
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout) == ["mote-test: hello", "mote-test: done"]
    assert r.stderr == b""


def test_config_file_then_api_while_running(start, tmp_path):
    cfg = write_config(tmp_path / "vm.json",
                       **{"boot-source": {"kernel_image_path": guest("ticker")}})
    m = start("--config-file", cfg)
    m.wait_for(lambda out: any(l.startswith("mote-test: tick") for l in out))
    assert m.get("/").json["state"] == "Running"
    assert "already running" in m.refused("PUT", "/actions", START)


def test_config_file_logger_section(kvm, tmp_path):
    log = tmp_path / "mote.log"
    cfg = write_config(tmp_path / "vm.json",
                       **{"boot-source": {"kernel_image_path": guest("hello")},
                          "logger": {"log_path": str(log), "level": "Info",
                                     "show_level": True, "show_log_origin": False}})
    r = run_mote(["--no-api", "--config-file", cfg])
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout) == ["mote-test: hello", "mote-test: done"]
    assert r.stderr == b""                      # mote's own lines went to the log
    assert "mote: info: guest reset" in log.read_text(), log.read_text()


def test_vm_config_is_a_valid_config_file(start, tmp_path):
    """GET /vm/config's output, fed back as --config-file, builds the same
    microVM: it boots, and its GET /vm/config is the same."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    rl = {"bandwidth": {"size": 1 << 20, "refill_time": 100, "one_time_burst": 0},
          "ops": {"size": 1000, "refill_time": 100, "one_time_burst": 0}}
    a = start()
    a.ok("PUT", "/boot-source", {"kernel_image_path": guest("ticker"), "boot_args": "x=1"})
    a.ok("PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 64})
    a.ok("PUT", "/drives/data", drive("data", disk, rate_limiter=rl))
    a.ok("PUT", "/entropy", {"rate_limiter": rl})
    a.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": str(tmp_path / "v.sock")})
    cfg = a.get("/vm/config").json
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(cfg))
    b = start("--config-file", str(path))
    b.wait_for(lambda out: any(l.startswith("mote-test: tick") for l in out))
    assert b.get("/vm/config").json == cfg
    assert b.err() == []


BAD_CONFIGS = [
    ('{"boot-source": ', "not a JSON object"),
    ('{"logger": {"level": "Loud"}}', "Loud"),
    ("[]", "not a JSON object"),
    ('{"boot-source": {"kernel_image_path": "/no/kernel"}}', "/no/kernel"),
    ('{"machine-config": {"vcpu_count": 0, "mem_size_mib": 64}}', "vcpu_count"),
    ('{"vsock": {"guest_cid": 2, "uds_path": "/tmp/v"}}', "guest_cid"),
    ('{"drives": [{"path_on_host": "/dev/null", "is_root_device": false}]}', "drive_id"),
    ('{"frobnicate": {}}', "frobnicate"),
    ('{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}', "kernel"),
]


@pytest.mark.parametrize("text,needle", BAD_CONFIGS, ids=[t[:30] for t, _ in BAD_CONFIGS])
def test_bad_config_file(kvm, tmp_path, text, needle):
    path = tmp_path / "bad.json"
    path.write_text(text)
    sock = tmp_path / "s.sock"
    for args in (["--no-api"], ["--api-sock", str(sock)]):
        r = run_mote(args + ["--config-file", str(path)], timeout=10)
        err = lines(r.stderr)
        assert r.returncode == 1, (r.returncode, err)
        assert len(err) == 1 and needle in err[0], err
        assert r.stdout == b""
        assert not sock.exists()


def test_missing_config_file(kvm, tmp_path):
    r = run_mote(["--no-api", "--config-file", str(tmp_path / "none.json")], timeout=10)
    assert r.returncode == 1
    assert len(lines(r.stderr)) == 1 and "none.json" in r.stderr.decode()


def test_no_api_without_config_file(kvm):
    r = run_mote(["--no-api"], timeout=10)
    assert r.returncode == 1
    err = lines(r.stderr)
    assert len(err) == 1 and "--config-file" in err[0], err


@pytest.mark.parametrize("args,needle", [(["--bogus"], "--bogus"),
                                         (["--level", "Loud"], "Loud"),
                                         (["--api-sock"], "--api-sock"),
                                         (["--metrics-path", "/no/such/dir/m"], "/no/such/dir/m")])
def test_bad_flags(kvm, tmp_path, args, needle):
    r = run_mote(["--api-sock", str(tmp_path / "s.sock")] + args, timeout=10)
    err = lines(r.stderr)
    assert r.returncode == 1 and len(err) == 1 and needle in err[0], (r.returncode, err)


def test_socket_path_in_use(start, tmp_path):
    m = start()
    r = run_mote(["--api-sock", m.sock], timeout=10)
    assert r.returncode == 1 and len(lines(r.stderr)) == 1, r.stderr
    assert m.get("/").status == 200


# ---------------------------------------------------------------- fuzzing


def routes():
    r = subprocess.run([MOTE, "--api-routes"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    table = []
    for line in r.stdout.splitlines():
        method, path, status = line.split()
        table.append((method, path, status))
    assert table
    return table


FIELDS = ["vcpu_count", "mem_size_mib", "smt", "track_dirty_pages", "cpu_template",
          "huge_pages", "kernel_image_path", "initrd_path", "boot_args", "drive_id",
          "path_on_host", "is_root_device", "is_read_only", "partuuid", "cache_type",
          "io_engine", "rate_limiter", "socket", "action_type", "state", "serial_out_path",
          "log_path", "level", "show_level", "module", "guest_cid", "amount_mib"]
WORDS = ["InstanceStart", "SendCtrlAltDel", "FlushMetrics", "Paused", "Resumed", "None",
         "Unsafe", "Writeback", "Sync", "Async", "Trace", "Off", "Info", "rootfs", "/dev/null",
         "", "\u00e9\u4e2d\U0001F600", "\\u0000", "a" * 300, "%s%n%x"]


def rand_value(rng, depth=0):
    k = rng.randrange(10 if depth < 4 else 6)
    if k == 0:
        return rng.choice([0, 1, -1, 254, 255, 2 ** 31, 2 ** 63 - 1, -2 ** 63, 2 ** 44])
    if k == 1:
        return rng.choice([True, False, None])
    if k == 2:
        return rng.choice(WORDS)
    if k == 3:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x2fff)]))
                       for _ in range(rng.randrange(20)))
    if k == 4:
        return float(f"{rng.random():.6f}e{rng.randrange(-400, 400)}")
    if k == 5:
        return rng.randrange(-10, 1000)
    if k in (6, 7):
        return {rng.choice(FIELDS): rand_value(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [rand_value(rng, depth + 1) for _ in range(rng.randrange(4))]


def rand_body(rng):
    k = rng.randrange(12)
    if k == 0:
        return None
    if k == 1:
        return "[" * rng.randrange(1, 20000) + "]" * rng.randrange(3)
    if k == 2:
        return '{"a":' * rng.randrange(1, 5000)
    if k == 3:
        return rng.choice(["1e99999", "99999999999999999999999", "-0", "NaN", "Infinity",
                           '{"vcpu_count": 1e400}', '{"mem_size_mib": 18446744073709551616}',
                           '"\\ud800"', '{"a":"\\u0000"}', "\ufeff{}", '{"a":1,"a":2}'])
    if k == 4:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(200))).decode("latin-1")
    text = json.dumps({rng.choice(FIELDS): rand_value(rng) for _ in range(rng.randrange(6))}
                      if k < 10 else rand_value(rng), ensure_ascii=rng.random() < 0.5)
    if k == 11:
        text = text[:rng.randrange(len(text) + 1)]
    return text


def test_fuzz_requests(mote):
    seed = int(os.environ.get("MOTE_FUZZ_SEED", time.time_ns() % 2 ** 32))
    rng = random.Random(seed)
    table = routes()
    paths = sorted({p.replace("{id}", "") for _, p, _ in table})
    deadline = time.monotonic() + float(os.environ.get("MOTE_FUZZ_SECONDS", "10"))
    n = 0
    statuses = {}
    while time.monotonic() < deadline:
        method = rng.choice(["GET", "PUT", "PATCH"] * 5 + ["DELETE", "POST", "OPTIONS", "XYZ"])
        path = rng.choice(paths)
        if path.endswith("/"):
            path += rng.choice(["rootfs", "eth0", "a" * 70, "x%20y", "..", "%00", "\u00e9"])
        if rng.random() < 0.05:
            path += rng.choice(["?x=1", "/extra", "#f", "%2e%2e"])
        body = rand_body(rng)
        data = body.encode("utf-8", "surrogatepass") if body is not None else None
        try:
            r = mote.request(method, urllib.parse.quote(path, safe="/%?#="), raw=data)
        except (http.client.HTTPException, OSError) as e:
            assert mote.alive(), f"mote died on {method} {path} {body!r:.300}: {e}"
            continue
        n += 1
        statuses[r.status] = statuses.get(r.status, 0) + 1
        what = f"seed {seed}: {method} {path} {body!r:.300} -> {r}"
        assert r.status < 500 or r.status == 503 or (r.status == 501 and method == "XYZ"), what
        if r.status >= 400 and method in ("GET", "PUT", "PATCH", "DELETE", "POST"):
            assert r.json and r.json.get("fault_message"), what
    assert mote.alive()
    r = mote.get("/")
    assert r.status == 200 and r.json["state"] == "Not started"
    assert n > 100, statuses
    assert mote.err() == []


# ---------------------------------------------------------------- docs/API.md


DOC_STATUS = {"supported": "supported", "not supported yet": "unsupported",
              "not supported": "unsupported"}


def doc_table():
    """{(METHOD, path with {id}): status} from docs/API.md's endpoint table."""
    rows = {}
    with open(DOC) as f:
        for line in f:
            m = re.match(r"\|\s*(GET|PUT|PATCH)\s*\|\s*`([^`]+)`\s*\|\s*([a-z ]+?)\s*\|", line)
            if m:
                path = re.sub(r"\{[a-z_]+\}", "{id}", m.group(2))
                key = (m.group(1), path)
                assert key not in rows, f"{key} twice in docs/API.md"
                assert m.group(3) in DOC_STATUS, line
                rows[key] = m.group(3)
    return rows


def test_api_doc_lists_every_route_with_its_status():
    doc = doc_table()
    table = {(m, p): s for m, p, s in routes()}
    for key, status in table.items():
        assert key in doc, f"{key} is missing from docs/API.md"
        assert DOC_STATUS[doc[key]] == status, (key, doc[key], status)
    for key, status in doc.items():
        if status == "supported":
            assert table.get(key) == "supported", f"docs/API.md says {key} is supported"
        elif key not in table:
            assert status == "not supported", f"{key} has no route: say 'not supported'"


def test_api_doc_lists_the_flags():
    text = open(DOC).read()
    for flag in ["--api-sock", "--config-file", "--no-api", "--id", "--log-path", "--level",
                 "--show-level", "--show-log-origin", "--metrics-path", "--boot-timer",
                 "--seccomp-filter", "--no-seccomp", "--api-routes", "--help-api"]:
        assert f"`{flag}" in text, f"{flag} is missing from docs/API.md"


def test_send_ctrl_alt_del_reaches_the_guest_keyboard(mote):
    """SendCtrlAltDel types Ctrl-Alt-Del on the i8042: the kbd guest reads the
    eight scancodes (make Ctrl, Alt, Del; break Del, Alt, Ctrl) and ends."""
    assert "not running" in mote.refused("PUT", "/actions",
                                         {"action_type": "SendCtrlAltDel"})
    boot(mote, "kbd")
    mote.wait_for(lambda out: "mote-test: kbd ready" in out)
    mote.ok("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    out = finished(mote)
    assert "mote-test: kbd bytes 1d 38 e0 53 e0 d3 b8 9d" in out, out


@pytest.mark.parametrize("flag", [True, False])
def test_boot_timer(kvm, tmp_path, flag):
    """--boot-timer: a guest's write of 123 to MMIO 0xd0000000 logs
    Firecracker's Guest-boot-time line; without the flag it is an unassigned
    address and nothing is logged."""
    import pvh
    import struct as st
    code = (b"\xc6\x05" + st.pack("<I", 0xd0000000) + b"\x7b"   # mov byte [0xd0000000], 123
            + pvh.outb(0x64, 0xfe) + pvh.HLT_LOOP)
    kernel = tmp_path / "timer.elf"
    kernel.write_bytes(pvh.elf(code))
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps({"boot-source": {"kernel_image_path": str(kernel)},
                               "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}))
    args = ["--no-api", "--config-file", str(cfg), "--level", "Info"]
    r = run_mote(args + (["--boot-timer"] if flag else []))
    assert r.returncode == 0, r.stderr
    found = [l for l in r.stderr.decode().splitlines() if "Guest-boot-time" in l]
    if flag:
        assert len(found) == 1 and re.search(r"Guest-boot-time = +\d+ us \d+ ms", found[0]), found
    else:
        assert found == []
