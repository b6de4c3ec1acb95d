#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_pci.c into tests/fuzz/corpus/pci/:
access sequences in the harness's 12-byte format that do what Linux does —
probe the type-1 mechanism, scan bus 0, size BARs, walk capabilities, set up
MSI-X and a virtio device up to a kick — so the fuzzer starts deep.

Usage: tests/fuzz/gen_corpus_pci.py [OUTDIR]
"""
import os
import struct
import sys

PORT, MMIO, MMIO_END, RAM, IRQ, LOOP, CFG = 0, 1, 2, 3, 4, 5, 6
W = 0x80
MSIX_CAP = 0x74  # virtio-rng: common, ISR, notify (20 bytes) from 0x40, then MSI-X


def op(what, off, length, value=0, write=False):
    return struct.pack("<BBHQ", what | (W if write else 0), length - 1, off, value)


def cf8(slot, reg, bus=0, fn=0):
    return 0x80000000 | bus << 16 | slot << 11 | fn << 8 | (reg & 0xFC)


def cfg_read(slot, reg, length=4):
    return op(PORT, 0, 4, cf8(slot, reg), True) + op(PORT, 4 + (reg & 3), length)


def cfg_write(slot, reg, length, value):
    return op(PORT, 0, 4, cf8(slot, reg), True) + op(PORT, 4 + (reg & 3), length, value, True)


def seeds():
    s = op(PORT, 3, 1, 0x01, True) + op(PORT, 0, 4)  # Linux's pci_check_type1()
    s += op(PORT, 0, 4, 0x80000000, True) + op(PORT, 0, 4)
    for slot in range(3):
        s += cfg_read(slot, 0x00) + cfg_read(slot, 0x08) + cfg_read(slot, 0x0C, 1)
    s += cfg_read(0, 0x00, 2) + cfg_read(1, 0x02, 2)
    s += op(PORT, 0, 4, cf8(0, 0, bus=1), True) + op(PORT, 4, 4)
    s += op(PORT, 0, 4, cf8(1, 0, fn=3), True) + op(PORT, 4, 4)
    yield "probe_scan", s

    s = cfg_read(1, 0x04, 2) + cfg_write(1, 0x04, 2, 0)
    s += cfg_read(1, 0x10) + cfg_write(1, 0x10, 4, 0xFFFFFFFF) + cfg_read(1, 0x10)
    s += cfg_read(1, 0x14) + cfg_write(1, 0x14, 4, 0xFFFFFFFF) + cfg_read(1, 0x14)
    s += cfg_write(1, 0x10, 4, 0xC0000004) + cfg_write(1, 0x14, 4, 0)
    s += cfg_write(1, 0x04, 2, 0x0406) + cfg_read(1, 0x04, 2)
    s += cfg_write(1, 0x18, 4, 0xFFFFFFFF) + cfg_read(1, 0x18)
    yield "bar_sizing", s

    s = cfg_read(1, 0x06, 2) + cfg_read(1, 0x34, 1)
    for cap in (0x40, 0x50, 0x60, MSIX_CAP):
        s += cfg_read(1, cap) + cfg_read(1, cap + 4) + cfg_read(1, cap + 8)
    s += cfg_read(1, 0x61, 1) + cfg_read(1, MSIX_CAP + 2, 2)
    yield "cap_walk", s

    s = b""
    for v in range(3):  # table entries: address, data, unmask
        s += op(MMIO, 0x4000 + 16 * v, 8, 0xFEE00000 | v << 12, True)
        s += op(MMIO, 0x4008 + 16 * v, 4, 0x4020 + v, True)
        s += op(MMIO, 0x400C + 16 * v, 4, 0, True)
    s += op(MMIO, 0x0010, 2, 0, True)  # msix_config = 0
    s += op(MMIO, 0x0016, 2, 0, True) + op(MMIO, 0x001A, 2, 1, True)  # queue 0 -> 1
    s += op(IRQ, 0, 1) + op(IRQ, 1, 1) + op(MMIO, 0x6000, 8)  # pending while disabled
    s += cfg_write(1, MSIX_CAP + 2, 2, 0x8000)  # enable
    s += op(IRQ, 0, 1) + op(MMIO, 0x6000, 8)
    s += cfg_write(1, MSIX_CAP + 2, 2, 0xC000)  # function mask
    s += op(IRQ, 1, 1) + op(MMIO, 0x400C, 4, 1, True) + op(MMIO, 0x6000, 4)
    s += cfg_write(1, MSIX_CAP + 2, 2, 0x8000) + op(MMIO, 0x400C, 4, 0, True)
    s += op(MMIO, 0x4000 + 16 * 3, 4) + op(MMIO, 0x4002, 4) + op(MMIO, 0x6000, 4, 0, True)
    yield "msix", s

    # A virtio-rng driver: features, one queue with one 64-byte buffer, kick.
    s = op(MMIO, 0x14, 1, 0, True) + op(MMIO, 0x14, 1, 1, True) + op(MMIO, 0x14, 1, 3, True)
    s += op(MMIO, 0x00, 4, 1, True) + op(MMIO, 0x04, 4)
    s += op(MMIO, 0x08, 4, 1, True) + op(MMIO, 0x0C, 4, 1, True)
    s += op(MMIO, 0x14, 1, 11, True) + op(MMIO, 0x14, 1)
    s += op(MMIO, 0x12, 2) + op(MMIO, 0x16, 2, 0, True) + op(MMIO, 0x18, 2, 8, True)
    s += op(MMIO, 0x20, 8, 0x0000, True) + op(MMIO, 0x28, 8, 0x0100, True)
    s += op(MMIO, 0x30, 8, 0x0200, True) + op(MMIO, 0x1C, 2, 1, True)
    s += op(RAM, 0x0000, 8, 0x1000, True) + op(RAM, 0x0008, 4, 64 | 2 << 32, True)
    s += op(RAM, 0x0008, 8, 64 | 2 << 32, True)  # len 64, flags WRITE
    s += op(RAM, 0x0104, 2, 0, True) + op(RAM, 0x0102, 2, 1, True)  # avail ring
    s += op(MMIO, 0x14, 1, 15, True) + op(MMIO, 0x3000, 2, 0, True) + op(LOOP, 0, 1)
    s += op(MMIO, 0x1000, 1) + op(MMIO, 0x1000, 1) + op(MMIO, 0x15, 1)
    s += op(MMIO, 0x14, 1, 0, True) + op(MMIO, 0x14, 1)
    yield "virtio_rng", s

    s = op(MMIO_END, 8, 8, ~0 & 0xFFFFFFFFFFFFFFFF, True) + op(MMIO_END, 12, 8)
    s += op(MMIO, 0x2000, 4) + op(MMIO, 0x37, 2) + op(MMIO, 0x24, 8, 1, True)
    s += op(CFG, 0x01FE, 4) + op(CFG, 0x01FF, 2, 0xFFFF, True) + op(CFG, 0x2004, 2)
    s += op(PORT, 7, 2) + op(PORT, 6, 4, 0, True) + op(PORT, 1, 4)
    yield "edges", s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "pci")
    os.makedirs(out, exist_ok=True)
    for name, blob in seeds():
        with open(os.path.join(out, "seed_" + name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
