"""Planner tests: hand-worked graphs, brute-force overlap checks, MAC formulas, fit checks."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from _models import ZOO_MODELS, conv_model, zoo_model

from generator.errors import FitError, ModelError
from generator.ir import Graph, Operator, Quant, Tensor
from generator.model import load_model, load_model_bytes
from generator.plan import (
    RUNTIME_RAM_BYTES,
    check_fit,
    format_stats_table,
    plan_model,
    plan_to_dict,
    require_fit,
    tflm_arena,
    tflm_arena_bytes,
)

QP = Quant(scale=(0.1,), zero_point=(0,))


def act(index: int, nbytes: int, shape=None) -> Tensor:
    return Tensor(index, f"t{index}", shape or (1, nbytes), "int8", QP)


def const(index: int, shape, dtype="int8") -> Tensor:
    data = np.zeros(shape, dtype=dtype)
    data.flags.writeable = False
    return Tensor(index, f"c{index}", tuple(shape), dtype, QP, data)


def graph(tensors, ops, inputs, outputs) -> Graph:
    operators = tuple(
        Operator(i, code, tuple(ins), tuple(outs), opts)
        for i, (code, ins, outs, opts) in enumerate(ops)
    )
    return Graph("hand", "0" * 64, tuple(tensors), operators, tuple(inputs), tuple(outputs))


def assert_no_overlap(plan):
    """Brute force: buffers alive at the same time never share a byte."""
    for a, b in itertools.combinations(plan.allocations, 2):
        if a.overlaps_in_time(b):
            assert a.end <= b.offset or b.end <= a.offset, (a, b)
    for a in plan.allocations:
        assert a.offset % plan.align == 0
        assert a.end <= plan.arena_bytes
    assert plan.arena_bytes >= plan.peak_live_bytes


# --------------------------------------------------------------------------------------------
# hand-worked graphs
# --------------------------------------------------------------------------------------------


def chain_graph():
    # t0 (100 B) -op0-> t1 (200 B) -op1-> t2 (50 B) -op2-> t3 (10 B)
    tensors = [act(0, 100), act(1, 200), act(2, 50), act(3, 10)]
    ops = [("RELU", [0], [1], {}), ("RELU", [1], [2], {}), ("RELU", [2], [3], {})]
    return graph(tensors, ops, [0], [3])


def test_chain_peak_and_state():
    plan = plan_model(chain_graph(), align=1)
    # Live sets per operator: {t0,t1}=300, {t1,t2}=250, {t2,t3}=60 → 300 is optimal and reached.
    assert plan.peak_live_bytes == 300
    assert plan.arena_bytes == 300
    assert [a.first for a in plan.allocations] == [-1, 0, 1, 2]
    assert [a.last for a in plan.allocations] == [0, 1, 2, 3]
    # Boundaries: before op0 t0=100; after op0 t1=200; after op1 t2=50; after op2 t3=10.
    assert plan.input_state_bytes == 100
    assert [lay.state_bytes for lay in plan.layers] == [200, 50, 10]
    assert [lay.state_tensors for lay in plan.layers] == [(1,), (2,), (3,)]
    assert plan.max_state_bytes == 200 and plan.max_state_boundary == 0
    assert plan.input_bytes == 100 and plan.output_bytes == 10
    assert_no_overlap(plan)


def test_residual_keeps_skip_tensor_alive():
    # op0: t0 → t1 (64); op1: t1 → t2 (32); op2: ADD(t1, t2) → t3 (64, output)
    tensors = [act(0, 64), act(1, 64), act(2, 32), act(3, 64)]
    ops = [
        ("RELU", [0], [1], {}),
        ("RELU", [1], [2], {}),
        ("ADD", [1, 2], [3], {"fused_activation": "NONE"}),
    ]
    plan = plan_model(graph(tensors, ops, [0], [3]), align=1)
    # Live per operator: op0 {t0,t1}=128, op1 {t1,t2}=96, op2 {t1,t2,t3}=160.
    assert plan.peak_live_bytes == 160
    assert plan.arena_bytes == 160
    assert plan.allocation(1).last == 2
    # After op0: t1; after op1: t1 + t2 (the skip connection must be persisted); after op2: t3.
    assert [lay.state_bytes for lay in plan.layers] == [64, 96, 64]
    assert plan.max_state_bytes == 96 and plan.max_state_boundary == 1
    assert_no_overlap(plan)


def test_alignment_pads_buffers():
    tensors = [act(0, 10), act(1, 20)]
    plan = plan_model(graph(tensors, [("RELU", [0], [1], {})], [0], [1]), align=16)
    # 10 → 16 and 20 → 32, both alive during op0.
    assert plan.arena_bytes == 48
    assert sorted(a.offset for a in plan.allocations) == [0, 32]
    assert plan.allocation(0).nbytes == 10  # raw size is kept
    assert plan.layers[0].state_bytes == 20  # state is raw bytes, no padding
    with pytest.raises(ValueError):
        plan_model(chain_graph(), align=12)


def test_constants_and_unused_tensors_get_no_buffer():
    tensors = [act(0, 4), const(1, (3, 4)), const(2, (3,), "int32"), act(3, 3), act(4, 99)]
    ops = [("FULLY_CONNECTED", [0, 1, 2], [3], {})]
    plan = plan_model(graph(tensors, ops, [0], [3]), align=1)
    assert [a.tensor for a in plan.allocations] == [0, 3]
    with pytest.raises(KeyError):
        plan.allocation(1)
    assert plan.weight_bytes == 12 + 12
    assert plan.layers[0].weight_bytes == 24
    assert plan.layers[0].macs == 3 * 4  # FC: output elements × input depth


def test_reading_an_unproduced_tensor_is_an_error():
    tensors = [act(0, 4), act(1, 4), act(2, 4)]
    ops = [("ADD", [0, 1], [2], {})]
    with pytest.raises(ModelError, match="before anything produces it"):
        plan_model(graph(tensors, ops, [0], [2]))


def test_random_dags_never_overlap():
    rng = np.random.default_rng(11)
    for _ in range(60):
        n_ops = int(rng.integers(1, 12))
        tensors = [act(0, int(rng.integers(1, 300)))]
        ops = []
        for i in range(n_ops):
            k = int(rng.integers(1, 3))
            ins = sorted({int(x) for x in rng.integers(0, len(tensors), k)})
            tensors.append(act(len(tensors), int(rng.integers(1, 300))))
            ops.append(("ADD" if len(ins) > 1 else "RELU", ins, [len(tensors) - 1], {}))
        for align in (1, 4, 16):
            plan = plan_model(graph(tensors, ops, [0], [len(tensors) - 1]), align=align)
            assert_no_overlap(plan)


# --------------------------------------------------------------------------------------------
# MACs
# --------------------------------------------------------------------------------------------


def test_conv_macs_tiny_case_by_hand():
    # input 1x5x5x2, filter 3 x 3x3 x 2, stride 1, VALID → output 1x3x3x3.
    # MACs = out_h*out_w*out_c * k_h*k_w*in_c = 3*3*3 * 3*3*2 = 486.
    g = load_model_bytes(conv_model(in_shape=(1, 5, 5, 2), out_c=3, k=(3, 3)), "conv")
    plan = plan_model(g)
    assert plan.layers[0].output_shape == (1, 3, 3, 3)
    assert plan.layers[0].macs == 486
    assert plan.total_macs == 486
    # weights 3*3*3*2 int8 = 54 B + bias 3 int32 = 12 B
    assert plan.layers[0].weight_bytes == 66 == plan.weight_bytes


def test_conv_macs_strided_same():
    # input 1x8x8x4, filter 5 x 3x1 x 4, stride 2, SAME → output 1x4x4x5: 80 * 3*1*4 = 960.
    g = load_model_bytes(
        conv_model(in_shape=(1, 8, 8, 4), out_c=5, k=(3, 1), stride=2, padding=0), "c"
    )
    assert plan_model(g).layers[0].macs == 960


def test_depthwise_and_pool_work():
    tensors = [
        act(0, 50, (1, 5, 5, 2)),
        const(1, (1, 3, 3, 2)),
        const(2, (2,), "int32"),
        act(3, 18, (1, 3, 3, 2)),
        act(4, 2, (1, 1, 1, 2)),
    ]
    ops = [
        ("DEPTHWISE_CONV_2D", [0, 1, 2], [3], {"depth_multiplier": 1}),
        ("MAX_POOL_2D", [3], [4], {"filter_h": 3, "filter_w": 3}),
    ]
    plan = plan_model(graph(tensors, ops, [0], [4]))
    assert plan.layers[0].macs == 18 * 9  # output elements × k_h × k_w
    assert plan.layers[1].macs == 0
    assert plan.layers[1].elementwise_ops == 2 * 9


# --------------------------------------------------------------------------------------------
# zoo models
# --------------------------------------------------------------------------------------------


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO_MODELS)
@pytest.mark.parametrize("align", [1, 16])
def test_zoo_plans_never_overlap(name, align):
    plan = plan_model(load_model(zoo_model(name)), align=align)
    assert_no_overlap(plan)


@pytest.mark.zoo
@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_chain_state_is_the_layer_output(name):
    """The zoo models are chains: what crosses a boundary is exactly the layer's output."""
    g = load_model(zoo_model(name))
    for op in g.operators[1:]:
        activations = [t for t in op.inputs if t >= 0 and not g.tensor(t).is_const]
        assert activations == list(g.operators[op.index - 1].outputs)  # really a chain
    plan = plan_model(g)
    assert [lay.state_bytes for lay in plan.layers] == [lay.output_bytes for lay in plan.layers]
    assert plan.input_state_bytes == g.tensor(g.inputs[0]).nbytes
    expected_max = max([plan.input_state_bytes] + [lay.output_bytes for lay in plan.layers])
    assert plan.max_state_bytes == expected_max


