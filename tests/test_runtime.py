"""The intermittent runtime's planning (quality levels, NVM layout, specs) and, on the host twin,
its behaviour: blank/garbage/half-written NVM at boot, power-failure campaigns, the capacitor,
and mutated runtimes that a campaign must catch."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from _util import require_host_cc, require_toolchain

from generator.boards import load_board
from generator.build import run_scons
from generator.errors import AppError, BuildError
from generator.runtime import nvmtest as nt
from generator.runtime.campaign import power_fail_campaign, run_capacitor, run_configured
from generator.runtime.layout import (
    CRITICAL_WORDS,
    RECORD_WORDS,
    FailPoint,
    PersistPlan,
    SimConfig,
    assign_qls,
    encode_config,
    encode_record,
    parse_capacitor,
    parse_power_fail,
    plan_persistence,
    rt_graph_from_ir,
    spread_points,
)

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"


def nvm_plan(n: int = nt.DEFAULT_N, inferences: int = 2, ql: str | None = None) -> PersistPlan:
    g = nt.synthetic_graph(n)
    return plan_persistence(g, assign_qls(g, ql), inferences)


# ---- quality levels ---------------------------------------------------------------------------

def test_uniform_ql_and_map() -> None:
    g = nt.synthetic_graph()
    assert set(assign_qls(g).values()) == {0}
    assert set(assign_qls(g, "Q3").values()) == {3}
    qls = assign_qls(g, "Q1", {"default": "Q2", "L3": "Q4", "input": "Q0", "t6": "Q3"})
    assert qls == {0: 0, 1: 2, 2: 2, 3: 2, 4: 4, 5: 2, 6: 3}


@pytest.mark.parametrize("level", ["Q1", "Q2", "Q3", "Q4"])
def test_lower_ql_for_the_critical_region_is_rejected(level: str) -> None:
    with pytest.raises(AppError) as e:
        assign_qls(nt.synthetic_graph(), "Q2", {"critical": level})
    msg = str(e.value)
    assert f"asks for {level} for the critical region" in msg
    assert "always written at Q0" in msg
    assign_qls(nt.synthetic_graph(), "Q2", {"critical": "Q0"})  # Q0 is fine


def test_lower_ql_for_critical_integer_tensor_is_rejected() -> None:
    g = nt.synthetic_graph()
    t = g.tensors[3]
    g = type(g)(g.name, g.sha256,
                tuple(type(x)(x.index, x.name, "int32" if x.index == 3 else x.dtype, x.nbytes,
                              x.ram_offset, x.producer, x.last, x.source) for x in g.tensors),
                g.layers, g.inputs, g.outputs)
    assert assign_qls(g, "Q4")[3] == 0  # uniform --ql leaves critical data at Q0
    with pytest.raises(AppError, match=f"tensor '{t.name}' \\(int32\\), which is critical"):
        assign_qls(g, None, {t.name: "Q3"})


@pytest.mark.parametrize("bad, needle", [
    ({"nope": "Q1"}, "names no tensor"),
    ({"default": "Q9"}, "'Q9' is unknown"),
    ({"L99": "Q1"}, "names no tensor"),
])
def test_ql_map_errors(bad: dict, needle: str) -> None:
    with pytest.raises(AppError, match=needle):
        assign_qls(nt.synthetic_graph(), None, bad)


def test_ql_map_file_errors(tmp_path: Path) -> None:
    with pytest.raises(AppError, match="does not exist"):
        assign_qls(nt.synthetic_graph(), None, tmp_path / "missing.json")
    p = tmp_path / "m.json"
    p.write_text("{not json")
    with pytest.raises(AppError, match="not valid JSON"):
        assign_qls(nt.synthetic_graph(), None, p)


def test_critical_ql_rejected_when_generating_firmware(tmp_path: Path) -> None:
    m = tmp_path / "map.json"
    m.write_text('{"default": "Q2", "critical": "Q3"}')
    with pytest.raises(BuildError, match="critical region"):
        run_scons(load_board("host"), "nvmtest", {"ql_map": str(m)}, tmp_path / "b")
    assert not (tmp_path / "b" / "firmware").exists()


# ---- NVM layout ---------------------------------------------------------------------------------

def _check_no_clobber(plan: PersistPlan) -> None:
    """While a step writes, everything the last committed state needs must stay intact: slots
    of tensors needed across the step boundary never overlap the slots written in the step."""
    g = plan.graph
    outputs = set(g.outputs)

    def words(t: int, inf: int) -> set[int]:
        s = plan.slots[t]
        base = s.word + s.stride_words * inf
        return set(range(base, base + s.words))

    for inf in range(plan.inferences):
        for phase in range(plan.steps_per_inference):
            layer = phase - 1
            written = g.inputs if phase == 0 else plan.persist_after[layer]
            # the committed state before this step: tensors produced before it and read at or
            # after it; plus all earlier inferences' results
            needed = [t.index for t in g.tensors if t.index in plan.slots
                      and t.producer < layer <= t.last and t.index not in written]
            w = set().union(*(words(t, inf) for t in written)) if written else set()
            for t in needed:
                assert not (w & words(t, inf)), (inf, phase, t)
            for prev in range(inf):
                for t in outputs:
                    assert not (w & words(t, prev)), (inf, phase, "results", prev)
            assert all(x >= CRITICAL_WORDS for x in w)
            assert all(x < plan.nvm_words for x in w)


def test_nvmtest_layout_never_clobbers_live_state() -> None:
    for n in (16, 301, 4099):
        plan = nvm_plan(n, 3)
        _check_no_clobber(plan)
        # the residual keeps t1 live across L1, L2: it must not share with t2 or t3
        assert plan.slots[1].word not in (plan.slots[2].word, plan.slots[3].word)


@pytest.mark.parametrize("name", ["digits_cnn_int8", "residual_int8", "digits_mlp_int8"])
def test_model_layouts_never_clobber_live_state(name: str) -> None:
    from generator.compiler.loader import load_model
    from generator.compiler.plan import plan_model

    graph = load_model(ROOT / "models" / f"{name}.tflite")
    g = rt_graph_from_ir(graph, plan_model(graph))
    plan = plan_persistence(g, assign_qls(g, "Q2"), 2)
    _check_no_clobber(plan)


def test_zoo_layouts_never_clobber_live_state(zoo_dir: Path) -> None:
    from generator.compiler.loader import load_model
    from generator.compiler.plan import plan_model

    checked = []
    for p in sorted(zoo_dir.glob("*.tflite")):
        graph = load_model(p)  # every zoo model loads (FDMobileNet folds, SqueezeNet has MUL)
        g = rt_graph_from_ir(graph, plan_model(graph))
        _check_no_clobber(plan_persistence(g, assign_qls(g, "Q1"), 1))
        checked.append(p.stem)
    # the zoo holds the research's eight benchmarks and the VWW model
    assert len(checked) >= 9, checked
    assert {"fdmobilenet_0.25_128_int8", "fdmobilenet_0.25_224_int8",
            "squeezenet_v1.0_128_int8"} <= set(checked), checked


# ---- specs ----------------------------------------------------------------------------------

def test_capacitor_budget_is_half_c_delta_v_squared() -> None:
    cap = parse_capacitor("C=47uF,von=3.3,voff=1.8,harvest=1mW")
    assert cap is not None
    # 0.5 * 47e-6 F * (3.3^2 - 1.8^2) V^2 = 179.775 µJ
    assert cap.budget_pj == pytest.approx(179.775e6)
    assert cap.recharge_s() == pytest.approx(179.775e-6 / 1e-3)
    assert parse_capacitor("none") is None
    assert parse_capacitor("c=100nF,von=2.5V,voff=1").budget_pj == pytest.approx(
        0.5 * 100e-9 * (2.5**2 - 1) * 1e12)


@pytest.mark.parametrize("spec, needle", [
    ("C=47uF,von=1.8,voff=3.3", "von > voff"),
    ("C=47uF,von=3.3", "needs C, von and voff"),
    ("C=abc,von=3,voff=1", "not a number"),
    ("C=1uF,von=3,voff=1,x=2", "unknown"),
    ("47uF", "not key=value"),
])
def test_capacitor_spec_errors(spec: str, needle: str) -> None:
    with pytest.raises(AppError, match=needle):
        parse_capacitor(spec)


def test_power_fail_specs() -> None:
    plan = nvm_plan()
    pts = parse_power_fail("L2:w10,input:w0,I1.L5:t999", plan)
    assert pts == [FailPoint(0, 0, 0), FailPoint(3, 0, 10), FailPoint(13, 1, 999)]
    assert parse_power_fail("none", plan) == []
    assert len(parse_power_fail("40", plan)) == 40
    for bad, needle in [("L9:w1", "not understood"), ("L2:w999999", "writes only"),
                        ("I5.L1:w1", "inference 5 does not exist"), ("x", "not understood")]:
        with pytest.raises(AppError, match=needle):
            parse_power_fail(bad, plan)


def test_spread_points_cover_tensors_commits_and_every_step() -> None:
    shape = nvm_plan().shape()
    pts = spread_points(shape, 700, seed=1)
    assert len(pts) == 700 and len(set(pts)) == 700  # 1,038 positions: all distinct
    assert {p.step for p in pts} == set(range(2 * shape.phases))
    where = [shape.classify(p) for p in pts]
    assert {"tensor", "commit", "after"} <= set(where)
    assert all(0 <= p.value <= shape.words(p.step) for p in pts)
    many = spread_points(shape, 3000, seed=1)  # more than the positions: all, then repeats
    assert len(many) == 3000 and len(set(many)) == sum(shape.words(s) + 1 for s in range(14))
    after = [p for p in many if shape.classify(p) == "after"]
    assert len(after) == len(set(after)) == 14  # never repeated: a done step does not rerun


def test_config_and_record_encoding() -> None:
    blob = encode_config(SimConfig(points=(FailPoint(3, 0, 7),), seed=5, capacitor_fj=2**40), 4)
    words = struct.unpack(f"<{len(blob) // 4}I", blob)
    assert words[3] == 1 and words[4] == 5 and (words[6] << 32 | words[5]) == 2**40
    assert words[7] == zlib.crc32(blob[:28] + blob[32:])
    with pytest.raises(AppError, match="do not fit"):
        encode_config(SimConfig(points=tuple(FailPoint(i, 0, 0) for i in range(5))), 4)
    rec = struct.unpack("<8I", encode_record(0xABCD, 9, 4))
    assert rec[2:5] == (9, 4, 0xFFFFFFFB) and rec[7] == zlib.crc32(encode_record(0xABCD, 9, 4)[:28])


# ---- on the host twin ----------------------------------------------------------------------------

def _need_cc() -> None:
    require_host_cc()


@pytest.fixture(scope="module")
def host_chain(tmp_path_factory: pytest.TempPathFactory):
    _need_cc()
    board = load_board("host")
    art = run_scons(board, "nvmtest", {"ql": "Q2", "inject": "off"},
                    tmp_path_factory.mktemp("nt-host"))
    return board, art


def _plan_of(art) -> PersistPlan:
    import json

    info = json.loads((art.build_dir / "sweetspot.json").read_text())["app_info"]
    return nvm_plan(int(info["n"]), int(info["inferences"]), "Q2")


def image_after(plan: PersistPlan, upto: int) -> tuple[bytearray, int]:
    """The NVM an uninterrupted run leaves once step ``upto`` is committed (numpy layers, the
    plan's slots, records alternating slots from slot 0 with seq 1, 2, ...); returns the image
    and the last seq."""
    img = bytearray(4 * plan.nvm_words)
    inputs = nt.make_inputs(plan.inferences, plan.graph.tensors[0].nbytes)

    def put(t: int, inf: int, data: np.ndarray) -> None:
        s = plan.slots[t]
        off = 4 * (s.word + s.stride_words * inf)
        img[off:off + data.size] = data.tobytes()

    seq = 0
    step = 0
    for inf, x in enumerate(inputs):
        vals = {0: x}
        for phase in range(plan.steps_per_inference):
            if step > upto:
                return img, seq
            if phase == 0:
                put(0, inf, x)
            else:
                op, ins, out, params = nt.LAYERS[phase - 1]
                vals[out] = nt.layer_fn(op, params, [vals[t] for t in ins])
                for t in plan.persist_after[phase - 1]:
                    put(t, inf, vals[t])
            seq += 1
            slot = (seq - 1) % 2
            img[4 * RECORD_WORDS * slot: 4 * RECORD_WORDS * (slot + 1)] = encode_record(
                plan.layout_id, seq, step)
            step += 1
    return img, seq


def _run(board, art, image: bytes | None, cfg: SimConfig | None = None) -> dict:
    cfg = cfg or SimConfig(keep_nvm=image is not None)
    return run_configured(board, "nvmtest", art, cfg, nvm_image=image, timeout=60)


def _ok(doc: dict) -> bool:
    return doc["status"] == 0 and doc["checks"] and all(c["ok"] for c in doc["checks"].values())


def test_blank_nvm_starts_fresh(host_chain) -> None:
    board, art = host_chain
    doc = _run(board, art, None)
    assert _ok(doc)
    assert doc["metrics"]["rt.first_resume"] == 0 and doc["metrics"]["rt.boots"] == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_garbage_nvm_starts_fresh(host_chain, seed: int) -> None:
    board, art = host_chain
    plan = _plan_of(art)
    img = np.random.default_rng(seed).integers(0, 256, 4 * plan.nvm_words, dtype=np.uint8)
    doc = _run(board, art, img.tobytes())
    assert _ok(doc)
    assert doc["metrics"]["rt.first_resume"] == 0


@pytest.mark.parametrize("upto", [0, 3, 6, 8, 13])
def test_committed_nvm_resumes_after_the_last_commit(host_chain, upto: int) -> None:
    board, art = host_chain
    img, _ = image_after(_plan_of(art), upto)
    doc = _run(board, art, bytes(img))
    assert _ok(doc)
    assert doc["metrics"]["rt.first_resume"] == upto + 1


@pytest.mark.parametrize("upto, torn_words", [(2, 1), (2, 7), (5, 3), (9, 6)])
def test_half_written_nvm_resumes_from_the_intact_record(host_chain, upto: int,
                                                          torn_words: int) -> None:
    """Step upto+1 was interrupted: its output slot holds garbage and its record (the newer seq)
    is torn after ``torn_words`` words: recovery must take step ``upto``'s record."""
    board, art = host_chain
    plan = _plan_of(art)
    img, seq = image_after(plan, upto)
    nxt = upto + 1
    phase = nxt % plan.steps_per_inference
    written = plan.graph.inputs if phase == 0 else plan.persist_after[phase - 1]
    rng = np.random.default_rng(upto)
    for t in written:
        s = plan.slots[t]
        off = 4 * (s.word + s.stride_words * (nxt // plan.steps_per_inference))
        img[off:off + 4 * s.words // 2] = rng.integers(0, 256, 4 * s.words // 2,
                                                        dtype=np.uint8).tobytes()
    slot = seq % 2
    rec = encode_record(plan.layout_id, seq + 1, nxt)
    base = 4 * RECORD_WORDS * slot
    img[base:base + 4 * torn_words] = rec[:4 * torn_words]
    doc = _run(board, art, bytes(img))
    assert _ok(doc)
    assert doc["metrics"]["rt.first_resume"] == nxt


def test_newest_of_two_valid_records_wins(host_chain) -> None:
    board, art = host_chain
    plan = _plan_of(art)
    img, seq = image_after(plan, 7)
    # the other slot holds step 6's record (seq-1): still valid, must lose to seq
    assert struct.unpack("<I", img[4 * RECORD_WORDS * (seq % 2) + 8:][:4])[0] == seq - 1
    doc = _run(board, art, bytes(img))
    assert _ok(doc) and doc["metrics"]["rt.first_resume"] == 8


def test_records_of_another_build_are_not_trusted(host_chain) -> None:
    board, art = host_chain
    plan = _plan_of(art)
    img, _ = image_after(plan, 9)
    for slot in (0, 1):
        words = list(struct.unpack("<8I", img[32 * slot:32 * slot + 32]))
        rec = encode_record(plan.layout_id ^ 1, words[2], words[3])
        img[32 * slot:32 * slot + 32] = rec
    doc = _run(board, art, bytes(img))
    assert _ok(doc) and doc["metrics"]["rt.first_resume"] == 0


def test_corrupt_config_is_ignored(host_chain) -> None:
    board, art = host_chain
    from generator.runtime.campaign import _run_host, runtime_info

    rt = runtime_info(art)
    blob = bytearray(encode_config(SimConfig(points=(FailPoint(2, 0, 5),)),
                                   int(rt["sched_capacity"])))
    blob[-1] ^= 0x40  # the point's value changes: the CRC no longer matches
    out = _run_host(board, art, [(0, bytes(blob))], 60, 10)
    assert out.session.metrics["rt.failures"] == 0 and out.session.status == 0


@pytest.mark.parametrize("mode, points", [
    ("chain", 1000),
    ("chain2048", 4000),
    pytest.param("chain8192", 40000, marks=pytest.mark.slow),
])
def test_host_campaign(tmp_path: Path, mode: str, points: int) -> None:
    """Power failures at distinct word positions (inside tensor writes, inside commits, right
    after commits) over both inferences: same outputs as the uninterrupted run, every point
    delivered, nothing lost, no torn record accepted."""
    _need_cc()
    board = load_board("host")
    art = run_scons(board, "nvmtest", {"ql": "Q2", "inject": "off", "mode": mode}, tmp_path)
    rep = power_fail_campaign(board, "nvmtest", art, points, seed=5, inferences=(0, 1))
    assert rep.ok, rep.problems
    assert rep.failures == points and rep.boots == points + 1
    assert rep.where["tensor"] > points / 2 and rep.where["commit"] >= 2 * 14
    assert set(rep.per_step) == set(range(14))


def test_build_time_schedule_and_point_kinds(tmp_path: Path) -> None:
    _need_cc()
    board = load_board("host")
    art = run_scons(board, "nvmtest", {"inject": "off", "power_fail": "L1:w3,L3:w80,I1.L4:t0"},
                    tmp_path)
    doc = run_configured(board, "nvmtest", art, None, timeout=60)
    assert _ok(doc)
    m = doc["metrics"]
    # no counter on the host: the tick point (0 ticks) is due at the first poll of its step
    assert m["rt.failures"] == 3 and m["rt.boots"] == 4 and m["rt.missed"] == 0
    assert m["rt.L1.attempts"] == 3 and m["rt.L3.attempts"] == 3 and m["rt.L4.attempts"] == 3


def test_capacitor_on_host(host_chain) -> None:
    board, art = host_chain
    cap = parse_capacitor("C=200nF,von=3.3,voff=1.8,harvest=50uW")
    doc = run_capacitor(board, "nvmtest", art, cap)
    assert _ok(doc)
    c = doc["capacitor"]
    assert c["power_cycles"] >= 3
    assert c["recharge_s_total"] == pytest.approx(c["power_cycles"] * cap.budget_pj * 1e-12 / 50e-6)
    # every emptied charge gave exactly its budget; the run drew more than one charge
    assert c["energy_used_pj"] > c["power_cycles"] * cap.budget_pj


def test_capacitor_too_small_is_reported(host_chain) -> None:
    board, art = host_chain
    cap = parse_capacitor("C=1nF,von=3.3,voff=1.8")
    doc = run_capacitor(board, "nvmtest", art, cap)
    assert doc["status"] == 4
    stuck = doc["capacitor"]["stuck"]
    assert stuck["row"] == "input" and stuck["needs_pj"] > stuck["budget_pj"]
    assert "can never complete" in stuck["message"]
    # the step's write energy alone (76 words at Q2 + the record at Q0) exceeds the budget
    assert stuck["needs_pj"] >= 76 * (12 + 74 * 32) + 8 * (12 + 167 * 32)


# ---- a broken runtime must be caught --------------------------------------------------------

MUTANTS = {
    # commits always overwrite slot 0: a torn commit destroys the last good record
    "same-slot": ("uint32_t slot = 1u - ss_ck_slot;", "uint32_t slot = 0u;"),
    # recovery ignores the CRC: a torn record is accepted
    "no-crc": ("rec[7] == ss_crc32(0u, rec, 4u * (SS_RT_RECORD_WORDS - 1u));", "1;"),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_campaign_catches_broken_commit_protocol(tmp_path: Path, monkeypatch, mutant: str
                                                 ) -> None:
    _need_cc()
    tdir = tmp_path / "templates"
    shutil.copytree(TEMPLATES, tdir)
    f = tdir / "runtime" / "ss_checkpoint.c.j2"
    old, new = MUTANTS[mutant]
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new))
    monkeypatch.setenv("SWEETSPOT_TEMPLATES", str(tdir))
    board = load_board("host")
    art = run_scons(board, "nvmtest", {"ql": "Q2", "inject": "off"}, tmp_path / "b")
    rep = power_fail_campaign(board, "nvmtest", art, 300, seed=2, inferences=(0, 1))
    assert not rep.ok
    assert rep.lost + rep.torn + rep.mismatched_runs > 0


# ---- the CLI's entry point ------------------------------------------------------------------

def test_run_request_with_build_time_options(tmp_path: Path) -> None:
    _need_cc()
    from generator.runner import RunRequest
    from generator.runtime.campaign import run_request, wants_runtime

    opts = {"inject": "off", "ql": "Q1", "power_fail": "30",
            "capacitor": "C=100nF,von=3.3,voff=1.8,harvest=20uW"}
    assert wants_runtime(opts) and not wants_runtime({"seed": 3})
    doc = run_request(RunRequest(board="host", app="nvmtest", options=opts,
                                 build_dir=tmp_path / "b"))
    assert _ok(doc)
    m = doc["metrics"]
    assert m["rt.failures"] == 30 and m["rt.cap.failures"] >= 1
    assert doc["capacitor"]["power_cycles"] == m["rt.cap.failures"]
    assert doc["capacitor"]["recharge_s_total"] > 0
    e = doc["energy"]["runtime"]
    assert set(e["per_ql"]) == {"Q0", "Q1"}
    assert "runtime energy" in doc["energy"]["summary"]


def test_run_request_reports_a_layer_that_never_completes(tmp_path: Path) -> None:
    _need_cc()
    from generator.errors import FirmwareFault
    from generator.runner import RunRequest
    from generator.runtime.campaign import run_request

    req = RunRequest(board="host", app="nvmtest", build_dir=tmp_path / "b",
                     options={"inject": "off", "capacitor": "C=2nF,von=3.3,voff=1.8"})
    with pytest.raises(FirmwareFault, match="status 4: step input needs .* pJ .* holds 7,650 pJ"
                       ": it can never complete") as e:
        run_request(req)
    assert e.value.document["capacitor"]["stuck"]["row"] == "input"


@pytest.mark.toolchain
@pytest.mark.parametrize("board", ["nucleo_g071", "nucleo_l476", "nucleo_u575", "nucleo_h743"])
def test_runtime_builds_for_every_nucleo(tmp_path: Path, board: str) -> None:
    """-Wall -Wextra -Werror clean, linked, static checks passed (run_scons fails otherwise)."""
    require_toolchain()
    b = load_board(board)
    art = run_scons(b, "nvmtest", {"ql": "Q2", "capacitor": "C=1uF,von=3.3,voff=1.8",
                                   "power_fail": "L2:w5"}, tmp_path)
    assert art.elf.is_file() and art.bin is not None and art.bin.is_file()
    from generator.runtime.campaign import noinit_address

    addr = noinit_address(art.elf)
    assert b.ram.contains(addr, 4)


# ---- real models on the host twin ------------------------------------------------------------

def _infer_campaign(tmp_path: Path, model: Path, points: int, inputs: int) -> None:
    _need_cc()
    board = load_board("host")
    art = run_scons(board, "infer", {"model": str(model), "ql": "Q0", "inject": "off",
                                     "inputs": inputs}, tmp_path)
    rep = power_fail_campaign(board, "infer", art, points, seed=4,
                              inferences=tuple(range(inputs)), timeout=1800)
    assert rep.ok, rep.problems  # includes: the uninterrupted run equals TFLM
    assert rep.failures == points and rep.missed == 0 and rep.lost == 0 and rep.torn == 0


def test_host_campaign_residual_model(tmp_path: Path) -> None:
    """The project's residual model (tensors live across several boundaries), 2 inferences."""
    _infer_campaign(tmp_path, ROOT / "models" / "residual_int8.tflite", 2000, 2)


ZOO_CAMPAIGN_MODELS = ["ign_wl_24_int8", "stmnist_v1_int8", "mobilenet_v1_0.25_96_int8"]


@pytest.mark.parametrize("name", ZOO_CAMPAIGN_MODELS)
def test_host_campaign_zoo(tmp_path: Path, zoo_dir: Path, name: str) -> None:
    """1,000 power failures per zoo model on the host twin (seconds each): outputs equal TFLM's
    after every run, nothing lost, nothing torn, every failure where the schedule put it."""
    _infer_campaign(tmp_path, zoo_dir / f"{name}.tflite", 1000, 1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_CAMPAIGN_MODELS)
def test_host_campaign_zoo_large(tmp_path: Path, zoo_dir: Path, name: str) -> None:
    _infer_campaign(tmp_path, zoo_dir / f"{name}.tflite", 10000, 1)


# ---- write errors and power failures together; the commit's rewrite; where failures hit ------

def _where_points(plan: PersistPlan) -> tuple[tuple[FailPoint, ...], dict[str, int]]:
    """Three hand-placed word points of inference 0 and their places: word 3 of L1's tensor
    write (step 2), word 2 of L2's record (after its tensor words, step 3), right after the
    8 words of L3's record (step 4: the commit is done)."""
    tw = [plan.step_tensor_words(p) for p in range(plan.steps_per_inference)]
    pts = (FailPoint(2, 0, 3), FailPoint(3, 0, tw[3] + 2), FailPoint(4, 0, tw[4] + RECORD_WORDS))
    assert tw[2] > 3
    return pts, {"rt.fail.tensor": 1, "rt.fail.commit": 1, "rt.fail.after": 1}


def test_firmware_reports_where_each_failure_hit(host_chain) -> None:
    board, art = host_chain
    pts, want = _where_points(_plan_of(art))
    doc = _run(board, art, None, SimConfig(points=pts))
    assert _ok(doc)
    m = doc["metrics"]
    assert {k: m[k] for k in want} == want and m["rt.failures"] == 3
    assert doc["power_failures"] == {"total": 3,
                                     "where": {"tensor": 1, "commit": 1, "after": 1}}
    # the step failed after its commit is not run again; the two others are
    assert m["rt.L1.attempts"] == 3 and m["rt.L2.attempts"] == 3 and m["rt.L3.attempts"] == 2


@pytest.fixture(scope="module")
def host_lossy(tmp_path_factory: pytest.TempPathFactory):
    """nvmtest with every tensor at Q4 (about 1e-3 of the bits flip) and injection on."""
    _need_cc()
    board = load_board("host")
    art = run_scons(board, "nvmtest", {"ql": "Q4", "inject": "on", "seed": 99},
                    tmp_path_factory.mktemp("nt-lossy"))
    return board, art


def test_lossy_run_equals_numpy_with_twin_flips(host_lossy) -> None:
    board, art = host_lossy
    doc = _run(board, art, None, SimConfig())
    assert _ok(doc)  # nvmtest's check: numpy layers + the Python injector twin's flips
    assert doc["metrics"]["rt.flip.Q4"] > 10
    clean = nt.reference(nvm_plan(ql="Q4"), nt.make_inputs(2))
    assert any(doc["outputs"][f"out[{i}]"]["values"] != clean[i].tolist() for i in range(2))


def test_campaign_with_write_errors_and_power_failures(host_lossy) -> None:
    """Every run's outputs and flips equal the uninterrupted run's, which equals numpy with the
    Python twin's flips: a re-executed step draws the flips of its first attempt."""
    board, art = host_lossy
    rep = power_fail_campaign(board, "nvmtest", art, 400, seed=8, inferences=(0, 1))
    assert rep.ok, rep.problems
    assert rep.failures == 400 and rep.firmware_where == {
        k: rep.where.get(k, 0) for k in ("tensor", "commit", "after")}


def test_without_the_rewind_a_lossy_campaign_fails(host_lossy, tmp_path: Path,
                                                    monkeypatch) -> None:
    """The same campaign against a runtime whose re-executed steps draw fresh flips must fail:
    the check can tell. (Built in a copy of host_lossy's directory: only ss_inject.c changes.)"""
    _need_cc()
    shutil.copytree(host_lossy[1].build_dir, tmp_path / "b")
    tdir = tmp_path / "templates"
    shutil.copytree(TEMPLATES, tdir)
    f = tdir / "runtime" / "ss_inject.c.j2"
    old = "memcpy(sim->inj, sim->inj_start, sizeof(sim->inj));"
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, "(void)0;"))
    monkeypatch.setenv("SWEETSPOT_TEMPLATES", str(tdir))
    board = load_board("host")
    art = run_scons(board, "nvmtest", {"ql": "Q4", "inject": "on", "seed": 99}, tmp_path / "b")
    rep = power_fail_campaign(board, "nvmtest", art, 100, seed=8, inferences=(0, 1))
    assert not rep.ok
    assert any("flips differ" in p for p in rep.problems)


