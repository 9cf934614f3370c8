/*
 * sd_fully_connected_s8.c - int8 FULLY_CONNECTED, per-tensor or per-channel
 * weights, int32 bias, fused activation clamp, on weights packed ahead of
 * time by convert/codegen.py (layout in sd_kernels.h).
 *
 * Bit-exact with TFLite Micro's reference FullyConnected /
 * FullyConnectedPerChannel: the int32 accumulator is
 *   bias[o] + sum_d w[o][d] * (x[d] + input_offset)
 * which is computed here as
 *   eff_bias[o] + sum_d w[o][d] * x[d],  eff_bias = bias + input_offset * row_sum
 * (the same value modulo 2^32, hence the same int32).
 *
 * Inner loop, plain C: one 32-bit word holds four weights of two rows r, r'
 * (two columns each). Masking with 0xFF0000FF (once as is, once rotated by
 * 16) leaves u + w' * 2^24 where u = w[r][d] + 128 in [0, 255] and w' =
 * w[r'][d]; one 32x32->64 multiply-accumulate by x[d] (SMLAL on Cortex-M)
 * then adds x[d] * (w[r][d] + 128) to the low 24 bits and x[d] * w[r'][d]
 * to the bits above. Over at most SD_FC_CHUNK columns the low field stays
 * within [-2^23, 2^23) (|x| <= 128, u <= 255), so both sums are recovered
 * exactly; sum x[d] * w[r][d] = low - 128 * sum x[d]. This is 1.25
 * instructions per multiply-accumulate plus the input loads, as many as
 * SXTB16 + SMLAD need for the same weights, so there is no separate DSP path.
 */
#include "sd_fixedpoint.h"

/* Columns per decoded chunk: 128 * 255 * SD_FC_CHUNK must stay below 2^23. */
#define SD_FC_CHUNK 256
#define SD_FC_MASK 0xFF0000FFu

SD_INLINE uint32_t ror16(uint32_t w)
{
    return (w >> 16) | (w << 16);
}

/* low 24-bit field (signed) and the rest of a packed 64-bit sum */
SD_INLINE void unpack_sum(int64_t s, int32_t *lo, int32_t *hi)
{
    const int32_t l = (int32_t)((uint32_t)s << 8) >> 8;
    *lo = l;
    *hi = (int32_t)((s - l) >> 24);
}

/* Dot products of one row pair (rows 2p, 2p+1) with x[0 .. 2n), n <= SD_FC_CHUNK / 2,
 * the word of column pair k at w[k * step]; adds them to *a0, *a1. */
SD_INLINE void pair_dot(const uint32_t *w, int32_t step, const int8_t *x, int32_t n, int32_t *a0,
                        int32_t *a1)
{
    int64_t s = 0;
    for (int32_t k = 0; k < n; ++k) {
        const uint32_t wk = w[0];
        w += step;
        s += (int64_t)x[0] * (int32_t)(wk & SD_FC_MASK);
        s += (int64_t)x[1] * (int32_t)(ror16(wk) & SD_FC_MASK);
        x += 2;
    }
    int32_t lo;
    int32_t hi;
    unpack_sum(s, &lo, &hi);
    *a0 = (int32_t)((uint32_t)*a0 + (uint32_t)lo);
    *a1 = (int32_t)((uint32_t)*a1 + (uint32_t)hi);
}

/* Same for two row pairs whose words alternate (w[2k], w[2k + 1]): the
 * tight loop, two column pairs per iteration. */
