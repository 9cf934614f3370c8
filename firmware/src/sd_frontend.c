/*
 * sd_frontend.c - streaming log-mel front end, the C twin of
 * train/features.py (read that docstring first: this file follows it step
 * by step, with every table generated from the Python side).
 *
 * Samples arrive in any chunk sizes. Every SD_HOP_LENGTH samples a centred
 * frame is complete: its SD_N_FFT samples are windowed (Hann), transformed
 * (CMSIS-DSP arm_rfft_fast_f32), squared to a power spectrum, folded by the
 * sparse mel filterbank, logged with the floor and quantized to int8 with the
 * generated per-band gain and offset. Each frame's energy is the exact
 * integer sum of squares of its SD_N_FFT samples. The window rule keeps the
 * SD_N_FRAMES consecutive frames with the largest summed energy (earliest on
 * a tie), evaluated as frames arrive, so the clip itself is never stored.
 */
#include "sd_frontend_impl.h"

#include <math.h>
#include <string.h>

static sd_frontend_t sd_frontend_state;

sd_frontend_t *sd_frontend_instance(void) { return &sd_frontend_state; }

void sd_frontend_begin(sd_frontend_t *fe)
{
    (void)arm_rfft_fast_init_512_f32(&fe->fft);
    memset(fe->audio, 0, sizeof fe->audio); /* the left padding: SD_N_FFT / 2 zeros */
    fe->hop_fill = 0u;
    fe->hop_energy_prev = 0u;
    fe->n_samples = 0u;
    fe->n_frames = 0u;
    fe->best_energy = 0u;
    fe->have_best = 0;
}

void sd_frontend_logmel_frame(sd_frontend_t *fe, const int16_t *frame, float *logmel)
{
    const float to_unit = 1.0f / 32768.0f;
    for (uint32_t i = 0; i < SD_N_FFT; i++) {
        fe->fft_in[i] = ((float)frame[i] * to_unit) * sd_hann_window[i];
    }
    arm_rfft_fast_f32(&fe->fft, fe->fft_in, fe->fft_out, 0);
    /* Packed output: [0] = DC, [1] = Nyquist (both real), then re/im pairs.
     * The power spectrum goes into fft_in (free after the transform). */
    float *power = fe->fft_in;
    power[0] = fe->fft_out[0] * fe->fft_out[0];
    power[SD_N_BINS - 1u] = fe->fft_out[1] * fe->fft_out[1];
    for (uint32_t k = 1; k < SD_N_BINS - 1u; k++) {
        const float re = fe->fft_out[2u * k];
        const float im = fe->fft_out[2u * k + 1u];
        power[k] = re * re + im * im;
    }
    for (uint32_t m = 0; m < SD_N_MELS; m++) {
        const float *w = &sd_mel_weights[sd_mel_offset[m]];
        const float *p = &power[sd_mel_start[m]];
        float acc = 0.0f;
        for (uint32_t j = 0; j < sd_mel_length[m]; j++) {
            acc += w[j] * p[j];
        }
        logmel[m] = logf(acc + SD_LOG_FLOOR);
    }
}

static int8_t sd_quantize_feature(float logmel, uint32_t band)
{
    const float v = logmel * sd_band_gain[band] + sd_band_offset[band];
    const float r = roundf(v); /* half away from zero, like train.features.round_half_away */
    if (!(r > -128.0f)) { /* also catches NaN */
        return (int8_t)-128;
    }
    if (r > 127.0f) {
        return (int8_t)127;
    }
    return (int8_t)(int32_t)r;
}

/* One complete frame in fe->audio: features into the ring, window rule. */
static void sd_frontend_frame(sd_frontend_t *fe, uint64_t hop_energy)
{
    float logmel[SD_N_MELS];
    const uint32_t slot = fe->n_frames % SD_N_FRAMES;
    sd_frontend_logmel_frame(fe, fe->audio, logmel);
    for (uint32_t m = 0; m < SD_N_MELS; m++) {
        fe->ring[slot][m] = sd_quantize_feature(logmel[m], m);
    }
    fe->ring_energy[slot] = fe->hop_energy_prev + hop_energy;
    fe->hop_energy_prev = hop_energy;
    fe->n_frames++;
    if (fe->n_frames < SD_N_FRAMES) {
        return;
    }
    if (!SD_WINDOW_MAX_ENERGY && fe->have_best) {
        return;
    }
    uint64_t score = 0u;
    for (uint32_t t = 0; t < SD_N_FRAMES; t++) {
        score += fe->ring_energy[t];
    }
    if (!fe->have_best || score > fe->best_energy) { /* strict: the earliest window wins a tie */
        const uint32_t oldest = fe->n_frames % SD_N_FRAMES;
        for (uint32_t t = 0; t < SD_N_FRAMES; t++) {
            memcpy(fe->best[t], fe->ring[(oldest + t) % SD_N_FRAMES], SD_N_MELS);
        }
        fe->best_energy = score;
        fe->have_best = 1;
    }
}

/* Appends samples of the padded clip (real audio or padding zeros). */
static void sd_frontend_feed(sd_frontend_t *fe, const int16_t *samples, size_t n)
{
    int16_t *hop = &fe->audio[SD_HOP_LENGTH];
    while (n > 0u) {
        size_t take = SD_HOP_LENGTH - fe->hop_fill;
        if (take > n) {
            take = n;
        }
        if (samples != NULL) {
            memcpy(&hop[fe->hop_fill], samples, take * sizeof(int16_t));
            samples += take;
        } else {
            memset(&hop[fe->hop_fill], 0, take * sizeof(int16_t));
        }
        fe->hop_fill += (uint32_t)take;
        n -= take;
        if (fe->hop_fill == SD_HOP_LENGTH) {
            uint64_t e = 0u;
            for (uint32_t i = 0; i < SD_HOP_LENGTH; i++) {
                const int32_t s = hop[i];
                e += (uint64_t)(uint32_t)(s * s);
            }
            sd_frontend_frame(fe, e);
            memmove(fe->audio, hop, SD_HOP_LENGTH * sizeof(int16_t));
            fe->hop_fill = 0u;
        }
    }
}

void sd_frontend_push(sd_frontend_t *fe, const int16_t *samples, size_t n)
{
    if (samples == NULL || n == 0u) {
        return;
    }
    fe->n_samples += (uint32_t)n;
    sd_frontend_feed(fe, samples, n);
}

uint32_t sd_frontend_end(sd_frontend_t *fe, int8_t *features)
{
    if (fe->n_samples < SD_CLIP_SAMPLES) {
        sd_frontend_feed(fe, NULL, SD_CLIP_SAMPLES - fe->n_samples); /* pad short clips */
    }
    sd_frontend_feed(fe, NULL, SD_N_FFT / 2u); /* the right centring pad */
    memcpy(features, fe->best, sizeof fe->best);
    return fe->n_samples;
}
