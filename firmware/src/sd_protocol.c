/*
 * sd_protocol.c - request parsing, dispatch and response building
 * (docs/protocol.md, "Messages").
 *
 * Buffer ownership: p->buf holds the decoded request; each handler reads
 * every request field it needs into locals before it writes the first byte
 * of the response into the same buffer. The response is then COBS-encoded
 * while it is written out through p->write.
 */
#include <string.h>

#include "sd_protocol.h"
#include "sd_le.h"

#include "sd_frontend.h"
#include "sd_frontend_config.h" /* generated: SD_FRONTEND_CONFIG_SHA256, SD_SAMPLE_RATE */
#include "sd_model.h"           /* includes generated sd_model_graph.h */
#include "sd_port.h"
#include "sd_stream.h"
#include "sd_stream_config.h"   /* generated: SD_MULAW_BIAS, SD_STREAM_CONFIG_SHA256 */

/* The protocol version fixes the tensor sizes; the generated model must agree. */
typedef char sd_check_input_size[(SD_MODEL_INPUT_SIZE == SD_PROTO_INPUT_SIZE) ? 1 : -1];
/* One label per model output (labels.json and the model come from one model folder). */
typedef char sd_check_output_size[(SD_MODEL_OUTPUT_SIZE == SD_LABEL_COUNT && SD_LABEL_COUNT >= 2 &&
                                   SD_LABEL_COUNT <= SD_PROTO_MAX_OUTPUTS) ? 1 : -1];
/* The largest responses fit the one buffer. */
typedef char sd_check_classify_fits[
    (SD_CLASSIFY_RSP_FIXED + SD_PROTO_INPUT_SIZE <= SD_PROTO_MAX_PAYLOAD &&
     SD_FEATURES_REQ_SIZE + SD_PROTO_INPUT_SIZE <= SD_PROTO_MAX_PAYLOAD) ? 1 : -1];
typedef char sd_check_stream_fits[
    (SD_STREAM_REQ_FIXED + 2u * SD_PROTO_MAX_SAMPLES <= SD_PROTO_MAX_PAYLOAD &&
     SD_STREAM_RSP_FIXED + SD_STREAM_QUEUE * SD_STREAM_EVENT_SIZE <= SD_PROTO_MAX_PAYLOAD) ? 1 : -1];
/* A chunk of SD_PROTO_MAX_SAMPLES completes at most 2 frames and two decisions
 * are at least SD_N_FRAMES - SD_STREAM_WINDOW_PRE frames apart (the next
 * utterance's first candidate window starts after the last decision), so one
 * chunk decides at most one utterance, plus one at the end of the stream:
 * the queue of SD_STREAM_QUEUE events never overflows (lost stays 0). */
typedef char sd_check_stream_queue[
    (SD_STREAM_QUEUE >= 2u && SD_PROTO_MAX_SAMPLES / SD_HOP_LENGTH + 1u < SD_N_FRAMES - SD_STREAM_WINDOW_PRE) ? 1 : -1];
/* Sliding: a chunk completes at most SD_PROTO_MAX_SAMPLES / SD_HOP_LENGTH + 1
 * frames, fewer than the stride, so it holds at most one scheduled window and
 * one closing one (a new utterance's first window comes SD_N_FRAMES - 1 -
 * SD_STREAM_WINDOW_PRE frames after it opens): two events at most. */
#if SD_STREAM_SLIDE_STRIDE > 0
typedef char sd_check_stream_slide[(SD_PROTO_MAX_SAMPLES / SD_HOP_LENGTH + 1u <= SD_STREAM_SLIDE_STRIDE) ? 1 : -1];
#endif
typedef char sd_check_audio_fits[
    (SD_AUDIO_REQ_FIXED + 2u * SD_PROTO_MAX_SAMPLES <= SD_PROTO_MAX_PAYLOAD) ? 1 : -1];

#define SD_PAYLOAD(p) (&(p)->buf[SD_PROTO_HEADER_SIZE])

/* Samples converted from the little-endian payload per sd_frontend_push call
 * (stack: 2 bytes each). */
#define SD_PUSH_BLOCK 32u

/* ---- small helpers ------------------------------------------------------- */

static void sd_copy(uint8_t *dst, const uint8_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = src[i];
    }
}

static size_t sd_strlen_max(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n] != '\0') {
        n++;
    }
    return n;
}

/* Writes a u8 length and at most SD_PROTO_MAX_STRING bytes of s; returns the
 * bytes written. */
