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
 *
 * The float arithmetic is the plain one, operation for operation (the build
 * uses -ffp-contract=off): x / 32768 times the window, the power spectrum,
 * each band's sum in increasing bin order from 0.0f, logf, gain, offset. Two
 * rewrites are exact, so the int8 output is unchanged bit for bit: the window
 * table holds w * 2^-15, and (float)x * (w * 2^-15) == (x * 2^-15) * w (a
 * power of two; convert/firmware_gen.py checks the table is exact), and the
 * rounding to int8 is done in integers instead of roundf (same result for
 * every float).
 */
#include "sd_frontend_impl.h"

#include <math.h>
#include <string.h>

#define SD_HALF SD_HOP_LENGTH /* = SD_N_FFT / 2 (sd_frontend_impl.h checks) */

static sd_frontend_t sd_frontend_state;

sd_frontend_t *sd_frontend_instance(void) { return &sd_frontend_state; }

void sd_frontend_begin(sd_frontend_t *fe)
{
    (void)arm_rfft_fast_init_512_f32(&fe->fft);
    memset(fe->audio, 0, sizeof fe->audio); /* the left padding: SD_N_FFT / 2 zeros */
    fe->cur = 1u;
    fe->hop_fill = 0u;
    fe->hop_energy_prev = 0u;
    fe->n_samples = 0u;
    fe->n_frames = 0u;
    fe->ring_sum = 0u;
    fe->best_energy = 0u;
    fe->have_best = 0;
    fe->best_in_ring = 0;
}

/* out = (lo ++ hi) * window (the frame's two halves); returns the energy of
 * hi, the exact sum of its squared samples. */
static uint64_t sd_window_frame(float *out, const int16_t *lo, const int16_t *hi)
{
    const float *w = sd_window_scaled;
    int64_t e = 0;
#if SD_WINDOW_HALF
    /* w[n] == w[SD_N_FFT - n]: frame samples n (lo[n]) and SD_N_FFT - n
     * (hi[SD_HALF - n]) share one table value. */
    out[0] = (float)lo[0] * w[0];
    for (uint32_t n = 1; n < SD_HALF; n++) {
        const int32_t s = hi[SD_HALF - n];
        out[n] = (float)lo[n] * w[n];
        out[SD_N_FFT - n] = (float)s * w[n];
        e += (int64_t)s * s;
    }
    const int32_t mid = hi[0];
    out[SD_HALF] = (float)mid * w[SD_HALF];
    e += (int64_t)mid * mid;
#else
    for (uint32_t n = 0; n < SD_HALF; n++) {
        const int32_t s = hi[n];
        out[n] = (float)lo[n] * w[n];
        out[SD_HALF + n] = (float)s * w[SD_HALF + n];
        e += (int64_t)s * s;
    }
#endif
    return (uint64_t)e;
}

/* Log-mel of the frame lo ++ hi (two halves of SD_N_FFT / 2 samples);
 * returns the energy of hi. */
static uint64_t sd_frame_logmel(sd_frontend_t *fe, const int16_t *lo, const int16_t *hi, float *logmel)
{
    const uint64_t energy = sd_window_frame(fe->fft_in, lo, hi);
    arm_rfft_fast_f32(&fe->fft, fe->fft_in, fe->fft_out, 0);
    /* Packed output: [0] = DC, [1] = Nyquist (both real), then re/im pairs.
     * The power spectrum goes into fft_in (free after the transform). */
    const float *z = fe->fft_out;
    float *power = fe->fft_in;
    power[0] = z[0] * z[0];
    power[SD_N_BINS - 1u] = z[1] * z[1];
    for (uint32_t k = 1; k < SD_N_BINS - 1u; k++) {
        const float re = z[2u * k];
        const float im = z[2u * k + 1u];
        power[k] = re * re + im * im;
    }
    /* Each band sums weight * power over its bins in increasing order; the
     * bands' weights are stored one after the other. */
    const float *w = sd_mel_weights;
    for (uint32_t m = 0; m < SD_N_MELS; m++) {
        const uint32_t len = sd_mel_length[m];
        float acc = 0.0f;
#if SD_MEL_MAX_LENGTH <= 16u
        /* Straight-line code entered at k = len, w[-k] * p[-k] for k = len .. 1
         * (the same sum in the same order as the loop below, with no loop
         * overhead: 4 instead of 6 instructions per product on Cortex-M4). */
        w += len;
        const float *p = &power[sd_mel_start[m] + len];
        switch (len) {
        case 16: acc += w[-16] * p[-16]; /* fall through */
        case 15: acc += w[-15] * p[-15]; /* fall through */
        case 14: acc += w[-14] * p[-14]; /* fall through */
        case 13: acc += w[-13] * p[-13]; /* fall through */
        case 12: acc += w[-12] * p[-12]; /* fall through */
        case 11: acc += w[-11] * p[-11]; /* fall through */
        case 10: acc += w[-10] * p[-10]; /* fall through */
        case 9: acc += w[-9] * p[-9]; /* fall through */
        case 8: acc += w[-8] * p[-8]; /* fall through */
        case 7: acc += w[-7] * p[-7]; /* fall through */
        case 6: acc += w[-6] * p[-6]; /* fall through */
        case 5: acc += w[-5] * p[-5]; /* fall through */
        case 4: acc += w[-4] * p[-4]; /* fall through */
        case 3: acc += w[-3] * p[-3]; /* fall through */
        case 2: acc += w[-2] * p[-2]; /* fall through */
        default: acc += w[-1] * p[-1]; /* len >= 1 (convert/firmware_gen.py) */
        }
#else
        const float *p = &power[sd_mel_start[m]];
        for (uint32_t j = 0; j < len; j++) {
            acc += w[j] * p[j];
        }
        w += len;
#endif
        logmel[m] = logf(acc + SD_LOG_FLOOR);
    }
    return energy;
}

