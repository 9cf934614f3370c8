/*
 * sd_graph.h - the shape of the generated graph: one node struct per op kind
 * and the op table that src/sd_model.c walks. convert/codegen.py emits
 * firmware/generated/sd_model_graph.c as constant arrays of these types
 * (compact nodes: arena offsets and indices into tables of shared kernel
 * parameters and constants); nothing here is computed at run time.
 */
#ifndef SD_GRAPH_H
#define SD_GRAPH_H

#include <stdint.h>

#include "sd_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SD_OP_FULLY_CONNECTED = 0,
    SD_OP_ADD = 1,
    SD_OP_MUL = 2,
    SD_OP_LOGISTIC = 3,
    SD_OP_TANH = 4,
    SD_OP_LUT = 5, /* LOGISTIC or TANH as a generated 256-entry table */
    SD_OP_SOFTMAX = 6,
    SD_OP_QUANTIZE = 7,
    SD_OP_RESHAPE = 8,
    SD_OP_SPLIT = 9,
    SD_OP_SPLIT_V = 10,
    SD_OP_UNPACK = 11,
    SD_OP_CONCATENATION = 12,
    SD_OP_STRIDED_SLICE = 13,
    SD_OP_COPY = 14, /* a STRIDED_SLICE that selects one contiguous block */
    SD_OP_KINDS = 15
} sd_op_type_t;

/* Cost accounting stage of an op (see sd_model_cost_t). */
typedef enum {
    SD_STAGE_LSTM = 0,
    SD_STAGE_HEAD = 1,
} sd_stage_t;

/* One byte per op: its sd_op_type_t, plus SD_OP_HEAD when it belongs to the
 * head stage. The nodes of each type are stored in op order, so the k-th op
 * of a type runs the k-th node of that type's array. */
typedef uint8_t sd_op_t;
#define SD_OP_TYPE_MASK 0x7Fu
#define SD_OP_HEAD 0x80u

/* A tensor buffer in a compact node: an offset into the arena, or
 * SD_REF_CONST | index into sd_graph_t.consts for a constant input. */
typedef uint16_t sd_ref_t;
#define SD_REF_CONST 0x8000u
#define SD_INDEX_NONE 255u /* no bias / no broadcast */

/* Compact nodes: the tensors a node reads and writes, and an index into a
 * table of the parameters nodes share (the steps of an unrolled LSTM whose
 * layers share their quantization use one entry per role). The executor
 * builds the kernels' parameter structs from them. */

typedef struct {
    const uint32_t *weights; /* packed, see sd_fully_connected_s8 */
    uint16_t accum_depth;
    uint16_t output_depth;
} sd_fc_matrix_t;

typedef struct {
    const int32_t *multiplier; /* [output_depth] */
    const int8_t *shift;       /* [output_depth] */
} sd_fc_channels_t;

typedef struct {
    int32_t multiplier; /* per tensor; per channel: index into fc_channels */
    uint16_t batches;
    uint8_t matrix;     /* index into fc_matrices */
    uint8_t bias;       /* index into fc_biases (effective bias; fc_biases16 when
                           bias_kind is SD_FC_BIAS_INT16), or SD_INDEX_NONE */
    int8_t shift;       /* per tensor */
    int8_t output_offset;
    int8_t activation_min;
    int8_t activation_max;
    uint8_t per_channel; /* 0, 1 or SD_FC_PER_CHANNEL_NORMALIZED (sd_kernels.h) */
    uint8_t bias_kind;  /* SD_FC_BIAS_INT32, SD_FC_BIAS_INT16 or SD_FC_BIAS_INT32_SMALL */
} sd_fc_param_t;

/* sd_fc_param_t.bias_kind */
#define SD_FC_BIAS_INT32 0       /* fc_biases */
#define SD_FC_BIAS_INT16 1       /* fc_biases16 */
#define SD_FC_BIAS_INT32_SMALL 2 /* fc_biases, within sd_fc_params_t.bias_small's bound (sd_kernels.h) */

/* A FULLY_CONNECTED op, or the first of 1 + shared consecutive nodes (at most
 * SD_FC_SHARED_MAX) that read the same input, have the same dims and an int16
 * bias or none: the generator gives them one op table entry, and the executor
 * runs them in one sd_fully_connected_s8_b16_shared call (the input unpacked
 * once). The other nodes of the group have shared = 0. */
