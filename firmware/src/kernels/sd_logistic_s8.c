/*
 * sd_logistic_s8.c - int8 LOGISTIC (output scale 1/256, zero point -128).
 * Bit-exact with TFLite Micro's reference_integer_ops::Logistic (int8):
 * input rescaled to Q4.27, gemmlowp fixed-point logistic, rounded to Q0.8.
 */
#include "sd_fixedpoint.h"

#define SD_LOGISTIC_INPUT_INTEGER_BITS 4
#define SD_LOGISTIC_OUTPUT_INTEGER_BITS 8

sd_status_t sd_logistic_s8(const sd_activation_params_t *params, const int8_t *input,
                           int8_t *output, int32_t size)
{
    if (params == 0 || input == 0 || output == 0 || size < 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    const int32_t zp = params->input_zero_point;
    const int32_t radius = params->input_range_radius;
    for (int32_t i = 0; i < size; ++i) {
        const int32_t x = (int32_t)input[i] - zp;
        if (x <= -radius) {
            output[i] = INT8_MIN;
        } else if (x >= radius) {
            output[i] = INT8_MAX;
        } else {
            const int32_t x_q4 =
                sd_fp_mbqm(x, params->input_multiplier, params->input_left_shift);
            const int32_t y_q0 = sd_fixed_logistic(x_q4, SD_LOGISTIC_INPUT_INTEGER_BITS);
            const int32_t y = sd_fp_rdbpot(y_q0, 31 - SD_LOGISTIC_OUTPUT_INTEGER_BITS) - 128;
            output[i] = (int8_t)sd_fp_clamp(y, INT8_MIN, INT8_MAX);
        }
    }
    return SD_STATUS_OK;
}
