"""The screener: a discrete Bayesian classifier in the log domain, and its wake rule.

This module is the numpy twin of the generated C screener (``templates/wakeup/ss_screener.c.j2``):
everything after :func:`feature_q` is integer arithmetic, so the firmware gives the same levels,
scores and decisions bit for bit.

Training (:func:`train`): rank the FFT bins by χ² on the training set (:func:`chi2`), keep the
best ``n_features``; per kept bin choose a clipping range [lo, hi] (percentiles of the training
set) and split it into ``levels`` equal steps; per class × feature × level take a histogram of the
training beats, smooth it with a Gaussian over the levels (kernel truncated at ``radius``
levels, so a level far from every training beat keeps probability zero), normalise it to a
probability ``p`` and store the code ``n = round(m · log_B p)`` (B < 1, so n ≥ 0 and a smaller
code means a likelier level). Codes have ``code_bits`` bits; the largest value is reserved for
"zero probability", the others saturate at ``2**code_bits - 2``. The protected variant stores
7-bit codes with an odd-parity bit in bit 7: a byte with even parity is corrupt.

Classifying (:func:`classify`): each feature's level indexes the table; a class's score is the
sum of its decoded codes (smaller = likelier); the screener's own decision is the class with the
smallest score (ties go to the lower index). Wake rule, in order: a looked-up code that decodes to
zero probability or fails its parity check → wake (invalid); an abnormal class scores lower than
N → wake (abnormal); N does not beat every abnormal class by more than ``margin`` (a tie when
margin is 0) → wake (ambiguous); otherwise the screener finalizes N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from generator.errors import SweetspotError

#: features on the target are uint16 in units of 2**-FEATURE_FRAC mV
FEATURE_FRAC = 12
FEATURE_MAX = 0xFFFF

# wake status (what the firmware leaves in .noinit RAM)
FINAL_NORMAL = 0
WAKE_ABNORMAL = 1
WAKE_AMBIGUOUS = 2
WAKE_INVALID = 3
STATUS_NAMES = ("final", "abnormal", "ambiguous", "invalid")


class ScreenerError(SweetspotError):
    """Screener parameters that cannot work."""


@dataclass(frozen=True)
class ScreenerConfig:
    n_features: int = 4
    levels: int = 8
    base: float = 0.15        # B of n = round(m log_B p)
    m: float = 16.0
    sigma: float = 0.25       # Gaussian smoothing over levels (in levels)
    radius: int = 3           # kernel truncated at ±radius levels
    clip_lo: float = 1.0      # clipping range: percentiles of the training set
    clip_hi: float = 99.0
    code_bits: int = 8        # 1..8; the protected variant uses 7 + parity
    protected: bool = False
    margin: int = 12          # N must win by more than this or the beat is ambiguous

    def __post_init__(self) -> None:
        if not 0 < self.base < 1:
            raise ScreenerError(f"base B={self.base} must be in (0, 1) so codes are >= 0")
        if self.m <= 0:
            raise ScreenerError(f"m={self.m} must be > 0")
        if not 2 <= self.levels <= 256:
            raise ScreenerError(f"levels={self.levels} must be in 2..256")
        bits = self.data_bits
        if not 1 <= bits <= 8:
            raise ScreenerError(f"code_bits={self.code_bits} must leave 1..8 data bits "
                                f"({'7 with the parity bit' if self.protected else '8'} max)")
        if self.margin < 0:
            raise ScreenerError(f"margin={self.margin} must be >= 0")

    @property
    def data_bits(self) -> int:
        return min(self.code_bits, 7) if self.protected else self.code_bits

    @property
    def zero_code(self) -> int:
        return (1 << self.data_bits) - 1


@dataclass(frozen=True)
class Screener:
    config: ScreenerConfig
    bins: np.ndarray          # int [F] FFT bin per feature
    thresholds: np.ndarray    # int [F, levels-1] uint16 feature thresholds
    table: np.ndarray         # uint8 [C, F, levels] stored codes (parity bit included)
    probs: np.ndarray = field(repr=False)  # float [C, F, levels] smoothed probabilities

    @property
    def n_classes(self) -> int:
        return int(self.table.shape[0])


def chi2(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """χ² statistic of every non-negative feature against the class (sklearn's chi2 formula:
    observed = per-class feature sums, expected = class frequency × feature total)."""
    if np.any(x < 0):
        raise ScreenerError("chi2 needs non-negative features")
    onehot = np.eye(n_classes)[y]
    observed = onehot.T @ x
    expected = onehot.mean(axis=0)[:, None] * x.sum(axis=0)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (observed - expected) ** 2 / expected, 0.0)
    return terms.sum(axis=0)


def rank_bins(x: np.ndarray, y: np.ndarray, n_classes: int, k: int) -> np.ndarray:
    """The ``k`` bins with the largest χ², best first (ties: lower bin first)."""
    score = chi2(x, y, n_classes)
    order = np.lexsort((np.arange(len(score)), -score))
    return order[:k].astype(np.int64)


def feature_q(features: np.ndarray) -> np.ndarray:
    """Float FFT magnitudes (mV) → the target's uint16 fixed-point features."""
    q = np.round(np.asarray(features, dtype=np.float64) * (1 << FEATURE_FRAC))
    return np.clip(q, 0, FEATURE_MAX).astype(np.uint16)


