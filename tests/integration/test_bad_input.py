"""Bad input of every kind gets one clear line on stderr, status 1, nothing
on stdout, and never a crash."""
import os
import pathlib
import stat
import tempfile
import subprocess

import pytest

import pvh
from conftest import BUILD, MOTE, run_mote, lines


def check_refused(result, *needles):
    err = lines(result.stderr)
    assert result.returncode == 1, (result.returncode, err)
    assert result.stdout == b""
    assert len(err) == 1, err
    for needle in needles:
        assert needle in err[0], err
    return err[0]


@pytest.fixture
def hang_guest(tmp_path):
    path = tmp_path / "hang.elf"
    path.write_bytes(pvh.elf(pvh.HANG))
    return str(path)


def test_missing_kernel_file(kvm, tmp_path):
    r = run_mote(["run", "--kernel", str(tmp_path / "nope")])
    check_refused(r, "cannot open kernel", "nope", "No such file")


def test_kernel_is_a_directory(kvm, tmp_path):
    r = run_mote(["run", "--kernel", str(tmp_path)])
    check_refused(r, "not a regular file")


def test_unreadable_kernel(kvm, tmp_path):
    """A kernel the user may not read. As root, run mote as nobody with a
    private, world-accessible KVM device node so only the file is refused."""
    path = tmp_path / "secret"
    path.write_bytes(pvh.elf(pvh.HANG))
    path.chmod(0)
    if os.geteuid() != 0:
        check_refused(run_mote(["run", "--kernel", str(path)]), "Permission denied")
        return
    st = os.stat(os.environ.get("MOTE_KVM_DEV", "/dev/kvm"))
    tmp_path = pathlib.Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's is root-only
    path = tmp_path / "secret"
    path.write_bytes(pvh.elf(pvh.HANG))
    path.chmod(0)
    node = tmp_path / "kvm"
    os.mknod(node, 0o666 | stat.S_IFCHR, st.st_rdev)
    os.chmod(node, 0o666)
    tmp_path.chmod(0o755)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        MOTE, "run", "--kernel", str(path)], capture_output=True, timeout=30,
                       env={"MOTE_KVM_DEV": str(node)}, stdin=subprocess.DEVNULL)
    check_refused(r, "cannot open kernel", "Permission denied")


