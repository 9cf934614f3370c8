/*
 * sd_protocol.h - the serial protocol between the host and the firmware.
 *
 * docs/protocol.md is the specification; this header mirrors its constants.
 * Change both (and host/protocol.py) together.
 *
 * Layers:
 *   frame (sd_frame.c)    : COBS on a 0x00 delimiter, CRC-32 (IEEE 802.3 /
 *                           zlib.crc32), 6-byte header. A byte-at-a-time
 *                           decoder with a hard size bound and a streaming
 *                           encoder that writes through a callback.
 *   protocol (sd_protocol.c): request parsing, dispatch to the front end and
 *                           the model, response building. Request/response
 *                           only: the device never speaks first.
 *
 * Memory: one buffer of SD_PROTO_MAX_FRAME bytes (inside sd_proto_t) holds the
 * decoded request; the request is fully consumed before the response is
 * written into the same buffer; the response is COBS-encoded on the fly while
 * it is written out (no second encoded buffer).
 */
#ifndef SD_PROTOCOL_H
#define SD_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "sd_labels.h" /* generated: SD_LABEL_COUNT, SD_LABELS_SHA256 */
#include "sd_stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- versions ------------------------------------------------------------ */

#define SD_PROTO_VERSION 5u         /* header byte 0 of every frame */
#define SD_FIRMWARE_VERSION "0.1.0" /* reported by INFO */

/* ---- sizes (fixed by protocol version 5, except the model's output count) --- */

#define SD_PROTO_HEADER_SIZE 6u    /* version u8, type u8, seq u16, length u16 */
#define SD_PROTO_CRC_SIZE 4u       /* CRC-32 of header + payload, little-endian */
#define SD_PROTO_MAX_PAYLOAD 1400u /* largest payload either side sends */
#define SD_PROTO_MAX_FRAME (SD_PROTO_HEADER_SIZE + SD_PROTO_MAX_PAYLOAD + SD_PROTO_CRC_SIZE)
#define SD_PROTO_MAX_SAMPLES 512u  /* int16 samples per AUDIO chunk */
#define SD_PROTO_INPUT_SIZE 1280u  /* int8 model input, 16 steps x 80 mel */
#define SD_PROTO_MAX_OUTPUTS 32u   /* int8 model outputs (labels), at most */
/* int8 model outputs, one per label: the model folder's labels.json, emitted
 * by convert/ into sd_labels.h; INFO reports it, and the results and events
 * below carry that many scores. */
#define SD_PROTO_OUTPUT_SIZE ((size_t)SD_LABEL_COUNT)
#define SD_PROTO_MAX_TEXT 64u      /* ERROR text bytes, at most */
#define SD_PROTO_MAX_STRING 32u    /* INFO string bytes, each, at most */

/* ---- message types (header byte 1) --------------------------------------- */

#define SD_MSG_RESPONSE 0x80u /* response type = request type | 0x80 */

typedef enum {
    SD_MSG_PING = 0x01,     /* echo the payload */
    SD_MSG_INFO = 0x02,     /* versions, hashes, sizes */
    SD_MSG_RESET = 0x03,    /* drop the open clip and the replay cache */
    SD_MSG_STATS = 0x04,    /* receive-path counters: bytes, drops, frames */
    SD_MSG_AUDIO = 0x10,    /* one chunk of a clip's int16 samples */
    SD_MSG_CLASSIFY = 0x11, /* end the clip: front end + model */
    SD_MSG_INFER = 0x12,    /* model only, on a host-given input tensor */
    SD_MSG_STREAM = 0x13,   /* one chunk of an unbroken stream; the ack carries its events */
    SD_MSG_FEATURES = 0x14, /* a part of the last CLASSIFY's input tensor, read again */
    SD_MSG_TENSOR = 0x15,   /* a part of the held input tensor, written (for INFER) */
    SD_MSG_ERROR = 0xFF,    /* response only: code + text */
} sd_msg_type_t;

/* ---- error codes (ERROR payload byte 0) ---------------------------------- */

