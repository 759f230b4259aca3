"""Streaming apps: a timer interrupt replays a trace into an SPSC ring; the main loop windows it,
runs the generated fixed-point pipeline, a classifier and the post-processing.

Apps (``scons board=<b> app=<app> [pipeline=<name|file.toml>] [model=<m.tflite>]``):

* ``stream``   - the pipeline with a stub classifier (a fixed compute load of configurable
  instructions, so overload is a configuration choice); default ``pipelines/stream.toml``;
* ``har``      - accelerometer windows into the activity-recognition model: ``model=<path>``
  with ``pipelines/har.toml``; else ``ign_wl_24`` from the zoo (../shared/models/zoo or
  ``$SWEETSPOT_ZOO``) with ``pipelines/har.toml``; else the project's own model
  ``models/har_int8.tflite`` with ``pipelines/har_project.toml`` (held-out BasicMotions
  recordings as the trace). ``pipeline=`` skips the choice. The manifest's ``model_choice`` says
  which model was used and why;
* ``vww``      - frames compiled into the image, delivered as frame indices at the frame rate,
  into the 96x96 person-detection MobileNet; default ``pipelines/vww.toml``;
* ``pipetest`` - no timer: every block's output for a set of windows (trace windows plus
  saturating extremes), and a scripted ring session (wrap-around of slots and counters), for
  byte-for-byte comparison with the numpy twins; runs on the host board too.

The generator sizes the ring (window + ceil(worst-case window time / sample period)) and, on a
QEMU twin, predicts the run: under ``-icount shift=N`` one instruction is 2**N ns of virtual
time, so the sample period is a known number of instructions and the main loop, which starts a
window only at a sample tick, is busy for a known number of ticks per window. The prediction
(windows, late windows, dropped samples, maximum occupancy, every window's end index) is in the
manifest; it is exact when the stub's load plus the bound on everything else stays inside one
sample period boundary (``prediction.exact``).
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator import PROJECT_ROOT
from generator.boards import Board
from generator.errors import AppError
from generator.firmware.apps import register
from generator.frontend.pipeline import (
    TYPE_RANGE,
    Pipeline,
    PipelineConfigError,
    Stage,
    images_for,
    load_pipeline,
    min_capacity,
    trace_for,
)
from generator.frontend.preprocess import postprocess, run_pipeline, stub_scores, stub_weights

# ---- sample timers -------------------------------------------------------------------------


@dataclass(frozen=True)
class TimerDriver:
    kind: str          # "cmsdk" | "nrf51" | "stm32_basic"
    base: int
    irq: int
    clock_hz: int
    verified: str
    name: str = "TIMER0"
    rcc_reg: int = 0
    rcc_bit: int = 0


# Board data for the sample source. The twins' entries were checked against QEMU 7.2's source
# (hw/arm/mps2.c: CMSDK TIMER0 at 0x40000000 on IRQ 8, 25 MHz; hw/arm/armsse.c: SSE-200
# TIMER0 on IRQ 3, clocked by the AN505's 20 MHz SYSCLK, secure alias 0x50000000;
# hw/arm/nrf51_soc.c: TIMER0 at 0x40008000 on IRQ 8, 16 MHz) and measured on the twins. The
# Nucleo entries (TIM6 and its RCC enable bit per reference manual) are static-checked only.
TIMERS: dict[str, TimerDriver] = {
    "qemu_m4": TimerDriver("cmsdk", 0x40000000, 8, 25_000_000, "QEMU 7.2 mps2-an386, measured"),
    "qemu_m7": TimerDriver("cmsdk", 0x40000000, 8, 25_000_000, "QEMU 7.2 mps2-an500, measured"),
    "qemu_m33": TimerDriver("cmsdk", 0x50000000, 3, 20_000_000,
                            "QEMU 7.2 mps2-an505 (SSE-200 TIMER0, secure alias), measured"),
    "qemu_m0": TimerDriver("nrf51", 0x40008000, 8, 16_000_000, "QEMU 7.2 microbit, measured"),
    "nucleo_u575": TimerDriver("stm32_basic", 0x40001000, 49, 160_000_000,
                               "static checks only (RM0456: TIM6, RCC_APB1ENR1 bit 4)",
                               "TIM6", 0x46020C9C, 4),
    "nucleo_l476": TimerDriver("stm32_basic", 0x40001000, 54, 80_000_000,
                               "static checks only (RM0351: TIM6, RCC_APB1ENR1 bit 4)",
                               "TIM6", 0x40021058, 4),
    "nucleo_h743": TimerDriver("stm32_basic", 0x40001000, 54, 240_000_000,
                               "static checks only (RM0433: TIM6 on APB1 x2, RCC_APB1LENR bit 4)",
                               "TIM6", 0x580244E8, 4),
    "nucleo_g071": TimerDriver("stm32_basic", 0x40001000, 17, 64_000_000,
                               "static checks only (RM0444: TIM6, RCC_APBENR1 bit 4)",
                               "TIM6", 0x4002103C, 4),
}


@dataclass(frozen=True)
class TimerPlan:
    driver: TimerDriver
    period_ticks: int
    period_s: float
    reload: int = 0
    prescaler: int = 0
    psc: int = 0
    arr: int = 0

    @property
    def rate_hz(self) -> float:
        return 1.0 / self.period_s


def timer_plan(board: Board, rate_hz: float) -> TimerPlan:
    drv = TIMERS.get(board.name)
    if drv is None:
        raise AppError(f"board '{board.name}' has no sample timer for the streaming apps; "
                       f"boards with one: {', '.join(sorted(TIMERS))}")
    if drv.kind == "cmsdk":
        ticks = int(round(drv.clock_hz / rate_hz))
        if not 2 <= ticks <= 2**32:
            raise AppError(f"{rate_hz:g} Hz is out of reach of the {drv.clock_hz} Hz timer")
        plan = TimerPlan(drv, ticks, ticks / drv.clock_hz, reload=ticks - 1)
    elif drv.kind == "nrf51":
        presc = 0
        while drv.clock_hz / (1 << presc) / rate_hz >= 2**32 and presc < 9:
            presc += 1
        ticks = int(round(drv.clock_hz / (1 << presc) / rate_hz))
        if ticks < 2:
            raise AppError(f"{rate_hz:g} Hz is out of reach of the 16 MHz nRF51 timer")
        plan = TimerPlan(drv, ticks, ticks * (1 << presc) / drv.clock_hz, prescaler=presc)
    else:
        total = int(round(drv.clock_hz / rate_hz))
        psc = max(0, math.ceil(total / 65536) - 1)
        if psc > 65535:
            raise AppError(f"{rate_hz:g} Hz is too slow for the 16-bit {drv.name}")
        arr = int(round(total / (psc + 1))) - 1
        plan = TimerPlan(drv, (psc + 1) * (arr + 1), (psc + 1) * (arr + 1) / drv.clock_hz,
                         psc=psc, arr=arr)
    if abs(plan.rate_hz - rate_hz) / rate_hz > 0.01:
        raise AppError(f"the sample timer on {board.name} cannot make {rate_hz:g} Hz "
                       f"(nearest {plan.rate_hz:.4g} Hz); choose another sample_rate_hz")
    return plan


def period_instructions(board: Board, plan: TimerPlan) -> float | None:
    """The sample period in instructions on a QEMU twin under -icount (None elsewhere)."""
    if board.kind != "qemu":
        return None
    ns_per_instr = 2 ** int(board.qemu["icount_shift"])
    period_ns = plan.period_s * 1e9
    if plan.driver.kind == "nrf51":
        # QEMU's nRF51 timer restarts its count when the compare event is handled, at the next
        # instruction boundary: every period rounds up to whole instructions.
        return float(math.ceil(period_ns / ns_per_instr - 1e-9))
    return period_ns / ns_per_instr


# ---- cost bounds (instructions) ------------------------------------------------------------
# Upper bounds for everything the main loop does per window besides the classifier's own load,
# per core class (ARMv7-M/ARMv8-M, ARMv6-M). The per-element block costs are 1.25 x the largest
# measured on the four twins (pipetest, CYC block<i>, over pipelines/stream.toml and
# pipelines/test_blocks_*.toml); hil_tests/test_stream.py checks measured <= bound on every twin,
# so a slower kernel shows up there and these numbers get updated.
_V6M = ("cortex-m0", "cortex-m0plus")
_BLOCK_COST = {  # per element of the larger of input/output (Goertzel: per input x bin)
    "clip": (14, 14),
    "dc_remove": (28, 35),
    "ema": (21, 26),
    "goertzel": (19, 84),
    "magnitude": (48, 52),
    "median3": (35, 50),
    "moving_average": (39, 122),
    "quantize": (36, 74),
    "scale": (25, 28),
    "window": (20, 28),
}
_PER_BLOCK = (150, 200)     # call, loop set-up
_FIXED = (1200, 2400)       # poll, take, counter reads, post-processing base, log
_PER_SAMPLE_COPY = (3, 6)   # window copy out of the ring + int16 -> int32, per value
_PER_FEATURE = (12, 16)     # CRC-32 of the features
_PER_MAC = (7, 10)          # stub scores
_ISR = (150, 250)           # one sample interrupt


def overhead_bound(p: Pipeline, board: Board, ticks_busy: int = 1) -> int:
    """Instructions per window spent outside the classifier's load (upper bound)."""
    j = 1 if board.core in _V6M else 0
    total = _FIXED[j] + _PER_SAMPLE_COPY[j] * p.input.count
    for st in p.stages:
        n = max(st.fin.count, st.fout.count)
        if st.kind == "goertzel":
            n = st.fin.count * len(st.params["bins"])
        total += _BLOCK_COST[st.kind][j] * n + _PER_BLOCK[j]
    total += _PER_FEATURE[j] * p.features
    if p.classifier.kind == "stub":
        total += _PER_MAC[j] * p.features * p.classifier.output.count
    total += 40 * p.post.classes + 20 * p.post.vote_n
    total += _ISR[j] * ticks_busy
    return int(total)


