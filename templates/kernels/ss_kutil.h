/* Small helpers shared by the kernels: filter-window clipping and int8 dot products. The dot
 * products have a packed variant (SS_SIMD, see ss_simd.h) and the plain scalar loop; both give
 * the same int32 sums. */
#ifndef SS_KUTIL_H
#define SS_KUTIL_H

#include <stdint.h>

#include "ss_simd.h"

/* The output walk every broadcasting binary kernel shares (ADD, SUB, MUL): elementwise over
 * p->size outputs, or over the (up to 4-D) output in order with per-input element strides (0
 * along a broadcast dimension). ONE(p, x, y) computes one int8 output; p is a parameter block
 * with size, broadcast, dims[4], stride1[4] and stride2[4]. */
#define SS_BINARY_WALK(ONE, p, in1, in2, output)                                                \
    do {                                                                                          \
        if (!(p)->broadcast) {                                                                    \
            for (uint32_t i_ = 0; i_ < (p)->size; i_++) {                                         \
                (output)[i_] = ONE((p), (in1)[i_], (in2)[i_]);                                    \
            }                                                                                     \
            break;                                                                                \
        }                                                                                         \
        uint32_t o_ = 0;                                                                          \
        for (uint32_t d0 = 0; d0 < (p)->dims[0]; d0++) {                                          \
            for (uint32_t d1 = 0; d1 < (p)->dims[1]; d1++) {                                      \
                for (uint32_t d2 = 0; d2 < (p)->dims[2]; d2++) {                                  \
                    const uint32_t i1 =                                                           \
                        d0 * (p)->stride1[0] + d1 * (p)->stride1[1] + d2 * (p)->stride1[2];       \
                    const uint32_t i2 =                                                           \
                        d0 * (p)->stride2[0] + d1 * (p)->stride2[1] + d2 * (p)->stride2[2];       \
                    for (uint32_t d3 = 0; d3 < (p)->dims[3]; d3++) {                              \
                        (output)[o_++] = ONE((p), (in1)[i1 + d3 * (p)->stride1[3]],               \
                                             (in2)[i2 + d3 * (p)->stride2[3]]);                   \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
        }                                                                                         \
    } while (0)

/* The taps k in [0, k_size) whose input coordinate origin + k * dilation lies in [0, size):
 * returns them as the half-open range [*k0, *k1) (empty when *k0 >= *k1). */
static inline void ss_tap_range(int origin, int dilation, int k_size, int size, int *k0, int *k1) {
    int lo = 0;
    if (origin < 0) {
        lo = (-origin + dilation - 1) / dilation;
    }
    int hi = 0;
    const int last = size - 1 - origin; /* largest k * dilation still inside */
    if (last >= 0) {
        hi = last / dilation + 1;
    }
    if (hi > k_size) {
        hi = k_size;
    }
    *k0 = lo;
    *k1 = hi;
}

/* acc + sum x[i] * f[i] */
static inline int32_t ss_dot_s8(const int8_t *x, const int8_t *f, int n, int32_t acc) {
    int i = 0;
#if SS_SIMD
    for (; i + 4 <= n; i += 4) {
        const uint32_t xw = ss_read4(x + i);
        const uint32_t fw = ss_read4(f + i);
        acc = ss_smlad(ss_sxtb16(xw), ss_sxtb16(fw), acc);
        acc = ss_smlad(ss_sxtb16_ror8(xw), ss_sxtb16_ror8(fw), acc);
    }
#endif
    for (; i < n; i++) {
        acc += (int32_t)x[i] * (int32_t)f[i];
    }
    return acc;
}

/* acc + sum (x[i] + offset) * f[i] (TFLM's per-tap form, used on clipped windows) */
static inline int32_t ss_dot_off_s8(const int8_t *x, const int8_t *f, int n, int32_t offset,
                                    int32_t acc) {
    for (int i = 0; i < n; i++) {
        acc += ((int32_t)x[i] + offset) * (int32_t)f[i];
    }
    return acc;
}

/* Two dot products sharing the x operand: *a0 += x.f0, *a1 += x.f1. */
static inline void ss_dot2_s8(const int8_t *x, const int8_t *f0, const int8_t *f1, int n,
                              int32_t *a0, int32_t *a1) {
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    int i = 0;
#if SS_SIMD
    for (; i + 4 <= n; i += 4) {
        const uint32_t xw = ss_read4(x + i);
        const uint32_t xe = ss_sxtb16(xw), xo = ss_sxtb16_ror8(xw);
        const uint32_t fw0 = ss_read4(f0 + i);
        s0 = ss_smlad(xe, ss_sxtb16(fw0), s0);
        s0 = ss_smlad(xo, ss_sxtb16_ror8(fw0), s0);
        const uint32_t fw1 = ss_read4(f1 + i);
        s1 = ss_smlad(xe, ss_sxtb16(fw1), s1);
        s1 = ss_smlad(xo, ss_sxtb16_ror8(fw1), s1);
    }
#endif
    for (; i < n; i++) {
        const int32_t xv = x[i];
        s0 += xv * (int32_t)f0[i];
        s1 += xv * (int32_t)f1[i];
    }
    *a0 = s0;
    *a1 = s1;
}

/* Two patches x two filters over n bytes: acc[0] += x0.w0, acc[1] += x0.w1, acc[2] += x1.w0,
 * acc[3] += x1.w1. */
static inline void ss_mac_2x2_s8(const int8_t *x0, const int8_t *x1, const int8_t *w0,
                                 const int8_t *w1, int n, int32_t *acc) {
    int32_t a00 = acc[0], a01 = acc[1], a10 = acc[2], a11 = acc[3];
    int i = 0;
#if SS_SIMD
    for (; i + 4 <= n; i += 4) {
        const uint32_t xa = ss_read4(x0 + i);
        const uint32_t xb = ss_read4(x1 + i);
        const uint32_t xae = ss_sxtb16(xa), xao = ss_sxtb16_ror8(xa);
        const uint32_t xbe = ss_sxtb16(xb), xbo = ss_sxtb16_ror8(xb);
        const uint32_t fa = ss_read4(w0 + i);
        const uint32_t fae = ss_sxtb16(fa), fao = ss_sxtb16_ror8(fa);
        a00 = ss_smlad(xae, fae, a00);
        a00 = ss_smlad(xao, fao, a00);
        a10 = ss_smlad(xbe, fae, a10);
        a10 = ss_smlad(xbo, fao, a10);
        const uint32_t fb = ss_read4(w1 + i);
        const uint32_t fbe = ss_sxtb16(fb), fbo = ss_sxtb16_ror8(fb);
        a01 = ss_smlad(xae, fbe, a01);
        a01 = ss_smlad(xao, fbo, a01);
        a11 = ss_smlad(xbe, fbe, a11);
        a11 = ss_smlad(xbo, fbo, a11);
    }
#endif
    for (; i < n; i++) {
        const int32_t xa = x0[i];
        const int32_t xb = x1[i];
        const int32_t fa = w0[i];
        const int32_t fb = w1[i];
        a00 += xa * fa;
        a01 += xa * fb;
        a10 += xb * fa;
        a11 += xb * fb;
    }
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}

#endif
