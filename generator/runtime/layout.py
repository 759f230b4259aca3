"""Intermittent runtime planning: which tensors persist when, at which quality level, where they
live in the emulated NVM, the layout of the ``.noinit`` block, power-failure schedules and
capacitor specs, and the host-side decoding of what the runtime reports.

The runtime treats a model (or the ``nvmtest`` app's synthetic graph) as a chain of *steps*:
for every inference ``i`` step ``i·(L+1)`` persists the graph inputs and steps
``i·(L+1) + 1 + l`` run layer ``l`` (restore its inputs from NVM, compute, persist the outputs
that are live afterwards, commit). Each step ends with a commit record in the critical region.

NVM (word-addressed, 32-bit words)
----------------------------------
* critical region, words ``[0, 16)``: two commit-record slots of 8 words, always written at Q0.
* resilient region: one slot per persisted tensor at the tensor's quality level. A tensor is
  persisted once, right after the step that produces it, and must stay intact from that step
  until its last consumer has run (for a graph output: until the end). Slots are packed first-fit
  with exactly that rule, so a step never overwrites state the last committed step still needs,
  even when power fails half-way through the write. Graph outputs get one slot per inference
  (the results area), so all results can be reported at the end.

``.noinit`` block (``ss_noinit`` on a target, the file ``$SS_NOINIT_FILE`` on the host twin)
-----------------------------------------------------------------------------------------------
``[config: CONFIG_HEADER_WORDS + 2·capacity words][nvm: nvm_words][simulator state]``. The config
is written by the host (QEMU's generic loader, or the host twin's file) and only read by the
firmware: a failure schedule, a capacitor budget, injection overrides. The simulator state
(boot/failure counters, energy counters, injector streams) is outside the emulated device.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from generator.boards import Board
from generator.errors import AppError
from generator.runtime.inject import GAP_CONSTANTS
from generator.runtime.quality import QL_BY_NAME, QUALITY_LEVELS

# ---- constants shared with templates/runtime (emitted into ss_rt_config.h) -----------------

RECORD_WORDS = 8
RECORD_SLOTS = 2
CRITICAL_WORDS = RECORD_WORDS * RECORD_SLOTS
RECORD_MAGIC = 0x4B435353  # "SSCK"
CONFIG_MAGIC = 0x46435353  # "SSCF"
CONFIG_VERSION = 1
CONFIG_HEADER_WORDS = 8
SIM_MAGIC = 0x4D495353  # "SSIM"
RESET_MAGIC = 0x54525353  # "SSRT"
NOINIT_SYMBOL = "ss_noinit"

FLAG_KEEP_NVM = 1 << 0  # fresh run: keep the NVM content as found (blank/garbage tests)
FLAG_INJECT_OVERRIDE = 1 << 1  # use the config's inject flag and seed
FLAG_INJECT_ON = 1 << 2
FLAG_CAPACITOR = 1 << 3  # emulate a capacitor with the config's budget

POINT_WORDS = 0  # fail before the k-th NVM word written in the step's attempt
POINT_TICKS = 1  # fail at the first runtime poll at least t counter ticks into the attempt
POINT_VALUE_BITS = 30

#: Build options that configure (and turn on) the runtime in apps that can run without it.
RUNTIME_OPTION_KEYS = ("ql", "ql_map", "inject", "power_fail", "capacitor")

QL_NAMES = tuple(q.name for q in QUALITY_LEVELS)
QL_INDEX = {name: i for i, name in enumerate(QL_NAMES)}
INTEGER_CRITICAL_DTYPES = ("int32", "int64", "bool")  # indices/shapes: a flip breaks the run


def ql_index(name: str, what: str = "quality level") -> int:
    key = str(name).strip().upper()
    if key not in QL_INDEX:
        raise AppError(f"{what} '{name}' is unknown; known: {', '.join(QL_NAMES)}")
    return QL_INDEX[key]


def sched_capacity(board: Board) -> int:
    """How many failure points the config block holds (fixed at build time)."""
    if board.is_host:
        return 65536
    ram = sum(r.length for r in board.memory if r.name != "flash")
    return 2048 if ram >= 256 * 1024 else 64


# ---- the graph the runtime sees --------------------------------------------------------------

@dataclass(frozen=True)
class RtTensor:
    index: int  # position in RtGraph.tensors
    name: str
    dtype: str
    nbytes: int
    ram_offset: int  # byte offset in the app's arena
    producer: int  # layer index; -1 for a graph input
    last: int  # last consumer; n_layers for a graph output
    source: int = -1  # the app's own tensor id (e.g. the IR tensor index)


@dataclass(frozen=True)
class RtLayer:
    index: int
    name: str
    inputs: tuple[int, ...]  # non-constant tensors read (RtTensor indices)
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class RtGraph:
    name: str
    sha256: str
    tensors: tuple[RtTensor, ...]
    layers: tuple[RtLayer, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def tensor_named(self, name: str) -> RtTensor | None:
        for t in self.tensors:
            if t.name == name:
                return t
        return None


def rt_graph_from_ir(graph: Any, plan: Any) -> RtGraph:
    """The runtime's view of an IR graph with its memory plan (:mod:`generator.compiler.plan`)."""
    allocs = {a.tensor: a for a in plan.allocations}
    ids: dict[int, int] = {}
    tensors: list[RtTensor] = []
    for t in sorted(allocs):
        a = allocs[t]
        ids[t] = len(tensors)
        tensors.append(RtTensor(len(tensors), a.name, graph.tensor(t).dtype, a.nbytes, a.offset,
                                a.first, a.last, source=t))
    layers = []
    for op in graph.operators:
        ins = tuple(dict.fromkeys(ids[t] for t in op.inputs if t >= 0 and t in ids))
        outs = tuple(ids[t] for t in op.outputs if t in ids)
        layers.append(RtLayer(op.index, f"L{op.index}", ins, outs))
    return RtGraph(graph.name, graph.sha256, tuple(tensors), tuple(layers),
                   tuple(ids[t] for t in graph.inputs), tuple(ids[t] for t in graph.outputs))


