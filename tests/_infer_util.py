"""Helpers for the model-compiler tests: build a model for board=host once, run many inputs
through its shared library, and compare with the TFLM interpreter (the independent reference)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
from tflite_micro import runtime

from generator.compiler.emit import random_inputs
from generator.compiler.ir import Graph
from generator.compiler.loader import load_model
from generator.targets.hostmodel import HostModel, build_host_model


def edge_quant(graph: Graph, t: int) -> tuple[float, int] | None:
    for op in graph.operators:
        if op.opcode == "QUANTIZE" and op.inputs and op.inputs[0] == t:
            q = graph.tensor(op.outputs[0]).quant
            if q is not None:
                return float(q.scale[0]), int(q.zero_point[0])
    return None


def varied_inputs(graph: Graph, seed: int, count: int) -> list[list[np.ndarray]]:
    """Input sets that exercise more than uniform noise: uniform, narrow around the zero point,
    constant extremes, sparse spikes, and for float inputs exact rounding ties and values far
    outside the quantized range."""
    rng = np.random.default_rng(seed)
    uniform = random_inputs(graph, seed, count)
    runs = []
    for k in range(count):
        mode = k % 5
        run = []
        for j, t in enumerate(graph.inputs):
            tensor = graph.tensor(t)
            shape = tensor.shape
            if mode == 0:
                run.append(uniform[k][j])
                continue
            if tensor.dtype in ("int8", "uint8"):
                info = np.iinfo(tensor.dtype)
                lo, hi = int(info.min), int(info.max)
                zp = int(tensor.quant.zero_point[0]) if tensor.quant else 0
                if mode == 1:
                    a = zp + rng.integers(-12, 13, size=shape)
                elif mode == 2:
                    a = np.full(shape, lo if k % 2 else hi)
                elif mode == 3:
                    a = np.full(shape, zp)
                    mask = rng.random(shape) < 0.1
                    a[mask] = rng.choice([lo, hi], size=int(mask.sum()))
                else:
                    a = rng.integers(lo, hi + 1, size=shape)
                run.append(np.clip(a, lo, hi).astype(tensor.dtype))
            else:
                q = edge_quant(graph, t) or (0.05, 0)
                scale, zp = q
                codes = rng.integers(-140, 141, size=shape)
                if mode == 1:  # exact ties: (n + 0.5) * scale
                    a = (codes - zp + 0.5) * np.float32(scale)
                elif mode == 2:  # far out of range, both signs, and zeros
                    a = rng.choice([-1e6, -300.0, -0.0, 0.0, 300.0, 1e6], size=shape) * scale
                elif mode == 3:
                    a = (codes - zp) * np.float32(scale)
                else:
                    a = rng.normal(0.0, 60.0 * scale, size=shape)
                run.append(np.asarray(a, dtype=np.float32))
        runs.append(run)
    return runs


def compile_variant(build_dir: Path, defines: list[str], name: str) -> Path:
    """Compile a host build's model and kernel sources again into another shared library with
    extra preprocessor definitions (e.g. SS_SIMD=0, the scalar reference loops)."""
    info = json.loads((build_dir / "sweetspot.json").read_text())["app_info"]
    src = build_dir / "src"
    out = build_dir / name
    cmd = ["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
           f"-I{src}", *[f"-D{d}" for d in defines],
           *[str(src / s) for s in info["host_library"]["sources"]], "-o", str(out), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    return out


def compare_model(path: Path, build_dir: Path, seed: int, count: int,
                  labels: list[str] | None = None) -> tuple[int, list[str]]:
    """Build ``path`` for the host, run ``count`` varied input sets through it and through TFLM;
    returns (comparisons made, descriptions of mismatches)."""
    model = build_host_model(path, build_dir)
    return compare_loaded(model, path, seed, count, labels)


def compare_loaded(model: HostModel, path: Path, seed: int, count: int,
                   labels: list[str] | None = None) -> tuple[int, list[str]]:
    graph = load_model(path)
    runs = varied_inputs(graph, seed, count)
    interpreter = runtime.Interpreter.from_file(str(path))
    n_out = len(graph.outputs)
    mismatches: list[str] = []
    compared = 0
    for k, run in enumerate(runs):
        ours = model.run(run)
        for i, a in enumerate(run):
            interpreter.set_input(a, i)
        interpreter.invoke()
        for j in range(n_out):
            ref = np.asarray(interpreter.get_output(j))
            compared += 1
            if ours[j].tobytes() != ref.tobytes() or ours[j].shape != ref.shape:
                label = labels[j] if labels else f"output {j}"
                diff = np.flatnonzero(ours[j].reshape(-1).view(np.uint8)
                                      != ref.reshape(-1).view(np.uint8))
                mismatches.append(
                    f"{label}, input set {k} (mode {k % 5}): {diff.size} bytes differ, first at "
                    f"{diff[:5].tolist()}; ours {ours[j].reshape(-1)[:8].tolist()} "
                    f"tflm {ref.reshape(-1)[:8].tolist()}"
                )
    return compared, mismatches
