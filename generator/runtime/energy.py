"""The research's energy model.

E(task) = E_cycle · #cycles + (E_cycle + E_memWrite(QL)) · #memWrites

* ``E_cycle`` in pJ is the board's active power in µW/MHz (numerically pJ per cycle).
* ``#cycles`` is what the board's counter measures: CPU cycles on a real board (DWT or SysTick),
  but on a QEMU twin the *instructions the emulator executed* (SysTick under ``-icount``). An
  instruction count is not a cycle count: the emulator models no pipeline, wait states or
  memory timing, and it is no bound either way (a dual-issue Cortex-M7 retires up to two
  instructions per cycle; flash wait states and multi-cycle instructions add cycles). Every
  figure from a twin is labelled as instructions (:func:`counter_unit`).
* ``E_memWrite(QL)`` is the STT-MRAM write energy per bit at a quality level (32 nm figures),
  times the bits a write carries.

The quality-level table is data, in :mod:`generator.runtime.quality`.
"""

from __future__ import annotations

from typing import Any

from generator.boards import Board
from generator.runtime.layout import decode_stats
from generator.runtime.quality import quality_level


def task_energy_pj(board: Board, cycles: int, writes: int = 0, bits_per_write: int = 32,
                   ql: str = "Q0") -> dict[str, float]:
    """Energy of one task in pJ, split into compute and persistence."""
    e_cycle = board.pj_per_cycle
    e_write = quality_level(ql).write_pj_per_bit * bits_per_write
    compute = e_cycle * cycles
    persist = (e_cycle + e_write) * writes
    return {"compute_pj": compute, "persist_pj": persist, "total_pj": compute + persist}


def counter_unit(board: Board) -> dict[str, str]:
    """What the energy model's #cycles are on this board, for labels and JSON: ``unit``
    ("instructions" on a QEMU twin, "cycles" on a real board, "none" without a counter),
    ``source`` and a ``note`` saying what the figure is and is not."""
    if board.kind == "qemu":
        return {"unit": "instructions", "source": "QEMU twin (emulated, -icount)",
                "note": "instructions executed by the emulator, not silicon cycles (no "
                        "pipeline, wait states or memory timing; no bound on cycles either "
                        "way); E_cycle is applied per instruction"}
    if board.counter_kind == "none":
        return {"unit": "none", "source": f"{board.name} (no counter)",
                "note": "this target has no cycle counter: compute energy is not measured"}
    return {"unit": "cycles", "source": f"{board.name} ({board.counter_kind} counter)",
            "note": "CPU cycles measured on the board"}


def compute_energy(board: Board, cycles: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Compute-only energy for each measured span (no persistent writes counted). The count is
    the board's counter: instructions executed by the emulator on a QEMU twin (labelled so:
    not silicon cycles), CPU cycles on a real board (:func:`counter_unit`)."""
    cu = counter_unit(board)
    unit = cu["unit"]
    out: dict[str, Any] = {"pj_per_cycle": board.pj_per_cycle, **cu, "spans": {}}
    per = " × emulated instructions" if unit == "instructions" else ""
    lines = [f"  energy at {board.pj_per_cycle:g} pJ/cycle{per} ({board.name}, {board.core}; "
             f"counts: {unit} from {cu['source']}):"]
    for name, c in cycles.items():
        n = c.get("cycles", c.get("instructions"))
        if n is None or name.startswith("rt."):  # the runtime's counters: see runtime_energy
            continue
        e = task_energy_pj(board, int(n))
        out["spans"][name] = {unit: int(n), **e}
        lines.append(f"    {name:<22} {int(n):>14,} {unit:<12}  {e['total_pj'] / 1e6:>12.4f} µJ")
    if unit == "instructions":
        lines.append("    (emulated instruction counts, not silicon cycles)")
    out["summary"] = "\n".join(lines)
    return out


# ---- the intermittent runtime's counters ---------------------------------------------------

def write_pj_per_word(ql: str, bits_per_word: int = 32) -> float:
    """E_memWrite(QL) for one word: the level's write energy per bit times the bits."""
    return quality_level(ql).write_pj_per_bit * bits_per_word


