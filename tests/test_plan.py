"""Planner tests: hand-worked graphs, brute-force overlap checks, MAC formulas, fit checks.

Overlaps: buffers alive at the same operator never share a byte, except a RESHAPE alias and the
in-place pairs the plan lists (``Plan.overlaps``), whose gap must respect the kernel's bound.
Random DAGs of elementwise operators are executed byte by byte in a simulated arena (in-place
plans included) and compared with the same graph evaluated in separate buffers."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from _models import ZOO_MODELS, conv_model, zoo_model

from generator.compiler import schedule
from generator.compiler.ir import Graph, Operator, Quant, Tensor
from generator.compiler.loader import load_model, load_model_bytes
from generator.compiler.plan import (
    RUNTIME_RAM_BYTES,
    check_fit,
    format_stats_table,
    plan_model,
    plan_to_dict,
    require_fit,
    tflm_arena,
    tflm_arena_bytes,
)
from generator.errors import FitError, ModelError

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


def assert_no_overlap(plan, graph=None):
    """Brute force: buffers alive at the same time never share a byte, unless they are a RESHAPE
    alias or an in-place pair the plan lists with a gap the kernel allows (recomputed here from
    the schedule when the graph is given)."""
    for a, b in itertools.combinations(plan.allocations, 2):
        if not a.overlaps_in_time(b):
            continue
        if a.end <= b.offset or b.end <= a.offset:
            continue
        assert plan.in_place and plan.shares_memory(a.tensor, b.tensor), (a, b)
        if (a.alias_of or b.alias_of) is not None and a.offset == b.offset:
            continue
        listed = [o for o in plan.overlaps if {o.input, o.output} == {a.tensor, b.tensor}
                  or {plan.allocation(o.input).alias_of, plan.allocation(o.output).alias_of}
                  & {a.tensor, b.tensor}]
        assert listed, (a, b)
    for o in plan.overlaps:
        x, y = plan.allocation(o.input), plan.allocation(o.output)
        assert o.gap == x.offset - y.offset >= o.min_gap
        assert x.last == o.op == y.first  # the input's last use produces the output
        if graph is not None:
            pos = list(graph.operators[o.op].inputs).index(o.input)
            assert o.min_gap == schedule.min_gap(graph, graph.operators[o.op], pos)
    for a in plan.allocations:
        assert a.offset % plan.align == 0
        assert a.end <= plan.arena_bytes
        if a.alias_of is not None:
            assert a.offset == plan.allocation(a.alias_of).offset
    if not plan.overlaps and not any(a.alias_of is not None for a in plan.allocations):
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
    plan = plan_model(graph(tensors, ops, [0], [3]), align=1, in_place=False)
    # Live per operator: op0 {t0,t1}=128, op1 {t1,t2}=96, op2 {t1,t2,t3}=160.
    assert plan.peak_live_bytes == 160
    assert plan.arena_bytes == 160
    assert plan.allocation(1).last == 2
    # After op0: t1; after op1: t1 + t2 (the skip connection must be persisted); after op2: t3.
    assert [lay.state_bytes for lay in plan.layers] == [64, 96, 64]
    assert plan.max_state_bytes == 96 and plan.max_state_boundary == 1
    assert_no_overlap(plan)
    # In place: t1 may go over t0 (RELU, same size: gap 0), but the ADD of differently sized
    # inputs is no elementwise loop, so t1, t2 and t3 still need 160 bytes at op2.
    g = graph(tensors, ops, [0], [3])
    plan = plan_model(g, align=1)
    assert plan.arena_bytes == 160
    assert [(o.op, o.input, o.output, o.min_gap) for o in plan.overlaps] in ([], [(0, 0, 1, 0)])
    assert_no_overlap(plan, g)


def test_in_place_chain_by_hand():
    # t0 (100) -RELU-> t1 (100) -RELU-> t2 (100) -QUANTIZE-> t3 (100): elementwise kernels read
    # element i before writing it, so every output may start where its input starts.
    tensors = [act(i, 100) for i in range(4)]
    ops = [("RELU", [0], [1], {}), ("RELU", [1], [2], {}), ("QUANTIZE", [2], [3], {})]
    g = graph(tensors, ops, [0], [3])
    assert plan_model(g, align=1, in_place=False).arena_bytes == 200
    plan = plan_model(g, align=1)
    assert plan.arena_bytes == 100
    assert [(o.op, o.min_gap, o.gap) for o in plan.overlaps] == [(0, 0, 0), (1, 0, 0),
                                                                   (2, 0, 0)]
    assert_no_overlap(plan, g)


def test_dequantize_needs_the_input_at_the_top():
    # int8 [n] -> float32 [n]: element i writes bytes 4i..4i+3 after reading byte i; an input
    # byte j is read after output bytes up to 4(j-1)+3 are written, so the input must start at
    # least 3n - 3 bytes above the output (worked for n = 10: 27).
    x = Tensor(0, "x", (1, 10), "int8", QP)
    y = Tensor(1, "y", (1, 10), "float32", None)
    g = graph([x, y], [("DEQUANTIZE", [0], [1], {})], [0], [1])
    assert schedule.min_gap(g, g.operators[0], 0) == 27
    plan = plan_model(g, align=1)
    assert plan.arena_bytes == 40  # the input inside the output's top 13 bytes
    assert plan.overlaps[0].gap >= 27
    assert_no_overlap(plan, g)


def test_reshape_aliases_its_input():
    # t0 -RELU-> t1 -RESHAPE-> t2 -RELU(size change)-> t3: t2 is t1's bytes.
    tensors = [act(0, 32), act(1, 32), act(2, 32, (4, 8)), act(3, 16)]
    ops = [("RELU", [0], [1], {}), ("RESHAPE", [1], [2], {}), ("RELU", [2], [3], {})]
    g = graph(tensors, ops, [0], [3])
    plan = plan_model(g, align=1)
    assert plan.allocation(2).alias_of == 1
    assert plan.allocation(2).offset == plan.allocation(1).offset
    assert plan.allocation(2).first == 1 and plan.allocation(1).last == 1  # own lifetimes
    assert plan.shares_memory(1, 2)
    assert not plan_model(g, align=1, in_place=False).allocation(2).alias_of
    assert_no_overlap(plan, g)


def test_alignment_pads_buffers():
    tensors = [act(0, 10), act(1, 20)]
    plan = plan_model(graph(tensors, [("RELU", [0], [1], {})], [0], [1]), align=16,
                      in_place=False)
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


def _random_dag(rng):
    """Chains and joins of RELU/ADD (int8) with QUANTIZE (float32 -> int8) and DEQUANTIZE
    (int8 -> float32) of random sizes, often equal so that the elementwise loops apply."""
    n_ops = int(rng.integers(1, 12))
    tensors = [act(0, int(rng.choice([int(rng.integers(1, 300)), 64])))]
    ops = []
    for _ in range(n_ops):
        k = int(rng.integers(1, 3))
        ins = sorted({int(x) for x in rng.integers(0, len(tensors), k)})
        src = tensors[ins[0]]
        i = len(tensors)
        if len(ins) == 1 and rng.random() < 0.4:  # change the element size
            if src.dtype == "float32":
                tensors.append(Tensor(i, f"t{i}", src.shape, "int8", QP))
                ops.append(("QUANTIZE", ins, [i], {}))
            else:
                tensors.append(Tensor(i, f"t{i}", src.shape, "float32", None))
                ops.append(("DEQUANTIZE", ins, [i], {}))
            continue
        same = len({tensors[j].shape for j in ins}) == 1 and rng.random() < 0.7
        n = src.size if same else int(rng.choice([int(rng.integers(1, 300)), 64]))
        tensors.append(Tensor(i, f"t{i}", (1, n), src.dtype if same else "int8",
                              QP if (src.dtype if same else "int8") == "int8" else None))
        ops.append(("ADD" if len(ins) > 1 else "RELU", ins, [i], {}))
    return graph(tensors, ops, [0], [len(tensors) - 1])


def _execute(g, plan, x):
    """Run the graph in one simulated arena with the plan's offsets, element after element as
    the elementwise kernels do (element i: read the inputs' bytes of element i, then write the
    output's; inputs and output of equal element counts, any element sizes); any other
    operator reads all its input bytes before writing. Returns the output bytes."""
    arena = np.zeros(plan.arena_bytes + 1, dtype=np.int64)
    off = {a.tensor: a.offset for a in plan.allocations}
    arena[off[0]:off[0] + len(x)] = x
    for op in g.operators:
        ins = [(off[t], g.tensor(t).nbytes // g.tensor(t).size) for t in op.inputs]
        yt = g.tensor(op.outputs[0])
        o, n, es = off[op.outputs[0]], yt.size, yt.nbytes // yt.size
        if all(g.tensor(t).size == n for t in op.inputs):
            for i in range(n):
                v = sum(int(arena[a + i * e:a + (i + 1) * e].sum()) for a, e in ins)
                arena[o + i * es:o + (i + 1) * es] = (3 * v + 1 + op.index + np.arange(es)) % 251
        else:
            total = sum(int(arena[a:a + g.tensor(t).nbytes].sum())
                        for (a, _), t in zip(ins, op.inputs))
            arena[o:o + yt.nbytes] = (total + np.arange(yt.nbytes) + op.index) % 251
    out = g.outputs[0]
    return arena[off[out]:off[out] + g.tensor(out).nbytes].copy()


def test_random_dags_never_overlap():
    rng = np.random.default_rng(11)
    in_place_used = 0
    for _ in range(60):
        g = _random_dag(rng)
        x = rng.integers(0, 251, g.tensor(0).nbytes)
        reference = _execute(g, plan_model(g, align=1, in_place=False), x)
        for align in (1, 4, 16):
            for in_place in (False, True):
                plan = plan_model(g, align=align, in_place=in_place)
                assert_no_overlap(plan, g)
                assert np.array_equal(_execute(g, plan, x), reference)
                in_place_used += len(plan.overlaps)
    assert in_place_used > 50  # the property was really exercised


def test_unsafe_overlap_is_caught_by_the_simulation(monkeypatch):
    """The executing check can fail: a planner told that DEQUANTIZE (1 -> 4 bytes per element)
    may start its output at its input (it needs 3n - 3 bytes) produces different bytes."""
    x = Tensor(0, "x", (1, 16), "int8", QP)
    y = Tensor(1, "y", (1, 16), "float32", None)
    g = graph([x, y], [("DEQUANTIZE", [0], [1], {})], [0], [1])
    data = np.arange(16)
    reference = _execute(g, plan_model(g, align=1, in_place=False), data)
    assert np.array_equal(_execute(g, plan_model(g, align=1), data), reference)
    monkeypatch.setattr(schedule, "min_gap", lambda graph, op, pos: 0)
    plan = plan_model(g, align=1)
    assert plan.overlaps and plan.overlaps[0].gap < 45
    assert not np.array_equal(_execute(g, plan, data), reference)


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
    g = load_model(zoo_model(name))
    for in_place in (False, True):
        plan = plan_model(g, align=align, in_place=in_place)
        assert_no_overlap(plan, g)
        assert plan.in_place == in_place
        assert bool(plan.overlaps) == in_place


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
    assert plan_model(plan_graph := load_model(zoo_model("mobilenet_v1_0.25_96_int8")),
                      in_place=False).arena_bytes == 55_296
    assert plan.max_state_bytes == 36_864 and plan.max_state_boundary == 2
    # In place, layer 2 (1x1 conv 8->16 on 48x48, GEMM blocks of 4 pixels) writes block b's
    # outputs up to byte 64b + 63 before reading input bytes from 32b + 32 on, for b up to 574
    # (576 blocks): the input may start 32 * 574 + 32 = 18,400 B above the output, inside it
    # (18,400 + 18,432 <= 36,864), so the arena is the largest tensor alone.
    two = [o for o in plan.overlaps if o.op == 2]
    assert two and two[0].min_gap == 18_400
    assert plan.arena_bytes == 36_864
    assert_no_overlap(plan, plan_graph)


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
