/* DEPTHWISE_CONV_2D, int8: TFLM reference_integer_ops::DepthwiseConvPerChannel, bit-exact.
 *
 * Output channel oc = ic * depth_mult + m reads input channel ic. Windows inside the image
 * start at the folded bias (bias + input_offset * sum of the channel's taps, the channel
 * record's start) and multiply plain input bytes; windows crossing the border are clipped to
 * the image, start at the plain bias and add the offset per tap, as TFLM does (equal modulo
 * 2^32, like every int32 sum here).
 *
 * Order (generator/schedule.py relies on it for in-place planning): output pixels in order;
 * per pixel the output channels in chunks - four at a time while four remain (then single
 * ones) - each chunk reading its input channels over the window and then writing its outputs.
 *
 * With depth_mult > 1 the chunks of four come as int16 (filter16, sign-extended by the
 * generator): per tap one LDRD of the four weights, the chunk's one to four input bytes, and
 * SMLABB/SMLABT per channel.
 *
 * The filter comes in that chunk order ("tap-major per chunk": chunk [a, b) holds its taps'
 * b - a bytes after each other at filter + a * taps), so a chunk of four reads one word per tap.
 * On DSP cores the four channels are two SXTB16 halves of that word (SMLABB/SMLATT, SADD16 for
 * the offset); interior 3x3 windows are unrolled (runs of them in assembly). */
#include <string.h>

#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

/* acc[0..3] += x[0..3] * f[0..3] for one tap of four channels (one word each on DSP cores;
 * bytes in the scalar loops, which must not assume unaligned word access). */
static inline void ss_dw_tap4(const int8_t *x, const int8_t *f, int32_t *a0, int32_t *a1,
                              int32_t *a2, int32_t *a3) {
#if SS_SIMD
    const uint32_t xw = ss_read4(x), fw = ss_read4(f);
    const uint32_t xe = ss_sxtb16(xw), xo = ss_sxtb16_ror8(xw);
    const uint32_t fe = ss_sxtb16(fw), fo = ss_sxtb16_ror8(fw);
    *a0 = ss_smlabb(xe, fe, *a0);
    *a2 = ss_smlatt(xe, fe, *a2);
    *a1 = ss_smlabb(xo, fo, *a1);
    *a3 = ss_smlatt(xo, fo, *a3);
#else
    *a0 += (int32_t)x[0] * f[0];
    *a1 += (int32_t)x[1] * f[1];
    *a2 += (int32_t)x[2] * f[2];
    *a3 += (int32_t)x[3] * f[3];
#endif
}

/* Four channels over an interior 3x3 window (dilation 1): x at the top-left tap, columns xc and
 * rows xr bytes apart; f: the chunk's 9 filter words. */
