"""The host twin: the generated C built with the host compiler, run as a process whose stdout
carries the same results protocol."""

from __future__ import annotations

import subprocess
import time

from generator.boards import Board
from generator.build import Artifacts
from generator.errors import ProtocolError, TargetError
from generator.targets.base import RunOutput, Target
from generator.targets.protocol import parse_stream


class HostTarget(Target):
    def __init__(self, board: Board) -> None:
        super().__init__(board)

    def run(self, artifacts: Artifacts, timeout: float = 60.0) -> RunOutput:
        exe = artifacts.elf
        if not exe.is_file():
            raise TargetError(f"no host executable at {exe}; build it first")
        t0 = time.monotonic()
        try:
            proc = subprocess.run([str(exe)], stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ProtocolError(
                f"the host build {exe} did not finish within {timeout:g} s") from None
        session = parse_stream(proc.stdout)
        if not session.done:
            err = proc.stderr.decode(errors="replace").strip()
            raise ProtocolError(
                f"the host build {exe} ended (status {proc.returncode}) without an END record"
                + (f": {err}" if err else ""))
        return RunOutput(board=self.board.name, session=session, exit_code=proc.returncode,
                         wall_s=time.monotonic() - t0, console=proc.stdout)
