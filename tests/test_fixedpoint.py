"""The kernels' fixed-point and SIMD primitives (templates/kernels/ss_fixedpoint.h, ss_simd.h),
compiled for the host, against gemmlowp/TFLM arithmetic written out longhand in Python, on edge
values (INT32_MIN/MAX, ties, every shift) and random ones. The whole-operator tests cannot reach
all of these corners."""

from __future__ import annotations

import ctypes
import random
import subprocess
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parents[1] / "templates" / "kernels"
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

SHIM = r"""
#include "ss_fixedpoint.h"
#include "ss_simd.h"
int32_t t_srdhm(int32_t a, int32_t b) { return ss_srdhm(a, b); }
int32_t t_rdbpot(int32_t x, int e) { return ss_rdbpot(x, e); }
int32_t t_mbqm(int32_t x, int32_t m, int32_t s) { return ss_mbqm(x, m, s); }
uint32_t t_sxtb16(uint32_t x) { return ss_sxtb16(x); }
uint32_t t_sxtb16_ror8(uint32_t x) { return ss_sxtb16_ror8(x); }
int32_t t_smlad(uint32_t a, uint32_t b, int32_t acc) { return ss_smlad(a, b, acc); }
int32_t t_smlabb(uint32_t a, uint32_t b, int32_t acc) { return ss_smlabb(a, b, acc); }
int32_t t_smlatt(uint32_t a, uint32_t b, int32_t acc) { return ss_smlatt(a, b, acc); }
uint32_t t_sadd16(uint32_t a, uint32_t b) { return ss_sadd16(a, b); }
"""


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> ctypes.CDLL:
    d = tmp_path_factory.mktemp("fixedpoint")
    (d / "shim.c").write_text(SHIM)
    so = d / "shim.so"
    subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared",
                    f"-I{KERNELS}", str(d / "shim.c"), "-o", str(so)], check=True, timeout=120)
    lib = ctypes.CDLL(str(so))
    i32, u32 = ctypes.c_int32, ctypes.c_uint32
    for name, args, res in [("t_srdhm", [i32, i32], i32), ("t_rdbpot", [i32, ctypes.c_int], i32),
                            ("t_mbqm", [i32, i32, i32], i32), ("t_sxtb16", [u32], u32),
                            ("t_sxtb16_ror8", [u32], u32), ("t_smlad", [u32, u32, i32], i32),
                            ("t_smlabb", [u32, u32, i32], i32), ("t_smlatt", [u32, u32, i32], i32),
                            ("t_sadd16", [u32, u32], u32)]:
        f = getattr(lib, name)
        f.argtypes, f.restype = args, res
    return lib


def wrap(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def srdhm(a: int, b: int) -> int:
    """gemmlowp: (a*b + nudge) / 2^31 truncated towards zero, saturating -1 * -1."""
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    n = ab + nudge
    return wrap(int(n / 2**31) if abs(n) < 2**52 else (abs(n) // 2**31) * (1 if n >= 0 else -1))


def rdbpot(x: int, e: int) -> int:
    """Divide by 2^e rounding to nearest, ties away from zero."""
    q, r = divmod(abs(x), 2**e)
    if 2 * r >= 2**e and e > 0:
        q += 1
    return q if x >= 0 else -q


def mbqm(x: int, m: int, s: int) -> int:
    left, right = max(s, 0), max(-s, 0)
    return rdbpot(srdhm(wrap(x * 2**left), m), right)


def _values(rng: random.Random, n: int) -> list[int]:
    edge = [I32_MIN, I32_MIN + 1, -(2**30), -1, 0, 1, 2**30, I32_MAX - 1, I32_MAX]
    return edge + [rng.randint(I32_MIN, I32_MAX) for _ in range(n)] + [
        rng.randint(-5000, 5000) for _ in range(n)]


def test_srdhm(lib: ctypes.CDLL) -> None:
    rng = random.Random(1)
    vals = _values(rng, 300)
    for a in vals:
        for b in vals[:60]:
            assert lib.t_srdhm(a, b) == srdhm(a, b), (a, b)


def test_rdbpot(lib: ctypes.CDLL) -> None:
    rng = random.Random(2)
    for x in _values(rng, 500) + [5, -5, 6, -6, 7, -7, 2**20 + 2**19, -(2**20 + 2**19)]:
        for e in range(0, 32):
            assert lib.t_rdbpot(x, e) == rdbpot(x, e), (x, e)


def test_mbqm(lib: ctypes.CDLL) -> None:
    rng = random.Random(3)
    for _ in range(20000):
        x = rng.choice([rng.randint(-(2**20), 2**20), rng.randint(I32_MIN, I32_MAX)])
        m = rng.randint(2**30, I32_MAX)
        s = rng.randint(-31, 7)
        assert lib.t_mbqm(x, m, s) == mbqm(x, m, s), (x, m, s)


def test_simd_emulation(lib: ctypes.CDLL) -> None:
    """The host's stand-ins for SXTB16 / SMLAD / SMLABB / SMLATT / SADD16 (Arm ARM semantics)."""
    rng = random.Random(4)

    def s8(v: int) -> int:
        return v - 256 if v >= 128 else v

    def s16(v: int) -> int:
        return v - 65536 if v >= 32768 else v

    def h(lo: int, hi: int) -> int:
        return (lo & 0xFFFF) | ((hi & 0xFFFF) << 16)

    for _ in range(5000):
        x = rng.randint(0, 2**32 - 1)
        b = [(x >> (8 * i)) & 0xFF for i in range(4)]
        assert lib.t_sxtb16(x) == h(s8(b[0]), s8(b[2]))
        assert lib.t_sxtb16_ror8(x) == h(s8(b[1]), s8(b[3]))
        a, c = rng.randint(0, 2**32 - 1), rng.randint(0, 2**32 - 1)
        acc = rng.randint(I32_MIN, I32_MAX)
        lo = s16(a & 0xFFFF) * s16(c & 0xFFFF)
        hi = s16(a >> 16) * s16(c >> 16)
        assert lib.t_smlad(a, c, acc) == wrap(acc + lo + hi)
        assert lib.t_smlabb(a, c, acc) == wrap(acc + lo)
        assert lib.t_smlatt(a, c, acc) == wrap(acc + hi)
        want = h(s16(a & 0xFFFF) + s16(c & 0xFFFF), s16(a >> 16) + s16(c >> 16))
        assert lib.t_sadd16(a, c) == want
