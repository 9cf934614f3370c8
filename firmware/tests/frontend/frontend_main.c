/*
 * frontend_main.c - host driver for front-end parity tests (tests/test_frontend.py).
 *
 * stdin: records of  u32 n_samples | u32 chunk | int16 samples[n_samples]
 *        (little-endian); samples are pushed `chunk` at a time (0 = all at once).
 * stdout: per record  u32 n_samples_seen | int8 features[SD_N_FRAMES * SD_N_MELS].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sd_frontend.h"
#include "sd_frontend_config.h"

#define MAX_SAMPLES (1u << 20)

static int16_t samples[MAX_SAMPLES];

static int read_u32(uint32_t *v)
{
    uint8_t b[4];
    if (fread(b, 1, 4, stdin) != 4) {
        return 0;
    }
    *v = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) | ((uint32_t)b[3] << 24);
    return 1;
}

int main(void)
{
    static int8_t features[SD_N_FRAMES * SD_N_MELS];
    uint32_t n, chunk;
    while (read_u32(&n) && read_u32(&chunk)) {
        if (n > MAX_SAMPLES || fread(samples, sizeof(int16_t), n, stdin) != n) {
            fprintf(stderr, "frontend_main: bad record (n=%lu)\n", (unsigned long)n);
            return 2;
        }
        sd_frontend_t *fe = sd_frontend_instance();
        sd_frontend_begin(fe);
        if (chunk == 0u) {
            chunk = n;
        }
        for (uint32_t i = 0; i < n; i += chunk) {
            const uint32_t k = (n - i < chunk) ? n - i : chunk;
            sd_frontend_push(fe, &samples[i], k);
        }
        const uint32_t seen = sd_frontend_end(fe, features);
        const uint8_t hdr[4] = {(uint8_t)seen, (uint8_t)(seen >> 8), (uint8_t)(seen >> 16), (uint8_t)(seen >> 24)};
        fwrite(hdr, 1, 4, stdout);
        fwrite(features, 1, sizeof features, stdout);
    }
    return 0;
}
