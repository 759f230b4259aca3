"""numpy twins of the streaming front end: every preprocessing block, the stub classifier and
the post-processing, with the same integer semantics as the generated C (``templates/stream/``)
and the same constants (from :mod:`generator.frontend.pipeline`), computed independently in int64
numpy.

A twin is what a test compares the firmware with, byte for byte. Each block asserts that its
int64 intermediates stay inside the range the C code's accumulators hold (the generator proved
it from the input range; the assertion catches a twin or proof that disagrees).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from generator.frontend.pipeline import TYPE_RANGE, Pipeline, PostSpec, Stage

I64 = np.int64


def round_shift(v: np.ndarray, s: int) -> np.ndarray:
    """(v + 2**(s-1)) >> s (arithmetic shift: round half up); s <= 0 multiplies by 2**-s."""
    v = np.asarray(v, dtype=I64)
    if s > 0:
        return (v + I64(1 << (s - 1))) >> I64(s)
    return v * I64(1 << -s)


def saturate(v: np.ndarray, typ: str) -> np.ndarray:
    lo, hi = TYPE_RANGE[typ]
    return np.clip(np.asarray(v, dtype=I64), lo, hi)


def _fits(v: np.ndarray, bits: int, signed: bool = True, what: str = "") -> None:
    if v.size == 0:
        return
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    assert int(v.min()) >= lo and int(v.max()) <= hi, f"{what}: intermediate exceeds {bits} bits"


def isqrt_round(v: np.ndarray) -> np.ndarray:
    """Round-to-nearest integer square root of non-negative int64 values (exact)."""
    v = np.asarray(v, dtype=I64)
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(I64)
    r = np.where(r * r > v, r - 1, r)
    r = np.where((r + 1) * (r + 1) <= v, r + 1, r)
    return np.where(v - r * r > r, r + 1, r)


# ---- blocks --------------------------------------------------------------------------------


def _dc_remove(st: Stage, x: np.ndarray) -> np.ndarray:
    p = st.params
    s = x.sum(axis=0)
    _fits(s, 32, what=st.label)
    mean = round_shift(s * I64(p["recip"]), p["shift"])
    d = x - mean[None, :]
    return saturate(d, p["out_type"])


def _scale(st: Stage, x: np.ndarray) -> np.ndarray:
    p = st.params
    d = x - np.asarray(p["mean"], dtype=I64)[None, :]
    _fits(d, 32, what=st.label)
    prod = d * np.asarray(p["mult"], dtype=I64)[None, :]
    _fits(prod, 32, what=st.label)
    y = round_shift(prod, p["shift"])
    _fits(y, 32, what=st.label)
    return saturate(y, p["out_type"])


def _clip(st: Stage, x: np.ndarray) -> np.ndarray:
    return np.clip(x, st.params["min"], st.params["max"])


def _moving_average(st: Stage, x: np.ndarray) -> np.ndarray:
    p = st.params
    k = p["length"]
    padded = np.concatenate([np.repeat(x[:1], k - 1, axis=0), x], axis=0)
    cs = np.concatenate([np.zeros((1, x.shape[1]), I64), np.cumsum(padded, axis=0)], axis=0)
    sums = cs[k:] - cs[:-k]
    _fits(sums, 32, what=st.label)
    return saturate(round_shift(sums * I64(p["recip"]), p["shift"]), p["out_type"])


def _ema(st: Stage, x: np.ndarray) -> np.ndarray:
    a = I64(st.params["alpha_q15"])
    y = np.empty_like(x)
    prev = x[0].copy()
    y[0] = prev
    for t in range(1, x.shape[0]):
        d = (x[t] - prev) * a
        _fits(d, 32, what=st.label)
        prev = prev + round_shift(d, 15)
        y[t] = prev
    return saturate(y, st.params["out_type"])


def _median3(st: Stage, x: np.ndarray) -> np.ndarray:
    prev = np.concatenate([x[:1], x[:-1]], axis=0)
    nxt = np.concatenate([x[1:], x[-1:]], axis=0)
    return np.sort(np.stack([prev, x, nxt]), axis=0)[1]


def _window(st: Stage, x: np.ndarray) -> np.ndarray:
    w = np.asarray(st.params["table"], dtype=I64)[:, None]
    prod = x * w
    _fits(prod, 32, what=st.label)
    return saturate(round_shift(prod, 15), st.params["out_type"])


def _magnitude(st: Stage, x: np.ndarray) -> np.ndarray:
    sq = (x * x).sum(axis=1, keepdims=True)
    _fits(sq, 32, signed=False, what=st.label)
    return saturate(isqrt_round(sq), st.params["out_type"])


def _goertzel(st: Stage, x: np.ndarray) -> np.ndarray:
    p = st.params
    q = p["coef_frac"]
    coef = np.asarray(p["coefs"], dtype=I64)[:, None]          # (bins, 1)
    s1 = np.zeros((coef.shape[0], x.shape[1]), I64)
    s2 = np.zeros_like(s1)
    for n in range(x.shape[0]):
        s0 = x[n][None, :] + round_shift(coef * s1, q) - s2
        _fits(s0, 32, what=st.label)
        s2, s1 = s1, s0
    cs = round_shift(coef * s1, q)
    power = s1 * s1 + s2 * s2 - cs * s2
    return saturate(round_shift(power, p["shift"]), p["out_type"])


def _quantize(st: Stage, x: np.ndarray) -> np.ndarray:
    p = st.params
    y = saturate(round_shift(x * I64(p["mult"]), p["shift"]) + I64(p["zero_point"]), p["type"])
    return y


_TWINS = {
    "dc_remove": _dc_remove,
    "scale": _scale,
    "clip": _clip,
    "moving_average": _moving_average,
    "ema": _ema,
    "median3": _median3,
    "window": _window,
    "magnitude": _magnitude,
    "goertzel": _goertzel,
    "quantize": _quantize,
}


def run_stage(st: Stage, x: np.ndarray) -> np.ndarray:
    """One block on a (rows, channels) integer array; returns the (rows', channels') output as
    int64 holding values of the block's output type."""
    x = np.asarray(x, dtype=I64)
    assert x.shape == (st.fin.rows, st.fin.ch), (x.shape, st.fin)
    y = _TWINS[st.kind](st, x)
    assert y.shape == (st.fout.rows, st.fout.ch), (st.label, y.shape, st.fout)
    return y


