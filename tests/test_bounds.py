"""Every size that comes from a flag, a file or a serial frame is bounded before anything is
allocated; every run ends at its timeout; child processes end with sweetspot (issue 9, item 3)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _util import ROOT, require_tool

from generator import proc
from generator.boards import load_board
from generator.build import Artifacts
from generator.errors import AppError, ProtocolError
from generator.targets.base import read_session
from generator.targets.host import HostTarget
from generator.targets.protocol import MAX_VECTOR_BYTES, Parser, encode_frame

# ---- serial frames ---------------------------------------------------------------------------


def _hello() -> bytes:
    return encode_frame(0, "HELLO", 1, "0", "host", "infer", "none", 0)


def test_vec_frame_with_an_absurd_count_is_a_protocol_error() -> None:
    p = Parser()
    p.feed(_hello())
    t0 = time.monotonic()
    with pytest.raises(ProtocolError, match="announces 100000000000 int8 elements"):
        p.feed(encode_frame(1, "VEC", "output0", "int8", 100_000_000_000, 0, "00"))
    assert time.monotonic() - t0 < 1.0
    with pytest.raises(ProtocolError):  # just over the documented bound
        Parser().feed(encode_frame(0, "VEC", "v", "int32", MAX_VECTOR_BYTES // 4 + 1, 0, "00"))


@pytest.mark.parametrize("count", [0, -4])
def test_vec_frame_with_no_elements_is_a_protocol_error(count: int) -> None:
    with pytest.raises(ProtocolError):
        Parser().feed(encode_frame(0, "VEC", "v", "int8", count, 0, "00"))


def test_vec_frame_with_a_negative_offset_does_not_grow_the_vector() -> None:
    p = Parser()
    p.feed(encode_frame(0, "VEC", "v", "int8", 4, 0, "0102"))
    with pytest.raises(ProtocolError, match="offset -2"):
        p.feed(encode_frame(1, "VEC", "v", "int8", 4, -2, "0304"))
    p2 = Parser()  # the same vector sent properly
    p2.feed(encode_frame(0, "VEC", "v", "int8", 4, 0, "0102")
            + encode_frame(1, "VEC", "v", "int8", 4, 2, "0304"))
    assert p2.session.vectors["v"].tolist() == [1, 2, 3, 4]


class _Endless:
    """A console that never stops sending valid frames (and never sends END)."""

    def __init__(self) -> None:
        self.seq = 0
        self.t0 = time.monotonic()

    @property
    def in_waiting(self) -> int:
        return 1

    def read(self, size: int = 1) -> bytes:
        if time.monotonic() - self.t0 > 3:
            raise RuntimeError("test: read_session still reading after 3 s")
        self.seq += 1
        return encode_frame(self.seq - 1, "LOG", "x" * 64)


def test_a_stream_that_never_stops_ends_at_the_timeout() -> None:
    t0 = time.monotonic()
    with pytest.raises(ProtocolError, match="no END record .* within 0.3 s"):
        read_session(_Endless(), 0.3)
    assert time.monotonic() - t0 < 2.0


# ---- the host target -------------------------------------------------------------------------

def _fake_host_build(tmp_path: Path, stream: bytes) -> Artifacts:
    """A 'host executable' that writes ``stream`` to stdout at once and exits."""
    bdir = tmp_path / "b"
    bdir.mkdir()
    (bdir / "stream.bin").write_bytes(stream)
    exe = bdir / "firmware"
    exe.write_text(f"#!/bin/sh\nexec cat '{bdir / 'stream.bin'}'\n")
    exe.chmod(0o755)
    return Artifacts.for_dir(load_board("host"), bdir)


def _huge_output() -> bytes:
    """A model output claiming [1, 1e8] as the generated C sends it (the first MB of it)."""
    frames = [_hello()]
    frames += [encode_frame(1 + k, "VEC", "output0", "int8", 100_000_000, 1024 * k, "00" * 1024)
               for k in range(500)]
    return b"".join(frames)


def _flood() -> bytes:
    """40 MB of valid frames and no END: the host used to CRC-check all of it in Python, long
    after the timeout."""
    return encode_frame(0, "LOG", "tick tick tick tick") * 1_000_000


@pytest.mark.parametrize("make,timeout,match", [
    (_huge_output, 30.0, "announces 100000000 int8"),
    (_flood, 1.0, "no END record from .* within 1 s"),
], ids=["huge-vec", "flood"])
def test_host_run_is_bounded(tmp_path: Path, make, timeout: float, match: str) -> None:  # noqa: ANN001
    art = _fake_host_build(tmp_path, make())
    t0 = time.monotonic()
    with pytest.raises(ProtocolError, match=match):
        HostTarget(load_board("host")).run(art, timeout=timeout)
    assert time.monotonic() - t0 < timeout + 5.0


# ---- flags -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "0", "1e400", "abc", None])
def test_check_timeout_rejects(value: object) -> None:
    with pytest.raises(AppError):
        proc.check_timeout(value)


def test_check_timeout_accepts() -> None:
    assert proc.check_timeout("2.5") == 2.5


def _limited(mb: int):  # noqa: ANN202 - preexec_fn
    def f() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))
    return f


def test_power_fail_count_is_bounded_before_points_are_made(tmp_path: Path) -> None:
    """100 million points: refused from the count against the firmware's capacity, in seconds
    and with little memory (the address space is capped at 1.5 GB for the whole build)."""
    bdir = tmp_path / "b"
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "generator.cli", "run", "--board", "host",
                        "--model", str(ROOT / "models" / "digits_mlp_int8.tflite"),
                        "--power-fail", "100000000", "--build-dir", str(bdir)],
                       capture_output=True, text=True, timeout=120, cwd=ROOT,
                       preexec_fn=_limited(1536))
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "--power-fail asks for 100000000 points" in p.stderr
    assert "at most 65536" in p.stderr
    assert not bdir.exists()
    assert time.monotonic() - t0 < 60


# ---- child processes end with the parent -----------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids: list[int], within: float = 5.0) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


def _group(pgid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                out.append(int(d.name))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
@pytest.mark.parametrize("how", ["setpriv", "preexec_fn"])
def test_child_dies_when_the_parent_is_killed(tmp_path: Path, how: str) -> None:
    if how == "setpriv" and proc._setpriv() is None:
        pytest.skip("no setpriv with --pdeathsig (util-linux >= 2.33)")
    fallback = "proc._setpriv = lambda: None\n" if how == "preexec_fn" else ""
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom generator import proc\n" + fallback +
         "p = proc.popen(['sleep', '60'])\nprint(p.pid, flush=True)\ntime.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _wait_gone([child]) == []
    finally:
        if parent.poll() is None:
            parent.kill()


def test_timeout_kills_the_whole_group() -> None:
    t0 = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as info:
        proc.run(["sh", "-c", "sleep 60 & sleep 60 & echo $$; wait"], timeout=0.5)
    assert time.monotonic() - t0 < 5
    pgid = int(info.value.output)  # the shell led the group: its pid is the group id
    deadline = time.monotonic() + 2
    while _group(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group(pgid) == []


def _cmd(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except (FileNotFoundError, ProcessLookupError):
        return []


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return -1


def _children(pid: int) -> list[int]:
    return [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()
            and _ppid(int(d.name)) == pid]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM],
                         ids=["kill", "ctrl-c", "term"])
def test_stopping_sweetspot_mid_build_ends_scons(tmp_path: Path, sig: int) -> None:
    """kill -9, Ctrl-C or SIGTERM of `sweetspot build` while SCons runs: SCons goes too (it
    used to keep building into a directory nobody owned any more)."""
    cli = subprocess.Popen([sys.executable, "-m", "generator.cli", "build", "--board", "host",
                            "--model", str(ROOT / "models" / "digits_cnn_int8.tflite"),
                            "--build-dir", str(tmp_path / "b")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        scons: list[int] = []
        while time.monotonic() < deadline and not scons and cli.poll() is None:
            scons = [c for c in _children(cli.pid) if "SCons" in _cmd(c)]
            time.sleep(0.02)
        assert scons, "SCons never started"
        cli.send_signal(sig)
        code = cli.wait(timeout=30)
        assert _wait_gone(scons) == []
        if sig == signal.SIGINT:
            assert code == 130
    finally:
        if cli.poll() is None:
            cli.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_killing_sweetspot_mid_run_ends_qemu(tmp_path: Path) -> None:
    """kill -9 while the twin runs firmware that never ends: QEMU goes too."""
    require_tool("arm-none-eabi-gcc")
    require_tool("qemu-system-arm")
    code = ("from pathlib import Path\nfrom generator.runner import RunRequest, run\n"
            "run(RunRequest(board='qemu_m33', app='selftest', options={'mode': 'hang'}, "
            f"build_dir=Path({str(tmp_path / 'b')!r}), timeout=300))\n")
    cli = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        qemu: list[int] = []
        while time.monotonic() < deadline and not qemu and cli.poll() is None:
            qemu = [c for c in _children(cli.pid) if any("qemu-system-arm" in a
                                                         for a in _cmd(c)[:4])]
            time.sleep(0.05)
        assert qemu, "QEMU never started"
        time.sleep(0.3)  # the firmware is running (and hanging) now
        cli.send_signal(signal.SIGKILL)
        cli.wait()
        assert _wait_gone(qemu) == []
    finally:
        if cli.poll() is None:
            cli.kill()
