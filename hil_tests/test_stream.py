"""The sensor front end on target: every block and whole pipelines byte-equal with the numpy
twins (including saturating inputs and the ring's wrap-around), a streaming run with no
overruns, and overloaded runs whose late windows and dropped samples are exactly what the
generator predicted."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from generator.frontend.emit import ZOO_ENV, pipetest_expected, zoo_dir
from generator.frontend.pipeline import load_pipeline

# ("stream" itself is checked window by window in test_stream_demo)
PIPELINES = ["test_blocks_a", "test_blocks_b", "test_blocks_c"]
COUNTERS = ("windows", "late_windows", "dropped", "max_occupancy")
PIPETEST_CHECKS = {"blocks", "ring"}
STREAM_CHECKS = {"features", "scores", "post"}  # generator.frontend.emit.check_stream


def assert_checked_ok(doc: dict, names: set[str]) -> None:
    """Every named check ran and all checks passed: ``all()`` over no checks passes too."""
    checks = doc["checks"]
    assert names <= set(checks), f"checks {sorted(names - set(checks))} did not run: {checks}"
    assert all(c["ok"] for c in checks.values()), checks


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
    assert_checked_ok(doc, PIPETEST_CHECKS)


def _stream(dut, name):
    if dut.board.kind != "qemu":
        pytest.skip("exact timing predictions need a QEMU twin under -icount")
    doc = dut.run("stream", pipeline=name)
    info = doc["app_info"]
    pred = info["prediction"]
    assert pred["exact"], pred["reason"]
    assert_checked_ok(doc, STREAM_CHECKS)
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
    assert_checked_ok(doc, STREAM_CHECKS)
    m = doc["metrics"]
    assert m["dropped"] == 0 and m["late_windows"] == 0 and m["windows"] == 24
    for stage in ("preprocess", "infer", "post"):
        assert doc["cycles"][f"{stage}_max"]["ticks"] >= doc["cycles"][f"{stage}_median"]["ticks"]


MODELS = Path(__file__).resolve().parents[1] / "models"
HAR_CLASSES = ["standing", "walking", "running", "badminton"]


def _needs_zoo(model: str) -> None:
    zoo = zoo_dir()
    if not (zoo / model).is_file():
        pytest.skip(f"{model} is not available: {zoo} does not have it (it lives in ../shared)")


def _model_stream(dut, app):
    if dut.board.kind != "qemu":
        pytest.skip("runs on the twins")
    doc = dut.run(app, timeout=300)
    # features equal the numpy twin, scores equal the TFLM interpreter, labels the twin's
    assert_checked_ok(doc, STREAM_CHECKS)
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
    """The default har: ign_wl_24 when the zoo has it, else the project's model."""
    doc = _model_stream(dut, "har")
    if (zoo_dir() / "ign_wl_24_int8.tflite").is_file():
        assert doc["app_info"]["model_choice"]["source"] == "zoo"
        assert doc["metrics"]["windows"] == 39
        assert doc["app_info"]["classifier"]["labels"][0] == "activity0"
    else:
        _check_project_har(doc)


def test_har_falls_back_to_the_project_model(dut, tmp_path, monkeypatch):
    """With the zoo absent (an empty $SWEETSPOT_ZOO), har runs models/har_int8.tflite on the
    held-out BasicMotions trace, equal to the numpy twin and TFLM, and mostly right."""
    monkeypatch.setenv(ZOO_ENV, str(tmp_path))
    _check_project_har(_model_stream(dut, "har"))


def _check_project_har(doc):
    info = doc["app_info"]
    assert info["model_choice"]["source"] == "project", info["model_choice"]
    assert info["model_choice"]["model"] == "har_int8.tflite"
    assert info["pipeline"]["name"] == "har_project"
    assert info["classifier"]["labels"] == HAR_CLASSES
    assert doc["metrics"]["windows"] == 65  # 800 samples, window 24, hop 12
    # the device's top class against the true activity of each window (majority of samples)
    truth = np.load(MODELS / "har_samples.npz")["trace_labels"]
    scores = np.asarray(doc["outputs"]["scores"]["values"]).reshape(-1, 4)
    ends = doc["outputs"]["window_end"]["values"]
    assert len(scores) == len(ends) == 65
    want = [np.bincount(truth[e - 24:e], minlength=4).argmax() for e in ends]
    hits = int(np.sum(scores.argmax(axis=1) == want))
    assert hits >= 55, f"{hits}/65 windows right"
    # the smoothed decision ends on the last activity of the trace (badminton)
    labels = np.asarray(doc["outputs"]["labels"]["values"]).reshape(-1, 4)
    assert labels[-1, 3] == 3


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

        with pytest.raises(BuildError) as e:
            dut.run("vww")
        # The fit check names the need (whatever the planner's arena is) against the twin's RAM.
        assert re.search(r"needs [\d,]+ B of RAM \(arena [\d,]+ B \+ runtime", str(e.value))
        assert "board qemu_m0 has 16,384 B" in str(e.value)
        return
    doc = _model_stream(dut, "vww")
    assert doc["metrics"]["windows"] == 8
    # the pixels went in as the model expects them: q = p - 128
    assert doc["app_info"]["pipeline"]["blocks"] == [
        "quantize: 9216x3 uint8 Q0 x 0.00392157 in [0, 255] -> 9216x3 int8 Q0 x 0.00392157 in "
        "[-128, 127]"]
