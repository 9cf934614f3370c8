/*
 * sd_frontend.c - streaming log-mel front end v2, the C twin of
 * train/features.py (framing, window rule, normalization, int8) and
 * train/intfront.py (the integer log-mel with noise suppression): read those
 * docstrings first. This file follows them step by step with every table
 * generated from the Python side, and it is integer arithmetic throughout,
 * so its int8 output equals the reference's on every machine.
 *
 * Samples arrive in any chunk sizes. Every SD_HOP_LENGTH samples a centred
 * frame is complete: its SD_N_FFT samples are windowed (Q15 Hann) and
 * block-scaled to 14 bits (intfront step 1), transformed and squared
 * (sd_rfft_q15.c, steps 2-3), folded by the sparse integer mel filterbank
 * (step 4), logged (step 5), noise-suppressed and gain-controlled with the
 * per-band state kept here (steps 6-7), and mapped to fine int16 values with
 * the generated per-band integer gain and offset (features.py step 4). Each
 * frame's energy is the exact integer sum of squares of its SD_N_FFT
 * samples. The window rule keeps the SD_N_FRAMES consecutive frames with the
 * largest summed energy (earliest on a tie), evaluated as frames arrive, so
 * the clip itself is never stored. The chosen window becomes the int8 model
 * input: each band's sum over the window (the per-clip band mean, when
 * SD_CLIP_NORM_BAND_MEAN) and one rounded division per value.
 *
 * The FFT work space (SD_CFFT_N packed points and SD_N_BINS powers, 2 KB)
 * is the model's activation arena, sd_model_arena: the front end uses it
 * only inside one frame's computation and the model only inside one
 * sd_model_invoke, nothing in either survives the call, and the firmware is
 * single-threaded, so they never overlap.
 */
#include "sd_frontend_impl.h"

#include <stddef.h>
#include <string.h>

#include "sd_model_graph.h" /* generated: sd_model_arena, SD_MODEL_ARENA_BYTES */
#include "sd_rfft_q15.h"
#include "sd_simd16.h"

#define SD_HALF SD_HOP_LENGTH /* = SD_N_FFT / 2 (sd_frontend_impl.h checks) */

#if SD_MODEL_ARENA_BYTES >= 4u * (SD_CFFT_N + SD_N_BINS)
#define SD_FFT_Z ((uint32_t *)(void *)sd_model_arena)
#else
static uint32_t sd_fft_work[SD_CFFT_N + SD_N_BINS];
#define SD_FFT_Z sd_fft_work
#endif
#define SD_FFT_POWER (SD_FFT_Z + SD_CFFT_N)

static sd_frontend_t sd_frontend_state;

sd_frontend_t *sd_frontend_instance(void) { return &sd_frontend_state; }

void sd_frontend_begin(sd_frontend_t *fe)
{
    /* Everything starts at zero (the left padding of SD_N_FFT / 2 zeros, the
     * counters, the ring, the noise state, the detector; NULL hooks: all-zero
     * pointers on every target this builds for), except the half being
     * filled: one memset. */
    memset(fe, 0, sizeof *fe);
    fe->cur = 1u;
}

/* Bits of v (0 for 0). */
static inline uint32_t sd_bit_length32(uint32_t v) { return v ? 32u - (uint32_t)__builtin_clz(v) : 0u; }

/* One hop's exact energy (the sum of its squared samples) and its signed
 * width: the bits of the OR of x ^ (x >> 15) over its samples (intfront
 * step 1's B: every sample is in [-2^B, 2^B)). */
static uint64_t sd_hop_stats(const int16_t *hop, uint32_t *bits)
{
    uint64_t e = 0;
    uint32_t mag = 0;
    for (uint32_t n = 0; n < SD_HALF; n += 2u) {
        uint32_t xs;
        memcpy(&xs, &hop[n], sizeof xs); /* two samples, first in the low half */
        e = sd_smlald(xs, xs, e);
        const int32_t a = sd_lo16(xs);
        const int32_t b = sd_hi16(xs);
        mag |= (uint32_t)(a ^ (a >> 15)) | (uint32_t)(b ^ (b >> 15));
    }
    *bits = sd_bit_length32(mag);
    return e;
}

/* intfront step 1 for one half of a frame: v = (x * h) >> s on SD_HALF
 * samples, packed in pairs into z (SD_HALF / 2 words), w the half's window
 * pairs. */
static void sd_window_half(uint32_t *z, const int16_t *x, const uint32_t *w, uint32_t s)
{
    for (uint32_t n = 0; n < SD_HALF; n += 2u) {
        uint32_t xs;
        memcpy(&xs, &x[n], sizeof xs);
        const uint32_t ws = w[n / 2u];
        z[n / 2u] = sd_pack16(sd_smulbb(xs, ws) >> s, sd_smultt(xs, ws) >> s);
    }
}

