/* DEPTHWISE_CONV_2D, int8: TFLM reference_integer_ops::DepthwiseConvPerChannel, bit-exact.
 *
 * Output channel oc = ic * depth_mult + m reads input channel ic. The accumulator starts at the
 * folded bias (bias + input_offset * sum of the channel's taps); a tap outside the image then
 * contributes filter * input zero point, which equals TFLM's clipped window with the offset
 * added per tap (modulo 2^32, like every int32 sum here).
 *
 * Order (generator/schedule.py relies on it for in-place planning): output pixels in order;
 * per pixel the output channels in chunks - four at a time while depth_mult == 1 (then single
 * ones) - each chunk reading its input channels over the window and then writing its outputs.
 *
 * The filter comes in that chunk order ("tap-major per chunk": chunk [a, b) holds its taps'
 * b - a bytes after each other at filter + a * taps), so a chunk of four reads one word per tap.
 * On DSP cores the four channels are two SXTB16 halves of that word (SMLABB/SMLATT); interior
 * 3x3 windows are unrolled. */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

/* acc[0..3] += x[0..3] * f[0..3] for one tap of four channels (words xw and fw). */
static inline void ss_dw_tap4(uint32_t xw, uint32_t fw, int32_t *a0, int32_t *a1, int32_t *a2,
                              int32_t *a3) {
#if SS_SIMD
    const uint32_t xe = ss_sxtb16(xw), xo = ss_sxtb16_ror8(xw);
    const uint32_t fe = ss_sxtb16(fw), fo = ss_sxtb16_ror8(fw);
    *a0 = ss_smlabb(xe, fe, *a0);
    *a2 = ss_smlatt(xe, fe, *a2);
    *a1 = ss_smlabb(xo, fo, *a1);
    *a3 = ss_smlatt(xo, fo, *a3);
#else
    *a0 += (int32_t)(int8_t)(xw & 0xFFu) * (int32_t)(int8_t)(fw & 0xFFu);
    *a1 += (int32_t)(int8_t)((xw >> 8) & 0xFFu) * (int32_t)(int8_t)((fw >> 8) & 0xFFu);
    *a2 += (int32_t)(int8_t)((xw >> 16) & 0xFFu) * (int32_t)(int8_t)((fw >> 16) & 0xFFu);
    *a3 += (int32_t)(int8_t)(xw >> 24) * (int32_t)(int8_t)(fw >> 24);
#endif
}

/* Four channels over an interior 3x3 window (dilation 1): x at the top-left tap, columns xc and
 * rows xr bytes apart; f: the chunk's 9 filter words. */
