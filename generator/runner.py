"""Orchestration: board + app → build → run on a target → one JSON results document."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generator import __version__
from generator.boards import Board, load_board
from generator.build import (
    Artifacts,
    default_build_dir,
    resolve_build_dir,
    run_scons,
    size_report,
    which_tool,
)
from generator.build.lock import build_dir_lock
from generator.errors import FirmwareFault, FitError, SweetspotError, TargetError
from generator.firmware import MANIFEST, file_sha256
from generator.firmware.apps import get_app
from generator.firmware.board import stack_bytes
from generator.proc import check_timeout
from generator.runtime.energy import document_energy
from generator.targets import RunOutput, target_for
from generator.targets.qemu import qemu_binary

COUNTER_UNITS = {"dwt": "cycles", "systick": "cycles", "none": "none"}


def check_tools(board: Board) -> None:
    """Fail early, with the install command, when a tool the board needs is missing."""
    if board.is_host:
        return
    for tool in ("arm-none-eabi-gcc", "arm-none-eabi-objcopy"):
        which_tool(tool)
    if board.kind == "qemu":
        qemu_binary()


@dataclass
class RunRequest:
    board: str
    app: str = "bench"
    options: dict[str, Any] | None = None
    build_dir: Path | None = None
    timeout: float = 120.0
    probe_uid: str | None = None
    pack: str | None = None
    serial_port: str | None = None
    twin: bool = False
    #: with ``twin``: run even when the image would not fit the Nucleo (the document then says
    #: ``"deployable": false``); otherwise such a run is refused with the numbers (FitError)
    allow_not_deployable: bool = False

    def __post_init__(self) -> None:
        self.timeout = check_timeout(self.timeout)


def resolve_board(req: RunRequest) -> Board:
    board = load_board(req.board)
    if req.twin:
        if board.kind != "nucleo" or not board.twin:
            raise TargetError(
                f"--twin needs a Nucleo board; '{board.name}' is a {board.kind} board")
        board = load_board(board.twin)
    return board


@contextmanager
def holding_build_dir(req: RunRequest) -> Iterator[Path]:
    """Own the request's build directory from generation through the run that reads its
    artefacts: a concurrent run on the same directory waits (see generator.build.lock)."""
    board = resolve_board(req)
    with build_dir_lock(resolve_build_dir(board, req.app, req.options, req.build_dir)) as p:
        yield p


def twin_deployment(req: RunRequest, elf: Path) -> dict[str, Any] | None:
    """For a ``twin`` run: whether the image built for the twin fits the Nucleo it stands in
    for. RAM is what the image allocates in the twin's RAM (.data, .bss, .noinit, stack) with
    the Nucleo's stack size; flash what it loads. None for any other run."""
    if not req.twin:
        return None
    nucleo = load_board(req.board)
    twin = resolve_board(req)
    used = {r["region"]: r["used"] for r in size_report(twin, elf)["regions"]}
    ram = used.get("ram", 0) - stack_bytes(twin) + stack_bytes(nucleo)
    flash = used.get("flash", 0)
    problems = []
    if ram > nucleo.ram.length:
        problems.append(f"RAM: the image needs {ram:,} B; {nucleo.name} has "
                        f"{nucleo.ram.length:,} B")
    if flash > nucleo.flash.length:
        problems.append(f"flash: the image needs {flash:,} B; {nucleo.name} has "
                        f"{nucleo.flash.length:,} B")
    return {"deployable": not problems, "board": nucleo.name, "twin": twin.name,
            "ram_needed": ram, "ram_available": nucleo.ram.length,
            "flash_needed": flash, "flash_available": nucleo.flash.length,
            "problems": problems}


def check_deployable(req: RunRequest, elf: Path) -> dict[str, Any] | None:
    """:func:`twin_deployment`, refusing (FitError, exit status 2) an image the Nucleo cannot
    hold unless the request allows it: a twin's figures for a board the model cannot run on
    would read as that board's."""
    dep = twin_deployment(req, elf)
    if dep and not dep["deployable"] and not req.allow_not_deployable:
        raise FitError(
            f"the image does not fit {dep['board']}, so its twin {dep['twin']} will not stand "
            f"in for it: {'; '.join(dep['problems'])}. Pick a smaller model or a larger board "
            "(sweetspot inspect MODEL --board BOARD), or run on the twin anyway with "
            "--not-deployable-ok (the results are then marked \"deployable\": false)")
    return dep


def build_for(req: RunRequest) -> tuple[Board, Artifacts]:
    board = resolve_board(req)
    get_app(req.app)  # unknown app: fail before anything runs
    check_tools(board)
    art = run_scons(board, req.app, req.options, req.build_dir)
    check_deployable(req, art.elf)
    return board, art


def convert_ticks(board: Board, counter_kind: str, ticks: int) -> dict[str, Any]:
    """A counter value with its meaning: on a QEMU twin SysTick under icount counts exactly
    ``ticks_per_instruction`` ticks per instruction; on silicon DWT/SysTick count CPU cycles."""
    d: dict[str, Any] = {"ticks": ticks}
    tpi = board.counter_ticks_per_instruction()
    if tpi is not None and counter_kind == "systick":
        d["instructions"] = int(round(ticks / tpi))
    elif counter_kind in ("dwt", "systick"):
        d["cycles"] = ticks
    return d