def quantize_levels(fq: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """uint16 features [n, F] → levels [n, F]: how many of the feature's thresholds it reaches."""
    return (fq.astype(np.int64)[:, :, None] >= thresholds[None, :, :]).sum(axis=2)


def _thresholds(fq: np.ndarray, cfg: ScreenerConfig) -> np.ndarray:
    lo = np.floor(np.percentile(fq, cfg.clip_lo, axis=0)).astype(np.int64)
    hi = np.ceil(np.percentile(fq, cfg.clip_hi, axis=0)).astype(np.int64)
    hi = np.maximum(hi, lo + cfg.levels)
    k = np.arange(1, cfg.levels)
    return lo[:, None] + ((hi - lo)[:, None] * k[None, :]) // cfg.levels


def smoothed_probs(levels: np.ndarray, y: np.ndarray, n_classes: int, cfg: ScreenerConfig
                   ) -> np.ndarray:
    """[C, F, L] probabilities: per class and feature a histogram over the levels convolved with
    a truncated Gaussian, normalised to sum 1."""
    n_feat = levels.shape[1]
    hist = np.zeros((n_classes, n_feat, cfg.levels))
    for c in range(n_classes):
        lv = levels[y == c]
        for f in range(n_feat):
            hist[c, f] = np.bincount(lv[:, f], minlength=cfg.levels)
    d = np.arange(-cfg.radius, cfg.radius + 1)
    kernel = np.exp(-0.5 * (d / cfg.sigma) ** 2) if cfg.sigma > 0 else (d == 0).astype(float)
    sm = np.zeros_like(hist)
    for off, w in zip(d, kernel, strict=True):
        lo, hi = max(0, off), min(cfg.levels, cfg.levels + off)
        sm[..., lo:hi] += w * hist[..., lo - off:hi - off]
    total = sm.sum(axis=-1, keepdims=True)
    if np.any(total == 0):
        raise ScreenerError("a class has no training beats")
    return sm / total


def parity_bit(v: np.ndarray) -> np.ndarray:
    """Bit 7 making the byte's number of ones odd."""
    v = np.asarray(v, dtype=np.uint8)
    ones = np.unpackbits(v[..., None], axis=-1).sum(axis=-1)
    return ((ones + 1) % 2).astype(np.uint8)


def encode(probs: np.ndarray, cfg: ScreenerConfig) -> np.ndarray:
    """Probabilities → stored codes: n = round(m log_B p), saturated at zero_code - 1;
    p = 0 → zero_code; the protected variant adds the odd-parity bit."""
    with np.errstate(divide="ignore"):
        n = np.round(cfg.m * np.log(probs) / math.log(cfg.base))
    codes = np.where(probs > 0, np.minimum(n, cfg.zero_code - 1), cfg.zero_code)
    codes = codes.astype(np.uint8)
    if cfg.protected:
        codes = codes | (parity_bit(codes) << 7)
    return codes


def decode_probs(codes: np.ndarray, cfg: ScreenerConfig) -> np.ndarray:
    """What a stored code means: B**(n/m), 0 for zero_code (for reports)."""
    n = codes.astype(np.int64) & cfg.zero_code
    return np.where(n == cfg.zero_code, 0.0, cfg.base ** (n / cfg.m))


def train(x: np.ndarray, y: np.ndarray, n_classes: int, cfg: ScreenerConfig | None = None
          ) -> Screener:
    cfg = cfg or ScreenerConfig()
    bins = rank_bins(x, y, n_classes, cfg.n_features)
    fq = feature_q(x[:, bins])
    thr = _thresholds(fq, cfg)
    probs = smoothed_probs(quantize_levels(fq, thr), y, n_classes, cfg)
    return Screener(cfg, bins, thr, encode(probs, cfg), probs)


def with_table(s: Screener, table: np.ndarray) -> Screener:
    """The same screener with another stored table (a degraded copy)."""
    return replace(s, table=np.asarray(table, dtype=np.uint8).reshape(s.table.shape))


@dataclass(frozen=True)
class Result:
    """Per beat: levels [n, F], scores [n, C] (uint16 sums), screener decision [n], wake status
    [n] (FINAL_NORMAL / WAKE_*)."""

    levels: np.ndarray
    scores: np.ndarray
    decision: np.ndarray
    status: np.ndarray

    @property
    def woken(self) -> np.ndarray:
        return self.status != FINAL_NORMAL


def classify_codes(codes: np.ndarray, cfg: ScreenerConfig, levels: np.ndarray) -> Result:
    """The wake rule on the looked-up codes ``codes`` [n, C, F] (uint8, as read)."""
    codes = codes.astype(np.int64)
    value = codes & cfg.zero_code
    invalid = (value == cfg.zero_code).any(axis=(1, 2))
    if cfg.protected:
        ones = np.unpackbits(codes.astype(np.uint8)[..., None], axis=-1).sum(axis=-1)
        invalid |= (ones % 2 == 0).any(axis=(1, 2))
    scores = value.sum(axis=2)
    decision = scores.argmin(axis=1)
    best_abn = scores[:, 1:].min(axis=1)
    status = np.full(len(scores), FINAL_NORMAL, dtype=np.int64)
    status[scores[:, 0] + cfg.margin >= best_abn] = WAKE_AMBIGUOUS
    status[best_abn < scores[:, 0]] = WAKE_ABNORMAL
    status[invalid] = WAKE_INVALID
    return Result(levels, scores.astype(np.uint16), decision, status)


def lookup(s: Screener, levels: np.ndarray) -> np.ndarray:
    """The codes each beat reads: [n, C, F]."""
    f = np.arange(levels.shape[1])
    return s.table[:, f[None, :], levels].transpose(1, 0, 2)


def classify_q(s: Screener, fq: np.ndarray) -> Result:
    """Classify uint16 features of the screener's bins [n, F]."""
    levels = quantize_levels(fq, s.thresholds)
    return classify_codes(lookup(s, levels), s.config, levels)


def classify(s: Screener, features: np.ndarray) -> Result:
    """Classify float FFT features [n, 127]."""
    return classify_q(s, feature_q(features[:, s.bins]))
