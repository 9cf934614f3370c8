/*
 * sd_simd16.h - pairs of int16 in one 32-bit word (real part in the low
 * half, imaginary part in the high half), and the few Armv7E-M SIMD
 * instructions the integer FFT (sd_rfft_q15.c) uses on them.
 *
 * On a core with the DSP extension (__ARM_FEATURE_SIMD32: Cortex-M4, M7,
 * M33 with DSP) each helper is the one instruction of the ACLE intrinsic it
 * names; elsewhere it is plain C that computes the same bits:
 *
 *   halving add/sub: each half is (a + b) >> 1 in 17 bits, floor (SHADD16 ...);
 *   multiply-accumulate: the products of int16 halves added to a 32-bit
 *   accumulator (SMLAD ...); the callers' values never overflow 32 bits
 *   (train/intfront.py and docs/frontend.md give the bounds), so the
 *   instructions' wrap-around and Q flag never come into play.
 *
 * Right shifts of negative values are arithmetic (floor): GCC and Clang
 * define them so for every target, and sd_rfft_q15.c checks it at compile
 * time.
 */
#ifndef SD_SIMD16_H
#define SD_SIMD16_H

#include <stdint.h>

#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#define SD_SIMD16_NATIVE 1
#else
#define SD_SIMD16_NATIVE 0
#endif

static inline int32_t sd_lo16(uint32_t v) { return (int32_t)(int16_t)(uint16_t)(v & 0xFFFFu); }
static inline int32_t sd_hi16(uint32_t v) { return (int32_t)(int16_t)(uint16_t)(v >> 16); }

/* (re, im) -> packed word; both must fit int16. */
static inline uint32_t sd_pack16(int32_t re, int32_t im)
{
    return ((uint32_t)re & 0xFFFFu) | ((uint32_t)im << 16);
}

/* The halves swapped: (im, re). */
static inline uint32_t sd_swap16(uint32_t v) { return (v >> 16) | (v << 16); }

#if SD_SIMD16_NATIVE
static inline uint32_t sd_shadd16(uint32_t a, uint32_t b) { return (uint32_t)__shadd16((int32_t)a, (int32_t)b); }
static inline uint32_t sd_shsub16(uint32_t a, uint32_t b) { return (uint32_t)__shsub16((int32_t)a, (int32_t)b); }
static inline uint32_t sd_shasx(uint32_t a, uint32_t b) { return (uint32_t)__shasx((int32_t)a, (int32_t)b); }
static inline uint32_t sd_shsax(uint32_t a, uint32_t b) { return (uint32_t)__shsax((int32_t)a, (int32_t)b); }
static inline int32_t sd_smlad(uint32_t a, uint32_t b, int32_t acc) { return __smlad((int32_t)a, (int32_t)b, acc); }
static inline int32_t sd_smladx(uint32_t a, uint32_t b, int32_t acc) { return __smladx((int32_t)a, (int32_t)b, acc); }
static inline int32_t sd_smlsd(uint32_t a, uint32_t b, int32_t acc) { return __smlsd((int32_t)a, (int32_t)b, acc); }
static inline int32_t sd_smlsdx(uint32_t a, uint32_t b, int32_t acc) { return __smlsdx((int32_t)a, (int32_t)b, acc); }
static inline int32_t sd_smuad(uint32_t a, uint32_t b) { return __smuad((int32_t)a, (int32_t)b); }
static inline uint64_t sd_smlald(uint32_t a, uint32_t b, uint64_t acc)
{
    return (uint64_t)__smlald((int32_t)a, (int32_t)b, (int64_t)acc);
}
#else
/* lo = (a.lo + b.lo) >> 1, hi = (a.hi + b.hi) >> 1 */
static inline uint32_t sd_shadd16(uint32_t a, uint32_t b)
{
    return sd_pack16((sd_lo16(a) + sd_lo16(b)) >> 1, (sd_hi16(a) + sd_hi16(b)) >> 1);
}
/* lo = (a.lo - b.lo) >> 1, hi = (a.hi - b.hi) >> 1 */
static inline uint32_t sd_shsub16(uint32_t a, uint32_t b)
{
    return sd_pack16((sd_lo16(a) - sd_lo16(b)) >> 1, (sd_hi16(a) - sd_hi16(b)) >> 1);
}
/* lo = (a.lo - b.hi) >> 1, hi = (a.hi + b.lo) >> 1: (a + j b) / 2 */
static inline uint32_t sd_shasx(uint32_t a, uint32_t b)
{
    return sd_pack16((sd_lo16(a) - sd_hi16(b)) >> 1, (sd_hi16(a) + sd_lo16(b)) >> 1);
}
/* lo = (a.lo + b.hi) >> 1, hi = (a.hi - b.lo) >> 1: (a - j b) / 2 */
static inline uint32_t sd_shsax(uint32_t a, uint32_t b)
{
    return sd_pack16((sd_lo16(a) + sd_hi16(b)) >> 1, (sd_hi16(a) - sd_lo16(b)) >> 1);
}
/* acc + a.lo * b.lo + a.hi * b.hi */
static inline int32_t sd_smlad(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + sd_lo16(a) * sd_lo16(b) + sd_hi16(a) * sd_hi16(b);
}
/* acc + a.lo * b.hi + a.hi * b.lo */
static inline int32_t sd_smladx(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + sd_lo16(a) * sd_hi16(b) + sd_hi16(a) * sd_lo16(b);
}
/* acc + a.lo * b.lo - a.hi * b.hi */
static inline int32_t sd_smlsd(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + sd_lo16(a) * sd_lo16(b) - sd_hi16(a) * sd_hi16(b);
}
/* acc + a.lo * b.hi - a.hi * b.lo */
static inline int32_t sd_smlsdx(uint32_t a, uint32_t b, int32_t acc)
{
    return acc + sd_lo16(a) * sd_hi16(b) - sd_hi16(a) * sd_lo16(b);
}
/* a.lo * b.lo + a.hi * b.hi */
static inline int32_t sd_smuad(uint32_t a, uint32_t b) { return sd_smlad(a, b, 0); }
/* acc + a.lo * b.lo + a.hi * b.hi in 64 bits */
static inline uint64_t sd_smlald(uint32_t a, uint32_t b, uint64_t acc)
{
    return acc + (uint64_t)((int64_t)sd_lo16(a) * sd_lo16(b) + (int64_t)sd_hi16(a) * sd_hi16(b));
}
#endif

/* (re >> 15, im >> 15) packed, for re and im whose shifted values fit int16:
 * on the DSP extension LSL + PKHTB (2 instructions instead of 3). */
static inline uint32_t sd_pack_q15(int32_t re, int32_t im)
{
#if SD_SIMD16_NATIVE
    uint32_t out;
    __asm__("pkhtb %0, %1, %2, asr #15" : "=r"(out) : "r"((uint32_t)im << 1), "r"(re));
    return out;
#else
    return sd_pack16(re >> 15, im >> 15);
#endif
}

/* a.lo * b.lo and a.hi * b.hi (SMULBB, SMULTT: GCC emits them for these) */
static inline int32_t sd_smulbb(uint32_t a, uint32_t b) { return sd_lo16(a) * sd_lo16(b); }
static inline int32_t sd_smultt(uint32_t a, uint32_t b) { return sd_hi16(a) * sd_hi16(b); }

#endif /* SD_SIMD16_H */
