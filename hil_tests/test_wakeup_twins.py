"""The ``wakeup`` app on the boards under test: every streamed beat's screener status, screener
class and final class (the MLP after a wake-up reset) equal the numpy twin + the TFLM
interpreter, and the hash of every beat's levels and scores equals the numpy twin's (the app's
check, run by the runner). A wake-up is a real system reset on the QEMU twins (.noinit RAM
carries the state); the host twin re-enters the boot path.

Default suite: 96 beats (24 per class) on qemu_m33 (v8-M, plain table; protected table with
0.3 % read errors per looked-up bit) and qemu_m0 (v6-M, plain); -m slow: all 3,200 test beats on
every twin, read errors with both tables and a table stored at Q4. Needs ../shared/data/mitdb
(fails instead of skipping in CI)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _util import missing  # noqa: E402

from generator.wakeup import data  # noqa: E402

DEFAULT_TWINS = ("qemu_m33", "qemu_m0")
SUBSET = 96


@pytest.fixture(autouse=True)
def _mitdb() -> None:
    if not (data.mitdb_dir() / "100.dat").is_file():
        missing(f"MIT-BIH records are absent: {data.mitdb_dir()} (they live in ../shared)")


def _check(doc: dict[str, Any], beats: int) -> None:
    assert doc["status"] == 0
    assert doc["stream"]["corrupt_frames"] == 0 and doc["stream"]["lost_frames"] == 0
    bad = {k: v for k, v in doc["checks"].items() if not v["ok"]}
    assert not bad, f"the firmware differs from the numpy twin / TFLM: {bad}"
    stats = doc["outputs"]["wk_stats"]["values"]
    assert stats[1] == beats
    wakes = stats[2]
    assert 0 < wakes < beats  # both paths ran
    assert stats[3] == wakes + 1  # one boot per wake-up, plus the power-on boot
    if doc["board_kind"] == "qemu":
        cyc = doc["cycles"]
        per_beat = cyc["screener"]["instructions"] / beats
        per_mlp = cyc["mlp"]["instructions"] / wakes
        assert 100 < per_beat < 2000, per_beat            # a few hundred instructions
        assert per_mlp > 20 * per_beat, (per_mlp, per_beat)  # the MLP is the expensive path


@pytest.mark.parametrize("mode", ["plain", "protected"])
def test_wakeup_subset_equals_numpy_twin(dut: Any, mode: str) -> None:
    if dut.board.kind == "qemu" and dut.board.name not in DEFAULT_TWINS:
        pytest.skip("the default suite runs qemu_m33 and qemu_m0; -m slow does every twin")
    if mode == "protected" and dut.board.name == "qemu_m0":
        pytest.skip("the protected table runs on qemu_m33 in the default suite; -m slow: all")
    extra = {"inject": "0.003", "seed": 9} if mode == "protected" else {}  # + read errors
    doc = dut.run("wakeup", inputs=SUBSET, mode=mode, **extra)
    _check(doc, SUBSET)
    labels = doc["app_info"]["beats"]["labels"]
    assert sorted(set(labels)) == [0, 1, 2, 3]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "protected"])
def test_wakeup_all_beats_equal_numpy_twin(dut: Any, mode: str) -> None:
    doc = dut.run("wakeup", inputs=3200, mode=mode, timeout=900)
    _check(doc, 3200)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "protected"])
def test_wakeup_read_errors(dut: Any, mode: str) -> None:
    doc = dut.run("wakeup", inputs=400, mode=mode, inject="0.01", seed=4, timeout=600)
    _check(doc, 400)


@pytest.mark.slow
def test_wakeup_table_at_q4(dut: Any) -> None:
    doc = dut.run("wakeup", inputs=400, mode="protected", ql="Q4", seed=3, timeout=600)
    _check(doc, 400)