# A model's time per window, when its [classifier] worst_case_instructions is not configured:
# an estimate from its MACs and layer count with the project's kernels (measured on the twins:
# ign_wl_24 7 instructions/MAC on the DSP cores, 18 on the M0; mobilenet_v1_0.25_96 3.8 on
# the M4), with margin. hil_tests/test_stream.py checks measured <= estimate.
_MODEL_INSTR_PER_MAC = (5, 15)
_MODEL_INSTR_PER_LAYER = 15000


# ---- ring sizing and prediction ------------------------------------------------------------


@dataclass(frozen=True)
class RingPlan:
    capacity: int
    minimum: int            # window + ceil(worst-case / period)
    explicit: bool
    worst_case_instr: int | None
    worst_case_s: float
    period_s: float
    text: str


def ring_plan(p: Pipeline, board: Board, plan: TimerPlan, worst_case_instr: int) -> RingPlan:
    if board.kind == "qemu":
        seconds = worst_case_instr * (2 ** int(board.qemu["icount_shift"])) * 1e-9
    else:
        seconds = worst_case_instr / board.clock_hz  # about one cycle per instruction
    w = p.ring_window
    minimum = min_capacity(w, seconds, plan.period_s)
    ticks = minimum - w
    explicit = p.ring.capacity is not None
    cap = p.ring.capacity if explicit else minimum
    assert cap is not None
    unit = "frame" if p.frames else "sample"
    text = (f"window {w} + ceil(worst-case window time {seconds * 1e3:.3f} ms / {unit} "
            f"period {plan.period_s * 1e3:.3f} ms) = {w} + {ticks} = {minimum}")
    if explicit:
        text = (f"{cap} as configured (the no-drop minimum is {text}"
                + ("; below it, overflow drops samples)" if cap < minimum else ")"))
    return RingPlan(cap, minimum, explicit, worst_case_instr, seconds, plan.period_s, text)


@dataclass
class RingModel:
    """The ring's counters exactly as ss_ring.c keeps them (indices relative to the origin)."""

    capacity: int
    window: int
    hop: int
    drop_oldest: bool
    head: int = 0
    tail: int = 0
    dropped: int = 0
    max_occupancy: int = 0
    last_window: int = 0
    has_window: bool = False
    windows: int = 0
    late_windows: int = 0

    def push(self) -> bool:
        occ = self.head - self.tail
        if occ >= self.capacity:
            self.dropped += 1
            if not self.drop_oldest:
                return False
            occ = self.capacity - 1
        self.head += 1
        self.max_occupancy = max(self.max_occupancy, occ + 1)
        return True

    def take(self) -> int | None:
        if self.head < self.window:
            return None
        since = self.head - self.last_window
        if self.has_window and since < self.hop:
            return None
        if self.has_window and since > self.hop:
            self.late_windows += 1
        self.tail = self.head - self.window
        self.last_window = self.head
        self.has_window = True
        self.windows += 1
        return self.head

    def release(self) -> None:
        self.tail = self.last_window - self.window + self.hop


