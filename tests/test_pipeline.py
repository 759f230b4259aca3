"""Pipeline configs: parsing, the generator's checks (one clear error per bad config), the
fixed-point constants against independent formulas, ring sizing and the stream prediction
against hand-worked schedules."""

from __future__ import annotations

import math
import subprocess
import sys
import tomllib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from generator.boards import load_board
from generator.frontend.emit import (
    RingModel,
    StreamApp,
    period_instructions,
    simulate_stream,
    timer_plan,
)
from generator.frontend.pipeline import (
    PipelineConfigError,
    QFormatOverflowError,
    RingTooSmallError,
    ShapeMismatchError,
    UnknownBlockError,
    load_pipeline,
    min_capacity,
    parse_pipeline,
    pipelines_dir,
    window_table,
)
from generator.frontend.preprocess import run_stage

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "models" / "digits_cnn_int8.tflite"

BASE = """
name = "t"
sample_rate_hz = 50
channels = 3
window = 32
hop = 16
[input]
frac = 11
"""
QUANT = """
[[block]]
kind = "quantize"
scale = 0.03125
zero_point = 0
"""


def cfg(extra: str = "", blocks: str = "", quant: str = QUANT, base: str = BASE) -> dict:
    return tomllib.loads(base + extra + blocks + quant)


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


# ---- the shipped configs -------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(pipelines_dir().glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_pipelines_load(path: Path) -> None:
    zoo = ROOT.parent / "shared" / "models" / "zoo"
    if "models/zoo/" in path.read_text() and not zoo.is_dir():
        pytest.skip(f"pipeline {path.name} uses a zoo model and {zoo} is absent")
    p = load_pipeline(path)
    assert p.stages[-1].kind == "quantize"
    assert p.features == p.classifier.input.count
    assert len(p.sha256) == 64


# ---- bad configs: one clear error each ------------------------------------------------------

def test_window_longer_than_ring() -> None:
    with pytest.raises(RingTooSmallError) as e:
        parse_pipeline(cfg("[ring]\ncapacity = 20\n"))
    msg = str(e.value)
    assert "window (32 samples) is longer than the ring (capacity 20)" in msg
    assert "capacity >= 32" in msg


def test_unknown_block() -> None:
    with pytest.raises(UnknownBlockError) as e:
        parse_pipeline(cfg(blocks='[[block]]\nkind = "fft_magic"\n'))
    msg = str(e.value)
    assert "block 0 kind 'fft_magic' is unknown" in msg
    assert "goertzel" in msg and "moving_average" in msg


def test_coefficient_overflows_its_q_format() -> None:
    blocks = '[[block]]\nkind = "scale"\nalpha = 2.5\ncoef_frac = 15\n'
    with pytest.raises(QFormatOverflowError) as e:
        parse_pipeline(cfg(blocks=blocks))
    msg = str(e.value)
    assert "block 0 'scale'" in msg and "alpha 2.5 does not fit" in msg and "Q0.15" in msg


def test_accumulator_overflow() -> None:
    # int32 values from a widening dc_remove: the sum of squares needs 34 bits
    blocks = ('[[block]]\nkind = "dc_remove"\nout_type = "int32"\n'
              '[[block]]\nkind = "magnitude"\n')
    with pytest.raises(QFormatOverflowError) as e:
        parse_pipeline(cfg(blocks=blocks))
    msg = str(e.value)
    assert "block 1 'magnitude'" in msg and "2^33.58" in msg and "32-bit" in msg


def test_goertzel_state_overflow() -> None:
    blocks = '[[block]]\nkind = "goertzel"\nbins = [1]\n'
    base = BASE.replace("window = 32", "window = 512").replace("hop = 16", "hop = 512")
    with pytest.raises(QFormatOverflowError) as e:
        parse_pipeline(cfg(blocks=blocks, base=base))
    assert "resonator state" in str(e.value)


def test_scale_with_no_fitting_format() -> None:
    blocks = '[[block]]\nkind = "scale"\nalpha = 100000.0\nout_frac = 11\n'
    with pytest.raises(QFormatOverflowError) as e:
        parse_pipeline(cfg(blocks=blocks))
    assert "no coefficient format fits" in str(e.value)


def test_shape_mismatch_with_model() -> None:
    base = BASE.replace("channels = 3", "channels = 8").replace("window = 32", "window = 10")
    base = base.replace("hop = 16", "hop = 5")
    d = tomllib.loads(base + f'[classifier]\nkind = "model"\nmodel = "{DIGITS}"\n'
                      '[[block]]\nkind = "quantize"\n')
    with pytest.raises(ShapeMismatchError) as e:
        parse_pipeline(d)
    msg = str(e.value)
    assert "produces 10 rows x 8 channels" in msg and "[1, 8, 8, 1]" in msg and "64 values" in msg