typedef struct {
    sd_ref_t input;
    sd_ref_t output;
    uint8_t param;  /* index into fc_params */
    uint8_t shared; /* nodes after this one that run in the same call */
} sd_fc_node_t;

/* ADD and MUL parameters shared by nodes: the kernel's own struct, passed
 * as is, with the element count and the broadcast. */
typedef struct {
    sd_add_params_t kernel;
    uint16_t size;
    uint8_t bcast; /* index into bcasts, or SD_INDEX_NONE (same shapes) */
} sd_add_param_t;

typedef struct {
    sd_mul_params_t kernel;
    uint16_t size;
    uint8_t bcast; /* index into bcasts, or SD_INDEX_NONE (same shapes) */
} sd_mul_param_t;

/* ADD and MUL: two inputs, one output, parameters by index. */
typedef struct {
    sd_ref_t input1;
    sd_ref_t input2;
    sd_ref_t output;
    uint8_t param; /* index into add_params or mul_params */
} sd_binary_node_t;

/* One array per node type (the generator names arrays after these). */
typedef sd_binary_node_t sd_add_node_t;
typedef sd_binary_node_t sd_mul_node_t;

typedef struct {
    sd_ref_t input;
    sd_ref_t output;
    uint16_t size;
    uint16_t table; /* index into luts */
} sd_lut_node_t;

/* COPY: size bytes from arena offset input (already advanced to the block's
 * start) to output. */
typedef struct {
    sd_ref_t input;
    sd_ref_t output;
    uint16_t size;
} sd_copy_node_t;

typedef struct {
    int16_t input_dims[4];
    int16_t begin[4];
    int16_t stride[4];
    int16_t output_dims[4];
    sd_ref_t input;
    sd_ref_t output;
} sd_strided_slice_node_t;

typedef struct {
    sd_activation_params_t params;
    const int8_t *input;
    int8_t *output;
    int32_t size;
} sd_activation_node_t;

typedef struct {
    sd_softmax_params_t params;
    const int8_t *input;
    int8_t *output;
    int32_t rows;
    int32_t depth;
} sd_softmax_node_t;

typedef struct {
    sd_requantize_params_t params;
    const int8_t *input;
    int8_t *output;
    int32_t size;
} sd_quantize_node_t;

typedef struct {
    const int8_t *input;
    int8_t *output;
    int32_t size;
} sd_reshape_node_t;

typedef struct {
    sd_split_params_t params;
    const int8_t *input;
    int8_t *const *outputs;
} sd_split_node_t;

typedef struct {
    sd_unpack_params_t params;
    const int8_t *input;
    int8_t *const *outputs;
} sd_unpack_node_t;

typedef struct {
    sd_concatenation_params_t params;
    const int8_t *const *inputs;
    int8_t *output;
} sd_concatenation_node_t;

typedef struct {
    const sd_op_t *ops;
    int32_t num_ops;
    int8_t *arena;
    const int8_t *const *consts; /* constant int8 inputs (SD_REF_CONST) */
    int8_t *input;        /* the input tensor's place in the arena */
    const int8_t *output; /* the output tensor's place (arena or constant) */
    int32_t input_size;
    int32_t output_size;
    /* node arrays per struct and the tables they index; 0 when unused */
    const sd_fc_node_t *fc;
    const sd_fc_param_t *fc_params;
    const sd_fc_matrix_t *fc_matrices;
    const int32_t *const *fc_biases;   /* int32 effective biases */
    const int16_t *const *fc_biases16; /* int16 effective biases (every value fits) */
    const sd_fc_channels_t *fc_channels;
    const sd_add_node_t *add;
    const sd_add_param_t *add_params;
    const sd_mul_node_t *mul;
    const sd_mul_param_t *mul_params;
    const sd_broadcast_t *bcasts;
    const sd_lut_node_t *lut;
    const int8_t (*luts)[256];
    const sd_activation_node_t *activation;
    const sd_softmax_node_t *softmax;
    const sd_quantize_node_t *quantize;
    const sd_reshape_node_t *reshape;
    const sd_split_node_t *split;
    const sd_unpack_node_t *unpack;
    const sd_concatenation_node_t *concatenation;
    const sd_strided_slice_node_t *strided_slice;
    const sd_copy_node_t *copy;
} sd_graph_t;

/* Defined in the generated firmware/generated/sd_model_graph.c. */
extern const sd_graph_t sd_model_graph;

#ifdef __cplusplus
}
#endif

#endif /* SD_GRAPH_H */
