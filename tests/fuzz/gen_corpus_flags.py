#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_flags.c into tests/fuzz/corpus/flags/:
argument vectors (NUL-separated, after a byte whose bit 0 picks `mote run`)
as README.md and Firecracker's documentation use them, and a few bad ones.

Usage: tests/fuzz/gen_corpus_flags.py [OUTDIR]
"""
import os
import sys

RUN, FIRECRACKER = b"\x01", b"\x00"

SEEDS = {
    "seed_run_full": RUN + b"\0".join([
        b"--kernel", b"build/guests/blk", b"--initrd", b"/dev/null", b"--cmdline",
        b"console=ttyS0 blk=rw", b"--mem", b"512", b"--cpus", b"2", b"--disk",
        b"a.img,ro,id=serial1", b"--disk", b"b.img", b"--rng", b"--verbose", b"--verbose"]),
    "seed_run_eq": RUN + b"\0".join([b"-kernel=k", b"--mem=4", b"--cpus=254",
                                    b"--disk=x,id=12345678901234567890"]),
    "seed_run_bad": RUN + b"\0".join([b"--kernel", b"k", b"--disk", b",ro", b"-xyz", b"--mem",
                                     b"3"]),
    "seed_run_help": RUN + b"--help",
    "seed_fc_full": FIRECRACKER + b"\0".join([
        b"--api-sock", b"/tmp/x.sock", b"--id", b"vm1", b"--config-file", b"vm.json",
        b"--log-path", b"/dev/null", b"--level", b"Debug", b"--show-level", b"--show-log-origin",
        b"--metrics-path", b"/dev/null", b"--boot-timer", b"--seccomp-filter", b"f.bpf",
        b"--no-seccomp"]),
    "seed_fc_noapi": FIRECRACKER + b"\0".join([b"--no-api", b"--config-file", b"c.json",
                                              b"--level", b"Trace"]),
    "seed_fc_bad": FIRECRACKER + b"\0".join([b"--level", b"Loud", b"-abc", b"--no-api"]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                             "corpus", "flags")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
