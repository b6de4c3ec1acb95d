"""Builds tiny PVH ELF guests from raw 32-bit machine code, for cases that
need no C (triple fault, ACPI power-off, a guest that never ends) and for
malformed ELF files. The PVH entry runs in 32-bit protected mode."""
import struct

LOAD = 0x100000

# 32-bit machine-code snippets.
def outb(port, value):
    """mov dx, port; mov al, value; out dx, al"""
    return b"\x66\xba" + struct.pack("<H", port) + b"\xb0" + bytes([value]) + b"\xee"

def print_str(text):
    return b"".join(outb(0x3f8, c) for c in text.encode())

HANG = b"\xeb\xfe"                 # jmp $
HLT_LOOP = b"\xf4\xeb\xfd"         # hlt; jmp back to hlt


def triple_fault(code_addr):
    """lidt [zero IDT descriptor]; ud2 — no IDT, so #UD → #DF → shutdown.
    (ud2 rather than int3: PVM cannot deliver int3 without an IDT and
    reports an emulation failure instead.) code_addr: where this snippet
    sits in guest memory; the 6-byte zero descriptor follows the code."""
    desc = code_addr + 9
    return b"\x0f\x01\x1d" + struct.pack("<I", desc) + b"\x0f\x0b" + b"\x00" * 6


def elf(code, entry_note=True, load=LOAD, entry=None, note_desc_size=4,
        machine=62, elf_class=2, extra_phdrs=()):
    """An ELF64 executable: one PT_LOAD with `code` at `load`, one PT_NOTE
    with the Xen PVH entry note pointing at `load` (unless entry_note=False)."""
    ehsize, phsize = 64, 56
    note = b""
    if entry_note:
        desc = struct.pack("<I" if note_desc_size == 4 else "<Q", load)
        note = struct.pack("<III", 4, len(desc), 18) + b"Xen\x00" + desc
    phdrs = []
    nph = 2 + len(extra_phdrs) if entry_note else 1 + len(extra_phdrs)
    code_off = ehsize + phsize * nph
    note_off = code_off + len(code)
    phdrs.append(struct.pack("<IIQQQQQQ", 1, 7, code_off, load, load, len(code), len(code), 16))
    if entry_note:
        phdrs.append(struct.pack("<IIQQQQQQ", 4, 4, note_off, 0, 0, len(note), len(note), 4))
    phdrs.extend(extra_phdrs)
    ident = b"\x7fELF" + bytes([elf_class, 1, 1]) + b"\x00" * 9
    eh = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1,
                             entry if entry is not None else load, ehsize, 0, 0,
                             ehsize, phsize, nph, 0, 0, 0)
    return eh + b"".join(phdrs) + code + note
