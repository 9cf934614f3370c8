/*
 * sd_kernels.h - int8 inference kernels, bit-exact with the reference
 * integer kernels of TensorFlow Lite Micro.
 *
 * Conventions (as in CMSIS-NN):
 * - one function per op, named sd_<op>_s8, one source file per function in
 *   firmware/src/kernels/;
 * - the caller owns every buffer; no kernel allocates, keeps state or prints;
 * - parameters come in small structs computed ahead of time by
 *   convert/codegen.py exactly as TFLite Micro's Prepare() computes them;
 * - every function returns an sd_status_t, SD_STATUS_OK (0) on success.
 *
 * Quantized real value = scale * (q - zero_point). A "multiplier/shift" pair
 * encodes the real factor multiplier * 2^(shift - 31), multiplier in
 * [2^30, 2^31 - 1] (or 0), shift in [-31, 30].
 *
 * Unless a comment says otherwise, input and output buffers of elementwise
 * ops may be the same buffer (in-place), and buffers of the data-movement ops
 * must not overlap.
 */
#ifndef SD_KERNELS_H
#define SD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SD_STATUS_OK = 0,
    SD_STATUS_ERROR_ARGUMENT = -1,
} sd_status_t;

/* ---------------------------------------------------------------------------
 * Shared fixed-point helpers (gemmlowp / TFLite semantics, double rounding).
 * ------------------------------------------------------------------------- */

/* (a * b * 2) >> 32 rounded to nearest (ties away from zero); saturates
 * INT32_MIN * INT32_MIN to INT32_MAX. Same as ARM VQRDMULH. */
int32_t sd_saturating_rounding_doubling_high_mul(int32_t a, int32_t b);

/* x / 2^exponent rounded to nearest, ties away from zero. exponent [0, 31]. */
int32_t sd_rounding_divide_by_pot(int32_t x, int32_t exponent);

/* x * multiplier * 2^(shift - 31) with TFLite's double rounding.
 * multiplier [0, 2^31 - 1], shift [-31, 30]. */
int32_t sd_multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int32_t shift);

/* exp(x) for x <= 0, x in Q(integer_bits).(31 - integer_bits), result Q0.31.
 * integer_bits [0, 30]. gemmlowp::exp_on_negative_values. */
int32_t sd_exp_on_negative_values(int32_t x, int32_t integer_bits);

/* 1 / (1 + x) for x in [0, 1), x and result Q0.31.
 * gemmlowp::one_over_one_plus_x_for_x_in_0_1. */
int32_t sd_one_over_one_plus_x_for_x_in_0_1(int32_t x);

/* logistic(x), x Q(integer_bits), result Q0.31. gemmlowp::logistic. */
int32_t sd_fixed_logistic(int32_t x, int32_t integer_bits);

/* tanh(x), x Q(integer_bits), result Q0.31. gemmlowp::tanh. */
int32_t sd_fixed_tanh(int32_t x, int32_t integer_bits);

/* ---------------------------------------------------------------------------
 * FULLY_CONNECTED
 * ------------------------------------------------------------------------- */

typedef struct {
    int32_t batches;      /* rows of the input, >= 1 */
    int32_t accum_depth;  /* input features per row, >= 1 */
    int32_t output_depth; /* output features per row, >= 1 */
} sd_fc_dims_t;

/* sd_fc_params_t.per_channel: per channel, every multiplier >= 2^30 and every shift in [-23, -1] */
#define SD_FC_PER_CHANNEL_NORMALIZED 2

typedef struct {
    int32_t input_offset;   /* -(input zero point), range [-127, 128]; folded
                               into the effective bias by the generator */
    int32_t output_offset;  /* output zero point, range [-128, 127] */
    int32_t activation_min; /* fused activation clamp, [-128, activation_max] */
    int32_t activation_max; /* [activation_min, 127] */
    int32_t per_channel;    /* 0: multiplier[0]/shift[0] for every output;
                               1: one entry per output feature;
                               SD_FC_PER_CHANNEL_NORMALIZED (2): the same, and
                               every entry has multiplier >= 2^30 and shift in
                               [-23, -1] (the DSP path then requantizes in its
                               inner routine; convert/codegen_lower.py checks
                               and says so). Any other value is taken as 1. */
    const int32_t *multiplier; /* [1] or [output_depth] */
    const int8_t *shift;       /* [1] or [output_depth], range [-31, 30] */
    int32_t bias_small;        /* for the int32-bias functions: 1 when every
                                  |bias[o]| + accum_depth 2^14 < 2^23
                                  (SD_FC_BIAS_SMALL_LIMIT; the accumulators
                                  then stay below 2^23, and the DSP path
                                  starts its inner routine from the int32
                                  bias as from an int16 one; convert/
                                  codegen_lower.py checks and says so);
                                  0: not known. Outputs are the same. */
} sd_fc_params_t;

