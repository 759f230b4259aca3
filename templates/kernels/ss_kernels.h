/* Portable reference kernels, one operator per file, bit-exact with TFLM's reference kernels.
 *
 * Every parameter (multipliers, shifts, activation ranges, padding, folded biases, lookup
 * tables) is prepared by the generator at build time; the kernels only compute. Tensors are
 * NHWC, raw pointers plus dimensions, in the spirit of TFLM's reference/integer_ops. An
 * optimized variant of a kernel keeps the same signature and is tested against this one. */
#ifndef SS_KERNELS_H
#define SS_KERNELS_H

#include <stdint.h>

/* Per output channel, CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED take a record of four int32
 * ("chan", [channels][4]): {start, mult, add | shift, rshift}. start is the accumulator's
 * initial value (the bias with the input offset folded in: bias + input_offset * sum of the
 * channel's weights; the plain bias on CONV_2D's generic path). With rq_fast the requantization
 * is ss_rq_fast(acc, mult, add, rshift), else TFLM's ss_mbqm(acc, mult, shift) + output_offset
 * (see ss_fixedpoint.h); the generator decides, per layer, where the fast form is exact. */

/* ---- CONV_2D (int8 activations, int8 weights OHWI, int32 bias, per-channel requant) -------- */
#define SS_CONV_GEMM 0u    /* patches of `block` output pixels gathered, then a GEMM */
#define SS_CONV_GENERIC 1u /* taps clipped to the image, TFLM's order (grouped convolutions) */
#define SS_CONV_TILED 2u   /* GEMM over patch chunks of `chunk` bytes, int32 partial sums */
/* The tiled path's output channels per group (its partial sums: 4 * this int32 on the stack). */
#define SS_CONV_TILE_CHANNELS 32
/* The GEMM path's stack buffer: block * k_stride patch elements at most (generator/schedule.py). */
#define SS_CONV_COL_ELEMS 512
typedef struct {
    uint16_t batches, in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c;
    uint16_t k_h, k_w, filter_in_c; /* filter_in_c = in_c / groups */
    uint16_t stride_h, stride_w, dil_h, dil_w;
    uint16_t pad_h, pad_w;
    uint16_t k_stride;  /* bytes per filter row: k_h * k_w * filter_in_c, on the GEMM path rounded
                           up to a multiple of 4 (zero weights in the tail) */
    uint16_t chunk;     /* tiled path: bytes per patch chunk (k_stride = chunks * chunk, the
                           filter stored chunk-major: [chunk][out_c][chunk bytes]) */
    uint8_t path;       /* SS_CONV_GEMM, SS_CONV_TILED or SS_CONV_GENERIC */
    uint8_t block;      /* output pixels per GEMM block (1..4), block * k_stride <= COL_ELEMS */
    uint8_t rq_fast;    /* requantization form of the channel records */
    uint8_t full_range; /* act_min == -128 and act_max == 127 */
    int32_t input_offset;      /* -input zero point */
    int32_t output_offset;     /* output zero point */
    int32_t act_min, act_max;
    const int8_t *filter;      /* [out_c][k_stride]: k_h x k_w x filter_in_c, then zeros */
    const int32_t *chan;       /* [out_c][4] channel records */
} ss_conv_params_t;
void ss_conv_s8(const ss_conv_params_t *p, const int8_t *input, int8_t *output);

/* ---- DEPTHWISE_CONV_2D (filter 1HWC with C = in_c * depth_multiplier) ---------------------- */
typedef struct {
    uint16_t batches, in_h, in_w, in_c;
    uint16_t out_h, out_w, out_c, depth_mult;
    uint16_t k_h, k_w;
    uint16_t stride_h, stride_w, dil_h, dil_w;
    uint16_t pad_h, pad_w;
    uint8_t rq_fast, full_range;
    int32_t input_offset, output_offset, act_min, act_max;
    const int8_t *filter;      /* per channel chunk (4 channels while 4 remain, then 1): the
                                  chunk's taps (k_h x k_w) after each other; with
                                  depth_mult > 1 only the single channels' chunks */
    const int16_t *filter16;   /* depth_mult > 1: the chunks of 4 channels, taps x 4 int16
                                  (sign-extended: halfword pairs for SMLABB/SMLABT), else 0 */
    const int32_t *chan;       /* [out_c][4] channel records (start = folded bias) */
    const int32_t *bias;       /* [out_c]: the plain bias (windows crossing the border) */
} ss_dwconv_params_t;
void ss_dwconv_s8(const ss_dwconv_params_t *p, const int8_t *input, int8_t *output);

