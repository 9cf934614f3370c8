/*
 * sd_add_s8.c - int8 ADD with rescaling of both inputs to a common scale
 * (TFLite's left_shift = 20 scheme), optional 4-D broadcast.
 * Bit-exact with TFLite Micro's reference_integer_ops::AddFunc.
 */
#include "sd_broadcast.h"
#include "sd_fixedpoint.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && defined(__GNUC__)
#define SD_ADD_HAVE_DSP 1
#else
#define SD_ADD_HAVE_DSP 0
#endif

#if SD_ADD_HAVE_DSP
/* The common case (add_same_shape's first loop) on cores with the DSP
 * extension, in inline assembly: SMMLAR (the rounding high multiply) gives
 * TFLite's SaturatingRoundingDoublingHighMul of a doubled operand in one
 * instruction, and a register shift + SSAT finish each rounding. Per
 * element (v2 = x2 + input2 offset, input 1 the exactly halved one):
 *   a    = v2 2^21                                  (ADD, offset pre-shifted)
 *   s    = (SMMLAR(a, m2, h2) - [a < 0]) >> e2       = rdbpot(srdhm(v2 2^20, m2), e2) + off1 2^19
 *          (h2 = 2^(e2-1) + off1 2^(19+e2); srdhm(v 2^20, m) = floor((v 2^21 m + 2^31) / 2^32);
 *           its sign is v's for m >= 2^30)
 *   sum  = s + x1 2^19
 *   out  = SSAT8((SMMLAR(2 sum, mo, hz) - [sum < 0]) >> eo)
 *          (hz = 2^(eo-1) + zero point 2^eo: rdbpot(srdhm(sum, mo), eo) + zero point)
 * 13 instructions per element, 4 elements per pass (the caller does the
 * rest). Assembly rather than intrinsics: GCC 12's arm_acle.h has no SMMLAR,
 * and the loop needs all 14 registers (7 constants, 3 pointers, 4 temporaries).
 * ctl: n (a multiple of 4, >= 4), off2 2^21, m2, h2, e2, mo, hz, eo.
 * Bit-exact with add_one: firmware/tests/binary_dsp (tests/test_binary_dsp.py). */
#define SD_ADD_ASM_ARG __attribute__((unused))
__attribute__((naked, noipa)) static void add_loop_dsp(const int8_t *in1 SD_ADD_ASM_ARG,
                                                       const int8_t *in2 SD_ADD_ASM_ARG,
                                                       int8_t *out SD_ADD_ASM_ARG,
                                                       const uint32_t *ctl SD_ADD_ASM_ARG)
{
    __asm__ volatile(
        "    push    {r4-r11, lr}\n"
        "    ldr     r4, [r3], #4\n"
        "    add     r4, r2, r4\n"
        "    push    {r4}\n" /* [sp]: end of out */
        "    ldm     r3, {r3, r8-r12, lr}\n" /* off2s m2 h2 e2 mo hz eo */
#define SD_ADD_ELEM                                                                                      \
        "    ldrsb   r4, [r0], #1\n"                                                                     \
        "    ldrsb   r5, [r1], #1\n"                                                                     \
        "    add     r5, r3, r5, lsl #21\n"                                                              \
        "    smmlar  r6, r5, r8, r9\n"                                                                   \
        "    add     r6, r6, r5, asr #31\n"                                                              \
        "    asr     r6, r6, r10\n"                                                                      \
        "    add     r6, r6, r4, lsl #19\n"                                                              \
        "    lsl     r7, r6, #1\n"                                                                       \
        "    smmlar  r7, r7, r11, r12\n"                                                                 \
        "    add     r7, r7, r6, asr #31\n"                                                              \
        "    asr     r7, r7, lr\n"                                                                       \
        "    ssat    r7, #8, r7\n"                                                                       \
        "    strb    r7, [r2], #1\n"
        "1:\n" SD_ADD_ELEM SD_ADD_ELEM SD_ADD_ELEM SD_ADD_ELEM
        "    ldr     r4, [sp]\n"
        "    cmp     r2, r4\n"
        "    bne     1b\n"
        "    add     sp, sp, #4\n"
        "    pop     {r4-r11, pc}\n");
#undef SD_ADD_ELEM
}
#endif

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

