"""The numpy twins against independent references (exact fractions, floats with rounding
bounds, hand-worked values), and the generated C built for the host against the twins, byte for
byte (every block, whole pipelines, saturating inputs, the ring session with wrap-around)."""

from __future__ import annotations

import math
import tomllib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from _util import require_host_cc

from generator.frontend.emit import pipetest_expected, pipetest_windows
from generator.frontend.pipeline import load_pipeline, parse_pipeline
from generator.frontend.preprocess import isqrt_round, run_pipeline, run_stage, stub_scores

BASE = """
name = "t"
sample_rate_hz = 50
channels = {ch}
window = {w}
hop = {w}
[input]
frac = {frac}
"""
QUANT = '[[block]]\nkind = "quantize"\nscale = 0.03125\nzero_point = 0\n'


def one_block(block: str, w: int = 32, ch: int = 3, frac: int = 11, quant: str = QUANT):
    p = parse_pipeline(tomllib.loads(BASE.format(w=w, ch=ch, frac=frac) + block + quant))
    return p, p.stages[0]


def half_up(fr: Fraction) -> int:
    return math.floor(fr + Fraction(1, 2))


def sat16(v: int) -> int:
    return max(-32768, min(32767, v))


RNG = np.random.default_rng(42)


def rand_window(w: int, ch: int, lo: int = -32768, hi: int = 32767) -> np.ndarray:
    return RNG.integers(lo, hi + 1, (w, ch))


# ---- blocks against independent references --------------------------------------------------

def test_dc_remove_exact_for_power_of_two_window() -> None:
    _, st = one_block('[[block]]\nkind = "dc_remove"\n')
    for x in (rand_window(32, 3), np.full((32, 3), 32767), np.full((32, 3), -32768)):
        y = run_stage(st, x)
        for c in range(3):
            mean = half_up(Fraction(int(x[:, c].sum()), 32))
            assert [int(v) for v in y[:, c]] == [sat16(int(v) - mean) for v in x[:, c]]


def test_dc_remove_saturates() -> None:
    _, st = one_block('[[block]]\nkind = "dc_remove"\n')
    x = np.zeros((32, 3), dtype=np.int64)
    x[0] = 32767
    x[1:] = -32768
    y = run_stage(st, x)
    assert int(y[0, 0]) == 32767  # 32767 - (-31744) saturates


def test_moving_average_exact() -> None:
    _, st = one_block('[[block]]\nkind = "moving_average"\nlength = 4\n')
    x = rand_window(32, 3)
    y = run_stage(st, x)
    for t in range(32):
        for c in range(3):
            s = sum(int(x[max(t - k, 0), c]) for k in range(4))
            assert y[t, c] == half_up(Fraction(s, 4))


def test_moving_average_non_power_of_two_is_within_one_step() -> None:
    _, st = one_block('[[block]]\nkind = "moving_average"\nlength = 5\n')
    x = rand_window(32, 3)
    y = run_stage(st, x)
    for t in range(32):
        s = sum(int(x[max(t - k, 0), 0]) for k in range(5))
        assert abs(int(y[t, 0]) - s / 5) <= 0.5 + 1e-6


def test_ema_hand_worked() -> None:
    _, st = one_block('[[block]]\nkind = "ema"\nalpha = 0.25\n', w=4, ch=1)
    y = run_stage(st, np.array([[0], [100], [100], [-7]]))
    # y0 = 0; y1 = 0 + round(100/4) = 25; y2 = 25 + round(75/4) = 44 (18.75 -> 19);
    # y3 = 44 + round(-51/4) = 44 - 13 (-12.75 -> -13) = 31
    assert [int(v) for v in y[:, 0]] == [0, 25, 44, 31]


def test_median3_against_numpy_median() -> None:
    _, st = one_block('[[block]]\nkind = "median3"\n')
    x = rand_window(32, 3)
    y = run_stage(st, x)
    pad = np.concatenate([x[:1], x, x[-1:]])
    want = np.median(np.stack([pad[:-2], pad[1:-1], pad[2:]]), axis=0)
    assert np.array_equal(y, want.astype(np.int64))


def test_window_against_numpy_hanning() -> None:
    _, st = one_block('[[block]]\nkind = "window"\n')
    x = rand_window(32, 3)
    y = run_stage(st, x)
    w = np.round(np.hanning(32) * 32767)
    want = x * w[:, None] / 32768
    assert np.all(np.abs(y - want) <= 0.5 + 1e-9 + np.abs(x) * 0.5 / 32768)