static inline void ss_dw3x3_quad(const int8_t *x, int xc, int xr, const int8_t *f, int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *r = x;
    for (int ky = 0; ky < 3; ky++) {
        ss_dw_tap4(ss_read4(r), ss_read4(f), &a0, &a1, &a2, &a3);
        ss_dw_tap4(ss_read4(r + xc), ss_read4(f + 4), &a0, &a1, &a2, &a3);
        ss_dw_tap4(ss_read4(r + 2 * xc), ss_read4(f + 8), &a0, &a1, &a2, &a3);
        r += xr;
        f += 12;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Four channels over an interior window of any size. */
static inline void ss_dw_quad(const int8_t *x, int xc, int xr, int k_h, int k_w, const int8_t *f,
                              int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int ky = 0; ky < k_h; ky++) {
        const int8_t *r = x + ky * xr;
        for (int kx = 0; kx < k_w; kx++) {
            ss_dw_tap4(ss_read4(r), ss_read4(f), &a0, &a1, &a2, &a3);
            r += xc;
            f += 4;
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

typedef struct {
    const int8_t *in_b; /* the batch's input */
    int iy0, ix0;       /* window origin (may lie outside the image) */
} ss_dw_win_t;

/* Four channels from input channel c over a window that crosses the border: taps outside the
 * image read the zero point (zp4: its byte four times). */
static inline void ss_dw_quad_border(const ss_dwconv_params_t *p, const ss_dw_win_t *w, int c,
                                     uint32_t zp4, const int8_t *f, int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int ky = 0; ky < p->k_h; ky++) {
        const int iy = w->iy0 + ky * p->dil_h;
        const int row_ok = iy >= 0 && iy < p->in_h;
        for (int kx = 0; kx < p->k_w; kx++) {
            const int ix = w->ix0 + kx * p->dil_w;
            uint32_t xw = zp4;
            if (row_ok && ix >= 0 && ix < p->in_w) {
                xw = ss_read4(w->in_b + (iy * p->in_w + ix) * p->in_c + c);
            }
            ss_dw_tap4(xw, ss_read4(f), &a0, &a1, &a2, &a3);
            f += 4;
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* One output channel reading input channel ic, any window. */
static inline int32_t ss_dw_one(const ss_dwconv_params_t *p, const ss_dw_win_t *w, int ic,
                                int32_t zp, const int8_t *f, int32_t acc) {
    for (int ky = 0; ky < p->k_h; ky++) {
        const int iy = w->iy0 + ky * p->dil_h;
        const int row_ok = iy >= 0 && iy < p->in_h;
        for (int kx = 0; kx < p->k_w; kx++) {
            const int ix = w->ix0 + kx * p->dil_w;
            int32_t x = zp;
            if (row_ok && ix >= 0 && ix < p->in_w) {
                x = w->in_b[(iy * p->in_w + ix) * p->in_c + ic];
            }
            acc += x * (int32_t)*f++;
        }
    }
    return acc;
}

static inline void ss_dw_run(const ss_dwconv_params_t *p, const int8_t *input, int8_t *output,
                             int fast, int full) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_h = p->out_h, out_w = p->out_w, out_c = p->out_c;
    const int k_h = p->k_h, k_w = p->k_w, taps = k_h * k_w, dm = p->depth_mult;
    const int xc = p->dil_w * in_c, xr = p->dil_h * in_w * in_c;
    const int32_t zp = -p->input_offset;
    const uint32_t zp4 = ((uint32_t)zp & 0xFFu) * 0x01010101u;
    const int quads = dm == 1 ? out_c / 4 : 0;
    const int is3x3 = k_h == 3 && k_w == 3 && p->dil_h == 1 && p->dil_w == 1;
    const int32_t ozp = p->output_offset, lo = p->act_min, hi = p->act_max;
    int8_t *out = output;
    for (int b = 0; b < p->batches; b++) {
        ss_dw_win_t w;
        w.in_b = input + b * in_h * in_w * in_c;
        for (int oy = 0; oy < out_h; oy++) {
            w.iy0 = oy * p->stride_h - p->pad_h;
            const int rows_in = w.iy0 >= 0 && w.iy0 + (k_h - 1) * p->dil_h < in_h;
            for (int ox = 0; ox < out_w; ox++) {
                w.ix0 = ox * p->stride_w - p->pad_w;
                const int inside =
                    rows_in && w.ix0 >= 0 && w.ix0 + (k_w - 1) * p->dil_w < in_w;
                const int8_t *x = inside ? w.in_b + (w.iy0 * in_w + w.ix0) * in_c : w.in_b;
                const int8_t *f = p->filter;
                const int32_t *rec = p->chan;
                int oc = 0;
                for (int q = 0; q < quads; q++) {
                    int32_t acc[4] = {rec[0], rec[4], rec[8], rec[12]};
                    if (!inside) {
                        ss_dw_quad_border(p, &w, oc, zp4, f, acc);
                    } else if (is3x3) {
                        ss_dw3x3_quad(x + oc, xc, xr, f, acc);
                    } else {
                        ss_dw_quad(x + oc, xc, xr, k_h, k_w, f, acc);
                    }
                    out[0] = ss_rq(acc[0], rec, fast, full, ozp, lo, hi);
                    out[1] = ss_rq(acc[1], rec + 4, fast, full, ozp, lo, hi);
                    out[2] = ss_rq(acc[2], rec + 8, fast, full, ozp, lo, hi);
                    out[3] = ss_rq(acc[3], rec + 12, fast, full, ozp, lo, hi);
                    out += 4;
                    oc += 4;
                    f += 4 * taps;
                    rec += 16;
                }
                for (; oc < out_c; oc++) {
                    const int32_t acc = ss_dw_one(p, &w, oc / dm, zp, f, rec[0]);
                    *out++ = ss_rq(acc, rec, fast, full, ozp, lo, hi);
                    f += taps;
                    rec += 4;
                }
            }
        }
    }
}

void ss_dwconv_s8(const ss_dwconv_params_t *p, const int8_t *input, int8_t *output) {
    if (p->rq_fast && p->full_range) {
        ss_dw_run(p, input, output, 1, 1);
    } else {
        ss_dw_run(p, input, output, p->rq_fast, p->full_range);
    }
}
