/* AVERAGE_POOL_2D and MAX_POOL_2D, int8: TFLM reference_integer_ops::AveragePool / MaxPool,
 * bit-exact (windows clipped to the image; the average divides by the clipped tap count and
 * rounds half away from zero). */
#include "ss_fixedpoint.h"
#include "ss_kernels.h"

static void ss_pool_window(const ss_pool_params_t *p, int oy, int ox, int *y0, int *y1, int *x0,
                           int *x1, int *iy, int *ix) {
    const int in_y = oy * p->stride_h - p->pad_h;
    const int in_x = ox * p->stride_w - p->pad_w;
    int a = in_y < 0 ? -in_y : 0;
    int e = p->in_h - in_y;
    *y0 = a;
    *y1 = e < p->f_h ? e : p->f_h;
    a = in_x < 0 ? -in_x : 0;
    e = p->in_w - in_x;
    *x0 = a;
    *x1 = e < p->f_w ? e : p->f_w;
    *iy = in_y;
    *ix = in_x;
}

void ss_avgpool_s8(const ss_pool_params_t *p, const int8_t *input, int8_t *output) {
    const int c_n = p->channels;
    const int row = p->in_w * c_n;
    for (int b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + b * p->in_h * row;
        for (int oy = 0; oy < p->out_h; oy++) {
            for (int ox = 0; ox < p->out_w; ox++) {
                int y0, y1, x0, x1, iy, ix;
                ss_pool_window(p, oy, ox, &y0, &y1, &x0, &x1, &iy, &ix);
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * c_n;
                const int count = (y1 - y0) * (x1 - x0);
                if (y1 <= y0 || x1 <= x0) {
                    /* TFLM fails the whole operator here; the generator rejects such models. */
                    continue;
                }
                const int8_t *base = in_b + (iy + y0) * row + (ix + x0) * c_n;
                for (int c = 0; c < c_n; c++) {
                    int32_t acc = 0;
                    const int8_t *r = base + c;
                    for (int y = y0; y < y1; y++) {
                        const int8_t *q = r;
                        for (int x = x0; x < x1; x++) {
                            acc += *q;
                            q += c_n;
                        }
                        r += row;
                    }
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    out[c] = (int8_t)ss_clamp(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void ss_maxpool_s8(const ss_pool_params_t *p, const int8_t *input, int8_t *output) {
    const int c_n = p->channels;
    const int row = p->in_w * c_n;
    for (int b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + b * p->in_h * row;
        for (int oy = 0; oy < p->out_h; oy++) {
            for (int ox = 0; ox < p->out_w; ox++) {
                int y0, y1, x0, x1, iy, ix;
                ss_pool_window(p, oy, ox, &y0, &y1, &x0, &x1, &iy, &ix);
                int8_t *out = output + ((b * p->out_h + oy) * p->out_w + ox) * c_n;
                const int8_t *base = in_b + (iy + y0) * row + (ix + x0) * c_n;
                for (int c = 0; c < c_n; c++) {
                    int32_t m = -128;
                    const int8_t *r = base + c;
                    for (int y = y0; y < y1; y++) {
                        const int8_t *q = r;
                        for (int x = x0; x < x1; x++) {
                            m = *q > m ? *q : m;
                            q += c_n;
                        }
                        r += row;
                    }
                    out[c] = (int8_t)ss_clamp(m, p->act_min, p->act_max);
                }
            }
        }
    }
}