typedef enum {
    SD_ERR_NONE = 0,
    SD_ERR_BAD_CRC = 1,       /* frame CRC mismatch (request damaged) */
    SD_ERR_BAD_FRAME = 2,     /* COBS invalid, shorter than 10 bytes, length field wrong */
    SD_ERR_TOO_LARGE = 3,     /* frame > SD_PROTO_MAX_FRAME or chunk > SD_PROTO_MAX_SAMPLES */
    SD_ERR_BAD_VERSION = 4,   /* header version != SD_PROTO_VERSION */
    SD_ERR_UNKNOWN_TYPE = 5,  /* type not a request this device knows */
    SD_ERR_BAD_LENGTH = 6,    /* payload length wrong for the type */
    SD_ERR_BAD_ARGUMENT = 7,  /* unknown flag bit, reserved byte not 0, bad offset */
    SD_ERR_NO_CLIP = 8,       /* AUDIO without BEGIN or CLASSIFY with no open clip */
    SD_ERR_CLIP_MISMATCH = 9, /* clip id differs from the open clip */
    SD_ERR_SEQUENCE = 10,     /* AUDIO offset is neither "next" nor "last chunk again" */
    SD_ERR_MODEL = 11,        /* sd_model_invoke failed */
} sd_error_t;

/* ---- flags --------------------------------------------------------------- */

#define SD_AUDIO_BEGIN 0x01u           /* AUDIO: this chunk starts a new clip */
#define SD_CLASSIFY_WANT_FEATURES 0x01u /* CLASSIFY request: append the input tensor */
#define SD_RESULT_FEATURES 0x01u       /* CLASSIFY response: input tensor appended */
#define SD_RESULT_REPLAYED 0x02u       /* CLASSIFY response: answered from the replay cache */
#define SD_STREAM_BEGIN 0x01u          /* STREAM request: this chunk starts a new stream */
#define SD_STREAM_END 0x02u            /* STREAM request: after its samples, the stream ends */
#define SD_STREAM_ENDED 0x01u          /* STREAM response: the stream has ended */
#define SD_STREAM_REPLAYED 0x02u       /* STREAM response: the last chunk again, nothing pushed */
#define SD_STREAM_MULAW 0x04u          /* STREAM request: samples are G.711 mu-law bytes */
#define SD_STREAM_REJECTED SD_STREAM_NO_LABEL /* STREAM event label: none (sd_stream.h, 0xFF) */

/* ---- payload layouts (byte offsets; all integers little-endian) ---------- */

#define SD_AUDIO_REQ_FIXED 12u     /* clip u32, offset u32, flags u8, 0 u8, n u16 */
#define SD_AUDIO_RSP_SIZE 8u       /* clip u32, received u32 */
#define SD_CLASSIFY_REQ_SIZE 6u    /* clip u32, flags u8, 0 u8 */
#define SD_CLASSIFY_RSP_HEAD 38u   /* clip u32, label u8, flags u8, n u32, 3 x u64,
                                    * CRC-32 of the input tensor u32; then out[K] */
#define SD_CLASSIFY_RSP_FIXED (SD_CLASSIFY_RSP_HEAD + SD_PROTO_OUTPUT_SIZE)
#define SD_INFER_RSP_HEAD 30u      /* label u8, flags u8, 3 x u64, input CRC-32 u32; then out[K] */
#define SD_INFER_RSP_SIZE (SD_INFER_RSP_HEAD + SD_PROTO_OUTPUT_SIZE)
#define SD_FEATURES_REQ_SIZE 8u    /* clip u32, offset u16, n u16; the response repeats them,
                                    * then n bytes of the input tensor */
#define SD_TENSOR_REQ_FIXED 4u     /* offset u16, n u16, then n bytes; the response: offset, n */
#define SD_INFO_RSP_FIXED 142u     /* then 3 strings, each u8 length + bytes */
#define SD_STREAM_REQ_FIXED 16u    /* stream u32, offset u64, flags u8, 0 u8, n u16 */
#define SD_STREAM_RSP_FIXED 46u    /* stream u32, received u64, events u32, flags u8, count u8,
                                    * frames u16, lost u16, 3 x u64 cost; then the events */
