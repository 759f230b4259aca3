"""The operator groups of tests/test_kernels.py on the boards under test (default: the QEMU
twins): on Cortex-M4/M7/M33 they run the assembly inner loops and the DSP-instruction
requantization the host never executes, on Cortex-M0 the scalar reference loops; the in-place
chains run them on plans that write outputs over their inputs at the tightest gaps. Outputs must
equal the TFLM interpreter's on the same inputs (the infer app's check)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_kernels import GROUPS, _build_group, _inplace_models  # noqa: E402

from generator.compiler.modelgen import ModelBuilder, write_model  # noqa: E402

GROUP_NAMES = ["conv", "conv_tiled", "depthwise", "depthwise_mult", "fully_connected", "networks",
               "add", "mul"]
IN_PLACE = sorted(_inplace_models())


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("kernel-models")
    out = {}
    for group in GROUP_NAMES:
        path = d / f"{group}.tflite"
        _build_group(GROUPS[group](), seed=sum(map(ord, group)), path=path)
        out[group] = path
    for name in IN_PLACE:
        b = ModelBuilder(seed=sum(map(ord, name)), name=name)
        b.output(_inplace_models()[name](b))
        out[name] = write_model(b, d / f"{name}.tflite")
    return out


@pytest.mark.parametrize("group", GROUP_NAMES + IN_PLACE)
def test_operator_group_on_target_equals_tflm(dut, models: dict[str, Path], group: str
                                              ) -> None:  # noqa: ANN001
    doc = dut.run("infer", model=str(models[group]), seed=41, inputs=3, timeout=300)
    assert doc["status"] == 0
    assert doc["checks"], "the run reported no outputs to check"
    bad = {k: v.get("mismatches") for k, v in doc["checks"].items() if not v["ok"]}
    assert not bad, f"outputs differ from TFLM: {bad}"


#: the data-movement, selection and table groups (index-map and 256-entry-table kernels)
MOVEMENT_GROUPS = ["transpose_slice", "reshuffle", "split_pack", "select", "sub", "leaky_relu"]


@pytest.mark.default_twins("qemu_m33", "qemu_m0")
def test_movement_selection_and_tables_on_target_equal_tflm(dut, tmp_path: Path  # noqa: ANN001
                                                           ) -> None:
    """Every case of the groups above in one model (one build per twin)."""
    cases = [case for group in MOVEMENT_GROUPS for case in GROUPS[group]()]
    path = tmp_path / "movement.tflite"
    _build_group(cases, seed=10, path=path)
    doc = dut.run("infer", model=str(path), seed=43, inputs=3, timeout=300)
    assert doc["status"] == 0
    assert len(doc["checks"]) == 3 * len(cases)
    bad = {k: v.get("mismatches") for k, v in doc["checks"].items() if not v["ok"]}
    assert not bad, f"outputs differ from TFLM: {bad}"
