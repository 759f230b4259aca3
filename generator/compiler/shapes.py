"""Shape inference for the supported operators: what each output's shape must be, given the
operator's input shapes and (normalized) options. The loader checks every operator with it, so a
model whose recorded shapes do not follow from its inputs (a corrupt or hand-edited file) stops
at load time, naming the operator, instead of reaching the generated C with a tensor slot of the
wrong size.

The rules are TFLite's (``tensorflow/lite/kernels/*.cc`` ``Prepare``/``ResizeOutputTensor``;
TFLM checks the same shapes but trusts the file's output shapes):

===================  ===========================================================================
CONV_2D              x [N,H,W,C] * w [O,KH,KW,C/g] -> [N, out(H,KH,sh,dh), out(W,KW,sw,dw), O]
DEPTHWISE_CONV_2D    x [N,H,W,C] * w [1,KH,KW,C*m] -> [N, out(H..), out(W..), C*m]
FULLY_CONNECTED      x [..., D] * w [O,D] -> [x.size/D, O] (keep_num_dims: [..., O])
AVERAGE/MAX_POOL_2D  [N,H,W,C] -> [N, out(H,FH,sh,1), out(W,FW,sw,1), C]
ADD, SUB, MUL, PRELU, SQUARED_DIFFERENCE: numpy broadcasting of the two inputs
CONCATENATION        inputs equal except along axis; the axis sizes add up
RESHAPE              the element count is kept
PAD                  every dimension grows by its (before, after) paddings
MEAN                 the reduced axes become 1 (keep_dims) or disappear
SOFTMAX, QUANTIZE, DEQUANTIZE, RELU, RELU6, LEAKY_RELU, HARD_SWISH, LOGISTIC, TANH:
                     the input's shape
TRANSPOSE            the input's dimensions in the order of ``perm``
SLICE                ``size`` (with -1 resolved to the rest of the dimension)
SPLIT, SPLIT_V, UNPACK: one output per part (:func:`split_sources`); PACK: N inserted at axis
MAXIMUM, MINIMUM     as ADD; REDUCE_MAX, REDUCE_MIN as MEAN; ARG_MAX, ARG_MIN: the axis disappears
STRIDED_SLICE, SQUEEZE, EXPAND_DIMS, GATHER, SPACE_TO_DEPTH, DEPTH_TO_SPACE: the shape of
                     :func:`movement_source` (the operator applied to the element indices)
===================  ===========================================================================

``out(n, k, s, d)`` with the effective filter ``e = (k - 1) * d + 1``: SAME ``ceil(n / s)``,
VALID ``ceil((n - e + 1) / s)`` (at least 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Iterable, Sequence

import numpy as np

from generator.compiler import fold
from generator.compiler.ir import Operator, Tensor

__all__ = [
    "ARITY",
    "ShapeError",
    "check_arity",
    "check_operator",
    "check_operators",
    "expected_output_shape",
    "movement_source",
    "split_sources",
    "out_size",
]


class ShapeError(Exception):
    """An operator's shapes are inconsistent; the loader adds the model and operator names."""


#: opcode -> (minimum inputs, maximum inputs or None, the inputs that may be omitted (-1))
ARITY: dict[str, tuple[int, int | None, frozenset[int]]] = {
    "CONV_2D": (2, 3, frozenset({2})),
    "DEPTHWISE_CONV_2D": (2, 3, frozenset({2})),
    "FULLY_CONNECTED": (2, 3, frozenset({2})),
    "AVERAGE_POOL_2D": (1, 1, frozenset()),
    "MAX_POOL_2D": (1, 1, frozenset()),
    "ADD": (2, 2, frozenset()),
    "MUL": (2, 2, frozenset()),
    "SUB": (2, 2, frozenset()),
    "LEAKY_RELU": (1, 1, frozenset()),
    "HARD_SWISH": (1, 1, frozenset()),
    "LOGISTIC": (1, 1, frozenset()),
    "TANH": (1, 1, frozenset()),
    "PRELU": (2, 2, frozenset()),
    "SQUARED_DIFFERENCE": (2, 2, frozenset()),
    "SPLIT": (2, 2, frozenset()),
    "SPLIT_V": (3, 3, frozenset()),
    "UNPACK": (1, 1, frozenset()),
    "PACK": (1, None, frozenset()),
    "CONCATENATION": (1, None, frozenset()),
    "RESHAPE": (1, 2, frozenset({1})),
    "SOFTMAX": (1, 1, frozenset()),
    "PAD": (2, 3, frozenset({2})),
    "MEAN": (2, 2, frozenset()),
    "QUANTIZE": (1, 1, frozenset()),
    "DEQUANTIZE": (1, 1, frozenset()),
    "RELU": (1, 1, frozenset()),
    "RELU6": (1, 1, frozenset()),
    "TRANSPOSE": (2, 2, frozenset()),
    "SLICE": (3, 3, frozenset()),
    "STRIDED_SLICE": (4, 4, frozenset()),
    "SQUEEZE": (1, 1, frozenset()),
    "EXPAND_DIMS": (2, 2, frozenset()),
    "GATHER": (2, 2, frozenset()),
    "SPACE_TO_DEPTH": (1, 1, frozenset()),
    "DEPTH_TO_SPACE": (1, 1, frozenset()),
    "MAXIMUM": (2, 2, frozenset()),
    "MINIMUM": (2, 2, frozenset()),
    "REDUCE_MAX": (2, 2, frozenset()),
    "REDUCE_MIN": (2, 2, frozenset()),
    "ARG_MAX": (2, 2, frozenset()),
    "ARG_MIN": (2, 2, frozenset()),
}


