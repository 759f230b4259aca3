"""Streaming pipelines: a small TOML file per app describes the sensor front end (sample rate,
window, hop, ring, preprocessing blocks, classifier, post-processing, sample source).

:func:`load_pipeline` parses and validates the file and *lowers* it: every block gets its
integer constants (multipliers, shifts, tables) and the integer range its output can take
(interval analysis), so that

* the generated C (``templates/stream/``) and the numpy twin (:mod:`generator.frontend.preprocess`)
use
  the very same constants and differ only in who does the arithmetic, and
* a Q format that could overflow an accumulator is found here, at generation time.

Arithmetic rules shared by every block (C and numpy):

* values travel as ``int32`` with a declared *format*: a storage type (``int16``/``int32``; the
  model input is ``int8``/``uint8``) and a number of fractional bits (Q format);
* each block rounds once, ``round_shift(v, s) = (v + 2**(s-1)) >> s`` (arithmetic shift,
  round half up), then saturates to its output type (the recursive ones, EMA and the Goertzel
  resonator, round their one product per step, as any fixed-point filter does);
* no division at run time: averages use precomputed reciprocals ``round(2**30 / n)``;
* accumulators are proven not to overflow from the input range (else
  :class:`QFormatOverflowError`).

Bad configs fail with one :class:`PipelineError` subclass each, naming the file, the block and
what to change.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from generator import PROJECT_ROOT
from generator.errors import SweetspotError

# ---- errors --------------------------------------------------------------------------------


class PipelineError(SweetspotError):
    """A pipeline config that cannot be turned into firmware."""


class PipelineConfigError(PipelineError):
    """Unreadable TOML, a missing or mistyped key, a value out of its range."""


class UnknownBlockError(PipelineError):
    """A block kind the generator has no implementation for."""


class QFormatOverflowError(PipelineError):
    """A coefficient or an accumulator does not fit its fixed-point format."""


class ShapeMismatchError(PipelineError):
    """The pipeline's output does not match the classifier's input tensor."""


class RingTooSmallError(PipelineError):
    """The ring cannot hold one window."""


# ---- formats -------------------------------------------------------------------------------

TYPE_RANGE = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
}
SIGNAL_TYPES = ("int16", "int32")
INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
RECIP_SHIFT = 30          # reciprocals round(2**30 / n)
Q15 = 15                  # window tables, EMA factor
GOERTZEL_Q = 14           # Goertzel coefficient 2cos(w) in Q14 (int32)
GOERTZEL_STATE_LIMIT = 2**29
OVERFLOW_POLICIES = ("drop_oldest", "drop_newest")
PLACEMENTS = ("ram", "nvm")
LAYOUTS = ("tc", "ct")
MAX_WINDOW = 1 << 16       # samples per window (an image frame: pixels)
MAX_CHANNELS = 16


def round_shift(v: int, s: int) -> int:
    """The one rounding step, on Python ints (the numpy twin has its own vectorised copy)."""
    return (v + (1 << (s - 1))) >> s if s > 0 else v << -s


def recip(n: int) -> int:
    return int(round((1 << RECIP_SHIFT) / n))


@dataclass(frozen=True)
class Format:
    """A signal between two blocks: ``rows`` × ``ch`` values (rows = time or bins, channels
    interleaved: index = row * ch + channel), storage type, fractional bits and the integer
    range the values can take."""

    type: str
    frac: int
    rows: int
    ch: int
    lo: int
    hi: int
    unit: float = 1.0  # real value of one LSB at Q0 (1 for sensor samples, 1/255 for pixels)

    @property
    def count(self) -> int:
        return self.rows * self.ch

    @property
    def max_abs(self) -> int:
        return max(abs(self.lo), abs(self.hi))

    def describe(self) -> str:
        unit = "" if self.unit == 1.0 else f" x {self.unit:.6g}"
        return f"{self.rows}x{self.ch} {self.type} Q{self.frac}{unit} in [{self.lo}, {self.hi}]"


@dataclass(frozen=True)
class Stage:
    """One lowered block: its kind, integer parameters (JSON-able) and input/output formats."""

    index: int
    kind: str
    params: dict[str, Any]
    fin: Format
    fout: Format

    @property
    def label(self) -> str:
        return f"block {self.index} '{self.kind}'"


@dataclass(frozen=True)
class TensorSpec:
    """A classifier tensor as the pipeline sees it."""

    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int
    name: str = ""

    @property
    def count(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass(frozen=True)
class ModelBinding:
    """Where the pipeline meets a compiled model: the int8 tensor it writes (the model input,
    or the output of a leading float→int8 QUANTIZE, which is then skipped), the int8 scores
    it reads (the model output, or the input of a trailing DEQUANTIZE, which is skipped), and
    the operator range to run."""

    path: Path
    sha256: str
    input: TensorSpec
    output: TensorSpec
    input_tensor: int
    output_tensor: int
    first_op: int
    last_op: int  # inclusive
    macs: int


@dataclass(frozen=True)
class ClassifierSpec:
    kind: str                      # "stub" | "model"
    input: TensorSpec
    output: TensorSpec
    instructions: int = 0          # stub: fixed compute load per window
    seed: int = 0                  # stub: weights
    score_shift: int = 0           # stub: scores = sat8(round_shift(w·x, score_shift))
    model: ModelBinding | None = None
    worst_case_instructions: int | None = None  # model: per-window bound, if configured


@dataclass(frozen=True)
class PostSpec:
    """Post-processing on the int8 scores; thresholds and margin converted to score units."""

    classes: int
    labels: tuple[str, ...]
    thresholds: tuple[int, ...]
    min_margin: int
    vote_k: int
    vote_n: int
    hold: int
    cooldown: int


@dataclass(frozen=True)
class RingSpec:
    capacity: int | None           # None: chosen by the generator ("auto")
    overflow: str
    placement: str
    index_origin: int              # initial value of the 32-bit sample counters (wrap tests)


@dataclass(frozen=True)
class SourceSpec:
    """Where the samples come from. For "synthetic"/"file" a sample is one reading of every
    channel. For "images" a sample is a whole frame: the timer delivers frame indices into the
    ring (window = hop = 1 frame) and the pipeline's window is one image, its pixels as rows."""

    kind: str                      # "synthetic" | "file" | "images"
    samples: int                   # samples (frames) the timer delivers
    seed: int = 0
    path: Path | None = None
    segments: tuple[str, ...] = ()
    images: int = 0                # "images": distinct images compiled in
    height: int = 0
    width: int = 0


