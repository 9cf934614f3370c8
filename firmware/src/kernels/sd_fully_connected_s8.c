/*
 * sd_fully_connected_s8.c - int8 FULLY_CONNECTED, per-tensor or per-channel
 * weights, int32 or int16 bias, fused activation clamp, on weights packed ahead of
 * time by convert/codegen.py (layout in sd_kernels.h).
 *
 * Bit-exact with TFLite Micro's reference FullyConnected /
 * FullyConnectedPerChannel: the int32 accumulator is
 *   bias[o] + sum_d w[o][d] * (x[d] + input_offset)
 * which is computed here as
 *   eff_bias[o] + sum_d w[o][d] * x[d],  eff_bias = bias + input_offset * row_sum
 * (the same value modulo 2^32, hence the same int32; the generator folds the
 * input offset into the bias).
 *
 * Two paths compute the same int32 accumulators and share the requantization:
 *
 * - sd_fully_connected_s8_c (plain C, every target; the host build uses it):
 *   decodes each 16-bit lane of the packed words into its two weights
 *   w[r][c] = low byte - 128 and w[r'][c] = high byte, and multiplies.
 *
 * - sd_fully_connected_s8_dsp (cores with the DSP extension, __ARM_FEATURE_DSP:
 *   Cortex-M4/M7/M33...; the build selects it for sd_fully_connected_s8).
 *   One lane L = u + 256 w' (u = w[r][c] + 128 in [0, 255], w' = w[r'][c])
 *   is a signed 16-bit value, so SMLAD of the sign-extended inputs (x[c],
 *   x[c+2]) with the raw word A gives, in one instruction,
 *     S += x[c] L(c) + x[c+2] L(c+2) = sum x u + 256 sum x w'
 *   and SMLAD with UXTB16(A) (the two u bytes) gives T += sum x u. After the
 *   columns of a chunk: row r = T - 128 sum x, row r' = (S - T) / 256. That is
 *   3 instructions (2 SMLAD + 1 UXTB16) per 4 multiply-accumulates instead of
 *   4 for the classic SXTB16 + SMLAD form (CMSIS-NN). S - T = 256 sum x w' is
 *   exact modulo 2^32, and sum x w' fits 24 bits (|x w'| <= 2^14, at most
 *   SD_FC_XCOLS = 128 columns per chunk), so the arithmetic shift recovers it.
 *   The input row is sign-extended once per call into a 256-byte stack
 *   buffer of (x[4g], x[4g+2]), (x[4g+1], x[4g+3]) pairs (SXTB16 and SXTB16
 *   ROR #8); its sum comes from USADA8 on x ^ 0x80808080. The inner loop,
 *   4 rows x 4 columns: LDRD (inputs) + LDM (4 weight words) + 4 UXTB16 +
 *   8 SMLAD = 14 instructions per 16 multiply-accumulates, 4 column groups
 *   per loop pass.
 *
 *   sd_fully_connected_s8_b16_shared runs several ops on the same input (an
 *   LSTM step's gates) with the input row unpacked once for all of them.
 *
 *   The inner loop is a small naked function in inline assembly, the rest is
 *   C with ACLE intrinsics (<arm_acle.h>: __smlad, __uxtb16, __sxtb16,
 *   __usada8). Why assembly there: GCC 12 splits the four weight loads into
 *   four LDRs (no LDM; LDM needs ascending registers, which only explicit
 *   register allocation gives) and its arm_acle.h has no rotated SXTB16 (and
 *   does not fold a ROR into it): measured 23 instead of 14 instructions per
 *   16 multiply-accumulates for the same loop written with intrinsics.
 */
#include <string.h>

#include "sd_fixedpoint.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define SD_FC_HAVE_DSP 1
#include <arm_acle.h>
#else
#define SD_FC_HAVE_DSP 0
#endif

#if defined(__GNUC__)
#define SD_NOINLINE __attribute__((noinline))
#else
#define SD_NOINLINE
#endif

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
    int32_t bias_small; /* sd_fc_params_t.bias_small */
    int32_t zp;
    int32_t lo;
    int32_t hi;
} fc_out_t;

/* Rows per block: the int32 sums of a block are kept on the stack, then
 * requantized in one tight loop. */
#define SD_FC_BLOCK 16

/* y[o0 + k] for k < n from acc[k] (the bias is already in it). Cold on
 * DSP cores: their common case requantizes in quad_block. */