static size_t sd_put_string(uint8_t *dst, const char *s)
{
    const size_t n = (s != NULL) ? sd_strlen_max(s, SD_PROTO_MAX_STRING) : 0u;
    dst[0] = (uint8_t)n;
    sd_copy(&dst[1], (const uint8_t *)s, n);
    return 1u + n;
}

/* The four SHA-256 hashes INFO reports, as bytes: the generated headers
 * define them as 64-digit hex strings, folded here at compile time (no hex
 * parser and no strings in flash). convert/ writes them; a header stub with
 * another length fails to compile (sd_check_hash_lengths). */
#define SD_HEX(c) ((c) <= '9' ? (c) - '0' : ((c) | 0x20) - 'a' + 10)
#define SD_HB(s, i) (uint8_t)((SD_HEX((s)[2 * (i)]) << 4) | SD_HEX((s)[2 * (i) + 1]))
#define SD_HASH_BYTES(s)                                                                              \
    SD_HB(s, 0), SD_HB(s, 1), SD_HB(s, 2), SD_HB(s, 3), SD_HB(s, 4), SD_HB(s, 5), SD_HB(s, 6),       \
    SD_HB(s, 7), SD_HB(s, 8), SD_HB(s, 9), SD_HB(s, 10), SD_HB(s, 11), SD_HB(s, 12), SD_HB(s, 13),   \
    SD_HB(s, 14), SD_HB(s, 15), SD_HB(s, 16), SD_HB(s, 17), SD_HB(s, 18), SD_HB(s, 19),              \
    SD_HB(s, 20), SD_HB(s, 21), SD_HB(s, 22), SD_HB(s, 23), SD_HB(s, 24), SD_HB(s, 25),              \
    SD_HB(s, 26), SD_HB(s, 27), SD_HB(s, 28), SD_HB(s, 29), SD_HB(s, 30), SD_HB(s, 31)
typedef char sd_check_hash_lengths[(sizeof SD_MODEL_SHA256 == 65u && sizeof SD_FRONTEND_CONFIG_SHA256 == 65u &&
                                    sizeof SD_STREAM_CONFIG_SHA256 == 65u && sizeof SD_LABELS_SHA256 == 65u) ? 1 : -1];
static const uint8_t sd_info_hashes[128] = {SD_HASH_BYTES(SD_MODEL_SHA256), SD_HASH_BYTES(SD_FRONTEND_CONFIG_SHA256),
                                            SD_HASH_BYTES(SD_STREAM_CONFIG_SHA256), SD_HASH_BYTES(SD_LABELS_SHA256)};

/* Index of the first largest score: ties go to the lowest index, as
 * numpy.argmax does on the host. */
static uint8_t sd_argmax(const int8_t *scores, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (scores[i] > scores[best]) {
            best = i;
        }
    }
    return (uint8_t)best;
}

/* Builds an ERROR payload; returns its length. text: ASCII, cut at
 * SD_PROTO_MAX_TEXT bytes. */
static size_t sd_error(sd_proto_t *p, uint8_t code, uint8_t request_type, const char *text)
{
    uint8_t *out = SD_PAYLOAD(p);
    const size_t n = sd_strlen_max(text, SD_PROTO_MAX_TEXT);
    out[0] = code;
    out[1] = request_type;
    sd_copy(&out[2], (const uint8_t *)text, n);
    return 2u + n;
}

/* Response type on success, or SD_MSG_ERROR; payload length through *len. */
typedef struct {
    uint8_t type;
    size_t len;
} sd_reply_t;

static sd_reply_t sd_reply_error(sd_proto_t *p, uint8_t code, uint8_t request_type, const char *text)
{
    sd_reply_t r;
    r.type = (uint8_t)SD_MSG_ERROR;
    r.len = sd_error(p, code, request_type, text);
    return r;
}

static sd_reply_t sd_reply_ok(uint8_t request_type, size_t len)
{
    sd_reply_t r;
    r.type = (uint8_t)(request_type | SD_MSG_RESPONSE);
    r.len = len;
    return r;
}

/* ---- handlers: each reads the request payload (len bytes), writes the response ---- */

static sd_reply_t sd_on_ping(sd_proto_t *p, size_t len)
{
    (void)p; /* the payload is echoed where it already is */
    return sd_reply_ok(SD_MSG_PING, len);
}

