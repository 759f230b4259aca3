/* CONV_2D, int8: TFLM reference_integer_ops::ConvPerChannel, bit-exact.
 *
 * The accumulator of an output is sum(filter * (input + input_offset)) + bias. With the folded
 * bias (bias + input_offset * sum(filter), prepared by the generator) it is
 * sum(filter * input) + bias_full, equal modulo 2^32, so the inner loops are plain int8 dot
 * products. Padding must then contribute filter * (-input_offset): patches are gathered
 * (im2col) with the input zero point in the padding, which makes every pixel "interior".
 *
 * Paths (same results):
 *   - 1x1 filters (any stride): the input pixel is the patch, nothing is copied;
 *   - patches up to SS_CONV_PATCH_MAX bytes (groups == 1): gathered into a stack buffer;
 *   - anything else: taps clipped to the image, the offset added per tap (TFLM's loop order).
 * The first two compute 2 pixels x 2 output channels per inner loop (4 accumulators sharing
 * the loads). */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

#ifndef SS_CONV_PATCH_MAX
#define SS_CONV_PATCH_MAX 256
#endif

/* All output channels of two pixels whose patches (k bytes each) are at x0 and x1 (x1 may equal
 * x0 when there is only one pixel left; o1 is then NULL). */
static void ss_conv_pixels(const ss_conv_params_t *p, const int8_t *x0, const int8_t *x1, int k,
                           int8_t *o0, int8_t *o1) {
    const int out_c = p->out_c;
    const int8_t *w = p->filter;
    const int32_t *bias = p->bias_full;
    const int32_t *mult = p->mult;
    const int32_t *shift = p->shift;
    const int32_t out_off = p->output_offset;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    const int pc = p->per_channel ? 1 : 0;
    int oc = 0;
    for (; oc + 1 < out_c; oc += 2) {
        const int8_t *w0 = w + oc * k;
        const int8_t *w1 = w0 + k;
        int32_t acc[4] = {bias[oc], bias[oc + 1], bias[oc], bias[oc + 1]};
        ss_mac_2x2_s8(x0, x1, w0, w1, k, acc);
        const int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
        const int32_t m0 = mult[oc * pc], s0 = shift[oc * pc];
        const int32_t m1 = mult[(oc + 1) * pc], s1 = shift[(oc + 1) * pc];
        o0[oc] = ss_requant_s8(a00, m0, s0, out_off, act_min, act_max);
        o0[oc + 1] = ss_requant_s8(a01, m1, s1, out_off, act_min, act_max);
        if (o1 != 0) {
            o1[oc] = ss_requant_s8(a10, m0, s0, out_off, act_min, act_max);
            o1[oc + 1] = ss_requant_s8(a11, m1, s1, out_off, act_min, act_max);
        }
    }
    if (oc < out_c) {
        const int8_t *w0 = w + oc * k;
        const int32_t a0 = ss_dot_s8(x0, w0, k, bias[oc]);
        const int32_t a1 = ss_dot_s8(x1, w0, k, bias[oc]);
        o0[oc] = ss_requant_s8(a0, mult[oc * pc], shift[oc * pc], out_off, act_min, act_max);
        if (o1 != 0) {
            o1[oc] = ss_requant_s8(a1, mult[oc * pc], shift[oc * pc], out_off, act_min, act_max);
        }
    }
}

/* Gather the patch of output pixel (oy, ox) into col, the zero point in the padding. */
static void ss_conv_patch(const ss_conv_params_t *p, const int8_t *in_b, int oy, int ox,
                          int8_t *col) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int k_h = p->k_h, k_w = p->k_w;
    const int8_t zp = (int8_t)(-p->input_offset);
    const int iy0 = oy * p->stride_h - p->pad_h;
    const int ix0 = ox * p->stride_w - p->pad_w;
    for (int ky = 0; ky < k_h; ky++) {
        const int iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= in_h) {
            for (int i = 0; i < k_w * in_c; i++) {
                col[i] = zp;
            }
            col += k_w * in_c;
            continue;
        }
        const int8_t *row = in_b + iy * in_w * in_c;
        for (int kx = 0; kx < k_w; kx++) {
            const int ix = ix0 + kx * p->dil_w;
            if (ix < 0 || ix >= in_w) {
                for (int c = 0; c < in_c; c++) {
                    col[c] = zp;
                }
            } else {
                const int8_t *src = row + ix * in_c;
                for (int c = 0; c < in_c; c++) {
                    col[c] = src[c];
                }
            }
            col += in_c;
        }
    }
}

