"""TFLM's operator "prepare" arithmetic and fixed-point primitives, in Python.

Everything the generated C must agree with bit for bit is computed here at generation time:
multipliers and shifts (``QuantizeMultiplier``), activation ranges, padding, and the lookup
tables of 8-bit elementwise operators and of SOFTMAX's exponential. The formulas follow TFLM's
default build (double rounding, i.e. *not* ``TFLITE_SINGLE_ROUNDING``), with float32 and
float64 steps reproduced where TFLM mixes them. Integer helpers work on Python ints and
reproduce int32 wrap-around explicitly (:func:`wrap32`).
"""

from __future__ import annotations

import math

import numpy as np

I32_MIN = -(1 << 31)
I32_MAX = (1 << 31) - 1

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def wrap32(x: int) -> int:
    """Two's-complement int32 wrap-around of a Python int."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def f32(x: float) -> float:
    """Round a Python float to float32 (returned as a Python float)."""
    return float(np.float32(x))


def round_half_away(x: float) -> float:
    """std::round / roundf: halves away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


# ---- multipliers --------------------------------------------------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM ``QuantizeMultiplier`` (default build): real ≈ m · 2^(shift-31), m in [2^30, 2^31).

    Unlike the single-rounding build it does not clamp shift > 30 (that never happens for
    int8 models; :func:`check_shift` rejects it so the C never shifts by 31 or more).
    """
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(round_half_away(q * (1 << 31)))
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    return q_fixed, shift


def check_shift(shift: int, what: str) -> int:
    if shift > 30:
        raise ValueError(f"{what}: requantization multiplier too large (shift {shift} > 30)")
    return shift


# ---- gemmlowp / TFLM integer primitives ---------------------------------------------------


def srdhm(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul (int32)."""
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    num = ab + nudge
    q = abs(num) >> 31  # C division truncates towards zero
    return wrap32(q if num >= 0 else -q)


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x: int, multiplier: int, shift: int) -> int:
    """TFLM MultiplyByQuantizedMultiplier(int32, ...), double rounding."""
    left = max(shift, 0)
    right = max(-shift, 0)
    return rdbpot(srdhm(wrap32(x << left), multiplier), right)


