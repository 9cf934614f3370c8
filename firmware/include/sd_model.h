/*
 * sd_model.h - int8 inference of the generated model.
 *
 * The graph, its constants and its memory plan are generated ahead of time by
 * `python -m convert.quantize` into firmware/generated/sd_model_graph.{c,h};
 * nothing is parsed or allocated at run time.
 */
#ifndef SD_MODEL_H
#define SD_MODEL_H

#include <stdint.h>

#include "sd_model_graph.h" /* generated: SD_MODEL_INPUT_SIZE, SD_MODEL_OUTPUT_SIZE,
                               SD_MODEL_INPUT_SCALE, SD_MODEL_INPUT_ZERO_POINT,
                               SD_MODEL_OUTPUT_SCALE, SD_MODEL_OUTPUT_ZERO_POINT,
                               SD_MODEL_SHA256, SD_MODEL_ARENA_BYTES */

#ifdef __cplusplus
extern "C" {
#endif

/* Cost of one invocation, split by stage, in sd_port_cost_unit() units. */
typedef struct {
    uint64_t lstm; /* every op up to and including the last recurrent step */
    uint64_t head; /* the dense layers and softmax after the last step */
} sd_model_cost_t;

typedef enum {
    SD_MODEL_OK = 0,
    SD_MODEL_ERROR_ARGUMENT = -1,
} sd_model_status_t;

/* Runs the model on one int8 input tensor (time-major, 16 x 80) and writes the
 * int8 output tensor (10 scores). `cost` may be NULL. Not re-entrant: the
 * activations live in one static arena. */
sd_model_status_t sd_model_invoke(const int8_t *input, int8_t *output, sd_model_cost_t *cost);

/* Optional per-op-kind cost accounting, for benchmarks: while a profile is
 * set, every invocation adds each op's cost (sd_port_cost_unit() units,
 * including one counter read) and count to the slot of its kind (sd_graph.h's
 * sd_op_type_t). Off by default; costs one test per op when off. */
#define SD_MODEL_PROFILE_KINDS 16
typedef struct {
    uint64_t cost[SD_MODEL_PROFILE_KINDS];
    uint32_t count[SD_MODEL_PROFILE_KINDS];
} sd_model_profile_t;

/* Start adding to `profile` (not cleared here), or stop with NULL. */
void sd_model_set_profile(sd_model_profile_t *profile);

/* Name of an op kind for reports ("FULLY_CONNECTED", ...), or NULL. */
const char *sd_model_op_name(int kind);

#ifdef __cplusplus
}
#endif

#endif /* SD_MODEL_H */