# ---- quality levels ------------------------------------------------------------------------

def is_critical_tensor(t: RtTensor) -> bool:
    return t.dtype in INTEGER_CRITICAL_DTYPES


#: largest QL map file read (a map names at most every tensor once)
MAX_QL_MAP_BYTES = 1 << 20


def load_ql_map(source: str | Path | Mapping[str, Any]) -> dict[str, str]:
    if isinstance(source, Mapping):
        data: Any = dict(source)
        where = "the QL map"
    else:
        p = Path(str(source))
        where = f"QL map {p}"
        if not p.is_file():
            raise AppError(f"{where} does not exist; give a JSON file such as "
                           '{"default": "Q2", "L3": "Q4", "critical": "Q0"}')
        if p.stat().st_size > MAX_QL_MAP_BYTES:
            raise AppError(f"{where} is {p.stat().st_size:,} bytes; a QL map is at most "
                           f"{MAX_QL_MAP_BYTES:,}")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise AppError(f"{where} is not UTF-8 text ({e.reason} at byte {e.start})") from None
        except RecursionError:
            raise AppError(f"{where} nests too deeply; a QL map is one flat JSON object "
                           '(e.g. {"default": "Q2", "L3": "Q4"})') from None
        except (OSError, json.JSONDecodeError) as e:
            raise AppError(f"{where} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise AppError(f"{where} must be a JSON object mapping names to quality levels "
                       '(e.g. {"default": "Q2", "L3": "Q4"})')
    return {str(k): str(v) for k, v in data.items()}


def _map_targets(g: RtGraph, key: str) -> list[RtTensor] | None:
    """Tensors a QL-map key names: 'input', 'output', 'L<i>' (outputs of layer i), '#<i>' (the
    app's tensor id), or a tensor name. None if the key names nothing."""
    if key == "input":
        return [g.tensors[i] for i in g.inputs]
    if key == "output":
        return [g.tensors[i] for i in g.outputs]
    m = re.fullmatch(r"L(\d+)", key)
    if m and int(m.group(1)) < len(g.layers):
        return [g.tensors[i] for i in g.layers[int(m.group(1))].outputs]
    m = re.fullmatch(r"#(\d+)", key)
    if m:
        hit = [t for t in g.tensors if t.source == int(m.group(1))]
        return hit or None
    t = g.tensor_named(key)
    return [t] if t is not None else None


def assign_qls(g: RtGraph, ql: str | None = None,
               ql_map: str | Path | Mapping[str, Any] | None = None) -> dict[int, int]:
    """Quality level (index) per RtTensor index.

    ``ql`` sets every resilient tensor (default Q0); a ``ql_map`` (JSON object) refines it:
    ``default``, ``input``, ``output``, ``L<i>``, ``#<tensor id>`` or tensor names. The critical
    region (key ``critical``: commit records) and critical tensors (integer index/shape data,
    whose corruption breaks correctness) are always Q0; asking for less is an error.
    """
    default = ql_index(ql, "--ql") if ql else 0
    entries = load_ql_map(ql_map) if ql_map is not None else {}
    where = "--ql-map"
    if "default" in entries:
        default = ql_index(entries["default"], f"{where} entry 'default'")
    out = {t.index: (0 if is_critical_tensor(t) else default) for t in g.tensors}
    for key, value in entries.items():
        if key == "default":
            continue
        level = ql_index(value, f"{where} entry '{key}'")
        if key == "critical":
            if level != 0:
                raise AppError(
                    f"{where} asks for {QL_NAMES[level]} for the critical region (commit "
                    "records); the critical region is always written at Q0 because a corrupt "
                    "record breaks recovery: remove the 'critical' entry or set it to Q0")
            continue
        targets = _map_targets(g, key)
        if targets is None:
            names = ", ".join(sorted(t.name for t in g.tensors)[:8])
            raise AppError(
                f"{where} entry '{key}' names no tensor of '{g.name}'; use default, input, "
                f"output, critical, L0..L{len(g.layers) - 1}, #<tensor id> or a tensor name "
                f"(e.g. {names})")
        for t in targets:
            if is_critical_tensor(t) and level != 0:
                raise AppError(
                    f"{where} asks for {QL_NAMES[level]} for tensor '{t.name}' ({t.dtype}), "
                    "which is critical data (integer indices/shapes: a flipped bit breaks "
                    "correctness, not just accuracy) and is always written at Q0: set it to Q0 "
                    "or remove the entry")
            out[t.index] = level
    return out


