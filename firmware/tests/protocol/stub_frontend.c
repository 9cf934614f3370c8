/*
 * stub_frontend.c - TEST STUB of sd_frontend.h: a deterministic function of
 * the sample stream that does not depend on how it is chunked, so tests can
 * predict it (tests/test_protocol.py has the same formula):
 *   acc = 0; for each sample s: acc = acc * 31 + (uint16_t)s   (mod 2^32)
 *   features[i] = (int8_t)(uint8_t)((acc >> (i % 24)) + i)
 */
#include "sd_frontend.h"
#include "sd_model_graph.h"

struct sd_frontend {
    uint32_t acc;
    uint32_t n;
};

static sd_frontend_t s_fe;

sd_frontend_t *sd_frontend_instance(void)
{
    return &s_fe;
}

void sd_frontend_begin(sd_frontend_t *fe)
{
    fe->acc = 0;
    fe->n = 0;
}

void sd_frontend_push(sd_frontend_t *fe, const int16_t *samples, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fe->acc = fe->acc * 31u + (uint16_t)samples[i];
    }
    fe->n += (uint32_t)n;
}

uint32_t sd_frontend_end(sd_frontend_t *fe, int8_t *features)
{
    for (uint32_t i = 0; i < SD_MODEL_INPUT_SIZE; i++) {
        features[i] = (int8_t)(uint8_t)((fe->acc >> (i % 24u)) + i);
    }
    return fe->n;
}