def simulate_stream(samples: int, capacity: int, window: int, hop: int, drop_oldest: bool,
                    ticks_busy: int) -> dict[str, Any]:
    """The main loop at sample-tick granularity: a window taken at tick j keeps the consumer
    busy until just before tick j + ticks_busy, when it releases the window and looks again."""
    ring = RingModel(capacity, window, hop, drop_oldest)
    ends: list[int] = []
    free_at = 0
    release_at: int | None = None
    for j in range(1, samples + 1):
        if release_at is not None and j >= release_at:
            ring.release()
            release_at = None
        ring.push()
        if j >= free_at:
            end = ring.take()
            if end is not None:
                ends.append(end)
                free_at = j + ticks_busy
                release_at = j + ticks_busy
    return {"windows": ring.windows, "late_windows": ring.late_windows,
            "dropped": ring.dropped, "max_occupancy": ring.max_occupancy,
            "window_end": ends}


def predict(p: Pipeline, board: Board, plan: TimerPlan, capacity: int, busy_lo: int,
            busy_hi: int, known_load: bool) -> dict[str, Any]:
    """The run the generator expects. The main loop starts a window right after a sample tick
    and is busy for busy_lo..busy_hi instructions (cycles on silicon); it looks again at the
    first tick after that. ``exact`` when the whole range falls between the same two multiples
    of the sample period on a QEMU twin (then the counts are exact, not estimates)."""
    per = period_instructions(board, plan)
    out: dict[str, Any] = {"period_instructions": per, "busy_instructions": [busy_lo, busy_hi]}
    if per is None:
        ticks = int(busy_hi // (plan.period_s * board.clock_hz)) + 1
        out.update(exact=False, reason="only a QEMU twin under -icount has an exact time base")
    else:
        slack = 2.0  # a timer interrupt lands within an instruction or two of its ideal time
        t_lo = math.floor((busy_lo - slack * (busy_lo / per + 1)) / per) + 1
        ticks = math.floor((busy_hi + slack * (busy_hi / per + 1)) / per) + 1
        if not known_load:
            out.update(exact=False, reason="the classifier's time per window is an estimate")
        elif t_lo == ticks:
            out.update(exact=True, reason=(
                f"each window keeps the main loop busy for {busy_lo}..{busy_hi} instructions, "
                f"between {ticks - 1} and {ticks} sample periods of {per:.2f}: it looks again "
                f"{ticks} sample tick(s) after it started"))
        else:
            out.update(exact=False, reason=(
                f"the window time {busy_lo}..{busy_hi} instructions straddles {t_lo} sample "
                f"period(s) ({t_lo * per:.0f} instructions); choose a stub load that keeps "
                f"load..load + {busy_hi - busy_lo} between two multiples of {per:.2f}"))
    out["ticks_per_window"] = ticks
    out.update(simulate_stream(p.source.samples, capacity, p.ring_window, p.ring_hop,
                               p.ring.overflow == "drop_oldest", ticks))
    return out


# ---- template context ----------------------------------------------------------------------


def c_int(v: int) -> str:
    return "(-2147483647 - 1)" if v == -(2**31) else str(int(v))


def c_lines(values: list[int], per_line: int = 16, fmt: str = "{}") -> list[str]:
    vals = [fmt.format(c_int(v)) if fmt == "{}" else fmt.format(v) for v in values]
    return [", ".join(vals[i:i + per_line]) + "," for i in range(0, len(vals), per_line)] or ["0,"]


def _stage_context(st: Stage, src: str, dst: str, last: bool) -> dict[str, Any]:
    p = st.params
    i = st.index
    fi, fo = st.fin, st.fout
    arrays: list[dict[str, Any]] = []
    lo, hi = TYPE_RANGE[p.get("out_type", p.get("type", fo.type))]

    def arr(name: str, ctype: str, values: list[int]) -> str:
        cname = f"ss_b{i}_{name}"
        arrays.append({"name": cname, "ctype": ctype, "count": len(values),
                       "lines": c_lines(values)})
        return cname

    rows, ch = fi.rows, fi.ch
    k = st.kind
    if k == "dc_remove":
        call = (f"ss_dsp_dc_remove({src}, {dst}, {rows}u, {ch}u, {p['recip']}, {p['shift']}u, "
                f"{c_int(lo)}, {c_int(hi)})")
    elif k == "scale":
        mean = arr("mean", "int32_t", p["mean"])
        mult = arr("mult", "int32_t", p["mult"])
        call = (f"ss_dsp_scale({src}, {dst}, {rows}u, {ch}u, {mean}, {mult}, {p['shift']}, "
                f"{c_int(lo)}, {c_int(hi)})")
    elif k == "clip":
        call = f"ss_dsp_clip({src}, {dst}, {fi.count}u, {c_int(p['min'])}, {c_int(p['max'])})"
    elif k == "moving_average":
        call = (f"ss_dsp_moving_average({src}, {dst}, {rows}u, {ch}u, {p['length']}u, "
                f"{p['recip']}, {p['shift']}u, {c_int(lo)}, {c_int(hi)})")
    elif k == "ema":
        call = (f"ss_dsp_ema({src}, {dst}, {rows}u, {ch}u, {p['alpha_q15']}, {c_int(lo)}, "
                f"{c_int(hi)})")
    elif k == "median3":
        call = f"ss_dsp_median3({src}, {dst}, {rows}u, {ch}u)"
    elif k == "window":
        w = arr("w", "int16_t", p["table"])
        call = f"ss_dsp_window({src}, {dst}, {rows}u, {ch}u, {w}, {c_int(lo)}, {c_int(hi)})"
    elif k == "magnitude":
        call = f"ss_dsp_magnitude({src}, {dst}, {rows}u, {ch}u, {c_int(lo)}, {c_int(hi)})"
    elif k == "goertzel":
        coef = arr("coef", "int32_t", p["coefs"])
        call = (f"ss_dsp_goertzel({src}, {dst}, {rows}u, {ch}u, {len(p['bins'])}u, {coef}, "
                f"{p['coef_frac']}u, {p['shift']}u, {c_int(lo)}, {c_int(hi)})")
    elif k == "quantize":
        call = (f"ss_dsp_quantize({src}, out, {rows}u, {ch}u, {p['mult']}, {p['shift']}u, "
                f"{p['zero_point']}, {1 if p['layout'] == 'ct' else 0}u, {lo}, {hi})")
    else:  # pragma: no cover - the loader rejects unknown blocks
        raise AppError(f"no C for block kind {k}")
    return {"index": i, "kind": k, "fin": fi.describe(), "fout": fo.describe(),
            "arrays": arrays, "call": call, "dst": dst, "count": fo.count, "last": last}


def pipeline_context(p: Pipeline) -> dict[str, Any]:
    bufs = ("ss_pipe_buf0", "ss_pipe_buf1")
    stages = [
        _stage_context(st, bufs[n % 2], bufs[(n + 1) % 2], n == len(p.stages) - 1)
        for n, st in enumerate(p.stages)
    ]
    return {"name": p.name, "sha256": p.sha256, "window": p.window, "hop": p.hop,
            "channels": p.channels, "features": p.features, "out_type": p.output.type,
            "in_type": p.input.type,
            "in_ctype": "uint8_t" if p.input.type == "uint8" else "int16_t",
            "buffer_words": p.buffer_words, "stages": stages}


def post_context(p: Pipeline) -> dict[str, Any]:
    post = p.post
    return {
        "classes": post.classes, "vote_k": post.vote_k, "vote_n": post.vote_n,
        "hold": post.hold, "cooldown": post.cooldown, "min_margin": post.min_margin,
        "thresholds": list(post.thresholds),
        "threshold_text": ", ".join(f"{name} >= {t}" for name, t in
                                    zip(post.labels, post.thresholds)),
    }


def frames_context(p: Pipeline) -> dict[str, Any] | None:
    if not p.frames:
        return None
    imgs = images_for(p)
    s = p.source
    text = (f"{len(imgs)} synthetic test scenes, seed {s.seed}" if s.path is None
            else f"file {s.path.name}")
    return {"count": len(imgs), "height": s.height, "width": s.width,
            "bytes": int(imgs[0].size), "text": text,
            "images": [c_lines([int(v) for v in img.reshape(-1)], 24) for img in imgs]}


def _trace_lines(trace: np.ndarray) -> list[str]:
    return c_lines([int(v) for v in trace.reshape(-1)], 12)


def stub_context(p: Pipeline, board: Board) -> dict[str, Any]:
    c = p.classifier
    w = stub_weights(c.seed, c.output.count, c.input.count)
    return {
        "text": (f"stub, {c.output.count} classes from {c.input.count} features, "
                 f"{c.instructions} instructions of load"),
        "features": c.input.count, "classes": c.output.count, "seed": c.seed,
        "score_shift": c.score_shift, "instructions": c.instructions,
        "iterations": c.instructions // 2, "weight_lines": c_lines([int(v) for v in
                                                                   w.reshape(-1)]),
        "feature_ctype": "int8_t" if c.input.dtype == "int8" else "uint8_t",
        # ARMv6-M inline asm is in divided syntax, where the 16-bit SUB sets the flags
        "loop_sub": "sub %0, #1" if board.core in _V6M else "subs %0, %0, #1",
    }


