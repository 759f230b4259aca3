"""Static memory plan and statistics for a loaded model (:class:`generator.compiler.ir.Graph`).

Memory plan
-----------
Every non-constant tensor an operator touches gets a place in one arena. Its lifetime runs from
the operator that produces it (graph inputs: from -1, before operator 0) to its last consumer
(graph outputs: to ``len(operators)``, the end), both ends inclusive. Tensors whose lifetimes
overlap never share a byte, with two explicit exceptions (``in_place=True``, the default):

* **Aliases.** A RESHAPE's output is its input's bytes: it gets the input's offset
  (``Allocation.alias_of`` names the tensor that owns the buffer) and the kernel copies
  nothing. The shared buffer lives from the first producer to the last reader of either.
* **Partial overlap.** An operator may write its output over an input whose last use it is
  when its kernel guarantees it never reads an input byte after overwriting it: with the input
  at offset ``I`` and the output at ``O``, whenever ``I - O >= min_gap``.
  :mod:`generator.compiler.schedule` derives ``min_gap`` per operator from the kernel's iteration
  order
  (CONV_2D on its GEMM path, DEPTHWISE_CONV_2D, elementwise ADD/RELU/RELU6/QUANTIZE/
  DEQUANTIZE); every overlap the plan uses is listed in ``Plan.overlaps``.

Offsets are packed with the greedy heuristic of TFLM's ``GreedyMemoryPlanner`` (largest first,
each at the lowest offset where it does not collide with an already placed buffer whose lifetime
overlaps, partial overlaps allowed as above); the packing is tried with a few orderings and the
smallest arena wins. Offsets are multiples of ``align`` and every buffer's extent is rounded up
to ``align``.

Statistics, per layer (= per operator, in execution order)
----------------------------------------------------------
* ``macs``: multiply-accumulates. CONV_2D: output elements × k_h × k_w × filter input channels
  (= out_h·out_w·out_c·k_h·k_w·in_c); DEPTHWISE_CONV_2D: output elements × k_h × k_w;
  FULLY_CONNECTED: output elements × input depth (weights.shape[-1]); every other operator: 0.
* ``elementwise_ops``: the work of operators without multiplies, in element operations:
  pools: output elements × filter_h × filter_w; MEAN, SOFTMAX: input elements; ADD, QUANTIZE,
  DEQUANTIZE, RELU, RELU6: output elements; RESHAPE, CONCATENATION, PAD: 0 (data movement only);
  CONV/DEPTHWISE/FC: 0 (their work is in ``macs``).
* ``output_bytes``: bytes of the operator's outputs; ``weight_bytes``: bytes of its constant
  inputs (weights, bias, shape/axis/padding tensors).
* ``state_bytes``: bytes that must be persisted at the boundary *after* the layer so that
  execution can resume from there: every non-constant tensor produced at or before the layer
  and read after it, or a graph output (raw tensor bytes, no alignment padding). The boundary
  before layer 0 holds the graph inputs (``input_state_bytes``).

Fit check
---------
:func:`check_fit` compares the plan with plain board numbers using the documented, conservative
runtime estimates below; :func:`require_fit` raises :class:`~generator.errors.FitError` with the
numbers when it does not fit.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.compiler import schedule
from generator.compiler.fold import describe as describe_folded
from generator.compiler.ir import FoldedOp, Graph, Operator
from generator.errors import FitError, ModelError, ToolchainError

__all__ = [
    "PER_LAYER_FLASH_BYTES",
    "QUANT_BYTES_PER_CHANNEL",
    "RUNTIME_FLASH_BYTES",
    "RUNTIME_RAM_BYTES",
    "Allocation",
    "FitReport",
    "LayerStats",
    "Overlap",
    "Plan",
    "TflmArena",
    "check_fit",
    "format_stats_table",
    "plan_model",
    "plan_to_dict",
    "require_fit",
    "tflm_arena",
    "tflm_arena_bytes",
]

#: Flash for the runtime and kernels (startup, vector table, console, protocol, the reference
#: kernels of every operator). Conservative: a plain-C build of all kernels at -Os stays below.
RUNTIME_FLASH_BYTES = 16 * 1024
#: Flash per layer for its generated task function and constant descriptors.
PER_LAYER_FLASH_BYTES = 256
#: Flash per output channel of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED for the
#: channel records (int32 start, multiplier, add or shift, right shift).
QUANT_BYTES_PER_CHANNEL = 16
#: RAM besides the arena: 4 KiB of stack and 1 KiB of runtime state (console buffers,
#: checkpoint bookkeeping, .data/.bss of the runtime).
RUNTIME_RAM_BYTES = 4 * 1024 + 1024

_MAC_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"})
#: Extra packing orders tried when partial overlaps are allowed (seeded shuffles).
_SHUFFLES = 96
_SHUFFLE_SEED = 20261122


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allocation:
    """Where one activation tensor lives in the arena, and when."""

    tensor: int
    name: str
    offset: int
    nbytes: int
    first: int  # operator producing it; -1 for a graph input
    last: int  # last operator reading it; len(operators) for a graph output
    alias_of: int | None = None  # the tensor whose buffer this one shares (a RESHAPE's input)

    @property
    def end(self) -> int:
        return self.offset + self.nbytes

    def overlaps_in_time(self, other: Allocation) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass(frozen=True)
class Overlap:
    """Operator ``op`` writes tensor ``output`` partly over tensor ``input`` (its last use):
    ``gap`` = offset(input) - offset(output) >= ``min_gap``, the kernel's guarantee."""

    op: int
    input: int
    output: int
    min_gap: int
    gap: int


