/*
 * sd_strided_slice_s8.c - STRIDED_SLICE on up to 4 dimensions with begin,
 * stride and output extents resolved ahead of time.
 */
#include <string.h>

#include "sd_kernels.h"

sd_status_t sd_strided_slice_s8(const sd_strided_slice_params_t *params, const int8_t *input,
                                int8_t *output)
{
    if (params == 0 || input == 0 || output == 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    int32_t in_stride[4];
    in_stride[3] = 1;
    for (int32_t d = 2; d >= 0; --d) {
        in_stride[d] = in_stride[d + 1] * params->input_dims[d + 1];
    }
    const int32_t *b = params->begin;
    const int32_t *s = params->stride;
    const int32_t *n = params->output_dims;
    int32_t o = 0;
    for (int32_t i0 = 0; i0 < n[0]; ++i0) {
        const int32_t p0 = (b[0] + i0 * s[0]) * in_stride[0];
        for (int32_t i1 = 0; i1 < n[1]; ++i1) {
            const int32_t p1 = p0 + (b[1] + i1 * s[1]) * in_stride[1];
            for (int32_t i2 = 0; i2 < n[2]; ++i2) {
                const int32_t p2 = p1 + (b[2] + i2 * s[2]) * in_stride[2];
                if (s[3] == 1) {
                    memcpy(output + o, input + p2 + b[3], (size_t)n[3]);
                    o += n[3];
                } else {
                    for (int32_t i3 = 0; i3 < n[3]; ++i3) {
                        output[o++] = input[p2 + b[3] + i3 * s[3]];
                    }
                }
            }
        }
    }
    return SD_STATUS_OK;
}
