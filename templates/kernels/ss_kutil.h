/* Small helpers shared by the kernels: dot products and filter-window clipping. */
#ifndef SS_KUTIL_H
#define SS_KUTIL_H

#include <stdint.h>

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

/* sum x[i] * f[i] */
static inline int32_t ss_dot_s8(const int8_t *x, const int8_t *f, int n, int32_t acc) {
    for (int i = 0; i < n; i++) {
        acc += (int32_t)x[i] * (int32_t)f[i];
    }
    return acc;
}

/* sum (x[i] + offset) * f[i] */
static inline int32_t ss_dot_off_s8(const int8_t *x, const int8_t *f, int n, int32_t offset,
                                    int32_t acc) {
    for (int i = 0; i < n; i++) {
        acc += ((int32_t)x[i] + offset) * (int32_t)f[i];
    }
    return acc;
}

/* Two dot products sharing the x operand. */
static inline void ss_dot2_s8(const int8_t *x, const int8_t *f0, const int8_t *f1, int n,
                              int32_t *a0, int32_t *a1) {
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    for (int i = 0; i < n; i++) {
        const int32_t xv = x[i];
        s0 += xv * (int32_t)f0[i];
        s1 += xv * (int32_t)f1[i];
    }
    *a0 = s0;
    *a1 = s1;
}

static inline void ss_dot2_off_s8(const int8_t *x, const int8_t *f0, const int8_t *f1, int n,
                                  int32_t offset, int32_t *a0, int32_t *a1) {
    int32_t s0 = *a0;
    int32_t s1 = *a1;
    for (int i = 0; i < n; i++) {
        const int32_t xv = (int32_t)x[i] + offset;
        s0 += xv * (int32_t)f0[i];
        s1 += xv * (int32_t)f1[i];
    }
    *a0 = s0;
    *a1 = s1;
}

#endif
