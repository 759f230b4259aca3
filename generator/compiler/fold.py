"""Constant folding at generation time: an IR → IR pass run right after loading.

Converters leave shape plumbing in graphs that is constant in practice: FDMobileNet flattens
through ``SHAPE → STRIDED_SLICE → PACK → RESHAPE``, whose int32 vectors TFLM recomputes on
every inference. Every operator whose inputs are all constants (or, for SHAPE, whose input has
a static shape, which every accepted tensor has) is evaluated here in numpy with TFLM's
reference semantics, its outputs become constant tensors, and the operator leaves the graph:
no kernel, no arena bytes, no run-time cost. The RESHAPE downstream then reads a constant shape.

Only integer parameter data (int32/int64 outputs) is folded; quantized int8 arithmetic stays
with its kernels. What was folded is kept in ``Graph.folded`` (``sweetspot inspect`` lists it).

:func:`fold_plan` decides which operators fold; the loader asks it too, so that it accepts these
operators (and their int32 activations) exactly when this pass removes them, and names them as
unsupported otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from generator.compiler.ir import FoldedOp, Graph, Operator, Tensor
from generator.errors import ModelError

__all__ = ["FOLDERS", "describe", "fold_constants", "fold_plan"]

#: dtypes a folded operator may produce (parameter data, never quantized activations)
FOLDABLE_DTYPES = frozenset({"int32", "int64"})

_INT32 = np.iinfo(np.int32)


class _FoldError(Exception):
    """Raised by a folder; the pass turns it into a ModelError naming the operator."""


def _wrap(values: np.ndarray, dtype: str) -> np.ndarray:
    """Two's-complement wrap to ``dtype``, as the C kernels' int32 arithmetic does."""
    return np.asarray(values, dtype=np.int64).astype(dtype)


def _shape(op: Operator, ins: list[np.ndarray | None], tins: list[Tensor], out: Tensor
           ) -> np.ndarray:
    # TFLM micro's SHAPE: the input's dimensions as int32 (output type int32 only).
    return np.asarray(tins[0].shape, dtype=np.int64)


def _pack(op: Operator, ins: list[np.ndarray | None], tins: list[Tensor], out: Tensor
          ) -> np.ndarray:
    arrays = [_value(a) for a in ins]
    if len({a.shape for a in arrays}) != 1:
        raise _FoldError("packs values of different shapes")
    rank = arrays[0].ndim + 1
    axis = int(op.options.get("axis", 0))
    if not -rank <= axis < rank:
        raise _FoldError(f"axis {axis} is out of range for rank {rank}")
    return np.stack(arrays, axis=axis % rank)


def _strided_slice(op: Operator, ins: list[np.ndarray | None], tins: list[Tensor],
                   out: Tensor) -> np.ndarray:
    """TFLM micro's STRIDED_SLICE (strided_slice_common.cc + reference_ops::StridedSlice): one
    begin/end/stride per input dimension, begin/end/shrink masks; TFLM zeroes the ellipsis and
    new-axis masks and never sets ``offset``, so a model relying on ``offset`` is refused."""
    x = _value(ins[0])
    begin, end, strides = (_value(a).reshape(-1).tolist() for a in ins[1:4])
    dims = x.ndim
    if not len(begin) == len(end) == len(strides) == dims:
        raise _FoldError(f"has {len(begin)}/{len(end)}/{len(strides)} begin/end/strides values "
                         f"for an input of rank {dims} (TFLM reads one per dimension)")
    if any(s == 0 for s in strides):
        raise _FoldError("has a zero stride")
    o = op.options
    if o.get("offset"):
        raise _FoldError("sets offset=True, which TFLM's STRIDED_SLICE ignores")
    begin_mask, end_mask = int(o.get("begin_mask", 0)), int(o.get("end_mask", 0))
    shrink = int(o.get("shrink_axis_mask", 0))
    index: list[list[int]] = []
    for axis in range(dims):
        size, stride = x.shape[axis], strides[axis]
        start = begin[axis] + (size if begin[axis] < 0 else 0)
        start = min(max(start, 0), size) if stride > 0 else min(max(start, -1), size - 1)
        if begin_mask >> axis & 1:
            start = 0 if stride > 0 else size - 1
        if shrink >> axis & 1:
            if not 0 <= start < size:
                raise _FoldError(f"shrinks axis {axis} at index {begin[axis]}, outside its "
                                 f"size {size}")
            stop = start + 1
        else:
            stop = end[axis] + (size if end[axis] < 0 else 0)
            stop = min(max(stop, 0), size) if stride > 0 else min(max(stop, -1), size - 1)
            if end_mask >> axis & 1:
                stop = size if stride > 0 else -1
        index.append(list(range(start, stop, stride)))
    picked = x[np.ix_(*index)] if dims else x
    keep = tuple(d for axis, d in enumerate(picked.shape) if not shrink >> axis & 1)
    return picked.reshape(keep)


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], activation: bool
            ) -> Callable[[Operator, list[np.ndarray | None], list[Tensor], Tensor], np.ndarray]:
    """int32 ADD/SUB/MUL: TFLM micro's reference ops with broadcasting and wrap-around; SUB and
    MUL clamp to the int32 activation range (CalculateActivationRange: RELU [0, max], RELU6
    [0, 6], RELU_N1_TO_1 [-1, 1]), ADD ignores the fused activation for int32 (add.cc)."""

    def fold(op: Operator, ins: list[np.ndarray | None], tins: list[Tensor], out: Tensor
             ) -> np.ndarray:
        a, b = (_value(v).astype(np.int64) for v in ins[:2])
        try:
            r = fn(a, b)
        except ValueError as exc:
            raise _FoldError(f"cannot broadcast {a.shape} with {b.shape}") from exc
        act = op.options.get("fused_activation", "NONE") if activation else "NONE"
        lo, hi = {"NONE": (_INT32.min, _INT32.max), "RELU": (0, _INT32.max), "RELU6": (0, 6),
                  "RELU_N1_TO_1": (-1, 1)}.get(act, (None, None))
        if lo is None:
            raise _FoldError(f"has the fused activation {act}")
        return np.clip(_wrap(r, "int32").astype(np.int64), lo, hi)

    return fold


def _concat(op: Operator, ins: list[np.ndarray | None], tins: list[Tensor], out: Tensor
            ) -> np.ndarray:
    arrays = [_value(a) for a in ins]
    rank = arrays[0].ndim
    axis = int(op.options.get("axis", 0))
    try:
        return np.concatenate(arrays, axis=axis % max(rank, 1))
    except ValueError as exc:
        raise _FoldError(f"cannot concatenate {[a.shape for a in arrays]}") from exc


def _reshape_like_output(op: Operator, ins: list[np.ndarray | None], tins: list[Tensor],
                         out: Tensor) -> np.ndarray:
    # RESHAPE / SQUEEZE / EXPAND_DIMS of constant data: the output tensor's shape rules.
    x = _value(ins[0])
    if x.size != out.size:
        raise _FoldError(f"changes the size {list(x.shape)} -> {list(out.shape)}")
    return x.reshape(out.shape)


def _value(a: np.ndarray | None) -> np.ndarray:
    if a is None:
        raise _FoldError("misses an input")
    return np.asarray(a)


#: opcode → function(operator, input values (None where only the shape is known), input
#: tensors, output tensor) → the output value. SHAPE needs no input value.
FOLDERS: dict[str, Callable[[Operator, list[np.ndarray | None], list[Tensor], Tensor],
                            np.ndarray]] = {
    "SHAPE": _shape,
    "STRIDED_SLICE": _strided_slice,
    "PACK": _pack,
    "ADD": _binary(np.add, activation=False),
    "SUB": _binary(np.subtract, activation=True),
    "MUL": _binary(np.multiply, activation=True),
    "CONCATENATION": _concat,
    "RESHAPE": _reshape_like_output,
    "SQUEEZE": _reshape_like_output,
    "EXPAND_DIMS": _reshape_like_output,
}


def fold_plan(opcodes: Sequence[str], inputs: Sequence[Sequence[int]],
              outputs: Sequence[Sequence[int]], is_const: Callable[[int], bool],
              dtype: Callable[[int], str]) -> set[int]:
    """Positions of the operators that fold, in execution order: a folder exists, every
    output is int32/int64 data, and every input is a constant or the output of an operator that
    folds (SHAPE: any input, its shape is static)."""
    known: set[int] = set()
    folded: set[int] = set()
    for pos, (code, ins, outs) in enumerate(zip(opcodes, inputs, outputs)):
        if code not in FOLDERS or not outs:
            continue
        if not all(dtype(t) in FOLDABLE_DTYPES for t in outs):
            continue
        if code != "SHAPE" and not all(t < 0 or is_const(t) or t in known for t in ins):
            continue
        folded.add(pos)
        known.update(outs)
    return folded


def fold_constants(graph: Graph) -> Graph:
    """*graph* with every foldable operator evaluated: its outputs become constant tensors, the
    operator is dropped, the rest are renumbered 0..n-1 in order, and ``Graph.folded`` records
    what was folded (operator indices there are the model file's)."""
    ops = graph.operators
    plan = fold_plan([op.opcode for op in ops], [op.inputs for op in ops],
                     [op.outputs for op in ops],
                     lambda t: graph.tensor(t).is_const, lambda t: graph.tensor(t).dtype)
    if not plan:
        return graph
    tensors = list(graph.tensors)
    records: list[FoldedOp] = []
    for pos in sorted(plan):
        op = ops[pos]
        tins = [tensors[t] for t in op.inputs if t >= 0]
        values = [t.data for t in tins]
        out = tensors[op.outputs[0]]
        if len(op.outputs) != 1:
            raise ModelError(f"model '{graph.name}': operator #{op.index} {op.opcode} has "
                             f"{len(op.outputs)} outputs; only single-output operators fold")
        try:
            value = FOLDERS[op.opcode](op, values, tins, out)
        except _FoldError as exc:
            raise ModelError(
                f"model '{graph.name}': operator #{op.index} {op.opcode} has constant inputs but "
                f"cannot be folded: it {exc}; fix the model's shape computation"
            ) from None
        except (ValueError, IndexError, TypeError, OverflowError) as exc:
            # numpy meeting hostile constants (found by tests/test_fuzz.py): still the model's
            # fault, never a traceback
            raise ModelError(
                f"model '{graph.name}': operator #{op.index} {op.opcode} cannot be folded with "
                f"its constant inputs ({type(exc).__name__}: {exc}); the model is inconsistent: "
                "re-convert it"
            ) from None
        if tuple(value.shape) != tuple(out.shape):
            raise ModelError(
                f"model '{graph.name}': operator #{op.index} {op.opcode} computes a value of "
                f"shape {list(value.shape)} but its output tensor #{out.index} '{out.name}' is "
                f"declared {list(out.shape)}; the model is inconsistent: re-convert it"
            )
        data = _wrap(value, out.dtype)
        data.flags.writeable = False
        tensors[out.index] = dataclasses.replace(out, data=data)
        records.append(FoldedOp(index=op.index, opcode=op.opcode, inputs=op.inputs,
                                outputs=op.outputs, values=(tuple(data.reshape(-1).tolist()),)))
    kept = [op for pos, op in enumerate(ops) if pos not in plan]
    renumbered = tuple(dataclasses.replace(op, index=i) for i, op in enumerate(kept))
    folded_graph = dataclasses.replace(graph, tensors=tuple(tensors), operators=renumbered,
                                       folded=graph.folded + tuple(records))
    _check_reshape_shapes(folded_graph)
    return folded_graph


def _check_reshape_shapes(graph: Graph) -> None:
    """A RESHAPE whose shape input became constant: it must agree with the output tensor (TFLM
    takes the shape tensor; the loader took the declared output shape)."""
    for op in graph.operators:
        if op.opcode != "RESHAPE" or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        st = graph.tensor(op.inputs[1])
        if st.data is None:
            continue
        want = graph.tensor(op.outputs[0]).shape
        requested = [int(v) for v in st.data.reshape(-1)]
        if len(requested) != len(want) or any(r >= 0 and r != d
                                              for r, d in zip(requested, want)):
            raise ModelError(
                f"model '{graph.name}': RESHAPE (operator #{op.index} after folding) computes "
                f"the shape {requested} but declares its output {list(want)}; re-convert the "
                "model"
            )


def describe(folded: Sequence[FoldedOp]) -> list[str]:
    """One line per folded operator: ``#25 SHAPE -> #80 = [1, 256]``."""
    lines = []
    for f in folded:
        vals = ", ".join(_short(v) for v in f.values)
        outs = ", ".join(f"#{t}" for t in f.outputs)
        lines.append(f"#{f.index} {f.opcode} -> {outs} = {vals}")
    return lines


def _short(values: tuple[Any, ...], limit: int = 8) -> str:
    shown = ", ".join(str(v) for v in values[:limit])
    return f"[{shown}{', …' if len(values) > limit else ''}]"
