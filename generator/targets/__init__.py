"""Targets: where firmware runs. One interface (:class:`Target`), one implementation per kind:
the QEMU twin (:mod:`.qemu`), a real Nucleo through pyOCD (:mod:`.nucleo`), the host build
(:mod:`.host`)."""

from __future__ import annotations

from ..boards import Board
from .base import RunOutput, Target


def target_for(board: Board, **kwargs: object) -> Target:
    """The target implementation for a board kind (a small registry, no string checks elsewhere)."""
    if board.kind == "qemu":
        from .qemu import QemuTarget
        return QemuTarget(board, **kwargs)  # type: ignore[arg-type]
    if board.kind == "host":
        from .host import HostTarget
        return HostTarget(board, **kwargs)  # type: ignore[arg-type]
    from .nucleo import NucleoTarget
    return NucleoTarget(board, **kwargs)  # type: ignore[arg-type]


__all__ = ["RunOutput", "Target", "target_for"]
