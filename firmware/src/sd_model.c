/*
 * sd_model.c - the executor: walks the generated op table in order (one byte
 * per op; the nodes of each kind are stored in op order, so it counts its way
 * through each node array), calls one kernel per op (one per group of
 * FULLY_CONNECTED ops on a shared input) and measures the cost of the two stages (recurrent cell
 * vs. head) with the port's cost counter. All kernel math lives in
 * src/kernels/; all parameters were computed ahead of time by
 * convert/codegen.py.
 */
#include <string.h>

#include "sd_graph.h"
#include "sd_kernels.h"
#include "sd_model.h"
#include "sd_model_graph.h"
#include "sd_port.h"

/* Generated weights must be packed the way the kernel reads them. */
#if SD_GRAPH_USES_FULLY_CONNECTED && \
    (!defined(SD_MODEL_FC_WEIGHT_LAYOUT) || SD_MODEL_FC_WEIGHT_LAYOUT != SD_FC_WEIGHT_LAYOUT)
#error "firmware/generated/ holds FULLY_CONNECTED weights in another layout than the kernels read: regenerate it (python -m convert.codegen MODEL.tflite --out-dir firmware/generated, or python -m convert.quantize)"
#endif

/* Graphs generated before these existed may use either. */
#ifndef SD_GRAPH_USES_FC_PER_CHANNEL
#define SD_GRAPH_USES_FC_PER_CHANNEL 1
#endif
#ifndef SD_GRAPH_USES_FC_BIAS32
#define SD_GRAPH_USES_FC_BIAS32 1
#endif

static const int8_t *in_buf(const sd_graph_t *g, sd_ref_t r)
{
    return (r & SD_REF_CONST) ? g->consts[r & ~SD_REF_CONST] : g->arena + r;
}

static int8_t *out_buf(const sd_graph_t *g, sd_ref_t r)
{
    return g->arena + r; /* the generator never writes a constant */
}

static const sd_broadcast_t *bcast_of(const sd_graph_t *g, uint8_t index)
{
    return index == SD_INDEX_NONE ? 0 : &g->bcasts[index];
}

/* The kernel parameters of FULLY_CONNECTED node n; returns its shared entry. */
static const sd_fc_param_t *fc_params_of(const sd_graph_t *g, const sd_fc_node_t *n, sd_fc_params_t *p)
{
    const sd_fc_param_t *q = &g->fc_params[n->param];
    p->input_offset = 0; /* folded into the effective bias */
    p->bias_small = 0;
    p->output_offset = q->output_offset;
    p->activation_min = q->activation_min;
    p->activation_max = q->activation_max;
    p->per_channel = SD_GRAPH_USES_FC_PER_CHANNEL ? q->per_channel : 0; /* 0, 1 or SD_FC_PER_CHANNEL_NORMALIZED */
    if (SD_GRAPH_USES_FC_PER_CHANNEL && q->per_channel) {
        p->multiplier = g->fc_channels[q->multiplier].multiplier;
        p->shift = g->fc_channels[q->multiplier].shift;
    } else {
        p->multiplier = &q->multiplier;
        p->shift = &q->shift;
    }
    return q;
}

/* One FULLY_CONNECTED node, or (n->shared != 0) the 1 + n->shared nodes from
 * n on that read the same input (the generator groups only nodes with the
 * same dims and an int16 bias or none), in one call. */
static sd_status_t run_fc(const sd_graph_t *g, const sd_fc_node_t *n)
{
    sd_fc_params_t p[SD_FC_SHARED_MAX];
    const uint32_t *w[SD_FC_SHARED_MAX];
    const int16_t *b[SD_FC_SHARED_MAX];
    int8_t *y[SD_FC_SHARED_MAX];
    const unsigned count = 1u + n->shared;
    if (count > SD_FC_SHARED_MAX) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    const sd_fc_param_t *q = 0;
    for (unsigned k = 0; k < count; ++k) {
        q = fc_params_of(g, &n[k], &p[k]);
        w[k] = g->fc_matrices[q->matrix].weights;
        b[k] = q->bias == SD_INDEX_NONE || q->bias_kind != SD_FC_BIAS_INT16 ? 0 : g->fc_biases16[q->bias];
        y[k] = out_buf(g, n[k].output);
    }
    const sd_fc_matrix_t *m = &g->fc_matrices[q->matrix];
    sd_fc_dims_t d;
    d.batches = q->batches;
    d.accum_depth = m->accum_depth;
    d.output_depth = m->output_depth;
    if (SD_GRAPH_USES_FC_BIAS32 && q->bias != SD_INDEX_NONE && q->bias_kind != SD_FC_BIAS_INT16) {
        /* an int32 bias: never grouped */
        p[0].bias_small = q->bias_kind == SD_FC_BIAS_INT32_SMALL;
        return sd_fully_connected_s8(&p[0], &d, in_buf(g, n->input), w[0], g->fc_biases[q->bias], y[0]);
    }
    return sd_fully_connected_s8_b16_shared((int32_t)count, p, &d, in_buf(g, n->input), w, b, y);
}

