#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_net.c into tests/fuzz/corpus/net/:
transmit frames with and without offload headers (checksum, TSO), a few
malformed ones, and received frames over single and mergeable buffers, on
well-formed split rings in the harness's input format.

Usage: tests/fuzz/gen_corpus_net.py [OUTDIR]
"""
import os
import struct
import sys

TX = dict(desc=0x0000, avail=0x1000, used=0x1400)
RX = dict(desc=0x2000, avail=0x3000, used=0x3400)
DATA, RXBUF, RX_SRC = 0x4000, 0x6000, 0x8000
NEXT, WRITE = 1, 2
EVENT_IDX, INDIRECT, TAP, MRG, HOST_OFF, GUEST_OFF, RECV = 1, 2, 4, 8, 16, 32, 64


class Image:
    def __init__(self):
        self.b = bytearray(0x10000)

    def put(self, at, data):
        self.b[at:at + len(data)] = data

    def desc(self, q, i, addr, length, flags=0, nxt=0):
        self.put(q["desc"] + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))

    def avail(self, q, heads):
        for k, h in enumerate(heads):
            self.put(q["avail"] + 4 + 2 * k, struct.pack("<H", h))
        self.put(q["avail"] + 2, struct.pack("<H", len(heads)))


def vnet(flags=0, gso=0, hdr_len=0, gso_size=0, cstart=0, coff=0):
    return struct.pack("<BBHHHHH", flags, gso, hdr_len, gso_size, cstart, coff, 0)


def udp_frame(n=64):
    eth = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + bytes((i * 7) & 0xff for i in range(n))


def seed(flags, img, rx_len=0, log2=4):
    hdr = struct.pack("<BB6H", log2, flags, TX["desc"], TX["avail"], TX["used"],
                      RX["desc"], RX["avail"], RX["used"]) + struct.pack("<H", rx_len)
    return hdr + bytes(img.b).rstrip(b"\0")  # the harness zero-fills the rest


def tx_seed(flags, header, frame, split=True):
    img = Image()
    img.put(DATA, header + frame)
    if split:
        img.desc(TX, 0, DATA, 12, NEXT, 1)
        img.desc(TX, 1, DATA + 12, len(frame))
    else:
        img.desc(TX, 0, DATA, 12 + len(frame))
    img.avail(TX, [0])
    return img


def rx_seed(flags, frame, bufs):
    img = Image()
    img.put(RX_SRC, frame)
    for i, size in enumerate(bufs):
        img.desc(RX, i, RXBUF + 0x400 * i, size, WRITE)
    img.avail(RX, list(range(len(bufs))))
    return seed(flags | RECV, img, len(frame))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                              "corpus", "net")
    os.makedirs(out, exist_ok=True)
    f = udp_frame()
    seeds = {
        "tx_plain_slirp": seed(0, tx_seed(0, vnet(), f)),
        "tx_plain_tap": seed(TAP, tx_seed(TAP, vnet(), f, split=False)),
        "tx_csum_tap": seed(TAP | HOST_OFF, tx_seed(0, vnet(1, 0, 0, 0, 34, 6), f)),
        "tx_tso4_tap": seed(TAP | HOST_OFF | EVENT_IDX,
                            tx_seed(0, vnet(1, 1, 54, 1448, 34, 16), udp_frame(3000))),
        "tx_tso_not_negotiated": seed(TAP, tx_seed(0, vnet(1, 1, 54, 1448, 34, 16), f)),
        "tx_csum_past_end": seed(TAP | HOST_OFF, tx_seed(0, vnet(1, 0, 0, 0, 60000, 6), f)),
        "tx_short": seed(0, tx_seed(0, b"\0" * 8, b"")),
        "rx_single_tap": rx_seed(TAP, vnet() + f, [2048]),
        "rx_mergeable_tap": rx_seed(TAP | MRG | GUEST_OFF, vnet(2) + udp_frame(1400),
                                    [512, 512, 512, 512]),
        "rx_mergeable_slirp": rx_seed(MRG, udp_frame(1400), [256] * 8),
        "rx_too_small": rx_seed(0, udp_frame(1400), [100]),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, "seed_" + name), "wb") as fh:
            fh.write(data)


if __name__ == "__main__":
    main()