def out_size(padding: str, n: int, k: int, stride: int, dilation: int, what: str) -> int:
    """Output extent of a windowed operator along one dimension (TFLite's ComputeOutSize)."""
    eff = (k - 1) * dilation + 1
    size = (n + stride - 1) // stride if padding == "SAME" else (n - eff + stride) // stride
    if size < 1:
        raise ShapeError(
            f"its {what} window ({eff} with dilation) is larger than the input's {n} with "
            f"{padding} padding, which leaves no output"
        )
    return size


def _shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


class _Op:
    def __init__(self, op: Operator, tensors: Sequence[Tensor]):
        self.op = op
        self.tensors = tensors

    def input(self, i: int) -> Tensor | None:
        if i >= len(self.op.inputs) or self.op.inputs[i] < 0:
            return None
        return self.tensors[self.op.inputs[i]]

    def need(self, i: int) -> Tensor:
        t = self.input(i)
        if t is None:
            raise ShapeError(f"input {i} is missing")
        return t

    def rank(self, i: int, rank: int, what: str) -> tuple[int, ...]:
        shape = self.need(i).shape
        if len(shape) != rank:
            raise ShapeError(f"its {what} (input {i}) has shape {_shape(shape)}; expected rank "
                             f"{rank}")
        return shape

    def bias(self, channels: int) -> None:
        b = self.input(2)
        if b is not None and b.size != channels:
            raise ShapeError(f"its bias (input 2) has shape {_shape(b.shape)}, {b.size} values "
                             f"for {channels} output channels")


