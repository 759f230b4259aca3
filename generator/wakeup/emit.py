"""The ``wakeup`` firmware app: the screener in generated C, the MLP from the model compiler, the
test beats streamed through a ring in .noinit RAM, a wake-up as a system reset.

On a target a hardware timer (the front end's board data, :data:`generator.frontend.emit.TIMERS`)
interrupts every :data:`BEAT_PERIOD_S` and pushes the next beat into the ring; the timer is
restarted on every boot and the source's position lives in .noinit RAM, so the stream pauses
during a wake-up's reset and service (the beat period is longer than the slowest service, so the
ring never fills: the firmware counts stalls and the check wants none). The main loop polls
instead of sleeping (under QEMU's ``-icount`` virtual time then advances with instructions). The
host twin has no timer: there the ring is filled on demand and a reset re-enters the boot path.
The beats' FFT features are computed on the host (:mod:`generator.wakeup.data`) and compiled into
the image.

Options (``scons board=<b> app=wakeup ...`` / ``sweetspot run --app wakeup``):

* ``inputs``: how many of the 3,200 random-split test beats to stream (default 3200), evenly
  spaced over the (class-sorted) test set so every class is in a subset;
* ``mode``: ``plain`` (default) or ``protected`` (the parity-protected table);
* ``ql`` (Q0..Q4) and ``seed``: the table as stored once at that quality level (bit flips from
  the write-error injector; ``seed`` default 1);
* ``inject``: a read error rate per looked-up code bit (default 0), seeded by ``seed``
  (:func:`generator.wakeup.degrade.read_flip_masks`; the firmware makes the same draws).

(The build's existing option variables are reused, so SCons needs no new ones.)

The expected per-beat results come from the numpy twin (:mod:`generator.wakeup.screener`) and
the TFLM interpreter for the MLP; :meth:`WakeupApp.check` compares them with what the firmware
reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from generator.boards import Board
from generator.errors import AppError
from generator.firmware.apps import get_app, int_list, register
from generator.frontend.emit import timer_plan
from generator.runtime.quality import QL_BY_NAME
from generator.wakeup import backend, data, degrade
from generator.wakeup import screener as S

DEFAULT_BEATS = 3200
MODES = ("plain", "protected")
#: one beat per timer period on a target; longer than the slowest beat (a wake-up: reset, boot,
#: MLP - about 72k instructions = 74 ms of virtual time on the Cortex-M0 twin under -icount 10)
BEAT_PERIOD_S = 0.2
CODE_RESERVE = 24 * 1024  # flash for code, model and tables next to the beats (measured ~22 KiB)
FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


@dataclass(frozen=True)
class Plan:
    screener: S.Screener
    index: np.ndarray       # test-set rows streamed
    labels: np.ndarray
    fq: np.ndarray          # uint16 [n, F]
    mlp: np.ndarray         # int8 [n, 32]
    table_text: str
    read_error: float = 0.0
    read_seed: int = 1


@lru_cache(maxsize=2)
def _split() -> data.Split:
    return data.random_split(data.load_beats())


def _int_option(options: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    raw = options.get(key, default)
    try:
        v = int(str(raw))
    except ValueError:
        raise AppError(f"wakeup option {key}={raw!r} is not an integer") from None
    if not lo <= v <= hi:
        raise AppError(f"wakeup option {key}={v} is out of range {lo}..{hi}")
    return v


def make_plan(options: dict[str, Any]) -> Plan:
    split = _split()
    n_test = len(split.y_test)
    n = _int_option(options, "inputs", DEFAULT_BEATS, 1, n_test)
    mode = str(options.get("mode") or "plain")
    if mode not in MODES:
        raise AppError(f"wakeup mode '{mode}' is unknown; known: {', '.join(MODES)}")
    cfg = S.ScreenerConfig(protected=mode == "protected")
    s = S.train(split.x_train, split.y_train, len(data.CLASSES), cfg)
    text = "exact (as trained)"
    ql = options.get("ql")
    if ql:
        if str(ql) not in QL_BY_NAME:
            raise AppError(f"wakeup option ql={ql!r} is unknown; known: {', '.join(QL_BY_NAME)}")
        seed = _int_option(options, "seed", 1, 0, 2**32 - 1)
        table = degrade.stored_tables(s, str(ql), 1, seed)[0]
        flipped = int(np.unpackbits(table ^ s.table).sum())
        s = S.with_table(s, table)
        text = f"stored once at {ql} (injector seed {seed}): {flipped} bit(s) flipped"
    raw_rate = options.get("inject") or 0
    try:
        rate = float(str(raw_rate))
    except ValueError:
        raise AppError(f"wakeup option inject={raw_rate!r} is not a read error rate") from None
    if not 0.0 <= rate <= 1.0:
        raise AppError(f"wakeup option inject={rate:g} must be a rate in [0, 1]")
    read_seed = _int_option(options, "seed", 1, 0, 2**32 - 1)
    index = np.unique(np.linspace(0, n_test - 1, n).round().astype(np.int64))
    x = split.x_test[index]
    return Plan(s, index, split.y_test[index], S.feature_q(x[:, s.bins]),
                backend.mlp_inputs(x), text, rate, read_seed)


def expected(plan: Plan) -> dict[str, Any]:
    """What the firmware must report: per beat status | screener class << 2 | final << 4 (final
    from the TFLM interpreter for woken beats, 0 otherwise), and the FNV-1a over every beat's
    levels, scores (little-endian uint16) and status."""
    s = plan.screener
    levels = S.quantize_levels(plan.fq, s.thresholds)
    codes = S.lookup(s, levels)
    if plan.read_error > 0:
        n, c, f = codes.shape
        codes = codes ^ degrade.read_flip_masks(plan.read_seed, n, c * f,
                                                plan.read_error).reshape(codes.shape)
    r = S.classify_codes(codes, s.config, levels)
    final = np.zeros(len(r.status), dtype=np.int64)
    woken = np.flatnonzero(r.woken)
    if len(woken):
        final[woken] = backend.decide(backend.tflm_outputs(plan.mlp[woken]))
    out = (r.status | (r.decision << 2) | (final << 4)).astype(np.uint8)
    h = FNV_OFFSET
    for lv, sc, st in zip(r.levels, r.scores, r.status):
        for b in [*lv.tolist(), *np.asarray(sc, "<u2").tobytes(), int(st)]:
            h = ((h ^ int(b)) * FNV_PRIME) & 0xFFFFFFFF
    return {"out": out, "hash": h, "wakes": int(len(woken)), "result": r, "final": final}


def _build_id(plan: Plan) -> int:
    h = hashlib.sha256()
    for a in (plan.screener.table, plan.screener.thresholds, plan.fq, plan.mlp):
        h.update(np.ascontiguousarray(a).tobytes())
    h.update(f"{plan.read_error!r},{plan.read_seed}".encode())
    return int.from_bytes(h.digest()[:4], "little")


class WakeupApp:
    name = "wakeup"
    description = "uncertainty-triggered wake-up: fixed-point screener + MLP on a reset (ECG)"
    needs_model = False

    def _infer_options(self) -> dict[str, Any]:
        return {"model": str(backend.MODEL), "inputs": 1}

    def context(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        plan = make_plan(options)
        beat_bytes = plan.fq.shape[1] * 2 + plan.mlp.shape[1]
        if not board.is_host and len(plan.index) * beat_bytes + CODE_RESERVE > board.flash.length:
            most = (board.flash.length - CODE_RESERVE) // beat_bytes
            raise AppError(f"{len(plan.index)} beats ({len(plan.index) * beat_bytes} bytes) do "
                           f"not fit {board.name}'s {board.flash.length // 1024} KiB flash next "
                           f"to the code and the model; use inputs={most} or fewer")
        infer = get_app("infer")
        ctx = dict(infer.context(board, self._infer_options()))
        timer = None
        if not board.is_host:
            tp = timer_plan(board, 1.0 / BEAT_PERIOD_S)
            d = tp.driver
            timer = {"kind": d.kind, "base": d.base, "irq": d.irq, "name": d.name,
                     "rcc_reg": d.rcc_reg, "rcc_bit": d.rcc_bit, "verified": d.verified,
                     "reload": tp.reload, "prescaler": tp.prescaler, "psc": tp.psc,
                     "arr": tp.arr, "period_ticks": tp.period_ticks,
                     "period_text": f"{tp.period_s * 1e3:g} ms",
                     "text": f"{d.name} ({d.kind}) at {d.clock_hz} Hz, IRQ {d.irq}"}
        s, cfg = plan.screener, plan.screener.config
        beats = [{"features": int_list(f), "mlp": ", ".join(str(v) for v in m.tolist())}
                 for f, m in zip(plan.fq, plan.mlp)]
        ctx["wk"] = {
            "features": cfg.n_features, "levels": cfg.levels, "classes": s.n_classes,
            "bins_text": ", ".join(str(b) for b in s.bins.tolist()),
            "classes_text": ", ".join(data.CLASSES), "base": cfg.base, "m": cfg.m,
            "data_bits": cfg.data_bits, "protected": cfg.protected,
            "zero_code": cfg.zero_code, "margin": cfg.margin,
            "feature_frac": S.FEATURE_FRAC,
            "thresholds": s.thresholds.tolist(), "table": s.table.tolist(),
            "table_text": plan.table_text,
            "n_beats": len(plan.index), "mlp_inputs": plan.mlp.shape[1], "beats": beats,
            "beats_text": (f"{len(plan.index)} of the {len(_split().y_test)} random-split test "
                           "beats (MIT-BIH records 100-124, read from ../shared at generation)"),
            "build_id": _build_id(plan),
            "timer": timer,
            "read_threshold": (degrade.read_threshold(plan.read_error)
                               if plan.read_error > 0 else 0),
            "read_seed": plan.read_seed,
            "read_text": (f"rate {plan.read_error:g} per bit, seed {plan.read_seed}"
                          if plan.read_error > 0 else "none"),
        }
        return ctx

    def templates(self, board: Board, options: dict[str, Any]) -> list[tuple[str, str]]:
        infer = get_app("infer")
        model = [(t, o) for t, o in infer.templates(board, self._infer_options())
                 if o.startswith("model/")]
        return [*model,
                ("wakeup/ss_screener.h.j2", "wakeup/ss_screener.h"),
                ("wakeup/ss_screener.c.j2", "wakeup/ss_screener.c"),
                ("wakeup/ss_beats.h.j2", "wakeup/ss_beats.h"),
                ("wakeup/ss_beats.c.j2", "wakeup/ss_beats.c"),
                *([] if board.is_host else [
                    ("wakeup/ss_beat_timer.h.j2", "wakeup/ss_beat_timer.h"),
                    ("wakeup/ss_beat_timer.c.j2", "wakeup/ss_beat_timer.c")]),
                ("apps/wakeup/main.c.j2", "main.c")]

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        return get_app("infer").static_files(board, self._infer_options())

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        plan = make_plan(options)
        exp = expected(plan)
        s = plan.screener
        return {
            "model": {"path": str(backend.MODEL), "sha256": ctx["model_sha256"]},
            "screener": {"bins": int_list(s.bins), "config": {
                k: getattr(s.config, k) for k in ("n_features", "levels", "base", "m", "sigma",
                                                  "radius", "code_bits", "protected", "margin")},
                "table": plan.table_text},
            "beats": {"test_index": int_list(plan.index), "labels": int_list(plan.labels)},
            "expected": {"wk_out": int_list(exp["out"]), "hash": exp["hash"],
                         "wakes": exp["wakes"]},
            "reports": {"cycles": ["screener", "wake_boot", "mlp"],
                        "vectors": ["wk_out", "wk_stats"]},
        }

    def check(self, app_info: dict[str, Any], outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """The firmware's per-beat results against the numpy twin + TFLM (in the manifest)."""
        exp = app_info["expected"]
        got = outputs.get("wk_out")
        stats = outputs.get("wk_stats")
        want = np.asarray(exp["wk_out"], dtype=np.uint8)
        res: dict[str, Any] = {}
        if got is None:
            res["wk_out"] = {"ok": False, "error": "not reported"}
        else:
            got = np.asarray(got).reshape(-1)
            same = got.shape == want.shape
            bad = np.flatnonzero(got != want).tolist() if same else None
            res["wk_out"] = {"ok": bool(same and not bad), "reference": "numpy twin + tflm",
                             "mismatches": None if bad is None else len(bad),
                             "first_mismatches": (bad or [])[:10]}
        if stats is None:
            res["wk_stats"] = {"ok": False, "error": "not reported"}
        else:
            st = [int(v) for v in np.asarray(stats).reshape(-1)]
            # hash, beats, wake-ups, boots (one per wake-up + power-on), source stalls (none:
            # the beat period is longer than the slowest beat's service)
            want_st = [exp["hash"], len(want), exp["wakes"], exp["wakes"] + 1, 0]
            res["wk_stats"] = {"ok": st == want_st, "reference": "numpy twin",
                               "expected": want_st, "got": st}
        return res


register(WakeupApp())
