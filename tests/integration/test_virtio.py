"""virtio-pci devices seen from mote's own test guests, directly on this
machine's KVM: virtio-blk (data reaches the image file, read-only is
enforced, hostile rings reset the device and mote keeps serving) and
virtio-rng; and disk images mote must refuse."""
import hashlib
import os
import struct
import time

import pytest

from conftest import guest, run_mote, lines

SECTORS = 2048


def pattern_image(path, sectors=SECTORS):
    """Sector N starts with N as a little-endian u64 (what blk's pattern=1 checks)."""
    with open(path, "wb") as f:
        for n in range(sectors):
            f.write(struct.pack("<Q", n) + bytes(504))
    return str(path)


def run_blk(disks, cmdline, timeout=120):
    args = ["run", "--kernel", guest("blk"), "--cmdline", cmdline]
    for d in disks:
        args += ["--disk", d]
    r = run_mote(args, timeout=timeout)
    out = lines(r.stdout)
    assert r.returncode == 0, (r.returncode, r.stderr, out)
    assert not any("FAIL" in l for l in out), out
    assert out[-2:] == ["mote-test: blk ok", "mote-test: done"], out
    return out, lines(r.stderr)


def sector(path, n):
    with open(path, "rb") as f:
        f.seek(n * 512)
        return f.read(512)


def test_blk_read_write_flush_reach_the_file(kvm, tmp_path):
    img = pattern_image(tmp_path / "d.img")
    out, err = run_blk([img + ",id=mote-serial"], "blk=rw pattern=1")
    assert "mote-test: blk id=mote-serial" in out
    cap = [l for l in out if l.startswith("mote-test: blk capacity=")][0]
    assert f"capacity={SECTORS} ro=0" in cap and "flush=1" in cap
    assert "discard=1" in cap and "write_zeroes=1" in cap
    # What the guest wrote and flushed is in the host file.
    assert sector(img, 1) == b"mote-blk-written" + bytes(496)
    for n in (2, 4, 5, 6, 7, SECTORS - 1):
        s = sector(img, n)
        assert s[:8] == struct.pack("<Q", n)
        assert s[8:] == bytes((n * 31 + i) & 0xff for i in range(8, 512))
    for n in range(8, 16):
        assert sector(img, n) == bytes(512)          # write-zeroes
    for n in (3, 24, 100, SECTORS - 2):
        assert sector(img, n) == struct.pack("<Q", n) + bytes(504)   # untouched
    assert err == []


def test_blk_read_only_refuses_writes_and_keeps_the_file(kvm, tmp_path):
    img = pattern_image(tmp_path / "ro.img")
    before = hashlib.sha256(open(img, "rb").read()).hexdigest()
    out, _ = run_blk([img + ",ro"], "blk=ro pattern=1")
    assert any("capacity=2048 ro=1" in l for l in out)
    assert "mote-test: blk id=disk0" in out
    assert hashlib.sha256(open(img, "rb").read()).hexdigest() == before


def test_blk_two_disks(kvm, tmp_path):
    a = pattern_image(tmp_path / "a.img")
    b = pattern_image(tmp_path / "b.img")
    out, _ = run_blk([a, b + ",ro"], "blk=rw,ro pattern=1")
    assert sector(a, 1).startswith(b"mote-blk-written")
    assert sector(b, 1) == struct.pack("<Q", 1) + bytes(504)


def test_blk_hostile_rings_reset_the_device_and_mote_keeps_serving(kvm, tmp_path):
    img = pattern_image(tmp_path / "h.img")
    out, err = run_blk([img], "blk=rw pattern=1 hostile=1")
    cases = [l.split()[2] for l in out if l.startswith("mote-test: hostile ")]
    assert cases == ["next-oob", "loop", "long-chain", "addr-oob", "addr-straddle",
                     "addr-wrap", "write-before-read", "nested-indirect", "avail-jump"]
    assert all(" ok" in l for l in out if l.startswith("mote-test: hostile ")), out
    # Each broken ring is reported, rate-limited, never silently.
    assert err and all("virtio-blk: queue 0:" in l and "needs reset" in l or
                       "suppressed" in l for l in err), err
    assert len(err) <= 11


