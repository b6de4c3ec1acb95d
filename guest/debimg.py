"""Helpers that turn Debian packages into boot images, without root mounts.

Used by guest/build (the default guest) and tests/lab/run (the lab's L1
initramfs). Everything comes from Debian packages fetched with
`apt-get download` into a cache folder and unpacked with `dpkg-deb -x`;
archives are written by the newc cpio writer below, so file owners, modes
and device nodes need no root and no fakeroot.

Deliberately left out: anything that needs a loop device or a mount, and any
source other than the configured apt repositories.
"""

import contextlib
import fcntl
import glob
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

KERNEL_META = "linux-image-cloud-amd64"


class BuildError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, **kw):
    """Run cmd; on failure raise BuildError carrying its output."""
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True, **kw)
    if res.returncode != 0:
        raise BuildError("%s failed (%d):\n%s" % (" ".join(cmd), res.returncode,
                                                   res.stdout.strip()))
    return res.stdout


# ---------------------------------------------------------------- packages

def apt_lists_stamp():
    """Identity of apt's package lists: changes whenever apt-get update
    brings anything new."""
    h = hashlib.sha256()
    d = "/var/lib/apt/lists"
    try:
        names = sorted(os.listdir(d))
    except OSError:
        names = []
    for n in names:
        p = os.path.join(d, n)
        if os.path.isfile(p):
            file_key(h, p)
    return h.hexdigest()


class AptMemo:
    """apt-cache answers remembered in <cache>/apt-memo.json for as long as
    apt's lists are unchanged: each apt-cache call costs ~0.6 s here (no
    binary package cache), which a no-op `make guest` cannot afford."""

    def __init__(self, cache):
        self.path = os.path.join(cache, "apt-memo.json")
        self.stamp = apt_lists_stamp()
        self.data = {}
        try:
            with open(self.path) as f:
                saved = json.load(f)
            if saved.get("stamp") == self.stamp:
                self.data = saved.get("answers", {})
        except (OSError, ValueError):
            pass

    def get(self, key, compute):
        if key not in self.data:
            val = compute()
            if val is None:
                return None   # not remembered: apt may learn it after an update
            self.data[key] = val
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({"stamp": self.stamp, "answers": self.data}, f)
            os.replace(tmp, self.path)
        return self.data[key]


def apt_candidates(cache, pkgs):
    """Map package -> [version, arch] of apt's candidate; packages apt does
    not know are left out."""
    memo = AptMemo(cache)
    out = {}
    for p in pkgs:
        v = memo.get("candidate:" + p, lambda: _apt_candidate(p))
        if v:
            out[p] = v
    return out


