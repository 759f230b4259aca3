"""The sensor front end on target: every block and whole pipelines byte-equal with the numpy
twins (including saturating inputs and the ring's wrap-around), a streaming run with no
overruns, and overloaded runs whose late windows and dropped samples are exactly what the
generator predicted."""

from __future__ import annotations

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
