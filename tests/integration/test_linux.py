"""The default Linux guest (Debian's cloud kernel + busybox initrd) under
mote: directly where /dev/kvm is hardware KVM, in the lab (QEMU-emulated
SVM, tests/lab/run) where it is PVM. All checks share one lab boot
(tests/lab/checks-boot.sh); each becomes one test here."""
import os
import re
import subprocess

import pytest

from conftest import ROOT, MOTE, BUILD, kvm_problem

CHECKS = ["info-1cpu-128m", "info-2cpu-512m", "poweroff", "reboot", "triple-fault"]
pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_results():
    problem = kvm_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    for f in ("vmlinuz", "initrd.img"):
        if not os.path.exists(os.path.join(BUILD, "guest", f)):
            pytest.fail(f"build/guest/{f} is missing: run make guest", pytrace=False)
    tier = subprocess.run([os.path.join(ROOT, "tests/lab/tier")], capture_output=True,
                          text=True).stdout.strip()
    script = os.path.join(ROOT, "tests/lab/checks-boot.sh")
    if tier == "direct":
        env = dict(os.environ, MOTE=MOTE, KERNEL=os.path.join(BUILD, "guest/vmlinuz"),
                   INITRD=os.path.join(BUILD, "guest/initrd.img"))
        r = subprocess.run(["sh", script, "mote"] + CHECKS, capture_output=True, text=True,
                           env=env, timeout=1800)
    else:
        r = subprocess.run([os.path.join(ROOT, "tests/lab/run"), "--smp", "2", script,
                            "mote"] + CHECKS, capture_output=True, text=True, timeout=1800)
    results = {}
    for line in r.stdout.splitlines():
        m = re.match(r"LAB-CHECK (\S+) (pass|fail) (.*)", line)
        if m:
            results[m.group(1)] = (m.group(2), m.group(3), r.stdout)
    if not results:
        pytest.fail(f"the {tier} run reported no checks (status {r.returncode}):\n"
                    f"{r.stdout[-3000:]}\n{r.stderr[-2000:]}", pytrace=False)
    return results


@pytest.mark.parametrize("check", CHECKS)
def test_linux(lab_results, check):
    assert check in lab_results, f"check {check} did not run"
    verdict, detail, out = lab_results[check]
    if verdict != "pass":
        lines = out.splitlines()
        i = next(i for i, l in enumerate(lines) if l.startswith(f"LAB-CHECK {check} "))
        pytest.fail(f"{check}: {detail}\n" + "\n".join(lines[i:i + 27]), pytrace=False)