@pytest.mark.zoo
def test_mobilenet_numbers_by_hand():
    plan = plan_model(load_model(zoo_model("mobilenet_v1_0.25_96_int8")))
    # Layer 0: 48x48x8 outputs × 3x3x3 = 497,664 MACs; the largest pair of live buffers is
    # layer 2's 48x48x8 input + 48x48x16 output = 18,432 + 36,864.
    assert plan.layers[0].macs == 48 * 48 * 8 * 27
    assert plan.peak_live_bytes == 18_432 + 36_864
    assert plan.arena_bytes == 55_296
    assert plan.max_state_bytes == 36_864 and plan.max_state_boundary == 2


@pytest.mark.zoo
def test_stats_table_and_dict():
    plan = plan_model(load_model(zoo_model("stmnist_v1_int8")))
    table = format_stats_table(plan)
    for lay in plan.layers:
        assert lay.opcode in table
    assert f"{plan.total_macs:,}" in table and f"{plan.max_state_bytes:,}" in table
    assert "1x14x14x16" in table
    data = json.loads(json.dumps(plan_to_dict(plan)))
    assert data["arena_bytes"] == plan.arena_bytes
    assert len(data["layers"]) == len(plan.layers) == 10


@pytest.mark.zoo
def test_tflm_arena_is_read_from_the_interpreter():
    path = zoo_model("ign_wl_24_int8")
    arena = tflm_arena(path)
    assert arena.total == arena.head + arena.tail > 0
    assert tflm_arena_bytes(path) == arena.total
    # TFLM's non-persistent head is its activation plan; ours is no larger.
    assert plan_model(load_model(path)).arena_bytes <= arena.head


