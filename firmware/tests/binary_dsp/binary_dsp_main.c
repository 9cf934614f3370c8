/*
 * binary_dsp_main.c - sd_add_s8 and sd_mul_s8 (on the Cortex-M4 their DSP
 * assembly loops, elsewhere the plain-C fast paths) against a naive reference
 * written here from TFLite Micro's AddFunc / MulElementwise with the shared
 * fixed-point helpers (sd_multiply_by_quantized_multiplier).
 *
 *   make -C firmware BOARD=mps2-an386 TEST_MAIN=tests/binary_dsp/binary_dsp_main.c test
 *   make -C firmware BOARD=posix TEST_MAIN=tests/binary_dsp/binary_dsp_main.c test
 *
 * Cases (xorshift, fixed seed): the released model's 5 ADD and 4 MUL
 * parameter sets, then random ones: offsets over their whole range, input 1
 * or 2 the exactly halved ADD input (or neither), multipliers 2^30 .. 2^31-1,
 * shifts over the range the kernels accept, output offsets -128..127, with
 * and without a fused activation clamp. Each case runs all 65,536 input
 * pairs (x1 fixed per row of 256, x2 running, plus 3 more elements so the
 * loops' remainders run) and sizes 1..7. Prints at most 20 mismatches and
 * `PASS: <cases> cases, <outputs> outputs, dsp <0|1>`; exit status = failing
 * cases (capped at 99).
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

#define N 259

static uint32_t s_rng = 0x2468ace1u;

static uint32_t rnd(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 17;
    s_rng ^= s_rng << 5;
    return s_rng;
}

static int32_t rnd_range(int32_t lo, int32_t hi)
{
    return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

static int32_t clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

static int8_t ref_add(const sd_add_params_t *p, int32_t x1, int32_t x2)
{
    const int32_t a = (p->input1_offset + x1) * (1 << p->left_shift);
    const int32_t b = (p->input2_offset + x2) * (1 << p->left_shift);
    const int32_t s1 = sd_multiply_by_quantized_multiplier(a, p->input1_multiplier, p->input1_shift);
    const int32_t s2 = sd_multiply_by_quantized_multiplier(b, p->input2_multiplier, p->input2_shift);
    const int32_t out =
        sd_multiply_by_quantized_multiplier(s1 + s2, p->output_multiplier, p->output_shift) + p->output_offset;
    return (int8_t)clamp(out, p->activation_min, p->activation_max);
}

static int8_t ref_mul(const sd_mul_params_t *p, int32_t x1, int32_t x2)
{
    const int32_t prod = (p->input1_offset + x1) * (p->input2_offset + x2);
    const int32_t out = sd_multiply_by_quantized_multiplier(prod, p->output_multiplier, p->output_shift) + p->output_offset;
    return (int8_t)clamp(out, p->activation_min, p->activation_max);
}

static int8_t s_x1[N], s_x2[N], s_y[N + 4], s_want[N];
static int s_reported;
static long s_outputs;

static int check(const char *what, int kase, int32_t n)
{
    int bad = 0;
    for (int32_t i = 0; i < n; ++i) {
        if (s_y[i] != s_want[i]) {
            if (s_reported < 20) {
                printf("case %d %s: x1 %d x2 %d: %d, expected %d\n", kase, what, s_x1[i], s_x2[i], s_y[i], s_want[i]);
                ++s_reported;
            }
            ++bad;
        }
    }
    if (s_y[n] != 0x55) {
        printf("case %d %s: wrote past the output\n", kase, what);
        ++bad;
    }
    s_outputs += n;
    return bad;
}

static void fill_row(int32_t x1, int32_t n)
{
    for (int32_t i = 0; i < n; ++i) {
        s_x1[i] = (int8_t)(i < 256 ? x1 : (int32_t)rnd());
        s_x2[i] = (int8_t)(i < 256 ? i - 128 : (int32_t)rnd());
    }
}

static int run_add(const sd_add_params_t *p, int kase)
{
    int bad = 0;
    for (int32_t r = 0; r < 256 + 7; ++r) {
        const int32_t n = r < 256 ? N : r - 255; /* then sizes 1..7 */
        fill_row(r < 256 ? r - 128 : 0, n);
        if (r >= 256) {
            for (int32_t i = 0; i < n; ++i) {
                s_x1[i] = (int8_t)rnd();
                s_x2[i] = (int8_t)rnd();
            }
        }
        for (int32_t i = 0; i < n; ++i) {
            s_want[i] = ref_add(p, s_x1[i], s_x2[i]);
        }
        memset(s_y, 0x55, sizeof s_y);
        if (sd_add_s8(p, 0, s_x1, s_x2, s_y, n) != SD_STATUS_OK) {
            printf("case %d: sd_add_s8 returned an error\n", kase);
            return 1;
        }
        bad += check("ADD", kase, n);
    }
    return bad;
}