# ---- persistence plan ------------------------------------------------------------------------

def _words(nbytes: int) -> int:
    return (nbytes + 3) // 4


@dataclass(frozen=True)
class Slot:
    tensor: int  # RtTensor index
    name: str
    word: int  # NVM word offset (absolute; includes the critical region)
    words: int  # words per copy
    nbytes: int
    ql: int
    stride_words: int  # per-inference stride (graph outputs: the results area), else 0
    first: int  # producer step-in-inference (-1: input persist)
    last: int


@dataclass(frozen=True)
class PersistPlan:
    graph: RtGraph
    inferences: int
    qls: dict[int, int]
    slots: dict[int, Slot]  # by RtTensor index (only persisted tensors)
    persist_after: tuple[tuple[int, ...], ...]  # per layer: tensors written after it
    nvm_words: int
    layout_id: int

    @property
    def n_layers(self) -> int:
        return len(self.graph.layers)

    @property
    def steps_per_inference(self) -> int:
        return self.n_layers + 1

    @property
    def total_steps(self) -> int:
        return self.inferences * self.steps_per_inference

    def step_tensor_words(self, phase: int) -> int:
        """Tensor words written in one attempt of a step phase (0: inputs, 1+l: layer l)."""
        tensors = self.graph.inputs if phase == 0 else self.persist_after[phase - 1]
        return sum(self.slots[t].words for t in tensors)

    def step_words(self, phase: int) -> int:
        """All NVM words an uninterrupted attempt writes: tensors, then the commit record."""
        return self.step_tensor_words(phase) + RECORD_WORDS

    def shape(self) -> StepShape:
        return StepShape(tuple(self.step_tensor_words(p) for p in range(self.steps_per_inference)),
                         self.inferences)

    def row_names(self) -> list[str]:
        return ["input"] + [layer.name for layer in self.graph.layers]

    def to_dict(self) -> dict[str, Any]:
        return {
            "graph": self.graph.name,
            "inferences": self.inferences,
            "nvm_words": self.nvm_words,
            "critical_words": CRITICAL_WORDS,
            "layout_id": self.layout_id,
            "rows": self.row_names(),
            "step_tensor_words": [self.step_tensor_words(p)
                                  for p in range(self.steps_per_inference)],
            "record_words": RECORD_WORDS,
            "slots": [
                {"tensor": s.name, "word": s.word, "words": s.words, "nbytes": s.nbytes,
                 "ql": QL_NAMES[s.ql], "stride_words": s.stride_words}
                for s in sorted(self.slots.values(), key=lambda s: (s.word, s.tensor))
            ],
        }


def plan_persistence(g: RtGraph, qls: Mapping[int, int], inferences: int = 1) -> PersistPlan:
    """Decide which tensors persist after which step and pack their NVM slots."""
    if inferences < 1:
        raise AppError(f"the runtime needs at least one inference, not {inferences}")
    n = len(g.layers)
    persisted: list[RtTensor] = []
    for t in g.tensors:
        graph_input = t.producer == -1 and t.index in g.inputs
        live_after = t.producer >= 0 and (t.last > t.producer or t.index in g.outputs)
        if graph_input or live_after:
            persisted.append(t)
    persist_after = tuple(
        tuple(t.index for t in persisted if t.producer == layer.index) for layer in g.layers)
    outputs = set(g.outputs)
    # Shared slots: first fit, largest first, no overlap of [producer, last] lifetimes.
    shared = sorted((t for t in persisted if t.index not in outputs),
                    key=lambda t: (-_words(t.nbytes), t.producer, t.index))
    placed: list[tuple[int, int, int, int]] = []  # (word, words, first, last)
    where: dict[int, int] = {}
    top = 0
    for t in shared:
        size = max(_words(t.nbytes), 1)
        cand = 0
        for off, sz, _, _ in sorted(p for p in placed if p[2] <= t.last and t.producer <= p[3]):
            if off >= cand + size:
                break
            cand = max(cand, off + sz)
        placed.append((cand, size, t.producer, t.last))
        where[t.index] = cand
        top = max(top, cand + size)
    slots: dict[int, Slot] = {}
    for t in shared:
        slots[t.index] = Slot(t.index, t.name, CRITICAL_WORDS + where[t.index],
                              max(_words(t.nbytes), 1), t.nbytes, int(qls[t.index]), 0,
                              t.producer, t.last)
    base = CRITICAL_WORDS + top
    for t in sorted((g.tensors[i] for i in outputs), key=lambda t: t.index):
        if t not in persisted:
            continue
        w = max(_words(t.nbytes), 1)
        slots[t.index] = Slot(t.index, t.name, base, w, t.nbytes, int(qls[t.index]), w,
                              t.producer, n)
        base += w * inferences
    desc = {
        "graph": g.name, "sha256": g.sha256, "layers": n, "inferences": inferences,
        "slots": sorted((s.tensor, s.word, s.words, s.nbytes, s.ql, s.stride_words)
                        for s in slots.values()),
        "persist_after": persist_after, "inputs": g.inputs, "outputs": g.outputs,
    }
    layout_id = zlib.crc32(json.dumps(desc, sort_keys=True).encode()) & 0xFFFFFFFF
    return PersistPlan(g, inferences, dict(qls), slots, persist_after, base, layout_id)


