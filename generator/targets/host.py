"""The host twin: the generated C built with the host compiler, run as a process whose stdout
carries the same results protocol.

The process's stdout is read as it arrives, through the same bounded reader as a serial console
(:func:`generator.targets.base.read_session`): the run ends at END or at the deadline however
much the process writes, and the process (and anything it started) dies with sweetspot."""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from generator import proc
from generator.boards import Board
from generator.build import Artifacts
from generator.errors import ProtocolError, TargetError
from generator.targets.base import RunOutput, Target, read_session
from generator.targets.protocol import Session

#: stderr bytes kept for an error message
_STDERR_TAIL = 4096


class PipeSource:
    """A pipe as a :class:`~generator.targets.base.ByteSource`: ``read`` returns what has
    arrived (waiting at most ``poll_s``), ``b""`` when nothing has; ``eof`` once closed."""

    def __init__(self, fd: int, poll_s: float = 0.05) -> None:
        self.fd = fd
        self.poll_s = poll_s
        self.eof = False
        os.set_blocking(fd, False)

    @property
    def in_waiting(self) -> int:
        return 0

    def read(self, size: int = 1) -> bytes:
        if self.eof:
            time.sleep(self.poll_s)
            return b""
        ready, _, _ = select.select([self.fd], [], [], self.poll_s)
        if not ready:
            return b""
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return b""
        if not data:
            self.eof = True
        return data


def run_process(cmd: list[str], timeout: float, what: str,
                env: Mapping[str, str] | None = None) -> tuple[Session, int, bytes, str]:
    """Run a host executable that speaks the results protocol on stdout; returns (session,
    exit status, console bytes kept, stderr tail). Ends at ``timeout`` whatever it does."""
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as err:

        def stderr_tail() -> str:
            err.seek(0, os.SEEK_END)
            err.seek(max(0, err.tell() - _STDERR_TAIL))
            return err.read().decode(errors="replace").strip()

        p = proc.popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                       env=dict(env) if env is not None else None)
        try:
            assert p.stdout is not None
            src = PipeSource(p.stdout.fileno())
            capture = bytearray()
            try:
                session = read_session(src, timeout,
                                       stopped=lambda: src.eof and p.poll() is not None,
                                       what=what, capture=capture, drain_s=0.0)
            except ProtocolError as e:
                status = p.poll()
                tail = stderr_tail()
                raise ProtocolError(f"{e}" + (f"; exit status {status}" if status is not None
                                              else "") + (f": {tail}" if tail else "")) from None
            try:
                code = p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise ProtocolError(f"{what} sent END but did not exit within {timeout:g} s"
                                    ) from None
        finally:
            proc.end(p)
            if p.stdout is not None:
                p.stdout.close()
        tail = stderr_tail()
    return session, code, bytes(capture), tail


class HostTarget(Target):
    def __init__(self, board: Board) -> None:
        super().__init__(board)

    def run(self, artifacts: Artifacts, timeout: float = 60.0) -> RunOutput:
        exe = Path(artifacts.elf)
        if not exe.is_file():
            raise TargetError(f"no host executable at {exe}; build it first")
        t0 = time.monotonic()
        session, code, console, _ = run_process([str(exe)], timeout, f"the host build {exe}")
        return RunOutput(board=self.board.name, session=session, exit_code=code,
                         wall_s=time.monotonic() - t0, console=console)