/* intfront step 5: log2 of e > 0 in Q16, from the leading one and a
 * 65-entry table with linear interpolation. */
static int32_t sd_log2_q16(uint64_t e)
{
    const uint32_t b = 63u - (uint32_t)__builtin_clzll(e);
    const uint32_t mant = b >= 16u ? (uint32_t)(e >> (b - 16u)) : (uint32_t)e << (16u - b);
    const uint32_t f = mant - 65536u;
    const uint32_t idx = f >> (16u - SD_LOG_TABLE_BITS);
    const uint32_t r = f & ((1u << (16u - SD_LOG_TABLE_BITS)) - 1u);
    const int32_t lo = (int32_t)sd_log_table[idx];
    const int32_t hi = (int32_t)sd_log_table[idx + 1u];
    const int32_t frac = lo + (((hi - lo) * (int32_t)r + (1 << (15u - SD_LOG_TABLE_BITS))) >> (16u - SD_LOG_TABLE_BITS));
    return (int32_t)(b << 16) + frac;
}

/* The fine int16 value of one frame value S (Q SD_LOG_FRAC_BITS):
 * clamp_int16((S * gain + offset + 2^(shift-1)) >> shift)
 * (train.features.fine_features). |S| < 2^16, |gain| < 2^14, |offset| < 2^30:
 * the sum fits int32. */
static int16_t sd_fine_feature(int32_t v, uint32_t band)
{
    int32_t w = (v * (int32_t)sd_band_gain[band] + sd_band_offset[band] + (int32_t)(SD_BAND_ROUND)) >> SD_BAND_SHIFT;
    w = w < -32768 ? -32768 : (w > 32767 ? 32767 : w);
    return (int16_t)w;
}

/* Steps 1-7 for the frame lo ++ hi; fine int16 values into row (with
 * SD_FRAME_POOL 2: the first frame of a step only keeps its values, row is
 * not written; the second writes the step's); returns the energy of hi. */