#if !SD_ADD_HAVE_DSP
/* One input's rescaling, rdbpot(srdhm((x + offset) << 20, m), e), for
 * left_shift 20 and 2^30 <= m < 2^31, 0 <= e <= 20, in 32-bit arithmetic.
 * With v = x + offset in [-255, 255] and m = mh 2^11 + ml:
 *   srdhm(v 2^20, m) = floor((v m + 2^10) / 2^11)          (exact: no saturation)
 *   and, folding the rounding shift as in sd_fp_mbqm_right,
 *   result = floor((v mh - [v < 0] [e > 0] + floor((v ml + c) / 2^11)) / 2^e),
 *   c = 2^10 + 2^(10+e) [e > 0].
 * For m = 2^30, e = 0 (the input with the larger scale, TFLite's usual
 * case) this is v 2^19. */
typedef struct {
    int32_t offset;
    int32_t mh;
    int32_t ml;
    int32_t c;
    int32_t sadj; /* -1 if e > 0 else 0 */
    int32_t e;
} add_scale_t;

static add_scale_t add_scale_make(int32_t offset, int32_t m, int32_t shift)
{
    add_scale_t a;
    a.offset = offset;
    a.mh = m >> 11;
    a.ml = m & 2047;
    a.e = -shift;
    a.c = a.e > 0 ? (1 << 10) + (1 << (10 + a.e)) : (1 << 10);
    a.sadj = a.e > 0 ? -1 : 0;
    return a;
}

SD_INLINE int32_t add_scale(const add_scale_t *a, int32_t x)
{
    const int32_t v = x + a->offset;
    return (v * a->mh + ((v * a->ml + a->c) >> 11) + ((v >> 31) & a->sadj)) >> a->e;
}

/* m = 2^30, e = 0: the rescaled input is exactly v 2^19. */
static int add_scale_is_half(const add_scale_t *a)
{
    return a->mh == (1 << 19) && a->ml == 0 && a->e == 0;
}

static int add_scale_ok(int32_t m, int32_t shift)
{
    return m >= (1 << 30) && shift <= 0 && shift >= -20;
}

/* The output rescaling, rdbpot(srdhm(sum, mo), eo) + zo, clamped. */
typedef struct {
    int64_t k;
    int32_t m;
    int32_t e;
    int32_t zo;
    int32_t lo;
    int32_t hi;
} add_out_t;

SD_INLINE int8_t add_out(const add_out_t *o, int32_t sum)
{
    return (int8_t)sd_fp_clamp(sd_fp_mbqm_right(sum, o->m, o->k, o->e) + o->zo, o->lo, o->hi);
}

/* The common int8 case: same-size inputs, left_shift 20, normalized
 * multipliers, output shift <= -1. The sums are below 2^28 in magnitude. */
static void add_same_shape(const sd_add_params_t *p, const int8_t *input1, const int8_t *input2,
                           int8_t *output, int32_t size)
{
    add_scale_t a1 = add_scale_make(p->input1_offset, p->input1_multiplier, p->input1_shift);
    add_scale_t a2 = add_scale_make(p->input2_offset, p->input2_multiplier, p->input2_shift);
    add_out_t o;
    o.m = p->output_multiplier;
    o.e = -p->output_shift;
    o.k = sd_fp_mbqm_right_k(o.e);
    o.zo = p->output_offset;
    o.lo = p->activation_min;
    o.hi = p->activation_max;
    /* Addition commutes: put an input that is exactly halved first. */
    if (!add_scale_is_half(&a1)) {
        const add_scale_t t = a1;
        const int8_t *ti = input1;
        a1 = a2;
        a2 = t;
        input1 = input2;
        input2 = ti;
    }
    if (add_scale_is_half(&a1) && a2.e > 0) {
        const int32_t k1 = a1.offset * (1 << 19);
        const int32_t off2 = a2.offset;
        const int32_t mh = a2.mh;
        const int32_t ml = a2.ml;
        const int32_t c = a2.c;
        const int32_t e = a2.e;
        if (o.lo == -128 && o.hi == 127) { /* no fused activation: a saturating clamp */
            const int64_t k = o.k;
            const int32_t m = o.m;
            const int32_t eo = o.e;
            const int32_t zo = o.zo;
            const int8_t *const end = output + size;
            while (output != end) {
                const int32_t v2 = *input2++ + off2;
                const int32_t s2 = (v2 * mh + ((v2 * ml + c) >> 11) + (v2 >> 31)) >> e;
                const int32_t sum = *input1++ * (1 << 19) + k1 + s2;
                *output++ = (int8_t)sd_fp_sat8(sd_fp_mbqm_right(sum, m, k, eo) + zo);
            }
            return;
        }
        for (int32_t i = 0; i < size; ++i) {
            const int32_t v2 = input2[i] + off2;
            const int32_t s2 = (v2 * mh + ((v2 * ml + c) >> 11) + (v2 >> 31)) >> e;
            output[i] = add_out(&o, input1[i] * (1 << 19) + k1 + s2);
        }
        return;
    }
    for (int32_t i = 0; i < size; ++i) {
        output[i] = add_out(&o, add_scale(&a1, input1[i]) + add_scale(&a2, input2[i]));
    }
}

