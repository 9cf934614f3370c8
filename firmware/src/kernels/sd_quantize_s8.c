/*
 * sd_quantize_s8.c - QUANTIZE int8 -> int8 (requantization).
 * Bit-exact with TFLite Micro's reference_ops::Requantize<int8_t, int8_t>.
 */
#include "sd_fixedpoint.h"

sd_status_t sd_quantize_s8(const sd_requantize_params_t *params, const int8_t *input,
                           int8_t *output, int32_t size)
{
    if (params == 0 || input == 0 || output == 0 || size < 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    for (int32_t i = 0; i < size; ++i) {
        const int32_t x = (int32_t)input[i] - params->input_zero_point;
        const int32_t y = sd_fp_mbqm(x, params->multiplier, params->shift) +
                          params->output_zero_point;
        output[i] = (int8_t)sd_fp_clamp(y, INT8_MIN, INT8_MAX);
    }
    return SD_STATUS_OK;
}
