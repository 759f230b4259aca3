"""The C kernels' iteration contracts, as data both the planner and the lowering use.

Two things live here because the memory planner (:mod:`generator.compiler.plan`) and the kernels'
parameter preparation (:mod:`generator.compiler.lowering`) must agree on them exactly:

* **Paths and block sizes.** CONV_2D runs the *GEMM* path (output pixels in blocks of
  :func:`conv_block_pixels`; every patch of a block is gathered into a stack buffer before any
  output of the block is written), the *tiled* GEMM path for patches longer than that buffer
  (blocks of :data:`CONV_MAX_BLOCK` pixels, :func:`conv_tiled_blocks`; output channels in groups
  of :data:`CONV_TILE_CHANNELS`; per group the patches are gathered chunk after chunk of
  :func:`conv_tile` bytes and accumulated into int32 sums, then the group's outputs of the block
  are requantized and written), or the *generic* path (grouped convolutions: clipped taps,
  TFLM's loop order). The generator picks the path, block and chunk sizes and passes them to the
  kernel, which obeys.

* **In-place safety.** An operator may write its output over an input whose last use it is,
  provided the output starts early enough: with the input at arena offset ``I`` and the output
  at ``O``, the kernel never reads an input byte after it has written over it when
  ``I - O >= min_gap``. :func:`min_gap` derives that bound from the kernel's schedule, a list
  of steps (each reads some input bytes, then writes some output bytes; steps run in order):
  output byte ``j`` lies on input byte ``j - gap``, and it is safe when every byte written up to
  step ``s`` lies below every byte read after ``s``::

      gap > max(bytes written in steps <= s) - min(bytes read in steps > s)   for every s

  Per step only the lowest byte read and the highest byte written matter, so the schedule is
  two integer arrays (see :class:`Schedule`); gaps at or above the bound are all safe, because
  the kernels write in increasing address order step by step. An operator without a schedule
  here never overlaps its input (``None``). ``tests/test_schedule.py`` checks every schedule
  byte by byte against a simulation of the kernel's loops, and the kernel tests run the
  generated C on overlapping plans against the TFLM interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.compiler.ir import Graph, Operator

__all__ = [
    "CONV_COL_ELEMS",
    "CONV_GEMM",
    "CONV_GENERIC",
    "CONV_TILED",
    "ANY_GAP",
    "Schedule",
    "conv_block_pixels",
    "conv_path",
    "conv_tile",
    "conv_tile_groups",
    "conv_tiled_blocks",
    "gap_from_schedule",
    "min_gap",
    "op_schedule",
]

#: CONV_2D paths (the kernel's ``path`` parameter).
CONV_GEMM = 0
CONV_GENERIC = 1
CONV_TILED = 2
#: The GEMM path's stack buffer holds block_pixels * k4 patch elements at most (int16 pairs on
#: DSP cores, bytes elsewhere): 1 KiB of stack on a DSP core.
CONV_COL_ELEMS = 512
#: Largest block of output pixels (the kernel has blocks of 4 and 2).
CONV_MAX_BLOCK = 4
#: Output channels per group on the tiled path (its int32 sums: CONV_MAX_BLOCK * this, 512 B).
CONV_TILE_CHANNELS = 32
#: Returned when nothing is read after anything is written: any overlap is safe.
ANY_GAP = -(1 << 62)


def conv_k4(k_h: int, k_w: int, fic: int) -> int:
    """Filter row length on the GEMM path: the patch rounded up to whole 4-byte words."""
    return (k_h * k_w * fic + 3) // 4 * 4


def conv_path(in_c: int, fic: int, k_h: int, k_w: int) -> int:
    """The CONV_2D path for these filter dimensions."""
    if fic != in_c:  # grouped convolution
        return CONV_GENERIC
    return CONV_GEMM if conv_block_pixels(conv_k4(k_h, k_w, fic)) else CONV_TILED


def conv_tile(k_h: int, k_w: int, fic: int) -> tuple[int, int]:
    """(chunk bytes, chunks) of a patch on the tiled path: equal chunks of whole words, each
    small enough for a block of CONV_MAX_BLOCK pixels in the stack buffer, as few as possible
    and with the least zero padding (the filter row is chunks * chunk bytes)."""
    k = k_h * k_w * fic
    most = CONV_COL_ELEMS // CONV_MAX_BLOCK
    chunks = -(-k // most)
    chunk = (-(-k // chunks) + 3) // 4 * 4
    return chunk, chunks


def conv_tiled_blocks(pixels: int) -> list[tuple[int, int, int]]:
    """The tiled path's blocks: (first pixel, slots, pixels computed), CONV_MAX_BLOCK slots each,
    the last block's spare slots repeating its last pixel (computed, never stored)."""
    return [(px, CONV_MAX_BLOCK, min(CONV_MAX_BLOCK, pixels - px))
            for px in range(0, pixels, CONV_MAX_BLOCK)]