def test_tflm_arena_missing_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        tflm_arena_bytes(tmp_path / "missing.tflite")


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def test_fit_report_numbers():
    plan = plan_model(chain_graph(), align=1)
    report = check_fit(plan, 64 * 1024, 8 * 1024, board="b")
    assert report.fits
    assert report.ram_needed == plan.arena_bytes + RUNTIME_RAM_BYTES
    assert report.flash_needed >= plan.weight_bytes
    text = report.describe()
    assert "fits" in text and "8,192" in text
    assert json.dumps(report.to_dict())


def test_require_fit_raises_with_numbers():
    plan = plan_model(chain_graph(), align=1)
    with pytest.raises(FitError) as info:
        require_fit(plan, 64 * 1024, 700, board="nucleo_tiny", ram_used_by_runtime=500)
    msg = str(info.value)
    assert "model 'hand'" in msg and "800 B of RAM" in msg and "arena 300 B" in msg
    assert "nucleo_tiny has 700 B" in msg
    assert "flash" not in msg  # flash fits; only RAM is reported
    report = check_fit(plan, 1000, 100_000, board="b", flash_used_by_runtime=2000)
    assert not report.fits and not report.flash_fits and report.ram_fits
    assert require_fit(plan, 1 << 20, 1 << 20).fits
