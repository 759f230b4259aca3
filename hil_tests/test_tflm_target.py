"""The TFLM backend on targets: outputs byte-equal with the TFLM interpreter of the tflite-micro
wheel (the independent reference), per-operator ticks through TFLM's profiler, and the closed-loop
arena. Needs a tflite-micro checkout (``SWEETSPOT_TFLM_ROOT``; ``./sweetspot.sh test`` uses
../shared/tflite-micro): without one every test here skips with one short reason, and fails in CI.

Cold, each (kernel set, core) compiles the TFLM library once; every later build takes its objects
from the backend's SCons cache. The default suite builds two (reference and CMSIS-NN on the
M33 twin); the other twins run with ``-m slow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from generator.boards import load_board
from generator.build.tflm_library import check_cxx
from generator.compiler.loader import load_model_structure
from generator.compiler.plan import tflm_arena
from generator.errors import FirmwareFault
from generator.firmware import MANIFEST
from generator.runner import RunRequest, run
from generator.tflm import tree as tflm
from generator.tflm.app import compare_tensors
from generator.tflm.arena import arena_with_margin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _util import missing, require_tflm_checkout  # noqa: E402 - tests/_util, the one copy

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT.parent / "shared" / "models" / "zoo"
IGN = ZOO / "ign_wl_24_int8.tflite"
STMNIST = ZOO / "stmnist_v1_int8.tflite"
MOBILENET = ZOO / "mobilenet_v1_0.25_96_int8.tflite"


@pytest.fixture(scope="module")
def checkout() -> Path:
    root = require_tflm_checkout()
    if not ZOO.is_dir():
        missing(f"zoo models not available: {ZOO} is absent (it lives in ../shared)")
    problem = None
    try:
        check_cxx(load_board("qemu_m33"))
    except tflm.TflmSetupError as e:
        problem = str(e).splitlines()[0]
    if problem:
        missing(problem)
    return root


def _run(board: str, model: Path, build: Path, **options: str) -> dict:
    opts = {"model": str(model), "backend": "tflm", **options}
    return run(RunRequest(board=board, app="infer", options=opts, build_dir=build, timeout=600))


def _assert_equal_to_interpreter(doc: dict, runs: int) -> None:
    checks = doc["checks"]
    outputs = [name for r in doc["app_info"]["reports"]["runs"] for name in r["outputs"]]
    assert sorted(checks) == sorted(outputs) and len(outputs) >= runs
    bad = {k: v for k, v in checks.items() if not v["ok"]}
    summary = {k: v.get("mismatches") for k, v in bad.items()}
    assert not bad, f"outputs differ from the TFLM interpreter (differing elements): {summary}"


def _assert_per_operator_ticks(doc: dict) -> None:
    info = doc["app_info"]
    layers = info["reports"]["layers"]
    assert layers == [f"layer{op['index']}" for op in info["layers"]]
    assert all(doc["cycles"][name]["ticks"] > 0 for name in layers) or doc["board"] == "host"


@pytest.mark.default_twins("qemu_m33")
def test_tflm_reference_on_every_twin(dut, checkout, tmp_path):
    """ign_wl_24 (float in, float out) with reference kernels: outputs equal to the interpreter on
    three input sets, every operator timed, the arena measured on this core and reserved with the
    stated margin."""
    doc = dut.run("infer", model=str(IGN), backend="tflm", inputs="3")
    _assert_equal_to_interpreter(doc, 3)
    _assert_per_operator_ticks(doc)
    arena = doc["app_info"]["tflm"]["arena"]
    used = doc["metrics"]["arena_used_bytes"]
    assert arena["source"] == "measured" and arena["measured_used"] == used
    tensors = len(load_model_structure(IGN).tensors)
    assert doc["metrics"]["arena_bytes"] == arena_with_margin(used, tensors)
    # 32-bit structs: less than the wheel's 64-bit recording, more than its activation plan
    host = tflm_arena(IGN)
    assert host.head < used < host.total


@pytest.mark.parametrize("model", [STMNIST, MOBILENET], ids=lambda p: p.stem)
def test_tflm_reference_zoo_models_m33(checkout, tmp_path, model):
    doc = _run("qemu_m33", model, tmp_path / "b", inputs="2")
    _assert_equal_to_interpreter(doc, 2)
    _assert_per_operator_ticks(doc)
    assert doc["app_info"]["planned_arena_bytes"] > 0


@pytest.mark.parametrize("model", [IGN, STMNIST, MOBILENET], ids=lambda p: p.stem)
def test_tflm_cmsis_nn_per_operator(checkout, tmp_path, model):
    """CMSIS-NN on the M33 twin: every operator's output tensor against the interpreter (the
    reference kernels' arithmetic), and the model outputs."""
    if tflm.missing_downloads(checkout, "cmsis_nn"):
        missing("the checkout lacks the CMSIS / CMSIS-NN downloads")
    doc = _run("qemu_m33", model, tmp_path / "b", tflm_kernels="cmsis_nn", inputs="2")
    _assert_equal_to_interpreter(doc, 2)
    dump = _run("qemu_m33", model, tmp_path / "d", tflm_kernels="cmsis_nn", tflm_dump="1")
    vectors = {k: np.asarray(v["values"], dtype=v["dtype"]) for k, v in dump["outputs"].items()}
    rows = compare_tensors(dump["app_info"], vectors)
    assert len(rows) == len(dump["app_info"]["layers"])
    differ = [r for r in rows if r["differ"] or r["missing"]]
    assert not differ, f"CMSIS-NN differs from the reference kernels: {differ}"


