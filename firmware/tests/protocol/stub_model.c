/*
 * stub_model.c - TEST STUB of sd_model.h (tests/test_protocol.py has the same
 * formula):
 *   output[k] = (int8_t)(uint8_t)(sum of (uint8_t)input[j] for j % K == k), K = SD_MODEL_OUTPUT_SIZE (12)
 *   cost.lstm = 1000 + (uint8_t)input[0], cost.head = 7
 * Fails with SD_MODEL_ERROR_ARGUMENT when input[0..3] are all 0x7F, so the
 * MODEL error path can be tested.
 */
#include "sd_model.h"

#include <stddef.h>

sd_model_status_t sd_model_invoke(const int8_t *input, int8_t *output, sd_model_cost_t *cost)
{
    if (input[0] == 0x7F && input[1] == 0x7F && input[2] == 0x7F && input[3] == 0x7F) {
        return SD_MODEL_ERROR_ARGUMENT;
    }
    for (size_t k = 0; k < SD_MODEL_OUTPUT_SIZE; k++) {
        uint32_t sum = 0;
        for (size_t j = k; j < SD_MODEL_INPUT_SIZE; j += SD_MODEL_OUTPUT_SIZE) {
            sum += (uint8_t)input[j];
        }
        output[k] = (int8_t)(uint8_t)sum;
    }
    if (cost != NULL) {
        cost->lstm = 1000u + (uint8_t)input[0];
        cost->head = 7u;
    }
    return SD_MODEL_OK;
}