static sd_reply_t sd_on_info(sd_proto_t *p, size_t len)
{
    if (len != 0u) {
        return sd_reply_error(p, SD_ERR_BAD_LENGTH, SD_MSG_INFO, "bad length");
    }
    uint8_t *out = SD_PAYLOAD(p);
    out[0] = (uint8_t)SD_PROTO_VERSION;
    out[1] = (uint8_t)SD_FRONTEND_VERSION; /* was reserved (0) before front end v2: 0 means v1 */
    sd_wr16(&out[2], SD_PROTO_MAX_PAYLOAD);
    sd_wr16(&out[4], SD_PROTO_MAX_SAMPLES);
    sd_wr16(&out[6], SD_PROTO_INPUT_SIZE);
    sd_wr16(&out[8], (uint32_t)SD_PROTO_OUTPUT_SIZE); /* = the label count */
    sd_wr32(&out[10], (uint32_t)SD_SAMPLE_RATE);
    sd_copy(&out[14], sd_info_hashes, sizeof sd_info_hashes); /* model, front end, stream, labels */
    size_t n = SD_INFO_RSP_FIXED;
    n += sd_put_string(&out[n], SD_FIRMWARE_VERSION);
    n += sd_put_string(&out[n], sd_port_board_name());
    n += sd_put_string(&out[n], sd_port_cost_unit());
    return sd_reply_ok(SD_MSG_INFO, n);
}

static sd_reply_t sd_on_stats(sd_proto_t *p, size_t len)
{
    if (len != 0u) {
        return sd_reply_error(p, SD_ERR_BAD_LENGTH, SD_MSG_STATS, "bad length");
    }
    sd_port_rx_stats_t rx = {0u, 0u, 0u};
    sd_port_rx_stats(&rx);
    uint8_t *out = SD_PAYLOAD(p);
    sd_wr32(&out[0], p->rx_bytes);
    sd_wr32(&out[4], rx.dropped);
    sd_wr32(&out[8], p->frames_ok);
    sd_wr32(&out[12], p->frames_bad_crc);
    sd_wr32(&out[16], p->frames_bad_frame);
    sd_wr32(&out[20], p->frames_too_large);
    sd_wr16(&out[24], rx.window);
    sd_wr16(&out[26], rx.high_water);
    return sd_reply_ok(SD_MSG_STATS, SD_STATS_RSP_SIZE);
}

/* Drops the open clip or stream and the CLASSIFY result (RESET, TENSOR). */
static void sd_close_all(sd_proto_t *p)
{
    p->clip_open = 0;
    p->clip_received = 0;
    p->frontend_cost = 0;
    p->replay_valid = 0;
    p->stream_state = 0;
}

static sd_reply_t sd_on_reset(sd_proto_t *p, size_t len)
{
    if (len != 0u) {
        return sd_reply_error(p, SD_ERR_BAD_LENGTH, SD_MSG_RESET, "bad length");
    }
    sd_close_all(p);
    return sd_reply_ok(SD_MSG_RESET, 0u);
}

/* Streaming mode (STREAM): each decided utterance's samples go into the next
 * queue slot from inside sd_frontend_push; its model runs once the push has
 * returned (sd_stream_classify), at the handler's stack depth, on the window
 * the front end keeps (it stays put until the next decision, frames later). */
static void sd_stream_sink(void *ctx, const sd_utterance_t *u, const int8_t *window)
{
    sd_proto_t *p = (sd_proto_t *)ctx;
    if (p->ev_pending) { /* cannot happen: a push block completes at most one frame */
        p->lost += (p->lost < 0xFFFFu) ? 1u : 0u;
        return;
    }
    p->ev_utt = *u;
    p->ev_window = window;
    p->ev_pending = 1;
}

/* Runs the model on a pending window (none for a close without one), passes
 * its outputs to the decision (sd_stream_decide) and, when that decides an
 * event, fills the next queue slot: label (SD_STREAM_REJECTED for none),
 * samples, outputs. Adds the model's cost. */
static void sd_stream_classify(sd_proto_t *p)
{
    if (!p->ev_pending) {
        return;
    }
    p->ev_pending = 0;
    int8_t scores[SD_PROTO_OUTPUT_SIZE] = {0};
    if (p->ev_window != NULL) {
        sd_model_cost_t cost = {0u, 0u};
        if (sd_model_invoke(p->ev_window, scores, &cost) != SD_MODEL_OK) {
            p->events++; /* counted as a lost event, so that received + lost stays the count */
            p->lost += (p->lost < 0xFFFFu) ? 1u : 0u;
            return;
        }
        p->chunk_cost[1] += cost.lstm;
        p->chunk_cost[2] += cost.head;
    }
    uint8_t label;
    int8_t outputs[SD_PROTO_OUTPUT_SIZE];
    if (!sd_stream_decide(&p->decider, &p->ev_utt, p->ev_window != NULL ? scores : NULL, &label, outputs)) {
        return;
    }
    p->events++;
    if (p->ev_count >= SD_STREAM_QUEUE) { /* cannot happen (sd_check_stream_queue) */
        p->lost += (p->lost < 0xFFFFu) ? 1u : 0u;
        return;
    }
    uint8_t *ev = p->ev[p->ev_count];
    ev[0] = label;
    sd_wr64(&ev[1], p->ev_utt.start_sample);
    sd_wr64(&ev[9], p->ev_utt.end_sample);
    memcpy(&ev[SD_STREAM_EVENT_HEAD], outputs, SD_PROTO_OUTPUT_SIZE);
    p->ev_count++;
}

