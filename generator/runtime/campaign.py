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

import numpy as np

from generator.boards import Board, load_board
from generator.build import Artifacts, default_build_dir, run_scons
from generator.errors import AppError, FirmwareFault, ProtocolError, TargetError
from generator.firmware import MANIFEST
from generator.proc import end as end_process
from generator.proc import popen
from generator.runner import check_outputs, results_document
from generator.runtime.energy import document_energy
from generator.runtime.inject import stream_summary
from generator.runtime.layout import (
    FAIL_WHERE,
    QL_NAMES,
    RUNTIME_OPTION_KEYS,
    Capacitor,
    SimConfig,
    StepShape,
    decode_stats,
    encode_config,
    spread_points,
)
from generator.targets.base import MAX_CAPTURE_BYTES, RunOutput
from generator.targets.protocol import Parser

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
        console = bytearray()  # the start of it, for the log (MAX_CAPTURE_BYTES)
        parser = Parser()  # every boot's output, parsed as it is read, within the deadline
        late = ProtocolError(f"the host build {exe} did not finish within {timeout:g} s")
        boots = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise late
            with tempfile.TemporaryFile() as outf, tempfile.TemporaryFile() as errf:
                child = popen([str(exe)], stdin=subprocess.DEVNULL, stdout=outf, stderr=errf,
                              env=env)  # its own process group; dies with sweetspot
                try:
                    returncode = child.wait(timeout=left)
                except subprocess.TimeoutExpired:
                    raise late from None
                finally:
                    end_process(child)
                outf.seek(0)
                while chunk := outf.read(1 << 16):
                    if time.monotonic() > deadline:
                        raise late
                    if len(console) < MAX_CAPTURE_BYTES:
                        console += chunk[:MAX_CAPTURE_BYTES - len(console)]
                    parser.feed(chunk)
                errf.seek(0)
                err = errf.read(4096).decode(errors="replace").strip()
            boots += 1
            if returncode != RESET_EXIT:
                break
            if boots >= max_boots:
                raise TargetError(f"the host build {exe} reset {boots} times without finishing "
                                  "(a step that never completes?)")
    session = parser.finish()
    if not session.done:
        raise ProtocolError(f"the host build {exe} ended (status {returncode}) without an "
                            "END record" + (f": {err}" if err else ""))
    out = RunOutput(board=board.name, session=session, exit_code=returncode,
                    wall_s=time.monotonic() - t0, console=bytes(console))
    out.extra["host_boots"] = boots
    return out


def run_configured(board: Board, app: str, art: Artifacts, cfg: SimConfig | None,
                   nvm_image: bytes | None = None, timeout: float = 120.0,
                   max_boots: int = 1_000_000, host_twin: bool = False) -> dict[str, Any]:
    """Run a runtime build once with a config block (None: no config, the build's own
    power_fail/capacitor options apply) and optionally an NVM image; returns the results
    document (status and checks included, no exception for a non-zero status).

    With ``host_twin``, a lossy run's outputs are compared with the host twin's
    (:func:`host_twin_check`); without it they stay unchecked (``ok`` false)."""
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
    doc["power_failures"] = power_failures(doc)
    doc["checks"] = check_outputs(app, doc) if doc["status"] == 0 else {}
    if host_twin and doc["status"] == 0:
        host_twin_check(board, app, art, doc, cfg, timeout=timeout)
    return doc


