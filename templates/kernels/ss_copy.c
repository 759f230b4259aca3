/* Data movement for RESHAPE (a plain copy) and CONCATENATION (strided row copies). */
#include <string.h>

#include "ss_kernels.h"

void ss_copy(const void *input, void *output, uint32_t bytes) {
    if (input != output) {
        memmove(output, input, bytes);
    }
}

void ss_copy_rows(const void *input, void *output, uint32_t rows, uint32_t row_bytes,
                  uint32_t in_stride, uint32_t out_stride) {
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    for (uint32_t r = 0; r < rows; r++) {
        memcpy(out, in, row_bytes);
        in += in_stride;
        out += out_stride;
    }
}
