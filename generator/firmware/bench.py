"""``bench``: int8 micro-kernels (dot product, matrix-vector with requantization) on seeded inputs
compiled into the image. The host recomputes the expected outputs with numpy from the same seed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from generator.boards import Board
from generator.compiler.tflm_math import quantize_multiplier
from generator.firmware.apps import int_list, register

DEFAULT_SEED = 1234


@dataclass(frozen=True)
class BenchData:
    a: np.ndarray
    b: np.ndarray
    w: np.ndarray
    x: np.ndarray
    bias: np.ndarray
    input_offset: int
    output_zp: int
    real_multiplier: float


def bench_data(seed: int = DEFAULT_SEED, dot_len: int = 256, rows: int = 32, cols: int = 64
               ) -> BenchData:
    """The bench inputs for a seed: a pure function, so host and firmware agree."""
    rng = np.random.default_rng(seed)
    return BenchData(
        a=rng.integers(-128, 128, dot_len, dtype=np.int8),
        b=rng.integers(-128, 128, dot_len, dtype=np.int8),
        w=rng.integers(-128, 128, (rows, cols), dtype=np.int8),
        x=rng.integers(-128, 128, cols, dtype=np.int8),
        bias=rng.integers(-4096, 4096, rows, dtype=np.int32),
        input_offset=int(rng.integers(-20, 20)),
        output_zp=int(rng.integers(-10, 10)),
        real_multiplier=float(rng.uniform(1e-4, 4e-3)),
    )


class BenchApp:
    name = "bench"
    description = "int8 micro-kernels (dot product, matrix-vector + requantization)"
    needs_model = False

    def _data(self, options: dict[str, Any]) -> BenchData:
        return bench_data(int(options.get("seed", DEFAULT_SEED)))

    def context(self, board: Board, options: dict[str, Any]) -> dict[str, Any]:
        d = self._data(options)
        mult, shift = quantize_multiplier(d.real_multiplier)
        return {
            "dot_len": d.a.size,
            "rows": d.w.shape[0],
            "cols": d.w.shape[1],
            "input_offset": d.input_offset,
            "output_zp": d.output_zp,
            "multiplier": mult,
            "shift": shift,
            "a": int_list(d.a),
            "b": int_list(d.b),
            "w": int_list(d.w),
            "x": int_list(d.x),
            "bias": int_list(d.bias),
        }

    def templates(self, board: Board, options: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            ("apps/bench/main.c.j2", "main.c"),
            ("apps/bench/bench_data.h.j2", "bench_data.h"),
            ("apps/bench/bench_data.c.j2", "bench_data.c"),
        ]

    def static_files(self, board: Board, options: dict[str, Any]) -> dict[str, bytes]:
        return {}

    def manifest(self, board: Board, options: dict[str, Any], ctx: dict[str, Any]
                 ) -> dict[str, Any]:
        return {"seed": int(options.get("seed", DEFAULT_SEED)),
                "multiplier": ctx["multiplier"], "shift": ctx["shift"]}


    def check(self, info: dict[str, Any], outputs: dict[str, np.ndarray]) -> dict[str, Any]:
        """Compare the firmware's outputs with numpy (int64 arithmetic, vectorised)."""
        d = bench_data(int(info["seed"]))
        exp = expected_outputs(d, int(info["multiplier"]), int(info["shift"]))
        result: dict[str, Any] = {}
        for name, want in exp.items():
            got = outputs.get(name)
            ok = got is not None and got.dtype == want.dtype and np.array_equal(got, want)
            result[name] = {"ok": bool(ok), "expected": want.tolist(),
                            "mismatches": None if got is None or got.shape != want.shape
                            else int(np.count_nonzero(got != want))}
        return result


def _div_pow2_trunc(x: np.ndarray, bits: int) -> np.ndarray:
    """C integer division by 2**bits (rounds toward zero)."""
    d = np.int64(1) << bits
    return np.where(x >= 0, x // d, -((-x) // d))


def requantize_np(acc: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """TFLM's MultiplyByQuantizedMultiplier in numpy int64 (independent of the C kernel)."""
    acc = acc.astype(np.int64)
    left, right = max(shift, 0), max(-shift, 0)
    x = (acc << left).astype(np.int64)
    ab = x * np.int64(multiplier)
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = _div_pow2_trunc(ab + nudge, 31)
    mask = np.int64((1 << right) - 1)
    rem = high & mask
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + (rem > threshold)


def expected_outputs(d: BenchData, multiplier: int, shift: int) -> dict[str, np.ndarray]:
    dot = np.array([np.dot(d.a.astype(np.int64), d.b.astype(np.int64))], dtype=np.int32)
    acc = d.bias.astype(np.int64) + d.w.astype(np.int64) @ (d.x.astype(np.int64) + d.input_offset)
    out = np.clip(requantize_np(acc, multiplier, shift) + d.output_zp, -128, 127).astype(np.int8)
    return {"dot": dot, "matvec": out}


register(BenchApp())
