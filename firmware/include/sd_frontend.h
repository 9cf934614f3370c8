/*
 * sd_frontend.h - streaming log-mel front end (declarations only; the
 * instance layout is in sd_frontend_impl.h, which depends on generated sizes).
 *
 * Usage per clip: sd_frontend_begin(); sd_frontend_push() any number of times
 * with consecutive int16 samples; sd_frontend_end() writes the int8 model
 * input (SD_MODEL_INPUT_SIZE bytes, row = time step) that the Python
 * reference (train/features.py) computes for the same samples.
 */
#ifndef SD_FRONTEND_H
#define SD_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sd_frontend sd_frontend_t;

/* One static instance owned by the library (no dynamic allocation). */
sd_frontend_t *sd_frontend_instance(void);

void sd_frontend_begin(sd_frontend_t *fe);
void sd_frontend_push(sd_frontend_t *fe, const int16_t *samples, size_t n);
/* Writes the int8 input tensor; returns the number of samples the clip had.
 * The tensor also stays in sd_frontend_tensor(fe) until the next begin (pass
 * that as `features` to have it in one place only). */
uint32_t sd_frontend_end(sd_frontend_t *fe, int8_t *features);

/* The input tensor the front end holds (SD_MODEL_INPUT_SIZE bytes, row = time
 * step, 4-byte aligned): the last clip's after sd_frontend_end; the protocol
 * also writes a host's tensor there for INFER (TENSOR). Streaming and the
 * next clip overwrite it. */
int8_t *sd_frontend_tensor(sd_frontend_t *fe);

/*
 * Streaming mode (train/stream.py, the reference: read its docstring first).
 * sd_stream_begin() starts a stream; sd_frontend_push() then takes its
 * samples in any chunk sizes, for as long as the stream lasts. Each
 * utterance the detector decides is handed to the sink with its int8 model
 * window (SD_N_FRAMES x SD_N_MELS, row = time step), from inside the push
 * that completed the deciding frame; sd_stream_end() decides an utterance
 * still open. Frames are counted from the stream's start; samples are u64.
 * With SD_FRAME_POOL 2 every "frame" below is a time step (two frames,
 * hop SD_STEP_HOP), as in train/stream.py.
 */
typedef struct {
    uint32_t first_frame;   /* the utterance's first and last loud frames */
    uint32_t last_frame;
    uint32_t decided_frame; /* the frame at which it was decided */
    uint32_t window_start;  /* first frame of the model window */
    uint64_t start_sample;  /* (first_frame - 1) * SD_STEP_HOP, at least 0 */
    uint64_t end_sample;    /* (last_frame + 1) * SD_STEP_HOP - 1; sliding: (decided_frame + 1) * ... - 1 */
    uint8_t first;          /* sliding: the utterance's first window (one window per utterance: 1) */
    uint8_t last;           /* sliding: its last (one window per utterance: 1) */
} sd_utterance_t;

/* `window` is NULL only when sliding, for an utterance the end of the stream
 * closes at a frame whose window was just handed over (the decision closes it). */
typedef void (*sd_stream_sink_t)(void *ctx, const sd_utterance_t *utt, const int8_t *window);

void sd_stream_begin(sd_frontend_t *fe, sd_stream_sink_t sink, void *ctx);
void sd_stream_end(sd_frontend_t *fe);
/* The detector's integer level of a frame energy (train.stream.level). */
int32_t sd_stream_level(uint64_t energy);

#ifdef __cplusplus
}
#endif

#endif /* SD_FRONTEND_H */