/* One G.711 mu-law byte as an int16 sample (train/mulaw.py's decode). */
static int16_t sd_mulaw_decode(uint8_t u)
{
    const uint32_t c = (uint8_t)~u;
    const int32_t mag = (int32_t)((((c & 0x0Fu) << 3) + SD_MULAW_BIAS) << ((c >> 4) & 0x07u)) - SD_MULAW_BIAS;
    return (int16_t)((c & 0x80u) ? -mag : mag);
}

/* Pushes n samples (little-endian int16 at src, or mu-law bytes with
 * `mulaw`) to the front end, in blocks, and adds the cost spent inside
 * sd_frontend_push to *cost. A block completes at most one frame, so at most
 * one event is pending after it. */
static void sd_push_samples(sd_proto_t *p, const uint8_t *src, size_t n, int mulaw, uint64_t *cost)
{
    sd_frontend_t *fe = sd_frontend_instance();
    int16_t block[SD_PUSH_BLOCK];
    size_t done = 0;
    while (done < n) {
        size_t k = n - done;
        if (k > SD_PUSH_BLOCK) {
            k = SD_PUSH_BLOCK;
        }
        for (size_t i = 0; i < k; i++) {
            block[i] = mulaw ? sd_mulaw_decode(src[done + i]) : (int16_t)sd_rd16(&src[2u * (done + i)]);
        }
        const uint64_t t0 = sd_port_cost_now();
        sd_frontend_push(fe, block, k);
        *cost += sd_port_cost_now() - t0;
        sd_stream_classify(p);
        done += k;
    }
}

/* The checks AUDIO and STREAM share: a fixed part of `fixed` bytes that ends
 * with flags u8 (only the `allowed` bits), reserved u8 (0) and n u16 (at most
 * SD_PROTO_MAX_SAMPLES), then n samples of 2 bytes (1 with SD_STREAM_MULAW,
 * which only STREAM allows). Returns SD_ERR_NONE or the error, its text
 * through *why. */
static uint8_t sd_check_chunk(const uint8_t *in, size_t len, size_t fixed, uint8_t allowed, const char **why)
{
    *why = "bad length";
    if (len < fixed) {
        return SD_ERR_BAD_LENGTH;
    }
    const uint32_t n = sd_rd16(&in[fixed - 2u]);
    if ((in[fixed - 4u] & (uint8_t)~allowed) != 0u || in[fixed - 3u] != 0u) {
        *why = "bad flags";
        return SD_ERR_BAD_ARGUMENT;
    }
    if (n > SD_PROTO_MAX_SAMPLES) {
        *why = "chunk too long";
        return SD_ERR_TOO_LARGE;
    }
    const size_t width = (in[fixed - 4u] & SD_STREAM_MULAW) ? 1u : 2u;
    return (len != fixed + width * n) ? (uint8_t)SD_ERR_BAD_LENGTH : (uint8_t)SD_ERR_NONE;
}