# Seed whose Q0 stream flips bit 107 first (found by a search with the Python twin): with every
# tensor at Q2, Q0 carries only commit records, so the first record (step 0) reads back wrong.
RECORD_FLIP_SEED = 647608


def test_commit_read_back_mismatch_is_rewritten(host_chain) -> None:
    """A write error in a commit record: the read-back differs, the record is rewritten, the
    run finishes with numpy's outputs and loses no progress, even with power failing inside the
    first write and inside the rewrite of that record."""
    from generator.runtime.inject import Injector

    board, art = host_chain  # every tensor at Q2; injection turned on at run time
    inj = Injector(RECORD_FLIP_SEED)
    assert inj.write(0, 32 * RECORD_WORDS) == [107]  # the premise, by the Python twin:
    assert inj.write(0, 32 * RECORD_WORDS * 1000) == []  # one Q0 flip, in the first record
    assert inj.write(2, 32 * 76 * 14 * 3) == []  # and none at Q2: numpy's outputs stay exact
    cfg = SimConfig(inject=True, seed=RECORD_FLIP_SEED)
    doc = _run(board, art, None, cfg)
    assert _ok(doc)
    m = doc["metrics"]
    assert m["rt.commit_retries"] == 1 and m["rt.flip.Q0"] == 1
    assert m["rt.bits.Q0"] == 32 * RECORD_WORDS * (14 + 1)  # 14 commits, one written twice
    assert m["rt.input.done"] == 2 and m["rt.lost"] == 0 and m["rt.torn"] == 0

    tw = _plan_of(art).step_tensor_words(0)
    pts = (FailPoint(0, 0, tw + 3), FailPoint(0, 0, tw + RECORD_WORDS + 2), FailPoint(1, 0, 0))
    doc = _run(board, art, None, SimConfig(points=pts, inject=True, seed=RECORD_FLIP_SEED))
    assert _ok(doc)
    m = doc["metrics"]
    # attempt 1 torn in the first write; attempt 2 verified wrong, torn in the rewrite;
    # attempt 3 verified wrong, rewrote, committed; then L0 failed and resumed after it
    assert m["rt.commit_retries"] == 2 and m["rt.failures"] == 3
    assert m["rt.fail.commit"] == 2 and m["rt.fail.tensor"] == 1
    assert m["rt.input.attempts"] == 3 + 1 and m["rt.input.done"] == 2
    assert m["rt.L0.attempts"] == 2 + 1 and m["rt.lost"] == 0 and m["rt.torn"] == 0


@pytest.mark.slow
def test_host_campaign_residual_model_with_write_errors(tmp_path: Path) -> None:
    """A real model at Q4 with injection on and 200 power failures: every run's outputs and
    flips equal the uninterrupted run's, whose flips are the injector twin's."""
    _need_cc()
    board = load_board("host")
    art = run_scons(board, "infer", {"model": str(ROOT / "models" / "residual_int8.tflite"),
                                     "ql": "Q4", "inject": "on", "seed": 3, "inputs": 2},
                    tmp_path)
    ref = run_configured(board, "infer", art, SimConfig(), timeout=60)
    assert ref["metrics"]["rt.flip.Q4"] > 5
    rep = power_fail_campaign(board, "infer", art, 200, seed=4, inferences=(0, 1),
                              reference=ref)
    assert rep.ok, rep.problems
    assert rep.failures == 200 and rep.lost == 0 and rep.torn == 0
