#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_migrate.c into
tests/fuzz/corpus/migrate/: real migration streams of the counter test guest
(1 vCPU, 64 MiB, virtio-rng: the harness's machine), recorded by a
destination that only listens, each with the harness's flag byte in front:
  - counter-rng: no disks (flags 0): the state loads;
  - counter-disk: a disk "disk0" copied along (flags 1): DISKS and DISK
    messages (the state then differs from the harness's machine).
PAGES messages beyond a budget are dropped (whole messages: each carries
its own checksum, so the stream stays valid) to keep seeds under 1 MiB.
Needs build/mote, build/guests/counter and /dev/kvm.

Usage: tests/fuzz/gen_corpus_migrate.py [OUTDIR]
"""
import os
import pathlib
import socket
import struct
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from test_api import Mote  # noqa: E402

PAGES, STATE = 2, 3
BUDGET = 900 << 10


def record(srv, out):
    """Accepts the source and keeps every whole message it sends (PAGES within
    the budget), until the state; then hangs up (the source resumes)."""
    c, _ = srv.accept()
    f = c.makefile("rb")
    kept = 0
    while True:
        hdr = f.read(16)
        if len(hdr) < 16:
            break
        _, typ, n = struct.unpack("<IIQ", hdr)
        body = f.read(n + 4)
        if typ == PAGES and kept + len(body) > BUDGET:
            continue
        kept += len(body)
        out.append(hdr + body)
        if typ == STATE:
            break
    c.close()


def stream(tmp, disk):
    m = Mote(tmp, name="disk" if disk else "plain")
    try:
        m.ok("PUT", "/boot-source", {"kernel_image_path": str(ROOT / "build/guests/counter"),
                                     "boot_args": "rng=1" + (" blk=1" if disk else "")})
        m.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
        m.ok("PUT", "/entropy", {})
        if disk:
            img = tmp / "disk0.img"
            img.write_bytes(os.urandom(64 << 10) + bytes(192 << 10))
            m.ok("PUT", "/drives/disk0", {"drive_id": "disk0", "path_on_host": str(img),
                                          "is_root_device": False})
        m.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        deadline = time.monotonic() + 60
        while sum("count" in line for line in m.out()) < 3:
            assert time.monotonic() < deadline, m.out()
            time.sleep(0.05)
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        msgs = []
        t = threading.Thread(target=record, args=(srv, msgs))
        t.start()
        m.request("PUT", "/migrate", {"destination": "tcp:127.0.0.1:%d" % srv.getsockname()[1],
                                      "copy_disks": disk})
        t.join()
        srv.close()
        return bytes([1 if disk else 0]) + b"".join(msgs)
    finally:
        m.proc.kill()
        m.proc.wait()


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "tests/fuzz/corpus/migrate")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        (out / "counter-rng").write_bytes(stream(pathlib.Path(d), False))
        (out / "counter-disk").write_bytes(stream(pathlib.Path(d), True))
    print(f"wrote {len(os.listdir(out))} seeds to {out}")


if __name__ == "__main__":
    main()
