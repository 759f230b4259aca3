/* PRELU, int8: TFLM reference_ops::BroadcastPrelu4DSlow, bit-exact. The broadcasting of the
 * input and alpha is resolved by the generator into two index maps. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"

void ss_prelu_s8(const ss_prelu_params_t *p, const int8_t *input, const uint32_t *map_in,
                 const int8_t *alpha, const uint32_t *map_alpha, int8_t *output) {
    for (uint32_t i = 0; i < p->size; i++) {
        const int32_t x = p->input_offset + input[map_in[i]];
        int32_t out;
        if (x >= 0) {
            out = ss_mbqm(x, p->mult1, p->shift1);
        } else {
            const int32_t a = p->alpha_offset + alpha[map_alpha[i]];
            out = ss_mbqm(x * a, p->mult2, p->shift2);
        }
        output[i] = (int8_t)ss_clamp(out + p->output_offset, -128, 127);
    }
}
