#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_boot.c into tests/fuzz/corpus/boot/
from real kernels: mote's test guests (PVH ELF, stripped), the same with the
PVH note renamed (a plain ELF64 entered in long mode), and the first 24 KiB of
a real bzImage (the setup code and the start of the payload; syssize patched
so that the cut image is complete), each behind the harness's 4-byte header.

Usage: tests/fuzz/gen_corpus_boot.py BUILD_GUESTS_DIR BZIMAGE [OUTDIR]
  e.g. tests/fuzz/gen_corpus_boot.py build/guests build/guest/vmlinuz
"""
import os
import struct
import subprocess
import sys
import tempfile


def hdr(mem_idx, initrd=False, high=False, rsdp=False, cmd16=2, initrd_len=0):
    flags = mem_idx | (8 if initrd else 0) | (16 if high else 0) | (32 if rsdp else 0)
    return struct.pack("<BBH", flags, cmd16, initrd_len)


def stripped(path):
    with tempfile.NamedTemporaryFile() as t:
        subprocess.run(["strip", "-o", t.name, path], check=True)
        return open(t.name, "rb").read()


def without_pvh_note(elf):
    """The Xen note's name becomes "Xex": no PVH entry, so mote enters the ELF entry."""
    i = elf.find(b"Xen\0")
    assert i > 0
    return elf[:i] + b"Xex\0" + elf[i + 4:]


def main():
    guests, bzimage = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__),
                                                              "corpus", "boot")
    os.makedirs(out, exist_ok=True)
    hello = stripped(os.path.join(guests, "hello"))
    smp = stripped(os.path.join(guests, "smp"))
    bz = bytearray(open(bzimage, "rb").read(24 * 1024))
    setup = (bz[0x1f1] + 1) * 512
    struct.pack_into("<I", bz, 0x1f4, (len(bz) - setup) // 16)
    seeds = {
        "seed_pvh_hello": hdr(3, rsdp=True) + hello,
        "seed_pvh_smp_initrd": hdr(3, initrd=True, initrd_len=300) + smp + bytes(range(256)) * 2,
        "seed_pvh_high_small": hdr(2, high=True, cmd16=255) + hello,
        "seed_elf64_hello": hdr(3) + without_pvh_note(hello),
        "seed_bzimage_cut": hdr(6, rsdp=True) + bytes(bz),
        "seed_bzimage_cut_initrd": hdr(6, initrd=True, initrd_len=512) + bytes(bz) + b"\x5a" * 512,
        "seed_bzimage_truncated": hdr(6) + bytes(bz[:4096]),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