/* The general path: taps clipped to the image, TFLM's arithmetic per tap. */
static void ss_conv_generic(const ss_conv_params_t *p, const int8_t *input, int8_t *output) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_h = p->out_h, out_w = p->out_w, out_c = p->out_c;
    const int k_h = p->k_h, k_w = p->k_w, fic = p->filter_in_c;
    const int groups = in_c / fic;
    const int per_group = out_c / groups;
    const int filter_stride = k_h * k_w * fic;
    const int32_t in_off = p->input_offset;
    const int32_t out_off = p->output_offset;
    const int32_t act_min = p->act_min, act_max = p->act_max;
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
                for (int oc = 0; oc < out_c; oc++) {
                    const int g = oc / per_group;
                    const int8_t *f0 = p->filter + oc * filter_stride;
                    int32_t acc = 0;
                    for (int ky = ky0; ky < ky1; ky++) {
                        const int8_t *xr = in_b + (iy0 + ky * p->dil_h) * in_w * in_c + g * fic;
                        for (int kx = kx0; kx < kx1; kx++) {
                            const int8_t *x = xr + (ix0 + kx * p->dil_w) * in_c;
                            acc = ss_dot_off_s8(x, f0 + (ky * k_w + kx) * fic, fic, in_off, acc);
                        }
                    }
                    acc += p->bias[oc];
                    out[oc] = ss_requant_s8(acc, p->mult[oc * pc], p->shift[oc * pc], out_off,
                                            act_min, act_max);
                }
            }
        }
    }
}

void ss_conv_s8(const ss_conv_params_t *p, const int8_t *input, int8_t *output) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_h = p->out_h, out_w = p->out_w, out_c = p->out_c;
    const int k = p->k_h * p->k_w * p->filter_in_c;
    const int pointwise = p->k_h == 1 && p->k_w == 1 && p->filter_in_c == in_c;
    if (!pointwise && (p->filter_in_c != in_c || k > SS_CONV_PATCH_MAX)) {
        ss_conv_generic(p, input, output);
        return;
    }
    int8_t col[2][SS_CONV_PATCH_MAX];
    const int pixels = out_h * out_w;
    for (int b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        int8_t *out_b = output + b * pixels * out_c;
        int oy = 0, ox = 0;
        for (int px = 0; px < pixels; px += 2) {
            const int two = px + 1 < pixels;
            const int oy1 = ox + 1 < out_w ? oy : oy + 1;
            const int ox1 = ox + 1 < out_w ? ox + 1 : 0;
            const int8_t *x0;
            const int8_t *x1;
            if (pointwise) {
                x0 = in_b + (oy * p->stride_h * in_w + ox * p->stride_w) * in_c;
                x1 = two ? in_b + (oy1 * p->stride_h * in_w + ox1 * p->stride_w) * in_c : x0;
            } else {
                ss_conv_patch(p, in_b, oy, ox, col[0]);
                if (two) {
                    ss_conv_patch(p, in_b, oy1, ox1, col[1]);
                }
                x0 = col[0];
                x1 = two ? col[1] : col[0];
            }
            ss_conv_pixels(p, x0, x1, k, out_b + px * out_c,
                           two ? out_b + (px + 1) * out_c : (int8_t *)0);
            /* advance two pixels */
            oy = oy1;
            ox = ox1 + 1;
            if (ox >= out_w) {
                ox = 0;
                oy++;
            }
        }
    }
}
