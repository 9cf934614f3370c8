/*
 * sd_model.c - the executor: walks the generated op table in order, calls
 * one kernel per op and measures the cost of the two stages (recurrent cell
 * vs. head) with the port's cost counter. All kernel math lives in
 * src/kernels/; all parameters were computed ahead of time by
 * convert/codegen.py.
 */
#include <string.h>

#include "sd_graph.h"
#include "sd_kernels.h"
#include "sd_model.h"
#include "sd_port.h"

static sd_status_t run_op(const sd_op_t *op)
{
    switch ((sd_op_type_t)op->type) {
    case SD_OP_FULLY_CONNECTED: {
        const sd_fc_node_t *n = (const sd_fc_node_t *)op->node;
        return sd_fully_connected_s8(&n->params, &n->dims, n->input, n->weights, n->bias,
                                     n->row_sums, n->output);
    }
    case SD_OP_ADD: {
        const sd_add_node_t *n = (const sd_add_node_t *)op->node;
        return sd_add_s8(&n->params, n->bcast, n->input1, n->input2, n->output, n->size);
    }
    case SD_OP_MUL: {
        const sd_mul_node_t *n = (const sd_mul_node_t *)op->node;
        return sd_mul_s8(&n->params, n->bcast, n->input1, n->input2, n->output, n->size);
    }
    case SD_OP_LOGISTIC: {
        const sd_activation_node_t *n = (const sd_activation_node_t *)op->node;
        return sd_logistic_s8(&n->params, n->input, n->output, n->size);
    }
    case SD_OP_TANH: {
        const sd_activation_node_t *n = (const sd_activation_node_t *)op->node;
        return sd_tanh_s8(&n->params, n->input, n->output, n->size);
    }
    case SD_OP_LUT: {
        const sd_lut_node_t *n = (const sd_lut_node_t *)op->node;
        return sd_lut_s8(n->table, n->input, n->output, n->size);
    }
    case SD_OP_SOFTMAX: {
        const sd_softmax_node_t *n = (const sd_softmax_node_t *)op->node;
        return sd_softmax_s8(&n->params, n->input, n->output, n->rows, n->depth);
    }
    case SD_OP_QUANTIZE: {
        const sd_quantize_node_t *n = (const sd_quantize_node_t *)op->node;
        return sd_quantize_s8(&n->params, n->input, n->output, n->size);
    }
    case SD_OP_RESHAPE: {
        const sd_reshape_node_t *n = (const sd_reshape_node_t *)op->node;
        return sd_reshape_s8(n->input, n->output, n->size);
    }
    case SD_OP_SPLIT: {
        const sd_split_node_t *n = (const sd_split_node_t *)op->node;
        return sd_split_s8(&n->params, n->input, n->outputs);
    }
    case SD_OP_SPLIT_V: {
        const sd_split_node_t *n = (const sd_split_node_t *)op->node;
        return sd_split_v_s8(&n->params, n->input, n->outputs);
    }
    case SD_OP_UNPACK: {
        const sd_unpack_node_t *n = (const sd_unpack_node_t *)op->node;
        return sd_unpack_s8(&n->params, n->input, n->outputs);
    }
    case SD_OP_CONCATENATION: {
        const sd_concatenation_node_t *n = (const sd_concatenation_node_t *)op->node;
        return sd_concatenation_s8(&n->params, n->inputs, n->output);
    }
    case SD_OP_STRIDED_SLICE: {
        const sd_strided_slice_node_t *n = (const sd_strided_slice_node_t *)op->node;
        return sd_strided_slice_s8(&n->params, n->input, n->output);
    }
    default:
        return SD_STATUS_ERROR_ARGUMENT;
    }
}

sd_model_status_t sd_model_invoke(const int8_t *input, int8_t *output, sd_model_cost_t *cost)
{
    const sd_graph_t *g = &sd_model_graph;
    if (input == 0 || output == 0) {
        return SD_MODEL_ERROR_ARGUMENT;
    }
    const uint64_t t_start = cost != 0 ? sd_port_cost_now() : 0u;
    uint64_t t_head = 0u;
    int head_started = 0;

    memcpy(g->input, input, (size_t)g->input_size);
    for (int32_t i = 0; i < g->num_ops; ++i) {
        const sd_op_t *op = &g->ops[i];
        if (cost != 0 && !head_started && op->stage == SD_STAGE_HEAD) {
            t_head = sd_port_cost_now();
            head_started = 1;
        }
        if (run_op(op) != SD_STATUS_OK) {
            /* Only reachable with an inconsistent generated graph. */
            return SD_MODEL_ERROR_ARGUMENT;
        }
    }
    memcpy(output, g->output, (size_t)g->output_size);

    if (cost != 0) {
        const uint64_t t_end = sd_port_cost_now();
        if (!head_started) {
            t_head = t_end;
        }
        cost->lstm = t_head - t_start;
        cost->head = t_end - t_head;
    }
    return SD_MODEL_OK;
}
