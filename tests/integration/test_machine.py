"""Machine-level behaviour with tiny generated guests: power-off paths,
triple fault, console escape, signals."""
import os
import pty
import select
import signal
import subprocess
import time

import pytest

import pvh
from conftest import MOTE, run_mote, lines


def write_guest(tmp_path, code, name="g.elf"):
    path = tmp_path / name
    path.write_bytes(pvh.elf(code))
    return str(path)


def test_i8042_reset_ends_with_status_0(kvm, tmp_path):
    g = write_guest(tmp_path, pvh.print_str("reset\n") + pvh.outb(0x64, 0xfe) + pvh.HLT_LOOP)
    r = run_mote(["run", "--kernel", g])
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout) == ["reset"]
    assert r.stderr == b""


def test_acpi_s5_poweroff_ends_with_status_0(kvm, tmp_path):
    # SLP_TYP=5 (bits 2-4) | SLP_EN (bit 5) to the FADT's sleep control register.
    g = write_guest(tmp_path, pvh.outb(0x600, (5 << 2) | 0x20) + pvh.HLT_LOOP)
    r = run_mote(["run", "--kernel", g])
    assert r.returncode == 0, r.stderr


def test_acpi_reset_register_ends_with_status_0(kvm, tmp_path):
    g = write_guest(tmp_path, pvh.outb(0x602, 1) + pvh.HLT_LOOP)
    assert run_mote(["run", "--kernel", g]).returncode == 0


def test_other_sleep_states_do_not_power_off(kvm, tmp_path):
    # S3 (SLP_TYP 3) is not offered: the guest keeps running, then resets.
    code = pvh.outb(0x600, (3 << 2) | 0x20) + pvh.print_str("alive\n") + pvh.outb(0x64, 0xfe)
    r = run_mote(["run", "--kernel", write_guest(tmp_path, code + pvh.HLT_LOOP)])
    assert r.returncode == 0 and lines(r.stdout) == ["alive"]


def test_triple_fault_is_status_2_with_one_line(kvm, tmp_path):
    g = write_guest(tmp_path, pvh.print_str("x") + pvh.triple_fault(pvh.LOAD + 7))
    r = run_mote(["run", "--kernel", g])
    err = lines(r.stderr)
    assert r.returncode == 2, err
    assert len(err) == 1 and "triple fault" in err[0], err


def test_kvm_internal_error_is_status_3_with_one_line(kvm, tmp_path):
    """Code run from an address nothing backs (0xf0000000, MMIO to KVM):
    KVM cannot fetch the instruction and exits with an emulation failure
    (KVM_EXIT_INTERNAL_ERROR), on hardware KVM as on PVM."""
    code = pvh.print_str("x") + b"\xb8\x00\x00\x00\xf0\xff\xe0"  # mov eax, 0xf0000000; jmp eax
    r = run_mote(["run", "--kernel", write_guest(tmp_path, code)])
    err = lines(r.stderr)
    assert r.returncode == 3, err
    assert len(err) == 1 and "KVM internal error" in err[0] and "0xf0000000" in err[0], err
    assert lines(r.stdout) == ["x"]


def test_unassigned_ports_and_mmio_do_not_stop_the_guest(kvm, tmp_path):
    # Unassigned port and MMIO accesses are counted and ignored; the guest goes on.
    code = (pvh.outb(0x99, 1) + b"\xe4\x99"
            + b"\xc7\x05\x00\x00\x00\xf0\x2a\x00\x00\x00"  # mov dword [0xf0000000], 42
            + pvh.print_str("ok\n") + pvh.outb(0x64, 0xfe) + pvh.HLT_LOOP)
    r = run_mote(["run", "--kernel", write_guest(tmp_path, code)])
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout) == ["ok"]


def test_sigterm_stops_with_128_plus_signal(kvm, tmp_path):
    g = write_guest(tmp_path, pvh.print_str("up\n") + pvh.HANG)
    p = subprocess.Popen([MOTE, "run", "--kernel", g], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert p.stdout.readline().strip() == b"up"
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=10)
    assert p.returncode == 128 + signal.SIGTERM, err
    assert b"signal" in err


# Waits for a byte on the UART (LSR data ready), then powers off (ACPI S5).
WAIT_INPUT_THEN_POWEROFF = (b"\x66\xba\xfd\x03"          # mov dx, 0x3fd
                            b"\xec\xa8\x01\x74\xfb"      # in al, dx; test al, 1; jz in
                            + pvh.outb(0x600, (5 << 2) | 0x20) + pvh.HLT_LOOP)


@pytest.mark.parametrize("how", ["ctrl-a-x", "poweroff", "sigterm", "sighup"])
def test_terminal_is_restored_on_every_exit_path(kvm, tmp_path, how):
    """On a terminal mote switches to raw mode while the guest runs (checked)
    and puts the terminal back as it was however it ends: Ctrl-A x, the
    guest powering off, or a signal."""
    import termios
    code = pvh.print_str("up\n") + (WAIT_INPUT_THEN_POWEROFF if how == "poweroff" else pvh.HANG)
    g = write_guest(tmp_path, code)
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    p = subprocess.Popen([MOTE, "run", "--kernel", g], stdin=slave, stdout=slave,
                         stderr=subprocess.PIPE)
    try:
        buf = b""
        deadline = time.time() + 10
        while b"up" not in buf and time.time() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                buf += os.read(master, 100)
        assert b"up" in buf
        assert termios.tcgetattr(slave) != before, "mote did not switch the terminal to raw"
        if how == "ctrl-a-x":
            os.write(master, b"\x01x")
        elif how == "poweroff":
            os.write(master, b"q")
        else:
            p.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGHUP)
        p.wait(timeout=10)
        after = termios.tcgetattr(slave)
    finally:
        p.kill()
        p.wait()
        os.close(master)
        os.close(slave)
    want = {"sigterm": 128 + signal.SIGTERM, "sighup": 128 + signal.SIGHUP}.get(how, 0)
    assert p.returncode == want, p.stderr.read()
    assert before == after


def test_input_reaches_the_guest_uart(kvm, tmp_path):
    # Poll LSR (0x3fd) for data ready, read RBR, echo it, until '.' arrives.
    code = (
        b"\x66\xba\xfd\x03"      # 0: mov dx, 0x3fd
        b"\xec"                  # 4: in al, dx
        b"\xa8\x01"              # 5: test al, 1
        b"\x74\xf7"              # 7: jz 0  (-9)
        b"\x66\xba\xf8\x03"      # 9: mov dx, 0x3f8
        b"\xec"                  # 13: in al, dx
        b"\xee"                  # 14: out dx, al (echo)
        b"\x3c\x2e"              # 15: cmp al, '.'
        b"\x75\xed"              # 17: jne 0 (-19)
    ) + pvh.outb(0x64, 0xfe) + pvh.HLT_LOOP
    r = run_mote(["run", "--kernel", write_guest(tmp_path, code)], input=b"hello." * 1)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello."


def test_large_input_is_not_lost(kvm, tmp_path):
    """More input than the UART buffer holds arrives whole and in order."""
    code = (
        b"\x66\xba\xfd\x03\xec\xa8\x01\x74\xf7"
        b"\x66\xba\xf8\x03\xec\xee\x3c\x2e\x75\xed"
    ) + pvh.outb(0x64, 0xfe) + pvh.HLT_LOOP
    data = bytes((ord("a") + i % 26) for i in range(20000)) + b"."
    r = run_mote(["run", "--kernel", write_guest(tmp_path, code)], input=data, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data