@dataclass(frozen=True)
class Pipeline:
    name: str
    path: Path | None
    sha256: str
    rate_hz: float
    channels: int
    window: int
    hop: int
    input: Format
    stages: tuple[Stage, ...]
    ring: RingSpec
    classifier: ClassifierSpec
    post: PostSpec
    source: SourceSpec
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def output(self) -> Format:
        return self.stages[-1].fout if self.stages else self.input

    @property
    def features(self) -> int:
        return self.output.count

    @property
    def buffer_words(self) -> int:
        """int32 words of each of the two ping-pong work buffers."""
        return max([self.input.count] + [s.fout.count for s in self.stages])

    @property
    def period_s(self) -> float:
        return 1.0 / self.rate_hz

    @property
    def frames(self) -> bool:
        return self.source.kind == "images"

    @property
    def ring_window(self) -> int:
        return 1 if self.frames else self.window

    @property
    def ring_hop(self) -> int:
        return 1 if self.frames else self.hop

    @property
    def ring_channels(self) -> int:
        return 1 if self.frames else self.channels

    def where(self) -> str:
        return f"pipeline '{self.path.name if self.path else self.name}'"


# ---- small parsing helpers -----------------------------------------------------------------


class _Ctx:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, msg: str, cls: type[PipelineError] = PipelineConfigError) -> PipelineError:
        return cls(f"{self.where}: {msg}")

    def table(self, d: dict[str, Any], key: str, required: bool = False) -> dict[str, Any]:
        v = d.get(key)
        if v is None:
            if required:
                raise self.fail(f"the [{key}] table is missing")
            return {}
        if not isinstance(v, dict):
            raise self.fail(f"'{key}' must be a table, got {type(v).__name__}")
        return v

    def keys(self, d: dict[str, Any], allowed: set[str], what: str) -> None:
        extra = sorted(set(d) - allowed)
        if extra:
            raise self.fail(f"{what} has no key '{extra[0]}'; known: {', '.join(sorted(allowed))}")

    def int_(self, d: dict[str, Any], key: str, what: str, default: int | None = None,
             lo: int | None = None, hi: int | None = None) -> int:
        v = d.get(key, default)
        if v is None:
            raise self.fail(f"{what}: '{key}' is missing")
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"{what}: '{key}' must be an integer, got {v!r}")
        if lo is not None and v < lo:
            raise self.fail(f"{what}: '{key}' = {v} must be >= {lo}")
        if hi is not None and v > hi:
            raise self.fail(f"{what}: '{key}' = {v} must be <= {hi}")
        return int(v)

    def num(self, d: dict[str, Any], key: str, what: str, default: float | None = None) -> float:
        v = d.get(key, default)
        if v is None:
            raise self.fail(f"{what}: '{key}' is missing")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(f"{what}: '{key}' must be a number, got {v!r}")
        return float(v)

    def choice(self, d: dict[str, Any], key: str, what: str, options: tuple[str, ...],
               default: str | None = None) -> str:
        v = d.get(key, default)
        if v not in options:
            raise self.fail(f"{what}: '{key}' = {v!r} is not one of {', '.join(options)}")
        return str(v)

    def per_channel(self, d: dict[str, Any], key: str, what: str, ch: int,
                    default: float) -> list[float]:
        v = d.get(key, default)
        vals = v if isinstance(v, list) else [v] * ch
        if len(vals) != ch:
            raise self.fail(f"{what}: '{key}' has {len(vals)} values for {ch} channels")
        out = []
        for x in vals:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise self.fail(f"{what}: '{key}' must be numbers, got {x!r}")
            out.append(float(x))
        return out


def _sat_range(lo: int, hi: int, typ: str) -> tuple[int, int]:
    tlo, thi = TYPE_RANGE[typ]
    return max(tlo, min(thi, lo)), max(tlo, min(thi, hi))


def _bits(v: int) -> str:
    return f"2^{math.log2(v):.2f}" if v > 0 else "0"


# ---- blocks --------------------------------------------------------------------------------
# Each lowering function takes (ctx, label, params dict, input format) and returns
# (integer params, output format). Param dict keys are checked against ``_BLOCK_KEYS``.

_BLOCK_KEYS: dict[str, set[str]] = {
    "dc_remove": {"out_type"},
    "scale": {"mean", "alpha", "out_frac", "out_type", "coef_frac"},
    "clip": {"min", "max"},
    "moving_average": {"length", "out_type"},
    "ema": {"alpha", "out_type"},
    "median3": set(),
    "window": {"function", "out_type"},
    "magnitude": {"out_type"},
    "goertzel": {"bins", "frequencies_hz", "shift", "out_type"},
    "quantize": {"scale", "zero_point", "layout", "type"},
}
BLOCKS = tuple(sorted(_BLOCK_KEYS))


def _out_type(ctx: _Ctx, p: dict[str, Any], what: str, default: str) -> str:
    return ctx.choice(p, "out_type", what, SIGNAL_TYPES,
                      default if default in SIGNAL_TYPES else "int16")


def _lower_dc_remove(ctx: _Ctx, what: str, p: dict[str, Any], f: Format, _pl: dict[str, Any]
                     ) -> tuple[dict[str, Any], Format]:
    typ = _out_type(ctx, p, what, f.type)
    n = f.rows
    if n * f.max_abs > INT32_MAX:
        raise ctx.fail(f"{what}: the sum of {n} values of |x| <= {f.max_abs} reaches "
                       f"{_bits(n * f.max_abs)}, beyond the 32-bit accumulator; scale the input "
                       "down first or shorten the window", QFormatOverflowError)
    r = recip(n)
    mean_lo = round_shift(n * f.lo * r, RECIP_SHIFT)
    mean_hi = round_shift(n * f.hi * r, RECIP_SHIFT)
    if max(abs(f.lo - mean_hi), abs(f.hi - mean_lo)) > INT32_MAX:
        raise ctx.fail(f"{what}: x - mean can exceed 32 bits for inputs in [{f.lo}, {f.hi}]; "
                       "scale the input down first", QFormatOverflowError)
    lo, hi = _sat_range(f.lo - mean_hi, f.hi - mean_lo, typ)
    return ({"recip": r, "shift": RECIP_SHIFT, "out_type": typ},
            replace(f, type=typ, lo=lo, hi=hi))


