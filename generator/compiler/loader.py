"""Load a ``.tflite`` flatbuffer, validate it, and turn it into the IR
(:mod:`generator.compiler.ir`).

The flatbuffer is decoded with the schema shipped in the ``tflite-micro`` wheel
(``schema_py_generated``); nothing here parses bytes by hand. No flatbuffer object leaves this
module: the result is a :class:`generator.compiler.ir.Graph` of plain frozen dataclasses and
read-only
numpy arrays.

What is accepted
----------------
* exactly one subgraph, schema version 3, file identifier ``TFL3``;
* static shapes: every dimension of ``shape`` is positive; ``shape_signature`` may only carry -1
  in the batch dimension (dimension 0) when ``shape`` fixes it (the converter's usual "unknown
  batch, run with 1");
* int8 activations with per-tensor quantization; int8 weights with per-tensor or per-channel
  quantization; int32 biases; int32/int64 constant parameter tensors (RESHAPE shape, MEAN axes,
  PAD paddings);
* at the graph edges only: a float32 or uint8 graph input whose consumers are all QUANTIZE, and a
  float32 graph output produced by DEQUANTIZE (or a uint8 output produced by QUANTIZE);
* the operators in :data:`SUPPORTED_OPS` (no fused TANH/SIGN_BIT activations, no shuffled
  FULLY_CONNECTED weights).

Everything else raises :class:`~generator.errors.ModelError` (a float model, an int16
activation, a dynamic shape, ...) or :class:`~generator.errors.UnsupportedOperatorError`, which
names every offending operator with its index.

Normalized operator options (``Operator.options``)
--------------------------------------------------
==========================  ========================================================================
opcode                      keys (values are plain Python ints/floats/strs/bools/tuples)
==========================  ========================================================================
CONV_2D                     padding ('SAME'|'VALID'), stride_h, stride_w, dilation_h, dilation_w,
                            fused_activation ('NONE'|'RELU'|'RELU6'|'RELU_N1_TO_1')
DEPTHWISE_CONV_2D           as CONV_2D + depth_multiplier (from the shapes when the option is 0)
FULLY_CONNECTED             fused_activation, keep_num_dims (bool), weights_format ('DEFAULT')
AVERAGE_POOL_2D/MAX_POOL_2D padding, stride_h, stride_w, filter_h, filter_w, fused_activation
ADD, MUL                    fused_activation
CONCATENATION               axis (non-negative, relative to the output's rank), fused_activation
RESHAPE                     new_shape (tuple; always the output tensor's shape, which is
                            authoritative; the option / shape tensor is only cross-checked)
SOFTMAX                     beta (float)
PAD                         paddings (tuple of (before, after) per dimension, from the constant
                            paddings tensor)
MEAN                        axes (sorted tuple of non-negative axes, from the constant axis
                            tensor), keep_dims (bool)
QUANTIZE, DEQUANTIZE,       (no options)
RELU, RELU6
any other supported op      the schema's option fields with snake_case names (enum values as
                            ints; ``fused_activation_function`` becomes ``fused_activation`` as a
                            name). Register a function in :data:`OPTION_NORMALIZERS` to do better.
==========================  ========================================================================
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from generator.compiler.fold import FOLDERS, fold_constants, fold_plan
from generator.compiler.ir import DTYPE_SIZES, Graph, Operator, Quant, Tensor
from generator.compiler.shapes import ShapeError, check_arity, check_operators
from generator.errors import ModelError, UnsupportedOperatorError

__all__ = [
    "OPTION_NORMALIZERS",
    "SUPPORTED_OPS",
    "load_model",
    "load_model_bytes",
    "load_model_structure",
]

#: Operators the generator has kernels for. The kernels engineer extends this set (and, if the
#: operator has options worth normalizing, :data:`OPTION_NORMALIZERS`).
SUPPORTED_OPS: frozenset[str] = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "AVERAGE_POOL_2D",
        "MAX_POOL_2D",
        "ADD",
        "MUL",
        "CONCATENATION",
        "RESHAPE",
        "SOFTMAX",
        "PAD",
        "MEAN",
        "QUANTIZE",
        "DEQUANTIZE",
        "RELU",
        "RELU6",
        "TRANSPOSE",
        "SLICE",
        "STRIDED_SLICE",
        "SQUEEZE",
        "EXPAND_DIMS",
        "GATHER",
        "SPACE_TO_DEPTH",
        "DEPTH_TO_SPACE",
        "MAXIMUM",
        "MINIMUM",
        "REDUCE_MAX",
        "REDUCE_MIN",
        "ARG_MAX",
        "ARG_MIN",
        "SUB",
        "LEAKY_RELU",
        "HARD_SWISH",
        "LOGISTIC",
        "TANH",
        "PRELU",
        "SQUARED_DIFFERENCE",
        "SPLIT",
        "SPLIT_V",
        "UNPACK",
        "PACK",
    }
)

TFLITE_FILE_IDENTIFIER = b"TFL3"
TFLITE_SCHEMA_VERSION = 3

_BUILTIN_NAMES: dict[int, str] = {
    code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
_TYPE_NAMES: dict[int, str] = {
    code: name.lower() for name, code in vars(schema.TensorType).items() if not name.startswith("_")
}
_ACTIVATIONS: dict[int, str] = {
    code: name
    for name, code in vars(schema.ActivationFunctionType).items()
    if not name.startswith("_")
}
_SUPPORTED_ACTIVATIONS = frozenset({"NONE", "RELU", "RELU6", "RELU_N1_TO_1"})
_PADDINGS = {schema.Padding.SAME: "SAME", schema.Padding.VALID: "VALID"}
_WEIGHTS_FORMATS = {
    code: name
    for name, code in vars(schema.FullyConnectedOptionsWeightsFormat).items()
    if not name.startswith("_")
}
_OPTIONS_NAMES: dict[int, str] = {
    code: name for name, code in vars(schema.BuiltinOptions).items() if not name.startswith("_")
}
#: The builtin options table each supported operator may carry (besides none at all); -1: none.
_OPTIONS_TYPE: dict[str, int] = {
    op: getattr(schema.BuiltinOptions, name, -1)
    for op, name in {
        "CONV_2D": "Conv2DOptions",
        "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
        "FULLY_CONNECTED": "FullyConnectedOptions",
        "AVERAGE_POOL_2D": "Pool2DOptions",
        "MAX_POOL_2D": "Pool2DOptions",
        "ADD": "AddOptions",
        "MUL": "MulOptions",
        "CONCATENATION": "ConcatenationOptions",
        "RESHAPE": "ReshapeOptions",
        "SOFTMAX": "SoftmaxOptions",
        "PAD": "PadOptions",
        "MEAN": "ReducerOptions",
        "QUANTIZE": "QuantizeOptions",
        "DEQUANTIZE": "DequantizeOptions",
        "RELU": "",
        "RELU6": "",
        "TRANSPOSE": "TransposeOptions",
        "SLICE": "SliceOptions",
        "STRIDED_SLICE": "StridedSliceOptions",
        "SQUEEZE": "SqueezeOptions",
        "EXPAND_DIMS": "ExpandDimsOptions",
        "GATHER": "GatherOptions",
        "SPACE_TO_DEPTH": "SpaceToDepthOptions",
        "DEPTH_TO_SPACE": "DepthToSpaceOptions",
        "MAXIMUM": "MaximumMinimumOptions",
        "MINIMUM": "MaximumMinimumOptions",
        "REDUCE_MAX": "ReducerOptions",
        "REDUCE_MIN": "ReducerOptions",
        "ARG_MAX": "ArgMaxOptions",
        "ARG_MIN": "ArgMinOptions",
        "SUB": "SubOptions",
        "LEAKY_RELU": "LeakyReluOptions",
        "HARD_SWISH": "HardSwishOptions",
        "LOGISTIC": "",
        "TANH": "",
        "PRELU": "",
        "SQUARED_DIFFERENCE": "SquaredDifferenceOptions",
        "SPLIT": "SplitOptions",
        "SPLIT_V": "SplitVOptions",
        "UNPACK": "UnpackOptions",
        "PACK": "PackOptions",
    }.items()
}
# Operators whose input 1 is a weight tensor and input 2 an (optional) bias.
_WEIGHTED_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"})

_HOW_TO_QUANTIZE = (
    "re-convert with TFLiteConverter using optimizations=[tf.lite.Optimize.DEFAULT], a "
    "representative_dataset and target_spec.supported_ops=[tf.lite.OpsSet.TFLITE_BUILTINS_INT8]"
)


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------


def load_model(path: str | os.PathLike[str]) -> Graph:
    """Read, validate and convert the ``.tflite`` file at *path*; ``Graph.name`` is its stem."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file '{p}' does not exist; check the path") from None
    except IsADirectoryError:
        raise ModelError(f"model path '{p}' is a directory; give a .tflite file") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file '{p}': {exc.strerror or exc}") from None
    return load_model_bytes(data, p.stem)


