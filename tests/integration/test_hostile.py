"""The hostile-guest suite: mote's own test guests attack the virtio-pci
transport, the split rings, MSI-X, PCI configuration and the buses while every
other vCPU adds noise (unassigned port I/O and MMIO, the UART) — directly on
this machine's KVM. Each case asserts what the guest saw (the request failed
or the device went to NEEDS_RESET; after a reset an ordinary request works;
the rng next to the disk and the console kept working), the exact line mote
logged for it, that mote never logged an error, and that it ended with the
guest's power-off (status 0)."""
import re

import pytest

from conftest import guest, run_mote, lines

CPUS = 4
NEEDS_RESET = "mote: warning: virtio-blk: queue 0: {}; device needs reset"


def disk(tmp_path, sectors=64):
    path = tmp_path / "hostile.img"
    path.write_bytes(bytes(512 * sectors))
    return str(path)


def run_case(tmp_path, case):
    """Runs tests/guest/hostile.c's case with debug logging; returns (stdout, stderr) lines."""
    r = run_mote(["run", "--kernel", guest("hostile"), "--cpus", str(CPUS), "--mem", "256",
                  "--disk", disk(tmp_path), "--rng", "--verbose", "--verbose",
                  "--cmdline", f"case={case}"], timeout=180)
    out, err = lines(r.stdout), lines(r.stderr)
    assert r.returncode == 0, (r.returncode, out, err)
    assert not any("FAIL" in l for l in out), out
    assert out[0] == f"mote-test: hostile cpus={CPUS}", out
    assert f"mote-test: hostile {case} after: blk ok rng ok noise ok" in out, out
    assert out[-1] == "mote-test: done", out
    assert not [l for l in err if l.startswith("mote: error:")], err
    # The noise's unassigned accesses are logged with their true addresses
    # (rate-limited: the first ten, then suppressed).
    unassigned = [l for l in err if "unassigned" in l]
    assert unassigned and unassigned[0] == "mote: debug: pio bus: unassigned write of 1 bytes at 0x510", err
    assert all(re.fullmatch(r"mote: debug: (pio bus: unassigned (read|write) of [124] bytes at "
                            r"0x(51[0-7]|cf[89a-f])|mmio bus: unassigned (read|write) of 4 "
                            r"bytes at 0xf0000[01][0-9a-f]{2})", l) for l in unassigned), unassigned
    return out, err


def warnings(err):
    """mote's warning lines, without the rate limiter's bookkeeping."""
    return [l for l in err if l.startswith("mote: warning:")]


def test_length_overflow_resets_the_device(kvm, tmp_path):
    out, err = run_case(tmp_path, "len-overflow")
    assert "mote-test: hostile len-overflow ok needs-reset" in out
    assert warnings(err) == [NEEDS_RESET.format("broken ring")]


def test_bad_queue_sizes_reset_the_device(kvm, tmp_path):
    out, err = run_case(tmp_path, "qsize")
    assert "mote-test: hostile qsize ok needs-reset max=256" in out
    assert warnings(err) == [
        NEEDS_RESET.format("queue enabled with a bad size or ring address"),   # 12
        NEEDS_RESET.format("queue size above the device's maximum"),           # 512
    ]


def test_kick_before_driver_ok_is_ignored(kvm, tmp_path):
    out, err = run_case(tmp_path, "notify-early")
    assert "mote-test: hostile notify-early ok ignored-until-driver-ok" in out
    assert "mote: debug: virtio-blk: queue 0: kick before DRIVER_OK ignored" in err
    assert warnings(err) == []


def test_read_only_fields_keep_their_values(kvm, tmp_path):
    out, err = run_case(tmp_path, "ro-fields")
    assert "mote-test: hostile ro-fields ok unchanged" in out
    assert "mote: debug: virtio-blk: bad common config access off=0x21 len=1" in err
    assert warnings(err) == []


def test_msix_table_of_garbage(kvm, tmp_path):
    out, err = run_case(tmp_path, "msix-garbage")
    # virtio-blk: 4 request queues (VIRTIO_BLK_F_MQ) and the configuration vector
    assert "mote-test: hostile msix-garbage ok vectors=5" in out
    assert "mote: debug: msix: bad table access off=0x2 len=2" in err
    assert "mote: debug: msix: bad table access off=0x50 len=4" in err   # past the table
    assert warnings(err) == []


