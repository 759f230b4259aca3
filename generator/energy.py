"""The research's energy model.

E(task) = E_cycle · #cycles + (E_cycle + E_memWrite(QL)) · #memWrites

* ``E_cycle`` in pJ is the board's active power in µW/MHz (numerically pJ per cycle).
* ``E_memWrite(QL)`` is the STT-MRAM write energy per bit at a quality level (32 nm figures),
  times the bits a write carries.

The quality-level table is data: one place, read by the planner, the emitter and this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .boards import Board


@dataclass(frozen=True)
class QualityLevel:
    name: str
    write_pj_per_bit: float
    write_error_rate: float


# STT-MRAM quality levels, 32 nm: write energy per bit and write error rate (per bit).
QUALITY_LEVELS: tuple[QualityLevel, ...] = (
    QualityLevel("Q0", 167.0, 1e-8),
    QualityLevel("Q1", 94.0, 1e-6),
    QualityLevel("Q2", 74.0, 1e-5),
    QualityLevel("Q3", 57.0, 1e-4),
    QualityLevel("Q4", 43.0, 1e-3),
)
QL_BY_NAME = {q.name: q for q in QUALITY_LEVELS}


def quality_level(name: str) -> QualityLevel:
    from .errors import SweetspotError

    if name not in QL_BY_NAME:
        raise SweetspotError(f"quality level '{name}' is unknown; known: "
                             f"{', '.join(QL_BY_NAME)}")
    return QL_BY_NAME[name]


def task_energy_pj(board: Board, cycles: int, writes: int = 0, bits_per_write: int = 32,
                   ql: str = "Q0") -> dict[str, float]:
    """Energy of one task in pJ, split into compute and persistence."""
    e_cycle = board.pj_per_cycle
    e_write = quality_level(ql).write_pj_per_bit * bits_per_write
    compute = e_cycle * cycles
    persist = (e_cycle + e_write) * writes
    return {"compute_pj": compute, "persist_pj": persist, "total_pj": compute + persist}


def compute_energy(board: Board, cycles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compute-only energy for each measured span (no persistent writes counted): the cycle
    figure is the instruction count on a twin (a lower bound on silicon cycles), the measured
    cycles on a board."""
    out: dict[str, Any] = {"pj_per_cycle": board.pj_per_cycle, "spans": {}}
    lines = [f"  energy at {board.pj_per_cycle:g} pJ/cycle ({board.name}, {board.core}):"]
    for name, c in cycles.items():
        n = c.get("cycles", c.get("instructions"))
        if n is None:
            continue
        e = task_energy_pj(board, int(n))
        out["spans"][name] = {"cycles": int(n), **e}
        lines.append(f"    {name:<22} {int(n):>14,} cycles  {e['total_pj'] / 1e6:>12.4f} µJ")
    out["summary"] = "\n".join(lines)
    return out
