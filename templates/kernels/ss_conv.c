/* CONV_2D, int8: TFLM reference_integer_ops::ConvPerChannel, bit-exact.
 *
 * The accumulator of an output is sum(filter * (input + input_offset)) + bias. With the folded
 * bias (bias + input_offset * sum(filter), prepared by the generator) it is
 * sum(filter * input) + folded bias, equal modulo 2^32, so the inner loops are plain int8 dot
 * products; padding must then contribute filter * (-input_offset), so patches are gathered with
 * the input zero point in the padding, which makes every pixel "interior".
 *
 * GEMM path (groups == 1, block * k_stride <= SS_CONV_COL_ELEMS): output pixels in blocks of
 * p->block (4 or 2), the rest in blocks of 2, the last maybe of a single pixel. For each block
 * every patch is gathered into a stack buffer first, then every output channel of the block is
 * computed and written, channel after channel. generator/schedule.py
 * relies on exactly this order (all reads of a block before its writes, blocks in pixel order)
 * when it lets the output overlap the input. On DSP cores the buffer holds the patches sign-
 * extended to halfword pairs (SXTB16 order: bytes 0,2 then 1,3 of every word, pixel after pixel
 * per word), so the inner loop is one filter word, two SXTB16 and two SMLAD per pixel (hand-
 * scheduled assembly for blocks of 4 and 2 pixels); elsewhere (SS_SIMD=0, Cortex-M0) it holds
 * the bytes and the loop is scalar.
 *
 * Tiled path (patches longer than the buffer allows): blocks of 4 output pixels (the last
 * block's spare slots repeat its last pixel: computed, never stored), output channels in groups
 * of SS_CONV_TILE_CHANNELS. Per group the patches are gathered chunk after chunk (p->chunk bytes,
 * the filter stored chunk-major so a chunk's rows are contiguous), each chunk's dot products
 * added into int32 sums on the stack (integer addition: the same sums as one long dot product),
 * then the group's outputs of the block are requantized and written. A group reads all of the
 * block's patches before it writes; generator/schedule.py relies on that.
 *
 * Generic path (grouped convolution): taps clipped to the image, the offset added per tap
 * (TFLM's loop order); the channel record starts at the plain bias. It never runs in place. */
#include <string.h>

#include "ss_fixedpoint.h"
#include "ss_kernels.h"
#include "ss_kutil.h"

#if SS_SIMD && defined(__ARM_FEATURE_DSP) && !defined(SS_NO_ASM)
#define SS_CONV_ASM 1
#else
#define SS_CONV_ASM 0
#endif

/* ---- the generic path --------------------------------------------------------------------- */

static void ss_conv_generic(const ss_conv_params_t *p, const int8_t *input, int8_t *output) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_h = p->out_h, out_w = p->out_w, out_c = p->out_c;
    const int k_h = p->k_h, k_w = p->k_w, fic = p->filter_in_c;
    const int groups = in_c / fic;
    const int per_group = out_c / groups;
    const int32_t in_off = p->input_offset;
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
                    const int8_t *f0 = p->filter + oc * p->k_stride;
                    const int32_t *rec = p->chan + 4 * oc;
                    int32_t acc = 0;
                    for (int ky = ky0; ky < ky1; ky++) {
                        const int8_t *xr = in_b + (iy0 + ky * p->dil_h) * in_w * in_c + g * fic;
                        for (int kx = kx0; kx < kx1; kx++) {
                            const int8_t *x = xr + (ix0 + kx * p->dil_w) * in_c;
                            acc = ss_dot_off_s8(x, f0 + (ky * k_w + kx) * fic, fic, in_off, acc);
                        }
                    }
                    acc = ss_wadd(acc, rec[0]);
                    out[oc] = ss_rq(acc, rec, p->rq_fast, p->full_range, p->output_offset,
                                    p->act_min, p->act_max);
                }
            }
        }
    }
}

/* ---- gathering patches -------------------------------------------------------------------- */

/* Small copies and fills inline (a library call costs more than the bytes here): words where
 * the core allows unaligned access (ss_read4 / a 4-byte memcpy become LDR / STR), else bytes. */