def conv_tile_groups(out_c: int) -> list[tuple[int, int]]:
    """The tiled path's output channel groups [first, stop), in order."""
    return [(g, min(g + CONV_TILE_CHANNELS, out_c)) for g in range(0, out_c, CONV_TILE_CHANNELS)]


def conv_blocks(pixels: int, block: int) -> list[tuple[int, int, int]]:
    """The GEMM path's blocks over ``pixels`` output pixels, in order: (first pixel, slots,
    pixels computed). Blocks of ``block`` while that many remain, then blocks of 2, the last
    possibly holding a single pixel (ss_conv_gemm)."""
    out = []
    px = 0
    while px < pixels:
        rest = pixels - px
        slots = block if rest >= block else 2
        n = min(rest, slots)
        out.append((px, slots, n))
        px += n
    return out


def conv_block_pixels(k4: int) -> int:
    """Output pixels per GEMM block for a patch of k4 bytes (0: too long for the buffer)."""
    for block in (CONV_MAX_BLOCK, 2):
        if block * k4 <= CONV_COL_ELEMS:
            return block
    return 0


# --------------------------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------------------------

_NONE_READ = np.iinfo(np.int64).max
_NONE_WRITE = np.iinfo(np.int64).min


@dataclass(frozen=True)
class Schedule:
    """Per step, in execution order: the lowest input byte read and the highest output byte
    written (``_NONE_READ`` / ``_NONE_WRITE`` when a step reads or writes nothing)."""

    read_min: np.ndarray  # int64 [steps]
    write_max: np.ndarray  # int64 [steps]


def gap_from_schedule(s: Schedule) -> int:
    """The smallest safe ``I - O`` (see the module docstring). May be negative."""
    if len(s.read_min) == 0:
        return 0
    written = np.maximum.accumulate(s.write_max)
    future = np.minimum.accumulate(s.read_min[::-1])[::-1]  # min over steps >= s
    later = np.append(future[1:], _NONE_READ)  # min over steps > s
    valid = (written != _NONE_WRITE) & (later != _NONE_READ)
    if not valid.any():
        return ANY_GAP
    return int((written[valid] - later[valid]).max()) + 1


