/* DEPTHWISE_CONV_2D, int8: TFLM reference_integer_ops::DepthwiseConvPerChannel, bit-exact.
 *
 * Output channel oc = ic * depth_mult + m reads input channel ic. Pixels whose window lies inside
 * the input use the folded bias (bias + input_offset * sum of the channel's taps) and plain
 * products; border pixels clip the window and add the offset per tap, as TFLM does. With
 * depth_mult == 1 four channels are computed together (accumulators in registers, taps outer). */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

typedef struct {
    const int8_t *x;  /* input at the first valid tap, channel 0 */
    const int8_t *f;  /* filter at the first valid tap, channel 0 */
    int ny, nx;       /* valid taps */
    int x_row, x_col; /* input steps between taps (bytes) */
    int f_row, f_col; /* filter steps between taps (bytes) */
} ss_dw_window_t;

/* Four adjacent channels starting at c (depth_mult == 1); with_off adds the input offset. */
static inline void ss_dw_quad(const ss_dw_window_t *w, int c, int32_t in_off, int with_off,
                              int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *xr = w->x + c;
    const int8_t *fr = w->f + c;
#if SS_SIMD
    /* channels 0 and 2 in the even halfwords, 1 and 3 in the odd ones */
    const uint32_t off2 = ((uint32_t)in_off << 16) | ((uint32_t)in_off & 0xFFFFu);
#endif
    for (int ky = 0; ky < w->ny; ky++) {
        const int8_t *x = xr;
        const int8_t *f = fr;
        for (int kx = 0; kx < w->nx; kx++) {
#if SS_SIMD
            const uint32_t xw = ss_read4(x);
            const uint32_t fw = ss_read4(f);
            uint32_t xe = ss_sxtb16(xw), xo = ss_sxtb16_ror8(xw);
            if (with_off) {
                xe = ss_sadd16(xe, off2);
                xo = ss_sadd16(xo, off2);
            }
            const uint32_t fe = ss_sxtb16(fw), fo = ss_sxtb16_ror8(fw);
            a0 = ss_smlabb(xe, fe, a0);
            a2 = ss_smlatt(xe, fe, a2);
            a1 = ss_smlabb(xo, fo, a1);
            a3 = ss_smlatt(xo, fo, a3);
#else
            if (with_off) {
                a0 += ((int32_t)x[0] + in_off) * f[0];
                a1 += ((int32_t)x[1] + in_off) * f[1];
                a2 += ((int32_t)x[2] + in_off) * f[2];
                a3 += ((int32_t)x[3] + in_off) * f[3];
            } else {
                a0 += (int32_t)x[0] * f[0];
                a1 += (int32_t)x[1] * f[1];
                a2 += (int32_t)x[2] * f[2];
                a3 += (int32_t)x[3] * f[3];
            }
#endif
            x += w->x_col;
            f += w->f_col;
        }
        xr += w->x_row;
        fr += w->f_row;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* One output channel oc reading input channel ic. */
static inline int32_t ss_dw_one(const ss_dw_window_t *w, int ic, int oc, int32_t in_off,
                                int with_off, int32_t acc) {
    const int8_t *xr = w->x + ic;
    const int8_t *fr = w->f + oc;
    for (int ky = 0; ky < w->ny; ky++) {
        const int8_t *x = xr;
        const int8_t *f = fr;
        for (int kx = 0; kx < w->nx; kx++) {
            acc += ((int32_t)*x + (with_off ? in_off : 0)) * (int32_t)*f;
            x += w->x_col;
            f += w->f_col;
        }
        xr += w->x_row;
        fr += w->f_row;
    }
    return acc;
}

static void ss_dw_pixel(const ss_dwconv_params_t *p, const ss_dw_window_t *w, int with_off,
                        int8_t *out) {
    const int out_c = p->out_c, dm = p->depth_mult;
    const int32_t in_off = p->input_offset;
    const int32_t out_off = p->output_offset;
    const int32_t act_min = p->act_min, act_max = p->act_max;
    const int32_t *bias = with_off ? p->bias : p->bias_full;
    const int32_t *mult = p->mult;
    const int32_t *shift = p->shift;
    const int pc = p->per_channel ? 1 : 0;
    int oc = 0;
    if (dm == 1) {
        for (; oc + 3 < out_c; oc += 4) {
            int32_t acc[4] = {bias[oc], bias[oc + 1], bias[oc + 2], bias[oc + 3]};
            if (with_off) {
                ss_dw_quad(w, oc, in_off, 1, acc);
            } else {
                ss_dw_quad(w, oc, 0, 0, acc);
            }
            for (int i = 0; i < 4; i++) {
                out[oc + i] = ss_requant_s8(acc[i], mult[(oc + i) * pc], shift[(oc + i) * pc],
                                            out_off, act_min, act_max);
            }
        }
    }
    for (; oc < out_c; oc++) {
        const int32_t acc = with_off ? ss_dw_one(w, oc / dm, oc, in_off, 1, bias[oc])
                                     : ss_dw_one(w, oc / dm, oc, 0, 0, bias[oc]);
        out[oc] = ss_requant_s8(acc, mult[oc * pc], shift[oc * pc], out_off, act_min, act_max);
    }
}

void ss_dwconv_s8(const ss_dwconv_params_t *p, const int8_t *input, int8_t *output) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_h = p->out_h, out_w = p->out_w, out_c = p->out_c;
    const int k_h = p->k_h, k_w = p->k_w;
    ss_dw_window_t w;
    w.x_col = p->dil_w * in_c;
    w.x_row = p->dil_h * in_w * in_c;
    w.f_col = out_c;
    w.f_row = k_w * out_c;
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
                w.ny = ky1 > ky0 ? ky1 - ky0 : 0;
                w.nx = kx1 > kx0 ? kx1 - kx0 : 0;
                if (w.ny == 0 || w.nx == 0) {
                    w.ny = 0;
                    w.nx = 0;
                    w.x = in_b;
                    w.f = p->filter;
                } else {
                    w.x = in_b + (iy0 + ky0 * p->dil_h) * in_w * in_c +
                          (ix0 + kx0 * p->dil_w) * in_c;
                    w.f = p->filter + (ky0 * k_w + kx0) * out_c;
                }
                const int full = (ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w);
                ss_dw_pixel(p, &w, !full, out);
            }
        }
    }
}
