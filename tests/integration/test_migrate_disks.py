"""Live migration with the disks copied along ("copy_disks": true on the
source, `--migrate-disk ID=PATH` on the destination): no shared storage.

The blk test guest's writer writes random 4 KiB blocks for a few seconds
(secs=N by its TSC, gap_us between writes), flushing every 64, and the
migration happens under it; on the destination it finishes its writes, reads
the whole disk back, checks that every block holds the last write it made
there (a lost write leaves an older one), and prints a hash of what it read,
which the destination's new file must match. A
destination without the mapping, or with a file in the way, refuses; the
source then keeps running on its own disk and no file is left behind."""
import os
import subprocess
import time

from conftest import MOTE
from test_api import UnixHTTPConnection, boot, drive, finished, mote, start  # noqa: F401
from test_migrate import free_port
from test_storage_migration import DISK, disk, disk_hash, guest_hash

SECS = 6


def listen(tmp_path, port, *extra):
    err_path = tmp_path / "dst.err"
    p = subprocess.Popen([MOTE, "run", "--migrate-listen", f"tcp:127.0.0.1:{port}", "--verbose",
                          *extra],
                         stdin=subprocess.DEVNULL, stdout=open(tmp_path / "dst.out", "wb"),
                         stderr=open(err_path, "wb"))
    deadline = time.monotonic() + 30
    while b"waiting for the source" not in err_path.read_bytes():
        assert time.monotonic() < deadline and p.poll() is None, err_path.read_text()
        time.sleep(0.02)
    return p


def writing(m, src, secs=SECS):
    m.ok("PUT", "/drives/data", drive("data", src))
    boot(m, "blk", f"secs={secs} gap_us=20000 seed=7")   # about 50 writes a second
    m.wait_for(lambda out: "mote-test: blk writer start" in out)
    time.sleep(0.3)  # some writes before the migration starts


def verified(out):
    """The writer found every block it wrote holding its last write."""
    line = [l for l in out if l.startswith("mote-test: blk writer verified=")]
    assert line and line[0].endswith(" bad=0"), out
    return int(line[0].split("verified=")[1].split()[0])


def dst_lines(tmp_path):
    return (tmp_path / "dst.out").read_text(errors="replace").splitlines()


def test_disk_moves_with_the_vm_while_the_guest_writes(mote, tmp_path):
    src, dst = disk(tmp_path / "src.img"), str(tmp_path / "dst.img")
    before = open(src, "rb").read()
    writing(mote, src)
    port = free_port()
    d = listen(tmp_path, port, "--migrate-disk", f"data={dst}")
    # Slow enough that the guest writes during every round, with a downtime
    # target that lets the last dirty blocks go in the stop-and-copy phase.
    r = mote.request("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{port}",
                                         "copy_disks": True, "bandwidth_mbps": 40,
                                         "downtime_ms": 1000},
                     conn=UnixHTTPConnection(mote.sock, timeout=120))
    assert r.status == 200 and r.json["state"] == "completed", r
    assert mote.proc.wait(timeout=60) == 0, mote.err()
    assert d.wait(timeout=120) == 0, (tmp_path / "dst.err").read_text()
    out = dst_lines(tmp_path)
    assert "mote-test: done" in out, out
    assert verified(out) > 0
    want = guest_hash(out)
    assert disk_hash(dst) == want
    assert os.path.getsize(dst) == DISK
    # The guest was still writing when the migration ended.
    assert r.json["total_us"] < SECS * 1000000, r.json
    # The source took the writes made before the switch.
    assert open(src, "rb").read() != before


def test_destination_without_a_mapping_refuses(mote, tmp_path):
    src = disk(tmp_path / "src.img")
    writing(mote, src, secs=2)
    port = free_port()
    d = listen(tmp_path, port)
    r = mote.refused("PUT", "/migrate",
                     {"destination": f"tcp:127.0.0.1:{port}", "copy_disks": True})
    assert "Cannot migrate" in r
    assert d.wait(timeout=30) == 1
    assert "--migrate-disk data=PATH" in (tmp_path / "dst.err").read_text()
    # The source still runs on its own disk and finishes its writes there.
    assert mote.get("/").json["state"] == "Running"
    out = finished(mote)
    verified(out)
    assert disk_hash(src) == guest_hash(out)


def test_mapping_without_copy_and_file_in_the_way_refuse(mote, tmp_path):
    src = disk(tmp_path / "src.img")
    writing(mote, src, secs=3)
    # The destination expects a copy, the source sends none.
    port = free_port()
    d = listen(tmp_path, port, "--migrate-disk", f"data={tmp_path / 'new.img'}")
    mote.refused("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{port}"})
    assert d.wait(timeout=30) == 1
    assert "copies no disks" in (tmp_path / "dst.err").read_text()
    assert not os.path.exists(tmp_path / "new.img")
    # A file already at the mapped path is never overwritten.
    keep = tmp_path / "keep.img"
    keep.write_bytes(b"keep me")
    port = free_port()
    d = listen(tmp_path, port, "--migrate-disk", f"data={keep}")
    mote.refused("PUT", "/migrate", {"destination": f"tcp:127.0.0.1:{port}", "copy_disks": True})
    assert d.wait(timeout=30) == 1
    assert "File exists" in (tmp_path / "dst.err").read_text()
    assert keep.read_bytes() == b"keep me"
    assert mote.get("/").json["state"] == "Running"
    out = finished(mote)
    verified(out)
    assert disk_hash(src) == guest_hash(out)


def test_migrate_disk_flag_errors(tmp_path):
    for args, needle in ((["--migrate-listen", "tcp:127.0.0.1:1", "--migrate-disk", "data"],
                          "expected ID=PATH"),
                         (["--migrate-listen", "tcp:127.0.0.1:1", "--migrate-disk", "=x"],
                          "expected ID=PATH"),
                         (["--migrate-listen", "tcp:127.0.0.1:1", "--migrate-disk", "a=x",
                           "--migrate-disk", "a=y"], "given twice"),
                         (["--kernel", "x", "--migrate-disk", "a=x"], "needs --migrate-listen")):
        r = subprocess.run([MOTE, "run", *args], capture_output=True, text=True, timeout=10)
        assert r.returncode == 1 and needle in r.stderr, (args, r.stderr)
