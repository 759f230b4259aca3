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
int32_t t_smmulr(int32_t a, int32_t b) { return ss_smmulr(a, b); }
int32_t t_sat8(int32_t v) { return ss_sat8(v); }
int32_t t_rq_fast(int32_t acc, int32_t m, int32_t add, int32_t r) {
    return ss_rq_fast(acc, m, add, r);
}
int32_t t_rq(int32_t acc, int32_t m, int32_t a, int32_t r, int fast, int32_t zp, int32_t lo,
             int32_t hi) {
    const int32_t rec[4] = {0, m, a, r};
    return fast ? ss_rq(acc, rec, 1, lo == -128 && hi == 127, zp, lo, hi)
                : ss_rq(acc, rec, 0, lo == -128 && hi == 127, zp, lo, hi);
}
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
                            ("t_sadd16", [u32, u32], u32), ("t_smmulr", [i32, i32], i32),
                            ("t_sat8", [i32], i32), ("t_rq_fast", [i32, i32, i32, i32], i32),
                            ("t_rq", [i32, i32, i32, i32, ctypes.c_int, i32, i32, i32], i32)]:
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


def test_smmulr_and_sat8(lib: ctypes.CDLL) -> None:
    rng = random.Random(5)
    vals = _values(rng, 200)
    for a in vals:
        for b in vals[:40]:
            assert lib.t_smmulr(a, b) == (a * b + 2**31) >> 32, (a, b)  # floor division
        assert lib.t_sat8(a) == min(max(a, -128), 127)


def _fast_cases(rng: random.Random, n: int) -> list[tuple[int, int, int, int, int]]:
    """(start, mult, shift, zp, bound) with mult from QuantizeMultiplier's range, right shifts,
    and accumulator bounds from tiny to the limit."""
    out = []
    for _ in range(n):
        m = rng.randint(2**30, I32_MAX)
        s = -rng.randint(1, 31)
        zp = rng.randint(-128, 127)
        bound = rng.choice([rng.randint(1, 2**12), rng.randint(1, 2**24), 2**30 - 1,
                            rng.randint(2**29, 2**30 - 1)])
        out.append((rng.randint(-bound, bound), m, s, zp, bound))
    return out


def test_fast_requantization_equals_longhand(lib: ctypes.CDLL) -> None:
    """Wherever tflm_math.fast_record claims the fast form is exact, the C kernels' ss_rq_fast
    equals the longhand TFLM arithmetic (written out here) on the bound's edges, on ties of the
    rounding shift and on random accumulators within the bound."""
    from generator.compiler import tflm_math as tm

    rng = random.Random(6)
    fast = constant = 0
    for start, m, s, zp, bound in _fast_cases(rng, 3000):
        rec = tm.fast_record(start, m, s, zp, bound + 1)  # +1: not an all-zero channel
        if rec is None:
            continue
        b = bound + 1
        r = -s
        accs = [b, -b, b - 1, -b + 1, 0, 1, -1] + [rng.randint(-b, b) for _ in range(40)]
        # ties of RoundingDivideByPOT: SRDHM(acc, 2^30) = acc / 2 for even acc
        if m == 2**30 or rng.random() < 0.2:
            m = 2**30
            rec = tm.fast_record(start, m, s, zp, b)
            if rec is None:
                continue
            for k in range(-3, 3):
                t = 2 * (2 * k + 1) * 2 ** (r - 1)
                if abs(t) <= b:
                    accs.append(t)
        _, mult, add, rshift = rec
        for acc in accs:
            want = mbqm(acc, m, s) + zp
            assert lib.t_rq_fast(acc, mult, add, rshift) == want, (acc, m, s, zp, rec)
            assert lib.t_rq(acc, mult, add, rshift, 1, zp, -128, 127) == min(max(want, -128), 127)
            assert lib.t_rq(acc, m, s, 0, 0, zp, -128, 127) == min(max(want, -128), 127)
            assert lib.t_rq(acc, mult, add, rshift, 1, zp, -5, 90) == min(max(want, -5), 90)
        fast += mult != 0
        constant += mult == 0
    assert fast > 1000 and constant > 100


def test_fast_requantization_limits() -> None:
    """Where the fast form would not be exact, fast_record says so (and the generator keeps the
    longhand form): a left shift, a shift of 0, an accumulator that could overflow 2 * acc."""
    from generator.compiler import tflm_math as tm

    assert tm.fast_record(0, 2**30, 1, 0, 100) is None  # multiplier > 1: left shift
    assert tm.fast_record(0, 2**30, 0, 0, 100) is None  # no right shift
    assert tm.fast_record(0, 2**30, -3, 0, 2**30) is None  # 2 * acc may wrap
    assert tm.fast_record(5, 2**30, -3, 0, 2**30 - 1) is not None
    # an all-zero channel: its output is a constant, whatever the shift
    assert tm.fast_record(-(2**30), 1320764593, -27, -128, 2**30) == [0, 0, 2 * -128 + 1, 1]
    c = min(max(mbqm(1000, 2**30, 2) - 3, -128), 127)
    assert tm.fast_record(1000, 2**30, 2, -3, 1000) == [0, 0, 2 * c + 1, 1]