def test_blk_rate_limited_disk_still_reads_and_writes_right(kvm, tmp_path):
    """A tight limit (5 requests per 20 ms) throttles nearly every request of
    the full read/write/flush/discard run; every result must still be right."""
    img = pattern_image(tmp_path / "d.img")
    out, err = run_blk([img + ",ops=5:20,bw=64K:20"], "blk=rw pattern=1")
    assert sector(img, 1) == b"mote-blk-written" + bytes(496)
    assert err == []


@pytest.mark.parametrize("limit,n,floor", [
    # 1000 requests per second, 400 of them at once: 2000 reads need >= 1.6 s.
    ("ops=400:400", 2000, 1.6),
    # 4 MiB/s with a 1 MiB one-time burst: 2000 x 4 KiB (7.8 MiB) need >= 1.7 s.
    ("bw=400K:100:1M", 2000, 1.7),
])
def test_blk_rate_limit_holds(kvm, tmp_path, limit, n, floor):
    """The limiter cannot be beaten: the benchmark's reads take at least as
    long as the token budget allows (a lower bound the limiter guarantees,
    not a performance threshold), and all of them complete."""
    img = pattern_image(tmp_path / "d.img")
    t0 = time.monotonic()
    r = run_mote(["run", "--kernel", guest("blk"), "--cmdline", f"bench={n} depth=32",
                  "--disk", f"{img},{limit}"], timeout=120)
    elapsed = time.monotonic() - t0
    out = lines(r.stdout)
    assert r.returncode == 0, (r.stderr, out)
    assert any(l.startswith(f"mote-test: blk bench n={n} ") for l in out), out
    assert elapsed >= floor, f"{n} requests in {elapsed:.2f} s under {limit}"


def test_rng(kvm):
    r = run_mote(["run", "--kernel", guest("rng"), "--rng"], timeout=60)
    out = lines(r.stdout)
    assert r.returncode == 0, r.stderr
    assert any(l.startswith("mote-test: rng ok bytes=") for l in out), out
    assert out[-1] == "mote-test: done"


def test_rng_hostile(kvm):
    r = run_mote(["run", "--kernel", guest("rng"), "--rng", "--cmdline", "hostile=1"],
                 timeout=60)
    out = lines(r.stdout)
    assert r.returncode == 0, r.stderr
    assert "mote-test: hostile readable-only ok (needs-reset)" in out
    assert "mote-test: hostile addr-oob ok (needs-reset)" in out
    assert out[-1] == "mote-test: done"


def test_no_rng_without_the_flag(kvm):
    r = run_mote(["run", "--kernel", guest("rng")], timeout=60)
    assert "no virtio-rng device" in r.stdout.decode(), r.stdout


@pytest.mark.parametrize("make,spec,needle", [
    (None, "{d}/missing.img", "cannot open disk"),
    ("dir", "{d}/sub", "Is a directory"),
    ("odd", "{d}/odd.img", "is not a multiple of 512"),
    ("ok", "{d}/ok.img,rw", "unknown option 'rw'"),
    ("ok", "{d}/ok.img,id=123456789012345678901", "longer than 20 bytes"),
    ("ok", ",ro", "no path"),
    ("ok", "{d}/ok.img,bw=10", "bw=SIZE:REFILL_MS"),
    ("ok", "{d}/ok.img,ops=0:10", "ops=SIZE:REFILL_MS"),
    ("ok", "{d}/ok.img,ops=5:0", "ops=SIZE:REFILL_MS"),
])
def test_bad_disks_are_refused(kvm, tmp_path, make, spec, needle):
    d = str(tmp_path)
    if make == "dir":
        os.mkdir(tmp_path / "sub")
    elif make == "odd":
        (tmp_path / "odd.img").write_bytes(bytes(1000))
    elif make == "ok":
        (tmp_path / "ok.img").write_bytes(bytes(4096))
    r = run_mote(["run", "--kernel", guest("hello"), "--disk", spec.format(d=d)])
    err = lines(r.stderr)
    assert r.returncode == 1, err
    assert len(err) == 1 and needle in err[0], err
    assert r.stdout == b""
