/*
 * sd_stream.c - the streaming mode's utterance detector, the C twin of
 * train/stream.py (read that docstring first: the steps below carry its
 * numbers). It runs once per time step (a frame, or with SD_FRAME_POOL 2 a
 * pair of frames: "frame" below means a step) on what sd_frontend.c already holds (the
 * frame's exact energy, the ring of the last SD_N_FRAMES fine frames and
 * their summed energy, the saved window) and adds no buffer. All of it is
 * integer arithmetic; it costs a few dozen instructions per frame, so it is
 * built for size (firmware/Makefile's COLD_SRCS). sd_frontend.c reaches it
 * only through the hook sd_stream_begin() sets, so a program that never
 * streams (the clip-only test drivers) does not link it.
 */
#include <stddef.h>

#include "sd_frontend_impl.h"
#include "sd_stream_config.h" /* generated: the detector's constants */

typedef char sd_check_window_pre[(SD_STREAM_WINDOW_PRE < SD_N_FRAMES) ? 1 : -1];

int32_t sd_stream_level(uint64_t energy)
{
    if (energy <= 1u) {
        return 0;
    }
    const int32_t b = 63 - __builtin_clzll(energy);
    const uint64_t top = (b >= SD_STREAM_LEVEL_FRAC_BITS) ? (energy >> (b - SD_STREAM_LEVEL_FRAC_BITS))
                                                          : (energy << (SD_STREAM_LEVEL_FRAC_BITS - b));
    return (b << SD_STREAM_LEVEL_FRAC_BITS) + (int32_t)top - (1 << SD_STREAM_LEVEL_FRAC_BITS);
}

#if SD_STREAM_SLIDE_STRIDE == 0
/* Step 5: the ring's window (frames k - N + 1 .. k) is a candidate when it
 * starts no earlier than SD_STREAM_WINDOW_PRE frames before the first loud one. */
static void sd_stream_consider(sd_frontend_t *fe, uint32_t k)
{
    if (k + 1u < SD_N_FRAMES) {
        return;
    }
    const uint32_t start = k + 1u - SD_N_FRAMES;
    if ((uint64_t)start + SD_STREAM_WINDOW_PRE >= fe->utt_first &&
        (!fe->have_best || fe->ring_sum > fe->best_energy)) { /* strict: the earliest wins a tie */
        fe->best_energy = fe->ring_sum;
        fe->have_best = 1;
        fe->best_in_ring = 1;
        fe->best_end = k;
    }
}

#endif

static void sd_stream_idle(sd_frontend_t *fe)
{
    fe->active = 0;
    fe->closing = 0;
    fe->have_best = 0;
    fe->best_in_ring = 0;
    fe->quiet = 0u;
    fe->evals = 0u;
}

#if SD_STREAM_SLIDE_STRIDE > 0
/* Step 5s: the last frame of the utterance's first window (it starts
 * SD_STREAM_WINDOW_PRE frames before the first loud one; utt_first >=
 * SD_N_FRAMES - 1, so this never wraps). */
static uint32_t sd_stream_first_window_end(const sd_frontend_t *fe)
{
    return fe->utt_first + (SD_N_FRAMES - 1u - SD_STREAM_WINDOW_PRE);
}

/* Hands the ring's window ending at frame k (with_window) or only the close
 * of the utterance to the sink; the last one makes the detector idle. */
static void sd_stream_evaluate(sd_frontend_t *fe, uint32_t k, int last, int with_window)
{
    sd_utterance_t u;
    u.first_frame = fe->utt_first;
    u.last_frame = fe->utt_last;
    u.decided_frame = k;
    u.window_start = k + 1u - SD_N_FRAMES;
    u.start_sample = fe->utt_first > 0u ? (uint64_t)(fe->utt_first - 1u) * SD_STEP_HOP : 0u;
    u.end_sample = ((uint64_t)k + 1u) * SD_STEP_HOP - 1u;
    u.first = (uint8_t)(fe->evals == 0u);
    u.last = (uint8_t)(last != 0);
    if (with_window) {
        sd_ring_finish(fe, &fe->best[0][0]);
        fe->evals++;
        fe->last_eval = k;
    }
    if (last) {
        sd_stream_idle(fe);
    }
    if (fe->sink != NULL) {
        fe->sink(fe->sink_ctx, &u, with_window ? &fe->best[0][0] : NULL);
    }
}

