/* DEPTHWISE_CONV_2D, int8: TFLM reference_integer_ops::DepthwiseConvPerChannel, bit-exact.
 * Output channel oc = ic * depth_mult + m reads input channel ic. Interior pixels use the folded
 * bias (bias + input_offset * sum of the channel's taps), border pixels add the offset per tap. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

void ss_dwconv_s8(const ss_dwconv_params_t *p, const int8_t *input, int8_t *output) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_h = p->out_h, out_w = p->out_w, out_c = p->out_c;
    const int dm = p->depth_mult;
    const int k_h = p->k_h, k_w = p->k_w;
    const int32_t in_off = p->input_offset;
    const int32_t out_off = p->output_offset;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    const int pc = p->per_channel ? 1 : 0;
    const int row_stride = in_w * in_c;
    const int x_step = p->dil_w * in_c;   /* input step between taps along x */
    const int f_row = k_w * out_c;        /* filter step between taps along y */

    for (int b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + b * in_h * row_stride;
        for (int oy = 0; oy < out_h; oy++) {
            const int iy0 = oy * p->stride_h - p->pad_h;
            int ky0, ky1;
            ss_tap_range(iy0, p->dil_h, k_h, in_h, &ky0, &ky1);
            for (int ox = 0; ox < out_w; ox++) {
                const int ix0 = ox * p->stride_w - p->pad_w;
                int kx0, kx1;
                ss_tap_range(ix0, p->dil_w, k_w, in_w, &kx0, &kx1);
                int8_t *out = output + ((b * out_h + oy) * out_w + ox) * out_c;
                const int full = (ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w);
                const int32_t *bias = full ? p->bias_full : p->bias;
                const int8_t *x_base =
                    in_b + (iy0 + ky0 * p->dil_h) * row_stride + (ix0 + kx0 * p->dil_w) * in_c;
                const int8_t *f_base = p->filter + ky0 * f_row + kx0 * out_c;
                for (int ic = 0; ic < in_c; ic++) {
                    for (int m = 0; m < dm; m++) {
                        const int oc = ic * dm + m;
                        int32_t acc = 0;
                        const int8_t *xr = x_base + ic;
                        const int8_t *fr = f_base + oc;
                        for (int ky = ky0; ky < ky1; ky++) {
                            const int8_t *xp = xr;
                            const int8_t *fp = fr;
                            if (full) {
                                for (int kx = kx0; kx < kx1; kx++) {
                                    acc += (int32_t)*xp * (int32_t)*fp;
                                    xp += x_step;
                                    fp += out_c;
                                }
                            } else {
                                for (int kx = kx0; kx < kx1; kx++) {
                                    acc += ((int32_t)*xp + in_off) * (int32_t)*fp;
                                    xp += x_step;
                                    fp += out_c;
                                }
                            }
                            xr += p->dil_h * row_stride;
                            fr += f_row;
                        }
                        acc += bias[oc];
                        out[oc] = ss_requant_s8(acc, p->mult[oc * pc], p->shift[oc * pc], out_off,
                                                act_min, act_max);
                    }
                }
            }
        }
    }
}
