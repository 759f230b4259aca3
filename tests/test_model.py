"""Loader tests: zoo models against independent readers, and every bad-input path."""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os

import numpy as np
import pytest
from _models import (
    OP,
    ZOO_MODELS,
    T,
    act,
    build,
    conv_model,
    fc_model,
    op,
    q,
    unary_chain,
    zoo_model,
)
from tflite_micro import runtime
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

from generator.compiler.loader import SUPPORTED_OPS, load_model, load_model_bytes
from generator.errors import ModelError, UnsupportedOperatorError

# Operator counts written down in /work/shared/PLATFORM_NOTES.md ("The zoo models").
EXPECTED_OPS = {
    "ign_wl_24_int8": {
        "CONV_2D": 1,
        "MAX_POOL_2D": 1,
        "RESHAPE": 1,
        "FULLY_CONNECTED": 2,
        "SOFTMAX": 1,
        "QUANTIZE": 1,
        "DEQUANTIZE": 1,
    },
    "stmnist_v1_int8": {
        "CONV_2D": 3,
        "DEPTHWISE_CONV_2D": 2,
        "MEAN": 1,
        "FULLY_CONNECTED": 1,
        "SOFTMAX": 1,
        "QUANTIZE": 1,
        "DEQUANTIZE": 1,
    },
    "mobilenet_v1_0.25_96_int8": {
        "CONV_2D": 14,
        "DEPTHWISE_CONV_2D": 13,
        "AVERAGE_POOL_2D": 1,
        "RESHAPE": 1,
        "FULLY_CONNECTED": 1,
        "SOFTMAX": 1,
    },
}
# Graph-edge dtypes from PLATFORM_NOTES: (input, output).
EXPECTED_EDGES = {
    "ign_wl_24_int8": ("float32", "float32"),
    "stmnist_v1_int8": ("uint8", "float32"),
    "mobilenet_v1_0.25_96_int8": ("int8", "int8"),
}


def _load_error(data: bytes, name: str = "m") -> str:
    with pytest.raises(ModelError) as info:
        load_model_bytes(data, name)
    return str(info.value)


# --------------------------------------------------------------------------------------------
# zoo models
# --------------------------------------------------------------------------------------------


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_model_matches_tflm_interpreter(name):
    path = zoo_model(name)
    graph = load_model(path)
    assert graph.name == name
    assert graph.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    interp = runtime.Interpreter.from_file(str(path))
    for i, t_index in enumerate(graph.inputs):
        _compare_details(graph.tensor(t_index), interp.get_input_details(i))
    for i, t_index in enumerate(graph.outputs):
        _compare_details(graph.tensor(t_index), interp.get_output_details(i))
    assert (graph.tensor(graph.inputs[0]).dtype, graph.tensor(graph.outputs[0]).dtype) == (
        EXPECTED_EDGES[name]
    )


def _compare_details(tensor, details):
    assert tensor.dtype == np.dtype(details["dtype"]).name
    assert tensor.shape == tuple(int(d) for d in details["shape"])
    qp = details["quantization_parameters"]
    if len(qp["scales"]) == 0:
        assert tensor.quant is None
    else:
        assert tensor.quant is not None
        np.testing.assert_array_equal(np.float32(tensor.quant.scale), qp["scales"])
        assert tensor.quant.zero_point == tuple(int(z) for z in qp["zero_points"])
        assert tensor.quant.axis == int(qp["quantized_dimension"])


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_operator_counts_match_platform_notes(name):
    graph = load_model(zoo_model(name))
    assert collections.Counter(o.opcode for o in graph.operators) == EXPECTED_OPS[name]
    assert [o.index for o in graph.operators] == list(range(len(graph.operators)))


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_tensors_match_model_editor_reader(name):
    """Another reader of the same file (the wheel's model_editor) sees the same tensors."""
    path = zoo_model(name)
    graph = load_model(path)
    other = me.read(path.read_bytes()).subgraphs[0]
    names = {v: k for k, v in vars(tfl.BuiltinOperator).items() if not k.startswith("_")}
    assert [o.opcode for o in graph.operators] == [names[o.opcode] for o in other.operators]
    for o, ref in zip(graph.operators, other.operators):
        assert o.inputs == tuple(-1 if t is None else t.index for t in ref.inputs)
        assert o.outputs == tuple(t.index for t in ref.outputs)
    assert len(graph.tensors) == len(other.tensors)
    for t, ref in zip(graph.tensors, other.tensors):
        assert t.name == ref.name
        assert t.shape == ref.shape
        assert t.dtype == np.dtype(ref.numpy_dtype).name
        if ref.buffer is None or len(ref.buffer.data) == 0:
            assert t.data is None
        else:
            assert t.data is not None
            assert not t.data.flags.writeable
            assert t.data.dtype == np.dtype(t.dtype) and t.data.shape == t.shape
            np.testing.assert_array_equal(t.data, ref.array)
        if ref.quantization is not None:
            assert t.quant is not None
            np.testing.assert_array_equal(
                np.float32(t.quant.scale), np.float32(ref.quantization.scales)
            )