def load_model_bytes(data: bytes, name: str) -> Graph:
    """Validate and convert a ``.tflite`` flatbuffer held in memory; *name* names the model."""
    data = bytes(data)
    model = _decode(data, name)
    # Constant folding runs right after loading (its own pass, generator.compiler.fold).
    return fold_constants(_Loader(model, data, name).graph())


def load_model_structure(path: str | os.PathLike[str]) -> Graph:
    """The model at *path* as TFLM's interpreter sees it, for the TFLM backend: every operator
    of the file in order (any opcode; nothing folded, no options normalized), its tensors and
    graph inputs/outputs. Only the structure is checked (indices in range, executable in order;
    variable tensors count as available state). The generated backend's operator list and
    int8 rules do not apply: TFLM's resolver is built from the model's own operators and its
    interpreter validates the rest."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file '{p}': {exc.strerror or exc}; check the path"
                         ) from None
    return _Loader(_decode(data, p.stem), data, p.stem).structure()


# --------------------------------------------------------------------------------------------
# decoding
# --------------------------------------------------------------------------------------------


def _decode(data: bytes, name: str) -> schema.ModelT:
    if not data:
        raise ModelError(
            f"model '{name}' is an empty file (0 bytes); expected a TensorFlow Lite flatbuffer"
        )
    if len(data) < 8 or data[4:8] != TFLITE_FILE_IDENTIFIER:
        found = data[4:8] if len(data) >= 8 else b""
        raise ModelError(
            f"model '{name}' is not a TensorFlow Lite flatbuffer: file identifier "
            f"{found!r} instead of {TFLITE_FILE_IDENTIFIER!r} ({len(data)} bytes); give a "
            ".tflite file (Keras/SavedModel files must be converted with the TFLite converter)"
        )
    try:
        root = schema.Model.GetRootAs(data, 0)
        # Cheap plausibility checks before unpacking everything: a corrupt length field would
        # otherwise make the object API walk far past the end of the data.
        for length in (root.SubgraphsLength(), root.BuffersLength(), root.OperatorCodesLength()):
            if length * 4 > len(data):
                raise ValueError(f"vector length {length} exceeds the file size")
        model = schema.ModelT.InitFromObj(root)
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises struct.error, IndexError, ...
        raise ModelError(
            f"model '{name}' is truncated or corrupt ({len(data):,} bytes): its flatbuffer "
            "cannot be decoded; re-export or re-copy the .tflite file "
            f"[decoder: {type(exc).__name__}: {exc}]"
        ) from None
    if model.version != TFLITE_SCHEMA_VERSION:
        raise ModelError(
            f"model '{name}' has schema version {model.version}, expected "
            f"{TFLITE_SCHEMA_VERSION}: the file is corrupt or from an incompatible converter; "
            "convert it with a current TFLite converter"
        )
    return model


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _ints(values: Any) -> tuple[int, ...]:
    if values is None:
        return ()
    return tuple(int(v) for v in values)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# --------------------------------------------------------------------------------------------
# the loader proper
# --------------------------------------------------------------------------------------------


class _RawTensor:
    """A decoded tensor before validation (no IR object exists until everything checks out)."""

    __slots__ = ("dtype", "fb", "index", "name", "raw", "shape", "signature")

    def __init__(self, index: int, fb: schema.TensorT, raw: bytes | None):
        self.index = index
        self.fb = fb
        self.name = _text(fb.name)
        self.shape = _ints(fb.shape)
        self.signature = _ints(fb.shapeSignature) if fb.shapeSignature is not None else None
        self.dtype = _TYPE_NAMES.get(fb.type, f"type {fb.type}")
        self.raw = raw

    @property
    def is_const(self) -> bool:
        return self.raw is not None

    def label(self) -> str:
        return f"#{self.index} '{self.name}'" if self.name else f"#{self.index}"


class _RawOp:
    __slots__ = ("display", "fb", "index", "inputs", "opcode", "outputs")

    def __init__(self, index: int, opcode: str, display: str, fb: schema.OperatorT):
        self.index = index
        self.opcode = opcode
        self.display = display
        self.inputs = _ints(fb.inputs)
        self.outputs = _ints(fb.outputs)
        self.fb = fb


class _Loader:
    def __init__(self, model: schema.ModelT, data: bytes, name: str):
        self.model = model
        self.data = data
        self.name = name

    def fail(self, message: str) -> ModelError:
        return ModelError(f"model '{self.name}' {message}")

    # -- orchestration -------------------------------------------------------------------------

    def graph(self) -> Graph:
        subgraphs = self.model.subgraphs or []
        if len(subgraphs) != 1:
            if not subgraphs:
                raise self.fail("has no subgraph; the file is incomplete")
            raise self.fail(
                f"has {len(subgraphs)} subgraphs; sweetspot supports single-subgraph models only "
                "(no IF/WHILE control flow or multiple signatures): export one function"
            )
        sg = subgraphs[0]
        self.tensors = self._decode_tensors(sg)
        self.ops = self._decode_ops(sg)
        self.inputs = self._check_indices(_ints(sg.inputs), "graph input")
        self.outputs = self._check_indices(_ints(sg.outputs), "graph output")
        if not self.ops:
            raise self.fail("has no operators; nothing to generate")

        self._check_dataflow()
        # Operators the folding pass evaluates at generation time (shape plumbing): accepted,
        # with their int32 outputs, because no kernel ever runs them.
        self.folding = fold_plan(
            [op.opcode for op in self.ops], [op.inputs for op in self.ops],
            [op.outputs for op in self.ops], lambda t: self.tensors[t].is_const,
            lambda t: self.tensors[t].dtype,
        )
        self.folded_tensors = {t for i in self.folding for t in self.ops[i].outputs}
        self._check_float()
        self._check_operators()
        self._check_arity()
        self._check_shapes()
        self._check_types()
        tensors = tuple(self._to_ir(t) for t in self.tensors)
        operators = []
        for op in self.ops:  # in order: the first operator whose shapes do not follow is named
            ir_op = Operator(
                index=op.index,
                opcode=op.opcode,
                inputs=op.inputs,
                outputs=op.outputs,
                options=self._options(op, tensors),
            )
            # Every output shape must follow from the operator's inputs and options (shapes.py).
            check_operators([ir_op], tensors, skip=self.folding, fail=self._inconsistent)
            operators.append(ir_op)
        return Graph(
            name=self.name,
            sha256=hashlib.sha256(self.data).hexdigest(),
            tensors=tensors,
            operators=tuple(operators),
            inputs=self.inputs,
            outputs=self.outputs,
        )

    def structure(self) -> Graph:
        """Decode without the generated backend's checks (see :func:`load_model_structure`)."""
        subgraphs = self.model.subgraphs or []
        if not subgraphs:
            raise self.fail("has no subgraph; the file is incomplete")
        sg = subgraphs[0]
        self.tensors = self._decode_tensors(sg)
        self.ops = self._decode_ops(sg)
        self.inputs = self._check_indices(_ints(sg.inputs), "graph input")
        self.outputs = self._check_indices(_ints(sg.outputs), "graph output")
        if not self.ops:
            raise self.fail("has no operators; nothing to run")
        self._check_dataflow(state={t.index for t in self.tensors if t.fb.isVariable})
        for t in (*self.inputs, *self.outputs):
            if self.tensors[t].dtype not in DTYPE_SIZES:
                raise self.fail(
                    f"has graph input/output {self.tensors[t].label()} of type "
                    f"{self.tensors[t].dtype}; the infer app feeds and reads only "
                    f"{', '.join(DTYPE_SIZES)} tensors"
                )
        tensors = tuple(
            self._to_ir(t) if t.dtype in DTYPE_SIZES
            else Tensor(index=t.index, name=t.name, shape=t.shape, dtype=t.dtype)
            for t in self.tensors
        )
        operators = tuple(
            Operator(index=op.index, opcode=op.opcode, inputs=op.inputs, outputs=op.outputs,
                     options={})
            for op in self.ops
        )
        return Graph(name=self.name, sha256=hashlib.sha256(self.data).hexdigest(),
                     tensors=tensors, operators=operators, inputs=self.inputs,
                     outputs=self.outputs)

    def _inconsistent(self, op: _RawOp | Operator, problem: str) -> ModelError:
        return self.fail(
            f"has an inconsistent operator #{op.index} {op.opcode}: {problem}; the file is "
            "corrupt or was edited: re-convert the model"
        )

    def _check_arity(self) -> None:
        """Input/output counts, and an options table of the opcode's own type (a mismatched
        table would be read as if it were the right one)."""
        for op in self.ops:
            if op.index in self.folding:
                continue
            try:
                check_arity(op.opcode, op.inputs, op.outputs)
            except ShapeError as exc:
                raise self._inconsistent(op, str(exc)) from None
            given = op.fb.builtinOptionsType
            if op.opcode in _OPTIONS_TYPE and given not in (0, _OPTIONS_TYPE[op.opcode]):
                want = _OPTIONS_NAMES.get(_OPTIONS_TYPE[op.opcode], "none")
                raise self.fail(
                    f"is corrupt: operator #{op.index} {op.opcode} carries "
                    f"{_OPTIONS_NAMES.get(given, f'options type {given}')}, not {want}; "
                    "re-convert the model"
                )

    # -- decoding the subgraph -----------------------------------------------------------------

    def _buffer_bytes(self, index: int, tensor_label: str) -> bytes | None:
        buffers = self.model.buffers or []
        if index == 0:
            return None
        if not 0 <= index < len(buffers):
            raise self.fail(
                f"is corrupt: tensor {tensor_label} refers to buffer {index} of {len(buffers)}"
            )
        buf = buffers[index]
        if buf is None:
            return None
        if buf.offset > 1:  # data stored after the flatbuffer (models > 2 GB)
            end = buf.offset + buf.size
            if end > len(self.data):
                raise self.fail(
                    f"is truncated: tensor {tensor_label} has data at bytes {buf.offset}..{end} "
                    f"but the file has {len(self.data)} bytes"
                )
            return self.data[buf.offset : end] if buf.size else None
        if buf.data is None or len(buf.data) == 0:
            return None
        return np.asarray(buf.data, dtype=np.uint8).tobytes()

    def _decode_tensors(self, sg: schema.SubGraphT) -> list[_RawTensor]:
        out = []
        for i, fb in enumerate(sg.tensors or []):
            label = f"#{i} '{_text(fb.name)}'"
            if getattr(fb, "externalBuffer", 0):
                raise self.fail(
                    f"stores tensor {label} in an external buffer; sweetspot needs the weights "
                    "inside the .tflite file"
                )
            out.append(_RawTensor(i, fb, self._buffer_bytes(fb.buffer, label)))
        return out

    def _decode_ops(self, sg: schema.SubGraphT) -> list[_RawOp]:
        codes = self.model.operatorCodes or []
        ops = []
        for i, fb in enumerate(sg.operators or []):
            if not 0 <= fb.opcodeIndex < len(codes):
                raise self.fail(
                    f"is corrupt: operator #{i} uses operator code {fb.opcodeIndex} of {len(codes)}"
                )
            oc = codes[fb.opcodeIndex]
            # Same rule as TFLite's GetBuiltinCode(): the larger of the two fields wins.
            code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
            opcode = _BUILTIN_NAMES.get(code, f"opcode {code}")
            display = opcode
            if code == schema.BuiltinOperator.CUSTOM:
                display = f"CUSTOM '{_text(oc.customCode)}'"
            op = _RawOp(i, opcode, display, fb)
            n = len(self.tensors)
            for t in op.inputs:
                if not -1 <= t < n:
                    raise self.fail(f"is corrupt: operator #{i} {opcode} reads tensor {t} of {n}")
            for t in op.outputs:
                if not 0 <= t < n:
                    raise self.fail(f"is corrupt: operator #{i} {opcode} writes tensor {t} of {n}")
            ops.append(op)
        return ops

    def _check_indices(self, indices: tuple[int, ...], what: str) -> tuple[int, ...]:
        for t in indices:
            if not 0 <= t < len(self.tensors):
                raise self.fail(f"is corrupt: {what} is tensor {t} of {len(self.tensors)}")
        if not indices:
            raise self.fail(f"declares no {what}s")
        return indices

    # -- structure -----------------------------------------------------------------------------

    def _check_dataflow(self, state: frozenset[int] | set[int] = frozenset()) -> None:
        """Every activation an operator reads exists by then: graph input or produced earlier
        (or, with *state*, a variable tensor that persists across inferences)."""
        available = set(self.inputs) | set(state)
        producer: dict[int, int] = {}
        for op in self.ops:
            for t in op.inputs:
                if t < 0 or self.tensors[t].is_const or t in available:
                    continue
                raise self.fail(
                    f"is not executable in order: operator #{op.index} {op.opcode} reads tensor "
                    f"{self.tensors[t].label()}, which is neither a graph input, a constant, nor "
                    "produced by an earlier operator"
                )
            for t in op.outputs:
                if self.tensors[t].is_const:
                    raise self.fail(
                        f"is corrupt: operator #{op.index} {op.opcode} writes constant tensor "
                        f"{self.tensors[t].label()}"
                    )
                if t in producer or t in self.inputs:
                    other = f"operator #{producer[t]}" if t in producer else "the graph input"
                    raise self.fail(
                        f"is corrupt: tensor {self.tensors[t].label()} is written by operator "
                        f"#{op.index} and also by {other}"
                    )
                producer[t] = op.index
                available.add(t)
        for t in self.outputs:
            if self.tensors[t].is_const:  # found by tests/test_fuzz.py: it has no arena slot
                raise self.fail(
                    f"is corrupt: graph output {self.tensors[t].label()} is a constant tensor, "
                    "not something the graph computes; re-convert the model"
                )
            if t not in available and not self.tensors[t].is_const:
                raise self.fail(
                    f"is corrupt: graph output {self.tensors[t].label()} is produced by no operator"
                )
        self.producer = producer

    def _consumers(self, t: int) -> list[_RawOp]:
        return [op for op in self.ops if t in op.inputs]

    def _edge_exempt(self) -> set[int]:
        """Graph-edge tensors allowed to be float32/uint8 (they feed QUANTIZE / come from
        DEQUANTIZE or QUANTIZE)."""
        exempt = set()
        for t in self.inputs:
            cons = self._consumers(t)
            if (
                self.tensors[t].dtype in ("float32", "uint8")
                and cons
                and all(op.opcode == "QUANTIZE" for op in cons)
            ):
                exempt.add(t)
        for t in self.outputs:
            src = self.producer.get(t)
            if src is None:
                continue
            opcode = self.ops[src].opcode
            dtype = self.tensors[t].dtype
            if (dtype == "float32" and opcode == "DEQUANTIZE") or (
                dtype == "uint8" and opcode == "QUANTIZE"
            ):
                exempt.add(t)
        return exempt

    def _check_float(self) -> None:
        self.exempt = self._edge_exempt()
        floats = [
            t
            for t in self.tensors
            if t.dtype in ("float32", "float16", "float64", "bfloat16")
            and t.index not in self.exempt
        ]
        if not floats:
            return
        const = [t for t in floats if t.is_const]
        shown = ", ".join(t.label() for t in (const or floats)[:3])
        more = len(const or floats) - 3
        shown += f" and {more} more" if more > 0 else ""
        if const:
            raise self.fail(
                f"is a float model: weights {shown} are {const[0].dtype}; sweetspot needs a "
                f"full-integer int8 quantized model: {_HOW_TO_QUANTIZE}"
            )
        raise self.fail(
            f"is a float model: activations {shown} are {floats[0].dtype} inside the graph "
            "(dynamic-range quantization keeps float activations); sweetspot needs full-integer "
            f"int8 quantization: {_HOW_TO_QUANTIZE}"
        )

    def _check_operators(self) -> None:
        bad: list[tuple[int, str]] = []
        for op in self.ops:
            if op.index in self.folding:
                continue
            if op.opcode not in SUPPORTED_OPS:
                foldable = " (not foldable: computes on non-constant data)"
                bad.append((op.index, op.display + (foldable if op.opcode in FOLDERS else "")))
                continue
            opts = op.fb.builtinOptions
            act = getattr(opts, "fusedActivationFunction", 0)
            act_name = _ACTIVATIONS.get(act, str(act))
            if act_name not in _SUPPORTED_ACTIVATIONS:
                bad.append((op.index, f"{op.display} with fused {act_name}"))
            fmt = getattr(opts, "weightsFormat", 0)
            if op.opcode == "FULLY_CONNECTED" and fmt != 0:
                bad.append((op.index, f"{op.display} with {_WEIGHTS_FORMATS.get(fmt)} weights"))
        if bad:
            listed = ", ".join(f"#{i} {d}" for i, d in bad)
            raise UnsupportedOperatorError(
                f"model '{self.name}' uses operators not supported: {listed}; supported: "
                f"{', '.join(sorted(SUPPORTED_OPS))}. Replace them in the model (or add a kernel)",
                bad,
            )

    def _check_shapes(self) -> None:
        for t in self.tensors:
            dynamic = any(d < 0 for d in t.shape)
            sig = t.signature
            if sig is not None and len(sig) == len(t.shape):
                dynamic |= any(d < 0 for i, d in enumerate(sig) if i > 0)
                dynamic |= bool(sig) and sig[0] < 0 and t.shape[0] < 1
            if dynamic:
                shown = list(sig) if sig is not None else list(t.shape)
                raise self.fail(
                    f"has a dynamic shape: tensor {t.label()} has shape {list(t.shape)} / "
                    f"signature {shown}; sweetspot needs static shapes: convert with a fixed "
                    "input shape (batch size 1, concrete input_signature)"
                )
            if any(d == 0 for d in t.shape) and not t.is_const:
                raise self.fail(
                    f"has an empty tensor {t.label()} (shape {list(t.shape)}); every dimension "
                    "must be at least 1"
                )

    def _check_types(self) -> None:
        weighted: dict[int, tuple[_RawOp, str]] = {}
        for op in self.ops:
            if op.opcode in _WEIGHTED_OPS:
                if len(op.inputs) < 2 or op.inputs[1] < 0:
                    raise self.fail(f"operator #{op.index} {op.opcode} has no weights input")
                weighted[op.inputs[1]] = (op, "weights")
                if len(op.inputs) > 2 and op.inputs[2] >= 0:
                    weighted[op.inputs[2]] = (op, "bias")
        for t in self.tensors:
            fb = t.fb
            if fb.sparsity is not None:
                raise self.fail(
                    f"has a sparse tensor {t.label()}; sparse weights are not supported: convert "
                    "without sparsity"
                )
            if fb.isVariable:
                raise self.fail(
                    f"has a variable (stateful) tensor {t.label()}; stateful models are not "
                    "supported"
                )
            q = fb.quantization
            if q is not None and q.details is not None:
                raise self.fail(
                    f"uses a custom/blockwise quantization scheme on tensor {t.label()}; only "
                    "affine per-tensor or per-channel int8 quantization is supported"
                )
            role = weighted.get(t.index)
            if role is not None:
                op, kind = role
                self._check_weight(t, op, kind)
            elif t.is_const:
                if t.dtype not in ("int8", "int32", "int64"):
                    raise self.fail(
                        f"has constant tensor {t.label()} of type {t.dtype}; constants must be "
                        f"int8 data or int32/int64 parameters: {_HOW_TO_QUANTIZE}"
                    )
                if t.dtype == "int8":
                    self._check_quant(t, allow_per_channel=True)
            elif t.index in self.folded_tensors:
                pass  # int32/int64 shape data computed at generation time
            elif t.index in self._index_outputs() and t.dtype == "int32":
                pass  # ARG_MAX/ARG_MIN indices
            elif t.index in self.exempt:
                if t.dtype == "uint8":
                    self._check_quant(t, allow_per_channel=False)
            else:
                self._check_activation(t)
            if t.is_const:
                self._check_data_size(t)

    def _index_outputs(self) -> set[int]:
        return {t for op in self.ops if op.opcode in ("ARG_MAX", "ARG_MIN") for t in op.outputs}

    def _check_activation(self, t: _RawTensor) -> None:
        if t.dtype == "int16":
            raise self.fail(
                f"has an int16 activation tensor {t.label()} (16x8 quantization); sweetspot "
                "supports int8 activations only: quantize activations to int8"
            )
        if t.dtype == "uint8":
            raise self.fail(
                f"has a uint8 activation tensor {t.label()} (the old asymmetric uint8 scheme); "
                f"uint8 is only allowed at a graph input feeding QUANTIZE: {_HOW_TO_QUANTIZE}"
            )
        if t.dtype != "int8":
            raise self.fail(
                f"has a {t.dtype} activation tensor {t.label()}; sweetspot supports int8 "
                "activations only (float32/uint8 only at graph edges with QUANTIZE/DEQUANTIZE)"
            )
        self._check_quant(t, allow_per_channel=False)

    def _check_weight(self, t: _RawTensor, op: _RawOp, kind: str) -> None:
        where = f"{kind} {t.label()} of operator #{op.index} {op.opcode}"
        if not t.is_const:
            raise self.fail(
                f"has non-constant {where}; weights and biases must be constants (a matmul of "
                "two activations is not supported)"
            )
        if kind == "weights":
            if t.dtype != "int8":
                raise self.fail(
                    f"has {t.dtype} {where}; only int8 weights are supported: {_HOW_TO_QUANTIZE}"
                )
            self._check_quant(t, allow_per_channel=True)
        elif t.dtype != "int32":
            raise self.fail(
                f"has {t.dtype} {where}; only int32 biases (int8 activations) are supported"
            )

    def _check_quant(self, t: _RawTensor, *, allow_per_channel: bool) -> None:
        q = t.fb.quantization
        scales = [] if q is None or q.scale is None else [float(s) for s in q.scale]
        if not scales:
            raise self.fail(
                f"has {t.dtype} tensor {t.label()} without quantization parameters; "
                f"{_HOW_TO_QUANTIZE}"
            )
        zps = [] if q.zeroPoint is None else [int(z) for z in q.zeroPoint]
        if len(zps) not in (1, len(scales)):
            raise self.fail(
                f"is corrupt: tensor {t.label()} has {len(scales)} scales but {len(zps)} zero "
                f"points"
            )
        if any(not (math.isfinite(s) and s > 0) for s in scales):
            raise self.fail(f"has a non-positive or non-finite scale on tensor {t.label()}")
        info = np.iinfo(t.dtype)
        if any(not info.min <= z <= info.max for z in zps):
            raise self.fail(f"has a zero point outside the {t.dtype} range on tensor {t.label()}")
        if len(scales) > 1:
            if not allow_per_channel:
                raise self.fail(
                    f"has per-channel quantization on activation tensor {t.label()}; "
                    "activations must be quantized per tensor"
                )
            axis = q.quantizedDimension
            if not 0 <= axis < len(t.shape) or t.shape[axis] != len(scales):
                raise self.fail(
                    f"is corrupt: tensor {t.label()} of shape {list(t.shape)} has "
                    f"{len(scales)} per-channel scales along axis {axis}"
                )

    def _check_data_size(self, t: _RawTensor) -> None:
        assert t.raw is not None
        need = math.prod(t.shape) * DTYPE_SIZES[t.dtype]
        if len(t.raw) != need:
            raise self.fail(
                f"is corrupt: constant tensor {t.label()} holds {len(t.raw)} bytes but shape "
                f"{list(t.shape)} of {t.dtype} needs {need}"
            )

    # -- IR ------------------------------------------------------------------------------------

    def _to_ir(self, t: _RawTensor) -> Tensor:
        quant = None
        q = t.fb.quantization
        if q is not None and q.scale is not None and len(q.scale) > 0:
            scales = tuple(float(s) for s in q.scale)
            zps = tuple(int(z) for z in q.zeroPoint) if q.zeroPoint is not None else (0,)
            if len(zps) == 1 and len(scales) > 1:
                zps = zps * len(scales)
            quant = Quant(scale=scales, zero_point=zps, axis=int(q.quantizedDimension))
        data = None
        if t.raw is not None:
            dtype = np.dtype(t.dtype).newbyteorder("<")
            arr = np.frombuffer(t.raw, dtype=dtype).reshape(t.shape)
            data = arr.astype(np.dtype(t.dtype), copy=False)
            data.flags.writeable = False
        return Tensor(
            index=t.index, name=t.name, shape=t.shape, dtype=t.dtype, quant=quant, data=data
        )

    def _options(self, op: _RawOp, tensors: tuple[Tensor, ...]) -> dict[str, Any]:
        normalizer = OPTION_NORMALIZERS.get(op.opcode, _generic_options)
        try:
            return normalizer(op.fb.builtinOptions, _OpView(op, tensors))
        except _OptionError as exc:
            raise self.fail(f"has an invalid operator #{op.index} {op.opcode}: {exc}") from None


