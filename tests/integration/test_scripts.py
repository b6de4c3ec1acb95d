"""The verdicts of `make smoke` (scripts/guest-report, called by
scripts/boot-default) and of the lab's boot checks (tests/lab/checks-boot.sh),
fed made-up guest reports: a report with a missing or empty value must fail,
never pass because `[ "" -gt N ]` is an error and so false."""
import os
import stat
import subprocess

import pytest

from conftest import ROOT

REPORT = os.path.join(ROOT, "scripts", "guest-report")
CHECKS_BOOT = os.path.join(ROOT, "tests", "lab", "checks-boot.sh")


@pytest.mark.parametrize("out,ok", [
    ("mote-guest: ready\nmote-guest: cpus=2 memtotal_kb=480000\r\n", True),
    ("mote-guest: cpus=2 memtotal_kb=\n", False),
    ("mote-guest: cpus= memtotal_kb=480000\n", False),
    ("mote-guest: cpus=2\n", False),
    ("mote-guest: ready\n", False),
    ("mote-guest: cpus=1 memtotal_kb=480000\n", False),    # wrong CPU count
    ("mote-guest: cpus=2 memtotal_kb=100000\n", False),    # under 80% of 512 MiB
    ("mote-guest: cpus=2 memtotal_kb=600000\n", False),    # more than it was given
])
def test_guest_report(out, ok):
    r = subprocess.run([REPORT, "2", "512", "80"], input=out.encode(), capture_output=True)
    assert (r.returncode == 0) == ok, r.stderr
    assert r.stderr.decode().startswith("smoke: ok" if ok else "smoke: FAIL"), r.stderr


@pytest.mark.parametrize("report,verdict", [
    ("cpus=1 memtotal_kb=120000", "pass"),
    ("cpus=1 memtotal_kb=", "fail"),
    ("cpus= memtotal_kb=120000", "fail"),
    ("cpus=1 memtotal_kb=999999", "fail"),
])
def test_lab_boot_check_verdict(tmp_path, report, verdict):
    """checks-boot.sh's info check run against a stand-in for mote that
    prints the given report and exits 0."""
    fake = tmp_path / "fake-mote"
    fake.write_text(f"#!/bin/sh\necho 'mote-guest: {report}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    r = subprocess.run(["sh", CHECKS_BOOT, "mote", "info-1cpu-128m"], capture_output=True,
                       text=True, timeout=60,
                       env={**os.environ, "MOTE": str(fake), "TMPDIR": str(tmp_path)})
    assert f"LAB-CHECK info-1cpu-128m {verdict} " in r.stdout, (r.stdout, r.stderr)
    assert r.returncode == (0 if verdict == "pass" else 1), r.stdout
