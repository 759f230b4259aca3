"""The ``infer`` app under the intermittent runtime (:mod:`generator.runtime.layout`).

Any of the options ``ql``, ``ql_map``, ``inject``, ``power_fail`` or ``capacitor`` turns it on:
the model's layer tasks (``ss_layer_<i>`` over ``ss_arena``, from the model compiler) then run
as runtime steps (inputs persisted, each layer's inputs restored from NVM, outputs persisted at
their quality level, progress committed), and ``main.c`` comes from
``templates/runtime/ss_rt_infer.c.j2``. The reports are the runtime's (``rt.*``) plus every
output under the same names as without the runtime (``output<j>`` or ``output<j>[k]``).

The hooks :class:`generator.compiler.emit.InferApp` calls are :func:`requested`, :func:`context`,
:func:`templates`, :func:`manifest` and :func:`annotate_check`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from generator.boards import Board
from generator.compiler.ir import Graph
from generator.compiler.plan import RUNTIME_RAM_BYTES, Plan
from generator.errors import FitError
from generator.runtime.layout import (
    RUNTIME_OPTION_KEYS,
    RUNTIME_TEMPLATES,
    PersistPlan,
    RuntimeOptions,
    assign_qls,
    noinit_layout,
    plan_persistence,
    rt_graph_from_ir,
    runtime_context,
    runtime_manifest,
    sched_capacity,
)

RUNTIME_OPTIONS = RUNTIME_OPTION_KEYS
MAIN_TEMPLATE = ("runtime/ss_rt_infer.c.j2", "main.c")


def requested(options: Mapping[str, Any]) -> bool:
    return any(options.get(k) not in (None, "") for k in RUNTIME_OPTIONS)


def options_of(options: Mapping[str, Any]) -> RuntimeOptions:
    return RuntimeOptions.from_options(options)


def persist_plan(graph: Graph, plan: Plan, runs: int, options: Mapping[str, Any]
                 ) -> PersistPlan:
    ro = options_of(options)
    g = rt_graph_from_ir(graph, plan)
    return plan_persistence(g, assign_qls(g, ro.ql, ro.ql_map), runs)


def _require_fit(board: Board, plan: Plan, pplan: PersistPlan) -> None:
    if board.is_host:
        return
    layout = noinit_layout(sched_capacity(board), pplan.nvm_words)
    sim = 512 + 96 * (pplan.n_layers + 1)  # ss_sim_t: header, 2 x 5 streams, rows
    noinit = layout.config_bytes + layout.nvm_bytes + sim
    need = plan.arena_bytes + RUNTIME_RAM_BYTES + noinit
    ram = board.ram.length
    if need > ram:
        raise FitError(
            f"model '{plan.model}' with the intermittent runtime does not fit {board.name}'s RAM: "
            f"needs {need:,} B (arena {plan.arena_bytes:,} B + runtime ~{RUNTIME_RAM_BYTES:,} B "
            f"+ emulated NVM {layout.nvm_bytes:,} B + schedule/config {layout.config_bytes:,} B "
            f"+ simulator ~{sim:,} B); the board has {ram:,} B")


def context(board: Board, graph: Graph, plan: Plan, runs: int, options: Mapping[str, Any]
            ) -> dict[str, Any]:
    pplan = persist_plan(graph, plan, runs, options)
    for t in pplan.graph.tensors:
        if t.ram_offset % 4:
            raise FitError(f"tensor '{t.name}' sits at arena offset {t.ram_offset}, not 4-byte "
                           "aligned: the runtime copies whole words")
    _require_fit(board, plan, pplan)
    ctx = runtime_context(board, pplan, options_of(options))
    ctx["runtime"] = True
    return ctx


def templates() -> list[tuple[str, str]]:
    return [*RUNTIME_TEMPLATES, MAIN_TEMPLATE]


def manifest(board: Board, graph: Graph, plan: Plan, runs: int, options: Mapping[str, Any]
             ) -> dict[str, Any]:
    return runtime_manifest(board, persist_plan(graph, plan, runs, options),
                            options_of(options))


def is_lossy(rt: Mapping[str, Any]) -> bool:
    """Whether a runtime build injects write errors at a level that flips bits in practice
    (Q1..Q4): its outputs may then differ from TFLM's."""
    return bool(rt.get("inject")) and any(q != "Q0" for q in rt.get("qls", {}).values())


LOSSY_PENDING = ("a lossy run (write errors at Q1..Q4) is checked against the host twin running "
                 "the same C with the same injector and seed: run it with `sweetspot run` or "
                 "generator.runtime.campaign.run_configured(..., host_twin=True)")


def annotate_check(app_info: Mapping[str, Any], result: dict[str, Any],
                   outputs: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Every entry gets ``deviation_from_tflm`` (differing elements, largest difference, whether
    the top-1 class is the same): information, never a verdict. Without injection, or when every
    tensor is at Q0, the outputs must still equal TFLM's byte for byte. With write errors at
    Q1..Q4 the reference is the host twin instead (same generated C, same injector, same seed:
    the outputs must be equal byte for byte); until that comparison has been made
    (:func:`generator.runtime.campaign.host_twin_check`) the entry is not ok."""
    rt = app_info.get("runtime") or {}
    lossy = is_lossy(rt)
    for name, entry in result.items():
        if "expected" not in entry or name not in outputs:
            continue
        got = np.asarray(outputs[name]).reshape(-1)
        ref = np.asarray(entry["expected"], dtype=got.dtype).reshape(-1)
        if got.shape != ref.shape:
            continue
        diff = np.abs(got.astype(np.float64) - ref.astype(np.float64))
        entry["deviation_from_tflm"] = {
            "differing": int(np.count_nonzero(got != ref)),
            "max_abs_diff": float(np.nanmax(diff)) if diff.size else 0.0,
            "top1_same": bool(np.argmax(got) == np.argmax(ref)),
            "top1": int(np.argmax(got)),
            "top1_reference": int(np.argmax(ref)),
        }
        if lossy:
            entry["exact_required"] = False
            entry["reference"] = "host twin"
            entry["tflm_expected"] = entry.pop("expected")
            entry["host_twin_equal"] = None
            entry["mismatches"] = None
            entry["ok"] = False
            entry["error"] = LOSSY_PENDING
    return result