@dataclass(frozen=True)
class LayerStats:
    index: int
    opcode: str
    output_shape: tuple[int, ...]
    macs: int
    elementwise_ops: int
    output_bytes: int
    weight_bytes: int
    state_bytes: int
    state_tensors: tuple[int, ...]  # tensors live across the boundary after this layer


@dataclass(frozen=True)
class Plan:
    model: str
    sha256: str
    align: int
    allocations: tuple[Allocation, ...]  # sorted by tensor index
    arena_bytes: int
    peak_live_bytes: int  # max over operators of the live buffers' bytes: a lower bound for
    # any plan without partial overlaps
    layers: tuple[LayerStats, ...]
    input_state_bytes: int  # the boundary before layer 0 (graph inputs)
    max_state_bytes: int
    max_state_boundary: int  # -1: before layer 0; i: after layer i
    total_macs: int
    total_elementwise_ops: int
    weight_bytes: int  # all constant tensors operators read
    quant_table_bytes: int  # estimated requantization tables (see QUANT_BYTES_PER_CHANNEL)
    input_bytes: int
    output_bytes: int
    overlaps: tuple[Overlap, ...] = ()  # partial overlaps the packing uses (see module doc)
    in_place: bool = False  # whether aliases and partial overlaps were allowed
    folded: tuple[FoldedOp, ...] = ()  # operators evaluated at generation time (fold.py)

    def shares_memory(self, a: int, b: int) -> bool:
        """Whether tensors a and b may legitimately share bytes although both are live at some
        operator: an alias pair or a listed partial overlap."""
        ra, rb = self._root(a), self._root(b)
        if ra == rb:
            return True
        return any({self._root(o.input), self._root(o.output)} == {ra, rb}
                   for o in self.overlaps)

    def _root(self, t: int) -> int:
        a = self.allocation(t)
        return a.alias_of if a.alias_of is not None else t

    def allocation(self, tensor: int) -> Allocation:
        for a in self.allocations:
            if a.tensor == tensor:
                return a
        raise KeyError(f"tensor {tensor} has no arena buffer (constant or unused)")


# --------------------------------------------------------------------------------------------
# planning
# --------------------------------------------------------------------------------------------


def _align_up(n: int, align: int) -> int:
    return (n + align - 1) // align * align


def _lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    """tensor index → (first, last) for every non-constant tensor the graph uses."""
    end = len(graph.operators)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t in graph.inputs:
        first[t] = -1
        last[t] = 0
    for op in graph.operators:
        for t in op.inputs:
            if t < 0 or graph.tensor(t).is_const:
                continue
            if t not in first:
                raise ModelError(
                    f"model '{graph.name}': operator #{op.index} {op.opcode} reads tensor #{t} "
                    "before anything produces it; cannot plan memory"
                )
            last[t] = max(last[t], op.index)
        for t in op.outputs:
            if graph.tensor(t).is_const:
                continue
            first.setdefault(t, op.index)
            last[t] = max(last.get(t, op.index), op.index)
    for t in graph.outputs:
        if t in first:
            last[t] = end
    return {t: (first[t], last[t]) for t in first}