def power_failures(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The power failures of a run as the firmware reports them: how many, and where each hit
    (before the step's tensor writes were complete, inside its record write, after its
    commit)."""
    where = decode_stats(doc).fail_where
    return {"total": sum(where.values()), "where": where}


# ---- lossy runs: the host twin and the injector's Python twin ------------------------------

def injector_check(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The firmware's flips per quality level (count and hash of their stream positions, for
    the bits it says it wrote) against the Python twin (:mod:`generator.runtime.inject`) for
    the run's seed."""
    m = doc.get("metrics", {})
    if f"rt.bits.{QL_NAMES[0]}" not in m:
        return {"ok": False, "error": "the run reported no injector counters (rt.bits.*)"}
    bits = [int(m[f"rt.bits.{q}"]) for q in QL_NAMES]
    seed = int(m.get("rt.seed", 0)) & 0xFFFFFFFF
    on = bool(m.get("rt.inject", 0))
    want = stream_summary(seed, bits) if on else [
        {"ql": i, "bits": b, "flips": 0, "hash": 0x811C9DC5} for i, b in enumerate(bits)]
    got = [{"ql": i, "bits": bits[i], "flips": int(m[f"rt.flip.{q}"]),
            "hash": int(m[f"rt.hash.{q}"]) & 0xFFFFFFFF} for i, q in enumerate(QL_NAMES)]
    return {"ok": got == want, "seed": seed, "inject": on,
            "flips": {q: g["flips"] for q, g in zip(QL_NAMES, got)},
            "expected_flips": {q: w["flips"] for q, w in zip(QL_NAMES, want)}}


def host_twin_config(cfg: SimConfig | None) -> SimConfig | None:
    """The config the host twin runs with: the firmware run's own (same seed, same failure
    points). A seam for tests that need a deliberately wrong expectation."""
    return cfg


def host_twin_dir(art: Artifacts) -> Path:
    return art.build_dir.parent / f"{art.build_dir.name}.host-twin"


def host_twin_check(board: Board, app: str, art: Artifacts, doc: dict[str, Any],
                    cfg: SimConfig | None = None, timeout: float = 120.0) -> None:
    """Complete the checks of a lossy run (write errors at Q1..Q4): its outputs must equal,
    byte for byte, those of the host twin built from the same options (same generated C, same
    injector, same seed, same failure points), and the flips it reports must equal the Python
    twin's. The deviation from TFLM stays in each entry as information
    (``deviation_from_tflm``). On the host itself the run *is* the host twin: only the
    injector is checked (``host_twin_equal`` is None)."""
    pending = {k: v for k, v in doc.get("checks", {}).items()
               if v.get("reference") == "host twin"}
    if not pending:
        return
    inj = injector_check(doc)
    doc["injector_check"] = inj
    twin_outputs: dict[str, Any] | None = None
    if not board.is_host:
        host = load_board("host")
        hart = run_scons(host, app, dict(doc.get("options", {})), host_twin_dir(art))
        hdoc = run_configured(host, app, hart, host_twin_config(cfg), timeout=timeout)
        if hdoc["status"] != 0:
            raise TargetError(f"the host twin of this run ({hart.build_dir}) ended with status "
                              f"{hdoc['status']}")
        twin_outputs = hdoc["outputs"]
        doc["host_twin"] = {"build_dir": str(hart.build_dir), "seed": hdoc["metrics"].get(
            "rt.seed"), "failures": hdoc["metrics"].get("rt.failures")}
    for name, entry in pending.items():
        entry.pop("error", None)
        if twin_outputs is None:
            entry["reference"] = "injector twin (this run is the host twin)"
            entry["ok"] = bool(inj["ok"])
            continue
        mine, theirs = doc["outputs"].get(name), twin_outputs.get(name)
        if mine is None or theirs is None or mine["dtype"] != theirs["dtype"] or \
                len(mine["values"]) != len(theirs["values"]):
            entry.update(ok=False, host_twin_equal=False, mismatches=None,
                         error="the host twin reported this output differently (shape/dtype)")
            continue
        a = np.asarray(mine["values"], dtype=mine["dtype"])
        b = np.asarray(theirs["values"], dtype=theirs["dtype"])
        equal = a.tobytes() == b.tobytes()
        entry["host_twin_equal"] = equal
        entry["mismatches"] = int(np.count_nonzero(a != b))
        entry["ok"] = bool(equal and inj["ok"])
        if not inj["ok"]:
            entry["error"] = "the firmware's flips differ from the injector's Python twin"


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
    where: dict[str, int] = field(default_factory=dict)  # intended (the schedule)
    firmware_where: dict[str, int] = field(default_factory=dict)  # reported (rt.fail.*)
    per_step: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("board", "app", "points", "distinct", "runs",
                                              "wall_s", "boots",
                                              "failures", "missed", "lost", "torn",
                                              "mismatched_runs", "where", "firmware_where",
                                              "problems")}


def build(board_name: str, app: str, options: Mapping[str, Any],
          build_dir: Path | None = None) -> tuple[Board, Artifacts]:
    board = load_board(board_name)
    art = run_scons(board, app, dict(options),
                    build_dir or default_build_dir(board.name, app + "-rt"))
    return board, art


