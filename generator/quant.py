"""Fixed-point helpers shared by the emitter: TFLM's QuantizeMultiplier, computed in Python."""

from __future__ import annotations

import math


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM's ``QuantizeMultiplier``: real = multiplier * 2**(shift - 31), multiplier in
    [2**30, 2**31) (or 0). Returns (multiplier, shift) with shift as TFLM stores it (left shift
    positive)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    # std::round: half away from zero (Python's round() would round half to even).
    q_fixed = int(math.copysign(math.floor(abs(q) * (1 << 31) + 0.5), q))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    if shift > 30:
        shift = 30
        q_fixed = (1 << 31) - 1
    return q_fixed, shift