SD_INLINE void quad_dot(const uint32_t *w, const int8_t *x, int32_t n, int32_t *acc)
{
    int64_t s0 = 0;
    int64_t s1 = 0;
    const int8_t *const x_end2 = x + 2 * (n & ~1);
    while (x != x_end2) {
        const int32_t xa = x[0];
        const int32_t xb = x[1];
        const int32_t xc = x[2];
        const int32_t xd = x[3];
        const uint32_t w0 = w[0];
        const uint32_t w1 = w[1];
        const uint32_t w2 = w[2];
        const uint32_t w3 = w[3];
        x += 4;
        w += 4;
        s0 += (int64_t)xa * (int32_t)(w0 & SD_FC_MASK);
        s1 += (int64_t)xa * (int32_t)(w1 & SD_FC_MASK);
        s0 += (int64_t)xb * (int32_t)(ror16(w0) & SD_FC_MASK);
        s1 += (int64_t)xb * (int32_t)(ror16(w1) & SD_FC_MASK);
        s0 += (int64_t)xc * (int32_t)(w2 & SD_FC_MASK);
        s1 += (int64_t)xc * (int32_t)(w3 & SD_FC_MASK);
        s0 += (int64_t)xd * (int32_t)(ror16(w2) & SD_FC_MASK);
        s1 += (int64_t)xd * (int32_t)(ror16(w3) & SD_FC_MASK);
    }
    if (n & 1) {
        const uint32_t w0 = w[0];
        const uint32_t w1 = w[1];
        s0 += (int64_t)x[0] * (int32_t)(w0 & SD_FC_MASK);
        s1 += (int64_t)x[0] * (int32_t)(w1 & SD_FC_MASK);
        s0 += (int64_t)x[1] * (int32_t)(ror16(w0) & SD_FC_MASK);
        s1 += (int64_t)x[1] * (int32_t)(ror16(w1) & SD_FC_MASK);
    }
    int32_t lo;
    int32_t hi;
    unpack_sum(s0, &lo, &hi);
    acc[0] = (int32_t)((uint32_t)acc[0] + (uint32_t)lo);
    acc[1] = (int32_t)((uint32_t)acc[1] + (uint32_t)hi);
    unpack_sum(s1, &lo, &hi);
    acc[2] = (int32_t)((uint32_t)acc[2] + (uint32_t)lo);
    acc[3] = (int32_t)((uint32_t)acc[3] + (uint32_t)hi);
}

/* Last column of an odd depth: its word holds (w[r][d] + 128, w[r'][d]) in
 * bytes 0 and 3. */
SD_INLINE void tail_dot(uint32_t wk, int32_t xa, int32_t *a0, int32_t *a1)
{
    int32_t lo;
    int32_t hi;
    unpack_sum((int64_t)xa * (int32_t)(wk & SD_FC_MASK), &lo, &hi);
    *a0 = (int32_t)((uint32_t)*a0 + (uint32_t)lo);
    *a1 = (int32_t)((uint32_t)*a1 + (uint32_t)hi);
}

/* One output's requantization, constants precomputed: MBQM(a, m, shift)
 * = rdbpot(srdhm(a << left, m), right), rdbpot with mask = 2^right - 1. */
typedef struct {
    int32_t m;
    int32_t left;
    int32_t right;
    int32_t mask;
    int32_t half; /* mask >> 1 */
} fc_rq_t;

SD_INLINE fc_rq_t rq_make(int32_t m, int32_t shift)
{
    fc_rq_t r;
    r.m = m;
    r.left = shift > 0 ? shift : 0;
    r.right = shift > 0 ? 0 : -shift;
    r.mask = (int32_t)((1u << r.right) - 1u);
    r.half = r.mask >> 1;
    return r;
}

SD_INLINE int32_t rq_apply(const fc_rq_t *r, int32_t a)
{
    const int32_t v = sd_fp_srdhm_nosat(sd_fp_shl(a, r->left), r->m);
    const int32_t threshold = r->half + (int32_t)((uint32_t)v >> 31);
    return (v >> r->right) + ((v & r->mask) > threshold ? 1 : 0);
}

typedef struct {
    const int32_t *mult;
    const int8_t *shift;
    int32_t per_channel;
    int32_t zp;
    int32_t lo;
    int32_t hi;
} fc_out_t;

/* Rows per block: the int32 sums of a block are kept on the stack, then
 * requantized in one tight loop. */
#define SD_FC_BLOCK 16

#if defined(__GNUC__)
#define SD_NOINLINE __attribute__((noinline))
#else
#define SD_NOINLINE
#endif

/* y[o0 + k] for k < n from acc[k] (the bias is already in it). */
static SD_NOINLINE void requantize(const fc_out_t *q, const int32_t *acc, int32_t o0, int32_t n, int8_t *y)
{
    const int32_t zp = q->zp;
    const int32_t lo = q->lo;
    const int32_t hi = q->hi;
    y += o0;
    if (!q->per_channel && sd_fp_mbqm_right_ok(q->mult[0], q->shift[0])) {
        /* the common case: one rounding (sd_fp_mbqm_right) */
        const int32_t m = q->mult[0];
        const int32_t e = -q->shift[0];
        const int64_t kk = sd_fp_mbqm_right_k(e);
        if (lo == -128 && hi == 127) {
            for (int32_t k = 0; k < n; ++k) {
                y[k] = (int8_t)sd_fp_sat8(sd_fp_mbqm_right(acc[k], m, kk, e) + zp);
            }
        } else {
            for (int32_t k = 0; k < n; ++k) {
                y[k] = (int8_t)sd_fp_clamp(sd_fp_mbqm_right(acc[k], m, kk, e) + zp, lo, hi);
            }
        }
        return;
    }
    /* per channel, or a multiplier the one-rounding form does not cover */
    for (int32_t k = 0; k < n; ++k) {
        const int32_t c = q->per_channel ? o0 + k : 0;
        const fc_rq_t r = rq_make(q->mult[c], q->shift[c]);
        y[k] = (int8_t)sd_fp_clamp(rq_apply(&r, acc[k]) + zp, lo, hi);
    }
}

