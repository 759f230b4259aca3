/* MEAN, int8: TFLM reference_ops::QuantizedMeanOrSum (mean), bit-exact. The generator splits the
 * (up to 4-D) input into kept and reduced dimensions and folds 1/count into the multiplier
 * exactly as TFLM does; each output is the integer sum of its window, less the zero point
 * times the count, requantized. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"

void ss_mean_s8(const ss_mean_params_t *p, const int8_t *input, int8_t *output) {
    uint32_t o = 0;
    for (uint32_t a0 = 0; a0 < p->out_ext[0]; a0++) {
        for (uint32_t a1 = 0; a1 < p->out_ext[1]; a1++) {
            for (uint32_t a2 = 0; a2 < p->out_ext[2]; a2++) {
                for (uint32_t a3 = 0; a3 < p->out_ext[3]; a3++) {
                    const int8_t *base = input + a0 * p->out_stride[0] + a1 * p->out_stride[1] +
                                         a2 * p->out_stride[2] + a3 * p->out_stride[3];
                    int32_t sum = 0;
                    for (uint32_t r0 = 0; r0 < p->red_ext[0]; r0++) {
                        const int8_t *b0 = base + r0 * p->red_stride[0];
                        for (uint32_t r1 = 0; r1 < p->red_ext[1]; r1++) {
                            const int8_t *b1 = b0 + r1 * p->red_stride[1];
                            for (uint32_t r2 = 0; r2 < p->red_ext[2]; r2++) {
                                const int8_t *b2 = b1 + r2 * p->red_stride[2];
                                for (uint32_t r3 = 0; r3 < p->red_ext[3]; r3++) {
                                    sum += b2[r3 * p->red_stride[3]];
                                }
                            }
                        }
                    }
                    const int32_t v =
                        ss_mbqm(ss_wadd(sum, -p->zp_times_count), p->mult, p->shift) +
                        p->output_offset;
                    output[o++] = (int8_t)ss_clamp(v, -128, 127);
                }
            }
        }
    }
}