def _lower_scale(ctx: _Ctx, what: str, p: dict[str, Any], f: Format, _pl: dict[str, Any]
                 ) -> tuple[dict[str, Any], Format]:
    typ = _out_type(ctx, p, what, f.type)
    out_frac = ctx.int_(p, "out_frac", what, f.frac, -31, 31)
    means = ctx.per_channel(p, "mean", what, f.ch, 0.0)
    alphas = ctx.per_channel(p, "alpha", what, f.ch, 1.0)
    mean_i = [int(round(m * 2.0 ** f.frac / f.unit)) for m in means]
    if any(abs(m) > INT32_MAX for m in mean_i):
        raise ctx.fail(f"{what}: mean {max(means, key=abs)} does not fit Q{f.frac} in 32 bits",
                       QFormatOverflowError)
    d_lo = f.lo - max(mean_i)
    d_hi = f.hi - min(mean_i)
    d_max = max(abs(d_lo), abs(d_hi))
    amax = max(abs(a) for a in alphas)

    def fits(cf: int) -> tuple[bool, str]:
        m = [int(round(a * (1 << cf))) for a in alphas]
        if any(not (-(2**15) <= v <= 2**15 - 1) for v in m):
            return False, (f"alpha {amax:g} does not fit the int16 coefficient format "
                           f"Q{15 - cf}.{cf} (|alpha| < {2 ** (15 - cf):g})")
        s = cf + f.frac - out_frac
        if s > 30:
            return False, (f"the rescale shift {s} exceeds 30 (out_frac {out_frac} is far "
                           f"below the input's Q{f.frac}): every output would round to 0")
        prod = d_max * max(abs(v) for v in m)
        if s < 0:
            prod <<= -s
        elif s > 0:
            prod += 1 << (s - 1)
        if prod > INT32_MAX:
            return False, (f"(x - mean)·alpha reaches {_bits(prod)} in the 32-bit accumulator "
                           f"(|x - mean| <= {d_max}, alpha in Q{cf}, shift {s})")
        return True, ""

    if "coef_frac" in p:
        cf = ctx.int_(p, "coef_frac", what, None, 0, 15)
        ok, why = fits(cf)
        if not ok:
            raise ctx.fail(f"{what}: {why}; lower coef_frac, out_frac or the input range",
                           QFormatOverflowError)
    else:
        cf = next((c for c in range(15, -1, -1) if fits(c)[0]), -1)
        if cf < 0:
            raise ctx.fail(f"{what}: {fits(0)[1]}; no coefficient format fits: lower alpha, "
                           "out_frac or the input range", QFormatOverflowError)
    mult = [int(round(a * (1 << cf))) for a in alphas]
    if all(m == 0 for m in mult) and amax > 0:
        raise ctx.fail(f"{what}: alpha {amax:g} rounds to 0 in Q{cf}", QFormatOverflowError)
    s = cf + f.frac - out_frac
    ends = [round_shift((dv) * m, s) for dv in (d_lo, d_hi) for m in mult]
    lo, hi = _sat_range(min(ends), max(ends), typ)
    return ({"mean": mean_i, "mult": mult, "coef_frac": cf, "shift": s, "out_type": typ},
            replace(f, type=typ, frac=out_frac, lo=lo, hi=hi))


def _lower_clip(ctx: _Ctx, what: str, p: dict[str, Any], f: Format, _pl: dict[str, Any]
                ) -> tuple[dict[str, Any], Format]:
    tlo, thi = TYPE_RANGE[f.type]
    one = 2.0 ** f.frac / f.unit
    vlo = ctx.num(p, "min", what, tlo / one)
    vhi = ctx.num(p, "max", what, thi / one)
    lo_i, hi_i = int(round(vlo * one)), int(round(vhi * one))
    if lo_i < tlo or hi_i > thi:
        raise ctx.fail(f"{what}: the limits [{vlo:g}, {vhi:g}] do not fit {f.type} Q{f.frac} "
                       f"([{tlo / one:g}, {thi / one:g}])",
                       QFormatOverflowError)
    if lo_i > hi_i:
        raise ctx.fail(f"{what}: min {vlo:g} is above max {vhi:g}")
    lo, hi = max(f.lo, lo_i), min(f.hi, hi_i)
    if lo > hi:  # every value is clipped to one limit
        lo = hi = lo_i if f.hi < lo_i else hi_i
    return {"min": lo_i, "max": hi_i}, replace(f, lo=lo, hi=hi)


def _lower_moving_average(ctx: _Ctx, what: str, p: dict[str, Any], f: Format,
                          _pl: dict[str, Any]) -> tuple[dict[str, Any], Format]:
    typ = _out_type(ctx, p, what, f.type)
    k = ctx.int_(p, "length", what, None, 1, f.rows)
    if (k + 1) * f.max_abs > INT32_MAX:  # the running sum plus one new - old difference
        raise ctx.fail(f"{what}: a running sum of {k} values of |x| <= {f.max_abs} reaches "
                       f"{_bits(k * f.max_abs)} in the 32-bit accumulator; shorten 'length' "
                       "or scale the input down", QFormatOverflowError)
    r = recip(k)
    lo, hi = _sat_range(round_shift(k * f.lo * r, RECIP_SHIFT),
                        round_shift(k * f.hi * r, RECIP_SHIFT), typ)
    return ({"length": k, "recip": r, "shift": RECIP_SHIFT, "out_type": typ},
            replace(f, type=typ, lo=lo, hi=hi))


