"""The ``sweetspot`` command line. The only place that prints or exits.

Exit status: 0 success; 1 the run finished but its outputs failed their check; 2 bad input or a
missing tool (one readable message on stderr); 3 the firmware faulted or ended with an error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from generator import __version__
from generator.boards import load_all, load_board
from generator.errors import AppError, FirmwareFault, SweetspotError

FirmwareFault.exit_code = 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line like every other error: one line, exit 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        sys.stderr.write(f"sweetspot: error: {message} (see: {self.prog} --help)\n")
        sys.exit(2)


def _seconds(text: str) -> float:
    from generator.proc import check_timeout

    try:
        return check_timeout(text)
    except AppError as e:
        raise argparse.ArgumentTypeError(str(e).replace("--timeout ", "", 1)) from None


MAX_DEMO_SAMPLES = 1000  # the demo data set holds fewer; cmd_demo says how many


def _samples(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_DEMO_SAMPLES:
        raise argparse.ArgumentTypeError(f"{text} must be a whole number from 1 to "
                                         f"{MAX_DEMO_SAMPLES}")
    return n


def _output_path(text: str) -> str:
    """A --json PATH that can be written: checked before anything runs, so a typo costs no
    build and leaves nothing behind."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}' is a directory; give a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"'{text}': '{parent}' is not a directory")
    target = path if path.exists() else parent
    if not os.access(target, os.W_OK) or (path.exists() and not path.is_file()):
        raise argparse.ArgumentTypeError(f"'{text}' cannot be written (permission denied)")
    return text


def _write_json(doc: dict[str, Any], path: str) -> None:
    from generator.runner import write_json

    try:
        write_json(doc, Path(path))
    except OSError as e:
        raise SweetspotError(f"cannot write the results document {path}: "
                             f"{e.strerror or e}") from e


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


# ---- boards --------------------------------------------------------------------------------

def cmd_boards(args: argparse.Namespace) -> int:
    boards = load_all()
    if args.json:
        _print_json([b.summary() for b in boards])
        return 0
    print(f"{'board':<13} {'kind':<7} {'core':<14} {'MHz':>5} {'uW/MHz':>7}  {'flash':>9} "
          f"{'RAM':>9}  twin / runs on")
    for b in boards:
        flash = f"{b.flash.length // 1024} KiB" if b.memory else "-"
        ram = f"{sum(r.length for r in b.memory if r.name != 'flash') // 1024} KiB" \
            if b.memory else "-"
        rel = b.twin or (f"twin of {b.twin_of}" if b.twin_of else "")
        print(f"{b.name:<13} {b.kind:<7} {b.core:<14} {b.clock_hz / 1e6:>5g} "
              f"{b.active_uw_per_mhz:>7g}  {flash:>9} {ram:>9}  {rel}")
    return 0


# ---- run -----------------------------------------------------------------------------------

def _fmt_values(values: list[Any], limit: int = 16) -> str:
    text = " ".join(str(v) for v in values[:limit])
    return text + (f" … ({len(values)} values)" if len(values) > limit else "")


