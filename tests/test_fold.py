"""Constant folding at generation time (generator/compiler/fold.py): shape plumbing (SHAPE,
STRIDED_SLICE, PACK, int32 arithmetic) is evaluated in numpy and leaves the graph.

The folded values are checked against the TFLM interpreter running the same operators (the
int32 tensors are graph outputs of the test models), a chain that feeds a RESHAPE is built for
the host and compared end to end, and operators that cannot fold are still named as
unsupported."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _infer_util import compare_model
from tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from generator.compiler.loader import load_model
from generator.compiler.modelgen import ModelBuilder, QParams, write_model
from generator.compiler.plan import format_stats_table, plan_model, plan_to_dict
from generator.errors import ModelError


def _int32_binary(b: ModelBuilder, opcode: int, x, y, shape, activation: str = "NONE"):  # noqa: ANN001, ANN202
    out = b._act_tensor(shape, "int32", None, 1.0, "arith")
    if opcode == schema.BuiltinOperator.MUL:
        o, kind = schema.MulOptionsT(), schema.BuiltinOptions.MulOptions
    elif opcode == schema.BuiltinOperator.ADD:
        o, kind = schema.AddOptionsT(), schema.BuiltinOptions.AddOptions
    else:
        o, kind = schema.SubOptionsT(), schema.BuiltinOptions.SubOptions
    o.fusedActivationFunction = {"NONE": 0, "RELU": 1, "RELU6": 3}[activation]
    b._op(opcode, [x, y], [out], kind, o)
    return out


def _plumbing_model(path: Path) -> list[str]:
    """One int8 input; every output an int32 vector computed from its shape or constants."""
    b = ModelBuilder(seed=3, name="plumbing")
    x = b.input((1, 4, 6, 8))
    s = b.shape(x)  # [1, 4, 6, 8]
    outs = {
        "shape": s,
        "first, shrunk": b.strided_slice(s, [0], [1], [1], (), shrink_axis_mask=1),
        "last three, end mask": b.strided_slice(s, [-3], [0], [1], (3,), end_mask=1),
        "backwards by 2": b.strided_slice(s, [3], [0], [-2], (2,)),
        "begin mask, clamped end": b.strided_slice(s, [2], [99], [1], (4,), begin_mask=1),
        "negative end": b.strided_slice(s, [0], [-1], [1], (3,)),
        "backwards, masks": b.strided_slice(s, [0], [0], [-1], (4,), begin_mask=1, end_mask=1),
        "2-D, row shrunk": b.strided_slice(b.int32_constant([[1, 2, 3], [4, 5, 6]]),
                                           [1, 0], [2, 3], [1, 2], (2,), shrink_axis_mask=1),
    }
    n = outs["first, shrunk"]
    outs["pack scalars"] = b.pack([n, b.int32_constant(1), b.int32_constant(1),
                                   b.int32_constant(256)])
    outs["pack vectors, axis 1"] = b.pack([outs["last three, end mask"],
                                           b.int32_constant([7, 8, 9])], axis=1)
    outs["pack, axis -1"] = b.pack([outs["backwards by 2"], outs["backwards by 2"]], axis=-1)
    outs["mul broadcast"] = _int32_binary(b, schema.BuiltinOperator.MUL, s,
                                          b.int32_constant(3), (4,))
    outs["add relu6"] = _int32_binary(b, schema.BuiltinOperator.ADD, s,
                                      b.int32_constant([-9, 0, 1, -7]), (4,), "RELU6")
    outs["sub"] = _int32_binary(b, schema.BuiltinOperator.SUB, s,
                                b.int32_constant([[1], [2]]), (2, 4))
    outs["sub relu"] = _int32_binary(b, schema.BuiltinOperator.SUB, s,
                                     b.int32_constant([2, 2, 9, 2]), (4,), "RELU")
    outs["mul relu6"] = _int32_binary(b, schema.BuiltinOperator.MUL, s,
                                      b.int32_constant([-1, 1, 2, 1]), (4,), "RELU6")
    for t in outs.values():
        b.output(t)
    write_model(b, path)
    return list(outs)


def test_folded_values_equal_tflm(tmp_path: Path) -> None:
    path = tmp_path / "plumbing.tflite"
    labels = _plumbing_model(path)
    graph = load_model(path)
    assert graph.operators == ()  # everything folded: the input is only measured
    assert len(graph.folded) == len(labels)
    interpreter = runtime.Interpreter.from_file(str(path))
    interpreter.set_input(np.zeros((1, 4, 6, 8), np.int8), 0)
    interpreter.invoke()
    for i, (label, t) in enumerate(zip(labels, graph.outputs)):
        ours = graph.tensor(t).data
        ref = np.asarray(interpreter.get_output(i))
        assert ours is not None, label
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, label
        assert ours.tolist() == ref.tolist(), f"{label}: ours {ours.tolist()} tflm {ref.tolist()}"
    # the hand-worked FDMobileNet flatten: [N, 1, 1, 256] with N from the shape
    assert graph.tensor(graph.outputs[labels.index("pack scalars")]).data.tolist() == [
        1, 1, 1, 256]


def _flatten_model(path: Path) -> None:
    """FDMobileNet's head in small: conv, SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, FC, and a
    second flatten through a computed shape before the softmax."""
    b = ModelBuilder(seed=11, name="flatten")
    x = b.input((1, 4, 4, 8))
    y = b.conv2d(x, 8, kernel=(1, 1), padding="VALID", activation="RELU")
    n = b.strided_slice(b.shape(y), [0], [1], [1], (), shrink_axis_mask=1)
    flat = b.reshape_by(y, b.pack([n, b.int32_constant(128)]), (1, 128))
    z = b.fully_connected(flat, 10)
    z4 = b.reshape_by(z, b.pack([n, b.int32_constant(1), b.int32_constant(1),
                                 b.int32_constant(10)]), (1, 1, 1, 10))
    b.output(b.softmax(z4, beta=1.0))
    write_model(b, path)


def test_folded_chain_runs_like_tflm(tmp_path: Path) -> None:
    path = tmp_path / "flatten.tflite"
    _flatten_model(path)
    graph = load_model(path)
    assert [op.opcode for op in graph.operators] == [
        "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX"]
    assert [op.index for op in graph.operators] == list(range(5))  # renumbered
    assert [f.opcode for f in graph.folded] == ["SHAPE", "STRIDED_SLICE", "PACK", "PACK"]
    reshape = graph.operators[1]
    assert graph.tensor(reshape.inputs[1]).data.tolist() == [1, 128]  # a constant shape now
    plan = plan_model(graph)
    # no arena bytes for the int32 plumbing
    assert all(graph.tensor(a.tensor).dtype == "int8" for a in plan.allocations)
    compared, mismatches = compare_model(path, tmp_path / "build", seed=5, count=5)
    assert compared == 5 and not mismatches, mismatches


def test_inspect_lists_what_was_folded(tmp_path: Path) -> None:
    path = tmp_path / "flatten.tflite"
    _flatten_model(path)
    plan = plan_model(load_model(path))
    text = format_stats_table(plan)
    assert "folded            4 operators into constants" in text
    assert "SHAPE -> #" in text and "PACK -> #" in text and "= [1, 128]" in text
    doc = json.loads(json.dumps(plan_to_dict(plan)))
    assert [f["opcode"] for f in doc["folded"]] == ["SHAPE", "STRIDED_SLICE", "PACK", "PACK"]
    assert doc["folded"][2]["values"] == [[1, 128]]


def test_inspect_cli_lists_fdmobilenet_folding(zoo_dir: Path) -> None:
    import subprocess
    import sys

    from _util import ROOT

    model = zoo_dir / "fdmobilenet_0.25_128_int8.tflite"
    out = subprocess.run([sys.executable, "-m", "generator.cli", "inspect", "--json", str(model)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)
    folded = json.loads(out.stdout)["plan"]["folded"]
    assert [(f["index"], f["opcode"], f["values"]) for f in folded] == [
        (25, "SHAPE", [[1, 256]]), (26, "STRIDED_SLICE", [[1]]),
        (27, "PACK", [[1, 1, 1, 256]]), (31, "SHAPE", [[1, 1, 1, 5]]),
        (32, "STRIDED_SLICE", [[1]]), (33, "PACK", [[1, 5]])]


def test_unfoldable_operators_run_as_kernels(tmp_path: Path) -> None:
    """STRIDED_SLICE and PACK of int8 activations are not folded (non-constant data) but run
    as kernels; SHAPE of the same tensor folds."""
    b = ModelBuilder(seed=2, name="unfoldable")
    x = b.input((1, 4, 4, 2), q=QParams(0.05, 0))
    s = b.strided_slice(x, [0, 1, 0, 0], [1, 3, 4, 2], [1, 1, 1, 1], (1, 2, 4, 2))
    b.output(b.pack([s, s], axis=0))
    b.output(b.shape(x))
    graph = load_model(write_model(b, tmp_path / "unfoldable.tflite"))
    assert [op.opcode for op in graph.operators] == ["STRIDED_SLICE", "PACK"]
    assert [f.opcode for f in graph.folded] == ["SHAPE"]


def test_inconsistent_folded_shape_is_rejected(tmp_path: Path) -> None:
    """A PACK whose declared output disagrees with what it computes: a clear ModelError."""
    b = ModelBuilder(seed=2, name="badpack")
    x = b.input((1, 4, 4, 2))
    n = b.strided_slice(b.shape(x), [0], [1], [1], (), shrink_axis_mask=1)
    p = b.pack([n, b.int32_constant(32)])
    p.t.shape = (3,)  # declared wrongly
    b.output(b.reshape_by(x, p, (1, 32)))
    path = write_model(b, tmp_path / "badpack.tflite")
    with pytest.raises(ModelError, match=r"PACK computes a value of shape \[2\] but its "
                                         r"output tensor .* is declared \[3\]"):
        load_model(path)


def test_folded_reshape_shape_must_match_the_output(tmp_path: Path) -> None:
    b = ModelBuilder(seed=2, name="badreshape")
    x = b.input((1, 4, 4, 2))
    n = b.strided_slice(b.shape(x), [0], [1], [1], (), shrink_axis_mask=1)
    b.output(b.reshape_by(x, b.pack([n, b.int32_constant(16), b.int32_constant(2)]),
                          (1, 32, 1)))
    path = write_model(b, tmp_path / "badreshape.tflite")
    with pytest.raises(ModelError, match=r"computes the shape \[1, 16, 2\] but declares its "
                                         r"output \[1, 32, 1\]"):
        load_model(path)


@pytest.mark.parametrize("what", ["offset", "short indices"])
def test_strided_slice_tflm_cannot_run_is_refused(tmp_path: Path, what: str) -> None:
    """TFLM never honours offset=True and reads one begin/end/stride per input dimension: a
    model relying on either stops at load with the operator named."""
    b = ModelBuilder(seed=2, name="slice")
    x = b.input((1, 4, 4, 2))
    if what == "offset":
        s = b.strided_slice(b.shape(x), [1], [2], [1], (2,), offset=True)
    else:
        s = b.strided_slice(b.int32_constant([[1, 2, 3], [4, 5, 6]]), [1], [2], [1], (1, 3))
    b.output(s)
    path = write_model(b, tmp_path / "slice.tflite")
    match = "ignores" if what == "offset" else "TFLM reads one per dimension"
    with pytest.raises(ModelError, match=rf"STRIDED_SLICE has constant inputs but cannot be "
                                         rf"folded: .*{match}"):
        load_model(path)