#if !defined(__arm__) || defined(__ARM_FEATURE_UNALIGNED)
#define SS_WORDS_ANYWHERE 1
#else
#define SS_WORDS_ANYWHERE 0
#endif
static inline void ss_copy_bytes(int8_t *d, const int8_t *src, int n) {
    int i = 0;
#if SS_WORDS_ANYWHERE
    for (; i + 4 <= n; i += 4) {
        const uint32_t v = ss_read4(src + i);
        memcpy(d + i, &v, 4);
    }
#endif
    for (; i < n; i++) {
        d[i] = src[i];
    }
}

static inline void ss_fill_bytes(int8_t *d, int8_t v, int n) {
    int i = 0;
#if SS_WORDS_ANYWHERE
    const uint32_t w = (uint32_t)(uint8_t)v * 0x01010101u;
    for (; i + 4 <= n; i += 4) {
        memcpy(d + i, &w, 4);
    }
#endif
    for (; i < n; i++) {
        d[i] = v;
    }
}

/* The patch of output pixel (oy, ox) as k_stride bytes at dst: taps in filter order (ky, kx,
 * channel), the input zero point where a tap lies outside the image, zeros in the tail. */
static void ss_conv_gather(const ss_conv_params_t *p, const int8_t *in_b, int oy, int ox,
                           int8_t *dst) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int k_h = p->k_h, k_w = p->k_w;
    const int row_bytes = k_w * in_c;
    const int8_t zp = (int8_t)(-p->input_offset);
    const int iy0 = oy * p->stride_h - p->pad_h;
    const int ix0 = ox * p->stride_w - p->pad_w;
    const int x_inside = p->dil_w == 1 && ix0 >= 0 && ix0 + k_w <= in_w;
    int8_t *d = dst;
    for (int ky = 0; ky < k_h; ky++) {
        const int iy = iy0 + ky * p->dil_h;
        if (iy < 0 || iy >= in_h) {
            ss_fill_bytes(d, zp, row_bytes);
        } else if (x_inside) {
            ss_copy_bytes(d, in_b + (iy * in_w + ix0) * in_c, row_bytes);
        } else {
            const int8_t *row = in_b + iy * in_w * in_c;
            for (int kx = 0; kx < k_w; kx++) {
                const int ix = ix0 + kx * p->dil_w;
                if (ix < 0 || ix >= in_w) {
                    ss_fill_bytes(d + kx * in_c, zp, in_c);
                } else {
                    ss_copy_bytes(d + kx * in_c, row + ix * in_c, in_c);
                }
            }
        }
        d += row_bytes;
    }
    for (int k = k_h * row_bytes; k < p->k_stride; k++) {
        dst[k] = 0;
    }
}

#if SS_SIMD
/* Sign-extend the k_stride bytes at src into slot i of a block's halfword-pair buffer. */
static inline void ss_conv_expand(const int8_t *src, int k_stride, int block, int i,
                                  uint32_t *col) {
    uint32_t *c = col + 2 * i;
    const int step = 2 * block;
    for (int k = 0; k < k_stride; k += 4) {
        const uint32_t w = ss_read4(src + k);
        c[0] = ss_sxtb16(w);
        c[1] = ss_sxtb16_ror8(w);
        c += step;
    }
}
#endif

/* ---- the multiply-accumulate kernels: acc[i] += patch_i . filter row ----------------------- */

#if SS_SIMD
/* acc[i] += patch_i . filter row for the block's pixels (the host's emulated SXTB16/SMLAD on
 * the host; the reference for the assembly below). */
static inline void ss_mk(const uint32_t *col, const int8_t *w, int quads, int block,
                         int32_t *acc) {
    for (int q = 0; q < quads; q++) {
        const uint32_t fw = ss_read4(w + 4 * q);
        const uint32_t fe = ss_sxtb16(fw), fo = ss_sxtb16_ror8(fw);
        for (int i = 0; i < block; i++) {
            acc[i] = ss_smlad(col[0], fe, acc[i]);
            acc[i] = ss_smlad(col[1], fo, acc[i]);
            col += 2;
        }
    }
}
#endif

#if SS_CONV_ASM
/* Blocks with the fast requantization and the full int8 range, in assembly: every output
 * channel of a block of 4 (2) pixels (a lone last pixel is a block of 2 stored with stride 0).
 * Per filter word: LDR, LDM of the pixels' halfword pairs, two SXTB16, eight (four) SMLAD; per
 * output: LSL, SMMULR, ADD, ADD, ASR, SSAT (ss_rq_fast, ss_sat8), STRB. Same arithmetic as
 * ss_mk + ss_rq. */
