/*
 * sd_fixedpoint.h - internal fixed-point primitives shared by the kernels.
 *
 * Semantics follow gemmlowp's fixedpoint.h and TFLite's common.h in the
 * default (double rounding) configuration, which is what TFLite Micro's
 * reference integer kernels use. Signed right shifts are arithmetic (true for
 * GCC and Clang on every target we build for).
 */
#ifndef SD_FIXEDPOINT_H
#define SD_FIXEDPOINT_H

#include <stdint.h>

#include "sd_kernels.h"

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#include <arm_acle.h>
#endif

#if defined(__GNUC__)
#define SD_INLINE static inline __attribute__((always_inline))
#else
#define SD_INLINE static inline
#endif

/* (a * b + 2^30) >> 31 (floor) equals gemmlowp's
 * (a * b + (ab >= 0 ? 2^30 : 1 - 2^30)) / 2^31 (truncating) for every a, b:
 * for ab < 0 the truncating division of ab + 1 - 2^30 is the floor of
 * (ab + 1 - 2^30 + 2^31 - 1) / 2^31. Valid unless a == b == INT32_MIN. */
SD_INLINE int32_t sd_fp_srdhm_nosat(int32_t a, int32_t b)
{
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

SD_INLINE int32_t sd_fp_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return sd_fp_srdhm_nosat(a, b);
}

SD_INLINE int32_t sd_fp_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* x * 2^shift with wrap-around (TFLite's x * (1 << left_shift)). */
SD_INLINE int32_t sd_fp_shl(int32_t x, int32_t shift)
{
    return (int32_t)((uint32_t)x << shift);
}

SD_INLINE int32_t sd_fp_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return sd_fp_rdbpot(sd_fp_srdhm(sd_fp_shl(x, left), multiplier), right);
}

/* sd_fp_mbqm for a multiplier >= 0 (never INT32_MIN), as every requantizing
 * multiplier computed by the generator is. */
SD_INLINE int32_t sd_fp_mbqm_fast(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift > 0) {
        return sd_fp_srdhm_nosat(sd_fp_shl(x, shift), multiplier);
    }
    return sd_fp_rdbpot(sd_fp_srdhm_nosat(x, multiplier), -shift);
}

/* MultiplyByQuantizedMultiplier(x, m, -e) for a normalized multiplier
 * (2^30 <= m < 2^31) and a right shift e >= 1, with both roundings in one:
 *   rdbpot(srdhm(x, m), e) = floor((x m + 2^30 + 2^(30+e) - 2^31 [x < 0]) / 2^(31+e)).
 * (Nested floors: floor((floor(N / 2^31) + c) / 2^e) = floor((N + c 2^31) / 2^(31+e))
 * with c = 2^(e-1) - [srdhm < 0]; and srdhm(x, m) < 0 exactly when x < 0 for
 * m >= 2^30, the case x = -1, m = 2^30 giving the same floor either way.)
 * `k` = sd_fp_mbqm_right_k(e). No intermediate can overflow: it is 64-bit. */
SD_INLINE int64_t sd_fp_mbqm_right_k(int32_t e)
{
    return ((int64_t)1 << 30) + ((int64_t)1 << (30 + e));
}

SD_INLINE int32_t sd_fp_mbqm_right(int32_t x, int32_t m, int64_t k, int32_t e)
{
    const int64_t acc = (k - (int64_t)((uint32_t)x & 0x80000000u)) + (int64_t)x * m;
    return (int32_t)(acc >> 32) >> (e - 1);
}

/* Whether sd_fp_mbqm_right computes MultiplyByQuantizedMultiplier(x, m, shift). */
SD_INLINE int sd_fp_mbqm_right_ok(int32_t m, int32_t shift)
{
    return m >= (1 << 30) && shift <= -1 && shift >= -31;
}

/* gemmlowp SaturatingRoundingMultiplyByPOT<exponent> for exponent > 0. */
SD_INLINE int32_t sd_fp_sat_shl(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((((int64_t)1) << (31 - exponent)) - 1);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return sd_fp_shl(x, exponent);
}

SD_INLINE int32_t sd_fp_clamp(int32_t x, int32_t lo, int32_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* x clamped to [-128, 127]: one SSAT on cores that have it (every ARMv7-M
 * and later; part of the base instruction set, not the DSP extension). */
SD_INLINE int32_t sd_fp_sat8(int32_t x)
{
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
    return __ssat(x, 8);
#else
    return sd_fp_clamp(x, -128, 127);
#endif
}

#endif /* SD_FIXEDPOINT_H */