def test_model_binding_takes_quantization_from_the_model() -> None:
    base = BASE.replace("channels = 3", "channels = 8").replace("window = 32", "window = 8")
    base = base.replace("hop = 16", "hop = 4")
    d = tomllib.loads(base + f'[classifier]\nkind = "model"\nmodel = "{DIGITS}"\n'
                      '[[block]]\nkind = "quantize"\n')
    p = parse_pipeline(d)
    q = p.stages[-1].params
    assert q["scale"] == 0.0625 and q["zero_point"] == -128 and q["type"] == "int8"
    assert p.post.classes == 10
    assert p.classifier.model is not None and p.classifier.model.first_op == 0


def test_structure_errors() -> None:
    with pytest.raises(PipelineConfigError) as e:
        parse_pipeline(cfg(quant=""))
    assert 'the last [[block]] must be kind = "quantize"' in str(e.value)
    with pytest.raises(PipelineConfigError) as e2:
        parse_pipeline(cfg(base=BASE.replace("hop = 16", "hop = 40")))
    assert "hop 40 is longer than the window 32" in str(e2.value)


def test_unknown_key_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(PipelineConfigError) as e:
        parse_pipeline(cfg(blocks='[[block]]\nkind = "scale"\nalpah = 2.0\n'))
    assert "has no key 'alpah'" in str(e.value)
    bad = write(tmp_path, "name = [")
    with pytest.raises(PipelineConfigError) as e2:
        load_pipeline(bad)
    assert "is not valid TOML" in str(e2.value)
    with pytest.raises(PipelineConfigError) as e3:
        load_pipeline("no_such_pipeline")
    assert "stream" in str(e3.value)


