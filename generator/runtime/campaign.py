"""Running a runtime build under power failures: one run with a failure schedule, a capacitor,
or a prepared NVM image, and power-failure campaigns.

How the host reaches the firmware without rebuilding it: the runtime's ``.noinit`` block starts
with a config area the firmware only reads (:mod:`generator.runtime.layout`). On a QEMU twin the
host
preloads it with QEMU's generic loader (``-device loader,file=...,addr=<ss_noinit>,force-raw=on``;
QEMU puts the blob back on every reset, which is harmless for read-only config). On the host
twin the block is a file (``$SS_NOINIT_FILE``) and a reset is the process exiting with status 75:
the host restarts it until it exits otherwise. Either way ONE run goes through every failure of
its schedule, and all reports come from the boot that finishes.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.boards import Board, load_board
from generator.build import Artifacts, default_build_dir, run_scons
from generator.errors import AppError, FirmwareFault, ProtocolError, TargetError
from generator.firmware import MANIFEST
from generator.runner import check_outputs, results_document
from generator.runtime.energy import document_energy
from generator.runtime.layout import (
    RUNTIME_OPTION_KEYS,
    Capacitor,
    SimConfig,
    StepShape,
    decode_stats,
    encode_config,
    spread_points,
)
from generator.targets.base import RunOutput
from generator.targets.protocol import parse_stream

RESET_EXIT = 75  # the host twin's "reset": ss_board_reset() exits with it


# ---- where the block is ------------------------------------------------------------------------

def noinit_address(elf: Path, symbol: str = "ss_noinit") -> int:
    """Address of the runtime's .noinit block in a firmware image."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    with open(elf, "rb") as f:
        ef = ELFFile(f)
        for sec in ef.iter_sections():
            if isinstance(sec, SymbolTableSection):
                for sym in sec.get_symbol_by_name(symbol) or []:
                    return int(sym["st_value"])
    raise TargetError(f"{elf} has no symbol '{symbol}': is it a build of an app with the "
                      "intermittent runtime (nvmtest, or infer with runtime options)?")


def runtime_info(art: Artifacts) -> dict[str, Any]:
    import json

    manifest = json.loads((art.build_dir / MANIFEST).read_text())
    rt = manifest.get("app_info", {}).get("runtime")
    if not rt:
        raise AppError(f"the build in {art.build_dir} has no intermittent runtime")
    return dict(rt)


def block_images(rt: Mapping[str, Any], cfg: SimConfig | None, nvm_image: bytes | None = None
                 ) -> list[tuple[int, bytes]]:
    """(offset in the block, bytes) to preload: the config (none: the firmware's built-in
    defaults apply), and optionally an NVM image."""
    noinit = rt["noinit"]
    blobs = [] if cfg is None else [(0, encode_config(cfg, int(rt["sched_capacity"])))]
    if nvm_image is not None:
        if len(nvm_image) > int(noinit["nvm_bytes"]):
            raise AppError(f"the NVM image has {len(nvm_image)} bytes; the NVM has "
                           f"{noinit['nvm_bytes']}")
        blobs.append((int(noinit["nvm_offset"]), bytes(nvm_image)))
    return blobs


# ---- one run -------------------------------------------------------------------------------------

def _run_qemu(board: Board, art: Artifacts, blobs: list[tuple[int, bytes]], timeout: float
              ) -> RunOutput:
    from generator.targets.qemu import QemuTarget

    base = noinit_address(art.elf)
    with tempfile.TemporaryDirectory(prefix="ss-blobs-") as d:
        args: list[str] = []
        for i, (off, data) in enumerate(blobs):
            p = Path(d) / f"blob{i}.bin"
            p.write_bytes(data)
            args += ["-device", f"loader,file={p},addr=0x{base + off:x},force-raw=on"]
        return QemuTarget(board, extra_args=args).run(art, timeout=timeout)