def test_empty_kernel(kvm, tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    check_refused(run_mote(["run", "--kernel", str(path)]), "too short")


def test_not_a_kernel(kvm, tmp_path):
    path = tmp_path / "random"
    path.write_bytes(os.urandom(8192))
    check_refused(run_mote(["run", "--kernel", str(path)]), "not a kernel")


def test_truncated_bzimage(kvm, tmp_path):
    hdr = bytearray(4096)
    hdr[0x1f1] = 4                                   # setup_sects
    hdr[0x1f4:0x1f8] = (0x100000 // 16).to_bytes(4, "little")  # syssize: 1 MiB
    hdr[0x1fe:0x200] = b"\x55\xaa"
    hdr[0x202:0x206] = b"HdrS"
    hdr[0x206:0x208] = (0x020f).to_bytes(2, "little")
    hdr[0x236] = 1                                   # XLF_KERNEL_64
    path = tmp_path / "bzImage"
    path.write_bytes(bytes(hdr))
    check_refused(run_mote(["run", "--kernel", str(path)]), "truncated")


def test_truncated_elf(kvm, tmp_path):
    data = pvh.elf(pvh.HANG + b"\x90" * 4096)
    path = tmp_path / "cut.elf"
    path.write_bytes(data[:200])
    check_refused(run_mote(["run", "--kernel", str(path)]), "past the end of the file")


def test_elf_without_entry(kvm, tmp_path):
    path = tmp_path / "noentry.elf"
    path.write_bytes(pvh.elf(pvh.HANG, entry_note=False, entry=0xffffffff81000000))
    check_refused(run_mote(["run", "--kernel", str(path)]), "no PVH entry note")


def test_elf_32bit(kvm, tmp_path):
    path = tmp_path / "x86.elf"
    path.write_bytes(pvh.elf(pvh.HANG, elf_class=1))
    check_refused(run_mote(["run", "--kernel", str(path)]), "not an x86-64 executable")


def test_elf_segment_outside_memory(kvm, tmp_path):
    path = tmp_path / "far.elf"
    path.write_bytes(pvh.elf(pvh.HANG, load=0x80000000))
    check_refused(run_mote(["run", "--kernel", str(path), "--mem", "64"]), "outside guest RAM")


def test_missing_initrd(kvm, hang_guest, tmp_path):
    r = run_mote(["run", "--kernel", hang_guest, "--initrd", str(tmp_path / "none")])
    check_refused(r, "cannot open initrd")


def test_initrd_too_big(kvm, hang_guest, tmp_path):
    path = tmp_path / "big.img"
    with open(path, "wb") as f:
        f.truncate(16 << 20)
    r = run_mote(["run", "--kernel", hang_guest, "--initrd", str(path), "--mem", "8"])
    check_refused(r, "do not fit in guest memory")


def test_cmdline_too_long(kvm, hang_guest):
    r = run_mote(["run", "--kernel", hang_guest, "--cmdline", "x" * 70000])
    check_refused(r, "command line is 70000 bytes")


@pytest.mark.parametrize("args,needle", [
    (["--mem", "0"], "--mem 0: must be at least"),
    (["--mem", "3"], "--mem 3: must be at least"),
    (["--mem", "lots"], "--mem lots: not a number"),
    (["--mem", "-5"], "--mem -5: not a number"),
    (["--mem", "99999999999"], "more than the host"),
    (["--cpus", "0"], "--cpus 0: must be a number from 1"),
    (["--cpus", "300"], "--cpus 300: must be a number from 1"),
    (["--cpus", "two"], "--cpus two"),
    (["--frobnicate"], "unknown option --frobnicate"),
    (["--mem"], "--mem needs a value"),
    (["stray"], "unexpected argument stray"),
])
def test_bad_flags(hang_guest, args, needle):
    check_refused(run_mote(["run", "--kernel", hang_guest] + args), needle)


def test_kernel_flag_required():
    check_refused(run_mote(["run"]), "--kernel is required")


def test_unknown_command():
    r = run_mote(["fly"])
    assert r.returncode == 1
    assert "unknown command or option fly" in r.stderr.decode()


def test_kvm_missing_is_reported(hang_guest):
    r = run_mote(["run", "--kernel", hang_guest], env={"MOTE_KVM_DEV": "/nonexistent/kvm"})
    check_refused(r, "/nonexistent/kvm is missing", "needs KVM")


def test_truncated_real_kernel(kvm, tmp_path):
    """Debian's own bzImage cut in half is refused before anything runs."""
    src = os.path.join(BUILD, "guest", "vmlinuz")
    if not os.path.exists(src):
        pytest.fail("build/guest/vmlinuz is missing: run make guest", pytrace=False)
    data = open(src, "rb").read()
    path = tmp_path / "vmlinuz.half"
    path.write_bytes(data[: len(data) // 2])
    check_refused(run_mote(["run", "--kernel", str(path)]), "truncated")


def test_real_kernel_in_too_little_memory(kvm):
    src = os.path.join(BUILD, "guest", "vmlinuz")
    if not os.path.exists(src):
        pytest.fail("build/guest/vmlinuz is missing: run make guest", pytrace=False)
    check_refused(run_mote(["run", "--kernel", src, "--mem", "8"]), "give it more --mem")


# A FIFO where a file is expected: nobody writes to it, so a blocking open()
# would hang mote for good (and with SIGTERM already routed to the event loop,
# a plain kill would not end it). Each is refused at once with one line.
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return str(path)


def test_kernel_is_a_fifo(kvm, fifo):
    check_refused(run_mote(["run", "--kernel", fifo], timeout=20), "kernel", fifo,
                  "not a regular file")


def test_initrd_is_a_fifo(kvm, hang_guest, fifo):
    r = run_mote(["run", "--kernel", hang_guest, "--initrd", fifo], timeout=20)
    check_refused(r, "initrd", fifo, "not a regular file")


@pytest.mark.parametrize("mode", ["", ",ro"])
def test_disk_is_a_fifo(kvm, hang_guest, fifo, mode):
    r = run_mote(["run", "--kernel", hang_guest, "--disk", fifo + mode], timeout=20)
    check_refused(r, "disk", fifo, "not a regular file or block device")


def test_seccomp_filter_is_a_fifo(kvm, hang_guest, fifo):
    r = run_mote(["run", "--kernel", hang_guest, "--seccomp-filter", fifo], timeout=20)
    check_refused(r, "--seccomp-filter", fifo, "not a raw BPF program")


def test_config_file_is_a_fifo_nobody_writes(kvm, fifo):
    """A pipe is a fine config file (bash's <(...) gives one); one that
    nobody writes to reads as empty and is refused, never waited on."""
    r = run_mote(["--no-api", "--config-file", fifo], timeout=20)
    check_refused(r, "config file", "not a JSON object")


def test_config_file_from_a_pipe(kvm):
    """A pipe with a writer (what bash's <(...) passes): mote reads it to
    its end."""
    r, w = os.pipe()
    p = subprocess.Popen([MOTE, "--no-api", "--config-file", f"/dev/fd/{r}"], pass_fds=[r],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    os.close(r)
    try:
        os.write(w, b'{"frobnicate": {}}')
        os.close(w)
        out, err = p.communicate(timeout=20)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 1 and out == b""
    err = lines(err)
    assert len(err) == 1 and "frobnicate" in err[0], err
