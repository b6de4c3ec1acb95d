#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_virtqueue.c into
tests/fuzz/corpus/virtqueue/: a few well-formed split rings (and two broken
ones) in the harness's input format, so that the fuzzer starts from chains
that get all the way through vq_pop() instead of finding the layout itself.

Usage: tests/fuzz/gen_corpus_virtqueue.py [OUTDIR]
"""
import os
import struct
import sys

# Ring layout: a compact one for small queues (short seeds mutate faster),
# a roomy one for 1024 entries. The header tells the harness where they are.
SMALL = dict(desc=0x000, avail=0x100, used=0x140, ind=0x200, data=0x300)
LARGE = dict(desc=0x0000, avail=0x4000, used=0x5000, ind=0x8000, data=0x9000)
RAM1 = 0x10000  # the harness's second region starts here in the image
NEXT, WRITE, INDIRECT = 1, 2, 4
F_EVENT_IDX, F_INDIRECT, F_SET_NOTIFY, F_START = 1, 2, 4, 8


class Ring:
    def __init__(self, log2_size, flags, start=0, roff=0, woff=0, written=0):
        self.size = 1 << log2_size
        lay = SMALL if self.size <= 16 else LARGE
        self.desc_gpa, self.avail_gpa, self.used_gpa = lay["desc"], lay["avail"], lay["used"]
        self.ind, self.data = lay["ind"], lay["data"]
        self.hdr = struct.pack("<BBHHHHHHH", log2_size, flags, self.desc_gpa, self.avail_gpa,
                               self.used_gpa, start, roff, woff, written)
        self.img = bytearray()
        self.idx = start
        self.put(self.avail_gpa + 2, struct.pack("<H", start))
        self.put(self.used_gpa + 2, struct.pack("<H", start))

    def put(self, at, data):
        # Image offset = guest address for region 0; RAM1 follows right after
        # region 0's 0xe000 bytes.
        off = at if at < RAM1 else at - RAM1 + 0xE000
        if len(self.img) < off + len(data):
            self.img.extend(bytes(off + len(data) - len(self.img)))
        self.img[off:off + len(data)] = data

    def desc(self, i, addr, length, flags=0, nxt=0, table=None):
        table = self.desc_gpa if table is None else table
        self.put(table + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def avail(self, head):
        self.put(self.avail_gpa + 4 + 2 * (self.idx % self.size), struct.pack("<H", head))
        self.idx = (self.idx + 1) & 0xFFFF
        self.put(self.avail_gpa + 2, struct.pack("<H", self.idx))

    def used_event(self, v):
        self.put(self.avail_gpa + 4 + 2 * self.size, struct.pack("<H", v))

    def blob(self):
        return self.hdr + bytes(self.img)


def seeds():
    r = Ring(4, 0)
    r.desc(0, r.data, 64)
    r.avail(0)
    yield "single", r

    r = Ring(4, F_EVENT_IDX | F_SET_NOTIFY, roff=3, woff=5, written=1)
    r.desc(7, r.data, 16, NEXT, 2)
    r.desc(2, r.data + 0x100, 512, NEXT | WRITE, 15)
    r.desc(15, r.data + 0x400, 1, WRITE)
    r.avail(7)
    r.used_event(0)
    yield "chain_event_idx", r

    r = Ring(3, F_INDIRECT, written=8)
    r.desc(0, r.data, 16, NEXT, 1, table=r.ind)
    r.desc(1, r.data + 0x100, 64, NEXT, 2, table=r.ind)
    r.desc(2, r.data + 0x200, 8, WRITE, table=r.ind)
    r.desc(5, r.ind, 48, INDIRECT)
    r.avail(5)
    yield "indirect", r

    r = Ring(4, F_INDIRECT | F_EVENT_IDX)
    r.desc(0, r.data, 8, NEXT, 1)
    r.desc(1, 0, 0, NEXT, 2)  # zero-length, skipped
    r.desc(2, r.ind, 32, INDIRECT)
    r.desc(0, r.data + 0x20, 8, NEXT, 1, table=r.ind)
    r.desc(1, r.data + 0x30, 32, WRITE, table=r.ind)
    r.avail(0)
    yield "mixed", r

    r = Ring(3, F_SET_NOTIFY, written=4)
    for i in range(8):
        r.desc(i, r.data + 0x10 * i, 16, WRITE)
        r.avail(7 - i)
    yield "full_ring", r

    r = Ring(4, F_EVENT_IDX | F_START, start=65533)
    for i in range(6):
        r.desc(i, r.data + 0x10 * i, 4, WRITE)
        r.avail(i)
    r.used_event(65535)
    yield "index_wrap", r

    r = Ring(10, F_INDIRECT | F_EVENT_IDX)
    r.desc(0, RAM1, 0x2000, WRITE)
    r.desc(1, 0xFFFFFFFFFFFFF000, 0x1000)  # the page at the top of RAM
    r.avail(1)
    r.avail(0)
    yield "size_1024", r

    r = Ring(4, 0)
    r.desc(0, r.data, 4, NEXT, 1)
    r.desc(1, r.data, 4, NEXT, 0)
    r.avail(0)
    yield "bad_loop", r

    r = Ring(4, F_INDIRECT)
    r.desc(0, 0xFFFFFFFFFFFFFFF0, 32, INDIRECT)
    r.avail(0)
    yield "bad_indirect_wrap", r


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "virtqueue")
    os.makedirs(out, exist_ok=True)
    for name, ring in seeds():
        with open(os.path.join(out, "seed_" + name), "wb") as f:
            f.write(ring.blob())


if __name__ == "__main__":
    main()