static sd_status_t run_add(const sd_graph_t *g, const sd_add_node_t *n)
{
    const sd_add_param_t *q = &g->add_params[n->param];
    return sd_add_s8(&q->kernel, bcast_of(g, q->bcast), in_buf(g, n->input1), in_buf(g, n->input2),
                     out_buf(g, n->output), q->size);
}

static sd_status_t run_mul(const sd_graph_t *g, const sd_mul_node_t *n)
{
    const sd_mul_param_t *q = &g->mul_params[n->param];
    return sd_mul_s8(&q->kernel, bcast_of(g, q->bcast), in_buf(g, n->input1), in_buf(g, n->input2),
                     out_buf(g, n->output), q->size);
}

static sd_status_t run_strided_slice(const sd_graph_t *g, const sd_strided_slice_node_t *n)
{
    sd_strided_slice_params_t p;
    for (int d = 0; d < 4; ++d) {
        p.input_dims[d] = n->input_dims[d];
        p.begin[d] = n->begin[d];
        p.stride[d] = n->stride[d];
        p.output_dims[d] = n->output_dims[d];
    }
    return sd_strided_slice_s8(&p, in_buf(g, n->input), out_buf(g, n->output));
}

/* Runs node i of the given type. SD_GRAPH_USES_<KIND> (sd_model_graph.h) is
 * 0 for the op kinds the generated graph does not use: their calls are then
 * dead code, and the linker leaves those kernels out. */
#define SD_RUN_IF(kind, call) (SD_GRAPH_USES_##kind ? (call) : SD_STATUS_ERROR_ARGUMENT)

static sd_status_t run_op(const sd_graph_t *g, unsigned type, uint16_t i)
{
    switch ((sd_op_type_t)type) {
    case SD_OP_FULLY_CONNECTED:
        return SD_RUN_IF(FULLY_CONNECTED, run_fc(g, &g->fc[i]));
    case SD_OP_ADD:
        return SD_RUN_IF(ADD, run_add(g, &g->add[i]));
    case SD_OP_MUL:
        return SD_RUN_IF(MUL, run_mul(g, &g->mul[i]));
    case SD_OP_LOGISTIC:
        return SD_RUN_IF(LOGISTIC, sd_logistic_s8(&g->activation[i].params, g->activation[i].input,
                                                  g->activation[i].output, g->activation[i].size));
    case SD_OP_TANH:
        return SD_RUN_IF(TANH, sd_tanh_s8(&g->activation[i].params, g->activation[i].input,
                                          g->activation[i].output, g->activation[i].size));
    case SD_OP_LUT:
        return SD_RUN_IF(LUT, sd_lut_s8(g->luts[g->lut[i].table], in_buf(g, g->lut[i].input),
                                        out_buf(g, g->lut[i].output), g->lut[i].size));
    case SD_OP_SOFTMAX:
        return SD_RUN_IF(SOFTMAX, sd_softmax_s8(&g->softmax[i].params, g->softmax[i].input,
                                                g->softmax[i].output, g->softmax[i].rows, g->softmax[i].depth));
    case SD_OP_QUANTIZE:
        return SD_RUN_IF(QUANTIZE, sd_quantize_s8(&g->quantize[i].params, g->quantize[i].input,
                                                  g->quantize[i].output, g->quantize[i].size));
    case SD_OP_RESHAPE:
        return SD_RUN_IF(RESHAPE, sd_reshape_s8(g->reshape[i].input, g->reshape[i].output, g->reshape[i].size));
    case SD_OP_SPLIT:
        return SD_RUN_IF(SPLIT, sd_split_s8(&g->split[i].params, g->split[i].input, g->split[i].outputs));
    case SD_OP_SPLIT_V:
        return SD_RUN_IF(SPLIT_V, sd_split_v_s8(&g->split[i].params, g->split[i].input, g->split[i].outputs));
    case SD_OP_UNPACK:
        return SD_RUN_IF(UNPACK, sd_unpack_s8(&g->unpack[i].params, g->unpack[i].input, g->unpack[i].outputs));
    case SD_OP_CONCATENATION:
        return SD_RUN_IF(CONCATENATION, sd_concatenation_s8(&g->concatenation[i].params, g->concatenation[i].inputs,
                                                            g->concatenation[i].output));
    case SD_OP_STRIDED_SLICE:
        return SD_RUN_IF(STRIDED_SLICE, run_strided_slice(g, &g->strided_slice[i]));
    case SD_OP_COPY:
        if (!SD_GRAPH_USES_COPY) {
            return SD_STATUS_ERROR_ARGUMENT;
        }
        memcpy(out_buf(g, g->copy[i].output), in_buf(g, g->copy[i].input), g->copy[i].size);
        return SD_STATUS_OK;
    default:
        return SD_STATUS_ERROR_ARGUMENT;
    }
}