@pytest.mark.zoo
def test_zoo_options_normalized():
    ign = load_model(zoo_model("ign_wl_24_int8"))
    conv = ign.operators[1]
    assert conv.options == {
        "padding": "VALID",
        "stride_h": 1,
        "stride_w": 1,
        "dilation_h": 1,
        "dilation_w": 1,
        "fused_activation": "RELU",
    }
    pool = ign.operators[2]
    assert pool.options["filter_h"] == 3 and pool.options["filter_w"] == 1
    assert ign.operators[3].options == {"new_shape": (1, 216)}
    assert ign.operators[4].inputs[2] == -1  # FC without bias
    st = load_model(zoo_model("stmnist_v1_int8"))
    mean = next(o for o in st.operators if o.opcode == "MEAN")
    assert mean.options == {"axes": (1, 2), "keep_dims": False}
    dw = next(o for o in st.operators if o.opcode == "DEPTHWISE_CONV_2D")
    assert dw.options["depth_multiplier"] == 1
    assert st.operators[-2].options == {"beta": 1.0}


# --------------------------------------------------------------------------------------------
# small models built here
# --------------------------------------------------------------------------------------------


def test_int8_fc_model_loads_with_data_and_quant():
    g = load_model_bytes(fc_model(), "fc")
    (fc,) = g.operators
    assert fc.opcode == "FULLY_CONNECTED"
    w = g.tensor(fc.inputs[1])
    assert w.dtype == "int8" and w.shape == (3, 4) and w.quant.scale == (np.float32(0.02),)
    bias = g.tensor(fc.inputs[2])
    np.testing.assert_array_equal(bias.data, [5, -7, 100])
    out = g.tensor(g.outputs[0])
    assert out.quant.zero_point == (-3,) and out.data is None
    with pytest.raises(ValueError):
        bias.data[0] = 1


def test_per_channel_conv_quant():
    g = load_model_bytes(conv_model(out_c=4), "conv")
    w = g.tensor(g.operators[0].inputs[1])
    assert w.quant.per_channel and w.quant.axis == 0 and len(w.quant.scale) == 4


def test_load_model_from_path_uses_stem(tmp_path):
    path = tmp_path / "tiny_fc.tflite"
    path.write_bytes(fc_model())
    assert load_model(path).name == "tiny_fc"
    assert load_model(str(path)).sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_batch_dim_signature_minus_one_is_static():
    x = act([1, 8], "x")
    x._fb.shapeSignature = [-1, 8]
    y = act([1, 8], "y")
    g = load_model_bytes(build([op(OP.RELU, [x], [y])], [x], [y]), "m")
    assert g.tensor(g.inputs[0]).shape == (1, 8)


def test_uint8_input_feeding_quantize_is_allowed():
    data = unary_chain([OP.QUANTIZE, OP.RELU], dtypes=[T.UINT8, T.INT8, T.INT8])
    g = load_model_bytes(data, "m")
    assert g.tensor(g.inputs[0]).dtype == "uint8"


# --------------------------------------------------------------------------------------------
# bad inputs
# --------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_model(tmp_path / "nope.tflite")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tflite"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        load_model(path)


def test_random_bytes():
    msg = _load_error(np.random.default_rng(3).bytes(4096))
    assert "not a TensorFlow Lite flatbuffer" in msg and "TFL3" in msg


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_truncated_file(keep):
    data = fc_model()
    msg = _load_error(data[: int(len(data) * keep)])
    assert "truncated or corrupt" in msg


@pytest.mark.zoo
def test_truncated_zoo_model_every_length_gives_model_error():
    data = zoo_model("stmnist_v1_int8").read_bytes()
    for n in range(8, len(data), 61):
        with pytest.raises(ModelError):
            load_model_bytes(data[:n], "stmnist")


def test_corrupted_bytes_never_escape_as_raw_exceptions():
    data = fc_model()
    rng = np.random.default_rng(7)
    for _ in range(200):
        b = bytearray(data)
        for pos in rng.integers(8, len(b), 6):
            b[pos] = rng.integers(0, 256)
        with contextlib.suppress(ModelError):
            load_model_bytes(bytes(b), "fuzz")


