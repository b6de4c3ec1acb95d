#!/usr/bin/env python3
"""Writes the seed corpus of tests/fuzz/fuzz_api.c into tests/fuzz/corpus/api/:
request sequences as Firecracker's getting-started guide and its Go SDK send
them (boot source, machine config, drives, entropy, logger, metrics, serial,
InstanceStart, then pause/resume, FlushMetrics, SendCtrlAltDel), the same as
a config file, and a few refusals. Paths are files every host has (/dev/null
stands in for kernels and disks; the API only checks that it can open them).

Usage: tests/fuzz/gen_corpus_api.py [OUTDIR]
"""
import json
import os
import sys

SEP = b"\n===\n"


def req(method, uri, body=None):
    head = f"{method} {uri}".encode()
    return head if body is None else head + b"\n" + (body if isinstance(body, bytes)
                                                     else json.dumps(body).encode())


BOOT = {"kernel_image_path": "/dev/null", "initrd_path": "/dev/zero",
        "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"}
MACHINE = {"vcpu_count": 2, "mem_size_mib": 1024, "smt": False, "track_dirty_pages": False}
ROOTFS = {"drive_id": "rootfs", "path_on_host": "/dev/null", "is_root_device": True,
          "is_read_only": False}
DATA = {"drive_id": "data_1", "path_on_host": "/dev/null", "is_root_device": False,
        "is_read_only": True, "cache_type": "Unsafe", "io_engine": "Sync",
        "rate_limiter": None}
LOGGER = {"log_path": "/dev/null", "level": "Debug", "show_level": True,
          "show_log_origin": False}


def seeds():
    full = [
        req("PUT", "/logger", LOGGER),
        req("PUT", "/metrics", {"metrics_path": "/dev/null"}),
        req("PUT", "/boot-source", BOOT),
        req("PUT", "/machine-config", MACHINE),
        req("PATCH", "/machine-config", {"vcpu_count": 1}),
        req("PUT", "/drives/rootfs", ROOTFS),
        req("PUT", "/drives/data_1", DATA),
        req("PUT", "/entropy", {}),
        req("PUT", "/serial", {"serial_out_path": "/dev/null"}),
        req("GET", "/vm/config"),
        req("PUT", "/actions", {"action_type": "InstanceStart"}),
        req("GET", "/"),
        req("PATCH", "/vm", {"state": "Paused"}),
        req("PUT", "/actions", {"action_type": "FlushMetrics"}),
        req("PATCH", "/vm", {"state": "Resumed"}),
        req("PUT", "/actions", {"action_type": "SendCtrlAltDel"}),
        req("PUT", "/drives/rootfs", ROOTFS),
    ]
    yield "seed_getting_started", SEP.join(full)
    yield "seed_partuuid_root", SEP.join([
        req("PUT", "/boot-source", {"kernel_image_path": "/dev/null", "boot_args": "a" * 200}),
        req("PUT", "/drives/root", dict(ROOTFS, drive_id="root",
                                        partuuid="0eaa91a0-01")),
        req("PUT", "/actions", {"action_type": "InstanceStart"}),
        req("GET", "/machine-config"),
    ])
    cfg = {"boot-source": BOOT, "machine-config": MACHINE, "drives": [ROOTFS, DATA],
           "network-interfaces": [], "logger": LOGGER, "metrics": None, "entropy": {},
           "vsock": None, "balloon": None, "mmds-config": None}
    yield "seed_config_file", b"CONFIG\n" + json.dumps(cfg).encode()
    yield "seed_refusals", SEP.join([
        req("POST", "/actions", {"action_type": "InstanceStart"}),
        req("GET", "/nowhere?x=1"),
        req("PUT", "/drives/" + "x" * 70, ROOTFS),
        req("PUT", "/network-interfaces/eth0", {"iface_id": "eth0"}),
        req("PUT", "/boot-source", b'{"kernel_image_path": '),
        req("PUT", "/machine-config", {"vcpu_count": 0, "mem_size_mib": 2}),
        req("PUT", "/drives/a", {"drive_id": "b", "path_on_host": "/dev/null",
                                 "is_root_device": False}),
        req("PUT", "/actions", {"action_type": "Reboot"}),
        req("PUT", "/actions", {"action_type": "InstanceStart"}),
        req("PATCH", "/vm", {"state": "Paused"}),
        req("PUT", "/logger", {"level": "Loud"}),
        req("PUT", "/entropy", {"rate_limiter": {"bandwidth": {"size": 1}}}),
    ])
    many = [req("PUT", f"/drives/d{i}", dict(DATA, drive_id=f"d{i}")) for i in range(10)]
    yield "seed_many_drives", SEP.join(many + [req("PUT", "/boot-source", BOOT),
                                              req("PUT", "/actions",
                                                  {"action_type": "InstanceStart"})])


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__),
                                                             "corpus", "api")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
