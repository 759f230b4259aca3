"""``nvmtest``: the intermittent runtime on a synthetic graph, without a model.

A chain of simple uint8 transforms (with one residual connection, so two tensors are live
across some boundaries) runs as layer tasks under the runtime: inputs persisted, every layer's
output written to NVM at its quality level and committed, resumable after any power failure.
The host recomputes everything with numpy (:func:`reference`), including the write errors the
Python twin of the injector predicts for the seed.

Options (``scons board=<b> app=nvmtest ...``):

* ``mode``: ``chain`` (tensors of 301 bytes), ``chain<N>`` (N bytes, N >= 16), or ``stress``
  (no graph work: write a buffer many times at each quality level and report flip counts and
  hashes, to compare the target's injector with :mod:`generator.runtime.inject`).
* ``inputs``: number of inferences (default 2), each on its own seeded input.
* ``ql`` / ``ql_map`` / ``inject`` / ``seed`` / ``power_fail`` / ``capacitor``: the runtime's
  options (see :mod:`generator.runtime.layout`); ``seed`` seeds the injector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from generator.boards import Board
from generator.errors import AppError
from generator.firmware.apps import register
from generator.runtime.inject import Injector
from generator.runtime.layout import (
    RECORD_WORDS,
    RUNTIME_TEMPLATES,
    PersistPlan,
    RtGraph,
    RtLayer,
    RtTensor,
    RuntimeOptions,
    assign_qls,
    encode_record,
    plan_persistence,
    runtime_context,
    runtime_manifest,
)

DEFAULT_N = 301
DEFAULT_INFERENCES = 2
DATA_SEED = 1234
ALIGN = 16
COMMIT_RETRIES = 4

# (op, input tensors, output tensor, parameters); tensor 0 is the graph input.
LAYERS: tuple[tuple[str, tuple[int, ...], int, dict[str, int]], ...] = (
    ("mix", (0,), 1, {"c": 0x3B}),
    ("affine", (1,), 2, {"a": 37, "b": 101}),
    ("mix", (2,), 3, {"c": 0x5D}),
    ("add", (3, 1), 4, {}),
    ("shrink", (4,), 5, {}),
    ("mix", (5,), 6, {"c": 0x71}),
)
N_TENSORS = 7
OUTPUT = 6

# Words written per quality level in stress mode (Q0..Q4): ~30 flips expected at Q1, a few
# hundred to a few thousand at Q2..Q4 (Q0's 1e-8 needs far more bits: the host tests cover it).
STRESS_WORDS = (1 << 20, 1 << 20, 1 << 20, 1 << 18, 1 << 16)


#: largest chain<N> tensor (bytes): bounded before the synthetic graph is made
MAX_CHAIN_BYTES = 1 << 20


def parse_mode(mode: str | None) -> tuple[str, int]:
    m = str(mode or "chain")
    if m == "chain":
        return "chain", DEFAULT_N
    if m == "stress":
        return "stress", DEFAULT_N
    hit = re.fullmatch(r"chain(\d{1,9})", m)
    if hit and 16 <= int(hit.group(1)) <= MAX_CHAIN_BYTES:
        return "chain", int(hit.group(1))
    raise AppError(f"nvmtest mode '{m[:40]}' is unknown; use chain, chain<N> (16 <= N <= "
                   f"{MAX_CHAIN_BYTES} bytes) or stress")


def tensor_sizes(n: int) -> list[int]:
    return [n, n, n, n, n, n // 2, n // 2]


def synthetic_graph(n: int = DEFAULT_N) -> RtGraph:
    sizes = tensor_sizes(n)
    offsets, off = [], 0
    for s in sizes:
        offsets.append(off)
        off += (s + ALIGN - 1) // ALIGN * ALIGN
    producer = {0: -1}
    last = dict.fromkeys(range(N_TENSORS), -1)
    for i, (_, ins, out, _) in enumerate(LAYERS):
        producer[out] = i
        for t in ins:
            last[t] = max(last[t], i)
    last[OUTPUT] = len(LAYERS)
    tensors = tuple(
        RtTensor(t, f"t{t}", "uint8", sizes[t], offsets[t], producer[t], last[t], source=t)
        for t in range(N_TENSORS))
    layers = tuple(RtLayer(i, f"L{i}", ins, (out,)) for i, (_, ins, out, _) in enumerate(LAYERS))
    return RtGraph(f"nvmtest{n}", "0" * 64, tensors, layers, (0,), (OUTPUT,))


def arena_bytes(n: int) -> int:
    return sum((s + ALIGN - 1) // ALIGN * ALIGN for s in tensor_sizes(n))


def make_inputs(count: int, n: int = DEFAULT_N, seed: int = DATA_SEED) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, n, dtype=np.uint8) for _ in range(count)]


# ---- numpy reference (independent of the C code) ---------------------------------------------

def _mix(x: np.ndarray, c: int) -> np.ndarray:
    n = x.size
    k = np.arange(n, dtype=np.int64)
    other = x[(7 * k + 3) % n].astype(np.uint16)
    rot = ((other << 3) | (other >> 5)) & 0xFF
    return ((x.astype(np.int64) ^ rot) + k * c).astype(np.uint8)


def layer_fn(op: str, params: dict[str, int], ins: list[np.ndarray]) -> np.ndarray:
    if op == "mix":
        return _mix(ins[0], params["c"])
    if op == "affine":
        return (ins[0].astype(np.int64) * params["a"] + params["b"]).astype(np.uint8)
    if op == "add":
        return (ins[0].astype(np.int64) + ins[1]).astype(np.uint8)
    if op == "shrink":
        x = ins[0].astype(np.int64)
        h = x.size // 2
        return (x[0:2 * h:2] + x[1:2 * h:2]).astype(np.uint8)
    raise ValueError(op)


def reference(plan: PersistPlan, inputs: list[np.ndarray], injector: Injector | None = None
              ) -> list[np.ndarray]:
    """Outputs of every inference with the runtime's semantics: each layer reads its inputs back
    from NVM, where every tensor was written (word-padded) at its quality level; with an
    injector, the bits it says flip are flipped, in the firmware's write order (input persist,
    then each layer's outputs, each step followed by its commit record at Q0, rewritten while
    it does not verify)."""
    g = plan.graph

    def store(t: int, data: np.ndarray) -> np.ndarray:
        raw = data.tobytes()
        if injector is not None:
            raw = injector.write_words(plan.slots[t].ql, raw)[: len(raw)]
        return np.frombuffer(raw, dtype=np.uint8).copy()

    def commit() -> None:
        if injector is None:
            return
        for _ in range(COMMIT_RETRIES):
            if not injector.write(0, 32 * RECORD_WORDS):
                return

    outs = []
    for x in inputs:
        nvm: dict[int, np.ndarray] = {}
        for t in g.inputs:
            nvm[t] = store(t, x)
        commit()
        for i, (op, ins, out, params) in enumerate(LAYERS):
            y = layer_fn(op, params, [nvm[t] for t in ins])
            for t in plan.persist_after[i]:
                assert t == out
                nvm[t] = store(t, y)
            commit()
        outs.append(nvm[OUTPUT])
    return outs


# ---- the app -------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Setup:
    mode: str
    n: int
    inferences: int
    ropts: RuntimeOptions
    plan: PersistPlan


class NvmtestApp:
    name = "nvmtest"
    description = "the intermittent runtime on a synthetic layer chain (NVM, QLs, injection)"
    needs_model = False

    def setup(self, board: Board, options: dict[str, Any]) -> _Setup:
        mode, n = parse_mode(options.get("mode"))
        count = int(options.get("inputs", DEFAULT_INFERENCES))
        if count < 1:
            raise AppError(f"inputs={count}: nvmtest needs at least one inference")
        ropts = RuntimeOptions.from_options(options)
        g = synthetic_graph(n)
        qls = assign_qls(g, ropts.ql, ropts.ql_map)
        plan = plan_persistence(g, qls, count)
        return _Setup(mode, n, count, ropts, plan)

    def context(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        s = self.setup(board, options)
        g = s.plan.graph
        ctx = runtime_context(board, s.plan, s.ropts)
        inputs = make_inputs(s.inferences, s.n)
        ctx.update({
            "mode": s.mode,
            "n": s.n,
            "arena_bytes": arena_bytes(s.n),
            "offsets": [t.ram_offset for t in g.tensors],
            "sizes": [t.nbytes for t in g.tensors],
            "nt_layers": [{"op": op, "inputs": list(ins), "output": out, "params": params}
                          for op, ins, out, params in LAYERS],
            "nt_inputs": [[int(v) for v in x] for x in inputs],
            "output": OUTPUT,
            "stress_words": list(STRESS_WORDS),
            "stress_chunk": min(arena_bytes(s.n) // 4, s.plan.nvm_words - 16),
        })
        return ctx

    def templates(self, board: Board, options: dict[str, Any]) -> list[tuple[str, str]]:
        return [*RUNTIME_TEMPLATES, ("apps/nvmtest/main.c.j2", "main.c")]

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        return {}

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        s = self.setup(board, options)
        return {
            "mode": s.mode,
            "n": s.n,
            "inferences": s.inferences,
            "data_seed": DATA_SEED,
            "stress_words": list(STRESS_WORDS) if s.mode == "stress" else None,
            "runtime": runtime_manifest(board, s.plan, s.ropts),
        }

    def check(self, info: dict[str, Any], outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """Outputs against numpy; with injection on, against numpy plus the flips the Python
        twin predicts (also after power failures: a re-executed step draws the flips of its
        first attempt, see ``ss_inject_attempt``)."""
        if info.get("mode") == "stress":
            return {}
        rt = info["runtime"]
        n, count = int(info["n"]), int(info["inferences"])
        g = synthetic_graph(n)
        qls = {t.index: 0 for t in g.tensors}
        by_name = {t.name: t.index for t in g.tensors}
        for name, q in rt["qls"].items():
            qls[by_name[name]] = int(q[1:])
        plan = plan_persistence(g, qls, count)
        inj = Injector(int(rt["seed"])) if rt["inject"] else None
        want = reference(plan, make_inputs(count, n, int(info["data_seed"])), inj)
        result: dict[str, Any] = {}
        for i, w in enumerate(want):
            got = outputs.get(f"out[{i}]")
            ok = got is not None and got.shape == w.shape and np.array_equal(got, w)
            result[f"out[{i}]"] = {
                "ok": bool(ok),
                "mismatches": None if got is None or got.shape != w.shape
                else int(np.count_nonzero(got != w)),
            }
        return result


def record_bytes(plan: PersistPlan, seq: int, step: int) -> bytes:
    return encode_record(plan.layout_id, seq, step)


register(NvmtestApp())
