#!/usr/bin/env python3
"""Both inference backends side by side, per model and QEMU twin, in one run: the generated
per-layer code, TFLM with reference kernels and TFLM with CMSIS-NN (M4/M7/M33), all built from the
same board file and optimisation level.

Per configuration: instructions per inference (exact: SysTick under -icount), peak RAM (the
generated backend's planned arena; TFLM's reserved arena = measured + margin, and what it used), the
RAM region's total use (arena, stack, .data/.bss), flash bytes, and whether the outputs are
byte-equal with the TFLM interpreter of the tflite-micro wheel. With ``--per-op``, CMSIS-NN builds
also dump every operator's output tensor and compare them with the wheel's interpreter.

    .venv/bin/python bench/bench_backends.py [--tflm-root DIR] [--twins qemu_m33 qemu_m4 ...] \\
        [--models stmnist_v1 path/to/model.tflite zoo project ...] [--opt O2 Os] [--per-op] \\
        [--json out.json]

The tflite-micro checkout is --tflm-root, else $SWEETSPOT_TFLM_ROOT, else ../shared/tflite-micro
beside the project (see generator/tflm/tree.py). --models takes names from the table below, paths
to .tflite files, ``zoo`` (every model in ../shared/models/zoo) and ``project`` (models/*.tflite).
Every --opt level builds both backends with the same board flags and that -O level. The first
TFLM build per (twin, kernel set, -O level) compiles the library (minutes); later ones take it
from the backend's cache. Writes JSON (default build/bench/bench_backends.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.boards import load_board  # noqa: E402
from generator.errors import FitError, SweetspotError  # noqa: E402
from generator.runner import RunRequest, run, write_json  # noqa: E402
from generator.tflm import tree as tflm  # noqa: E402
from generator.tflm.app import compare_tensors  # noqa: E402

ZOO = ROOT.parent / "shared" / "models" / "zoo"
SHARED_TFLM = ROOT.parent / "shared" / "tflite-micro"
MODELS = {
    "ign_wl_24": ZOO / "ign_wl_24_int8.tflite",
    "stmnist_v1": ZOO / "stmnist_v1_int8.tflite",
    "mobilenet_v1_0.25_96": ZOO / "mobilenet_v1_0.25_96_int8.tflite",
    "digits_cnn": ROOT / "models" / "digits_cnn_int8.tflite",
}
TWINS = ("qemu_m33",)
CONFIGS = ("generated", "tflm_reference", "tflm_cmsis_nn")


def checkout(given: str | None) -> Path:
    """--tflm-root, else $SWEETSPOT_TFLM_ROOT, else ../shared/tflite-micro when it exists."""
    if given:
        return tflm.locate_checkout({"tflm_root": given})
    if not os.environ.get(tflm.ENV_ROOT) and SHARED_TFLM.is_dir():
        return tflm.locate_checkout({"tflm_root": str(SHARED_TFLM)})
    return tflm.locate_checkout({})


def model_paths(specs: list[str]) -> dict[str, Path]:
    """Names from MODELS, paths to .tflite files, ``zoo`` and ``project`` → {name: path}."""
    out: dict[str, Path] = {}
    for spec in specs:
        if spec == "zoo":
            found = sorted(ZOO.glob("*.tflite"))
        elif spec == "project":
            found = sorted((ROOT / "models").glob("*.tflite"))
        elif spec in MODELS:
            out[spec] = MODELS[spec]
            continue
        elif spec.endswith(".tflite") or Path(spec).is_file():
            found = [Path(spec).expanduser().resolve()]
            if not found[0].is_file():
                raise SystemExit(f"bench_backends: model file {spec} does not exist")
        else:
            raise SystemExit(f"bench_backends: model '{spec}' is neither a name ("
                             f"{', '.join(MODELS)}), a .tflite path, 'zoo' nor 'project'")
        for path in found:
            out[path.stem.removesuffix("_int8")] = path
    return out


def _options(config: str, path: Path, root: Path, opt: str) -> tuple[str, dict[str, Any]]:
    opts: dict[str, Any] = {"model": str(path), "seed": 1, "opt": opt}
    if config == "generated":
        return "infer", opts
    opts.update({"backend": "tflm", "tflm_root": str(root),
                 "tflm_kernels": config.removeprefix("tflm_")})
    return "infer", opts


def measure(config: str, model: str, path: Path, twin: str, root: Path, opt: str,
            build_root: Path, per_op: bool) -> dict[str, Any]:
    app, opts = _options(config, path, root, opt)
    bdir = build_root / twin / f"{model}-{config}-{opt}"
    doc = run(RunRequest(board=twin, app=app, options=opts, build_dir=bdir, timeout=900))
    size = json.loads((bdir / "size.json").read_text())
    regions = {r["region"]: r["used"] for r in size["regions"]}
    info = doc["app_info"]
    r: dict[str, Any] = {
        "instructions": doc["cycles"]["infer"]["instructions"],
        "flash_bytes": regions.get("flash"),
        "ram_bytes": regions.get("ram"),
        "outputs_match_tflm": bool(doc["checks"]) and all(c["ok"] for c in doc["checks"].values()),
        "layers": {k: v["instructions"] for k, v in doc["cycles"].items()
                   if k.startswith("layer")},
    }
    if config == "generated":
        r["arena_bytes"] = info["arena_bytes"]
    else:
        arena = info["tflm"]["arena"]
        r["arena_bytes"] = info["arena_bytes"]
        r["arena_used_bytes"] = doc["metrics"].get("arena_used_bytes")
        r["arena"] = arena
        r["planned_arena_bytes"] = info["planned_arena_bytes"]
        r["tflm_fingerprint"] = info["tflm"]["tree"]["fingerprint"]
        if per_op and config == "tflm_cmsis_nn":
            dump = run(RunRequest(board=twin, app=app, options={**opts, "tflm_dump": "1"},
                                  build_dir=bdir.with_name(bdir.name + "-dump"), timeout=900))
            import numpy as np

            vectors = {k: np.asarray(v["values"], dtype=v["dtype"])
                       for k, v in dump["outputs"].items()}
            r["per_op"] = compare_tensors(dump["app_info"], vectors)
    return r


def _fmt(v: Any, width: int) -> str:
    return f"{v:>{width},}" if isinstance(v, int) else f"{'-' if v is None else v:>{width}}"


def print_table(opt: str, results: dict[str, dict[str, dict[str, Any]]]) -> None:
    head = (f"{'model':<26} {'twin':<8} {'backend':<15} {'instructions':>13} {'vs gen':>7} "
            f"{'arena B':>8} {'used B':>7} {'RAM B':>8} {'flash B':>9}  equal")
    print(f"-{opt}")
    print(head)
    print("-" * len(head))
    for model, twins in results.items():
        for twin, configs in twins.items():
            gen = configs.get("generated", {}).get("instructions")
            for config, r in configs.items():
                if "instructions" not in r:
                    msg = r.get("does_not_fit") or r.get("error") or ""
                    print(f"{model:<26} {twin:<8} {config:<15} {msg.splitlines()[0][:90]}")
                    continue
                ratio = f"{r['instructions'] / gen:.2f}x" if gen else "-"
                print(f"{model:<26} {twin:<8} {config:<15} {r['instructions']:>13,} {ratio:>7} "
                      f"{_fmt(r['arena_bytes'], 8)} {_fmt(r.get('arena_used_bytes'), 7)} "
                      f"{_fmt(r['ram_bytes'], 8)} {_fmt(r['flash_bytes'], 9)}  "
                      f"{r['outputs_match_tflm']}")
                for row in r.get("per_op", []):
                    if row["differ"] or row["missing"]:
                        print(f"{'':<36} op {row['index']} {row['opcode']}: {row['differ']} of "
                              f"{row['bytes']} bytes differ (max {row['max_step']} steps)")
    print()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twins", nargs="+", default=list(TWINS))
    ap.add_argument("--models", nargs="+", default=list(MODELS)[:3],
                    help="names (%(default)s, digits_cnn), .tflite paths, zoo, project")
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    ap.add_argument("--opt", nargs="+", default=["O2"], choices=("O2", "Os", "O3"),
                    help="-O level(s), the same for both backends (default O2)")
    ap.add_argument("--tflm-root", metavar="DIR",
                    help="tflite-micro checkout (default: $SWEETSPOT_TFLM_ROOT, else "
                    "../shared/tflite-micro)")
    ap.add_argument("--per-op", action="store_true",
                    help="CMSIS-NN: compare every operator's output with the interpreter")
    ap.add_argument("--json", default=str(ROOT / "build" / "bench" / "bench_backends.json"))
    args = ap.parse_args()
    try:
        root = checkout(args.tflm_root)
    except tflm.TflmSetupError as e:
        print(f"bench_backends: {e}", file=sys.stderr)
        return 2
    models = model_paths(args.models)
    build_root = ROOT / "build" / "bench" / "backends"
    # results[opt][model][twin][config]
    results: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for opt in args.opt:
        for model, path in models.items():
            if not path.is_file():
                print(f"skip {model}: {path} is absent", file=sys.stderr)
                continue
            for twin in args.twins:
                core = load_board(twin).core
                for config in args.configs:
                    if config == "tflm_cmsis_nn" and core not in tflm.CMSIS_NN_CORES:
                        continue
                    print(f"... -{opt} {model} on {twin}: {config}", file=sys.stderr, flush=True)
                    try:
                        r = measure(config, model, path, twin, root, opt, build_root,
                                    args.per_op)
                    except FitError as e:
                        r = {"does_not_fit": str(e)}
                    except SweetspotError as e:
                        r = {"error": str(e)}
                    results.setdefault(opt, {}).setdefault(model, {}).setdefault(
                        twin, {})[config] = r

    for opt, by_model in results.items():
        print_table(opt, by_model)
    print(f"arena B: generated = planned activation arena; TFLM = reserved (measured on the twin "
          f"+ {tflm.ARENA_MARGIN}); used B = arena_used_bytes(). RAM B / flash B: the image's "
          "regions. vs gen: instructions relative to the generated backend at the same -O. "
          "instructions: executed by the emulator on the QEMU twin (-icount), not silicon "
          f"cycles. tflite-micro: {root}")
    write_json({"opt": args.opt, "tflm_checkout": str(root), "results": results},
               Path(args.json))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