def print_results(doc: dict[str, Any]) -> None:
    c = doc["counter"]
    print(f"board {doc['board']} ({doc['core']}), app {doc['app']}, image "
          f"{doc['image_sha256'][:12]}, counter {c['kind']} -> {c['unit']}")
    dep = doc.get("deployment")
    if dep and not dep["deployable"]:
        print(f"  NOT DEPLOYABLE on {dep['board']} (run anyway, --not-deployable-ok): "
              + "; ".join(dep["problems"]))
    if doc["cycles"]:
        unit = "instructions" if c["unit"] == "instructions" else "cycles"
        if unit == "instructions":
            print("  (QEMU twin: instructions executed by the emulator, not silicon cycles)")
        print(f"  {'measure':<24} {'ticks':>14} {unit:>14}")
        for name, v in doc["cycles"].items():
            print(f"  {name:<24} {v['ticks']:>14,} {v.get(unit, v['ticks']):>14,}")
    for name, v in doc.get("metrics", {}).items():
        if not name.startswith("rt."):  # runtime counters: decoded in the energy table, in JSON
            print(f"  {name:<24} {v:>14,}")
    for name, o in doc["outputs"].items():
        print(f"  output {name} ({o['dtype']}): {_fmt_values(o['values'])}")
    for name, chk in doc.get("checks", {}).items():
        dev = chk.get("deviation_from_tflm") if chk.get("reference") == "host twin" else None
        print(f"  check {name}: {'OK' if chk.get('ok') else 'MISMATCH'}"
              + (f" ({chk['mismatches']} differ)" if not chk.get("ok") and
                 chk.get("mismatches") is not None else "")
              + (f" vs the host twin; {dev['differing']} element(s) differ from TFLM, top-1 "
                 f"{'same' if dev['top1_same'] else 'changed'}" if dev else ""))
    if "summary" in doc.get("energy", {}):
        print(doc["energy"]["summary"])
    cap = doc.get("capacitor")
    if cap:
        print("  capacitor: " + ", ".join(f"{k} {v}" for k, v in cap.items()
                                          if not isinstance(v, dict | list)))
    st = doc["stream"]
    print(f"  status {doc['status']}, exit code {doc['exit_code']}; {st['records']} records, "
          f"{st['corrupt_frames']} corrupt, {st['lost_frames']} lost, {st['noise_bytes']} "
          "noise bytes")


def _options(args: argparse.Namespace) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    if getattr(args, "model", None):
        opts["model"] = str(Path(args.model).resolve())
    if getattr(args, "input", None):
        opts["input"] = str(Path(args.input).resolve())
    if getattr(args, "pipeline", None):
        opts["pipeline"] = str(Path(args.pipeline).resolve())
    if getattr(args, "ql", None):
        opts["ql"] = args.ql
    if getattr(args, "ql_map", None):
        opts["ql_map"] = str(Path(args.ql_map).resolve())
    if getattr(args, "no_inject", False):
        opts["inject"] = "off"
    if getattr(args, "power_fail", None):
        opts["power_fail"] = args.power_fail
    if getattr(args, "capacitor", None):
        opts["capacitor"] = args.capacitor
    if getattr(args, "seed", None) is not None:
        opts["seed"] = int(args.seed)
    if getattr(args, "backend", None):
        opts["backend"] = args.backend
    if getattr(args, "tflm_root", None):
        opts["tflm_root"] = str(Path(args.tflm_root).expanduser().resolve())
    if getattr(args, "tflm_kernels", None):
        opts["tflm_kernels"] = args.tflm_kernels
    if getattr(args, "tflm_arena", None):
        opts["tflm_arena"] = args.tflm_arena
    return opts


def cmd_run(args: argparse.Namespace) -> int:
    from generator.runner import RunRequest, holding_build_dir, mark_deployment, run
    from generator.runtime.campaign import run_request, wants_runtime

    app = args.app or ("infer" if args.model else "bench")
    req = RunRequest(board=args.board, app=app, options=_options(args),
                     build_dir=Path(args.build_dir) if args.build_dir else None,
                     timeout=args.timeout, probe_uid=args.probe_uid,
                     serial_port=args.serial_port, twin=args.twin, pack=args.pack,
                     allow_not_deployable=args.not_deployable_ok)
    try:
        with holding_build_dir(req):  # a concurrent run on the same directory waits
            doc = run_request(req) if wants_runtime(req.options) else run(req)
    except SweetspotError as e:  # a fault, or no reference verdict: keep what the firmware said
        doc = getattr(e, "document", None)
        if doc is not None and args.json:
            _write_json(doc, args.json)
        raise
    if "deployable" not in doc:  # the runtime's runs
        mark_deployment(doc, req)
    if args.json:
        _write_json(doc, args.json)
    print_results(doc)
    failed = [k for k, v in doc.get("checks", {}).items() if not v.get("ok")]
    if failed:
        print(f"sweetspot: outputs differ from the reference: {', '.join(failed)}",
              file=sys.stderr)
        return 1
    return 0


