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
    /* 4 per pass: 3 instructions per element (LDRB, LDRB, STRB) and the
     * loop's compare and branch once per 4 */
    const uint8_t *in = (const uint8_t *)input;
    const int8_t *const end4 = output + (size & ~3);
    while (output != end4) {
        const int8_t y0 = table[in[0]];
        const int8_t y1 = table[in[1]];
        const int8_t y2 = table[in[2]];
        const int8_t y3 = table[in[3]];
        output[0] = y0;
        output[1] = y1;
        output[2] = y2;
        output[3] = y3;
        in += 4;
        output += 4;
    }
    for (int32_t i = 0; i < (size & 3); ++i) {
        output[i] = table[in[i]];
    }
    return SD_STATUS_OK;
}
