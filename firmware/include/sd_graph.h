/*
 * sd_graph.h - the shape of the generated graph: one node struct per op kind
 * and the op table that src/sd_model.c walks. convert/codegen.py emits
 * firmware/generated/sd_model_graph.c as constant instances of these types
 * (kernel parameters, pointers into the static arena and into const weight
 * arrays); nothing here is computed at run time.
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
} sd_op_type_t;

/* Cost accounting stage of an op (see sd_model_cost_t). */
typedef enum {
    SD_STAGE_LSTM = 0,
    SD_STAGE_HEAD = 1,
} sd_stage_t;

typedef struct {
    uint8_t type;     /* sd_op_type_t */
    uint8_t stage;    /* sd_stage_t */
    uint16_t tflite_index; /* operator index in the .tflite subgraph */
    const void *node; /* points to the node struct named by type */
} sd_op_t;

typedef struct {
    sd_fc_params_t params;
    sd_fc_dims_t dims;
    const int8_t *input;
    const int8_t *weights;
    const int32_t *bias;     /* NULL when the op has none */
    const int32_t *row_sums; /* sum of each weight row */
    int8_t *output;
} sd_fc_node_t;

typedef struct {
    sd_add_params_t params;
    const sd_broadcast_t *bcast; /* NULL: same element count */
    const int8_t *input1;
    const int8_t *input2;
    int8_t *output;
    int32_t size;
} sd_add_node_t;

typedef struct {
    sd_mul_params_t params;
    const sd_broadcast_t *bcast;
    const int8_t *input1;
    const int8_t *input2;
    int8_t *output;
    int32_t size;
} sd_mul_node_t;

typedef struct {
    sd_activation_params_t params;
    const int8_t *input;
    int8_t *output;
    int32_t size;
} sd_activation_node_t;

typedef struct {
    const int8_t *table; /* [256] */
    const int8_t *input;
    int8_t *output;
    int32_t size;
} sd_lut_node_t;

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
    sd_strided_slice_params_t params;
    const int8_t *input;
    int8_t *output;
} sd_strided_slice_node_t;

typedef struct {
    const sd_op_t *ops;
    int32_t num_ops;
    int8_t *input;  /* the input tensor's place in the arena */
    int8_t *output; /* the output tensor's place (arena or constant) */
    int32_t input_size;
    int32_t output_size;
} sd_graph_t;

/* Defined in the generated firmware/generated/sd_model_graph.c. */
extern const sd_graph_t sd_model_graph;

#ifdef __cplusplus
}
#endif

#endif /* SD_GRAPH_H */
