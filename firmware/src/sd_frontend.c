/*
 * sd_frontend.c - streaming log-mel front end, the C twin of
 * train/features.py (read that docstring first: this file follows it step
 * by step, with every table generated from the Python side).
 *
 * Samples arrive in any chunk sizes. Every SD_HOP_LENGTH samples a centred
 * frame is complete: its SD_N_FFT samples are windowed (Hann), transformed
 * (CMSIS-DSP arm_rfft_fast_f32), squared to a power spectrum, folded by the
 * sparse mel filterbank, logged with the floor and mapped to fine int16
 * values with the generated per-band gain and offset. Each frame's energy is
 * the exact integer sum of squares of its SD_N_FFT samples. The window rule
 * keeps the SD_N_FRAMES consecutive frames with the largest summed energy
 * (earliest on a tie), evaluated as frames arrive, so the clip itself is
 * never stored. The chosen window becomes the int8 model input in integers
 * only: each band's sum over the window (the per-clip band mean, when
 * SD_CLIP_NORM_BAND_MEAN) and one rounded division per value.
 *
 * The FFT work space (2 x SD_N_FFT floats) is the model's activation arena,
 * sd_model_arena: the front end uses it only inside one frame's computation
 * and the model only inside one sd_model_invoke, nothing in either survives
 * the call, and the firmware is single-threaded, so they never overlap.
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
#include <stddef.h>
#include <string.h>

#include "sd_model_graph.h" /* generated: sd_model_arena, SD_MODEL_ARENA_BYTES */

#define SD_HALF SD_HOP_LENGTH /* = SD_N_FFT / 2 (sd_frontend_impl.h checks) */

/* newlib's logf(x) is a wrapper that returns __ieee754_logf(x) unchanged for
 * every x > 0 and for NaN, and only deals with errno and the SVID error
 * conventions otherwise. Our argument is a sum of non-negative products plus
 * SD_LOG_FLOOR > 0, so on newlib (the Cortex-M builds) the core function is
 * called directly: the same value for every input, 130 bytes less flash and
 * no wrapper per band. Other C libraries use logf. */
#if defined(_NEWLIB_VERSION) && !defined(_IEEE_LIBM)
float __ieee754_logf(float x);
#define SD_LOGF __ieee754_logf
#else
#define SD_LOGF logf
#endif

#if SD_MODEL_ARENA_BYTES >= 2u * SD_N_FFT * 4u
#define SD_FFT_IN ((float *)(void *)sd_model_arena)
#else
static float sd_fft_work[2u * SD_N_FFT];
#define SD_FFT_IN sd_fft_work
#endif
#define SD_FFT_OUT (SD_FFT_IN + SD_N_FFT)

static sd_frontend_t sd_frontend_state;

sd_frontend_t *sd_frontend_instance(void) { return &sd_frontend_state; }

void sd_frontend_begin(sd_frontend_t *fe)
{
    (void)arm_rfft_fast_init_512_f32(&fe->fft);
    /* Everything after the FFT instance starts at zero (the left padding of
     * SD_N_FFT / 2 zeros, the counters, the ring, the detector; NULL hooks:
     * all-zero pointers on every target this builds for), except the half
     * being filled: one memset, 100 bytes of flash less than field by field. */
    memset(fe->audio, 0, sizeof *fe - offsetof(sd_frontend_t, audio));
    fe->cur = 1u;
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
    float *fft_in = SD_FFT_IN;
    const uint64_t energy = sd_window_frame(fft_in, lo, hi);
    arm_rfft_fast_f32(&fe->fft, fft_in, SD_FFT_OUT, 0);
    /* Packed output: [0] = DC, [1] = Nyquist (both real), then re/im pairs.
     * The power spectrum goes into the input (free after the transform). */
    const float *z = SD_FFT_OUT;
    float *power = fft_in;
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
        logmel[m] = SD_LOGF(acc + SD_LOG_FLOOR);
    }
    return energy;
}

void sd_frontend_logmel_frame(sd_frontend_t *fe, const int16_t *frame, float *logmel)
{
    (void)sd_frame_logmel(fe, frame, &frame[SD_HALF], logmel);
}

