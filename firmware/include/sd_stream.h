/*
 * sd_stream.h - the streaming mode's decision (train/stream.py steps 6 and
 * 6s): what the model's outputs for a window the detector handed over
 * (sd_frontend.h's sink) become. The code that runs the model keeps one
 * sd_stream_decider_t per stream and calls sd_stream_decide() after each
 * invocation, in order; it never needs more than the outputs.
 */
#ifndef SD_STREAM_H
#define SD_STREAM_H

#include <stdint.h>

#include "sd_frontend.h"
#include "sd_labels.h"        /* generated: SD_LABEL_COUNT, SD_LABEL_REPORTABLE_MASK */
#include "sd_stream_config.h" /* generated: the detector's and the decision's constants */

#ifdef __cplusplus
extern "C" {
#endif

#define SD_STREAM_NO_LABEL 0xFFu /* an event with no label: rejected */

typedef struct {
#if SD_STREAM_SLIDE_STRIDE > 0
    int8_t hist[SD_STREAM_SMOOTH_WINDOWS][SD_LABEL_COUNT]; /* the utterance's last windows' outputs */
    uint32_t count;                                        /* how many of them hist holds */
    uint32_t next;                                         /* the slot the next one goes to */
    uint32_t fired_frame;                                  /* the frame of the utterance's last label event */
    int fired;                                             /* the utterance has had a label event */
#else
    int unused;
#endif
} sd_stream_decider_t;

void sd_stream_decider_reset(sd_stream_decider_t *d);

/* One evaluation of the utterance `u`: `scores` are the model's outputs for
 * its window (NULL: an utterance closed by the end of the stream without a
 * new window). Returns 1 when it decides an event: *label is the output index
 * or SD_STREAM_NO_LABEL, outputs[SD_LABEL_COUNT] the event's outputs (the
 * averages when sliding). */
int sd_stream_decide(sd_stream_decider_t *d, const sd_utterance_t *u, const int8_t *scores, uint8_t *label,
                     int8_t *outputs);

#ifdef __cplusplus
}
#endif

#endif /* SD_STREAM_H */