static sd_reply_t sd_on_audio(sd_proto_t *p, size_t len)
{
    const uint8_t *in = SD_PAYLOAD(p);
    const char *why;
    const uint8_t err = sd_check_chunk(in, len, SD_AUDIO_REQ_FIXED, SD_AUDIO_BEGIN, &why);
    if (err != SD_ERR_NONE) {
        return sd_reply_error(p, err, SD_MSG_AUDIO, why);
    }
    const uint32_t clip = sd_rd32(&in[0]);
    const uint32_t offset = sd_rd32(&in[4]);
    const uint8_t flags = in[8];
    const uint32_t n = sd_rd16(&in[10]);
    if ((flags & SD_AUDIO_BEGIN) != 0u) {
        if (offset != 0u) {
            return sd_reply_error(p, SD_ERR_BAD_ARGUMENT, SD_MSG_AUDIO, "bad offset");
        }
        /* (Re)start the clip. A resent first chunk restarts it and pushes the
         * same samples again: same state, so BEGIN is idempotent. */
        sd_frontend_begin(sd_frontend_instance());
        p->clip_open = 1;
        p->clip_id = clip;
        p->clip_received = 0;
        p->frontend_cost = 0;
        p->replay_valid = 0;
        p->stream_state = 0;
    } else if (!p->clip_open) {
        return sd_reply_error(p, SD_ERR_NO_CLIP, SD_MSG_AUDIO, "no open clip");
    } else if (clip != p->clip_id) {
        return sd_reply_error(p, SD_ERR_CLIP_MISMATCH, SD_MSG_AUDIO, "wrong clip id");
    }
    if (offset == p->clip_received) {
        if (n > 0xFFFFFFFFu - p->clip_received) {
            return sd_reply_error(p, SD_ERR_TOO_LARGE, SD_MSG_AUDIO, "clip too long");
        }
        sd_push_samples(p, &in[SD_AUDIO_REQ_FIXED], n, 0, &p->frontend_cost);
        p->clip_received += n;
    } else if (!(n > 0u && offset < p->clip_received && p->clip_received - offset == n)) {
        /* Neither the next chunk nor the last chunk resent. */
        return sd_reply_error(p, SD_ERR_SEQUENCE, SD_MSG_AUDIO, "bad offset");
    }
    /* else: the last chunk again (its ack was lost): acknowledge, push nothing. */
    uint8_t *out = SD_PAYLOAD(p);
    sd_wr32(&out[0], p->clip_id);
    sd_wr32(&out[4], p->clip_received);
    return sd_reply_ok(SD_MSG_AUDIO, SD_AUDIO_RSP_SIZE);
}

/* STREAM: one chunk of an unbroken stream (docs/protocol.md). A chunk is
 * known by its offset: the last one again is answered from the kept state
 * (its events stay queued until the next new chunk), nothing pushed twice. */
static sd_reply_t sd_on_stream(sd_proto_t *p, size_t len)
{
    const uint8_t *in = SD_PAYLOAD(p);
    const char *why;
    const uint8_t err = sd_check_chunk(in, len, SD_STREAM_REQ_FIXED, SD_STREAM_BEGIN | SD_STREAM_END | SD_STREAM_MULAW,
                                       &why);
    if (err != SD_ERR_NONE) {
        return sd_reply_error(p, err, SD_MSG_STREAM, why);
    }
    const uint32_t id = sd_rd32(&in[0]);
    const uint64_t offset = (uint64_t)sd_rd32(&in[4]) | ((uint64_t)sd_rd32(&in[8]) << 32);
    const uint8_t flags = in[12];
    const uint32_t n = sd_rd16(&in[14]);
    sd_frontend_t *fe = sd_frontend_instance();
    if ((flags & SD_STREAM_BEGIN) != 0u) {
        if (offset != 0u) {
            return sd_reply_error(p, SD_ERR_BAD_ARGUMENT, SD_MSG_STREAM, "bad offset");
        }
        /* (Re)start: a resent first chunk restarts the stream, same state. */
        sd_stream_begin(fe, sd_stream_sink, p);
        sd_stream_decider_reset(&p->decider);
        p->clip_open = 0;
        p->replay_valid = 0;
        p->stream_state = 1;
        p->stream_id = id;
        p->stream_received = 0;
        p->events = 0;
        p->lost = 0;
        p->ev_pending = 0;
    } else if (p->stream_state == 0u) {
        return sd_reply_error(p, SD_ERR_NO_CLIP, SD_MSG_STREAM, "no open clip");
    } else if (id != p->stream_id) {
        return sd_reply_error(p, SD_ERR_CLIP_MISMATCH, SD_MSG_STREAM, "wrong clip id");
    }
    uint8_t rflags = 0u;
    if ((flags & SD_STREAM_BEGIN) == 0u && n == p->last_n && offset <= p->stream_received &&
        p->stream_received - offset == n && ((flags ^ p->last_flags) & SD_STREAM_END) == 0u) {
        rflags = SD_STREAM_REPLAYED; /* the last chunk again (its ack was lost) */
    } else if (offset == p->stream_received && p->stream_state == 1u) {
        p->ev_count = 0; /* the previous chunk's ack carried them */
        p->chunk_cost[0] = 0u;
        p->chunk_cost[1] = 0u;
        p->chunk_cost[2] = 0u;
        sd_push_samples(p, &in[SD_STREAM_REQ_FIXED], n, (flags & SD_STREAM_MULAW) != 0u, &p->chunk_cost[0]);
        p->stream_received += n;
        p->last_n = (uint16_t)n;
        p->last_flags = flags;
        if ((flags & SD_STREAM_END) != 0u) {
            const uint64_t t0 = sd_port_cost_now();
            sd_stream_end(fe);
            p->chunk_cost[0] += sd_port_cost_now() - t0;
            sd_stream_classify(p);
            p->stream_state = 2;
        }
    } else {
        return sd_reply_error(p, SD_ERR_SEQUENCE, SD_MSG_STREAM, "bad offset");
    }
    uint8_t *out = SD_PAYLOAD(p);
    const uint64_t got = p->stream_received;
    sd_wr32(&out[0], p->stream_id);
    sd_wr64(&out[4], got);
    sd_wr32(&out[12], p->events);
    out[16] = (uint8_t)(rflags | (p->stream_state == 2u ? SD_STREAM_ENDED : 0u));
    out[17] = p->ev_count;
    sd_wr16(&out[18], (uint32_t)(got / SD_HOP_LENGTH - (got - p->last_n) / SD_HOP_LENGTH));
    sd_wr16(&out[20], p->lost);
    for (size_t i = 0; i < 3u; i++) {
        sd_wr64(&out[22u + 8u * i], p->chunk_cost[i]);
    }
    sd_copy(&out[SD_STREAM_RSP_FIXED], &p->ev[0][0], (size_t)p->ev_count * SD_STREAM_EVENT_SIZE);
    return sd_reply_ok(SD_MSG_STREAM, SD_STREAM_RSP_FIXED + (size_t)p->ev_count * SD_STREAM_EVENT_SIZE);
}