def _run_host(board: Board, art: Artifacts, blobs: list[tuple[int, bytes]], timeout: float,
              max_boots: int) -> RunOutput:
    exe = art.elf
    if not exe.is_file():
        raise TargetError(f"no host executable at {exe}; build it first")
    t0 = time.monotonic()
    deadline = t0 + timeout
    with tempfile.TemporaryDirectory(prefix="ss-noinit-") as d:
        path = Path(d) / "noinit.bin"
        image = bytearray()
        for off, data in blobs:
            if len(image) < off + len(data):
                image += bytes(off + len(data) - len(image))
            image[off:off + len(data)] = data
        path.write_bytes(bytes(image))
        env = dict(os.environ, SS_NOINIT_FILE=str(path))
        console = bytearray()
        boots = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProtocolError(f"the host build {exe} did not finish within {timeout:g} s "
                                    f"({boots} boots)")
            try:
                proc = subprocess.run([str(exe)], stdin=subprocess.DEVNULL, capture_output=True,
                                      timeout=left, env=env)
            except subprocess.TimeoutExpired:
                raise ProtocolError(f"the host build {exe} did not finish within {timeout:g} s "
                                    f"({boots} boots)") from None
            console += proc.stdout
            boots += 1
            if proc.returncode != RESET_EXIT:
                break
            if boots >= max_boots:
                raise TargetError(f"the host build {exe} reset {boots} times without finishing "
                                  "(a step that never completes?)")
    session = parse_stream(bytes(console))
    if not session.done:
        err = proc.stderr.decode(errors="replace").strip()
        raise ProtocolError(f"the host build {exe} ended (status {proc.returncode}) without an "
                            "END record" + (f": {err}" if err else ""))
    out = RunOutput(board=board.name, session=session, exit_code=proc.returncode,
                    wall_s=time.monotonic() - t0, console=bytes(console))
    out.extra["host_boots"] = boots
    return out


def run_configured(board: Board, app: str, art: Artifacts, cfg: SimConfig | None,
                   nvm_image: bytes | None = None, timeout: float = 120.0,
                   max_boots: int = 1_000_000) -> dict[str, Any]:
    """Run a runtime build once with a config block (None: no config, the build's own
    power_fail/capacitor options apply) and optionally an NVM image; returns the results
    document (status and checks included, no exception for a non-zero status)."""
    rt = runtime_info(art)
    blobs = block_images(rt, cfg, nvm_image)
    if board.kind == "qemu":
        out = _run_qemu(board, art, blobs, timeout)
    elif board.is_host:
        out = _run_host(board, art, blobs, timeout, max_boots)
    else:
        raise TargetError(f"preloading the runtime's config needs a QEMU twin or the host; "
                          f"on {board.name} use the build-time options power_fail/capacitor")
    doc = results_document(board, app, art, out)
    doc["energy"] = document_energy(board, doc)
    doc["wall_s"] = out.wall_s
    doc["checks"] = check_outputs(app, doc) if doc["status"] == 0 else {}
    return doc


# ---- campaigns -------------------------------------------------------------------------------

@dataclass
class CampaignReport:
    board: str
    app: str
    points: int
    runs: int
    wall_s: float
    distinct: int = 0  # distinct (step, word) positions among the points
    boots: int = 0
    failures: int = 0
    missed: int = 0
    lost: int = 0
    torn: int = 0
    mismatched_runs: int = 0
    where: dict[str, int] = field(default_factory=dict)
    per_step: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("board", "app", "points", "distinct", "runs",
                                              "wall_s", "boots",
                                              "failures", "missed", "lost", "torn",
                                              "mismatched_runs", "where", "problems")}


def build(board_name: str, app: str, options: Mapping[str, Any],
          build_dir: Path | None = None) -> tuple[Board, Artifacts]:
    board = load_board(board_name)
    art = run_scons(board, app, dict(options),
                    build_dir or default_build_dir(board.name, app + "-rt"))
    return board, art