def test_magnitude_is_rounded_euclidean_norm() -> None:
    _, st = one_block('[[block]]\nkind = "magnitude"\n')
    x = rand_window(32, 3)
    x[0] = [-32768, -32768, -32768]  # 56756 saturates to int16
    y = run_stage(st, x)
    for t in range(32):
        v = sum(int(a) ** 2 for a in x[t])
        assert y[t, 0] == sat16((math.isqrt(4 * v) + 1) // 2)  # nearest integer to sqrt(v)
    assert y[0, 0] == 32767


def test_isqrt_round_edges() -> None:
    v = np.array([0, 1, 2, 3, 4, 6, 7, 2**32 - 1, 4294836225, 4294901760])
    want = [(math.isqrt(4 * int(a)) + 1) // 2 for a in v]
    assert list(isqrt_round(v)) == want


def test_goertzel_power_matches_the_dft() -> None:
    _, st = one_block('[[block]]\nkind = "goertzel"\nbins = [3, 7]\nshift = 10\n', w=64, ch=2,
                      frac=0)
    t = np.arange(64)
    x = np.stack([np.round(3000 * np.sin(2 * np.pi * 3 * t / 64)),
                  np.round(2000 * np.cos(2 * np.pi * 7 * t / 64 + 0.3))], axis=1).astype(np.int64)
    y = run_stage(st, x)
    dft = np.abs(np.fft.rfft(x, axis=0)) ** 2 / 2**10
    for b, k in enumerate((3, 7)):
        for c in range(2):
            ref = dft[k, c]
            assert abs(int(y[b, c]) - ref) <= 0.002 * dft[:, c].max() + 64, (k, c)
    assert y[0, 0] > 100 * max(1, y[1, 0]) and y[1, 1] > 100 * max(1, y[0, 1])


def test_quantize_exact_for_power_of_two_scale_and_saturating() -> None:
    _, st = one_block("", quant=QUANT.replace("zero_point = 0", "zero_point = 5"))
    x = np.array([[0, 63, 64], [-65, 4000, -4000]] + [[1, 2, 3]] * 30)
    y = run_stage(st, x)
    # real = x / 2^11 / (1/32) = x / 64, plus 5, saturated to int8
    for (t, c), v in np.ndenumerate(x):
        assert y[t, c] == max(-128, min(127, half_up(Fraction(int(v), 64)) + 5))


def test_quantize_layout_channel_major() -> None:
    p, _ = one_block("", w=4, ch=2, quant=QUANT + 'layout = "ct"\n')
    x = np.array([[64, 128], [192, 256], [320, 384], [448, 512]])
    out = run_pipeline(p, x)
    assert list(out) == [1, 3, 5, 7, 2, 4, 6, 8]


def test_stub_scores_hand_checked() -> None:
    p = load_pipeline("stream")
    f = RNG.integers(-128, 128, p.features).astype(np.int8)
    w = np.random.default_rng(p.classifier.seed).integers(-128, 128, (4, p.features),
                                                          dtype=np.int8)
    acc = [int(np.dot(w[k].astype(int), f.astype(int))) for k in range(4)]
    s = p.classifier.score_shift
    want = [max(-128, min(127, (a + (1 << (s - 1))) >> s)) for a in acc]
    assert list(stub_scores(p, f)) == want


# ---- the generated C on the host, byte for byte ---------------------------------------------

PIPELINES = ["stream", "test_blocks_a", "test_blocks_b", "test_blocks_c"]


@pytest.fixture(scope="module")
def host_build_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_host_cc()
    return tmp_path_factory.mktemp("pipetest-host")


@pytest.mark.parametrize("name", PIPELINES)
def test_host_c_equals_twin(name: str, host_build_root: Path) -> None:
    from generator.runner import RunRequest, run

    doc = run(RunRequest(board="host", app="pipetest", options={"pipeline": name},
                         build_dir=host_build_root / name))
    p = load_pipeline(name)
    exp = pipetest_expected(p)
    outs = doc["outputs"]
    n_windows = len(pipetest_windows(p))
    assert n_windows == 9
    for key, want in exp.items():
        if isinstance(want, np.ndarray):
            got = outs[key]
            assert got["dtype"] == str(want.dtype), key
            assert got["values"] == want.tolist(), key
        elif isinstance(want, list):
            assert outs[key]["values"] == want, key
        else:
            assert doc["metrics"][key] == want, key
    assert doc["checks"]["blocks"]["ok"] and doc["checks"]["ring"]["ok"]
    # saturating windows really saturate somewhere in the chain
    sat = [k for k in range(n_windows) if np.any(np.isin(exp[f"w{k}.out"], (-128, 127, 255)))]
    assert sat
    assert doc["metrics"]["ring_dropped"] > 0 and doc["metrics"]["ring_late_windows"] > 0


def test_ring_counters_wrap_on_host(host_build_root: Path) -> None:
    from generator.runner import RunRequest, run

    p = load_pipeline("test_blocks_c")
    assert p.ring.index_origin > 2**32 - 1000
    doc = run(RunRequest(board="host", app="pipetest", options={"pipeline": "test_blocks_c"},
                         build_dir=host_build_root / "test_blocks_c"))
    head = doc["metrics"]["ring_head"]
    assert head < p.ring.index_origin  # wrapped past 2^32
    assert head == pipetest_expected(p)["ring_head"]