/* Writes the part shared by the CLASSIFY and INFER results (28 + K bytes at
 * out): cost frontend u64, lstm u64, head u64, the input tensor's CRC-32,
 * then the K int8 scores. */
static void sd_put_costs_scores(uint8_t *out, uint64_t frontend, const sd_model_cost_t *cost,
                                uint32_t input_crc, const int8_t *scores)
{
    sd_wr64(&out[0], frontend);
    sd_wr64(&out[8], cost->lstm);
    sd_wr64(&out[16], cost->head);
    sd_wr32(&out[24], input_crc);
    for (size_t i = 0; i < SD_PROTO_OUTPUT_SIZE; i++) {
        out[28u + i] = (uint8_t)scores[i];
    }
}

static sd_reply_t sd_on_classify(sd_proto_t *p, uint16_t seq, size_t len)
{
    const uint8_t *in = SD_PAYLOAD(p);
    if (len != SD_CLASSIFY_REQ_SIZE) {
        return sd_reply_error(p, SD_ERR_BAD_LENGTH, SD_MSG_CLASSIFY, "bad length");
    }
    const uint32_t clip = sd_rd32(&in[0]);
    const uint8_t flags = in[4];
    if ((flags & (uint8_t)~SD_CLASSIFY_WANT_FEATURES) != 0u || in[5] != 0u) {
        return sd_reply_error(p, SD_ERR_BAD_ARGUMENT, SD_MSG_CLASSIFY, "bad flags");
    }
    uint8_t *out = SD_PAYLOAD(p);
    if (!p->clip_open) {
        if (p->replay_valid && p->replay_seq == seq && sd_rd32(&p->replay[0]) == clip) {
            /* The same request again (its response was lost): answer from the
             * cache. The input tensor is gone; say so with the flags. */
            sd_copy(out, p->replay, SD_CLASSIFY_RSP_FIXED);
            out[5] = (uint8_t)SD_RESULT_REPLAYED;
            return sd_reply_ok(SD_MSG_CLASSIFY, SD_CLASSIFY_RSP_FIXED);
        }
        return sd_reply_error(p, SD_ERR_NO_CLIP, SD_MSG_CLASSIFY, "no open clip");
    }
    if (clip != p->clip_id) {
        return sd_reply_error(p, SD_ERR_CLIP_MISMATCH, SD_MSG_CLASSIFY, "wrong clip id");
    }
    /* The front end leaves the input tensor where it keeps it; the model
     * reads it from there, and FEATURES can read it again until the next
     * clip, stream, TENSOR or RESET. */
    sd_frontend_t *fe = sd_frontend_instance();
    int8_t *features = sd_frontend_tensor(fe);
    const uint64_t t0 = sd_port_cost_now();
    const uint32_t n_samples = sd_frontend_end(fe, features);
    p->frontend_cost += sd_port_cost_now() - t0;
    p->clip_open = 0;
    p->replay_valid = 0;

    int8_t scores[SD_PROTO_OUTPUT_SIZE];
    sd_model_cost_t cost = {0u, 0u};
    if (sd_model_invoke(features, scores, &cost) != SD_MODEL_OK) {
        return sd_reply_error(p, SD_ERR_MODEL, SD_MSG_CLASSIFY, "model failed");
    }
    const uint8_t rflags = ((flags & SD_CLASSIFY_WANT_FEATURES) != 0u) ? SD_RESULT_FEATURES : 0u;
    sd_wr32(&out[0], clip);
    out[4] = sd_argmax(scores, SD_PROTO_OUTPUT_SIZE);
    out[5] = rflags;
    sd_wr32(&out[6], n_samples);
    sd_put_costs_scores(&out[10], p->frontend_cost, &cost,
                        sd_crc32_update(0u, (const uint8_t *)features, SD_PROTO_INPUT_SIZE), scores);
    if (rflags != 0u) {
        sd_copy(&out[SD_CLASSIFY_RSP_FIXED], (const uint8_t *)features, SD_PROTO_INPUT_SIZE);
    }

    sd_copy(p->replay, out, SD_CLASSIFY_RSP_FIXED);
    p->replay_seq = seq;
    p->replay_valid = 1;
    return sd_reply_ok(SD_MSG_CLASSIFY, SD_CLASSIFY_RSP_FIXED + (rflags ? SD_PROTO_INPUT_SIZE : 0u));
}

