"""The kernels' in-place guarantees (generator/schedule.py) against a byte-by-byte simulation.

For CONV_2D (GEMM path) and DEPTHWISE_CONV_2D over many small random geometries, the loops of
ss_conv.c / ss_dwconv.c are restated here access by access (which input bytes each step reads,
which output bytes it then writes, in the kernel's order) and run on one simulated memory with
the output starting ``gap`` bytes below the input. At the bound ``min_gap`` no read ever sees a
byte the kernel already overwrote; one byte less, some read does (the bound is tight); larger
gaps stay safe. That the C kernels really follow these loops is checked by running them on
overlapping plans against the TFLM interpreter (tests/test_kernels.py, hil_tests)."""

from __future__ import annotations

import numpy as np
import pytest

from generator.compiler import schedule
from generator.compiler import tflm_math as tm
from generator.compiler.ir import Graph, Operator, Quant, Tensor

QP = Quant(scale=(0.1,), zero_point=(0,))


def _conv_graph(kind: str, n: int, h: int, w: int, c: int, out_c: int, k: tuple[int, int],
                stride: tuple[int, int], dil: tuple[int, int], padding: str) -> Graph:
    kh, kw = k
    oh = tm.out_size(padding, h, kh, stride[0], dil[0])
    ow = tm.out_size(padding, w, kw, stride[1], dil[1])
    x = Tensor(0, "x", (n, h, w, c), "int8", QP)
    wshape = (out_c, kh, kw, c) if kind == "CONV_2D" else (1, kh, kw, out_c)
    data = np.ones(wshape, dtype=np.int8)
    data.flags.writeable = False
    f = Tensor(1, "w", wshape, "int8", QP, data)
    y = Tensor(2, "y", (n, oh, ow, out_c), "int8", QP)
    opts = {"stride_h": stride[0], "stride_w": stride[1], "dilation_h": dil[0],
            "dilation_w": dil[1], "padding": padding, "fused_activation": "NONE",
            "depth_multiplier": out_c // c}
    op = Operator(0, kind, (0, 1), (2,), opts)
    return Graph("g", "0" * 64, (x, f, y), (op,), (0,), (2,))


def _taps(g: Graph, oy: int, ox: int) -> list[tuple[int, int]]:
    """The valid (iy, ix) of an output pixel's window."""
    op = g.operators[0]
    o = op.options
    _, in_h, in_w, _ = g.tensor(0).shape
    w = g.tensor(1).shape
    kh, kw = w[1], w[2]
    pad_h = tm.padding_before(o["padding"], in_h, kh, o["stride_h"], o["dilation_h"])
    pad_w = tm.padding_before(o["padding"], in_w, kw, o["stride_w"], o["dilation_w"])
    out = []
    for ky in range(kh):
        iy = oy * o["stride_h"] - pad_h + ky * o["dilation_h"]
        for kx in range(kw):
            ix = ox * o["stride_w"] - pad_w + kx * o["dilation_w"]
            if 0 <= iy < in_h and 0 <= ix < in_w:
                out.append((iy, ix))
    return out


def _conv_events(g: Graph) -> list[tuple[str, int]]:
    """ss_conv.c, GEMM path: per block of output pixels (4 or 2 while that many remain, then 2,
    then 1), gather every patch, then per output channel write the block's pixels. Tiled path
    (patches over 256 bytes): blocks of 4 (the last one shorter), output channels in groups of
    32; per group gather every patch of the block (chunk by chunk: the same bytes), then write
    the group's channels of the block's pixels."""
    n, in_h, in_w, in_c = g.tensor(0).shape
    out_c, kh, kw, fic = g.tensor(1).shape
    _, oh, ow, _ = g.tensor(2).shape
    tiled = kh * kw * fic > 256
    block = 4 if tiled else schedule.conv_block_pixels(schedule.conv_k4(kh, kw, fic))
    groups = [(a, min(a + 32, out_c)) for a in range(0, out_c, 32)] if tiled else [(0, out_c)]
    ev: list[tuple[str, int]] = []
    pixels = oh * ow
    for b in range(n):
        start = 0
        while start < pixels:  # blocks of `block`, then of 2 (the last maybe of 1)
            if tiled:
                stop = min(start + 4, pixels)
            else:
                stop = start + (block if pixels - start >= block else min(2, pixels - start))
            for g0, g1 in groups:
                for p in range(start, stop):
                    for iy, ix in _taps(g, p // ow, p % ow):
                        base = ((b * in_h + iy) * in_w + ix) * in_c
                        ev += [("r", base + ci) for ci in range(in_c)]
                for oc in range(g0, g1):
                    ev += [("w", (b * pixels + p) * out_c + oc) for p in range(start, stop)]
            start = stop
    return ev


def _dw_events(g: Graph) -> list[tuple[str, int]]:
    """ss_dwconv.c: per output pixel, per channel chunk, read the chunk's input channels over
    the window, then write the chunk."""
    n, in_h, in_w, in_c = g.tensor(0).shape
    out_c = g.tensor(1).shape[3]
    _, oh, ow, _ = g.tensor(2).shape
    dm = out_c // in_c
    ev: list[tuple[str, int]] = []
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                p = (b * oh + oy) * ow + ox
                for a, e in schedule.dw_channel_groups(out_c, dm):
                    for iy, ix in _taps(g, oy, ox):
                        base = ((b * in_h + iy) * in_w + ix) * in_c
                        ev += [("r", base + oc // dm) for oc in range(a, e)]
                    ev += [("w", p * out_c + oc) for oc in range(a, e)]
    return ev


def _violations(events: list[tuple[str, int]], in_bytes: int, out_bytes: int, gap: int) -> int:
    """Reads of input bytes the kernel had already overwritten, with the input gap bytes above
    the output."""
    lo = min(0, -gap)
    size = max(in_bytes, out_bytes - gap) - lo + 1
    clobbered = np.zeros(size + in_bytes + out_bytes, dtype=bool)
    bad = 0
    for kind, i in events:
        if kind == "r":
            bad += bool(clobbered[i - lo])
        else:
            clobbered[i - gap - lo] = True
    return bad


def _random_geometry(rng: np.random.Generator, kind: str, tiled: bool = False) -> Graph:
    h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    c = int(rng.integers(1, 9)) if not tiled else int(rng.integers(29, 70))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.3 else (1, 1)
    padding = "SAME" if rng.random() < 0.6 else "VALID"
    if padding == "VALID":
        h, w = max(h, (kh - 1) * dil[0] + 1), max(w, (kw - 1) * dil[1] + 1)
    n = 2 if rng.random() < 0.2 else 1
    if kind == "CONV_2D":
        out_c = int(rng.integers(1, 9)) if not tiled else int(rng.integers(1, 80))
        if tiled:  # 3x3 and larger windows: patches past the GEMM buffer
            kh, kw = int(rng.integers(3, 6)), int(rng.integers(3, 4))
            if padding == "VALID":
                h, w = max(h, (kh - 1) * dil[0] + 1), max(w, (kw - 1) * dil[1] + 1)
        elif rng.random() < 0.3:  # pointwise, often expanding
            kh = kw = 1
            stride, dil, padding = (1, 1), (1, 1), "VALID"
    else:
        out_c = c * int(rng.choice([1, 1, 2, 3]))
    return _conv_graph(kind, n, h, w, c, out_c, (kh, kw), stride, dil, padding)


@pytest.mark.parametrize("kind", ["CONV_2D", "CONV_2D tiled", "DEPTHWISE_CONV_2D"])
def test_min_gap_is_safe_and_tight(kind: str) -> None:
    tiled = kind.endswith("tiled")
    kind = kind.split()[0]
    rng = np.random.default_rng((5 if kind == "CONV_2D" else 6) + 10 * tiled)
    tight = 0
    for _ in range(120):
        g = _random_geometry(rng, kind, tiled)
        if tiled:
            w = g.tensor(1).shape
            assert schedule.conv_path(w[3], w[3], w[1], w[2]) == schedule.CONV_TILED
        op = g.operators[0]
        gap = schedule.min_gap(g, op, 0)
        assert gap is not None
        events = _conv_events(g) if kind == "CONV_2D" else _dw_events(g)
        xb, yb = g.tensor(0).nbytes, g.tensor(2).nbytes
        if gap == schedule.ANY_GAP:  # nothing read after a write: try the output on the input
            assert _violations(events, xb, yb, -yb) == 0
            assert _violations(events, xb, yb, 0) == 0
            continue
        assert _violations(events, xb, yb, gap) == 0, (g.tensor(0).shape, g.tensor(2).shape)
        for more in rng.integers(1, xb + yb + 2, 3):
            assert _violations(events, xb, yb, gap + int(more)) == 0
        if gap > -xb:  # one byte less lets the output reach a byte still to be read
            assert _violations(events, xb, yb, gap - 1) > 0, (g.tensor(0).shape, gap)
            tight += 1
    assert tight > (40 if tiled else 80)


def test_hand_worked_gaps() -> None:
    # 1x1 conv 8 -> 16 channels on 6x6 (36 pixels, 9 blocks of 4): block b writes output bytes
    # up to 64b + 63, and block b + 1 reads from input byte 32(b + 1) on; over b = 0..7 the
    # largest difference is 64*7 + 63 - 32*8 = 255, so the gap is 256.
    g = _conv_graph("CONV_2D", 1, 6, 6, 8, 16, (1, 1), (1, 1), (1, 1), "VALID")
    assert schedule.min_gap(g, g.operators[0], 0) == 256
    # Depthwise 3x3 stride 1 SAME, 4 channels on 5x5: pixel p's chunk writes byte 4p + 3, and
    # pixel p + 1 reads from its window's first pixel on, (p + 1) - 6 for interior pixels;
    # the worst case is the interior: 4p + 3 - 4(p - 5) = 23, so the gap is 24.
    g = _conv_graph("DEPTHWISE_CONV_2D", 1, 5, 5, 4, 4, (3, 3), (1, 1), (1, 1), "SAME")
    assert schedule.min_gap(g, g.operators[0], 0) == 24
    # Depthwise stride 2 shrinks: the output may start right at its input.
    g = _conv_graph("DEPTHWISE_CONV_2D", 1, 8, 8, 4, 4, (3, 3), (2, 2), (1, 1), "SAME")
    assert schedule.min_gap(g, g.operators[0], 0) <= 0


def test_generic_conv_and_other_ops_never_overlap() -> None:
    # grouped convolution runs the generic path: no guarantee
    x = Tensor(0, "x", (1, 4, 4, 4), "int8", QP)
    data = np.ones((4, 3, 3, 2), dtype=np.int8)
    f = Tensor(1, "w", data.shape, "int8", QP, data)
    y = Tensor(2, "y", (1, 4, 4, 4), "int8", QP)
    op = Operator(0, "CONV_2D", (0, 1), (2,), {"stride_h": 1, "stride_w": 1, "dilation_h": 1,
                                              "dilation_w": 1, "padding": "SAME"})
    g = Graph("g", "0" * 64, (x, f, y), (op,), (0,), (2,))
    assert schedule.conv_path(4, 2, 3, 3) == schedule.CONV_GENERIC
    assert schedule.min_gap(g, op, 0) is None
    fc = Operator(0, "FULLY_CONNECTED", (0, 1), (2,), {})
    assert schedule.min_gap(Graph("g", "0" * 64, (x, f, y), (fc,), (0,), (2,)), fc, 0) is None


def test_block_sizes_fit_the_stack_buffer() -> None:
    for k4 in range(4, 1025, 4):
        block = schedule.conv_block_pixels(k4)
        assert block * k4 <= schedule.CONV_COL_ELEMS
        assert (block == 0) == (k4 > schedule.CONV_COL_ELEMS // 2)
        assert block in (0, 2, 4)  # the kernel's blocks (and its 256-byte gather buffer)
    assert schedule.conv_block_pixels(128) == 4 and schedule.conv_block_pixels(132) == 2


def test_block_decomposition_by_hand() -> None:
    assert schedule.conv_blocks(9, 4) == [(0, 4, 4), (4, 4, 4), (8, 2, 1)]
    assert schedule.conv_blocks(7, 4) == [(0, 4, 4), (4, 2, 2), (6, 2, 1)]
    assert schedule.conv_blocks(5, 2) == [(0, 2, 2), (2, 2, 2), (4, 2, 1)]
    assert schedule.conv_blocks(1, 4) == [(0, 2, 1)]
    assert schedule.conv_tiled_blocks(9) == [(0, 4, 4), (4, 4, 4), (8, 4, 1)]
    assert schedule.conv_tile_groups(70) == [(0, 32), (32, 64), (64, 70)]


def test_tiles_cover_the_patch_in_the_buffer() -> None:
    # 3x3x64 = 576 bytes: 5 chunks of 116 (580, 4 bytes of zero weights); 1x1x600: 5 of 120
    assert schedule.conv_tile(3, 3, 64) == (116, 5)
    assert schedule.conv_tile(1, 1, 600) == (120, 5)
    for k in range(257, 3000, 7):
        chunk, chunks = schedule.conv_tile(1, 1, k)
        assert chunk % 4 == 0 and 4 * chunk <= schedule.CONV_COL_ELEMS
        assert chunk * chunks >= k and chunk * (chunks - 1) < k
        assert chunks == -(-k // (schedule.CONV_COL_ELEMS // 4))