def test_float_model():
    msg = _load_error(fc_model(float_model=True), "float_fc")
    assert "float model" in msg and "int8" in msg and "'float_fc'" in msg


def test_float_activation_inside_graph_is_float_model():
    data = unary_chain([OP.RELU, OP.RELU], dtypes=[T.INT8, T.FLOAT32, T.INT8])
    assert "float model" in _load_error(data)


def test_float_input_not_feeding_quantize_is_rejected():
    data = unary_chain([OP.RELU], dtypes=[T.FLOAT32, T.INT8])
    assert "float model" in _load_error(data)


def test_int16_activation_named():
    data = unary_chain([OP.QUANTIZE, OP.QUANTIZE], dtypes=[T.INT8, T.INT16, T.INT8])
    msg = _load_error(data)
    assert "int16" in msg and "'t1'" in msg


def test_unsupported_operators_all_named_with_index():
    data = unary_chain([OP.RELU, OP.ABS, OP.RELU, OP.EXP])  # TANH and LOGISTIC have kernels now
    with pytest.raises(UnsupportedOperatorError) as info:
        load_model_bytes(data, "m")
    msg = str(info.value)
    assert "#1 ABS" in msg and "#3 EXP" in msg
    assert "#0" not in msg and "#2" not in msg
    assert "supported:" in msg and "CONV_2D" in msg
    assert info.value.operators == [(1, "ABS"), (3, "EXP")]


def test_custom_operator_named():
    x, y = act([1, 8], "x"), act([1, 8], "y")
    data = build([op(OP.CUSTOM, [x], [y], custom_code="MyFancyOp")], [x], [y])
    with pytest.raises(UnsupportedOperatorError, match="#0 CUSTOM 'MyFancyOp'"):
        load_model_bytes(data, "m")


def test_fused_tanh_is_unsupported():
    with pytest.raises(UnsupportedOperatorError, match="#0 FULLY_CONNECTED with fused TANH"):
        load_model_bytes(fc_model(activation=tfl.ActivationFunctionType.TANH), "m")


def test_supported_ops_is_the_documented_set():
    assert {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "ADD",
        "CONCATENATION",
        "RESHAPE",
        "SOFTMAX",
        "PAD",
        "MEAN",
        "QUANTIZE",
        "DEQUANTIZE",
        "RELU",
        "RELU6",
    } <= SUPPORTED_OPS


@pytest.mark.parametrize(
    "shape, signature",
    [([1, -1], None), ([1, 8], [1, -1]), ([1, 1, 8], [1, -1, 8])],
)
def test_dynamic_shape(shape, signature):
    x = act(shape, "dyn")
    if signature is not None:
        x._fb.shapeSignature = signature
    y = act(shape, "y")
    msg = _load_error(build([op(OP.RELU, [x], [y])], [x], [y]))
    assert "dynamic shape" in msg and "'dyn'" in msg


def test_two_subgraphs():
    x, y = act([1, 8], "x"), act([1, 8], "y")
    a, b = act([1, 8], "a"), act([1, 8], "b")
    second = me.Subgraph(operators=[op(OP.RELU, [a], [b])], inputs=[a], outputs=[b])
    data = build([op(OP.RELU, [x], [y])], [x], [y], extra_subgraphs=[second])
    msg = _load_error(data)
    assert "2 subgraphs" in msg and "single-subgraph" in msg


def test_int8_activation_without_quantization():
    x = act([1, 8], "x")
    y = me.Tensor(shape=[1, 8], dtype=T.INT8, name="noquant")
    msg = _load_error(build([op(OP.RELU, [x], [y])], [x], [y]))
    assert "'noquant'" in msg and "quantization" in msg


def test_per_channel_activation_rejected():
    x = act([1, 2], "x", quant=q([0.1, 0.2], [0, 0], axis=1))
    y = act([1, 2], "y")
    msg = _load_error(build([op(OP.RELU, [x], [y])], [x], [y]))
    assert "per-channel" in msg and "'x'" in msg


def test_non_constant_weights_rejected():
    x, w, y = act([1, 4], "x"), act([3, 4], "w"), act([1, 3], "y")
    msg = _load_error(build([op(OP.FULLY_CONNECTED, [x, w], [y])], [x, w], [y]))
    assert "non-constant" in msg and "'w'" in msg


def test_error_messages_name_the_model():
    assert "model 'my_model'" in _load_error(os.urandom(64), "my_model")
