"""Degraded screeners, each knob seeded:

* the likelihood table stored at a quality level (Q0–Q4): the table is written to the emulated
  STT-MRAM before every beat (it is refreshed from its flash copy each monitoring period) and the
  project's write-error injector (:mod:`generator.runtime.inject`, one stream per level) flips
  its bits, so every beat reads its own corrupted copy;
* compressed codes: fewer code bits (a narrower programming window), see
  :class:`generator.wakeup.screener.ScreenerConfig` ``code_bits``;
* random read errors: every bit of every looked-up code flips with probability ``read_error``.

The protected table (``ScreenerConfig.protected``) stores an odd-parity bit per code, so an odd
number of flipped bits in a looked-up code makes it invalid → wake-up instead of a silent error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.runtime.inject import Injector
from generator.runtime.quality import QL_BY_NAME
from generator.wakeup.screener import (
    Result,
    Screener,
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
        rng = np.random.default_rng(d.seed)
        flips = rng.random((*codes.shape, 8)) < d.read_error
        codes ^= np.packbits(flips, axis=-1, bitorder="little")[..., 0]
    return classify_codes(codes, s.config, levels)
