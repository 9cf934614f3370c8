/* temporary
 * front-end config sha256 f3049ecd20999d54db4aa98786151502b23669c92316f569a5f2c182784d6fe4
 * Do not edit: regenerate with `python -m convert.quantize`. */

#ifndef SD_FRONTEND_CONFIG_H
#define SD_FRONTEND_CONFIG_H

#include <stdint.h>

/* Front end v2: integer arithmetic from the int16 samples to the int8 input
 * (train/intfront.py, train/features.py). INFO reports this version. */
#define SD_FRONTEND_VERSION 2
#define SD_SAMPLE_RATE 8000u
#define SD_CLIP_SAMPLES 4000u      /* shorter clips are zero-padded to this */
#define SD_N_FFT 512u
#define SD_HOP_LENGTH 256u
#define SD_N_BINS 257u
#define SD_N_MELS 80u
#define SD_N_FRAMES 16u
#define SD_WINDOW_MAX_ENERGY 1              /* 1: 16 frames with the most energy; 0: the first 16 */
#define SD_CLIP_NORM_BAND_MEAN 1           /* 1: subtract each band's mean over the window */
#define SD_FINE_BITS 6u                   /* fine int16 values: 2^SD_FINE_BITS steps per int8 step */
#define SD_FRONTEND_CONFIG_SHA256 "f3049ecd20999d54db4aa98786151502b23669c92316f569a5f2c182784d6fe4"

/* Step 1: periodic Hann window in Q15 (0 .. 32767) as pairs (w[2i] low,
 * w[2i+1] high). The windowed frame is shifted to SD_FFT_INPUT_BITS bits
 * and a sign. */
#define SD_FFT_INPUT_BITS 14u
extern const uint32_t sd_window_pairs[SD_N_FFT / 2u];
/* Steps 2-3: the SD_CFFT_N-point complex FFT's twiddles W^m, m < 3 SD_CFFT_N / 4,
 * the split step's W_N^k, k <= SD_CFFT_N / 2 (Q15, packed: re low, im high),
 * and where Z[k] stands in the FFT's digit-reversed output. */
#define SD_CFFT_N 256u
extern const uint32_t sd_fft_twiddle[3u * SD_CFFT_N / 4u];
extern const uint32_t sd_fft_split[SD_CFFT_N / 2u + 1u];
extern const uint8_t sd_fft_digit_rev[SD_CFFT_N];
/* Step 4: sparse mel filterbank, librosa's Slaney filters times 2^20
 * as uint16: band m weights FFT bins sd_mel_start[m] ..
 * sd_mel_start[m] + sd_mel_length[m] - 1; its weights follow those of
 * band m - 1 in sd_mel_weights. */
#define SD_MEL_WEIGHTS 502u
#define SD_MEL_MAX_LENGTH 14u
typedef uint8_t sd_mel_index_t;
extern const sd_mel_index_t sd_mel_start[SD_N_MELS];   /* first FFT bin of each band */
extern const sd_mel_index_t sd_mel_length[SD_N_MELS];  /* bins in the band's run (>= 1) */
extern const uint16_t sd_mel_weights[SD_MEL_WEIGHTS];
/* Step 5: L = log2(E) + 2 s + SD_LOG_OFFSET in Q SD_LOG_FRAC_BITS, at least SD_LOG_FLOOR_Q
 * (log2 of 1e-06); log2(1 + i / 64) in Q16 for the mantissa. */
#define SD_LOG_FRAC_BITS 10
#define SD_LOG_OFFSET (-62)
#define SD_LOG_FLOOR_Q (-20410)
#define SD_LOG_TABLE_BITS 6u
extern const uint32_t sd_log_table[(1u << SD_LOG_TABLE_BITS) + 1u];
/* Step 6: the noise floor falls by (L - floor) >> SD_NOISE_FALL_SHIFT, rises by
 * ... >> SD_NOISE_RISE_SHIFT; S = L + sd_noise_gain[clamp((L - floor) >> (F - 5))]
 * (noise_oversub 1.0, noise_min_remaining 0.05). */
#define SD_NOISE_FALL_SHIFT 1
#define SD_NOISE_RISE_SHIFT 6
#define SD_NOISE_INDEX_BITS 5
#define SD_NOISE_TABLE_LEN 256u
extern const int16_t sd_noise_gain[SD_NOISE_TABLE_LEN];
/* Step 7: gain control, S - ((SD_AGC_STRENGTH * A) >> 8), A += (S - A) >> SD_AGC_SHIFT (0: off). */
#define SD_AGC_STRENGTH 0
#define SD_AGC_SHIFT 4
/* Fine int16 value = clamp((S * gain + offset + SD_BAND_ROUND) >> SD_BAND_SHIFT):
 * the per-band training statistics and the model's input scale
 * (0.0784) / 2^SD_FINE_BITS folded; the int8 input follows in
 * integers (zero point -3). */
#define SD_BAND_SHIFT 16
#define SD_BAND_ROUND 32768
extern const int16_t sd_band_gain[SD_N_MELS];
extern const int32_t sd_band_offset[SD_N_MELS];

#endif /* SD_FRONTEND_CONFIG_H */
