"""The default Linux guest (Debian's cloud kernel + busybox initrd) under
mote: directly where /dev/kvm is hardware KVM, in the lab (QEMU-emulated
SVM, tests/lab/run) where it is PVM. All checks share one lab boot
(tests/lab/checks-boot.sh: boot, CPUs, memory, power-off, reboot;
tests/lab/checks-devices.sh: disks, rng, triple fault, a boot through the
Firecracker API ended by SendCtrlAltDel; tests/lab/checks-net.sh: DHCP,
ping, TCP and hostfwd over the user-mode network, a tx rate limit;
tests/lab/checks-migrate.sh: a live migration of a guest streaming over TCP
and writing its disk); each becomes one test here."""
import os
import re
import subprocess

import pytest

from conftest import ROOT, MOTE, BUILD, kvm_problem

BOOT_CHECKS = ["info-1cpu-128m", "info-2cpu-512m", "poweroff", "reboot"]
DEVICE_CHECKS = ["disk-write", "disk-persists", "root-on-vda", "two-disks", "read-only",
                 "kill9-after-sync", "rng", "triple-fault", "api-boot-ctrl-alt-del",
                 "storage-migration", "vsock-guest-to-host", "vsock-host-to-guest"]
NET_CHECKS = ["net-dhcp", "net-ping", "net-tcp-to-host", "net-tx-rate-limit", "net-hostfwd",
              "net-poweroff", "tap-ping", "tap-tcp-to-host", "tap-tcp-to-guest", "tap-poweroff",
              "bridge-two-guests"]
MIGRATE_CHECKS = ["migrate-failed-resumes", "migrate-source-exit", "migrate-tcp-stream", "migrate-disk-writes",
                  "migrate-guest-kernel-quiet", "migrate-disk-md5", "migrate-dest-poweroff"]
CHECKS = BOOT_CHECKS + DEVICE_CHECKS + NET_CHECKS + MIGRATE_CHECKS
pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def lab_results():
    problem = kvm_problem()
    if problem:
        pytest.fail(problem, pytrace=False)
    for f in ("vmlinuz", "initrd.img", "rootfs.ext4"):
        if not os.path.exists(os.path.join(BUILD, "guest", f)):
            pytest.fail(f"build/guest/{f} is missing: run make guest", pytrace=False)
    tier = subprocess.run([os.path.join(ROOT, "tests/lab/tier")], capture_output=True,
                          text=True).stdout.strip()
    lab = os.path.join(ROOT, "tests/lab")
    # A static HTTP-over-Unix-socket client: L1 has no curl or Python.
    apictl = os.path.join(BUILD, "lab-apictl")
    r = subprocess.run(["cc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", apictl,
                        os.path.join(lab, "apictl.c")], capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"cannot build tests/lab/apictl.c:\n{r.stderr}", pytrace=False)
    # Both ends of the vsock check (the guest reads it from a raw disk).
    vsockctl = os.path.join(BUILD, "lab-vsockctl")
    r = subprocess.run(["cc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", vsockctl,
                        os.path.join(lab, "vsockctl.c")], capture_output=True, text=True)
    if r.returncode:
        pytest.fail(f"cannot build tests/lab/vsockctl.c:\n{r.stderr}", pytrace=False)
    if tier == "direct":
        env = dict(os.environ, MOTE=MOTE, KERNEL=os.path.join(BUILD, "guest/vmlinuz"),
                   INITRD=os.path.join(BUILD, "guest/initrd.img"),
                   ROOTFS=os.path.join(BUILD, "guest/rootfs.ext4"), APICTL=apictl,
                   VSOCKCTL=vsockctl)
        out = ""
        for script, args in (("checks-boot.sh", ["mote"] + BOOT_CHECKS),
                             ("checks-devices.sh", []), ("checks-net.sh", []),
                             ("checks-migrate.sh", [])):
            r = subprocess.run(["sh", os.path.join(lab, script)] + args, capture_output=True,
                               text=True, env=env, timeout=1800)
            out += r.stdout
        r = subprocess.CompletedProcess(r.args, r.returncode, out, r.stderr)
    else:
        # One L1 boot runs every check.
        main = ("sh /lab/checks-boot.sh mote " + " ".join(BOOT_CHECKS) + "\n"
                "sh /lab/checks-devices.sh\n"
                "sh /lab/checks-net.sh\n"
                "sh /lab/checks-migrate.sh\n")
        script = os.path.join(BUILD, "lab-linux-checks.sh")
        with open(script, "w") as f:
            f.write(main)
        r = subprocess.run([os.path.join(lab, "run"),
                            "--file", os.path.join(lab, "checks-boot.sh") + ":/lab/checks-boot.sh",
                            "--file", os.path.join(lab, "checks-devices.sh") + ":/lab/checks-devices.sh",
                            "--file", os.path.join(lab, "checks-net.sh") + ":/lab/checks-net.sh",
                            "--file", os.path.join(lab, "checks-migrate.sh") + ":/lab/checks-migrate.sh",
                            "--file", os.path.join(BUILD, "guest/rootfs.ext4") + ":/lab/rootfs.ext4",
                            "--file", apictl + ":/lab/apictl",
                            "--file", vsockctl + ":/lab/vsockctl",
                            script], capture_output=True, text=True, timeout=1800)
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
