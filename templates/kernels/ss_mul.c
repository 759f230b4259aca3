/* MUL, int8: TFLM reference_integer_ops::Mul / BroadcastMul6DSlow, bit-exact: (in1 + off1) *
 * (in2 + off2) scaled by MultiplyByQuantizedMultiplier(s1 * s2 / s_out) (the multiplier and
 * shift are computed at generation time like TFLM's QuantizeMultiplier), plus the output zero
 * point, clamped to the activation range. Broadcasting (e.g. a per-channel constant vector) is
 * a walk over the (up to 4-D) output with per-input strides, 0 along broadcast dimensions; the
 * output is written in order and each element reads its inputs first, so an input of the
 * output's shape may share the output's bytes. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

static inline int8_t ss_mul_one(const ss_mul_params_t *p, int32_t x, int32_t y) {
    const int32_t prod = (p->input1_offset + x) * (p->input2_offset + y); /* |.| <= 255 * 255 */
    const int32_t out = ss_mbqm(prod, p->output_mult, p->output_shift) + p->output_offset;
    return (int8_t)ss_clamp(out, p->act_min, p->act_max);
}

void ss_mul_s8(const ss_mul_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output) {
    SS_BINARY_WALK(ss_mul_one, p, in1, in2, output);
}