/* sd_fc_params_t.bias_small's bound: |bias| + accum_depth 2^14 < 2^23 */
#define SD_FC_BIAS_SMALL_LIMIT (1L << 23)

/*
 * output[b][o] = clamp(output_offset + MBQM(bias[o] + sum_d weights[o][d] *
 *                      (input[b][d] + input_offset)))
 * with the weights symmetric (zero point 0) and given PACKED, and the bias
 * given EFFECTIVE: bias[o] + input_offset * sum_d weights[o][d] (wrapped to
 * int32; the same int32 accumulator), or NULL when that is all zero.
 * params->input_offset is not read (it is folded into the bias).
 *
 * Packed weights (convert/codegen.py pack_fc_weights, layout version
 * SD_FC_WEIGHT_LAYOUT; the generated graph states the version it was packed
 * for as SD_MODEL_FC_WEIGHT_LAYOUT): rows in pairs
 * (r, r') = (2p, 2p + 1), columns in groups of four (4g .. 4g + 3). One
 * 16-bit lane per (row pair, column c) holds
 *   low byte:  w[r][c] + 128 (unsigned)    high byte: w[r'][c] (two's complement)
 * Per (p, g) two uint32_t words (low lane = bits 0..15):
 *   A = lanes of columns 4g, 4g + 2        B = lanes of columns 4g + 1, 4g + 3
 * Row pairs go in groups of two (pairs 2q, 2q + 1): per column group the
 * words A(2q), B(2q), A(2q + 1), B(2q + 1); an odd last pair stands alone:
 * A, B per group. An odd output_depth is padded with a zero row, an
 * accum_depth that is not a multiple of 4 with zero columns. Total
 * (output_depth + 1) / 2 * (accum_depth + 3) / 4 * 2 words, word aligned.
 * input and output must not overlap.
 *
 * sd_fully_connected_s8 is sd_fully_connected_s8_dsp on cores with the DSP
 * extension (__ARM_FEATURE_DSP: SMLAD, UXTB16, SXTB16), else
 * sd_fully_connected_s8_c; both give the same outputs for every input (the
 * plain-C one is there on every target, for tests and cores without DSP).
 */
#define SD_FC_WEIGHT_LAYOUT 2

sd_status_t sd_fully_connected_s8_c(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                    const int8_t *input, const uint32_t *weights,
                                    const int32_t *bias, int8_t *output);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
sd_status_t sd_fully_connected_s8_dsp(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                      const int8_t *input, const uint32_t *weights,
                                      const int32_t *bias, int8_t *output);
#endif
sd_status_t sd_fully_connected_s8(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                  const int8_t *input, const uint32_t *weights,
                                  const int32_t *bias, int8_t *output);

/* The same with the effective bias stored as int16 (every value in
 * [-32768, 32767]; the generator picks it when a bias fits: half the flash).
 * Identical outputs to the int32 functions given the same bias values. The
 * DSP path's fast case needs the bias 4-byte aligned (the generator aligns
 * it to 8); an unaligned bias still works, on the general path. */
sd_status_t sd_fully_connected_s8_b16_c(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                        const int8_t *input, const uint32_t *weights,
                                        const int16_t *bias, int8_t *output);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
sd_status_t sd_fully_connected_s8_b16_dsp(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                          const int8_t *input, const uint32_t *weights,
                                          const int16_t *bias, int8_t *output);
#endif
sd_status_t sd_fully_connected_s8_b16(const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                      const int8_t *input, const uint32_t *weights,
                                      const int16_t *bias, int8_t *output);