def sat_mul_pot(x: int, exponent: int) -> int:
    """gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for int32."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return I32_MAX
    if x < -threshold:
        return I32_MIN
    return x * (1 << exponent)


def _exp_on_interval_neg_quarter_0(a: int) -> int:
    """gemmlowp exp_on_interval_between_negative_one_quarter_and_0_excl (Q0.31)."""
    constant_term = 1895147668
    constant_1_over_3 = 715827883
    x = wrap32(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = sat_mul_pot(x4, -2)
    poly = sat_mul_pot(wrap32(srdhm(wrap32(x4_over_4 + x3), constant_1_over_3) + x2), -1)
    return wrap32(constant_term + srdhm(constant_term, wrap32(x + poly)))


_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a: int, integer_bits: int) -> int:
    """gemmlowp exp_on_negative_values for a Q(integer_bits).(31-integer_bits) input; Q0.31
    result."""
    frac_bits = 31 - integer_bits
    one_quarter = 1 << (frac_bits - 2)
    mask = one_quarter - 1
    a_mod = wrap32((a & mask) - one_quarter)
    result = _exp_on_interval_neg_quarter_0(sat_mul_pot(a_mod, integer_bits))
    remainder = wrap32(a_mod - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent:
            shift = frac_bits + exponent
            if remainder & (1 << shift):
                result = srdhm(result, multiplier)
    if integer_bits > 5:
        clamp = -(1 << (36 - integer_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = I32_MAX
    return result


# ---- prepare helpers ----------------------------------------------------------------------


def quantize_value(value: float, scale: float, zero_point: int) -> int:
    """TFLM kernel_util ``Quantize``: zp + int(round(f / scale)) with float32 division."""
    tmp = round_half_away(float(np.float32(value) / np.float32(scale)))
    return zero_point + int(tmp)


def activation_range(activation: str, scale: float, zero_point: int,
                     qmin: int = -128, qmax: int = 127) -> tuple[int, int]:
    """TFLM CalculateActivationRangeQuantized."""
    if activation == "RELU":
        return max(qmin, quantize_value(0.0, scale, zero_point)), qmax
    if activation == "RELU6":
        return (max(qmin, quantize_value(0.0, scale, zero_point)),
                min(qmax, quantize_value(6.0, scale, zero_point)))
    if activation == "RELU_N1_TO_1":
        return (max(qmin, quantize_value(-1.0, scale, zero_point)),
                min(qmax, quantize_value(1.0, scale, zero_point)))
    if activation == "NONE":
        return qmin, qmax
    raise ValueError(f"fused activation {activation} is not supported")


def out_size(padding: str, size: int, k: int, stride: int, dilation: int) -> int:
    eff = (k - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size + stride - eff) // stride


def padding_before(padding: str, size: int, k: int, stride: int, dilation: int) -> int:
    """TFLM ComputePaddingHeightWidth: the padding before (top/left) for one dimension."""
    out = out_size(padding, size, k, stride, dilation)
    eff = (k - 1) * dilation + 1
    total = (out - 1) * stride + eff - size
    return max(total, 0) // 2


def conv_multipliers(input_scale: float, filter_scales: tuple[float, ...], output_scale: float,
                     channels: int) -> tuple[list[int], list[int]]:
    """PopulateConvolutionQuantizationParams (also per-channel FULLY_CONNECTED): the effective
    scale in double precision, broadcast when the filter is per-tensor."""
    mults, shifts = [], []
    for c in range(channels):
        fs = filter_scales[c] if len(filter_scales) > 1 else filter_scales[0]
        m, s = quantize_multiplier(float(input_scale) * float(fs) / float(output_scale))
        mults.append(m)
        shifts.append(s)
    return mults, shifts


def fc_per_tensor_multiplier(input_scale: float, filter_scale: float, output_scale: float
                             ) -> tuple[int, int]:
    """GetQuantizedConvolutionMultipler: the product of the two scales is taken in float32."""
    product = f32(float(np.float32(input_scale) * np.float32(filter_scale)))
    return quantize_multiplier(product / float(output_scale))


def check_fc_bias_scale(input_scale: float, filter_scale: float, bias_scale: float,
                        output_scale: float) -> None:
    """GetQuantizedConvolutionMultipler's guard (FULLY_CONNECTED with per-tensor weights): the
    bias must be quantized at input scale x weight scale, to within 2% of the output scale, or
    TFLM refuses to prepare the operator. ``bias_scale`` is 0 for an unquantized bias (TFLM's
    default). Raises ValueError."""
    product = float(np.float32(input_scale)) * float(np.float32(filter_scale))
    diff = abs(product - float(np.float32(bias_scale)))
    if not diff / float(np.float32(output_scale)) <= 0.02:
        raise ValueError(
            f"its bias scale {float(bias_scale):g} is not input scale x weight scale "
            f"({product:g}) to within 2% of the output scale; TFLM refuses it too"
        )


def softmax_exp_lut(beta: float, input_scale: float) -> list[int]:
    """SOFTMAX int8: gemmlowp exp of the rescaled input difference, for every d = max - x in
    0..255 (0 where the difference is below diff_min). See TFLM CalculateSoftmaxParams and
    reference_ops::Softmax."""
    integer_bits = 5
    real = min(float(beta) * float(input_scale) * float(1 << (31 - integer_bits)),
               float((1 << 31) - 1))
    mult, left_shift = quantize_multiplier(real)
    if left_shift < 0:
        raise ValueError("softmax beta * input scale is too small (multiplier < 1)")
    radius = math.floor(((1 << integer_bits) - 1) * float(1 << (31 - integer_bits))
                        / float(1 << left_shift))
    diff_min = -radius
    lut = []
    for d in range(256):
        diff = -d
        if diff >= diff_min:
            rescaled = srdhm(wrap32(diff * (1 << left_shift)), mult)
            lut.append(exp_on_negative_values(rescaled, integer_bits))
        else:
            lut.append(0)
    return lut


def requantize_lut(in_dtype: str, in_scale: float, in_zp: int, out_dtype: str,
                   out_scale: float, out_zp: int) -> list[int]:
    """QUANTIZE between 8-bit types: TFLM reference_ops::Requantize, as a byte table indexed
    by the input byte."""
    mult, shift = quantize_multiplier(float(in_scale) / float(out_scale))
    check_shift(shift, "QUANTIZE")
    info = np.iinfo(out_dtype)
    lut = []
    for byte in range(256):
        v = int(np.array(byte, dtype=np.uint8).view(in_dtype))
        out = mbqm(v - in_zp, mult, shift) + out_zp
        out = min(max(out, int(info.min)), int(info.max))
        lut.append(out & 0xFF)
    return lut


def relu_lut(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> list[int]:
    """RELU int8: TFLM CalculateReluOpData + ReluQuantized. Note the float32 division of the
    scales before the multiplier is computed."""
    real = float(np.float32(in_scale) / np.float32(out_scale))
    mult, shift = quantize_multiplier(real)
    check_shift(shift, "RELU")
    zero = round_half_away(float(np.float32(0.0) / np.float32(out_scale)))
    act_min = max(-128, out_zp + int(zero))
    act_max = 127
    lut = []
    for byte in range(256):
        v = byte - 256 if byte >= 128 else byte
        out = out_zp + mbqm(v - in_zp, mult, shift)
        out = min(max(out, act_min), act_max)
        lut.append(out & 0xFF)
    return lut


def leaky_relu_lut(alpha: float, in_scale: float, in_zp: int, out_scale: float, out_zp: int
                   ) -> list[int]:
    """LEAKY_RELU int8: TFLM CalculateOpDataLeakyRelu (the scale products in float32, then
    QuantizeMultiplier in double) + reference_ops::QuantizeLeakyRelu, for every input byte."""
    s_in, s_out, a = np.float32(in_scale), np.float32(out_scale), np.float32(alpha)
    alpha_mult, alpha_shift = quantize_multiplier(float(np.float32(s_in * a) / s_out))
    id_mult, id_shift = quantize_multiplier(float(s_in / s_out))
    negative = alpha_mult < 0
    lut = []
    for byte in range(256):
        v = (byte - 256 if byte >= 128 else byte) - in_zp
        if v >= 0:
            out = out_zp + mbqm(v, id_mult, id_shift)
        else:
            scaled = mbqm(v, -alpha_mult if negative else alpha_mult, alpha_shift)
            out = out_zp + (-scaled if negative else scaled)
        lut.append(min(max(out, -128), 127) & 0xFF)
    return lut


def _wrap16(x: int) -> int:
    return ((x + 0x8000) & 0xFFFF) - 0x8000


def _srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul (int16)."""
    if a == b == -0x8000:
        return 0x7FFF
    ab = a * b
    num = ab + ((1 << 14) if ab >= 0 else 1 - (1 << 14))
    q = abs(num) >> 15  # C division truncates towards zero
    return _wrap16(q if num >= 0 else -q)


