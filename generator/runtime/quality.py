"""STT-MRAM quality levels (QL): write energy per bit and write error rate, as data.

One place for the table: the runtime's planner (:mod:`generator.runtime.layout`), the injector
(:mod:`generator.runtime.inject`) and the energy model (:mod:`generator.runtime.energy`) read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.errors import SweetspotError


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
    if name not in QL_BY_NAME:
        raise SweetspotError(f"quality level '{name}' is unknown; known: "
                             f"{', '.join(QL_BY_NAME)}")
    return QL_BY_NAME[name]


