"""Targets: where firmware runs. One interface (:class:`Target`), one implementation per kind:
the QEMU twin (:mod:`.qemu`), a real Nucleo through pyOCD (:mod:`.nucleo`), the host build
(:mod:`.host`)."""

from __future__ import annotations

from generator.boards import Board
from generator.targets.base import RunOutput, Target


def target_for(board: Board, **kwargs: object) -> Target:
    """The target implementation for a board kind (a small registry, no string checks elsewhere)."""
    if board.kind == "qemu":
        from generator.targets.qemu import QemuTarget
        return QemuTarget(board, **kwargs)  # type: ignore[arg-type]
    if board.kind == "host":
        from generator.targets.host import HostTarget
        return HostTarget(board, **kwargs)  # type: ignore[arg-type]
    from generator.targets.nucleo import NucleoTarget
    return NucleoTarget(board, **kwargs)  # type: ignore[arg-type]


__all__ = ["RunOutput", "Target", "target_for"]
