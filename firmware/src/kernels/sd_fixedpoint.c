/*
 * sd_fixedpoint.c - gemmlowp-style fixed-point transcendental functions
 * (exp on negative values, 1/(1+x), logistic, tanh) used by the int8
 * LOGISTIC, TANH and SOFTMAX kernels. Written from the published algorithm
 * (gemmlowp fixedpoint.h); every rounding step matches it.
 */
#include "sd_fixedpoint.h"

/* Q0.31 constants (gemmlowp's checked fixed-point constants). */
#define SD_FP_EXP_MINUS_ONE_EIGHTH 1895147668 /* exp(-1/8) */
#define SD_FP_ONE_THIRD 715827883             /* 1/3 */
#define SD_FP_48_OVER_17 1515870810           /* 48/17 in Q2.29 */
#define SD_FP_NEG_32_OVER_17 (-1010580540)    /* -32/17 in Q2.29 */
#define SD_FP_Q2_ONE (1 << 29)                /* 1.0 in Q2.29 */

int32_t sd_saturating_rounding_doubling_high_mul(int32_t a, int32_t b)
{
    return sd_fp_srdhm(a, b);
}

int32_t sd_rounding_divide_by_pot(int32_t x, int32_t exponent)
{
    return sd_fp_rdbpot(x, exponent);
}

int32_t sd_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift)
{
    return sd_fp_mbqm(x, multiplier, shift);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out. */
static int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(int32_t a)
{
    const int32_t x = a + (1 << 28); /* a + 1/8 */
    const int32_t x2 = sd_fp_srdhm(x, x);
    const int32_t x3 = sd_fp_srdhm(x2, x);
    const int32_t x4 = sd_fp_srdhm(x2, x2);
    const int32_t x4_over_4 = sd_fp_rdbpot(x4, 2);
    const int32_t poly = sd_fp_rdbpot(sd_fp_srdhm(x4_over_4 + x3, SD_FP_ONE_THIRD) + x2, 1);
    return SD_FP_EXP_MINUS_ONE_EIGHTH + sd_fp_srdhm(SD_FP_EXP_MINUS_ONE_EIGHTH, x + poly);
}

int32_t sd_exp_on_negative_values(int32_t a, int32_t integer_bits)
{
    static const int32_t barrel[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1) */
        290630308,  /* exp(-2) */
        39332535,   /* exp(-4) */
        720401,     /* exp(-8) */
        242,        /* exp(-16) */
    };
    const int32_t fractional_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (fractional_bits - 2);
    const int32_t mask = one_quarter - 1;
    const int32_t a_mod_quarter_minus_one_quarter = (a & mask) - one_quarter;
    /* Rescale<0> from Q(integer_bits): saturating left shift by integer_bits. */
    const int32_t rescaled = integer_bits > 0
                                 ? sd_fp_sat_shl(a_mod_quarter_minus_one_quarter, integer_bits)
                                 : a_mod_quarter_minus_one_quarter;
    int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(rescaled);
    const int32_t remainder = a_mod_quarter_minus_one_quarter - a;

    for (int32_t k = 0; k < 7; ++k) {
        const int32_t exponent = k - 2;
        if (integer_bits > exponent) {
            const int32_t shift_amount = fractional_bits + exponent;
            if (remainder & ((int32_t)1 << shift_amount)) {
                result = sd_fp_srdhm(result, barrel[k]);
            }
        }
    }
    if (integer_bits > 5) {
        const int32_t clamp = -((int32_t)1 << (36 - integer_bits)); /* -32.0 */
        if (a < clamp) {
            result = 0;
        }
    }
    if (a == 0) {
        result = INT32_MAX;
    }
    return result;
}

/* Newton-Raphson reciprocal of half_denominator = (1 + a) / 2 (Q0.31, in
 * [1/2, 1)): three iterations from 48/17 - 32/17 d, result in Q2.29. */
static int32_t newton_reciprocal_q2(int32_t half_denominator)
{
    int32_t x = SD_FP_48_OVER_17 + sd_fp_srdhm(half_denominator, SD_FP_NEG_32_OVER_17);
    for (int i = 0; i < 3; ++i) {
        const int32_t half_denominator_times_x = sd_fp_srdhm(half_denominator, x);
        const int32_t one_minus = SD_FP_Q2_ONE - half_denominator_times_x;
        x = x + sd_fp_sat_shl(sd_fp_srdhm(x, one_minus), 2);
    }
    return x;
}

/* gemmlowp RoundingHalfSum for int32. */
static int32_t rounding_half_sum(int32_t a, int32_t b)
{
    const int64_t sum = (int64_t)a + (int64_t)b;
    const int64_t sign = sum >= 0 ? 1 : -1;
    return (int32_t)((sum + sign) / 2);
}

int32_t sd_one_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    const int32_t x = newton_reciprocal_q2(half_denominator);
    /* ExactMulByPot<-1> (Q2 -> Q1, same raw), then Rescale<0>: sat shl 1. */
    return sd_fp_sat_shl(x, 1);
}

static int32_t one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a)
{
    const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
    const int32_t x = newton_reciprocal_q2(half_denominator);
    /* Rescale<0>(x - 1) from Q2: saturating shift left by 2. */
    return sd_fp_sat_shl(x - SD_FP_Q2_ONE, 2);
}

int32_t sd_fixed_logistic(int32_t a, int32_t integer_bits)
{
    if (a == 0) {
        return 1 << 30; /* 0.5 */
    }
    const int32_t abs_a = a > 0 ? a : -a;
    const int32_t positive =
        sd_one_over_one_plus_x_for_x_in_0_1(sd_exp_on_negative_values(-abs_a, integer_bits));
    return a > 0 ? positive : INT32_MAX - positive;
}

int32_t sd_fixed_tanh(int32_t a, int32_t integer_bits)
{
    if (a == 0) {
        return 0;
    }
    const int32_t n = a < 0 ? a : -a;
    /* ExactMulByPot<1>: same raw, one more integer bit. */
    const int32_t t =
        one_minus_x_over_one_plus_x_for_x_in_0_1(sd_exp_on_negative_values(n, integer_bits + 1));
    return a < 0 ? -t : t;
}