def results_document(board: Board, app: str, art: Artifacts, out: RunOutput) -> dict[str, Any]:
    s = out.session
    manifest = json.loads((art.build_dir / MANIFEST).read_text())
    hello = s.hello or {}
    counter_kind = hello.get("counter_kind", board.counter_kind)
    doc: dict[str, Any] = {
        "sweetspot_version": __version__,
        "board": board.name,
        "board_kind": board.kind,
        "core": board.core,
        "clock_hz": board.clock_hz,
        "app": app,
        "options": manifest.get("options", {}),
        "image": str(art.elf),
        "image_sha256": file_sha256(art.elf),
        "firmware": hello,
        "counter": {
            "kind": counter_kind,
            "hz": hello.get("counter_hz"),
            "unit": "instructions" if board.kind == "qemu" else COUNTER_UNITS[counter_kind],
            "ticks_per_instruction": board.counter_ticks_per_instruction(),
        },
        "cycles": {k: convert_ticks(board, counter_kind, v) for k, v in s.cycles.items()},
        "metrics": dict(s.metrics),
        "outputs": {k: {"dtype": str(v.dtype), "values": v.tolist()}
                    for k, v in s.vectors.items()},
        "faults": s.faults,
        "logs": s.logs,
        "status": s.status,
        "exit_code": out.exit_code,
        "stream": {"records": s.records, "corrupt_frames": s.corrupt_frames,
                   "lost_frames": s.lost_frames, "noise_bytes": s.noise_bytes},
        "app_info": manifest.get("app_info", {}),
    }
    doc["energy"] = document_energy(board, doc)
    return doc


def check_outputs(app: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The app's own host-side check of the outputs (e.g. bench against numpy)."""
    a = get_app(app)
    checker = getattr(a, "check", None)
    if checker is None:
        return {}
    outputs = {k: np.asarray(v["values"], dtype=v["dtype"]) for k, v in doc["outputs"].items()}
    try:
        return dict(checker(doc["app_info"], outputs))
    except SweetspotError:
        raise
    except Exception as e:  # the reference itself failed (TFLM cannot prepare the model, ...)
        text = " ".join(str(e).split())[:300] or type(e).__name__
        raise ReferenceFailed(
            f"the firmware ran, but the {app} app's reference could not check its outputs "
            f"({type(e).__name__}: {text}); the results document keeps the outputs") from e


class ReferenceFailed(SweetspotError):
    """The run finished but its host-side reference could not run (its ``document`` has the
    firmware's results, with ``checks`` saying why there is no verdict)."""


def write_json(doc: dict[str, Any], path: Path) -> None:
    """Write atomically: a failure leaves no half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(req: RunRequest) -> dict[str, Any]:
    """Build (if needed) and run; returns the results document. Raises FirmwareFault when the
    firmware faulted or ended with a non-zero status (the document rides on the exception)."""
    with holding_build_dir(req):
        return _run(req)


def _run(req: RunRequest) -> dict[str, Any]:
    board, art = build_for(req)
    kwargs: dict[str, Any] = {}
    if board.kind == "nucleo":
        kwargs = {"probe_uid": req.probe_uid, "serial_port": req.serial_port, "pack": req.pack}
    target = target_for(board, **kwargs)
    out = target.run(art, timeout=req.timeout)
    doc = results_document(board, req.app, art, out)
    mark_deployment(doc, req)
    try:
        doc["checks"] = check_outputs(req.app, doc) if doc["status"] == 0 else {}
    except ReferenceFailed as e:
        doc["checks"] = {"reference": {"ok": None, "error": str(e)}}
        e.document = doc  # type: ignore[attr-defined]
        raise
    s = out.session
    if s.faults:
        f = s.faults[0]
        err = FirmwareFault(f"firmware on {board.name} faulted ({f['kind']}) at pc=0x{f['pc']:08x}"
                            f" lr=0x{f['lr']:08x} cfsr=0x{f['cfsr']:08x} hfsr=0x{f['hfsr']:08x}")
        err.document = doc  # type: ignore[attr-defined]
        raise err
    if s.status != 0 or (out.exit_code not in (None, 0)):
        err = FirmwareFault(f"firmware on {board.name} ended with status {s.status}"
                            f" (exit code {out.exit_code})")
        err.document = doc  # type: ignore[attr-defined]
        raise err
    return doc


def mark_deployment(doc: dict[str, Any], req: RunRequest) -> None:
    """A twin run's document says whether its image fits the Nucleo (``deployable`` and the
    numbers in ``deployment``)."""
    dep = twin_deployment(req, Path(doc["image"]))
    if dep is not None:
        doc["deployable"] = dep["deployable"]
        doc["deployment"] = dep


def default_artifacts(board: Board, app: str) -> Artifacts:
    return Artifacts.for_dir(board, default_build_dir(board.name, app))
