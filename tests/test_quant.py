"""TFLM's QuantizeMultiplier, reproduced in Python (generator.compiler.tflm_math)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from generator.compiler.tflm_math import quantize_multiplier


@pytest.mark.parametrize("real, expected", [
    (0.5, (1 << 30, 0)),           # 0.5 = 2^30 * 2^(0-31)
    (1.0, (1 << 30, 1)),
    (0.25, (1 << 30, -1)),
    (0.75, (3 << 29, 0)),
    (0.0, (0, 0)),
])
def test_hand_worked(real, expected):
    assert quantize_multiplier(real) == expected


def test_reconstructs_real_value():
    rng = np.random.default_rng(0)
    for real in rng.uniform(1e-6, 2.0, 500):
        m, s = quantize_multiplier(float(real))
        assert (1 << 30) <= m < (1 << 31)
        assert math.isclose(m * 2.0 ** (s - 31), real, rel_tol=2.0 ** -30)


def test_rounds_half_away_from_zero():
    # q = 0.5 + 2^-32 exactly halfway between two 31-bit fixed-point values: std::round rounds
    # up (Python's round() would round to even, giving 2^30).
    real = 0.5 + 2.0 ** -32
    assert quantize_multiplier(real) == ((1 << 30) + 1, 0)