#endif /* !SD_ADD_HAVE_DSP */

sd_status_t sd_add_s8(const sd_add_params_t *params, const sd_broadcast_t *bcast,
                      const int8_t *input1, const int8_t *input2, int8_t *output,
                      int32_t size)
{
    if (params == 0 || input1 == 0 || input2 == 0 || output == 0 || params->input1_shift > 0 ||
        params->input2_shift > 0 || params->output_shift > 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
#if SD_ADD_HAVE_DSP
    if (bcast == 0 && size >= 4) {
        /* add_loop_dsp's case: one input exactly halved (m = 2^30, shift 0;
         * addition commutes), the other with a normalized multiplier and a
         * right shift e2 in 1..12, left_shift 20, one-rounding output, no
         * fused activation, and every intermediate within int32 (the bounds
         * below, in 32-bit arithmetic). The rest of the elements, and every
         * other case, take add_one (the reference arithmetic). */
        const int swap = params->input1_multiplier != (1 << 30) || params->input1_shift != 0;
        const int8_t *in1 = swap ? input2 : input1;
        const int8_t *in2 = swap ? input1 : input2;
        const int32_t off1 = swap ? params->input2_offset : params->input1_offset;
        const int32_t off2 = swap ? params->input1_offset : params->input2_offset;
        const int32_t m1 = swap ? params->input2_multiplier : params->input1_multiplier;
        const int32_t s1 = swap ? params->input2_shift : params->input1_shift;
        const int32_t m2 = swap ? params->input1_multiplier : params->input2_multiplier;
        const int32_t e2 = -(swap ? params->input1_shift : params->input2_shift);
        const int32_t mo = params->output_multiplier;
        const int32_t eo = -params->output_shift;
        const int32_t zo = params->output_offset;
        const uint32_t aoff1 = (uint32_t)(off1 < 0 ? -off1 : off1);
        const uint32_t azo = (uint32_t)(zo < 0 ? -zo : zo);
        if (params->left_shift == 20 && m1 == (1 << 30) && s1 == 0 && m2 >= (1 << 30) && e2 >= 1 && e2 <= 12 &&
            sd_fp_mbqm_right_ok(mo, params->output_shift) && eo <= 29 && params->activation_min == -128 &&
            params->activation_max == 127 && off2 >= -255 && off2 <= 255 &&
            aoff1 <= ((0x70000000u - (1u << (e2 - 1))) >> (19 + e2)) &&
            azo <= ((0x40000000u - (1u << (eo - 1))) >> eo)) {
            const int32_t n4 = size & ~3;
            const uint32_t ctl[8] = {
                (uint32_t)n4, (uint32_t)off2 << 21, (uint32_t)m2,
                (1u << (e2 - 1)) + ((uint32_t)off1 << (19 + e2)), (uint32_t)e2, (uint32_t)mo,
                (1u << (eo - 1)) + ((uint32_t)zo << eo), (uint32_t)eo,
            };
            add_loop_dsp(in1, in2, output, ctl);
            for (int32_t i = n4; i < size; ++i) {
                output[i] = add_one(params, input1[i], input2[i]);
            }
            return SD_STATUS_OK;
        }
    }
#else
    if (bcast == 0 && params->left_shift == 20 &&
        add_scale_ok(params->input1_multiplier, params->input1_shift) &&
        add_scale_ok(params->input2_multiplier, params->input2_shift) &&
        sd_fp_mbqm_right_ok(params->output_multiplier, params->output_shift)) {
        add_same_shape(params, input1, input2, output, size);
        return SD_STATUS_OK;
    }
#endif
    if (bcast == 0) {
        for (int32_t i = 0; i < size; ++i) {
            output[i] = add_one(params, input1[i], input2[i]);
        }
        return SD_STATUS_OK;
    }
    sd_broadcast_binary(bcast, input1, input2, output, add_one_any, params);
    return SD_STATUS_OK;
}
