"""Fault injection: the Python twin of the firmware's write-error injector (``ss_inject.c``).

Model: every bit written to the emulated STT-MRAM at quality level ``q`` flips with that level's
write error rate ``p_q`` (see :data:`generator.runtime.energy.QUALITY_LEVELS`). Each quality level
has its
own *bit stream*: the bits written at that level, in write order, numbered from 0. Instead of
drawing once per bit, the injector samples the gap before the next flip from the geometric
distribution ``P(G = k) = (1 - p)^k p`` (so injection costs O(flips), not O(bits)).

Everything is integer arithmetic, so the firmware (on every core, including the soft-float
Cortex-M0) and this module produce the same flips bit for bit:

* PRNG: one xoshiro128** state per quality level, seeded with splitmix32 from
  ``seed ^ (0x9E3779B9 * (q + 1))``.
* Uniform: ``U = (u + 1) / 2**32`` for a 32-bit draw ``u``, so ``U`` is in (0, 1].
* ``L = -log2(U)`` in unsigned Q.24 fixed point: the integer part from the leading bit, 24
  fractional bits by repeated squaring of the Q1.31 mantissa (truncating).
* Gap ``G = floor(L / -log2(1 - p))`` computed as ``(L * K) >> (24 + S)`` with
  ``K = round(2**S / -log2(1 - p))`` and ``S`` the largest shift keeping ``K < 2**34`` (so the
  64-bit product cannot overflow: ``L <= 2**29``). ``K`` and ``S`` are generated data.

A write of ``n`` bits at level ``q`` consumes ``n`` bits of stream ``q``; a flip at stream bit
``b`` of that write flips bit ``b % 32`` of the ``b // 32``-th 32-bit word written
(little-endian: byte ``b // 8``, bit ``b % 8`` of the written bytes).

Power failures do not change the flips: the firmware saves the streams when a step is first
attempted and rewinds them when the step is re-executed (``ss_inject_attempt``), so the flips of
a finished run are those of the uninterrupted run for the same seed, and this twin predicts them
from the uninterrupted write sequence alone.

The firmware also keeps, per level, the number of flips and an FNV-1a hash of the global stream
indices of its flips (8 bytes little-endian each, in order); :meth:`Injector.summary` gives the
same figures, so a test can compare them with what a target reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generator.runtime.quality import QUALITY_LEVELS

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
GOLDEN32 = 0x9E3779B9
FRAC_BITS = 24
K_LIMIT_BITS = 34
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


# ---- PRNG ----------------------------------------------------------------------------------

# The generators below take Python ints or numpy uint32 arrays alike (NumPy 2 keeps uint32
# arithmetic in uint32, wrapping mod 2^32): an array is a vector of independent streams, as the
# wake-up screener's per-beat read errors use them. One copy of each generator.

def splitmix32(state: Any) -> tuple[Any, Any]:
    """One splitmix32 step: (new state, output)."""
    state = (state + GOLDEN32) & MASK32
    z = state
    z = ((z ^ (z >> 16)) * 0x85EBCA6B) & MASK32
    z = ((z ^ (z >> 13)) * 0xC2B2AE35) & MASK32
    return state, z ^ (z >> 16)


def _rotl(x: Any, k: int) -> Any:
    return ((x << k) | (x >> (32 - k))) & MASK32


def xoshiro128ss_next(s: list[Any]) -> Any:
    """One xoshiro128** 1.1 step on the four state words ``s`` (updated in place): the output."""
    result = (_rotl((s[1] * 5) & MASK32, 7) * 9) & MASK32
    t = (s[1] << 9) & MASK32
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 11)
    return result


class Xoshiro128ss:
    """xoshiro128** 1.1 (Blackman & Vigna), 32-bit outputs."""

    __slots__ = ("s",)

    def __init__(self, s: Sequence[int]) -> None:
        self.s = [int(v) & MASK32 for v in s]
        if not any(self.s):
            self.s[0] = 1

    @classmethod
    def seeded(cls, seed: int, ql: int) -> Xoshiro128ss:
        state = (int(seed) ^ (GOLDEN32 * (ql + 1))) & MASK32
        words = []
        for _ in range(4):
            state, out = splitmix32(state)
            words.append(out)
        return cls(words)

    def next(self) -> int:
        return int(xoshiro128ss_next(self.s))


# ---- fixed-point geometric gaps -------------------------------------------------------------

def log2_q24(v: int) -> int:
    """log2(v) in unsigned Q.24 for 1 <= v < 2**32, exactly as the firmware computes it."""
    if not 1 <= v <= MASK32:
        raise ValueError(f"log2_q24 takes 1..2**32-1, not {v}")
    e = v.bit_length() - 1
    x = (v << (31 - e)) & MASK32  # Q1.31 mantissa in [1, 2)
    frac = 0
    for _ in range(FRAC_BITS):
        xx = (x * x) >> 31
        frac <<= 1
        if xx >= 1 << 32:
            xx >>= 1
            frac |= 1
        x = xx
    return (e << FRAC_BITS) | frac


def neg_log2_uniform_q24(u: int) -> int:
    """-log2((u + 1) / 2**32) in Q.24 for a 32-bit draw u."""
    if u == MASK32:
        return 0
    return (32 << FRAC_BITS) - log2_q24(u + 1)


@dataclass(frozen=True)
class GapConstant:
    """``G = (L * k) >> (24 + shift)`` for one quality level."""

    ql: str
    wer: float
    k: int
    shift: int


def gap_constant(ql: str, wer: float) -> GapConstant:
    if not 0.0 < wer < 1.0:
        raise ValueError(f"write error rate of {ql} must be in (0, 1), not {wer}")
    c = -math.log(2.0) / math.log1p(-wer)  # 1 / -log2(1 - p)
    shift = 0
    while round(c * 2.0 ** (shift + 1)) < (1 << K_LIMIT_BITS) and shift < 40:
        shift += 1
    k = int(round(c * 2.0**shift))
    if not 0 < k < (1 << K_LIMIT_BITS):
        raise ValueError(f"no fixed-point gap constant for {ql} (wer {wer})")
    return GapConstant(ql, wer, k, shift)


GAP_CONSTANTS: tuple[GapConstant, ...] = tuple(
    gap_constant(q.name, q.write_error_rate) for q in QUALITY_LEVELS)


def gap_from_draw(u: int, const: GapConstant) -> int:
    """The number of unflipped bits before the next flip, for one 32-bit draw."""
    return (neg_log2_uniform_q24(u) * const.k) >> (FRAC_BITS + const.shift)


# ---- the injector ---------------------------------------------------------------------------

@dataclass
class LevelState:
    rng: Xoshiro128ss
    remaining: int  # unflipped bits before the next flip
    bits: int = 0  # bits written so far at this level
    flips: int = 0
    hash: int = FNV_OFFSET


def fnv1a_u64(h: int, value: int) -> int:
    for i in range(8):
        h ^= (value >> (8 * i)) & 0xFF
        h = (h * FNV_PRIME) & MASK32
    return h


class Injector:
    """Per-level streams for a seed; :meth:`write` says which bits of one write flip."""

    def __init__(self, seed: int, enabled: bool = True,
                 constants: Sequence[GapConstant] = GAP_CONSTANTS) -> None:
        self.seed = int(seed) & MASK32
        self.enabled = enabled
        self.constants = tuple(constants)
        self.levels: list[LevelState] = []
        for q, c in enumerate(self.constants):
            rng = Xoshiro128ss.seeded(self.seed, q)
            self.levels.append(LevelState(rng, gap_from_draw(rng.next(), c)))

    def _gap(self, q: int) -> int:
        st = self.levels[q]
        return gap_from_draw(st.rng.next(), self.constants[q])

    def write(self, ql: int, nbits: int) -> list[int]:
        """Write ``nbits`` at level ``ql``: the positions (0..nbits-1) of the bits that flip."""
        st = self.levels[ql]
        flips: list[int] = []
        if self.enabled:
            pos = 0
            while st.remaining < nbits - pos:
                pos += st.remaining
                flips.append(pos)
                st.flips += 1
                st.hash = fnv1a_u64(st.hash, st.bits + pos)
                pos += 1
                st.remaining = self._gap(ql)
            st.remaining -= nbits - pos
        st.bits += nbits
        return flips

    def write_words(self, ql: int, data: bytes | bytearray) -> bytes:
        """Apply a write of ``data`` (padded with zeros to whole 32-bit words, as the firmware
        stores it) and return the stored bytes (the padded length)."""
        n = len(data)
        padded = bytearray(data) + bytes((-n) % 4)
        for b in self.write(ql, 8 * len(padded)):
            padded[b // 8] ^= 1 << (b % 8)
        return bytes(padded)

    def summary(self) -> list[dict[str, int]]:
        return [{"ql": q, "bits": s.bits, "flips": s.flips, "hash": s.hash}
                for q, s in enumerate(self.levels)]


def stream_flips(seed: int, ql: int, nbits: int) -> list[int]:
    """Global indices of the flips among the first ``nbits`` bits written at level ``ql``."""
    return Injector(seed).write(ql, nbits)


def stream_summary(seed: int, bits_per_level: Sequence[int]) -> list[dict[str, int]]:
    """Flip count and hash per level after writing ``bits_per_level[q]`` bits at each level.
    Independent of how the writes were split and interleaved (each level has its own stream)."""
    inj = Injector(seed)
    for q, n in enumerate(bits_per_level):
        if n:
            inj.write(q, int(n))
    return inj.summary()
