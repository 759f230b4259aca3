/* Selection operators through index maps prepared by the generator (the broadcasting and the
 * reduced axes are resolved in the maps; TFLM compares the raw int8 values, no requantization):
 * MAXIMUM / MINIMUM (reference_ops::MaximumMinimumBroadcastSlow), REDUCE_MAX / REDUCE_MIN
 * (reference_ops::ReduceGeneric), ARG_MAX / ARG_MIN (reference_ops::ArgMinMax: the first
 * index of the extreme value wins). */
#include "ss_kernels.h"

void ss_minmax8(const int8_t *a, const uint32_t *map_a, const int8_t *b, const uint32_t *map_b,
                int8_t *output, uint32_t size, uint32_t is_max) {
    for (uint32_t i = 0; i < size; i++) {
        int8_t va = a[map_a[i]], vb = b[map_b[i]];
        output[i] = is_max ? (va > vb ? va : vb) : (va < vb ? va : vb);
    }
}

void ss_reduce8(const int8_t *input, const uint32_t *map, int8_t *output, uint32_t outer,
                uint32_t count, uint32_t is_max) {
    for (uint32_t o = 0; o < outer; o++) {
        const uint32_t *m = map + o * count;
        int8_t v = is_max ? (int8_t)-128 : (int8_t)127;
        for (uint32_t j = 0; j < count; j++) {
            int8_t x = input[m[j]];
            if (is_max ? x > v : x < v) v = x;
        }
        output[o] = v;
    }
}

void ss_argreduce8(const int8_t *input, const uint32_t *map, int32_t *output, uint32_t outer,
                   uint32_t count, uint32_t is_max) {
    for (uint32_t o = 0; o < outer; o++) {
        const uint32_t *m = map + o * count;
        int8_t v = input[m[0]];
        int32_t best = 0;
        for (uint32_t j = 1; j < count; j++) {
            int8_t x = input[m[j]];
            if (is_max ? x > v : x < v) {
                v = x;
                best = (int32_t)j;
            }
        }
        output[o] = best;
    }
}
