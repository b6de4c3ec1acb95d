"""Shared fixtures for mote's integration tests.

Tier 1 (direct): mote's own test guests and bad-input cases on this
machine's /dev/kvm. Where /dev/kvm is missing these tests fail, saying so:
an integration suite that passes without KVM would prove nothing."""
import contextlib
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
MOTE = os.environ.get("MOTE_BIN") or os.path.join(BUILD, "mote")
GUESTS = os.path.join(BUILD, "guests")


def kvm_problem():
    """Why KVM cannot be used here, or None."""
    dev = os.environ.get("MOTE_KVM_DEV", "/dev/kvm")
    if not os.path.exists(dev):
        return f"{dev} is missing — integration tests need KVM"
    if not os.access(dev, os.R_OK | os.W_OK):
        return f"{dev} is not accessible to this user — integration tests need KVM"
    return None


@pytest.fixture
def kvm():
    problem = kvm_problem()
    if problem:
        pytest.fail(problem, pytrace=False)


def run_mote(args, timeout=30, input=None, env=None):
    """Runs build/mote with args; returns CompletedProcess (text, split streams)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run([MOTE] + list(args), input=input, capture_output=True,
                          timeout=timeout, env=full_env,
                          stdin=None if input is not None else subprocess.DEVNULL)


@contextlib.contextmanager
def netns_with_tap(name, tap):
    """A network namespace `name` holding a tap device `tap` (root needed:
    otherwise the test fails saying so); yields the `ip netns exec` prefix
    and deletes the namespace, tap included, at the end."""
    r = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"cannot create a network namespace (root needed): {r.stderr}",
                    pytrace=False)
    try:
        ns = ["ip", "netns", "exec", name]
        r = subprocess.run(ns + ["ip", "tuntap", "add", "dev", tap, "mode", "tap"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def guest(name):
    path = os.path.join(GUESTS, name)
    if not os.path.exists(path):
        pytest.fail(f"test guest {path} is missing: run make first", pytrace=False)
    return path


def lines(data):
    """Output lines without the serial console's carriage returns."""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return [l.rstrip("\r") for l in data.split("\n") if l.strip("\r")]


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: boots Linux (directly on hardware KVM, "
                            "in the lab on PVM); slow")
