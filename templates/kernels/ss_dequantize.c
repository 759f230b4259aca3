/* DEQUANTIZE int8/uint8 -> float32: TFLM reference_ops::Dequantize computes
 * float(double(scale) * (q - zero_point)); with 8-bit inputs the generator tabulates exactly
 * those 256 floats, so no double arithmetic runs on the target. */
#include "ss_kernels.h"

void ss_dequantize_8_f32(const float *lut, const uint8_t *input, float *output, uint32_t size) {
    for (uint32_t i = 0; i < size; i++) {
        output[i] = lut[input[i]];
    }
}