/* ---- FULLY_CONNECTED ---------------------------------------------------------------------- */
typedef struct {
    uint32_t batches, accum_depth, out_c;
    uint8_t rq_fast, full_range;
    int32_t output_offset, act_min, act_max;
    const int8_t *weights;     /* [out_c][accum_depth] */
    const int32_t *chan;       /* [out_c][4] channel records (start = folded bias) */
} ss_fc_params_t;
void ss_fc_s8(const ss_fc_params_t *p, const int8_t *input, int8_t *output);

/* ---- AVERAGE_POOL_2D / MAX_POOL_2D (input and output share scale and zero point) ----------- */
typedef struct {
    uint16_t batches, in_h, in_w, channels;
    uint16_t out_h, out_w;
    uint16_t f_h, f_w, stride_h, stride_w, pad_h, pad_w;
    int32_t act_min, act_max;
} ss_pool_params_t;
void ss_avgpool_s8(const ss_pool_params_t *p, const int8_t *input, int8_t *output);
void ss_maxpool_s8(const ss_pool_params_t *p, const int8_t *input, int8_t *output);

/* ---- ADD (with up to 4-D broadcasting) ---------------------------------------------------- */
typedef struct {
    uint32_t size;             /* output elements */
    uint8_t broadcast;         /* 0: elementwise over size; 1: use dims/strides */
    uint16_t dims[4];          /* output dims (outermost first) */
    uint32_t stride1[4];       /* input 1 element strides per output dim (0 = broadcast) */
    uint32_t stride2[4];
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_mult, input1_shift, input2_mult, input2_shift;
    int32_t output_mult, output_shift;
    int32_t act_min, act_max;
} ss_add_params_t;
void ss_add_s8(const ss_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output);
/* SUB: the same parameters (TFLM prepares SUB like ADD), input 2 subtracted */
void ss_sub_s8(const ss_add_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output);

/* ---- MUL (with up to 4-D broadcasting) ---------------------------------------------------- */
typedef struct {
    uint32_t size;             /* output elements */
    uint8_t broadcast;         /* 0: elementwise over size; 1: use dims/strides */
    uint16_t dims[4];          /* output dims (outermost first) */
    uint32_t stride1[4];       /* input 1 element strides per output dim (0 = broadcast) */
    uint32_t stride2[4];
    int32_t input1_offset, input2_offset, output_offset;
    int32_t output_mult, output_shift; /* QuantizeMultiplier(s1 * s2 / s_out) */
    int32_t act_min, act_max;
} ss_mul_params_t;
void ss_mul_s8(const ss_mul_params_t *p, const int8_t *in1, const int8_t *in2, int8_t *output);

/* ---- SOFTMAX (int8 in, int8 out with scale 1/256 and zero point -128) ---------------------- */
typedef struct {
    uint32_t outer;            /* rows */
    uint32_t depth;            /* elements per row */
    const int32_t *exp_lut;    /* [256]: exp(beta * scale * -d) in Q0.31 for d = max - x, 0 below diff_min */
} ss_softmax_params_t;
void ss_softmax_s8(const ss_softmax_params_t *p, const int8_t *input, int8_t *output);

/* ---- MEAN over any set of axes (int8) ------------------------------------------------------ */
typedef struct {
    uint16_t out_ext[4];       /* kept dims: extents and input strides (elements) */
    uint32_t out_stride[4];
    uint16_t red_ext[4];       /* reduced dims */
    uint32_t red_stride[4];
    int32_t zp_times_count;    /* input zero point * number of reduced elements */
    int32_t mult, shift, output_offset;
} ss_mean_params_t;
void ss_mean_s8(const ss_mean_params_t *p, const int8_t *input, int8_t *output);

/* ---- PAD (up to 4-D, constant value) ------------------------------------------------------- */
typedef struct {
    uint16_t in_dims[4];
    uint16_t out_dims[4];
    uint16_t before[4];
    uint32_t elem_size;
    uint32_t out_bytes;
    int32_t pad_value;         /* byte value to fill with */
} ss_pad_params_t;
void ss_pad(const ss_pad_params_t *p, const void *input, void *output);

