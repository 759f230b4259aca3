"""Small .tflite models for tests, written with the tflite-micro wheel's model_editor.

Only the builders live here (no fixtures: the lead owns conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

ZOO = Path(__file__).resolve().parents[2] / "shared" / "models" / "zoo"
ZOO_MODELS = ("ign_wl_24_int8", "stmnist_v1_int8", "mobilenet_v1_0.25_96_int8")

T = tfl.TensorType
OP = tfl.BuiltinOperator


def zoo_model(name: str) -> Path:
    """Path of a zoo model, or skip the test with the reason."""
    path = ZOO / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"zoo model {path} is absent (the zoo lives in ../shared/models/zoo)")
    return path


def q(scale: float | list[float] = 0.05, zp: int | list[int] = 0, axis: int | None = None):
    scales = scale if isinstance(scale, list) else [scale]
    zps = zp if isinstance(zp, list) else [zp]
    return me.Quantization(scales=scales, zero_points=zps, axis=axis)


def act(shape, name: str, dtype=T.INT8, quant=None) -> me.Tensor:
    """An activation tensor (int8 and quantized unless told otherwise)."""
    if quant is None and dtype in (T.INT8, T.UINT8, T.INT16):
        quant = q(0.05, 0 if dtype != T.UINT8 else 128)
    return me.Tensor(shape=shape, dtype=dtype, quantization=quant, name=name)


def op(opcode, inputs, outputs, options_type=None, options=None, custom_code=None):
    fb = tfl.OperatorT()
    if options is not None:
        fb.builtinOptionsType = options_type
        fb.builtinOptions = options
    return me.Operator(
        opcode=opcode, inputs=inputs, outputs=outputs, custom_code=custom_code, _fb=fb
    )


def build(operators, inputs, outputs, *, extra_subgraphs=()) -> bytes:
    sg = me.Subgraph(operators=list(operators), inputs=list(inputs), outputs=list(outputs))
    model = me.Model(subgraphs=[sg, *extra_subgraphs])
    return bytes(model.build())


def fc_model(*, float_model: bool = False, activation: int = 0) -> bytes:
    """input [1,4] → FULLY_CONNECTED (3 units) → output [1,3]."""
    rng = np.random.default_rng(0)
    if float_model:
        x = act([1, 4], "input", T.FLOAT32)
        w = me.Tensor(
            shape=[3, 4],
            dtype=T.FLOAT32,
            name="weights",
            data=rng.standard_normal((3, 4)).astype(np.float32),
        )
        b = me.Tensor(shape=[3], dtype=T.FLOAT32, name="bias", data=np.zeros(3, np.float32))
        y = act([1, 3], "output", T.FLOAT32)
    else:
        x = act([1, 4], "input")
        w = me.Tensor(
            shape=[3, 4],
            dtype=T.INT8,
            name="weights",
            quantization=q(0.02),
            data=rng.integers(-127, 128, (3, 4), dtype=np.int8),
        )
        b = me.Tensor(
            shape=[3],
            dtype=T.INT32,
            name="bias",
            quantization=q(0.001),
            data=np.array([5, -7, 100], np.int32),
        )
        y = act([1, 3], "output", quant=q(0.1, -3))
    opts = tfl.FullyConnectedOptionsT()
    opts.fusedActivationFunction = activation
    fc = op(OP.FULLY_CONNECTED, [x, w, b], [y], tfl.BuiltinOptions.FullyConnectedOptions, opts)
    return build([fc], [x], [y])


def unary_chain(opcodes, *, dtypes=None, shape=(1, 8)) -> bytes:
    """input → op0 → t1 → op1 → ... → output, all unary operators without options."""
    n = len(opcodes)
    dtypes = dtypes or [T.INT8] * (n + 1)
    tensors = [act(list(shape), f"t{i}", dtypes[i]) for i in range(n + 1)]
    ops = [op(code, [tensors[i]], [tensors[i + 1]]) for i, code in enumerate(opcodes)]
    return build(ops, [tensors[0]], [tensors[-1]])


def conv_model(
    *,
    in_shape=(1, 5, 5, 2),
    out_c: int = 3,
    k: tuple[int, int] = (3, 3),
    stride: int = 1,
    padding: int = tfl.Padding.VALID,
) -> bytes:
    """A CONV_2D with per-channel int8 weights."""
    rng = np.random.default_rng(1)
    n, h, w, c = in_shape
    if padding == tfl.Padding.VALID:
        oh, ow = (h - k[0]) // stride + 1, (w - k[1]) // stride + 1
    else:
        oh, ow = -(-h // stride), -(-w // stride)
    x = act(list(in_shape), "input")
    wt = me.Tensor(
        shape=[out_c, k[0], k[1], c],
        dtype=T.INT8,
        name="filter",
        quantization=q([0.01 * (i + 1) for i in range(out_c)], [0] * out_c, axis=0),
        data=rng.integers(-127, 128, (out_c, k[0], k[1], c), dtype=np.int8),
    )
    b = me.Tensor(
        shape=[out_c],
        dtype=T.INT32,
        name="bias",
        quantization=q([0.0005 * (i + 1) for i in range(out_c)], [0] * out_c),
        data=np.arange(out_c, dtype=np.int32),
    )
    y = act([n, oh, ow, out_c], "output", quant=q(0.2, 4))
    opts = tfl.Conv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = padding, stride, stride
    opts.fusedActivationFunction = tfl.ActivationFunctionType.RELU
    conv = op(OP.CONV_2D, [x, wt, b], [y], tfl.BuiltinOptions.Conv2DOptions, opts)
    return build([conv], [x], [y])