def _sdhm16(a: int, b: int) -> int:
    """TFLM hard_swish.h SaturatingDoublingHighMul (int16, rounding towards zero)."""
    if a == b == -0x8000:
        return 0x7FFF
    ab = a * b
    q = abs(ab) >> 15
    return _wrap16(q if ab >= 0 else -q)


def _sat_left_shift16(x: int, amount: int) -> int:
    return min(max(x * (1 << amount), -0x8000), 0x7FFF)


def _down_scale_to_int16(m: int) -> int:
    """TFLM DownScaleInt32ToInt16Multiplier."""
    if m >= I32_MAX - (1 << 15):
        return 0x7FFF
    return (m + (1 << 15)) >> 16


def hard_swish_lut(in_scale: float, in_zp: int, out_scale: float, out_zp: int) -> list[int]:
    """HARD_SWISH int8: TFLM HardSwishPrepare (float32 scale arithmetic, int16 multipliers) and
    reference_ops::HardSwish<int8_t> (int16 fixed point), for every input byte."""
    hires = np.float32(1.0 / 128.0) * np.float32(in_scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m32, out_exp = quantize_multiplier(float(hires / np.float32(out_scale)))
    out_m = _down_scale_to_int16(out_m32)
    if out_exp > 0:
        raise ValueError(f"HARD_SWISH: output multiplier exponent {out_exp} > 0 (TFLM refuses)")
    rel_m32, rel_exp = quantize_multiplier(float(hires / reluish_scale))
    rel_m = _down_scale_to_int16(rel_m32)
    lut = []
    for byte in range(256):
        v = _wrap16((byte - 256 if byte >= 128 else byte) - in_zp)
        hires_v = _wrap16(v * (1 << 7))
        pre_out = _srdhm16(hires_v, out_m)
        reluish = hires_v
        if rel_exp > 0:
            reluish = _sat_left_shift16(reluish, rel_exp - 1)
        reluish = _srdhm16(reluish, rel_m)
        if rel_exp > 0:
            reluish = _sat_left_shift16(reluish, 1)
        if rel_exp < 0:
            reluish = _wrap16(rdbpot(reluish, -rel_exp))
        reluish = _wrap16((reluish + (1 << 15)) >> 1)
        pre = _sdhm16(reluish, pre_out)
        out = _wrap16(_wrap16(rdbpot(pre, -out_exp)) + out_zp)
        lut.append(min(max(out, -128), 127) & 0xFF)
    return lut


def _rounding_half_sum(a: int, b: int) -> int:
    total = a + b
    sign = 1 if total >= 0 else -1
    q = abs(total + sign) // 2  # C division truncates towards zero
    return wrap32(q if total + sign >= 0 else -q)


def _one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 in, Q0.31 out (via Q2.29)."""
    half_denominator = _rounding_half_sum(a, I32_MAX)
    c48_17, cneg32_17 = 1515870810, -1010580540
    x = wrap32(c48_17 + srdhm(half_denominator, cneg32_17))
    one_f2 = 1 << 29
    for _ in range(3):
        half_denominator_times_x = srdhm(half_denominator, x)
        one_minus = wrap32(one_f2 - half_denominator_times_x)
        x = wrap32(x + sat_mul_pot(srdhm(x, one_minus), 2))
    return sat_mul_pot(x, 1)  # Rescale<0>(ExactMulByPot<-1>(x)): the raw read as Q1.30


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """gemmlowp one_minus_x_over_one_plus_x_for_x_in_0_1: Q0.31 in and out (via Q2.29)."""
    half_denominator = _rounding_half_sum(a, I32_MAX)
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))
    for _ in range(3):
        one_minus = wrap32((1 << 29) - srdhm(half_denominator, x))
        x = wrap32(x + sat_mul_pot(srdhm(x, one_minus), 2))
    return sat_mul_pot(wrap32(x - (1 << 29)), 2)


def _tanh_q4(a: int) -> int:
    """gemmlowp tanh of a Q4.27 value; Q0.31 result."""
    if a == 0:
        return 0
    n = a if a < 0 else wrap32(-a)
    # neg_tanh_on_negative_values: ExactMulByPot<1> reads the raw as Q5.26 (exp(2n))
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(n, 5))
    return wrap32(-t) if a < 0 else t


def _logistic_q4(a: int) -> int:
    """gemmlowp logistic of a Q4.27 value; Q0.31 result."""
    if a == 0:
        return 1 << 30
    abs_a = a if a > 0 else wrap32(-a)
    pos = _one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(wrap32(-abs_a), 4))
    return pos if a > 0 else wrap32(I32_MAX - pos)


def logistic_lut(in_scale: float, in_zp: int, tanh: bool = False) -> list[int]:
    """LOGISTIC int8 (output 1/256, -128): TFLM CalculateArithmeticOpDataLogistic and
    reference_integer_ops::Logistic (gemmlowp fixed point), for every input byte. With *tanh*:
    TANH int8 (output 1/128, 0), TFLM's tanh prepare (the same) and reference_integer_ops::Tanh.
    """
    real = float(np.float32(in_scale)) * float(1 << 27)
    q, left_shift = math.frexp(real)
    mult = int(round_half_away(q * (1 << 31)))
    if mult >= 1 << 31:
        raise ValueError("LOGISTIC: the input multiplier rounds to 2^31 (TFLM overflows)")
    radius = math.floor(1.0 * 15 * (1 << 27) / (1 << left_shift) if left_shift >= 0
                        else 1.0 * 15 * (1 << 27) * (1 << -left_shift))
    lut = []
    for byte in range(256):
        v = (byte - 256 if byte >= 128 else byte) - in_zp
        if v <= -radius:
            out = -128
        elif v >= radius:
            out = 127
        else:
            q4 = mbqm(v, mult, left_shift)
            if tanh:
                out = min(max(rdbpot(_tanh_q4(q4), 31 - 7), -128), 127)
            else:
                out = min(max(rdbpot(_logistic_q4(q4), 31 - 8) - 128, -128), 127)
        lut.append(out & 0xFF)
    return lut


def relu6_lut(in_scale: float, in_zp: int) -> list[int]:
    """RELU6 int8: TFLM Relu6Prepare/Relu6Quantized clamp to [zero point, quantized 6]
    (in the input's quantization; the output's is not used)."""
    six = int(round_half_away(float(np.float32(6.0) / np.float32(in_scale)))) + in_zp
    six = min(max(six, -128), 127)
    zero = in_zp
    lut = []
    for byte in range(256):
        v = byte - 256 if byte >= 128 else byte
        out = six if v > six else (zero if v < zero else v)
        lut.append(out & 0xFF)
    return lut


def dequantize_lut(in_dtype: str, scale: float, zero_point: int) -> np.ndarray:
    """DEQUANTIZE: float(double(scale) * (q - zero_point)) for every input byte."""
    q = np.arange(256, dtype=np.uint8).view(in_dtype).astype(np.float64)
    return (float(scale) * (q - float(zero_point))).astype(np.float32)


def add_params(s1: float, s2: float, s_out: float) -> dict[str, int]:
    """ADD int8: TFLM CalculateOpDataAdd (left shift 20)."""
    left_shift = 20
    twice_max = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    r1 = float(s1) / twice_max
    r2 = float(s2) / twice_max
    r_out = twice_max / (float(1 << left_shift) * float(s_out))
    out = {"left_shift": left_shift}
    for key, real in (("input1", r1), ("input2", r2), ("output", r_out)):
        m, s = quantize_multiplier(real)
        if s > 0:
            raise ValueError(f"ADD: {key} multiplier {real} is not smaller than one")
        out[f"{key}_mult"] = m
        out[f"{key}_shift"] = s
    return out


def squared_difference_params(s1: float, s2: float, s_out: float) -> dict[str, int]:
    """SQUARED_DIFFERENCE int8: TFLM squared_difference.cc PrepareQuantized (left shift 7; the
    doubles of the float32 scales; (1 << 14) * output scale is a float32 product)."""
    left_shift = 7
    twice_max = 2.0 * float(max(np.float32(s1), np.float32(s2)))
    r1 = float(np.float32(s1)) / twice_max
    r2 = float(np.float32(s2)) / twice_max
    r_out = (twice_max * twice_max) / float(np.float32(1 << (2 * left_shift))
                                            * np.float32(s_out))
    out = {"left_shift": left_shift}
    for key, real in (("input1", r1), ("input2", r2)):
        m, s = quantize_multiplier(real)
        if s > 0:
            raise ValueError(f"SQUARED_DIFFERENCE: {key} multiplier {real} is not smaller "
                             "than one")
        out[f"{key}_mult"], out[f"{key}_shift"] = m, s
    m, s = quantize_multiplier(r_out)
    check_shift(s, "SQUARED_DIFFERENCE")
    out["output_mult"], out["output_shift"] = m, s
    return out


def mul_multiplier(s1: float, s2: float, s_out: float) -> tuple[int, int]:
    """MUL int8: TFLM CalculateOpDataMul, QuantizeMultiplier(double(s1) * double(s2) /
    double(s_out)) of the float32 scales."""
    real = float(np.float32(s1)) * float(np.float32(s2)) / float(np.float32(s_out))
    mult, shift = quantize_multiplier(real)
    check_shift(shift, "MUL")
    return mult, shift


def mean_multiplier(in_scale: float, out_scale: float, count: int) -> tuple[int, int]:
    """MEAN int8: QuantizeMultiplier(in/out scale) with 1/count folded in, as TFLM's
    QuantizedMeanOrSum does."""
    mult, shift = quantize_multiplier(float(in_scale) / float(out_scale))
    s = min(count.bit_length() - 1, 32)
    s = min(s, 31 + shift)
    mult = (mult << s) // count
    return int(mult), shift - s


# ---- requantization records ----------------------------------------------------------------


def fast_requant_ok(mult: int, shift: int, out_zp: int, acc_bound: int) -> bool:
    """Whether the kernels' fast requantization (``ss_rq_fast`` in ss_fixedpoint.h) equals
    ``mbqm(acc, mult, shift) + out_zp`` for every accumulator with ``|acc| <= acc_bound``.

    The fast form computes ``v = (2 acc * mult + 2^31) >> 32`` (SMMULR) and
    ``(v + add + (v >> 31)) >> r`` with ``r = -shift`` and ``add = (2 out_zp + 1) << (r - 1)``.
    It is exact when the right shift is at least 1 (``left`` shift 0), ``2 acc`` fits int32 (no
    wrap before the multiply, so the doubling high multiply is the rounded high word) and the
    sums stay inside int32: ``|v| <= acc_bound + 1``."""
    if mult < 0 or shift > -1 or shift < -31:
        return False
    if 2 * acc_bound >= 1 << 31:
        return False
    r = -shift
    add = (2 * out_zp + 1) << (r - 1)
    return acc_bound + 2 + abs(add) < (1 << 31)


def fast_record(start: int, mult: int, shift: int, out_zp: int, acc_bound: int
                ) -> list[int] | None:
    """The fast channel record ``{start, mult, add, rshift}``, or None if the fast form is not
    exact for this channel. A channel whose right shift is so large that every accumulator
    within the bound rounds to 0 (``|SRDHM(acc, mult)| <= acc_bound < 2^(r-1)``, so TFLM gives
    exactly ``out_zp``) gets the constant record ``{start, 0, 2 out_zp + 1, 1}``: ``v = 0`` and
    ``(2 out_zp + 1) >> 1 = out_zp``. A channel whose weights are all zero (``acc_bound ==
    |start|``: the accumulator is always ``start``) gets its constant output the same way."""
    if acc_bound == abs(start):
        c = min(max(wrap32(mbqm(wrap32(start), mult, shift) + out_zp), -128), 127)
        return [0, 0, 2 * c + 1, 1]
    if fast_requant_ok(mult, shift, out_zp, acc_bound):
        r = -shift
        return [wrap32(start), mult, (2 * out_zp + 1) << (r - 1), r]
    if mult >= 0 and -31 <= shift <= -1 and acc_bound < (1 << (-shift - 1)):
        return [wrap32(start), 0, 2 * out_zp + 1, 1]
    return None


def channel_records(start: list[int], mults: list[int], shifts: list[int], out_zp: int,
                    acc_bounds: list[int]) -> tuple[list[int], bool]:
    """Per output channel ``{start, mult, add | shift, rshift}`` (flattened) and whether the
    fast form holds for every channel (then :func:`fast_record`'s; else TFLM's ``shift``, 0)."""
    fast = [fast_record(st, m, s, out_zp, b)
            for st, m, s, b in zip(start, mults, shifts, acc_bounds)]
    records: list[int] = []
    if all(r is not None for r in fast):
        for r in fast:
            assert r is not None
            records += r
        return records, True
    for st, m, s in zip(start, mults, shifts):
        records += [wrap32(st), m, s, 0]
    return records, False
