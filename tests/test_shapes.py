"""Shapes are checked, not trusted (issue 9, item 4): every operator's output shape must follow
from its inputs and options, or the loader names the operator.

Independent sides: the shapes the TFLite converter wrote into the project and zoo models (all must
pass), hand-worked window sizes, and schema-aware mutants (the object API of the tflite-micro
wheel's schema) whose output shapes no longer follow — each must fail naming the operator."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path

import flatbuffers
import pytest
from _util import ROOT, ZOO
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

from generator.compiler.loader import load_model, load_model_bytes
from generator.compiler.modelgen import ModelBuilder
from generator.compiler.shapes import ShapeError, out_size
from generator.errors import ModelError, UnsupportedOperatorError

MODELS = sorted((ROOT / "models").glob("*.tflite"))
ZOO_MODELS = sorted(ZOO.glob("*.tflite")) if ZOO.is_dir() else []


@pytest.mark.parametrize("path", MODELS + ZOO_MODELS, ids=lambda p: p.name)
def test_converter_made_models_pass_the_shape_check(path: Path) -> None:
    with contextlib.suppress(UnsupportedOperatorError):  # squeezenet's MUL: refused earlier
        load_model(path)
    assert path.is_file()


def test_every_supported_operator_has_a_shape_rule() -> None:
    from generator.compiler.loader import SUPPORTED_OPS
    from generator.compiler.shapes import _RULES, ARITY

    assert sorted(SUPPORTED_OPS - set(_RULES)) == []
    assert sorted(SUPPORTED_OPS - set(ARITY)) == []


def test_window_sizes_hand_worked() -> None:
    # SAME: ceil(n / s); VALID: ceil((n - e + 1) / s), e = (k - 1) * d + 1
    assert out_size("SAME", 7, 3, 2, 1, "f") == 4
    assert out_size("VALID", 7, 3, 2, 1, "f") == 3
    assert out_size("VALID", 7, 3, 1, 2, "f") == 3  # e = 5
    assert out_size("VALID", 8, 2, 2, 1, "f") == 4
    assert out_size("SAME", 1, 5, 1, 1, "f") == 1
    with pytest.raises(ShapeError, match="larger than the input's 4"):
        out_size("VALID", 4, 3, 1, 2, "filter height")


# ---- mutants ---------------------------------------------------------------------------------

def _model(path: Path | bytes) -> tfl.ModelT:
    data = path if isinstance(path, bytes) else path.read_bytes()
    return tfl.ModelT.InitFromPackedBuf(bytearray(data), 0)


def _pack(model: tfl.ModelT) -> bytes:
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _opcode(model: tfl.ModelT, op: tfl.OperatorT) -> str:
    names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    oc = model.operatorCodes[op.opcodeIndex]
    return names[max(oc.builtinCode, oc.deprecatedBuiltinCode)]


def _find(model: tfl.ModelT, opcode: str, nth: int = 0) -> tuple[int, tfl.OperatorT]:
    hits = [(i, op) for i, op in enumerate(model.subgraphs[0].operators)
            if _opcode(model, op) == opcode]
    return hits[nth]


def _set_output_shape(opcode: str, change: Callable[[list[int]], list[int]], nth: int = 0
                      ) -> Callable[[tfl.ModelT], int]:
    def mutate(model: tfl.ModelT) -> int:
        i, op = _find(model, opcode, nth)
        t = model.subgraphs[0].tensors[op.outputs[0]]
        t.shape = change([int(d) for d in t.shape])
        t.shapeSignature = None
        return i
    return mutate


def _set(shape: list[int], axis: int, value: int) -> list[int]:
    shape[axis] = value
    return shape


def _builder_model(op: str) -> bytes:
    b = ModelBuilder(seed=3, name=op.lower())
    x = b.input((1, 6, 6, 4))
    if op == "RELU":
        y = b.relu(x)
    elif op == "RELU6":
        y = b.relu6(x)
    else:
        y = b.avg_pool2d(x, (2, 2))
    b.output(y)
    return b.build()


CNN = ROOT / "models" / "digits_cnn_int8.tflite"
MLP = ROOT / "models" / "digits_mlp_int8.tflite"
RES = ROOT / "models" / "residual_int8.tflite"
HAR = ROOT / "models" / "har_int8.tflite"

MUTANTS: list[tuple[str, Path | str, Callable[[tfl.ModelT], int], str]] = [
    ("softmax_1e8", MLP, _set_output_shape("SOFTMAX", lambda s: [1, 100_000_000]), "SOFTMAX"),
    ("conv_wrong_h", CNN, _set_output_shape("CONV_2D", lambda s: _set(s, 1, s[1] + 1)),
     "CONV_2D"),
    ("conv_wrong_c", RES, _set_output_shape("CONV_2D", lambda s: _set(s, 3, s[3] * 2), 4),
     "CONV_2D"),
    ("dwconv_wrong_w", CNN, _set_output_shape("DEPTHWISE_CONV_2D", lambda s: _set(s, 2, 1)),
     "DEPTHWISE_CONV_2D"),
    ("fc_wrong_units", MLP, _set_output_shape("FULLY_CONNECTED", lambda s: _set(s, 1, s[1] + 3)),
     "FULLY_CONNECTED"),
    ("fc_wrong_rank", HAR, _set_output_shape("FULLY_CONNECTED", lambda s: [1, 1, *s]),
     "FULLY_CONNECTED"),
    ("maxpool_wrong_h", CNN, _set_output_shape("MAX_POOL_2D", lambda s: _set(s, 1, s[1] * 2)),
     "MAX_POOL_2D"),
    ("add_wrong", RES, _set_output_shape("ADD", lambda s: _set(s, 1, s[1] + 2)), "ADD"),
    ("concat_wrong_axis_size", RES,
     _set_output_shape("CONCATENATION", lambda s: _set(s, 3, s[3] + 1)), "CONCATENATION"),
    ("pad_wrong", RES, _set_output_shape("PAD", lambda s: _set(s, 1, s[1] - 1)), "PAD"),
    ("mean_keeps_dims", RES, _set_output_shape("MEAN", lambda s: [s[0], 1, 1, s[-1]]), "MEAN"),
    ("reshape_count", CNN, _set_output_shape("RESHAPE", lambda s: _set(s, -1, s[-1] + 1)),
     "RESHAPE"),
    ("quantize_wrong", HAR, _set_output_shape("QUANTIZE", lambda s: _set(s, 1, 12)), "QUANTIZE"),
    ("dequantize_wrong", HAR, _set_output_shape("DEQUANTIZE", lambda s: [1, 400]), "DEQUANTIZE"),
    ("relu_wrong", "RELU", _set_output_shape("RELU", lambda s: _set(s, 3, 5)), "RELU"),
    ("relu6_wrong", "RELU6", _set_output_shape("RELU6", lambda s: _set(s, 0, 2)), "RELU6"),
    ("avgpool_wrong", "AVERAGE_POOL_2D",
     _set_output_shape("AVERAGE_POOL_2D", lambda s: _set(s, 2, 6)), "AVERAGE_POOL_2D"),
]


def _mutant(source: Path | str, mutate: Callable[[tfl.ModelT], int]) -> tuple[bytes, int]:
    model = _model(source if isinstance(source, Path) else _builder_model(source))
    index = mutate(model)
    return _pack(model), index


@pytest.mark.parametrize("name,source,mutate,opcode", MUTANTS, ids=[m[0] for m in MUTANTS])
def test_an_output_shape_that_does_not_follow_names_the_operator(
        name: str, source: Path | str, mutate: Callable[[tfl.ModelT], int], opcode: str) -> None:
    unmutated = source if isinstance(source, Path) else None
    if unmutated is not None:
        load_model(unmutated)  # the original passes
    data, index = _mutant(source, mutate)
    with pytest.raises(ModelError) as e:
        load_model_bytes(data, name)
    msg = str(e.value)
    # RESHAPE's element count is checked with its options: "invalid" there, same naming
    assert re.search(rf"^model '{name}' has an (inconsistent|invalid) operator #{index} "
                     rf"{opcode}: ", msg), msg
    assert "re-convert" in msg or opcode == "RESHAPE"


def test_concatenation_inputs_that_disagree_outside_the_axis() -> None:
    b = ModelBuilder(seed=5, name="concat")
    x0, x1 = b.input((1, 6, 6, 4)), b.input((1, 6, 6, 4))
    b.output(b.concat([b.relu6(x0), x1], axis=3))
    model = _model(b.build())
    i, op = _find(model, "CONCATENATION")
    model.subgraphs[0].tensors[op.inputs[1]].shape = [1, 5, 6, 4]  # a graph input: no producer
    with pytest.raises(ModelError,
                       match=rf"#{i} CONCATENATION: its input 1 \[1, 5, 6, 4\] does not match"):
        load_model_bytes(_pack(model), "concat")


def test_arity_missing_required_input_and_extra_outputs() -> None:
    model = _model(MLP)
    i, op = _find(model, "SOFTMAX")
    op.inputs = [op.inputs[0], op.inputs[0]]
    with pytest.raises(ModelError, match=rf"#{i} SOFTMAX: has 2 inputs; SOFTMAX takes 1"):
        load_model_bytes(_pack(model), "m")
    model = _model(RES)
    i, op = _find(model, "ADD")
    op.inputs = [op.inputs[0], -1]
    with pytest.raises(ModelError, match=rf"#{i} ADD: omits its required input 1"):
        load_model_bytes(_pack(model), "m")


def test_bias_of_the_wrong_length() -> None:
    model = _model(MLP)
    i, op = _find(model, "FULLY_CONNECTED", 1)
    first = _find(model, "FULLY_CONNECTED", 0)[1]
    op.inputs = [op.inputs[0], op.inputs[1], first.inputs[2]]  # the other layer's bias
    with pytest.raises(ModelError, match=rf"#{i} FULLY_CONNECTED: its bias"):
        load_model_bytes(_pack(model), "m")
