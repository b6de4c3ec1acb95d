"""mote's own test guests (tests/guest/), run directly on this machine's
KVM: serial output, power-off, SMP bring-up through the MADT, the memory
map and every page of RAM, and port-I/O/MMIO exits."""
import re

import pytest

from conftest import guest, run_mote, lines


def run_guest(name, *args, timeout=60):
    r = run_mote(["run", "--kernel", guest(name)] + list(args), timeout=timeout)
    out = lines(r.stdout)
    assert r.returncode == 0, (r.returncode, r.stderr, out)
    assert r.stderr == b"", r.stderr
    assert out[-1] == "mote-test: done", out
    assert not any("FAIL" in l for l in out), out
    return out


def test_hello(kvm):
    assert run_guest("hello") == ["mote-test: hello", "mote-test: done"]


@pytest.mark.parametrize("cpus", [1, 2, 4, 8])
def test_smp_all_cpus_check_in(kvm, cpus):
    out = run_guest("smp", "--cpus", str(cpus))
    assert f"mote-test: smp madt={cpus} up={cpus}" in out
    apics = sorted(int(m.group(1)) for l in out
                   if (m := re.match(r"mote-test: cpu \d+ apic=(\d+)", l)))
    assert apics == list(range(cpus))


def e820(out):
    return [tuple(int(x, 0) for x in l.split()[2:5]) for l in out
            if l.startswith("mote-test: e820 ")]


@pytest.mark.parametrize("mib", [16, 256, 3200])  # 3200: RAM above the 3 GiB hole
def test_memory_map_and_every_page(kvm, mib):
    out = run_guest("memory", "--mem", str(mib), timeout=120)
    ram = sum(size for _, size, kind in e820(out) if kind == 1)
    # All of RAM is usable except the 384 KiB hole between 640 KiB and 1 MiB
    # (EBDA, ACPI tables), which is reserved.
    assert ram == (mib << 20) - (0x100000 - 0x9fc00), e820(out)
    ranges = [(a, s) for a, s, kind in e820(out) if kind == 1]
    if mib > 3072:
        assert (1 << 32, (mib - 3072) << 20) in ranges   # above the 32-bit hole
    assert all(a + s <= 0xc0000000 or a >= 1 << 32 for a, s in ranges)
    m = [l for l in out if l.startswith("mote-test: memory checked=")]
    assert m and m[0].endswith(" bad=0"), out
    checked = int(re.search(r"checked=(\d+)", m[0]).group(1))
    assert checked > (ram >> 12) * 9 // 10   # nearly every page, image excluded


def test_exits_counts(kvm):
    out = run_guest("exits", "--cmdline", "exits=2000")
    m = [l for l in out if l.startswith("mote-test: exits ")]
    assert m, out
    fields = dict(kv.split("=") for kv in m[0].split()[2:])
    assert fields["n"] == "2000"
    assert int(fields["pio_cycles"]) > 0 and int(fields["mmio_cycles"]) > 0


def test_cpus_beyond_kvm_limit_are_refused(kvm):
    # 254 is mote's own limit; KVM may allow fewer. Either way: no crash.
    r = run_mote(["run", "--kernel", guest("hello"), "--cpus", "254"], timeout=60)
    assert r.returncode in (0, 1), r.stderr
    if r.returncode == 1:
        assert b"KVM allows at most" in r.stderr
