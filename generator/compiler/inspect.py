"""``sweetspot inspect``: a model's per-layer statistics and, with a board, whether and where it
fits. Glue over the loader and the planner; nothing here computes statistics itself."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.boards import Board
from generator.compiler.loader import load_model
from generator.compiler.plan import (
    FitReport,
    Plan,
    check_fit,
    format_stats_table,
    plan_model,
    plan_to_dict,
)


@dataclass(frozen=True)
class Inspection:
    path: Path
    plan: Plan
    board: Board | None
    fit: FitReport | None

    @property
    def fits(self) -> bool | None:
        return None if self.fit is None else self.fit.fits

    def where(self) -> dict[str, str]:
        """Which board memory region holds what (the emitter places them the same way)."""
        if self.board is None or self.board.is_host:
            return {}
        return {"weights and quantization tables (const)": "flash",
                "activation arena": "ram", "stack": "ram"}

    def text(self) -> str:
        out = [format_stats_table(self.plan)]
        if self.fit is not None and self.board is not None:
            out.append(self.fit.describe())
            for what, region in self.where().items():
                r = self.board.region(region)
                out.append(f"  {what}: region '{region}' at 0x{r.origin:08x} ({r.length:,} B)")
        return "\n".join(out)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"model": str(self.path), "plan": plan_to_dict(self.plan)}
        if self.fit is not None and self.board is not None:
            d["board"] = self.board.name
            d["fit"] = self.fit.to_dict()
            d["placement"] = self.where()
        return d


def inspect_model(path: Path, board: Board | None = None) -> Inspection:
    graph = load_model(path)
    plan = plan_model(graph)
    fit = None
    if board is not None and not board.is_host:
        fit = check_fit(plan, board.flash.length, board.ram.length, board=board.name)
    return Inspection(path=Path(path), plan=plan, board=board, fit=fit)
