/*
 * sd_split_s8.c - SPLIT and SPLIT_V along one axis (byte copies).
 */
#include <string.h>

#include "sd_kernels.h"

sd_status_t sd_split_v_s8(const sd_split_params_t *params, const int8_t *input,
                          int8_t *const *outputs)
{
    if (params == 0 || input == 0 || outputs == 0 || params->num_outputs < 1 ||
        params->outer_size < 1 || params->inner_size < 1) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    int32_t axis_total = 0;
    for (int32_t k = 0; k < params->num_outputs; ++k) {
        axis_total += params->sizes != 0 ? params->sizes[k] : params->axis_size;
    }
    const int32_t in_row = axis_total * params->inner_size;
    int32_t offset = 0;
    for (int32_t k = 0; k < params->num_outputs; ++k) {
        const int32_t len =
            (params->sizes != 0 ? params->sizes[k] : params->axis_size) * params->inner_size;
        int8_t *out = outputs[k];
        if (out == 0) {
            return SD_STATUS_ERROR_ARGUMENT;
        }
        for (int32_t o = 0; o < params->outer_size; ++o) {
            memcpy(out + o * len, input + o * in_row + offset, (size_t)len);
        }
        offset += len;
    }
    return SD_STATUS_OK;
}

sd_status_t sd_split_s8(const sd_split_params_t *params, const int8_t *input,
                        int8_t *const *outputs)
{
    return sd_split_v_s8(params, input, outputs);
}