#define SD_STREAM_EVENT_HEAD 17u   /* label u8, first sample u64, last sample u64; then out[K] */
#define SD_STREAM_EVENT_SIZE (SD_STREAM_EVENT_HEAD + SD_PROTO_OUTPUT_SIZE)
#define SD_STREAM_QUEUE 2u         /* events one STREAM ack can carry (decided in its chunk) */
#define SD_STATS_RSP_SIZE 28u      /* rx u32, dropped u32, ok u32, crc u32, frame u32,
                                    * too large u32, rx window u16, high water u16 */

/* ---- CRC-32 (IEEE 802.3, reflected 0xEDB88320, init/xorout 0xFFFFFFFF) ---- */

/* Running CRC: start with crc = 0, pass the previous result to continue;
 * sd_crc32_update(0, "123456789", 9) == 0xCBF43926 == zlib.crc32(b"123456789"). */
uint32_t sd_crc32_update(uint32_t crc, const uint8_t *data, size_t len);

/* ---- frame decoder ------------------------------------------------------- */

typedef enum {
    SD_FRAME_NONE = 0, /* byte consumed, no frame ended (or an empty frame was skipped) */
    SD_FRAME_OK = 1,   /* a verified frame is in the buffer; see sd_frame_t */
    SD_FRAME_BAD = 2,  /* a damaged frame ended; sd_frame_t.error says why */
} sd_frame_event_t;

/* A decoded frame. On SD_FRAME_OK every field is valid and the payload is at
 * buf + SD_PROTO_HEADER_SIZE. On SD_FRAME_BAD only `error` is reliable;
 * `have_header` says whether version/type/seq hold the (unverified) first
 * bytes of the damaged frame. */
typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint16_t payload_len; /* 0..SD_PROTO_MAX_PAYLOAD */
    uint8_t error;        /* sd_error_t: SD_ERR_NONE, _BAD_CRC, _BAD_FRAME or _TOO_LARGE */
    uint8_t have_header;  /* 1 when at least SD_PROTO_HEADER_SIZE bytes were decoded */
} sd_frame_t;

/* Decoder state. Does not own `buf`: the caller keeps it alive; the decoder
 * writes decoded bytes into buf[0..cap) and never past it. */
typedef struct {
    uint8_t *buf;
    size_t cap;      /* >= SD_PROTO_HEADER_SIZE + SD_PROTO_CRC_SIZE */
    size_t len;      /* decoded bytes so far, <= cap */
    size_t raw;      /* encoded bytes since the last delimiter (saturates) */
    uint8_t left;    /* data bytes left in the current COBS block, 0..253 */
    uint8_t code;    /* code byte of the current block, 1..255; 0 before the first */
    uint8_t overflow;/* 1: the frame outgrew cap; bytes are dropped until 0x00 */
} sd_frame_decoder_t;

void sd_frame_decoder_init(sd_frame_decoder_t *d, uint8_t *buf, size_t cap);

/* Feeds one received byte. A 0x00 ends the frame; the decoder then restarts,
 * so a damaged or oversize frame costs nothing past the next delimiter.
 * On SD_FRAME_OK / SD_FRAME_BAD, *out is filled; the buffer holds the frame
 * until the next call. Empty frames (0x00 0x00) give SD_FRAME_NONE. */
sd_frame_event_t sd_frame_feed(sd_frame_decoder_t *d, uint8_t byte, sd_frame_t *out);

/* ---- frame encoder ------------------------------------------------------- */

/* Sink for encoded bytes. Must write all `len` bytes (blocking). */
typedef void (*sd_write_fn)(void *ctx, const uint8_t *data, size_t len);

/* Writes the header into buf[0..6) and the CRC after the payload, which the
 * caller has already put at buf + SD_PROTO_HEADER_SIZE. buf must hold
 * payload_len + 10 bytes; payload_len <= SD_PROTO_MAX_PAYLOAD.
 * Returns the frame length (payload_len + 10). */
size_t sd_frame_finish(uint8_t *buf, uint8_t type, uint16_t seq, size_t payload_len);