# ---- demo ----------------------------------------------------------------------------------

DEMO_MODEL = "models/digits_cnn_int8.tflite"
DEMO_SAMPLES = "models/digits_samples.npz"


def cmd_demo(args: argparse.Namespace) -> int:
    """The project-made digits CNN on the default board's emulated twin, on real digits."""
    import numpy as np

    from generator.build import DEFAULT_BOARD, project_root
    from generator.runner import RunRequest, run

    root = project_root()
    samples = np.load(root / DEMO_SAMPLES)
    n = int(args.samples)
    if n > len(samples["images"]):
        raise SweetspotError(f"--samples {n}: the demo has {len(samples['images'])} digits")
    images, labels = samples["images"][:n], samples["labels"][:n]
    board = load_board(args.board or DEFAULT_BOARD)
    build_dir = root / "build" / board.name / "demo"
    build_dir.mkdir(parents=True, exist_ok=True)
    inputs = build_dir / "demo_inputs.npy"
    np.save(inputs, images)
    req = RunRequest(board=board.name, app="infer", twin=board.kind == "nucleo",
                     options={"model": str(root / DEMO_MODEL), "input": str(inputs)},
                     build_dir=build_dir, timeout=args.timeout)
    doc = run(req)
    print_results(doc)
    preds = demo_predictions(doc)
    if preds:
        hits = sum(int(p == int(lbl)) for p, lbl in zip(preds, labels))
        print(f"  digits: predicted {preds}, labels {[int(v) for v in labels]} "
              f"({hits}/{len(preds)} correct)")
        doc["demo"] = {"predictions": preds, "labels": [int(v) for v in labels]}
    if args.json:
        _write_json(doc, args.json)
    failed = [k for k, v in doc.get("checks", {}).items() if not v.get("ok")]
    return 1 if failed else 0


def demo_predictions(doc: dict[str, Any]) -> list[int]:
    """argmax of every output vector of the run, in input order."""
    import numpy as np

    names = sorted((k for k in doc["outputs"] if k.startswith("output")),
                   key=lambda k: [int(t) if t.isdigit() else t
                                  for t in k.replace("[", " ").replace("]", " ").split()])
    preds = []
    for k in names:
        values = np.asarray(doc["outputs"][k]["values"])
        n_out = int(doc["app_info"].get("outputs", [{}])[0].get("size", values.size)) \
            if isinstance(doc["app_info"].get("outputs"), list) else values.size
        for chunk in values.reshape(-1, n_out):
            preds.append(int(np.argmax(chunk)))
    return preds


# ---- build ---------------------------------------------------------------------------------

def cmd_build(args: argparse.Namespace) -> int:
    from generator.runner import RunRequest, build_for

    app = args.app or ("infer" if args.model else "bench")
    req = RunRequest(board=args.board, app=app, options=_options(args),
                     build_dir=Path(args.build_dir) if args.build_dir else None, twin=args.twin)
    board, art = build_for(req)
    info = {"board": board.name, "app": app, "elf": str(art.elf),
            "bin": str(art.bin) if art.bin else None, "hex": str(art.hex) if art.hex else None,
            "size": json.loads(art.size_json.read_text()) if art.size_json.is_file() else None}
    if args.json:
        _print_json(info)
    else:
        print(f"built {art.elf}")
    return 0


# ---- flash ---------------------------------------------------------------------------------

def cmd_flash(args: argparse.Namespace) -> int:
    from generator.runner import RunRequest, build_for, holding_build_dir
    from generator.targets.nucleo import flash_image, preflight

    board = load_board(args.board)
    if board.kind != "nucleo":
        raise SweetspotError(f"'{board.name}' is a {board.kind} board; flash takes a Nucleo board "
                             f"(run a twin with: sweetspot run --board {board.name})")
    preflight(board, args.probe_uid, pack=args.pack)  # pack and probe problems before a build
    app = args.app or ("infer" if args.model else "bench")
    req = RunRequest(board=board.name, app=app, options=_options(args),
                     build_dir=Path(args.build_dir) if args.build_dir else None)
    with holding_build_dir(req):  # the image flashed is the one just built
        _, art = build_for(req)
        info = flash_image(board, art, probe_uid=args.probe_uid, timeout=args.timeout,
                           pack=args.pack)
    if args.json:
        _print_json(info)
    else:
        print(f"flashed {info['image']} to {board.name} through probe {info['probe_uid']}")
    return 0