def test_tflm_arena_is_tight(checkout, tmp_path):
    """The closed loop's measurement is the real need: 16 B less and AllocateTensors fails, with
    TFLM's own message in the log and status 5."""
    doc = _run("qemu_m33", IGN, tmp_path / "ok")
    used = doc["metrics"]["arena_used_bytes"]
    with pytest.raises(FirmwareFault) as e:
        _run("qemu_m33", IGN, tmp_path / "small", tflm_arena=str(used - 16))
    bad = e.value.document  # type: ignore[attr-defined]
    assert bad["status"] == 5
    assert any("allocate" in line.lower() for line in bad["logs"]), bad["logs"]
    again = _run("qemu_m33", IGN, tmp_path / "exact", tflm_arena=str(used))
    assert again["checks"] and all(c["ok"] for c in again["checks"].values())


def test_sweetspot_run_backend_tflm(checkout, tmp_path):
    out = tmp_path / "r.json"
    p = subprocess.run(
        [sys.executable, "-m", "generator.cli", "run", "--board", "qemu_m33", "--model",
         str(IGN), "--backend", "tflm", "--tflm-root", str(checkout), "--build-dir",
         str(tmp_path / "b"), "--json", str(out)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
        env={**os.environ, tflm.ENV_ROOT: ""})
    assert p.returncode == 0, p.stderr
    doc = json.loads(out.read_text())
    assert doc["app_info"]["backend"] == "tflm"
    assert doc["checks"] and all(c["ok"] for c in doc["checks"].values())
    assert "check output0: OK" in p.stdout


def test_library_is_compiled_once_per_kernel_set_and_core(checkout, tmp_path):
    """One library build per (kernel set, core): a TFLM build in a new directory takes every
    library object from the backend's SCons cache and compiles only the generated glue."""
    from generator.build import scons_command

    _run("qemu_m33", IGN, tmp_path / "first")  # the library is in the cache after this at most
    build = tmp_path / "second"
    cmd = scons_command("qemu_m33", "infer", {"model": str(IGN), "backend": "tflm"}, build,
                        ["-j2"])
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    compiled = [ln for ln in p.stdout.splitlines() if ln.startswith("CXX(tflm)")]
    assert not compiled, f"{len(compiled)} library objects compiled again: {compiled[:3]}"
    info = json.loads((build / MANIFEST).read_text())["app_info"]["tflm"]
    tree = tflm.tree_from_manifest(info)
    objs = list((build / "tflm" / "obj").rglob("*.o"))
    # the model's kernels and the framework, not every kernel of the tree
    assert len(objs) == len(tree.library_sources(info["resolver"])) > 40
    assert len(objs) < len(tree.library_sources()) - 40
