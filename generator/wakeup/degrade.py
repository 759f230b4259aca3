"""Degraded screeners, each knob seeded:

* the likelihood table stored at a quality level (Q0–Q4): the table is written to the emulated
  STT-MRAM before every beat (it is refreshed from its flash copy each monitoring period) and the
  project's write-error injector (:mod:`generator.runtime.inject`, one stream per level) flips
  its bits, so every beat reads its own corrupted copy;
* compressed codes: fewer code bits (a narrower programming window), see
  :class:`generator.wakeup.screener.ScreenerConfig` ``code_bits``;
* random read errors: every bit of every looked-up code flips with probability ``read_error``.
  The draws are integer and reproducible on a target: beat ``i`` of a stream has its own
  xoshiro128** state, seeded as the injector seeds a level (``Xoshiro128ss.seeded(seed, i)``);
  for each looked-up code (class-major, then feature) and each of its 8 bits (bit 0 first) one
  32-bit draw ``u`` flips the bit when ``u < T``, ``T = min(round(read_error · 2**32),
  2**32 − 1)``. The firmware (``inject=<rate>``) makes the same draws.

The protected table (``ScreenerConfig.protected``) stores an odd-parity bit per code, so an odd
number of flipped bits in a looked-up code makes it invalid → wake-up instead of a silent error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.runtime.inject import GOLDEN32, Injector, splitmix32, xoshiro128ss_next
from generator.runtime.quality import QL_BY_NAME
from generator.wakeup.screener import (
    Result,
    Screener,
    ScreenerError,
    classify_codes,
    feature_q,
    quantize_levels,
)


@dataclass(frozen=True)
class Degradation:
    ql: str | None = None        # None: the table is exact
    read_error: float = 0.0      # per bit per lookup
    seed: int = 1

    @property
    def label(self) -> str:
        parts = [self.ql or "exact"]
        if self.read_error:
            parts.append(f"read {self.read_error:g}")
        return ", ".join(parts)


def stored_tables(s: Screener, ql: str, n: int, seed: int) -> np.ndarray:
    """``n`` copies of the table, each written once at ``ql`` with the injector: [n, C, F, L]."""
    q = list(QL_BY_NAME).index(ql)
    inj = Injector(seed)
    raw = s.table.tobytes()
    out = np.empty((n, len(raw)), dtype=np.uint8)
    for i in range(n):
        out[i] = np.frombuffer(inj.write_words(q, raw)[:len(raw)], dtype=np.uint8)
    return out.reshape(n, *s.table.shape)


def read_threshold(rate: float) -> int:
    if not 0.0 <= rate <= 1.0:
        raise ScreenerError(f"read error rate {rate} must be in [0, 1]")
    return min(int(round(rate * 2**32)), 2**32 - 1)


def _splitmix_words(state: np.ndarray, count: int) -> list[np.ndarray]:
    out = []
    for _ in range(count):
        state, word = splitmix32(state)
        out.append(word)
    return out


def read_flip_masks(seed: int, n_beats: int, n_codes: int, rate: float) -> np.ndarray:
    """uint8 [n_beats, n_codes]: the bits each looked-up code of each beat has flipped
    (vectorised over beats; equal to :class:`~generator.runtime.inject.Xoshiro128ss` draws)."""
    thr = read_threshold(rate)
    idx = np.arange(n_beats, dtype=np.uint64)
    state = (np.uint64(seed & 0xFFFFFFFF) ^ ((np.uint64(GOLDEN32) * (idx + np.uint64(1)))
                                               & np.uint64(0xFFFFFFFF))).astype(np.uint32)
    s = _splitmix_words(state, 4)
    zero = (s[0] == 0) & (s[1] == 0) & (s[2] == 0) & (s[3] == 0)
    s[0] = np.where(zero, np.uint32(1), s[0])
    masks = np.zeros((n_beats, n_codes), dtype=np.uint8)
    for k in range(n_codes):
        for bit in range(8):
            u = xoshiro128ss_next(s)
            masks[:, k] |= ((u.astype(np.uint64) < thr).astype(np.uint8) << bit)
    return masks


def classify_degraded(s: Screener, features: np.ndarray, d: Degradation) -> Result:
    levels = quantize_levels(feature_q(features[:, s.bins]), s.thresholds)
    n = len(levels)
    f = np.arange(levels.shape[1])
    if d.ql is None:
        codes = s.table[:, f[None, :], levels].transpose(1, 0, 2)
    else:
        tables = stored_tables(s, d.ql, n, d.seed)
        codes = tables[np.arange(n)[:, None, None], np.arange(s.n_classes)[None, :, None],
                       f[None, None, :], levels[:, None, :]]
    codes = np.array(codes, dtype=np.uint8)
    if d.read_error > 0:
        masks = read_flip_masks(d.seed, n, codes.shape[1] * codes.shape[2], d.read_error)
        codes ^= masks.reshape(codes.shape)
    return classify_codes(codes, s.config, levels)