# ---- power-failure schedules ----------------------------------------------------------------

@dataclass(frozen=True, order=True)
class FailPoint:
    step: int
    kind: int  # POINT_WORDS | POINT_TICKS
    value: int

    def encode(self) -> tuple[int, int]:
        if not 0 <= self.value < (1 << POINT_VALUE_BITS):
            raise AppError(f"failure point value {self.value} does not fit 30 bits")
        return self.step, (self.kind << POINT_VALUE_BITS) | self.value

    def describe(self, plan: PersistPlan | None = None) -> str:
        what = "w" if self.kind == POINT_WORDS else "t"
        if plan is None:
            return f"S{self.step}:{what}{self.value}"
        inf, phase = divmod(self.step, plan.steps_per_inference)
        row = plan.row_names()[phase]
        return f"{'' if plan.inferences == 1 else f'I{inf}.'}{row}:{what}{self.value}"


@dataclass(frozen=True)
class StepShape:
    """Words each step's uninterrupted attempt writes: the tensors, then the commit record."""

    tensor_words: tuple[int, ...]  # per phase: 0 inputs, 1+l layer l
    inferences: int

    @classmethod
    def from_runtime(cls, rt: Mapping[str, Any]) -> StepShape:
        """From a build's manifest (``app_info.runtime``)."""
        p = rt["persist"]
        return cls(tuple(int(w) for w in p["step_tensor_words"]), int(p["inferences"]))

    @property
    def phases(self) -> int:
        return len(self.tensor_words)

    def words(self, step: int) -> int:
        return self.tensor_words[step % self.phases] + RECORD_WORDS

    def classify(self, p: FailPoint) -> str:
        """Where a word point falls: 'tensor' (inside a tensor write), 'commit' (inside the
        record: before its first word up to before its CRC word) or 'after' (record complete)."""
        tw = self.tensor_words[p.step % self.phases]
        if p.value < tw:
            return "tensor"
        return "commit" if p.value < tw + RECORD_WORDS else "after"


#: most failure points one spread (one campaign) may ask for: a bound checked before anything
#: is allocated (a firmware build holds :func:`sched_capacity` of them per run)
MAX_POINTS = 1_000_000
#: longest --power-fail / --capacitor text accepted
MAX_SPEC_CHARS = 65536


def spread_points(shape: StepShape, count: int, seed: int = 0,
                  inferences: Sequence[int] | None = None) -> list[FailPoint]:
    """``count`` word points spread over every step of the given inferences (default all), in
    proportion to the words each step writes (at least one per step when there are enough),
    at distinct seeded positions in ``[0, words]``, so they fall inside tensor writes, inside
    commits and right after commits; a step with two or more points always gets the first and
    the last word of its record (a failure right before the commit, a torn record). Asked for
    more points than there are positions, steps get every position, then repeats (a repeated
    point fails the re-execution at the same word again; the position after the commit is not
    repeated: once committed, the step never runs again)."""
    if count < 1:
        return []
    if count > MAX_POINTS:
        raise AppError(f"{count} failure points is more than the {MAX_POINTS:,} one campaign "
                       "may ask for; split it")
    infs = list(inferences) if inferences is not None else list(range(shape.inferences))
    steps = [i * shape.phases + p for i in infs for p in range(shape.phases)]
    rng = np.random.default_rng(seed)
    sizes = [shape.words(s) + 1 for s in steps]
    base = [1] * len(steps) if count >= len(steps) else [0] * len(steps)
    left = count - sum(base)
    quota = [left * z / sum(sizes) for z in sizes]
    alloc = [b + int(q) for b, q in zip(base, quota)]
    order = sorted(range(len(steps)), key=lambda j: (-(quota[j] - int(quota[j])), j))
    for j in order[: count - sum(alloc)]:
        alloc[j] += 1
    points: list[FailPoint] = []
    for j, step in enumerate(steps):
        want = alloc[j]
        positions = sizes[j]
        tw = shape.tensor_words[step % shape.phases]
        values: list[int] = []
        while want > 0:
            # a repeat of the point after the commit could never be reached: the step is done
            k = min(want, positions if not values else positions - 1)
            must = [tw, tw + RECORD_WORDS - 1][:k]
            pool = np.setdiff1d(np.arange(positions if not values else positions - 1), must)
            pick = rng.choice(pool, size=k - len(must), replace=False) if k > len(must) else []
            values += sorted(set(must) | {int(v) for v in pick})
            want -= k
        points += [FailPoint(step, POINT_WORDS, v) for v in values]
    return sorted(points)


