/*
 * sd_add_s8.c - int8 ADD with rescaling of both inputs to a common scale
 * (TFLite's left_shift = 20 scheme), optional 4-D broadcast.
 * Bit-exact with TFLite Micro's reference_integer_ops::AddFunc.
 */
#include "sd_broadcast.h"
#include "sd_fixedpoint.h"

static int8_t add_one(const sd_add_params_t *p, int32_t x1, int32_t x2)
{
    const int32_t in1 = sd_fp_shl(p->input1_offset + x1, p->left_shift);
    const int32_t in2 = sd_fp_shl(p->input2_offset + x2, p->left_shift);
    const int32_t s1 = sd_fp_rdbpot(sd_fp_srdhm(in1, p->input1_multiplier), -p->input1_shift);
    const int32_t s2 = sd_fp_rdbpot(sd_fp_srdhm(in2, p->input2_multiplier), -p->input2_shift);
    const int32_t sum = s1 + s2;
    const int32_t out =
        sd_fp_rdbpot(sd_fp_srdhm(sum, p->output_multiplier), -p->output_shift) + p->output_offset;
    return (int8_t)sd_fp_clamp(out, p->activation_min, p->activation_max);
}

/* add_one with the signature sd_broadcast_binary takes. */
static int8_t add_one_any(const void *p, int32_t x1, int32_t x2)
{
    return add_one((const sd_add_params_t *)p, x1, x2);
}

/* The common int8 case: same-size inputs, left_shift 20. With v = x + offset
 * in [-255, 255], srdhm(v * 2^20, m) = floor((v * m + 2^10) / 2^11)
 * = v * (m >> 11) + ((v * (m & 2047) + 2^10) >> 11), all in 32 bits. */
static void add_same_shape(const sd_add_params_t *p, const int8_t *input1, const int8_t *input2,
                           int8_t *output, int32_t size)
{
    const int32_t off1 = p->input1_offset;
    const int32_t off2 = p->input2_offset;
    const int32_t m1h = p->input1_multiplier >> 11;
    const int32_t m1l = p->input1_multiplier & 2047;
    const int32_t m2h = p->input2_multiplier >> 11;
    const int32_t m2l = p->input2_multiplier & 2047;
    const int32_t e1 = -p->input1_shift;
    const int32_t e2 = -p->input2_shift;
    const int32_t mo = p->output_multiplier;
    const int32_t eo = -p->output_shift;
    const int32_t zo = p->output_offset;
    const int32_t lo = p->activation_min;
    const int32_t hi = p->activation_max;
    for (int32_t i = 0; i < size; ++i) {
        const int32_t v1 = input1[i] + off1;
        const int32_t v2 = input2[i] + off2;
        const int32_t r1 = v1 * m1h + ((v1 * m1l + 1024) >> 11);
        const int32_t r2 = v2 * m2h + ((v2 * m2l + 1024) >> 11);
        const int32_t sum = sd_fp_rdbpot(r1, e1) + sd_fp_rdbpot(r2, e2);
        const int32_t out = sd_fp_rdbpot(sd_fp_srdhm_nosat(sum, mo), eo) + zo;
        output[i] = (int8_t)sd_fp_clamp(out, lo, hi);
    }
}

sd_status_t sd_add_s8(const sd_add_params_t *params, const sd_broadcast_t *bcast,
                      const int8_t *input1, const int8_t *input2, int8_t *output,
                      int32_t size)
{
    if (params == 0 || input1 == 0 || input2 == 0 || output == 0 || params->input1_shift > 0 ||
        params->input2_shift > 0 || params->output_shift > 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    if (bcast == 0 && params->left_shift == 20 && params->input1_multiplier >= 0 &&
        params->input2_multiplier >= 0 && params->output_multiplier >= 0) {
        add_same_shape(params, input1, input2, output, size);
        return SD_STATUS_OK;
    }
    if (bcast == 0) {
        for (int32_t i = 0; i < size; ++i) {
            output[i] = add_one(params, input1[i], input2[i]);
        }
        return SD_STATUS_OK;
    }
    sd_broadcast_binary(bcast, input1, input2, output, add_one_any, params);
    return SD_STATUS_OK;
}
