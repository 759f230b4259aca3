/* SOFTMAX, int8 -> int8: TFLM reference_ops::Softmax with gemmlowp fixed point, bit-exact.
 * exp(beta * scale * (x - max)) depends only on d = max - x (0..255), so the generator
 * tabulates gemmlowp's exp_on_negative_values for every d (0 where d exceeds -diff_min); the
 * kernel sums the table entries, takes gemmlowp's reciprocal and scales. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"

/* gemmlowp::one_over_one_plus_x_for_x_in_0_1 on a Q0.31 value. */
static int32_t ss_one_over_one_plus_x(int32_t a) {
    /* half_denominator = RoundingHalfSum(a, One) */
    const int64_t sum = (int64_t)a + (int64_t)INT32_MAX;
    const int32_t half_den = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    const int32_t c48_17 = 1515870810;      /* 48/17 in Q2.29 */
    const int32_t c_neg32_17 = -1010580540; /* -32/17 in Q2.29 */
    const int32_t one_q2 = 1 << 29;
    int32_t x = ss_wadd(c48_17, ss_srdhm(half_den, c_neg32_17));
    for (int i = 0; i < 3; i++) {
        const int32_t hdx = ss_srdhm(half_den, x);
        const int32_t one_minus = ss_wadd(one_q2, -hdx);
        const int32_t prod = ss_srdhm(x, one_minus); /* Q4.27 */
        /* Rescale<2> from 4 integer bits: saturating multiply by 4 */
        int32_t r;
        if (prod > ((1 << 29) - 1)) {
            r = INT32_MAX;
        } else if (prod < -((1 << 29) - 1)) {
            r = INT32_MIN;
        } else {
            r = prod * 4;
        }
        x = ss_wadd(x, r);
    }
    /* Rescale<0>(ExactMulByPot<-1>(x)): saturating multiply by 2 */
    if (x > ((1 << 30) - 1)) {
        return INT32_MAX;
    }
    if (x < -((1 << 30) - 1)) {
        return INT32_MIN;
    }
    return x * 2;
}

void ss_softmax_s8(const ss_softmax_params_t *p, const int8_t *input, int8_t *output) {
    const int32_t *lut = p->exp_lut;
    for (uint32_t r = 0; r < p->outer; r++) {
        const int8_t *in = input + r * p->depth;
        int8_t *out = output + r * p->depth;
        int32_t max = -128;
        for (uint32_t c = 0; c < p->depth; c++) {
            max = in[c] > max ? in[c] : max;
        }
        int32_t sum = 0; /* Q12.19 */
        for (uint32_t c = 0; c < p->depth; c++) {
            sum += ss_rdbpot(lut[max - in[c]], 12);
        }
        /* GetReciprocal(sum, 12) */
        const int headroom = __builtin_clz((uint32_t)sum);
        const int bits_over_unit = 12 - headroom;
        const int32_t shifted = (int32_t)(((uint32_t)sum << headroom) - (1u << 31));
        const int32_t scale = ss_one_over_one_plus_x(shifted);
        int exponent = bits_over_unit + 31 - 8;
        if (exponent > 31) {
            /* Only for rows with more than ~500 elements at the maximum, where TFLM stops with a
             * failed check; keep the shift defined. */
            exponent = 31;
        }
        for (uint32_t c = 0; c < p->depth; c++) {
            const int32_t v = ss_rdbpot(ss_srdhm(scale, lut[max - in[c]]), exponent) - 128;
            out[c] = (int8_t)ss_clamp(v, -128, 127);
        }
    }
}