def parse_power_fail(spec: str, plan: PersistPlan, seed: int = 0,
                     limit: int | None = None) -> list[FailPoint]:
    """``--power-fail`` spec: ``<N>`` (N word points spread over all steps, seeded), or a
    comma-separated list of ``[I<inf>.]<row>:w<k>`` / ``[I<inf>.]<row>:t<ticks>`` where row is
    ``input`` or ``L<i>`` (e.g. ``L3:w120,L5:t40000``), or ``none``. ``limit`` (the firmware's
    schedule capacity) is checked before any point is made."""
    spec = str(spec).strip()
    if spec in ("", "none", "off"):
        return []
    limit = MAX_POINTS if limit is None else min(limit, MAX_POINTS)
    if len(spec) > MAX_SPEC_CHARS:
        raise AppError(f"--power-fail is {len(spec):,} characters long; at most "
                       f"{MAX_SPEC_CHARS:,}")
    if spec.isdigit():
        count = int(spec) if len(spec) <= 12 else limit + 1
        if count > limit:
            raise AppError(f"--power-fail asks for {spec} points; this firmware holds at most "
                           f"{limit} per run (use a campaign to spread more over several runs)")
        return spread_points(plan.shape(), count, seed)
    items = spec.split(",")
    if len(items) > limit:
        raise AppError(f"--power-fail lists {len(items)} points; this firmware holds at most "
                       f"{limit} per run")
    rows = plan.row_names()
    points = []
    for item in items:
        m = re.fullmatch(r"(?:I(\d{1,9})\.)?(input|L\d{1,9}):([wt])(\d{1,19})", item.strip())
        if not m or m.group(2) not in rows:
            raise AppError(
                f"--power-fail item '{item}' is not understood; use N (spread N points), or "
                f"[I<inference>.]<input|L0..L{plan.n_layers - 1}>:w<word> or :t<ticks>, "
                "comma-separated (e.g. L3:w120,L5:t40000)")
        inf = int(m.group(1) or 0)
        if inf >= plan.inferences:
            raise AppError(f"--power-fail item '{item}': inference {inf} does not exist "
                           f"(the run has {plan.inferences})")
        phase = rows.index(m.group(2))
        kind = POINT_WORDS if m.group(3) == "w" else POINT_TICKS
        value = int(m.group(4))
        if kind == POINT_WORDS and value > plan.step_words(phase):
            raise AppError(f"--power-fail item '{item}': step {m.group(2)} writes only "
                           f"{plan.step_words(phase)} words")
        points.append(FailPoint(inf * plan.steps_per_inference + phase, kind, value))
    return sorted(points)


# ---- capacitor ------------------------------------------------------------------------------

_UNITS = {"": 1.0, "p": 1e-12, "n": 1e-9, "u": 1e-6, "µ": 1e-6, "m": 1e-3, "k": 1e3}


def _quantity(text: str, unit: str, what: str) -> float:
    m = re.fullmatch(r"([0-9]*\.?[0-9]+(?:e-?\d+)?)\s*([pnuµmk]?)" + unit + "?", text.strip())
    if not m:
        raise AppError(f"--capacitor {what}='{text}' is not a number with an optional "
                       f"prefix and unit {unit} (e.g. 47u{unit})")
    value = float(m.group(1)) * _UNITS[m.group(2)]
    if not math.isfinite(value) or value > 1e6:
        raise AppError(f"--capacitor {what}='{text}' is out of range (at most 1e6 {unit})")
    return value


@dataclass(frozen=True)
class Capacitor:
    capacitance_f: float
    v_on: float
    v_off: float
    harvest_w: float | None = None

    @property
    def budget_pj(self) -> float:
        """E = ½·C·(V_on² − V_off²) in pJ: what one full charge gives the device."""
        return 0.5 * self.capacitance_f * (self.v_on ** 2 - self.v_off ** 2) * 1e12

    @property
    def budget_fj(self) -> int:
        return int(round(self.budget_pj * 1000))

    def recharge_s(self) -> float | None:
        """Time to recharge from V_off to V_on at the harvesting power."""
        return None if not self.harvest_w else self.budget_pj * 1e-12 / self.harvest_w

    def to_dict(self) -> dict[str, Any]:
        return {"capacitance_f": self.capacitance_f, "v_on": self.v_on, "v_off": self.v_off,
                "harvest_w": self.harvest_w, "budget_pj": self.budget_pj}