def test_unassigned_port_io_and_mmio(kvm, tmp_path):
    out, err = run_case(tmp_path, "unassigned")
    assert "mote-test: hostile unassigned ok all-ones" in out
    assert warnings(err) == []


def test_pci_config_writes_to_bars_bridge_and_absent_functions(kvm, tmp_path):
    out, err = run_case(tmp_path, "pci-config")
    assert "mote-test: hostile pci-config ok ignored" in out
    assert warnings(err) == []


def test_broken_rings_with_several_vcpus(kvm, tmp_path):
    """blk's ring attacks (loops, long chains, addresses at and past the end of
    RAM, wrapping addresses, nested indirect tables, avail.idx jumps) while
    three more vCPUs add noise, with the rng device next to the disk."""
    img = tmp_path / "p.img"
    img.write_bytes(b"".join(n.to_bytes(8, "little") + bytes(504) for n in range(2048)))
    r = run_mote(["run", "--kernel", guest("blk"), "--cpus", str(CPUS), "--disk", str(img),
                  "--rng", "--cmdline", "blk=rw pattern=1 hostile=1 noise=1"], timeout=180)
    out, err = lines(r.stdout), lines(r.stderr)
    assert r.returncode == 0, (r.returncode, out, err)
    assert out[0] == f"mote-test: blk noise cpus={CPUS}", out
    cases = [l.split()[2] for l in out if l.startswith("mote-test: hostile ")]
    assert cases == ["next-oob", "loop", "long-chain", "addr-oob", "addr-straddle",
                     "addr-wrap", "write-before-read", "nested-indirect", "avail-jump"]
    assert all(l.endswith(" ok (needs-reset)") for l in out
               if l.startswith("mote-test: hostile ")), out
    assert out[-2:] == ["mote-test: blk ok", "mote-test: done"], out
    assert err == [NEEDS_RESET.format("broken ring")] * len(cases), err


RACE_REASONS = ("broken ring", "DRIVER_OK without FEATURES_OK", "request without header or "
                "status byte", "queue size above the device's maximum",
                "queue enabled with a bad size or ring address")


def test_vcpus_attacking_one_device_at_once(kvm, tmp_path):
    """Three APs reset the disk, flip its status, select, size, move, enable
    and kick its queue and set MSI-X vectors, at random, while the BSP keeps
    sending reads; afterwards a reset brings the disk back."""
    out, err = run_case(tmp_path, "race")
    line = [l for l in out if l.startswith("mote-test: hostile race ok ")]
    assert len(line) == 1 and re.fullmatch(
        r"mote-test: hostile race ok requests=300 completed=\d+ attacks=[1-9]\d*", line[0]), out
    reasons = "|".join(re.escape(r) for r in RACE_REASONS)
    assert all(re.fullmatch(rf"mote: warning: (virtio-blk: queue 0: ({reasons}); device needs "
                            r"reset|\(\d+ similar messages suppressed\))", l)
               for l in warnings(err)), warnings(err)


def test_rng_hostile_chains_with_several_vcpus(kvm, tmp_path):
    """virtio-rng's hostile chains (a chain with nothing writable, a buffer
    outside RAM) while three more vCPUs add noise, a disk next to it."""
    r = run_mote(["run", "--kernel", guest("rng"), "--cpus", str(CPUS), "--rng",
                  "--disk", disk(tmp_path), "--cmdline", "hostile=1 noise=1"], timeout=120)
    out, err = lines(r.stdout), lines(r.stderr)
    assert r.returncode == 0, (r.returncode, out, err)
    assert out[0] == f"mote-test: rng noise cpus={CPUS}", out
    assert "mote-test: hostile readable-only ok (needs-reset)" in out
    assert "mote-test: hostile addr-oob ok (needs-reset)" in out
    assert out[-1] == "mote-test: done", out
    assert err == [
        "mote: warning: virtio-rng: queue 0: request with a device-readable buffer; device needs reset",
        "mote: warning: virtio-rng: queue 0: broken ring; device needs reset",
    ], err