typedef struct {
    const uint32_t *col; /* 0: the block's halfword pairs */
    int32_t k_stride;    /* 4: filter row bytes (a multiple of 4) */
    int32_t out_c;       /* 8: output channels = bytes between the block's output pixels */
    const int32_t *rec;  /* 12: channel records */
    int8_t *out;         /* 16: output of the block's first pixel, channel 0 */
    const int8_t *w;     /* 20: filter */
    int32_t channels;    /* 24: channels to compute (>= 1) */
} ss_blk_args_t;
void ss_conv_blk4_ff(const ss_blk_args_t *a);
void ss_conv_blk2_ff(const ss_blk_args_t *a);

#define SS_ASM_RQ(A)                            \
    "lsl " A ", " A ", #1\n\t"                  \
    "smmulr " A ", " A ", r5\n\t"               \
    "add r4, r6, " A ", asr #31\n\t"            \
    "add " A ", " A ", r4\n\t"                  \
    "asr " A ", " A ", r7\n\t"                  \
    "ssat " A ", #8, " A "\n\t"
#define SS_ASM_Q4                               \
    "ldr r8, [r11], #4\n\t"                     \
    "ldmia r10!, {r4, r5, r6, r7}\n\t"          \
    "sxtb16 r9, r8\n\t"                         \
    "sxtb16 r8, r8, ror #8\n\t"                 \
    "smlad r0, r4, r9, r0\n\t"                  \
    "smlad r0, r5, r8, r0\n\t"                  \
    "smlad r1, r6, r9, r1\n\t"                  \
    "smlad r1, r7, r8, r1\n\t"                  \
    "ldmia r10!, {r4, r5, r6, r7}\n\t"          \
    "smlad r2, r4, r9, r2\n\t"                  \
    "smlad r2, r5, r8, r2\n\t"                  \
    "smlad r3, r6, r9, r3\n\t"                  \
    "smlad r3, r7, r8, r3\n\t"
#define SS_ASM_Q2                               \
    "ldr r8, [r11], #4\n\t"                     \
    "ldmia r10!, {r4, r5, r6, r7}\n\t"          \
    "sxtb16 r9, r8\n\t"                         \
    "sxtb16 r8, r8, ror #8\n\t"                 \
    "smlad r0, r4, r9, r0\n\t"                  \
    "smlad r0, r5, r8, r0\n\t"                  \
    "smlad r1, r6, r9, r1\n\t"                  \
    "smlad r1, r7, r8, r1\n\t"
/* Registers: r0-r3 accumulators, r4-r7 pixel pairs (then mult/add/rshift), r8/r9 filter halves,
 * r10 col, r11 filter, r12 end of the filter row, lr channels left; [sp] holds col, k_stride,
 * out_c, rec, out. */
#define SS_ASM_BLOCK_FN(NAME, QUAD, INIT, STORES)                                                \
    __asm__(".pushsection .text." #NAME ",\"ax\",%progbits\n\t"                                 \
            ".syntax unified\n\t"                                                                \
            ".thumb\n\t"                                                                         \
            ".p2align 2\n\t"                                                                     \
            ".global " #NAME "\n\t"                                                              \
            ".hidden " #NAME "\n\t"                                                              \
            ".thumb_func\n\t"                                                                    \
            ".type " #NAME ", %function\n" #NAME ":\n\t"                                         \
            "push {r4, r5, r6, r7, r8, r9, r10, r11, lr}\n\t"                                    \
            "sub sp, sp, #20\n\t"                                                                \
            "ldmia r0, {r1, r2, r3, r4, r5, r6, r7}\n\t"                                         \
            "stmia sp, {r1, r2, r3, r4, r5}\n\t"                                                 \
            "mov r11, r6\n\t"                                                                    \
            "mov lr, r7\n"                                                                       \
            "1:\n\t"                                                                             \
            "ldr r10, [sp, #0]\n\t"                                                              \
            "ldr r5, [sp, #4]\n\t"                                                               \
            "ldr r4, [sp, #12]\n\t"                                                              \
            "add r12, r11, r5\n\t"                                                               \
            "ldr r0, [r4]\n\t"                                                                   \
            INIT                                                                                 \
            "tst r5, #4\n\t"                                                                     \
            "beq 2f\n\t"                                                                         \
            QUAD                                                                                 \
            "cmp r11, r12\n\t"                                                                   \
            "beq 3f\n"                                                                           \
            "2:\n\t"                                                                             \
            QUAD QUAD                                                                            \
            "cmp r11, r12\n\t"                                                                   \
            "bne 2b\n"                                                                           \
            "3:\n\t"                                                                             \
            "ldr r8, [sp, #12]\n\t"                                                              \
            "ldmia r8!, {r4, r5, r6, r7}\n\t"                                                    \
            "str r8, [sp, #12]\n\t"                                                              \
            "ldr r8, [sp, #16]\n\t"                                                              \
            "ldr r9, [sp, #8]\n\t"                                                               \
            STORES                                                                               \
            "add r8, r8, #1\n\t"                                                                 \
            "str r8, [sp, #16]\n\t"                                                              \
            "subs lr, lr, #1\n\t"                                                                \
            "bne 1b\n\t"                                                                         \
            "add sp, sp, #20\n\t"                                                                \
            "pop {r4, r5, r6, r7, r8, r9, r10, r11, pc}\n\t"                                     \
            ".size " #NAME ", . - " #NAME "\n\t"                                                 \
            ".popsection\n")

