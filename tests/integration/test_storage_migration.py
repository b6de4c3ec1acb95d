"""Storage migration (PUT/GET /storage-migration): a running VM's disk is
copied to a new file while the guest keeps writing, then the disk switches to
the copy. The blk test guest's writer=N mode writes random blocks until it
sees the switch (config_generation changes), writes N more, and prints an
FNV-1a of the whole disk as it reads it; the copy must hold exactly that."""
import os
import re
import struct
import subprocess
import time

import pytest

from test_api import boot, drive, finished, mote, start  # noqa: F401 (fixtures)

DISK = 2 << 20


def disk_hash(path):
    """The writer's hash: FNV-1a over little-endian 64-bit words."""
    h = 0xcbf29ce484222325
    data = open(path, "rb").read()
    for (w,) in struct.iter_unpack("<Q", data):
        h = ((h ^ w) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def disk(path, size=DISK):
    """Half data, half hole: the first pass must copy the data and may skip the hole."""
    with open(path, "wb") as f:
        f.write(os.urandom(size // 2))
        f.truncate(size)
    return str(path)


def status(m):
    r = m.get("/storage-migration")
    assert r.status == 200, r
    return r.json["drives"]


def wait_state(m, want, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = status(m)
        if st and st[0]["state"] in want:
            return st[0]
        assert m.alive(), m.err()
        time.sleep(0.05)
    raise AssertionError(f"storage migration did not reach {want}: {status(m)}")


def writer(m, src, after=300):
    m.ok("PUT", "/drives/data", drive("data", src))
    boot(m, "blk", f"writer={after} seed=7")
    m.wait_for(lambda out: "mote-test: blk writer start" in out)


def guest_hash(out):
    # The writer also checked that every block it wrote holds its last write.
    ver = [l for l in out if l.startswith("mote-test: blk writer verified=")]
    assert ver and ver[0].endswith(" bad=0"), out
    line = [l for l in out if l.startswith("mote-test: blk writer writes=")]
    assert line, out
    return int(re.search(r"hash=([0-9a-f]+)", line[0]).group(1), 16)


def test_disk_moves_while_the_guest_writes(mote, tmp_path):
    src, dst = disk(tmp_path / "src.img"), str(tmp_path / "dst.img")
    writer(mote, src)
    mote.ok("PUT", "/storage-migration", {"drive_id": "data", "destination_path": dst})
    st = wait_state(mote, ("completed", "failed"))
    assert st["state"] == "completed", st
    assert st["destination_path"] == dst and st["path_on_host"] == dst
    assert st["copied_bytes"] >= DISK // 2 and st["passes"] >= 1
    assert mote.get("/vm/config").json["drives"][0]["path_on_host"] == dst
    out = finished(mote)
    assert any(l.startswith("mote-test: blk writer switched after=") for l in out), out
    # What the guest reads back is exactly the copy; the source stopped
    # receiving writes at the switch, so it differs.
    want = guest_hash(out)
    assert disk_hash(dst) == want
    assert disk_hash(src) != want
    assert os.path.getsize(dst) == DISK


def test_refusals_change_nothing(mote, tmp_path):
    src = disk(tmp_path / "src.img")
    exists = tmp_path / "exists.img"
    exists.write_bytes(b"keep me")
    mote.ok("PUT", "/drives/data", drive("data", src))
    body = {"drive_id": "data", "destination_path": str(tmp_path / "d.img")}
    assert "only valid after" in mote.refused("PUT", "/storage-migration", body)
    assert mote.get("/storage-migration").json == {"drives": []}
    boot(mote, "ticker")
    mote.wait_for(lambda out: any(l.startswith("mote-test: tick") for l in out))
    assert "File exists" in mote.refused("PUT", "/storage-migration",
                                         {"drive_id": "data", "destination_path": str(exists)})
    assert exists.read_bytes() == b"keep me"
    assert "No such file" in mote.refused(
        "PUT", "/storage-migration",
        {"drive_id": "data", "destination_path": str(tmp_path / "no" / "d.img")})
    assert "no drive" in mote.refused("PUT", "/storage-migration",
                                      {"drive_id": "other", "destination_path": "x"})
    mote.refused("PUT", "/storage-migration", {"drive_id": "data"})
    mote.refused("PUT", "/storage-migration", {"drive_id": "data", "destination_path": ""})
    mote.refused("PUT", "/storage-migration", {"drive_id": "data", "destination_path": 5})
    assert status(mote) == []
    assert mote.get("/vm/config").json["drives"][0]["path_on_host"] == src
    assert mote.alive()


@pytest.fixture
def small_fs(tmp_path):
    """A 1 MiB tmpfs: too small for the 2 MiB copy."""
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a tmpfs for the test: {r.stderr}"
    yield d
    subprocess.run(["umount", "-l", str(d)])


def test_no_room_is_refused_and_the_guest_stays_on_its_disk(mote, tmp_path, small_fs):
    """A destination without room for the whole disk is refused at once (the
    copy's size is reserved up front, so a migration can never turn into
    write errors in the guest later) and leaves nothing behind; the guest
    keeps writing to the source, and a second migration completes."""
    src = disk(tmp_path / "src.img")
    writer(mote, src, after=100)
    bad = str(small_fs / "dst.img")
    assert "No space left" in mote.refused("PUT", "/storage-migration",
                                           {"drive_id": "data", "destination_path": bad})
    assert not os.path.exists(bad)
    assert mote.get("/vm/config").json["drives"][0]["path_on_host"] == src
    assert not any("switched" in l for l in mote.out())
    good = str(tmp_path / "good.img")
    mote.ok("PUT", "/storage-migration", {"drive_id": "data", "destination_path": good})
    assert wait_state(mote, ("completed", "failed"))["state"] == "completed"
    want = guest_hash(finished(mote))   # the guest is done writing first
    assert disk_hash(good) == want
