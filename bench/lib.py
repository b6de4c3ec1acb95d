"""Shared helpers for bench/ scripts: arguments, prerequisites, the C helpers,
alternating mote/QEMU runs, medians and RESULT lines.

Every benchmark ends with one line per headline figure:

    RESULT <name> mote=<v> qemu=<v> ratio=<mote/qemu> unit=<unit>

Values that could not be measured print as "nan" (and so does their ratio).
"""

import argparse
import math
import os
import re
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
OUT = os.path.join(REPO, "build", "bench")      # compiled helpers, caches
MOTE = os.path.join(REPO, "build", "mote")
GUESTS = os.path.join(REPO, "build", "guests")

# QEMU's -cpu, in order of preference. Plain "host" makes QEMU 7.2 set
# IA32_ARCH_CAPABILITIES, which a PVM /dev/kvm rejects ("failed to set MSR
# 0x10a"); hardware KVM takes it. probe_qemu_cpu() keeps the first that works.
QEMU_CPUS = ["host", "host,-arch-capabilities", "max"]

PROG = "bench/" + os.path.basename(sys.argv[0])


def die(msg, status=2):
    print("%s: error: %s" % (PROG, msg), file=sys.stderr, flush=True)
    sys.exit(status)


def say(msg=""):
    print(msg, flush=True)


def parser(doc, rounds):
    """An ArgumentParser with the options every benchmark takes."""
    ap = argparse.ArgumentParser(prog=PROG, description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=rounds,
                    help="mote/QEMU pairs to run (default %d)" % rounds)
    ap.add_argument("--qemu", default=os.environ.get("BENCH_QEMU", "qemu-system-x86_64"),
                    help="QEMU binary (default $BENCH_QEMU or qemu-system-x86_64)")
    ap.add_argument("--qemu-cpu", default=os.environ.get("BENCH_QEMU_CPU"),
                    help="QEMU -cpu value (default: the first of %s that boots "
                         "the hello guest)" % ", ".join(QEMU_CPUS))
    return ap


def check_args(args):
    if args.rounds < 1:
        die("--rounds must be at least 1, not %d" % args.rounds)


# ------------------------------------------------------------ prerequisites

def need_mote():
    if not os.access(MOTE, os.X_OK):
        die("%s is missing: run `make` first" % os.path.relpath(MOTE, REPO))
    return MOTE


def need_guest(name):
    p = os.path.join(GUESTS, name)
    if not os.path.isfile(p):
        die("test guest %s is missing: run `make` first" % os.path.relpath(p, REPO))
    return p


def need_kvm():
    if not os.path.exists("/dev/kvm"):
        die("/dev/kvm is missing: this benchmark runs guests on KVM")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        die("/dev/kvm is not readable and writable by this user")


def need_qemu(qemu):
    path = shutil.which(qemu)
    if not path:
        die("%s not found: install Debian's qemu-system-x86 (apt-get install "
            "qemu-system-x86)" % qemu)
    return path


def need_tool(name, package):
    if not shutil.which(name):
        die("%s not found: install %s" % (name, package))


# ------------------------------------------------------------ C helpers

def helper(name, static=True):
    """Compile bench/NAME.c into build/bench/NAME (when stale) and return its path."""
    src = os.path.join(BENCH, name + ".c")
    out = os.path.join(OUT, name)
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    os.makedirs(OUT, exist_ok=True)
    cc = os.environ.get("CC", "cc")
    if not shutil.which(cc):
        die("no C compiler (%s) to build bench/%s.c: install gcc" % (cc, name))
    base = [cc, "-O2", "-Wall", "-Wextra", "-o", out + ".tmp", src]
    tries = [base + ["-static"], base] if static else [base]
    err = ""
    for cmd in tries:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode == 0:
            os.replace(out + ".tmp", out)
            return out
        err = r.stdout
    die("cannot build bench/%s.c:\n%s" % (name, err))


SPAWN_RE = re.compile(r"^SPAWN first_ns=(-?\d+) marker_ns=(-?\d+) total_ns=(-?\d+) "
                      r"maxrss_kb=(-?\d+) status=(\S+)$", re.M)


def parse_spawn(text):
    """The measurements of bench/spawn's last SPAWN line in TEXT, or None."""
    found = SPAWN_RE.findall(text)
    if not found:
        return None
    first, marker, total, rss, status = found[-1]
    ms = lambda ns: int(ns) / 1e6 if int(ns) >= 0 else float("nan")  # noqa: E731
    return {"first_ms": ms(first), "marker_ms": ms(marker), "total_ms": ms(total),
            "rss_kib": int(rss), "status": status}