def parse_capacitor(spec: str, board: Board | None = None) -> Capacitor | None:
    """``--capacitor C=47uF,von=3.3,voff=1.8[,harvest=1mW]`` (``none`` for no capacitor;
    missing values come from the board file's ``[capacitor]`` table when it has one)."""
    spec = str(spec).strip()
    if spec in ("", "none", "off"):
        return None
    defaults: dict[str, Any] = dict(getattr(board, "capacitor", None) or {}) if board else {}
    vals: dict[str, float] = {}
    for item in spec.split(","):
        if item.strip() in ("board", "default"):
            continue
        if "=" not in item:
            raise AppError(f"--capacitor item '{item}' is not key=value; use e.g. "
                           "C=47uF,von=3.3,voff=1.8,harvest=1mW")
        k, v = (s.strip() for s in item.split("=", 1))
        key = k.lower()
        if key in ("c", "cap", "capacitance"):
            vals["c"] = _quantity(v, "F", k)
        elif key in ("von", "v_on"):
            vals["von"] = _quantity(v, "V", k)
        elif key in ("voff", "v_off"):
            vals["voff"] = _quantity(v, "V", k)
        elif key in ("harvest", "p", "power"):
            vals["harvest"] = _quantity(v, "W", k)
        else:
            raise AppError(f"--capacitor key '{k}' is unknown; known: C, von, voff, harvest")
    c = vals.get("c", defaults.get("capacitance_f"))
    von = vals.get("von", defaults.get("v_on"))
    voff = vals.get("voff", defaults.get("v_off"))
    if c is None or von is None or voff is None:
        raise AppError("--capacitor needs C, von and voff (e.g. C=47uF,von=3.3,voff=1.8)")
    if not (c > 0 and von > voff >= 0):
        raise AppError(f"--capacitor needs C > 0 and von > voff >= 0 (got C={c}, von={von}, "
                       f"voff={voff})")
    return Capacitor(float(c), float(von), float(voff),
                     vals.get("harvest", defaults.get("harvest_w")))


# ---- the config block -----------------------------------------------------------------------

@dataclass(frozen=True)
class SimConfig:
    """What the host tells the firmware at run time (written into the config block)."""

    points: tuple[FailPoint, ...] = ()
    keep_nvm: bool = False
    inject: bool | None = None  # None: the firmware's build-time choice
    seed: int = 0
    capacitor_fj: int | None = None

    def flags(self) -> int:
        f = FLAG_KEEP_NVM if self.keep_nvm else 0
        if self.inject is not None:
            f |= FLAG_INJECT_OVERRIDE | (FLAG_INJECT_ON if self.inject else 0)
        if self.capacitor_fj is not None:
            f |= FLAG_CAPACITOR
        return f


def encode_config(cfg: SimConfig, capacity: int) -> bytes:
    """The config block's bytes (header + points), little-endian words."""
    pts = sorted(cfg.points)
    if len(pts) > capacity:
        raise AppError(f"{len(pts)} failure points do not fit the firmware's schedule "
                       f"({capacity} points): split the campaign")
    cap = int(cfg.capacitor_fj or 0)
    words = [CONFIG_MAGIC, CONFIG_VERSION, cfg.flags(), len(pts), int(cfg.seed) & 0xFFFFFFFF,
             cap & 0xFFFFFFFF, (cap >> 32) & 0xFFFFFFFF]
    body = [w for p in pts for w in p.encode()]
    crc = zlib.crc32(struct.pack(f"<{len(words) + len(body)}I", *words, *body)) & 0xFFFFFFFF
    return struct.pack(f"<{CONFIG_HEADER_WORDS + len(body)}I", *words, crc, *body)


@dataclass(frozen=True)
class NoinitLayout:
    config_words: int
    nvm_words: int

    @property
    def config_bytes(self) -> int:
        return 4 * self.config_words

    @property
    def nvm_offset(self) -> int:
        return self.config_bytes

    @property
    def nvm_bytes(self) -> int:
        return 4 * self.nvm_words


def noinit_layout(capacity: int, nvm_words: int) -> NoinitLayout:
    cw = CONFIG_HEADER_WORDS + 2 * capacity
    cw += cw % 2  # keep the NVM 8-byte aligned
    return NoinitLayout(cw, nvm_words)


def encode_record(layout_id: int, seq: int, step: int) -> bytes:
    """A commit record exactly as the firmware writes it (used to craft NVM images in tests)."""
    words = [RECORD_MAGIC, layout_id & 0xFFFFFFFF, seq & 0xFFFFFFFF, step & 0xFFFFFFFF,
             (~step) & 0xFFFFFFFF, 0, 0]
    crc = zlib.crc32(struct.pack("<7I", *words)) & 0xFFFFFFFF
    return struct.pack("<8I", *words, crc)


# ---- the runtime configuration of one build -------------------------------------------------

@dataclass(frozen=True)
class RuntimeOptions:
    ql: str | None = None
    ql_map: str | None = None
    inject: bool = True
    seed: int = 1
    power_fail: str = ""
    capacitor: str = ""

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RuntimeOptions:
        inject = str(options.get("inject", "1")).strip().lower()
        if inject not in ("0", "1", "on", "off", "true", "false", "yes", "no"):
            raise AppError(f"inject={inject} must be on or off")
        return cls(
            ql=str(options["ql"]) if options.get("ql") else None,
            ql_map=str(options["ql_map"]) if options.get("ql_map") else None,
            inject=inject in ("1", "on", "true", "yes"),
            seed=int(options.get("seed", 1)),
            power_fail=str(options.get("power_fail", "") or ""),
            capacitor=str(options.get("capacitor", "") or ""),
        )


