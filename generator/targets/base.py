"""The target interface and the console reader every target shares.

Lifecycle of a target: ``Target(board, ...)`` → ``run(artifacts, timeout)`` (load/flash the image,
start it, read the results stream until END, the device stops, or the deadline) → ``RunOutput``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from generator.boards import Board
from generator.build import Artifacts
from generator.errors import ProtocolError
from generator.targets.protocol import Parser, Session

#: console bytes kept for the log (the parser sees everything; the log keeps the start)
MAX_CAPTURE_BYTES = 8 << 20


class ByteSource(Protocol):
    """What the reader needs of a serial port (pyserial's Serial fits)."""

    @property
    def in_waiting(self) -> int: ...

    def read(self, size: int = 1) -> bytes: ...


@dataclass
class RunOutput:
    board: str
    session: Session
    exit_code: int | None = None
    wall_s: float = 0.0
    console: bytes = b""
    log_path: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Target(ABC):
    def __init__(self, board: Board) -> None:
        self.board = board

    @abstractmethod
    def run(self, artifacts: Artifacts, timeout: float = 60.0) -> RunOutput:
        """Run the built image and return what it reported."""


def read_session(port: ByteSource, timeout: float, *, stopped: Callable[[], bool] | None = None,
                 what: str = "the firmware", capture: bytearray | None = None,
                 drain_s: float = 0.2) -> Session:
    """Read frames from ``port`` until an END record, until ``stopped()`` says the device is gone
    (then drain what is left), or until ``timeout`` seconds pass.

    Raises :class:`ProtocolError` on a timeout or a stream that ends without END, saying what did
    arrive. Reads ``in_waiting or 1`` bytes at a time: a large read would throw away bytes already
    received if the other end closes (see PLATFORM_NOTES).
    """
    parser = Parser()
    deadline = time.monotonic() + timeout
    stop_seen_at: float | None = None
    while True:
        try:
            chunk = port.read(port.in_waiting or 1)
        except Exception as e:  # pyserial: SerialException, OSError, ... when the peer closes
            chunk = b""
            peer_gone = "disconnected" in str(e) or "closed" in str(e)
            if (stopped is None or not stopped()) and not peer_gone:
                raise ProtocolError(f"reading the console of {what} failed: {e}") from e
            stop_seen_at = stop_seen_at or time.monotonic() - drain_s
        now = time.monotonic()
        if chunk:
            if capture is not None and len(capture) < MAX_CAPTURE_BYTES:
                capture += chunk[:MAX_CAPTURE_BYTES - len(capture)]
            parser.feed(chunk)
            if parser.session.done:
                break
            if now <= deadline:  # a stream that never stops still ends at the deadline
                continue
        if stopped is not None and stopped():
            if stop_seen_at is None:
                stop_seen_at = now
            elif now - stop_seen_at >= drain_s:
                break
        if now > deadline:
            s = parser.finish()
            raise ProtocolError(
                f"no END record from {what} within {timeout:g} s "
                f"({s.records} records, {s.corrupt_frames} corrupt frames, "
                f"{s.noise_bytes} bytes of noise so far)")
    s = parser.finish()
    if not s.done:
        raise ProtocolError(
            f"the results stream of {what} ended without an END record "
            f"({s.records} records, {s.corrupt_frames} corrupt frames, {s.noise_bytes} bytes of "
            "noise): the firmware stopped or the line was cut")
    return s