def _outputs(doc: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {k: v["values"] for k, v in doc["outputs"].items()}


def power_fail_campaign(board: Board, app: str, art: Artifacts, count: int, seed: int = 0,
                        inferences: Sequence[int] = (0,), timeout: float = 600.0,
                        reference: Mapping[str, Any] | None = None) -> CampaignReport:
    """Deliver ``count`` word-granular power failures spread over every step (tensor writes,
    commits, right after commits) of a build made with injection off, in as few runs as the
    firmware's schedule capacity allows (the points of one run interleave over all steps).
    Every run must finish with the uninterrupted run's outputs, deliver every point, never
    lose a committed step and never accept a torn record."""
    rt = runtime_info(art)
    if rt.get("inject"):
        raise AppError("a power-failure campaign compares outputs with the uninterrupted run: "
                       "build with inject=off")
    shape = StepShape.from_runtime(rt)
    t0 = time.monotonic()
    ref = reference or run_configured(board, app, art, SimConfig(), timeout=timeout)
    if ref["status"] != 0:
        raise TargetError(f"the uninterrupted run on {board.name} ended with status "
                          f"{ref['status']}")
    bad = [k for k, v in ref.get("checks", {}).items() if not v.get("ok")]
    want = _outputs(ref)
    points = spread_points(shape, count, seed, inferences)
    cap = int(rt["sched_capacity"])
    nruns = max(1, -(-len(points) // cap))
    rep = CampaignReport(board.name, app, len(points), nruns, 0.0, len(set(points)))
    if bad:
        rep.problems.append(f"the uninterrupted run's outputs fail their check: {', '.join(bad)}")
    for p in points:
        w = shape.classify(p)
        rep.where[w] = rep.where.get(w, 0) + 1
        rep.per_step[p.step] = rep.per_step.get(p.step, 0) + 1
    for r in range(nruns):
        chunk = points[r::nruns]
        doc = run_configured(board, app, art, SimConfig(points=tuple(chunk)), timeout=timeout)
        st = decode_stats(doc)
        m = st.metrics
        rep.boots += m.get("rt.boots", 0)
        rep.failures += m.get("rt.failures", 0)
        rep.missed += m.get("rt.missed", 0)
        rep.lost += m.get("rt.lost", 0)
        rep.torn += m.get("rt.torn", 0)
        if doc["status"] != 0:
            rep.problems.append(f"run {r}: status {doc['status']}")
        if _outputs(doc) != want:
            rep.mismatched_runs += 1
            rep.problems.append(f"run {r}: outputs differ from the uninterrupted run")
        if m.get("rt.failures", 0) != len(chunk):
            rep.problems.append(f"run {r}: {m.get('rt.failures', 0)} failures delivered of "
                                f"{len(chunk)} points")
    if rep.missed:
        rep.problems.append(f"{rep.missed} points were never reached")
    if rep.lost:
        rep.problems.append(f"{rep.lost} boots lost a committed step")
    if rep.torn:
        rep.problems.append(f"{rep.torn} boots accepted a torn or corrupt record")
    rep.wall_s = time.monotonic() - t0
    return rep


# ---- capacitor ---------------------------------------------------------------------------------

def capacitor_summary(doc: Mapping[str, Any], cap: Capacitor) -> dict[str, Any]:
    """Power cycles and recharge time of a capacitor run (the harvester recharges the capacitor
    from V_off to V_on after every power failure; charging while running is not counted)."""
    m = doc.get("metrics", {})
    cycles = int(m.get("rt.cap.failures", 0))
    out: dict[str, Any] = {
        "capacitor": cap.to_dict(),
        "power_cycles": cycles,
        "boots": int(m.get("rt.boots", 0)),
        "budget_pj": cap.budget_pj,
        "energy_used_pj": (int(m.get("rt.cap.used_fj", 0)) + int(m.get("rt.cap.final_fj", 0)))
        / 1000.0,
        "status": doc.get("status"),
    }
    t = cap.recharge_s()
    if t is not None:
        out["recharge_s_per_cycle"] = t
        out["recharge_s_total"] = t * cycles
        out["initial_charge_s"] = 0.5 * cap.capacitance_f * cap.v_on ** 2 / cap.harvest_w
    stuck = int(m.get("rt.cap.stuck_step", -1))
    if stuck >= 0:
        rows = doc["app_info"]["runtime"]["persist"]["rows"]
        need = int(m.get("rt.cap.stuck_need_fj", 0)) / 1000.0
        out["stuck"] = {
            "step": stuck,
            "row": rows[stuck % len(rows)],
            "needs_pj": need,
            "budget_pj": cap.budget_pj,
            "message": (f"step {rows[stuck % len(rows)]} needs {need:,.0f} pJ from power-up to "
                        f"its commit but one full charge holds {cap.budget_pj:,.0f} pJ: it can "
                        "never complete; use a larger capacitor or a higher V_on"),
        }
    return out


def run_capacitor(board: Board, app: str, art: Artifacts, cap: Capacitor,
                  timeout: float = 600.0) -> dict[str, Any]:
    doc = run_configured(board, app, art, SimConfig(capacitor_fj=cap.budget_fj), timeout=timeout)
    doc["capacitor"] = capacitor_summary(doc, cap)
    return doc


# ---- the CLI's entry point ---------------------------------------------------------------------

def wants_runtime(options: Mapping[str, Any] | None) -> bool:
    """Whether run options ask for the intermittent runtime (ql, ql_map, inject, power_fail,
    capacitor)."""
    return any((options or {}).get(k) not in (None, "") for k in RUNTIME_OPTION_KEYS)


STATUS_TEXT = {
    4: "a step cannot finish within one full charge of the capacitor",
    5: "a commit record did not verify after retries",
    6: "an NVM access fell outside its region",
}


def run_request(req: Any) -> dict[str, Any]:
    """``sweetspot run`` for a runtime build (:class:`generator.runner.RunRequest`): build, then
    run with the build-time schedule/capacitor (the host twin restarts after every reset, exit
    status 75; a twin resets itself); energy per step and QL in ``doc["energy"]["runtime"]``,
    the capacitor's power cycles and recharge time in ``doc["capacitor"]``. A real board runs
    through :func:`generator.runner.run`. Raises FirmwareFault (document attached) like it."""
    from generator.runner import build_for
    from generator.runner import run as plain_run

    board, art = build_for(req)
    if board.kind == "nucleo":
        doc = plain_run(req)
        doc["energy"] = document_energy(board, doc)
    else:
        doc = run_configured(board, req.app, art, None, timeout=req.timeout)
    rt = doc.get("app_info", {}).get("runtime") or {}
    if rt.get("capacitor"):
        c = rt["capacitor"]
        cap = Capacitor(c["capacitance_f"], c["v_on"], c["v_off"], c.get("harvest_w"))
        doc["capacitor"] = capacitor_summary(doc, cap)
    s = doc
    if s.get("faults"):
        f = s["faults"][0]
        err = FirmwareFault(f"firmware on {board.name} faulted ({f['kind']}) at pc=0x{f['pc']:08x}")
        err.document = doc  # type: ignore[attr-defined]
        raise err
    if s.get("status") != 0:
        why = doc.get("capacitor", {}).get("stuck", {}).get("message") or STATUS_TEXT.get(
            int(s.get("status") or 0), "")
        err = FirmwareFault(f"firmware on {board.name} ended with status {s.get('status')}"
                            + (f": {why}" if why else ""))
        err.document = doc  # type: ignore[attr-defined]
        raise err
    return doc


__all__ = ["CampaignReport", "block_images", "build", "capacitor_summary", "noinit_address",
           "power_fail_campaign", "run_capacitor", "run_configured", "run_request",
           "runtime_info", "wants_runtime"]
