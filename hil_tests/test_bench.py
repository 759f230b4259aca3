"""The bench app on every board under test: outputs equal numpy's, counter figures deterministic."""

from __future__ import annotations

import numpy as np

from generator.firmware.bench import bench_data


def _numpy_reference(seed: int, multiplier: int, shift: int) -> tuple[int, np.ndarray]:
    """Independent of the firmware and of generator.firmware.bench.expected_outputs: Python
    integers,
    TFLM's documented arithmetic written out longhand."""
    d = bench_data(seed)
    dot = int(sum(int(a) * int(b) for a, b in zip(d.a, d.b)))

    def srdhm(a: int, b: int) -> int:
        if a == b == -(2**31):
            return 2**31 - 1
        ab = a * b
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        q = abs(ab + nudge) >> 31
        return q if ab + nudge >= 0 else -q

    def rdbpot(x: int, e: int) -> int:
        mask = (1 << e) - 1
        rem = x & mask
        thr = (mask >> 1) + (1 if x < 0 else 0)
        return (x >> e) + (1 if rem > thr else 0)

    out = []
    for r in range(d.w.shape[0]):
        acc = int(d.bias[r]) + sum(int(w) * (int(x) + d.input_offset)
                                   for w, x in zip(d.w[r], d.x))
        left, right = max(shift, 0), max(-shift, 0)
        v = rdbpot(srdhm(acc * (1 << left), multiplier), right) + d.output_zp
        out.append(min(127, max(-128, v)))
        # The fixed-point result is the real-valued product rounded (within one step).
        assert abs((v - d.output_zp) - acc * d.real_multiplier) <= 1
    return dot, np.array(out, dtype=np.int8)


def test_bench_outputs_equal_numpy(dut):
    doc = dut.run("bench")
    info = doc["app_info"]
    dot, matvec = _numpy_reference(info["seed"], info["multiplier"], info["shift"])
    assert doc["status"] == 0
    assert doc["outputs"]["dot"]["values"] == [dot]
    assert doc["outputs"]["matvec"]["dtype"] == "int8"
    assert np.array_equal(np.array(doc["outputs"]["matvec"]["values"], dtype=np.int8), matvec)
    assert set(doc["checks"]) == {"dot", "matvec"}  # all() over no checks passes
    assert all(c["ok"] for c in doc["checks"].values())
    assert doc["stream"]["corrupt_frames"] == 0 and doc["stream"]["lost_frames"] == 0


def test_bench_other_seed(dut):
    doc = dut.run("bench", seed=99)
    info = doc["app_info"]
    dot, matvec = _numpy_reference(99, info["multiplier"], info["shift"])
    assert doc["outputs"]["dot"]["values"] == [dot]
    assert np.array_equal(np.array(doc["outputs"]["matvec"]["values"], dtype=np.int8), matvec)


def test_cycle_figures_are_deterministic(dut):
    if dut.board.kind != "qemu":
        import pytest
        pytest.skip("only an emulated twin under -icount counts deterministically")
    a = dut.run("bench")["cycles"]
    b = dut.run("bench")["cycles"]
    assert a == b
    # Work scales: the 32x64 matrix-vector product costs more than the 256-element dot product.
    assert a["matvec"]["instructions"] > a["dot"]["instructions"] > a["overhead"]["instructions"]
    # SysTick under icount: ticks are an exact multiple (within rounding) of instructions.
    tpi = dut.board.counter_ticks_per_instruction()
    for v in a.values():
        assert abs(v["ticks"] / tpi - v["instructions"]) < 0.5