# --------------------------------------------------------------------------------------------
# option normalizers
# --------------------------------------------------------------------------------------------


class _OptionError(Exception):
    """Raised by a normalizer; the loader turns it into a ModelError naming the operator."""


class _OpView:
    """What a normalizer may look at: the operator's IR tensors."""

    def __init__(self, op: _RawOp, tensors: tuple[Tensor, ...]):
        self.opcode = op.opcode
        self._op = op
        self._tensors = tensors

    def input(self, i: int) -> Tensor:
        if i >= len(self._op.inputs) or self._op.inputs[i] < 0:
            raise _OptionError(f"input {i} is missing")
        return self._tensors[self._op.inputs[i]]

    def output(self, i: int = 0) -> Tensor:
        if i >= len(self._op.outputs):
            raise _OptionError(f"output {i} is missing")
        return self._tensors[self._op.outputs[i]]

    def const_input(self, i: int, what: str) -> np.ndarray:
        t = self.input(i)
        if t.data is None:
            raise _OptionError(f"its {what} (input {i}, tensor #{t.index}) must be a constant")
        return t.data


def _with_default(opts: Any, cls: type) -> Any:
    return opts if opts is not None else cls()


def _activation(opts: Any) -> str:
    code = getattr(opts, "fusedActivationFunction", 0)
    return _ACTIVATIONS.get(code, str(code))