def _apt_candidate(pkg):
    res = subprocess.run(["apt-cache", "show", "--no-all-versions", pkg],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    fields = {}
    for line in res.stdout.splitlines():
        if not line.strip():
            break
        if ":" in line and not line.startswith(" "):
            k, v = line.split(":", 1)
            fields[k] = v.strip()
    if fields.get("Package") != pkg or "Version" not in fields:
        return None
    return [fields["Version"], fields.get("Architecture", "amd64")]


def _apt_kernel_dep():
    res = subprocess.run(["apt-cache", "depends", KERNEL_META], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    for line in res.stdout.splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            return line.split(":", 1)[1].strip()
    return None


def resolve_kernel_package(cache):
    """The versioned linux-image-6.1.0-N-cloud-amd64 that the metapackage
    depends on. Falls back to a cached .deb when apt has no package lists."""
    pkg = AptMemo(cache).get("depends:" + KERNEL_META, _apt_kernel_dep)
    if pkg:
        return pkg
    cached = sorted(glob.glob(os.path.join(cache, "debs", "linux-image-*-cloud-amd64_*.deb")))
    if cached:
        return os.path.basename(cached[-1]).split("_", 1)[0]
    raise BuildError("cannot resolve %s: apt has no package lists and nothing is "
                     "cached; run scripts/deps (it runs apt-get update)" % KERNEL_META)


def _deb_path(debdir, pkg, cand):
    ver, arch = cand[pkg]
    return os.path.join(debdir, "%s_%s_%s.deb" % (pkg, ver.replace(":", "%3a"), arch))


def fetch_debs(cache, pkgs):
    """Ensure a .deb of each package is in <cache>/debs; return {pkg: path}.

    Downloads only when apt's candidate version is not cached yet; with no apt
    lists, whatever version is cached is used."""
    debdir = os.path.join(cache, "debs")
    os.makedirs(debdir, exist_ok=True)
    cand = apt_candidates(cache, pkgs)
    paths = {}
    for p in pkgs:
        if p in cand:
            paths[p] = _deb_path(debdir, p, cand)
        else:
            have = sorted(glob.glob(os.path.join(debdir, p + "_*.deb")))
            if not have:
                raise BuildError("package %s: not known to apt and not cached; "
                                 "run scripts/deps" % p)
            paths[p] = have[-1]
    if all(os.path.exists(path) for path in paths.values()):
        return paths
    with cache_lock(cache):
        missing = [p for p, path in paths.items() if not os.path.exists(path)]
        if missing:
            log("guest: apt-get download %s" % " ".join(missing))
            # Downloading as root into a folder _apt cannot write makes apt
            # warn; the warning is harmless, so output shows only on failure.
            run(["apt-get", "download", "-q"] + missing, cwd=debdir)
        for p in missing:
            if not os.path.exists(paths[p]):
                raise BuildError("apt-get download %s did not produce %s" % (p, paths[p]))
    return paths


_locks = {}


@contextlib.contextmanager
def cache_lock(cache):
    """Hold <cache>/.lock: downloads, unpacking and depmod are shared by the
    guest build and lab runs, which may run at the same time. Re-entrant
    within one process."""
    path = os.path.abspath(os.path.join(cache, ".lock"))
    if path in _locks:
        _locks[path][1] += 1
    else:
        os.makedirs(cache, exist_ok=True)
        f = open(path, "w")
        fcntl.flock(f, fcntl.LOCK_EX)
        _locks[path] = [f, 1]
    try:
        yield
    finally:
        _locks[path][1] -= 1
        if _locks[path][1] == 0:
            _locks.pop(path)[0].close()


def extract_deb(cache, deb):
    """Unpack deb once into <cache>/root/<deb name>/; return that folder."""
    name = os.path.basename(deb)[:-len(".deb")]
    dest = os.path.join(cache, "root", name)
    stamp = dest + ".done"
    if os.path.exists(stamp):
        return dest
    with cache_lock(cache):
        if os.path.exists(stamp):
            return dest
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        run(["dpkg-deb", "-x", deb, dest])
        open(stamp, "w").close()
    return dest


class Kernel:
    """An unpacked Debian kernel package: its bzImage and its modules."""

    def __init__(self, cache):
        pkg = resolve_kernel_package(cache)
        self.package = pkg
        self.deb = fetch_debs(cache, [pkg])[pkg]
        self.root = extract_deb(cache, self.deb)
        self.release = pkg[len("linux-image-"):]
        self.vmlinuz = os.path.join(self.root, "boot", "vmlinuz-" + self.release)
        self.config = os.path.join(self.root, "boot", "config-" + self.release)
        self.moddir = os.path.join(self.root, "lib", "modules", self.release)
        dep = os.path.join(self.moddir, "modules.dep")
        if not os.path.exists(dep):
            with cache_lock(cache):
                if not os.path.exists(dep):
                    # The package leaves modules.dep to its postinst; make it here.
                    run(["depmod", "-b", self.root, self.release])
        self.deps = {}   # module name -> (relative path, [dependency names])
        with open(dep) as f:
            for line in f:
                path, _, rest = line.partition(":")
                self.deps[modname(path)] = (path, [modname(d) for d in rest.split()])

    def config_value(self, key):
        with open(self.config) as f:
            for line in f:
                if line.startswith(key + "="):
                    return line.strip().split("=", 1)[1]
        return None

    def modules_in_order(self, names):
        """Relative paths of the named modules and everything they need,
        each after its dependencies. Names that are built in or absent are
        skipped (returned in the second list)."""
        order, seen, skipped = [], set(), []

        def visit(n):
            if n in seen:
                return
            seen.add(n)
            path, deps = self.deps[n]
            # modules.dep lists the deepest dependency last.
            for d in reversed(deps):
                visit(d)
            order.append(path)

        for n in names:
            n = n.replace("-", "_")
            if n in self.deps:
                visit(n)
            else:
                skipped.append(n)
        return order, skipped


def modname(path):
    base = os.path.basename(path)
    for suf in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
        if base.endswith(suf):
            base = base[:-len(suf)]
    return base.replace("-", "_")


# ---------------------------------------------------------------- archives

class Tree:
    """An in-memory file tree destined for a cpio archive or a folder.

    Entries: path (no leading slash) -> (kind, mode, payload) with kind one of
    "dir", "file" (payload: host path or bytes), "link" (payload: target),
    "chr" (payload: (major, minor))."""

    def __init__(self):
        self.entries = {}

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.entries:
                self.entries[d] = ("dir", 0o755, None)

    def mkdir(self, path, mode=0o755):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = ("dir", mode, None)

    def file(self, path, src, mode=None):
        """Add a file from a host path (mode copied unless given) or bytes."""
        path = path.strip("/")
        self._parents(path)
        if mode is None:
            mode = stat.S_IMODE(os.stat(src).st_mode) if isinstance(src, str) else 0o644
        self.entries[path] = ("file", mode, src)

    def symlink(self, path, target):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = ("link", 0o777, target)

    def chardev(self, path, major, minor, mode=0o600):
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = ("chr", mode, (major, minor))

    def host_file(self, hostpath, path=None):
        """Copy a host file; a symlink on the host is followed."""
        self.file(path or hostpath, os.path.realpath(hostpath))

    def busybox(self, bbroot):
        """busybox at /bin/busybox with a symlink for each applet."""
        bb = os.path.join(bbroot, "bin", "busybox")
        self.file("bin/busybox", bb, 0o755)
        for app in run([bb, "--list-full"]).split():
            if app not in self.entries:
                self.symlink(app, "/bin/busybox")

    def write_cpio_gz(self, out, level=6):
        """Write the tree as a gzip'd newc cpio (level 0: a plain cpio, which
        the kernel also accepts and unpacks fastest); a concurrent writer of
        the same file cannot see or clobber a half-written one."""
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(out) + ".", dir=os.path.dirname(out) or ".")
        try:
            with os.fdopen(fd, "wb") as raw:
                if level == 0:
                    write_newc(raw, self.entries)
                else:
                    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level,
                                       mtime=0) as gz:
                        write_newc(gz, self.entries)
            os.chmod(tmp, 0o644)
            os.replace(tmp, out)
        except BaseException:
            os.unlink(tmp)
            raise

    def write_dir(self, dest):
        """Materialise the tree in a host folder (for mkfs.ext4 -d)."""
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        for path in sorted(self.entries):
            kind, mode, payload = self.entries[path]
            p = os.path.join(dest, path)
            if kind == "dir":
                os.makedirs(p, exist_ok=True)
                os.chmod(p, mode)
            elif kind == "file":
                if isinstance(payload, bytes):
                    with open(p, "wb") as f:
                        f.write(payload)
                else:
                    shutil.copyfile(payload, p)
                os.chmod(p, mode)
            elif kind == "link":
                os.symlink(payload, p)
            elif kind == "chr":
                os.mknod(p, stat.S_IFCHR | mode, os.makedev(*payload))
                os.chmod(p, mode)   # mknod's mode is subject to the umask