def _tap_range(origin: np.ndarray, dil: int, k: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Valid taps [k0, k1) per origin (ss_tap_range in ss_kutil.h)."""
    lo = np.where(origin < 0, (-origin + dil - 1) // dil, 0)
    last = size - 1 - origin
    hi = np.where(last >= 0, last // dil + 1, 0)
    hi = np.minimum(hi, k)
    return lo, hi


def _window_min_pixel(o: dict[str, int], shape_in: tuple[int, ...], out_hw: tuple[int, int],
                      k_h: int, k_w: int) -> np.ndarray:
    """Per output pixel (row-major, one batch): the lowest input pixel index its clipped
    window reads (a huge value for an empty window)."""
    _, in_h, in_w, _ = shape_in
    out_h, out_w = out_hw
    oy = np.arange(out_h)
    ox = np.arange(out_w)
    iy0 = oy * o["stride_h"] - o["pad_h"]
    ix0 = ox * o["stride_w"] - o["pad_w"]
    ky0, ky1 = _tap_range(iy0, o["dil_h"], k_h, in_h)
    kx0, kx1 = _tap_range(ix0, o["dil_w"], k_w, in_w)
    row = iy0 + ky0 * o["dil_h"]
    col = ix0 + kx0 * o["dil_w"]
    pix = row[:, None] * in_w + col[None, :]
    empty = (ky1 <= ky0)[:, None] | (kx1 <= kx0)[None, :]
    return np.where(empty, _NONE_READ, pix).reshape(-1).astype(np.int64)


def _conv_geometry(graph: Graph, op: Operator) -> dict[str, int]:
    from generator.compiler import (
        tflm_math as tm,  # padding rules; late import keeps this module light
    )

    o = op.options
    x = graph.tensor(op.inputs[0])
    w = graph.tensor(op.inputs[1])
    depthwise = op.opcode == "DEPTHWISE_CONV_2D"
    k_h, k_w = (w.shape[1], w.shape[2])
    _, in_h, in_w, _ = x.shape
    return {
        "stride_h": o["stride_h"], "stride_w": o["stride_w"],
        "dil_h": o.get("dilation_h", 1), "dil_w": o.get("dilation_w", 1),
        "pad_h": tm.padding_before(o["padding"], in_h, k_h, o["stride_h"],
                                   o.get("dilation_h", 1)),
        "pad_w": tm.padding_before(o["padding"], in_w, k_w, o["stride_w"],
                                   o.get("dilation_w", 1)),
        "k_h": k_h, "k_w": k_w, "depthwise": int(depthwise),
    }


def _conv_schedule(graph: Graph, op: Operator) -> Schedule | None:
    """CONV_2D on the GEMM path: per block of output pixels (:func:`conv_blocks`), all patches
    are gathered (read) before the block's outputs are written; blocks run in pixel order,
    batch after batch. On the tiled path the same per channel group of a block: the group reads
    the block's patches (chunk by chunk), then writes its channels of the block's pixels."""
    x = graph.tensor(op.inputs[0])
    w = graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    n, in_h, in_w, in_c = x.shape
    out_c, k_h, k_w, fic = w.shape
    _, out_h, out_w, _ = y.shape
    path = conv_path(in_c, fic, k_h, k_w)
    if path == CONV_GEMM:
        blocks = conv_blocks(out_h * out_w, conv_block_pixels(conv_k4(k_h, k_w, fic)))
        groups = [(0, out_c)]
    elif path == CONV_TILED:
        blocks = conv_tiled_blocks(out_h * out_w)
        groups = conv_tile_groups(out_c)
    else:
        return None
    g = _conv_geometry(graph, op)
    first_pix = _window_min_pixel(g, x.shape, (out_h, out_w), k_h, k_w)
    pixels = out_h * out_w
    reads, writes = [], []
    for b in range(n):
        for start, _, count in blocks:
            stop = start + count
            lo = first_pix[start:stop].min()
            for _, g1 in groups:
                reads.append(lo if lo == _NONE_READ else (b * in_h * in_w + lo) * in_c)
                writes.append((b * pixels + stop - 1) * out_c + g1 - 1)
    return Schedule(np.array(reads, dtype=np.int64), np.array(writes, dtype=np.int64))


def dw_channel_groups(out_c: int, depth_mult: int) -> list[tuple[int, int]]:
    """The output channel chunks ss_dwconv_s8 computes (and writes) in turn for one pixel:
    groups of 4 while 4 remain (any depth multiplier), then single channels."""
    groups = []
    oc = 0
    while oc + 3 < out_c:
        groups.append((oc, oc + 4))
        oc += 4
    while oc < out_c:
        groups.append((oc, oc + 1))
        oc += 1
    return groups


def _dw_schedule(graph: Graph, op: Operator) -> Schedule:
    """DEPTHWISE_CONV_2D: output pixels in order; per pixel, channel chunks in order, each
    reading its input channels over the window and then writing its outputs."""
    x = graph.tensor(op.inputs[0])
    w = graph.tensor(op.inputs[1])
    y = graph.tensor(op.outputs[0])
    n, in_h, in_w, in_c = x.shape
    _, k_h, k_w, out_c = w.shape
    _, out_h, out_w, _ = y.shape
    dm = out_c // in_c
    g = _conv_geometry(graph, op)
    first_pix = _window_min_pixel(g, x.shape, (out_h, out_w), k_h, k_w)
    groups = dw_channel_groups(out_c, dm)
    lo_ch = np.array([a // dm for a, _ in groups], dtype=np.int64)
    hi_out = np.array([b - 1 for _, b in groups], dtype=np.int64)
    pixels = out_h * out_w
    reads, writes = [], []
    for b in range(n):
        base = (b * in_h * in_w + first_pix) * in_c  # [pixels]
        r = np.where(first_pix[:, None] == _NONE_READ, _NONE_READ,
                     base[:, None] + lo_ch[None, :])
        wr = (b * pixels + np.arange(pixels))[:, None] * out_c + hi_out[None, :]
        reads.append(r.reshape(-1))
        writes.append(wr.reshape(-1))
    return Schedule(np.concatenate(reads), np.concatenate(writes))


def _elementwise_schedule(count: int, in_size: int, out_size: int) -> Schedule:
    """One element after the other: element i reads its input bytes, then writes its output."""
    i = np.arange(count, dtype=np.int64)
    return Schedule(i * in_size, i * out_size + out_size - 1)


_ELEMENTWISE = frozenset({"RELU", "RELU6", "QUANTIZE", "DEQUANTIZE"})


def op_schedule(graph: Graph, op: Operator, input_index: int) -> Schedule | None:
    """The schedule of ``op`` with respect to its input ``input_index`` (an operand position),
    or None if the kernel gives no in-place guarantee for it."""
    code = op.opcode
    if len(op.outputs) != 1:
        return None
    y = graph.tensor(op.outputs[0])
    x = graph.tensor(op.inputs[input_index])
    if code == "CONV_2D" and input_index == 0:
        return _conv_schedule(graph, op)
    if code == "DEPTHWISE_CONV_2D" and input_index == 0:
        return _dw_schedule(graph, op)
    if code in _ELEMENTWISE and input_index == 0 and x.size == y.size:
        return _elementwise_schedule(y.size, x.nbytes // max(x.size, 1),
                                     y.nbytes // max(y.size, 1))
    if code in ("ADD", "MUL") and input_index in (0, 1) and x.shape == y.shape:
        # Both loops (plain and broadcasting) write the output in order and read an input of
        # the output's shape at the element being written, before writing it.
        a, b = (graph.tensor(t).shape for t in op.inputs[:2])
        try:
            if tuple(np.broadcast_shapes(a, b)) != tuple(y.shape):
                return None
        except ValueError:  # not broadcastable: the lowering rejects it
            return None
        return _elementwise_schedule(y.size, x.nbytes // max(x.size, 1),
                                     y.nbytes // max(y.size, 1))
    return None


def min_gap(graph: Graph, op: Operator, input_index: int) -> int | None:
    """The smallest safe ``offset(input) - offset(output)`` for ``op`` writing its output over
    its input ``input_index``, or None if it must not overlap at all (also when the operator
    lacks the shapes or options its kernel would need: the lowering rejects those anyway)."""
    try:
        s = op_schedule(graph, op, input_index)
    except (KeyError, ValueError, IndexError):
        return None
    if s is None:
        return None
    return gap_from_schedule(s)


def overlap_candidates(graph: Graph, op: Operator) -> list[tuple[int, int, int]]:
    """(input operand position, input tensor, output tensor) pairs ``op`` could overlap."""
    if len(op.outputs) != 1:
        return []
    out = []
    for pos, t in enumerate(op.inputs):
        if t < 0 or graph.tensor(t).is_const:
            continue
        out.append((pos, t, op.outputs[0]))
    return out

