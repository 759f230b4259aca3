"""Network description, int8 quantization and .tflite writing for models/make_models.py.

One list of `Layer`s describes a network once; make_models.py trains it as a float network and this
module turns the trained float parameters plus calibrated activation ranges into a full-integer int8
TFLite flatbuffer with the tflite-micro wheel's `model_editor` (no TensorFlow needed).

Quantization scheme (the TFLite int8 spec, what TFLM's reference kernels expect):
- activations: int8, asymmetric, per tensor, scale/zero point from the calibrated [min, max]
  (widened to contain 0);
- CONV_2D / DEPTHWISE_CONV_2D weights: int8, symmetric (zero point 0), per output channel
  (quantized_dimension 0 for CONV_2D [O,H,W,I], 3 for DEPTHWISE_CONV_2D [1,H,W,O]);
- FULLY_CONNECTED weights: int8, symmetric, per tensor;
- biases: int32, zero point 0, scale = input_scale * weight_scale (per channel where the
  weights are);
- SOFTMAX output: scale 1/256, zero point -128;
- MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE, PAD: output quantization = input quantization;
- CONCATENATION: all inputs and the output share one quantization (TFLM requires it for int8);
- a leading QUANTIZE (float32 graph input -> int8, scale/zero point from the calibrated input
  range) and a trailing DEQUANTIZE (int8 -> float32 graph output) give a model float edges, as
  the TFLite converter does for a float-interface int8 model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as tfl

# --------------------------------------------------------------------------------------------
# Network description
# --------------------------------------------------------------------------------------------

OPS = ("conv", "dwconv", "fc", "maxpool", "avgpool", "reshape", "add", "concat", "pad", "mean",
       "softmax", "quantize", "dequantize")
ACTIVATIONS = ("none", "relu", "relu6")


@dataclass(frozen=True)
class Layer:
    """One operator of a network; `name` is also the name of its output tensor.

    op-specific fields: conv/dwconv use kernel, stride, padding ('same' | 'valid'), out_ch (conv);
    fc uses out_ch; pools use kernel and stride (padding 'valid'); reshape uses shape (without
    batch); pad uses pads (per NHWC axis, (before, after)); mean reduces axes (1, 2), keep_dims
    false; concat joins on the channel axis; quantize (float -> int8) and dequantize (int8 ->
    float) are the identity in the float network.

    kernel and stride are the height's; kernel_w / stride_w set a different width (0: the same
    as the height's), e.g. kernel=16, kernel_w=1 for a [16 x 1] filter over time.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    act: str = "none"
    kernel: int = 1
    stride: int = 1
    padding: str = "same"
    out_ch: int = 0
    shape: tuple[int, ...] = ()
    pads: tuple[tuple[int, int], ...] = field(default=())
    kernel_w: int = 0
    stride_w: int = 0

    @property
    def kh(self) -> int:
        return self.kernel

    @property
    def kw(self) -> int:
        return self.kernel_w or self.kernel

    @property
    def sh(self) -> int:
        return self.stride

    @property
    def sw(self) -> int:
        return self.stride_w or self.stride

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"layer {self.name!r}: unknown op {self.op!r}; known: {OPS}")
        if self.act not in ACTIVATIONS:
            raise ValueError(f"layer {self.name!r}: unknown act {self.act!r}; known: {ACTIVATIONS}")
        if self.padding not in ("same", "valid"):
            raise ValueError(f"layer {self.name!r}: padding must be 'same' or 'valid'")


def same_padding(size: int, kernel: int, stride: int, padding: str) -> tuple[int, int, int]:
    """Output size and (before, after) padding, as TFLM computes them (extra pixel after)."""
    if padding == "valid":
        return (size - kernel) // stride + 1, 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


# --------------------------------------------------------------------------------------------
# Quantization
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class QParams:
    """Per-tensor affine int8 quantization: real = scale * (q - zero_point). scale is float32."""

    scale: float
    zero_point: int


INPUT_QPARAMS = QParams(scale=float(np.float32(1 / 16)), zero_point=-128)
"""Graph input: the float input is pixel/16 in [0, 1], so q = pixel - 128 exactly."""

SOFTMAX_QPARAMS = QParams(scale=float(np.float32(1 / 256)), zero_point=-128)


def activation_qparams(rmin: float, rmax: float) -> QParams:
    """Asymmetric int8 parameters covering [rmin, rmax] widened to contain 0."""
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    if rmax - rmin < 1e-8:
        rmax = rmin + 1e-8
    scale = float(np.float32((rmax - rmin) / 255.0))
    zero_point = int(np.clip(np.round(-128.0 - rmin / scale), -128, 127))
    return QParams(scale, zero_point)


