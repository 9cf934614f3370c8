/*
 * sd_rfft_q15.c - the integer FFT and power spectrum of front end v2, the C
 * twin of train/intfront.py steps 2 and 3 (read that docstring first: this
 * file computes the same integers, operation for operation).
 *
 * Input: SD_CFFT_N = SD_N_FFT / 2 complex points z[n] = v[2n] + j v[2n+1],
 * each packed in one word (real part low, imaginary part high, sd_simd16.h),
 * with every part in [-2^14, 2^14). Output: the SD_N_BINS powers
 * P[k] = |DFT_N(v)[k] / N|^2 (uint32, < 2^31). z is overwritten.
 *
 * Scaling: every add is a halving add, so the modulus of any value never
 * exceeds the input's largest modulus (< 2^14 * sqrt 2 = 23170.5) by more
 * than the few units of the floors: each part fits int16, each power fits
 * 31 bits (docs/frontend.md, "Bit widths"). The complex FFT divides by
 * SD_CFFT_N, the split step by 2.
 *
 * On Cortex-M4 each butterfly is 4 halving add/subs and 4 more for the
 * second level, and 2 multiply-accumulates per twiddle product (SMLSD,
 * SMLADX): about 10 K instructions for the 256-point transform.
 */
#include <stdint.h>

#include "sd_frontend_config.h"
#include "sd_rfft_q15.h"
#include "sd_simd16.h"

/* Arithmetic right shift of negative values (floor), which the twin relies on. */
typedef char sd_check_arithmetic_shift[((-3 >> 1) == -2) ? 1 : -1];

#define SD_ROUND15 (1 << 14)

/* v * w in Q15, rounded: (v.re wr - v.im wi + 2^14) >> 15, (v.re wi + v.im wr + 2^14) >> 15 */
static inline uint32_t sd_cmul_q15(uint32_t v, uint32_t w)
{
    return sd_pack_q15(sd_smlsd(v, w, SD_ROUND15), sd_smladx(v, w, SD_ROUND15));
}

/* Radix-4 decimation in frequency, in place; output in digit-reversed order
 * (train/intfront.py step 2). */
static void sd_cfft_q15(uint32_t *z)
{
    uint32_t stride = 1u;
    for (uint32_t len = SD_CFFT_N; len > 1u; len >>= 2) {
        const uint32_t q = len >> 2;
        for (uint32_t g = 0; g < SD_CFFT_N; g += len) {
            uint32_t *p = &z[g];
            /* i = 0: the twiddles are W^0, the values themselves */
            {
                const uint32_t u0 = sd_shadd16(p[0], p[2u * q]);
                const uint32_t u1 = sd_shsub16(p[0], p[2u * q]);
                const uint32_t u2 = sd_shadd16(p[q], p[3u * q]);
                const uint32_t u3 = sd_shsub16(p[q], p[3u * q]);
                p[0] = sd_shadd16(u0, u2);
                p[q] = sd_shsax(u1, u3);
                p[2u * q] = sd_shsub16(u0, u2);
                p[3u * q] = sd_shasx(u1, u3);
            }
            for (uint32_t i = 1; i < q; i++) {
                const uint32_t m1 = i * stride; /* twiddles W^m1, W^2m1, W^3m1 */
                const uint32_t a = p[i];
                const uint32_t b = p[i + q];
                const uint32_t c = p[i + 2u * q];
                const uint32_t d = p[i + 3u * q];
                const uint32_t u0 = sd_shadd16(a, c);
                const uint32_t u1 = sd_shsub16(a, c);
                const uint32_t u2 = sd_shadd16(b, d);
                const uint32_t u3 = sd_shsub16(b, d);
                p[i] = sd_shadd16(u0, u2);
                p[i + q] = sd_cmul_q15(sd_shsax(u1, u3), sd_fft_twiddle[m1]);            /* (u1 - j u3) / 2 */
                p[i + 2u * q] = sd_cmul_q15(sd_shsub16(u0, u2), sd_fft_twiddle[2u * m1]);
                p[i + 3u * q] = sd_cmul_q15(sd_shasx(u1, u3), sd_fft_twiddle[3u * m1]);  /* (u1 + j u3) / 2 */
            }
        }
        stride <<= 2;
    }
}

void sd_rfft_power_q15(uint32_t *z, uint32_t *power)
{
    sd_cfft_q15(z);
    const uint32_t m = SD_CFFT_N;
    for (uint32_t k = 0; k <= m / 2u; k++) {
        const uint32_t zk = z[sd_fft_digit_rev[k]];
        const uint32_t zc = sd_swap16(z[sd_fft_digit_rev[(m - k) & (m - 1u)]]);
        const uint32_t e = sd_shsax(zk, zc); /* (Z[k] + conj Z[M-k]) / 2 */
        const uint32_t o = sd_shasx(zk, zc); /* (Z[k] - conj Z[M-k]) / 2 */
        uint32_t t;
        if (k == 0u) {
            t = sd_pack16(sd_hi16(o), -sd_lo16(o)); /* W^0: -j o exactly */
        } else {
            const uint32_t w = sd_fft_split[k];
            t = sd_pack_q15(sd_smladx(o, w, SD_ROUND15),     /* o.re wi + o.im wr */
                            -sd_smlsd(o, w, -SD_ROUND15)); /* o.im wi - o.re wr */
        }
        const uint32_t plus = sd_shadd16(e, t);
        power[k] = (uint32_t)sd_smuad(plus, plus);
        if (k < m / 2u) {
            const uint32_t minus = sd_shsub16(e, t);
            power[m - k] = (uint32_t)sd_smuad(minus, minus);
        }
    }
}
