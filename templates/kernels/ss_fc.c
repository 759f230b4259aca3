/* FULLY_CONNECTED, int8: TFLM reference_integer_ops::FullyConnected (per-tensor) and
 * FullyConnectedPerChannel, bit-exact. The input offset is folded into the bias at generation
 * time (bias + input_offset * sum(weights[oc])), so the inner loop is a plain dot product; two
 * output rows share the input loads. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

void ss_fc_s8(const ss_fc_params_t *p, const int8_t *input, int8_t *output) {
    const int depth = (int)p->accum_depth;
    const int out_c = (int)p->out_c;
    const int pc = p->per_channel ? 1 : 0;
    for (uint32_t b = 0; b < p->batches; b++) {
        const int8_t *x = input + b * (uint32_t)depth;
        int8_t *out = output + b * (uint32_t)out_c;
        int oc = 0;
        for (; oc + 1 < out_c; oc += 2) {
            int32_t a0 = p->bias_full[oc];
            int32_t a1 = p->bias_full[oc + 1];
            const int8_t *w0 = p->weights + oc * depth;
            ss_dot2_s8(x, w0, w0 + depth, depth, &a0, &a1);
            out[oc] = ss_requant_s8(a0, p->mult[oc * pc], p->shift[oc * pc], p->output_offset,
                                    p->act_min, p->act_max);
            out[oc + 1] = ss_requant_s8(a1, p->mult[(oc + 1) * pc], p->shift[(oc + 1) * pc],
                                        p->output_offset, p->act_min, p->act_max);
        }
        for (; oc < out_c; oc++) {
            int32_t a0 = ss_dot_s8(x, p->weights + oc * depth, depth, p->bias_full[oc]);
            out[oc] = ss_requant_s8(a0, p->mult[oc * pc], p->shift[oc * pc], p->output_offset,
                                    p->act_min, p->act_max);
        }
    }
}
