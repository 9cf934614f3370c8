/*
 * sd_frontend.h - streaming log-mel front end (declarations only; the
 * instance layout is in sd_frontend_impl.h, which depends on generated sizes).
 *
 * Usage per clip: sd_frontend_begin(); sd_frontend_push() any number of times
 * with consecutive int16 samples; sd_frontend_end() writes the int8 model
 * input (SD_MODEL_INPUT_SIZE bytes, row = time step) that the Python
 * reference (train/features.py) computes for the same samples.
 */
#ifndef SD_FRONTEND_H
#define SD_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sd_frontend sd_frontend_t;

/* One static instance owned by the library (no dynamic allocation). */
sd_frontend_t *sd_frontend_instance(void);

void sd_frontend_begin(sd_frontend_t *fe);
void sd_frontend_push(sd_frontend_t *fe, const int16_t *samples, size_t n);
/* Writes the int8 input tensor; returns the number of samples the clip had. */
uint32_t sd_frontend_end(sd_frontend_t *fe, int8_t *features);

#ifdef __cplusplus
}
#endif

#endif /* SD_FRONTEND_H */
