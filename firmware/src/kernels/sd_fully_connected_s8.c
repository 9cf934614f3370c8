/*
 * sd_fully_connected_s8.c - int8 FULLY_CONNECTED, per-tensor or per-channel
 * weights, int32 bias, fused activation clamp.
 *
 * Bit-exact with TFLite Micro's reference FullyConnected /
 * FullyConnectedPerChannel: the int32 accumulator is
 *   bias[o] + sum_d w[o][d] * (x[d] + input_offset)
 * which is computed here as
 *   (bias[o] + input_offset * sum_d w[o][d]) + sum_d w[o][d] * x[d]
 * (the same value modulo 2^32, hence the same int32).
 */
#include "sd_fixedpoint.h"

#if defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
#include <arm_acle.h>
#include <string.h>
#define SD_FC_USE_DSP 1
#endif

#if defined(SD_FC_USE_DSP)
static inline uint32_t sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}

/* SXTB16 unpacks bytes 0,2 and (rotated by 8) bytes 1,3 into int16 pairs;
 * SMLAD adds both pair products to the accumulator (wrap-around, like the
 * C reference). Two weight rows share one unpacked input word. */
static void dot2_s8(const int8_t *w0, const int8_t *w1, const int8_t *x, int32_t n,
                    int32_t *out0, int32_t *out1)
{
    int32_t acc0 = 0;
    int32_t acc1 = 0;
    int32_t d = 0;
    for (; d + 4 <= n; d += 4) {
        uint32_t wx;
        uint32_t wa;
        uint32_t wb;
        memcpy(&wx, x + d, 4);
        memcpy(&wa, w0 + d, 4);
        memcpy(&wb, w1 + d, 4);
        const uint32_t x02 = __sxtb16(wx);
        const uint32_t x13 = sxtb16_ror8(wx);
        acc0 = __smlad(__sxtb16(wa), x02, acc0);
        acc0 = __smlad(sxtb16_ror8(wa), x13, acc0);
        acc1 = __smlad(__sxtb16(wb), x02, acc1);
        acc1 = __smlad(sxtb16_ror8(wb), x13, acc1);
    }
    for (; d < n; ++d) {
        acc0 += (int32_t)w0[d] * (int32_t)x[d];
        acc1 += (int32_t)w1[d] * (int32_t)x[d];
    }
    *out0 = acc0;
    *out1 = acc1;
}

static int32_t dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t d = 0;
    for (; d + 4 <= n; d += 4) {
        uint32_t wa;
        uint32_t wb;
        memcpy(&wa, a + d, 4);
        memcpy(&wb, b + d, 4);
        acc = __smlad(__sxtb16(wa), __sxtb16(wb), acc);
        acc = __smlad(sxtb16_ror8(wa), sxtb16_ror8(wb), acc);
    }
    for (; d < n; ++d) {
        acc += (int32_t)a[d] * (int32_t)b[d];
    }
    return acc;
}
#else
static int32_t dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc0 = 0;
    int32_t acc1 = 0;
    int32_t d = 0;
    for (; d + 2 <= n; d += 2) {
        acc0 += (int32_t)a[d] * (int32_t)b[d];
        acc1 += (int32_t)a[d + 1] * (int32_t)b[d + 1];
    }
    if (d < n) {
        acc0 += (int32_t)a[d] * (int32_t)b[d];
    }
    return (int32_t)((uint32_t)acc0 + (uint32_t)acc1);
}
#endif

#if !defined(SD_FC_USE_DSP)
static void dot2_s8(const int8_t *w0, const int8_t *w1, const int8_t *x, int32_t n,
                    int32_t *out0, int32_t *out1)
{
    *out0 = dot_s8(w0, x, n);
    *out1 = dot_s8(w1, x, n);
}
#endif

static int32_t row_sum_s8(const int8_t *w, int32_t n)
{
    int32_t s = 0;
    for (int32_t d = 0; d < n; ++d) {
        s += w[d];
    }
    return s;
}

sd_status_t sd_fully_connected_s8(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                  const int8_t *input, const int8_t *weights,
                                  const int32_t *bias, const int32_t *weight_row_sums,
                                  int8_t *output)
{
    if (params == 0 || dims == 0 || input == 0 || weights == 0 || output == 0 ||
        params->multiplier == 0 || params->shift == 0 || dims->batches < 1 ||
        dims->accum_depth < 1 || dims->output_depth < 1) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    const int32_t depth = dims->accum_depth;
    const int32_t out_depth = dims->output_depth;
    const int32_t input_offset = params->input_offset;
    const int32_t output_offset = params->output_offset;
    const int32_t act_min = params->activation_min;
    const int32_t act_max = params->activation_max;
    const int32_t per_channel = params->per_channel;

    for (int32_t b = 0; b < dims->batches; ++b) {
        const int8_t *x = input + b * depth;
        int8_t *y = output + b * out_depth;
        const int8_t *w = weights;
        for (int32_t o = 0; o < out_depth; o += 2, w += 2 * depth) {
            const int32_t pair = (o + 1 < out_depth) ? 2 : 1;
            int32_t dots[2];
            if (pair == 2) {
                dot2_s8(w, w + depth, x, depth, &dots[0], &dots[1]);
            } else {
                dots[0] = dot_s8(w, x, depth);
            }
            for (int32_t k = 0; k < pair; ++k) {
                const int32_t oc = o + k;
                const int32_t row_sum = weight_row_sums != 0 ? weight_row_sums[oc]
                                                             : row_sum_s8(w + k * depth, depth);
                uint32_t acc = (uint32_t)input_offset * (uint32_t)row_sum;
                if (bias != 0) {
                    acc += (uint32_t)bias[oc];
                }
                acc += (uint32_t)dots[k];
                const int32_t c = per_channel ? oc : 0;
                int32_t v = sd_fp_mbqm((int32_t)acc, params->multiplier[c], params->shift[c]);
                v += output_offset;
                y[oc] = (int8_t)sd_fp_clamp(v, act_min, act_max);
            }
        }
    }
    return SD_STATUS_OK;
}
