"""The energy model on hand-worked numbers: E = E_cycle·#cycles + (E_cycle + E_memWrite(QL))·
#memWrites, with E_cycle = the board's µW/MHz as pJ/cycle and E_memWrite = pJ/bit × 32."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from generator.boards import load_board
from generator.runtime.energy import (
    compute_energy,
    document_energy,
    format_runtime_energy,
    runtime_energy,
    task_energy_pj,
    write_pj_per_word,
)
from generator.runtime.layout import RowStats, RuntimeStats
from generator.runtime.quality import QUALITY_LEVELS


def test_ql_table_is_the_research_table() -> None:
    assert [(q.name, q.write_pj_per_bit, q.write_error_rate) for q in QUALITY_LEVELS] == [
        ("Q0", 167.0, 1e-8), ("Q1", 94.0, 1e-6), ("Q2", 74.0, 1e-5), ("Q3", 57.0, 1e-4),
        ("Q4", 43.0, 1e-3)]
    assert write_pj_per_word("Q3") == 57 * 32


def test_task_energy_hand_worked() -> None:
    b = load_board("qemu_m33")  # 12 µW/MHz = 12 pJ/cycle
    e = task_energy_pj(b, cycles=1000, writes=10, ql="Q4")
    assert e["compute_pj"] == 12_000
    assert e["persist_pj"] == 10 * (12 + 43 * 32)
    assert e["total_pj"] == 12_000 + 13_880


def _stats() -> RuntimeStats:
    a = RowStats("input", cycles={"compute": 0, "restore": 40, "persist": 60, "commit": 30,
                                  "inject": 7},
                 words={"Q0": 8, "Q1": 50}, calls={"Q0": 1, "Q1": 1}, attempts=1, done=1)
    b = RowStats("L0", cycles={"compute": 1000, "restore": 100, "persist": 200, "commit": 50,
                               "inject": 999},
                 words={"Q0": 8, "Q2": 100}, calls={"Q0": 1, "Q2": 2}, attempts=2, done=1)
    return RuntimeStats([a, b], {}, inferences=2)


def test_runtime_energy_hand_worked() -> None:
    rep = runtime_energy(load_board("qemu_m33"), _stats())
    r0, r1 = rep["rows"]
    # input: 12·130 + (12 + 167·32)·8 + (12 + 94·32)·50
    assert r0["total_pj"] == pytest.approx(12 * 130 + 5356 * 8 + 3020 * 50)
    # L0: 12·1350 + (12 + 5344)·8 + (12 + 2368)·100 (the 999 injection cycles do not count)
    assert r1["total_pj"] == pytest.approx(16_200 + 42_848 + 238_000)
    assert r1["compute_pj"] == 12 * 1100 and r1["persist_pj"] == 12 * 250
    assert r1["inject_cycles"] == 999
    assert rep["per_ql"]["Q0"]["words"] == 16 and rep["per_ql"]["Q0"]["bits"] == 512
    assert rep["per_ql"]["Q2"]["write_pj"] == pytest.approx(238_000)
    assert rep["total"]["total_pj"] == pytest.approx(r0["total_pj"] + r1["total_pj"])
    assert rep["per_inference"]["total_pj"] == pytest.approx(rep["total"]["total_pj"] / 2)
    text = format_runtime_energy(rep)
    assert "L0" in text and "per inference" in text


def test_compute_energy_leaves_runtime_spans_to_the_runtime_report() -> None:
    b = load_board("qemu_m33")
    out = compute_energy(b, {"infer": {"ticks": 20480, "instructions": 1000},
                             "rt.L0.compute": {"ticks": 2048, "instructions": 100}})
    assert set(out["spans"]) == {"infer"}
    assert out["spans"]["infer"]["total_pj"] == 12_000


def test_document_energy_decodes_runtime_records() -> None:
    b = load_board("qemu_m33")
    doc = {
        "status": 0,
        "app_info": {"runtime": {"persist": {"rows": ["input", "L0"], "inferences": 1}}},
        "cycles": {"rt.input.persist": {"ticks": 2048, "instructions": 100},
                   "rt.L0.compute": {"ticks": 20480, "instructions": 1000}},
        "metrics": {"rt.input.w.Q1": 10, "rt.input.c.Q1": 1, "rt.L0.attempts": 1},
    }
    e = document_energy(b, doc)["runtime"]
    assert e["rows"][0]["total_pj"] == pytest.approx(12 * 100 + (12 + 94 * 32) * 10)
    assert e["rows"][1]["total_pj"] == pytest.approx(12 * 1000)


# ---- what the counts are (issue 9, item 9) ----------------------------------------------------

NUMBER_THEN_CYCLES = re.compile(r"\d[\d,]*\s+cycles\b")


def test_twin_figures_are_labelled_emulated_instructions() -> None:
    twin = load_board("qemu_m7")  # dual-issue: instructions are no bound on its cycles
    out = compute_energy(twin, {"infer": {"ticks": 25600, "instructions": 1000}})
    assert out["unit"] == "instructions" and "QEMU twin" in out["source"]
    assert "not silicon cycles" in out["note"]
    assert out["spans"]["infer"]["instructions"] == 1000 and "cycles" not in out["spans"]["infer"]
    text = out["summary"]
    assert "instructions" in text and "emulated" in text and "QEMU twin" in text
    assert not NUMBER_THEN_CYCLES.search(text), text
    rep = runtime_energy(twin, _stats())
    assert rep["unit"] == "instructions"
    table = format_runtime_energy(rep)
    assert "instructions" in table and "emulated" in table and "commit cyc" not in table
    assert not NUMBER_THEN_CYCLES.search(table), table


def test_board_figures_are_cycles() -> None:
    board = load_board("nucleo_h743")
    out = compute_energy(board, {"infer": {"ticks": 1000, "cycles": 1000}})
    assert out["unit"] == "cycles" and out["spans"]["infer"]["cycles"] == 1000
    assert "1,000 cycles" in out["summary"] and "emulated" not in out["summary"]


def test_no_claim_that_instructions_bound_cycles() -> None:
    import generator.runtime.energy as energy

    text = Path(energy.__file__).read_text(encoding="utf-8")
    assert "lower bound" not in text