static inline void ss_dw3x3_quad(const int8_t *x, int xc, int xr, const int8_t *f, int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *r = x;
    for (int ky = 0; ky < 3; ky++) {
        ss_dw_tap4(r, f, &a0, &a1, &a2, &a3);
        ss_dw_tap4(r + xc, f + 4, &a0, &a1, &a2, &a3);
        ss_dw_tap4(r + 2 * xc, f + 8, &a0, &a1, &a2, &a3);
        r += xr;
        f += 12;
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* Four channels over ny x nx taps: x at the first tap (columns xc, rows xr bytes apart), f at
 * the chunk's first such tap (4 bytes per tap, rows f_row bytes apart); with_off adds the input
 * offset to every input value (off2: the offset in both halfwords). */
static inline void ss_dw_quad(const int8_t *x, int xc, int xr, int ny, int nx, const int8_t *f,
                              int f_row, int32_t in_off, int with_off, int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if SS_SIMD
    const uint32_t off2 = ((uint32_t)in_off << 16) | ((uint32_t)in_off & 0xFFFFu);
#endif
    for (int ky = 0; ky < ny; ky++) {
        const int8_t *r = x + ky * xr;
        const int8_t *fr = f + ky * f_row;
        for (int kx = 0; kx < nx; kx++) {
#if SS_SIMD
            const uint32_t xw = ss_read4(r);
            const uint32_t fw = ss_read4(fr);
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
            const int32_t o = with_off ? in_off : 0;
            a0 += ((int32_t)r[0] + o) * fr[0];
            a1 += ((int32_t)r[1] + o) * fr[1];
            a2 += ((int32_t)r[2] + o) * fr[2];
            a3 += ((int32_t)r[3] + o) * fr[3];
#endif
            r += xc;
            fr += 4;
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* One channel over ny x nx taps (x: input at the first tap, channel ic; f: the channel's first
 * such tap, 1 byte per tap, rows f_row bytes apart). */
static inline int32_t ss_dw_one(const int8_t *x, int xc, int xr, int ny, int nx, const int8_t *f,
                                int f_row, int32_t off, int32_t acc) {
    for (int ky = 0; ky < ny; ky++) {
        const int8_t *r = x + ky * xr;
        const int8_t *fr = f + ky * f_row;
        for (int kx = 0; kx < nx; kx++) {
            acc += ((int32_t)*r + off) * (int32_t)fr[kx];
            r += xc;
        }
    }
    return acc;
}

/* Four channels oc..oc+3 with depth_mult > 1 over ny x nx taps: channel oc + j reads input
 * channel i0 + d_j (x: input at the first tap, channel i0), f: the chunk's first such tap (4
 * int16 per tap, rows f_row halfwords apart); off: the input offset added to every input value
 * (0 inside the image, where the records start at the folded bias). */
SS_SPECIALIZE void ss_dw_quad_dm(const int8_t *x, int d1, int d2, int d3, int xc, int xr,
                                 int ny, int nx, const int16_t *f, int f_row, int32_t off,
                                 int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    for (int ky = 0; ky < ny; ky++) {
        const int8_t *r = x + ky * xr;
        const int16_t *fr = f + ky * f_row;
        for (int kx = 0; kx < nx; kx++) {
            const int32_t v0 = r[0] + off, v1 = r[d1] + off, v2 = r[d2] + off, v3 = r[d3] + off;
#if SS_SIMD
            uint32_t f01, f23;
            memcpy(&f01, fr, 4);
            memcpy(&f23, fr + 2, 4);
            a0 = ss_smlabb((uint32_t)v0, f01, a0);
            a1 = ss_smlabt((uint32_t)v1, f01, a1);
            a2 = ss_smlabb((uint32_t)v2, f23, a2);
            a3 = ss_smlabt((uint32_t)v3, f23, a3);
#else
            a0 += v0 * fr[0];
            a1 += v1 * fr[1];
            a2 += v2 * fr[2];
            a3 += v3 * fr[3];
#endif
            r += xc;
            fr += 4;
        }
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* ss_dw_quad_dm over an interior 3x3 window (dilation 1, no offset), unrolled. */
SS_SPECIALIZE void ss_dw3x3_quad_dm(const int8_t *x, int d1, int d2, int d3, int xc, int xr,
                                    const int16_t *f, int32_t *acc) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    const int8_t *r = x;
#pragma GCC unroll 9
    for (int t = 0; t < 9; t++) {
        const int8_t *q = r + (t % 3) * xc + (t / 3) * xr;
        const int32_t v0 = q[0], v1 = q[d1], v2 = q[d2], v3 = q[d3];
#if SS_SIMD
        uint32_t f01, f23;
        memcpy(&f01, f + 4 * t, 4);
        memcpy(&f23, f + 4 * t + 2, 4);
        a0 = ss_smlabb((uint32_t)v0, f01, a0);
        a1 = ss_smlabt((uint32_t)v1, f01, a1);
        a2 = ss_smlabb((uint32_t)v2, f23, a2);
        a3 = ss_smlabt((uint32_t)v3, f23, a3);
#else
        a0 += v0 * f[4 * t];
        a1 += v1 * f[4 * t + 1];
        a2 += v2 * f[4 * t + 2];
        a3 += v3 * f[4 * t + 3];
#endif
    }
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}

/* ss_dw3x3_quad_dm with the common multipliers' input deltas as constants. */
SS_SPECIALIZE void ss_dw3x3_quad_dm_any(const int8_t *x, int oc, int dm, int xc, int xr,
                                        const int16_t *f, int32_t *acc) {
    const int i0 = oc / dm;
    if ((dm & 3) == 0) {
        ss_dw3x3_quad_dm(x + i0, 0, 0, 0, xc, xr, f, acc);
    } else if (dm == 2) {
        ss_dw3x3_quad_dm(x + i0, 0, 1, 1, xc, xr, f, acc);
    } else {
        ss_dw3x3_quad_dm(x + i0, (oc + 1) / dm - i0, (oc + 2) / dm - i0, (oc + 3) / dm - i0, xc,
                         xr, f, acc);
    }
}

#if SS_SIMD && defined(__ARM_FEATURE_DSP) && !defined(SS_NO_ASM)
/* ss_dw3x3_quad_dm in assembly for multipliers of 4 (deltas 0, 0, 0: one LDRSB per tap) and 2
 * (deltas 0, 1, 1: two): per tap LDRSB, LDRD of the four int16 weights, SMLABB/SMLABT x 4. */
typedef struct {
    const int8_t *x;  /* 0: the window's top-left tap, the chunk's first input channel */
    int32_t xc;       /* 4: bytes between columns */
    int32_t xr;       /* 8: bytes between rows */
    const int16_t *f; /* 12: the chunk's 9 x 4 weights */
    int32_t *acc;     /* 16: the chunk's four sums (in and out) */
} ss_dwq_args_t;
void ss_dw3x3_q4_m4(const ss_dwq_args_t *a);
void ss_dw3x3_q4_m2(const ss_dwq_args_t *a);
#define SS_DWQ_TAP4(OFF)                        \
    "ldrsb r9, [r1" OFF "]\n\t"                 \
    "ldrd r10, r11, [r12], #8\n\t"             \
    "smlabb r4, r9, r10, r4\n\t"               \
    "smlabt r5, r9, r10, r5\n\t"               \
    "smlabb r6, r9, r11, r6\n\t"               \
    "smlabt r7, r9, r11, r7\n\t"
#define SS_DWQ_TAP2(OFF)                        \
    "ldrsb r9, [r1" OFF "]\n\t"                 \
    "ldrsb r8, [lr" OFF "]\n\t"                 \
    "ldrd r10, r11, [r12], #8\n\t"             \
    "smlabb r4, r9, r10, r4\n\t"               \
    "smlabt r5, r9, r10, r5\n\t"               \
    "smlabb r6, r8, r11, r6\n\t"               \
    "smlabt r7, r8, r11, r7\n\t"
#define SS_DWQ_FN(NAME, PRE, ROW, POST)                                                         \
    __asm__(".pushsection .text." #NAME ",\"ax\",%progbits\n\t"                                \
            ".syntax unified\n\t"                                                               \
            ".thumb\n\t"                                                                        \
            ".p2align 2\n\t"                                                                    \
            ".global " #NAME "\n\t"                                                             \
            ".hidden " #NAME "\n\t"                                                             \
            ".thumb_func\n\t"                                                                   \
            ".type " #NAME ", %function\n" #NAME ":\n\t"                                        \
            "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                                   \
            "ldmia r0, {r1, r2, r3, r12, lr}\n\t"                                               \
            "ldmia lr, {r4, r5, r6, r7}\n\t"                                                    \
            "lsl r0, r2, #1\n\t"                                                                \
            PRE ROW ROW ROW POST                                                                \
            "stmia lr, {r4, r5, r6, r7}\n\t"                                                    \
            "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"                                    \
            ".size " #NAME ", . - " #NAME "\n\t"                                                \
            ".popsection\n")
SS_DWQ_FN(ss_dw3x3_q4_m4, "",
          SS_DWQ_TAP4("") SS_DWQ_TAP4(", r2") SS_DWQ_TAP4(", r0") "add r1, r1, r3\n\t", "");
/* lr: the second input channel's row pointer (x + 1) while the sums' address waits on the
 * stack */
SS_DWQ_FN(ss_dw3x3_q4_m2, "push {lr}\n\tadd lr, r1, #1\n\t",
          SS_DWQ_TAP2("") SS_DWQ_TAP2(", r2") SS_DWQ_TAP2(", r0")
          "add r1, r1, r3\n\tadd lr, lr, r3\n\t",
          "pop {lr}\n\t");
#define SS_DWQ_ASM 1
#else
#define SS_DWQ_ASM 0
#endif

/* Every chunk of four of an interior 3x3 pixel (depth_mult > 1): quads chunks, requantized and
 * written in order (x: the window's top-left tap, channel 0; f, rec, out at chunk 0). */
SS_SPECIALIZE void ss_dw3x3_dm_body(const int8_t *x, int xc, int xr, int dm, int quads,
                                    const int16_t *f, const int32_t *rec, int8_t *out, int d1,
                                    int d2, int d3, int fast, int full, int32_t zp, int32_t lo,
                                    int32_t hi) {
    for (int q = 0; q < quads; q++) {
        int32_t acc[4] = {rec[0], rec[4], rec[8], rec[12]};
#if SS_DWQ_ASM
        const ss_dwq_args_t args = {x + (4 * q) / dm, xc, xr, f, acc};
        if (d2 == 0) {
            ss_dw3x3_q4_m4(&args);
        } else {
            ss_dw3x3_q4_m2(&args);
        }
        (void)d1;
        (void)d3;
#else
        ss_dw3x3_quad_dm(x + (4 * q) / dm, d1, d2, d3, xc, xr, f, acc);
#endif
        out[0] = ss_rq(acc[0], rec, fast, full, zp, lo, hi);
        out[1] = ss_rq(acc[1], rec + 4, fast, full, zp, lo, hi);
        out[2] = ss_rq(acc[2], rec + 8, fast, full, zp, lo, hi);
        out[3] = ss_rq(acc[3], rec + 12, fast, full, zp, lo, hi);
        f += 36;
        rec += 16;
        out += 4;
    }
}

/* ss_dw3x3_dm_body out of line (its own registers), per requantization mode, for multipliers
 * of 4 (one input channel per chunk) and 2 (two). */
__attribute__((noinline)) static void ss_dw3x3_dm_pixel(const int8_t *x, int xc, int xr, int dm,
                                                        int quads, const int16_t *f,
                                                        const int32_t *rec, int8_t *out,
                                                        int fast, int full, int32_t zp,
                                                        int32_t lo, int32_t hi) {
    if ((dm & 3) == 0) {
        if (fast && full) {
            ss_dw3x3_dm_body(x, xc, xr, dm, quads, f, rec, out, 0, 0, 0, 1, 1, zp, lo, hi);
        } else if (fast) {
            ss_dw3x3_dm_body(x, xc, xr, dm, quads, f, rec, out, 0, 0, 0, 1, 0, zp, lo, hi);
        } else {
            ss_dw3x3_dm_body(x, xc, xr, dm, quads, f, rec, out, 0, 0, 0, 0, full, zp, lo, hi);
        }
    } else {
        if (fast && full) {
            ss_dw3x3_dm_body(x, xc, xr, 2, quads, f, rec, out, 0, 1, 1, 1, 1, zp, lo, hi);
        } else if (fast) {
            ss_dw3x3_dm_body(x, xc, xr, 2, quads, f, rec, out, 0, 1, 1, 1, 0, zp, lo, hi);
        } else {
            ss_dw3x3_dm_body(x, xc, xr, 2, quads, f, rec, out, 0, 1, 1, 0, full, zp, lo, hi);
        }
    }
}

/* ss_dw_quad_dm with the input deltas of the common multipliers as constants (one input load
 * per tap when depth_mult is a multiple of 4, two when it is 2). */
SS_SPECIALIZE void ss_dw_quad_dm_any(const int8_t *x, int oc, int dm, int xc, int xr, int ny,
                                     int nx, const int16_t *f, int f_row, int32_t off,
                                     int32_t *acc) {
    const int i0 = oc / dm;
    if ((dm & 3) == 0) {
        ss_dw_quad_dm(x + i0, 0, 0, 0, xc, xr, ny, nx, f, f_row, off, acc);
    } else if (dm == 2) {
        ss_dw_quad_dm(x + i0, 0, 1, 1, xc, xr, ny, nx, f, f_row, off, acc);
    } else {
        ss_dw_quad_dm(x + i0, (oc + 1) / dm - i0, (oc + 2) / dm - i0, (oc + 3) / dm - i0, xc,
                      xr, ny, nx, f, f_row, off, acc);
    }
}

#if SS_SIMD && defined(__ARM_FEATURE_DSP) && !defined(SS_NO_ASM)
#define SS_DW_ASM 1
/* A run of interior output pixels of one row with a 3x3 window (dilation 1), depth_mult 1,
 * channels a multiple of 4, fast requantization and the full int8 range, in assembly. Same
 * order and arithmetic as the C loop: per pixel, per chunk of four channels, nine taps of
 * LDR x, LDR f, 4 SXTB16, SMLABB/SMLATT x 4, then ss_rq_fast + SSAT and four STRB. */
typedef struct {
    const int8_t *x;     /* 0: input at the first pixel's top-left tap, channel 0 */
    int32_t xc;          /* 4: bytes between columns (in_c) */
    int32_t xr;          /* 8: bytes between rows (in_w * in_c) */
    int32_t xs;          /* 12: bytes between the run's pixels' windows (stride_w * in_c) */
    const int8_t *f;     /* 16: filter, chunk-major (36 bytes per chunk) */
    const int32_t *rec;  /* 20: channel records */
    int8_t *out;         /* 24: output of the first pixel, channel 0 */
    int32_t quads;       /* 28: channel chunks (>= 1) */
    int32_t count;       /* 32: pixels (>= 1) */
} ss_dw_args_t;
void ss_dw3x3_run_ff(const ss_dw_args_t *a);

/* Frame: [sp] x, [4] xr, [8] xs, [12] f, [16] rec, [20] out, [24] f end, [28] pixels left,
 * [32] rec (current). Registers: r0-r3 accumulators, r4-r6 the window rows, r7 = xc - 4,
 * r8 = 2 xc - 4, r9 filter, r10/r11 x and f words, r12/lr their other halves. */
#define SS_DW_TAP(LOAD_X)                       \
    LOAD_X                                      \
    "ldr r11, [r9], #4\n\t"                     \
    "sxtb16 r12, r10\n\t"                       \
    "sxtb16 lr, r11\n\t"                        \
    "smlabb r0, r12, lr, r0\n\t"                \
    "smlatt r2, r12, lr, r2\n\t"                \
    "sxtb16 r10, r10, ror #8\n\t"               \
    "sxtb16 r11, r11, ror #8\n\t"               \
    "smlabb r1, r10, r11, r1\n\t"               \
    "smlatt r3, r10, r11, r3\n\t"
#define SS_DW_ROW(R)                            \
    SS_DW_TAP("ldr r10, [" R "], #4\n\t")       \
    SS_DW_TAP("ldr r10, [" R ", r7]\n\t")       \
    SS_DW_TAP("ldr r10, [" R ", r8]\n\t")
#define SS_DW_RQ(A, OFF)                        \
    "ldrd r11, r12, [r10, #" OFF "]\n\t"        \
    "ldr lr, [r10, #" OFF "+8]\n\t"             \
    "lsl " A ", " A ", #1\n\t"                  \
    "smmulr " A ", " A ", r11\n\t"              \
    "add r12, r12, " A ", asr #31\n\t"          \
    "add " A ", " A ", r12\n\t"                 \
    "asr " A ", " A ", lr\n\t"                  \
    "ssat " A ", #8, " A "\n\t"
__asm__(".pushsection .text.ss_dw3x3_run_ff,\"ax\",%progbits\n\t"
        ".syntax unified\n\t"
        ".thumb\n\t"
        ".p2align 2\n\t"
        ".global ss_dw3x3_run_ff\n\t"
        ".hidden ss_dw3x3_run_ff\n\t"
        ".thumb_func\n\t"
        ".type ss_dw3x3_run_ff, %function\n"
        "ss_dw3x3_run_ff:\n\t"
        "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"
        "sub sp, sp, #36\n\t"
        "ldmia r0, {r1, r2, r3, r4, r5, r6, r7, r8, r9}\n\t" /* x xc xr xs f rec out q n */
        "str r1, [sp, #0]\n\t"
        "str r3, [sp, #4]\n\t"
        "str r4, [sp, #8]\n\t"
        "str r5, [sp, #12]\n\t"
        "str r6, [sp, #16]\n\t"
        "str r7, [sp, #20]\n\t"
        "add r8, r8, r8, lsl #3\n\t" /* quads * 9 words */
        "add r8, r5, r8, lsl #2\n\t"
        "str r8, [sp, #24]\n\t"
        "str r9, [sp, #28]\n\t"
        "sub r7, r2, #4\n\t"
        "lsl r8, r2, #1\n\t"
        "sub r8, r8, #4\n"
        "1:\n\t" /* a pixel */
        "ldr r4, [sp, #0]\n\t"
        "ldr r10, [sp, #4]\n\t"
        "add r5, r4, r10\n\t"
        "add r6, r5, r10\n\t"
        "ldr r9, [sp, #12]\n\t"
        "ldr r10, [sp, #16]\n\t"
        "str r10, [sp, #32]\n"
        "2:\n\t" /* a chunk of four channels */
        "ldr r10, [sp, #32]\n\t"
        "ldr r0, [r10]\n\t"
        "ldr r1, [r10, #16]\n\t"
        "ldr r2, [r10, #32]\n\t"
        "ldr r3, [r10, #48]\n\t"
        SS_DW_ROW("r4") SS_DW_ROW("r5") SS_DW_ROW("r6")
        "ldr r10, [sp, #32]\n\t"
        SS_DW_RQ("r0", "4") SS_DW_RQ("r1", "20") SS_DW_RQ("r2", "36") SS_DW_RQ("r3", "52")
        "add r10, r10, #64\n\t"
        "str r10, [sp, #32]\n\t"
        "ldr r11, [sp, #20]\n\t"
        "strb r0, [r11, #0]\n\t"
        "strb r1, [r11, #1]\n\t"
        "strb r2, [r11, #2]\n\t"
        "strb r3, [r11, #3]\n\t"
        "add r11, r11, #4\n\t"
        "str r11, [sp, #20]\n\t"
        "ldr r10, [sp, #24]\n\t"
        "cmp r9, r10\n\t"
        "bne 2b\n\t"
        "ldr r4, [sp, #0]\n\t" /* next pixel */
        "ldr r10, [sp, #8]\n\t"
        "add r4, r4, r10\n\t"
        "str r4, [sp, #0]\n\t"
        "ldr r10, [sp, #28]\n\t"
        "subs r10, r10, #1\n\t"
        "str r10, [sp, #28]\n\t"
        "bne 1b\n\t"
        "add sp, sp, #36\n\t"
        "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"
        ".size ss_dw3x3_run_ff, . - ss_dw3x3_run_ff\n\t"
        ".popsection\n");
#else
#define SS_DW_ASM 0
#endif

SS_SPECIALIZE void ss_dw_run(const ss_dwconv_params_t *p, const int8_t *input, int8_t *output,
                             int fast, int full) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_h = p->out_h, out_w = p->out_w, out_c = p->out_c;
    const int k_h = p->k_h, k_w = p->k_w, taps = k_h * k_w, dm = p->depth_mult;
    const int xc = p->dil_w * in_c, xr = p->dil_h * in_w * in_c;
    const int32_t in_off = p->input_offset;
    const int quads = out_c / 4;
    const int is3x3 = k_h == 3 && k_w == 3 && p->dil_h == 1 && p->dil_w == 1;
    const int32_t ozp = p->output_offset, lo = p->act_min, hi = p->act_max;
    int8_t *out = output;
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
                const int inside = ky0 == 0 && ky1 == k_h && kx0 == 0 && kx1 == k_w;
#if SS_DW_ASM
                if (fast && full && inside && is3x3 && dm == 1 && quads > 0 &&
                    quads * 4 == out_c) {
                    int run = 1; /* interior pixels from ox on */
                    while (ox + run < out_w &&
                           (ox + run) * p->stride_w - p->pad_w + (k_w - 1) < in_w) {
                        run++;
                    }
                    const ss_dw_args_t args = {in_b + (iy0 * in_w + ix0) * in_c, xc, xr,
                                               p->stride_w * in_c, p->filter, p->chan, out,
                                               quads, run};
                    ss_dw3x3_run_ff(&args);
                    out += run * out_c;
                    ox += run - 1;
                    continue;
                }
#endif
                /* the clipped window: ny x nx taps from (ky0, kx0) */
                const int ny = ky1 > ky0 ? ky1 - ky0 : 0;
                const int nx = kx1 > kx0 && ny > 0 ? kx1 - kx0 : 0;
                const int8_t *x =
                    nx > 0 ? in_b + (iy0 + ky0 * p->dil_h) * in_w * in_c +
                                 (ix0 + kx0 * p->dil_w) * in_c
                           : in_b;
                const int t0 = ky0 * k_w + kx0;
                const int8_t *f = p->filter;
                const int16_t *f16 = p->filter16;
                const int32_t *rec = p->chan;
                const int32_t *bias = p->bias;
                int oc = 0;
                int q0 = 0;
                if (dm > 1 && inside && is3x3 && quads > 0 && ((dm & 3) == 0 || dm == 2)) {
                    ss_dw3x3_dm_pixel(x, xc, xr, dm, quads, f16, rec, out, fast, full, ozp, lo,
                                      hi);
                    q0 = quads;
                    out += 4 * quads;
                    oc += 4 * quads;
                    f16 += 4 * taps * quads;
                    rec += 16 * quads;
                }
                for (int q = q0; dm > 1 && q < quads; q++) {
                    int32_t acc[4];
                    if (inside) {
                        acc[0] = rec[0], acc[1] = rec[4], acc[2] = rec[8], acc[3] = rec[12];
                        if (is3x3) {
                            ss_dw3x3_quad_dm_any(x, oc, dm, xc, xr, f16, acc);
                        } else {
                            ss_dw_quad_dm_any(x, oc, dm, xc, xr, k_h, k_w, f16, 4 * k_w, 0,
                                              acc);
                        }
                    } else {
                        acc[0] = bias[oc], acc[1] = bias[oc + 1], acc[2] = bias[oc + 2],
                        acc[3] = bias[oc + 3];
                        ss_dw_quad_dm_any(x, oc, dm, xc, xr, ny, nx, f16 + 4 * t0, 4 * k_w,
                                          in_off, acc);
                    }
                    out[0] = ss_rq(acc[0], rec, fast, full, ozp, lo, hi);
                    out[1] = ss_rq(acc[1], rec + 4, fast, full, ozp, lo, hi);
                    out[2] = ss_rq(acc[2], rec + 8, fast, full, ozp, lo, hi);
                    out[3] = ss_rq(acc[3], rec + 12, fast, full, ozp, lo, hi);
                    out += 4;
                    oc += 4;
                    f16 += 4 * taps;
                    rec += 16;
                }
                for (int q = 0; dm == 1 && q < quads; q++) {
                    if (inside) {
                        int32_t acc[4] = {rec[0], rec[4], rec[8], rec[12]};
                        if (is3x3) {
                            ss_dw3x3_quad(x + oc, xc, xr, f, acc);
                        } else {
                            ss_dw_quad(x + oc, xc, xr, k_h, k_w, f, 4 * k_w, 0, 0, acc);
                        }
                        out[0] = ss_rq(acc[0], rec, fast, full, ozp, lo, hi);
                        out[1] = ss_rq(acc[1], rec + 4, fast, full, ozp, lo, hi);
                        out[2] = ss_rq(acc[2], rec + 8, fast, full, ozp, lo, hi);
                        out[3] = ss_rq(acc[3], rec + 12, fast, full, ozp, lo, hi);
                    } else {
                        int32_t acc[4] = {bias[oc], bias[oc + 1], bias[oc + 2], bias[oc + 3]};
                        ss_dw_quad(x + oc, xc, xr, ny, nx, f + 4 * t0, 4 * k_w, in_off, 1, acc);
                        out[0] = ss_rq(acc[0], rec, fast, full, ozp, lo, hi);
                        out[1] = ss_rq(acc[1], rec + 4, fast, full, ozp, lo, hi);
                        out[2] = ss_rq(acc[2], rec + 8, fast, full, ozp, lo, hi);
                        out[3] = ss_rq(acc[3], rec + 12, fast, full, ozp, lo, hi);
                    }
                    out += 4;
                    oc += 4;
                    f += 4 * taps;
                    rec += 16;
                }
                for (; oc < out_c; oc++) {
                    const int32_t acc =
                        inside ? ss_dw_one(x + oc / dm, xc, xr, k_h, k_w, f, k_w, 0, rec[0])
                               : ss_dw_one(x + oc / dm, xc, xr, ny, nx, f + t0, k_w, in_off,
                                           bias[oc]);
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