void sd_frontend_logmel_frame(sd_frontend_t *fe, const int16_t *frame, float *logmel)
{
    (void)sd_frame_logmel(fe, frame, &frame[SD_HALF], logmel);
}

/* clamp(roundf(v), -128, 127) with NaN -> -128, without roundf. roundf
 * rounds half away from zero (like train.features.round_half_away), so
 * roundf(v) <= -128 iff v <= -127.5 and roundf(v) >= 128 iff v >= 127.5. In
 * between, t = trunc(2 v) (exact, in -254 .. 254) gives roundf(v) =
 * floor((t + 1) / 2) for t >= 0 and floor(t / 2) for t < 0; the floors are
 * taken as unsigned shifts of t + 256. Checked against roundf for all 2^32
 * floats. */
static int8_t sd_quantize_feature(float logmel, uint32_t band)
{
    const float v = logmel * sd_band_gain[band] + sd_band_offset[band];
    if (!(v > -127.5f)) { /* also catches NaN */
        return (int8_t)-128;
    }
    if (v >= 127.5f) {
        return (int8_t)127;
    }
    const int32_t t = (int32_t)(v * 2.0f);
    const uint32_t u = (uint32_t)(t + 256 + (t >= 0 ? 1 : 0));
    return (int8_t)((int32_t)(u >> 1) - 128);
}

/* The ring's frames in time order (the oldest is the next slot written). */
static void sd_ring_copy(const sd_frontend_t *fe, int8_t *dst)
{
    const uint32_t oldest = fe->n_frames % SD_N_FRAMES;
    const size_t head = (size_t)(SD_N_FRAMES - oldest) * SD_N_MELS;
    memcpy(dst, fe->ring[oldest], head);
    memcpy(&dst[head], fe->ring[0], (size_t)oldest * SD_N_MELS);
}

/* A complete frame in fe->audio (previous hop, then the current hop in half
 * fe->cur): features into the ring, window rule. */
static void sd_frontend_frame(sd_frontend_t *fe)
{
    float logmel[SD_N_MELS];
    const uint32_t slot = fe->n_frames % SD_N_FRAMES;
    if (fe->best_in_ring) { /* the chosen window is about to lose its oldest frame */
        sd_ring_copy(fe, &fe->best[0][0]);
        fe->best_in_ring = 0;
    }
    const int16_t *hi = &fe->audio[fe->cur * SD_HALF];
    const int16_t *lo = &fe->audio[(fe->cur ^ 1u) * SD_HALF];
    const uint64_t hop_energy = sd_frame_logmel(fe, lo, hi, logmel);
    for (uint32_t m = 0; m < SD_N_MELS; m++) {
        fe->ring[slot][m] = sd_quantize_feature(logmel[m], m);
    }
    const uint64_t energy = fe->hop_energy_prev + hop_energy;
    fe->hop_energy_prev = hop_energy;
    if (fe->n_frames >= SD_N_FRAMES) {
        fe->ring_sum -= fe->ring_energy[slot];
    }
    fe->ring_sum += energy;
    fe->ring_energy[slot] = energy;
    fe->n_frames++;
    if (fe->n_frames < SD_N_FRAMES) {
        return;
    }
    if (!SD_WINDOW_MAX_ENERGY && fe->have_best) {
        return;
    }
    if (!fe->have_best || fe->ring_sum > fe->best_energy) { /* strict: the earliest window wins a tie */
        fe->best_energy = fe->ring_sum;
        fe->have_best = 1;
        fe->best_in_ring = 1;
    }
}

/* Appends samples of the padded clip (real audio or padding zeros). */
static void sd_frontend_feed(sd_frontend_t *fe, const int16_t *samples, size_t n)
{
    while (n > 0u) {
        int16_t *hop = &fe->audio[fe->cur * SD_HALF];
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
            sd_frontend_frame(fe);
            fe->cur ^= 1u;
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
    if (fe->best_in_ring) {
        sd_ring_copy(fe, features);
    } else {
        memcpy(features, fe->best, sizeof fe->best);
    }
    return fe->n_samples;
}
