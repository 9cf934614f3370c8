/*
 * stream_main.c - host driver for the streaming parity test
 * (tests/test_stream.py): the device's streaming mode, front end and model,
 * on streams read from stdin, events written to stdout.
 *
 * stdin: records of  u32 n_samples | u32 chunk | int16 samples[n_samples]
 *        (little-endian); samples are pushed `chunk` at a time (0 = all at once).
 * stdout: per event (sd_stream_decide) one line
 *   E first last decided window_start start end label o0 .. oK-1 WINDOWHEX
 * (label: the output index, -1 for none; o: the event's outputs; WINDOWHEX:
 * the model input of the window evaluated last, 1280 int8 as two hex digits
 * each, "-" for a close without a window), then per record a line
 * "S n_frames windows" (windows: the model invocations).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sd_frontend.h"
#include "sd_frontend_impl.h"
#include "sd_model.h"
#include "sd_stream.h"

/* A record is read and pushed BUF_SAMPLES at a time, so a stream of any
 * length fits (the hour-long soak of benchmarks/stream.py is 29 M samples). */
#define BUF_SAMPLES (1u << 20)

static int16_t samples[BUF_SAMPLES];

static int read_u32(uint32_t *v)
{
    uint8_t b[4];
    if (fread(b, 1, 4, stdin) != 4) {
        return 0;
    }
    *v = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
    return 1;
}

static sd_stream_decider_t decider;
static uint32_t windows;

static void sink(void *ctx, const sd_utterance_t *u, const int8_t *window)
{
    (void)ctx;
    int8_t out[SD_MODEL_OUTPUT_SIZE] = {0};
    if (window != NULL) {
        windows++;
        if (sd_model_invoke(window, out, NULL) != SD_MODEL_OK) {
            fprintf(stderr, "stream_main: invoke failed\n");
            exit(1);
        }
    }
    uint8_t label;
    int8_t outputs[SD_MODEL_OUTPUT_SIZE];
    if (!sd_stream_decide(&decider, u, window != NULL ? out : NULL, &label, outputs)) {
        return;
    }
    printf("E %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu64 " %" PRIu64 " %d", u->first_frame,
           u->last_frame, u->decided_frame, u->window_start, u->start_sample, u->end_sample,
           label == SD_STREAM_NO_LABEL ? -1 : (int)label);
    for (unsigned i = 0; i < SD_MODEL_OUTPUT_SIZE; i++) {
        printf(" %d", (int)outputs[i]);
    }
    putchar(' ');
    if (window == NULL) {
        putchar('-');
    }
    for (unsigned i = 0; window != NULL && i < SD_MODEL_INPUT_SIZE; i++) {
        printf("%02x", (unsigned)(uint8_t)window[i]);
    }
    putchar('\n');
}

int main(void)
{
    uint32_t n, chunk;
    while (read_u32(&n) && read_u32(&chunk)) {
        sd_frontend_t *fe = sd_frontend_instance();
        sd_stream_begin(fe, sink, NULL);
        sd_stream_decider_reset(&decider);
        windows = 0u;
        if (chunk == 0u) {
            chunk = n > 0u ? n : 1u;
        }
        /* pieces of whole chunks (a chunk larger than the buffer is split: pushing in
         * any sizes gives the same frames), so chunk boundaries stay where they were */
        const uint32_t piece = chunk <= BUF_SAMPLES ? (BUF_SAMPLES / chunk) * chunk : BUF_SAMPLES;
        for (uint32_t done = 0; done < n;) {
            const uint32_t m = (n - done < piece) ? n - done : piece;
            if (fread(samples, sizeof(int16_t), m, stdin) != m) {
                fprintf(stderr, "stream_main: bad record (n=%lu, %lu read)\n", (unsigned long)n, (unsigned long)done);
                return 2;
            }
            for (uint32_t i = 0; i < m; i += chunk) {
                const uint32_t k = (m - i < chunk) ? m - i : chunk;
                sd_frontend_push(fe, &samples[i], k);
            }
            done += m;
        }
        sd_stream_end(fe);
        printf("S %" PRIu32 " %" PRIu32 "\n", fe->n_frames, windows);
        fflush(stdout);
    }
    return 0;
}
