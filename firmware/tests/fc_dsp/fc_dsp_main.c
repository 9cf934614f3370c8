/*
 * fc_dsp_main.c - the two paths of sd_fully_connected_s8 on the same inputs:
 * sd_fully_connected_s8_dsp (SMLAD, built where __ARM_FEATURE_DSP is set)
 * against sd_fully_connected_s8_c (plain C), element for element, and both
 * against a naive reference written here (weights decoded from the packed
 * layout one by one, sd_multiply_by_quantized_multiplier, clamp).
 *
 *   make -C firmware BOARD=mps2-an386 TEST_MAIN=tests/fc_dsp/fc_dsp_main.c test
 *   make -C firmware BOARD=posix TEST_MAIN=tests/fc_dsp/fc_dsp_main.c test   (C vs naive only)
 *
 * Cases (seeded LCG, fixed list first, then random): batches 1-3, depth 1-300
 * (odd, not a multiple of 4, one and several 128-column chunks), output depth
 * 1-40 (odd, block boundaries at 16), random packed words (every uint32 is a
 * valid packing: any int8 weight, -128 included), all-extreme weights and
 * inputs, bias NULL / random / INT32 extremes, per-tensor and per-channel
 * multipliers over the whole range (shift -31..30, multiplier 0 and 2^30..2^31-1;
 * per channel, half the time SD_FC_PER_CHANNEL_NORMALIZED with every
 * multiplier >= 2^30 and shift -23..-1, the DSP path's one-pass case),
 * output offsets -128..127, random activation clamps. Every case also runs
 * the int16-bias functions (sd_fully_connected_s8_b16_c / _dsp) with the bias
 * truncated to int16 (INT16 extremes included; aligned, or 2-byte aligned
 * for the general path) against the reference on the widened values. Prints each mismatch
 * (at most 20) and `PASS: <cases> cases, <outputs> outputs, dsp <0|1>`;
 * the exit status is the number of failing cases (capped at 99).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sd_kernels.h"
#include "sd_port.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define HAVE_DSP 1
#else
#define HAVE_DSP 0
#endif

#define MAX_B 3
#define MAX_D 300
#define MAX_O 40
#define MAX_WORDS (((MAX_O + 1) / 2) * ((MAX_D + 3) / 4) * 2)

static uint32_t s_rng = 0x13572468u;

static uint32_t rnd(void)
{
    /* xorshift32 */
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 17;
    s_rng ^= s_rng << 5;
    return s_rng;
}

static int32_t rnd_range(int32_t lo, int32_t hi) /* inclusive */
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

static uint32_t s_w[MAX_WORDS];
static int8_t s_x[MAX_B * MAX_D];
static int32_t s_bias[MAX_O];
static int32_t s_bias_w[MAX_O];                               /* s_bias16 widened */
static int16_t s_bias16[MAX_O + 2] __attribute__((aligned(8))); /* [1 ..] for a misaligned bias */
static int32_t s_mult[MAX_O];
static int8_t s_shift[MAX_O];
static int8_t s_y_c[MAX_B * MAX_O + 4];
static int8_t s_y_dsp[MAX_B * MAX_O + 4];
static int8_t s_y_ref[MAX_B * MAX_O + 4];
static uint32_t s_w2[MAX_WORDS];                               /* a second op's weights (shared input) */
static int8_t s_y_sh[SD_FC_SHARED_MAX][MAX_B * MAX_O + 4];
static int32_t s_mult_k[SD_FC_SHARED_MAX];
static int8_t s_shift_k[SD_FC_SHARED_MAX];

/* weight [o][d] from the packed layout (sd_kernels.h) */
static int32_t packed_weight(const uint32_t *w, int32_t out_depth, int32_t depth, int32_t o, int32_t d)
{
    const int32_t pairs = (out_depth + 1) / 2;
    const int32_t groups = (depth + 3) / 4;
    const int32_t p = o / 2;
    const int32_t g = d / 4;
    const int32_t in_quad = p < (pairs & ~1);
    const int32_t base = (p & ~1) * groups * 2 + (in_quad ? 2 * (p & 1) : 0);
    const int32_t stride = in_quad ? 4 : 2;
    const int32_t k = d % 4; /* 0: A lane 0, 1: B lane 0, 2: A lane 1, 3: B lane 1 */
    const uint32_t word = w[base + g * stride + (k & 1)];
    const uint32_t lane = (word >> (16 * (k >> 1))) & 0xFFFFu;
    return (o & 1) ? (int32_t)(int8_t)(uint8_t)(lane >> 8) : (int32_t)(lane & 0xFFu) - 128;
}

