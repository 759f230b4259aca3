/* QUANTIZE float32 -> int8/uint8: TFLM reference_ops::AffineQuantize, bit-exact:
 * q = clamp(round(x / scale) + zero_point), the division and rounding in float. Values whose
 * rounded quotient does not fit an int32 (and NaN) saturate instead of hitting the undefined
 * float-to-int conversion TFLM has there. */
#include <math.h>

#include "ss_fixedpoint.h"
#include "ss_kernels.h"

static inline int32_t ss_quantize_one(const ss_quantize_params_t *p, float x) {
    const float r = roundf(x / p->scale);
    int32_t q;
    if (r >= 2147483520.0f) {
        q = INT32_MAX - 255;
    } else if (r > -2147483520.0f) {
        q = (int32_t)r;
    } else {
        q = INT32_MIN + 255; /* also NaN */
    }
    return ss_clamp(q + p->zero_point, p->q_min, p->q_max);
}

void ss_quantize_f32_s8(const ss_quantize_params_t *p, const float *input, int8_t *output) {
    for (uint32_t i = 0; i < p->size; i++) {
        output[i] = (int8_t)ss_quantize_one(p, input[i]);
    }
}

void ss_quantize_f32_u8(const ss_quantize_params_t *p, const float *input, uint8_t *output) {
    for (uint32_t i = 0; i < p->size; i++) {
        output[i] = (uint8_t)ss_quantize_one(p, input[i]);
    }
}
