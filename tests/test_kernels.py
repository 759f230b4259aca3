"""Every supported operator, over a spread of shapes, strides, paddings, dilations, channel
counts, quantization parameters and fused activations, compared byte for byte with the TFLM
interpreter.

The cases of one operator are independent chains of one generated model
(generator.compiler.modelgen),
so each operator group is built once for board=host and driven through libssmodel.so with
varied seeded inputs (uniform, narrow, extreme, sparse; for float inputs rounding ties and
out-of-range values). The slow sweep adds many randomly drawn configurations per operator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from _infer_util import compare_loaded, compare_model, compile_variant

from generator.compiler.modelgen import ModelBuilder, QParams, write_model
from generator.targets.hostmodel import HostModel, build_host_model

Case = tuple[str, Callable[[ModelBuilder], object]]


def _conv_cases() -> list[Case]:
    c: list[Case] = []

    def conv(shape, out_c, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            return b.conv2d(b.input(shape), out_c, **kw)
        desc = f"conv {shape}->{out_c} " + " ".join(f"{k}={v}" for k, v in kw.items())
        c.append((desc, f))

    conv((1, 8, 8, 3), 8, kernel=(3, 3), padding="SAME", activation="RELU")
    conv((1, 9, 7, 5), 6, kernel=(3, 3), stride=(2, 1), padding="SAME", activation="RELU6")
    conv((1, 10, 10, 4), 5, kernel=(3, 3), padding="VALID", per_channel=False)
    conv((1, 11, 11, 2), 4, kernel=(5, 5), stride=(2, 2), padding="SAME")
    conv((1, 12, 12, 3), 4, kernel=(3, 3), padding="SAME", dilation=(2, 2))
    conv((1, 12, 10, 3), 4, kernel=(3, 3), stride=(2, 2), padding="VALID", dilation=(2, 3))
    conv((1, 13, 9, 2), 3, kernel=(3, 2), stride=(3, 2), padding="SAME", dilation=(1, 2))
    conv((1, 6, 6, 16), 32, kernel=(1, 1), padding="VALID", activation="RELU")
    conv((1, 7, 7, 8), 8, kernel=(1, 1), stride=(2, 2), padding="SAME")
    conv((1, 9, 9, 3), 4, kernel=(1, 7), padding="SAME")
    conv((1, 9, 9, 3), 4, kernel=(7, 1), padding="VALID")
    conv((1, 3, 3, 2), 3, kernel=(5, 5), padding="SAME")
    conv((1, 5, 5, 3), 4, kernel=(3, 3), padding="SAME", bias=False)
    conv((1, 5, 5, 1), 1, kernel=(3, 3), padding="SAME")
    conv((2, 5, 5, 3), 5, kernel=(3, 3), stride=(2, 2), padding="SAME")
    conv((1, 6, 6, 4), 6, kernel=(3, 3), padding="SAME", out_range=0.08)
    conv((1, 6, 6, 4), 6, kernel=(3, 3), padding="SAME", out_range=12.0)
    conv((1, 6, 6, 4), 6, kernel=(3, 3), padding="SAME", activation="RELU_N1_TO_1")
    conv((1, 6, 6, 4), 6, kernel=(3, 3), padding="SAME", groups=2)
    conv((1, 24, 3, 1), 24, kernel=(16, 1), padding="VALID", activation="RELU")
    conv((1, 4, 4, 64), 16, kernel=(3, 3), padding="SAME", activation="RELU")
    conv((1, 5, 4, 7), 9, kernel=(2, 2), stride=(2, 2), padding="SAME")
    conv((1, 5, 5, 16), 12, kernel=(3, 3), padding="SAME", activation="RELU")  # blocks of 2
    conv((1, 3, 7, 28), 5, kernel=(3, 3), stride=(1, 2), padding="SAME")  # 252 B patches
    conv((1, 6, 6, 20), 3, kernel=(1, 1), padding="VALID")  # pointwise read in place

    def big_multiplier(groups: int) -> Callable[[ModelBuilder], object]:
        def f(b: ModelBuilder) -> object:  # output LSB below the accumulator's: left shifts
            x = b.input((1, 6, 6, 4))
            return b.conv2d(x, 6, kernel=(3, 3), padding="SAME", groups=groups,
                            out_q=QParams(x.q.scale * 0.00025, 3))
        return f

    c.append(("conv left shift (longhand requantization)", big_multiplier(1)))
    c.append(("conv left shift, grouped", big_multiplier(2)))
    return c


def _conv_tiled_cases() -> list[Case]:
    """Patches past the GEMM buffer (over 256 bytes): the tiled path, patch chunks summed in
    int32, output channels in groups of 32 (sized to fit the Cortex-M0 twin's RAM)."""
    c: list[Case] = []

    def conv(shape, out_c, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            return b.conv2d(b.input(shape), out_c, **kw)
        c.append((f"conv {shape}->{out_c} " + " ".join(f"{k}={v}" for k, v in kw.items()), f))

    conv((1, 5, 5, 64), 32, kernel=(3, 3), padding="SAME", activation="RELU")  # 5 x 116 B
    conv((1, 5, 5, 48), 40, kernel=(5, 5), stride=(2, 2), padding="SAME")  # 2 channel groups
    conv((1, 1, 2, 600), 20, kernel=(1, 1), padding="VALID")
    conv((1, 5, 7, 33), 70, kernel=(3, 3), padding="VALID", dilation=(1, 2))  # 3 groups
    conv((1, 9, 9, 3), 5, kernel=(11, 11), stride=(2, 2), padding="SAME", activation="RELU6")
    conv((2, 3, 3, 36), 9, kernel=(3, 3), stride=(2, 1), padding="SAME", per_channel=False)

    def big_multiplier(b: ModelBuilder) -> object:  # longhand requantization
        x = b.input((1, 4, 5, 40))
        return b.conv2d(x, 36, kernel=(3, 3), padding="SAME",
                        out_q=QParams(x.q.scale * 0.00025, -5))

    c.append(("conv tiled, left shift (longhand requantization)", big_multiplier))
    return c


def _dw_cases() -> list[Case]:
    c: list[Case] = []

    def dw(shape, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            return b.depthwise_conv2d(b.input(shape), **kw)
        c.append((f"dwconv {shape} " + " ".join(f"{k}={v}" for k, v in kw.items()), f))

    dw((1, 8, 8, 8), kernel=(3, 3), padding="SAME", activation="RELU")
    dw((1, 9, 9, 4), kernel=(3, 3), stride=(2, 2), padding="SAME")
    dw((1, 7, 7, 3), kernel=(3, 3), padding="VALID", depth_multiplier=2)
    dw((1, 10, 10, 2), kernel=(5, 5), padding="SAME", dilation=(2, 2))
    dw((1, 5, 5, 2), kernel=(3, 3), padding="SAME", depth_multiplier=3, activation="RELU6",
       per_channel=False)
    dw((1, 6, 9, 5), kernel=(1, 3), stride=(1, 2), padding="SAME")
    dw((1, 6, 6, 4), kernel=(3, 3), padding="SAME", bias=False)
    dw((2, 5, 5, 3), kernel=(3, 3), stride=(2, 2), padding="SAME")
    dw((1, 6, 6, 4), kernel=(3, 3), padding="SAME", out_range=0.1)
    dw((1, 3, 3, 4), kernel=(5, 5), padding="SAME")
    dw((1, 11, 8, 6), kernel=(3, 3), stride=(2, 3), padding="VALID", dilation=(1, 2),
       depth_multiplier=2)
    dw((1, 4, 4, 1), kernel=(2, 2), padding="SAME", activation="RELU_N1_TO_1")

    def big_multiplier(b: ModelBuilder) -> object:
        x = b.input((1, 5, 5, 8))
        return b.depthwise_conv2d(x, padding="SAME", out_q=QParams(x.q.scale * 0.00025, -7))
    c.append(("dwconv left shift (longhand requantization)", big_multiplier))
    return c


def _dw_mult_cases() -> list[Case]:
    """Depth multipliers > 1: chunks of four output channels (int16 weights, one to four input
    channels per chunk), the rest single channels."""
    c: list[Case] = []

    def dw(shape, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            return b.depthwise_conv2d(b.input(shape), **kw)
        c.append((f"dwconv {shape} " + " ".join(f"{k}={v}" for k, v in kw.items()), f))

    dw((1, 7, 7, 3), kernel=(3, 3), padding="SAME", depth_multiplier=4)
    dw((1, 9, 8, 2), kernel=(3, 3), stride=(2, 2), padding="SAME", depth_multiplier=8,
       activation="RELU6")
    dw((1, 6, 6, 4), kernel=(3, 3), padding="VALID", depth_multiplier=2)
    dw((1, 10, 10, 1), kernel=(3, 3), stride=(2, 2), padding="SAME", depth_multiplier=8,
       activation="RELU")
    dw((1, 7, 9, 3), kernel=(5, 5), padding="SAME", dilation=(2, 1), depth_multiplier=2)
    dw((1, 8, 6, 5), kernel=(2, 3), stride=(1, 2), padding="SAME", depth_multiplier=2,
       per_channel=False)
    dw((1, 4, 4, 3), kernel=(3, 3), padding="SAME", depth_multiplier=5)
    dw((2, 5, 5, 2), kernel=(3, 3), stride=(2, 2), padding="VALID", depth_multiplier=4)
    dw((1, 5, 5, 2), kernel=(3, 3), padding="SAME", depth_multiplier=4, out_range=0.1)

    def big_multiplier(b: ModelBuilder) -> object:
        x = b.input((1, 5, 5, 2))
        return b.depthwise_conv2d(x, padding="SAME", depth_multiplier=4,
                                  out_q=QParams(x.q.scale * 0.00025, 9))
    c.append(("dwconv x4, left shift (longhand requantization)", big_multiplier))
    return c


def _fc_cases() -> list[Case]:
    c: list[Case] = []

    def fc(shape, units, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            return b.fully_connected(b.input(shape), units, **kw)
        c.append((f"fc {shape}->{units} " + " ".join(f"{k}={v}" for k, v in kw.items()), f))

    fc((1, 16), 10)
    fc((1, 64), 36, activation="RELU")
    fc((2, 20), 7)
    fc((1, 2, 3, 8), 5)
    fc((1, 3, 8), 5, keep_num_dims=True)
    fc((1, 32), 12, per_channel=True)
    fc((1, 24), 6, bias=False)
    fc((1, 1), 1)
    fc((1, 3), 1, activation="RELU6")
    fc((1, 50), 9, out_range=0.1)
    fc((1, 17), 13, activation="RELU_N1_TO_1")
    fc((1, 216), 12)

    def big_multiplier(b: ModelBuilder) -> object:
        x = b.input((1, 24))
        return b.fully_connected(x, 5, out_q=QParams(x.q.scale * 0.00025, 2))
    c.append(("fc left shift (longhand requantization)", big_multiplier))
    return c


def _pool_cases() -> list[Case]:
    c: list[Case] = []

    def pool(kind, shape, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            x = b.input(shape)
            return b.avg_pool2d(x, **kw) if kind == "avg" else b.max_pool2d(x, **kw)
        c.append((f"{kind}pool {shape} " + " ".join(f"{k}={v}" for k, v in kw.items()), f))

    for kind in ("avg", "max"):
        pool(kind, (1, 8, 8, 3), filter_size=(2, 2), stride=(2, 2), padding="VALID")
        pool(kind, (1, 9, 9, 4), filter_size=(3, 3), stride=(2, 2), padding="SAME")
        pool(kind, (1, 7, 5, 2), filter_size=(3, 3), stride=(1, 1), padding="SAME")
        pool(kind, (1, 3, 3, 16), filter_size=(3, 3), stride=(3, 3), padding="VALID")
        pool(kind, (1, 9, 3, 5), filter_size=(3, 1), stride=(3, 1), padding="VALID")
        pool(kind, (1, 6, 6, 3), filter_size=(2, 2), stride=(2, 2), padding="VALID",
             activation="RELU")
        pool(kind, (1, 6, 6, 3), filter_size=(3, 3), stride=(2, 2), padding="SAME",
             activation="RELU6")
        pool(kind, (2, 4, 4, 2), filter_size=(2, 2), stride=(1, 1), padding="VALID")
        pool(kind, (1, 2, 3, 4), filter_size=(4, 4), stride=(1, 1), padding="SAME")
    return c


def _add_cases() -> list[Case]:
    c: list[Case] = []

    def add(sa, sb, ratio=None, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            qa = QParams(float(b.rng.uniform(0.01, 0.1)), int(b.rng.integers(-50, 50)))
            sb_scale = qa.scale * ratio if ratio else float(b.rng.uniform(0.01, 0.1))
            qb = QParams(sb_scale, int(b.rng.integers(-50, 50)))
            return b.add(b.input(sa, q=qa), b.input(sb, q=qb), **kw)
        desc = f"add {sa}+{sb} ratio={ratio} " + " ".join(f"{k}={v}" for k, v in kw.items())
        c.append((desc, f))

    add((1, 4, 4, 8), (1, 4, 4, 8))
    add((1, 4, 4, 8), (1, 4, 4, 8), activation="RELU")
    add((1, 4, 4, 8), (1, 4, 4, 8), activation="RELU6")
    add((1, 4, 4, 8), (1, 1, 1, 8))
    add((1, 4, 4, 8), (1, 4, 1, 8))
    add((1, 1, 4, 1), (1, 3, 1, 5))
    add((1, 10), (1, 10), out_range=0.2)
    add((2, 3), (3,))
    add((1, 5, 5, 3), (1, 5, 5, 3), ratio=20.0)
    add((1, 5, 5, 3), (1, 5, 5, 3), ratio=0.01)

    def add_const(shape, cshape, const_first=False, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:  # an unfused batch normalisation's shift vector
            x, k = b.input(shape), b.constant(cshape)
            return b.add(k, x, **kw) if const_first else b.add(x, k, **kw)
        c.append((f"add {shape}+const{cshape} const_first={const_first} "
                  + " ".join(f"{k}={v}" for k, v in kw.items()), f))

    add_const((1, 4, 4, 16), (16,))
    add_const((1, 3, 5, 8), (1, 1, 1, 8), const_first=True, activation="RELU")
    add_const((1, 6), (1, 6), activation="RELU6")
    return c


def _sub_cases() -> list[Case]:
    """SUB, prepared like ADD by TFLM: the same spread (broadcast, activations, scale ratios,
    a constant operand on either side); SQUARED_DIFFERENCE."""
    c: list[Case] = []

    def sub(sa, sb, ratio=None, const=None, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            qa = QParams(float(b.rng.uniform(0.01, 0.1)), int(b.rng.integers(-50, 50)))
            sb_scale = qa.scale * ratio if ratio else float(b.rng.uniform(0.01, 0.1))
            qb = QParams(sb_scale, int(b.rng.integers(-50, 50)))
            x = b.constant(sa, q=qa) if const == 0 else b.input(sa, q=qa)
            y = b.constant(sb, q=qb) if const == 1 else b.input(sb, q=qb)
            return b.sub(x, y, **kw)
        c.append((f"sub {sa}-{sb} ratio={ratio} const={const} "
                  + " ".join(f"{k}={v}" for k, v in kw.items()), f))

    sub((1, 4, 4, 8), (1, 4, 4, 8))
    sub((1, 4, 4, 8), (1, 4, 4, 8), activation="RELU")
    sub((1, 4, 4, 8), (1, 1, 1, 8), activation="RELU6")
    sub((1, 1, 4, 1), (1, 3, 1, 5))
    sub((2, 3), (3,), out_range=0.2)
    sub((1, 5, 5, 3), (1, 5, 5, 3), ratio=20.0)
    sub((1, 5, 5, 3), (1, 5, 5, 3), ratio=0.01)
    sub((1, 3, 3, 8), (8,), const=1)
    sub((8,), (1, 3, 3, 8), const=0)

    def sqdiff(sa, sb, ratio=None, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            qa = QParams(float(b.rng.uniform(0.01, 0.1)), int(b.rng.integers(-50, 50)))
            sb_scale = qa.scale * ratio if ratio else float(b.rng.uniform(0.01, 0.1))
            qb = QParams(sb_scale, int(b.rng.integers(-50, 50)))
            return b.squared_difference(b.input(sa, q=qa), b.input(sb, q=qb), **kw)
        c.append((f"squared_difference {sa} {sb} ratio={ratio} {kw}", f))

    sqdiff((1, 4, 4, 8), (1, 4, 4, 8))
    sqdiff((1, 4, 4, 8), (1, 1, 1, 8), out_range=0.3)
    sqdiff((2, 3), (3,), ratio=10.0)
    sqdiff((1, 5, 5, 3), (1, 5, 5, 3), ratio=0.05, out_range=3.0)
    return c


def _mul_cases() -> list[Case]:
    c: list[Case] = []

    def mul(sa, sb, const=None, out_scale=None, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            qa = QParams(float(b.rng.uniform(0.005, 0.1)), int(b.rng.integers(-60, 60)))
            qb = QParams(float(b.rng.uniform(0.005, 0.1)), int(b.rng.integers(-60, 60)))
            x = b.constant(sa, qa) if const == 0 else b.input(sa, q=qa)
            y = b.constant(sb, qb) if const == 1 else b.input(sb, q=qb)
            if out_scale is not None:  # relative to sa * sb: > 1 means a right shift
                kw["out_q"] = QParams(qa.scale * qb.scale * out_scale,
                                      int(b.rng.integers(-20, 20)))
            return b.mul(x, y, **kw)
        desc = (f"mul {sa}*{sb} const={const} out_scale={out_scale} "
                + " ".join(f"{k}={v}" for k, v in kw.items()))
        c.append((desc, f))

    mul((1, 4, 4, 8), (1, 4, 4, 8))
    mul((1, 4, 4, 8), (1, 4, 4, 8), activation="RELU")
    mul((1, 4, 4, 8), (1, 4, 4, 8), activation="RELU6")
    mul((1, 3, 3, 4), (1, 3, 3, 4), activation="RELU_N1_TO_1")
    mul((1, 4, 4, 8), (1, 1, 1, 8))
    mul((1, 4, 4, 8), (1, 4, 1, 8))
    mul((1, 1, 4, 1), (1, 3, 1, 5))
    mul((2, 3), (3,))
    mul((1, 10), (1, 10), out_range=0.2)
    # SqueezeNet's unfused batch normalisation: a per-channel constant vector (either side)
    mul((1, 5, 5, 16), (16,), const=1)
    mul((1, 3, 4, 5), (5,), const=1, activation="RELU")
    mul((1, 1, 1, 6), (1, 2, 3, 6), const=0)
    mul((1, 7), (1, 7), const=1)
    # requantization: a multiplier above one (left shift), far below one, exactly the range
    mul((1, 4, 4, 3), (1, 4, 4, 3), out_scale=0.25)
    mul((1, 4, 4, 3), (1, 1, 1, 3), out_scale=3000.0)
    mul((1, 2, 2, 3), (1, 2, 2, 3), out_scale=1.0)
    return c


def _softmax_cases() -> list[Case]:
    c: list[Case] = []

    def sm(shape, beta=1.0, scale=None):  # noqa: ANN001
        def f(b: ModelBuilder) -> object:
            q = None if scale is None else QParams(scale, int(b.rng.integers(-20, 20)))
            return b.softmax(b.input(shape, q=q), beta=beta)
        c.append((f"softmax {shape} beta={beta} scale={scale}", f))

    sm((1, 10))
    sm((1, 4))
    sm((1, 36), scale=0.1)
    sm((1, 300), scale=0.02)
    sm((2, 5, 7))
    sm((1, 10), beta=0.5)
    sm((1, 10), beta=2.0, scale=0.2)
    sm((1, 12), scale=0.5)
    sm((1, 12), scale=0.001)
    sm((1, 1))
    sm((3, 2))
    return c


def _mean_cases() -> list[Case]:
    c: list[Case] = []

    def mean(shape, axes, keep=False, **kw):  # noqa: ANN001, ANN003
        def f(b: ModelBuilder) -> object:
            return b.mean(b.input(shape), axes, keep_dims=keep, **kw)
        c.append((f"mean {shape} axes={axes} keep={keep} {kw}", f))

    mean((1, 7, 7, 64), (1, 2))
    mean((1, 7, 7, 16), (1, 2), keep=True)
    mean((1, 5, 4, 6), (3,))
    mean((1, 5, 4, 6), (1,))
    mean((1, 5, 4, 6), (2,), keep=True)
    mean((1, 5, 4, 6), (1, 2, 3))
    mean((1, 5, 6), (1,))
    mean((1, 5, 6), (-1,))
    mean((1, 3, 3, 8), (1, 2), out_range=0.05)
    mean((1, 6, 6, 4), (1, 2), out_q=QParams(0.02, -3))
    mean((2, 3, 3, 4), (1, 2))
    return c


def _movement_cases() -> list[Case]:
    c: list[Case] = []

    def pad(shape, pads):  # noqa: ANN001
        c.append((f"pad {shape} {pads}", lambda b: b.pad(b.input(shape), pads)))

    pad((1, 5, 5, 3), [(0, 0), (1, 1), (1, 1), (0, 0)])
    pad((1, 4, 6, 2), [(0, 0), (0, 2), (1, 0), (0, 0)])
    pad((1, 3, 3, 4), [(0, 0), (0, 0), (0, 0), (2, 1)])
    pad((2, 3), [(1, 0), (2, 3)])

    def concat(shapes, axis):  # noqa: ANN001
        def f(b: ModelBuilder) -> object:
            q = b.random_qparams()
            return b.concat([b.input(s, q=q) for s in shapes], axis)
        c.append((f"concat {shapes} axis={axis}", f))

    concat([(1, 4, 4, 3), (1, 4, 4, 5)], 3)
    concat([(1, 2, 4, 3), (1, 3, 4, 3), (1, 1, 4, 3)], 1)
    concat([(1, 4, 2, 3), (1, 4, 3, 3)], 2)
    concat([(2, 3), (2, 5)], -1)
    concat([(2, 3), (4, 3)], 0)

    def reshape(shape, new):  # noqa: ANN001
        c.append((f"reshape {shape}->{new}", lambda b: b.reshape(b.input(shape), new)))

    reshape((1, 2, 3, 4), (1, 24))
    reshape((1, 24), (2, 3, 4))
    return c


def _quant_cases() -> list[Case]:
    c: list[Case] = []
    c.append(("quantize float32->int8", lambda b: b.quantize(
        b.input((1, 6, 5), dtype="float32"), "int8", QParams(0.05, -7))))
    c.append(("quantize float32->int8 small scale", lambda b: b.quantize(
        b.input((1, 40), dtype="float32"), "int8", QParams(0.0039215689, -128))))
    c.append(("quantize uint8->int8 same scale", lambda b: b.quantize(
        b.input((1, 8, 8, 1), dtype="uint8", q=QParams(0.0039215689, 0)), "int8",
        QParams(0.0039215689, -128))))
    c.append(("quantize uint8->int8 rescale", lambda b: b.quantize(
        b.input((1, 30), dtype="uint8", q=QParams(0.02, 130)), "int8", QParams(0.013, 5))))
    c.append(("quantize int8->int8 rescale", lambda b: b.quantize(b.input((1, 30)), "int8")))

    def to_uint8(b: ModelBuilder) -> object:
        x = b.input((1, 30))
        return b.quantize(b.relu6(x), "uint8")
    c.append(("quantize int8->uint8 output", to_uint8))
    c.append(("dequantize int8->float32", lambda b: b.dequantize(b.input((1, 4, 5)))))

    def relu(b: ModelBuilder) -> object:
        return b.relu(b.input((1, 7, 9)))
    c.append(("relu, requantizing", relu))
    c.append(("relu, same quantization", lambda b: (lambda x: b.relu(x, out_q=x.q))(
        b.input((1, 40)))))
    c.append(("relu6", lambda b: b.relu6(b.input((1, 5, 11), q=QParams(0.03, -20)))))
    c.append(("relu6 coarse scale", lambda b: b.relu6(b.input((1, 50), q=QParams(0.2, 10)))))
    return c


def _network_cases() -> list[Case]:
    """Small multi-operator chains: the interplay of the arena plan and the kernels."""
    c: list[Case] = []

    def cnn(b: ModelBuilder) -> object:
        x = b.quantize(b.input((1, 12, 12, 1), dtype="float32"), "int8", QParams(0.02, -10))
        x = b.conv2d(x, 8, kernel=(3, 3), stride=(2, 2), padding="SAME", activation="RELU")
        x = b.depthwise_conv2d(x, kernel=(3, 3), padding="SAME", activation="RELU6")
        x = b.max_pool2d(x, (2, 2), (2, 2), "VALID")
        x = b.reshape(x, (1, 72))
        x = b.fully_connected(x, 10)
        return b.dequantize(b.softmax(x))
    c.append(("cnn float->softmax->float", cnn))

    def residual(b: ModelBuilder) -> object:
        x = b.input((1, 8, 8, 4))
        y = b.conv2d(x, 8, kernel=(3, 3), padding="SAME", activation="RELU")
        z = b.conv2d(y, 8, kernel=(3, 3), padding="SAME")
        s = b.conv2d(x, 8, kernel=(1, 1), padding="SAME")
        a = b.add(z, s, activation="RELU")
        m = b.mean(a, (1, 2))
        return b.fully_connected(m, 5, activation="RELU")
    c.append(("residual add + mean + fc", residual))

    def branches(b: ModelBuilder) -> object:
        x = b.input((1, 6, 6, 3))
        q = QParams(0.05, -5)
        p = b.conv2d(x, 4, kernel=(1, 1), out_q=q)
        r = b.conv2d(x, 4, kernel=(3, 3), padding="SAME", out_q=q)
        y = b.concat([p, r], 3)
        y = b.pad(y, [(0, 0), (1, 1), (1, 1), (0, 0)])
        return b.avg_pool2d(y, (2, 2), (2, 2), "VALID")
    c.append(("concat branches + pad + avgpool", branches))
    return c


def _transpose_slice_cases() -> list[Case]:
    c: list[Case] = []

    def transpose(shape, perm):  # noqa: ANN001
        c.append((f"transpose {shape} {perm}", lambda b: b.transpose(b.input(shape), perm)))

    transpose((1, 4, 5, 3), (0, 3, 1, 2))  # NHWC -> NCHW
    transpose((1, 3, 4, 5), (0, 2, 3, 1))  # NCHW -> NHWC
    transpose((6, 7), (1, 0))
    transpose((2, 3, 4), (2, 0, 1))
    transpose((2, 1, 3, 2, 2), (4, 3, 0, 2, 1))
    transpose((5,), (0,))

    def slice_(shape, begin, size):  # noqa: ANN001
        c.append((f"slice {shape} {begin} {size}",
                  lambda b: b.slice(b.input(shape), begin, size)))

    slice_((1, 6, 5, 4), [0, 1, 2, 1], [1, 3, 2, 2])
    slice_((1, 6, 5, 4), [0, 2, 0, 0], [-1, -1, 3, -1])
    slice_((7, 9), [3, 0], [4, 9])
    slice_((4, 3, 5), [1, 1, 4], [2, 2, 1])
    return c


def _reshuffle_cases() -> list[Case]:
    """STRIDED_SLICE on activations, SQUEEZE, EXPAND_DIMS, GATHER, SPACE_TO_DEPTH,
    DEPTH_TO_SPACE (output shapes worked out by hand here, checked by the TFLM interpreter)."""
    c: list[Case] = []

    def ss(shape, begin, end, strides, out, **masks):  # noqa: ANN001
        c.append((f"strided_slice {shape} {begin}:{end}:{strides} {masks}",
                  lambda b: b.strided_slice(b.input(shape), begin, end, strides, out, **masks)))

    ss((1, 8, 6, 4), [0, 1, 0, 0], [1, 7, 6, 4], [1, 2, 2, 1], (1, 3, 3, 4))
    ss((1, 8, 6, 4), [0, -1, 0, 3], [1, 0, 6, 0], [1, -2, 3, -1], (1, 4, 2, 3))
    ss((5, 7), [1, 0], [0, 3], [1, 1], (4, 3), end_mask=1)
    ss((5, 7), [2, 1], [3, 6], [1, 2], (3,), shrink_axis_mask=1)
    ss((4, 6, 3), [0, 0, 0], [2, 6, 3], [1, 1, 1], (6, 3), begin_mask=1, shrink_axis_mask=1)
    c.append(("squeeze (1,4,1,3) [0,2]", lambda b: b.squeeze(b.input((1, 4, 1, 3)), [0, 2])))
    c.append(("squeeze (1,1,5) all", lambda b: b.squeeze(b.input((1, 1, 5)), [])))
    c.append(("squeeze (2,1,3) [-2]", lambda b: b.squeeze(b.input((2, 1, 3)), [-2])))
    c.append(("expand_dims (4,3) 0", lambda b: b.expand_dims(b.input((4, 3)), 0)))
    c.append(("expand_dims (4,3) -1", lambda b: b.expand_dims(b.input((4, 3)), -1)))
    c.append(("expand_dims (2,4,3) 2", lambda b: b.expand_dims(b.input((2, 4, 3)), 2)))
    c.append(("gather (6,4) [5,0,2] axis 0",
              lambda b: b.gather(b.input((6, 4)), [5, 0, 2, 2], 0)))
    c.append(("gather (2,5,3) [[4,1],[0,0]] axis 1",
              lambda b: b.gather(b.input((2, 5, 3)), [[4, 1], [0, 0]], 1)))
    c.append(("gather (2,5,3) [2,1] axis -1",
              lambda b: b.gather(b.input((2, 5, 3)), [2, 1], -1)))
    c.append(("space_to_depth (1,4,6,3) 2",
              lambda b: b.space_to_depth(b.input((1, 4, 6, 3)), 2)))
    c.append(("space_to_depth (2,6,3,2) 3",
              lambda b: b.space_to_depth(b.input((2, 6, 3, 2)), 3)))
    c.append(("depth_to_space (1,2,3,8) 2",
              lambda b: b.depth_to_space(b.input((1, 2, 3, 8)), 2)))
    c.append(("depth_to_space (1,3,2,9) 3",
              lambda b: b.depth_to_space(b.input((1, 3, 2, 9)), 3)))
    return c


def _select_cases() -> list[Case]:
    """MAXIMUM/MINIMUM (with broadcast and a constant operand), REDUCE_MAX/REDUCE_MIN,
    ARG_MAX/ARG_MIN (int32 output)."""
    c: list[Case] = []

    def minmax(kind, sa, sb, const=False):  # noqa: ANN001
        def f(b: ModelBuilder) -> object:
            q = b.random_qparams()
            x = b.input(sa, q=q)
            other = b.constant(sb, q=q) if const else b.input(sb, q=q)
            return b.minmax(kind, x, other)
        c.append((f"{kind} {sa} {sb}{' const' if const else ''}", f))

    minmax("max", (1, 4, 4, 3), (1, 4, 4, 3))
    minmax("min", (1, 4, 4, 3), (1, 4, 4, 3))
    minmax("max", (1, 4, 4, 3), (3,), const=True)
    minmax("min", (2, 1, 5), (3, 1))
    minmax("max", (1, 3, 1, 2), (1, 1, 4, 1))

    def reduce(kind, shape, axes, keep):  # noqa: ANN001
        c.append((f"reduce_{kind} {shape} {axes} keep={keep}",
                  lambda b: b.reduce(kind, b.input(shape), axes, keep_dims=keep)))

    reduce("max", (1, 6, 5, 4), (1, 2), False)
    reduce("min", (1, 6, 5, 4), (1, 2), True)
    reduce("max", (1, 6, 5, 4), (-1,), True)
    reduce("min", (3, 7), (0,), False)
    reduce("max", (2, 3, 4), (0, 2), False)

    def arg(kind, shape, axis):  # noqa: ANN001
        c.append((f"arg_{kind} {shape} axis={axis}",
                  lambda b: b.arg(kind, b.input(shape), axis)))

    arg("max", (1, 10), -1)
    arg("min", (1, 10), 1)
    arg("max", (1, 4, 5, 3), 3)
    arg("min", (2, 6, 3), 1)
    arg("max", (5, 4), 0)
    return c


def _leaky_cases() -> list[Case]:
    """PRELU (constant alpha, broadcast), and LEAKY_RELU through a 256-entry table (tflm_math's
    Python evaluation of TFLM's integer algorithm for every input byte)."""
    c: list[Case] = []
    for shape, alpha in [((1, 4, 4, 3), 0.2), ((2, 10), 0.01), ((1, 8), 1.5), ((3, 5), 0.0),
                         ((1, 2, 2, 16), 0.3)]:
        c.append((f"leaky_relu {shape} alpha={alpha}",
                  lambda b, shape=shape, alpha=alpha: b.leaky_relu(b.input(shape), alpha)))
    for shape, scale, zp in [((1, 4, 4, 3), None, None), ((2, 10), 0.02, -10), ((1, 8), 0.1, 60),
                             ((3, 5), 0.004, 0), ((1, 2, 2, 16), 0.05, -128)]:
        def hs(b: ModelBuilder, shape=shape, scale=scale, zp=zp) -> object:  # noqa: ANN001
            q = None if scale is None else QParams(scale, zp)
            return b.hard_swish(b.input(shape, q=q))
        c.append((f"hard_swish {shape} scale={scale} zp={zp}", hs))
    for shape, scale, zp in [((1, 4, 4, 3), 0.05, 3), ((2, 10), 0.02, -10), ((1, 8), 0.1, 60),
                             ((3, 5), 0.004, 0), ((1, 16), 0.5, -128), ((2, 8), 0.0625, 0)]:
        c.append((f"logistic {shape} scale={scale} zp={zp}",
                  lambda b, shape=shape, scale=scale, zp=zp:
                  b.logistic(b.input(shape, q=QParams(scale, zp)))))
        c.append((f"tanh {shape} scale={scale} zp={zp}",
                  lambda b, shape=shape, scale=scale, zp=zp:
                  b.tanh(b.input(shape, q=QParams(scale, zp)))))
    for shape, ashape in [((1, 4, 4, 3), (3,)), ((1, 4, 4, 3), (1, 1, 1, 3)),
                          ((1, 3, 5, 2), (3, 5, 2)), ((2, 6), (6,))]:
        c.append((f"prelu {shape} alpha {ashape}",
                  lambda b, shape=shape, ashape=ashape: b.prelu(b.input(shape), ashape)))
    return c


def _split_pack_cases() -> list[Case]:
    """SPLIT, SPLIT_V (with -1), UNPACK (several outputs: the parts are packed back into one
    output with PACK / CONCATENATION so every case has one output) and PACK of activations."""
    c: list[Case] = []

    def split(shape, num, axis):  # noqa: ANN001
        def f(b: ModelBuilder) -> object:
            parts = b.split(b.input(shape), num, axis)
            return b.concat(parts[::-1], axis)  # reversed: a swapped part shows
        c.append((f"split {shape} {num} axis={axis}", f))

    split((1, 4, 6, 3), 2, 2)
    split((1, 4, 6, 3), 3, -1)
    split((6, 5), 3, 0)

    def split_v(shape, sizes, axis):  # noqa: ANN001
        def f(b: ModelBuilder) -> object:
            parts = b.split_v(b.input(shape), sizes, axis)
            return b.concat(parts[::-1], axis)
        c.append((f"split_v {shape} {sizes} axis={axis}", f))

    split_v((1, 4, 7, 3), [2, 4, 1], 2)
    split_v((2, 9), [3, -1], -1)

    def unpack(shape, axis):  # noqa: ANN001
        def f(b: ModelBuilder) -> object:
            parts = b.unpack(b.input(shape), axis)
            return b.pack(parts[::-1], axis=0)
        c.append((f"unpack {shape} axis={axis}", f))

    unpack((3, 4), 0)
    unpack((2, 3, 5), 1)
    unpack((1, 2, 3, 2), -1)

    def pack(shape, n, axis):  # noqa: ANN001
        def f(b: ModelBuilder) -> object:
            q = b.random_qparams()
            return b.pack([b.input(shape, q=q) for _ in range(n)], axis=axis)
        c.append((f"pack {n}x{shape} axis={axis}", f))

    pack((4, 3), 2, 0)
    pack((4, 3), 3, 1)
    pack((2, 3, 2), 2, -1)
    return c


GROUPS: dict[str, Callable[[], list[Case]]] = {
    "conv": _conv_cases,
    "conv_tiled": _conv_tiled_cases,
    "depthwise": _dw_cases,
    "depthwise_mult": _dw_mult_cases,
    "fully_connected": _fc_cases,
    "pool": _pool_cases,
    "add": _add_cases,
    "mul": _mul_cases,
    "softmax": _softmax_cases,
    "mean": _mean_cases,
    "pad_concat_reshape": _movement_cases,
    "quantize_relu": _quant_cases,
    "transpose_slice": _transpose_slice_cases,
    "reshuffle": _reshuffle_cases,
    "select": _select_cases,
    "sub": _sub_cases,
    "leaky_relu": _leaky_cases,
    "split_pack": _split_pack_cases,
    "networks": _network_cases,
}
INPUT_SETS = 10


def _build_group(cases: list[Case], seed: int, path: Path) -> list[str]:
    b = ModelBuilder(seed=seed, name=path.stem)
    labels = []
    for desc, make in cases:
        b.output(make(b))
        labels.append(desc)
    write_model(b, path)
    return labels


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_operator_group_matches_tflm(group: str, tmp_path: Path) -> None:
    cases = GROUPS[group]()
    path = tmp_path / f"{group}.tflite"
    labels = _build_group(cases, seed=sum(map(ord, group)), path=path)
    compared, mismatches = compare_model(path, tmp_path / "build", seed=17, count=INPUT_SETS,
                                         labels=labels)
    assert compared == len(cases) * INPUT_SETS
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])


@pytest.mark.parametrize("group", ["conv", "conv_tiled", "depthwise", "depthwise_mult",
                                   "fully_connected", "networks"])
def test_scalar_reference_loops_match_tflm(group: str, tmp_path: Path) -> None:
    """The same generated sources with the packed (SIMD) inner loops switched off: the plain
    scalar reference loops, which Cortex-M0 builds use, also equal TFLM."""
    path = tmp_path / f"{group}.tflite"
    labels = _build_group(GROUPS[group](), seed=sum(map(ord, group)) + 1, path=path)
    build_host_model(path, tmp_path / "build")
    lib = compile_variant(tmp_path / "build", ["SS_SIMD=0"], "libssmodel_ref.so")
    model = HostModel(tmp_path / "build", library=lib)
    compared, mismatches = compare_loaded(model, path, seed=23, count=INPUT_SETS, labels=labels)
    assert compared == len(labels) * INPUT_SETS
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])


def test_every_loadable_operator_has_a_kernel() -> None:
    from generator.compiler.loader import SUPPORTED_OPS
    from generator.compiler.lowering import LOWERINGS

    assert set(SUPPORTED_OPS) <= set(LOWERINGS)


def test_unpreparable_parameters_fail_cleanly(tmp_path: Path) -> None:
    """A softmax whose output quantization TFLM rejects: one clear ModelError, no build."""
    from generator.boards import load_board
    from generator.errors import ModelError
    from generator.firmware import generate

    b = ModelBuilder(seed=1)
    x = b.input((1, 10))
    y = b.softmax(x)
    y.t.quantization.scales = [0.01]  # TFLM requires 1/256
    b.output(y)
    path = write_model(b, tmp_path / "bad.tflite")
    with pytest.raises(ModelError, match="SOFTMAX needs output scale 1/256"):
        generate(load_board("host"), "infer", tmp_path / "out", {"model": str(path)})
    assert not (tmp_path / "out").exists()


def test_mismatch_is_detected(tmp_path: Path) -> None:
    """The comparison can fail: a model whose C is fed a different model's expectations."""
    path = tmp_path / "a.tflite"
    b = ModelBuilder(seed=1)
    b.output(b.fully_connected(b.input((1, 8)), 4))
    write_model(b, path)
    other = tmp_path / "b.tflite"
    b2 = ModelBuilder(seed=2)
    b2.output(b2.fully_connected(b2.input((1, 8)), 4))
    write_model(b2, other)
    from _infer_util import compare_loaded

    from generator.targets.hostmodel import build_host_model

    model = build_host_model(path, tmp_path / "build")
    compared, mismatches = compare_loaded(model, other, seed=3, count=5)
    assert compared == 5 and mismatches


# ---- in place: overlapping plans ---------------------------------------------------------


def _inplace_models() -> dict[str, Callable[[ModelBuilder], object]]:
    """Chains whose plans overlap outputs with inputs (each its own model, so that the packing
    puts them at the kernels' tightest gaps)."""

    def mini_mobilenet(b: ModelBuilder) -> object:
        x = b.input((1, 20, 20, 3))
        x = b.conv2d(x, 8, kernel=(3, 3), stride=(2, 2), padding="SAME", activation="RELU6")
        x = b.depthwise_conv2d(x, kernel=(3, 3), padding="SAME", activation="RELU6")
        x = b.conv2d(x, 16, kernel=(1, 1), padding="VALID", activation="RELU6")
        x = b.depthwise_conv2d(x, kernel=(3, 3), stride=(2, 2), padding="SAME",
                               activation="RELU")
        x = b.conv2d(x, 24, kernel=(1, 1), padding="VALID")
        return b.mean(x, (1, 2))

    def mini_stmnist(b: ModelBuilder) -> object:
        x = b.quantize(b.input((1, 14, 14, 1), dtype="uint8", q=QParams(1 / 255, 0)), "int8",
                       QParams(1 / 255, -128))
        x = b.conv2d(x, 16, kernel=(3, 3), stride=(2, 2), padding="SAME", activation="RELU")
        x = b.depthwise_conv2d(x, kernel=(3, 3), padding="SAME", activation="RELU")
        x = b.conv2d(x, 32, kernel=(3, 3), padding="SAME", activation="RELU")  # blocks of 2
        x = b.depthwise_conv2d(x, kernel=(3, 3), stride=(2, 2), padding="SAME",
                               activation="RELU")
        x = b.conv2d(x, 40, kernel=(1, 1), padding="VALID", activation="RELU")
        x = b.fully_connected(b.reshape(x, (1, 4 * 4 * 40)), 10)
        return b.dequantize(b.softmax(x))

    def odd_shapes(b: ModelBuilder) -> object:
        x = b.input((2, 9, 7, 5))
        x = b.conv2d(x, 6, kernel=(1, 1), stride=(2, 2), padding="VALID")  # gathered 1x1
        x = b.depthwise_conv2d(x, kernel=(3, 2), padding="SAME", dilation=(2, 1),
                               depth_multiplier=2, out_range=0.1)
        return b.conv2d(x, 7, kernel=(2, 3), stride=(1, 2), padding="VALID", out_range=0.05)

    def elementwise(b: ModelBuilder) -> object:
        x = b.quantize(b.input((1, 5, 10), dtype="float32"), "int8", QParams(0.05, 3))
        y = b.relu(x)
        z = b.add(y, b.relu6(b.input((1, 5, 10), q=QParams(0.03, -20))))
        return b.dequantize(b.quantize(z, "int8"))

    def batchnorm(b: ModelBuilder) -> object:  # SqueezeNet's unfused batch normalisation
        x = b.conv2d(b.input((1, 8, 8, 4)), 12, kernel=(3, 3), padding="SAME",
                     activation="RELU")
        x = b.mul(x, b.constant((12,)))
        x = b.add(x, b.constant((12,)))
        x = b.mul(b.constant((1, 1, 1, 12)), x, activation="RELU")
        return b.conv2d(x, 6, kernel=(1, 1), padding="VALID")

    def tiled(b: ModelBuilder) -> object:  # patches past the GEMM buffer, 2 channel groups
        x = b.input((1, 6, 5, 36))
        x = b.conv2d(x, 40, kernel=(3, 3), padding="SAME", activation="RELU")
        x = b.conv2d(x, 36, kernel=(3, 3), stride=(2, 1), padding="SAME")
        x = b.depthwise_conv2d(x, kernel=(3, 3), padding="SAME", depth_multiplier=4,
                               activation="RELU6")
        return b.conv2d(x, 10, kernel=(1, 1), padding="VALID")

    return {"mini_mobilenet": mini_mobilenet, "mini_stmnist": mini_stmnist,
            "odd_shapes": odd_shapes, "elementwise": elementwise, "batchnorm": batchnorm,
            "tiled": tiled}


@pytest.mark.parametrize("name", sorted(_inplace_models()))
def test_in_place_plans_match_tflm(name: str, tmp_path: Path) -> None:
    """Outputs planned over their inputs at the kernels' tightest gaps (generator/schedule.py):
    the C kernels - packed inner loops and the scalar reference loops - still equal TFLM."""
    from generator.compiler.loader import load_model
    from generator.compiler.plan import plan_model

    b = ModelBuilder(seed=sum(map(ord, name)), name=name)
    b.output(_inplace_models()[name](b))
    path = write_model(b, tmp_path / f"{name}.tflite")
    plan = plan_model(load_model(path))
    assert plan.overlaps, "the plan should write some output over its input"
    # some are as tight as the alignment allows
    assert any(o.gap - o.min_gap < plan.align or o.gap <= 0 for o in plan.overlaps)
    assert plan.arena_bytes < plan_model(load_model(path), in_place=False).arena_bytes
    compared, mismatches = compare_model(path, tmp_path / "build", seed=3, count=INPUT_SETS)
    assert compared == INPUT_SETS and not mismatches, "\n".join(mismatches[:10])
    lib = compile_variant(tmp_path / "build", ["SS_SIMD=0"], "libssmodel_ref.so")
    model = HostModel(tmp_path / "build", library=lib)
    compared, mismatches = compare_loaded(model, path, seed=4, count=INPUT_SETS)
    assert compared == INPUT_SETS and not mismatches, "\n".join(mismatches[:10])


def test_unsafe_in_place_plan_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """The comparison catches a plan that overlaps more than a kernel allows: with every gap
    claimed to be 0, the 1x1 convolution that doubles its channels overwrites input pixels it
    has not read yet."""
    from generator.boards import load_board
    from generator.compiler import schedule
    from generator.firmware import generate

    b = ModelBuilder(seed=7, name="unsafe")
    x = b.conv2d(b.input((1, 8, 8, 8)), 16, kernel=(1, 1), padding="VALID")
    b.output(b.conv2d(x, 8, kernel=(1, 1), padding="VALID"))
    path = write_model(b, tmp_path / "unsafe.tflite")
    monkeypatch.setattr(schedule, "min_gap", lambda graph, op, pos: 0)
    generate(load_board("host"), "infer", tmp_path / "build", {"model": str(path)})
    lib = compile_variant(tmp_path / "build", [], "libssmodel_unsafe.so")
    model = HostModel(tmp_path / "build", library=lib)
    compared, mismatches = compare_loaded(model, path, seed=1, count=5)
    assert compared == 5 and mismatches


def test_requantization_forms_are_covered() -> None:
    """The operator groups exercise both requantization forms (fast and TFLM's longhand) and
    both activation-range forms, on the GEMM and the generic convolution paths."""
    import tempfile

    from generator.compiler.loader import load_model
    from generator.compiler.lowering import lower_graph
    from generator.compiler.plan import plan_model

    summaries = []
    with tempfile.TemporaryDirectory() as d:
        for group in ("conv", "depthwise", "fully_connected"):
            path = Path(d) / f"{group}.tflite"
            _build_group(GROUPS[group](), seed=sum(map(ord, group)), path=path)
            g = load_model(path)
            layers = lower_graph(g, plan_model(g))
            summaries += [(layer.opcode, layer.summary, "".join(
                v for p in layer.params for f, v in p.fields if f == "full_range"))
                for layer in layers]
    for opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        mine = [s for s in summaries if s[0] == opcode]
        assert any("fast requantization" in s[1] for s in mine), opcode
        assert any("longhand requantization" in s[1] for s in mine), opcode
        assert {s[2] for s in mine} == {"0", "1"}, opcode
    conv = [s[1] for s in summaries if s[0] == "CONV_2D"]
    assert any("GEMM x4" in s for s in conv) and any("GEMM x2" in s for s in conv)
    assert any("generic" in s for s in conv)


# ---- slow: random sweeps -------------------------------------------------------------------


def _random_conv(rng: np.random.Generator, b: ModelBuilder, depthwise: bool) -> str:
    h, w = int(rng.integers(1, 14)), int(rng.integers(1, 14))
    c = int(rng.integers(1, 20))
    kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dh, dw = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if rng.random() < 0.3 else (1, 1)
    padding = "SAME" if rng.random() < 0.6 else "VALID"
    if padding == "VALID":
        h = max(h, (kh - 1) * dh + 1)
        w = max(w, (kw - 1) * dw + 1)
    act = str(rng.choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
    per_channel = bool(rng.random() < 0.7)
    out_range = float(rng.choice([0.1, 1.0, 1.0, 3.0]))
    x = b.input((int(rng.integers(1, 3)), h, w, c))
    kw_ = dict(kernel=(kh, kw), stride=(sh, sw), padding=padding, dilation=(dh, dw),
               activation=act, per_channel=per_channel, out_range=out_range,
               bias=bool(rng.random() < 0.9))
    if depthwise:
        dm = int(rng.integers(1, 4))
        b.output(b.depthwise_conv2d(x, depth_multiplier=dm, **kw_))
        return f"dwconv {x.shape} dm={dm} {kw_}"
    oc = int(rng.integers(1, 24))
    b.output(b.conv2d(x, oc, **kw_))
    return f"conv {x.shape}->{oc} {kw_}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["conv", "depthwise"])
@pytest.mark.parametrize("block", range(4))
def test_random_conv_sweep(kind: str, block: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(1000 * block + (kind == "depthwise"))
    b = ModelBuilder(seed=block + 50)
    labels = [_random_conv(rng, b, kind == "depthwise") for _ in range(25)]
    path = write_model(b, tmp_path / "sweep.tflite")
    compared, mismatches = compare_model(path, tmp_path / "build", seed=block, count=20,
                                         labels=labels)
    assert compared == 25 * 20
    assert not mismatches, "\n".join(mismatches[:20])


@pytest.mark.slow
@pytest.mark.parametrize("block", range(3))
def test_random_fc_pool_softmax_sweep(block: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(77 + block)
    b = ModelBuilder(seed=block + 90)
    labels = []
    for _ in range(10):
        depth, units = int(rng.integers(1, 300)), int(rng.integers(1, 40))
        b.output(b.fully_connected(b.input((int(rng.integers(1, 4)), depth)), units,
                                   per_channel=bool(rng.random() < 0.5),
                                   out_range=float(rng.choice([0.1, 1.0, 4.0]))))
        labels.append(f"fc {depth}->{units}")
        shape = (1, int(rng.integers(1, 12)), int(rng.integers(1, 12)), int(rng.integers(1, 9)))
        fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        x = b.input(shape)
        b.output(b.avg_pool2d(x, (fh, fw), (sh, sw), "SAME"))
        b.output(b.max_pool2d(x, (fh, fw), (sh, sw), "SAME"))
        labels += [f"avgpool {shape} {fh}x{fw}/{sh}x{sw}", f"maxpool {shape} {fh}x{fw}/{sh}x{sw}"]
        depth = int(rng.integers(1, 400))
        q = QParams(float(rng.uniform(0.001, 0.5)), int(rng.integers(-100, 100)))
        b.output(b.softmax(b.input((1, depth), q=q), beta=float(rng.choice([0.5, 1.0, 1.5]))))
        labels.append(f"softmax depth {depth} scale {q.scale}")
    path = write_model(b, tmp_path / "sweep.tflite")
    compared, mismatches = compare_model(path, tmp_path / "build", seed=block, count=20,
                                         labels=labels)
    assert compared == len(labels) * 20
    assert not mismatches, "\n".join(mismatches[:20])
