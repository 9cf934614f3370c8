/*
 * test_model_target.c - whole-model parity on a Cortex-M (QEMU mps2-an386):
 * runs sd_model_invoke on the inputs of the generated sd_test_vectors.h and
 * compares with the TFLite Micro outputs stored there; prints the cost per
 * stage and exits with the number of mismatching outputs (0 = pass).
 * The vectors are written by tests/test_kernels.py (test_model_on_qemu).
 */
#include <stdio.h>

#include "sd_model.h"
#include "sd_port.h"
#include "sd_test_vectors.h"

int main(void)
{
    static int8_t out[SD_MODEL_OUTPUT_SIZE];
    int bad = 0;
    sd_port_init();
    for (int k = 0; k < SD_TEST_NUM_VECTORS; ++k) {
        sd_model_cost_t cost;
        if (sd_model_invoke(sd_test_inputs[k], out, &cost) != SD_MODEL_OK) {
            return 100;
        }
        for (int i = 0; i < SD_MODEL_OUTPUT_SIZE; ++i) {
            if (out[i] != sd_test_outputs[k][i]) {
                printf("vector %d [%d]: %d, reference %d\n", k, i, out[i], sd_test_outputs[k][i]);
                ++bad;
            }
        }
        if (k < 2) {
            printf("cost lstm %lu head %lu (%s)\n", (unsigned long)cost.lstm,
                   (unsigned long)cost.head, sd_port_cost_unit());
        }
    }
    printf("%s: %d mismatches in %d vectors\n", bad ? "FAIL" : "PASS", bad, SD_TEST_NUM_VECTORS);
    return bad > 99 ? 99 : bad;
}
