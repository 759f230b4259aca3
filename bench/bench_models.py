#!/usr/bin/env python3
"""Benchmark of the generated backend, per model and per QEMU twin, in one run.

For each model and twin: instructions per inference (exact: SysTick under -icount), the planned
activation arena against TFLM's recorded arena for the same model, and the image's flash bytes.
On the Cortex-M33 twin the instruction counts are also compared with the anchors of issue 3
(TFLM built from source, -Os, on the same QEMU twin, exact instruction counts).

    .venv/bin/python bench/bench_models.py [--twins qemu_m33 qemu_m4] [--json out.json]

Prints a table and writes JSON (default build/bench/bench_models.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.boards import load_board  # noqa: E402
from generator.compiler.plan import tflm_arena  # noqa: E402
from generator.errors import FitError, SweetspotError  # noqa: E402
from generator.runner import RunRequest, run, write_json  # noqa: E402

ZOO = ROOT.parent / "shared" / "models" / "zoo"
MODELS = {
    "digits_cnn": ROOT / "models" / "digits_cnn_int8.tflite",
    "residual": ROOT / "models" / "residual_int8.tflite",
    "ign_wl_24": ZOO / "ign_wl_24_int8.tflite",
    "stmnist_v1": ZOO / "stmnist_v1_int8.tflite",
    "mobilenet_v1_0.25_96": ZOO / "mobilenet_v1_0.25_96_int8.tflite",
}
TWINS = ("qemu_m0", "qemu_m4", "qemu_m7", "qemu_m33")

# Issue 3's anchors on the Cortex-M33 twin: instructions per inference of TFLM with reference
# kernels and with CMSIS-NN, and TFLM's arena (native 32-bit build).
ANCHORS = {
    "ign_wl_24": (1_556_012, 116_984, 2_176),
    "stmnist_v1": (96_495_936, 4_532_260, 12_240),
    "mobilenet_v1_0.25_96": (730_674_742, 28_764_634, 100_660),
}


def measure(model: str, path: Path, twin: str, build_root: Path) -> dict[str, object]:
    req = RunRequest(board=twin, app="infer", options={"model": str(path), "seed": 1},
                     build_dir=build_root / twin / model, timeout=600)
    doc = run(req)
    size = json.loads((build_root / twin / model / "size.json").read_text())
    flash = next(r["used"] for r in size["regions"] if r["region"] == "flash")
    info = doc["app_info"]
    return {
        "instructions": doc["cycles"]["infer"]["instructions"],
        "arena_bytes": info["arena_bytes"],
        "const_bytes": info["const_bytes"],
        "flash_bytes": flash,
        "outputs_match_tflm": all(c["ok"] for c in doc["checks"].values()),
        "layers": {k: v["instructions"] for k, v in doc["cycles"].items()
                   if k.startswith("layer")},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twins", nargs="+", default=list(TWINS))
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--json", default=str(ROOT / "build" / "bench" / "bench_models.json"))
    args = ap.parse_args()
    build_root = ROOT / "build" / "bench"
    results: dict[str, dict[str, object]] = {}
    for model in args.models:
        path = MODELS[model]
        if not path.is_file():
            print(f"skip {model}: {path} is absent", file=sys.stderr)
            continue
        arena = tflm_arena(path)
        results[model] = {"tflm_arena_wheel": {"total": arena.total, "head": arena.head},
                          "twins": {}}
        for twin in args.twins:
            try:
                r = measure(model, path, twin, build_root)
            except FitError as e:
                r = {"does_not_fit": str(e)}
            except SweetspotError as e:
                r = {"error": str(e)}
            results[model]["twins"][twin] = r  # type: ignore[index]

    print(f"{'model':<22} {'twin':<9} {'instructions':>13} {'flash B':>9} {'arena B':>8} "
          f"{'TFLM arena':>10} {'ratio':>6} {'vs ref':>7} {'vs CMSIS-NN':>11}  TFLM-equal")
    for model, res in results.items():
        anchor = ANCHORS.get(model)
        tflm_arena_b = anchor[2] if anchor else res["tflm_arena_wheel"]["head"]  # type: ignore[index]
        for twin, r in res["twins"].items():  # type: ignore[union-attr]
            if "instructions" not in r:
                print(f"{model:<22} {twin:<9} {r.get('does_not_fit') or r.get('error')}"[:150])
                continue
            ins = r["instructions"]
            ratio = r["arena_bytes"] / tflm_arena_b
            vs = ("", "")
            if anchor and twin == "qemu_m33":
                vs = (f"{ins / anchor[0]:.3f}x", f"{ins / anchor[1]:.3f}x")
            print(f"{model:<22} {twin:<9} {ins:>13,} {r['flash_bytes']:>9,} "
                  f"{r['arena_bytes']:>8,} {tflm_arena_b:>10,} {ratio:>6.2f} {vs[0]:>7} "
                  f"{vs[1]:>11}  {r['outputs_match_tflm']}")
    print("instructions: executed by the emulator on the QEMU twin (-icount), not silicon "
          "cycles. TFLM arena: issue 3's native figure where given, else the PyPI "
          "interpreter's activation plan (head)")
    write_json({"board_clock_hz": {t: load_board(t).clock_hz for t in args.twins},
                "anchors_m33": ANCHORS, "results": results}, Path(args.json))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
