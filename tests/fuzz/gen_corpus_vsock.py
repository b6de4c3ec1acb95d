#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_vsock.c into tests/fuzz/corpus/vsock/:
vsock packets on well-formed split rings (tx and rx) in the harness's input
format: connections to the harness's listener (port 52), data, shutdown and
credit packets, a host-initiated connection, and malformed packets.

Usage: tests/fuzz/gen_corpus_vsock.py [OUTDIR]
"""
import os
import struct
import sys

TX = dict(desc=0x000, avail=0x100, used=0x140)
RX = dict(desc=0x200, avail=0x300, used=0x340)
NEXT, WRITE, INDIRECT = 1, 2, 4
F_EVENT_IDX, F_INDIRECT, F_CONNECT, F_HOST_DATA, F_HOST_CLOSE, F_BATCH2 = 1, 2, 4, 8, 16, 32
REQUEST, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST = range(1, 8)
CID = 3
LOCAL0 = 1 << 30  # the first local port of a host-initiated connection


def hdr(op, src_port=1000, dst_port=52, length=0, type_=1, flags=0, buf_alloc=65536,
        fwd_cnt=0, src_cid=CID, dst_cid=2):
    return struct.pack("<QQIIIHHIII", src_cid, dst_cid, src_port, dst_port, length, type_, op,
                       flags, buf_alloc, fwd_cnt)


class Image:
    def __init__(self, flags, log2_rx=4, log2_tx=4, port=0):
        self.flags = flags
        self.log2 = (log2_rx, log2_tx)
        self.port = port
        self.img = bytearray(0x10000)
        self.tx_next = self.tx_idx = 0
        self.data_at = 0x1000
        self.batch2 = 0
        self.published = None

    def put(self, at, data):
        self.img[at:at + len(data)] = data

    def alloc(self, data):
        at = self.data_at
        self.put(at, data)
        self.data_at = (self.data_at + len(data) + 15) & ~15
        return at

    def rx_buffers(self, n, size=44 + 512):
        ring = 1 << self.log2[0]
        for i in range(min(n, ring)):
            at = self.alloc(bytes(size))
            self.put(RX["desc"] + 16 * i, struct.pack("<QIHH", at, size, WRITE, 0))
            self.put(RX["avail"] + 4 + 2 * i, struct.pack("<H", i))
        self.put(RX["avail"] + 2, struct.pack("<H", min(n, ring)))

    def tx(self, *parts, indirect=False):
        """parts: bytes objects, each one readable descriptor."""
        ring = 1 << self.log2[1]
        addrs = [(self.alloc(p), len(p)) for p in parts]
        head = self.tx_next
        if indirect:
            table = bytearray()
            for k, (a, n) in enumerate(addrs):
                last = k == len(addrs) - 1
                table += struct.pack("<QIHH", a, n, 0 if last else NEXT, 0 if last else k + 1)
            t = self.alloc(bytes(table))
            self.put(TX["desc"] + 16 * head, struct.pack("<QIHH", t, len(table), INDIRECT, 0))
            self.tx_next = (head + 1) % ring
        else:
            for k, (a, n) in enumerate(addrs):
                i = (head + k) % ring
                last = k == len(addrs) - 1
                self.put(TX["desc"] + 16 * i, struct.pack(
                    "<QIHH", a, n, 0 if last else NEXT, 0 if last else (i + 1) % ring))
            self.tx_next = (head + len(addrs)) % ring
        self.put(TX["avail"] + 4 + 2 * (self.tx_idx % ring), struct.pack("<H", head))
        self.tx_idx += 1
        if self.published is None:
            self.put(TX["avail"] + 2, struct.pack("<H", self.tx_idx))
        else:
            self.batch2 += 1

    def second_batch(self):
        """Packets after this are made available only for the second tx kick."""
        self.published = self.tx_idx
        self.flags |= F_BATCH2

    def bytes(self):
        end = max(self.data_at, 0x400)
        head = struct.pack("<BBBBI8x", self.flags, self.log2[0], self.log2[1], self.batch2,
                           self.port)
        return head + bytes(self.img[:end])


def seeds():
    s = {}
    # guest -> host: connect, then data, credit, shutdown once connected
    im = Image(0)
    im.rx_buffers(8)
    im.tx(hdr(REQUEST))
    im.second_batch()
    im.tx(hdr(RW, length=5), b"hello")
    im.tx(hdr(CREDIT_REQUEST))
    im.tx(hdr(CREDIT_UPDATE, fwd_cnt=100))
    im.tx(hdr(SHUTDOWN, flags=3))
    s["seed_connect_data_shutdown"] = im.bytes()
    # the host answers and then closes
    im = Image(F_HOST_DATA | F_HOST_CLOSE)
    im.rx_buffers(16)
    im.tx(hdr(REQUEST, src_port=1001))
    im.second_batch()
    im.tx(hdr(RW, src_port=1001, length=3), b"abc")
    im.tx(hdr(RST, src_port=1001))
    s["seed_host_data_close"] = im.bytes()
    # a guest that gives no credit, then some
    im = Image(F_HOST_DATA)
    im.rx_buffers(16, size=44 + 64)
    im.tx(hdr(REQUEST, src_port=1002, buf_alloc=0))
    im.second_batch()
    im.tx(hdr(CREDIT_UPDATE, src_port=1002, buf_alloc=32))
    s["seed_no_credit"] = im.bytes()
    # header and payload in one descriptor, and through an indirect table
    im = Image(F_INDIRECT, log2_tx=3)
    im.rx_buffers(4)
    im.tx(hdr(REQUEST, src_port=1003), indirect=True)
    im.second_batch()
    im.tx(hdr(RW, src_port=1003, length=4) + b"data")
    im.tx(hdr(RW, src_port=1003, length=6), b"in", b"dire", indirect=True)
    s["seed_indirect"] = im.bytes()
    # host-initiated: CONNECT 5000, the guest accepts (first local port)
    im = Image(F_CONNECT | F_EVENT_IDX, port=5000)
    im.rx_buffers(8)
    im.tx(hdr(RESPONSE, src_port=5000, dst_port=LOCAL0))
    im.tx(hdr(RW, src_port=5000, dst_port=LOCAL0, length=2), b"ok")
    im.tx(hdr(SHUTDOWN, src_port=5000, dst_port=LOCAL0, flags=2))
    s["seed_host_connect"] = im.bytes()
    # malformed: every check of vsock_hdr_check, and unknown connections
    im = Image(0)
    im.rx_buffers(16)
    im.tx(hdr(REQUEST)[:20])
    im.tx(hdr(REQUEST, src_cid=4))
    im.tx(hdr(REQUEST, dst_cid=3))
    im.tx(hdr(REQUEST, type_=2))
    im.tx(hdr(99))
    im.tx(hdr(0))
    im.tx(hdr(RW, length=100), b"short")
    im.tx(hdr(RW, length=70000), bytes(16))
    im.tx(hdr(RW, src_port=7, length=2), b"no")
    im.tx(hdr(RESPONSE, src_port=8))
    im.tx(hdr(RST, src_port=9))
    im.tx(hdr(REQUEST, dst_port=53))  # nobody listens
    s["seed_malformed"] = im.bytes()
    # data beyond the credit mote gave, to a connected port
    im = Image(0, log2_tx=2)
    im.rx_buffers(4)
    im.tx(hdr(REQUEST, src_port=1004))
    im.second_batch()
    big = bytes(range(256)) * 256
    for _ in range(3):
        im.tx(hdr(RW, src_port=1004, length=len(big)), big)
    s["seed_credit_overrun"] = im.bytes()
    # an rx ring of a readable buffer: the device needs a reset
    im = Image(0)
    at = im.alloc(bytes(64))
    im.put(RX["desc"], struct.pack("<QIHH", at, 64, 0, 0))
    im.put(RX["avail"] + 2, struct.pack("<H", 1))
    im.tx(hdr(REQUEST, dst_port=53))
    s["seed_bad_rx_buffer"] = im.bytes()
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                             "corpus", "vsock")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
