"""The emulated twin: qemu-system-arm with the board's machine, ``-icount`` for deterministic
counters, the console on a TCP socket read through pyserial ``socket://``, and the firmware's
semihosting exit status as QEMU's own."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import serial

from generator.boards import Board
from generator.build import Artifacts
from generator.build.toolchain import apt_hint
from generator.errors import TargetError, ToolchainError
from generator.proc import end as end_process
from generator.proc import popen
from generator.targets.base import RunOutput, Target, read_session

QEMU = "qemu-system-arm"
CONNECT_TIMEOUT_S = 10.0


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise ToolchainError(f"'{QEMU}' was not found on PATH; {apt_hint(QEMU)}")
    return path


def _console_socket() -> socket.socket:
    """A listening TCP socket on a free loopback port, handed to QEMU by file descriptor: the
    port is ours from the start, so two QEMUs started at once never race for one port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def qemu_command(board: Board, elf: Path, console_fd: int,
                 extra_args: list[str] | None = None) -> list[str]:
    """``console_fd`` is a listening socket QEMU serves the console on (it waits for the host
    to connect before the guest starts); ``extra_args`` are appended (e.g. ``-device
    loader,...`` to preload memory)."""
    q = board.qemu
    cmd = [qemu_binary(), "-machine", q["machine"]]
    if q.get("cpu"):
        cmd += ["-cpu", q["cpu"]]
    cmd += [
        "-display", "none", "-monitor", "none",
        "-chardev", f"socket,id=console,fd={console_fd},server=on,wait=on",
        "-serial", "chardev:console",
        "-semihosting-config", "enable=on,target=native",
        "-icount", f"shift={int(q['icount_shift'])}",
        "-kernel", str(elf),
    ]
    return cmd + list(extra_args or [])


class QemuTarget(Target):
    def __init__(self, board: Board, log_dir: Path | None = None,
                 extra_args: list[str] | None = None) -> None:
        if board.kind != "qemu":
            raise TargetError(f"board '{board.name}' is not a QEMU twin")
        super().__init__(board)
        self.log_dir = log_dir
        self.extra_args = list(extra_args or [])

    def run(self, artifacts: Artifacts, timeout: float = 60.0) -> RunOutput:
        elf = artifacts.elf
        if not elf.is_file():
            raise TargetError(f"no firmware image at {elf}; build it first")
        t0 = time.monotonic()
        listener = _console_socket()
        port = int(listener.getsockname()[1])
        cmd = qemu_command(self.board, elf, listener.fileno(), self.extra_args)
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
        try:
            proc = popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=stderr, pass_fds=[listener.fileno()])  # dies with sweetspot
        finally:
            listener.close()  # QEMU holds its own copy
        try:
            ser = self._connect(proc, port)
            if ser is None:  # QEMU died before serving the console
                proc.wait(timeout=5)
                stderr.seek(0)
                err = stderr.read().decode(errors="replace").strip()
                raise TargetError(f"{QEMU} exited with status {proc.returncode} before "
                                  f"starting: {err or '(no message)'}")
            capture = bytearray()
            try:
                session = read_session(ser, timeout,
                                       stopped=lambda p=proc: p.poll() is not None,
                                       what=f"{self.board.name} ({elf.name})",
                                       capture=capture)
            finally:
                ser.close()
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                end_process(proc)
                raise TargetError(f"{QEMU} did not exit after the firmware ended") from None
            out = RunOutput(board=self.board.name, session=session, exit_code=code,
                            wall_s=time.monotonic() - t0, console=bytes(capture))
            out.extra["qemu_command"] = cmd
            self._save_log(out)
            return out
        finally:
            end_process(proc)
            stderr.close()

    @staticmethod
    def _connect(proc: subprocess.Popen[bytes], port: int) -> serial.SerialBase | None:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return None
            try:
                return serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=0.05)
            except serial.SerialException:
                time.sleep(0.02)
        raise TargetError(f"{QEMU} did not open its console port within {CONNECT_TIMEOUT_S:g} s")

    def _save_log(self, out: RunOutput) -> None:
        if self.log_dir is None:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / f"console-{self.board.name}.log"
        path.write_bytes(out.console)
        out.log_path = str(path)