def _pack(items: list[tuple[int, int, int, int]], align: int,
          gaps: dict[tuple[int, int], int] | None = None) -> tuple[dict[int, int], int]:
    """Greedy first-fit in address order. items: (buffer, padded size, first, last).

    ``gaps[(x, y)] = g`` allows buffer y to overlap buffer x (although both are live at one
    operator) as long as offset(x) - offset(y) >= g."""
    gaps = gaps or {}
    placed: list[tuple[int, int, int, int, int]] = []  # (offset, padded size, first, last, buf)
    offsets: dict[int, int] = {}
    top = 0
    for buf, size, first, last in items:
        forbidden = []  # open intervals (lo, hi) of start offsets that collide
        for off, psize, pfirst, plast, pbuf in placed:
            if not (pfirst <= last and first <= plast):
                continue
            lo, hi = off - size, off + psize  # disjoint unless start <= lo or start >= hi
            if (pbuf, buf) in gaps:  # buf is an output over input pbuf: start <= off - g
                lo = max(lo, off - gaps[(pbuf, buf)])
            elif (buf, pbuf) in gaps:  # buf is an input under output pbuf: start >= off + g
                hi = min(hi, off + gaps[(buf, pbuf)])
            if lo < hi:
                forbidden.append((lo, hi))
        candidate = 0
        for lo, hi in sorted(forbidden):
            if lo < candidate < hi:
                candidate = _align_up(hi, align)
        placed.append((candidate, size, first, last, buf))
        offsets[buf] = candidate
        top = max(top, candidate + size)
    return offsets, top


def _alias_roots(graph: Graph, lifetimes: dict[int, tuple[int, int]]) -> dict[int, int]:
    """tensor → the tensor owning its buffer: a RESHAPE's output shares its input's bytes."""
    root = {t: t for t in lifetimes}

    def find(t: int) -> int:
        while root[t] != t:
            t = root[t]
        return t

    for op in graph.operators:
        if op.opcode != "RESHAPE" or not op.inputs or len(op.outputs) != 1:
            continue
        x, y = op.inputs[0], op.outputs[0]
        if x not in lifetimes or y not in lifetimes or x == y:
            continue
        if graph.tensor(x).nbytes != graph.tensor(y).nbytes:
            continue
        root[find(y)] = find(x)
    return {t: find(t) for t in lifetimes}


def _overlap_gaps(graph: Graph, roots: dict[int, int],
                  buffers: dict[int, tuple[int, int]]) -> dict[tuple[int, int], tuple[int, int,
                                                                                     int, int]]:
    """(input buffer, output buffer) → (min gap, op, input tensor, output tensor) for every
    operator that may write its output over an input it reads for the last time."""
    out: dict[tuple[int, int], tuple[int, int, int, int]] = {}
    for op in graph.operators:
        for pos, x, y in schedule.overlap_candidates(graph, op):
            if x not in roots or y not in roots:
                continue
            bx, by = roots[x], roots[y]
            if bx == by or buffers[bx][1] != op.index or buffers[by][0] != op.index:
                continue
            gap = schedule.min_gap(graph, op, pos)
            if gap is None:
                continue
            prev = out.get((bx, by))
            if prev is None or gap > prev[0]:
                out[(bx, by)] = (gap, op.index, x, y)
    return out


def _layer_work(graph: Graph, op: Operator) -> tuple[int, int]:
    """(macs, elementwise ops) of one operator; see the module docstring."""
    out_elems = sum(graph.tensor(t).size for t in op.outputs)
    code = op.opcode
    if code in _MAC_OPS:
        w = graph.tensor(op.inputs[1]).shape
        if code == "CONV_2D":  # filter OHWI
            return out_elems * w[1] * w[2] * w[3], 0
        if code == "DEPTHWISE_CONV_2D":  # filter 1HWC
            return out_elems * w[1] * w[2], 0
        return out_elems * w[-1], 0  # FULLY_CONNECTED: weights [out, in]
    if code in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return 0, out_elems * op.options.get("filter_h", 1) * op.options.get("filter_w", 1)
    if code in ("MEAN", "SOFTMAX"):
        return 0, graph.tensor(op.inputs[0]).size
    if code in ("RESHAPE", "CONCATENATION", "PAD"):
        return 0, 0
    return 0, out_elems


