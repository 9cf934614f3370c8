/*
 * sd_mul_s8.c - int8 MUL, optional 4-D broadcast.
 * Bit-exact with TFLite Micro's reference_integer_ops::MulElementwise.
 */
#include "sd_fixedpoint.h"

static int8_t mul_one(const sd_mul_params_t *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (p->input1_offset + x1) * (p->input2_offset + x2);
    const int32_t out =
        p->output_offset + sd_fp_mbqm(prod, p->output_multiplier, p->output_shift);
    return (int8_t)sd_fp_clamp(out, p->activation_min, p->activation_max);
}

static void mul_same_shape(const sd_mul_params_t *p, const int8_t *input1, const int8_t *input2,
                           int8_t *output, int32_t size)
{
    const int32_t off1 = p->input1_offset;
    const int32_t off2 = p->input2_offset;
    const int32_t m = p->output_multiplier;
    const int32_t s = p->output_shift;
    const int32_t zo = p->output_offset;
    const int32_t lo = p->activation_min;
    const int32_t hi = p->activation_max;
    for (int32_t i = 0; i < size; ++i) {
        const int32_t prod = (input1[i] + off1) * (input2[i] + off2);
        const int32_t out = zo + sd_fp_mbqm_fast(prod, m, s);
        output[i] = (int8_t)sd_fp_clamp(out, lo, hi);
    }
}

sd_status_t sd_mul_s8(const sd_mul_params_t *params, const sd_broadcast_t *bcast,
                      const int8_t *input1, const int8_t *input2, int8_t *output,
                      int32_t size)
{
    if (params == 0 || input1 == 0 || input2 == 0 || output == 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    if (bcast == 0 && params->output_multiplier >= 0) {
        mul_same_shape(params, input1, input2, output, size);
        return SD_STATUS_OK;
    }
    if (bcast == 0) {
        for (int32_t i = 0; i < size; ++i) {
            output[i] = mul_one(params, input1[i], input2[i]);
        }
        return SD_STATUS_OK;
    }
    int32_t o = 0;
    for (int32_t i0 = 0; i0 < bcast->dims[0]; ++i0) {
        for (int32_t i1 = 0; i1 < bcast->dims[1]; ++i1) {
            for (int32_t i2 = 0; i2 < bcast->dims[2]; ++i2) {
                const int32_t base1 = i0 * bcast->strides1[0] + i1 * bcast->strides1[1] +
                                      i2 * bcast->strides1[2];
                const int32_t base2 = i0 * bcast->strides2[0] + i1 * bcast->strides2[1] +
                                      i2 * bcast->strides2[2];
                for (int32_t i3 = 0; i3 < bcast->dims[3]; ++i3) {
                    output[o++] = mul_one(params, input1[base1 + i3 * bcast->strides1[3]],
                                          input2[base2 + i3 * bcast->strides2[3]]);
                }
            }
        }
    }
    return SD_STATUS_OK;
}