/* n (1 .. SD_FC_SHARED_MAX) FULLY_CONNECTED ops on the same input and the
 * same dims (the gate ops of an LSTM step that read x_t, or h_{t-1}): op k
 * has params[k], packed weights[k], int16 effective bias[k] (or NULL) and
 * writes output[k]. The same outputs as the n calls
 * sd_fully_connected_s8_b16(&params[k], dims, input, weights[k], bias[k],
 * output[k]); on DSP cores the input row is sign-extended once for all of
 * them, and the per-call set-up is paid once. No output may overlap the
 * input or another output. */
#define SD_FC_SHARED_MAX 4
sd_status_t sd_fully_connected_s8_b16_shared_c(int32_t n, const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                               const int8_t *input, const uint32_t *const *weights,
                                               const int16_t *const *bias, int8_t *const *output);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
sd_status_t sd_fully_connected_s8_b16_shared_dsp(int32_t n, const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                                 const int8_t *input, const uint32_t *const *weights,
                                                 const int16_t *const *bias, int8_t *const *output);
#endif
sd_status_t sd_fully_connected_s8_b16_shared(int32_t n, const sd_fc_params_t *params, const sd_fc_dims_t *dims,
                                             const int8_t *input, const uint32_t *const *weights,
                                             const int16_t *const *bias, int8_t *const *output);

/* ---------------------------------------------------------------------------
 * Elementwise binary ops: ADD, MUL
 * ------------------------------------------------------------------------- */

/* Broadcast description for a binary op on up to 4 dimensions (outermost
 * first). Pass NULL for the common case of two inputs of the same size. */
typedef struct {
    int32_t dims[4];     /* output extents, each >= 1 */
    int32_t strides1[4]; /* element stride of input 1 per output dim; 0 = broadcast */
    int32_t strides2[4]; /* same for input 2 */
} sd_broadcast_t;

typedef struct {
    int32_t input1_offset;     /* -(zero point), [-127, 128] */
    int32_t input2_offset;     /* -(zero point), [-127, 128] */
    int32_t left_shift;        /* 20 for int8 */
    int32_t input1_multiplier; /* with input1_shift: scale1 / (2 max(scale1, scale2)) */
    int32_t input1_shift;      /* <= 0 */
    int32_t input2_multiplier;
    int32_t input2_shift;      /* <= 0 */
    int32_t output_multiplier; /* 2 max(scale1, scale2) / (2^left_shift out_scale) */
    int32_t output_shift;      /* <= 0 */
    int32_t output_offset;     /* output zero point, [-128, 127] */
    int32_t activation_min;
    int32_t activation_max;
} sd_add_params_t;

/* size: element count when bcast is NULL (ignored otherwise). */
sd_status_t sd_add_s8(const sd_add_params_t *params, const sd_broadcast_t *bcast,
                      const int8_t *input1, const int8_t *input2, int8_t *output,
                      int32_t size);

typedef struct {
    int32_t input1_offset;     /* -(zero point), [-127, 128] */
    int32_t input2_offset;     /* -(zero point), [-127, 128] */
    int32_t output_offset;     /* output zero point, [-128, 127] */
    int32_t output_multiplier; /* scale1 * scale2 / out_scale */
    int32_t output_shift;
    int32_t activation_min;
    int32_t activation_max;
} sd_mul_params_t;

sd_status_t sd_mul_s8(const sd_mul_params_t *params, const sd_broadcast_t *bcast,
                      const int8_t *input1, const int8_t *input2, int8_t *output,
                      int32_t size);

/* ---------------------------------------------------------------------------
 * Unary activations: LOGISTIC (output scale 1/256, zero point -128) and TANH
 * (output scale 1/128, zero point 0), computed in gemmlowp fixed point.
 * ------------------------------------------------------------------------- */

typedef struct {
    int32_t input_zero_point;   /* [-128, 127] */
    int32_t input_range_radius; /* |input - zp| at or beyond it saturates, >= 0 */
    int32_t input_multiplier;   /* input scale * 2^27 as multiplier/shift */
    int32_t input_left_shift;   /* frexp exponent, may be negative */
} sd_activation_params_t;

sd_status_t sd_logistic_s8(const sd_activation_params_t *params, const int8_t *input,
                           int8_t *output, int32_t size);
sd_status_t sd_tanh_s8(const sd_activation_params_t *params, const int8_t *input,
                       int8_t *output, int32_t size);