/* Step 5s: the frame at which an ended utterance is evaluated for the last
 * time: k0, or SD_STREAM_CLOSE_WAIT frames after it ended when that is
 * sooner (never before it ended). */
static uint32_t sd_stream_due(const sd_frontend_t *fe)
{
    const uint32_t k0 = sd_stream_first_window_end(fe);
    const uint32_t wait_end = fe->closed_at + (uint32_t)SD_STREAM_CLOSE_WAIT;
    const uint32_t due = k0 < wait_end ? k0 : wait_end;
    return due > fe->closed_at ? due : fe->closed_at;
}

/* Step 5s: the windows ending at k0, k0 + stride, ... while the utterance is
 * open; once it has ended, one more (its last), when it is due. */
static void sd_stream_slide(sd_frontend_t *fe, uint32_t k)
{
    if (fe->closing) {
        if (k >= sd_stream_due(fe)) {
            sd_stream_evaluate(fe, k, 1, 1);
        }
        return;
    }
    const uint32_t k0 = sd_stream_first_window_end(fe);
    if (k < k0) {
        return;
    }
    if ((k - k0) % SD_STREAM_SLIDE_STRIDE == 0u) {
        sd_stream_evaluate(fe, k, 0, 1);
    }
}
#endif

#if SD_STREAM_SLIDE_STRIDE == 0
/* Step 6: hand the utterance and its window to the sink, then go idle. */
static void sd_stream_hand_over(sd_frontend_t *fe, uint32_t k)
{
    if (fe->best_in_ring) { /* the chosen window ends at k: still the ring's content */
        sd_ring_finish(fe, &fe->best[0][0]);
    }
    sd_utterance_t u;
    u.first_frame = fe->utt_first;
    u.last_frame = fe->utt_last;
    u.decided_frame = k;
    u.window_start = fe->best_end + 1u - SD_N_FRAMES;
    u.start_sample = fe->utt_first > 0u ? (uint64_t)(fe->utt_first - 1u) * SD_STEP_HOP : 0u;
    u.end_sample = ((uint64_t)fe->utt_last + 1u) * SD_STEP_HOP - 1u;
    u.first = 1u;
    u.last = 1u;
    sd_stream_idle(fe);
    if (fe->sink != NULL) {
        fe->sink(fe->sink_ctx, &u, &fe->best[0][0]);
    }
}
#endif

#if SD_STREAM_BAND_ORDER > 0
/* Step 1's band energy of the hop just completed: the sum of y[n]^2 for
 * y = (1 - z^-1)(1 + z^-1)^SD_STREAM_BAND_ORDER x, run as a cascade (a first
 * difference, then sums of neighbours) whose state, each stage's last input,
 * carries over from hop to hop and starts at zero with the stream (the zeros
 * before it). The same integers as train.stream.band_energies' convolution;
 * |y| <= 2^16 * 2^7 fits int32. */
static uint64_t sd_stream_band_hop(sd_frontend_t *fe, uint32_t half)
{
    const int16_t *x = &fe->audio[half * SD_HOP_LENGTH];
    int32_t *st = fe->band_state;
    uint64_t e = 0u;
    for (uint32_t n = 0; n < SD_HOP_LENGTH; n++) {
        int32_t y = x[n] - st[0];
        st[0] = x[n];
        for (uint32_t i = 1; i <= SD_STREAM_BAND_ORDER; i++) {
            const int32_t t = y + st[i];
            st[i] = y;
            y = t;
        }
        e += (uint64_t)((int64_t)y * y);
    }
    return e;
}
#endif

