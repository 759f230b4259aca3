"""``sweetspot wakeup``: train the screener, evaluate it with the back end on both splits, sweep
the degradation knobs, run the ``wakeup`` app on the twins for the instruction counts, compute the
energy per input and write a Markdown + JSON report with PNG plots.

Everything is written into a temporary directory next to ``out_dir`` and renamed into place, so
a failure leaves no half-made report.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from generator.boards import load_board
from generator.errors import AppError
from generator.wakeup import backend, data, degrade, metrics
from generator.wakeup import screener as S
from generator.wakeup.energy import Counts, energy_per_input, monitor_power

QLS = (None, "Q0", "Q1", "Q2", "Q3", "Q4")
READ_ERRORS = (0.0, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
CODE_BITS = {False: (8, 6, 5, 4, 3), True: (7, 6, 5, 4, 3)}
PRIORS = (0.001, 0.01, 0.05, 0.1, 0.5)
T_S = (0.5e-3, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3, 50e-3)
FRONT_TWIN, SERVICE_TWIN = "qemu_m0", "qemu_m33"


@dataclass
class Options:
    out_dir: Path
    twin_beats: int = 400          # beats streamed on each twin (0: no twin runs)
    prior: float = 0.1             # deployment prior of abnormal beats
    seed: int = 1
    build_root: Path | None = None
    log: Callable[[str], None] = field(default=lambda s: None)


def _flat(sm: dict[str, Any]) -> dict[str, Any]:
    keep = ("screener_macro_f1_abnormal", "system_macro_f1_abnormal", "wake_rate_normal",
            "wake_rate_abnormal", "silent_errors", "silent_error_rate", "wake_causes_normal",
            "wake_causes_abnormal")
    return {k: sm[k] for k in keep if k in sm}


def evaluate(split: data.Split, be: np.ndarray, cfg: S.ScreenerConfig | None = None
             ) -> tuple[S.Screener, dict[str, Any]]:
    s = S.train(split.x_train, split.y_train, len(data.CLASSES), cfg)
    r = S.classify(s, split.x_test)
    sm = metrics.summary(split.y_test, r.decision, r.status, be, len(data.CLASSES))
    sm["bins"] = [int(b) for b in s.bins]
    return s, sm


def sweep(split: data.Split, be: np.ndarray, seed: int) -> list[dict[str, Any]]:
    rows = []
    for prot in (False, True):
        base = S.ScreenerConfig(protected=prot)
        s = S.train(split.x_train, split.y_train, len(data.CLASSES), base)
        for ql in QLS:
            for rer in READ_ERRORS:
                d = degrade.Degradation(ql, rer, seed)
                r = degrade.classify_degraded(s, split.x_test, d)
                sm = metrics.summary(split.y_test, r.decision, r.status, be, 4)
                rows.append({"table": "protected" if prot else "plain", "knob": "ql+read",
                             "ql": ql or "exact", "read_error": rer, "code_bits":
                             base.data_bits, **_flat(sm)})
        for bits in CODE_BITS[prot]:
            cfg = S.ScreenerConfig(protected=prot, code_bits=bits)
            sc = S.train(split.x_train, split.y_train, len(data.CLASSES), cfg)
            r = S.classify(sc, split.x_test)
            sm = metrics.summary(split.y_test, r.decision, r.status, be, 4)
            rows.append({"table": "protected" if prot else "plain", "knob": "compressed",
                         "ql": "exact", "read_error": 0.0, "code_bits": bits, **_flat(sm)})
    return rows


def twin_counts(opts: Options) -> dict[str, Any]:
    """Run the wakeup app on the always-on core's twin and the service core's twin."""
    from generator.runner import RunRequest, run

    root = opts.build_root or (opts.out_dir.parent / ".wakeup-build")
    out: dict[str, Any] = {}
    for board in (FRONT_TWIN, SERVICE_TWIN):
        opts.log(f"running wakeup on {board} ({opts.twin_beats} beats) ...")
        doc = run(RunRequest(board=board, app="wakeup", options={"inputs": opts.twin_beats},
                             build_dir=root / board, timeout=1800))
        stats = doc["outputs"]["wk_stats"]["values"]
        beats, wakes = int(stats[1]), int(stats[2])
        cyc = doc["cycles"]
        out[board] = {
            "checks_ok": all(v.get("ok") for v in doc["checks"].values()),
            "checks": doc["checks"], "beats": beats, "wakes": wakes, "boots": int(stats[3]),
            "screener_per_beat": cyc["screener"]["instructions"] / beats,
            "wake_boot_per_wake": cyc["wake_boot"]["instructions"] / max(wakes, 1),
            "mlp_per_wake": cyc["mlp"]["instructions"] / max(wakes, 1),
            "totals": cyc,
        }
    return out


def energy_table(counts: Counts, wake_normal: float, wake_abnormal: float, prior: float
                 ) -> dict[str, Any]:
    front, service = load_board("nucleo_g071"), load_board("nucleo_u575")
    mon = monitor_power(front)
    rows = [energy_per_input(counts, front, service, mon, t, wake_normal, wake_abnormal, prior)
            for t in T_S]
    return {"front_board": front.name, "front_pj_per_cycle": front.pj_per_cycle,
            "service_board": service.name, "service_pj_per_cycle": service.pj_per_cycle,
            "p_monitor_uw": mon.stop_uw, "p_monitor_source": mon.source,
            "counts": counts.__dict__, "rows": rows}


# ---- plots ---------------------------------------------------------------------------------

def _plots(doc: dict[str, Any], tmp: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    nom = doc["random"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, key, title in ((axes[0], "screener_confusion", "screener alone"),
                           (axes[1], "system_confusion", "system (wake-up + MLP)")):
        cm = np.asarray(nom[key])
        ax.imshow(cm, cmap="Blues")
        ax.set_xticks(range(4), data.CLASSES)
        ax.set_yticks(range(4), data.CLASSES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title)
        for i in range(4):
            for j in range(4):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(tmp / "confusion.png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    files.append("confusion.png")

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for table, style in (("plain", "--"), ("protected", "-")):
        rows = [r for r in doc["sweep"] if r["table"] == table and r["knob"] == "ql+read"
                and r["ql"] == "exact"]
        x = [max(r["read_error"], 1e-4) for r in rows]
        axes[0].semilogx(x, [r["screener_macro_f1_abnormal"] for r in rows], "o" + style,
                         label=f"{table}: screener")
        axes[0].semilogx(x, [r["system_macro_f1_abnormal"] for r in rows], "s" + style,
                         label=f"{table}: system")
        axes[1].semilogx(x, [r["wake_rate_normal"] for r in rows], "o" + style,
                         label=f"{table}: wake rate, normal beats")
        axes[1].semilogx(x, [r["silent_error_rate"] for r in rows], "x" + style,
                         label=f"{table}: silent errors")
    axes[0].set_xlabel("read error rate per bit (1e-4 = none)")
    axes[0].set_ylabel("macro-F1 over L/R/P")
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("read error rate per bit (1e-4 = none)")
    axes[1].set_ylabel("rate")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(tmp / "degradation.png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    files.append("degradation.png")

    if doc.get("energy"):
        rows = doc["energy"]["rows"]
        fig, ax = plt.subplots(figsize=(6, 4))
        t = [r["t_s"] * 1e3 for r in rows]
        ax.loglog(t, [r["e_total_nj"] for r in rows], "o-", label="wake-up system")
        ax.loglog(t, [r["e_always_nj"] for r in rows], "s--", label="MLP on every beat")
        ax.set_xlabel("monitoring period T_s (ms)")
        ax.set_ylabel("energy per input (nJ)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(tmp / "energy.png", dpi=100, metadata={"Software": None})
        plt.close(fig)
        files.append("energy.png")
    return files


# ---- Markdown ------------------------------------------------------------------------------

def _pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def markdown(doc: dict[str, Any]) -> str:
    L: list[str] = ["# Uncertainty-triggered wake-up: screener + int8 MLP on MIT-BIH beats", ""]
    L.append("Data: MIT-BIH records " + ", ".join(r for p in data.RECORDS.values() for r in p)
             + " (lead MLII, 360 Hz), 700 ms beats, |FFT| / 252 of the mean-free segment. "
             "Moody & Mark 2001; Goldberger et al. 2000 (PhysioNet), ODC-By 1.0.")
    L.append("")
    L.append("| split | bins | screener F1 (L/R/P) | system F1 (L/R/P) | wake normal | "
             "wake abnormal | silent errors |")
    L.append("|---|---|---|---|---|---|---|")
    for key in ("random", "patient"):
        s = doc[key]
        L.append(f"| {key} | {s['bins']} | {s['screener_macro_f1_abnormal']:.4f} | "
                 f"{s['system_macro_f1_abnormal']:.4f} | {_pct(s['wake_rate_normal'])} | "
                 f"{_pct(s['wake_rate_abnormal'])} | {s['silent_errors']} |")
    s = doc["random"]
    L += ["", "Wake-up causes (random split), fraction of beats:", "",
          "| beats | abnormal | ambiguous | invalid |", "|---|---|---|---|"]
    for g in ("normal", "abnormal"):
        c = s[f"wake_causes_{g}"]
        L.append(f"| {g} | {_pct(c['abnormal'])} | {_pct(c['ambiguous'])} | "
                 f"{_pct(c['invalid'])} |")
    L += ["", f"Back end alone (TFLM, int8 MLP): 4-class macro-F1 "
          f"{s['backend_macro_f1_all']:.4f} on the same test beats.", ""]
    t = doc["targets"]
    L += ["## Targets", "", "| target | value | met |", "|---|---|---|"]
    for name, (val, ok) in t.items():
        L.append(f"| {name} | {val} | {'yes' if ok else 'NO'} |")
    L += ["", "## Degradation sweep (random split)", "",
          "| table | knob | QL | read err | code bits | screener F1 | system F1 | wake normal |"
          " wake abnormal | invalid (normal) | silent errors |", "|---|---|---|---|---|---|---|"
          "---|---|---|---|"]
    for r in doc["sweep"]:
        L.append(f"| {r['table']} | {r['knob']} | {r['ql']} | {r['read_error']:g} | "
                 f"{r['code_bits']} | {r['screener_macro_f1_abnormal']:.4f} | "
                 f"{r['system_macro_f1_abnormal']:.4f} | {_pct(r['wake_rate_normal'])} | "
                 f"{_pct(r['wake_rate_abnormal'])} | "
                 f"{_pct(r['wake_causes_normal']['invalid'])} | {r['silent_errors']} |")
    if doc.get("twins"):
        L += ["", "## Twin runs (wakeup app)", "",
              "| twin | beats | wake-ups | equal to numpy twin + TFLM | screener instr/beat | "
              "wake boot instr/wake | MLP instr/wake |", "|---|---|---|---|---|---|---|"]
        for b, tw in doc["twins"].items():
            L.append(f"| {b} | {tw['beats']} | {tw['wakes']} | {tw['checks_ok']} | "
                     f"{tw['screener_per_beat']:.1f} | {tw['wake_boot_per_wake']:.1f} | "
                     f"{tw['mlp_per_wake']:.1f} |")
        L += ["", "Wake boot = instructions from the app's entry after the reset to the MLP's "
              "first layer; the startup code before the app (vector fetch, .data/.bss, clock) is "
              "not counted."]
    if doc.get("energy"):
        e = doc["energy"]
        L += ["", "## Energy per input", "",
              f"E = E_front + P_monitor·T_s + p_wake·E_service. E_front: screener instructions "
              f"on {FRONT_TWIN} × {e['front_board']} {e['front_pj_per_cycle']} pJ/cycle; "
              f"E_service: wake boot + MLP instructions on {SERVICE_TWIN} × "
              f"{e['service_board']} {e['service_pj_per_cycle']} pJ/cycle; P_monitor "
              f"{e['p_monitor_uw']} µW ({e['p_monitor_source']}); one instruction counted as "
              f"one cycle. Prior of abnormal beats {doc['prior']}. Counts: {e['counts']}.", "",
              "| T_s (ms) | p_wake | E_front (nJ) | P·T_s (nJ) | E_service (nJ) | E (nJ) | "
              "MLP every beat (nJ) | factor |", "|---|---|---|---|---|---|---|---|"]
        for r in e["rows"]:
            L.append(f"| {r['t_s'] * 1e3:g} | {r['p_wake']:.4f} | {r['e_front_nj']:.2f} | "
                     f"{r['e_monitor_nj']:.2f} | {r['e_service_nj']:.1f} | "
                     f"{r['e_total_nj']:.2f} | {r['e_always_nj']:.1f} | {r['factor']:.1f}× |")
    if doc.get("energy"):
        e = doc["energy"]
        L += ["", "At T_s = 2 ms for other priors of abnormal beats (the test set itself is "
              "balanced: prior 0.75 there):", "", "| prior | p_wake | E (nJ) | factor |",
              "|---|---|---|---|"]
        for r in e["priors_at_2ms"]:
            L.append(f"| {r['prior']:g} | {r['p_wake']:.4f} | {r['e_total_nj']:.2f} | "
                     f"{r['factor']:.1f}× |")
        L += ["", f"Even with no wake-up at all the factor at 2 ms cannot exceed "
              f"E_always / (E_front + P_monitor·T_s) = {e['bound_at_2ms']:.1f}× with these "
              "figures."]
    L += ["", "Plots: " + ", ".join(f"[{p}]({p})" for p in doc["plots"]), ""]
    return "\n".join(L)


def targets(doc: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    s = doc["random"]
    t = {
        "system macro-F1 >= 0.98 (random split)": (f"{s['system_macro_f1_abnormal']:.4f}",
                                                   s["system_macro_f1_abnormal"] >= 0.98),
        ">= 99 % of abnormal beats wake": (_pct(s["wake_rate_abnormal"]),
                                          s["wake_rate_abnormal"] >= 0.99),
        "<= 3 % of normal beats wake": (_pct(s["wake_rate_normal"]),
                                       s["wake_rate_normal"] <= 0.03),
    }
    prot = [r for r in doc["sweep"] if r["table"] == "protected"
            and r["screener_macro_f1_abnormal"] <= 0.75]
    if prot:
        worst = min(r["system_macro_f1_abnormal"] for r in prot)
        t["degraded (screener F1 <= 0.75), protected: system F1 >= 0.97"] = (
            f"min {worst:.4f} over {len(prot)} settings", worst >= 0.97)
    q = {r["ql"]: r["silent_errors"] for r in doc["sweep"] if r["table"] == "protected"
         and r["knob"] == "ql+read" and r["read_error"] == 0}
    t["protected: silent errors at Q4 <= at Q0"] = (f"Q4 {q['Q4']}, Q0 {q['Q0']}",
                                                    q["Q4"] <= q["Q0"])
    if doc.get("energy"):
        r2 = next(r for r in doc["energy"]["rows"] if abs(r["t_s"] - 2e-3) < 1e-12)
        t["energy at T_s = 2 ms >= 20x below MLP on every beat"] = (f"{r2['factor']:.1f}×",
                                                                    r2["factor"] >= 20)
    if doc.get("twins"):
        t["twin runs equal the numpy twin on every streamed beat"] = (
            ", ".join(f"{b}: {tw['beats']} beats" for b, tw in doc["twins"].items()),
            all(tw["checks_ok"] for tw in doc["twins"].values()))
    return t


def make_report(opts: Options) -> dict[str, Any]:
    if not 0 <= opts.twin_beats <= 4 * data.TEST_PER_CLASS:
        raise AppError(f"--twin-beats {opts.twin_beats} is out of range 0..3200")
    if not 0.0 <= opts.prior <= 1.0:
        raise AppError(f"--prior {opts.prior} must be a probability in [0, 1]")
    opts.log("loading MIT-BIH beats ...")
    beats = data.load_beats()
    doc: dict[str, Any] = {"prior": opts.prior, "seed": opts.seed,
                           "model": str(backend.MODEL.name)}
    splits = {"random": data.random_split(beats), "patient": data.patient_split(beats)}
    be = {}
    for key, sp in splits.items():
        opts.log(f"evaluating the {key} split ...")
        be[key] = backend.decide(backend.tflm_outputs(backend.mlp_inputs(sp.x_test)))
        _, doc[key] = evaluate(sp, be[key])
    opts.log("sweeping the degradation knobs ...")
    doc["sweep"] = sweep(splits["random"], be["random"], opts.seed)
    if opts.twin_beats > 0:
        doc["twins"] = twin_counts(opts)
        f, sv = doc["twins"][FRONT_TWIN], doc["twins"][SERVICE_TWIN]
        counts = Counts(f["screener_per_beat"], sv["wake_boot_per_wake"], sv["mlp_per_wake"])
        r = doc["random"]
        doc["energy"] = energy_table(counts, r["wake_rate_normal"], r["wake_rate_abnormal"],
                                     opts.prior)
        doc["energy"]["priors_at_2ms"] = [
            {k: row[k] for k in ("prior", "p_wake", "e_total_nj", "e_always_nj", "factor")}
            for prior in PRIORS
            for row in energy_table(counts, r["wake_rate_normal"], r["wake_rate_abnormal"],
                                    prior)["rows"] if abs(row["t_s"] - 2e-3) < 1e-12]
        row2 = next(x for x in doc["energy"]["rows"] if abs(x["t_s"] - 2e-3) < 1e-12)
        doc["energy"]["bound_at_2ms"] = row2["e_always_nj"] / (row2["e_front_nj"]
                                                               + row2["e_monitor_nj"])
    out = Path(opts.out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        doc["plots"] = _plots(doc, tmp)
        doc["targets"] = targets(doc)
        (tmp / "wakeup_report.json").write_text(json.dumps(doc, indent=1, default=float) + "\n")
        (tmp / "wakeup_report.md").write_text(markdown(doc))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return doc