SS_ASM_BLOCK_FN(ss_conv_blk4_ff, SS_ASM_Q4,
                "mov r1, r0\n\tmov r2, r0\n\tmov r3, r0\n\t",
                SS_ASM_RQ("r0") "strb r0, [r8]\n\t"
                SS_ASM_RQ("r1") "strb r1, [r8, r9]\n\t"
                "add r10, r8, r9, lsl #1\n\t"
                SS_ASM_RQ("r2") "strb r2, [r10]\n\t"
                SS_ASM_RQ("r3") "strb r3, [r10, r9]\n\t");
/* The tiled path's chunk kernel: the same loop, the 4 sums of every channel loaded from and
 * stored back to an int32 array ([channel][4], passed as `out`) instead of requantized. */
void ss_conv_blk4_acc(const ss_blk_args_t *a);
SS_ASM_BLOCK_FN(ss_conv_blk4_acc, SS_ASM_Q4,
                "ldr r4, [sp, #16]\n\tldmia r4, {r0, r1, r2, r3}\n\t",
                "stmia r8, {r0, r1, r2, r3}\n\tadd r8, r8, #15\n\t");
SS_ASM_BLOCK_FN(ss_conv_blk2_ff, SS_ASM_Q2,
                "mov r1, r0\n\t",
                SS_ASM_RQ("r0") "strb r0, [r8]\n\t"
                SS_ASM_RQ("r1") "strb r1, [r8, r9]\n\t");
#endif

/* ---- the GEMM path ------------------------------------------------------------------------ */

/* All output channels of one block laid out for `block` pixels, n of them real (the other
 * slots repeat the last one: computed, never stored). */
SS_SPECIALIZE void ss_conv_block(const ss_conv_params_t *p, const void *col, int block, int n,
                                int8_t *out, int fast, int full) {
    const int out_c = p->out_c;
#if SS_CONV_ASM
    if (fast && full) {
        /* n < block only as one pixel in a block of 2: both slots hold it, both stores hit it */
        const ss_blk_args_t args = {(const uint32_t *)col, p->k_stride, n == block ? out_c : 0,
                                    p->chan, out, p->filter, out_c};
        if (block == 4) {
            ss_conv_blk4_ff(&args);
        } else {
            ss_conv_blk2_ff(&args);
        }
        return;
    }
#endif
    const int k_stride = p->k_stride;
    const int8_t *w = p->filter;
    const int32_t *rec = p->chan;
    const int32_t zp = p->output_offset, lo = p->act_min, hi = p->act_max;
    for (int oc = 0; oc < out_c; oc++) {
        int32_t acc[4] = {rec[0], rec[0], rec[0], rec[0]};
#if SS_SIMD
        ss_mk((const uint32_t *)col, w, k_stride >> 2, block, acc);
#else
        const int k = p->k_h * p->k_w * p->filter_in_c;
        const int8_t *c8 = (const int8_t *)col;
        for (int i = 0; i < block; i++) {
            acc[i] = ss_dot_s8(c8 + i * k_stride, w, k, acc[i]);
        }
#endif
        for (int i = 0; i < n; i++) {
            out[i * out_c] = ss_rq(acc[i], rec, fast, full, zp, lo, hi);
        }
        out++;
        w += k_stride;
        rec += 4;
    }
}