def _quant_channels(graph: Graph, op: Operator) -> int:
    if op.opcode not in _MAC_OPS:
        return 0
    w = graph.tensor(op.inputs[1]).shape
    return w[-1] if op.opcode == "DEPTHWISE_CONV_2D" else w[0]


def plan_model(graph: Graph, *, align: int = 16, in_place: bool = True) -> Plan:
    """Plan the activation arena of *graph* and gather its per-layer statistics.

    ``in_place=False`` plans without aliases and partial overlaps (every live tensor in its own
    bytes), as TFLM's planner does."""
    if align < 1 or align & (align - 1):
        raise ValueError(f"align must be a power of two, not {align}")
    lifetimes = _lifetimes(graph)
    sizes = {t: graph.tensor(t).nbytes for t in lifetimes}
    padded = {t: _align_up(max(n, 1), align) for t, n in sizes.items()}
    roots = _alias_roots(graph, lifetimes) if in_place else {t: t for t in lifetimes}
    buffers: dict[int, tuple[int, int]] = {}  # buffer (root tensor) → lifetime
    bsize: dict[int, int] = {}
    for t, r in roots.items():
        f, la = lifetimes[t]
        if r in buffers:
            buffers[r] = (min(buffers[r][0], f), max(buffers[r][1], la))
        else:
            buffers[r] = (f, la)
        bsize[r] = max(bsize.get(r, 0), padded[t])
    pairs = _overlap_gaps(graph, roots, buffers) if in_place else {}
    gaps = {k: v[0] for k, v in pairs.items()}

    # Try a few orderings (all deterministic); keep the smallest arena.
    def span(b: int) -> int:
        return buffers[b][1] - buffers[b][0] + 1

    orderings = [
        sorted(buffers, key=lambda b: (-bsize[b], buffers[b][0], b)),  # TFLM's greedy
        sorted(buffers, key=lambda b: (-bsize[b] * span(b), buffers[b][0], b)),
        sorted(buffers, key=lambda b: (buffers[b][0], -bsize[b], b)),
        sorted(buffers, key=lambda b: (-buffers[b][0], -bsize[b], b)),
    ]
    if gaps:
        # Partial overlaps make the result depend much more on the order; a few seeded
        # shuffles (deterministic) find tighter packings than the heuristics alone.
        rng = random.Random(_SHUFFLE_SEED)
        for _ in range(_SHUFFLES):
            order = list(orderings[0])
            rng.shuffle(order)
            orderings.append(order)
    best: tuple[dict[int, int], int] | None = None
    for order in orderings:
        items = [(b, bsize[b], *buffers[b]) for b in order]
        result = _pack(items, align, gaps)
        if best is None or result[1] < best[1]:
            best = result
    assert best is not None
    boffsets, arena = best
    offsets = {t: boffsets[roots[t]] for t in lifetimes}

    allocations = tuple(
        Allocation(
            tensor=t,
            name=graph.tensor(t).name,
            offset=offsets[t],
            nbytes=sizes[t],
            first=lifetimes[t][0],
            last=lifetimes[t][1],
            alias_of=None if roots[t] == t else roots[t],
        )
        for t in sorted(lifetimes)
    )
    overlaps = []
    for (bx, by), (gap, op_index, x, y) in sorted(pairs.items(), key=lambda kv: kv[1][1:]):
        ox, oy = boffsets[bx], boffsets[by]
        if ox < oy + bsize[by] and oy < ox + bsize[bx]:  # the extents really intersect
            overlaps.append(Overlap(op=op_index, input=x, output=y, min_gap=gap, gap=ox - oy))
    n_ops = len(graph.operators)
    peak_live = max(
        (
            sum(bsize[b] for b, (f, la) in buffers.items() if f <= step <= la)
            for step in range(-1, n_ops + 1)
        ),
        default=0,
    )

    def live_after(boundary: int) -> tuple[int, ...]:
        return tuple(t for t, (f, la) in sorted(lifetimes.items()) if f <= boundary < la)

    layers = []
    for op in graph.operators:
        macs, elementwise = _layer_work(graph, op)
        const_inputs = sorted({t for t in op.inputs if t >= 0 and graph.tensor(t).is_const})
        state = live_after(op.index)
        layers.append(
            LayerStats(
                index=op.index,
                opcode=op.opcode,
                output_shape=graph.tensor(op.outputs[0]).shape if op.outputs else (),
                macs=macs,
                elementwise_ops=elementwise,
                output_bytes=sum(graph.tensor(t).nbytes for t in op.outputs),
                weight_bytes=sum(graph.tensor(t).nbytes for t in const_inputs),
                state_bytes=sum(sizes[t] for t in state),
                state_tensors=state,
            )
        )
    input_state = sum(sizes[t] for t in live_after(-1))
    boundaries = [(input_state, -1)] + [(lay.state_bytes, lay.index) for lay in layers]
    max_state, max_boundary = max(boundaries, key=lambda b: (b[0], -b[1]))
    constants = {
        t for op in graph.operators for t in op.inputs if t >= 0 and graph.tensor(t).is_const
    }
    return Plan(
        model=graph.name,
        sha256=graph.sha256,
        align=align,
        allocations=allocations,
        arena_bytes=arena,
        peak_live_bytes=peak_live,
        layers=tuple(layers),
        input_state_bytes=input_state,
        max_state_bytes=max_state,
        max_state_boundary=max_boundary,
        total_macs=sum(lay.macs for lay in layers),
        total_elementwise_ops=sum(lay.elementwise_ops for lay in layers),
        weight_bytes=sum(graph.tensor(t).nbytes for t in constants),
        quant_table_bytes=QUANT_BYTES_PER_CHANNEL
        * sum(_quant_channels(graph, op) for op in graph.operators),
        input_bytes=sum(graph.tensor(t).nbytes for t in graph.inputs),
        output_bytes=sum(graph.tensor(t).nbytes for t in graph.outputs),
        overlaps=tuple(overlaps),
        in_place=in_place,
        folded=graph.folded,
    )


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB".replace(".0 KiB", " KiB")