def _lower_ema(ctx: _Ctx, what: str, p: dict[str, Any], f: Format, _pl: dict[str, Any]
               ) -> tuple[dict[str, Any], Format]:
    typ = _out_type(ctx, p, what, f.type)
    alpha = ctx.num(p, "alpha", what)
    a = int(round(alpha * (1 << Q15)))
    if not 0 < a < (1 << Q15):
        raise ctx.fail(f"{what}: alpha {alpha:g} must be in (0, 1) as Q15 (got {a}/32768)",
                       QFormatOverflowError)
    width = f.hi - f.lo
    if width * a + (1 << (Q15 - 1)) > INT32_MAX:
        raise ctx.fail(f"{what}: (x - y)·alpha reaches {_bits(width * a)} in the 32-bit "
                       "accumulator; scale the input down first", QFormatOverflowError)
    lo, hi = _sat_range(f.lo, f.hi, typ)
    return {"alpha_q15": a, "out_type": typ}, replace(f, type=typ, lo=lo, hi=hi)


def _lower_median3(ctx: _Ctx, what: str, p: dict[str, Any], f: Format, _pl: dict[str, Any]
                   ) -> tuple[dict[str, Any], Format]:
    if f.rows < 1:
        raise ctx.fail(f"{what}: needs at least one row")
    return {}, f


def window_table(function: str, n: int) -> list[int]:
    """Window coefficients in Q15: numpy's symmetric Hann/Hamming scaled to a 32767 peak,
    rounded half up."""
    ref = {"hann": np.hanning, "hamming": np.hamming}[function]
    w = ref(n) if n > 1 else np.ones(1)
    return [int(v) for v in np.floor(w * 32767.0 + 0.5 + 1e-9).astype(np.int64)]


def _lower_window(ctx: _Ctx, what: str, p: dict[str, Any], f: Format, _pl: dict[str, Any]
                  ) -> tuple[dict[str, Any], Format]:
    typ = _out_type(ctx, p, what, f.type)
    fn = ctx.choice(p, "function", what, ("hann", "hamming"), "hann")
    table = window_table(fn, f.rows)
    wmax = max(table)
    if f.max_abs * wmax + (1 << (Q15 - 1)) > INT32_MAX:
        raise ctx.fail(f"{what}: x·w reaches {_bits(f.max_abs * wmax)} in the 32-bit "
                       "accumulator; scale the input down first", QFormatOverflowError)
    lo = min(0, round_shift(f.lo * wmax, Q15))
    hi = max(0, round_shift(f.hi * wmax, Q15))
    lo, hi = _sat_range(lo, hi, typ)
    return {"function": fn, "table": table, "out_type": typ}, replace(f, type=typ, lo=lo, hi=hi)


def isqrt_round(v: int) -> int:
    r = math.isqrt(v)
    return r + 1 if v - r * r > r else r


def _lower_magnitude(ctx: _Ctx, what: str, p: dict[str, Any], f: Format, _pl: dict[str, Any]
                     ) -> tuple[dict[str, Any], Format]:
    typ = _out_type(ctx, p, what, f.type)
    total = f.ch * f.max_abs * f.max_abs
    if total > UINT32_MAX:
        raise ctx.fail(f"{what}: the sum of {f.ch} squares of |x| <= {f.max_abs} reaches "
                       f"{_bits(total)}, beyond the unsigned 32-bit accumulator; scale the "
                       "input down first", QFormatOverflowError)
    lo, hi = _sat_range(0, isqrt_round(total), typ)
    return {"out_type": typ}, replace(f, type=typ, ch=1, lo=lo, hi=hi)


