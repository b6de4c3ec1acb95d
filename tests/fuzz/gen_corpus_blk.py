#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_blk.c into tests/fuzz/corpus/blk/:
virtio-blk requests of every type (and a few broken ones) on well-formed
split rings, in the harness's input format, so that the fuzzer starts from
requests that reach the back end instead of finding the layout itself.

Usage: tests/fuzz/gen_corpus_blk.py [OUTDIR]
"""
import os
import struct
import sys

SMALL = dict(desc=0x000, avail=0x100, used=0x140, ind=0x200, hdr=0x400, st=0x600, data=0x1000)
LARGE = dict(desc=0x0000, avail=0x4000, used=0x5000, ind=0x6000, hdr=0x8000, st=0xB000,
             data=0xC000)
RAM1 = 0xFFFFFFFFFFFFF000  # the harness's second region, after 64 KiB of image
NEXT, WRITE, INDIRECT = 1, 2, 4
F_EVENT_IDX, F_INDIRECT, F_RO, F_FLUSH, F_RESET, F_KICK2 = 1, 2, 4, 8, 16, 32
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WRITE_ZEROES = 0, 1, 4, 8, 11, 13


class Ring:
    def __init__(self, log2_size, flags, start=0):
        self.size = 1 << log2_size
        lay = SMALL if self.size <= 16 else LARGE
        self.lay = lay
        self.hdr = struct.pack("<BBHHHH6x", log2_size, flags, lay["desc"], lay["avail"],
                               lay["used"], start)
        self.img = bytearray()
        self.idx = start
        self.next = 0
        self.nreq = 0
        self.put(lay["avail"] + 2, struct.pack("<H", start))
        self.put(lay["used"] + 2, struct.pack("<H", start))

    def put(self, at, data):
        off = at if at < 0x10000 else at - RAM1 + 0x10000
        if len(self.img) < off + len(data):
            self.img.extend(bytes(off + len(data) - len(self.img)))
        self.img[off:off + len(data)] = data

    def desc(self, i, addr, length, flags=0, nxt=0, table=None):
        table = self.lay["desc"] if table is None else table
        self.put(table + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def avail(self, head):
        self.put(self.lay["avail"] + 4 + 2 * (self.idx % self.size), struct.pack("<H", head))
        self.idx = (self.idx + 1) & 0xFFFF
        self.put(self.lay["avail"] + 2, struct.pack("<H", self.idx))

    def chain(self, segs):
        """segs: (addr, len, writable); returns the head."""
        head = self.next
        for k, (addr, length, w) in enumerate(segs):
            i = (head + k) % self.size
            last = k == len(segs) - 1
            self.desc(i, addr, length, (0 if last else NEXT) | (WRITE if w else 0),
                      0 if last else (i + 1) % self.size)
        self.next = (head + len(segs)) % self.size
        self.avail(head)
        return head

    def request(self, rtype, sector, data=None, data_len=0, data_write=False, split=False):
        """One request: header, optional data buffer, status byte."""
        k = self.nreq
        self.nreq += 1
        h = self.lay["hdr"] + 32 * k
        st = self.lay["st"] + k
        self.put(h, struct.pack("<IIQ", rtype, 0, sector))
        segs = [(h, 8, False), (h + 8, 8, False)] if split else [(h, 16, False)]
        if data_len:
            buf = self.lay["data"] + 0x400 * k if data is None else data
            segs.append((buf, data_len, data_write))
        segs.append((st, 1, True))
        return self.chain(segs)

    def blob(self):
        return self.hdr + bytes(self.img)


def seeds():
    r = Ring(4, 0)
    r.request(T_IN, 1, data_len=512, data_write=True)
    yield "read", r

    r = Ring(4, F_FLUSH)
    r.put(r.lay["data"], bytes(range(256)) * 4)
    r.request(T_OUT, 2, data=r.lay["data"], data_len=1024)
    r.request(T_FLUSH, 0)
    yield "write_flush", r

    r = Ring(4, 0)  # write-through (no FLUSH negotiated)
    r.request(T_OUT, 127, data_len=512)
    yield "write_through", r

    r = Ring(3, 0)
    r.request(T_GET_ID, 0, data_len=20, data_write=True)
    r.request(T_GET_ID, 0, data_len=7, data_write=True)
    yield "get_id", r

    r = Ring(4, F_FLUSH)
    d = r.lay["data"]
    r.put(d, struct.pack("<QII", 8, 8, 0))
    r.put(d + 0x100, struct.pack("<QII", 16, 4, 1))
    r.put(d + 0x200, struct.pack("<QII", 24, 2, 0))
    r.request(T_DISCARD, 0, data=d, data_len=16)
    r.request(T_WRITE_ZEROES, 0, data=d + 0x100, data_len=16)
    r.request(T_WRITE_ZEROES, 0, data=d + 0x200, data_len=16)
    yield "discard_zeroes", r

    r = Ring(4, F_EVENT_IDX | F_FLUSH | F_KICK2)
    r.request(T_IN, 0, data_len=1024, data_write=True)
    r.request(T_OUT, 3, data_len=512)
    r.request(99, 0, data_len=16, data_write=True)  # unsupported
    r.request(T_IN, 130, data_len=512, data_write=True)  # out of range
    r.request(T_IN, 0, data_len=100, data_write=True)  # not whole sectors
    yield "mixed", r

    r = Ring(4, F_INDIRECT)
    ind, h, st, d = r.lay["ind"], r.lay["hdr"], r.lay["st"], r.lay["data"]
    r.put(h, struct.pack("<IIQ", T_IN, 0, 5))
    r.desc(0, h, 16, NEXT, 1, table=ind)
    r.desc(1, d, 512, NEXT | WRITE, 2, table=ind)
    r.desc(2, st, 1, WRITE, table=ind)
    r.desc(0, ind, 48, INDIRECT)
    r.avail(0)
    yield "indirect", r

    r = Ring(4, 0)
    r.request(T_IN, 9, data=RAM1, data_len=0x1000, data_write=True, split=True)
    yield "split_header_top_page", r

    r = Ring(4, 0)
    r.request(T_IN, 0, data_len=512, data_write=True)
    r.request(T_IN, 1, data_len=512, data_write=True)
    k = r.nreq
    r.nreq += 1
    h = r.lay["hdr"] + 32 * k
    r.put(h, struct.pack("<IIQ", T_OUT, 0, 0))
    r.chain([(h, 16, False)])  # no status byte: the device needs a reset
    yield "no_status_after_good", r

    r = Ring(4, F_RESET | F_FLUSH)
    for s in range(4):
        r.request(T_IN, 8 * s, data_len=1024, data_write=True)
    yield "reset_in_flight", r

    r = Ring(4, F_RO)
    r.request(T_OUT, 0, data_len=512)
    r.request(T_DISCARD, 0, data_len=16)
    r.request(T_IN, 0, data_len=512, data_write=True)
    yield "read_only", r

    r = Ring(10, F_FLUSH)  # more requests than the device has slots
    for _ in range(300):
        r.request(T_FLUSH, 0)
    yield "more_than_slots", r


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "blk")
    os.makedirs(out, exist_ok=True)
    for name, ring in seeds():
        with open(os.path.join(out, "seed_" + name), "wb") as f:
            f.write(ring.blob())


if __name__ == "__main__":
    main()
