"""Snapshots: PUT /snapshot/create on a paused counter guest, then a fresh
mote restores it (`mote run --restore SNAP,MEM` or PUT /snapshot/load) and
the guest goes on counting from where it was, with its disk and RNG, also
from a Diff snapshot on top of a Full one. Broken snapshot files (truncated,
a flipped bit, wrong magic or version, a queue outside guest memory) are
refused with one "snapshot: ..." line and exit status 1."""
import os
import re
import signal
import struct
import subprocess
import time

import pytest

from conftest import MOTE, guest, lines, run_mote
from test_api import Mote

COUNT = re.compile(r"mote-test: count (\d+) sum=(\d+)")
SEC_MAGIC = 0x4345534D
SEC_NAMES = {1: "header", 2: "config", 3: "vcpu", 12: "pci", 13: "virtio", 15: "end"}


# ------------------------------------------------------------ the stream, in Python

def _crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


CRC = _crc_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = CRC[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def sections(data):
    """[(version, id, index, payload)] of a stream (framing assumed sound)."""
    out, off = [], 0
    while off < len(data):
        magic, ver, sid, idx, n = struct.unpack_from("<IHHII", data, off)
        assert magic == SEC_MAGIC
        out.append([ver, sid, idx, bytearray(data[off + 16:off + 16 + n])])
        off += 16 + n + 4
    return out


def build(secs):
    b = bytearray()
    for ver, sid, idx, payload in secs:
        hdr = struct.pack("<IHHII", SEC_MAGIC, ver, sid, idx, len(payload))
        b += hdr + payload + struct.pack("<I", crc32c(hdr + payload))
    return bytes(b)


# ------------------------------------------------------------ helpers

def counts(out_lines):
    return [(int(m.group(1)), int(m.group(2))) for m in map(COUNT.search, out_lines) if m]


def wait_count(m, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = counts(m.out())
        if c and c[-1][0] >= n:
            return c[-1][0]
        assert m.proc.poll() is None, (m.proc.returncode, m.err())
        time.sleep(0.02)
    raise AssertionError(f"the counter never reached {n}: {m.out()[-3:]}")


def boot_counter(tmp_path, cmdline="", machine=None, disk=None, rng=False, name="src",
                 tap=None, vsock=None, args=()):
    m = Mote(tmp_path, args=args, name=name)
    m.ok("PUT", "/boot-source", {"kernel_image_path": guest("counter"), "boot_args": cmdline})
    m.ok("PUT", "/machine-config", machine or {"vcpu_count": 1, "mem_size_mib": 64})
    if disk:
        m.ok("PUT", "/drives/d0", {"drive_id": "d0", "path_on_host": disk,
                                   "is_root_device": False})
    if rng:
        m.ok("PUT", "/entropy", {})
    if tap:
        m.ok("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": tap,
                                                 "guest_mac": "02:00:00:00:00:07"})
    if vsock:
        m.ok("PUT", "/vsock", {"guest_cid": 3, "uds_path": vsock})
    m.ok("PUT", "/actions", {"action_type": "InstanceStart"})
    return m


def snapshot(m, snap, mem, kind="Full"):
    m.ok("PATCH", "/vm", {"state": "Paused"})
    m.ok("PUT", "/snapshot/create", {"snapshot_type": kind, "snapshot_path": str(snap),
                                      "mem_file_path": str(mem)})
    return counts(m.out())[-1][0]


def kill(m):
    m.proc.kill()
    m.proc.wait()


def restore_run(snap, mem, until, timeout=60):
    """`mote run --restore` until the count reaches `until`; returns counts."""
    p = subprocess.Popen([MOTE, "run", "--restore", f"{snap},{mem}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    got, buf = [], b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
            got = counts(lines(buf[:buf.rfind(b"\n") + 1]))  # whole lines only
            if got and got[-1][0] >= until:
                break
    finally:
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=30)
    buf = buf[:buf.rfind(b"\n") + 1]
    assert got and got[-1][0] >= until, (lines(buf)[-5:], err)
    assert not any("FAIL" in l for l in lines(buf)), lines(buf)
    return got, buf


def check_continues(src_raw, dst_raw):
    """The restored guest's output continues the source's exactly: the two
    console streams joined (the line the snapshot cut in two made whole
    again) count 1, 2, 3, ... without a gap or a restart."""
    assert b"counter start" not in dst_raw, dst_raw[:200]   # not booted again
    joined = counts(lines(src_raw + dst_raw))
    before = counts(lines(src_raw[:src_raw.rfind(b"\n") + 1]))
    assert joined and len(joined) > len(before) + 2, (before[-2:], dst_raw[:200])
    assert [c for c, _ in joined] == list(range(1, len(joined) + 1)), joined
    return joined


def dirty_sums(upto, dirty):
    """The counter's sum=... for each count, as its dirty=N loop computes it."""
    buf, sums = [0] * 1024, {}
    for n in range(1, upto + 1):
        for p in range(dirty):
            buf[(n * 7 + p) % 1024] = n & 0xFF
        sums[n] = sum(buf)
    return sums


# ------------------------------------------------------------ restore works

def test_restore_continues_counting(kvm, tmp_path):
    m = boot_counter(tmp_path)
    wait_count(m, 5)
    before = snapshot(m, tmp_path / "snap", tmp_path / "mem")
    kill(m)
    _, out = restore_run(tmp_path / "snap", tmp_path / "mem", before + 5)
    check_continues(m.out_path.read_bytes(), out)


def test_restore_with_disk_and_rng(kvm, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    m = boot_counter(tmp_path, "blk=1 rng=1", disk=str(disk), rng=True)
    wait_count(m, 5)
    before = snapshot(m, tmp_path / "snap", tmp_path / "mem")
    kill(m)
    _, out = restore_run(tmp_path / "snap", tmp_path / "mem", before + 5)
    check_continues(m.out_path.read_bytes(), out)
    # The restored guest wrote its latest count to sector 0 of the same disk.
    assert struct.unpack_from("<Q", disk.read_bytes())[0] >= before + 5


def test_load_through_api_paused_then_resumed(kvm, tmp_path):
    m = boot_counter(tmp_path, machine={"vcpu_count": 2, "mem_size_mib": 64})
    wait_count(m, 3)
    before = snapshot(m, tmp_path / "snap", tmp_path / "mem")
    kill(m)
    d = Mote(tmp_path, name="dst")
    d.ok("PUT", "/snapshot/load", {"snapshot_path": str(tmp_path / "snap"),
                                    "mem_backend": {"backend_type": "File",
                                                    "backend_path": str(tmp_path / "mem")}})
    assert d.get("/").json["state"] == "Paused"
    assert d.get("/machine-config").json["vcpu_count"] == 2
    time.sleep(0.2)
    assert counts(d.out()) == []            # paused: nothing runs
    d.ok("PATCH", "/vm", {"state": "Resumed"})
    wait_count(d, before + 3)
    check_continues(m.out_path.read_bytes(), d.out_path.read_bytes())
    d.refused("PUT", "/snapshot/load", {"snapshot_path": str(tmp_path / "snap"),
                                         "mem_file_path": str(tmp_path / "mem")},
              needle="only valid before the microVM starts")
    kill(d)


def test_diff_on_top_of_full(kvm, tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    m = boot_counter(tmp_path, "dirty=64 blk=1",
                     machine={"vcpu_count": 1, "mem_size_mib": 64, "track_dirty_pages": True},
                     disk=str(disk))
    wait_count(m, 3)
    full = snapshot(m, tmp_path / "snap-full", tmp_path / "mem")
    m.ok("PATCH", "/vm", {"state": "Resumed"})
    wait_count(m, full + 20)
    before = snapshot(m, tmp_path / "snap-diff", tmp_path / "mem", kind="Diff")
    kill(m)
    _, out = restore_run(tmp_path / "snap-diff", tmp_path / "mem", before + 5)
    joined = check_continues(m.out_path.read_bytes(), out)
    # Pages the guest dirtied after the Full snapshot came through the Diff:
    # every sum, before and after the restore, is what the guest's loop makes.
    sums = dirty_sums(joined[-1][0], 64)
    assert all(s == sums[n] for n, s in joined), [(n, s, sums[n]) for n, s in joined
                                                   if s != sums[n]]


def test_diff_needs_dirty_tracking(kvm, tmp_path):
    m = boot_counter(tmp_path)
    wait_count(m, 1)
    m.ok("PATCH", "/vm", {"state": "Paused"})
    m.refused("PUT", "/snapshot/create", {"snapshot_type": "Diff",
                                           "snapshot_path": str(tmp_path / "s"),
                                           "mem_file_path": str(tmp_path / "m")},
              needle="dirty page tracking")
    kill(m)


def test_create_while_running_is_refused(kvm, tmp_path):
    m = boot_counter(tmp_path)
    wait_count(m, 1)
    m.refused("PUT", "/snapshot/create", {"snapshot_path": str(tmp_path / "s"),
                                           "mem_file_path": str(tmp_path / "m")},
              needle="Paused")
    assert not (tmp_path / "s").exists()
    kill(m)


def test_create_before_boot_and_bad_bodies(kvm, tmp_path):
    m = Mote(tmp_path)
    m.refused("PUT", "/snapshot/create", {"snapshot_path": "s", "mem_file_path": "m"},
              needle="only valid after the microVM starts")
    m.refused("PUT", "/snapshot/load", {"snapshot_path": "/nonexistent"},
              needle="mem_backend")
    m.refused("PUT", "/snapshot/load", {"snapshot_path": "/nonexistent",
                                         "mem_file_path": "/nonexistent"},
              needle="No such file")
    m.refused("PUT", "/snapshot/load", {"snapshot_path": "/etc/hostname",
                                         "mem_backend": {"backend_type": "Uffd",
                                                         "backend_path": "/x"}},
              needle="only File")
    m.ok("PUT", "/boot-source", {"kernel_image_path": guest("counter")})
    m.refused("PUT", "/snapshot/load", {"snapshot_path": "/etc/hostname",
                                         "mem_file_path": "/etc/hostname"},
              needle="fresh microVM")
    kill(m)


# ------------------------------------------------------------ broken snapshots

@pytest.fixture(scope="module")
def good_snapshot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("snap")
    disk = tmp / "disk.img"
    disk.write_bytes(bytes(1 << 20))
    m = boot_counter(tmp, "blk=1", disk=str(disk))
    wait_count(m, 2)
    snapshot(m, tmp / "snap", tmp / "mem")
    kill(m)
    return tmp


def refused(snap_bytes, tmp_path, good, needle):
    bad = tmp_path / "bad"
    bad.write_bytes(snap_bytes)
    r = run_mote(["run", "--restore", f"{bad},{good / 'mem'}"], timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    assert "snapshot: " in err and needle in err, err
    assert len(lines(err)) == 1, err
    assert r.stdout == b"", r.stdout   # the guest never ran
    return err


def test_truncated_snapshot(kvm, tmp_path, good_snapshot):
    data = (good_snapshot / "snap").read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        refused(data[:cut], tmp_path, good_snapshot, "snapshot")
    refused(data[:len(data) // 2], tmp_path, good_snapshot, "truncated")


def test_flipped_bit(kvm, tmp_path, good_snapshot):
    data = bytearray((good_snapshot / "snap").read_bytes())
    for pos in (40, len(data) // 3, len(data) - 30):
        bad = bytearray(data)
        bad[pos] ^= 0x10
        refused(bytes(bad), tmp_path, good_snapshot, "checksum mismatch")


def test_wrong_magic_and_version(kvm, tmp_path, good_snapshot):
    data = (good_snapshot / "snap").read_bytes()
    refused(b"NOTASNAP" + data[8:], tmp_path, good_snapshot, "not a mote snapshot")
    secs = sections(data)
    hdr = secs[0][3]
    hdr[8:12] = struct.pack("<I", 99)          # stream version
    refused(build(secs), tmp_path, good_snapshot, "stream version 99")
    secs = sections(data)
    vcpu = next(s for s in secs if s[1] == 3)
    vcpu[0] = 7                                 # a vCPU section from the future
    refused(build(secs), tmp_path, good_snapshot, "vcpu[0]: version")


def virtio_section(secs):
    return next(s for s in secs if s[1] == 13)


# Offsets in the virtio section: device_id u16, host_features u64, features
# u64, status u8, dfselect u32, gfselect u32, queue_select u16, config_vector
# u16, isr u8, config_generation u8, queues u16, then per queue: size u16,
# vector u16, desc u64, driver u64, device u64, enabled u8, ...
Q0 = 2 + 8 + 8 + 1 + 4 + 4 + 2 + 2 + 1 + 1 + 2


def test_queue_outside_guest_memory(kvm, tmp_path, good_snapshot):
    data = (good_snapshot / "snap").read_bytes()
    for field, off in (("desc", 4), ("driver", 12), ("device", 20)):
        secs = sections(data)
        v = virtio_section(secs)
        struct.pack_into("<Q", v[3], Q0 + off, 0x7FFF_0000_0000)
        refused(build(secs), tmp_path, good_snapshot, "not inside guest memory")


def test_bad_queue_fields(kvm, tmp_path, good_snapshot):
    data = (good_snapshot / "snap").read_bytes()
    cases = [(Q0, "<H", 3, "queue.size"),         # not a power of two
             (Q0, "<H", 4096, "queue.size"),      # above the device's maximum
             (Q0 + 2, "<H", 77, "queue.vector"),  # no such MSI-X vector
             (10, "<Q", 1 << 40, "features")]     # never offered
    for off, fmt, val, needle in cases:
        secs = sections(data)
        struct.pack_into(fmt, virtio_section(secs)[3], off, val)
        refused(build(secs), tmp_path, good_snapshot, needle)


def test_bad_vcpu_and_config_fields(kvm, tmp_path, good_snapshot):
    data = (good_snapshot / "snap").read_bytes()
    secs = sections(data)
    cfg = next(s for s in secs if s[1] == 2)
    struct.pack_into("<I", cfg[3], 8, 100000)    # cpus
    refused(build(secs), tmp_path, good_snapshot, "config[0]: cpus")
    secs = sections(data)
    vcpu = next(s for s in secs if s[1] == 3)
    vcpu[3] = vcpu[3][:-5]                         # one MSR cut short
    refused(build(secs), tmp_path, good_snapshot, "vcpu[0]: msrs")
    secs = sections(data)
    secs = [s for s in secs if s[1] != 11]        # no PCI bus section
    refused(build(secs), tmp_path, good_snapshot, "pci-bus[0] is missing")


def net_section(kind=1, iface=b"eth0", tap=b"mtap0", mac=b"\x02\0\0\0\0\x07"):
    return bytearray(struct.pack("<BH", kind, len(iface)) + iface +
                     struct.pack("<H", len(tap)) + tap + mac)


def test_bad_net_sections(kvm, tmp_path, good_snapshot):
    """The network interfaces a stream names (net[i], after the config) are
    checked before any is opened."""
    data = (good_snapshot / "snap").read_bytes()
    cases = [(net_section(kind=2), "net[0]: kind"),              # not a tap
             (net_section(iface=b""), "net[0]: id"),
             (net_section(tap=b"a/b"), "net[0]: tap"),             # not an interface name
             (net_section(tap=b"x" * 16), "net[0]: tap"),          # longer than IFNAMSIZ - 1
             (net_section(mac=b"\x01\0\0\0\0\x07"), "net[0]: mac"),  # multicast
             (net_section(mac=bytes(6)), "net[0]: mac"),
             (net_section()[:-1], "net[0]: mac"),                  # cut short
             (net_section() + b"x", "net[0]")]                     # trailing byte
    for payload, needle in cases:
        secs = sections(data)
        secs.insert(2, [1, 16, 0, payload])
        refused(build(secs), tmp_path, good_snapshot, needle)
    secs = sections(data)
    secs[2:2] = [[1, 16, 0, net_section()], [1, 16, 1, net_section()]]
    refused(build(secs), tmp_path, good_snapshot, "net[1]: id: eth0 is used twice")
    secs = sections(data)
    secs[2:2] = [[1, 16, 0, net_section()], [1, 16, 1, net_section(iface=b"eth1")]]
    refused(build(secs), tmp_path, good_snapshot, "net[1]: tap: mtap0 is used twice")


def test_vsock_cannot_be_saved(kvm, tmp_path):
    """vsock's host sockets live in this process: a clear refusal, and the VM
    stays as it was."""
    m = boot_counter(tmp_path, vsock=str(tmp_path / "v.sock"))
    wait_count(m, 2)
    m.ok("PATCH", "/vm", {"state": "Paused"})
    m.refused("PUT", "/snapshot/create", {"snapshot_path": str(tmp_path / "snap"),
                                          "mem_file_path": str(tmp_path / "mem")},
              needle="vsock device's host sockets cannot be saved")
    assert not (tmp_path / "snap").exists()
    m.ok("PATCH", "/vm", {"state": "Resumed"})
    wait_count(m, counts(m.out())[-1][0] + 2)
    kill(m)


def test_memory_file_too_short(kvm, tmp_path, good_snapshot):
    short = tmp_path / "short"
    short.write_bytes(bytes(4096))
    r = run_mote(["run", "--restore", f"{good_snapshot / 'snap'},{short}"], timeout=60)
    assert r.returncode == 1, r.stderr
    assert b"snapshot: memory file" in r.stderr, r.stderr


def test_memory_file_is_a_fifo(kvm, tmp_path, good_snapshot):
    """Nobody writes to the FIFO: refused at once, not waited on."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run_mote(["run", "--restore", f"{good_snapshot / 'snap'},{fifo}"], timeout=30)
    assert r.returncode == 1, r.stderr
    err = lines(r.stderr)
    assert len(err) == 1 and "snapshot: memory file" in err[0] and "not a regular file" in err[0], err


def test_snapshot_file_is_a_fifo(kvm, tmp_path, good_snapshot):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    r = run_mote(["run", "--restore", f"{fifo},{good_snapshot / 'mem'}"], timeout=30)
    assert r.returncode == 1, r.stderr
    err = lines(r.stderr)
    assert len(err) == 1 and "snapshot: " in err[0] and "not a regular file" in err[0], err


def test_diff_into_a_fifo_is_refused(kvm, tmp_path):
    fifo = tmp_path / "mem.fifo"
    os.mkfifo(fifo)
    m = Mote(tmp_path)
    try:
        msg = m.refused("PUT", "/snapshot/create", {"snapshot_type": "Diff",
                                                    "snapshot_path": str(tmp_path / "s"),
                                                    "mem_file_path": str(fifo)})
        assert "not a regular file" in msg, msg
    finally:
        m.kill()


def test_restore_flags(kvm, tmp_path, good_snapshot):
    snap = f"{good_snapshot / 'snap'},{good_snapshot / 'mem'}"
    r = run_mote(["run", "--restore", snap, "--mem", "128"])
    assert r.returncode == 1 and b"--mem" in r.stderr and b"snapshot" in r.stderr, r.stderr
    r = run_mote(["run", "--restore", "onlyone"])
    assert r.returncode == 1 and b"SNAPSHOT,MEMFILE" in r.stderr, r.stderr
    r = run_mote(["run", "--restore", f"/nonexistent,{good_snapshot / 'mem'}"])
    assert r.returncode == 1 and b"snapshot: /nonexistent" in r.stderr, r.stderr
