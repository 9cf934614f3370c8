/*
 * sd_concatenation_s8.c - CONCATENATION along one axis (byte copies; the
 * generator only accepts inputs quantized like the output, as TFLite Micro
 * copies bytes without rescaling).
 */
#include <string.h>

#include "sd_kernels.h"

sd_status_t sd_concatenation_s8(const sd_concatenation_params_t *params,
                                const int8_t *const *inputs, int8_t *output)
{
    if (params == 0 || inputs == 0 || output == 0 || params->num_inputs < 1 ||
        params->sizes == 0 || params->outer_size < 1 || params->inner_size < 1) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    int32_t out_row = 0;
    for (int32_t k = 0; k < params->num_inputs; ++k) {
        out_row += params->sizes[k] * params->inner_size;
    }
    int32_t offset = 0;
    for (int32_t k = 0; k < params->num_inputs; ++k) {
        const int32_t len = params->sizes[k] * params->inner_size;
        const int8_t *in = inputs[k];
        if (in == 0) {
            return SD_STATUS_ERROR_ARGUMENT;
        }
        for (int32_t o = 0; o < params->outer_size; ++o) {
            memcpy(output + o * out_row + offset, in + o * len, (size_t)len);
        }
        offset += len;
    }
    return SD_STATUS_OK;
}
