/*
 * sd_unpack_s8.c - UNPACK along one axis (byte copies).
 */
#include <string.h>

#include "sd_kernels.h"

sd_status_t sd_unpack_s8(const sd_unpack_params_t *params, const int8_t *input,
                         int8_t *const *outputs)
{
    if (params == 0 || input == 0 || outputs == 0 || params->num < 1 ||
        params->outer_size < 1 || params->inner_size < 1) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    const int32_t inner = params->inner_size;
    for (int32_t k = 0; k < params->num; ++k) {
        int8_t *out = outputs[k];
        if (out == 0) {
            return SD_STATUS_ERROR_ARGUMENT;
        }
        for (int32_t o = 0; o < params->outer_size; ++o) {
            memcpy(out + o * inner, input + (o * params->num + k) * inner, (size_t)inner);
        }
    }
    return SD_STATUS_OK;
}