/* Steps 1-5 for frame k = n_frames - 1 (already in the ring). */
void sd_stream_frame(sd_frontend_t *fe, uint64_t energy)
{
    const uint32_t k = fe->n_frames - 1u;
#if SD_STREAM_BAND_ORDER > 0
    (void)energy; /* the window rule's: the ring keeps it */
#if SD_FRAME_POOL > 1u
    /* Step k is frames 2k and 2k + 1, whose hops (2k and 2k + 1) are both
     * in fe->audio now, the older in the other half: its band energy is the
     * sum of theirs, h(2k - 1) + 2 h(2k) + h(2k + 1). */
    const uint64_t h0 = sd_stream_band_hop(fe, fe->cur ^ 1u);
    const uint64_t hop = sd_stream_band_hop(fe, fe->cur);
    const int32_t lv = sd_stream_level(fe->band_prev + 2u * h0 + hop);
#else
    const uint64_t hop = sd_stream_band_hop(fe, fe->cur);
    const int32_t lv = sd_stream_level(fe->band_prev + hop);
#endif
    fe->band_prev = hop;
#else
    const int32_t lv = sd_stream_level(energy);
#endif
    const int32_t target = lv * 16;
    if (k == 0u) {
        fe->floor = target;
    }
    if (!fe->active) {
        if (k + 1u >= SD_N_FRAMES && lv >= (fe->floor >> 4) + SD_STREAM_START_DELTA && lv >= SD_STREAM_MIN_LEVEL) {
            fe->active = 1;
            fe->closing = 0;
            fe->utt_first = k;
            fe->utt_last = k;
            fe->quiet = 0u;
#if SD_STREAM_SLIDE_STRIDE > 0
            sd_stream_slide(fe, k);
#else
            sd_stream_consider(fe, k);
#endif
            return;
        }
        if (target < fe->floor) {
            fe->floor -= (fe->floor - target) >> SD_STREAM_FALL_SHIFT;
        } else {
            fe->floor += (target - fe->floor) >> SD_STREAM_RISE_SHIFT;
        }
        return;
    }
    if (!fe->closing) {
        if (lv >= (fe->floor >> 4) + SD_STREAM_STOP_DELTA) {
            fe->utt_last = k;
            fe->quiet = 0u;
        } else {
            fe->quiet++;
        }
        if (fe->quiet > SD_STREAM_HANGOVER) {
            if (fe->utt_last - fe->utt_first + 1u < SD_STREAM_MIN_FRAMES &&
                fe->evals == 0u) { /* a click: drop it, listen again */
                sd_stream_idle(fe);
                return;
            }
            fe->closing = 1;
            fe->closed_at = k;
        } else if (k - fe->utt_first + 1u >= SD_STREAM_MAX_FRAMES) {
            fe->utt_last = k;
            fe->closing = 1;
            fe->closed_at = k;
        }
    }
    if (target > fe->floor) {
        fe->floor += (target - fe->floor) >> SD_STREAM_ACTIVE_RISE_SHIFT;
    }
#if SD_STREAM_SLIDE_STRIDE > 0
    sd_stream_slide(fe, k);
#else
    sd_stream_consider(fe, k);
    if (fe->closing && fe->have_best) {
        sd_stream_hand_over(fe, k);
    }
#endif
}

void sd_stream_begin(sd_frontend_t *fe, sd_stream_sink_t sink, void *ctx)
{
    sd_frontend_begin(fe);
    fe->on_frame = sd_stream_frame;
    fe->sink = sink;
    fe->sink_ctx = ctx;
}

/* Step 7: no padding; an open utterance with a candidate window and at
 * least SD_STREAM_MIN_FRAMES frames is decided at the last frame. */
void sd_stream_end(sd_frontend_t *fe)
{
#if SD_STREAM_SLIDE_STRIDE > 0
    /* Step 7s: an open utterance closes at the last frame (if it has not
     * ended before); when its evaluation is due there it is evaluated there,
     * or only closed when that frame was just evaluated; else it is dropped. */
    if (fe->on_frame == sd_stream_frame && fe->active) {
        const uint32_t k = fe->n_frames - 1u;
        if (!fe->closing) {
            fe->closed_at = k;
        }
        if (k < sd_stream_due(fe) ||
            (fe->evals == 0u && fe->utt_last - fe->utt_first + 1u < SD_STREAM_MIN_FRAMES)) {
            sd_stream_idle(fe);
        } else {
            sd_stream_evaluate(fe, k, 1, !(fe->evals > 0u && fe->last_eval == k));
        }
    }
#else
    if (fe->on_frame == sd_stream_frame && fe->active && fe->have_best) {
        if (fe->utt_last - fe->utt_first + 1u >= SD_STREAM_MIN_FRAMES) {
            sd_stream_hand_over(fe, fe->n_frames - 1u);
        } else {
            sd_stream_idle(fe);
        }
    }
#endif
}