/* FEATURES and TENSOR: a part of the input tensor the front end holds
 * (sd_frontend_tensor), so the 1,280-byte tensors cross a noisy line in
 * pieces small enough to get through, each resent alone, with no RAM added.
 * FEATURES (clip u32, offset u16, n u16) reads bytes offset .. offset + n - 1
 * of the last CLASSIFY's tensor, while its replay cache holds that clip: a
 * damaged CLASSIFY answer is made good without streaming the clip again.
 * TENSOR (offset u16, n u16, n bytes) writes them, for an INFER with an empty
 * payload, and ends any clip or stream. Either response starts with the
 * request's fixed bytes, which are already in place. */
static sd_reply_t sd_on_part(sd_proto_t *p, uint8_t type, size_t len)
{
    const uint8_t *in = SD_PAYLOAD(p);
    const int write = type == SD_MSG_TENSOR;
    const size_t fixed = write ? SD_TENSOR_REQ_FIXED : SD_FEATURES_REQ_SIZE;
    const uint8_t *on = &in[fixed - 4u]; /* offset u16, n u16 */
    const uint32_t offset = sd_rd16(&on[0]);
    const uint32_t n = sd_rd16(&on[2]);
    if (len < fixed || len != fixed + (write ? n : 0u)) {
        return sd_reply_error(p, SD_ERR_BAD_LENGTH, type, "bad length");
    }
    if (offset + n > SD_PROTO_INPUT_SIZE) {
        return sd_reply_error(p, SD_ERR_BAD_ARGUMENT, type, "past tensor end");
    }
    uint8_t *tensor = (uint8_t *)sd_frontend_tensor(sd_frontend_instance()) + offset;
    uint8_t *data = SD_PAYLOAD(p) + fixed;
    if (write) {
        sd_close_all(p);
        sd_copy(tensor, data, n);
        return sd_reply_ok(type, fixed);
    }
    if (!p->replay_valid || sd_rd32(&p->replay[0]) != sd_rd32(&in[0])) {
        return sd_reply_error(p, SD_ERR_NO_CLIP, type, "not classified");
    }
    sd_copy(data, tensor, n);
    return sd_reply_ok(type, fixed + n);
}

static sd_reply_t sd_on_infer(sd_proto_t *p, size_t len)
{
    if (len != SD_PROTO_INPUT_SIZE && len != 0u) {
        return sd_reply_error(p, SD_ERR_BAD_LENGTH, SD_MSG_INFER, "bad length");
    }
    int8_t scores[SD_PROTO_OUTPUT_SIZE];
    sd_model_cost_t cost = {0u, 0u};
    /* The input tensor is read in place: from the request payload, or the
     * one TENSOR wrote when the payload is empty. */
    const int8_t *x = (len != 0u) ? (const int8_t *)SD_PAYLOAD(p) : sd_frontend_tensor(sd_frontend_instance());
    const uint32_t crc = sd_crc32_update(0u, (const uint8_t *)x, SD_PROTO_INPUT_SIZE);
    if (sd_model_invoke(x, scores, &cost) != SD_MODEL_OK) {
        return sd_reply_error(p, SD_ERR_MODEL, SD_MSG_INFER, "model failed");
    }
    uint8_t *out = SD_PAYLOAD(p); /* the request is consumed: overwrite it */
    out[0] = sd_argmax(scores, SD_PROTO_OUTPUT_SIZE);
    out[1] = 0u;
    sd_put_costs_scores(&out[2], 0u, &cost, crc, scores);
    return sd_reply_ok(SD_MSG_INFER, SD_INFER_RSP_SIZE);
}