def runtime_energy(board: Board, stats: Any) -> dict[str, Any]:
    """Energy per step row (input persist, each layer), per quality level and per inference
    from the runtime's counters (:class:`generator.runtime.layout.RuntimeStats`), with the
    research's
    model: ``E = E_cycle·#cycles + (E_cycle + E_memWrite(QL))·#memWrites`` where #cycles are the
    compute, restore, persist and commit counts of the board's counter (on a QEMU twin the
    emulator's instruction counts, not silicon cycles: ``unit`` says which; injection is
    reported apart and not counted) and a memWrite is one 32-bit NVM word. The row keys keep
    the model's name (``cycles``, ``compute_cycles``, ...) whatever the unit.

    Counters add up over every boot of the run (re-executions after power failures included)
    and over all inferences; ``per_inference`` divides by the number of inferences."""
    e_cycle = board.pj_per_cycle
    rows = []
    per_ql: dict[str, dict[str, float]] = {}
    tot = {"cycles": 0, "inject_cycles": 0, "words": 0, "compute_pj": 0.0, "persist_pj": 0.0,
           "write_pj": 0.0, "total_pj": 0.0}
    for r in stats.rows:
        c = r.cycles
        compute = c.get("compute", 0) + c.get("restore", 0)
        persist = c.get("persist", 0) + c.get("commit", 0)
        cycles = compute + persist
        write = 0.0
        words = 0
        for ql, n in r.words.items():
            e = (e_cycle + write_pj_per_word(ql)) * n
            write += e
            words += n
            q = per_ql.setdefault(ql, {"words": 0, "bits": 0, "calls": 0, "write_pj": 0.0})
            q["words"] += n
            q["bits"] += 32 * n
            q["calls"] += r.calls.get(ql, 0)
            q["write_pj"] += e
        row = {
            "row": r.name, "cycles": cycles, "compute_cycles": c.get("compute", 0),
            "restore_cycles": c.get("restore", 0), "persist_cycles": c.get("persist", 0),
            "commit_cycles": c.get("commit", 0), "inject_cycles": c.get("inject", 0),
            "words": dict(r.words), "calls": dict(r.calls), "attempts": r.attempts,
            "done": r.done,
            "compute_pj": e_cycle * compute, "persist_pj": e_cycle * persist, "write_pj": write,
            "total_pj": e_cycle * cycles + write,
        }
        rows.append(row)
        tot["cycles"] += cycles
        tot["inject_cycles"] += c.get("inject", 0)
        tot["words"] += words
        for k in ("compute_pj", "persist_pj", "write_pj", "total_pj"):
            tot[k] += row[k]
    n_inf = max(1, int(stats.inferences))
    return {
        "pj_per_cycle": e_cycle,
        **counter_unit(board),
        "model": "E = E_cycle*cycles + (E_cycle + E_memWrite(QL))*memWrites (32-bit words)",
        "rows": rows,
        "per_ql": per_ql,
        "total": tot,
        "inferences": n_inf,
        "per_inference": {k: v / n_inf for k, v in tot.items()},
    }


def format_runtime_energy(rep: dict[str, Any]) -> str:
    """The runtime energy report as a table (µJ, over all inferences and boots). On a twin the
    count columns are emulated instructions, and say so."""
    unit = rep.get("unit", "cycles")
    instr = unit == "instructions"
    per = " × emulated instructions" if instr else ""
    count, commit = {"instructions": ("instructions", "commit instr"),
                     "none": ("no counter", "no counter")}.get(unit, ("cycles", "commit cyc"))
    source = f" from {rep['source']}" if rep.get("source") else ""
    lines = [f"  runtime energy at {rep['pj_per_cycle']:g} pJ/cycle{per} "
             f"({rep['inferences']} inference(s), all boots; counts: {unit}{source}):",
             f"    {'step':<8} {count:>12} {commit:>12} {'words':>9} {'compute µJ':>11} "
             f"{'persist µJ':>11} {'write µJ':>10} {'total µJ':>10}"]
    for r in rep["rows"]:
        lines.append(
            f"    {r['row']:<8} {r['cycles']:>12,} {r['commit_cycles']:>12,} "
            f"{sum(r['words'].values()):>9,} {r['compute_pj'] / 1e6:>11.4f} "
            f"{r['persist_pj'] / 1e6:>11.4f} {r['write_pj'] / 1e6:>10.4f} "
            f"{r['total_pj'] / 1e6:>10.4f}")
    t = rep["total"]
    lines.append(
        f"    {'total':<8} {t['cycles']:>12,} {'':>12} {t['words']:>9,} "
        f"{t['compute_pj'] / 1e6:>11.4f} {t['persist_pj'] / 1e6:>11.4f} "
        f"{t['write_pj'] / 1e6:>10.4f} {t['total_pj'] / 1e6:>10.4f}")
    lines.append(f"    per inference: {rep['per_inference']['total_pj'] / 1e6:.4f} µJ; "
                 "writes per QL: " + ", ".join(
                     f"{q} {v['words']:,} words {v['write_pj'] / 1e6:.4f} µJ"
                     for q, v in sorted(rep["per_ql"].items())))
    if instr:
        lines.append("    (emulated instruction counts, not silicon cycles)")
    return "\n".join(lines)


def document_energy(board: Board, doc: dict[str, Any]) -> dict[str, Any]:
    """The energy section of a results document: compute energy of the measured spans and,
    for a build with the intermittent runtime, :func:`runtime_energy` of its counters."""
    out = compute_energy(board, doc.get("cycles", {}))
    if doc.get("app_info", {}).get("runtime") and doc.get("status") is not None:
        rep = runtime_energy(board, decode_stats(doc))
        out["runtime"] = rep
        out["summary"] = out["summary"] + "\n" + format_runtime_energy(rep)
    return out