def spawn(cmd, marker=None, timeout=60):
    """Run CMD under bench/spawn. Returns (measurements, guest stdout, stderr)."""
    argv = [helper("spawn"), "-t", str(timeout)]
    if marker:
        argv += ["-m", marker]
    r = subprocess.run(argv + ["--"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = r.stdout.decode("utf-8", "replace")
    err = r.stderr.decode("utf-8", "replace")
    m = parse_spawn(out)
    if r.returncode != 0 or m is None:
        die("bench/spawn failed on %s:\n%s%s" % (" ".join(cmd), out, err))
    return m, out[:out.rfind("\nSPAWN ")], err


def spawn_floor():
    """Peak RSS (KiB) reported for a do-nothing static child (bench/spawn
    itself, printing its usage): the floor under every maxrss figure, since a
    child's ru_maxrss is at least the peak of the address space it exec'd from."""
    m, _, _ = spawn([helper("spawn")])
    return m["rss_kib"]


# ------------------------------------------------------------ the two sides

def mote_cmd(kernel, cmdline=None, mem=256, cpus=1, initrd=None):
    cmd = [MOTE, "run", "--kernel", kernel, "--mem", str(mem)]
    if cpus != 1:
        cmd += ["--cpus", str(cpus)]
    if initrd:
        cmd += ["--initrd", initrd]
    if cmdline is not None:
        cmd += ["--cmdline", cmdline]
    return cmd


def qemu_cmd(qemu, cpu, kernel, cmdline=None, mem=256, cpus=1, initrd=None):
    cmd = [qemu, "-M", "microvm,accel=kvm,rtc=on", "-cpu", cpu, "-m", str(mem), "-smp", str(cpus),
           "-nodefaults", "-no-reboot", "-nographic", "-serial", "stdio", "-kernel", kernel]
    if initrd:
        cmd += ["-initrd", initrd]
    if cmdline is not None:
        cmd += ["-append", cmdline]
    return cmd


def probe_qemu_cpu(args):
    """The -cpu value QEMU accepts on this /dev/kvm (see QEMU_CPUS)."""
    if args.qemu_cpu:
        return args.qemu_cpu
    hello = need_guest("hello")
    tried = []
    for cpu in QEMU_CPUS:
        m, out, err = spawn(qemu_cmd(args.qemu, cpu, hello), timeout=30)
        if m["status"] == "0" and "mote-test: done" in out:
            if tried:
                say("# qemu: -cpu %s (%s)" % (cpu, "; ".join(tried)))
            else:
                say("# qemu: -cpu %s" % cpu)
            return cpu
        why = (err.strip().splitlines() or ["status " + m["status"]])[0]
        tried.append("-cpu %s failed: %s" % (cpu, why))
    die("QEMU boots the hello guest with none of -cpu %s:\n  %s"
        % (", ".join(QEMU_CPUS), "\n  ".join(tried)))


def alternate(rounds, sides, warmup=1):
    """Run each side's function in turn, mote, qemu, mote, qemu, ... for
    ROUNDS rounds, after WARMUP uncounted rounds (page cache, lazy binding).
    SIDES: [(name, fn)], fn() -> {metric: value}. Returns {name: [dict]}."""
    samples = {name: [] for name, _ in sides}
    for r in range(-warmup, rounds):
        for name, fn in sides:
            m = fn()
            if r < 0:
                continue
            samples[name].append(m)
            say("round %d %-4s %s" % (r + 1, name, "  ".join(
                "%s=%s" % (k, fmt(v)) for k, v in m.items())))
    return samples


# ------------------------------------------------------------ statistics, output

def median(xs):
    xs = sorted(x for x in xs if not math.isnan(x))
    if not xs:
        return float("nan")
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def fmt(v, digits=4):
    """A number in DIGITS significant digits, without exponent for the sizes here."""
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "nan"
    if isinstance(v, int):
        return str(v)
    if v == 0:
        return "0"
    mag = int(math.floor(math.log10(abs(v))))
    decimals = max(0, digits - 1 - mag)
    return "%.*f" % (decimals, v)


def ratio(a, b):
    if a is None or b is None or math.isnan(a) or math.isnan(b) or b == 0:
        return "nan"
    return fmt(a / b, 3)


def table(samples, metrics):
    """Print the per-side median (and min-max) of each metric."""
    for key, label, unit in metrics:
        for side, runs in samples.items():
            vals = [r[key] for r in runs if not math.isnan(r[key])]
            if vals:
                say("%-28s %-4s median %10s  (min %s, max %s, n=%d) %s" % (
                    label, side, fmt(median(vals)), fmt(min(vals)), fmt(max(vals)),
                    len(vals), unit))
            else:
                say("%-28s %-4s median        nan %s" % (label, side, unit))


def result(name, mote, qemu, unit):
    say("RESULT %s mote=%s qemu=%s ratio=%s unit=%s" % (name, fmt(mote), fmt(qemu),
                                                         ratio(mote, qemu), unit))


def medians(samples, key):
    return tuple(median([r[key] for r in samples[side]]) for side in ("mote", "qemu"))
