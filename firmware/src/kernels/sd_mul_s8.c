/*
 * sd_mul_s8.c - int8 MUL, optional 4-D broadcast.
 * Bit-exact with TFLite Micro's reference_integer_ops::MulElementwise.
 */
#include "sd_broadcast.h"
#include "sd_fixedpoint.h"

static int8_t mul_one(const sd_mul_params_t *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (p->input1_offset + x1) * (p->input2_offset + x2);
    const int32_t out =
        p->output_offset + sd_fp_mbqm(prod, p->output_multiplier, p->output_shift);
    return (int8_t)sd_fp_clamp(out, p->activation_min, p->activation_max);
}

/* mul_one with the signature sd_broadcast_binary takes. */
static int8_t mul_one_any(const void *p, int32_t x1, int32_t x2)
{
    return mul_one((const sd_mul_params_t *)p, x1, x2);
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
    if (sd_fp_mbqm_right_ok(m, s) && lo == -128 && hi == 127) {
        /* the common case: one rounding (sd_fp_mbqm_right), a saturating clamp */
        const int64_t k = sd_fp_mbqm_right_k(-s);
        const int32_t e = -s;
        const int8_t *const end = output + size;
        while (output != end) {
            const int32_t prod = (*input1++ + off1) * (*input2++ + off2);
            *output++ = (int8_t)sd_fp_sat8(zo + sd_fp_mbqm_right(prod, m, k, e));
        }
        return;
    }
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
    sd_broadcast_binary(bcast, input1, input2, output, mul_one_any, params);
    return SD_STATUS_OK;
}
