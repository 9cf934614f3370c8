/*
 * sd_frontend_impl.h - layout of the streaming front end's instance.
 *
 * All memory is in the instance (no heap). Sizes come from the generated
 * sd_frontend_config.h. RAM: 1 KB of audio, 4 KB of FFT work space, two
 * windows of int8 features (2 x 1280 bytes) and 16 frame energies.
 */
#ifndef SD_FRONTEND_IMPL_H
#define SD_FRONTEND_IMPL_H

#include <stdint.h>

#include "arm_math.h"
#include "sd_frontend.h"
#include "sd_frontend_config.h"

/* A frame is the previous hop followed by the current one; the frame energy
 * is the sum of the two hop energies. */
#if SD_N_FFT != 2u * SD_HOP_LENGTH
#error "sd_frontend.c needs SD_HOP_LENGTH == SD_N_FFT / 2"
#endif

struct sd_frontend {
    arm_rfft_fast_instance_f32 fft;
    /* The last SD_N_FFT samples of the zero-padded clip as two hops: half
     * `cur` (samples [cur * hop, cur * hop + hop)) fills with the current hop,
     * the other half holds the previous one. The halves swap roles after each
     * frame, so samples are never moved. */
    int16_t audio[SD_N_FFT];
    uint32_t cur;             /* 0 or 1: the half being filled */
    uint32_t hop_fill;        /* samples in the current hop, 0..SD_HOP_LENGTH-1 */
    uint64_t hop_energy_prev; /* sum of squares of the previous hop */
    uint32_t n_samples;       /* real samples pushed for this clip */
    uint32_t n_frames;        /* frames computed so far */
    /* FFT input (overwritten by the transform) and output / power spectrum. */
    float fft_in[SD_N_FFT];
    float fft_out[SD_N_FFT];
    /* Ring of the last SD_N_FRAMES frames: int8 features and exact energies,
     * and the sum of the energies of the frames in the ring. */
    int8_t ring[SD_N_FRAMES][SD_N_MELS];
    uint64_t ring_energy[SD_N_FRAMES];
    uint64_t ring_sum;
    /* The chosen window so far, in time order, and its summed energy. While
     * best_in_ring is set, the chosen window is the ring's content and is
     * copied to best only before the next frame overwrites the ring. */
    int8_t best[SD_N_FRAMES][SD_N_MELS];
    uint64_t best_energy;
    int have_best;
    int best_in_ring;
};

/* Log-mel of one frame (for tests): the float values before quantization. */
void sd_frontend_logmel_frame(sd_frontend_t *fe, const int16_t *frame, float *logmel);

#endif /* SD_FRONTEND_IMPL_H */
