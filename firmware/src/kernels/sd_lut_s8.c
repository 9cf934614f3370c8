/*
 * sd_lut_s8.c - int8 -> int8 table lookup (256 entries indexed by the
 * input's two's-complement byte). Used for LOGISTIC and TANH with tables the
 * generator computes with the same fixed-point arithmetic as sd_logistic_s8 /
 * sd_tanh_s8.
 */
#include "sd_kernels.h"

sd_status_t sd_lut_s8(const int8_t *table, const int8_t *input, int8_t *output, int32_t size)
{
    if (table == 0 || input == 0 || output == 0 || size < 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    for (int32_t i = 0; i < size; ++i) {
        output[i] = table[(uint8_t)input[i]];
    }
    return SD_STATUS_OK;
}
