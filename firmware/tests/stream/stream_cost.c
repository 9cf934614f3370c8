/*
 * stream_cost.c - cost of the streaming mode per second of audio, per stage,
 * for benchmarks (benchmarks/stream.py). Two deterministic 10 s streams,
 * pushed 256 samples at a time through sd_frontend.c's streaming mode, the
 * sink running the model on every window the detector hands over:
 *   bursts      five 0.4 s two-tone bursts over quiet noise (one a 2 s);
 *   continuous  the tones 7/8 of the time, 125 ms pauses (talking without a
 *               break: the sliding windows' worst case).
 * Prints per stream
 *   stream <name> seconds <s> windows <n> frontend <cost> model <cost> unit <unit>
 * where windows counts model invocations, frontend is everything but the
 * model (front end, detector, window choice; making the samples is not
 * counted) and model the sum of the invocations.
 */
#include <stdint.h>
#include <stdio.h>

#include "sd_frontend.h"
#include "sd_frontend_config.h"
#include "sd_model.h"
#include "sd_port.h"

#define SECONDS 10u
#define CHUNK 256u

static uint64_t model_cost;
static uint32_t windows;

static void sink(void *ctx, const sd_utterance_t *u, const int8_t *window)
{
    (void)ctx;
    (void)u;
    if (window == NULL) { /* a close without a window: no model run */
        return;
    }
    int8_t out[SD_MODEL_OUTPUT_SIZE];
    const uint64_t t0 = sd_port_cost_now();
    (void)sd_model_invoke(window, out, NULL);
    model_cost += sd_port_cost_now() - t0;
    windows++;
}

/* A two-tone burst from a table-free recurrence (no libm in the loop). */
static int16_t sample_at(uint32_t n, int continuous, uint32_t *lcg, float *s1, float *c1, float *s2, float *c2)
{
    *lcg = *lcg * 1664525u + 1013904223u;
    const int32_t noise = ((int32_t)(*lcg >> 16) - 32768) / 256; /* about -50 dBFS */
    const uint32_t in_sec = n % 16000u;                          /* a burst every 2 s */
    float v = 0.0f;
    /* rotate the two oscillators (300 Hz and 1100 Hz) */
    const float a1 = 0.9986122f, b1 = 0.0526803f; /* cos, sin of 2 pi 300 / 8000 */
    const float a2 = 0.9816272f, b2 = 0.1908090f; /* cos, sin of 2 pi 1100 / 8000 */
    const float t1 = *s1 * a1 + *c1 * b1, u1 = *c1 * a1 - *s1 * b1;
    const float t2 = *s2 * a2 + *c2 * b2, u2 = *c2 * a2 - *s2 * b2;
    *s1 = t1;
    *c1 = u1;
    *s2 = t2;
    *c2 = u2;
    if (continuous ? (n % 8000u) < 7000u : (in_sec >= 4000u && in_sec < 7200u)) {
        v = 9000.0f * t1 + 3000.0f * t2;
    }
    return (int16_t)((int32_t)v + noise);
}

/* One stream through the streaming mode; prints its line, returns the windows evaluated. */
static uint32_t run(const char *name, int continuous)
{
    static int16_t chunk[CHUNK];
    uint32_t lcg = 12345u;
    float s1 = 0.0f, c1 = 1.0f, s2 = 0.0f, c2 = 1.0f;
    sd_frontend_t *fe = sd_frontend_instance();
    model_cost = 0u;
    windows = 0u;
    uint64_t total = 0u; /* the stream's own cost: making the samples is left out */
    uint64_t t0 = sd_port_cost_now();
    sd_stream_begin(fe, sink, NULL);
    total += sd_port_cost_now() - t0;
    for (uint32_t n = 0; n < SECONDS * SD_SAMPLE_RATE; n += CHUNK) {
        for (uint32_t i = 0; i < CHUNK; i++) {
            chunk[i] = sample_at(n + i, continuous, &lcg, &s1, &c1, &s2, &c2);
        }
        t0 = sd_port_cost_now();
        sd_frontend_push(fe, chunk, CHUNK);
        total += sd_port_cost_now() - t0;
    }
    t0 = sd_port_cost_now();
    sd_stream_end(fe);
    total += sd_port_cost_now() - t0;
    printf("stream %s seconds %u windows %lu frontend %lu model %lu unit %s\n", name, SECONDS, (unsigned long)windows,
           (unsigned long)(total - model_cost), (unsigned long)model_cost, sd_port_cost_unit());
    return windows;
}

int main(void)
{
    sd_port_init();
    const uint32_t bursts = run("bursts", 0);
    const uint32_t continuous = run("continuous", 1);
    /* every burst is heard (one window per utterance, or more when sliding); talking keeps the model busy */
    return (bursts >= 5u && continuous > bursts) ? 0 : 1;
}