#if SD_FC_HAVE_DSP && defined(__GNUC__)
__attribute__((cold))
#endif
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
        for (int32_t k = 0; k < n; ++k) {
            y[k] = (int8_t)sd_fp_clamp(sd_fp_mbqm_right(acc[k], m, kk, e) + zp, lo, hi);
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

/* Argument check and output parameters shared by both paths; 0 when invalid. */
static int fc_setup(const sd_fc_params_t *params, const sd_fc_dims_t *dims, const int8_t *input,
                    const uint32_t *weights, const int8_t *output, fc_out_t *q)
{
    if (params == 0 || dims == 0 || input == 0 || weights == 0 || output == 0 ||
        params->multiplier == 0 || params->shift == 0 || dims->batches < 1 ||
        dims->accum_depth < 1 || dims->output_depth < 1) {
        return 0;
    }
    q->mult = params->multiplier;
    q->shift = params->shift;
    q->per_channel = params->per_channel;
    q->bias_small = params->bias_small;
    q->zp = params->output_offset;
    q->lo = params->activation_min;
    q->hi = params->activation_max;
    return 1;
}

/* The effective bias, int32 or int16 (sd_kernels.h); at most one pointer set. */
typedef struct {
    const int32_t *b32;
    const int16_t *b16;
} fc_bias_t;

SD_INLINE int32_t bias_at(const fc_bias_t *bias, int32_t o)
{
    return bias->b32 != 0 ? bias->b32[o] : (bias->b16 != 0 ? (int32_t)bias->b16[o] : 0);
}

/* Accumulators of rows 2p (a[0]) and 2p + 1 (a[1]) start from the bias; a
 * missing row 2p + 1 (odd output depth) from 0. */
SD_INLINE void bias_pair(const fc_bias_t *bias, int32_t p, int32_t out_depth, int32_t *a)
{
    a[0] = bias_at(bias, 2 * p);
    a[1] = 2 * p + 1 < out_depth ? bias_at(bias, 2 * p + 1) : 0;
}

/* ------------------------------------------------------------------ plain C */

/* Adds one packed lane's two products with input value xv to a[0], a[1]. */
SD_INLINE void lane_mac(uint32_t lane, int32_t xv, uint32_t *a)
{
    a[0] += (uint32_t)(xv * ((int32_t)(lane & 0xFFu) - 128));
    a[1] += (uint32_t)(xv * (int32_t)(int8_t)(uint8_t)(lane >> 8));
}

static sd_status_t fc_c(const sd_fc_params_t *params, const sd_fc_dims_t *dims, const int8_t *input,
                        const uint32_t *weights, const fc_bias_t *bias, int8_t *output)
{
    fc_out_t q;
    if (!fc_setup(params, dims, input, weights, output, &q)) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    const int32_t depth = dims->accum_depth;
    const int32_t out_depth = dims->output_depth;
    const int32_t pairs = (out_depth + 1) / 2;
    const int32_t groups = (depth + 3) / 4;
    const int32_t full = depth / 4;
    for (int32_t b = 0; b < dims->batches; ++b) {
        const int8_t *x = input + b * depth;
        int8_t xt[4] = {0, 0, 0, 0}; /* the last, partial column group */
        for (int32_t d = 4 * full; d < depth; ++d) {
            xt[d - 4 * full] = x[d];
        }
        int32_t acc[SD_FC_BLOCK];
        for (int32_t p0 = 0; p0 < pairs; p0 += SD_FC_BLOCK / 2) {
            const int32_t p1 = (pairs - p0 < SD_FC_BLOCK / 2) ? pairs : p0 + SD_FC_BLOCK / 2;
            for (int32_t p = p0; p < p1; ++p) {
                /* pair p's words: in a group of two pairs (stride 4) or the odd last one (stride 2) */
                const int32_t in_quad = p < (pairs & ~1);
                const int32_t stride = in_quad ? 4 : 2;
                const uint32_t *w = weights + (p & ~1) * groups * 2 + (in_quad ? 2 * (p & 1) : 0);
                uint32_t a[2];
                bias_pair(bias, p, out_depth, (int32_t *)a);
                for (int32_t g = 0; g < groups; ++g) {
                    const int8_t *xg = g < full ? x + 4 * g : xt;
                    const uint32_t wa = w[g * stride];
                    const uint32_t wb = w[g * stride + 1];
                    lane_mac(wa, xg[0], a);
                    lane_mac(wb, xg[1], a);
                    lane_mac(wa >> 16, xg[2], a);
                    lane_mac(wb >> 16, xg[3], a);
                }
                acc[2 * (p - p0)] = (int32_t)a[0];
                acc[2 * (p - p0) + 1] = (int32_t)a[1];
            }
            const int32_t o0 = 2 * p0;
            const int32_t n = (out_depth - o0 < SD_FC_BLOCK) ? out_depth - o0 : SD_FC_BLOCK;
            requantize(&q, acc, o0, n, output + b * out_depth);
        }
    }
    return SD_STATUS_OK;
}

sd_status_t sd_fully_connected_s8_c(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                    const int8_t *input, const uint32_t *weights,
                                    const int32_t *bias, int8_t *output)
{
    const fc_bias_t b = {bias, 0};
    return fc_c(params, dims, input, weights, &b, output);
}

sd_status_t sd_fully_connected_s8_b16_c(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                        const int8_t *input, const uint32_t *weights,
                                        const int16_t *bias, int8_t *output)
{
    const fc_bias_t b = {0, bias};
    return fc_c(params, dims, input, weights, &b, output);
}

sd_status_t sd_fully_connected_s8_b16_shared_c(int32_t n, const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                               const int8_t *input, const uint32_t *const *weights,
                                               const int16_t *const *bias, int8_t *const *output)
{
    if (n < 1 || n > SD_FC_SHARED_MAX || params == 0 || weights == 0 || bias == 0 || output == 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    for (int32_t k = 0; k < n; ++k) {
        const fc_bias_t b = {0, bias[k]};
        const sd_status_t st = fc_c(&params[k], dims, input, weights[k], &b, output[k]);
        if (st != SD_STATUS_OK) {
            return st;
        }
    }
    return SD_STATUS_OK;
}

/* ------------------------------------------------------------- DSP extension */
#if SD_FC_HAVE_DSP

/* Columns per unpacked input chunk (a multiple of 4; at most 511 keeps
 * sum x w' within 24 bits). 128 covers every layer of the model in one chunk. */
#define SD_FC_XCOLS 128

SD_INLINE uint32_t sxtb16_ror8(uint32_t v)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* xb[2g] = (x[4g], x[4g+2]), xb[2g+1] = (x[4g+1], x[4g+3]) as int16 lanes for
 * the n columns at x, zero-padded to a multiple of 4; returns sum x (mod 2^32). */
static uint32_t unpack_x(const int8_t *x, int32_t n, uint32_t *xb)
{
    const int32_t full = n >> 2;
    uint32_t s = 0; /* sum of x + 128 over the full groups */
    for (int32_t g = 0; g < full; ++g) {
        uint32_t v;
        memcpy(&v, x + 4 * g, 4);
        xb[2 * g] = (uint32_t)__sxtb16(v);
        xb[2 * g + 1] = sxtb16_ror8(v);
        s = __usada8(v ^ 0x80808080u, 0u, s);
    }
    s -= (uint32_t)(512 * full);
    if (n & 3) {
        int8_t t[4] = {0, 0, 0, 0};
        for (int32_t d = 0; d < (n & 3); ++d) {
            t[d] = x[4 * full + d];
            s += (uint32_t)(int32_t)t[d];
        }
        uint32_t v;
        memcpy(&v, t, 4);
        xb[2 * full] = (uint32_t)__sxtb16(v);
        xb[2 * full + 1] = sxtb16_ror8(v);
    }
    return s;
}

/* Control block of quad_block (uint32_t words). */
enum {
    QB_M,     /* requantizing: the multiplier (2^30 <= m < 2^31), */
    QB_HZ,    /* 2^(e - 1) + (output zero point) 2^e, */
    QB_E,     /* the right shift e (1 .. 23), */
    QB_CORR,  /* -128 sum x over the columns in xb; requantizing: twice that */
    QB_Y,     /* 0: add to the int32 accumulators at QB_ACC; else int8 output pointer (advanced) */
    QB_YEND,  /* requantizing: the end of the output (QB_Y + 4 per group of rows) */
    QB_NG,    /* column groups in xb, >= 1 */
    QB_NQ,    /* accumulating: groups of two row pairs, >= 1 (counted down) */
    QB_WSKIP, /* accumulating: bytes of weights to skip after each group of rows */
    QB_ACC,   /* accumulating: int32 accumulators (advanced by 16 bytes per group of rows) */
    QB_PC,    /* requantizing: 0 per tensor (QB_M, QB_HZ, QB_E as above); 1 per channel, with
                 QB_M the multipliers and QB_HZ the shifts of the rows (both advanced) and
                 QB_E 2 (output zero point) + 1 */
    QB_B32,   /* 0: the bias is int16; 1: int32 (requantizing only; sd_fc_params_t.bias_small) */
    QB_WORDS
};
/* quad_block reads ctl[QB_PC] at byte offset 40 and ctl[QB_B32] at 44 */
typedef char sd_fc_qb_pc_offset_check[(QB_PC == 10 && QB_B32 == 11) ? 1 : -1];

/* For each group of two row pairs (4 rows; words at w, 4 per column group):
 * S0, T0, S1, T1 over the ctl[QB_NG] column groups of xb (2 words per
 * group), starting from the int16 bias b0..b3 at r0 (two words:
 * b0 | b1 << 16, b2 | b3 << 16; r0 advances by 8 bytes) as T0 = b0,
 * S0 = b0 + 256 b1 (SMLABT; so S0 - T0 = 256 (b1 + sum x w'), exact:
 * |b1 + sum x w'| < 2^23), likewise T1, S1. With ctl[QB_B32] the bias is
 * int32 (four words; r0 advances by 16 bytes) and S0 = b0 + (b1 << 8):
 * the same sums, exact under sd_fc_params_t.bias_small's bound (every
 * |b| + depth 2^14 < 2^23). The rows' accumulators are
 *   a0 = T0 + corr, a1 = (S0 - T0) >> 8, a2 = T1 + corr, a3 = (S1 - T1) >> 8.
 * Requantizing (ctl[QB_Y] != 0; until ctl[QB_Y] reaches ctl[QB_YEND]), from
 * 2 a (exact: |a| < 2^23; corr is given doubled), per row with SMMLAR (the
 * rounding high multiply):
 *   y = SMMLAR(2a, m, hz) = hz + srdhm(a, m)       (srdhm(a, m) = floor((2a m + 2^31) / 2^32))
 *   out = SSAT8((y - [a < 0]) >> e)                (= rdbpot(srdhm(a, m), e) + zero point:
 *                                                   [srdhm < 0] may be read as [a < 0] for m >= 2^30)
 * 4 bytes to ctl[QB_Y]. Per channel (ctl[QB_PC] != 0), each row's m and e
 * are read from the op's arrays, and hz = (2 zp + 1) 2^(e - 1) made from
 * them (5 more instructions per row). Otherwise, for ctl[QB_NQ] groups (r0 then points at
 * 4 zero int16, and is moved back after each), the accumulators are added to
 * the int32 acc[0..3] at ctl[QB_ACC], which advances by 16 bytes, and w skips
 * ctl[QB_WSKIP] more bytes.
 * AAPCS: r0 = bias, r1 = w, r2 = xb, r3 = ctl. In the loop: r4-r7 S0 T0 S1 T1,
 * r8-r11 the words A0 B0 A1 B1, r12 / lr the inputs (x[4g], x[4g+2]) /
 * (x[4g+1], x[4g+3]). Per group of rows outside the column loop: 7
 * instructions of set-up, 3 to dispatch, 6 + 1 + 4 x 5 to requantize and 4
 * to advance (41); per channel 3 + 4 x 5 more; 2 to test ctl[QB_B32] (an
 * int32 bias: 1 more). */
#define SD_FC_ASM_ARG __attribute__((unused))
/* naked: the body is the whole function; noipa: GCC keeps the AAPCS call (no clone, no inlining) */
__attribute__((naked, noipa)) static void quad_block(const void *bias SD_FC_ASM_ARG,
                                                     const uint32_t *w SD_FC_ASM_ARG,
                                                     const uint32_t *xb SD_FC_ASM_ARG,
                                                     uint32_t *ctl SD_FC_ASM_ARG)
{
    __asm__ volatile(
        "    push    {r4-r11, lr}\n"
        "    mov     r12, r3\n"
        "    ldr     r4, [r3, #44]\n" /* b32 */
        "    ldr     r3, [r3, #24]\n" /* ng */
        "    push    {r2, r3, r4, r12}\n" /* [sp]: xb, ng, b32, ctl */
        "5:  ldr     r3, [sp, #8]\n"
        "    cbz     r3, 12f\n"
        "    ldmia   r0!, {r5, r7, r8, r10}\n" /* int32 b0, b1, b2, b3 */
        "    add     r4, r5, r7, lsl #8\n" /* T0 = b0 (r5), S0 = b0 + 256 b1 */
        "    mov     r7, r8\n" /* T1 = b2 */
        "    add     r6, r8, r10, lsl #8\n" /* S1 = b2 + 256 b3 */
        "    b       13f\n"
        "12: ldrd    r8, r10, [r0], #8\n" /* b0 | b1 << 16, b2 | b3 << 16 */
        "    mov     r12, #256\n"
        "    sxth    r5, r8\n" /* T0 = b0 */
        "    smlabt  r4, r12, r8, r5\n" /* S0 = b0 + 256 b1 */
        "    sxth    r7, r10\n"
        "    smlabt  r6, r12, r10, r7\n"
        "13: ldrd    r2, r3, [sp]\n" /* xb, ng */
#define SD_FC_GROUP                                                                                      \
        "    ldrd    r12, lr, [r2], #8\n"                                                                \
        "    ldmia   r1!, {r8-r11}\n"                                                                    \
        "    smlad   r4, r12, r8, r4\n"                                                                  \
        "    uxtb16  r8, r8\n"                                                                           \
        "    smlad   r5, r12, r8, r5\n"                                                                  \
        "    smlad   r4, lr, r9, r4\n"                                                                   \
        "    uxtb16  r9, r9\n"                                                                           \
        "    smlad   r5, lr, r9, r5\n"                                                                   \
        "    smlad   r6, r12, r10, r6\n"                                                                 \
        "    uxtb16  r10, r10\n"                                                                         \
        "    smlad   r7, r12, r10, r7\n"                                                                 \
        "    smlad   r6, lr, r11, r6\n"                                                                  \
        "    uxtb16  r11, r11\n"                                                                         \
        "    smlad   r7, lr, r11, r7\n"
        /* 8 column groups per pass; a remainder of 4 .. 7 enters the pass
         * at its second half (6:), leaving 0 .. 3 for the single-group loop */
        "    subs    r3, r3, #8\n"
        "    blt     2f\n"
        "1:\n" SD_FC_GROUP SD_FC_GROUP SD_FC_GROUP SD_FC_GROUP
        "6:\n" SD_FC_GROUP SD_FC_GROUP SD_FC_GROUP SD_FC_GROUP
        "    subs    r3, r3, #8\n"
        "    bge     1b\n"
        "2:  adds    r3, r3, #8\n" /* 0 .. 7 groups left */
        "    beq     4f\n"
        "    subs    r3, r3, #4\n"
        "    bge     6b\n" /* 4 more, then back here with 0 .. 3 */
        "    adds    r3, r3, #4\n"
        "3:\n" SD_FC_GROUP
        "    subs    r3, r3, #1\n"
        "    bne     3b\n"
        "4:  ldr     lr, [sp, #12]\n" /* ctl */
        "    ldrd    r3, r2, [lr, #12]\n" /* corr, y */
        "    cbnz    r2, 8f\n"
        "    add     r8, r5, r3\n" /* a0 */
        "    sub     r4, r4, r5\n"
        "    asr     r9, r4, #8\n" /* a1 */
        "    add     r10, r7, r3\n" /* a2 */
        "    sub     r6, r6, r7\n"
        "    asr     r11, r6, #8\n" /* a3 */
        "    ldr     r2, [lr, #36]\n" /* acc */
        "    ldm     r2, {r4-r7}\n"
        "    add     r8, r8, r4\n"
        "    add     r9, r9, r5\n"
        "    add     r10, r10, r6\n"
        "    add     r11, r11, r7\n"
        "    stmia   r2!, {r8-r11}\n"
        "    str     r2, [lr, #36]\n"
        "    ldr     r3, [lr, #32]\n" /* wskip */
        "    add     r1, r1, r3\n"
        "    sub     r0, r0, #8\n" /* the zero bias again */
        "    ldr     r3, [lr, #28]\n" /* nq */
        "    subs    r3, r3, #1\n"
        "    str     r3, [lr, #28]\n"
        "    bne     5b\n"
        "    b       9f\n"
        "8:  add     r8, r3, r5, lsl #1\n" /* 2 a0 */
        "    sub     r4, r4, r5\n"
        "    asr     r9, r4, #7\n" /* 2 a1 */
        "    add     r10, r3, r7, lsl #1\n" /* 2 a2 */
        "    sub     r6, r6, r7\n"
        "    asr     r11, r6, #7\n" /* 2 a3 */
        "    ldr     r3, [lr, #40]\n" /* per channel? */
        "    cbnz    r3, 10f\n"
        "    ldm     lr, {r3-r5}\n" /* m, hz, e */
#define SD_FC_RQ(a)                                                                                      \
        "    smmlar  r12, " a ", r3, r4\n"                                                               \
        "    add     r12, r12, " a ", asr #31\n"                                                         \
        "    asr     r12, r12, r5\n"                                                                     \
        "    ssat    r12, #8, r12\n"                                                                     \
        "    strb    r12, [r2], #1\n"
        SD_FC_RQ("r8") SD_FC_RQ("r9") SD_FC_RQ("r10") SD_FC_RQ("r11")
        "    b       11f\n"
        "10: ldm     lr, {r6, r7, r12}\n" /* the rows' multipliers, their shifts, 2 zp + 1 */
#define SD_FC_RQ_PC(a)                                                                                   \
        "    ldr     r3, [r6], #4\n"     /* m */                                                          \
        "    ldrsb   r5, [r7], #1\n"     /* -e */                                                         \
        "    mvn     r4, r5\n"           /* e - 1 */                                                      \
        "    lsl     r4, r12, r4\n"      /* hz */                                                         \
        "    rsb     r5, r5, #0\n"       /* e */                                                          \
        "    smmlar  r4, " a ", r3, r4\n"                                                                 \
        "    add     r4, r4, " a ", asr #31\n"                                                           \
        "    asr     r4, r4, r5\n"                                                                       \
        "    ssat    r4, #8, r4\n"                                                                       \
        "    strb    r4, [r2], #1\n"
        SD_FC_RQ_PC("r8") SD_FC_RQ_PC("r9") SD_FC_RQ_PC("r10") SD_FC_RQ_PC("r11")
        "    stm     lr, {r6, r7}\n"
        "11: str     r2, [lr, #16]\n"
        "    ldr     r3, [lr, #20]\n" /* y end */
        "    cmp     r2, r3\n"
        "    bne     5b\n"
        "9:  add     sp, sp, #16\n"
        "    pop     {r4-r11, pc}\n");
#undef SD_FC_GROUP
#undef SD_FC_RQ
#undef SD_FC_RQ_PC
}

/* S, T of one row pair over ng groups: w = 2 words per group (A B). */
SD_INLINE void pair_dot(const uint32_t *w, const uint32_t *xb, int32_t ng, int32_t *st)
{
    int32_t s = 0;
    int32_t t = 0;
    for (int32_t g = 0; g < ng; ++g) {
        const uint32_t wa = w[2 * g];
        const uint32_t wb = w[2 * g + 1];
        const int32_t xe = (int32_t)xb[2 * g];
        const int32_t xo = (int32_t)xb[2 * g + 1];
        s = __smlad(xe, (int32_t)wa, s);
        t = __smlad(xe, (int32_t)__uxtb16(wa), t);
        s = __smlad(xo, (int32_t)wb, s);
        t = __smlad(xo, (int32_t)__uxtb16(wb), t);
    }
    st[0] = s;
    st[1] = t;
}

/* a[0] += T - 128 sum x (row r), a[1] += (S - T) / 256 (row r'). */
SD_INLINE void pair_add(int32_t *a, const int32_t *st, uint32_t corr)
{
    a[0] = (int32_t)((uint32_t)a[0] + (uint32_t)st[1] + corr);
    a[1] = (int32_t)((uint32_t)a[1] + (uint32_t)((int32_t)((uint32_t)st[0] - (uint32_t)st[1]) >> 8));
}

/* The int16 bias of quad_block's accumulate mode (read, and moved back after each group of rows). */
static const int16_t s_zero16[4] __attribute__((aligned(8))) = {0, 0, 0, 0};

/* Whether an op's rows qualify for quad_block's requantization (the fast
 * case of fc_dsp, apart from its shape conditions): an int16 bias (4-byte
 * aligned) or an int32 one within bias_small's bound (the caller's word:
 * the generator checks it; a missing bias takes the general path), no fused activation, and
 * per tensor a normalized multiplier with 1 <= e <= 23 (the zero point
 * folded into hz without overflow); per channel, the caller's word that
 * every channel is so (per_channel == SD_FC_PER_CHANNEL_NORMALIZED: the
 * generator checks it; checking 4 x 128 channels here would cost about 6 %
 * of an LSTM step). If so, sets ctl[QB_M], ctl[QB_HZ], ctl[QB_E], ctl[QB_PC], ctl[QB_B32]. */
static int fc_fast(const fc_out_t *q, const fc_bias_t *bias, uint32_t *ctl)
{
    if (q->lo != -128 || q->hi != 127) {
        return 0;
    }
    if (bias->b16 != 0 && ((uintptr_t)bias->b16 & 3u) == 0) {
        ctl[QB_B32] = 0;
    } else if (bias->b32 != 0 && q->bias_small == 1) {
        ctl[QB_B32] = 1;
    } else {
        return 0;
    }
    if (q->per_channel) {
        if (q->per_channel != SD_FC_PER_CHANNEL_NORMALIZED) {
            return 0;
        }
        ctl[QB_M] = (uint32_t)(uintptr_t)q->mult;
        ctl[QB_HZ] = (uint32_t)(uintptr_t)q->shift;
        ctl[QB_E] = 2u * (uint32_t)q->zp + 1u;
        ctl[QB_PC] = 1;
        return 1;
    }
    const int32_t e = -q->shift[0];
    if (!sd_fp_mbqm_right_ok(q->mult[0], q->shift[0]) || e > 23) {
        return 0;
    }
    ctl[QB_M] = (uint32_t)q->mult[0];
    ctl[QB_HZ] = (1u << (e - 1)) + ((uint32_t)q->zp << e);
    ctl[QB_E] = (uint32_t)e;
    ctl[QB_PC] = 0;
    return 1;
}

/* n ops (1 .. SD_FC_SHARED_MAX) on the same input and dims: op k has
 * params[k], weights[k], output[k] and the bias b32 (only with n = 1) or
 * b16[k] (b16 may be NULL: no bias). Each input row is unpacked once for all
 * of them (with one column chunk). */
static sd_status_t fc_dsp(int32_t n, const sd_fc_params_t *params, const sd_fc_dims_t *dims, const int8_t *input,
                          const uint32_t *const *weights, const int32_t *b32, const int16_t *const *b16,
                          int8_t *const *output)
{
    fc_out_t q;
    if (n < 1 || n > SD_FC_SHARED_MAX || params == 0 || dims == 0 || input == 0 || weights == 0 || output == 0 ||
        dims->batches < 1 || dims->accum_depth < 1 || dims->output_depth < 1) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    const int32_t depth = dims->accum_depth;
    const int32_t out_depth = dims->output_depth;
    const int32_t pairs = (out_depth + 1) / 2;
    const int32_t groups = (depth + 3) / 4;
    const int32_t quads = out_depth / 4; /* groups of two row pairs with all 4 rows real */
    const int32_t one_chunk = depth <= SD_FC_XCOLS;
    uint32_t xb[SD_FC_XCOLS / 2];
    for (int32_t b = 0; b < dims->batches; ++b) {
        const int8_t *x = input + b * depth;
        uint32_t corr1 = 0; /* -128 sum x over the columns in xb (one chunk: for every op) */
        if (one_chunk) {
            corr1 = 0u - (unpack_x(x, depth, xb) << 7);
        }
        for (int32_t k = 0; k < n; ++k) {
            const fc_bias_t bias = {b32, b16 != 0 ? b16[k] : 0};
            const uint32_t *const weights_k = weights[k];
            int8_t *y = output[k] + b * out_depth;
            uint32_t corr = corr1;
            if (!fc_setup(&params[k], dims, input, weights_k, y, &q)) {
                return SD_STATUS_ERROR_ARGUMENT; /* (the ops before it are done) */
            }
            /* The common case in one pass of quad_block per input row,
             * requantized there (rows 0 .. 4 quads - 1; the rest, at most 3
             * rows, below): one column chunk and fc_fast's conditions (an
             * int16 bias or a small int32 one, so |accumulator| < 2^23, ...). Otherwise the general
             * path (accumulators on the stack, requantize() in C). */
            uint32_t ctl[QB_WORDS];
            const int fast = one_chunk && quads > 0 && fc_fast(&q, &bias, ctl);
            int32_t acc[SD_FC_BLOCK];
            if (fast) {
                ctl[QB_NG] = (uint32_t)groups;
                ctl[QB_CORR] = corr << 1;
                ctl[QB_Y] = (uint32_t)(uintptr_t)y;
                ctl[QB_YEND] = (uint32_t)(uintptr_t)(y + 4 * quads);
                quad_block(bias.b16 != 0 ? (const void *)bias.b16 : (const void *)bias.b32, weights_k, xb, ctl);
            }
            /* rows in blocks of SD_FC_BLOCK (in the fast case only the last 0-3 rows are left) */
            for (int32_t p0 = fast ? 2 * quads : 0; p0 < pairs; p0 += SD_FC_BLOCK / 2) {
                const int32_t p1 = (pairs - p0 < SD_FC_BLOCK / 2) ? pairs : p0 + SD_FC_BLOCK / 2;
                const int32_t o0 = 2 * p0;
                const int32_t nr = (out_depth - o0 < SD_FC_BLOCK) ? out_depth - o0 : SD_FC_BLOCK;
                const int32_t nq = (p1 - p0) / 2; /* groups of two pairs; p0 is even */
                const uint32_t *w = weights_k + p0 * groups * 2;
                /* accumulators start from the bias (a missing odd last row from 0) */
                for (int32_t r = 0; r < nr; ++r) {
                    acc[r] = bias_at(&bias, o0 + r);
                }
                if (nr & 1) {
                    acc[nr] = 0;
                }
                for (int32_t c0 = 0; c0 < depth; c0 += SD_FC_XCOLS) {
                    const int32_t cols = (depth - c0 < SD_FC_XCOLS) ? depth - c0 : SD_FC_XCOLS;
                    const int32_t ng = (cols + 3) / 4;
                    if (!one_chunk) {
                        corr = 0u - (unpack_x(x + c0, cols, xb) << 7);
                    }
                    if (nq > 0) {
                        ctl[QB_NG] = (uint32_t)ng;
                        ctl[QB_NQ] = (uint32_t)nq;
                        ctl[QB_CORR] = corr;
                        ctl[QB_WSKIP] = (uint32_t)(16 * (groups - ng));
                        ctl[QB_Y] = 0;
                        ctl[QB_ACC] = (uint32_t)(uintptr_t)acc;
                        ctl[QB_B32] = 0;
                        quad_block(s_zero16, w + c0, xb, ctl);
                    }
                    if (2 * nq < p1 - p0) { /* the odd last pair */
                        int32_t st[2];
                        pair_dot(w + 4 * nq * groups + c0 / 2, xb, ng, st);
                        pair_add(acc + 4 * nq, st, corr);
                    }
                }
                requantize(&q, acc, o0, nr, y);
            }
        }
    }
    return SD_STATUS_OK;
}

sd_status_t sd_fully_connected_s8_dsp(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                      const int8_t *input, const uint32_t *weights,
                                      const int32_t *bias, int8_t *output)
{
    return fc_dsp(1, params, dims, input, &weights, bias, 0, &output);
}

sd_status_t sd_fully_connected_s8_b16_dsp(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                          const int8_t *input, const uint32_t *weights,
                                          const int16_t *bias, int8_t *output)
{
    return fc_dsp(1, params, dims, input, &weights, 0, &bias, &output);
}

sd_status_t sd_fully_connected_s8_b16_shared_dsp(int32_t n, const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                                 const int8_t *input, const uint32_t *const *weights,
                                                 const int16_t *const *bias, int8_t *const *output)
{
    return bias == 0 ? SD_STATUS_ERROR_ARGUMENT : fc_dsp(n, params, dims, input, weights, 0, bias, output);
}

#endif /* SD_FC_HAVE_DSP */

sd_status_t sd_fully_connected_s8(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                  const int8_t *input, const uint32_t *weights,
                                  const int32_t *bias, int8_t *output)
{
#if SD_FC_HAVE_DSP
    return sd_fully_connected_s8_dsp(params, dims, input, weights, bias, output);
#else
    return sd_fully_connected_s8_c(params, dims, input, weights, bias, output);
#endif
}

sd_status_t sd_fully_connected_s8_b16(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                      const int8_t *input, const uint32_t *weights,
                                      const int16_t *bias, int8_t *output)
{
#if SD_FC_HAVE_DSP
    return sd_fully_connected_s8_b16_dsp(params, dims, input, weights, bias, output);
#else
    return sd_fully_connected_s8_b16_c(params, dims, input, weights, bias, output);
#endif
}

sd_status_t sd_fully_connected_s8_b16_shared(int32_t n, const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                             const int8_t *input, const uint32_t *const *weights,
                                             const int16_t *const *bias, int8_t *const *output)
{
#if SD_FC_HAVE_DSP
    return sd_fully_connected_s8_b16_shared_dsp(n, params, dims, input, weights, bias, output);
#else
    return sd_fully_connected_s8_b16_shared_c(n, params, dims, input, weights, bias, output);
#endif
}
