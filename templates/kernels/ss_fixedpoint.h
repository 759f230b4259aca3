/* Fixed-point primitives shared by the kernels, bit-exact with TFLM's default build
 * (tensorflow/lite/kernels/internal/common.h without TFLITE_SINGLE_ROUNDING, and gemmlowp's
 * fixedpoint.h). Signed overflow is avoided by doing wrapping arithmetic in uint32_t where
 * TFLM relies on two's-complement wrap-around in practice. */
#ifndef SS_FIXEDPOINT_H
#define SS_FIXEDPOINT_H

#include <stdint.h>

/* Kernels instantiate their loops per requantization mode with constant flags; this makes the
 * compiler really inline them (so the flags fold) instead of sharing one copy. Not on cores
 * without the DSP extension (Cortex-M0/M0+/M3): with eight low registers the larger inlined
 * loops spill more than the folded flags save. */
#if defined(__GNUC__) && (!defined(__arm__) || defined(__ARM_FEATURE_DSP))
#define SS_SPECIALIZE static inline __attribute__((always_inline))
#else
#define SS_SPECIALIZE static inline
#endif

/* a + b and a * b with two's-complement wrap-around (no undefined behaviour). */
static inline int32_t ss_wadd(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t ss_wmul(int32_t a, int32_t b) {
    return (int32_t)((uint32_t)a * (uint32_t)b);
}

/* gemmlowp::SaturatingRoundingDoublingHighMul without its saturating case (a == b ==
 * INT32_MIN): (a * b + nudge) / 2^31 with C's truncating division, where the nudge is 2^30 for a
 * non-negative product and 1 - 2^30 otherwise, equals floor((a * b + 2^30) / 2^31) for every
 * product (for a negative one, truncation is the ceiling: (ab + 1 - 2^30 + 2^31 - 1) >> 31). */
static inline int32_t ss_srdhm_ns(int32_t a, int32_t b) {
    return (int32_t)(((int64_t)a * (int64_t)b + (1ll << 30)) >> 31);
}

/* gemmlowp::SaturatingRoundingDoublingHighMul for int32 (ARM VQRDMULH semantics). */
static inline int32_t ss_srdhm(int32_t a, int32_t b) {
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return ss_srdhm_ns(a, b);
}

/* gemmlowp::RoundingDivideByPOT: rounding arithmetic right shift, ties away from zero. */
static inline int32_t ss_rdbpot(int32_t x, int exponent) {
    const int32_t mask = (int32_t)(((uint32_t)1 << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLM MultiplyByQuantizedMultiplier(int32 x, multiplier, shift), double rounding; shift > 0 is
 * a left shift. The multiplier comes from QuantizeMultiplier, in [0, 2^31): never INT32_MIN, so
 * the saturating case of the high multiply cannot arise. */
static inline int32_t ss_mbqm(int32_t x, int32_t multiplier, int32_t shift) {
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    return ss_rdbpot(ss_srdhm_ns((int32_t)((uint32_t)x << left), multiplier), right);
}

/* TFLM MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0). */
static inline int32_t ss_mbqm_lt1(int32_t x, int32_t multiplier, int32_t shift) {
    return ss_rdbpot(ss_srdhm_ns(x, multiplier), -shift);
}

static inline int32_t ss_clamp(int32_t v, int32_t lo, int32_t hi) {
    v = v < lo ? lo : v;
    return v > hi ? hi : v;
}

/* Requantize an accumulator to int8 as every TFLM int8 kernel does: scale, add the output zero
 * point, clamp to the activation range. */
static inline int8_t ss_requant_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_zp,
                                   int32_t act_min, int32_t act_max) {
    return (int8_t)ss_clamp(ss_mbqm(acc, multiplier, shift) + out_zp, act_min, act_max);
}

/* (a * b + 2^31) >> 32: the rounded high word of the 64-bit product (one SMMULR on DSP cores). */
static inline int32_t ss_smmulr(int32_t a, int32_t b) {
#if defined(__ARM_FEATURE_DSP)
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((int64_t)a * (int64_t)b + (1ll << 31)) >> 32);
#endif
}

/* Clamp to [-128, 127] (one SSAT where the core has it). */
static inline int32_t ss_sat8(int32_t v) {
#if defined(__ARM_FEATURE_SAT)
    int32_t r;
    __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
    return r;
#else
    return ss_clamp(v, -128, 127);
#endif
}

/* The fast form of ss_mbqm(acc, mult, shift) + out_zp for shift <= -1, used where the generator
 * has proved it exact (tflm_math.fast_requant): |acc| < 2^30 and no int32 overflow below.
 * With rshift = -shift and add = (2 * out_zp + 1) << (rshift - 1):
 *   SaturatingRoundingDoublingHighMul(acc, mult) = smmulr(2 * acc, mult)  (exact, no saturation)
 *   RoundingDivideByPOT(v, r) + zp = (v + 2^(r-1) - (v < 0) + zp * 2^r) >> r
 * (ties away from zero; the (v >> 31) term is -1 exactly for negative v). */
static inline int32_t ss_rq_fast(int32_t acc, int32_t mult, int32_t add, int32_t rshift) {
    const int32_t v = ss_smmulr((int32_t)((uint32_t)acc << 1), mult);
    return (v + add + (v >> 31)) >> rshift;
}

/* Requantize with a channel record {start, mult, add | shift, rshift} (ss_kernels.h): the fast
 * form when fast (the record holds add), TFLM's longhand otherwise (the record holds the shift);
 * then the activation range ([-128, 127] when full). fast and full are constants at every call
 * site, so each kernel instantiates its loops per mode. */
static inline int8_t ss_rq(int32_t acc, const int32_t *rec, int fast, int full, int32_t out_zp,
                           int32_t act_min, int32_t act_max) {
    int32_t v = fast ? ss_rq_fast(acc, rec[1], rec[2], rec[3])
                     : ss_wadd(ss_mbqm(acc, rec[1], rec[2]), out_zp);
    v = ss_sat8(v);
    if (!full) {
        v = ss_clamp(v, act_min, act_max);
    }
    return (int8_t)v;
}

#endif
