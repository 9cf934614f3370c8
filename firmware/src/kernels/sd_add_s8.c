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

sd_status_t sd_add_s8(const sd_add_params_t *params, const sd_broadcast_t *bcast,
                      const int8_t *input1, const int8_t *input2, int8_t *output,
                      int32_t size)
{
    if (params == 0 || input1 == 0 || input2 == 0 || output == 0 || params->input1_shift > 0 ||
        params->input2_shift > 0 || params->output_shift > 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    if (bcast == 0 && params->left_shift == 20 &&
        add_scale_ok(params->input1_multiplier, params->input1_shift) &&
        add_scale_ok(params->input2_multiplier, params->input2_shift) &&
        sd_fp_mbqm_right_ok(params->output_multiplier, params->output_shift)) {
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
