/*
 * sd_broadcast.c - see sd_broadcast.h.
 */
#include "sd_broadcast.h"

void sd_broadcast_binary(const sd_broadcast_t *bcast, const int8_t *input1, const int8_t *input2,
                         int8_t *output, sd_binary_op_t op, const void *params)
{
    int32_t o = 0;
    for (int32_t i0 = 0; i0 < bcast->dims[0]; ++i0) {
        for (int32_t i1 = 0; i1 < bcast->dims[1]; ++i1) {
            for (int32_t i2 = 0; i2 < bcast->dims[2]; ++i2) {
                const int32_t base1 = i0 * bcast->strides1[0] + i1 * bcast->strides1[1] +
                                      i2 * bcast->strides1[2];
                const int32_t base2 = i0 * bcast->strides2[0] + i1 * bcast->strides2[1] +
                                      i2 * bcast->strides2[2];
                for (int32_t i3 = 0; i3 < bcast->dims[3]; ++i3) {
                    output[o++] = op(params, input1[base1 + i3 * bcast->strides1[3]],
                                     input2[base2 + i3 * bcast->strides2[3]]);
                }
            }
        }
    }
}
