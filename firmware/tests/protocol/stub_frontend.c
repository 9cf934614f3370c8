/*
 * stub_frontend.c - TEST STUB of sd_frontend.h: a deterministic function of
 * the sample stream that does not depend on how it is chunked, so tests can
 * predict it (tests/test_protocol.py has the same formulas):
 *   acc = 0; for each sample s: acc = acc * 31 + (uint16_t)s   (mod 2^32)
 *   features[i] = (int8_t)(uint8_t)((acc >> (i % 24)) + i)
 * Streaming mode: each time the stream's sample count reaches a multiple of
 * STUB_EVENT_EVERY, an utterance (first sample c - 3072, last sample c - 1025,
 * c the count) is handed to the sink with the features of acc at that point as
 * its window; sd_stream_end() decides one more (first sample: the previous
 * multiple, last: the stream's last sample) when at least 1024 samples came
 * since the previous multiple.
 */
#include "sd_frontend.h"
#include "sd_model_graph.h"

#define STUB_EVENT_EVERY 4096u

struct sd_frontend {
    uint32_t acc;
    uint32_t n;
    uint64_t total; /* stream samples */
    sd_stream_sink_t sink;
    void *ctx;
};

static sd_frontend_t s_fe;
static int8_t s_window[SD_MODEL_INPUT_SIZE];

sd_frontend_t *sd_frontend_instance(void)
{
    return &s_fe;
}

void sd_frontend_begin(sd_frontend_t *fe)
{
    fe->acc = 0;
    fe->n = 0;
    fe->total = 0;
    fe->sink = NULL;
    fe->ctx = NULL;
}

static void stub_decide(sd_frontend_t *fe, uint64_t first, uint64_t last)
{
    sd_utterance_t u = {0u, 0u, 0u, 0u, first, last, 1u, 1u};
    for (uint32_t i = 0; i < SD_MODEL_INPUT_SIZE; i++) {
        s_window[i] = (int8_t)(uint8_t)((fe->acc >> (i % 24u)) + i);
    }
    fe->sink(fe->ctx, &u, s_window);
}

void sd_frontend_push(sd_frontend_t *fe, const int16_t *samples, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fe->acc = fe->acc * 31u + (uint16_t)samples[i];
        fe->total++;
        if (fe->sink != NULL && fe->total % STUB_EVENT_EVERY == 0u) {
            stub_decide(fe, fe->total - 3072u, fe->total - 1025u);
        }
    }
    fe->n += (uint32_t)n;
}

static int8_t s_tensor[SD_MODEL_INPUT_SIZE];

int8_t *sd_frontend_tensor(sd_frontend_t *fe)
{
    (void)fe;
    return s_tensor;
}

uint32_t sd_frontend_end(sd_frontend_t *fe, int8_t *features)
{
    for (uint32_t i = 0; i < SD_MODEL_INPUT_SIZE; i++) {
        features[i] = (int8_t)(uint8_t)((fe->acc >> (i % 24u)) + i);
    }
    return fe->n;
}

void sd_stream_begin(sd_frontend_t *fe, sd_stream_sink_t sink, void *ctx)
{
    sd_frontend_begin(fe);
    fe->sink = sink;
    fe->ctx = ctx;
}

void sd_stream_end(sd_frontend_t *fe)
{
    if (fe->sink != NULL && fe->total % STUB_EVENT_EVERY >= 1024u) {
        stub_decide(fe, fe->total - fe->total % STUB_EVENT_EVERY, fe->total - 1u);
    }
}