# ---- apps ----------------------------------------------------------------------------------


def _opt_pipeline(options: dict[str, Any], default: str) -> str:
    return str(options.get("pipeline", default))


class _PipelineCache:
    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], Pipeline] = {}

    def get(self, name: str, model: str | None) -> Pipeline:
        from generator.frontend.pipeline import find_pipeline

        path = find_pipeline(name)
        key = (str(path), path.stat().st_mtime_ns if path.is_file() else 0, model)
        if key not in self._cache:
            self._cache = {key: load_pipeline(path, model=model)}
        return self._cache[key]


class StreamApp:
    name = "stream"
    description = "timer-driven sample stream -> ring -> fixed-point pipeline -> stub classifier"
    needs_model = False
    default_pipeline = "stream"
    classifier_kind = "stub"

    def __init__(self) -> None:
        self._pipes = _PipelineCache()

    # -- helpers ---------------------------------------------------------------------------------

    def pipeline(self, options: dict[str, Any]) -> Pipeline:
        model = options.get("model")
        p = self._pipes.get(_opt_pipeline(options, self.default_pipeline),
                            str(model) if model else None)
        if p.classifier.kind != self.classifier_kind:
            raise AppError(f"app '{self.name}' runs a {self.classifier_kind} classifier but "
                           f"{p.where()} has [classifier] kind = \"{p.classifier.kind}\"; use "
                           f"app={'har' if p.classifier.kind == 'model' else 'stream'}")
        return p

    def _model_ctx(self, board: Board, p: Pipeline, options: dict[str, Any]
                   ) -> tuple[dict[str, Any], list[tuple[str, str]], int]:
        return {}, [], p.classifier.instructions

    def _plan(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        if board.is_host:
            raise AppError(f"app '{self.name}' needs a sample timer interrupt; run it on a QEMU "
                           "twin or a Nucleo board (app=pipetest runs the pipeline on the host)")
        p = self.pipeline(options)
        tplan = timer_plan(board, p.rate_hz)
        model_ctx, model_templates, load = self._model_ctx(board, p, options)
        per = period_instructions(board, tplan)
        bound = overhead_bound(p, board, 1)
        # ticks the window keeps the loop busy: recompute the ISR share with that many ticks
        est = load + bound
        ticks = 1 + int(est // per) if per else 1 + int(est / (tplan.period_s * board.clock_hz))
        bound = overhead_bound(p, board, ticks)
        worst = load + bound
        rplan = ring_plan(p, board, tplan, worst)
        stub = self.classifier_kind == "stub"
        pred = predict(p, board, tplan, rplan.capacity, load if stub else worst, worst, stub)
        pred["overhead_bound_instructions"] = bound
        return {"pipe": p, "timer": tplan, "ring": rplan, "prediction": pred,
                "model_ctx": model_ctx, "model_templates": model_templates, "load": load}

    # -- App protocol ----------------------------------------------------------------------------

    def context(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        pl = self._plan(board, options)
        p: Pipeline = pl["pipe"]
        tp: TimerPlan = pl["timer"]
        rp: RingPlan = pl["ring"]
        drv = tp.driver
        trace = trace_for(p)
        max_windows = (p.source.samples - p.ring_window) // p.ring_hop + 1
        ctx: dict[str, Any] = {
            "pipe": pipeline_context(p),
            "post": post_context(p),
            "ring": {"capacity": rp.capacity, "capacity_text": rp.text,
                     "channels": p.ring_channels, "window": p.ring_window, "hop": p.ring_hop,
                     "overflow": p.ring.overflow, "placement": p.ring.placement,
                     "index_origin": p.ring.index_origin},
            "source": {
                "samples": p.source.samples,
                "text": f"{drv.name} at {tp.rate_hz:.6g} Hz ({drv.kind} timer)",
                "rate_text": f"{tp.rate_hz:.6g} Hz",
                "trace_text": (f"synthetic accelerometer, seed {p.source.seed}, segments "
                               f"{', '.join(p.source.segments)}" if p.source.kind == "synthetic"
                               else f"file {p.source.path.name if p.source.path else ''}"),
                "lines": _trace_lines(trace),
            },
            "timer": {
                "kind": drv.kind, "base": drv.base, "irq": drv.irq, "clock_hz": drv.clock_hz,
                "name": drv.name, "verified": drv.verified, "period_ticks": tp.period_ticks,
                "reload": tp.reload, "prescaler": tp.prescaler, "psc": tp.psc, "arr": tp.arr,
                "rcc_reg": drv.rcc_reg, "rcc_bit": drv.rcc_bit,
                "text": f"{drv.name} ({drv.kind}) at 0x{drv.base:08X}, IRQ {drv.irq}",
            },
            "frames": frames_context(p),
            "log_windows": max(1, max_windows),
            "idle_code": ('__asm volatile("wfi")' if board.kind == "nucleo"
                          else "do { } while (0)"),
        }
        if self.classifier_kind == "stub":
            ctx["clf"] = stub_context(p, board)
        ctx.update(pl["model_ctx"])
        return ctx

    def templates(self, board: Board, options: dict[str, Any]) -> list[tuple[str, str]]:
        files = [
            ("stream/ss_dsp.h.j2", "ss_dsp.h"),
            ("stream/ss_pipeline.h.j2", "ss_pipeline.h"),
            ("stream/ss_pipeline.c.j2", "ss_pipeline.c"),
            ("stream/ss_ring.h.j2", "ss_ring.h"), ("stream/ss_ring.c.j2", "ss_ring.c"),
            ("stream/ss_post.h.j2", "ss_post.h"), ("stream/ss_post.c.j2", "ss_post.c"),
            ("stream/ss_source.h.j2", "ss_source.h"), ("stream/ss_source.c.j2", "ss_source.c"),
            ("stream/ss_trace.c.j2", "ss_trace.c"),
            ("common/ss_crc32.h.j2", "ss_crc32.h"), ("common/ss_crc32.c.j2", "ss_crc32.c"),
            ("stream/ss_classifier.h.j2", "ss_classifier.h"),
            ("apps/stream/main.c.j2", "main.c"),
        ]
        if self.pipeline(options).frames:
            files.append(("stream/ss_images.c.j2", "ss_images.c"))
        if self.classifier_kind == "stub":
            files.append(("stream/ss_stub.c.j2", "ss_stub.c"))
        else:
            files.append(("stream/ss_model_glue.c.j2", "ss_model_glue.c"))
            files += self._plan(board, options)["model_templates"]
        return files

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        return {}

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        pl = self._plan(board, options)
        p: Pipeline = pl["pipe"]
        tp: TimerPlan = pl["timer"]
        rp: RingPlan = pl["ring"]
        return {
            "pipeline": {"name": p.name, "path": str(p.path) if p.path else None,
                         "sha256": p.sha256, "window": p.window, "hop": p.hop,
                         "channels": p.channels, "features": p.features,
                         "blocks": [f"{s.kind}: {s.fin.describe()} -> {s.fout.describe()}"
                                    for s in p.stages]},
            "sample_rate_hz": tp.rate_hz,
            "sample_period_s": tp.period_s,
            "timer": {"name": tp.driver.name, "kind": tp.driver.kind, "irq": tp.driver.irq,
                      "period_ticks": tp.period_ticks, "verified": tp.driver.verified},
            "ring": {"capacity": rp.capacity, "minimum": rp.minimum, "explicit": rp.explicit,
                     "worst_case_instructions": rp.worst_case_instr,
                     "worst_case_s": rp.worst_case_s, "text": rp.text,
                     "overflow": p.ring.overflow, "placement": p.ring.placement,
                     "index_origin": p.ring.index_origin},
            "classifier": {"kind": p.classifier.kind, "load_instructions": pl["load"],
                           "classes": p.post.classes, "labels": list(p.post.labels),
                           "model": (None if p.classifier.model is None else
                                     {"path": str(p.classifier.model.path),
                                      "sha256": p.classifier.model.sha256})},
            "model_path": str(options["model"]) if options.get("model") else None,
            "samples": p.source.samples,
            "log_windows": ctx["log_windows"],
            "prediction": pl["prediction"],
            "reports": {
                "metrics": ["samples", "windows", "late_windows", "dropped", "max_occupancy",
                            "torn", "decisions", "logged"],
                "cycles": ["preprocess_median", "preprocess_max", "infer_median", "infer_max",
                           "post_median", "post_max", "window_max", "window_min"],
                "vectors": ["window_end", "feature_crc", "scores", "labels", "decision_log",
                            "ticks_preprocess", "ticks_infer", "ticks_post"],
            },
        }

    def check(self, info: dict[str, Any], outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """Recompute every logged window with the numpy twins (pipeline, classifier, post-
        processing) and compare; the run's counters are compared by the caller."""
        opts: dict[str, Any] = {"pipeline": info["pipeline"]["path"]}
        if info.get("model_path"):
            opts["model"] = info["model_path"]
        return check_stream(self.pipeline(opts), info, outputs, self.twin_scores)

    def twin_scores(self, p: Pipeline, features: np.ndarray) -> np.ndarray:
        return stub_scores(p, features)


def accepted_indices(p: Pipeline, ticks_busy: int, capacity: int) -> list[int]:
    """Trace index of every sample the ring accepted, in order (all of them unless the policy
    is drop_newest, then replayed with the ring model)."""
    if p.ring.overflow == "drop_oldest":
        return list(range(p.source.samples))
    ring = RingModel(capacity, p.ring_window, p.ring_hop, False)
    accepted: list[int] = []
    free_at, release_at = 0, None
    for j in range(1, p.source.samples + 1):
        if release_at is not None and j >= release_at:
            ring.release()
            release_at = None
        if ring.push():
            accepted.append(j - 1)
        if j >= free_at and ring.take() is not None:
            free_at = release_at = j + ticks_busy
    return accepted


def window_at(p: Pipeline, trace: np.ndarray, accepted: list[int], end: int) -> np.ndarray:
    idx = accepted[end - p.ring_window:end]
    if p.frames:
        return images_for(p)[int(trace[idx[-1], 0])]
    return trace[idx]


def check_stream(p: Pipeline, info: dict[str, Any], outputs: dict[str, np.ndarray],
                 scorer: Any) -> dict[str, Any]:
    ends = [int(v) for v in outputs.get("window_end", np.zeros(0, np.uint32))]
    crcs = [int(v) for v in outputs.get("feature_crc", np.zeros(0, np.uint32))]
    k = p.post.classes
    scores = np.asarray(outputs.get("scores", np.zeros(0, np.int8))).reshape(-1, k)
    labels = np.asarray(outputs.get("labels", np.zeros(0, np.int8))).reshape(-1, 4)
    trace = trace_for(p)
    # with drop_newest a window is the latest accepted samples: which ones were accepted
    # follows from the predicted schedule (a run that deviates from it fails here too)
    pred = info.get("prediction", {})
    accepted = accepted_indices(p, int(pred.get("ticks_per_window", 1)),
                                int(info.get("ring", {}).get("capacity", p.ring_window)))
    feat_bad = score_bad = 0
    want_scores = []
    for i, e in enumerate(ends):
        feats = run_pipeline(p, window_at(p, trace, accepted, e))
        if zlib.crc32(feats.tobytes()) != crcs[i]:
            feat_bad += 1
        s = scorer(p, feats)
        want_scores.append(s)
        if i < len(scores) and not np.array_equal(s, scores[i]):
            score_bad += 1
    post = postprocess(p.post, [scores[i] for i in range(len(scores))])
    want_labels = np.array([[r.top, r.accepted, r.voted, r.state] for r in post],
                           dtype=np.int8).reshape(-1, 4)
    label_bad = int(np.count_nonzero(np.any(want_labels != labels, axis=1))) if len(
        labels) == len(want_labels) else max(len(labels), len(want_labels))
    return {
        "features": {"ok": feat_bad == 0 and len(crcs) == len(ends), "windows": len(ends),
                     "mismatches": feat_bad},
        "scores": {"ok": score_bad == 0 and len(scores) == len(ends), "mismatches": score_bad},
        "post": {"ok": label_bad == 0, "mismatches": label_bad},
    }


register(StreamApp())


# ---- har: the pipeline into a compiled model ----------------------------------------------


ZOO_ENV = "SWEETSPOT_ZOO"
HAR_ZOO_MODEL = "ign_wl_24_int8.tflite"
HAR_PROJECT_PIPELINE = "har_project"


def zoo_dir() -> Path:
    """The model zoo: ``$SWEETSPOT_ZOO`` when set (an empty directory simulates its absence),
    else ``../shared/models/zoo`` beside the repository."""
    env = os.environ.get(ZOO_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return PROJECT_ROOT.parent / "shared" / "models" / "zoo"


@dataclass(frozen=True)
class ModelChoice:
    """Which pipeline and model a model app builds, and why."""

    pipeline: str             # pipeline name or .toml path
    model: str | None         # model override, None: the pipeline's own [classifier] model
    source: str               # "option" (model=), "pipeline" (pipeline=), "zoo", "project"
    reason: str

    def options(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, **({"model": self.model} if self.model else {})}


class HarApp(StreamApp):
    """``har``: accelerometer windows into the activity-recognition model. The model part of
    the tree (weights, per-layer tasks, kernels) comes from the infer app's emitter; the
    pipeline writes the int8 tensor after the model's leading QUANTIZE and reads the int8
    scores before its trailing DEQUANTIZE, so those two float operators are skipped."""

    name = "har"
    description = "accelerometer stream -> pipeline -> activity-recognition model -> decisions"
    default_pipeline = "har"
    classifier_kind = "model"
    # without pipeline= and model=: the zoo model with default_pipeline if the zoo has it,
    # else this pipeline (the project's own model); None: always default_pipeline
    zoo_model: str | None = HAR_ZOO_MODEL
    fallback_pipeline: str | None = HAR_PROJECT_PIPELINE

    def __init__(self) -> None:
        super().__init__()
        self._infer: Any = None

    def _infer_app(self) -> Any:
        if self._infer is None:
            from generator.compiler.emit import InferApp

            self._infer = InferApp()
        return self._infer

    def model_choice(self, options: dict[str, Any]) -> ModelChoice:
        model = str(options["model"]) if options.get("model") else None
        if "pipeline" in options:
            return ModelChoice(str(options["pipeline"]), model, "option" if model else "pipeline",
                               "model= was given" if model else
                               "pipeline= was given: its [classifier] model")
        if model:
            return ModelChoice(self.default_pipeline, model, "option", "model= was given")
        if self.zoo_model is None or self.fallback_pipeline is None:
            return ModelChoice(self.default_pipeline, None, "pipeline",
                               f"the default pipeline's model (pipelines/"
                               f"{self.default_pipeline}.toml)")
        zoo = zoo_dir() / self.zoo_model
        if zoo.is_file():
            return ModelChoice(self.default_pipeline, str(zoo), "zoo",
                               f"{self.zoo_model} found in the zoo ({zoo.parent})")
        return ModelChoice(self.fallback_pipeline, None, "project",
                           f"{self.zoo_model} is not in the zoo ({zoo.parent}; set ${ZOO_ENV} "
                           "or pass model=<path> to use it): the project's own model, "
                           f"pipelines/{self.fallback_pipeline}.toml")

    def pipeline(self, options: dict[str, Any]) -> Pipeline:
        choice = self.model_choice(options)
        try:
            return super().pipeline(choice.options())
        except PipelineConfigError as e:
            if ("does not exist" in str(e) and "model file" in str(e)
                    and self.zoo_model is not None):
                raise PipelineConfigError(
                    f"{e}. The har demo uses ign_wl_24 from ../shared/models/zoo (or "
                    f"${ZOO_ENV}); pass model=<path/to/ign_wl_24_int8.tflite> if it lives "
                    "elsewhere, or leave out pipeline= and model= to fall back to the "
                    f"project's own model (pipelines/{self.fallback_pipeline}.toml)") from None
            raise

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        m = super().manifest(board, options, ctx)
        choice = self.model_choice(options)
        b = self.pipeline(options).classifier.model
        assert b is not None
        # the check rebuilds the pipeline from its path and this model (None: its own)
        m["model_path"] = choice.model
        m["model_choice"] = {"model": b.path.name, "path": str(b.path), "sha256": b.sha256,
                             "source": choice.source, "reason": choice.reason}
        return m

    def _model_ctx(self, board: Board, p: Pipeline, options: dict[str, Any]
                   ) -> tuple[dict[str, Any], list[tuple[str, str]], int]:
        from generator.compiler.loader import load_model
        from generator.compiler.plan import plan_model

        b = p.classifier.model
        assert b is not None
        iopts = {"model": str(b.path)}
        infer = self._infer_app()
        ictx = infer.context(board, iopts)  # also checks that the model fits the board
        templates = [t for t in infer.templates(board, iopts) if t[0].startswith("model/")]
        graph = load_model(b.path)
        plan = plan_model(graph)
        ops = graph.operators
        skipped = [f"{i}: {ops[i].opcode}" for i in range(len(ops))
                   if i < b.first_op or i > b.last_op]
        clf = {
            "text": (f"model '{graph.name}' (sha256 {graph.sha256[:12]}), operators "
                     f"{b.first_op}..{b.last_op}"),
            "features": b.input.count, "classes": b.output.count,
            "input_tensor": b.input_tensor, "input_name": b.input.name,
            "input_offset": plan.allocation(b.input_tensor).offset,
            "output_tensor": b.output_tensor, "output_name": b.output.name,
            "output_offset": plan.allocation(b.output_tensor).offset,
            "first_op": b.first_op, "last_op": b.last_op, "skipped": ", ".join(skipped),
        }
        if p.classifier.worst_case_instructions is not None:
            load = p.classifier.worst_case_instructions
        else:
            j = 1 if board.core in _V6M else 0
            load = (b.macs * _MODEL_INSTR_PER_MAC[j]
                    + _MODEL_INSTR_PER_LAYER * (b.last_op - b.first_op + 1))
        return {**ictx, "clf": clf}, templates, int(load)

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        b = self.pipeline(options).classifier.model
        assert b is not None
        return dict(self._infer_app().static_files(board, {"model": str(b.path)}))

    def twin_scores(self, p: Pipeline, features: np.ndarray) -> np.ndarray:
        """The TFLM interpreter on the features (dequantized for a float-input model: its
        QUANTIZE gives back the same int8 values), scores re-quantized from a float output."""
        from tflite_micro import runtime

        b = p.classifier.model
        assert b is not None
        key = str(b.path)
        if getattr(self, "_tflm_key", None) != key:
            self._tflm = runtime.Interpreter.from_file(key)
            self._tflm_key = key
        interp = self._tflm
        det = interp.get_input_details(0)
        shape = tuple(det["shape"])
        q = features.astype(np.int64).reshape(shape)
        if np.dtype(det["dtype"]) == np.float32:
            x = ((q - b.input.zero_point) * np.float32(b.input.scale)).astype(np.float32)
        else:
            x = q.astype(det["dtype"])
        interp.set_input(x, 0)
        interp.invoke()
        out = np.asarray(interp.get_output(0)).reshape(-1)
        if out.dtype == np.float32:
            out = np.clip(np.round(out / b.output.scale) + b.output.zero_point, -128, 127)
        return out.astype(np.int8)


register(HarApp())


class VwwApp(HarApp):
    """``vww``: the 96x96 person-detection MobileNet on frames compiled into the image; a timer
    delivers frame indices at the frame rate, the pipeline converts the pixels into the model's
    int8 input, post-processing debounces person / no person."""

    name = "vww"
    description = "frames at a fixed rate -> pixel quantization -> 96x96 MobileNet -> decisions"
    default_pipeline = "vww"
    zoo_model = None
    fallback_pipeline = None


register(VwwApp())


# ---- pipetest: blocks and ring against the numpy twins, no timer -----------------------------


def pipetest_windows(p: Pipeline) -> list[tuple[str, np.ndarray]]:
    """Windows pipetest runs: four from the trace (spread over its segments) and five that
    drive every block to its limits (both input extremes, alternating extremes, a ramp,
    uniform noise over the whole input range)."""
    w, c = p.window, p.channels
    lo, hi = p.input.lo, p.input.hi
    dtype = np.uint8 if p.input.type == "uint8" else np.int16
    out: list[tuple[str, np.ndarray]] = []
    if p.frames:
        imgs = images_for(p)
        for k in range(min(4, len(imgs))):
            out.append((f"image {k}", imgs[k]))
    else:
        trace = trace_for(p)
        starts = sorted({int(s) for s in np.linspace(0, p.source.samples - w, 4)})
        for s in starts:
            out.append((f"trace[{s}:{s + w}]", trace[s:s + w]))
    out.append(("all max", np.full((w, c), hi, dtype)))
    out.append(("all min", np.full((w, c), lo, dtype)))
    alt = np.where((np.arange(w)[:, None] + np.arange(c)[None, :]) % 2 == 0, hi, lo)
    out.append(("alternating extremes", alt.astype(dtype)))
    ramp = np.round(np.linspace(lo, hi, w * c)).astype(np.int64).reshape(w, c)
    out.append(("ramp", ramp.astype(dtype)))
    rng = np.random.default_rng(p.source.seed + 1000)
    out.append(("uniform noise", rng.integers(lo, hi + 1, (w, c)).astype(dtype)))
    return out


def pipetest_capacity(p: Pipeline) -> int:
    """No timer, no timing: an 'auto' ring is window + hop."""
    return (p.ring.capacity if p.ring.capacity is not None
            else p.ring_window + p.ring_hop)


def ring_script(window: int, hop: int, capacity: int) -> list[int]:
    """Ops for the scripted ring session: n > 0 pushes n samples, 0 takes, -1 releases. Covers:
    not enough samples, the first window, a hop not yet complete, a late window, samples
    arriving while a window is held until the ring overflows, many windows (the write position
    wraps several times), a long gap (overflow without a held window)."""
    ops = [window - 1, 0, 1, 0, -1]
    if hop > 1:
        ops += [hop - 1, 0]
        ops += [1, 0, -1]
    else:
        ops += [1, 0, -1]
    ops += [hop + 2, 0, -1]
    ops += [hop, 0, capacity, -1]
    for _ in range(2 * capacity // hop + 3):
        ops += [hop, 0, -1]
    ops += [3 * capacity, 0, -1, 1, 0]
    return ops


def ring_sample(n: int, channels: int) -> np.ndarray:
    return np.array([((n * 40503 + c * 9973) & 0xFFFF) for c in range(channels)],
                    dtype=np.uint16).view(np.int16)


def ring_session(p: Pipeline, capacity: int, ops: list[int]) -> dict[str, Any]:
    """The numpy twin of pipetest's ring session: counters from RingModel, window contents
    from the list of accepted samples."""
    ring = RingModel(capacity, p.ring_window, p.ring_hop, p.ring.overflow == "drop_oldest")
    samples: list[np.ndarray] = []
    n = 0
    take_ok: list[int] = []
    ends: list[int] = []
    crcs: list[int] = []
    for op in ops:
        if op > 0:
            for _ in range(op):
                s = ring_sample(n, p.ring_channels)
                if ring.push():
                    samples.append(s)
                n += 1
        elif op == 0:
            end = ring.take()
            take_ok.append(int(end is not None))
            if end is not None:
                win = np.stack(samples[end - p.ring_window:end]).astype("<i2")
                ends.append(end)
                crcs.append(zlib.crc32(win.tobytes()))
        else:
            ring.release()
    return {"ring_take_ok": take_ok, "ring_end": ends, "ring_crc": crcs,
            "ring_head": (p.ring.index_origin + ring.head) % 2**32,
            "ring_windows": ring.windows, "ring_late_windows": ring.late_windows,
            "ring_dropped": ring.dropped, "ring_max_occupancy": ring.max_occupancy,
            "ring_torn": 0}


class PipetestApp:
    name = "pipetest"
    description = "pipeline blocks and the ring against their numpy twins (no timer; host too)"
    needs_model = False

    def __init__(self) -> None:
        self._pipes = _PipelineCache()

    def pipeline(self, options: dict[str, Any]) -> Pipeline:
        model = options.get("model")
        return self._pipes.get(_opt_pipeline(options, "stream"), str(model) if model else None)

    def context(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        p = self.pipeline(options)
        cap = pipetest_capacity(p)
        ops = ring_script(p.ring_window, p.ring_hop, cap)
        wins = pipetest_windows(p)
        return {
            "pipe": pipeline_context(p),
            "ring": {"capacity": cap, "channels": p.ring_channels, "window": p.ring_window,
                     "hop": p.ring_hop,
                     "capacity_text": f"window {p.ring_window} + hop {p.ring_hop} "
                     "(pipetest: no timer)" if p.ring.capacity is None else f"{cap} as configured",
                     "overflow": p.ring.overflow, "placement": "ram",
                     "index_origin": p.ring.index_origin},
            "windows": [{"name": name, "lines": c_lines([int(v) for v in w.reshape(-1)], 12),
                         "names": [f"w{k}.b{st.index}" for st in p.stages[:-1]] + [f"w{k}.out"]}
                        for k, (name, w) in enumerate(wins)],
            "block_names": [f"block{st.index}_{st.kind}" for st in p.stages],
            "ring_ops": ops,
            "ring_op_lines": c_lines(ops, 16),
            "ring_takes": max(1, ops.count(0)),
            "out_dtype": p.output.type,
        }

    def templates(self, board: Board, options: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            ("stream/ss_dsp.h.j2", "ss_dsp.h"),
            ("stream/ss_pipeline.h.j2", "ss_pipeline.h"),
            ("stream/ss_pipeline.c.j2", "ss_pipeline.c"),
            ("stream/ss_ring.h.j2", "ss_ring.h"), ("stream/ss_ring.c.j2", "ss_ring.c"),
            ("common/ss_crc32.h.j2", "ss_crc32.h"), ("common/ss_crc32.c.j2", "ss_crc32.c"),
            ("apps/pipetest/main.c.j2", "main.c"),
        ]

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        return {}

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        p = self.pipeline(options)
        return {
            "pipeline": {"name": p.name, "path": str(p.path) if p.path else None,
                         "sha256": p.sha256},
            "model_path": str(options["model"]) if options.get("model") else None,
            "windows": [w["name"] for w in ctx["windows"]],
            "blocks": ctx["block_names"],
            "ring_capacity": ctx["ring"]["capacity"],
            "ring_ops": len(ctx["ring_ops"]),
        }

    def check(self, info: dict[str, Any], outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        opts: dict[str, Any] = {"pipeline": info["pipeline"]["path"]}
        if info.get("model_path"):
            opts["model"] = info["model_path"]
        p = self.pipeline(opts)
        return expected_mismatches(p, outputs)


def pipetest_expected(p: Pipeline) -> dict[str, np.ndarray | int | list[int]]:
    """Everything pipetest reports, computed by the numpy twins."""
    exp: dict[str, Any] = {}
    for k, (_name, w) in enumerate(pipetest_windows(p)):
        for st in p.stages[:-1]:
            exp[f"w{k}.b{st.index}"] = run_pipeline(p, w, upto=st.index).reshape(-1).astype(
                np.int32)
        exp[f"w{k}.out"] = run_pipeline(p, w)
    cap = pipetest_capacity(p)
    exp.update(ring_session(p, cap, ring_script(p.ring_window, p.ring_hop, cap)))
    return exp


def expected_mismatches(p: Pipeline, outputs: dict[str, np.ndarray]) -> dict[str, Any]:
    exp = pipetest_expected(p)
    res: dict[str, Any] = {}
    blocks_bad: list[str] = []
    for name, want in exp.items():
        if not isinstance(want, np.ndarray) or name not in outputs and name.startswith("ring"):
            continue
        got = outputs.get(name)
        if got is None or got.dtype != want.dtype or not np.array_equal(got, want):
            blocks_bad.append(name)
    res["blocks"] = {"ok": not blocks_bad, "mismatches": blocks_bad[:10]}
    ring_bad = []
    for name in ("ring_take_ok", "ring_end", "ring_crc"):
        got = [int(v) for v in outputs.get(name, np.zeros(0))]
        if got != list(exp[name]):
            ring_bad.append(name)
    res["ring"] = {"ok": not ring_bad, "mismatches": ring_bad}
    return res


register(PipetestApp())
