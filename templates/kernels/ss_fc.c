/* FULLY_CONNECTED, int8: TFLM reference_integer_ops::FullyConnected (per-tensor) and
 * FullyConnectedPerChannel, bit-exact. The input offset is folded into the channel records'
 * start (bias + input_offset * sum(weights[oc])), so the inner loop is a plain dot product; two
 * output rows share the input loads. Never runs in place (every output reads the whole row). */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

SS_SPECIALIZE void ss_fc_run(const ss_fc_params_t *p, const int8_t *input, int8_t *output,
                             int fast, int full) {
    const int depth = (int)p->accum_depth;
    const int out_c = (int)p->out_c;
    const int32_t zp = p->output_offset, lo = p->act_min, hi = p->act_max;
    for (uint32_t b = 0; b < p->batches; b++) {
        const int8_t *x = input + b * (uint32_t)depth;
        int8_t *out = output + b * (uint32_t)out_c;
        const int32_t *rec = p->chan;
        const int8_t *w0 = p->weights;
        int oc = 0;
        for (; oc + 1 < out_c; oc += 2) {
            int32_t a0 = rec[0];
            int32_t a1 = rec[4];
            ss_dot2_s8(x, w0, w0 + depth, depth, &a0, &a1);
            out[oc] = ss_rq(a0, rec, fast, full, zp, lo, hi);
            out[oc + 1] = ss_rq(a1, rec + 4, fast, full, zp, lo, hi);
            rec += 8;
            w0 += 2 * depth;
        }
        for (; oc < out_c; oc++) {
            const int32_t a0 = ss_dot_s8(x, w0, depth, rec[0]);
            out[oc] = ss_rq(a0, rec, fast, full, zp, lo, hi);
            rec += 4;
            w0 += depth;
        }
    }
}

void ss_fc_s8(const ss_fc_params_t *p, const int8_t *input, int8_t *output) {
    if (p->rq_fast && p->full_range) {
        ss_fc_run(p, input, output, 1, 1);
    } else {
        ss_fc_run(p, input, output, p->rq_fast, p->full_range);
    }
}
