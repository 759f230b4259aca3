"""Whole models on every board under test (default: the four QEMU twins): the infer app's
outputs, for several inputs compiled into the image, are byte-equal with the TFLM interpreter on
the same inputs (the app's check, run by the runner), and the per-layer counter figures add up.

A model either fits a board or does not, and the test knows which: on the twins only the pairs in
TOO_BIG may fail the fit check, and for those the build must stop with a FitError; any other model
that stops fitting (a planner or kernel regression) fails here instead of being skipped. On a real
board the planner's verdict is the expectation. Zoo models need ../shared/models/zoo (a skip
outside CI, a failure in CI).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _util import missing

from generator.compiler.loader import load_model
from generator.compiler.plan import plan_model, require_fit
from generator.errors import BuildError, FitError

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT.parent / "shared" / "models" / "zoo"
PROJECT = ["digits_cnn_int8", "digits_mlp_int8", "residual_int8"]
ZOO_NAMES = ["ign_wl_24_int8", "stmnist_v1_int8", "mobilenet_v1_0.25_96_int8"]


# (twin, model) pairs that do not fit, and why (the planner's numbers); nothing else may fail to.
TOO_BIG = {
    ("qemu_m0", "mobilenet_v1_0.25_96_int8"): "arena 36,864 B > the M0 twin's 16 KiB of RAM",
    ("qemu_m0", "fdmobilenet_0.25_128_int8"): "arena 49,280 B > 16 KiB",
    ("qemu_m0", "fdmobilenet_0.25_224_int8"): "arena 150,752 B > 16 KiB",
    ("qemu_m0", "squeezenet_v1.0_128_int8"): "arena 460,800 B > 16 KiB",
}


def _model(name: str) -> Path:
    if name in PROJECT:
        return ROOT / "models" / f"{name}.tflite"
    if not ZOO.is_dir():
        missing(f"zoo models not available: {ZOO} is absent (it lives in ../shared)")
    return ZOO / f"{name}.tflite"


def _fits(dut, name: str, path: Path) -> bool:  # noqa: ANN001
    """Whether the model fits the board (the planner's check), asserted against TOO_BIG on a
    twin; a model that does not fit must be refused by the build with the fit check's message."""
    board = dut.board
    try:
        require_fit(plan_model(load_model(path)), board.flash.length, board.ram.length,
                    board=board.name)
        fits, why = True, ""
    except FitError as e:
        fits, why = False, str(e)
    if board.kind == "qemu":
        expected = (board.name, name) not in TOO_BIG
        assert fits == expected, (
            f"{name} on {board.name}: expected to {'fit' if expected else 'not fit'}"
            + (f", but: {why}" if why else f" ({TOO_BIG[(board.name, name)]}), but it fits: "
               "update TOO_BIG"))
    if not fits:  # the build refuses it with the fit check's message (from the SCons child)
        with pytest.raises((FitError, BuildError), match=f"needs .* board {board.name} has"):
            dut.run("infer", model=str(path), seed=31, inputs=1)
    return fits


def _check(doc: dict, runs: int) -> None:
    info = doc["app_info"]
    assert doc["status"] == 0
    assert doc["stream"]["corrupt_frames"] == 0 and doc["stream"]["lost_frames"] == 0
    names = [n for r in info["reports"]["runs"] for n in r["outputs"]]
    assert len(names) == runs * len(info["outputs"])
    assert set(doc["checks"]) == set(names)
    bad = {k: v["mismatches"] for k, v in doc["checks"].items() if not v["ok"]}
    assert not bad, f"outputs differ from TFLM: {bad}"
    # The per-layer figures of the first run add up to its total.
    cyc = doc["cycles"]
    total = cyc[info["reports"]["runs"][0]["cycles"]]["ticks"]
    assert sum(cyc[n]["ticks"] for n in info["reports"]["layers"]) == total


@pytest.mark.parametrize("name", PROJECT + ZOO_NAMES)
def test_model_outputs_equal_tflm(dut, name: str) -> None:  # noqa: ANN001
    path = _model(name)
    if not _fits(dut, name, path):
        return  # refused with a FitError, as expected
    runs = 2 if "mobilenet" in name else 4
    doc = dut.run("infer", model=str(path), seed=31, inputs=runs, timeout=600)
    _check(doc, runs)


#: research benchmarks that need constant folding (FDMobileNet's SHAPE/STRIDED_SLICE/PACK) or
#: MUL with constant vectors (SqueezeNet): ~7.5 M, ~23 M and ~965 M instructions per inference
#: on the Cortex-M33 twin
FOLD_MUL = ["fdmobilenet_0.25_128_int8", "fdmobilenet_0.25_224_int8", "squeezenet_v1.0_128_int8"]


@pytest.mark.zoo
@pytest.mark.default_twins("qemu_m33")
@pytest.mark.parametrize("name", FOLD_MUL)
def test_folded_and_mul_benchmarks_equal_tflm(dut, name: str) -> None:  # noqa: ANN001
    path = _model(name)
    if not _fits(dut, name, path):
        return  # refused with a FitError, as expected
    doc = dut.run("infer", model=str(path), seed=31, inputs=1, timeout=900)
    _check(doc, 1)
    # the shape plumbing is folded away: no layer runs it
    assert len(doc["app_info"]["reports"]["layers"]) == len(load_model(path).operators)


@pytest.mark.slow
@pytest.mark.zoo
@pytest.mark.parametrize("name", FOLD_MUL)
def test_folded_and_mul_benchmarks_more_inputs(dut, name: str) -> None:  # noqa: ANN001
    path = _model(name)
    if not _fits(dut, name, path):
        return  # refused with a FitError, as expected
    doc = dut.run("infer", model=str(path), seed=57, inputs=3, timeout=1800)
    _check(doc, 3)


def test_real_digits_samples(dut, tmp_path: Path) -> None:  # noqa: ANN001
    path = _model("digits_cnn_int8")
    with np.load(ROOT / "models" / "digits_samples.npz") as f:
        images, labels = f["images"][:8], f["labels"][:8]
    inputs = tmp_path / "digits8.npy"
    np.save(inputs, images)
    doc = dut.run("infer", model=str(path), input=str(inputs))
    _check(doc, 8)
    preds = [int(np.argmax(doc["outputs"][f"output0[{k}]"]["values"])) for k in range(8)]
    assert sum(p == int(lbl) for p, lbl in zip(preds, labels)) >= 6


def test_counts_are_deterministic(dut) -> None:  # noqa: ANN001
    if dut.board.kind != "qemu":
        pytest.skip("only an emulated twin under -icount counts deterministically")
    path = _model("digits_cnn_int8")
    a = dut.run("infer", model=str(path), seed=5)["cycles"]
    b = dut.run("infer", model=str(path), seed=5)["cycles"]
    assert a == b
