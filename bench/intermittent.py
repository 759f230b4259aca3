"""Intermittent-runtime figures in one run: energy per layer and per inference at Q0..Q4 (and the
saving of each QL against Q0), output deviation from the fault-free run, commit overhead as a
share of layer instructions, power-failure campaign sizes and times, injected flip rates.

    .venv/bin/python bench/intermittent.py [--board qemu_m33] [--model <zoo model>]
        [--points 1000] [--json out.json]

Numbers are instruction counts on a QEMU twin (deterministic; executed by the emulator, not
silicon cycles), turned into energy with the research's model (generator/runtime/energy.py), the
board's pJ/cycle applied per instruction. Each lossy run is checked against the host twin (same
C, injector and seed): "twin-equal"."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generator.runtime.campaign import build, power_fail_campaign, run_configured  # noqa: E402
from generator.runtime.layout import SimConfig, commit_overhead, decode_stats  # noqa: E402
from generator.runtime.quality import QUALITY_LEVELS  # noqa: E402

ZOO = ROOT.parent / "shared" / "models" / "zoo"


def ql_sweep(board: str, model: Path, seed: int, inputs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for q in QUALITY_LEVELS:
        b, art = build(board, "infer", {"model": str(model), "ql": q.name, "inject": "on",
                                        "seed": seed, "inputs": inputs},
                       ROOT / "build" / board / f"bench-rt-{model.stem}-{q.name}")
        doc = run_configured(b, "infer", art, SimConfig(), timeout=1800, host_twin=True)
        st = decode_stats(doc)
        e = doc["energy"]["runtime"]
        dev = [c.get("deviation_from_tflm", {}) for c in doc["checks"].values()]
        out[q.name] = {
            "energy": e,
            "commit_overhead": commit_overhead(st),
            "flips": {lv.name: st.metric(f"rt.flip.{lv.name}") for lv in QUALITY_LEVELS},
            "bits": {lv.name: st.metric(f"rt.bits.{lv.name}") for lv in QUALITY_LEVELS},
            "top1_same": sum(1 for d in dev if d.get("top1_same")),
            "outputs_differing": sum(d.get("differing", 0) for d in dev),
            "runs": len(dev),
            "checks_ok": all(c.get("ok") for c in doc["checks"].values()),
        }
    return out


def print_sweep(sweep: dict[str, Any]) -> None:
    q0 = sweep["Q0"]["energy"]["per_inference"]
    print(f"{'QL':<4} {'µJ/inference':>13} {'write µJ':>10} {'compute µJ':>11} "
          f"{'saving vs Q0':>13} {'flips':>7} {'top-1 same':>11} {'outputs moved':>14} "
          f"{'twin-equal':>10}")
    for name, r in sweep.items():
        pi = r["energy"]["per_inference"]
        saving = 1 - pi["total_pj"] / q0["total_pj"]
        print(f"{name:<4} {pi['total_pj'] / 1e6:>13.3f} {pi['write_pj'] / 1e6:>10.3f} "
              f"{(pi['compute_pj'] + pi['persist_pj']) / 1e6:>11.3f} {100 * saving:>12.1f}% "
              f"{sum(r['flips'].values()):>7} {r['top1_same']:>5}/{r['runs']:<5} "
              f"{r['outputs_differing']:>14} {'yes' if r['checks_ok'] else 'NO':>10}")
    rows = sweep["Q0"]["energy"]["rows"]
    co = sweep["Q0"]["commit_overhead"]
    print("(energy from emulated instruction counts on the twin, not silicon cycles; "
          "twin-equal: Q0 equals TFLM, Q1..Q4 equal the host twin byte for byte)")
    print(f"\nper layer at Q0 (all {sweep['Q0']['energy']['inferences']} inference(s); "
          "emulated instructions):")
    print(f"  {'step':<6} {'instructions':>13} {'commit instr':>13} {'share':>7} {'µJ':>9}")
    for r, c in zip(rows, co["rows"]):
        share = f"{100 * c['share']:.2f}%" if c["share"] is not None else "-"
        print(f"  {r['row']:<6} {r['cycles']:>13,} {c['commit']:>13,} {share:>7} "
              f"{r['total_pj'] / 1e6:>9.3f}")
    print(f"  {'total':<6} {co['total']:>13,} {co['commit']:>13,} "
          f"{100 * co['share']:>6.2f}%")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="qemu_m33")
    ap.add_argument("--model", default=str(ZOO / "stmnist_v1_int8.tflite"))
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--inputs", type=int, default=4)
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args(argv)
    model = Path(args.model)
    result: dict[str, Any] = {"board": args.board, "model": model.name}

    t0 = time.monotonic()
    sweep = ql_sweep(args.board, model, args.seed, args.inputs)
    result["ql_sweep"] = sweep
    result["ql_sweep_s"] = time.monotonic() - t0
    print(f"== {model.name} on {args.board}: Q0..Q4 with injection (seed {args.seed}, "
          f"{args.inputs} inputs) ==")
    print_sweep(sweep)

    b, art = build(args.board, "infer", {"model": str(model), "ql": "Q0", "inject": "off"},
                   ROOT / "build" / args.board / f"bench-rt-{model.stem}-campaign")
    rep = power_fail_campaign(b, "infer", art, args.points, seed=args.seed, timeout=3600)
    result["campaign"] = rep.to_dict()
    print(f"\n== power-failure campaign: {rep.points} points ({rep.distinct} distinct) in "
          f"{rep.runs} run(s), {rep.wall_s:.1f} s incl. the reference run; where: {rep.where} "
          f"(the firmware reports {rep.firmware_where}); "
          f"lost {rep.lost}, torn accepted {rep.torn}, missed {rep.missed}, runs with other "
          f"outputs {rep.mismatched_runs}: {'OK' if rep.ok else rep.problems}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0 if rep.ok else 1


if __name__ == "__main__":
    sys.exit(main())
