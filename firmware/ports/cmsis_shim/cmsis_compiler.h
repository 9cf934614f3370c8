/*
 * cmsis_compiler.h - the small part of CMSIS-Core that CMSIS-DSP needs,
 * written for this project (GCC and Clang only, host x86 and Arm targets).
 *
 * CMSIS-DSP's arm_math_types.h includes "cmsis_compiler.h" for compiler
 * attribute macros and, on Arm, for the core intrinsics. The PyPI `cmsisdsp`
 * archive does not ship CMSIS-Core, so this header stands in for it:
 *
 *  - attribute macros (__STATIC_FORCEINLINE, __ALIGNED, ...);
 *  - __CLZ, __SSAT, __USAT, __ROR in portable C on every target (CMSIS-DSP's
 *    dsp/none.h only provides them for MSVC and its Python build);
 *  - on Arm cores with the DSP extension (__ARM_FEATURE_DSP, e.g. Cortex-M4)
 *    arm_math_types.h defines ARM_MATH_DSP and CMSIS-DSP's headers then call
 *    the SIMD intrinsics below; they map onto GCC's ACLE <arm_acle.h>.
 *
 * The float real FFT used by the front end needs none of the intrinsics; they
 * exist so that any CMSIS-DSP header compiles cleanly with -Wall -Werror.
 */
#ifndef SD_CMSIS_COMPILER_H
#define SD_CMSIS_COMPILER_H

#include <stdint.h>

#if !defined(__GNUC__)
#error "cmsis_compiler.h shim: only GCC and Clang are supported"
#endif

#ifndef __ASM
#define __ASM __asm
#endif
#ifndef __INLINE
#define __INLINE inline
#endif
#ifndef __STATIC_INLINE
#define __STATIC_INLINE static inline
#endif
#ifndef __STATIC_FORCEINLINE
#define __STATIC_FORCEINLINE __attribute__((always_inline)) static inline
#endif
#ifndef __NO_RETURN
#define __NO_RETURN __attribute__((__noreturn__))
#endif
#ifndef __USED
#define __USED __attribute__((used))
#endif
#ifndef __WEAK
#define __WEAK __attribute__((weak))
#endif
#ifndef __PACKED
#define __PACKED __attribute__((packed, aligned(1)))
#endif
#ifndef __ALIGNED
#define __ALIGNED(x) __attribute__((aligned(x)))
#endif
#ifndef __RESTRICT
#define __RESTRICT __restrict
#endif

/* Count leading zeros; 32 for 0 (like the CLZ instruction). */
__STATIC_FORCEINLINE uint8_t __CLZ(uint32_t value)
{
    return (uint8_t)(value == 0U ? 32U : (uint32_t)__builtin_clz(value));
}

/* Signed saturation of `val` to `sat` bits (1..32). */
__STATIC_FORCEINLINE int32_t __SSAT(int32_t val, uint32_t sat)
{
    if (sat >= 1U && sat <= 32U) {
        const int32_t max = (int32_t)((1U << (sat - 1U)) - 1U);
        const int32_t min = -1 - max;
        if (val > max) {
            return max;
        }
        if (val < min) {
            return min;
        }
    }
    return val;
}

/* Unsigned saturation of `val` to `sat` bits (0..31). */
__STATIC_FORCEINLINE uint32_t __USAT(int32_t val, uint32_t sat)
{
    if (sat <= 31U) {
        const uint32_t max = (1U << sat) - 1U;
        if (val > (int32_t)max) {
            return max;
        }
        if (val < 0) {
            return 0U;
        }
    }
    return (uint32_t)val;
}

/* Rotate right. */
__STATIC_FORCEINLINE uint32_t __ROR(uint32_t op1, uint32_t op2)
{
    op2 %= 32U;
    return op2 == 0U ? op1 : (op1 >> op2) | (op1 << (32U - op2));
}

#if defined(__arm__) && defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
#include <arm_acle.h>

#define __QADD(a, b) __qadd((int32_t)(a), (int32_t)(b))
#define __QSUB(a, b) __qsub((int32_t)(a), (int32_t)(b))
#define __QADD8(a, b) ((uint32_t)__qadd8((int8x4_t)(a), (int8x4_t)(b)))
#define __QSUB8(a, b) ((uint32_t)__qsub8((int8x4_t)(a), (int8x4_t)(b)))
#define __QADD16(a, b) ((uint32_t)__qadd16((int16x2_t)(a), (int16x2_t)(b)))
#define __QSUB16(a, b) ((uint32_t)__qsub16((int16x2_t)(a), (int16x2_t)(b)))
#define __SHADD16(a, b) ((uint32_t)__shadd16((int16x2_t)(a), (int16x2_t)(b)))
#define __SHSUB16(a, b) ((uint32_t)__shsub16((int16x2_t)(a), (int16x2_t)(b)))
#define __QASX(a, b) ((uint32_t)__qasx((int16x2_t)(a), (int16x2_t)(b)))
#define __QSAX(a, b) ((uint32_t)__qsax((int16x2_t)(a), (int16x2_t)(b)))
#define __SHASX(a, b) ((uint32_t)__shasx((int16x2_t)(a), (int16x2_t)(b)))
#define __SHSAX(a, b) ((uint32_t)__shsax((int16x2_t)(a), (int16x2_t)(b)))
#define __SMUAD(a, b) ((uint32_t)__smuad((int16x2_t)(a), (int16x2_t)(b)))
#define __SMUADX(a, b) ((uint32_t)__smuadx((int16x2_t)(a), (int16x2_t)(b)))
#define __SMUSD(a, b) ((uint32_t)__smusd((int16x2_t)(a), (int16x2_t)(b)))
#define __SMUSDX(a, b) ((uint32_t)__smusdx((int16x2_t)(a), (int16x2_t)(b)))
#define __SMLAD(a, b, c) \
    ((uint32_t)__smlad((int16x2_t)(a), (int16x2_t)(b), (int32_t)(c)))
#define __SMLADX(a, b, c) \
    ((uint32_t)__smladx((int16x2_t)(a), (int16x2_t)(b), (int32_t)(c)))
#define __SMLSDX(a, b, c) \
    ((uint32_t)__smlsdx((int16x2_t)(a), (int16x2_t)(b), (int32_t)(c)))
#define __SMLALD(a, b, c) \
    ((uint64_t)__smlald((int16x2_t)(a), (int16x2_t)(b), (int64_t)(c)))
#define __SMLALDX(a, b, c) \
    ((uint64_t)__smlaldx((int16x2_t)(a), (int16x2_t)(b), (int64_t)(c)))
#define __SXTB16(a) ((uint32_t)__sxtb16((int8x4_t)(a)))

/* Pack halfwords (PKHBT/PKHTB) and SMMLA: no ACLE intrinsic, plain C. */
#define __PKHBT(a, b, s) \
    ((((int32_t)(a)) & (int32_t)0x0000FFFF) | \
     (((int32_t)(b) << (s)) & (int32_t)0xFFFF0000))
#define __PKHTB(a, b, s) \
    ((((int32_t)(a)) & (int32_t)0xFFFF0000) | \
     (((int32_t)(b) >> (s)) & (int32_t)0x0000FFFF))
__STATIC_FORCEINLINE int32_t __SMMLA(int32_t x, int32_t y, int32_t sum)
{
    /* top word of ((sum << 32) + x * y), as SMMLA computes it */
    return sum + (int32_t)(((int64_t)x * y) >> 32);
}
#endif /* Arm with DSP extension */

#endif /* SD_CMSIS_COMPILER_H */