sd_status_t sd_fully_connected_s8(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                  const int8_t *input, const uint32_t *weights,
                                  const int32_t *bias, int8_t *output)
{
    if (params == 0 || dims == 0 || input == 0 || weights == 0 || output == 0 ||
        params->multiplier == 0 || params->shift == 0 || dims->batches < 1 ||
        dims->accum_depth < 1 || dims->output_depth < 1) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    const int32_t depth = dims->accum_depth;
    const int32_t out_depth = dims->output_depth;
    const int32_t pairs = (out_depth + 1) / 2;
    const int32_t kpairs = (depth + 1) / 2; /* words per row pair */
    const int32_t kfull = depth / 2;        /* column pairs without padding */
    fc_out_t q;
    q.mult = params->multiplier;
    q.shift = params->shift;
    q.per_channel = params->per_channel;
    q.zp = params->output_offset;
    q.lo = params->activation_min;
    q.hi = params->activation_max;

    for (int32_t b = 0; b < dims->batches; ++b) {
        const int8_t *x = input + b * depth;
        int8_t *y = output + b * out_depth;
        uint32_t xsum = 0;
        for (int32_t d = 0; d < depth; ++d) {
            xsum += (uint32_t)(int32_t)x[d];
        }
        /* rows 2p carry + 128 per weight: start them at -128 * sum x */
        const int32_t even0 = (int32_t)(0u - (xsum << 7));
        const int32_t xa = x[depth - 1]; /* the odd column, if any */
        int32_t acc[SD_FC_BLOCK];
        for (int32_t p0 = 0; p0 < pairs; p0 += SD_FC_BLOCK / 2) {
            const int32_t p1 = (pairs - p0 < SD_FC_BLOCK / 2) ? pairs : p0 + SD_FC_BLOCK / 2;
            int32_t p = p0;
            for (; p + 2 <= p1; p += 2) {
                const uint32_t *wg = weights + p * kpairs;
                int32_t *a = acc + 2 * (p - p0);
                /* rows 2p .. 2p + 3 start from their bias; even rows also from even0 */
                if (bias != 0) {
                    const int32_t *bp = bias + 2 * p;
                    a[0] = (int32_t)((uint32_t)even0 + (uint32_t)bp[0]);
                    a[1] = bp[1];
                    a[2] = (int32_t)((uint32_t)even0 + (uint32_t)bp[2]);
                    a[3] = bp[3];
                } else {
                    a[0] = even0;
                    a[1] = 0;
                    a[2] = even0;
                    a[3] = 0;
                }
                for (int32_t k0 = 0; k0 < kfull; k0 += SD_FC_CHUNK / 2) {
                    const int32_t n = (kfull - k0 < SD_FC_CHUNK / 2) ? kfull - k0 : SD_FC_CHUNK / 2;
                    quad_dot(wg + 2 * k0, x + 2 * k0, n, a);
                }
                if (kfull != kpairs) {
                    tail_dot(wg[2 * kfull], xa, &a[0], &a[1]);
                    tail_dot(wg[2 * kfull + 1], xa, &a[2], &a[3]);
                }
            }
            if (p < p1) { /* the last, odd row pair */
                const uint32_t *wg = weights + p * kpairs;
                int32_t *a = acc + 2 * (p - p0);
                a[0] = (int32_t)((uint32_t)even0 + (bias != 0 ? (uint32_t)bias[2 * p] : 0u));
                /* row 2p + 1 is missing when the output depth is odd */
                a[1] = (bias != 0 && 2 * p + 1 < out_depth) ? bias[2 * p + 1] : 0;
                for (int32_t k0 = 0; k0 < kfull; k0 += SD_FC_CHUNK / 2) {
                    const int32_t n = (kfull - k0 < SD_FC_CHUNK / 2) ? kfull - k0 : SD_FC_CHUNK / 2;
                    pair_dot(wg + k0, 1, x + 2 * k0, n, &a[0], &a[1]);
                }
                if (kfull != kpairs) {
                    tail_dot(wg[kfull], xa, &a[0], &a[1]);
                }
            }
            const int32_t o0 = 2 * p0;
            const int32_t n = (out_depth - o0 < SD_FC_BLOCK) ? out_depth - o0 : SD_FC_BLOCK;
            requantize(&q, acc, o0, n, y);
        }
    }
    return SD_STATUS_OK;
}
