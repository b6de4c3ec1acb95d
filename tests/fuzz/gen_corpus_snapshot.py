#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_snapshot.c into
tests/fuzz/corpus/snapshot/: real snapshots of the counter test guest (1 vCPU,
64 MiB, virtio-rng, the machine the harness builds), taken through the API at
a few points of its run, so the fuzzer starts from streams that load.
Needs build/mote, build/guests/counter and /dev/kvm.

Usage: tests/fuzz/gen_corpus_snapshot.py [OUTDIR]
"""
import os
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from test_api import Mote  # noqa: E402
from test_snapshot import Q0, build, sections  # noqa: E402


def zero_ring_indexes(data):
    """The harness's guest RAM is all zeroes: with the queue's indexes at 0
    the used-ring check passes and the whole stream loads, so the fuzzer
    starts past every check instead of stopping at that one."""
    secs = sections(data)
    v = next(s for s in secs if s[1] == 13)
    v[3][Q0 + 29:Q0 + 33] = bytes(4)   # last_avail, used_idx of queue 0
    return build(secs)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "tests/fuzz/corpus/snapshot")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        tmp = pathlib.Path(d)
        m = Mote(tmp)
        m.ok("PUT", "/boot-source", {"kernel_image_path": str(ROOT / "build/guests/counter"),
                                     "boot_args": "rng=1"})
        m.ok("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
        m.ok("PUT", "/entropy", {})
        m.ok("PUT", "/actions", {"action_type": "InstanceStart"})
        for i in range(3):
            deadline = time.monotonic() + 60   # the guest counts once booted
            while sum("count" in l for l in m.out()) < 2 + 5 * i:
                assert time.monotonic() < deadline, m.out()
                time.sleep(0.05)
            m.ok("PATCH", "/vm", {"state": "Paused"})
            m.ok("PUT", "/snapshot/create", {"snapshot_path": str(tmp / "s"),
                                              "mem_file_path": str(tmp / "m")})
            shutil.copy(tmp / "s", out / f"counter-rng-{i}")
            (out / f"counter-rng-{i}-zeroed").write_bytes(zero_ring_indexes((tmp / "s").read_bytes()))
            m.ok("PATCH", "/vm", {"state": "Resumed"})
        m.proc.kill()
        m.proc.wait()
    print(f"wrote {len(os.listdir(out))} seeds to {out}")


if __name__ == "__main__":
    main()