def layout(st: Stage, y: np.ndarray) -> np.ndarray:
    """The quantize block's output as the flat tensor bytes (layout 'tc' or 'ct')."""
    arr = y if st.params["layout"] == "tc" else y.T
    return np.ascontiguousarray(arr).reshape(-1).astype(st.params["type"])


def run_pipeline(p: Pipeline, window: np.ndarray, *, upto: int | None = None) -> np.ndarray:
    """The pipeline on one window of int16 samples (window × channels). Returns the classifier
    input tensor (flat, int8/uint8), or with ``upto=i`` the int64 output of block i."""
    x = np.asarray(window, dtype=I64)
    assert x.shape == (p.window, p.channels), x.shape
    for st in p.stages:
        x = run_stage(st, x)
        if upto is not None and st.index == upto:
            return x
    return layout(p.stages[-1], x)


# ---- stub classifier -----------------------------------------------------------------------


def stub_weights(seed: int, classes: int, features: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (classes, features), dtype=np.int8)


def stub_scores(p: Pipeline, features: np.ndarray) -> np.ndarray:
    """scores[k] = sat8(round_shift(sum_i w[k, i] * f[i], score_shift))."""
    c = p.classifier
    w = stub_weights(c.seed, c.output.count, c.input.count).astype(I64)
    acc = w @ np.asarray(features, dtype=I64).reshape(-1)
    return saturate(round_shift(acc, c.score_shift), "int8").astype(np.int8)


# ---- post-processing -----------------------------------------------------------------------

NO_LABEL = -1


@dataclass
class PostResult:
    top: int
    accepted: int
    voted: int
    state: int
    changed: bool


@dataclass
class PostProcessor:
    """argmax → per-class threshold and top-2 margin (else the reject label -1) → k-of-n vote
    over the last n accepted labels → hysteresis (a new label must win ``hold`` windows in a
    row) and cooldown (no change within ``cooldown`` windows of the last one)."""

    spec: PostSpec
    history: list[int] = field(default_factory=list)
    state: int = NO_LABEL
    candidate: int = NO_LABEL
    run: int = 0
    since_change: int = 1 << 30

    def __post_init__(self) -> None:
        self.history = [NO_LABEL] * self.spec.vote_n

    def step(self, scores: np.ndarray) -> PostResult:
        s = [int(v) for v in np.asarray(scores).reshape(-1)]
        top = max(range(len(s)), key=lambda k: (s[k], -k))   # first index of the maximum
        second = max((s[k] for k in range(len(s)) if k != top), default=-(1 << 30))
        ok = s[top] >= self.spec.thresholds[top] and s[top] - second >= self.spec.min_margin
        accepted = top if ok else NO_LABEL
        self.history = self.history[1:] + [accepted]
        counts = [self.history.count(k) for k in range(len(s))]
        best = max(range(len(s)), key=lambda k: (counts[k], -k))
        voted = best if counts[best] >= self.spec.vote_k else NO_LABEL
        self.since_change += 1
        if voted != NO_LABEL and voted != self.state:
            self.run = self.run + 1 if voted == self.candidate else 1
            self.candidate = voted
        else:
            self.run = 0
            self.candidate = NO_LABEL
        changed = False
        if (self.candidate != NO_LABEL and self.run >= self.spec.hold
                and self.since_change > self.spec.cooldown):
            self.state = self.candidate
            self.since_change = 0
            self.run = 0
            self.candidate = NO_LABEL
            changed = True
        return PostResult(top, accepted, voted, self.state, changed)


def postprocess(spec: PostSpec, scores: list[np.ndarray]) -> list[PostResult]:
    pp = PostProcessor(spec)
    return [pp.step(s) for s in scores]
