/*
 * sd_frontend_impl.h - layout of the streaming front end's instance.
 *
 * All memory is in the instance (no heap). Sizes come from the generated
 * sd_frontend_config.h. RAM: 1 KB of audio, a ring of the last 16 frames'
 * fine int16 values (2,560 bytes), the chosen window as int8 (1,280 bytes),
 * 16 frame energies and the per-band noise state (160 bytes; 320 with gain
 * control). The 2 KB of FFT work space are not here: they are the model's
 * activation arena (sd_frontend.c says why that is safe).
 */
#ifndef SD_FRONTEND_IMPL_H
#define SD_FRONTEND_IMPL_H

#include <stdint.h>

#include "sd_frontend.h"
#include "sd_frontend_config.h"

/* A frame is the previous hop followed by the current one; the frame energy
 * is the sum of the two hop energies. */
#if SD_N_FFT != 2u * SD_HOP_LENGTH
#error "sd_frontend.c needs SD_HOP_LENGTH == SD_N_FFT / 2"
#endif

#ifndef SD_FRAME_POOL /* headers generated before frame pooling: one frame per time step */
#define SD_FRAME_POOL 1u
#define SD_STEP_HOP SD_HOP_LENGTH
#endif
#if SD_FRAME_POOL != 1u && SD_FRAME_POOL != 2u
#error "sd_frontend.c pools 1 or 2 frames per time step (train/features.py step 3)"
#endif

/* A frame's value after steps 6-7: the log (at least SD_LOG_FLOOR_Q, below
 * 2^15) plus a suppression gain of at most -log2(20) (noise_min_remaining
 * 0.05) fits int16; gain control can take more off (int32 then). */
#if SD_AGC_STRENGTH
typedef int32_t sd_pool_value_t;
#else
typedef int16_t sd_pool_value_t;
#endif

#if SD_FRONTEND_VERSION != 2
#error "this firmware computes front end v2 (integer); regenerate firmware/generated/ with python -m convert.quantize"
#endif

struct sd_frontend {
    /* The last SD_N_FFT samples of the zero-padded clip as two hops: half
     * `cur` (samples [cur * hop, cur * hop + hop)) fills with the current hop,
     * the other half holds the previous one. The halves swap roles after each
     * frame, so samples are never moved. */
    int16_t audio[SD_N_FFT];
    uint32_t cur;             /* 0 or 1: the half being filled */
    uint32_t hop_fill;        /* samples in the current hop, 0..SD_HOP_LENGTH-1 */
    uint64_t hop_energy_prev; /* sum of squares of the previous hop */
    uint32_t hop_bits_prev;   /* signed width of the previous hop (train/intfront.py step 1's B) */
    uint32_t n_samples;       /* real samples pushed for this clip */
    uint32_t n_frames;        /* time steps completed so far (frames when SD_FRAME_POOL is 1) */
#if SD_FRAME_POOL > 1u
    /* Frame 2j of step j, waiting for frame 2j + 1: its values after steps
     * 6-7 (Q SD_LOG_FRAC_BITS, before the fine mapping) and its energy
     * (train/features.py step 3: pairs counted from the clip's or stream's
     * first frame). */
    uint32_t pool_phase; /* 1 while pending holds a frame */
    sd_pool_value_t pending[SD_N_MELS];
    uint64_t pending_energy;
#endif
    /* Ring of the last SD_N_FRAMES time steps: fine int16 values
     * (train/features.py, steps 3 and 5) and exact energies, and the sum of
     * the energies of the steps in the ring. */
    int16_t ring[SD_N_FRAMES][SD_N_MELS];
    uint64_t ring_energy[SD_N_FRAMES];
    uint64_t ring_sum;
    /* train/intfront.py steps 6-7: each band's noise floor and, with gain
     * control, its level (Q SD_LOG_FRAC_BITS; both stay within the range of
     * the log values, |v| < 2^15). They start from the clip's or stream's
     * first frame (n_frames == 0) and are carried from frame to frame. */
    int16_t noise_floor[SD_N_MELS];
#if SD_AGC_STRENGTH
    int16_t agc_level[SD_N_MELS];
#endif
    /* The chosen window so far as the int8 model input, in time order, and
     * its summed energy. While best_in_ring is set, the chosen window is the
     * ring's content and is finished into best only before the next frame
     * overwrites the ring. */
    int8_t best[SD_N_FRAMES][SD_N_MELS];
    uint64_t best_energy;
    int have_best;
    int best_in_ring;
    /* Streaming mode only (sd_stream_begin): the utterance detector of
     * train/stream.py, run for each frame instead of the clip window rule
     * (NULL in clip mode). The window above is then the open utterance's. */
    void (*on_frame)(struct sd_frontend *fe, uint64_t energy);
    int active;             /* an utterance is open */
    int closing;            /* it has ended and waits for its first candidate window */
    int32_t floor;          /* noise floor, sixteenths of a level unit */
    uint32_t utt_first;     /* first and last loud frames of the open utterance */
    uint32_t utt_last;
    uint32_t quiet;         /* quiet frames since utt_last */
    uint64_t band_prev;     /* band energy of the previous hop (train.stream.band_energies) */
    int32_t band_state[8];  /* the band filter's cascade: each stage's last input (SD_STREAM_BAND_ORDER + 1 used) */
    uint32_t best_end;      /* last frame of the chosen window */
    uint32_t evals;         /* sliding: windows handed over in this utterance */
    uint32_t last_eval;     /* sliding: the frame of the last one */
    uint32_t closed_at;     /* sliding: the frame at which the utterance ended */
    sd_stream_sink_t sink;
    void *sink_ctx;
};

/* The ring's window (the last SD_N_FRAMES frames, oldest first) as the int8
 * model input (sd_frontend.c). */
void sd_ring_finish(const sd_frontend_t *fe, int8_t *dst);
/* Streaming mode: the detector's step for the frame just added to the ring
 * (sd_stream.c). */
void sd_stream_frame(sd_frontend_t *fe, uint64_t energy);

/* One frame (SD_N_FFT samples) through steps 1-7 and the fine int16
 * mapping, as the next frame of fe's clip (for tests and profiling). */
void sd_frontend_frame_values(sd_frontend_t *fe, const int16_t *frame, int16_t *row);

#endif /* SD_FRONTEND_IMPL_H */