static int run_mul(const sd_mul_params_t *p, int kase)
{
    int bad = 0;
    for (int32_t r = 0; r < 256 + 7; ++r) {
        const int32_t n = r < 256 ? N : r - 255;
        fill_row(r < 256 ? r - 128 : 0, n);
        if (r >= 256) {
            for (int32_t i = 0; i < n; ++i) {
                s_x1[i] = (int8_t)rnd();
                s_x2[i] = (int8_t)rnd();
            }
        }
        for (int32_t i = 0; i < n; ++i) {
            s_want[i] = ref_mul(p, s_x1[i], s_x2[i]);
        }
        memset(s_y, 0x55, sizeof s_y);
        if (sd_mul_s8(p, 0, s_x1, s_x2, s_y, n) != SD_STATUS_OK) {
            printf("case %d: sd_mul_s8 returned an error\n", kase);
            return 1;
        }
        bad += check("MUL", kase, n);
    }
    return bad;
}

static int32_t rnd_mult(void)
{
    const uint32_t k = rnd() % 8u;
    return k == 0 ? (1 << 30) : (k == 1 ? INT32_MAX : (int32_t)((1u << 30) + (rnd() & 0x3FFFFFFFu)));
}

int main(void)
{
    /* the released model's parameter sets (firmware/generated/sd_model_graph.c) */
    static const sd_add_params_t model_add[5] = {
        {-1, 3, 20, 1073741824, 0, 1159562902, -2, 1316904780, -18, 0, -128, 127},
        {9, 3, 20, 1073741824, 0, 1396416593, -2, 1195492188, -18, -11, -128, 127},
        {4, 10, 20, 1073741824, 0, 1577736214, -2, 1221023877, -18, -5, -128, 127},
        {1, 0, 20, 1073741824, 0, 1511937046, -2, 1911320913, -19, -1, -128, 127},
        {0, 20, 20, 1073741824, 0, 1566114677, -2, 1136475352, -18, -3, -128, 127},
    };
    static const sd_mul_params_t model_mul[4] = {
        {128, 0, 0, 1489675991, -8, -128, 127},
        {128, 0, -1, 1511857717, -8, -128, 127},
        {128, 0, -1, 1511937046, -9, -128, 127},
        {128, 1, -1, 1206413321, -7, -128, 127},
    };
    const int nrand = 24;
    int failed = 0;
    int cases = 0;
    sd_port_init();
    for (int k = 0; k < 5; ++k) {
        failed += run_add(&model_add[k], cases++) != 0;
    }
    for (int k = 0; k < 4; ++k) {
        failed += run_mul(&model_mul[k], cases++) != 0;
    }
    for (int k = 0; k < nrand; ++k) {
        sd_add_params_t a;
        a.input1_offset = rnd_range(-127, 128);
        a.input2_offset = rnd_range(-127, 128);
        a.left_shift = 20;
        const uint32_t half = rnd() % 4u; /* 0, 1: input 1 halved; 2: input 2; 3: neither */
        a.input1_multiplier = half <= 1 ? (1 << 30) : rnd_mult();
        a.input1_shift = half <= 1 ? 0 : -rnd_range(0, 12);
        a.input2_multiplier = half == 2 ? (1 << 30) : rnd_mult();
        a.input2_shift = half == 2 ? 0 : -rnd_range(half == 3 ? 0 : 1, (rnd() & 1u) ? 3 : 20);
        a.output_multiplier = rnd_mult();
        a.output_shift = -rnd_range(1, (rnd() & 1u) ? 22 : 30);
        a.output_offset = rnd_range(-128, 127);
        a.activation_min = (rnd() % 4u) == 0 ? rnd_range(-128, 0) : -128;
        a.activation_max = (rnd() % 4u) == 0 ? rnd_range(a.activation_min, 127) : 127;
        failed += run_add(&a, cases++) != 0;

        sd_mul_params_t m;
        m.input1_offset = rnd_range(-127, 128);
        m.input2_offset = rnd_range(-127, 128);
        m.output_multiplier = rnd_mult();
        m.output_shift = -rnd_range(1, (rnd() & 1u) ? 12 : 30);
        m.output_offset = rnd_range(-128, 127);
        m.activation_min = (rnd() % 4u) == 0 ? rnd_range(-128, 0) : -128;
        m.activation_max = (rnd() % 4u) == 0 ? rnd_range(m.activation_min, 127) : 127;
        failed += run_mul(&m, cases++) != 0;
    }
    printf("%s: %d cases, %ld outputs, dsp %d, %d failing\n", failed ? "FAIL" : "PASS", cases, s_outputs, HAVE_DSP,
           failed);
    return failed > 99 ? 99 : failed;
}
