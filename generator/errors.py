"""One exception family for everything a user can get wrong.

Every message says what is wrong and what to do about it. Library code raises these; only the
CLI prints them and turns them into an exit status.
"""

from __future__ import annotations


class SweetspotError(Exception):
    """Root of all user-facing errors."""

    exit_code = 2


class BoardError(SweetspotError):
    """Unknown board or an invalid board file."""


class AppError(SweetspotError):
    """Unknown app or invalid app options."""


class ModelError(SweetspotError):
    """A model file that cannot be read or that uses something unsupported."""


class UnsupportedOperatorError(ModelError):
    """The model uses operators the generator has no kernel for."""

    def __init__(self, message: str, operators: list[tuple[int, str]]):
        super().__init__(message)
        self.operators = operators


class FitError(SweetspotError):
    """The model does not fit the board's memory."""


class ToolchainError(SweetspotError):
    """A required external tool (cross compiler, QEMU, SCons) is missing or failed."""


class BuildError(SweetspotError):
    """Generating or compiling firmware failed."""


class TargetError(SweetspotError):
    """Running on a target failed: emulator, probe, flashing."""


class ProbeError(TargetError):
    """No debug probe, the wrong probe, or missing pyOCD target support."""


class ProtocolError(TargetError):
    """The results stream from the firmware was cut short, garbled or timed out."""


class FirmwareFault(TargetError):
    """The firmware reported a fault or exited with a non-zero status."""