def _outputs(doc: Mapping[str, Any]) -> dict[str, list[Any]]:
    return {k: v["values"] for k, v in doc["outputs"].items()}


def _flips(doc: Mapping[str, Any]) -> dict[str, tuple[int, int, int]]:
    m = doc.get("metrics", {})
    return {q: (int(m.get(f"rt.bits.{q}", -1)), int(m.get(f"rt.flip.{q}", -1)),
                int(m.get(f"rt.hash.{q}", -1))) for q in QL_NAMES}


def power_fail_campaign(board: Board, app: str, art: Artifacts, count: int, seed: int = 0,
                        inferences: Sequence[int] = (0,), timeout: float = 600.0,
                        reference: Mapping[str, Any] | None = None) -> CampaignReport:
    """Deliver ``count`` word-granular power failures spread over every step (tensor writes,
    commits, right after commits), in as few runs as the firmware's schedule capacity allows
    (the points of one run interleave over all steps). Every run must finish with the
    uninterrupted run's outputs, deliver every point, never lose a committed step, never accept
    a torn record, and the firmware must report each failure where the schedule put it
    (``rt.fail.tensor|commit|after`` against :meth:`StepShape.classify`).

    With write errors injected the uninterrupted run is the reference too: a re-executed step
    draws the flips of its first attempt (``ss_inject_attempt``), so every run must also report
    exactly the uninterrupted run's flips (bits, count and hash per level), and those must be
    the injector's Python twin's for the seed."""
    rt = runtime_info(art)
    shape = StepShape.from_runtime(rt)
    t0 = time.monotonic()
    ref = reference or run_configured(board, app, art, SimConfig(), timeout=timeout)
    if ref["status"] != 0:
        raise TargetError(f"the uninterrupted run on {board.name} ended with status "
                          f"{ref['status']}")
    bad = [k for k, v in ref.get("checks", {}).items()
           if not v.get("ok") and v.get("reference") != "host twin"]
    want = _outputs(ref)
    want_flips = _flips(ref)
    points = spread_points(shape, count, seed, inferences)
    cap = int(rt["sched_capacity"])
    nruns = max(1, -(-len(points) // cap))
    rep = CampaignReport(board.name, app, len(points), nruns, 0.0, len(set(points)))
    if bad:
        rep.problems.append(f"the uninterrupted run's outputs fail their check: {', '.join(bad)}")
    if rt.get("inject"):
        inj = injector_check(ref)
        if not inj["ok"]:
            rep.problems.append("the uninterrupted run's flips differ from the injector's Python "
                                f"twin: {inj}")
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
        for w, n in st.fail_where.items():
            rep.firmware_where[w] = rep.firmware_where.get(w, 0) + n
        if doc["status"] != 0:
            rep.problems.append(f"run {r}: status {doc['status']}")
        if _outputs(doc) != want:
            rep.mismatched_runs += 1
            rep.problems.append(f"run {r}: outputs differ from the uninterrupted run")
        if _flips(doc) != want_flips:
            rep.problems.append(f"run {r}: the injector's flips differ from the uninterrupted "
                                "run's (a re-executed step drew different flips)")
        if m.get("rt.failures", 0) != len(chunk):
            rep.problems.append(f"run {r}: {m.get('rt.failures', 0)} failures delivered of "
                                f"{len(chunk)} points")
    if rep.missed:
        rep.problems.append(f"{rep.missed} points were never reached")
    if rep.lost:
        rep.problems.append(f"{rep.lost} boots lost a committed step")
    if rep.torn:
        rep.problems.append(f"{rep.torn} boots accepted a torn or corrupt record")
    intended = {w: rep.where.get(w, 0) for w in FAIL_WHERE}
    if rep.firmware_where != intended:
        rep.problems.append(f"the firmware reports failures at {rep.firmware_where}; the "
                            f"schedule put them at {intended}")
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
        doc["power_failures"] = power_failures(doc)
        if doc.get("status") == 0:
            host_twin_check(board, req.app, art, doc, None, timeout=req.timeout)
    else:
        doc = run_configured(board, req.app, art, None, timeout=req.timeout, host_twin=True)
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
