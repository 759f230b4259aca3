"""``infer``: a model compiled to per-layer C tasks, run on inputs compiled into the image.

Options (``scons ... app=infer model=<m.tflite> [input=<x.npy|x.npz>] [seed=<n>] [inputs=<n>]``):

* ``model``: the ``.tflite`` file (int8; float32/uint8 only at the graph edges).
* ``input``: input sets. ``.npy`` for a single-input model, shaped like the input (one run) or
  ``(N, *input_shape)`` (N runs); ``.npz`` with arrays ``input0``, ``input1``, ... (same rule,
  the same N for all). The dtype must be the model's own input dtype (values that convert
  exactly are accepted).
* ``seed`` / ``inputs``: without ``input``, ``inputs`` (default 1) random input sets from
  ``seed`` (default 1234) — see :func:`random_inputs`.

The firmware reports (record names in the manifest's ``reports``): ``overhead`` (ticks of one
counter read pair); for the first run ``layer<i>`` per layer; per run the total ticks (``infer``,
or ``infer[k]`` with several runs) and every output as a VEC of the model's own output dtype
(``output<j>``, or ``output<j>[k]`` with several runs).

For ``board=host`` the build also links ``libssmodel.so`` from the model and kernel sources
(``ss_model_run(in, out)`` etc., see ``templates/model/ss_model.h.j2``), which
:mod:`generator.targets.hostmodel` drives through ctypes.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator import __version__
from generator.boards import Board
from generator.compiler.ir import DTYPE_SIZES, Graph
from generator.compiler.loader import load_model, load_model_structure
from generator.compiler.lowering import KERNEL_HEADERS, LoweredLayer, lower_graph
from generator.compiler.plan import Plan, plan_model, require_fit
from generator.errors import AppError, ModelError
from generator.firmware.apps import MAX_INPUT_SETS, register
from generator.runtime import emit as infer_rt

DEFAULT_SEED = 1234
HOST_LIBRARY = "libssmodel.so"
_INPUT_BYTES_PER_LINE = 32


def kernels_dir() -> Path:
    from generator.firmware import (
        templates_dir,  # late import: emit/__init__ imports the app registry
    )

    return templates_dir() / "kernels"


# ---- inputs --------------------------------------------------------------------------------


def _edge_quant(graph: Graph, tensor: int) -> tuple[float, int] | None:
    """The quantization a float graph input is converted with (its QUANTIZE consumer's)."""
    for op in graph.operators:
        if op.opcode == "QUANTIZE" and op.inputs and op.inputs[0] == tensor:
            q = graph.tensor(op.outputs[0]).quant
            if q is not None:
                return float(q.scale[0]), int(q.zero_point[0])
    return None


def random_inputs(graph: Graph, seed: int, runs: int = 1) -> list[list[np.ndarray]]:
    """Seeded random input sets: int8/uint8 uniform over the whole range; float32 inputs are
    dequantized uniform codes of the QUANTIZE that consumes them plus noise of ±half a step
    (standard normal if the input is not quantized inside the model)."""
    rng = np.random.default_rng(seed)
    out: list[list[np.ndarray]] = []
    for _ in range(runs):
        run = []
        for t in graph.inputs:
            tensor = graph.tensor(t)
            shape = tensor.shape
            if tensor.dtype in ("int8", "uint8"):
                info = np.iinfo(tensor.dtype)
                arr = rng.integers(int(info.min), int(info.max) + 1, size=shape).astype(
                    tensor.dtype
                )
            elif tensor.dtype == "float32":
                q = _edge_quant(graph, t)
                if q is None:
                    arr = rng.standard_normal(shape).astype(np.float32)
                else:
                    scale, zp = q
                    codes = rng.integers(-128, 128, size=shape)
                    noise = rng.uniform(-0.5, 0.5, size=shape)
                    arr = (scale * (codes - zp + noise)).astype(np.float32)
            else:
                raise ModelError(f"model '{graph.name}': cannot make {tensor.dtype} inputs")
            run.append(arr)
        out.append(run)
    return out


def _exact_cast(arr: np.ndarray, dtype: str, what: str) -> np.ndarray:
    if arr.dtype == np.dtype(dtype):
        return arr
    try:
        cast = arr.astype(dtype)
    except (TypeError, ValueError) as e:
        raise AppError(f"{what} has dtype {arr.dtype}; the model wants {dtype} ({e})") from None
    back = cast.astype(arr.dtype)
    if not np.array_equal(back, arr, equal_nan=True):
        raise AppError(
            f"{what} has dtype {arr.dtype} with values that do not convert exactly to the "
            f"model's {dtype}; save the input as {dtype}"
        )
    return cast


def _split_runs(arr: np.ndarray, shape: tuple[int, ...], dtype: str, what: str
                ) -> list[np.ndarray]:
    arr = _exact_cast(np.asarray(arr), dtype, what)
    if tuple(arr.shape) == tuple(shape):
        return [arr]
    if arr.ndim == len(shape) + 1 and tuple(arr.shape[1:]) == tuple(shape) and arr.shape[0] > 0:
        return [arr[i] for i in range(arr.shape[0])]
    if (len(shape) > 1 and shape[0] == 1 and arr.ndim == len(shape)
            and tuple(arr.shape[1:]) == tuple(shape[1:]) and arr.shape[0] > 0):
        # A batch-1 model fed a stack of samples [N, ...]: one run per sample.
        return [arr[i:i + 1] for i in range(arr.shape[0])]
    raise AppError(
        f"{what} has shape {list(arr.shape)}; the model input is {list(shape)} "
        f"(give {list(shape)} for one run or [N, {', '.join(map(str, shape))}] for N runs)"
    )


#: largest input file read (.npy, or the members of an .npz as they declare themselves)
MAX_INPUT_BYTES = 256 << 20


def load_inputs(graph: Graph, path: str | Path) -> list[list[np.ndarray]]:
    """Input sets from a .npy (single-input models) or .npz (input0, input1, ...)."""
    p = Path(path)
    if not p.is_file():
        raise AppError(f"input file '{p}' does not exist; give a .npy or .npz file")
    shapes = [graph.tensor(t).shape for t in graph.inputs]
    dtypes = [graph.tensor(t).dtype for t in graph.inputs]
    limit = MAX_INPUT_BYTES
    try:
        # sizes are bounded before anything is read: the file, an .npz's members as declared,
        # an .npy's header (memory-mapped: a shape larger than the file is refused)
        is_zip = zipfile.is_zipfile(p)
        declared = p.stat().st_size
        if is_zip:
            with zipfile.ZipFile(p) as z:
                declared = max(declared, sum(i.file_size for i in z.infolist()))
        if declared > limit:
            raise AppError(f"input file '{p}' holds more than {limit >> 20} MiB of inputs")
        loaded = np.load(p, allow_pickle=False, mmap_mode=None if is_zip else "r")
        if isinstance(loaded, np.ndarray):
            loaded = np.array(loaded)  # out of the memory map
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise AppError(f"input file '{p}' is not a readable .npy/.npz file: {e}") from None
    if isinstance(loaded, np.ndarray):
        if len(shapes) != 1:
            raise AppError(
                f"model '{graph.name}' has {len(shapes)} inputs; give an .npz with arrays "
                + ", ".join(f"input{i}" for i in range(len(shapes)))
            )
        per_input = [_split_runs(loaded, shapes[0], dtypes[0], f"input file '{p.name}'")]
    else:
        with loaded:
            keys = list(loaded.keys())
            if len(shapes) == 1 and len(keys) == 1:
                arrays = [loaded[keys[0]]]
            else:
                missing = [f"input{i}" for i in range(len(shapes)) if f"input{i}" not in keys]
                if missing:
                    raise AppError(
                        f"input file '{p.name}' lacks {', '.join(missing)}; it has "
                        f"{', '.join(keys) or 'no arrays'}"
                    )
                arrays = [loaded[f"input{i}"] for i in range(len(shapes))]
        per_input = [
            _split_runs(a, s, d, f"input{i} of '{p.name}'")
            for i, (a, s, d) in enumerate(zip(arrays, shapes, dtypes))
        ]
    counts = {len(r) for r in per_input}
    if len(counts) != 1:
        raise AppError(f"input file '{p.name}' has different numbers of runs per input")
    runs = counts.pop()
    if runs > MAX_INPUT_SETS:
        raise AppError(f"input file '{p.name}' has {runs} input sets; an image holds at most "
                       f"{MAX_INPUT_SETS}")
    return [[per_input[i][r] for i in range(len(shapes))] for r in range(runs)]


# ---- the app -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    graph: Graph
    plan: Plan
    layers: list[LoweredLayer]
    runs: list[list[np.ndarray]]
    input_source: dict[str, Any]


def _io(graph: Graph, plan: Plan, indices: tuple[int, ...], prefix: str) -> list[dict[str, Any]]:
    out = []
    for j, t in enumerate(indices):
        tensor = graph.tensor(t)
        out.append({
            "position": j,
            "tensor": t,
            "name": tensor.name,
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "count": tensor.size,
            "elem_size": DTYPE_SIZES[tensor.dtype],
            "nbytes": tensor.nbytes,
            "offset": plan.allocation(t).offset,
            "quant": None if tensor.quant is None else {
                "scale": list(tensor.quant.scale), "zero_point": list(tensor.quant.zero_point)},
            "label": f"{prefix}{j}",
        })
    return out


def run_report_names(runs: int, outputs: int) -> list[dict[str, Any]]:
    if runs == 1:
        return [{"cycles": "infer", "outputs": [f"output{j}" for j in range(outputs)]}]
    return [{"cycles": f"infer[{k}]", "outputs": [f"output{j}[{k}]" for j in range(outputs)]}
            for k in range(runs)]


class InferApp:
    name = "infer"
    description = "a .tflite int8 model compiled to per-layer C tasks (inputs in the image)"
    needs_model = True

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], _Compiled] = {}

    # -- compile (cached per model/options) ----------------------------------------------------

    def _compiled(self, options: dict[str, Any]) -> _Compiled:
        if "model" not in options:
            raise AppError("app 'infer' needs a model: model=<path/to/model.tflite>")
        path = Path(str(options["model"])).expanduser().resolve()
        if not path.is_file():
            raise ModelError(f"model file '{path}' does not exist; check the path")
        data = path.read_bytes()
        model_sha = hashlib.sha256(data).hexdigest()
        in_path = options.get("input")
        in_sha = None
        if in_path:
            ip = Path(str(in_path)).expanduser().resolve()
            in_sha = hashlib.sha256(ip.read_bytes()).hexdigest() if ip.is_file() else None
        seed = int(options.get("seed", DEFAULT_SEED))
        count = int(options.get("inputs", 1))
        key = (str(path), model_sha, str(in_path), in_sha, seed, count)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        graph = load_model(path)
        plan = plan_model(graph)
        layers = lower_graph(graph, plan)
        if in_path:
            runs = load_inputs(graph, str(in_path))
            source: dict[str, Any] = {"kind": "file", "path": str(Path(str(in_path)).resolve()),
                                      "sha256": in_sha}
        else:
            if count < 1:
                raise AppError(f"inputs={count}: the number of random input sets must be >= 1")
            runs = random_inputs(graph, seed, count)
            source = {"kind": "random", "seed": seed, "count": count}
        compiled = _Compiled(graph, plan, layers, runs, source)
        self._cache = {key: compiled}
        return compiled

    # -- App protocol --------------------------------------------------------------------------

    def context(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        c = self._compiled(options)
        g, plan = c.graph, c.plan
        arrays = [a for layer in c.layers for a in layer.arrays]
        const_bytes = sum(a.nbytes for a in arrays)
        if not board.is_host:
            require_fit(plan, board.flash.length, board.ram.length, board=board.name)
        inputs = _io(g, plan, g.inputs, "input")
        outputs = _io(g, plan, g.outputs, "output")
        runs = []
        for run in c.runs:
            raw = b"".join(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
                           for a in run)
            vals = [str(b) for b in raw]
            runs.append([", ".join(vals[i:i + _INPUT_BYTES_PER_LINE]) + ","
                         for i in range(0, len(vals), _INPUT_BYTES_PER_LINE)])
        layers = [
            {
                "index": layer.index,
                "opcode": layer.opcode,
                "summary": layer.summary,
                "params": layer.params,
                "body": layer.body,
                "report_name": f"layer{layer.index}",
            }
            for layer in c.layers
        ]
        src = c.input_source
        ctx = {
            "model_sha256": g.sha256,
            "model": {"name": g.name, "sha256": g.sha256},
            "layers": layers,
            "arrays": arrays,
            "const_bytes": const_bytes,
            "arena_bytes": max(plan.arena_bytes, 16),
            "inputs": inputs,
            "outputs": outputs,
            "input_bytes": sum(t["nbytes"] for t in inputs),
            "output_bytes": sum(t["nbytes"] for t in outputs),
            "runs": len(runs),
            "input_runs": runs,
            "input_source": (f"random, seed {src['seed']}" if src["kind"] == "random"
                             else f"file {Path(src['path']).name} (sha256 {src['sha256']})"),
            "run_reports": run_report_names(len(runs), len(outputs)),
        }
        if infer_rt.requested(options):  # the intermittent runtime (generator/emit/infer_rt.py)
            ctx.update(infer_rt.context(board, g, plan, len(runs), options))
        return ctx

    def templates(self, board: Board, options: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            ("model/ss_model.h.j2", "model/ss_model.h"),
            ("model/ss_model.c.j2", "model/ss_model.c"),
            ("model/ss_weights.h.j2", "model/ss_weights.h"),
            ("model/ss_weights.c.j2", "model/ss_weights.c"),
            ("apps/infer/ss_inputs.h.j2", "ss_inputs.h"),
            ("apps/infer/ss_inputs.c.j2", "ss_inputs.c"),
            *(infer_rt.templates() if infer_rt.requested(options)
              else [("apps/infer/main.c.j2", "main.c")]),
        ]

    def kernel_files(self, options: dict[str, Any]) -> list[str]:
        c = self._compiled(options)
        used = sorted({k for layer in c.layers for k in layer.kernels})
        return list(KERNEL_HEADERS) + used

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        files: dict[str, bytes] = {}
        kdir = kernels_dir()
        for name in self.kernel_files(options):
            text = (kdir / name).read_text(encoding="utf-8")
            banner = (f"/* copied by sweetspot {__version__} from templates/kernels/{name} "
                      "- do not edit */\n")
            files[f"kernels/{name}"] = (banner + text).encode("utf-8")
        return files

    def check(self, app_info: dict[str, Any], outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """Compare the outputs a run reported with the TFLM interpreter (the independent
        reference) on the same inputs, rebuilt from the manifest. One entry per reported output
        name: ``{"ok", "reference": "tflm", "mismatches": <differing elements>, "expected"}``."""
        from tflite_micro import runtime  # the reference; imported only when checking

        model_path = Path(app_info["model"]["path"])
        if not model_path.is_file():
            return {"tflm": {"ok": False, "error": f"model {model_path} is gone; rebuild"}}
        # only the inputs are needed (the TFLM backend's check comes here too, for models the
        # generated backend cannot compile)
        graph = load_model_structure(model_path)
        if graph.sha256 != app_info["model"]["sha256"]:
            return {"tflm": {"ok": False,
                             "error": f"model {model_path} changed since the build; rebuild"}}
        src = app_info["input_source"]
        if src["kind"] == "random":
            runs = random_inputs(graph, int(src["seed"]), int(src["count"]))
        else:
            runs = load_inputs(graph, src["path"])
        interpreter = runtime.Interpreter.from_file(str(model_path))
        result: dict[str, Any] = {}
        for run, names in zip(runs, app_info["reports"]["runs"]):
            for i, a in enumerate(run):
                interpreter.set_input(a, i)
            interpreter.invoke()
            for j, name in enumerate(names["outputs"]):
                ref = np.asarray(interpreter.get_output(j)).reshape(-1)
                got = outputs.get(name)
                if got is None:
                    result[name] = {"ok": False, "reference": "tflm", "mismatches": None,
                                    "error": "not reported"}
                    continue
                got = np.asarray(got).reshape(-1)
                same_shape = got.shape == ref.shape and got.dtype == ref.dtype
                ok = same_shape and got.tobytes() == ref.tobytes()
                differ = (int(np.count_nonzero(got.view(np.uint8) != ref.view(np.uint8)))
                          if same_shape else None)
                result[name] = {"ok": bool(ok), "reference": "tflm", "mismatches": differ,
                                "expected": ref.tolist()}
        if app_info.get("runtime"):
            result = infer_rt.annotate_check(app_info, result, outputs)
        return result

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        c = self._compiled(options)
        g, plan = c.graph, c.plan
        strip = ("offset", "label", "position")
        info: dict[str, Any] = {
            "model": {"path": str(Path(str(options["model"])).resolve()), "name": g.name,
                      "sha256": g.sha256},
            "input_source": c.input_source,
            "runs": ctx["runs"],
            "inputs": [{k: v for k, v in t.items() if k not in strip} for t in ctx["inputs"]],
            "outputs": [{k: v for k, v in t.items() if k not in strip} for t in ctx["outputs"]],
            "input_bytes": ctx["input_bytes"],
            "output_bytes": ctx["output_bytes"],
            "layers": [
                {"index": layer.index, "opcode": layer.opcode, "name": f"layer{layer.index}",
                 "summary": layer.summary,
                 "output_shape": list(g.tensor(g.operators[layer.index].outputs[0]).shape),
                 "macs": plan.layers[layer.index].macs}
                for layer in c.layers
            ],
            "reports": {
                "overhead": "overhead",
                "layers": [f"layer{layer.index}" for layer in c.layers],
                "runs": ctx["run_reports"],
            },
            "arena_bytes": plan.arena_bytes,
            "const_bytes": ctx["const_bytes"],
            "total_macs": plan.total_macs,
        }
        if board.is_host:
            sources = sorted(
                [f"kernels/{k}" for k in self.kernel_files(options) if k.endswith(".c")]
                + ["model/ss_model.c", "model/ss_weights.c"]
            )
            info["host_library"] = {"file": HOST_LIBRARY, "sources": sources}
        if infer_rt.requested(options):
            info["runtime"] = infer_rt.manifest(board, g, plan, ctx["runs"], options)
        return info


register(InferApp())
