"""The sensor front end on target: every block and whole pipelines byte-equal with the numpy
twins (including saturating inputs and the ring's wrap-around), a streaming run with no
overruns, and overloaded runs whose late windows and dropped samples are exactly what the
generator predicted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generator.emit.stream import pipetest_expected
from generator.pipeline import load_pipeline

# ("stream" itself is checked window by window in test_stream_demo)
PIPELINES = ["test_blocks_a", "test_blocks_b", "test_blocks_c"]
COUNTERS = ("windows", "late_windows", "dropped", "max_occupancy")


@pytest.mark.parametrize("name", PIPELINES)
def test_pipetest_blocks_and_ring_equal_twins(dut, name):
    doc = dut.run("pipetest", pipeline=name)
    exp = pipetest_expected(load_pipeline(name))
    for key, want in exp.items():
        if isinstance(want, np.ndarray):
            got = doc["outputs"][key]
            assert got["dtype"] == str(want.dtype) and got["values"] == want.tolist(), key
        elif isinstance(want, list):
            assert doc["outputs"][key]["values"] == want, key
        else:
            assert doc["metrics"][key] == want, key
    assert all(c["ok"] for c in doc["checks"].values()), doc["checks"]


def _stream(dut, name):
    if dut.board.kind != "qemu":
        pytest.skip("exact timing predictions need a QEMU twin under -icount")
    doc = dut.run("stream", pipeline=name)
    info = doc["app_info"]
    pred = info["prediction"]
    assert pred["exact"], pred["reason"]
    assert all(c["ok"] for c in doc["checks"].values()), doc["checks"]
    m = doc["metrics"]
    assert m["samples"] == info["samples"] and m["torn"] == 0
    for k in COUNTERS:
        assert m[k] == pred[k], (k, m[k], pred[k])
    assert doc["outputs"]["window_end"]["values"] == pred["window_end"]
    # the assumption behind the prediction: busy time within the generator's bound
    busy = doc["cycles"]["window_max"]["instructions"]
    lo, hi = pred["busy_instructions"]
    assert lo <= doc["cycles"]["window_min"]["instructions"] and busy <= hi, (busy, lo, hi)
    return doc


def test_stream_without_overruns(dut):
    doc = _stream(dut, "test_stream_ok")
    m = doc["metrics"]
    assert m["late_windows"] == 0 and m["dropped"] == 0 and m["windows"] == 22
    assert m["max_occupancy"] <= doc["app_info"]["ring"]["capacity"]
    c = doc["cycles"]
    for stage in ("preprocess", "infer", "post"):
        ticks = doc["outputs"][f"ticks_{stage}"]["values"]
        assert c[f"{stage}_median"]["ticks"] == sorted(ticks)[(len(ticks) - 1) // 2]
        assert c[f"{stage}_max"]["ticks"] == max(ticks)


@pytest.mark.parametrize("name", ["test_overload", "test_overload_newest"])
def test_overloaded_stream_counts_exactly(dut, name):
    doc = _stream(dut, name)
    m = doc["metrics"]
    assert m["dropped"] > 0
    if name == "test_overload":
        assert m["late_windows"] == m["windows"] - 1
    assert doc["app_info"]["ring"]["capacity"] < doc["app_info"]["ring"]["minimum"]


def test_stream_demo(dut):
    if dut.board.kind != "qemu":
        pytest.skip("runs on the twins")
    doc = dut.run("stream")
    assert doc["status"] == 0
    assert all(c["ok"] for c in doc["checks"].values()), doc["checks"]
    m = doc["metrics"]
    assert m["dropped"] == 0 and m["late_windows"] == 0 and m["windows"] == 24
    for stage in ("preprocess", "infer", "post"):
        assert doc["cycles"][f"{stage}_max"]["ticks"] >= doc["cycles"][f"{stage}_median"]["ticks"]


ZOO = Path(__file__).resolve().parents[2] / "shared" / "models" / "zoo"


def _needs_zoo(model: str) -> None:
    if not (ZOO / model).is_file():
        pytest.skip(f"{model} is not available: {ZOO} is absent (it lives in ../shared)")


def _model_stream(dut, app):
    if dut.board.kind != "qemu":
        pytest.skip("runs on the twins")
    doc = dut.run(app, timeout=300)
    # features equal the numpy twin, scores equal the TFLM interpreter, labels the twin's
    assert all(c["ok"] for c in doc["checks"].values()), doc["checks"]
    m = doc["metrics"]
    pred = doc["app_info"]["prediction"]
    assert m["late_windows"] == 0 and m["dropped"] == 0 and m["torn"] == 0
    assert m["windows"] == pred["windows"]
    assert doc["outputs"]["window_end"]["values"] == pred["window_end"]
    # the ring was sized from an estimate of the model's time: it must be an upper bound
    assert doc["cycles"]["window_max"]["instructions"] <= pred["busy_instructions"][1]
    assert m["max_occupancy"] <= doc["app_info"]["ring"]["capacity"]
    return doc


def test_har_stream_matches_tflm(dut):
    _needs_zoo("ign_wl_24_int8.tflite")
    doc = _model_stream(dut, "har")
    assert doc["metrics"]["windows"] == 39
    assert doc["app_info"]["classifier"]["labels"][0] == "activity0"


def test_vww_frames_match_tflm(dut):
    """qemu_m4 by default (each twin runs ~235 M instructions); all twins with -m slow."""
    _needs_zoo("mobilenet_v1_0.25_96_int8.tflite")
    _vww(dut)


@pytest.mark.slow
def test_vww_on_every_twin(dut):
    _needs_zoo("mobilenet_v1_0.25_96_int8.tflite")
    _vww(dut, every_twin=True)


def _vww(dut, every_twin: bool = False):
    if dut.board.name not in ("qemu_m4", "qemu_m0") and not every_twin:
        pytest.skip("vww runs on qemu_m4 (and checks qemu_m0's fit error); -m slow for all")
    if dut.board.core == "cortex-m0":
        from generator.errors import BuildError

        with pytest.raises(BuildError, match="needs 60,416 B of RAM"):
            dut.run("vww")
        return
    doc = _model_stream(dut, "vww")
    assert doc["metrics"]["windows"] == 8
    # the pixels went in as the model expects them: q = p - 128
    assert doc["app_info"]["pipeline"]["blocks"] == [
        "quantize: 9216x3 uint8 Q0 x 0.00392157 in [0, 255] -> 9216x3 int8 Q0 x 0.00392157 in "
        "[-128, 127]"]
