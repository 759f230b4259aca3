"""The intermittent runtime on a target (the four QEMU twins by default, or a real board):
outputs against numpy, the target's injector against the Python twin bit for bit, power-failure
campaigns, blank/garbage/half-written NVM at boot, the capacitor model.

Tests that preload the runtime's config block or an NVM image need a QEMU twin (QEMU's generic
loader); on a real board they are skipped, the others use build-time options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from generator.build import run_scons
from generator.runtime import nvmtest as nt
from generator.runtime.campaign import (
    injector_check,
    power_fail_campaign,
    run_capacitor,
    run_configured,
)
from generator.runtime.inject import stream_summary
from generator.runtime.layout import (
    RECORD_WORDS,
    SimConfig,
    assign_qls,
    encode_record,
    parse_capacitor,
    plan_persistence,
)
from generator.runtime.quality import QUALITY_LEVELS

CAMPAIGN_POINTS = 100  # per twin in the default suite; the slow suite does 1,500
_BUILDS: dict[tuple[str, str], Any] = {}


def _twin_only(dut: Any) -> None:
    if dut.board.kind != "qemu":
        pytest.skip("preloading the config block / NVM needs a QEMU twin")


def _build(dut: Any, name: str, **options: Any):
    """Build once per board and configuration (own directory: option values may hold commas)."""
    key = (dut.board.name, name)
    if key not in _BUILDS:
        d = dut.build_root / dut.board.name / f"rt-{name}"
        _BUILDS[key] = run_scons(dut.board, "nvmtest", options, d)
    return _BUILDS[key]


def _run_built(dut: Any, art: Any) -> dict:
    """Run a build the ordinary way (no preloaded config): works on a real board too."""
    from generator.runner import check_outputs, results_document
    from generator.targets import target_for

    kwargs = {"probe_uid": dut.probe_uid, "serial_port": dut.serial_port} \
        if dut.board.kind == "nucleo" else {}
    out = target_for(dut.board, **kwargs).run(art, timeout=dut.timeout)
    doc = results_document(dut.board, "nvmtest", art, out)
    doc["checks"] = check_outputs("nvmtest", doc) if doc["status"] == 0 else {}
    return doc


@pytest.fixture
def chain(dut: Any):
    return dut, _build(dut, "chain-q2", ql="Q2", inject="off")


def _ok(doc: dict) -> bool:
    return doc["status"] == 0 and bool(doc["checks"]) and all(
        c["ok"] for c in doc["checks"].values())


def test_chain_outputs_match_numpy(chain: Any) -> None:
    dut, art = chain
    doc = _run_built(dut, art)
    assert _ok(doc)
    m = doc["metrics"]
    assert m["rt.boots"] == 1 and m["rt.first_resume"] == 0 and m["rt.lost"] == 0
    # every layer ran once per inference and wrote its output at Q2, every commit at Q0
    assert m["rt.L3.done"] == 2 and m["rt.L3.w.Q2"] == 2 * 76 and m["rt.L3.w.Q0"] == 2 * 8


def test_injected_chain_matches_numpy_with_twin_flips(dut: Any, tmp_path: Path) -> None:
    """Write errors change the outputs exactly as numpy + the Python twin's flips predict, and
    the flips themselves are the twin's (every twin; the stress mode adds millions of words on
    qemu_m33/qemu_m0, every twin with -m slow)."""
    qmap = tmp_path / "qmap.json"
    qmap.write_text('{"default": "Q3", "L1": "Q4", "L3": "Q4", "output": "Q2"}')
    doc = dut.run("nvmtest", ql_map=str(qmap), inject="on", seed=99)
    assert _ok(doc)
    m = doc["metrics"]
    assert m["rt.flip.Q4"] + m["rt.flip.Q3"] > 5  # the outputs really carry flips
    # the injector's identity on every core (M0, M4, M7, M33) in the default suite: flip counts
    # and the hash of their stream positions per level equal the Python twin's
    inj = injector_check(doc)
    assert inj["ok"], inj
    # and they differ from the fault-free outputs
    plan = plan_persistence(nt.synthetic_graph(), assign_qls(nt.synthetic_graph()), 2)
    clean = nt.reference(plan, nt.make_inputs(2))
    assert any(not np.array_equal(doc["outputs"][f"out[{i}]"]["values"], clean[i])
               for i in range(2))


@pytest.mark.default_twins("qemu_m33", "qemu_m0")  # v8-M and v6-M (soft 64-bit); M4/M7: slow
def test_target_flips_equal_python_twin(dut: Any) -> None:
    """Stress mode: millions of words at every level; per level the flip count and the hash of
    the flipped bits' stream indices equal the Python twin's for the same seed. (The M4/M7
    twins check their flips in the default suite with test_injected_chain_...)"""
    seed = 0x5EED
    doc = dut.run("nvmtest", mode="stress", inject="on", seed=seed, timeout=300)
    m = doc["metrics"]
    bits = [m[f"rt.bits.{q.name}"] for q in QUALITY_LEVELS]
    assert bits == [32 * w for w in nt.STRESS_WORDS]
    want = stream_summary(seed, bits)
    got = [{"ql": i, "bits": bits[i], "flips": m[f"rt.flip.{q.name}"],
            "hash": m[f"rt.hash.{q.name}"] & 0xFFFFFFFF} for i, q in enumerate(QUALITY_LEVELS)]
    assert got == want
    assert sum(g["flips"] for g in got) > 1000


def test_power_fail_campaign(chain: Any) -> None:
    dut, art = chain
    _twin_only(dut)
    rep = power_fail_campaign(dut.board, "nvmtest", art, CAMPAIGN_POINTS, seed=11,
                              inferences=(0, 1))
    assert rep.ok, rep.problems
    # one boot more than failures per run (the schedule holds 64 points on the M0 twin)
    assert rep.failures == CAMPAIGN_POINTS and rep.boots == CAMPAIGN_POINTS + rep.runs
    assert rep.where["tensor"] > 0 and rep.where["commit"] > 0


def test_garbage_nvm_at_boot(chain: Any) -> None:
    dut, art = chain
    _twin_only(dut)
    plan = plan_persistence(nt.synthetic_graph(), assign_qls(nt.synthetic_graph(), "Q2"), 2)
    img = np.random.default_rng(3).integers(0, 256, 4 * plan.nvm_words, dtype=np.uint8)
    doc = run_configured(dut.board, "nvmtest", art, SimConfig(keep_nvm=True),
                         nvm_image=img.tobytes())
    assert _ok(doc) and doc["metrics"]["rt.first_resume"] == 0


def test_half_written_nvm_at_boot(chain: Any) -> None:
    """Steps 0..3 committed (numpy's tensors in their slots), step 4's output half garbage and
    its record torn after 5 words: the target must resume at step 4 and finish correctly."""
    dut, art = chain
    _twin_only(dut)
    g = nt.synthetic_graph()
    plan = plan_persistence(g, assign_qls(g, "Q2"), 2)
    img = bytearray(4 * plan.nvm_words)
    x = nt.make_inputs(2)[0]
    vals = {0: x}
    for i in range(3):  # layers 0..2 = steps 1..3
        op, ins, out, params = nt.LAYERS[i]
        vals[out] = nt.layer_fn(op, params, [vals[t] for t in ins])
    for t in (0, 1, 2, 3):
        s = plan.slots[t]
        img[4 * s.word:4 * s.word + vals[t].size] = vals[t].tobytes()
    img[0:32] = encode_record(plan.layout_id, 3, 2)  # seq 3: step 2 (slot 0)
    img[32:64] = encode_record(plan.layout_id, 4, 3)  # seq 4: step 3 (slot 1)
    torn = encode_record(plan.layout_id, 5, 4)  # seq 5 going to slot 0, torn
    img[0:4 * 5] = torn[:4 * 5]
    s4 = plan.slots[4]
    img[4 * s4.word:4 * s4.word + 100] = bytes(range(100))
    doc = run_configured(dut.board, "nvmtest", art, SimConfig(keep_nvm=True),
                         nvm_image=bytes(img))
    assert _ok(doc)
    assert doc["metrics"]["rt.first_resume"] == 4
    assert RECORD_WORDS == 8


def test_capacitor_power_cycles(chain: Any) -> None:
    dut, art = chain
    _twin_only(dut)
    cap = parse_capacitor("C=300nF,von=3.3,voff=1.8,harvest=100uW")
    doc = run_capacitor(dut.board, "nvmtest", art, cap)
    assert _ok(doc)
    c = doc["capacitor"]
    assert c["power_cycles"] >= 2 and c["boots"] == c["power_cycles"] + 1
    assert c["recharge_s_total"] > 0
    tiny = run_capacitor(dut.board, "nvmtest", art, parse_capacitor("C=1nF,von=3.3,voff=1.8"))
    assert tiny["status"] == 4 and "can never complete" in tiny["capacitor"]["stuck"]["message"]


@pytest.mark.default_twins("qemu_m33")
def test_capacitor_built_in(dut: Any) -> None:
    """The capacitor from a build option: runs on a real board too (SYSRESETREQ, .noinit). On
    the twins the preloaded-config test covers the same firmware path: one twin suffices by
    default (test_capacitor_power_cycles runs on every twin)."""
    art = _build(dut, "cap", ql="Q2", inject="off", capacitor="C=300nF,von=3.3,voff=1.8")
    doc = _run_built(dut, art)
    assert _ok(doc)
    assert doc["metrics"]["rt.cap.failures"] >= 2


@pytest.mark.slow
def test_power_fail_campaign_large(dut: Any) -> None:
    _twin_only(dut)
    mode = "chain512" if dut.board.name == "qemu_m0" else "chain2048"  # 16 KiB of RAM on M0
    art = _build(dut, "chain-big", ql="Q2", inject="off", mode=mode)
    rep = power_fail_campaign(dut.board, "nvmtest", art, 1500, seed=12, inferences=(0, 1))
    assert rep.ok, rep.problems
    assert rep.failures == 1500 and rep.boots == 1500 + rep.runs


def test_tick_points(chain: Any) -> None:
    """Counter-tick failure points (a twin's SysTick under icount is deterministic): 1 tick into
    an attempt is due at its first poll; a point far beyond the attempt's length is missed (the
    step completes first) and counted."""
    from generator.runtime.layout import POINT_TICKS, FailPoint

    dut, art = chain
    _twin_only(dut)
    pts = (FailPoint(2, POINT_TICKS, 1), FailPoint(4, POINT_TICKS, 1),
           FailPoint(9, POINT_TICKS, (1 << 30) - 1))
    doc = run_configured(dut.board, "nvmtest", art, SimConfig(points=pts))
    assert _ok(doc)
    m = doc["metrics"]
    assert m["rt.failures"] == 2 and m["rt.missed"] == 1 and m["rt.boots"] == 3
    assert m["rt.L1.attempts"] == 3 and m["rt.L3.attempts"] == 3  # 2 inferences + 1 retry each