/* ---- data movement: RESHAPE, CONCATENATION ------------------------------------------------- */
void ss_copy(const void *input, void *output, uint32_t bytes);
/* Copy rows of row_bytes from input to output with the given row strides (bytes). */
void ss_copy_rows(const void *input, void *output, uint32_t rows, uint32_t row_bytes,
                  uint32_t in_stride, uint32_t out_stride);

/* ---- 8-bit elementwise maps: RELU, RELU6, QUANTIZE int8/uint8 -> int8/uint8 ---------------- */
/* lut is indexed by the input byte (uint8_t view of the input value). */
void ss_lut8(const uint8_t *lut, const uint8_t *input, uint8_t *output, uint32_t size);

/* ---- data movement by index map: TRANSPOSE, SLICE, ... ---------------------------------------- */
/* output[i] = input[map[i]]; the map is computed by the generator (u16 when the input has at
 * most 65536 bytes). */
void ss_gather8_u16(const uint8_t *input, const uint16_t *map, uint8_t *output, uint32_t size);
void ss_gather8_u32(const uint8_t *input, const uint32_t *map, uint8_t *output, uint32_t size);
/* output[map[i]] = input[i] (PACK: one call per input) */
void ss_scatter8_u32(const uint8_t *input, const uint32_t *map, uint8_t *output, uint32_t size);

/* ---- selection by index maps: MAXIMUM/MINIMUM, REDUCE_MAX/MIN, ARG_MAX/MIN ---------------- */
/* output[i] = max/min(a[map_a[i]], b[map_b[i]]) */
void ss_minmax8(const int8_t *a, const uint32_t *map_a, const int8_t *b, const uint32_t *map_b,
                int8_t *output, uint32_t size, uint32_t is_max);
/* output[o] = max/min over j < count of input[map[o * count + j]] */
void ss_reduce8(const int8_t *input, const uint32_t *map, int8_t *output, uint32_t outer,
                uint32_t count, uint32_t is_max);
/* output[o] = the first j < count where input[map[o * count + j]] is the max/min */
void ss_argreduce8(const int8_t *input, const uint32_t *map, int32_t *output, uint32_t outer,
                   uint32_t count, uint32_t is_max);

/* ---- PRELU (input and alpha broadcast through index maps) --------------------------------- */
typedef struct {
    uint32_t size;             /* output elements */
    int32_t input_offset, alpha_offset, output_offset;
    int32_t mult1, shift1;     /* input >= 0: input_scale / output_scale */
    int32_t mult2, shift2;     /* input < 0: input_scale * alpha_scale / output_scale */
} ss_prelu_params_t;
void ss_prelu_s8(const ss_prelu_params_t *p, const int8_t *input, const uint32_t *map_in,
                 const int8_t *alpha, const uint32_t *map_alpha, int8_t *output);

/* ---- SQUARED_DIFFERENCE (broadcast through index maps) ------------------------------------ */
typedef struct {
    uint32_t size;             /* output elements */
    int32_t input1_offset, input2_offset, output_offset;
    int32_t left_shift;
    int32_t input1_mult, input1_shift, input2_mult, input2_shift;
    int32_t output_mult, output_shift;
} ss_sqdiff_params_t;
void ss_sqdiff_s8(const ss_sqdiff_params_t *p, const int8_t *in1, const uint32_t *map1,
                  const int8_t *in2, const uint32_t *map2, int8_t *output);

/* ---- QUANTIZE float32 -> int8 / uint8 ------------------------------------------------------ */
typedef struct {
    uint32_t size;
    float scale;
    int32_t zero_point;
    int32_t q_min, q_max;      /* -128..127 for int8, 0..255 for uint8 */
} ss_quantize_params_t;
void ss_quantize_f32_s8(const ss_quantize_params_t *p, const float *input, int8_t *output);
void ss_quantize_f32_u8(const ss_quantize_params_t *p, const float *input, uint8_t *output);

/* ---- DEQUANTIZE int8 / uint8 -> float32 ---------------------------------------------------- */
/* lut[256] holds float(scale * (q - zero_point)) (computed in double, as TFLM does), indexed by
 * the input byte. */
void ss_dequantize_8_f32(const float *lut, const uint8_t *input, float *output, uint32_t size);

#endif