def _lower_goertzel(ctx: _Ctx, what: str, p: dict[str, Any], f: Format, pl: dict[str, Any]
                    ) -> tuple[dict[str, Any], Format]:
    typ = _out_type(ctx, p, what, "int32")
    n = f.rows
    if "bins" in p and "frequencies_hz" in p:
        raise ctx.fail(f"{what}: give either 'bins' or 'frequencies_hz', not both")
    if "bins" in p:
        raw = p["bins"]
        if not isinstance(raw, list) or not raw or not all(
                isinstance(b, int) and not isinstance(b, bool) for b in raw):
            raise ctx.fail(f"{what}: 'bins' must be a non-empty list of integers")
        bins = [int(b) for b in raw]
    elif "frequencies_hz" in p:
        raw = p["frequencies_hz"]
        if not isinstance(raw, list) or not raw:
            raise ctx.fail(f"{what}: 'frequencies_hz' must be a non-empty list of numbers")
        rate = float(pl["rate_hz"])
        bins = [int(round(float(fr) * n / rate)) for fr in raw]
    else:
        raise ctx.fail(f"{what}: give 'bins' (DFT bin numbers) or 'frequencies_hz'")
    for b in bins:
        if not 0 < b < (n + 1) // 2:
            raise ctx.fail(f"{what}: bin {b} is outside 1..{(n + 1) // 2 - 1} for a "
                           f"{n}-row input (DC and Nyquist are not supported)")
    shift = ctx.int_(p, "shift", what, 0, 0, 62)
    coefs = [int(round(2.0 * math.cos(2.0 * math.pi * b / n) * (1 << GOERTZEL_Q))) for b in bins]
    bound = 0
    for b in bins:
        sin = abs(math.sin(2.0 * math.pi * b / n))
        bound = max(bound, math.ceil((n * f.max_abs + n) / sin))
    if bound >= GOERTZEL_STATE_LIMIT:
        raise ctx.fail(f"{what}: the resonator state can reach {_bits(bound)} (>= 2^29) for "
                       f"{n} rows of |x| <= {f.max_abs}; scale the input down first (e.g. a "
                       "'scale' block with a smaller out_frac)", QFormatOverflowError)
    pmax = 4 * bound * bound
    lo, hi = _sat_range(round_shift(-(bound // 2 + 1), shift), round_shift(pmax, shift), typ)
    return ({"bins": bins, "coefs": coefs, "coef_frac": GOERTZEL_Q, "shift": shift,
             "state_bound": bound, "out_type": typ},
            replace(f, type=typ, frac=2 * f.frac - shift, rows=len(bins), lo=lo, hi=hi,
                    unit=f.unit * f.unit))


def quantize_params(real: float) -> tuple[int, int]:
    """(M, S) with M / 2**S ~= real, M < 2**31, 1 <= S <= 62."""
    if real <= 0:
        raise ValueError(real)
    e = math.floor(math.log2(real))
    s = 30 - e
    s = min(s, 62)
    m = int(round(real * (1 << s))) if s >= 0 else 0
    if m >= 2**31:
        s -= 1
        m = int(round(real * (1 << s)))
    return m, s


def _lower_quantize(ctx: _Ctx, what: str, p: dict[str, Any], f: Format, pl: dict[str, Any]
                    ) -> tuple[dict[str, Any], Format]:
    target: TensorSpec | None = pl.get("target")

    def from_model(key: str) -> bool:
        v = p.get(key, "model" if target is not None else None)
        if v == "model" and target is None:
            raise ctx.fail(f"{what}: {key} = \"model\" needs a classifier of kind 'model'; "
                           "give a number for the stub classifier")
        return v == "model"

    scale = float(target.scale) if from_model("scale") and target else ctx.num(p, "scale", what)
    zp = (int(target.zero_point) if from_model("zero_point") and target
          else ctx.int_(p, "zero_point", what, None, -128, 255))
    default_type = target.dtype if target is not None else "int8"
    qtype = ctx.choice(p, "type", what, ("int8", "uint8"), default_type)
    layout = ctx.choice(p, "layout", what, LAYOUTS, "tc")
    if scale <= 0:
        raise ctx.fail(f"{what}: scale must be > 0, got {scale:g}")
    qlo, qhi = TYPE_RANGE[qtype]
    if not qlo <= zp <= qhi:
        raise ctx.fail(f"{what}: zero_point {zp} is outside {qtype}")
    real = f.unit / (scale * 2.0 ** f.frac)
    m, s = quantize_params(real)
    if s < 1:
        raise ctx.fail(f"{what}: one input step is {real:.4g} output steps; the multiplier "
                       "does not fit 31 bits (raise the scale or the input's fractional bits)",
                       QFormatOverflowError)
    ends = [round_shift(v * m, s) + zp for v in (f.lo, f.hi)]
    lo, hi = _sat_range(min(ends), max(ends), qtype)
    return ({"scale": scale, "zero_point": zp, "mult": m, "shift": s, "layout": layout,
             "type": qtype},
            replace(f, type=qtype, frac=0, lo=lo, hi=hi, unit=scale))


_LOWER = {
    "dc_remove": _lower_dc_remove,
    "scale": _lower_scale,
    "clip": _lower_clip,
    "moving_average": _lower_moving_average,
    "ema": _lower_ema,
    "median3": _lower_median3,
    "window": _lower_window,
    "magnitude": _lower_magnitude,
    "goertzel": _lower_goertzel,
    "quantize": _lower_quantize,
}


# ---- models --------------------------------------------------------------------------------


def bind_model(path: Path) -> ModelBinding:
    """Find the int8 tensors a pipeline writes and reads in a compiled model."""
    from generator.compiler.loader import (
        load_model,  # late: only pipelines with a model need the loader
    )
    from generator.compiler.plan import plan_model

    graph = load_model(path)
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise PipelineConfigError(
            f"model '{path.name}' has {len(graph.inputs)} inputs and {len(graph.outputs)} "
            "outputs; a streaming pipeline feeds exactly one input and reads one output")
    ops = graph.operators
    first, last = 0, len(ops) - 1
    tin, tout = graph.inputs[0], graph.outputs[0]
    if graph.tensor(tin).dtype == "float32":
        if not ops or ops[0].opcode != "QUANTIZE" or ops[0].inputs[0] != tin:
            raise PipelineConfigError(
                f"model '{path.name}' takes float32 input without a leading QUANTIZE; the "
                "pipeline can only feed int8/uint8")
        tin, first = ops[0].outputs[0], 1
    if graph.tensor(tout).dtype == "float32":
        if not ops or ops[-1].opcode != "DEQUANTIZE" or ops[-1].outputs[0] != tout:
            raise PipelineConfigError(
                f"model '{path.name}' gives float32 output without a trailing DEQUANTIZE")
        tout, last = ops[-1].inputs[0], len(ops) - 2

    def spec(t: int) -> TensorSpec:
        tensor = graph.tensor(t)
        if tensor.dtype not in ("int8", "uint8") or tensor.quant is None:
            raise PipelineConfigError(
                f"model '{path.name}': tensor '{tensor.name}' is {tensor.dtype}; the pipeline "
                "needs a quantized int8/uint8 tensor")
        return TensorSpec(tuple(tensor.shape), tensor.dtype, float(tensor.quant.scale[0]),
                          int(tensor.quant.zero_point[0]), tensor.name)

    plan = plan_model(graph)
    return ModelBinding(path=path, sha256=graph.sha256, input=spec(tin), output=spec(tout),
                        input_tensor=tin, output_tensor=tout, first_op=first, last_op=last,
                        macs=plan.total_macs)


# ---- ring capacity -------------------------------------------------------------------------


def min_capacity(window: int, worst_case_s: float, period_s: float) -> int:
    """The smallest ring that never drops a sample: the window being processed stays in the
    ring (held until its decision is made) while ceil(worst-case time / period) more arrive."""
    return window + math.ceil(worst_case_s / period_s - 1e-12)


# ---- the loader ----------------------------------------------------------------------------

_TOP_KEYS = {"name", "sample_rate_hz", "channels", "window", "hop", "input", "ring", "block",
             "classifier", "post", "source"}


def _resolve(base: Path | None, value: str) -> Path:
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return p.resolve()


def _classifier(ctx: _Ctx, d: dict[str, Any], base: Path | None, model_override: str | None
                ) -> tuple[str, dict[str, Any], ModelBinding | None]:
    c = ctx.table(d, "classifier")
    kind = ctx.choice(c, "kind", "[classifier]", ("stub", "model"), "stub")
    if kind == "stub":
        ctx.keys(c, {"kind", "instructions", "classes", "seed", "labels"}, "[classifier]")
        return kind, c, None
    ctx.keys(c, {"kind", "model", "labels", "worst_case_instructions"}, "[classifier]")
    mpath = model_override or c.get("model")
    if not mpath:
        raise ctx.fail("[classifier] kind = \"model\" needs 'model' (a .tflite path) or the "
                       "model=<path> build option")
    path = _resolve(base if not model_override else Path.cwd(), str(mpath))
    if not path.is_file():
        raise ctx.fail(f"model file '{path}' does not exist; fix [classifier].model or pass "
                       "model=<path>")
    return kind, c, bind_model(path)


def parse_pipeline(d: dict[str, Any], *, path: Path | None = None, text: bytes = b"",
                   model: str | None = None) -> Pipeline:
    """Validate and lower a parsed pipeline config (see the module docstring)."""
    where = f"pipeline '{path.name}'" if path else "pipeline"
    ctx = _Ctx(where)
    base = path.parent if path else None
    ctx.keys(d, _TOP_KEYS, "the pipeline")
    name = str(d.get("name", path.stem if path else "pipeline"))
    rate = ctx.num(d, "sample_rate_hz", "the pipeline")
    if not 0.01 <= rate <= 100_000:
        raise ctx.fail(f"sample_rate_hz = {rate:g} must be in 0.01..100000")
    ch = ctx.int_(d, "channels", "the pipeline", 1, 1, MAX_CHANNELS)
    window = ctx.int_(d, "window", "the pipeline", None, 1, MAX_WINDOW)
    hop = ctx.int_(d, "hop", "the pipeline", window, 1)
    if hop > window:
        raise ctx.fail(f"hop {hop} is longer than the window {window}; samples between windows "
                       "would never be seen (use hop <= window)")

    inp = ctx.table(d, "input")
    ctx.keys(inp, {"type", "frac", "scale", "min", "max"}, "[input]")
    src_kind = ctx.table(d, "source").get("kind", "synthetic")
    itype = inp.get("type", "uint8" if src_kind == "images" else "int16")
    if itype != ("uint8" if src_kind == "images" else "int16"):
        raise ctx.fail(f"[input] type {itype!r}: sensor samples are int16 and image pixels "
                       "uint8 (scale them in a block)")
    tlo, thi = TYPE_RANGE[itype]
    frac = ctx.int_(inp, "frac", "[input]", 0, 0, 15)
    unit = 1.0
    if "scale" in inp:  # a non-power-of-two LSB, e.g. pixels: 1/255
        if "frac" in inp:
            raise ctx.fail("[input] gives either 'frac' (a Q format) or 'scale' (the real value"
                           " of one LSB), not both")
        unit = ctx.num(inp, "scale", "[input]")
        if unit <= 0:
            raise ctx.fail("[input] scale must be > 0")
    ilo = ctx.int_(inp, "min", "[input]", tlo, tlo, thi)
    ihi = ctx.int_(inp, "max", "[input]", thi, ilo, thi)
    fin = Format(itype, frac, window, ch, ilo, ihi, unit)

    # classifier first: the final quantize block targets its input tensor
    ckind, craw, binding = _classifier(ctx, d, base, model)
    target = binding.input if binding else None

    blocks = d.get("block", [])
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise ctx.fail("blocks are given as [[block]] tables")
    if not blocks or blocks[-1].get("kind") != "quantize":
        raise ctx.fail("the last [[block]] must be kind = \"quantize\" (into the classifier's "
                       "int8 input)")
    stages: list[Stage] = []
    f = fin
    plctx = {"rate_hz": rate, "target": target}
    for i, b in enumerate(blocks):
        kind = b.get("kind")
        if kind not in _LOWER:
            raise ctx.fail(f"block {i} kind {kind!r} is unknown; known blocks: "
                           f"{', '.join(BLOCKS)}", UnknownBlockError)
        what = f"block {i} '{kind}'"
        params = {k: v for k, v in b.items() if k != "kind"}
        ctx.keys(params, _BLOCK_KEYS[kind], what)
        if kind == "quantize" and i != len(blocks) - 1:
            raise ctx.fail(f"{what}: quantize must be the last block")
        ip, out = _LOWER[kind](ctx, what, params, f, plctx)
        stages.append(Stage(i, kind, ip, f, out))
        f = out

    qs = stages[-1]
    layout = qs.params["layout"]
    dims = (f.rows, f.ch) if layout == "tc" else (f.ch, f.rows)
    if binding is not None:
        if not _layout_matches(f.rows, f.ch, layout, binding.input.shape):
            raise ctx.fail(
                f"the pipeline produces {f.rows} rows x {f.ch} channels (layout '{layout}') = "
                f"{f.count} values, but model input '{binding.input.name}' is "
                f"{list(binding.input.shape)} ({binding.input.count} values); match the window"
                " (or the block that sets the rows) and channels to the model",
                ShapeMismatchError)
        if qs.params["type"] != binding.input.dtype:
            raise ctx.fail(f"the quantize block writes {qs.params['type']} but the model input "
                           f"is {binding.input.dtype}", ShapeMismatchError)
        cin, cout = binding.input, binding.output
        classes = cout.count
    else:
        classes = ctx.int_(craw, "classes", "[classifier]", 4, 2, 64)
        cin = TensorSpec((1, *dims), qs.params["type"], qs.params["scale"],
                         qs.params["zero_point"], "features")
        cout = TensorSpec((1, classes), "int8", 1.0 / 256.0, -128, "scores")
    labels_raw = craw.get("labels", [f"class{k}" for k in range(classes)])
    if not isinstance(labels_raw, list) or len(labels_raw) != classes:
        raise ctx.fail(f"[classifier] labels must list {classes} names")
    labels = tuple(str(x) for x in labels_raw)

    if ckind == "stub":
        instr = ctx.int_(craw, "instructions", "[classifier]", 0, 0, 2**31 - 1)
        seed = ctx.int_(craw, "seed", "[classifier]", 1, 0)
        feats = cin.count
        score_shift = max(0, math.ceil(math.log2(feats * 128 * 128)) - 9)
        classifier = ClassifierSpec("stub", cin, cout, instructions=instr, seed=seed,
                                    score_shift=score_shift)
    else:
        wc = craw.get("worst_case_instructions")
        if wc is not None:
            wc = ctx.int_(craw, "worst_case_instructions", "[classifier]", None, 1)
        classifier = ClassifierSpec("model", cin, cout, model=binding,
                                    worst_case_instructions=wc)

    post = _post(ctx, ctx.table(d, "post"), classes, labels, cout)

    r = ctx.table(d, "ring")
    ctx.keys(r, {"capacity", "overflow", "placement", "index_origin"}, "[ring]")
    cap_v = r.get("capacity", "auto")
    capacity: int | None
    if cap_v == "auto":
        capacity = None
    else:
        capacity = ctx.int_(r, "capacity", "[ring]", None, 1, 1 << 20)
        if capacity < window:
            raise ctx.fail(f"the window ({window} samples) is longer than the ring (capacity "
                           f"{capacity}); set [ring] capacity >= {window}, or \"auto\"",
                           RingTooSmallError)
    ring = RingSpec(capacity=capacity,
                    overflow=ctx.choice(r, "overflow", "[ring]", OVERFLOW_POLICIES,
                                        "drop_oldest"),
                    placement=ctx.choice(r, "placement", "[ring]", PLACEMENTS, "ram"),
                    index_origin=ctx.int_(r, "index_origin", "[ring]", 0, 0, UINT32_MAX))

    s = ctx.table(d, "source")
    ctx.keys(s, {"kind", "samples", "seed", "path", "segments", "images", "frames", "height",
                 "width"}, "[source]")
    skind = ctx.choice(s, "kind", "[source]", ("synthetic", "file", "images"), "synthetic")
    if skind == "images":
        source = _image_source(ctx, s, base, window, hop, ch)
    elif skind == "file":
        if "path" not in s:
            raise ctx.fail("[source] kind = \"file\" needs 'path' (an int16 .npy of shape "
                           "[samples, channels])")
        spath = _resolve(base, str(s["path"]))
        source = SourceSpec("file", samples=0, path=spath)
        trace = load_trace(source, ch, where)
        source = SourceSpec("file", samples=int(trace.shape[0]), path=spath)
    else:
        segs = s.get("segments", list(SEGMENTS))
        if not isinstance(segs, list) or not segs or any(x not in SEGMENTS for x in segs):
            raise ctx.fail(f"[source] segments must be a list of {', '.join(SEGMENTS)}")
        source = SourceSpec("synthetic",
                            samples=ctx.int_(s, "samples", "[source]", 8 * window, 1, 1 << 20),
                            seed=ctx.int_(s, "seed", "[source]", 1, 0),
                            segments=tuple(str(x) for x in segs))
    if skind != "images" and source.samples < window:
        raise ctx.fail(f"the source has {source.samples} samples, fewer than one window "
                       f"({window})")

    sha = hashlib.sha256(text).hexdigest() if text else ""
    return Pipeline(name=name, path=path, sha256=sha, rate_hz=rate, channels=ch, window=window,
                    hop=hop, input=fin, stages=tuple(stages), ring=ring, classifier=classifier,
                    post=post, source=source, raw=d)


def _layout_matches(rows: int, ch: int, layout: str, shape: tuple[int, ...]) -> bool:
    """Rows x channels written in 'tc' (channels last) or 'ct' (channels first) order fill the
    tensor exactly: its size-1 dimensions aside, the channel dimension is the last (first) one
    and the rows fill the others (e.g. 9216 pixel rows x 3 = [1, 96, 96, 3])."""
    dims = [x for x in shape if x != 1]
    if int(np.prod(dims or [1])) != rows * ch:
        return False
    if ch == 1:
        return True
    edge = dims[-1] if layout == "tc" else dims[0]
    return edge == ch


def _post(ctx: _Ctx, p: dict[str, Any], classes: int, labels: tuple[str, ...],
          out: TensorSpec) -> PostSpec:
    ctx.keys(p, {"thresholds", "min_margin", "vote_k", "vote_n", "hold", "cooldown"}, "[post]")
    qlo, qhi = TYPE_RANGE[out.dtype]

    def to_q(v: float) -> int:  # smallest score whose real value is >= v
        return max(qlo, min(qhi, math.ceil(v / out.scale - 1e-9) + out.zero_point))

    th = p.get("thresholds", 0.0)
    ths = th if isinstance(th, list) else [th] * classes
    if len(ths) != classes or not all(isinstance(x, (int, float)) for x in ths):
        raise ctx.fail(f"[post] thresholds must be one number or {classes} numbers")
    margin = ctx.num(p, "min_margin", "[post]", 0.0)
    if margin < 0:
        raise ctx.fail("[post] min_margin must be >= 0")
    n = ctx.int_(p, "vote_n", "[post]", 1, 1, 32)
    k = ctx.int_(p, "vote_k", "[post]", 1, 1, n)
    return PostSpec(classes=classes, labels=labels,
                    thresholds=tuple(to_q(float(x)) for x in ths),
                    min_margin=max(0, math.ceil(margin / out.scale - 1e-9)),
                    vote_k=k, vote_n=n,
                    hold=ctx.int_(p, "hold", "[post]", 1, 1, 1000),
                    cooldown=ctx.int_(p, "cooldown", "[post]", 0, 0, 100000))


def _image_source(ctx: _Ctx, s: dict[str, Any], base: Path | None, window: int, hop: int,
                  ch: int) -> SourceSpec:
    h = ctx.int_(s, "height", "[source]", None, 1, 4096)
    w = ctx.int_(s, "width", "[source]", None, 1, 4096)
    if window != h * w or hop != window:
        raise ctx.fail(f"an image source delivers whole {h}x{w} frames: set window = hop = "
                       f"{h * w} (pixels as rows)")
    if ch not in (1, 3):
        raise ctx.fail(f"image frames have 1 or 3 channels, not {ch}")
    frames = ctx.int_(s, "frames", "[source]", None, 1, 1 << 20)
    if "path" in s:
        spath = _resolve(base, str(s["path"]))
        spec = SourceSpec("images", samples=frames, path=spath, height=h, width=w)
        n = load_images(spec, ch, ctx.where).shape[0]
        return SourceSpec("images", samples=frames, path=spath, images=n, height=h, width=w)
    return SourceSpec("images", samples=frames, seed=ctx.int_(s, "seed", "[source]", 1, 0),
                      images=ctx.int_(s, "images", "[source]", 4, 1, 64), height=h, width=w)


def pipelines_dir() -> Path:
    return PROJECT_ROOT / "pipelines"


def find_pipeline(name_or_path: str | Path) -> Path:
    """A path to a .toml, or the name of one in ``pipelines/``."""
    p = Path(name_or_path).expanduser()
    if p.suffix == ".toml" or p.is_file():
        return p.resolve()
    cand = pipelines_dir() / f"{p.name}.toml"
    if cand.is_file():
        return cand
    known = sorted(x.stem for x in pipelines_dir().glob("*.toml"))
    raise PipelineConfigError(f"pipeline '{name_or_path}' is neither a .toml file nor one of "
                              f"pipelines/: {', '.join(known)}")


def load_pipeline(name_or_path: str | Path, *, model: str | None = None) -> Pipeline:
    path = find_pipeline(name_or_path)
    try:
        text = path.read_bytes()
    except OSError as e:
        raise PipelineConfigError(f"pipeline file '{path}' cannot be read: {e.strerror}") from None
    try:
        d = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise PipelineConfigError(f"pipeline '{path.name}' is not valid TOML: {e}") from None
    return parse_pipeline(d, path=path, text=text, model=model)


# ---- traces (the sample source) ------------------------------------------------------------

SEGMENTS = ("still", "walk", "run", "shake")


def synthetic_trace(samples: int, channels: int, rate_hz: float, frac: int, seed: int,
                    segments: tuple[str, ...] = SEGMENTS) -> np.ndarray:
    """An accelerometer-like int16 trace, ``samples`` × ``channels``, in Q``frac`` g: equal
    segments of still (gravity on the last axis + noise), walk (2 Hz, 0.4 g), run (3 Hz,
    1.2 g) and shake (7 Hz, beyond full scale: saturates at the int16 limits)."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate_hz
    one_g = float(1 << frac)
    out = np.zeros((samples, channels), dtype=np.float64)
    bounds = np.linspace(0, samples, len(segments) + 1).astype(int)
    params = {"still": (0.0, 0.0), "walk": (2.0, 0.4), "run": (3.0, 1.2), "shake": (7.0, 40.0)}
    for seg, a, b in zip(segments, bounds[:-1], bounds[1:]):
        freq, amp = params[seg]
        for c in range(channels):
            phase = 2 * np.pi * (c / max(channels, 1))
            base = 1.0 if c == channels - 1 else 0.0
            sig = base + amp * np.sin(2 * np.pi * freq * t[a:b] + phase)
            out[a:b, c] = sig + rng.normal(0.0, 0.02, b - a)
    q = np.clip(np.round(out * one_g), -(2**15), 2**15 - 1)
    return q.astype(np.int16)


def load_trace(spec: SourceSpec, channels: int, where: str = "pipeline") -> np.ndarray:
    assert spec.path is not None
    try:
        arr = np.load(spec.path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PipelineConfigError(f"{where}: trace '{spec.path}' is not a readable .npy: {e}"
                                  ) from None
    if arr.ndim == 1 and channels == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != channels or arr.dtype != np.int16:
        raise PipelineConfigError(
            f"{where}: trace '{spec.path.name}' is {arr.dtype} {list(arr.shape)}; it must be "
            f"int16 [samples, {channels}]")
    return np.ascontiguousarray(arr)


def synthetic_images(n: int, height: int, width: int, channels: int, seed: int) -> np.ndarray:
    """``n`` uint8 frames (n, height, width, channels): smooth colour gradients with a few
    bright and dark rectangles and noise, different per seed (test scenes, not photographs)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    out = np.zeros((n, height, width, channels))
    for k in range(n):
        for c in range(channels):
            a, b, off = rng.uniform(-200, 200), rng.uniform(-200, 200), rng.uniform(40, 215)
            out[k, :, :, c] = off + a * (xx - 0.5) + b * (yy - 0.5)
        for _ in range(3):
            hh, ww = rng.integers(1, max(2, height // 2)), rng.integers(1, max(2, width // 2))
            y0, x0 = rng.integers(0, max(1, height - hh)), rng.integers(0, max(1, width - ww))
            out[k, y0:y0 + hh, x0:x0 + ww, :] = rng.choice([0.0, 255.0])
        out[k] += rng.normal(0, 8, (height, width, channels))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def load_images(spec: SourceSpec, channels: int, where: str = "pipeline") -> np.ndarray:
    assert spec.path is not None
    try:
        arr = np.load(spec.path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PipelineConfigError(f"{where}: images '{spec.path}' are not a readable .npy: {e}"
                                  ) from None
    if arr.ndim == 3 and channels == 1:
        arr = arr[..., None]
    want = (spec.height, spec.width, channels)
    if arr.ndim != 4 or tuple(arr.shape[1:]) != want or arr.dtype != np.uint8:
        raise PipelineConfigError(
            f"{where}: images '{spec.path.name}' are {arr.dtype} {list(arr.shape)}; they must be "
            f"uint8 [n, {', '.join(map(str, want))}]")
    return np.ascontiguousarray(arr)


def images_for(p: Pipeline) -> np.ndarray:
    """The frames of an image source as (n, height * width, channels) uint8."""
    s = p.source
    if s.path is not None:
        imgs = load_images(s, p.channels, p.where())
    else:
        imgs = synthetic_images(s.images, s.height, s.width, p.channels, s.seed)
    return imgs.reshape(imgs.shape[0], s.height * s.width, p.channels)


def trace_for(p: Pipeline) -> np.ndarray:
    """What the timer interrupt delivers: samples × channels int16 (for an image source, the
    frame indices as a 1-channel trace)."""
    if p.source.kind == "images":
        idx = np.arange(p.source.samples) % p.source.images
        return idx.astype(np.int16).reshape(-1, 1)
    if p.source.kind == "file":
        return load_trace(p.source, p.channels, p.where())
    return synthetic_trace(p.source.samples, p.channels, p.rate_hz, p.input.frac,
                           p.source.seed, p.source.segments)