def quantize_symmetric(w: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray]:
    """int8 symmetric weights (zero point 0, range ±127), per channel along `axis` or per tensor.

    Returns (int8 weights, float32 scales); scales has one entry per channel (or one in all).
    """
    if axis is None:
        max_abs = np.array([np.max(np.abs(w))])
    else:
        other = tuple(a for a in range(w.ndim) if a != axis)
        max_abs = np.max(np.abs(w), axis=other)
    scales = np.where(max_abs > 0, max_abs / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    if axis is not None:
        shape[axis] = -1
    q = np.clip(np.round(w / scales.astype(np.float64).reshape(shape)), -127, 127)
    return q.astype(np.int8), scales


def quantize_bias(b: np.ndarray, input_scale: float, weight_scales: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """int32 bias with scale input_scale * weight_scale (computed from the stored float32 values).

    weight_scales has one entry (per-tensor weights) or one per output channel; so do the returned
    bias scales.
    """
    scales64 = np.float64(np.float32(input_scale)) * weight_scales.astype(np.float64)
    q = np.clip(np.round(b / scales64), -(2**31), 2**31 - 1).astype(np.int32)
    return q, scales64.astype(np.float32)


def assign_qparams(layers: list[Layer], ranges: dict[str, tuple[float, float]], input_name: str
                   ) -> dict[str, QParams]:
    """Quantization of every activation tensor from calibrated float ranges and the op rules."""
    ranges = dict(ranges)
    # CONCATENATION: inputs and output share the union of their ranges.
    for layer in layers:
        if layer.op == "concat":
            members = (*layer.inputs, layer.name)
            lo = min(ranges[m][0] for m in members)
            hi = max(ranges[m][1] for m in members)
            for m in members:
                ranges[m] = (lo, hi)
    qp: dict[str, QParams] = {input_name: INPUT_QPARAMS}
    for layer in layers:
        if layer.op in ("maxpool", "avgpool", "reshape", "pad", "dequantize"):
            qp[layer.name] = qp[layer.inputs[0]]
        elif layer.op == "softmax":
            qp[layer.name] = SOFTMAX_QPARAMS
        else:
            lo, hi = ranges[layer.name]
            if layer.act in ("relu", "relu6"):
                lo = 0.0
            if layer.act == "relu6":
                hi = min(hi, 6.0)
            qp[layer.name] = activation_qparams(lo, hi)
    for layer in layers:
        if layer.op == "concat":
            shared = {qp[m] for m in (*layer.inputs, layer.name)}
            if len(shared) != 1:
                raise ValueError(f"concat {layer.name!r}: inputs do not share one quantization; "
                                 "feed it from layers that are not pass-through ops")
    return qp


# --------------------------------------------------------------------------------------------
# .tflite writing
# --------------------------------------------------------------------------------------------

_ACT = {"none": tfl.ActivationFunctionType.NONE, "relu": tfl.ActivationFunctionType.RELU,
        "relu6": tfl.ActivationFunctionType.RELU6}
_PADDING = {"same": tfl.Padding.SAME, "valid": tfl.Padding.VALID}
BOP = tfl.BuiltinOperator
# Operator versions the TFLite converter gives int8 models with these ops.
_OPCODES: dict[str, tuple[int, int]] = {
    "conv": (BOP.CONV_2D, 3), "dwconv": (BOP.DEPTHWISE_CONV_2D, 3),
    "fc": (BOP.FULLY_CONNECTED, 4), "maxpool": (BOP.MAX_POOL_2D, 2),
    "avgpool": (BOP.AVERAGE_POOL_2D, 2), "reshape": (BOP.RESHAPE, 1), "add": (BOP.ADD, 2),
    "concat": (BOP.CONCATENATION, 2), "pad": (BOP.PAD, 2), "mean": (BOP.MEAN, 2),
    "softmax": (BOP.SOFTMAX, 2), "quantize": (BOP.QUANTIZE, 1), "dequantize": (BOP.DEQUANTIZE, 2),
}


def _quant(scales, zero_points, axis: int | None = None) -> me.Quantization:
    return me.Quantization(scales=[float(s) for s in np.atleast_1d(scales)],
                           zero_points=[int(z) for z in np.atleast_1d(zero_points)], axis=axis)


def _act_tensor(name: str, shape: tuple[int, ...], q: QParams | None) -> me.Tensor:
    """An int8 activation with its quantization, or a float32 graph edge (q None)."""
    if q is None:
        return me.Tensor(shape=shape, dtype=tfl.TensorType.FLOAT32, name=name)
    return me.Tensor(shape=shape, dtype=tfl.TensorType.INT8, name=name,
                     quantization=_quant(q.scale, q.zero_point))


def _const_int32(name: str, values) -> me.Tensor:
    arr = np.asarray(values, dtype=np.int32)
    return me.Tensor(shape=arr.shape, dtype=tfl.TensorType.INT32, data=arr, name=name)


def _options(layer: Layer):
    """(BuiltinOptions type, options object) for a layer."""
    act = _ACT[layer.act]
    match layer.op:
        case "conv":
            return tfl.BuiltinOptions.Conv2DOptions, tfl.Conv2DOptionsT(
                padding=_PADDING[layer.padding], strideW=layer.sw, strideH=layer.sh,
                fusedActivationFunction=act)
        case "dwconv":
            return tfl.BuiltinOptions.DepthwiseConv2DOptions, tfl.DepthwiseConv2DOptionsT(
                padding=_PADDING[layer.padding], strideW=layer.sw, strideH=layer.sh,
                depthMultiplier=1, fusedActivationFunction=act)
        case "fc":
            return tfl.BuiltinOptions.FullyConnectedOptions, tfl.FullyConnectedOptionsT(
                fusedActivationFunction=act)
        case "maxpool" | "avgpool":
            return tfl.BuiltinOptions.Pool2DOptions, tfl.Pool2DOptionsT(
                padding=tfl.Padding.VALID, strideW=layer.sw, strideH=layer.sh,
                filterWidth=layer.kw, filterHeight=layer.kh, fusedActivationFunction=act)
        case "reshape":
            return tfl.BuiltinOptions.ReshapeOptions, tfl.ReshapeOptionsT(
                newShape=[1, *layer.shape])
        case "add":
            return tfl.BuiltinOptions.AddOptions, tfl.AddOptionsT(fusedActivationFunction=act)
        case "concat":
            return tfl.BuiltinOptions.ConcatenationOptions, tfl.ConcatenationOptionsT(
                axis=3, fusedActivationFunction=act)
        case "pad":
            return tfl.BuiltinOptions.PadOptions, tfl.PadOptionsT()
        case "mean":
            return tfl.BuiltinOptions.ReducerOptions, tfl.ReducerOptionsT(keepDims=False)
        case "softmax":
            return tfl.BuiltinOptions.SoftmaxOptions, tfl.SoftmaxOptionsT(beta=1.0)
        case "quantize" | "dequantize":
            return tfl.BuiltinOptions.NONE, None
    raise ValueError(f"no options for op {layer.op!r}")


def build_tflite(layers: list[Layer], params: dict[str, dict[str, np.ndarray]],
                 shapes: dict[str, tuple[int, ...]], qparams: dict[str, QParams],
                 input_name: str, description: str) -> bytes:
    """Write a full-integer int8 .tflite from float parameters and activation quantization.

    params[name] holds float 'w' (conv [O,KH,KW,I], dwconv [1,KH,KW,C], fc [O,I]) and 'b';
    shapes[name] is every activation's shape with batch 1. A graph input read by a 'quantize'
    layer is float32, as is the output of a 'dequantize' layer.
    """
    model = me.Model(description=description)
    for op, (code, version) in sorted(_OPCODES.items(), key=lambda kv: kv[1][0]):
        if any(layer.op == op for layer in layers):
            oc = me.OperatorCode(builtin_code=code, version=version)
            oc._fb.deprecatedBuiltinCode = min(code, 127)  # what old readers look at
            model.operator_codes.append(oc)
    sg = model.add_subgraph(name="main")
    # Tensors are collected from the operators in order: input, then each op's inputs and output.
    float_input = any(lay.op == "quantize" and lay.inputs == (input_name,) for lay in layers)
    tensors = {input_name: _act_tensor(input_name, shapes[input_name],
                                       None if float_input else qparams[input_name])}

    for layer in layers:
        out = _act_tensor(layer.name, shapes[layer.name],
                          None if layer.op == "dequantize" else qparams[layer.name])
        ins: list[me.Tensor] = [tensors[i] for i in layer.inputs]
        if layer.op in ("conv", "dwconv", "fc"):
            w, b = params[layer.name]["w"], params[layer.name]["b"]
            axis = {"conv": 0, "dwconv": 3, "fc": None}[layer.op]
            wq, w_scales = quantize_symmetric(w, axis)
            bq, b_scales = quantize_bias(b, qparams[layer.inputs[0]].scale, w_scales)
            ins.append(me.Tensor(shape=wq.shape, dtype=tfl.TensorType.INT8, data=wq,
                                 name=f"{layer.name}/weights",
                                 quantization=_quant(w_scales, np.zeros_like(w_scales, np.int64),
                                                     axis)))
            ins.append(me.Tensor(shape=bq.shape, dtype=tfl.TensorType.INT32, data=bq,
                                 name=f"{layer.name}/bias",
                                 quantization=_quant(b_scales, np.zeros_like(b_scales, np.int64),
                                                     None if axis is None else 0)))
        elif layer.op == "reshape":
            ins.append(_const_int32(f"{layer.name}/shape", [1, *layer.shape]))
        elif layer.op == "pad":
            ins.append(_const_int32(f"{layer.name}/paddings", layer.pads))
        elif layer.op == "mean":
            ins.append(_const_int32(f"{layer.name}/axis", [1, 2]))
        opts_type, opts = _options(layer)
        op = sg.add_operator(opcode=_OPCODES[layer.op][0], inputs=ins, outputs=[out])
        op._fb.builtinOptionsType = opts_type
        op._fb.builtinOptions = opts
        tensors[layer.name] = out

    sg.inputs = [tensors[input_name]]
    sg.outputs = [tensors[layers[-1].name]]
    return bytes(model.build())
