"""``tflm``: the ``infer`` app with TensorFlow Lite Micro's interpreter as the inference backend.

``scons board=<b> app=infer backend=tflm model=<m.tflite> [tflm_root=<checkout>]
[tflm_kernels=reference|cmsis_nn] [tflm_arena=auto|host|<bytes>] [tflm_dump=1]`` (or ``app=tflm``)
builds it;
the inputs (``input=``, ``seed=``, ``inputs=``), the reported records (``overhead``,
``layer<i>``, ``infer``/``infer[k]``, ``output<j>``/``output<j>[k]``) and the manifest fields are
the generated backend's (see :mod:`generator.compiler.emit`), so the same host-side check compares
the
outputs with the TFLM interpreter from the tflite-micro wheel. ``layer<i>`` ticks come through
TFLM's profiler interface. The manifest adds ``backend``, ``tflm`` (tree, kernels, arena: reserved,
measured, margin, the host recorder's figures) and ``planned_arena_bytes`` (the generated backend's
plan for the same model, for comparison).

``tflm_dump=1`` builds a diagnostic image instead: the first input set runs once with
``preserve_all_tensors`` and every operator's output tensor is reported as ``t<index>``;
:func:`compare_tensors` compares them with the wheel's interpreter, operator by operator.

The TFLM tree is :mod:`generator.tflm.tree`, the arena :mod:`generator.tflm.arena` (measured
by :mod:`generator.tflm.probe`), the library build :mod:`generator.build.tflm_library`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator.boards import Board
from generator.compiler.emit import DEFAULT_SEED, load_inputs, random_inputs, run_report_names
from generator.compiler.ir import DTYPE_SIZES, Graph
from generator.compiler.loader import load_model, load_model_structure
from generator.compiler.plan import plan_model
from generator.errors import AppError, FitError, ModelError, SweetspotError
from generator.firmware.apps import get_app, register
from generator.tflm import arena as tflm_arena
from generator.tflm import tree as tflm

_MODEL_BYTES_PER_LINE = 24
_INPUT_BYTES_PER_LINE = 32


@dataclass(frozen=True)
class _Prepared:
    path: Path
    data: bytes
    graph: Graph
    planned_arena: int | None
    runs: list[list[np.ndarray]]
    input_source: dict[str, Any]
    tree: tflm.TflmTree
    kernels: str
    arena: tflm_arena.ArenaChoice
    resolver_calls: list[str]
    dump: bool

    @property
    def image_arena(self) -> int:
        """The arena the image reserves. With tflm_dump=1 every activation tensor stays alive
        and TFLM keeps more per-tensor records in the tail: the probe's generous arena plus
        twice all activations (a diagnostic image for the twins, not sized for a real board)."""
        if not self.dump:
            return self.arena.bytes
        extra = sum(-(-t.nbytes // tflm.ARENA_ALIGN) * tflm.ARENA_ALIGN
                    for t in self.graph.tensors if t.data is None)
        return max(self.arena.bytes, self.arena.probe_arena or 0) + 2 * extra + 16 * 1024

    def dump_tensors(self) -> list[dict[str, Any]]:
        seen: list[int] = []
        for op in self.graph.operators:
            seen += [t for t in op.outputs if t not in seen]
        return [{"index": t, "dtype": self.graph.tensor(t).dtype,
                 "count": self.graph.tensor(t).size,
                 "elem_size": DTYPE_SIZES[self.graph.tensor(t).dtype],
                 "operator": next(op.index for op in self.graph.operators if t in op.outputs)}
                for t in seen]


def _io(graph: Graph, indices: tuple[int, ...]) -> list[dict[str, Any]]:
    out = []
    for t in indices:
        tensor = graph.tensor(t)
        out.append({
            "tensor": t, "name": tensor.name, "dtype": tensor.dtype,
            "shape": list(tensor.shape), "count": tensor.size,
            "elem_size": DTYPE_SIZES[tensor.dtype], "nbytes": tensor.nbytes,
            "quant": None if tensor.quant is None else {
                "scale": list(tensor.quant.scale), "zero_point": list(tensor.quant.zero_point)},
        })
    return out


def _byte_lines(data: bytes, per_line: int, fmt: str) -> list[str]:
    return [", ".join(fmt.format(b) for b in data[i:i + per_line]) + ","
            for i in range(0, len(data), per_line)]


def _generated_plan_bytes(path: Path) -> int | None:
    """The generated backend's arena plan for the same model (for comparison), or None where
    the generated backend cannot compile the model (an operator it lacks, a float model)."""
    try:
        return plan_model(load_model(path)).arena_bytes
    except SweetspotError:
        return None


class TflmApp:
    name = "tflm"
    description = "infer with the TFLM interpreter from your tflite-micro checkout (backend=tflm)"
    needs_model = True

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], _Prepared] = {}

    def _prepared(self, board: Board, options: dict[str, Any]) -> _Prepared:
        if "model" not in options:
            raise AppError("backend tflm needs a model: model=<path/to/model.tflite>")
        path = Path(str(options["model"])).expanduser().resolve()
        if not path.is_file():
            raise ModelError(f"model file '{path}' does not exist; check the path")
        kernels = str(options.get("tflm_kernels", "reference"))
        tflm.check_kernels(board, kernels)
        root = tflm.locate_checkout(options)
        data = path.read_bytes()
        in_path = options.get("input")
        in_sha = None
        if in_path:
            ip = Path(str(in_path)).expanduser().resolve()
            in_sha = hashlib.sha256(ip.read_bytes()).hexdigest() if ip.is_file() else None
        key = (board.name, str(path), hashlib.sha256(data).hexdigest(), str(in_path), in_sha,
               str(root), kernels, str(options.get("tflm_arena", "auto")),
               str(options.get("tflm_dump", "0")),
               int(options.get("seed", DEFAULT_SEED)), int(options.get("inputs", 1)))
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        # TFLM runs every operator of the file with its own kernels: the generated backend's
        # operator list does not gate it (the resolver comes from the model's own operators).
        graph = load_model_structure(path)
        planned = _generated_plan_bytes(path)
        if in_path:
            runs = load_inputs(graph, str(in_path))
            source: dict[str, Any] = {"kind": "file", "path": str(Path(str(in_path)).resolve()),
                                      "sha256": in_sha}
        else:
            seed, count = int(options.get("seed", DEFAULT_SEED)), int(options.get("inputs", 1))
            if count < 1:
                raise AppError(f"inputs={count}: the number of random input sets must be >= 1")
            runs = random_inputs(graph, seed, count)
            source = {"kind": "random", "seed": seed, "count": count}
        tree = tflm.ensure_tree(root, kernels)
        calls = tflm.resolver_calls([op.opcode for op in graph.operators], tree)
        arena = tflm_arena.arena_size(board, path, graph.sha256, tree, options,
                                      tensors=len(graph.tensors))
        if not board.is_host:
            flash_need = len(data) + sum(sum(a.nbytes for a in run) for run in runs)
            if flash_need > board.flash.length:
                raise FitError(f"board '{board.name}': the model and inputs need {flash_need:,} B "
                               f"of flash (before code), the board has {board.flash.length:,} B")
        prepared = _Prepared(path, data, graph, planned, runs, source, tree, kernels, arena,
                             calls, str(options.get("tflm_dump", "0")) == "1")
        if not board.is_host and prepared.image_arena > board.ram.length:
            raise FitError(f"board '{board.name}': the TFLM arena needs "
                           f"{prepared.image_arena:,} B, the board has {board.ram.length:,} B "
                           "of RAM")
        self._cache = {key: prepared}
        return prepared

    # -- App protocol --------------------------------------------------------------------------

    def context(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        p = self._prepared(board, options)
        g = p.graph
        inputs = _io(g, g.inputs)
        outputs = _io(g, g.outputs)
        runs = []
        for run in p.runs:
            raw = b"".join(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
                           for a in run)
            runs.append(_byte_lines(raw, _INPUT_BYTES_PER_LINE, "{}"))
        src = p.input_source
        return {
            "model_sha256": g.sha256,
            "model": {"name": g.name, "sha256": g.sha256},
            "model_bytes": len(p.data),
            "model_lines": _byte_lines(p.data, _MODEL_BYTES_PER_LINE, "0x{:02x}"),
            "layers": [{"index": op.index, "opcode": op.opcode, "report_name": f"layer{op.index}"}
                       for op in g.operators],
            "inputs": inputs,
            "outputs": outputs,
            "input_bytes": sum(t["nbytes"] for t in inputs),
            "runs": len(runs),
            "input_runs": runs,
            "input_source": (f"random, seed {src['seed']}" if src["kind"] == "random"
                             else f"file {Path(src['path']).name} (sha256 {src['sha256']})"),
            "run_reports": run_report_names(len(runs), len(outputs)),
            "resolver_calls": p.resolver_calls,
            "arena_bytes": p.image_arena,
            "kernels": p.kernels,
            "fingerprint": p.tree.fingerprint,
            "probe": str(options.get("tflm_probe", "0")) == "1",
            "dump": p.dump,
            "dump_tensors": p.dump_tensors() if p.dump else [],
        }

    def templates(self, board: Board, options: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            ("tflm/ss_tflm_model.h.j2", "tflm/ss_tflm_model.h"),
            ("tflm/ss_tflm_model.c.j2", "tflm/ss_tflm_model.c"),
            ("tflm/ss_inputs.h.j2", "ss_inputs.h"),
            ("tflm/ss_inputs.c.j2", "ss_inputs.c"),
            ("tflm/ss_tflm_main.cc.j2", "tflm/ss_tflm_main.cc"),
            ("tflm/ss_tflm_port.cc.j2", "tflm/ss_tflm_port.cc"),
        ]

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        return {}

    def check(self, app_info: dict[str, Any], outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """The generated backend's check: outputs against the tflite-micro wheel's interpreter
        on the same inputs (the manifests share the fields it reads)."""
        return dict(get_app("infer").check(app_info, outputs))  # type: ignore[attr-defined]

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        p = self._prepared(board, options)
        g = p.graph
        return {
            "backend": "tflm",
            "model": {"path": str(p.path), "name": g.name, "sha256": g.sha256},
            "input_source": p.input_source,
            "runs": ctx["runs"],
            "inputs": ctx["inputs"],
            "outputs": ctx["outputs"],
            "input_bytes": ctx["input_bytes"],
            "output_bytes": sum(t["nbytes"] for t in ctx["outputs"]),
            "layers": [{"index": op.index, "opcode": op.opcode, "name": f"layer{op.index}"}
                       for op in g.operators],
            "reports": {
                "overhead": "overhead",
                "layers": [] if ctx["probe"] else [f"layer{op.index}" for op in g.operators],
                "runs": ctx["run_reports"],
                "metrics": ["arena_bytes", "arena_used_bytes"],
                "tensors": [f"t{t['index']}" for t in ctx["dump_tensors"]],
            },
            "arena_bytes": p.image_arena,
            "planned_arena_bytes": p.planned_arena,
            "tflm": {
                "kernels": p.kernels,
                "tree": p.tree.describe(),
                "arena": p.arena.describe(),
                "resolver": p.resolver_calls,
                "probe": ctx["probe"],
                "dump": [{k: t[k] for k in ("index", "operator", "dtype", "count")}
                         for t in ctx["dump_tensors"]],
            },
        }


register(TflmApp())


def compare_tensors(app_info: dict[str, Any], vectors: dict[str, np.ndarray]
                    ) -> list[dict[str, Any]]:
    """Per operator: the output tensors a ``tflm_dump=1`` image reported for the first input set
    against the wheel's interpreter with ``kPreserveAllTensors`` (the independent reference).
    One row per operator: index, opcode, bytes compared, bytes that differ, the largest
    difference in quantized steps."""
    from tflite_micro import runtime

    path = Path(app_info["model"]["path"])
    graph = load_model_structure(path)
    src = app_info["input_source"]
    runs = (random_inputs(graph, int(src["seed"]), int(src["count"])) if src["kind"] == "random"
            else load_inputs(graph, src["path"]))
    interp = runtime.Interpreter.from_file(
        str(path), intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for i, a in enumerate(runs[0]):
        interp.set_input(a, i)
    interp.invoke()
    rows: dict[int, dict[str, Any]] = {}
    for t in app_info["tflm"]["dump"]:
        op = graph.operators[int(t["operator"])]
        row = rows.setdefault(op.index, {"index": op.index, "opcode": op.opcode, "bytes": 0,
                                         "differ": 0, "max_step": 0, "missing": 0})
        ref = np.asarray(interp.GetTensor(int(t["index"]), 0)["tensor_data"]).reshape(-1)
        got = vectors.get(f"t{t['index']}")
        if got is None or got.size != ref.size:
            row["missing"] += 1
            continue
        got = np.asarray(got).reshape(-1).astype(ref.dtype)
        row["bytes"] += ref.nbytes
        row["differ"] += int(np.count_nonzero(got.view(np.uint8) != ref.view(np.uint8)))
        if ref.dtype.kind in "iu":
            step = int(np.max(np.abs(got.astype(np.int64) - ref.astype(np.int64)), initial=0))
            row["max_step"] = max(row["max_step"], step)
    return [rows[k] for k in sorted(rows)]
