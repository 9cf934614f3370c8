/*
 * profile_main.c - cost of one model invocation per op kind, for benchmarks
 * and kernel work: runs sd_model_invoke on a fixed pseudo-random input tensor
 * (the cost depends little on the values) with the executor's profile on,
 * and prints one line per op kind:
 *   op <NAME> count <n> cost <units>
 * then "total <units> <unit>". On QEMU (-icount shift=0) the unit is
 * instructions, on the host nanoseconds.
 *
 *   make -C firmware BOARD=mps2-an386 TEST_MAIN=tests/profile/profile_main.c test
 */
#include <stdio.h>

#include "sd_frontend_impl.h"
#include "sd_rfft_q15.h"
#include "sd_kernels.h"
#include "sd_model.h"
#include "sd_port.h"

int main(void)
{
    static int8_t input[SD_MODEL_INPUT_SIZE];
    static int8_t output[SD_MODEL_OUTPUT_SIZE];
    static sd_model_profile_t prof;
    uint32_t state = 12345u;
    sd_port_init();
    for (int i = 0; i < SD_MODEL_INPUT_SIZE; ++i) {
        state = state * 1664525u + 1013904223u; /* numerical recipes LCG */
        input[i] = (int8_t)(state >> 24);
    }
    /* one warm-up run (the first counter reading after boot can be off) */
    if (sd_model_invoke(input, output, 0) != SD_MODEL_OK) {
        return 1;
    }
    sd_model_cost_t cost;
    sd_model_set_profile(&prof);
    if (sd_model_invoke(input, output, &cost) != SD_MODEL_OK) {
        return 1;
    }
    sd_model_set_profile(0);
    uint64_t total = 0;
    for (int k = 0; k < SD_MODEL_PROFILE_KINDS; ++k) {
        if (prof.count[k] != 0u) {
            const char *name = sd_model_op_name(k);
            printf("op %s count %lu cost %lu\n", name != 0 ? name : "OTHER", (unsigned long)prof.count[k],
                   (unsigned long)prof.cost[k]);
            total += prof.cost[k];
        }
    }
    printf("total %lu %s (stages: lstm %lu head %lu)\n", (unsigned long)total, sd_port_cost_unit(),
           (unsigned long)cost.lstm, (unsigned long)cost.head);
    /* the front end on a 0.5 s clip of the same noise, and one frame alone */
    static int16_t clip[SD_CLIP_SAMPLES];
    for (int i = 0; i < (int)SD_CLIP_SAMPLES; ++i) {
        state = state * 1664525u + 1013904223u;
        clip[i] = (int16_t)((int32_t)(state >> 16) - 32768) / 8;
    }
    static int8_t features[SD_MODEL_INPUT_SIZE];
    sd_frontend_t *fe = sd_frontend_instance();
    uint64_t t0 = sd_port_cost_now();
    sd_frontend_begin(fe);
    sd_frontend_push(fe, clip, SD_CLIP_SAMPLES);
    (void)sd_frontend_end(fe, features);
    uint64_t t1 = sd_port_cost_now();
    int16_t row[SD_N_MELS];
    sd_frontend_frame_values(fe, clip, row);
    uint64_t t2 = sd_port_cost_now();
    static uint32_t fft_z[SD_CFFT_N], fft_power[SD_N_BINS];
    for (unsigned n = 0; n < SD_CFFT_N; ++n) {
        fft_z[n] = ((uint32_t)(uint16_t)(clip[2 * n] / 2) | ((uint32_t)(uint16_t)(clip[2 * n + 1] / 2) << 16));
    }
    uint64_t t3 = sd_port_cost_now();
    sd_rfft_power_q15(fft_z, fft_power);
    uint64_t t4 = sd_port_cost_now();
    t3 = t4 - t3 + t2; /* report the transform alone as "rfft" */
    printf("frontend clip %lu frame %lu rfft %lu rest %lu\n", (unsigned long)(t1 - t0),
           (unsigned long)(t2 - t1), (unsigned long)(t3 - t2), (unsigned long)((t2 - t1) - (t3 - t2)));
    /* one FULLY_CONNECTED of the recurrent shape (128 x 128), per tensor,
     * int16 bias (as the generated model's); then the same with an int32 bias */
    {
        static uint32_t w[128 * 64];
        static int32_t bias[128];
        static int16_t bias16[128] __attribute__((aligned(8)));
        static int8_t x[128];
        static int8_t y[128];
        for (int i = 0; i < 128 * 64; ++i) {
            state = state * 1664525u + 1013904223u;
            w[i] = state;
        }
        for (int i = 0; i < 128; ++i) {
            x[i] = (int8_t)i;
            bias[i] = i * 200;
            bias16[i] = (int16_t)(i * 200);
        }
        const int32_t mult = 1500000000;
        const int8_t shift = -9;
        sd_fc_params_t p = {0};
        p.multiplier = &mult;
        p.shift = &shift;
        p.output_offset = 3;
        p.activation_min = -128;
        p.activation_max = 127;
        sd_fc_dims_t d = {0};
        d.batches = 1;
        d.accum_depth = 128;
        d.output_depth = 128;
        uint64_t f0 = sd_port_cost_now();
        (void)sd_fully_connected_s8_b16(&p, &d, x, w, bias16, y);
        uint64_t f1 = sd_port_cost_now();
        (void)sd_fully_connected_s8(&p, &d, x, w, bias, y);
        uint64_t f2 = sd_port_cost_now();
        printf("fc 128x128 %lu (%lu per 16 MACs)\n", (unsigned long)(f1 - f0), (unsigned long)((f1 - f0) / 1024u));
        printf("fc 128x128 int32 bias %lu\n", (unsigned long)(f2 - f1));
    }
    return 0;
}