/* COBS-encodes frame[0..len) and writes it through `write`, then a 0x00.
 * Reads `frame` in place (no copy): the data goes out in runs of at most
 * 254 bytes, each preceded by its one-byte COBS code. */
void sd_frame_write(const uint8_t *frame, size_t len, sd_write_fn write, void *ctx);

/* ---- protocol engine ----------------------------------------------------- */

/* All protocol state. One static instance (sd_app.c); ~1.5 KB, most of it the
 * frame buffer that holds each request and then its response. */
typedef struct {
    sd_frame_decoder_t dec;
    sd_write_fn write; /* where encoded responses go */
    void *write_ctx;
    /* open clip */
    uint8_t clip_open;
    uint32_t clip_id;
    uint32_t clip_received; /* samples pushed to the front end so far */
    uint64_t frontend_cost; /* sd_port_cost_now() units inside push/end */
    /* replay cache for a repeated CLASSIFY (same seq and clip id) */
    uint8_t replay_valid;
    uint16_t replay_seq;
    uint8_t replay[SD_CLASSIFY_RSP_FIXED]; /* the last CLASSIFY response, fixed part; while
                                            * valid, the front end still holds its input tensor
                                            * (sd_frontend_tensor), which FEATURES reads */
    /* open stream (STREAM): the events decided in the last chunk applied wait
     * in ev[] until the next new chunk, so a resent chunk is answered with them again */
    uint8_t stream_state;       /* 0 none, 1 open, 2 ended */
    uint8_t ev_count;           /* events in ev[] */
    uint8_t ev_pending;         /* the sink filled ev[ev_count]'s samples; its model has not run yet */
    uint8_t last_flags;         /* flags of the last chunk applied */
    uint16_t last_n;            /* samples of the last chunk applied */
    uint16_t lost;              /* events the queue could not take (or whose model failed), saturating */
    uint32_t stream_id;
    uint32_t events;            /* events decided since BEGIN */
    uint64_t stream_received;   /* samples pushed since BEGIN */
    uint64_t chunk_cost[3];     /* front end, lstm, head spent on the last chunk applied */
    const int8_t *ev_window;    /* the pending window (the front end's; NULL: a close without one) */
    sd_utterance_t ev_utt;      /* ... and its utterance */
    sd_stream_decider_t decider; /* the stream's decision state (sd_stream.h) */
    uint8_t ev[SD_STREAM_QUEUE][SD_STREAM_EVENT_SIZE];
    /* receive counters since sd_proto_init, wrap around (STATS) */
    uint32_t rx_bytes;          /* bytes fed to the decoder */
    uint32_t frames_ok;         /* frames that passed the checks */
    uint32_t frames_bad;        /* damaged frames, all kinds (sum of the three below) */
    uint32_t frames_bad_crc;    /* ... BAD_CRC */
    uint32_t frames_bad_frame;  /* ... BAD_FRAME */
    uint32_t frames_too_large;  /* ... TOO_LARGE */
    /* The one buffer: decoded request in, response out. The frame starts 2
     * bytes into a 4-aligned store so that its payload (frame + 6), hence the
     * INFER input handed to sd_model_invoke, is 4-byte aligned. buf points
     * at the frame. */
    uint8_t *buf;
    union {
        uint32_t align;
        uint8_t bytes[SD_PROTO_MAX_FRAME + 2u];
    } store;
} sd_proto_t;

void sd_proto_init(sd_proto_t *p, sd_write_fn write, void *write_ctx);

/* Feeds received bytes; every complete request is answered through
 * p->write before the next byte is looked at. */
void sd_proto_feed(sd_proto_t *p, const uint8_t *data, size_t len);

/* Handles one decoded frame in p->buf and writes the response into p->buf.
 * Returns the response frame length (header + payload + CRC), or 0 when the
 * frame gets no answer (a damaged frame without a plausible header). */
size_t sd_proto_handle(sd_proto_t *p, const sd_frame_t *frame);

#ifdef __cplusplus
}
#endif

#endif /* SD_PROTOCOL_H */