static sd_model_profile_t *s_profile;

void sd_model_set_profile(sd_model_profile_t *profile)
{
    s_profile = profile;
}

const char *sd_model_op_name(int kind)
{
    static const char *const names[] = {
        "FULLY_CONNECTED", "ADD", "MUL", "LOGISTIC", "TANH", "LUT", "SOFTMAX",
        "QUANTIZE", "RESHAPE", "SPLIT", "SPLIT_V", "UNPACK", "CONCATENATION",
        "STRIDED_SLICE", "COPY",
    };
    return kind >= 0 && kind < (int)(sizeof names / sizeof names[0]) ? names[kind] : 0;
}

/* n: the ops (graph nodes) the entry runs, more than 1 for shared FULLY_CONNECTED */
static sd_status_t run_op_profiled(const sd_graph_t *g, unsigned type, uint16_t i, unsigned n,
                                   sd_model_profile_t *prof)
{
    const uint64_t t0 = sd_port_cost_now();
    const sd_status_t st = run_op(g, type, i);
    const unsigned kind = type < SD_MODEL_PROFILE_KINDS ? type : SD_MODEL_PROFILE_KINDS - 1u;
    prof->cost[kind] += sd_port_cost_now() - t0;
    prof->count[kind] += n;
    return st;
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
    uint16_t next[SD_OP_KINDS] = {0}; /* nodes of each array run so far */

    memcpy(g->input, input, (size_t)g->input_size);
    for (int32_t i = 0; i < g->num_ops; ++i) {
        const unsigned op = g->ops[i];
        const unsigned type = op & SD_OP_TYPE_MASK;
        if (type >= (unsigned)SD_OP_KINDS) {
            return SD_MODEL_ERROR_ARGUMENT;
        }
        if (cost != 0 && !head_started && (op & SD_OP_HEAD) != 0u) {
            t_head = sd_port_cost_now();
            head_started = 1;
        }
        /* LOGISTIC and TANH share one node array, so do SPLIT and SPLIT_V */
        const unsigned slot = type == (unsigned)SD_OP_TANH ? (unsigned)SD_OP_LOGISTIC
                              : type == (unsigned)SD_OP_SPLIT_V ? (unsigned)SD_OP_SPLIT : type;
        const uint16_t k = next[slot];
        /* a shared FULLY_CONNECTED entry runs 1 + shared nodes */
        const unsigned n = SD_GRAPH_USES_FULLY_CONNECTED && type == (unsigned)SD_OP_FULLY_CONNECTED
                               ? 1u + g->fc[k].shared : 1u;
        next[slot] = (uint16_t)(k + n);
        sd_model_profile_t *const prof = s_profile;
        if ((prof != 0 ? run_op_profiled(g, type, k, n, prof) : run_op(g, type, k)) != SD_STATUS_OK) {
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
