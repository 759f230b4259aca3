"""Write small int8 ``.tflite`` models without TensorFlow, for verifying the kernels.

Uses the ``model_editor`` of the tflite-micro wheel. A :class:`ModelBuilder` adds graph inputs
and operators one call at a time; every call draws its weights, biases and quantization
parameters from the builder's seeded generator, so a model is a pure function of the calls and
the seed. One builder may hold several independent chains (each with its own inputs and
outputs): the tests pack many single-operator cases into one model to build it once.

Output quantization is chosen so that outputs use a good part of the int8 range (scaled by
``out_range``: < 1 saturates more, > 1 less), or given explicitly with ``out_q``.

    b = ModelBuilder(seed=1)
    x = b.input((1, 8, 8, 3))
    y = b.conv2d(x, 8, kernel=(3, 3), stride=(2, 2), padding="SAME", activation="RELU")
    b.output(y)
    data = b.build()           # bytes of the .tflite flatbuffer
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tflite_micro.tensorflow.lite.micro.compression import model_editor as me
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

__all__ = ["QParams", "ModelBuilder", "write_model"]

_TYPES = {
    "int8": schema.TensorType.INT8,
    "uint8": schema.TensorType.UINT8,
    "int32": schema.TensorType.INT32,
    "float32": schema.TensorType.FLOAT32,
}
_ACT = {
    "NONE": schema.ActivationFunctionType.NONE,
    "RELU": schema.ActivationFunctionType.RELU,
    "RELU6": schema.ActivationFunctionType.RELU6,
    "RELU_N1_TO_1": schema.ActivationFunctionType.RELU_N1_TO_1,
}
_PAD = {"SAME": schema.Padding.SAME, "VALID": schema.Padding.VALID}
_STD_INT8 = 73.9  # standard deviation of a uniform int8


@dataclass(frozen=True)
class QParams:
    """Per-tensor affine quantization: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int

    def to_editor(self) -> me.Quantization:
        return me.Quantization(scales=[float(np.float32(self.scale))],
                               zero_points=[int(self.zero_point)])


@dataclass
class _T:
    """A tensor under construction: the editor tensor plus what the builder needs to know."""

    t: me.Tensor
    shape: tuple[int, ...]
    dtype: str
    q: QParams | None
    # Rough standard deviation of the real values, to pick sensible output scales.
    std: float


def _window_out(size: int, k: int, stride: int, dilation: int, padding: str) -> int:
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    out = (size + stride - eff) // stride
    if out < 1:
        raise ValueError(f"VALID window {k} (dilation {dilation}) does not fit size {size}")
    return out