static void reference(const sd_fc_params_t *p, const sd_fc_dims_t *dm, const int8_t *x, const uint32_t *w,
                      const int32_t *bias, int8_t *y)
{
    for (int32_t b = 0; b < dm->batches; ++b) {
        for (int32_t o = 0; o < dm->output_depth; ++o) {
            uint32_t acc = bias != 0 ? (uint32_t)bias[o] : 0u;
            for (int32_t d = 0; d < dm->accum_depth; ++d) {
                acc += (uint32_t)(packed_weight(w, dm->output_depth, dm->accum_depth, o, d) *
                                  (int32_t)x[b * dm->accum_depth + d]);
            }
            const int32_t c = p->per_channel ? o : 0;
            int32_t v = sd_multiply_by_quantized_multiplier((int32_t)acc, p->multiplier[c], p->shift[c]);
            v += p->output_offset;
            v = v < p->activation_min ? p->activation_min : (v > p->activation_max ? p->activation_max : v);
            y[b * dm->output_depth + o] = (int8_t)v;
        }
    }
}

static int32_t rnd_mult(void)
{
    switch (rnd() % 8u) {
    case 0:
        return 1 << 30;
    case 1:
        return INT32_MAX;
    case 2:
        return 0;
    default:
        return (int32_t)((1u << 30) + (rnd() & 0x3FFFFFFFu));
    }
}

static int8_t rnd_shift(void)
{
    switch (rnd() % 6u) {
    case 0:
        return -31;
    case 1:
        return (int8_t)rnd_range(-31, 30);
    case 2:
        return (int8_t)rnd_range(1, 30);
    default:
        return (int8_t)rnd_range(-20, -1); /* the usual case: one right shift */
    }
}

static int s_reported = 0;

static int compare(const char *what, int kase, const int8_t *got, const int8_t *want, int32_t n,
                   const sd_fc_dims_t *dm)
{
    int bad = 0;
    for (int32_t i = 0; i < n; ++i) {
        if (got[i] != want[i]) {
            if (s_reported < 20) {
                printf("case %d (batches %ld depth %ld out %ld) %s [b %ld o %ld]: %d, expected %d\n", kase,
                       (long)dm->batches, (long)dm->accum_depth, (long)dm->output_depth, what,
                       (long)(i / dm->output_depth), (long)(i % dm->output_depth), got[i], want[i]);
                ++s_reported;
            }
            ++bad;
        }
    }
    return bad;
}