def _conv(v: _Op) -> tuple[int, ...]:
    o = v.op.options
    n, h, w, c = v.rank(0, 4, "input")
    oc, kh, kw, fc = v.rank(1, 4, "filter")
    if c % fc or oc % (c // fc):
        raise ShapeError(f"its filter {_shape(v.need(1).shape)} does not fit {c} input channels "
                         f"(the input channels must be a multiple of the filter's {fc}, and "
                         f"the {oc} output channels a multiple of the groups)")
    v.bias(oc)
    return (n, out_size(o["padding"], h, kh, o["stride_h"], o["dilation_h"], "filter height"),
            out_size(o["padding"], w, kw, o["stride_w"], o["dilation_w"], "filter width"), oc)


def _dwconv(v: _Op) -> tuple[int, ...]:
    o = v.op.options
    n, h, w, c = v.rank(0, 4, "input")
    one, kh, kw, oc = v.rank(1, 4, "filter")
    m = int(o["depth_multiplier"])
    if one != 1 or oc != c * m:
        raise ShapeError(f"its filter {_shape(v.need(1).shape)} is not [1, KH, KW, {c * m}] "
                         f"for {c} input channels x depth multiplier {m}")
    v.bias(oc)
    return (n, out_size(o["padding"], h, kh, o["stride_h"], o["dilation_h"], "filter height"),
            out_size(o["padding"], w, kw, o["stride_w"], o["dilation_w"], "filter width"), oc)


def _fc(v: _Op) -> tuple[int, ...]:
    x = v.need(0)
    oc, depth = v.rank(1, 2, "weights")
    if x.size % depth:
        raise ShapeError(f"its input {_shape(x.shape)} ({x.size} values) is not a whole number "
                         f"of rows of the weights' depth {depth}")
    v.bias(oc)
    if v.op.options.get("keep_num_dims"):
        if not x.shape or x.shape[-1] != depth:
            raise ShapeError(f"keeps the input's dimensions but its input {_shape(x.shape)} does "
                             f"not end in the weights' depth {depth}")
        return (*x.shape[:-1], oc)
    return (x.size // depth, oc)


def _pool(v: _Op) -> tuple[int, ...]:
    o = v.op.options
    n, h, w, c = v.rank(0, 4, "input")
    return (n, out_size(o["padding"], h, o["filter_h"], o["stride_h"], 1, "filter height"),
            out_size(o["padding"], w, o["filter_w"], o["stride_w"], 1, "filter width"), c)


def _add(v: _Op) -> tuple[int, ...]:
    a, b = v.need(0).shape, v.need(1).shape
    out: list[int] = []
    for i in range(1, max(len(a), len(b)) + 1):
        da = a[-i] if i <= len(a) else 1
        db = b[-i] if i <= len(b) else 1
        if da != db and 1 not in (da, db):
            raise ShapeError(f"its inputs {_shape(a)} and {_shape(b)} do not broadcast")
        out.append(max(da, db))
    return tuple(reversed(out))


def _concat(v: _Op) -> tuple[int, ...]:
    axis = int(v.op.options["axis"])
    first = v.need(0).shape
    rank = len(first)
    if not 0 <= axis < rank:
        raise ShapeError(f"axis {axis} is out of range for its rank-{rank} inputs")
    total = 0
    for i in range(len(v.op.inputs)):
        s = v.need(i).shape
        if len(s) != rank or any(d != e for k, (d, e) in enumerate(zip(s, first)) if k != axis):
            raise ShapeError(f"its input {i} {_shape(s)} does not match input 0 "
                             f"{_shape(first)} outside axis {axis}")
        total += s[axis]
    return (*first[:axis], total, *first[axis + 1:])


def _reshape(v: _Op) -> tuple[int, ...]:
    x, y = v.need(0), v.tensors[v.op.outputs[0]]
    if x.size != y.size:
        raise ShapeError(f"its output {_shape(y.shape)} ({y.size} values) does not hold the "
                         f"input {_shape(x.shape)} ({x.size} values)")
    return y.shape


def _same(v: _Op) -> tuple[int, ...]:
    shape = v.need(0).shape
    if v.op.opcode == "SOFTMAX" and not shape:
        raise ShapeError("its input is a scalar; SOFTMAX needs at least one dimension")
    return shape


def _pad(v: _Op) -> tuple[int, ...]:
    shape = v.need(0).shape
    pads = tuple(v.op.options["paddings"])
    if len(pads) != len(shape):
        raise ShapeError(f"has {len(pads)} (before, after) paddings for a rank-{len(shape)} "
                         "input")
    return tuple(d + int(a) + int(b) for d, (a, b) in zip(shape, pads))


def _mean(v: _Op) -> tuple[int, ...]:
    shape = v.need(0).shape
    axes = {int(a) for a in v.op.options["axes"]}
    if any(not 0 <= a < len(shape) for a in axes):
        raise ShapeError(f"reduces axes {sorted(axes)} of a rank-{len(shape)} input")
    if v.op.options.get("keep_dims"):
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _transpose(v: _Op) -> tuple[int, ...]:
    shape = v.need(0).shape
    perm = tuple(int(a) for a in v.op.options["perm"])
    if sorted(perm) != list(range(len(shape))):
        raise ShapeError(f"permutation {list(perm)} does not fit a rank-{len(shape)} input")
    return tuple(shape[a] for a in perm)


def _slice(v: _Op) -> tuple[int, ...]:
    shape = v.need(0).shape
    begin, size = v.op.options["begin"], v.op.options["size"]
    if len(begin) != len(shape) or any(b + n > d for d, b, n in zip(shape, begin, size)):
        raise ShapeError(f"slice begin {list(begin)} size {list(size)} does not fit the input "
                         f"{_shape(shape)}")
    return tuple(int(n) for n in size)


def movement_source(op: Operator, shape: tuple[int, ...]) -> np.ndarray:
    """For a data-movement operator with input shape *shape*: an array of the output's shape
    whose element i is the flat index of the input element output element i copies (the
    operator applied, with numpy, to the input's element indices). Raises ShapeError."""
    o = op.options
    src = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    code = op.opcode
    if code == "TRANSPOSE":
        return src.transpose(tuple(o["perm"]))
    if code == "SLICE":
        return src[tuple(slice(b, b + n) for b, n in zip(o["begin"], o["size"]))]
    if code == "STRIDED_SLICE":
        if not all(k in o for k in ("begin", "end", "strides")):
            raise ShapeError("needs constant begin, end and strides")
        consts = [np.asarray(o[k], dtype=np.int64) for k in ("begin", "end", "strides")]
        try:
            return fold.FOLDERS["STRIDED_SLICE"](op, [src, *consts], [], None)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - fold's own error: the model's fault
            raise ShapeError(str(exc)) from None
    if code == "SQUEEZE":
        dims = set(o["squeeze_dims"]) or {i for i, d in enumerate(shape) if d == 1}
        if any(shape[i] != 1 for i in dims):
            raise ShapeError(f"squeezes dimensions {sorted(dims)} of {_shape(shape)}, not all 1")
        return src.reshape(tuple(d for i, d in enumerate(shape) if i not in dims))
    if code == "EXPAND_DIMS":
        return np.expand_dims(src, int(o["axis"]))
    if code == "GATHER":
        idx = np.asarray(o["indices"], dtype=np.int64).reshape(o["indices_shape"])
        axis = int(o["axis"])
        if idx.size and (idx.min() < 0 or idx.max() >= shape[axis]):
            raise ShapeError(f"gathers indices {idx.min()}..{idx.max()} of an axis of "
                             f"{shape[axis]}")
        return np.take(src, idx, axis=axis)
    if code in ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE"):
        bs = int(o["block_size"])
        if len(shape) != 4 or bs < 1:
            raise ShapeError(f"takes a 4-D NHWC input and a block size >= 1, not {_shape(shape)}"
                             f" and {bs}")
        n, h, w, c = shape
        if code == "SPACE_TO_DEPTH":
            if h % bs or w % bs:
                raise ShapeError(f"needs height and width divisible by the block size {bs}")
            t = src.reshape(n, h // bs, bs, w // bs, bs, c).transpose(0, 1, 3, 2, 4, 5)
            return t.reshape(n, h // bs, w // bs, bs * bs * c)
        if c % (bs * bs):
            raise ShapeError(f"needs channels divisible by the block size squared {bs * bs}")
        t = src.reshape(n, h, w, bs, bs, c // (bs * bs)).transpose(0, 1, 3, 2, 4, 5)
        return t.reshape(n, h * bs, w * bs, c // (bs * bs))
    raise ShapeError(f"{code} is not a data-movement operator")


#: operators with several outputs (their index maps: :func:`split_sources`)
MULTI_OUTPUT = frozenset({"SPLIT", "SPLIT_V", "UNPACK"})


def split_sources(op: Operator, shape: tuple[int, ...]) -> list[np.ndarray]:
    """SPLIT / SPLIT_V / UNPACK of an input of *shape*: per output, the flat input index each
    of its elements copies. Raises ShapeError."""
    o = op.options
    src = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    axis = int(o["axis"])
    if not 0 <= axis < len(shape):
        raise ShapeError(f"splits axis {axis} of a rank-{len(shape)} input")
    if op.opcode == "UNPACK":
        if int(o["num"]) != shape[axis]:
            raise ShapeError(f"unpacks {o['num']} values along an axis of {shape[axis]}")
        return [np.take(src, i, axis=axis) for i in range(shape[axis])]
    sizes = list(o["sizes"])
    if sum(sizes) != shape[axis] or any(n < 0 for n in sizes):
        raise ShapeError(f"splits an axis of {shape[axis]} into {sizes}")
    cuts = np.cumsum(sizes)[:-1].tolist()
    return list(np.split(src, cuts, axis=axis))


def _split(v: _Op) -> tuple[int, ...]:
    data = 1 if v.op.opcode == "SPLIT" else 0
    return tuple(split_sources(v.op, v.need(data).shape)[0].shape)


def _pack(v: _Op) -> tuple[int, ...]:
    first = v.need(0).shape
    for i in range(len(v.op.inputs)):
        if v.need(i).shape != first:
            raise ShapeError(f"packs inputs of different shapes {_shape(first)} and "
                             f"{_shape(v.need(i).shape)}")
    axis = int(v.op.options["axis"])
    if not 0 <= axis <= len(first):
        raise ShapeError(f"packs along axis {axis} of a rank-{len(first) + 1} output")
    return (*first[:axis], len(v.op.inputs), *first[axis:])


def _movement(v: _Op) -> tuple[int, ...]:
    return tuple(movement_source(v.op, v.need(0).shape).shape)


def _arg(v: _Op) -> tuple[int, ...]:
    shape = v.need(0).shape
    axis = int(v.op.options["axis"])
    if not 0 <= axis < len(shape):
        raise ShapeError(f"reduces axis {axis} of a rank-{len(shape)} input")
    return tuple(d for i, d in enumerate(shape) if i != axis)


_RULES: dict[str, Callable[[_Op], tuple[int, ...]]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _dwconv,
    "FULLY_CONNECTED": _fc,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _add,
    "MUL": _add,
    "SUB": _add,
    "LEAKY_RELU": _same,
    "HARD_SWISH": _same,
    "LOGISTIC": _same,
    "TANH": _same,
    "PRELU": _add,
    "SQUARED_DIFFERENCE": _add,
    "SPLIT": _split,
    "SPLIT_V": _split,
    "UNPACK": _split,
    "PACK": _pack,
    "CONCATENATION": _concat,
    "RESHAPE": _reshape,
    "SOFTMAX": _same,
    "PAD": _pad,
    "MEAN": _mean,
    "QUANTIZE": _same,
    "DEQUANTIZE": _same,
    "RELU": _same,
    "RELU6": _same,
    "TRANSPOSE": _transpose,
    "SLICE": _slice,
    "STRIDED_SLICE": _movement,
    "SQUEEZE": _movement,
    "EXPAND_DIMS": _movement,
    "GATHER": _movement,
    "SPACE_TO_DEPTH": _movement,
    "DEPTH_TO_SPACE": _movement,
    "MAXIMUM": _add,
    "MINIMUM": _add,
    "REDUCE_MAX": _mean,
    "REDUCE_MIN": _mean,
    "ARG_MAX": _arg,
    "ARG_MIN": _arg,
}


def check_arity(opcode: str, inputs: Sequence[int], outputs: Sequence[int]) -> None:
    """Right number of inputs and one output; only optional inputs omitted (-1)."""
    if opcode not in ARITY:
        return
    lo, hi, optional = ARITY[opcode]
    n = len(inputs)
    if n < lo or (hi is not None and n > hi):
        want = f"{lo}" if lo == hi else f"{lo} to {hi}" if hi is not None else f"at least {lo}"
        raise ShapeError(f"has {n} inputs; {opcode} takes {want}")
    missing = [i for i, t in enumerate(inputs) if t < 0 and i not in optional]
    if missing:
        raise ShapeError(f"omits its required input {missing[0]} (tensor index -1)")
    if opcode in MULTI_OUTPUT:
        if not outputs:
            raise ShapeError(f"has no outputs; {opcode} has at least 1")
    elif len(outputs) != 1:
        raise ShapeError(f"has {len(outputs)} outputs; {opcode} has exactly 1")


def expected_output_shape(op: Operator, tensors: Sequence[Tensor]) -> tuple[int, ...]:
    """The shape ``op``'s output must have; raises ShapeError when the inputs do not fit."""
    check_arity(op.opcode, op.inputs, op.outputs)
    return tuple(int(d) for d in _RULES[op.opcode](_Op(op, tensors)))


def check_operator(op: Operator, tensors: Sequence[Tensor]) -> None:
    """Raise ShapeError unless ``op``'s output shape follows from its inputs and options."""
    if op.opcode not in _RULES:
        return
    if op.opcode in MULTI_OUTPUT:
        check_arity(op.opcode, op.inputs, op.outputs)
        data = tensors[op.inputs[1 if op.opcode == "SPLIT" else 0]]
        parts = split_sources(op, data.shape)
        if len(parts) != len(op.outputs):
            raise ShapeError(f"has {len(op.outputs)} outputs for {len(parts)} parts")
        for part, t in zip(parts, op.outputs):
            if tuple(tensors[t].shape) != part.shape:
                raise ShapeError(f"its output tensor #{t} has shape {_shape(tensors[t].shape)} "
                                 f"but the split gives {_shape(part.shape)}")
        return
    want = expected_output_shape(op, tensors)
    y = tensors[op.outputs[0]]
    if tuple(y.shape) != want:
        ins = ", ".join(_shape(tensors[t].shape) for t in op.inputs if t >= 0)
        raise ShapeError(f"its output tensor #{y.index} '{y.name}' has shape {_shape(y.shape)} "
                         f"but its inputs ({ins}) and options give {_shape(want)}")


def check_operators(operators: Iterable[Operator], tensors: Sequence[Tensor],
                    skip: Container[int] = (),
                    fail: Callable[[Operator, str], Exception] | None = None) -> None:
    """Check every operator not in ``skip`` (indices); ``fail`` builds the exception to raise."""
    for op in operators:
        if op.index in skip:
            continue
        try:
            check_operator(op, tensors)
        except ShapeError as exc:
            if fail is None:
                raise
            raise fail(op, str(exc)) from None

