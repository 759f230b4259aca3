/* Elementwise 8-bit maps through a 256-entry table prepared by the generator: RELU and RELU6
 * (TFLM ReluQuantized / Relu6Quantized), and QUANTIZE between int8 and uint8 (TFLM Requantize).
 * Every output byte is a function of one input byte, so the table is exact. */
#include "ss_kernels.h"

void ss_lut8(const uint8_t *lut, const uint8_t *input, uint8_t *output, uint32_t size) {
    for (uint32_t i = 0; i < size; i++) {
        output[i] = lut[input[i]];
    }
}