class ModelBuilder:
    def __init__(self, seed: int = 0, name: str = "modelgen") -> None:
        self.rng = np.random.default_rng(seed)
        self.sg = me.Subgraph(name=name)
        self._inputs: list[me.Tensor] = []
        self._outputs: list[me.Tensor] = []
        self._n = 0

    # -- tensors -------------------------------------------------------------------------------

    def _name(self, what: str) -> str:
        self._n += 1
        return f"{what}_{self._n}"

    def _act_tensor(self, shape: tuple[int, ...], dtype: str, q: QParams | None, std: float,
                    what: str) -> _T:
        t = me.Tensor(shape=tuple(int(d) for d in shape), dtype=_TYPES[dtype],
                      quantization=q.to_editor() if q is not None else None,
                      name=self._name(what))
        return _T(t, tuple(int(d) for d in shape), dtype, q, std)

    def _const(self, data: np.ndarray, dtype: str, quant: me.Quantization | None,
               what: str) -> me.Tensor:
        arr = np.asarray(data).astype(dtype, order="C")  # keeps 0-d scalars 0-d
        return me.Tensor(shape=arr.shape, dtype=_TYPES[dtype], data=arr, quantization=quant,
                         name=self._name(what))

    def random_qparams(self, dtype: str = "int8", std: float | None = None) -> QParams:
        """A random but plausible quantization for an activation."""
        scale = float(self.rng.uniform(0.004, 0.1)) if std is None else std / 40.0
        if dtype == "uint8":
            zp = int(self.rng.integers(0, 256))
        else:
            zp = int(self.rng.integers(-100, 101))
        return QParams(scale, zp)

    def input(self, shape: tuple[int, ...], dtype: str = "int8", q: QParams | None = None
              ) -> _T:
        """A graph input. int8/uint8 inputs get (random) quantization; float32 none."""
        if dtype != "float32" and q is None:
            q = self.random_qparams(dtype)
        std = _STD_INT8 * q.scale if q is not None else 1.0
        t = self._act_tensor(shape, dtype, q if dtype != "float32" else None, std, "input")
        self._inputs.append(t.t)
        return t

    def output(self, t: _T) -> None:
        self._outputs.append(t.t)

    def _out_q(self, std: float, out_range: float, out_q: QParams | None) -> QParams:
        if out_q is not None:
            return out_q
        scale = max(std, 1e-6) * 3.0 / (127.0 * out_range)
        zp = int(self.rng.integers(-60, 61))
        return QParams(scale, zp)

    def _op(self, opcode: int, inputs: list[Any], outputs: list[_T],
            options_type: int = 0, options: Any = None) -> None:
        op = me.Operator(opcode=opcode, inputs=[i.t if isinstance(i, _T) else i for i in inputs],
                         outputs=[o.t for o in outputs])
        if options is not None:
            op._fb.builtinOptionsType = options_type
            op._fb.builtinOptions = options
        self.sg.operators.append(op)

    # -- weighted operators ----------------------------------------------------------------------

    def _weights(self, shape: tuple[int, ...], axis: int, per_channel: bool
                 ) -> tuple[me.Tensor, np.ndarray, np.ndarray]:
        w = self.rng.integers(-127, 128, size=shape).astype(np.int8)
        channels = shape[axis]
        if per_channel:
            scales = self.rng.uniform(0.002, 0.02, size=channels)
        else:
            scales = np.full(1, self.rng.uniform(0.002, 0.02))
        scales = scales.astype(np.float32)
        quant = me.Quantization(scales=[float(s) for s in scales],
                                zero_points=[0] * len(scales), axis=axis)
        return self._const(w, "int8", quant, "weights"), w, scales

    def _bias(self, channels: int, in_scale: float, w_scales: np.ndarray, acc_std: float
              ) -> me.Tensor:
        b = self.rng.normal(0.0, acc_std, size=channels).round().astype(np.int64)
        b = np.clip(b, -(1 << 31), (1 << 31) - 1).astype(np.int32)
        scales = (np.float32(in_scale) * np.broadcast_to(w_scales, (channels,))).astype(
            np.float32
        )
        quant = me.Quantization(scales=[float(s) for s in scales], zero_points=[0] * channels,
                                axis=0)
        return self._const(b, "int32", quant, "bias")

    def conv2d(self, x: _T, out_c: int, kernel: tuple[int, int] = (3, 3),
               stride: tuple[int, int] = (1, 1), padding: str = "SAME",
               dilation: tuple[int, int] = (1, 1), activation: str = "NONE",
               per_channel: bool = True, bias: bool = True, groups: int = 1,
               out_range: float = 1.0, out_q: QParams | None = None) -> _T:
        n, h, w, c = x.shape
        if c % groups or out_c % groups:
            raise ValueError(f"groups {groups} must divide channels {c} and {out_c}")
        fic = c // groups
        kh, kw = kernel
        oh = _window_out(h, kh, stride[0], dilation[0], padding)
        ow = _window_out(w, kw, stride[1], dilation[1], padding)
        wt, _, wsc = self._weights((out_c, kh, kw, fic), 0, per_channel)
        k = kh * kw * fic
        acc_std = _STD_INT8 * _STD_INT8 * math.sqrt(k)
        in_scale = x.q.scale if x.q else 1.0
        std = acc_std * in_scale * float(np.mean(wsc))
        y = self._act_tensor((n, oh, ow, out_c), "int8", self._out_q(std, out_range, out_q),
                             std, "conv")
        inputs: list[Any] = [x, wt]
        if bias:
            inputs.append(self._bias(out_c, in_scale, wsc, acc_std / 4))
        o = schema.Conv2DOptionsT()
        o.padding = _PAD[padding]
        o.strideH, o.strideW = stride
        o.dilationHFactor, o.dilationWFactor = dilation
        o.fusedActivationFunction = _ACT[activation]
        self._op(schema.BuiltinOperator.CONV_2D, inputs, [y],
                 schema.BuiltinOptions.Conv2DOptions, o)
        return y

    def depthwise_conv2d(self, x: _T, kernel: tuple[int, int] = (3, 3),
                         stride: tuple[int, int] = (1, 1), padding: str = "SAME",
                         dilation: tuple[int, int] = (1, 1), depth_multiplier: int = 1,
                         activation: str = "NONE", per_channel: bool = True, bias: bool = True,
                         out_range: float = 1.0, out_q: QParams | None = None) -> _T:
        n, h, w, c = x.shape
        out_c = c * depth_multiplier
        kh, kw = kernel
        oh = _window_out(h, kh, stride[0], dilation[0], padding)
        ow = _window_out(w, kw, stride[1], dilation[1], padding)
        wt, _, wsc = self._weights((1, kh, kw, out_c), 3, per_channel)
        acc_std = _STD_INT8 * _STD_INT8 * math.sqrt(kh * kw)
        in_scale = x.q.scale if x.q else 1.0
        std = acc_std * in_scale * float(np.mean(wsc))
        y = self._act_tensor((n, oh, ow, out_c), "int8", self._out_q(std, out_range, out_q),
                             std, "dwconv")
        inputs: list[Any] = [x, wt]
        if bias:
            inputs.append(self._bias(out_c, in_scale, wsc, acc_std / 4))
        o = schema.DepthwiseConv2DOptionsT()
        o.padding = _PAD[padding]
        o.strideH, o.strideW = stride
        o.dilationHFactor, o.dilationWFactor = dilation
        o.depthMultiplier = depth_multiplier
        o.fusedActivationFunction = _ACT[activation]
        self._op(schema.BuiltinOperator.DEPTHWISE_CONV_2D, inputs, [y],
                 schema.BuiltinOptions.DepthwiseConv2DOptions, o)
        return y

    def fully_connected(self, x: _T, units: int, activation: str = "NONE",
                        per_channel: bool = False, bias: bool = True,
                        keep_num_dims: bool = False, out_range: float = 1.0,
                        out_q: QParams | None = None) -> _T:
        depth = x.shape[-1]
        batches = math.prod(x.shape[:-1])
        wt, _, wsc = self._weights((units, depth), 0, per_channel)
        acc_std = _STD_INT8 * _STD_INT8 * math.sqrt(depth)
        in_scale = x.q.scale if x.q else 1.0
        std = acc_std * in_scale * float(np.mean(wsc))
        shape = (*x.shape[:-1], units) if keep_num_dims else (batches, units)
        y = self._act_tensor(shape, "int8", self._out_q(std, out_range, out_q), std, "fc")
        inputs: list[Any] = [x, wt]
        if bias:
            inputs.append(self._bias(units, in_scale, wsc, acc_std / 4))
        o = schema.FullyConnectedOptionsT()
        o.fusedActivationFunction = _ACT[activation]
        o.keepNumDims = keep_num_dims
        self._op(schema.BuiltinOperator.FULLY_CONNECTED, inputs, [y],
                 schema.BuiltinOptions.FullyConnectedOptions, o)
        return y

    # -- other operators ---------------------------------------------------------------------

    def _pool(self, opcode: int, x: _T, filter_size: tuple[int, int],
              stride: tuple[int, int], padding: str, activation: str) -> _T:
        n, h, w, c = x.shape
        oh = _window_out(h, filter_size[0], stride[0], 1, padding)
        ow = _window_out(w, filter_size[1], stride[1], 1, padding)
        y = self._act_tensor((n, oh, ow, c), "int8", x.q, x.std, "pool")
        o = schema.Pool2DOptionsT()
        o.padding = _PAD[padding]
        o.strideH, o.strideW = stride
        o.filterHeight, o.filterWidth = filter_size
        o.fusedActivationFunction = _ACT[activation]
        self._op(opcode, [x], [y], schema.BuiltinOptions.Pool2DOptions, o)
        return y

    def avg_pool2d(self, x: _T, filter_size: tuple[int, int] = (2, 2),
                   stride: tuple[int, int] = (2, 2), padding: str = "VALID",
                   activation: str = "NONE") -> _T:
        return self._pool(schema.BuiltinOperator.AVERAGE_POOL_2D, x, filter_size, stride,
                          padding, activation)

    def max_pool2d(self, x: _T, filter_size: tuple[int, int] = (2, 2),
                   stride: tuple[int, int] = (2, 2), padding: str = "VALID",
                   activation: str = "NONE") -> _T:
        return self._pool(schema.BuiltinOperator.MAX_POOL_2D, x, filter_size, stride, padding,
                          activation)

    def add(self, a: _T, b: _T, activation: str = "NONE", out_range: float = 1.0,
            out_q: QParams | None = None) -> _T:
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        std = math.hypot(a.std, b.std)
        y = self._act_tensor(shape, "int8", self._out_q(std, out_range, out_q), std, "add")
        o = schema.AddOptionsT()
        o.fusedActivationFunction = _ACT[activation]
        self._op(schema.BuiltinOperator.ADD, [a, b], [y], schema.BuiltinOptions.AddOptions, o)
        return y

    def sub(self, a: _T, b: _T, activation: str = "NONE", out_range: float = 1.0,
            out_q: QParams | None = None) -> _T:
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        std = math.hypot(a.std, b.std)
        y = self._act_tensor(shape, "int8", self._out_q(std, out_range, out_q), std, "sub")
        o = schema.SubOptionsT()
        o.fusedActivationFunction = _ACT[activation]
        self._op(schema.BuiltinOperator.SUB, [a, b], [y], schema.BuiltinOptions.SubOptions, o)
        return y

    def squared_difference(self, a: _T, b: _T, out_range: float = 1.0) -> _T:
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        std = (a.std ** 2 + b.std ** 2)
        y = self._act_tensor(shape, "int8", self._out_q(std, out_range, None), std, "sqdiff")
        self._op(schema.BuiltinOperator.SQUARED_DIFFERENCE, [a, b], [y],
                 schema.BuiltinOptions.SquaredDifferenceOptions,
                 schema.SquaredDifferenceOptionsT())
        return y

    def mul(self, a: _T, b: _T, activation: str = "NONE", out_range: float = 1.0,
            out_q: QParams | None = None) -> _T:
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        std = a.std * b.std
        y = self._act_tensor(shape, "int8", self._out_q(std, out_range, out_q), std, "mul")
        o = schema.MulOptionsT()
        o.fusedActivationFunction = _ACT[activation]
        self._op(schema.BuiltinOperator.MUL, [a, b], [y], schema.BuiltinOptions.MulOptions, o)
        return y

    def constant(self, shape: tuple[int, ...], q: QParams | None = None) -> _T:
        """A constant int8 operand (random values; e.g. a per-channel vector of an unfused batch
        normalisation), usable wherever an activation is: add(x, constant((C,)))."""
        q = q or self.random_qparams("int8")
        data = self.rng.integers(-128, 128, size=shape)
        t = self._const(data, "int8", q.to_editor(), "const")
        return _T(t, tuple(int(d) for d in shape), "int8", q, _STD_INT8 * q.scale)

    def concat(self, xs: list[_T], axis: int) -> _T:
        rank = len(xs[0].shape)
        ax = axis % rank
        shape = list(xs[0].shape)
        shape[ax] = sum(x.shape[ax] for x in xs)
        y = self._act_tensor(tuple(shape), xs[0].dtype, xs[0].q, xs[0].std, "concat")
        o = schema.ConcatenationOptionsT()
        o.axis = axis
        self._op(schema.BuiltinOperator.CONCATENATION, list(xs), [y],
                 schema.BuiltinOptions.ConcatenationOptions, o)
        return y

    def reshape(self, x: _T, shape: tuple[int, ...]) -> _T:
        if math.prod(shape) != math.prod(x.shape):
            raise ValueError(f"cannot reshape {x.shape} to {shape}")
        y = self._act_tensor(shape, x.dtype, x.q, x.std, "reshape")
        st = self._const(np.asarray(shape, dtype=np.int32), "int32", None, "shape")
        o = schema.ReshapeOptionsT()
        o.newShape = list(shape)
        self._op(schema.BuiltinOperator.RESHAPE, [x, st], [y],
                 schema.BuiltinOptions.ReshapeOptions, o)
        return y

    # -- shape plumbing (int32; folded at generation time) ---------------------------------

    def int32_constant(self, values: Any) -> _T:
        arr = np.asarray(values, dtype=np.int32)
        return _T(self._const(arr, "int32", None, "i32"), tuple(arr.shape), "int32", None, 1.0)

    def shape(self, x: _T) -> _T:
        y = self._act_tensor((len(x.shape),), "int32", None, 1.0, "shape")
        o = schema.ShapeOptionsT()
        o.outType = schema.TensorType.INT32
        self._op(schema.BuiltinOperator.SHAPE, [x], [y], schema.BuiltinOptions.ShapeOptions, o)
        return y

    def strided_slice(self, x: _T, begin: list[int], end: list[int], strides: list[int],
                      out_shape: tuple[int, ...], begin_mask: int = 0, end_mask: int = 0,
                      shrink_axis_mask: int = 0, offset: bool = False) -> _T:
        """STRIDED_SLICE; ``out_shape`` is the declared output shape (worked out by the
        caller)."""
        y = self._act_tensor(out_shape, x.dtype, x.q, x.std, "slice")
        o = schema.StridedSliceOptionsT()
        o.beginMask, o.endMask, o.shrinkAxisMask = begin_mask, end_mask, shrink_axis_mask
        o.offset = offset
        ins = [x, *(self.int32_constant(v) for v in (begin, end, strides))]
        self._op(schema.BuiltinOperator.STRIDED_SLICE, ins, [y],
                 schema.BuiltinOptions.StridedSliceOptions, o)
        return y

    def pack(self, xs: list[_T], axis: int = 0) -> _T:
        rank = len(xs[0].shape) + 1
        shape = list(xs[0].shape)
        shape.insert(axis % rank, len(xs))
        y = self._act_tensor(tuple(shape), xs[0].dtype, xs[0].q, xs[0].std, "pack")
        o = schema.PackOptionsT()
        o.valuesCount, o.axis = len(xs), axis
        self._op(schema.BuiltinOperator.PACK, list(xs), [y], schema.BuiltinOptions.PackOptions,
                 o)
        return y

    def split(self, x: _T, num: int, axis: int) -> list[_T]:
        ax = axis % len(x.shape)
        shape = list(x.shape)
        shape[ax] //= num
        ys = [self._act_tensor(tuple(shape), x.dtype, x.q, x.std, "split") for _ in range(num)]
        o = schema.SplitOptionsT()
        o.numSplits = num
        self._op(schema.BuiltinOperator.SPLIT, [self.int32_constant([axis]), x], ys,
                 schema.BuiltinOptions.SplitOptions, o)
        return ys

    def split_v(self, x: _T, sizes: list[int], axis: int) -> list[_T]:
        ax = axis % len(x.shape)
        known = sum(n for n in sizes if n != -1)
        ys = []
        for n in sizes:
            shape = list(x.shape)
            shape[ax] = x.shape[ax] - known if n == -1 else n
            ys.append(self._act_tensor(tuple(shape), x.dtype, x.q, x.std, "split_v"))
        o = schema.SplitVOptionsT()
        o.numSplits = len(sizes)
        self._op(schema.BuiltinOperator.SPLIT_V,
                 [x, self.int32_constant(sizes), self.int32_constant([axis])], ys,
                 schema.BuiltinOptions.SplitVOptions, o)
        return ys

    def unpack(self, x: _T, axis: int) -> list[_T]:
        ax = axis % len(x.shape)
        shape = tuple(d for i, d in enumerate(x.shape) if i != ax)
        ys = [self._act_tensor(shape, x.dtype, x.q, x.std, "unpack")
              for _ in range(x.shape[ax])]
        o = schema.UnpackOptionsT()
        o.num, o.axis = x.shape[ax], axis
        self._op(schema.BuiltinOperator.UNPACK, [x], ys, schema.BuiltinOptions.UnpackOptions, o)
        return ys

    def reshape_by(self, x: _T, shape_tensor: _T, shape: tuple[int, ...]) -> _T:
        """RESHAPE whose new shape comes from a computed int32 tensor (no option); ``shape`` is
        the declared output shape."""
        y = self._act_tensor(shape, x.dtype, x.q, x.std, "reshape")
        self._op(schema.BuiltinOperator.RESHAPE, [x, shape_tensor], [y])
        return y

    def softmax(self, x: _T, beta: float = 1.0) -> _T:
        y = self._act_tensor(x.shape, "int8", QParams(1.0 / 256, -128), 0.1, "softmax")
        o = schema.SoftmaxOptionsT()
        o.beta = beta
        self._op(schema.BuiltinOperator.SOFTMAX, [x], [y], schema.BuiltinOptions.SoftmaxOptions,
                 o)
        return y

    def pad(self, x: _T, paddings: list[tuple[int, int]]) -> _T:
        if len(paddings) != len(x.shape):
            raise ValueError("one (before, after) pair per dimension")
        shape = tuple(d + a + b for d, (a, b) in zip(x.shape, paddings))
        y = self._act_tensor(shape, x.dtype, x.q, x.std, "pad")
        pt = self._const(np.asarray(paddings, dtype=np.int32), "int32", None, "paddings")
        self._op(schema.BuiltinOperator.PAD, [x, pt], [y], schema.BuiltinOptions.PadOptions,
                 schema.PadOptionsT())
        return y

    def mean(self, x: _T, axes: tuple[int, ...], keep_dims: bool = False,
             out_range: float = 1.0, out_q: QParams | None = None) -> _T:
        rank = len(x.shape)
        norm = sorted({a % rank for a in axes})
        if keep_dims:
            shape = tuple(1 if i in norm else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in norm)
        # The mean of random activations is narrower than they are.
        count = math.prod(x.shape[i] for i in norm)
        std = x.std / math.sqrt(count) if out_q is None else x.std
        y = self._act_tensor(shape, "int8", self._out_q(std, out_range, out_q), std, "mean")
        at = self._const(np.asarray(axes, dtype=np.int32), "int32", None, "axes")
        o = schema.ReducerOptionsT()
        o.keepDims = keep_dims
        self._op(schema.BuiltinOperator.MEAN, [x, at], [y], schema.BuiltinOptions.ReducerOptions,
                 o)
        return y

    def reduce(self, kind: str, x: _T, axes: tuple[int, ...], keep_dims: bool = False) -> _T:
        """REDUCE_MAX / REDUCE_MIN (*kind* 'max' / 'min'): TFLM needs the output quantized like
        the input."""
        rank = len(x.shape)
        norm = sorted({a % rank for a in axes})
        if keep_dims:
            shape = tuple(1 if i in norm else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in norm)
        y = self._act_tensor(shape, x.dtype, x.q, x.std, f"reduce_{kind}")
        at = self._const(np.asarray(axes, dtype=np.int32), "int32", None, "axes")
        o = schema.ReducerOptionsT()
        o.keepDims = keep_dims
        opcode = {"max": schema.BuiltinOperator.REDUCE_MAX,
                  "min": schema.BuiltinOperator.REDUCE_MIN}[kind]
        self._op(opcode, [x, at], [y], schema.BuiltinOptions.ReducerOptions, o)
        return y

    def transpose(self, x: _T, perm: tuple[int, ...]) -> _T:
        shape = tuple(x.shape[a] for a in perm)
        y = self._act_tensor(shape, x.dtype, x.q, x.std, "transpose")
        self._op(schema.BuiltinOperator.TRANSPOSE, [x, self.int32_constant(list(perm))], [y],
                 schema.BuiltinOptions.TransposeOptions, schema.TransposeOptionsT())
        return y

    def slice(self, x: _T, begin: list[int], size: list[int]) -> _T:
        """SLICE; a size of -1 takes the rest of the dimension."""
        shape = tuple(d - b if n == -1 else n for d, b, n in zip(x.shape, begin, size))
        y = self._act_tensor(shape, x.dtype, x.q, x.std, "slice")
        self._op(schema.BuiltinOperator.SLICE,
                 [x, self.int32_constant(begin), self.int32_constant(size)], [y],
                 schema.BuiltinOptions.SliceOptions, schema.SliceOptionsT())
        return y

    def _moved(self, x: _T, shape: tuple[int, ...], what: str) -> _T:
        return self._act_tensor(tuple(int(d) for d in shape), x.dtype, x.q, x.std, what)

    def squeeze(self, x: _T, dims: list[int]) -> _T:
        rank = len(x.shape)
        drop = {d % rank for d in dims} or {i for i, d in enumerate(x.shape) if d == 1}
        y = self._moved(x, tuple(d for i, d in enumerate(x.shape) if i not in drop), "squeeze")
        o = schema.SqueezeOptionsT()
        o.squeezeDims = list(dims)
        self._op(schema.BuiltinOperator.SQUEEZE, [x], [y], schema.BuiltinOptions.SqueezeOptions,
                 o)
        return y

    def expand_dims(self, x: _T, axis: int) -> _T:
        rank = len(x.shape)
        shape = list(x.shape)
        shape.insert(axis + rank + 1 if axis < 0 else axis, 1)
        y = self._moved(x, tuple(shape), "expand")
        self._op(schema.BuiltinOperator.EXPAND_DIMS, [x, self.int32_constant([axis])], [y],
                 schema.BuiltinOptions.ExpandDimsOptions, schema.ExpandDimsOptionsT())
        return y

    def gather(self, x: _T, indices: Any, axis: int = 0) -> _T:
        idx = np.asarray(indices, dtype=np.int32)
        ax = axis % len(x.shape)
        y = self._moved(x, (*x.shape[:ax], *idx.shape, *x.shape[ax + 1:]), "gather")
        o = schema.GatherOptionsT()
        o.axis, o.batchDims = axis, 0
        self._op(schema.BuiltinOperator.GATHER, [x, self.int32_constant(idx)], [y],
                 schema.BuiltinOptions.GatherOptions, o)
        return y

    def space_to_depth(self, x: _T, block: int) -> _T:
        n, h, w, c = x.shape
        y = self._moved(x, (n, h // block, w // block, c * block * block), "s2d")
        o = schema.SpaceToDepthOptionsT()
        o.blockSize = block
        self._op(schema.BuiltinOperator.SPACE_TO_DEPTH, [x], [y],
                 schema.BuiltinOptions.SpaceToDepthOptions, o)
        return y

    def depth_to_space(self, x: _T, block: int) -> _T:
        n, h, w, c = x.shape
        y = self._moved(x, (n, h * block, w * block, c // (block * block)), "d2s")
        o = schema.DepthToSpaceOptionsT()
        o.blockSize = block
        self._op(schema.BuiltinOperator.DEPTH_TO_SPACE, [x], [y],
                 schema.BuiltinOptions.DepthToSpaceOptions, o)
        return y

    def minmax(self, kind: str, a: _T, b: _T) -> _T:
        """MAXIMUM / MINIMUM (*kind* 'max' / 'min'); TFLM compares the raw int8 values, so the
        output takes the first input's quantization."""
        shape = tuple(np.broadcast_shapes(a.shape, b.shape))
        y = self._act_tensor(shape, "int8", a.q, a.std, kind)
        opcode = {"max": schema.BuiltinOperator.MAXIMUM,
                  "min": schema.BuiltinOperator.MINIMUM}[kind]
        self._op(opcode, [a, b], [y], schema.BuiltinOptions.MaximumMinimumOptions,
                 schema.MaximumMinimumOptionsT())
        return y

    def arg(self, kind: str, x: _T, axis: int) -> _T:
        """ARG_MAX / ARG_MIN (*kind* 'max' / 'min') with int32 output."""
        ax = axis % len(x.shape)
        shape = tuple(d for i, d in enumerate(x.shape) if i != ax)
        y = self._act_tensor(shape, "int32", None, 1.0, f"arg{kind}")
        if kind == "max":
            o: Any = schema.ArgMaxOptionsT()
            opcode, otype = schema.BuiltinOperator.ARG_MAX, schema.BuiltinOptions.ArgMaxOptions
        else:
            o = schema.ArgMinOptionsT()
            opcode, otype = schema.BuiltinOperator.ARG_MIN, schema.BuiltinOptions.ArgMinOptions
        o.outputType = schema.TensorType.INT32
        self._op(opcode, [x, self.int32_constant([axis])], [y], otype, o)
        return y

    def gather_nd(self, x: _T, indices: Any) -> _T:
        idx = np.asarray(indices, dtype=np.int32)
        shape = (*idx.shape[:-1], *x.shape[idx.shape[-1]:])
        y = self._act_tensor(shape, x.dtype, x.q, x.std, "gather_nd")
        self._op(schema.BuiltinOperator.GATHER_ND, [x, self.int32_constant(idx)], [y],
                 schema.BuiltinOptions.GatherNdOptions, schema.GatherNdOptionsT())
        return y

    def quantize(self, x: _T, dtype: str = "int8", out_q: QParams | None = None) -> _T:
        if out_q is None:
            if x.q is not None:
                out_q = QParams(x.q.scale * float(self.rng.uniform(0.5, 2.0)),
                                int(self.rng.integers(-60, 61)) + (128 if dtype == "uint8" else 0))
            else:
                out_q = self.random_qparams(dtype)
        y = self._act_tensor(x.shape, dtype, out_q, x.std, "quantize")
        self._op(schema.BuiltinOperator.QUANTIZE, [x], [y])
        return y

    def dequantize(self, x: _T) -> _T:
        y = self._act_tensor(x.shape, "float32", None, x.std, "dequantize")
        self._op(schema.BuiltinOperator.DEQUANTIZE, [x], [y])
        return y

    def relu(self, x: _T, out_q: QParams | None = None) -> _T:
        if out_q is None:
            assert x.q is not None
            out_q = QParams(x.q.scale * float(self.rng.uniform(0.5, 1.5)),
                            int(self.rng.integers(-128, -60)))
        y = self._act_tensor(x.shape, "int8", out_q, x.std, "relu")
        self._op(schema.BuiltinOperator.RELU, [x], [y])
        return y

    def leaky_relu(self, x: _T, alpha: float, out_q: QParams | None = None) -> _T:
        if out_q is None:
            assert x.q is not None
            out_q = QParams(x.q.scale * float(self.rng.uniform(0.5, 1.5)),
                            int(self.rng.integers(-60, 61)))
        y = self._act_tensor(x.shape, "int8", out_q, x.std, "leaky_relu")
        o = schema.LeakyReluOptionsT()
        o.alpha = alpha
        self._op(schema.BuiltinOperator.LEAKY_RELU, [x], [y],
                 schema.BuiltinOptions.LeakyReluOptions, o)
        return y

    def prelu(self, x: _T, alpha_shape: tuple[int, ...]) -> _T:
        """PRELU with a constant int8 alpha of *alpha_shape* (broadcast against the input)."""
        assert x.q is not None
        alpha = self.constant(alpha_shape, q=QParams(float(self.rng.uniform(0.002, 0.01)),
                                                     int(self.rng.integers(-20, 21))))
        out_q = QParams(x.q.scale * float(self.rng.uniform(0.5, 1.5)),
                        int(self.rng.integers(-60, 61)))
        y = self._act_tensor(x.shape, "int8", out_q, x.std, "prelu")
        self._op(schema.BuiltinOperator.PRELU, [x, alpha], [y])
        return y

    def hard_swish(self, x: _T, out_q: QParams | None = None) -> _T:
        if out_q is None:
            assert x.q is not None
            out_q = QParams(x.q.scale * float(self.rng.uniform(0.5, 1.5)),
                            int(self.rng.integers(-100, 0)))
        y = self._act_tensor(x.shape, "int8", out_q, x.std, "hard_swish")
        self._op(schema.BuiltinOperator.HARD_SWISH, [x], [y])
        return y

    def logistic(self, x: _T) -> _T:
        y = self._act_tensor(x.shape, "int8", QParams(1.0 / 256, -128), 0.3, "logistic")
        self._op(schema.BuiltinOperator.LOGISTIC, [x], [y])
        return y

    def tanh(self, x: _T) -> _T:
        y = self._act_tensor(x.shape, "int8", QParams(1.0 / 128, 0), 0.5, "tanh")
        self._op(schema.BuiltinOperator.TANH, [x], [y])
        return y

    def relu6(self, x: _T) -> _T:
        y = self._act_tensor(x.shape, "int8", x.q, x.std, "relu6")
        self._op(schema.BuiltinOperator.RELU6, [x], [y])
        return y

    # -- output ----------------------------------------------------------------------------------

    def build(self) -> bytes:
        if not self._inputs or not self._outputs:
            raise ValueError("the model needs at least one input and one output")
        self.sg.inputs = list(self._inputs)
        self.sg.outputs = list(self._outputs)
        model = me.Model(subgraphs=[self.sg], description="sweetspot modelgen")
        return bytes(model.build())


def write_model(builder: ModelBuilder, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(builder.build())
    return p
