/* PAD / PADV2 with a constant value (TFLM reference_ops::Pad): fill, then copy the input rows
 * into place. Dimensions are padded to 4-D by the generator. */
#include <string.h>

#include "ss_kernels.h"

void ss_pad(const ss_pad_params_t *p, const void *input, void *output) {
    memset(output, (int)(uint8_t)p->pad_value, p->out_bytes);
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    const uint32_t es = p->elem_size;
    const uint32_t row = p->in_dims[3] * es;
    for (uint32_t a = 0; a < p->in_dims[0]; a++) {
        for (uint32_t b = 0; b < p->in_dims[1]; b++) {
            for (uint32_t c = 0; c < p->in_dims[2]; c++) {
                const uint32_t o =
                    (((a + p->before[0]) * p->out_dims[1] + b + p->before[1]) * p->out_dims[2] +
                     c + p->before[2]) * p->out_dims[3] + p->before[3];
                memcpy(out + o * es, in, row);
                in += row;
            }
        }
    }
}
