/* SUB, int8: TFLM reference_ops::Sub / BroadcastQuantSubSlow (the ADD parameters, the scaled
 * inputs subtracted), bit-exact. Broadcasting is a walk
 * over the (up to 4-D) output with per-input strides, 0 along broadcast dimensions. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

static inline int8_t ss_sub_one(const ss_add_params_t *p, int32_t x, int32_t y) {
    const int32_t a = (int32_t)((uint32_t)(p->input1_offset + x) << p->left_shift);
    const int32_t b = (int32_t)((uint32_t)(p->input2_offset + y) << p->left_shift);
    const int32_t sa = ss_mbqm_lt1(a, p->input1_mult, p->input1_shift);
    const int32_t sb = ss_mbqm_lt1(b, p->input2_mult, p->input2_shift);
    const int32_t out =
        ss_mbqm_lt1(sa - sb, p->output_mult, p->output_shift) + p->output_offset;
    return (int8_t)ss_clamp(out, p->act_min, p->act_max);
}

void ss_sub_s8(const ss_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output) {
    SS_BINARY_WALK(ss_sub_one, p, in1, in2, output);
}
