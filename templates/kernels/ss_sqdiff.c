/* SQUARED_DIFFERENCE, int8: TFLM squared_difference.cc (PrepareQuantized, left shift 7, and
 * SquaredDifference<int8_t>), bit-exact. Broadcasting through index maps from the generator. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"

void ss_sqdiff_s8(const ss_sqdiff_params_t *p, const int8_t *in1, const uint32_t *map1,
                  const int8_t *in2, const uint32_t *map2, int8_t *output) {
    for (uint32_t i = 0; i < p->size; i++) {
        const int32_t a = (p->input1_offset + in1[map1[i]]) * (1 << p->left_shift);
        const int32_t b = (p->input2_offset + in2[map2[i]]) * (1 << p->left_shift);
        const int32_t d = ss_mbqm_lt1(a, p->input1_mult, p->input1_shift) -
                          ss_mbqm_lt1(b, p->input2_mult, p->input2_shift);
        const int32_t out = ss_mbqm(d * d, p->output_mult, p->output_shift) + p->output_offset;
        output[i] = (int8_t)ss_clamp(out, -128, 127);
    }
}
