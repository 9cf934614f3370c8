/*
 * sd_mul_s8.c - int8 MUL, optional 4-D broadcast.
 * Bit-exact with TFLite Micro's reference_integer_ops::MulElementwise.
 */
#include "sd_broadcast.h"
#include "sd_fixedpoint.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
#define SD_MUL_HAVE_DSP 1
#else
#define SD_MUL_HAVE_DSP 0
#endif

#if SD_MUL_HAVE_DSP
/* The common case on cores with the DSP extension, in inline assembly (as
 * sd_add_s8.c's add_loop_dsp, same reasons): per element
 *   p   = 2 (x1 + off1) (x2 + off2)                 (|p| <= 2^17)
 *   out = SSAT8((SMMLAR(p, m, hz) - [p < 0]) >> e)   = rdbpot(srdhm(p / 2, m), e) + zero point
 *   (hz = 2^(e-1) + zero point 2^e; m >= 2^30)
 * 10 instructions per element, 4 elements per pass (the caller does the rest).
 * ctl: n (a multiple of 4, >= 4), 2 off1, off2, m, hz, e.
 * Bit-exact with mul_one: firmware/tests/binary_dsp (tests/test_binary_dsp.py). */
#define SD_MUL_ASM_ARG __attribute__((unused))
__attribute__((naked, noipa)) static void mul_loop_dsp(const int8_t *in1 SD_MUL_ASM_ARG,
                                                       const int8_t *in2 SD_MUL_ASM_ARG,
                                                       int8_t *out SD_MUL_ASM_ARG,
                                                       const uint32_t *ctl SD_MUL_ASM_ARG)
{
    __asm__ volatile(
        "    push    {r4-r11, lr}\n"
        "    ldr     r4, [r3], #4\n"
        "    add     r12, r2, r4\n" /* end of out */
        "    ldm     r3, {r8-r11, lr}\n" /* 2 off1, off2, m, hz, e */
#define SD_MUL_ELEM                                                                                      \
        "    ldrsb   r4, [r0], #1\n"                                                                     \
        "    ldrsb   r5, [r1], #1\n"                                                                     \
        "    add     r4, r8, r4, lsl #1\n"                                                               \
        "    add     r5, r5, r9\n"                                                                       \
        "    mul     r6, r4, r5\n"                                                                       \
        "    smmlar  r7, r6, r10, r11\n"                                                                 \
        "    add     r7, r7, r6, asr #31\n"                                                              \
        "    asr     r7, r7, lr\n"                                                                       \
        "    ssat    r7, #8, r7\n"                                                                       \
        "    strb    r7, [r2], #1\n"
        "1:\n" SD_MUL_ELEM SD_MUL_ELEM SD_MUL_ELEM SD_MUL_ELEM
        "    cmp     r2, r12\n"
        "    bne     1b\n"
        "    pop     {r4-r11, pc}\n");
#undef SD_MUL_ELEM
}
#endif

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

#if !SD_MUL_HAVE_DSP
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

#endif /* !SD_MUL_HAVE_DSP */

sd_status_t sd_mul_s8(const sd_mul_params_t *params, const sd_broadcast_t *bcast,
                      const int8_t *input1, const int8_t *input2, int8_t *output,
                      int32_t size)
{
    if (params == 0 || input1 == 0 || input2 == 0 || output == 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
#if SD_MUL_HAVE_DSP
    /* mul_loop_dsp's case: one-rounding output (normalized multiplier, right
     * shift 1..29), no fused activation, offsets in [-255, 255] and hz within
     * int32. The rest of the elements, and every other case, take mul_one. */
    const int32_t e = -params->output_shift;
    const int32_t zo = params->output_offset;
    const uint32_t azo = (uint32_t)(zo < 0 ? -zo : zo);
    const int32_t off1 = params->input1_offset;
    const int32_t off2 = params->input2_offset;
    if (bcast == 0 && size >= 4 && sd_fp_mbqm_right_ok(params->output_multiplier, params->output_shift) &&
        e <= 29 && params->activation_min == -128 && params->activation_max == 127 && off1 >= -255 &&
        off1 <= 255 && off2 >= -255 && off2 <= 255 && azo <= ((0x40000000u - (1u << (e - 1))) >> e)) {
        const int32_t n4 = size & ~3;
        const uint32_t ctl[6] = {(uint32_t)n4, (uint32_t)off1 * 2u, (uint32_t)off2,
                                 (uint32_t)params->output_multiplier, (1u << (e - 1)) + ((uint32_t)zo << e),
                                 (uint32_t)e};
        mul_loop_dsp(input1, input2, output, ctl);
        for (int32_t i = n4; i < size; ++i) {
            output[i] = mul_one(params, input1[i], input2[i]);
        }
        return SD_STATUS_OK;
    }
#else
    if (bcast == 0 && params->output_multiplier >= 0) {
        mul_same_shape(params, input1, input2, output, size);
        return SD_STATUS_OK;
    }
#endif
    if (bcast == 0) {
        for (int32_t i = 0; i < size; ++i) {
            output[i] = mul_one(params, input1[i], input2[i]);
        }
        return SD_STATUS_OK;
    }
    sd_broadcast_binary(bcast, input1, input2, output, mul_one_any, params);
    return SD_STATUS_OK;
}