def _padding(opts: Any) -> str:
    try:
        return _PADDINGS[opts.padding]
    except KeyError:
        raise _OptionError(f"unknown padding {opts.padding}") from None


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise _OptionError(f"{name} is {value}; it must be at least 1")
    return int(value)


def _bias_type(o: Any) -> None:
    """TFLM parses ``quantized_bias_type`` as a tensor type (and refuses an unknown one); only
    the default and int32 fit the int32 biases sweetspot supports (found by test_fuzz.py)."""
    bias_type = int(getattr(o, "quantizedBiasType", 0) or 0)
    if bias_type not in (0, schema.TensorType.INT32):
        raise _OptionError(
            f"quantized_bias_type is {_TYPE_NAMES.get(bias_type, bias_type)}; only int32 "
            "biases are supported"
        )


def _conv_options(opts: Any, view: _OpView) -> dict[str, Any]:
    o = _with_default(opts, schema.Conv2DOptionsT)
    _bias_type(o)
    return {
        "padding": _padding(o),
        "stride_h": _positive("stride_h", o.strideH),
        "stride_w": _positive("stride_w", o.strideW),
        "dilation_h": _positive("dilation_h", o.dilationHFactor),
        "dilation_w": _positive("dilation_w", o.dilationWFactor),
        "fused_activation": _activation(o),
    }


