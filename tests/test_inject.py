"""Fault injection: the fixed-point geometric sampler against floating-point math, flip rates
against each quality level's write error rate, and the C injector (host twin build) against the
Python twin bit for bit."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _util import require_host_cc
from scipy import stats

from generator.runtime.inject import (
    GAP_CONSTANTS,
    Injector,
    Xoshiro128ss,
    gap_from_draw,
    log2_q24,
    neg_log2_uniform_q24,
    stream_summary,
)
from generator.runtime.quality import QUALITY_LEVELS


def test_log2_q24_matches_math_log2() -> None:
    rng = np.random.default_rng(5)
    values = [1, 2, 3, 5, 7, 0xFFFF, 1 << 31, 0xFFFFFFFF] + [
        int(v) for v in rng.integers(1, 1 << 32, 2000, dtype=np.uint64)]
    for v in values:
        # truncating squarings: within 2 units of the last place (2**-24)
        assert abs(log2_q24(v) - math.log2(v) * 2**24) <= 2, v


def test_neg_log2_uniform_edges() -> None:
    assert neg_log2_uniform_q24(0xFFFFFFFF) == 0  # U = 1
    assert neg_log2_uniform_q24(0) == 32 << 24  # U = 2**-32


@pytest.mark.parametrize("const", GAP_CONSTANTS, ids=lambda c: c.ql)
def test_gap_matches_inverse_cdf_in_floating_point(const) -> None:
    """G = floor(ln U / ln(1-p)) computed in float64 (independent of the fixed-point path)."""
    rng = np.random.default_rng(11)
    p = const.wer
    per_l_ulp = math.log(2) / -math.log1p(-p) / 2**24  # gap per unit of L's last place
    for u in [int(v) for v in rng.integers(0, 1 << 32, 3000, dtype=np.uint64)]:
        big_u = (u + 1) / 2**32
        exact = math.log(big_u) / math.log1p(-p)
        got = gap_from_draw(u, const)
        # L is within 2 ulp of -log2(U); K within 1e-9; then the floor
        assert abs(got - exact) <= 1 + 2 * per_l_ulp + 1e-9 * exact, (u, got, exact)


def test_gap_constants_come_from_the_ql_table() -> None:
    assert [c.ql for c in GAP_CONSTANTS] == [q.name for q in QUALITY_LEVELS]
    for c, q in zip(GAP_CONSTANTS, QUALITY_LEVELS):
        assert c.wer == q.write_error_rate
        assert c.k < 2**34  # L < 2**29: the 64-bit product cannot overflow
        assert abs(c.k / 2**c.shift * -math.log1p(-c.wer) / math.log(2) - 1) < 1e-9


def test_xoshiro_outputs_are_uniform() -> None:
    rng = Xoshiro128ss.seeded(3, 0)
    draws = np.array([rng.next() for _ in range(40000)], dtype=np.uint64)
    counts = np.bincount((draws >> 28).astype(np.int64), minlength=16)
    assert stats.chisquare(counts).pvalue > 1e-4
    bits = [(draws >> b) & 1 for b in range(32)]
    for b in bits:  # every bit position is fair
        assert abs(float(np.mean(b)) - 0.5) < 0.02


@pytest.mark.parametrize("q", range(len(QUALITY_LEVELS)), ids=[q.name for q in QUALITY_LEVELS])
def test_flip_rate_within_binomial_bound(q: int) -> None:
    """Enough bits for ~4000 expected flips per level; the count must lie in the two-sided
    99.99 % binomial interval, and flips must not favour any bit position of a word."""
    p = QUALITY_LEVELS[q].write_error_rate
    nbits = int(4000 / p)
    inj = Injector(seed=1000 + q)
    flips = []
    chunk = 1 << 30
    done = 0
    while done < nbits:
        n = min(chunk, nbits - done)
        flips += [done + f for f in inj.write(q, n)]
        done += n
    lo, hi = stats.binom.interval(0.9999, nbits, p)
    assert lo <= len(flips) <= hi, (len(flips), lo, hi)
    pos = np.bincount(np.asarray(flips, dtype=np.int64) % 32, minlength=32)
    assert stats.chisquare(pos).pvalue > 1e-4
    gaps = np.diff(np.asarray(flips, dtype=np.int64)) - 1
    # geometric gaps: KS against the exponential approximation of the same mean (p small)
    assert stats.kstest(gaps * p, "expon").pvalue > 1e-4


def test_writes_split_any_way_give_the_same_flips() -> None:
    a = Injector(seed=9)
    whole = a.write(4, 200_000)
    b = Injector(seed=9)
    parts = []
    done = 0
    for n in (1, 31, 32, 33, 1000, 5, 198_898):
        parts += [done + f for f in b.write(4, n)]
        done += n
    assert done == 200_000
    assert parts == whole
    assert a.summary() == b.summary()


def test_disabled_injector_counts_bits_only() -> None:
    inj = Injector(seed=1, enabled=False)
    assert inj.write(4, 10_000_000) == []
    assert inj.summary()[4]["bits"] == 10_000_000
    assert inj.summary()[4]["flips"] == 0


def test_seeds_and_levels_are_independent_streams() -> None:
    assert Injector(1).write(4, 100_000) != Injector(2).write(4, 100_000)
    assert stream_summary(5, [0, 0, 0, 0, 10**6])[3]["flips"] == 0


# ---- the C injector (host twin) against the Python twin --------------------------------------

@pytest.fixture(scope="module")
def stress_host(tmp_path_factory: pytest.TempPathFactory) -> dict:
    require_host_cc()
    from generator.boards import load_board
    from generator.build import run_scons
    from generator.runtime.campaign import run_configured
    from generator.runtime.layout import SimConfig

    board = load_board("host")
    d: Path = tmp_path_factory.mktemp("stress-host")
    art = run_scons(board, "nvmtest", {"mode": "stress", "seed": 424242, "inject": "on"}, d)
    docs = {}
    for seed in (424242, 7, 0xDEADBEEF):
        cfg = SimConfig(inject=True, seed=seed) if seed != 424242 else SimConfig()
        docs[seed] = run_configured(board, "nvmtest", art, cfg)
    return docs


def test_host_c_injector_matches_python_twin(stress_host: dict) -> None:
    for seed, doc in stress_host.items():
        m = doc["metrics"]
        assert doc["status"] == 0
        bits = [m[f"rt.bits.{q.name}"] for q in QUALITY_LEVELS]
        assert bits == [32 * w for w in doc["app_info"]["stress_words"]]
        want = stream_summary(seed, bits)
        got = [{"ql": i, "bits": bits[i], "flips": m[f"rt.flip.{q.name}"],
                "hash": m[f"rt.hash.{q.name}"] & 0xFFFFFFFF}
               for i, q in enumerate(QUALITY_LEVELS)]
        assert got == want, seed
        assert sum(g["flips"] for g in got) > 1000  # the comparison covers real flips
