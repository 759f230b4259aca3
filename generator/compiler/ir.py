"""The intermediate representation: plain, frozen data that every stage after the loader reads.

No flatbuffer object ever leaks past :mod:`generator.compiler.loader`; later stages (plan, emit)
only see
these classes. Constant tensor data is a read-only numpy array.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# dtype names used throughout the IR (numpy names).
DTYPE_SIZES = {
    "int8": 1,
    "uint8": 1,
    "int16": 2,
    "int32": 4,
    "int64": 8,
    "float32": 4,
    "bool": 1,
}


@dataclass(frozen=True)
class Quant:
    """Affine quantization: real = scale * (q - zero_point).

    Per-tensor quantization has one scale and one zero point; per-channel has one per slice of
    ``axis``.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * DTYPE_SIZES[self.dtype]


@dataclass(frozen=True)
class Operator:
    """One operator of the graph. ``inputs`` may hold -1 for an omitted optional input.

    ``options`` holds the builtin options with normalized names, e.g. for CONV_2D:
    ``padding`` ('SAME' | 'VALID'), ``stride_h``, ``stride_w``, ``dilation_h``, ``dilation_w``,
    ``fused_activation`` ('NONE' | 'RELU' | 'RELU6' | 'RELU_N1_TO_1').
    """

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class FoldedOp:
    """An operator evaluated at generation time (:mod:`generator.compiler.fold`): its outputs
    are constant tensors now. ``index`` is its position in the model file; ``values`` holds
    each output's values, flattened."""

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    values: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Graph:
    name: str
    sha256: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    folded: tuple[FoldedOp, ...] = ()  # operators folded into constants, in model order

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]