int main(void)
{
    static const int32_t fixed[][3] = {
        /* batches, depth, out */
        {1, 128, 128 > MAX_O ? MAX_O : 128}, {1, 80, 32}, {1, 100, 10}, {1, 1, 1}, {1, 2, 3}, {1, 3, 2},
        {2, 5, 5}, {1, 4, 17}, {3, 7, 16}, {1, 127, 15}, {1, 129, 33}, {2, 256, 9}, {1, 257, 40},
        {1, 300, 39}, {3, 37, 23}, {1, 16, 4}, {1, 17, 6}, {1, 12, 31},
    };
    const int nfixed = (int)(sizeof fixed / sizeof fixed[0]);
    const int ncases = 600;
    int failed = 0;
    long outputs = 0;
    sd_port_init();
    for (int kase = 0; kase < ncases; ++kase) {
        sd_fc_dims_t dm;
        if (kase < nfixed) {
            dm.batches = fixed[kase][0];
            dm.accum_depth = fixed[kase][1];
            dm.output_depth = fixed[kase][2];
        } else {
            dm.batches = rnd_range(1, MAX_B);
            dm.accum_depth = (rnd() & 1u) ? rnd_range(1, 40) : rnd_range(1, MAX_D);
            dm.output_depth = rnd_range(1, MAX_O);
        }
        const int32_t nw = ((dm.output_depth + 1) / 2) * ((dm.accum_depth + 3) / 4) * 2;
        const uint32_t style = rnd() % 8u;
        for (int32_t i = 0; i < nw; ++i) {
            /* random: any int8 weight; 1: all -128 (u = 0, w' = -128); 2: all +127 */
            s_w[i] = style == 1 ? 0x80008000u : (style == 2 ? 0x7FFF7FFFu : rnd());
        }
        const uint32_t xstyle = rnd() % 8u;
        for (int32_t i = 0; i < dm.batches * dm.accum_depth; ++i) {
            s_x[i] = xstyle == 1 ? (int8_t)-128 : (xstyle == 2 ? (int8_t)127 : (int8_t)rnd());
        }
        const uint32_t bstyle = rnd() % 4u;
        /* half the bstyle-0 cases: an int32 bias within bias_small's bound (|b| + depth 2^14 < 2^23; the
         * DSP path's inner routine then starts from it), its extremes and the int16 range's edges included */
        const int32_t small_lim = SD_FC_BIAS_SMALL_LIMIT - dm.accum_depth * (1 << 14) - 1;
        const int small = bstyle == 0 && small_lim >= 0 && (rnd() & 1u);
        for (int32_t o = 0; o < dm.output_depth; ++o) {
            s_bias[o] = bstyle == 1 ? ((o & 1) ? INT32_MAX : INT32_MIN)
                                    : (bstyle == 2 ? (int32_t)rnd() : (int32_t)(rnd() % 2000001u) - 1000000);
            if (small) {
                const uint32_t k = rnd() % 8u;
                s_bias[o] = k == 0 ? small_lim : (k == 1 ? -small_lim : (k == 2 ? 32768 : (k == 3 ? -32769 :
                            (int32_t)(rnd() % (2u * (uint32_t)small_lim + 1u)) - small_lim)));
            }
        }
        sd_fc_params_t p;
        memset(&p, 0, sizeof p);
        p.per_channel = (rnd() % 3u) == 0;
        /* half the per-channel cases: normalized (the DSP path's one-pass requantization),
         * the extremes of the promise included */
        const int normalized = p.per_channel && (rnd() & 1u);
        if (normalized) {
            p.per_channel = SD_FC_PER_CHANNEL_NORMALIZED;
        }
        const int32_t nq = p.per_channel ? dm.output_depth : 1;
        for (int32_t c = 0; c < nq; ++c) {
            if (normalized) {
                const uint32_t k = rnd() % 6u;
                s_mult[c] = k == 0 ? (1 << 30) : (k == 1 ? INT32_MAX : (int32_t)((1u << 30) + (rnd() & 0x3FFFFFFFu)));
                s_shift[c] = (int8_t)(k == 2 ? -23 : (k == 3 ? -1 : rnd_range(-23, -1)));
            } else {
                s_mult[c] = rnd_mult();
                s_shift[c] = rnd_shift();
            }
        }
        p.multiplier = s_mult;
        p.shift = s_shift;
        p.input_offset = rnd_range(-127, 128); /* not read: folded into the bias */
        const uint32_t zstyle = rnd() % 4u;
        p.output_offset = zstyle == 0 ? -128 : (zstyle == 1 ? 127 : rnd_range(-128, 127));
        if (rnd() & 1u) {
            p.activation_min = -128;
            p.activation_max = 127;
        } else {
            p.activation_min = rnd_range(-128, 127);
            p.activation_max = rnd_range(p.activation_min, 127);
        }
        const int32_t *bias = bstyle == 3 ? 0 : s_bias;
        const int32_t ny = dm.batches * dm.output_depth;
        memset(s_y_c, 0x55, sizeof s_y_c);
        memset(s_y_dsp, 0x55, sizeof s_y_dsp);
        reference(&p, &dm, s_x, s_w, bias, s_y_ref);
        int bad = 0;
        if (sd_fully_connected_s8_c(&p, &dm, s_x, s_w, bias, s_y_c) != SD_STATUS_OK) {
            printf("case %d: plain C path returned an error\n", kase);
            ++bad;
        }
        bad += compare("c vs reference", kase, s_y_c, s_y_ref, ny, &dm);
        if (s_y_c[ny] != 0x55) {
            printf("case %d: plain C path wrote past the output\n", kase);
            ++bad;
        }
#if HAVE_DSP
        p.bias_small = small;
        if (sd_fully_connected_s8_dsp(&p, &dm, s_x, s_w, bias, s_y_dsp) != SD_STATUS_OK) {
            printf("case %d: DSP path returned an error\n", kase);
            ++bad;
        }
        p.bias_small = 0;
        bad += compare("dsp vs c", kase, s_y_dsp, s_y_c, ny, &dm);
        if (s_y_dsp[ny] != 0x55) {
            printf("case %d: DSP path wrote past the output\n", kase);
            ++bad;
        }
#endif
        /* the int16-bias functions on the bias truncated to int16 */
        const int misalign = (rnd() % 4u) == 0;
        int16_t *const b16 = s_bias16 + (misalign ? 1 : 0);
        const uint32_t b16style = rnd() % 4u;
        for (int32_t o = 0; o < dm.output_depth; ++o) {
            b16[o] = b16style == 0 ? (int16_t)((o & 1) ? INT16_MAX : INT16_MIN) : (int16_t)s_bias[o];
            s_bias_w[o] = b16[o];
        }
        const int16_t *const bias16 = bstyle == 3 ? 0 : b16;
        reference(&p, &dm, s_x, s_w, bias16 != 0 ? s_bias_w : 0, s_y_ref);
        memset(s_y_c, 0x55, sizeof s_y_c);
        if (sd_fully_connected_s8_b16_c(&p, &dm, s_x, s_w, bias16, s_y_c) != SD_STATUS_OK) {
            printf("case %d: plain C path (int16 bias) returned an error\n", kase);
            ++bad;
        }
        bad += compare("c int16 bias vs reference", kase, s_y_c, s_y_ref, ny, &dm);
        if (s_y_c[ny] != 0x55) {
            printf("case %d: plain C path (int16 bias) wrote past the output\n", kase);
            ++bad;
        }
#if HAVE_DSP
        memset(s_y_dsp, 0x55, sizeof s_y_dsp);
        if (sd_fully_connected_s8_b16_dsp(&p, &dm, s_x, s_w, bias16, s_y_dsp) != SD_STATUS_OK) {
            printf("case %d: DSP path (int16 bias) returned an error\n", kase);
            ++bad;
        }
        bad += compare("dsp int16 bias vs c", kase, s_y_dsp, s_y_c, ny, &dm);
        if (s_y_dsp[ny] != 0x55) {
            printf("case %d: DSP path (int16 bias) wrote past the output\n", kase);
            ++bad;
        }
#endif
        /* sd_fully_connected_s8_b16_shared: 1 .. SD_FC_SHARED_MAX ops on this
         * input (two weight matrices, their own output offsets, multipliers
         * and biases), each against sd_fully_connected_s8_b16_c alone */
        {
            const int32_t n = 1 + (int32_t)(rnd() % SD_FC_SHARED_MAX);
            sd_fc_params_t ps[SD_FC_SHARED_MAX];
            const uint32_t *ws[SD_FC_SHARED_MAX];
            const int16_t *bs[SD_FC_SHARED_MAX];
            int8_t *ys[SD_FC_SHARED_MAX];
            for (int32_t i = 0; i < nw; ++i) {
                s_w2[i] = rnd();
            }
            for (int32_t k = 0; k < n; ++k) {
                ps[k] = p;
                if (k > 0) {
                    ps[k].output_offset = rnd_range(-128, 127);
                    if (!p.per_channel && (rnd() & 1u)) {
                        s_mult_k[k] = rnd_mult();
                        s_shift_k[k] = rnd_shift();
                        ps[k].multiplier = &s_mult_k[k];
                        ps[k].shift = &s_shift_k[k];
                    }
                }
                ws[k] = (k & 1) ? s_w2 : s_w;
                bs[k] = k == 0 ? bias16 : ((rnd() % 4u) == 0 ? 0 : b16);
                ys[k] = s_y_sh[k];
                memset(s_y_sh[k], 0x55, sizeof s_y_sh[k]);
            }
            if (sd_fully_connected_s8_b16_shared(n, ps, &dm, s_x, ws, bs, ys) != SD_STATUS_OK) {
                printf("case %d: shared-input call returned an error\n", kase);
                ++bad;
            }
            for (int32_t k = 0; k < n; ++k) {
                memset(s_y_c, 0x55, sizeof s_y_c);
                (void)sd_fully_connected_s8_b16_c(&ps[k], &dm, s_x, ws[k], bs[k], s_y_c);
                bad += compare("shared-input vs c", kase, s_y_sh[k], s_y_c, ny, &dm);
                if (s_y_sh[k][ny] != 0x55) {
                    printf("case %d: shared-input call wrote past output %ld\n", kase, (long)k);
                    ++bad;
                }
            }
            outputs += n * ny;
        }
        outputs += 2 * ny;
        failed += bad != 0;
    }
    /* the dispatcher is the DSP path on DSP cores */
    printf("%s: %d cases, %ld outputs, dsp %d, %d failing\n", failed ? "FAIL" : "PASS", ncases, outputs, HAVE_DSP,
           failed);
    return failed > 99 ? 99 : failed;
}
