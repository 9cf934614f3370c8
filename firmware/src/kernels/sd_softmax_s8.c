/*
 * sd_softmax_s8.c - int8 SOFTMAX over the last dimension, int8 output with
 * scale 1/256 and zero point -128.
 * Bit-exact with TFLite Micro's reference_ops::Softmax<int8_t, int8_t>:
 * differences to the row maximum in Q5.26, gemmlowp exp, sum in Q12.19,
 * reciprocal by Newton-Raphson.
 */
#include "sd_fixedpoint.h"

#define SD_SOFTMAX_SCALED_DIFF_INTEGER_BITS 5
#define SD_SOFTMAX_ACCUM_INTEGER_BITS 12

static int32_t count_leading_zeros_u32(uint32_t x)
{
    if (x == 0u) {
        return 32;
    }
#if defined(__GNUC__)
    return __builtin_clz(x);
#else
    int32_t n = 0;
    while ((x & 0x80000000u) == 0u) {
        x <<= 1;
        ++n;
    }
    return n;
#endif
}

sd_status_t sd_softmax_s8(const sd_softmax_params_t *params, const int8_t *input,
                          int8_t *output, int32_t rows, int32_t depth)
{
    if (params == 0 || input == 0 || output == 0 || rows < 0 || depth < 1) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    const int32_t mult = params->input_multiplier;
    const int32_t lshift = params->input_left_shift;
    const int32_t diff_min = params->diff_min;

    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *x = input + r * depth;
        int8_t *y = output + r * depth;
        int32_t max_in_row = INT8_MIN;
        for (int32_t c = 0; c < depth; ++c) {
            max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
        }

        int32_t sum_of_exps = 0; /* Q12.19 */
        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t scaled = sd_fp_srdhm(sd_fp_shl(diff, lshift), mult);
                const int32_t e = sd_exp_on_negative_values(scaled,
                                                            SD_SOFTMAX_SCALED_DIFF_INTEGER_BITS);
                /* Rescale<12> from Q0: rounding right shift by 12. */
                sum_of_exps += sd_fp_rdbpot(e, SD_SOFTMAX_ACCUM_INTEGER_BITS);
            }
        }

        /* GetReciprocal(sum_of_exps, 12). */
        const int32_t headroom_plus_one = count_leading_zeros_u32((uint32_t)sum_of_exps);
        const int32_t num_bits_over_unit = SD_SOFTMAX_ACCUM_INTEGER_BITS - headroom_plus_one;
        const int32_t shifted_sum_minus_one =
            (int32_t)(((uint32_t)sum_of_exps << headroom_plus_one) - ((uint32_t)1 << 31));
        const int32_t shifted_scale = sd_one_over_one_plus_x_for_x_in_0_1(shifted_sum_minus_one);
        const int32_t exponent = num_bits_over_unit + 31 - 8;

        for (int32_t c = 0; c < depth; ++c) {
            const int32_t diff = (int32_t)x[c] - max_in_row;
            if (diff >= diff_min) {
                const int32_t scaled = sd_fp_srdhm(sd_fp_shl(diff, lshift), mult);
                const int32_t e = sd_exp_on_negative_values(scaled,
                                                            SD_SOFTMAX_SCALED_DIFF_INTEGER_BITS);
                const int32_t unsat = sd_fp_rdbpot(sd_fp_srdhm(shifted_scale, e), exponent);
                y[c] = (int8_t)sd_fp_clamp(unsat - 128, INT8_MIN, INT8_MAX);
            } else {
                y[c] = INT8_MIN;
            }
        }
    }
    return SD_STATUS_OK;
}