/* output[i] = table[(uint8_t)input[i]]: any int8 -> int8 unary op as a
 * 256-entry table indexed by the input's two's-complement byte. The
 * generator fills tables with the exact results of sd_logistic_s8/sd_tanh_s8. */
sd_status_t sd_lut_s8(const int8_t *table, const int8_t *input, int8_t *output, int32_t size);

/* ---------------------------------------------------------------------------
 * SOFTMAX, int8 in, int8 out (output scale 1/256, zero point -128)
 * ------------------------------------------------------------------------- */

typedef struct {
    int32_t input_multiplier; /* beta * input scale * 2^26, as multiplier/shift */
    int32_t input_left_shift; /* >= 0 */
    int32_t diff_min;         /* inputs below row max + diff_min give -128, <= 0 */
} sd_softmax_params_t;

/* rows x depth, softmax over the last (contiguous) dimension. */
sd_status_t sd_softmax_s8(const sd_softmax_params_t *params, const int8_t *input,
                          int8_t *output, int32_t rows, int32_t depth);

/* ---------------------------------------------------------------------------
 * QUANTIZE int8 -> int8 (requantize to another scale / zero point)
 * ------------------------------------------------------------------------- */

typedef struct {
    int32_t input_zero_point;  /* [-128, 127] */
    int32_t output_zero_point; /* [-128, 127] */
    int32_t multiplier;        /* input scale / output scale */
    int32_t shift;
} sd_requantize_params_t;

sd_status_t sd_quantize_s8(const sd_requantize_params_t *params, const int8_t *input,
                           int8_t *output, int32_t size);

/* ---------------------------------------------------------------------------
 * Data movement (no arithmetic: quantization parameters pass through)
 * ------------------------------------------------------------------------- */

/* RESHAPE: a byte copy (nothing when input == output). */
sd_status_t sd_reshape_s8(const int8_t *input, int8_t *output, int32_t size);

/* SPLIT / SPLIT_V along one axis. The input is viewed as
 * [outer_size][sum of sizes[k]][inner_size]; output k is
 * [outer_size][sizes[k]][inner_size]. SPLIT is SPLIT_V with equal sizes. */
typedef struct {
    int32_t outer_size;    /* product of the dimensions before the axis, >= 1 */
    int32_t inner_size;    /* product of the dimensions after the axis, >= 1 */
    int32_t num_outputs;   /* >= 1 */
    const int32_t *sizes;  /* [num_outputs] extents along the axis, or NULL for
                              SPLIT: every output gets axis_size */
    int32_t axis_size;     /* per-output extent when sizes is NULL */
} sd_split_params_t;

sd_status_t sd_split_s8(const sd_split_params_t *params, const int8_t *input,
                        int8_t *const *outputs);
sd_status_t sd_split_v_s8(const sd_split_params_t *params, const int8_t *input,
                          int8_t *const *outputs);

/* UNPACK along one axis: input [outer_size][num][inner_size], output k is
 * [outer_size][inner_size]. */
typedef struct {
    int32_t outer_size;
    int32_t num;
    int32_t inner_size;
} sd_unpack_params_t;

sd_status_t sd_unpack_s8(const sd_unpack_params_t *params, const int8_t *input,
                         int8_t *const *outputs);

/* CONCATENATION along one axis: input k is [outer_size][sizes[k]][inner_size]. */
typedef struct {
    int32_t outer_size;
    int32_t inner_size;
    int32_t num_inputs;
    const int32_t *sizes; /* [num_inputs] extents along the axis */
} sd_concatenation_params_t;

sd_status_t sd_concatenation_s8(const sd_concatenation_params_t *params,
                                const int8_t *const *inputs, int8_t *output);

/* STRIDED_SLICE on up to 4 dimensions (outermost first; pad shapes with
 * leading 1s). Begin, stride and output extent per dimension are resolved
 * ahead of time (masks, negative indices, shrink axes). */
typedef struct {
    int32_t input_dims[4];  /* >= 1 */
    int32_t begin[4];       /* first index, in [0, input_dims[d]) */
    int32_t stride[4];      /* != 0 */
    int32_t output_dims[4]; /* >= 1 */
} sd_strided_slice_params_t;

sd_status_t sd_strided_slice_s8(const sd_strided_slice_params_t *params, const int8_t *input,
                                int8_t *output);

#ifdef __cplusplus
}
#endif

#endif /* SD_KERNELS_H */