SS_SPECIALIZE void ss_conv_gemm(const ss_conv_params_t *p, const int8_t *input, int8_t *output,
                                int fast, int full) {
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_w = p->out_w, out_c = p->out_c;
    const int k_stride = p->k_stride;
    const int pixels = p->out_h * out_w;
    /* 1x1 filters over whole words read the pixel in place */
    const int direct = p->k_h == 1 && p->k_w == 1 && (in_c & 3) == 0;
#if SS_SIMD
    uint32_t col[SS_CONV_COL_ELEMS / 2];
    int8_t patch[SS_CONV_COL_ELEMS / 2];
#else
    int8_t col[SS_CONV_COL_ELEMS];
#endif
    for (int b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        int8_t *out_b = output + b * pixels * out_c;
        int oy = 0, ox = 0;
        (void)direct;
        for (int px = 0; px < pixels;) {
            /* blocks of p->block pixels; the rest in blocks of 2 (the last maybe of 1) */
            const int rest = pixels - px;
            const int block = rest >= p->block ? p->block : 2;
            const int n = rest < block ? rest : block;
            const int8_t *src = in_b;
            for (int i = 0; i < block; i++) {
                /* slots past the last pixel repeat it (computed, never stored) */
#if SS_SIMD
                if (i < n) {
                    if (direct) {
                        src = in_b + (oy * p->stride_h * in_w + ox * p->stride_w) * in_c;
                    } else {
                        ss_conv_gather(p, in_b, oy, ox, patch);
                        src = patch;
                    }
                    if (++ox == out_w) {
                        ox = 0;
                        oy++;
                    }
                }
                ss_conv_expand(src, k_stride, block, i, col);
#else
                int8_t *slot = col + i * k_stride;
                if (i < n) {
                    if (direct) {
                        src = in_b + (oy * p->stride_h * in_w + ox * p->stride_w) * in_c;
                        ss_copy_bytes(slot, src, k_stride);
                    } else {
                        ss_conv_gather(p, in_b, oy, ox, slot);
                    }
                    if (++ox == out_w) {
                        ox = 0;
                        oy++;
                    }
                } else {
                    ss_copy_bytes(slot, col + (n - 1) * k_stride, k_stride);
                }
#endif
            }
            ss_conv_block(p, col, block, n, out_b + px * out_c, fast, full);
            px += n;
        }
    }
}

/* ---- the tiled path ----------------------------------------------------------------------- */

/* Bytes [c0, c0 + len) of the patch of output pixel (oy, ox) (ss_conv_gather's layout: taps in
 * filter order, the zero point outside the image, zeros past the patch) to dst. */
static void ss_conv_gather_chunk(const ss_conv_params_t *p, const int8_t *in_b, int oy, int ox,
                                 int c0, int len, int8_t *dst) {
    const int in_c = p->in_c, k_w = p->k_w;
    const int k = p->k_h * k_w * in_c;
    const int8_t zp = (int8_t)(-p->input_offset);
    const int iy0 = oy * p->stride_h - p->pad_h;
    const int ix0 = ox * p->stride_w - p->pad_w;
    int e = c0;
    const int end = c0 + len;
    int tap = e / in_c;
    int ch = e - tap * in_c;
    int ky = tap / k_w;
    int kx = tap - ky * k_w;
    while (e < end && e < k) {
        int seg = in_c - ch;
        if (seg > end - e) {
            seg = end - e;
        }
        const int iy = iy0 + ky * p->dil_h;
        const int ix = ix0 + kx * p->dil_w;
        if (iy < 0 || iy >= p->in_h || ix < 0 || ix >= p->in_w) {
            ss_fill_bytes(dst, zp, seg);
        } else {
            ss_copy_bytes(dst, in_b + (iy * p->in_w + ix) * in_c + ch, seg);
        }
        dst += seg;
        e += seg;
        ch = 0;
        if (++kx == k_w) {
            kx = 0;
            ky++;
        }
    }
    for (; e < end; e++) {
        *dst++ = 0;
    }
}