def _depthwise_options(opts: Any, view: _OpView) -> dict[str, Any]:
    o = _with_default(opts, schema.DepthwiseConv2DOptionsT)
    out = _conv_options(o, view)
    in_c = view.input(0).shape[-1]
    out_c = view.output().shape[-1]
    multiplier = int(o.depthMultiplier)
    if multiplier <= 0:
        if in_c == 0 or out_c % in_c:
            raise _OptionError(f"output channels {out_c} are not a multiple of input {in_c}")
        multiplier = out_c // in_c
    if in_c * multiplier != out_c:
        raise _OptionError(
            f"depth_multiplier {multiplier} × input channels {in_c} != output channels {out_c}"
        )
    out["depth_multiplier"] = multiplier
    return out


def _fc_options(opts: Any, view: _OpView) -> dict[str, Any]:
    o = _with_default(opts, schema.FullyConnectedOptionsT)
    _bias_type(o)
    return {
        "fused_activation": _activation(o),
        "keep_num_dims": bool(o.keepNumDims),
        "weights_format": _WEIGHTS_FORMATS.get(o.weightsFormat, str(o.weightsFormat)),
    }


def _pool_options(opts: Any, view: _OpView) -> dict[str, Any]:
    o = _with_default(opts, schema.Pool2DOptionsT)
    return {
        "padding": _padding(o),
        "stride_h": _positive("stride_h", o.strideH),
        "stride_w": _positive("stride_w", o.strideW),
        "filter_h": _positive("filter_h", o.filterHeight),
        "filter_w": _positive("filter_w", o.filterWidth),
        "fused_activation": _activation(o),
    }