/* ---- dispatch ------------------------------------------------------------ */

void sd_proto_init(sd_proto_t *p, sd_write_fn write, void *write_ctx)
{
    p->buf = &p->store.bytes[2];
    sd_frame_decoder_init(&p->dec, p->buf, SD_PROTO_MAX_FRAME);
    p->write = write;
    p->write_ctx = write_ctx;
    p->clip_open = 0;
    p->clip_id = 0;
    p->clip_received = 0;
    p->frontend_cost = 0;
    p->replay_valid = 0;
    p->replay_seq = 0;
    p->stream_state = 0;
    p->ev_count = 0;
    p->ev_pending = 0;
    p->last_n = 0;
    p->last_flags = 0;
    p->rx_bytes = 0;
    p->frames_ok = 0;
    p->frames_bad = 0;
    p->frames_bad_crc = 0;
    p->frames_bad_frame = 0;
    p->frames_too_large = 0;
}

static sd_reply_t sd_dispatch(sd_proto_t *p, const sd_frame_t *f)
{
    if (f->version != SD_PROTO_VERSION) {
        return sd_reply_error(p, SD_ERR_BAD_VERSION, f->type, "bad version");
    }
    const size_t len = f->payload_len;
    switch (f->type) {
    case SD_MSG_PING:
        return sd_on_ping(p, len);
    case SD_MSG_INFO:
        return sd_on_info(p, len);
    case SD_MSG_RESET:
        return sd_on_reset(p, len);
    case SD_MSG_STATS:
        return sd_on_stats(p, len);
    case SD_MSG_AUDIO:
        return sd_on_audio(p, len);
    case SD_MSG_CLASSIFY:
        return sd_on_classify(p, f->seq, len);
    case SD_MSG_INFER:
        return sd_on_infer(p, len);
    case SD_MSG_STREAM:
        return sd_on_stream(p, len);
    case SD_MSG_FEATURES:
    case SD_MSG_TENSOR:
        return sd_on_part(p, f->type, len);
    default:
        return sd_reply_error(p, SD_ERR_UNKNOWN_TYPE, f->type, "unknown type");
    }
}

size_t sd_proto_handle(sd_proto_t *p, const sd_frame_t *f)
{
    sd_reply_t r;
    if (f->error != SD_ERR_NONE) {
        p->frames_bad++;
        if (f->error == SD_ERR_BAD_CRC) {
            p->frames_bad_crc++;
        } else if (f->error == SD_ERR_TOO_LARGE) {
            p->frames_too_large++;
        } else {
            p->frames_bad_frame++;
        }
        /* Answer a damaged frame only when it looks like one of ours (at least
         * a header, our version byte), so line noise draws no replies. Its
         * seq is unverified: the host ignores a reply that matches nothing. */
        if (!f->have_header || f->version != SD_PROTO_VERSION) {
            return 0u;
        }
        const char *text = (f->error == SD_ERR_BAD_CRC)     ? "bad CRC"
                           : (f->error == SD_ERR_TOO_LARGE) ? "frame too large"
                                                            : "bad frame";
        r = sd_reply_error(p, f->error, f->type, text);
    } else {
        p->frames_ok++;
        r = sd_dispatch(p, f);
    }
    return sd_frame_finish(p->buf, r.type, f->seq, r.len);
}

void sd_proto_feed(sd_proto_t *p, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        sd_frame_t f;
        p->rx_bytes++;
        if (sd_frame_feed(&p->dec, data[i], &f) != SD_FRAME_NONE) {
            const size_t n = sd_proto_handle(p, &f);
            if (n > 0u) {
                /* A spare delimiter first: noise the host received before
                 * this response ends there instead of corrupting it. */
                static const uint8_t delimiter = 0x00u;
                p->write(p->write_ctx, &delimiter, 1u);
                sd_frame_write(p->buf, n, p->write, p->write_ctx);
            }
        }
    }
}