@pytest.mark.parametrize("case, error", [
    ("[ring]\ncapacity = 8\n", "is longer than the ring"),
    ('[[block]]\nkind = "nope"\n', "is unknown; known blocks"),
    ('[[block]]\nkind = "scale"\nalpha = 2.5\ncoef_frac = 15\n', "does not fit"),
])
def test_bad_config_fails_at_generation(tmp_path: Path, case: str, error: str) -> None:
    """scons app=stream pipeline=<bad>: one message, exit status 2, no build directory."""
    path = write(tmp_path, BASE + case + QUANT)
    build = tmp_path / "build"
    proc = subprocess.run(
        [sys.executable, "-m", "SCons", "-Q", "-C", str(ROOT), "board=qemu_m33", "app=stream",
         f"pipeline={path}", f"build={build}"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("scons: error:")]
    assert len(errors) == 1 and error in errors[0] and "p.toml" in errors[0]
    assert not build.exists()


# ---- constants against independent formulas -------------------------------------------------

def test_window_tables_in_q15() -> None:
    # hand-worked: Hann(5) = 0, .5, 1, .5, 0 (16383.5 rounds half up)
    assert window_table("hann", 5) == [0, 16384, 32767, 16384, 0]
    assert window_table("hann", 3) == [0, 32767, 0]
    for fn, ref in (("hann", np.hanning), ("hamming", np.hamming)):
        for n in (8, 32, 33, 64):
            w = np.array(window_table(fn, n))
            assert np.all(np.abs(w - ref(n) * 32767) <= 0.5 + 1e-9)
            assert np.array_equal(w, w[::-1]) and w.max() <= 32767


def test_quantize_multiplier_matches_the_real_scale() -> None:
    p = parse_pipeline(cfg(quant=QUANT.replace("0.03125", "0.0123")))
    q = p.stages[-1].params
    real = 1.0 / (0.0123 * 2**11)
    assert 2**29 <= q["mult"] < 2**31
    assert abs(q["mult"] / 2 ** q["shift"] - real) / real < 2**-29


def test_scale_chooses_the_finest_coefficient_format_that_fits() -> None:
    p = parse_pipeline(cfg(blocks='[[block]]\nkind = "scale"\nalpha = 3.5\nout_frac = 12\n'))
    st = p.stages[0].params
    # 3.5 needs 2 integer bits in int16: Q2.13; the product must still fit 32 bits
    assert st["coef_frac"] == 13 and st["mult"] == [int(3.5 * 2**13)] * 3
    assert st["shift"] == 13 + 11 - 12


def test_interval_analysis_bounds_random_inputs() -> None:
    """Every block's computed output range contains what the twin produces on random and
    extreme inputs (the bounds are what the overflow checks rest on)."""
    rng = np.random.default_rng(0)
    for name in ("stream", "test_blocks_a", "test_blocks_b", "test_blocks_c"):
        p = load_pipeline(name)
        for trial in range(20):
            x = rng.integers(p.input.lo, p.input.hi + 1, (p.window, p.channels))
            if trial % 4 == 1:
                x[:] = p.input.hi
            elif trial % 4 == 2:
                x[::2] = p.input.lo
            for st in p.stages:
                x = run_stage(st, x)
                assert st.fout.lo <= int(x.min()) and int(x.max()) <= st.fout.hi, (name, st)


# ---- ring sizing ----------------------------------------------------------------------------

def test_min_capacity_formula() -> None:
    assert min_capacity(32, 0.05, 0.02) == 32 + 3
    assert min_capacity(32, 0.04, 0.02) == 32 + 2   # exactly two periods: two arrivals
    assert min_capacity(24, 0.0, 0.02) == 24


def test_ring_plan_shows_the_numbers() -> None:
    app = StreamApp()
    board = load_board("qemu_m33")
    plan = app._plan(board, {"pipeline": "test_stream_ok"})
    ring = plan["ring"]
    busy = plan["prediction"]["busy_instructions"][1]
    seconds = busy * 1024e-9
    assert ring.capacity == 32 + math.ceil(seconds / 0.04)
    assert f"= 32 + {ring.capacity - 32} = {ring.capacity}" in ring.text
    assert "worst-case window time" in ring.text


# ---- timers ---------------------------------------------------------------------------------

def test_timer_plans() -> None:
    m4 = timer_plan(load_board("qemu_m4"), 50)
    assert m4.reload == 499_999 and m4.driver.irq == 8
    assert period_instructions(load_board("qemu_m4"), m4) == pytest.approx(20e6 / 1024)
    m33 = timer_plan(load_board("qemu_m33"), 50)
    assert m33.reload == 399_999 and m33.driver.irq == 3 and m33.driver.base == 0x50000000
    m0 = timer_plan(load_board("qemu_m0"), 50)
    assert m0.period_ticks == 320_000 and m0.driver.irq == 8
    assert period_instructions(load_board("qemu_m0"), m0) == 19532  # measured on the twin
    l4 = timer_plan(load_board("nucleo_l476"), 50)
    assert (l4.psc, l4.arr) == (24, 63_999) and (l4.psc + 1) * (l4.arr + 1) == 1_600_000


# ---- the stream schedule, hand-worked ------------------------------------------------------

def test_schedule_without_overload() -> None:
    # W=4, H=2, C=5, the loop done before the next tick: windows every 2 samples from 4
    r = simulate_stream(10, 5, 4, 2, True, 1)
    assert r["window_end"] == [4, 6, 8, 10]
    assert (r["late_windows"], r["dropped"], r["max_occupancy"]) == (0, 0, 4)


def test_schedule_overloaded_drop_oldest() -> None:
    # busy 3 ticks per window, H=1, C=5: tick 4 takes [0,4); ticks 5, 6 arrive while held (the
    # second overflows: drop 1); tick 7 releases to 1, overflows again (drop 2), takes [3,7)
    # late; ticks 8, 9 (drop 3); tick 10 releases to 4, drops (4), takes [6,10) late.
    r = simulate_stream(10, 5, 4, 1, True, 3)
    assert r["window_end"] == [4, 7, 10]
    assert (r["late_windows"], r["dropped"], r["max_occupancy"]) == (2, 4, 5)


def test_schedule_overloaded_drop_newest() -> None:
    # the ring refuses samples instead: tick 6 is dropped (5 held), tick 7 releases to 1 and
    # takes the 6 accepted samples' last 4 (late: 2 since the last window); tick 9 dropped;
    # tick 10 releases to 3 and takes at 8 accepted (late).
    r = simulate_stream(10, 5, 4, 1, False, 3)
    assert r["window_end"] == [4, 6, 8]
    assert (r["late_windows"], r["dropped"], r["max_occupancy"]) == (2, 2, 5)


def test_ring_model_counts_like_the_c_ring() -> None:
    ring = RingModel(capacity=6, window=4, hop=2, drop_oldest=True)
    for _ in range(3):
        ring.push()
    assert ring.take() is None
    ring.push()
    assert ring.take() == 4 and ring.tail == 0
    ring.release()
    assert ring.tail == 2
    for _ in range(5):
        ring.push()
    assert ring.dropped == 1 and ring.max_occupancy == 6
    assert ring.take() == 9 and ring.late_windows == 1


def test_postprocessing_hand_worked() -> None:
    from generator.frontend.preprocess import postprocess

    p = load_pipeline("stream")
    post = p.post
    # thresholds -128 (0.0), margin 6, vote 2 of 3, hold 2, cooldown 2
    assert post.min_margin == 6 and post.thresholds == (-128,) * 4
    seq = [[10, 0, 0, 0], [10, 0, 0, 0], [10, 7, 0, 0], [0, 20, 0, 0], [0, 20, 0, 0],
           [0, 20, 0, 0], [0, 20, 0, 0], [0, 20, 0, 0]]
    res = postprocess(post, [np.array(s, np.int8) for s in seq])
    assert [r.top for r in res] == [0, 0, 0, 1, 1, 1, 1, 1]
    assert [r.accepted for r in res] == [0, 0, -1, 1, 1, 1, 1, 1]   # margin 3 < 6 rejects
    assert [r.voted for r in res] == [-1, 0, 0, -1, 1, 1, 1, 1]
    # state: 0 after two votes in a row (window 2); 1 needs two votes and the cooldown (2)
    assert [r.state for r in res] == [-1, -1, 0, 0, 0, 1, 1, 1]
    assert [r.changed for r in res] == [False, False, True, False, False, True, False, False]


def test_exact_rounding_of_scale_against_fractions() -> None:
    p = parse_pipeline(cfg(blocks='[[block]]\nkind = "scale"\nmean = 0.25\nalpha = 0.5\n'
                           'out_frac = 12\n'))
    st = p.stages[0]
    x = np.array([[-32768, -1, 32767], [5, 6, -7]] + [[0, 0, 0]] * 30)
    y = run_stage(st, x)
    for (t, c), v in np.ndenumerate(x):
        exact = (Fraction(int(v), 2**11) - Fraction(1, 4)) * Fraction(1, 2) * 2**12
        want = math.floor(exact + Fraction(1, 2))
        assert y[t, c] == max(-32768, min(32767, want))


# ---- image frames ---------------------------------------------------------------------------

IMAGES = """
name = "frames"
sample_rate_hz = 0.5
channels = 3
window = 64
hop = 64
[input]
type = "uint8"
scale = 0.00392156862745098
[[block]]
kind = "quantize"
scale = 0.003921568859368563
zero_point = -128
[source]
kind = "images"
height = 8
width = 8
images = 3
frames = 5
"""


def test_image_source_pixels_quantize_to_p_minus_128() -> None:
    from generator.frontend.emit import pipetest_windows
    from generator.frontend.pipeline import images_for, trace_for
    from generator.frontend.preprocess import run_pipeline

    p = parse_pipeline(tomllib.loads(IMAGES))
    assert (p.ring_window, p.ring_hop, p.ring_channels) == (1, 1, 1)
    assert trace_for(p)[:, 0].tolist() == [0, 1, 2, 0, 1]
    imgs = images_for(p)
    assert imgs.shape == (3, 64, 3) and imgs.dtype == np.uint8
    for _name, w in pipetest_windows(p):
        out = run_pipeline(p, w)
        assert np.array_equal(out.astype(int), w.reshape(-1).astype(int) - 128)


def test_image_source_errors() -> None:
    with pytest.raises(PipelineConfigError) as e:
        parse_pipeline(tomllib.loads(IMAGES.replace("window = 64\nhop = 64", "window = 60\n"
                                                                             "hop = 60")))
    assert "delivers whole 8x8 frames: set window = hop = 64" in str(e.value)
    with pytest.raises(PipelineConfigError) as e2:
        parse_pipeline(tomllib.loads(IMAGES.replace("type = \"uint8\"", "type = \"uint8\"\n"
                                                                       "frac = 8")))
    assert "either 'frac'" in str(e2.value)
    with pytest.raises(PipelineConfigError) as e3:
        parse_pipeline(tomllib.loads(IMAGES.replace('type = "uint8"', 'type = "int16"')))
    assert "image pixels uint8" in str(e3.value)


def test_har_without_its_model_says_where_to_get_it() -> None:
    from generator.frontend.emit import HarApp

    with pytest.raises(PipelineConfigError) as e:
        HarApp().pipeline({"model": "/nonexistent/ign.tflite"})
    msg = str(e.value)
    assert "model file '/nonexistent/ign.tflite' does not exist" in msg
    assert "ign_wl_24" in msg and "model=<path" in msg


def test_stream_app_refuses_a_model_pipeline_and_the_host() -> None:
    from generator.errors import AppError

    app = StreamApp()
    with pytest.raises(AppError) as e:
        app.context(load_board("host"), {"pipeline": "stream"})
    assert "needs a sample timer interrupt" in str(e.value) and "pipetest" in str(e.value)
    if (ROOT.parent / "shared" / "models" / "zoo").is_dir():
        with pytest.raises(AppError) as e2:
            app.pipeline({"pipeline": "har"})
        assert "use app=har" in str(e2.value)