def _add_options(opts: Any, view: _OpView) -> dict[str, Any]:
    return {"fused_activation": _activation(_with_default(opts, schema.AddOptionsT))}


def _concat_options(opts: Any, view: _OpView) -> dict[str, Any]:
    o = _with_default(opts, schema.ConcatenationOptionsT)
    rank = len(view.output().shape)
    if not -rank <= o.axis < rank:
        raise _OptionError(f"axis {o.axis} is out of range for rank {rank}")
    return {"axis": int(o.axis) % rank, "fused_activation": _activation(o)}


def _reshape_options(opts: Any, view: _OpView) -> dict[str, Any]:
    src, dst = view.input(0), view.output()
    if src.size != dst.size:
        raise _OptionError(
            f"input shape {list(src.shape)} and output shape {list(dst.shape)} differ in size"
        )
    # Like TFLM: the shape tensor if there is a constant one, else the option.
    requested: tuple[int, ...] | None = None
    try:
        requested = tuple(int(v) for v in view.const_input(1, "shape").reshape(-1))
    except _OptionError:
        if opts is not None and opts.newShape is not None and len(opts.newShape):
            requested = _ints(opts.newShape)
    if requested is not None:
        known = [d for d in requested if d >= 0]
        if (
            len(requested) != len(dst.shape)
            or any(r >= 0 and r != d for r, d in zip(requested, dst.shape))
            or len(known) < len(requested) - 1
        ):
            raise _OptionError(
                f"requested shape {list(requested)} does not match output shape {list(dst.shape)}"
            )
    return {"new_shape": tuple(dst.shape)}