def write_newc(f, entries):
    """Write entries (see Tree) as a newc ("070701") cpio archive, owner 0:0,
    mtime 0, parents before children."""
    ino = 1

    def emit(name, mode, data=b"", rdev=(0, 0), nlink=1):
        nonlocal ino
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0))
        ino += 1
        f.write(hdr.encode() + nb + b"\0" * ((-(110 + len(nb))) % 4))
        f.write(data + b"\0" * ((-len(data)) % 4))

    for path in sorted(entries):
        kind, mode, payload = entries[path]
        if kind == "dir":
            emit(path, stat.S_IFDIR | mode, nlink=2)
        elif kind == "file":
            if isinstance(payload, bytes):
                data = payload
            else:
                with open(payload, "rb") as src:
                    data = src.read()
            emit(path, stat.S_IFREG | mode, data)
        elif kind == "link":
            emit(path, stat.S_IFLNK | 0o777, payload.encode())
        elif kind == "chr":
            emit(path, stat.S_IFCHR | mode, rdev=payload)
    emit("TRAILER!!!", 0, nlink=1)


def file_key(h, path):
    """Feed a host file's identity (path, size, mtime) into hash h."""
    st = os.stat(path)
    h.update(("%s|%d|%d\n" % (path, st.st_size, st.st_mtime_ns)).encode())


def sha256_text(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()