@dataclass(frozen=True)
class FitReport:
    model: str
    board: str
    weight_bytes: int
    quant_table_bytes: int
    code_bytes: int  # runtime + per-layer code estimate
    flash_needed: int
    flash_available: int
    arena_bytes: int
    runtime_ram_bytes: int
    ram_needed: int
    ram_available: int

    @property
    def flash_fits(self) -> bool:
        return self.flash_needed <= self.flash_available

    @property
    def ram_fits(self) -> bool:
        return self.ram_needed <= self.ram_available

    @property
    def fits(self) -> bool:
        return self.flash_fits and self.ram_fits

    def flash_text(self) -> str:
        return (
            f"{self.flash_needed:,} B of flash (weights {self.weight_bytes:,} B + quantization "
            f"tables {self.quant_table_bytes:,} B + code ~{_kib(self.code_bytes)})"
        )

    def ram_text(self) -> str:
        return (
            f"{self.ram_needed:,} B of RAM (arena {self.arena_bytes:,} B + runtime "
            f"~{_kib(self.runtime_ram_bytes)})"
        )

    def describe(self) -> str:
        def line(kind: str, needed: str, avail: int, used: int, ok: bool) -> str:
            pct = 100.0 * used / avail if avail else math.inf
            verdict = "fits" if ok else "DOES NOT FIT"
            return f"  {kind}: needs {needed}; board has {avail:,} B ({pct:.1f} %) — {verdict}"

        return "\n".join(
            [
                f"model '{self.model}' on board {self.board}: "
                + ("fits" if self.fits else "does NOT fit"),
                line(
                    "flash",
                    self.flash_text(),
                    self.flash_available,
                    self.flash_needed,
                    self.flash_fits,
                ),
                line("RAM  ", self.ram_text(), self.ram_available, self.ram_needed, self.ram_fits),
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "board": self.board,
            "fits": self.fits,
            "flash": {
                "needed": self.flash_needed,
                "available": self.flash_available,
                "weights": self.weight_bytes,
                "quant_tables": self.quant_table_bytes,
                "code_estimate": self.code_bytes,
                "fits": self.flash_fits,
            },
            "ram": {
                "needed": self.ram_needed,
                "available": self.ram_available,
                "arena": self.arena_bytes,
                "runtime_estimate": self.runtime_ram_bytes,
                "fits": self.ram_fits,
            },
        }


def check_fit(
    plan: Plan,
    flash_bytes: int,
    ram_bytes: int,
    *,
    board: str = "the board",
    flash_used_by_runtime: int = RUNTIME_FLASH_BYTES,
    ram_used_by_runtime: int = RUNTIME_RAM_BYTES,
) -> FitReport:
    """How the model's plan compares with a board's flash and RAM (plain byte counts)."""
    code = flash_used_by_runtime + PER_LAYER_FLASH_BYTES * len(plan.layers)
    return FitReport(
        model=plan.model,
        board=board,
        weight_bytes=plan.weight_bytes,
        quant_table_bytes=plan.quant_table_bytes,
        code_bytes=code,
        flash_needed=plan.weight_bytes + plan.quant_table_bytes + code,
        flash_available=flash_bytes,
        arena_bytes=plan.arena_bytes,
        runtime_ram_bytes=ram_used_by_runtime,
        ram_needed=plan.arena_bytes + ram_used_by_runtime,
        ram_available=ram_bytes,
    )


def require_fit(
    plan: Plan,
    flash_bytes: int,
    ram_bytes: int,
    *,
    board: str = "the board",
    flash_used_by_runtime: int = RUNTIME_FLASH_BYTES,
    ram_used_by_runtime: int = RUNTIME_RAM_BYTES,
) -> FitReport:
    """Like :func:`check_fit`, but raise :class:`FitError` with the numbers if it does not fit."""
    report = check_fit(
        plan,
        flash_bytes,
        ram_bytes,
        board=board,
        flash_used_by_runtime=flash_used_by_runtime,
        ram_used_by_runtime=ram_used_by_runtime,
    )
    if report.fits:
        return report
    problems = []
    if not report.ram_fits:
        problems.append(f"needs {report.ram_text()}; board {board} has {ram_bytes:,} B")
    if not report.flash_fits:
        problems.append(f"needs {report.flash_text()}; board {board} has {flash_bytes:,} B")
    raise FitError(
        f"model '{plan.model}' "
        + "; it also ".join(problems)
        + ". Choose a board with more memory or a smaller model"
    )


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def format_stats_table(plan: Plan) -> str:
    """A readable per-layer table with totals (``sweetspot inspect``)."""
    header = ("#", "op", "output", "MACs", "out B", "weights B", "state B")
    rows = [
        (
            str(lay.index),
            lay.opcode,
            _shape(lay.output_shape),
            f"{lay.macs:,}",
            f"{lay.output_bytes:,}",
            f"{lay.weight_bytes:,}",
            f"{lay.state_bytes:,}",
        )
        for lay in plan.layers
    ]
    total = (
        "",
        "total",
        "",
        f"{plan.total_macs:,}",
        "",
        f"{plan.weight_bytes:,}",
        f"max {plan.max_state_bytes:,}",
    )
    widths = [max(len(r[i]) for r in [header, *rows, total]) for i in range(len(header))]
    left = {1, 2}

    def fmt(row: tuple[str, ...]) -> str:
        cells = [
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    where = (
        "before layer 0"
        if plan.max_state_boundary < 0
        else f"after layer {plan.max_state_boundary}"
    )
    lines = [
        f"model {plan.model}  (sha256 {plan.sha256[:16]}…)",
        fmt(header),
        rule,
        *(fmt(r) for r in rows),
        rule,
        fmt(total),
        "",
        f"MACs              {plan.total_macs:,}",
        (
            f"weights (flash)   {plan.weight_bytes:,} B  (+ ~{plan.quant_table_bytes:,} B "
            "requantization tables)"
        ),
        (
            f"arena (RAM)       {plan.arena_bytes:,} B  (peak live {plan.peak_live_bytes:,} B, "
            f"align {plan.align}"
            + (f"; {len(plan.overlaps)} in-place overlaps, "
               f"{sum(a.alias_of is not None for a in plan.allocations)} aliases)"
               if plan.in_place else ")")
        ),
        f"max state         {plan.max_state_bytes:,} B  ({where})",
        f"input / output    {plan.input_bytes:,} B / {plan.output_bytes:,} B",
    ]
    if plan.folded:
        lines.append(f"folded            {len(plan.folded)} operators into constants at "
                     "generation time (numbered as in the model file):")
        lines.extend(f"  {line}" for line in describe_folded(plan.folded))
    return "\n".join(lines)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-able plain data (``sweetspot inspect --json``)."""
    return {
        "model": plan.model,
        "sha256": plan.sha256,
        "align": plan.align,
        "arena_bytes": plan.arena_bytes,
        "peak_live_bytes": plan.peak_live_bytes,
        "total_macs": plan.total_macs,
        "total_elementwise_ops": plan.total_elementwise_ops,
        "weight_bytes": plan.weight_bytes,
        "quant_table_bytes": plan.quant_table_bytes,
        "max_state_bytes": plan.max_state_bytes,
        "max_state_boundary": plan.max_state_boundary,
        "input_state_bytes": plan.input_state_bytes,
        "input_bytes": plan.input_bytes,
        "output_bytes": plan.output_bytes,
        "layers": [
            {
                "index": lay.index,
                "opcode": lay.opcode,
                "output_shape": list(lay.output_shape),
                "macs": lay.macs,
                "elementwise_ops": lay.elementwise_ops,
                "output_bytes": lay.output_bytes,
                "weight_bytes": lay.weight_bytes,
                "state_bytes": lay.state_bytes,
                "state_tensors": list(lay.state_tensors),
            }
            for lay in plan.layers
        ],
        "allocations": [
            {
                "tensor": a.tensor,
                "name": a.name,
                "offset": a.offset,
                "nbytes": a.nbytes,
                "first": a.first,
                "last": a.last,
                "alias_of": a.alias_of,
            }
            for a in plan.allocations
        ],
        "in_place": plan.in_place,
        "overlaps": [
            {"op": o.op, "input": o.input, "output": o.output, "min_gap": o.min_gap,
             "gap": o.gap}
            for o in plan.overlaps
        ],
        "folded": [
            {"index": f.index, "opcode": f.opcode, "inputs": list(f.inputs),
             "outputs": list(f.outputs), "values": [list(v) for v in f.values]}
            for f in plan.folded
        ],
    }


# --------------------------------------------------------------------------------------------
# TFLM's arena, for comparison
# --------------------------------------------------------------------------------------------

_TFLM_SCRIPT = """\
import sys
from tflite_micro import runtime
path = sys.argv[1]
size = max(len(open(path, 'rb').read()) * 10, 1 << 22)
interpreter = runtime.Interpreter.from_file(path, arena_size=size)
interpreter.print_allocations()
"""
_ARENA_RE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


@dataclass(frozen=True)
class TflmArena:
    """TFLM's RecordingMicroAllocator figures (this host's pointer size: 64-bit structs)."""

    total: int  # what a TFLM build must reserve
    head: int  # the non-persistent part: activations + scratch, TFLM's memory plan
    tail: int  # persistent: tensor structs, node data, kernel op data


def tflm_arena(model_path: str | Path, *, timeout: float = 120.0) -> TflmArena:
    """Run the TFLM interpreter in a subprocess and read its recorded arena allocation.

    A subprocess because the interpreter writes to the C-level stderr and a crash (arena too
    small) would take the whole process down.
    """
    path = Path(model_path)
    if not path.is_file():
        raise ModelError(f"model file '{path}' does not exist; check the path")
    cmd = [sys.executable, "-c", _TFLM_SCRIPT, str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ToolchainError(
            f"the TFLM interpreter did not finish allocating '{path.name}' within {timeout:.0f} s"
        ) from None
    found = {k: int(v) for k, v in _ARENA_RE.findall(proc.stderr + proc.stdout)}
    if proc.returncode != 0 or "total" not in found:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise ToolchainError(
            f"the TFLM interpreter (tflite-micro wheel) could not allocate '{path.name}' "
            f"(exit status {proc.returncode}); check that tflite-micro is installed in this "
            f"environment. Its output:\n{tail}"
        )
    return TflmArena(total=found["total"], head=found.get("head", 0), tail=found.get("tail", 0))


def tflm_arena_bytes(model_path: str | Path, *, timeout: float = 120.0) -> int:
    """TFLM's total arena for the model (see :func:`tflm_arena`)."""
    return tflm_arena(model_path, timeout=timeout).total