/* The fine int16 value of one log-mel value: clamp(roundf(v), -32768, 32767)
 * of v = logmel * gain + offset, NaN -> -32768 (train.features.fine_features).
 * In range, t = (int32_t)v truncates toward zero and v - t is exact in
 * float32, so the half-away-from-zero rounding is taken from that fraction
 * without roundf. */
static int16_t sd_fine_feature(float logmel, uint32_t band)
{
    const float v = logmel * sd_band_gain[band] + sd_band_offset[band];
    if (!(v > -32767.5f)) { /* also catches NaN */
        return (int16_t)-32768;
    }
    if (v >= 32766.5f) {
        return (int16_t)32767;
    }
    int32_t t = (int32_t)v;
    const float frac = v - (float)t;
    t += (frac >= 0.5f) ? 1 : ((frac <= -0.5f) ? -1 : 0);
    return (int16_t)t;
}

/* The ring's window as the int8 model input, in time order (the oldest
 * frame is the next slot written): q = clamp(zp + rdiv(N * w - M, N * 2^fine)),
 * M = the band's sum over the window (SD_CLIP_NORM_BAND_MEAN) or 0, rdiv
 * rounding half away from zero (train.features.quantize_logmel). Every value
 * fits int32: |N * w - M| <= 2 * 16 * 32768. */
void sd_ring_finish(const sd_frontend_t *fe, int8_t *dst)
{
    const int32_t den = (int32_t)SD_N_FRAMES << SD_FINE_BITS;
    const uint32_t oldest = fe->n_frames % SD_N_FRAMES;
    for (uint32_t m = 0; m < SD_N_MELS; m++) {
        int32_t band_sum = 0;
#if SD_CLIP_NORM_BAND_MEAN
        for (uint32_t f = 0; f < SD_N_FRAMES; f++) {
            band_sum += fe->ring[f][m];
        }
#endif
        for (uint32_t f = 0; f < SD_N_FRAMES; f++) {
            const uint32_t slot = (oldest + f) % SD_N_FRAMES;
            const int32_t num = (int32_t)SD_N_FRAMES * fe->ring[slot][m] - band_sum;
            const int32_t mag = ((num < 0 ? -num : num) + den / 2) / den;
            int32_t q = SD_MODEL_INPUT_ZERO_POINT + (num < 0 ? -mag : mag);
            q = q < -128 ? -128 : (q > 127 ? 127 : q);
            dst[f * SD_N_MELS + m] = (int8_t)q;
        }
    }
}

/* A complete frame in fe->audio (previous hop, then the current hop in half
 * fe->cur): features into the ring, window rule. */
static void sd_frontend_frame(sd_frontend_t *fe)
{
    float logmel[SD_N_MELS];
    const uint32_t slot = fe->n_frames % SD_N_FRAMES;
    if (fe->best_in_ring) { /* the chosen window is about to lose its oldest frame */
        sd_ring_finish(fe, &fe->best[0][0]);
        fe->best_in_ring = 0;
    }
    const int16_t *hi = &fe->audio[fe->cur * SD_HALF];
    const int16_t *lo = &fe->audio[(fe->cur ^ 1u) * SD_HALF];
    const uint64_t hop_energy = sd_frame_logmel(fe, lo, hi, logmel);
    for (uint32_t m = 0; m < SD_N_MELS; m++) {
        fe->ring[slot][m] = sd_fine_feature(logmel[m], m);
    }
    const uint64_t energy = fe->hop_energy_prev + hop_energy;
    fe->hop_energy_prev = hop_energy;
    if (fe->n_frames >= SD_N_FRAMES) {
        fe->ring_sum -= fe->ring_energy[slot];
    }
    fe->ring_sum += energy;
    fe->ring_energy[slot] = energy;
    fe->n_frames++;
    if (fe->on_frame != NULL) { /* streaming mode: the detector (sd_stream.c) instead of the clip rule */
        fe->on_frame(fe, energy);
        return;
    }
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
    int8_t *held = &fe->best[0][0];
    if (fe->best_in_ring) {
        sd_ring_finish(fe, held);
        fe->best_in_ring = 0;
    }
    if (features != held) {
        memcpy(features, held, sizeof fe->best);
    }
    return fe->n_samples;
}

int8_t *sd_frontend_tensor(sd_frontend_t *fe)
{
    return &fe->best[0][0];
}
