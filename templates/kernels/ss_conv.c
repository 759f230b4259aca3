/* CONV_2D, int8: TFLM reference_integer_ops::ConvPerChannel, bit-exact.
 *
 * Pixels whose filter window lies fully inside the input use the folded bias
 * (bias + input_offset * sum(filter)), so the inner loop is a plain int8 dot product; border
 * pixels add the input offset per tap, as TFLM does (padding contributes nothing). Both give the
 * same int32 accumulator (equal modulo 2^32). Output channels are computed in pairs that share
 * the input loads. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

void ss_conv_s8(const ss_conv_params_t *p, const int8_t *input, int8_t *output) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_h = p->out_h, out_w = p->out_w, out_c = p->out_c;
    const int k_h = p->k_h, k_w = p->k_w, fic = p->filter_in_c;
    const int groups = in_c / fic;
    const int per_group = out_c / groups;
    const int filter_stride = k_h * k_w * fic; /* bytes per output channel */
    const int merge = (p->dil_w == 1 && groups == 1);
    const int32_t in_off = p->input_offset;
    const int32_t out_off = p->output_offset;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    const int32_t *mult = p->mult;
    const int32_t *shift = p->shift;
    const int pc = p->per_channel ? 1 : 0;

    for (int b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        for (int oy = 0; oy < out_h; oy++) {
            const int iy0 = oy * p->stride_h - p->pad_h;
            int ky0, ky1;
            ss_tap_range(iy0, p->dil_h, k_h, in_h, &ky0, &ky1);
            for (int ox = 0; ox < out_w; ox++) {
                const int ix0 = ox * p->stride_w - p->pad_w;
                int kx0, kx1;
                ss_tap_range(ix0, p->dil_w, k_w, in_w, &kx0, &kx1);
                int8_t *out = output + ((b * out_h + oy) * out_w + ox) * out_c;
                const int nkx = kx1 - kx0;
                if (ky1 <= ky0 || nkx <= 0) {
                    /* No tap inside the image: the accumulator is the bias alone. */
                    for (int oc = 0; oc < out_c; oc++) {
                        out[oc] = ss_requant_s8(p->bias[oc], mult[oc * pc], shift[oc * pc],
                                                out_off, act_min, act_max);
                    }
                    continue;
                }
                const int full = (ky0 == 0 && ky1 == k_h && kx0 == 0 && nkx == k_w);
                const int seg_len = merge ? nkx * fic : fic;
                const int seg_count = merge ? 1 : nkx;
                const int in_step = p->dil_w * in_c;
                const int32_t *bias = full ? p->bias_full : p->bias;
                for (int g = 0; g < groups; g++) {
                    const int8_t *in_g = in_b + (ix0 + kx0 * p->dil_w) * in_c + g * fic;
                    const int oc_end = (g + 1) * per_group;
                    int oc = g * per_group;
                    for (; oc + 1 < oc_end; oc += 2) {
                        int32_t a0 = 0, a1 = 0;
                        const int8_t *f0 = p->filter + oc * filter_stride + kx0 * fic;
                        for (int ky = ky0; ky < ky1; ky++) {
                            const int8_t *x = in_g + (iy0 + ky * p->dil_h) * in_w * in_c;
                            const int8_t *f = f0 + ky * k_w * fic;
                            for (int s = 0; s < seg_count; s++) {
                                if (full) {
                                    ss_dot2_s8(x, f, f + filter_stride, seg_len, &a0, &a1);
                                } else {
                                    ss_dot2_off_s8(x, f, f + filter_stride, seg_len, in_off, &a0,
                                                   &a1);
                                }
                                x += in_step;
                                f += fic;
                            }
                        }
                        a0 += bias[oc];
                        a1 += bias[oc + 1];
                        out[oc] = ss_requant_s8(a0, mult[oc * pc], shift[oc * pc], out_off,
                                                act_min, act_max);
                        out[oc + 1] = ss_requant_s8(a1, mult[(oc + 1) * pc], shift[(oc + 1) * pc],
                                                    out_off, act_min, act_max);
                    }
                    for (; oc < oc_end; oc++) {
                        int32_t a0 = 0;
                        const int8_t *f0 = p->filter + oc * filter_stride + kx0 * fic;
                        for (int ky = ky0; ky < ky1; ky++) {
                            const int8_t *x = in_g + (iy0 + ky * p->dil_h) * in_w * in_c;
                            const int8_t *f = f0 + ky * k_w * fic;
                            for (int s = 0; s < seg_count; s++) {
                                a0 = full ? ss_dot_s8(x, f, seg_len, a0)
                                          : ss_dot_off_s8(x, f, seg_len, in_off, a0);
                                x += in_step;
                                f += fic;
                            }
                        }
                        a0 += bias[oc];
                        out[oc] = ss_requant_s8(a0, mult[oc * pc], shift[oc * pc], out_off,
                                                act_min, act_max);
                    }
                }
            }
        }
    }
}
