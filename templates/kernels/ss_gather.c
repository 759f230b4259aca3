/* Data movement as a gather through an index map prepared by the generator (TRANSPOSE, SLICE):
 * output byte i is input byte map[i]. The map is the operator's own index arithmetic evaluated
 * at generation time, so the kernel carries no shape logic and no arithmetic on the values. */
#include "ss_kernels.h"

void ss_gather8_u16(const uint8_t *input, const uint16_t *map, uint8_t *output, uint32_t size) {
    for (uint32_t i = 0; i < size; i++) {
        output[i] = input[map[i]];
    }
}

void ss_gather8_u32(const uint8_t *input, const uint32_t *map, uint8_t *output, uint32_t size) {
    for (uint32_t i = 0; i < size; i++) {
        output[i] = input[map[i]];
    }
}

/* PACK: input byte i goes to output byte map[i] (one call per packed input). */
void ss_scatter8_u32(const uint8_t *input, const uint32_t *map, uint8_t *output, uint32_t size) {
    for (uint32_t i = 0; i < size; i++) {
        output[map[i]] = input[i];
    }
}