static uint64_t sd_frame_features(sd_frontend_t *fe, const int16_t *lo, const int16_t *hi, int16_t *row)
{
    uint32_t *z = SD_FFT_Z;
    uint32_t *power = SD_FFT_POWER;
    uint32_t bits_hi;
    const uint64_t energy = sd_hop_stats(hi, &bits_hi);
    const uint32_t bits = bits_hi > fe->hop_bits_prev ? bits_hi : fe->hop_bits_prev;
    fe->hop_bits_prev = bits_hi;
    const uint32_t s = bits + 1u;
    /* the frame lo ++ hi, s = B + 1 from its signed width B (the larger of its hops') */
    sd_window_half(z, lo, sd_window_pairs, s);
    sd_window_half(z + SD_HALF / 2u, hi, sd_window_pairs + SD_HALF / 2u, s);
    sd_rfft_power_q15(z, power);
    /* The log's offset: 2 s undoes step 1's shift (power), the rest the FFT's
     * and the weights' scaling. */
    const int32_t offset = (2 * (int32_t)s + SD_LOG_OFFSET) * (1 << SD_LOG_FRAC_BITS);
#if SD_FRAME_POOL > 1u
    const int first = fe->n_frames == 0u && fe->pool_phase == 0u; /* no frame yet */
#else
    const int first = fe->n_frames == 0u;
#endif
    const uint16_t *w = sd_mel_weights;
    for (uint32_t m = 0; m < SD_N_MELS; m++) {
        const uint32_t len = sd_mel_length[m];
        uint64_t acc = 0;
#if SD_MEL_MAX_LENGTH <= 16u
        /* Straight-line code entered at k = len: w[-k] * p[-k] for k = len .. 1
         * (3 instead of 5 instructions per weight on Cortex-M4; integer sums,
         * so the order does not matter). */
        w += len;
        const uint32_t *p = &power[sd_mel_start[m] + len];
        switch (len) {
        case 16: acc += (uint64_t)w[-16] * p[-16]; /* fall through */
        case 15: acc += (uint64_t)w[-15] * p[-15]; /* fall through */
        case 14: acc += (uint64_t)w[-14] * p[-14]; /* fall through */
        case 13: acc += (uint64_t)w[-13] * p[-13]; /* fall through */
        case 12: acc += (uint64_t)w[-12] * p[-12]; /* fall through */
        case 11: acc += (uint64_t)w[-11] * p[-11]; /* fall through */
        case 10: acc += (uint64_t)w[-10] * p[-10]; /* fall through */
        case 9: acc += (uint64_t)w[-9] * p[-9]; /* fall through */
        case 8: acc += (uint64_t)w[-8] * p[-8]; /* fall through */
        case 7: acc += (uint64_t)w[-7] * p[-7]; /* fall through */
        case 6: acc += (uint64_t)w[-6] * p[-6]; /* fall through */
        case 5: acc += (uint64_t)w[-5] * p[-5]; /* fall through */
        case 4: acc += (uint64_t)w[-4] * p[-4]; /* fall through */
        case 3: acc += (uint64_t)w[-3] * p[-3]; /* fall through */
        case 2: acc += (uint64_t)w[-2] * p[-2]; /* fall through */
        default: acc += (uint64_t)w[-1] * p[-1]; /* len >= 1 (convert/firmware_gen.py) */
        }
#else
        const uint32_t *p = &power[sd_mel_start[m]];
        for (uint32_t j = 0; j < len; j++) {
            acc += (uint64_t)w[j] * p[j];
        }
        w += len;
#endif
        int32_t lg = SD_LOG_FLOOR_Q;
        if (acc != 0u) {
            const int32_t q = ((sd_log2_q16(acc) + (1 << (15 - SD_LOG_FRAC_BITS))) >> (16 - SD_LOG_FRAC_BITS)) + offset;
            lg = q > lg ? q : lg;
        }
        /* Step 6: the noise floor (from the first frame's value), then
         * spectral subtraction by table. */
        int32_t nf = fe->noise_floor[m];
        if (first) {
            nf = lg;
        } else {
            const int32_t diff = lg - nf;
            nf += diff < 0 ? diff >> SD_NOISE_FALL_SHIFT : diff >> SD_NOISE_RISE_SHIFT;
        }
        fe->noise_floor[m] = (int16_t)nf;
        int32_t idx = (lg - nf) >> (SD_LOG_FRAC_BITS - SD_NOISE_INDEX_BITS);
        idx = idx < 0 ? 0 : (idx > (int32_t)SD_NOISE_TABLE_LEN - 1 ? (int32_t)SD_NOISE_TABLE_LEN - 1 : idx);
        int32_t v = lg + sd_noise_gain[idx];
#if SD_AGC_STRENGTH
        /* Step 7: the band's level A follows v; (strength * A) >> 8 is taken off. */
        int32_t a = fe->agc_level[m];
        a = first ? v : a + ((v - a) >> SD_AGC_SHIFT);
        fe->agc_level[m] = (int16_t)a;
        v -= (SD_AGC_STRENGTH * a) >> 8;
#endif
#if SD_FRAME_POOL > 1u
        /* Step 3 (train.features.pool_frames): the first frame of a step
         * waits; the second maps floor((a + b) / 2) of the two values. */
        if (fe->pool_phase == 0u) {
            fe->pending[m] = (sd_pool_value_t)v;
            continue;
        }
        v = (fe->pending[m] + v) >> 1;
#endif
        row[m] = sd_fine_feature(v, m);
    }
    return energy;
}

void sd_frontend_frame_values(sd_frontend_t *fe, const int16_t *frame, int16_t *row)
{
    (void)sd_frame_features(fe, frame, &frame[SD_HALF], row);
#if SD_FRAME_POOL > 1u
    fe->pool_phase ^= 1u;
    if (fe->pool_phase != 0u) {
        return;
    }
#endif
    fe->n_frames++;
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
 * fe->cur): features into the ring, window rule. With SD_FRAME_POOL 2 the
 * first frame of a pair waits (its values in fe->pending, its energy) and
 * the second completes the time step: the pooled values (sd_frame_features)
 * and the sum of the two energies. */
static void sd_frontend_frame(sd_frontend_t *fe)
{
    const uint32_t slot = fe->n_frames % SD_N_FRAMES;
    const int16_t *hi = &fe->audio[fe->cur * SD_HALF];
    const int16_t *lo = &fe->audio[(fe->cur ^ 1u) * SD_HALF];
#if SD_FRAME_POOL > 1u
    if (fe->pool_phase == 0u) {
        const uint64_t hop_energy = sd_frame_features(fe, lo, hi, NULL);
        fe->pending_energy = fe->hop_energy_prev + hop_energy;
        fe->hop_energy_prev = hop_energy;
        fe->pool_phase = 1u;
        return;
    }
#endif
    if (fe->best_in_ring) { /* the chosen window is about to lose its oldest step */
        sd_ring_finish(fe, &fe->best[0][0]);
        fe->best_in_ring = 0;
    }
    const uint64_t hop_energy = sd_frame_features(fe, lo, hi, fe->ring[slot]);
    uint64_t energy = fe->hop_energy_prev + hop_energy;
    fe->hop_energy_prev = hop_energy;
#if SD_FRAME_POOL > 1u
    fe->pool_phase = 0u;
    energy += fe->pending_energy;
#endif
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