SS_SPECIALIZE void ss_conv_tiled(const ss_conv_params_t *p, const int8_t *input, int8_t *output,
                                 int fast, int full) {
    enum { BLK = 4 };
    const int in_h = p->in_h, in_w = p->in_w, in_c = p->in_c;
    const int out_w = p->out_w, out_c = p->out_c;
    const int chunk = p->chunk, chunks = p->k_stride / p->chunk;
    const int pixels = p->out_h * out_w;
    const int32_t zp = p->output_offset, lo = p->act_min, hi = p->act_max;
    int32_t acc[SS_CONV_TILE_CHANNELS * BLK];
#if SS_SIMD
    uint32_t col[SS_CONV_COL_ELEMS / 2];
    int8_t patch[SS_CONV_COL_ELEMS / BLK];
#else
    int8_t col[SS_CONV_COL_ELEMS];
#endif
    for (int b = 0; b < p->batches; b++) {
        const int8_t *in_b = input + b * in_h * in_w * in_c;
        int8_t *out_b = output + b * pixels * out_c;
        for (int px = 0; px < pixels; px += BLK) {
            const int n = pixels - px < BLK ? pixels - px : BLK;
            for (int g0 = 0; g0 < out_c; g0 += SS_CONV_TILE_CHANNELS) {
                const int gn = out_c - g0 < SS_CONV_TILE_CHANNELS ? out_c - g0
                                                                  : SS_CONV_TILE_CHANNELS;
                for (int j = 0; j < gn; j++) {
                    const int32_t s = p->chan[4 * (g0 + j)];
                    acc[BLK * j] = s;
                    acc[BLK * j + 1] = s;
                    acc[BLK * j + 2] = s;
                    acc[BLK * j + 3] = s;
                }
                for (int c = 0; c < chunks; c++) {
                    /* the block's pixels' chunk c (spare slots repeat the last pixel) */
                    for (int i = 0; i < BLK; i++) {
                        const int q = px + (i < n ? i : n - 1);
                        const int oy = q / out_w, ox = q - (q / out_w) * out_w;
#if SS_SIMD
                        ss_conv_gather_chunk(p, in_b, oy, ox, c * chunk, chunk, patch);
                        ss_conv_expand(patch, chunk, BLK, i, col);
#else
                        ss_conv_gather_chunk(p, in_b, oy, ox, c * chunk, chunk,
                                             col + i * chunk);
#endif
                    }
                    const int8_t *w = p->filter + ((size_t)c * out_c + g0) * chunk;
#if SS_CONV_ASM
                    const ss_blk_args_t args = {col, chunk, 0, p->chan + 4 * g0,
                                                (int8_t *)acc, w, gn};
                    ss_conv_blk4_acc(&args);
#else
                    for (int j = 0; j < gn; j++) {
#if SS_SIMD
                        ss_mk(col, w + j * chunk, chunk >> 2, BLK, acc + BLK * j);
#else
                        /* each weight loaded once for the block's four pixels */
                        const int8_t *wj = w + j * chunk;
                        const int8_t *c0 = col, *c1 = col + chunk, *c2 = c1 + chunk;
                        const int8_t *c3 = c2 + chunk;
                        int32_t s0 = acc[BLK * j], s1 = acc[BLK * j + 1];
                        int32_t s2 = acc[BLK * j + 2], s3 = acc[BLK * j + 3];
                        for (int k = 0; k < chunk; k++) {
                            const int32_t wk = wj[k];
                            s0 += c0[k] * wk;
                            s1 += c1[k] * wk;
                            s2 += c2[k] * wk;
                            s3 += c3[k] * wk;
                        }
                        acc[BLK * j] = s0;
                        acc[BLK * j + 1] = s1;
                        acc[BLK * j + 2] = s2;
                        acc[BLK * j + 3] = s3;
#endif
                    }
#endif
                }
                const int32_t *rec = p->chan + 4 * g0;
                int8_t *out = out_b + px * out_c + g0;
                for (int j = 0; j < gn; j++) {
                    for (int i = 0; i < n; i++) {
                        out[i * out_c + j] = ss_rq(acc[BLK * j + i], rec, fast, full, zp, lo, hi);
                    }
                    rec += 4;
                }
            }
        }
    }
}

void ss_conv_s8(const ss_conv_params_t *p, const int8_t *input, int8_t *output) {
    if (p->path == SS_CONV_TILED) {
        if (p->rq_fast && p->full_range) {
            ss_conv_tiled(p, input, output, 1, 1);
        } else {
            ss_conv_tiled(p, input, output, p->rq_fast, p->full_range);
        }
    } else if (p->path != SS_CONV_GEMM) {
        ss_conv_generic(p, input, output);
    } else if (p->rq_fast && p->full_range) {
        ss_conv_gemm(p, input, output, 1, 1);
    } else {
        ss_conv_gemm(p, input, output, p->rq_fast, p->full_range);
    }
}