def _softmax_options(opts: Any, view: _OpView) -> dict[str, Any]:
    return {"beta": float(_with_default(opts, schema.SoftmaxOptionsT).beta)}


def _pad_options(opts: Any, view: _OpView) -> dict[str, Any]:
    pads = view.const_input(1, "paddings")
    rank = len(view.input(0).shape)
    if pads.shape != (rank, 2):
        raise _OptionError(f"paddings have shape {list(pads.shape)}, expected [{rank}, 2]")
    if (pads < 0).any():
        raise _OptionError("paddings must not be negative")
    return {"paddings": tuple((int(a), int(b)) for a, b in pads)}


def _mean_options(opts: Any, view: _OpView) -> dict[str, Any]:
    axes = view.const_input(1, "axes").reshape(-1)
    rank = len(view.input(0).shape)
    norm = set()
    for a in axes:
        if not -rank <= int(a) < rank:
            raise _OptionError(f"axis {int(a)} is out of range for rank {rank}")
        norm.add(int(a) % rank)
    keep = bool(_with_default(opts, schema.ReducerOptionsT).keepDims)
    return {"axes": tuple(sorted(norm)), "keep_dims": keep}


def _transpose_options(opts: Any, view: _OpView) -> dict[str, Any]:
    perm = [int(v) for v in view.const_input(1, "permutation").reshape(-1)]
    rank = len(view.input(0).shape)
    if sorted(perm) != list(range(rank)):
        raise _OptionError(f"permutation {perm} is not a permutation of 0..{rank - 1} "
                           "(TFLM takes no negative entries)")
    return {"perm": tuple(perm)}


def _slice_options(opts: Any, view: _OpView) -> dict[str, Any]:
    shape = view.input(0).shape
    begin = [int(v) for v in view.const_input(1, "begin").reshape(-1)]
    size = [int(v) for v in view.const_input(2, "size").reshape(-1)]
    if len(begin) != len(shape) or len(size) != len(shape):
        raise _OptionError(f"has {len(begin)} begin and {len(size)} size values for a "
                           f"rank-{len(shape)} input")
    size = [d - b if n == -1 else n for d, b, n in zip(shape, begin, size)]
    for d, b, n in zip(shape, begin, size):
        if b < 0 or n < 0 or b + n > d:
            raise _OptionError(f"slices [{b}, {b + n}) of a dimension of {d}")
    return {"begin": tuple(begin), "size": tuple(size)}


def _strided_slice_options(opts: Any, view: _OpView) -> dict[str, Any]:
    out = _generic_options(opts, view)
    for i, key in enumerate(("begin", "end", "strides"), start=1):
        t = view.input(i)
        if t.data is not None:  # else computed by folded shape plumbing (the fold pass's)
            out[key] = tuple(int(v) for v in t.data.reshape(-1))
    return out  # offset=True: refused by the fold pass / shape rule (TFLM ignores it)


def _squeeze_options(opts: Any, view: _OpView) -> dict[str, Any]:
    rank = len(view.input(0).shape)
    raw = None if opts is None else opts.squeezeDims
    dims = [] if raw is None else [int(d) for d in raw]
    if any(not -rank <= d < rank for d in dims):
        raise _OptionError(f"squeeze dimensions {dims} are out of range for rank {rank}")
    return {"squeeze_dims": tuple(sorted({d % rank for d in dims}))}


