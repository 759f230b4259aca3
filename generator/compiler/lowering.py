"""Lowering: one IR operator → the constant data, parameter block and kernel call of one task.

This is the generator's "prepare" stage: every multiplier, shift, activation range, padding,
folded bias and lookup table is computed here (with :mod:`generator.compiler.tflm_math`), so the C
kernels in ``templates/kernels`` only compute. The result is plain data the model templates lay
out: :class:`CArray` constants, parameter-block initializers and C statements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from generator.compiler import schedule, shapes
from generator.compiler import tflm_math as tm
from generator.compiler.ir import Graph, Operator, Tensor
from generator.compiler.plan import Plan
from generator.errors import ModelError

# Kernel sources each opcode needs (besides the shared headers).
KERNEL_HEADERS = ("ss_kernels.h", "ss_fixedpoint.h", "ss_kutil.h", "ss_simd.h")

_CTYPES = {"int8": "int8_t", "uint8": "uint8_t", "int32": "int32_t", "float32": "float",
           "int16": "int16_t"}


@dataclass(frozen=True)
class CArray:
    """A constant array in flash."""

    name: str
    ctype: str  # int8_t, uint8_t, int32_t, float
    values: tuple[str, ...]  # C literals
    align: int = 4

    @property
    def length(self) -> int:
        return len(self.values)

    @property
    def nbytes(self) -> int:
        size = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "uint16_t": 2, "int32_t": 4,
                "uint32_t": 4, "float": 4}[self.ctype]
        return size * len(self.values)

    def lines(self, per_line: int = 0) -> list[str]:
        """The initializer, a few values per line."""
        if not per_line:
            per_line = 24 if self.ctype in ("int8_t", "uint8_t") else 8
        return [", ".join(self.values[i:i + per_line]) + ","
                for i in range(0, len(self.values), per_line)]


@dataclass(frozen=True)
class ParamBlock:
    """A ``static const <ctype> <name> = { ... };`` kernel parameter block."""

    ctype: str
    name: str
    fields: tuple[tuple[str, str], ...]  # (field, C expression)


@dataclass(frozen=True)
class LoweredLayer:
    index: int
    opcode: str
    arrays: tuple[CArray, ...]
    params: tuple[ParamBlock, ...]
    body: tuple[str, ...]  # C statements of ss_layer_<index>()
    kernels: frozenset[str]  # kernel .c files used
    summary: str  # one-line description for the generated comment


# ---- literals ------------------------------------------------------------------------------


def c_int(v: int) -> str:
    v = int(v)
    if v == tm.I32_MIN:
        return "(-2147483647 - 1)"
    return str(v)


def c_float(v: float) -> str:
    """An exact C literal for a float32 value."""
    x = float(np.float32(v))
    if math.isnan(x) or math.isinf(x):
        raise ModelError(f"cannot emit the non-finite float constant {x}")
    if x == 0.0:
        return "-0.0f" if math.copysign(1.0, x) < 0 else "0.0f"
    return f"{x.hex()}f"


def int_values(a: np.ndarray | list[int]) -> tuple[str, ...]:
    return tuple(c_int(v) for v in np.asarray(a).reshape(-1).tolist())


def float_values(a: np.ndarray) -> tuple[str, ...]:
    return tuple(c_float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1).tolist())


# ---- lowering context ----------------------------------------------------------------------


@dataclass
class _Ctx:
    graph: Graph
    plan: Plan
    op: Operator
    arrays: list[CArray] = field(default_factory=list)
    params: list[ParamBlock] = field(default_factory=list)
    body: list[str] = field(default_factory=list)
    kernels: set[str] = field(default_factory=set)

    @property
    def prefix(self) -> str:
        return f"ss_l{self.op.index}"

    def fail(self, message: str) -> ModelError:
        return ModelError(
            f"model '{self.graph.name}': operator #{self.op.index} {self.op.opcode} {message}"
        )

    def tin(self, i: int) -> Tensor:
        if i >= len(self.op.inputs) or self.op.inputs[i] < 0:
            raise self.fail(f"has no input {i}")
        return self.graph.tensor(self.op.inputs[i])

    def has_in(self, i: int) -> bool:
        return i < len(self.op.inputs) and self.op.inputs[i] >= 0

    def tout(self, i: int = 0) -> Tensor:
        return self.graph.tensor(self.op.outputs[i])

    def ptr(self, t: Tensor, ctype: str | None = None, const: bool = False) -> str:
        """C expression for the arena address of activation tensor t."""
        try:
            off = self.plan.allocation(t.index).offset
        except KeyError:
            raise self.fail(f"tensor #{t.index} '{t.name}' has no arena buffer") from None
        ct = ctype or _CTYPES[t.dtype]
        q = "const " if const else ""
        return f"({q}{ct} *)(ss_arena + {off}u)"

    def array(self, suffix: str, ctype: str, values: tuple[str, ...], align: int = 4) -> str:
        name = f"{self.prefix}_{suffix}"
        self.arrays.append(CArray(name, ctype, values, align))
        return name

    def param(self, ctype: str, fields: list[tuple[str, str]]) -> str:
        name = f"{self.prefix}_p{len(self.params)}"
        self.params.append(ParamBlock(ctype, name, tuple(fields)))
        return name

    def quant(self, t: Tensor) -> tuple[float, int]:
        if t.quant is None:
            raise self.fail(f"tensor #{t.index} '{t.name}' has no quantization parameters")
        if t.quant.per_channel:
            raise self.fail(f"activation tensor #{t.index} '{t.name}' is quantized per channel")
        return float(t.quant.scale[0]), int(t.quant.zero_point[0])

    def expect_dtype(self, t: Tensor, *dtypes: str) -> None:
        if t.dtype not in dtypes:
            raise self.fail(
                f"tensor #{t.index} '{t.name}' is {t.dtype}; this kernel takes {'/'.join(dtypes)}"
            )


def _dims4(shape: tuple[int, ...], what: str, ctx: _Ctx) -> tuple[int, ...]:
    """``shape`` as 4 dims for the kernels' ``uint16_t dims[4]`` fields (its users: PAD, MEAN,
    CONCATENATION): a larger dimension is refused here, not truncated by the C compiler."""
    if len(shape) > 4:
        raise ctx.fail(f"{what} has rank {len(shape)}; at most 4 dimensions are supported")
    if any(not 0 < d <= 0xFFFF for d in shape):
        raise ctx.fail(f"{what} has shape {list(shape)}; this kernel takes dimensions of 1 to "
                       "65535")
    return (1,) * (4 - len(shape)) + tuple(shape)


def _act(ctx: _Ctx, out: Tensor) -> tuple[int, int]:
    scale, zp = ctx.quant(out)
    return tm.activation_range(ctx.op.options.get("fused_activation", "NONE"), scale, zp)


def _u16(ctx: _Ctx, name: str, v: int) -> str:
    if not 0 <= v <= 0xFFFF:
        raise ctx.fail(f"{name} = {v} does not fit the kernel's 16-bit field")
    return str(int(v))


def _chan_records(ctx: _Ctx, start: np.ndarray, mults: list[int], shifts: list[int],
                  out_zp: int, weights_abs: np.ndarray, x_abs: int) -> tuple[str, str]:
    """The channel records array ({start, mult, add | shift, rshift} per output channel) and
    the rq_fast flag. start is the mathematical (unwrapped) accumulator start; the accumulator
    bound is |start| + x_abs * sum |w| per channel."""
    for sh in shifts:
        tm.check_shift(sh, f"operator #{ctx.op.index}")
    bounds = [abs(int(st)) + x_abs * int(wa) for st, wa in zip(start.tolist(), weights_abs)]
    records, fast = tm.channel_records([int(v) for v in start.tolist()], mults, shifts, out_zp,
                                       bounds)
    name = ctx.array("chan", "int32_t", int_values(records), align=16)
    return name, "1" if fast else "0"


def _full_range(act_min: int, act_max: int) -> str:
    return "1" if (act_min, act_max) == (-128, 127) else "0"


def _bias(ctx: _Ctx, index: int, channels: int) -> np.ndarray:
    if ctx.has_in(index):
        b = ctx.tin(index)
        if b.data is None:
            raise ctx.fail("has a non-constant bias")
        ctx.expect_dtype(b, "int32")
        return b.data.astype(np.int64).reshape(-1)
    return np.zeros(channels, dtype=np.int64)


# ---- operators -----------------------------------------------------------------------------


def _conv(ctx: _Ctx) -> str:
    o = ctx.op.options
    x, w, y = ctx.tin(0), ctx.tin(1), ctx.tout()
    for t in (x, y):
        ctx.expect_dtype(t, "int8")
    ctx.expect_dtype(w, "int8")
    if w.data is None or w.quant is None:
        raise ctx.fail("has non-constant or unquantized weights")
    n, in_h, in_w, in_c = x.shape
    out_c, k_h, k_w, fic = w.shape
    _, out_h, out_w, oc2 = y.shape
    if oc2 != out_c or in_c % fic or out_c % (in_c // fic):
        raise ctx.fail(f"has inconsistent shapes {x.shape} * {w.shape} -> {y.shape}")
    sx, zx = ctx.quant(x)
    sy, zy = ctx.quant(y)
    mults, shifts = tm.conv_multipliers(sx, w.quant.scale, sy, out_c)
    bias = _bias(ctx, 2, out_c)
    wmat = w.data.astype(np.int64).reshape(out_c, -1)
    in_off = -zx
    path = schedule.conv_path(in_c, fic, k_h, k_w)
    k = k_h * k_w * fic
    chunk, chunks = k, 1
    if path == schedule.CONV_GEMM:
        k_stride = schedule.conv_k4(k_h, k_w, fic)
        block = schedule.conv_block_pixels(k_stride)
        chunk = k_stride
    elif path == schedule.CONV_TILED:
        chunk, chunks = schedule.conv_tile(k_h, k_w, fic)
        k_stride, block = chunk * chunks, schedule.CONV_MAX_BLOCK
    else:
        k_stride, block = k, 0
    if path == schedule.CONV_GENERIC:
        start = bias  # the generic path adds the offset per tap
        x_abs = 255
    else:
        start = bias + in_off * wmat.sum(axis=1)  # folded: padding reads the zero point
        x_abs = 128
    rows = np.zeros((out_c, k_stride), dtype=np.int64)
    rows[:, :k] = wmat
    if path == schedule.CONV_TILED:  # chunk-major: [chunk][out_c][chunk bytes]
        rows = rows.reshape(out_c, chunks, chunk).transpose(1, 0, 2).reshape(out_c, k_stride)
    act_min, act_max = _act(ctx, y)
    chan, fast = _chan_records(ctx, start, mults, shifts, zy, np.abs(wmat).sum(axis=1), x_abs)
    wname = ctx.array("w", "int8_t", int_values(rows))
    pad_h = tm.padding_before(o["padding"], in_h, k_h, o["stride_h"], o["dilation_h"])
    pad_w = tm.padding_before(o["padding"], in_w, k_w, o["stride_w"], o["dilation_w"])
    u = lambda k, v: (k, _u16(ctx, k, v))  # noqa: E731
    p = ctx.param("ss_conv_params_t", [
        u("batches", n), u("in_h", in_h), u("in_w", in_w), u("in_c", in_c),
        u("out_h", out_h), u("out_w", out_w), u("out_c", out_c),
        u("k_h", k_h), u("k_w", k_w), u("filter_in_c", fic),
        u("stride_h", o["stride_h"]), u("stride_w", o["stride_w"]),
        u("dil_h", o["dilation_h"]), u("dil_w", o["dilation_w"]),
        u("pad_h", pad_h), u("pad_w", pad_w), u("k_stride", k_stride),
        u("chunk", chunk),
        ("path", {schedule.CONV_GEMM: "SS_CONV_GEMM", schedule.CONV_TILED: "SS_CONV_TILED"}
         .get(path, "SS_CONV_GENERIC")),
        ("block", str(block)), ("rq_fast", fast), ("full_range", _full_range(act_min, act_max)),
        ("input_offset", c_int(in_off)), ("output_offset", c_int(zy)),
        ("act_min", c_int(act_min)), ("act_max", c_int(act_max)),
        ("filter", wname), ("chan", chan),
    ])
    ctx.kernels.add("ss_conv.c")
    ctx.body.append(f"ss_conv_s8(&{p}, {ctx.ptr(x, const=True)}, {ctx.ptr(y)});")
    how = {schedule.CONV_GEMM: f"GEMM x{block}",
           schedule.CONV_TILED: f"tiled GEMM x{block}, {chunks} chunks of {chunk} B"
           }.get(path, "generic")
    return (f"{k_h}x{k_w}/{o['stride_h']}x{o['stride_w']} {o['padding']} "
            f"{in_c}->{out_c} ch, {o['fused_activation']}; {how}, "
            f"{'fast' if fast == '1' else 'longhand'} requantization")


def _dwconv(ctx: _Ctx) -> str:
    o = ctx.op.options
    x, w, y = ctx.tin(0), ctx.tin(1), ctx.tout()
    for t in (x, y, w):
        ctx.expect_dtype(t, "int8")
    if w.data is None or w.quant is None:
        raise ctx.fail("has non-constant or unquantized weights")
    n, in_h, in_w, in_c = x.shape
    _, k_h, k_w, out_c = w.shape
    _, out_h, out_w, oc2 = y.shape
    dm = int(o["depth_multiplier"])
    if oc2 != out_c or in_c * dm != out_c:
        raise ctx.fail(f"has inconsistent shapes {x.shape} * {w.shape} -> {y.shape}")
    sx, zx = ctx.quant(x)
    sy, zy = ctx.quant(y)
    mults, shifts = tm.conv_multipliers(sx, w.quant.scale, sy, out_c)
    bias = _bias(ctx, 2, out_c)
    taps = w.data.astype(np.int64).reshape(k_h * k_w, out_c)
    in_off = -zx
    start = bias + in_off * taps.sum(axis=0)
    act_min, act_max = _act(ctx, y)
    chan, fast = _chan_records(ctx, start, mults, shifts, zy, np.abs(taps).sum(axis=0), 128)
    # tap-major per channel chunk, the order the kernel reads (ss_dwconv.c)
    groups = schedule.dw_channel_groups(out_c, dm)
    wide = "0"
    if dm > 1:  # chunks of 4 channels as int16 (the kernel's SMLABB/SMLABT), the rest int8
        quads = [taps[:, a:b].reshape(-1) for a, b in groups if b - a == 4]
        groups = [(a, b) for a, b in groups if b - a == 1]
        if quads:
            wide = ctx.array("w16", "int16_t", int_values(np.concatenate(quads)))
    chunks = [taps[:, a:b].reshape(-1) for a, b in groups] or [np.zeros(1, dtype=np.int64)]
    wname = ctx.array("w", "int8_t", int_values(np.concatenate(chunks)))
    bname = ctx.array("bias", "int32_t", int_values([tm.wrap32(int(v)) for v in bias]))
    pad_h = tm.padding_before(o["padding"], in_h, k_h, o["stride_h"], o["dilation_h"])
    pad_w = tm.padding_before(o["padding"], in_w, k_w, o["stride_w"], o["dilation_w"])
    u = lambda k, v: (k, _u16(ctx, k, v))  # noqa: E731
    p = ctx.param("ss_dwconv_params_t", [
        u("batches", n), u("in_h", in_h), u("in_w", in_w), u("in_c", in_c),
        u("out_h", out_h), u("out_w", out_w), u("out_c", out_c), u("depth_mult", dm),
        u("k_h", k_h), u("k_w", k_w),
        u("stride_h", o["stride_h"]), u("stride_w", o["stride_w"]),
        u("dil_h", o["dilation_h"]), u("dil_w", o["dilation_w"]),
        u("pad_h", pad_h), u("pad_w", pad_w),
        ("rq_fast", fast), ("full_range", _full_range(act_min, act_max)),
        ("input_offset", c_int(in_off)), ("output_offset", c_int(zy)),
        ("act_min", c_int(act_min)), ("act_max", c_int(act_max)),
        ("filter", wname), ("filter16", wide), ("chan", chan), ("bias", bname),
    ])
    ctx.kernels.add("ss_dwconv.c")
    ctx.body.append(f"ss_dwconv_s8(&{p}, {ctx.ptr(x, const=True)}, {ctx.ptr(y)});")
    return (f"{k_h}x{k_w}/{o['stride_h']}x{o['stride_w']} {o['padding']} {in_c} ch x{dm}, "
            f"{o['fused_activation']}; {'fast' if fast == '1' else 'longhand'} requantization")


def _fc(ctx: _Ctx) -> str:
    x, w, y = ctx.tin(0), ctx.tin(1), ctx.tout()
    for t in (x, y, w):
        ctx.expect_dtype(t, "int8")
    if w.data is None or w.quant is None:
        raise ctx.fail("has non-constant or unquantized weights")
    depth = w.shape[-1]
    out_c = y.shape[-1]
    batches = y.size // out_c
    if x.size != batches * depth or w.shape[0] < out_c:
        raise ctx.fail(f"has inconsistent shapes {x.shape} * {w.shape} -> {y.shape}")
    sx, zx = ctx.quant(x)
    sy, zy = ctx.quant(y)
    if w.quant.per_channel:
        mults, shifts = tm.conv_multipliers(sx, w.quant.scale, sy, out_c)
    else:
        if any(z != 0 for z in w.quant.zero_point):
            raise ctx.fail("has int8 weights with a non-zero zero point (TFLM requires 0)")
        if ctx.has_in(2):  # TFLM checks the bias scale here only (found by test_fuzz.py)
            b = ctx.tin(2)
            tm.check_fc_bias_scale(sx, w.quant.scale[0], b.quant.scale[0] if b.quant else 0.0, sy)
        m0, s0 = tm.fc_per_tensor_multiplier(sx, w.quant.scale[0], sy)
        mults, shifts = [m0] * out_c, [s0] * out_c
    wdata = w.data.reshape(w.shape[0], depth)[:out_c].astype(np.int64)
    bias = _bias(ctx, 2, out_c)[:out_c]
    start = bias + (-zx) * wdata.sum(axis=1)
    act_min, act_max = _act(ctx, y)
    chan, fast = _chan_records(ctx, start, mults, shifts, zy, np.abs(wdata).sum(axis=1), 128)
    wname = ctx.array("w", "int8_t", int_values(wdata))
    p = ctx.param("ss_fc_params_t", [
        ("batches", f"{batches}u"), ("accum_depth", f"{depth}u"), ("out_c", f"{out_c}u"),
        ("rq_fast", fast), ("full_range", _full_range(act_min, act_max)),
        ("output_offset", c_int(zy)), ("act_min", c_int(act_min)), ("act_max", c_int(act_max)),
        ("weights", wname), ("chan", chan),
    ])
    ctx.kernels.add("ss_fc.c")
    ctx.body.append(f"ss_fc_s8(&{p}, {ctx.ptr(x, const=True)}, {ctx.ptr(y)});")
    return (f"{depth}->{out_c} x{batches}, {ctx.op.options.get('fused_activation', 'NONE')}; "
            f"{'fast' if fast == '1' else 'longhand'} requantization")


def _pool(ctx: _Ctx) -> str:
    o = ctx.op.options
    x, y = ctx.tin(0), ctx.tout()
    for t in (x, y):
        ctx.expect_dtype(t, "int8")
    sx, zx = ctx.quant(x)
    sy, zy = ctx.quant(y)
    if abs(float(np.float32(sx)) - float(np.float32(sy))) > 1e-6 or zx != zy:
        raise ctx.fail("has different input and output quantization (TFLM requires equal)")
    n, in_h, in_w, c = x.shape
    _, out_h, out_w, _ = y.shape
    f_h, f_w = o["filter_h"], o["filter_w"]
    pad_h = tm.padding_before(o["padding"], in_h, f_h, o["stride_h"], 1)
    pad_w = tm.padding_before(o["padding"], in_w, f_w, o["stride_w"], 1)
    if ctx.op.opcode == "AVERAGE_POOL_2D":
        for oy in range(out_h):
            y0 = oy * o["stride_h"] - pad_h
            if min(f_h, in_h - y0) <= max(0, -y0):
                raise ctx.fail("has an output row whose window misses the input")
        for ox in range(out_w):
            x0 = ox * o["stride_w"] - pad_w
            if min(f_w, in_w - x0) <= max(0, -x0):
                raise ctx.fail("has an output column whose window misses the input")
    act_min, act_max = _act(ctx, y)
    u = lambda k, v: (k, _u16(ctx, k, v))  # noqa: E731
    p = ctx.param("ss_pool_params_t", [
        u("batches", n), u("in_h", in_h), u("in_w", in_w), u("channels", c),
        u("out_h", out_h), u("out_w", out_w), u("f_h", f_h), u("f_w", f_w),
        u("stride_h", o["stride_h"]), u("stride_w", o["stride_w"]),
        u("pad_h", pad_h), u("pad_w", pad_w),
        ("act_min", c_int(act_min)), ("act_max", c_int(act_max)),
    ])
    fn = "ss_avgpool_s8" if ctx.op.opcode == "AVERAGE_POOL_2D" else "ss_maxpool_s8"
    ctx.kernels.add("ss_pool.c")
    ctx.body.append(f"{fn}(&{p}, {ctx.ptr(x, const=True)}, {ctx.ptr(y)});")
    return f"{f_h}x{f_w}/{o['stride_h']}x{o['stride_w']} {o['padding']}"


def _operand(ctx: _Ctx, i: int) -> str:
    """C expression for input i of a binary elementwise operator: its arena address, or a
    constant array in flash (e.g. the per-channel vectors of an unfused batch normalisation)."""
    t = ctx.tin(i)
    if t.data is None:
        return ctx.ptr(t, const=True)
    return ctx.array(f"in{i}", "int8_t", int_values(t.data))


def _broadcast_fields(ctx: _Ctx, a: Tensor, b: Tensor, y: Tensor) -> tuple[bool, list[tuple[
        str, str]]]:
    """(broadcast?, the size/broadcast/dims/stride1/stride2 fields) of ADD's and MUL's walk over
    the (up to 4-D) output with per-input strides, 0 along broadcast dimensions."""
    broadcast = a.shape != b.shape
    dims = _dims4(y.shape, "the output", ctx)
    strides: list[list[int]] = []
    for t in (a, b):
        d = _dims4(t.shape, "an input", ctx)
        st = [0] * 4
        acc = 1
        for i in range(3, -1, -1):
            if d[i] == dims[i]:
                st[i] = acc if dims[i] > 1 else 0
            elif d[i] == 1:
                st[i] = 0
            else:
                raise ctx.fail(f"cannot broadcast {t.shape} to {y.shape}")
            acc *= d[i]
        strides.append(st)
    if not broadcast and a.size != y.size:
        raise ctx.fail(f"has inconsistent shapes {a.shape}, {b.shape} -> {y.shape}")
    arr = lambda v: "{" + ", ".join(f"{int(e)}u" for e in v) + "}"  # noqa: E731
    return broadcast, [
        ("size", f"{y.size}u"), ("broadcast", "1" if broadcast else "0"),
        ("dims", arr(dims)), ("stride1", arr(strides[0])), ("stride2", arr(strides[1])),
    ]


def _add(ctx: _Ctx) -> str:
    a, b, y = ctx.tin(0), ctx.tin(1), ctx.tout()
    for t in (a, b, y):
        ctx.expect_dtype(t, "int8")
    sa, za = ctx.quant(a)
    sb, zb = ctx.quant(b)
    sy, zy = ctx.quant(y)
    try:
        q = tm.add_params(sa, sb, sy)
    except ValueError as e:
        raise ctx.fail(str(e)) from None
    act_min, act_max = _act(ctx, y)
    broadcast, walk = _broadcast_fields(ctx, a, b, y)
    in1, in2 = _operand(ctx, 0), _operand(ctx, 1)
    p = ctx.param("ss_add_params_t", [
        *walk,
        ("input1_offset", c_int(-za)), ("input2_offset", c_int(-zb)),
        ("output_offset", c_int(zy)), ("left_shift", str(q["left_shift"])),
        ("input1_mult", c_int(q["input1_mult"])), ("input1_shift", c_int(q["input1_shift"])),
        ("input2_mult", c_int(q["input2_mult"])), ("input2_shift", c_int(q["input2_shift"])),
        ("output_mult", c_int(q["output_mult"])), ("output_shift", c_int(q["output_shift"])),
        ("act_min", c_int(act_min)), ("act_max", c_int(act_max)),
    ])
    kind = "sub" if ctx.op.opcode == "SUB" else "add"  # TFLM prepares SUB exactly like ADD
    ctx.kernels.add(f"ss_{kind}.c")
    ctx.body.append(f"ss_{kind}_s8(&{p}, {in1}, {in2}, {ctx.ptr(y)});")
    return f"{'broadcast ' if broadcast else ''}{ctx.op.options.get('fused_activation', 'NONE')}"


def _mul(ctx: _Ctx) -> str:
    a, b, y = ctx.tin(0), ctx.tin(1), ctx.tout()
    for t in (a, b, y):
        ctx.expect_dtype(t, "int8")
    sa, za = ctx.quant(a)
    sb, zb = ctx.quant(b)
    sy, zy = ctx.quant(y)
    mult, shift = tm.mul_multiplier(sa, sb, sy)
    act_min, act_max = _act(ctx, y)
    broadcast, walk = _broadcast_fields(ctx, a, b, y)
    in1, in2 = _operand(ctx, 0), _operand(ctx, 1)
    p = ctx.param("ss_mul_params_t", [
        *walk,
        ("input1_offset", c_int(-za)), ("input2_offset", c_int(-zb)),
        ("output_offset", c_int(zy)),
        ("output_mult", c_int(mult)), ("output_shift", c_int(shift)),
        ("act_min", c_int(act_min)), ("act_max", c_int(act_max)),
    ])
    ctx.kernels.add("ss_mul.c")
    ctx.body.append(f"ss_mul_s8(&{p}, {in1}, {in2}, {ctx.ptr(y)});")
    return f"{'broadcast ' if broadcast else ''}{ctx.op.options.get('fused_activation', 'NONE')}"


def _softmax(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    for t in (x, y):
        ctx.expect_dtype(t, "int8")
    sx, _ = ctx.quant(x)
    sy, zy = ctx.quant(y)
    if zy != -128 or float(np.float32(sy)) != 1.0 / 256:
        raise ctx.fail("needs output scale 1/256 and zero point -128 (TFLM int8 softmax)")
    try:
        lut = tm.softmax_exp_lut(float(ctx.op.options.get("beta", 1.0)), sx)
    except ValueError as e:
        raise ctx.fail(str(e)) from None
    depth = x.shape[-1]
    name = ctx.array("exp", "int32_t", int_values(lut))
    p = ctx.param("ss_softmax_params_t", [
        ("outer", f"{x.size // depth}u"), ("depth", f"{depth}u"), ("exp_lut", name),
    ])
    ctx.kernels.add("ss_softmax.c")
    ctx.body.append(f"ss_softmax_s8(&{p}, {ctx.ptr(x, const=True)}, {ctx.ptr(y)});")
    return f"depth {depth}, beta {ctx.op.options.get('beta', 1.0)}"


def _mean(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    for t in (x, y):
        ctx.expect_dtype(t, "int8")
    sx, zx = ctx.quant(x)
    sy, zy = ctx.quant(y)
    dims = _dims4(x.shape, "the input", ctx)
    shift_axes = 4 - len(x.shape)
    axes = {a + shift_axes for a in ctx.op.options["axes"]}
    strides = [1] * 4
    for i in range(2, -1, -1):
        strides[i] = strides[i + 1] * dims[i + 1]
    out_ext, out_st, red_ext, red_st = [], [], [], []
    for i in range(4):
        if i in axes:
            red_ext.append(dims[i])
            red_st.append(strides[i])
        else:
            out_ext.append(dims[i])
            out_st.append(strides[i])
    while len(out_ext) < 4:
        out_ext.insert(0, 1)
        out_st.insert(0, 0)
    while len(red_ext) < 4:
        red_ext.insert(0, 1)
        red_st.insert(0, 0)
    count = math.prod(dims[i] for i in axes)
    if y.size != x.size // count:
        raise ctx.fail(f"has inconsistent shapes {x.shape} -> {y.shape}")
    mult, shift = tm.mean_multiplier(sx, sy, count)
    tm.check_shift(shift, "MEAN")
    arr = lambda v: "{" + ", ".join(f"{int(e)}u" for e in v) + "}"  # noqa: E731
    p = ctx.param("ss_mean_params_t", [
        ("out_ext", arr(out_ext)), ("out_stride", arr(out_st)),
        ("red_ext", arr(red_ext)), ("red_stride", arr(red_st)),
        ("zp_times_count", c_int(tm.wrap32(zx * count))),
        ("mult", c_int(mult)), ("shift", c_int(shift)), ("output_offset", c_int(zy)),
    ])
    ctx.kernels.add("ss_mean.c")
    ctx.body.append(f"ss_mean_s8(&{p}, {ctx.ptr(x, const=True)}, {ctx.ptr(y)});")
    return f"axes {tuple(ctx.op.options['axes'])} over {count} elements"


def _pad(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    if x.dtype != y.dtype:
        raise ctx.fail("changes the data type")
    pads = list(ctx.op.options["paddings"])
    if len(pads) > 4:
        raise ctx.fail("has more than 4 dimensions")
    pads = [(0, 0)] * (4 - len(pads)) + pads
    in_d = _dims4(x.shape, "the input", ctx)
    out_d = _dims4(y.shape, "the output", ctx)
    for i in range(4):
        if in_d[i] + pads[i][0] + pads[i][1] != out_d[i]:
            raise ctx.fail(f"has inconsistent shapes {x.shape} -> {y.shape}")
    if ctx.has_in(2):
        cv = ctx.tin(2)
        if cv.data is None:
            raise ctx.fail("has a non-constant pad value")
        value = int(cv.data.reshape(-1)[0])
    elif y.quant is not None:
        value = int(y.quant.zero_point[0])
    else:
        value = 0
    if x.dtype not in ("int8", "uint8"):
        raise ctx.fail(f"pads {x.dtype} tensors; only 8-bit tensors are supported")
    arr = lambda v: "{" + ", ".join(f"{int(e)}u" for e in v) + "}"  # noqa: E731
    p = ctx.param("ss_pad_params_t", [
        ("in_dims", arr(in_d)), ("out_dims", arr(out_d)),
        ("before", arr([a for a, _ in pads])), ("elem_size", "1u"),
        ("out_bytes", f"{y.nbytes}u"), ("pad_value", c_int(value)),
    ])
    ctx.kernels.add("ss_pad.c")
    ctx.body.append(f"ss_pad(&{p}, {ctx.ptr(x, 'uint8_t', const=True)}, "
                    f"{ctx.ptr(y, 'uint8_t')});")
    return f"paddings {tuple(ctx.op.options['paddings'])}"


def _reshape(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    if x.nbytes != y.nbytes:
        raise ctx.fail(f"changes the size {x.shape} -> {y.shape}")
    try:
        same = ctx.plan.allocation(x.index).offset == ctx.plan.allocation(y.index).offset
    except KeyError:
        same = False
    if same:  # the plan aliases the output to the input: nothing to move
        ctx.body.append(f"/* output aliases the input (arena offset "
                        f"{ctx.plan.allocation(y.index).offset}): nothing to copy */")
        return f"{x.shape} -> {y.shape}, aliased"
    ctx.kernels.add("ss_copy.c")
    ctx.body.append(f"ss_copy({ctx.ptr(x, 'uint8_t', const=True)}, {ctx.ptr(y, 'uint8_t')}, "
                    f"{y.nbytes}u);")
    return f"{x.shape} -> {y.shape}"


def _concat(ctx: _Ctx) -> str:
    y = ctx.tout()
    axis = int(ctx.op.options["axis"])
    if ctx.op.options.get("fused_activation", "NONE") != "NONE":
        raise ctx.fail("has a fused activation; not supported")
    es = y.nbytes // y.size
    outer = math.prod(y.shape[:axis])
    inner = math.prod(y.shape[axis + 1:])
    out_row = y.shape[axis] * inner * es
    offset = 0
    ctx.kernels.add("ss_copy.c")
    yq = ctx.quant(y) if y.dtype == "int8" else None
    for i in range(len(ctx.op.inputs)):
        x = ctx.tin(i)
        if x.dtype != y.dtype:
            raise ctx.fail("mixes data types")
        if yq is not None:
            xs, xz = ctx.quant(x)
            if float(np.float32(xs)) != float(np.float32(yq[0])) or xz != yq[1]:
                raise ctx.fail("has inputs quantized differently from the output "
                               "(TFLM requires equal scale and zero point)")
        if x.data is not None:
            src = ctx.array(f"in{i}", _CTYPES[x.dtype], int_values(x.data))
            src_expr = f"(const uint8_t *){src}"
        else:
            src_expr = ctx.ptr(x, "uint8_t", const=True)
        row = x.shape[axis] * inner * es
        ctx.body.append(
            f"ss_copy_rows({src_expr}, {ctx.ptr(y, 'uint8_t')} + {offset}u, {outer}u, "
            f"{row}u, {row}u, {out_row}u);"
        )
        offset += row
    return f"axis {axis}, {len(ctx.op.inputs)} inputs"


def _index_map(ctx: _Ctx, source: np.ndarray, what: str) -> str:
    """Data movement as a gather: output element i is input element ``source[i]`` (the map is
    worked out here with numpy on the element indices; the kernel only copies bytes)."""
    x, y = ctx.tin(0), ctx.tout()
    if x.dtype != y.dtype:
        raise ctx.fail("changes the data type; data movement keeps it")
    if x.dtype != "int8":
        raise ctx.fail(f"moves {x.dtype} data; this kernel takes int8")
    if x.quant is not None and y.quant is not None and ctx.quant(x) != ctx.quant(y):
        raise ctx.fail("has an output quantized differently from its input")
    idx = np.asarray(source, dtype=np.int64).reshape(-1)
    if idx.size != y.size:
        raise ctx.fail(f"maps {idx.size} elements to an output of {y.size}")
    wide = x.size > 0x10000
    name = ctx.array("map", "uint32_t" if wide else "uint16_t", int_values(idx))
    ctx.kernels.add("ss_gather.c")
    fn = "ss_gather8_u32" if wide else "ss_gather8_u16"
    src = ctx.ptr(x, "uint8_t", const=True)
    ctx.body.append(f"{fn}({src}, {name}, {ctx.ptr(y, 'uint8_t')}, {y.size}u);")
    return what


def _transpose(ctx: _Ctx) -> str:
    x = ctx.tin(0)
    perm = tuple(ctx.op.options["perm"])
    src = np.arange(x.size).reshape(x.shape).transpose(perm)
    return _index_map(ctx, src, f"perm {list(perm)}")


def _slice(ctx: _Ctx) -> str:
    x = ctx.tin(0)
    begin, size = ctx.op.options["begin"], ctx.op.options["size"]
    sl = tuple(slice(b, b + n) for b, n in zip(begin, size))
    src = np.arange(x.size).reshape(x.shape)[sl]
    return _index_map(ctx, src, f"begin {list(begin)} size {list(size)}")


def _movement(ctx: _Ctx) -> str:
    try:
        src = shapes.movement_source(ctx.op, ctx.tin(0).shape)
    except shapes.ShapeError as e:
        raise ctx.fail(str(e)) from None
    shown = {k: v for k, v in ctx.op.options.items() if k not in ("indices",)}
    return _index_map(ctx, src, ", ".join(f"{k} {v}" for k, v in sorted(shown.items())))


def _check_copy(ctx: _Ctx, x: Tensor, y: Tensor) -> None:
    if x.dtype != "int8" or y.dtype != "int8":
        raise ctx.fail(f"moves {x.dtype} to {y.dtype} data; this kernel takes int8")
    if ctx.quant(x) != ctx.quant(y):
        raise ctx.fail("has an output quantized differently from its input")


def _split(ctx: _Ctx) -> str:
    x = ctx.tin(1 if ctx.op.opcode == "SPLIT" else 0)
    try:
        parts = shapes.split_sources(ctx.op, x.shape)
    except shapes.ShapeError as e:
        raise ctx.fail(str(e)) from None
    ctx.kernels.add("ss_gather.c")
    src = ctx.ptr(x, "uint8_t", const=True)
    for k, part in enumerate(parts):
        y = ctx.tout(k)
        _check_copy(ctx, x, y)
        name = _u32_map(ctx, f"map{k}", part)
        ctx.body.append(f"ss_gather8_u32({src}, {name}, {ctx.ptr(y, 'uint8_t')}, {y.size}u);")
    return f"axis {ctx.op.options['axis']}, {len(parts)} outputs"


def _pack(ctx: _Ctx) -> str:
    y = ctx.tout()
    axis = int(ctx.op.options["axis"])
    dst = np.arange(y.size).reshape(y.shape)
    ctx.kernels.add("ss_gather.c")
    for k in range(len(ctx.op.inputs)):
        x = ctx.tin(k)
        _check_copy(ctx, x, y)
        name = _u32_map(ctx, f"map{k}", np.take(dst, k, axis=axis))
        src = (ctx.array(f"in{k}", "int8_t", int_values(x.data)) if x.data is not None
               else ctx.ptr(x, const=True))
        ctx.body.append(f"ss_scatter8_u32((const uint8_t *){src}, {name}, "
                        f"{ctx.ptr(y, 'uint8_t')}, {x.size}u);")
    return f"axis {axis}, {len(ctx.op.inputs)} inputs"


def _u32_map(ctx: _Ctx, suffix: str, idx: np.ndarray) -> str:
    return ctx.array(suffix, "uint32_t", int_values(np.asarray(idx, dtype=np.int64)))


def _minmax(ctx: _Ctx) -> str:
    a, b, y = ctx.tin(0), ctx.tin(1), ctx.tout()
    for t in (a, b, y):
        ctx.expect_dtype(t, "int8")
    try:
        ma, mb = (np.broadcast_to(np.arange(t.size).reshape(t.shape), y.shape)
                  for t in (a, b))
    except ValueError:
        raise ctx.fail(f"cannot broadcast {a.shape} and {b.shape} to {y.shape}") from None
    pa, pb = _operand(ctx, 0), _operand(ctx, 1)
    na, nb = _u32_map(ctx, "map_a", ma), _u32_map(ctx, "map_b", mb)
    is_max = "1u" if ctx.op.opcode == "MAXIMUM" else "0u"
    ctx.kernels.add("ss_select.c")
    ctx.body.append(f"ss_minmax8({pa}, {na}, {pb}, {nb}, {ctx.ptr(y)}, {y.size}u, {is_max});")
    return "broadcast" if a.shape != b.shape else "elementwise"


def _prelu(ctx: _Ctx) -> str:
    x, a, y = ctx.tin(0), ctx.tin(1), ctx.tout()
    for t in (x, a, y):
        ctx.expect_dtype(t, "int8")
    (sx, zx), (sa, za), (sy, zy) = ctx.quant(x), ctx.quant(a), ctx.quant(y)
    # TFLM's prepare: the scales as double
    m1, s1 = tm.quantize_multiplier(float(np.float32(sx)) / float(np.float32(sy)))
    m2, s2 = tm.quantize_multiplier(
        float(np.float32(sx)) * float(np.float32(sa)) / float(np.float32(sy)))
    for sh in (s1, s2):
        tm.check_shift(sh, f"operator #{ctx.op.index}")
    try:
        mx, ma = (np.broadcast_to(np.arange(t.size).reshape(t.shape), y.shape) for t in (x, a))
    except ValueError:
        raise ctx.fail(f"cannot broadcast {x.shape} and {a.shape} to {y.shape}") from None
    px, pa = _operand(ctx, 0), _operand(ctx, 1)
    nx, na = _u32_map(ctx, "map_in", mx), _u32_map(ctx, "map_alpha", ma)
    p = ctx.param("ss_prelu_params_t", [
        ("size", f"{y.size}u"), ("input_offset", c_int(-zx)), ("alpha_offset", c_int(-za)),
        ("output_offset", c_int(zy)), ("mult1", c_int(m1)), ("shift1", c_int(s1)),
        ("mult2", c_int(m2)), ("shift2", c_int(s2)),
    ])
    ctx.kernels.add("ss_prelu.c")
    ctx.body.append(f"ss_prelu_s8(&{p}, {px}, {nx}, {pa}, {na}, {ctx.ptr(y)});")
    return f"alpha {list(a.shape)}"


def _sqdiff(ctx: _Ctx) -> str:
    a, b, y = ctx.tin(0), ctx.tin(1), ctx.tout()
    for t in (a, b, y):
        ctx.expect_dtype(t, "int8")
    (sa, za), (sb, zb), (sy, zy) = ctx.quant(a), ctx.quant(b), ctx.quant(y)
    q = tm.squared_difference_params(sa, sb, sy)
    try:
        ma, mb = (np.broadcast_to(np.arange(t.size).reshape(t.shape), y.shape) for t in (a, b))
    except ValueError:
        raise ctx.fail(f"cannot broadcast {a.shape} and {b.shape} to {y.shape}") from None
    pa, pb = _operand(ctx, 0), _operand(ctx, 1)
    na, nb = _u32_map(ctx, "map_a", ma), _u32_map(ctx, "map_b", mb)
    p = ctx.param("ss_sqdiff_params_t", [
        ("size", f"{y.size}u"), ("input1_offset", c_int(-za)), ("input2_offset", c_int(-zb)),
        ("output_offset", c_int(zy)), ("left_shift", str(q["left_shift"])),
        *((k, c_int(q[k])) for k in ("input1_mult", "input1_shift", "input2_mult",
                                     "input2_shift", "output_mult", "output_shift")),
    ])
    ctx.kernels.add("ss_sqdiff.c")
    ctx.body.append(f"ss_sqdiff_s8(&{p}, {pa}, {na}, {pb}, {nb}, {ctx.ptr(y)});")
    return "broadcast" if a.shape != b.shape else "elementwise"


def _reduce_map(ctx: _Ctx, x: Tensor, axes: list[int]) -> tuple[np.ndarray, int, int]:
    kept = [i for i in range(len(x.shape)) if i not in axes]
    src = np.arange(x.size).reshape(x.shape).transpose(kept + axes)
    count = math.prod(x.shape[i] for i in axes)
    if count == 0 or x.size == 0:
        raise ctx.fail("reduces an empty tensor")
    return src.reshape(-1), x.size // count, count


def _reduce_minmax(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    for t in (x, y):
        ctx.expect_dtype(t, "int8")
    if ctx.quant(x) != ctx.quant(y):
        raise ctx.fail("has an output quantized differently from its input (TFLM requires equal "
                       "scale and zero point)")
    axes = sorted(int(a) for a in ctx.op.options["axes"])
    src, outer, count = _reduce_map(ctx, x, axes)
    name = _u32_map(ctx, "map", src)
    is_max = "1u" if ctx.op.opcode == "REDUCE_MAX" else "0u"
    ctx.kernels.add("ss_select.c")
    ctx.body.append(f"ss_reduce8({ctx.ptr(x, const=True)}, {name}, {ctx.ptr(y)}, {outer}u, "
                    f"{count}u, {is_max});")
    return f"axes {axes}"


def _arg_minmax(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    ctx.expect_dtype(x, "int8")
    ctx.expect_dtype(y, "int32")
    axis = int(ctx.op.options["axis"])
    src, outer, count = _reduce_map(ctx, x, [axis])
    name = _u32_map(ctx, "map", src)
    is_max = "1u" if ctx.op.opcode == "ARG_MAX" else "0u"
    ctx.kernels.add("ss_select.c")
    ctx.body.append(f"ss_argreduce8({ctx.ptr(x, const=True)}, {name}, {ctx.ptr(y)}, {outer}u, "
                    f"{count}u, {is_max});")
    return f"axis {axis}"


def _lut_op(ctx: _Ctx, lut: list[int], what: str) -> str:
    x, y = ctx.tin(0), ctx.tout()
    name = ctx.array("lut", "uint8_t", int_values(lut))
    ctx.kernels.add("ss_lut.c")
    ctx.body.append(f"ss_lut8({name}, {ctx.ptr(x, 'uint8_t', const=True)}, "
                    f"{ctx.ptr(y, 'uint8_t')}, {y.size}u);")
    return what


def _relu(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    for t in (x, y):
        ctx.expect_dtype(t, "int8")
    sx, zx = ctx.quant(x)
    if ctx.op.opcode == "RELU6":
        return _lut_op(ctx, tm.relu6_lut(sx, zx), "table")
    sy, zy = ctx.quant(y)
    try:
        lut = tm.relu_lut(sx, zx, sy, zy)
    except ValueError as e:
        raise ctx.fail(str(e)) from None
    return _lut_op(ctx, lut, "table")


def _leaky_relu(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    for t in (x, y):
        ctx.expect_dtype(t, "int8")
    (sx, zx), (sy, zy) = ctx.quant(x), ctx.quant(y)
    alpha = float(ctx.op.options.get("alpha", 0.2))
    return _lut_op(ctx, tm.leaky_relu_lut(alpha, sx, zx, sy, zy), f"alpha {alpha} (table)")


def _hard_swish(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    for t in (x, y):
        ctx.expect_dtype(t, "int8")
    (sx, zx), (sy, zy) = ctx.quant(x), ctx.quant(y)
    return _lut_op(ctx, tm.hard_swish_lut(sx, zx, sy, zy), "table")


def _logistic(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    for t in (x, y):
        ctx.expect_dtype(t, "int8")
    (sx, zx), (sy, zy) = ctx.quant(x), ctx.quant(y)
    tanh = ctx.op.opcode == "TANH"
    want = (1.0 / 128, 0) if tanh else (1.0 / 256, -128)
    if (float(np.float32(sy)), zy) != want:
        raise ctx.fail(f"has output scale {sy} and zero point {zy}; TFLM requires {want[0]} "
                       f"and {want[1]}")
    return _lut_op(ctx, tm.logistic_lut(sx, zx, tanh=tanh), "table")


def _quantize(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    ctx.expect_dtype(y, "int8", "uint8")
    sy, zy = ctx.quant(y)
    if x.dtype == "float32":
        info = np.iinfo(y.dtype)
        p = ctx.param("ss_quantize_params_t", [
            ("size", f"{y.size}u"), ("scale", c_float(sy)), ("zero_point", c_int(zy)),
            ("q_min", c_int(int(info.min))), ("q_max", c_int(int(info.max))),
        ])
        ctx.kernels.add("ss_quantize.c")
        fn = "ss_quantize_f32_s8" if y.dtype == "int8" else "ss_quantize_f32_u8"
        ctx.body.append(f"{fn}(&{p}, {ctx.ptr(x, const=True)}, {ctx.ptr(y)});")
        return f"float32 -> {y.dtype}"
    ctx.expect_dtype(x, "int8", "uint8")
    sx, zx = ctx.quant(x)
    try:
        lut = tm.requantize_lut(x.dtype, sx, zx, y.dtype, sy, zy)
    except ValueError as e:
        raise ctx.fail(str(e)) from None
    return _lut_op(ctx, lut, f"{x.dtype} -> {y.dtype} (table)")


def _dequantize(ctx: _Ctx) -> str:
    x, y = ctx.tin(0), ctx.tout()
    ctx.expect_dtype(x, "int8", "uint8")
    ctx.expect_dtype(y, "float32")
    sx, zx = ctx.quant(x)
    name = ctx.array("lut", "float", float_values(tm.dequantize_lut(x.dtype, sx, zx)))
    ctx.kernels.add("ss_dequantize.c")
    ctx.body.append(f"ss_dequantize_8_f32({name}, {ctx.ptr(x, 'uint8_t', const=True)}, "
                    f"{ctx.ptr(y)}, {y.size}u);")
    return f"{x.dtype} -> float32 (table)"


LOWERINGS: dict[str, Callable[[_Ctx], str]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _dwconv,
    "FULLY_CONNECTED": _fc,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _add,
    "SUB": _add,
    "MUL": _mul,
    "SOFTMAX": _softmax,
    "MEAN": _mean,
    "PAD": _pad,
    "RESHAPE": _reshape,
    "CONCATENATION": _concat,
    "RELU": _relu,
    "RELU6": _relu,
    "LEAKY_RELU": _leaky_relu,
    "HARD_SWISH": _hard_swish,
    "LOGISTIC": _logistic,
    "TANH": _logistic,
    "PRELU": _prelu,
    "SQUARED_DIFFERENCE": _sqdiff,
    "SPLIT": _split,
    "SPLIT_V": _split,
    "UNPACK": _split,
    "PACK": _pack,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
    "TRANSPOSE": _transpose,
    "SLICE": _slice,
    "STRIDED_SLICE": _movement,
    "SQUEEZE": _movement,
    "EXPAND_DIMS": _movement,
    "GATHER": _movement,
    "SPACE_TO_DEPTH": _movement,
    "DEPTH_TO_SPACE": _movement,
    "MAXIMUM": _minmax,
    "MINIMUM": _minmax,
    "REDUCE_MAX": _reduce_minmax,
    "REDUCE_MIN": _reduce_minmax,
    "ARG_MAX": _arg_minmax,
    "ARG_MIN": _arg_minmax,
}


def lower_operator(graph: Graph, plan: Plan, op: Operator) -> LoweredLayer:
    fn = LOWERINGS.get(op.opcode)
    ctx = _Ctx(graph, plan, op)
    if fn is None:
        raise ctx.fail(f"has no kernel; supported: {', '.join(sorted(LOWERINGS))}")
    try:
        summary = fn(ctx)
    except ValueError as e:  # a parameter TFLM's prepare would reject (tflm_math raises these)
        raise ctx.fail(f"cannot be prepared: {e}") from None
    return LoweredLayer(
        index=op.index,
        opcode=op.opcode,
        arrays=tuple(ctx.arrays),
        params=tuple(ctx.params),
        body=tuple(ctx.body),
        kernels=frozenset(ctx.kernels),
        summary=summary,
    )


def lower_graph(graph: Graph, plan: Plan) -> list[LoweredLayer]:
    return [lower_operator(graph, plan, op) for op in graph.operators]