# ---- inspect -------------------------------------------------------------------------------

def cmd_inspect(args: argparse.Namespace) -> int:
    from generator.compiler import inspect as ssinspect

    board = load_board(args.board) if args.board else None
    result = ssinspect.inspect_model(Path(args.model), board)
    if args.json:
        _print_json(result.as_dict())
    else:
        print(result.text())
    return 0 if result.fits in (None, True) else 2


# ---- wakeup --------------------------------------------------------------------------------

def cmd_wakeup(args: argparse.Namespace) -> int:
    from generator.wakeup.report import Options, make_report

    out = Path(args.out)
    doc = make_report(Options(out_dir=out, twin_beats=args.twin_beats, prior=args.prior,
                              seed=args.seed, log=lambda s: print(s, file=sys.stderr)))
    for name, (value, ok) in doc["targets"].items():
        print(f"{'ok ' if ok else 'MISSED'} {name}: {value}")
    print(f"report: {out / 'wakeup_report.md'} (+ .json, plots)")
    twins = doc.get("twins") or {}
    differ = [b for b, tw in twins.items() if not tw["checks_ok"]]
    if differ:
        print(f"the wakeup app on {', '.join(differ)} differs from the numpy twin",
              file=sys.stderr)
        return 1
    return 0


# ---- parser --------------------------------------------------------------------------------