def _expand_dims_options(opts: Any, view: _OpView) -> dict[str, Any]:
    axis_values = view.const_input(1, "axis").reshape(-1)
    rank = len(view.input(0).shape)
    if axis_values.size != 1 or not -rank - 1 <= int(axis_values[0]) <= rank:
        raise _OptionError(f"axis {axis_values.tolist()} is not one axis of 0..{rank}")
    axis = int(axis_values[0])
    return {"axis": axis + rank + 1 if axis < 0 else axis}


def _gather_options(opts: Any, view: _OpView) -> dict[str, Any]:
    o = _with_default(opts, schema.GatherOptionsT)
    rank = len(view.input(0).shape)
    axis = int(o.axis)
    if not -rank <= axis < rank:
        raise _OptionError(f"axis {axis} is out of range for rank {rank}")
    if int(o.batchDims) != 0:
        raise _OptionError(f"has batch_dims {o.batchDims}; only 0 is supported")
    idx = view.const_input(1, "indices")
    return {"axis": axis % rank, "indices": tuple(int(v) for v in idx.reshape(-1)),
            "indices_shape": tuple(idx.shape)}


def _block_options(opts: Any, view: _OpView) -> dict[str, Any]:
    bs = int(getattr(opts, "blockSize", 0)) if opts is not None else 0
    return {"block_size": _positive("block_size", bs)}


def _arg_options(opts: Any, view: _OpView) -> dict[str, Any]:
    values = view.const_input(1, "axis").reshape(-1)
    rank = len(view.input(0).shape)
    if values.size != 1 or not -rank <= int(values[0]) < rank:
        raise _OptionError(f"axis {values.tolist()} is not one axis of a rank-{rank} input")
    if view.output().dtype != "int32":
        raise _OptionError(f"outputs {view.output().dtype}; only int32 indices are supported")
    return {"axis": int(values[0]) % rank}


def _one_axis(values: np.ndarray, rank: int) -> int:
    values = values.reshape(-1)
    if values.size != 1 or not -rank <= int(values[0]) < rank:
        raise _OptionError(f"axis {values.tolist()} is not one axis of a rank-{rank} input")
    return int(values[0]) % rank


def _split_options(opts: Any, view: _OpView) -> dict[str, Any]:
    shape = view.input(1).shape
    axis = _one_axis(view.const_input(0, "axis"), len(shape))
    n = len(view._op.outputs)
    if n < 1 or shape[axis] % n:
        raise _OptionError(f"splits an axis of {shape[axis]} into {n} equal parts")
    return {"axis": axis, "sizes": (shape[axis] // n,) * n}


def _split_v_options(opts: Any, view: _OpView) -> dict[str, Any]:
    shape = view.input(0).shape
    axis = _one_axis(view.const_input(2, "axis"), len(shape))
    sizes = [int(v) for v in view.const_input(1, "size_splits").reshape(-1)]
    if sizes.count(-1) > 1:
        raise _OptionError(f"size_splits {sizes} has more than one -1")
    if -1 in sizes:
        sizes[sizes.index(-1)] = shape[axis] - sum(v for v in sizes if v != -1)
    return {"axis": axis, "sizes": tuple(sizes)}


def _unpack_options(opts: Any, view: _OpView) -> dict[str, Any]:
    o = _with_default(opts, schema.UnpackOptionsT)
    rank = len(view.input(0).shape)
    if not -rank <= int(o.axis) < rank:
        raise _OptionError(f"axis {o.axis} is out of range for rank {rank}")
    return {"axis": int(o.axis) % rank, "num": int(o.num)}


def _pack_options(opts: Any, view: _OpView) -> dict[str, Any]:
    o = _with_default(opts, schema.PackOptionsT)
    rank = len(view.input(0).shape) + 1
    if not -rank <= int(o.axis) < rank:
        raise _OptionError(f"axis {o.axis} is out of range for rank {rank}")
    return {"axis": int(o.axis) % rank, "values_count": int(o.valuesCount)}


def _no_options(opts: Any, view: _OpView) -> dict[str, Any]:
    return {}


def _generic_options(opts: Any, view: _OpView) -> dict[str, Any]:
    if opts is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in sorted(vars(opts).items()):
        if key == "fusedActivationFunction":
            out["fused_activation"] = _activation(opts)
        elif isinstance(value, (bool, int, float, str)):
            out[_snake(key)] = value
        elif isinstance(value, (list, tuple, np.ndarray)):
            out[_snake(key)] = tuple(v.item() if hasattr(v, "item") else v for v in value)
    return out


#: opcode → function(builtin options object or None, view of the operator) → options dict.
OPTION_NORMALIZERS: dict[str, Callable[[Any, _OpView], dict[str, Any]]] = {
    "CONV_2D": _conv_options,
    "DEPTHWISE_CONV_2D": _depthwise_options,
    "FULLY_CONNECTED": _fc_options,
    "AVERAGE_POOL_2D": _pool_options,
    "MAX_POOL_2D": _pool_options,
    "ADD": _add_options,
    "MUL": _add_options,
    "CONCATENATION": _concat_options,
    "RESHAPE": _reshape_options,
    "SOFTMAX": _softmax_options,
    "PAD": _pad_options,
    "MEAN": _mean_options,
    "QUANTIZE": _no_options,
    "DEQUANTIZE": _no_options,
    "RELU": _no_options,
    "RELU6": _no_options,
    "TRANSPOSE": _transpose_options,
    "SLICE": _slice_options,
    "STRIDED_SLICE": _strided_slice_options,
    "SQUEEZE": _squeeze_options,
    "EXPAND_DIMS": _expand_dims_options,
    "GATHER": _gather_options,
    "SPACE_TO_DEPTH": _block_options,
    "DEPTH_TO_SPACE": _block_options,
    "MAXIMUM": _no_options,
    "MINIMUM": _no_options,
    "REDUCE_MAX": _mean_options,
    "REDUCE_MIN": _mean_options,
    "ARG_MAX": _arg_options,
    "ARG_MIN": _arg_options,
    "SUB": _add_options,
    "LEAKY_RELU": _generic_options,
    "HARD_SWISH": _no_options,
    "LOGISTIC": _no_options,
    "TANH": _no_options,
    "PRELU": _no_options,
    "SQUARED_DIFFERENCE": _no_options,
    "SPLIT": _split_options,
    "SPLIT_V": _split_v_options,
    "UNPACK": _unpack_options,
    "PACK": _pack_options,
}