def fj_per_tick_q16(board: Board) -> int:
    """Energy per counter tick in fJ, Q16.16: ticks are CPU cycles on silicon and
    ``ticks_per_instruction`` per instruction on a twin (instructions stand in for cycles)."""
    tpi = board.counter_ticks_per_instruction()
    if board.counter_kind == "none":
        return 0
    per_tick_pj = board.pj_per_cycle / (tpi if tpi else 1.0)
    return int(round(per_tick_pj * 1000 * 65536))


def fj_per_word(board: Board) -> list[int]:
    """(E_cycle + E_memWrite(QL)) per 32-bit word write, in fJ, per quality level."""
    return [int(round((board.pj_per_cycle + q.write_pj_per_bit * 32) * 1000))
            for q in QUALITY_LEVELS]


def runtime_context(board: Board, plan: PersistPlan, ropts: RuntimeOptions) -> dict[str, Any]:
    """Template context for templates/runtime (the layout, constants and defaults)."""

    capacity = sched_capacity(board)
    layout = noinit_layout(capacity, plan.nvm_words)
    points = parse_power_fail(ropts.power_fail, plan, ropts.seed, limit=capacity)
    if len(points) > capacity:
        raise AppError(f"--power-fail asks for {len(points)} points; {board.name}'s firmware "
                       f"holds {capacity}")
    cap = parse_capacitor(ropts.capacitor, board)
    g = plan.graph
    tensors = []
    for t in g.tensors:
        s = plan.slots.get(t.index)
        tensors.append({
            "name": t.name, "ram_offset": t.ram_offset, "nbytes": t.nbytes,
            "word": s.word if s else 0, "stride": s.stride_words if s else 0,
            "ql": s.ql if s else 0, "persisted": s is not None,
        })
    return {
        "rt": {
            "n_ql": len(QUALITY_LEVELS),
            "ql_names": list(QL_NAMES),
            "gap_k": [c.k for c in GAP_CONSTANTS],
            "gap_shift": [c.shift for c in GAP_CONSTANTS],
            "inject": 1 if ropts.inject else 0,
            "seed": ropts.seed & 0xFFFFFFFF,
            "capacity": capacity,
            "config_words": layout.config_words,
            "config_header_words": CONFIG_HEADER_WORDS,
            "nvm_words": plan.nvm_words,
            "critical_words": CRITICAL_WORDS,
            "record_words": RECORD_WORDS,
            "layout_id": plan.layout_id,
            "n_layers": plan.n_layers,
            "inferences": plan.inferences,
            "rows": plan.row_names(),
            "tensors": tensors,
            "layers": [{"name": layer.name, "inputs": list(layer.inputs),
                        "outputs": list(plan.persist_after[layer.index])}
                       for layer in g.layers],
            "inputs": list(g.inputs),
            "outputs": list(g.outputs),
            "points": [p.encode() for p in points],
            "capacitor_fj": cap.budget_fj if cap else 0,
            "fj_per_tick_q16": fj_per_tick_q16(board),
            "fj_per_word": fj_per_word(board),
            "magic": {"record": RECORD_MAGIC, "config": CONFIG_MAGIC, "sim": SIM_MAGIC,
                      "reset": RESET_MAGIC},
            "flags": {"keep_nvm": FLAG_KEEP_NVM, "inject_override": FLAG_INJECT_OVERRIDE,
                      "inject_on": FLAG_INJECT_ON, "capacitor": FLAG_CAPACITOR},
            "point_value_bits": POINT_VALUE_BITS,
        },
    }


RUNTIME_TEMPLATES = (
    ("runtime/ss_rt_config.h.j2", "runtime/ss_rt_config.h"),
    ("runtime/ss_noinit.h.j2", "runtime/ss_noinit.h"),
    ("runtime/ss_noinit.c.j2", "runtime/ss_noinit.c"),
    ("common/ss_crc32.h.j2", "ss_crc32.h"),
    ("common/ss_crc32.c.j2", "ss_crc32.c"),
    ("runtime/ss_inject.h.j2", "runtime/ss_inject.h"),
    ("runtime/ss_inject.c.j2", "runtime/ss_inject.c"),
    ("runtime/ss_energy.h.j2", "runtime/ss_energy.h"),
    ("runtime/ss_energy.c.j2", "runtime/ss_energy.c"),
    ("runtime/ss_power.h.j2", "runtime/ss_power.h"),
    ("runtime/ss_power.c.j2", "runtime/ss_power.c"),
    ("runtime/ss_nvm.h.j2", "runtime/ss_nvm.h"),
    ("runtime/ss_nvm.c.j2", "runtime/ss_nvm.c"),
    ("runtime/ss_checkpoint.h.j2", "runtime/ss_checkpoint.h"),
    ("runtime/ss_checkpoint.c.j2", "runtime/ss_checkpoint.c"),
    ("runtime/ss_runtime.h.j2", "runtime/ss_runtime.h"),
    ("runtime/ss_runtime.c.j2", "runtime/ss_runtime.c"),
    ("runtime/ss_rt_config.c.j2", "runtime/ss_rt_config.c"),
    ("runtime/ss_rt_graph.c.j2", "runtime/ss_rt_graph.c"),
)