def _add_target_args(p: argparse.ArgumentParser, *, run: bool) -> None:
    p.add_argument("--board", required=True, help="board name (see `sweetspot boards`)")
    p.add_argument("--app", help="firmware app (default: bench, or infer with --model)")
    p.add_argument("--model", help=".tflite int8 model (app infer)")
    p.add_argument("--input", help=".npy input(s) for the model")
    p.add_argument("--seed", type=int, help="seed for generated inputs")
    p.add_argument("--pipeline", help="sensor pipeline config (.toml) for the streaming apps")
    rt = p.add_argument_group("intermittent runtime (any of these turns it on)")
    rt.add_argument("--ql", choices=("Q0", "Q1", "Q2", "Q3", "Q4"),
                    help="QL of every persisted tensor (the critical region stays Q0)")
    rt.add_argument("--ql-map", metavar="JSON",
                    help='per-tensor QLs, e.g. {"default":"Q2","L3":"Q4","output":"Q0"}')
    rt.add_argument("--no-inject", action="store_true", help="no write-error injection")
    rt.add_argument("--power-fail", metavar="SPEC",
                    help="N random points, or [I<i>.]<input|L<l>>:w<k>|:t<ticks>,...")
    rt.add_argument("--capacitor", metavar="SPEC",
                    help="C=47uF,von=3.3,voff=1.8[,harvest=1mW]")
    p.add_argument("--build-dir", help="build directory (default build/<board>/<app>)")
    p.add_argument("--twin", action="store_true",
                   help="run a Nucleo board's emulated twin instead of the board")
    p.add_argument("--backend", choices=("generated", "tflm"),
                   help="inference backend for --model: generated per-layer C (default) or tflm "
                   "(TensorFlow Lite Micro's interpreter, built from --tflm-root)")
    p.add_argument("--tflm-root", metavar="DIR",
                   help="tflite-micro checkout for --backend tflm (default: $SWEETSPOT_TFLM_ROOT)")
    p.add_argument("--tflm-kernels", choices=("reference", "cmsis_nn"),
                   help="TFLM kernels (default reference; cmsis_nn on Cortex-M4/M7/M33)")
    p.add_argument("--tflm-arena", metavar="auto|host|BYTES",
                   help="TFLM arena: measured on the twin + margin (auto, default), the host "
                   "recorder's figure + margin (host), or a byte count")
    if run:
        p.add_argument("--json", metavar="PATH", type=_output_path,
                       help="write the results document here")
        p.add_argument("--timeout", type=_seconds, default=120.0, help="seconds (default 120)")
        p.add_argument("--probe-uid", help="ST-LINK probe unique ID (real boards)")
        p.add_argument("--serial-port", help="console port of a real board (default: the "
                       "probe's virtual COM port)")
        p.add_argument("--pack", help="CMSIS device pack file for pyOCD (real boards)")
        p.add_argument("--not-deployable-ok", action="store_true",
                       help="with --twin: run even if the image does not fit the Nucleo's "
                       "memory (refused otherwise); the results say \"deployable\": false")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sweetspot",
        description="Firmware generator and build orchestrator for intermittent TinyML.")
    parser.add_argument("--version", action="version", version=f"sweetspot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("boards", help="list the boards and their emulated twins")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_boards)

    p = sub.add_parser("run", help="build if needed, run, print and save results")
    _add_target_args(p, run=True)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="run the project's digits CNN on the default board's twin")
    p.add_argument("--board", help="board (default nucleo_u575, run on its emulated twin)")
    p.add_argument("--samples", type=_samples, default=4,
                   help=f"how many real digits, 1 to {MAX_DEMO_SAMPLES} (default 4)")
    p.add_argument("--timeout", type=_seconds, default=120.0)
    p.add_argument("--json", metavar="PATH", type=_output_path,
                   help="write the results document here")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("build", help="generate and build firmware (same as scons)")
    _add_target_args(p, run=False)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("flash", help="build and flash a real Nucleo board with pyOCD")
    p.add_argument("--board", required=True)
    p.add_argument("--probe-uid", required=True, help="ST-LINK probe unique ID")
    p.add_argument("--app")
    p.add_argument("--model")
    p.add_argument("--input")
    p.add_argument("--seed", type=int)
    p.add_argument("--build-dir")
    p.add_argument("--timeout", type=_seconds, default=60.0)
    p.add_argument("--pack", help="CMSIS device pack file for pyOCD")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_flash)

    p = sub.add_parser("inspect", help="per-layer statistics of a model, and whether it fits")
    p.add_argument("model", help=".tflite int8 model")
    p.add_argument("--board", help="check whether and where the model fits this board")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("wakeup", help="uncertainty-triggered wake-up on MIT-BIH beats: train, "
                       "evaluate, sweep, run on the twins, report")
    p.add_argument("--out", default="build/wakeup", help="report directory (default: %(default)s)")
    p.add_argument("--twin-beats", type=int, default=400,
                   help="test beats streamed on qemu_m0 and qemu_m33 for the instruction counts "
                   "(0: no twin runs, no energy figures; default: %(default)s)")
    p.add_argument("--prior", type=float, default=0.1,
                   help="deployment prior of abnormal beats for p_wake (default: %(default)s)")
    p.add_argument("--seed", type=int, default=1, help="seed of the degradation knobs")
    p.set_defaults(func=cmd_wakeup)
    return parser


def main(argv: list[str] | None = None) -> int:
    from generator.build.lock import WAIT_NOTICE

    WAIT_NOTICE[:] = [lambda message: print(message, file=sys.stderr, flush=True)]
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a reader that went away shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        # `sweetspot inspect m.tflite | head -1`: the reader has what it wanted; stop quietly
        # with the status of a command ended by SIGPIPE, and keep Python's exit-time flush of
        # stdout from failing again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13
    except SweetspotError as e:
        print(f"sweetspot: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("sweetspot: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a file or directory that cannot be read or written
        if os.environ.get("SWEETSPOT_DEBUG"):
            raise
        where = f": {e.filename}" if e.filename is not None else ""
        print(f"sweetspot: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug, or an input no check caught: one line, not a traceback
        if os.environ.get("SWEETSPOT_DEBUG"):
            raise
        text = " ".join(str(e).split())[:300]
        print(f"sweetspot: error: internal error ({type(e).__name__}: {text}); please report "
              "it with the command line (SWEETSPOT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
