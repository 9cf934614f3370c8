/*
 * sd_decide.c - the streaming mode's decision, the C twin of
 * train/stream.py's step 6 (one window per utterance: decide_event) and
 * step 6s (sliding windows: Smoother). It sees only the model's outputs and
 * the utterance the detector handed over, never the front end, so the
 * protocol's tests link it with their stub front end. Integer arithmetic
 * throughout; built for size (firmware/Makefile's COLD_SRCS).
 */
#include <string.h>

#include "sd_stream.h"

#if SD_STREAM_SLIDE_STRIDE > 0
typedef char sd_check_smooth[(SD_STREAM_SMOOTH_WINDOWS >= 1 && SD_STREAM_MIN_COUNT >= 1 &&
                              SD_STREAM_MIN_COUNT <= SD_STREAM_SMOOTH_WINDOWS && SD_LABEL_COUNT >= 2) ? 1 : -1];
#endif

/* Step 6 (one window per utterance): the top-1 output, or none when it leads
 * the runner-up by less than SD_STREAM_REJECT_MARGIN.
 * Step 6s (sliding): train.stream.Smoother, in the same integers. */
void sd_stream_decider_reset(sd_stream_decider_t *d) { memset(d, 0, sizeof *d); }

int sd_stream_decide(sd_stream_decider_t *d, const sd_utterance_t *u, const int8_t *scores, uint8_t *label,
                     int8_t *outputs)
{
    int32_t sums[SD_LABEL_COUNT];
    int32_t count = 1;
#if SD_STREAM_SLIDE_STRIDE > 0
    if (u->first) {
        sd_stream_decider_reset(d);
    }
    if (scores != NULL) {
        memcpy(d->hist[d->next], scores, SD_LABEL_COUNT);
#if SD_STREAM_SMOOTH_WINDOWS > 1
        d->next = (d->next + 1u) % SD_STREAM_SMOOTH_WINDOWS;
#endif /* one window: the slot is always 0 */
        d->count += (d->count < SD_STREAM_SMOOTH_WINDOWS) ? 1u : 0u;
    }
    if (d->count == 0u) {
        return 0;
    }
    count = (int32_t)d->count;
    for (uint32_t c = 0; c < SD_LABEL_COUNT; c++) {
        int32_t t = 0;
        for (uint32_t i = 0; i < d->count; i++) {
            t += d->hist[i][c];
        }
        sums[c] = t;
    }
#else
    (void)d;
    (void)u;
    if (scores == NULL) {
        return 0;
    }
    for (uint32_t c = 0; c < SD_LABEL_COUNT; c++) {
        sums[c] = scores[c];
    }
#endif
    uint32_t top = 0;
    for (uint32_t c = 1; c < SD_LABEL_COUNT; c++) {
        if (sums[c] > sums[top]) { /* strict: the first maximum */
            top = c;
        }
    }
    int32_t runner = INT32_MIN;
    for (uint32_t c = 0; c < SD_LABEL_COUNT; c++) {
        if (c != top && sums[c] > runner) {
            runner = sums[c];
        }
#if SD_STREAM_SLIDE_STRIDE > 0
        /* floor(sums / count), as numpy's // */
        const int32_t q = sums[c] / count;
        outputs[c] = (int8_t)((q * count != sums[c] && sums[c] < 0) ? q - 1 : q);
#else
        outputs[c] = (int8_t)sums[c];
#endif
    }
    const int margin_ok = sums[top] - runner >= SD_STREAM_REJECT_MARGIN * count;
#if SD_STREAM_SLIDE_STRIDE > 0
    const int reportable = (int)((SD_LABEL_REPORTABLE_MASK >> top) & 1u);
    if (reportable && margin_ok && sums[top] >= SD_STREAM_DETECT_THRESHOLD * count &&
        (count >= SD_STREAM_MIN_COUNT || u->last) &&
        (!d->fired || u->decided_frame - d->fired_frame + 1u > SD_STREAM_SUPPRESS_FRAMES)) {
        d->fired = 1;
        d->fired_frame = u->decided_frame;
        *label = (uint8_t)top;
        return 1;
    }
    if (u->last && !d->fired) {
        *label = reportable ? (uint8_t)SD_STREAM_NO_LABEL : (uint8_t)top;
        return 1;
    }
    return 0;
#else
    *label = margin_ok ? (uint8_t)top : (uint8_t)SD_STREAM_NO_LABEL;
    return 1;
#endif
}