def runtime_manifest(board: Board, plan: PersistPlan, ropts: RuntimeOptions) -> dict[str, Any]:
    """What the host needs to drive and decode a runtime build (goes into sweetspot.json)."""
    capacity = sched_capacity(board)
    layout = noinit_layout(capacity, plan.nvm_words)
    cap = parse_capacitor(ropts.capacitor, board)
    return {
        "persist": plan.to_dict(),
        "qls": {plan.graph.tensors[t].name: QL_NAMES[q] for t, q in sorted(plan.qls.items())
                if t in plan.slots},
        "inject": ropts.inject,
        "seed": ropts.seed & 0xFFFFFFFF,
        "sched_capacity": capacity,
        "noinit": {"symbol": NOINIT_SYMBOL, "config_bytes": layout.config_bytes,
                   "nvm_offset": layout.nvm_offset, "nvm_bytes": layout.nvm_bytes},
        "power_fail": ropts.power_fail,
        "capacitor": cap.to_dict() if cap else None,
    }


# ---- decoding what the runtime reported --------------------------------------------------------

PHASES = ("compute", "restore", "persist", "commit", "inject")
#: where a power failure hit, as the firmware reports it (``rt.fail.<where>``): before the
#: step's tensor writes were complete, inside its record write (tensor words done, record not
#: yet verified), after its commit; the same names as :meth:`StepShape.classify`
FAIL_WHERE = ("tensor", "commit", "after")


@dataclass
class RowStats:
    name: str
    ticks: dict[str, int] = field(default_factory=dict)  # per phase
    cycles: dict[str, int] = field(default_factory=dict)  # instructions on a twin
    words: dict[str, int] = field(default_factory=dict)  # per QL name
    calls: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    done: int = 0


@dataclass
class RuntimeStats:
    rows: list[RowStats]
    metrics: dict[str, int]
    inferences: int
    #: power failures by where the firmware says they hit (``rt.fail.<where>``, FAIL_WHERE)
    fail_where: dict[str, int] = field(default_factory=dict)

    def metric(self, name: str, default: int = 0) -> int:
        return int(self.metrics.get(name, default))


def decode_stats(doc: Mapping[str, Any]) -> RuntimeStats:
    """Per-row runtime counters from a results document (``rt.*`` CYC and KV records)."""
    info = doc.get("app_info", {}).get("runtime")
    if not info:
        raise AppError("this run has no intermittent runtime (no app_info.runtime in its "
                       "manifest)")
    names = info["persist"]["rows"]
    cycles = doc.get("cycles", {})
    metrics = doc.get("metrics", {})
    rows = []
    for name in names:
        r = RowStats(name)
        for ph in PHASES:
            c = cycles.get(f"rt.{name}.{ph}")
            if c is not None:
                r.ticks[ph] = int(c["ticks"])
                n = c.get("cycles", c.get("instructions"))
                r.cycles[ph] = int(n) if n is not None else 0
        for q in QL_NAMES:
            w = metrics.get(f"rt.{name}.w.{q}")
            if w:
                r.words[q] = int(w)
                r.calls[q] = int(metrics.get(f"rt.{name}.c.{q}", 0))
        r.attempts = int(metrics.get(f"rt.{name}.attempts", 0))
        r.done = int(metrics.get(f"rt.{name}.done", 0))
        rows.append(r)
    rt_metrics = {k: int(v) for k, v in metrics.items() if k.startswith("rt.")
                  and not re.match(r"rt\.(input|L\d+)\.", k)}
    where = {w: int(metrics.get(f"rt.fail.{w}", 0)) for w in FAIL_WHERE}
    return RuntimeStats(rows, rt_metrics, int(info["persist"]["inferences"]), where)


def commit_overhead(stats: RuntimeStats) -> dict[str, Any]:
    """Commit-protocol cycles (excluding the tensor write) as a share of each step's cycles
    (compute + restore + persist + commit)."""
    out = []
    tot_commit = tot_all = 0
    for r in stats.rows:
        c = r.cycles
        total = sum(c.get(ph, 0) for ph in ("compute", "restore", "persist", "commit"))
        com = c.get("commit", 0)
        tot_commit += com
        tot_all += total
        out.append({"row": r.name, "commit": com, "total": total,
                    "share": com / total if total else None})
    return {"rows": out, "commit": tot_commit, "total": tot_all,
            "share": tot_commit / tot_all if tot_all else None}


__all__ = [
    "Capacitor", "FailPoint", "NoinitLayout", "PersistPlan", "RowStats", "RtGraph", "RtLayer",
    "RtTensor", "RuntimeOptions", "RuntimeStats", "SimConfig", "Slot", "StepShape", "assign_qls",
    "commit_overhead", "decode_stats", "encode_config", "encode_record", "noinit_layout",
    "parse_capacitor", "parse_power_fail", "plan_persistence", "rt_graph_from_ir",
    "runtime_context", "runtime_manifest", "spread_points", "QL_BY_NAME",
]
