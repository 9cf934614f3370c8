/*
 * fuzz_protocol.c - libFuzzer harness for the firmware's serial protocol.
 *
 * What runs: the firmware's own main loop (src/sd_app.c, its main() renamed
 * sd_app_main at compile time) with the real frame decoder (sd_frame.c) and
 * request handler (sd_protocol.c). In the default build the real front end
 * (sd_frontend.c + CMSIS-DSP + generated tables) and the real int8 model
 * (sd_model.c + kernels + generated graph) are linked in, so AUDIO, CLASSIFY
 * and INFER do the device's real work; with -DFUZZ_STUBS=1 the stubs of
 * firmware/tests/protocol stand in for both (a faster variant).
 *
 * The fuzz input is the byte stream the device receives. This file is also
 * the board port (sd_port.h): sd_port_read() hands the input out in chunks of
 * 0..max bytes (sizes from a fixed pseudo-random sequence), sd_port_write()
 * collects the device's output, and when the input is used up sd_port_read()
 * longjmps back to LLVMFuzzerTestOneInput. Every input starts from a fresh
 * device (sd_app_main calls sd_port_init and sd_proto_init).
 *
 * The oracle: before handing out chunk k+1, the harness replays chunk k
 * through its own model of docs/protocol.md, written independently of the
 * firmware (bytewise COBS, bitwise CRC-32, the request rules and the clip /
 * replay-cache state machine), and checks the output the device wrote while
 * consuming chunk k:
 *   - exactly one response per frame that must be answered (every good
 *     request; damaged frames with a header and version byte 1), none for
 *     anything else, in order, nothing else on the wire;
 *   - each response is 0x00 + the canonical COBS encoding of a frame + 0x00,
 *     at most SD_PROTO_MAX_FRAME decoded bytes, accepted by the firmware's
 *     own decoder (SD_FRAME_OK) and by the harness's decoder, CRC valid;
 *   - version SD_PROTO_VERSION, the request's seq, type = request | 0x80 or ERROR with the
 *     request's type byte and the error code the spec predicts;
 *   - payload sizes and contents per message: PING echoes, INFO fields and
 *     hashes, STATS counters (bytes up to its delimiter, frames by outcome,
 *     counted by the harness from the stream; the port's drops and window), AUDIO acks (clip id, samples received), CLASSIFY / INFER
 *     (label = first argmax of the scores, flags, sample count, replayed
 *     answers identical to the cached one), ERROR text printable, <= 64 B.
 * A failed check prints what differs and aborts, so libFuzzer records the
 * input as a crash. ASan and UBSan (-fno-sanitize-recover=all) catch memory
 * errors and undefined behaviour in everything linked in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sd_frontend_config.h" /* SD_SAMPLE_RATE, SD_FRONTEND_CONFIG_SHA256 */
#include "sd_model.h"           /* SD_MODEL_SHA256 (generated sd_model_graph.h) */
#include "sd_port.h"
#include "sd_protocol.h"
#include "sd_stream_config.h" /* SD_STREAM_CONFIG_SHA256 */
#include "../test_le.h" /* rd16 ... wr32, independent of src/sd_le.h */

int sd_app_main(void); /* src/sd_app.c's main(), renamed with -Dmain=sd_app_main */

#ifndef FUZZ_STUBS
#define FUZZ_STUBS 0
#endif

#define FUZZ_BOARD "fuzz"
#define FUZZ_COST_UNIT "ticks"
#define FUZZ_ENC_CAP (1u << 20) /* encoded bytes kept per frame (inputs are smaller) */
#define FUZZ_OUT_CAP (64u * 1024u)
#define FUZZ_RX_BUFFER 16u /* the receive window and high water the harness's port reports */
/* CLASSIFY answer: clip u32, label u8, flags u8, samples u32, 3 x cost u64, then the input CRC-32 */
#define CLASSIFY_CRC_AT (4u + 1u + 1u + 4u + 3u * 8u)

/* ---- failure reporting ------------------------------------------------------ */

static void fuzz_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\nfuzz_protocol: ORACLE FAILURE at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                   \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fuzz_fail(__FILE__, __LINE__, __VA_ARGS__);                         \
        }                                                                       \
    } while (0)

/* ---- independent helpers (from docs/protocol.md, not from sd_frame.c) ------ */

/* CRC-32/IEEE, one bit at a time. */
static uint32_t ref_crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
        }
    }
    return ~c;
}

/* COBS-decodes enc[0..n) (no delimiter) into out[0..cap). Returns the number
 * of decoded bytes, counting those past cap; *truncated = 1 when the data ends
 * inside a block. */
static size_t ref_cobs_decode(const uint8_t *enc, size_t n, uint8_t *out, size_t cap, int *truncated)
{
    size_t pos = 0;
    size_t len = 0;
    *truncated = 0;
    while (pos < n) {
        const uint8_t code = enc[pos++];
        for (unsigned k = 1; k < code; k++) {
            if (pos >= n) {
                *truncated = 1;
                return len;
            }
            if (len < cap) {
                out[len] = enc[pos];
            }
            len++;
            pos++;
        }
        if (code != 0xFFu && pos < n) {
            if (len < cap) {
                out[len] = 0;
            }
            len++;
        }
    }
    return len;
}

/* Canonical COBS encoding (the form both sides send); returns its length. */
static size_t ref_cobs_encode(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t o = 0;
    size_t pos = 0;
    for (;;) {
        size_t run = 0;
        while (run < 254u && pos + run < n && in[pos + run] != 0) {
            run++;
        }
        out[o++] = (uint8_t)(run + 1u);
        memcpy(&out[o], &in[pos], run);
        o += run;
        pos += run;
        if (pos >= n) {
            return o;
        }
        if (run < 254u) {
            pos++;
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* The 32 bytes INFO must report for a hex string: zeros from the first bad digit. */
static void expected_sha(const char *hex, uint8_t out[32])
{
    memset(out, 0, 32);
    const size_t n = strlen(hex);
    for (size_t i = 0; i < 32u && 2u * i + 1u < n; i++) {
        const int hi = hexval(hex[2u * i]);
        const int lo = hexval(hex[2u * i + 1u]);
        if (hi < 0 || lo < 0) {
            break;
        }
        out[i] = (uint8_t)(hi * 16 + lo);
    }
}

/* ---- harness state ------------------------------------------------------------ */

typedef struct {
    /* the input stream and the chunk the device consumed last */
    const uint8_t *data;
    size_t size;
    size_t pos;
    size_t chunk_start;
    size_t chunk_len;
    uint32_t rng;
    int zero_reads; /* consecutive reads that returned nothing */
    int ports_inited;
    /* the device's output since the last check (in g_out) */
    size_t out_len;
    int out_overflow;
    uint64_t cost;
    jmp_buf done;
    /* the harness's frame decoder: encoded bytes since the last delimiter */
    size_t enc_len; /* may exceed FUZZ_ENC_CAP; bytes past it are not kept */
    /* the harness's model of the device state */
    int clip_open;
    uint32_t clip_id;
    uint32_t received;
    int replay_valid;
    uint16_t replay_seq;
    uint8_t replay[SD_CLASSIFY_RSP_FIXED];
    /* the input tensor the device holds, as far as its answers showed it:
     * tensor_known[i] says tensor[i] is known (CLASSIFY with features,
     * FEATURES parts, TENSOR parts); audio pushed to the front end and a
     * CLASSIFY make it unknown again */
    uint8_t tensor[SD_PROTO_INPUT_SIZE];
    uint8_t tensor_known[SD_PROTO_INPUT_SIZE];
    /* the open stream (STREAM): 0 none, 1 open, 2 ended */
    int s_state;
    uint32_t s_id;
    uint64_t s_received;
    uint32_t s_last_n;
    uint8_t s_last_flags;
    uint32_t s_events; /* events decided since BEGIN, as the acks reported them */
    uint32_t s_lost;
    size_t s_ack_len; /* the last new chunk's ack, for a replayed one */
    uint8_t s_ack[SD_STREAM_RSP_FIXED + SD_STREAM_QUEUE * SD_STREAM_EVENT_SIZE];
    /* the device's receive counters (STATS), as the spec defines them */
    uint32_t stat_rx;        /* stream bytes up to and including the current delimiter */
    uint32_t stat_ok;        /* frames that passed the checks */
    uint32_t stat_crc;       /* damaged: BAD_CRC */
    uint32_t stat_frame;     /* damaged: BAD_FRAME */
    uint32_t stat_too_large; /* damaged: TOO_LARGE */
} harness_t;

static harness_t g;
static uint8_t g_out[FUZZ_OUT_CAP];
static uint8_t g_enc[FUZZ_ENC_CAP];
static uint8_t g_req[SD_PROTO_MAX_FRAME + 16u];
static uint8_t g_rsp[SD_PROTO_MAX_FRAME + 16u];
static uint8_t g_tmp[2u * SD_PROTO_MAX_FRAME];

/* What the spec says must come back for one frame. */
typedef struct {
    int respond;     /* 0: no response at all */
    uint8_t type;    /* expected response type if OK; ERROR otherwise */
    uint8_t error;   /* expected error code (when type is ERROR) */
    uint8_t req_type;
    uint16_t seq;
    int stream_replay; /* STREAM: the last chunk again */
    int stream_begin;  /* STREAM: a BEGIN chunk */
} expect_t;

/* ---- response parsing --------------------------------------------------------- */

static size_t g_rsp_pos; /* read position in g.out */

/* Takes the next response from the device's output; checks framing, returns
 * the decoded frame length (frame in g_rsp). */
static size_t next_response(void)
{
    FUZZ_CHECK(!g.out_overflow, "more than %u bytes of output for one chunk", FUZZ_OUT_CAP);
    FUZZ_CHECK(g_rsp_pos < g.out_len, "a response is missing (output ended at %zu bytes)", g.out_len);
    FUZZ_CHECK(g_out[g_rsp_pos] == 0x00u, "response does not start with a 0x00 delimiter");
    size_t start = g_rsp_pos + 1u;
    size_t end = start;
    while (end < g.out_len && g_out[end] != 0x00u) {
        end++;
    }
    FUZZ_CHECK(end < g.out_len, "response has no closing 0x00");
    const size_t enc_n = end - start;
    FUZZ_CHECK(enc_n >= 1u && enc_n <= SD_PROTO_MAX_FRAME + SD_PROTO_MAX_FRAME / 254u + 1u,
               "encoded response of %zu bytes is outside the COBS bound", enc_n);
    int truncated = 0;
    const size_t n = ref_cobs_decode(&g_out[start], enc_n, g_rsp, sizeof g_rsp, &truncated);
    FUZZ_CHECK(!truncated, "response COBS is truncated");
    FUZZ_CHECK(n >= SD_PROTO_HEADER_SIZE + SD_PROTO_CRC_SIZE && n <= SD_PROTO_MAX_FRAME,
               "response frame of %zu bytes", n);
    FUZZ_CHECK(enc_n <= n + 1u + n / 254u, "COBS overhead too large: %zu for %zu", enc_n, n);
    /* canonical encoding: exactly what the spec's encoder produces */
    const size_t canon = ref_cobs_encode(g_rsp, n, g_tmp);
    FUZZ_CHECK(canon == enc_n && memcmp(g_tmp, &g_out[start], enc_n) == 0,
               "response is not the canonical COBS encoding of its frame");
    FUZZ_CHECK(ref_crc32(g_rsp, n - 4u) == rd32(&g_rsp[n - 4u]), "response CRC mismatch");
    FUZZ_CHECK(rd16(&g_rsp[4]) == n - 10u, "response length field %u, frame %zu", rd16(&g_rsp[4]), n);
    FUZZ_CHECK(g_rsp[0] == SD_PROTO_VERSION, "response version %u", g_rsp[0]);
    /* the firmware's own decoder must accept it too, as one frame */
    static uint8_t dbuf[SD_PROTO_MAX_FRAME];
    sd_frame_decoder_t dec;
    sd_frame_t f;
    sd_frame_decoder_init(&dec, dbuf, sizeof dbuf);
    int events = 0;
    for (size_t i = g_rsp_pos; i <= end; i++) {
        const sd_frame_event_t ev = sd_frame_feed(&dec, g_out[i], &f);
        if (ev != SD_FRAME_NONE) {
            events++;
            FUZZ_CHECK(ev == SD_FRAME_OK, "sd_frame_feed rejects a response (error %u)", f.error);
            FUZZ_CHECK(f.payload_len == n - 10u && memcmp(dbuf, g_rsp, n) == 0,
                       "sd_frame_feed decodes a response differently");
        }
    }
    FUZZ_CHECK(events == 1, "%d frames in one response", events);
    g_rsp_pos = end + 1u;
    return n;
}

static void check_error_text(const uint8_t *pl, size_t plen)
{
    FUZZ_CHECK(plen >= 3u && plen <= 2u + SD_PROTO_MAX_TEXT, "ERROR payload of %zu bytes", plen);
    for (size_t i = 2; i < plen; i++) {
        FUZZ_CHECK(pl[i] >= 0x20u && pl[i] < 0x7Fu, "ERROR text byte 0x%02x", pl[i]);
    }
}

static uint8_t first_argmax(const uint8_t *scores)
{
    size_t best = 0;
    for (size_t i = 1; i < SD_PROTO_OUTPUT_SIZE; i++) {
        if ((int8_t)scores[i] > (int8_t)scores[best]) {
            best = i;
        }
    }
    return (uint8_t)best;
}

static size_t put_expected_string(uint8_t *dst, const char *s)
{
    const size_t n = strlen(s) > SD_PROTO_MAX_STRING ? SD_PROTO_MAX_STRING : strlen(s);
    dst[0] = (uint8_t)n;
    memcpy(&dst[1], s, n);
    return n + 1u;
}

/* ---- the spec's request rules (for a good frame in g_req, n bytes) ----------- */

/* Predicts the response of a good request; updates the state that does not
 * depend on the device's answer. Returns the expected response type/error. */
static expect_t predict(size_t n)
{
    expect_t e;
    const uint8_t *pl = &g_req[SD_PROTO_HEADER_SIZE];
    const size_t len = n - 10u;
    e.respond = 1;
    e.req_type = g_req[1];
    e.seq = rd16(&g_req[2]);
    e.type = (uint8_t)(g_req[1] | SD_MSG_RESPONSE);
    e.error = SD_ERR_NONE;
    e.stream_replay = 0;
    e.stream_begin = 0;
#define FAIL_WITH(code)                                                         \
    do {                                                                        \
        e.type = SD_MSG_ERROR;                                                  \
        e.error = (code);                                                       \
        return e;                                                               \
    } while (0)
    if (g_req[0] != SD_PROTO_VERSION) {
        FAIL_WITH(SD_ERR_BAD_VERSION);
    }
    switch (g_req[1]) {
    case SD_MSG_PING:
        return e;
    case SD_MSG_INFO:
        if (len != 0u) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        return e;
    case SD_MSG_STATS:
        if (len != 0u) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        return e;
    case SD_MSG_RESET:
        if (len != 0u) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        g.clip_open = 0;
        g.replay_valid = 0;
        g.s_state = 0;
        return e;
    case SD_MSG_STREAM: {
        if (len < SD_STREAM_REQ_FIXED) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        const uint32_t id = rd32(&pl[0]);
        const uint64_t offset = rd64(&pl[4]);
        const uint8_t flags = pl[12];
        const uint32_t count = rd16(&pl[14]);
        if ((flags & ~7u) != 0u || pl[13] != 0u) {
            FAIL_WITH(SD_ERR_BAD_ARGUMENT);
        }
        if (count > SD_PROTO_MAX_SAMPLES) {
            FAIL_WITH(SD_ERR_TOO_LARGE);
        }
        if (len != SD_STREAM_REQ_FIXED + ((flags & 4u) ? 1u : 2u) * count) { /* bit 2: mu-law bytes */
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        if (flags & 1u) {
            if (offset != 0u) {
                FAIL_WITH(SD_ERR_BAD_ARGUMENT);
            }
            g.s_state = 1;
            g.s_id = id;
            g.s_received = 0;
            g.s_events = 0;
            g.s_lost = 0;
            g.clip_open = 0;
            g.replay_valid = 0;
            e.stream_begin = 1;
        } else if (g.s_state == 0) {
            FAIL_WITH(SD_ERR_NO_CLIP);
        } else if (id != g.s_id) {
            FAIL_WITH(SD_ERR_CLIP_MISMATCH);
        }
        if (!(flags & 1u) && count == g.s_last_n && offset <= g.s_received && g.s_received - offset == count &&
            ((flags ^ g.s_last_flags) & 2u) == 0u) {
            e.stream_replay = 1;
        } else if (offset == g.s_received && g.s_state == 1) {
            memset(g.tensor_known, 0, sizeof g.tensor_known); /* the detector's windows go there */
            g.s_received += count;
            g.s_last_n = count;
            g.s_last_flags = flags;
            if (flags & 2u) {
                g.s_state = 2;
            }
        } else {
            FAIL_WITH(SD_ERR_SEQUENCE);
        }
        return e;
    }
    case SD_MSG_AUDIO: {
        if (len < 12u) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        const uint32_t clip = rd32(&pl[0]);
        const uint32_t offset = rd32(&pl[4]);
        const uint32_t count = rd16(&pl[10]);
        if ((pl[8] & ~1u) != 0u || pl[9] != 0u) {
            FAIL_WITH(SD_ERR_BAD_ARGUMENT);
        }
        if (count > SD_PROTO_MAX_SAMPLES) {
            FAIL_WITH(SD_ERR_TOO_LARGE);
        }
        if (len != 12u + 2u * count) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        if (pl[8] & 1u) {
            if (offset != 0u) {
                FAIL_WITH(SD_ERR_BAD_ARGUMENT);
            }
            g.clip_open = 1;
            g.clip_id = clip;
            g.received = 0;
            g.replay_valid = 0;
            g.s_state = 0;
        } else if (!g.clip_open) {
            FAIL_WITH(SD_ERR_NO_CLIP);
        } else if (clip != g.clip_id) {
            FAIL_WITH(SD_ERR_CLIP_MISMATCH);
        }
        if (offset == g.received) {
            if ((uint64_t)g.received + count > 0xFFFFFFFFu) {
                FAIL_WITH(SD_ERR_TOO_LARGE);
            }
            memset(g.tensor_known, 0, sizeof g.tensor_known); /* the window rule saves windows there */
            g.received += count;
        } else if (!(count > 0u && (uint64_t)offset + count == g.received)) {
            FAIL_WITH(SD_ERR_SEQUENCE);
        }
        return e;
    }
    case SD_MSG_CLASSIFY: {
        if (len != SD_CLASSIFY_REQ_SIZE) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        if ((pl[4] & ~1u) != 0u || pl[5] != 0u) {
            FAIL_WITH(SD_ERR_BAD_ARGUMENT);
        }
        const uint32_t clip = rd32(&pl[0]);
        if (!g.clip_open) {
            if (g.replay_valid && g.replay_seq == e.seq && rd32(&g.replay[0]) == clip) {
                return e; /* replayed */
            }
            FAIL_WITH(SD_ERR_NO_CLIP);
        }
        if (clip != g.clip_id) {
            FAIL_WITH(SD_ERR_CLIP_MISMATCH);
        }
        return e; /* state changes after the answer is seen (check_classify) */
    }
    case SD_MSG_INFER:
        if (len != SD_PROTO_INPUT_SIZE && len != 0u) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        return e;
    case SD_MSG_FEATURES:
        if (len != SD_FEATURES_REQ_SIZE) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        if ((uint32_t)rd16(&pl[4]) + rd16(&pl[6]) > SD_PROTO_INPUT_SIZE) {
            FAIL_WITH(SD_ERR_BAD_ARGUMENT);
        }
        if (!g.replay_valid || rd32(&g.replay[0]) != rd32(&pl[0])) {
            FAIL_WITH(SD_ERR_NO_CLIP);
        }
        return e;
    case SD_MSG_TENSOR: {
        if (len < SD_TENSOR_REQ_FIXED || len != SD_TENSOR_REQ_FIXED + rd16(&pl[2])) {
            FAIL_WITH(SD_ERR_BAD_LENGTH);
        }
        const uint32_t off = rd16(&pl[0]);
        const uint32_t cnt = rd16(&pl[2]);
        if (off + cnt > SD_PROTO_INPUT_SIZE) {
            FAIL_WITH(SD_ERR_BAD_ARGUMENT);
        }
        g.clip_open = 0;
        g.replay_valid = 0;
        g.s_state = 0;
        memcpy(&g.tensor[off], &pl[SD_TENSOR_REQ_FIXED], cnt);
        memset(&g.tensor_known[off], 1, cnt);
        return e;
    }
    default:
        FAIL_WITH(SD_ERR_UNKNOWN_TYPE);
    }
#undef FAIL_WITH
}

static void check_info(const uint8_t *pl, size_t plen)
{
    static uint8_t want[SD_INFO_RSP_FIXED + 3u * (1u + SD_PROTO_MAX_STRING)];
    memset(want, 0, sizeof want);
    want[0] = SD_PROTO_VERSION;
    want[1] = (uint8_t)SD_FRONTEND_VERSION; /* the front end's version (0, reserved, before v2) */
    want[2] = (uint8_t)(SD_PROTO_MAX_PAYLOAD & 0xFFu);
    want[3] = (uint8_t)(SD_PROTO_MAX_PAYLOAD >> 8);
    want[4] = (uint8_t)(SD_PROTO_MAX_SAMPLES & 0xFFu);
    want[5] = (uint8_t)(SD_PROTO_MAX_SAMPLES >> 8);
    want[6] = (uint8_t)(SD_PROTO_INPUT_SIZE & 0xFFu);
    want[7] = (uint8_t)(SD_PROTO_INPUT_SIZE >> 8);
    want[8] = (uint8_t)SD_PROTO_OUTPUT_SIZE;
    const uint32_t rate = (uint32_t)SD_SAMPLE_RATE;
    for (int i = 0; i < 4; i++) {
        want[10 + i] = (uint8_t)(rate >> (8 * i));
    }
    expected_sha(SD_MODEL_SHA256, &want[14]);
    expected_sha(SD_FRONTEND_CONFIG_SHA256, &want[46]);
    expected_sha(SD_STREAM_CONFIG_SHA256, &want[78]);
    expected_sha(SD_LABELS_SHA256, &want[110]);
    size_t k = SD_INFO_RSP_FIXED;
    k += put_expected_string(&want[k], SD_FIRMWARE_VERSION);
    k += put_expected_string(&want[k], FUZZ_BOARD);
    k += put_expected_string(&want[k], FUZZ_COST_UNIT);
    FUZZ_CHECK(plen == k && memcmp(pl, want, k) == 0, "INFO payload differs from the expected %zu bytes", k);
}

static void check_classify(const expect_t *e, const uint8_t *pl, size_t plen)
{
    const uint8_t *req = &g_req[SD_PROTO_HEADER_SIZE];
    const uint32_t clip = rd32(&req[0]);
    const int want_features = (req[4] & SD_CLASSIFY_WANT_FEATURES) != 0u;
    if (!g.clip_open) { /* predicted a replay */
        FUZZ_CHECK(plen == SD_CLASSIFY_RSP_FIXED, "replayed CLASSIFY of %zu bytes", plen);
        FUZZ_CHECK(pl[5] == SD_RESULT_REPLAYED, "replayed CLASSIFY flags 0x%02x", pl[5]);
        FUZZ_CHECK(memcmp(pl, g.replay, 5) == 0 && memcmp(&pl[6], &g.replay[6], SD_CLASSIFY_RSP_FIXED - 6u) == 0,
                   "replayed CLASSIFY differs from the first answer");
        return;
    }
    /* the clip is closed by a CLASSIFY that reaches the front end, which
     * computes a new input tensor */
    g.clip_open = 0;
    g.replay_valid = 0;
    memset(g.tensor_known, 0, sizeof g.tensor_known);
    if (e->type == SD_MSG_ERROR) {
        return;
    }
    FUZZ_CHECK(plen == SD_CLASSIFY_RSP_FIXED + (want_features ? SD_PROTO_INPUT_SIZE : 0u),
               "CLASSIFY response of %zu bytes", plen);
    if (want_features) {
        FUZZ_CHECK(ref_crc32(&pl[SD_CLASSIFY_RSP_FIXED], SD_PROTO_INPUT_SIZE) == rd32(&pl[CLASSIFY_CRC_AT]),
                   "CLASSIFY input CRC-32 does not match its features");
        memcpy(g.tensor, &pl[SD_CLASSIFY_RSP_FIXED], SD_PROTO_INPUT_SIZE);
        memset(g.tensor_known, 1, sizeof g.tensor_known);
    }
    FUZZ_CHECK(rd32(&pl[0]) == clip, "CLASSIFY clip id");
    FUZZ_CHECK(pl[4] == first_argmax(&pl[SD_CLASSIFY_RSP_HEAD]), "CLASSIFY label %u is not the first argmax", pl[4]);
    FUZZ_CHECK(pl[5] == (want_features ? SD_RESULT_FEATURES : 0u), "CLASSIFY flags 0x%02x", pl[5]);
    FUZZ_CHECK(rd32(&pl[6]) == g.received, "CLASSIFY sample count %u, %u were sent", rd32(&pl[6]), g.received);
    memcpy(g.replay, pl, SD_CLASSIFY_RSP_FIXED);
    g.replay_seq = e->seq;
    g.replay_valid = 1;
}

/* A STREAM ack: ids and counts as predicted, events well formed (label = the
 * first argmax when it leads the runner-up by SD_STREAM_REJECT_MARGIN, else
 * rejected; first <= last sample < samples received), events counted without
 * a gap, none lost with the real components; a replay repeats the last ack. */
static void check_stream(const expect_t *e, const uint8_t *pl, size_t plen)
{
    FUZZ_CHECK(plen >= SD_STREAM_RSP_FIXED, "STREAM response of %zu bytes", plen);
    const uint32_t count = pl[17];
    FUZZ_CHECK(count <= SD_STREAM_QUEUE && plen == SD_STREAM_RSP_FIXED + count * SD_STREAM_EVENT_SIZE,
               "STREAM response of %zu bytes with %u events", plen, count);
    FUZZ_CHECK(rd32(&pl[0]) == g.s_id && rd64(&pl[4]) == g.s_received, "STREAM ack (stream %u, received %llu), "
               "expected (%u, %llu)", rd32(&pl[0]), (unsigned long long)rd64(&pl[4]), g.s_id,
               (unsigned long long)g.s_received);
    const uint8_t want_flags = (uint8_t)((e->stream_replay ? SD_STREAM_REPLAYED : 0u) | (g.s_state == 2 ? SD_STREAM_ENDED : 0u));
    FUZZ_CHECK(pl[16] == want_flags, "STREAM flags 0x%02x, expected 0x%02x", pl[16], want_flags);
    const uint64_t frames = g.s_received / 256u - (g.s_received - g.s_last_n) / 256u;
    FUZZ_CHECK(rd16(&pl[18]) == frames, "STREAM frames %u, expected %llu", rd16(&pl[18]), (unsigned long long)frames);
    if (e->stream_replay) {
        FUZZ_CHECK(plen == g.s_ack_len && memcmp(pl, g.s_ack, 16) == 0 &&
                   memcmp(&pl[17], &g.s_ack[17], plen - 17u) == 0, "replayed STREAM ack differs from the first");
        return;
    }
    const uint32_t lost = rd16(&pl[20]);
    FUZZ_CHECK(FUZZ_STUBS || lost == 0u, "STREAM lost %u events", lost);
    FUZZ_CHECK(lost >= g.s_lost, "STREAM lost count went down");
    FUZZ_CHECK(rd32(&pl[12]) == g.s_events + count + (lost - g.s_lost), "STREAM events %u, expected %u + %u + %u",
               rd32(&pl[12]), g.s_events, count, lost - g.s_lost);
    g.s_events = rd32(&pl[12]);
    g.s_lost = lost;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *ev = &pl[SD_STREAM_RSP_FIXED + i * SD_STREAM_EVENT_SIZE];
        const uint8_t *out = &ev[SD_STREAM_EVENT_HEAD];
        const uint8_t top = first_argmax(out);
        int runner = -1000;
        for (uint32_t k = 0; k < SD_PROTO_OUTPUT_SIZE; k++) {
            if (k != top && (int8_t)out[k] > runner) {
                runner = (int8_t)out[k];
            }
        }
        const uint8_t want = ((int8_t)out[top] - runner < 64) ? SD_STREAM_REJECTED : top;
        FUZZ_CHECK(ev[0] == want, "STREAM event label %u, expected %u", ev[0], want);
        FUZZ_CHECK(rd64(&ev[1]) <= rd64(&ev[9]) && rd64(&ev[9]) < g.s_received, "STREAM event samples %llu..%llu",
                   (unsigned long long)rd64(&ev[1]), (unsigned long long)rd64(&ev[9]));
    }
    memcpy(g.s_ack, pl, plen);
    g.s_ack_len = plen;
}

/* Checks the device's response to one frame against the expectation. */
static void check_response(const expect_t *e, size_t req_n)
{
    const size_t n = next_response();
    const uint8_t type = g_rsp[1];
    const uint16_t seq = rd16(&g_rsp[2]);
    const uint8_t *pl = &g_rsp[SD_PROTO_HEADER_SIZE];
    const size_t plen = n - 10u;
    FUZZ_CHECK(seq == e->seq, "response seq %u, request seq %u", seq, e->seq);
    int model_error = 0;
    if (type == SD_MSG_ERROR && e->type != SD_MSG_ERROR && plen >= 1u && pl[0] == SD_ERR_MODEL &&
        (e->req_type == SD_MSG_CLASSIFY || e->req_type == SD_MSG_INFER)) {
        /* sd_model_invoke failed: allowed only with the stub model, which
         * fails on purpose for inputs starting with 7f 7f 7f 7f. */
        FUZZ_CHECK(FUZZ_STUBS, "the real model failed (ERROR MODEL)");
        model_error = 1;
    }
    if (!model_error) {
        FUZZ_CHECK(type == e->type, "response type 0x%02x, expected 0x%02x (error %u) for request type 0x%02x",
                   type, e->type, e->error, e->req_type);
    }
    if (type == SD_MSG_ERROR) {
        check_error_text(pl, plen);
        FUZZ_CHECK(model_error || pl[0] == e->error, "ERROR code %u, expected %u (request type 0x%02x)", pl[0],
                   e->error, e->req_type);
        FUZZ_CHECK(pl[1] == e->req_type, "ERROR names request type 0x%02x, expected 0x%02x", pl[1], e->req_type);
        if (e->error != SD_ERR_NONE && e->error <= SD_ERR_TOO_LARGE && req_n == 0u) {
            return; /* a damaged frame: nothing else to check */
        }
        if (e->req_type == SD_MSG_CLASSIFY && (model_error || e->error == SD_ERR_NONE)) {
            check_classify(e, pl, plen);
        }
        return;
    }
    const uint8_t *req = &g_req[SD_PROTO_HEADER_SIZE];
    const size_t req_len = req_n - 10u;
    switch (e->req_type) {
    case SD_MSG_PING:
        FUZZ_CHECK(plen == req_len && memcmp(pl, req, plen) == 0, "PING does not echo its payload");
        break;
    case SD_MSG_INFO:
        check_info(pl, plen);
        break;
    case SD_MSG_RESET:
        FUZZ_CHECK(plen == 0u, "RESET response of %zu bytes", plen);
        break;
    case SD_MSG_STATS:
        FUZZ_CHECK(plen == SD_STATS_RSP_SIZE, "STATS response of %zu bytes", plen);
        FUZZ_CHECK(rd32(&pl[0]) == g.stat_rx, "STATS bytes received %u, expected %u", rd32(&pl[0]), g.stat_rx);
        FUZZ_CHECK(rd32(&pl[4]) == 0u, "STATS dropped %u: the harness drops nothing", rd32(&pl[4]));
        FUZZ_CHECK(rd32(&pl[8]) == g.stat_ok, "STATS frames ok %u, expected %u", rd32(&pl[8]), g.stat_ok);
        FUZZ_CHECK(rd32(&pl[12]) == g.stat_crc && rd32(&pl[16]) == g.stat_frame && rd32(&pl[20]) == g.stat_too_large,
                   "STATS damaged crc/frame/too large %u/%u/%u, expected %u/%u/%u", rd32(&pl[12]), rd32(&pl[16]),
                   rd32(&pl[20]), g.stat_crc, g.stat_frame, g.stat_too_large);
        FUZZ_CHECK(rd16(&pl[24]) == FUZZ_RX_BUFFER && rd16(&pl[26]) == FUZZ_RX_BUFFER,
                   "STATS window %u / high water %u, the port says %u", rd16(&pl[24]), rd16(&pl[26]), FUZZ_RX_BUFFER);
        break;
    case SD_MSG_AUDIO:
        FUZZ_CHECK(plen == SD_AUDIO_RSP_SIZE, "AUDIO response of %zu bytes", plen);
        FUZZ_CHECK(rd32(&pl[0]) == g.clip_id && rd32(&pl[4]) == g.received,
                   "AUDIO ack (clip %u, received %u), expected (%u, %u)", rd32(&pl[0]), rd32(&pl[4]), g.clip_id,
                   g.received);
        break;
    case SD_MSG_CLASSIFY:
        check_classify(e, pl, plen);
        break;
    case SD_MSG_STREAM:
        check_stream(e, pl, plen);
        break;
    case SD_MSG_INFER: {
        FUZZ_CHECK(plen == SD_INFER_RSP_SIZE, "INFER response of %zu bytes", plen);
        FUZZ_CHECK(pl[0] == first_argmax(&pl[SD_INFER_RSP_HEAD]), "INFER label %u is not the first argmax", pl[0]);
        FUZZ_CHECK(pl[1] == 0u && rd64(&pl[2]) == 0u, "INFER flags / front-end cost not 0");
        int known = 1;
        for (size_t i = 0; i < SD_PROTO_INPUT_SIZE; i++) {
            known &= g.tensor_known[i];
        }
        if (req_len != 0u) {
            FUZZ_CHECK(rd32(&pl[26]) == ref_crc32(req, req_len), "INFER input CRC-32 is not its payload's");
        } else if (known) {
            FUZZ_CHECK(rd32(&pl[26]) == ref_crc32(g.tensor, SD_PROTO_INPUT_SIZE),
                       "INFER on the held tensor: CRC-32 is not the tensor's");
        }
        break;
    }
    case SD_MSG_FEATURES: {
        const uint32_t off = rd16(&req[4]);
        const uint32_t cnt = rd16(&req[6]);
        FUZZ_CHECK(plen == SD_FEATURES_REQ_SIZE + cnt && memcmp(pl, req, SD_FEATURES_REQ_SIZE) == 0,
                   "FEATURES response of %zu bytes does not repeat its request", plen);
        for (uint32_t i = 0; i < cnt; i++) {
            FUZZ_CHECK(!g.tensor_known[off + i] || g.tensor[off + i] == pl[SD_FEATURES_REQ_SIZE + i],
                       "FEATURES byte %u differs from what the device showed before", off + i);
            g.tensor[off + i] = pl[SD_FEATURES_REQ_SIZE + i];
            g.tensor_known[off + i] = 1u;
        }
        if (off == 0u && cnt == SD_PROTO_INPUT_SIZE) {
            FUZZ_CHECK(ref_crc32(&pl[SD_FEATURES_REQ_SIZE], cnt) == rd32(&g.replay[CLASSIFY_CRC_AT]),
                       "FEATURES tensor does not match the CLASSIFY CRC-32");
        }
        break;
    }
    case SD_MSG_TENSOR:
        FUZZ_CHECK(plen == SD_TENSOR_REQ_FIXED && memcmp(pl, req, SD_TENSOR_REQ_FIXED) == 0,
                   "TENSOR response does not repeat the request's offset and n");
        break;
    default:
        FUZZ_CHECK(0, "response 0x%02x to unknown request type 0x%02x", type, e->req_type);
    }
}

/* A delimiter ended a non-empty frame of g.enc_len encoded bytes. */
static void frame_ended(void)
{
    int truncated = 0;
    size_t kept = g.enc_len < FUZZ_ENC_CAP ? g.enc_len : FUZZ_ENC_CAP;
    size_t n = ref_cobs_decode(g_enc, kept, g_req, sizeof g_req, &truncated);
    if (g.enc_len > kept) {
        n = SD_PROTO_MAX_FRAME + 1u; /* over 1 MB encoded: certainly too large */
    }
    expect_t e;
    memset(&e, 0, sizeof e);
    uint8_t damage = SD_ERR_NONE;
    if (n > SD_PROTO_MAX_FRAME) {
        damage = SD_ERR_TOO_LARGE;
    } else if (truncated || n < 10u) {
        damage = SD_ERR_BAD_FRAME;
    } else if (ref_crc32(g_req, n - 4u) != rd32(&g_req[n - 4u])) {
        damage = SD_ERR_BAD_CRC;
    } else if (rd16(&g_req[4]) != n - 10u) {
        damage = SD_ERR_BAD_FRAME;
    }
    if (damage == SD_ERR_TOO_LARGE) {
        g.stat_too_large++;
    } else if (damage == SD_ERR_BAD_CRC) {
        g.stat_crc++;
    } else if (damage == SD_ERR_BAD_FRAME) {
        g.stat_frame++;
    } else {
        g.stat_ok++;
    }
    if (damage != SD_ERR_NONE) {
        if (n < SD_PROTO_HEADER_SIZE || g_req[0] != SD_PROTO_VERSION) {
            return; /* line noise: no answer (checked: nothing extra on the wire) */
        }
        e.respond = 1;
        e.type = SD_MSG_ERROR;
        e.error = damage;
        e.req_type = g_req[1];
        e.seq = rd16(&g_req[2]);
        check_response(&e, 0u);
        return;
    }
    e = predict(n);
    check_response(&e, n);
}

/* Replays the last chunk through the model and checks the device's output. */
static void check_chunk(void)
{
    g_rsp_pos = 0;
    for (size_t i = 0; i < g.chunk_len; i++) {
        const uint8_t b = g.data[g.chunk_start + i];
        if (b != 0x00u) {
            if (g.enc_len < FUZZ_ENC_CAP) {
                g_enc[g.enc_len] = b;
            }
            g.enc_len++;
            continue;
        }
        if (g.enc_len > 0u) {
            g.stat_rx = (uint32_t)(g.chunk_start + i + 1u);
            frame_ended();
            g.enc_len = 0;
        }
    }
    FUZZ_CHECK(g_rsp_pos == g.out_len, "%zu unexpected bytes on the wire (device spoke unasked)",
               g.out_len - g_rsp_pos);
    g.out_len = 0;
    g.chunk_len = 0;
}

/* ---- the port (sd_port.h) ----------------------------------------------------- */

void sd_port_init(void)
{
    FUZZ_CHECK(!g.ports_inited, "sd_port_init called twice");
    g.ports_inited = 1;
}

size_t sd_port_read(uint8_t *buf, size_t max)
{
    FUZZ_CHECK(g.ports_inited, "sd_port_read before sd_port_init");
    check_chunk();
    if (g.pos >= g.size) {
        longjmp(g.done, 1);
    }
    g.rng = g.rng * 1103515245u + 12345u;
    const uint32_t r = g.rng >> 16;
    size_t n;
    if ((r & 7u) == 0u && g.zero_reads == 0) {
        n = 0; /* nothing arrived yet */
        g.zero_reads = 1;
    } else {
        n = 1u + (r >> 3) % (max > 0u ? max : 1u);
        g.zero_reads = 0;
    }
    if (n > max) {
        n = max;
    }
    if (n > g.size - g.pos) {
        n = g.size - g.pos;
    }
    memcpy(buf, &g.data[g.pos], n);
    g.chunk_start = g.pos;
    g.chunk_len = n;
    g.pos += n;
    return n;
}

/* The harness loses nothing; fixed numbers the oracle checks. */
void sd_port_rx_stats(sd_port_rx_stats_t *out)
{
    out->dropped = 0u;
    out->window = (uint16_t)FUZZ_RX_BUFFER;
    out->high_water = (uint16_t)FUZZ_RX_BUFFER;
}

void sd_port_write(const uint8_t *buf, size_t len)
{
    FUZZ_CHECK(buf != NULL || len == 0u, "sd_port_write(NULL, %zu)", len);
    if (g.out_len + len > sizeof g_out) {
        g.out_overflow = 1;
        return;
    }
    memcpy(&g_out[g.out_len], buf, len);
    g.out_len += len;
}

uint64_t sd_port_cost_now(void)
{
    return ++g.cost;
}

const char *sd_port_cost_unit(void)
{
    return FUZZ_COST_UNIT;
}

const char *sd_port_board_name(void)
{
    return FUZZ_BOARD;
}

void sd_port_exit(int code)
{
    fprintf(stderr, "fuzz_protocol: sd_port_exit(%d) called by the firmware\n", code);
    abort();
}

/* ---- structure-aware mutator ---------------------------------------------------- */

/* The input stays the raw byte stream; only the mutations know about frames.
 * A third of the time libFuzzer's own byte-level mutations run on the stream
 * (line damage, resynchronization). Otherwise one frame of the stream is
 * decoded, changed, given a correct length field and CRC (7 times in 8) and
 * encoded back; or frames are duplicated (retries), dropped, swapped, or a
 * fresh request is inserted. Without this, almost every mutated frame fails
 * its CRC and the request handler behind it is hardly reached. */

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

#define MUT_MAX_SEGS 512u
#define MUT_CAP (1u << 20)

static uint32_t g_mut_rng;
static uint8_t g_mut_out[MUT_CAP];
static uint8_t g_mut_frame[SD_PROTO_MAX_FRAME + 64u];
static uint8_t g_mut_enc[2u * (SD_PROTO_MAX_FRAME + 64u)];

static uint32_t mut_rand(uint32_t n)
{
    g_mut_rng ^= g_mut_rng << 13;
    g_mut_rng ^= g_mut_rng >> 17;
    g_mut_rng ^= g_mut_rng << 5;
    return n ? g_mut_rng % n : 0u;
}

/* Non-empty runs between delimiters: encoded frames. */
typedef struct {
    size_t start;
    size_t len;
} seg_t;

static size_t find_segments(const uint8_t *d, size_t n, seg_t *segs)
{
    size_t k = 0;
    size_t i = 0;
    while (i < n && k < MUT_MAX_SEGS) {
        while (i < n && d[i] == 0u) {
            i++;
        }
        const size_t s = i;
        while (i < n && d[i] != 0u) {
            i++;
        }
        if (i > s) {
            segs[k].start = s;
            segs[k].len = i - s;
            k++;
        }
    }
    return k;
}

/* Length field and CRC made right for a decoded frame of n >= 10 bytes. */
static void fix_frame(uint8_t *f, size_t n)
{
    wr16(&f[4], (uint32_t)(n - 10u));
    wr32(&f[n - 4u], ref_crc32(f, n - 4u));
}

/* A plausible request built from scratch (n returned, frame in f). Clip ids
 * and offsets come from the stream's AUDIO frames half of the time. */
static size_t synth_request(uint8_t *f, uint32_t clip_hint, uint32_t offset_hint)
{
    static const uint8_t types[] = {SD_MSG_PING, SD_MSG_INFO, SD_MSG_RESET, SD_MSG_STATS, SD_MSG_AUDIO,
                                    SD_MSG_AUDIO, SD_MSG_AUDIO, SD_MSG_CLASSIFY, SD_MSG_CLASSIFY,
                                    SD_MSG_INFER, SD_MSG_STREAM, SD_MSG_STREAM, SD_MSG_STREAM,
                                    SD_MSG_FEATURES, SD_MSG_FEATURES, SD_MSG_TENSOR, SD_MSG_TENSOR};
    uint8_t *pl = &f[SD_PROTO_HEADER_SIZE];
    size_t len = 0;
    f[0] = SD_PROTO_VERSION;
    f[1] = types[mut_rand(sizeof types)];
    wr16(&f[2], mut_rand(65536u));
    switch (f[1]) {
    case SD_MSG_PING:
        len = mut_rand(4u) == 0u ? mut_rand(SD_PROTO_MAX_PAYLOAD + 1u) : mut_rand(16u);
        for (size_t i = 0; i < len; i++) {
            pl[i] = (uint8_t)mut_rand(256u);
        }
        break;
    case SD_MSG_AUDIO: {
        static const uint32_t counts[] = {0u, 1u, 2u, 31u, 32u, 33u, 255u, 256u, 511u, 512u};
        const uint32_t count = mut_rand(2u) ? counts[mut_rand(10u)] : mut_rand(SD_PROTO_MAX_SAMPLES + 1u);
        const int begin = mut_rand(3u) == 0u;
        wr32(&pl[0], mut_rand(2u) ? clip_hint : mut_rand(4u));
        wr32(&pl[4], begin ? 0u : (mut_rand(4u) ? offset_hint : mut_rand(0xFFFFFFFFu)));
        pl[8] = begin ? SD_AUDIO_BEGIN : 0u;
        pl[9] = 0u;
        wr16(&pl[10], count);
        const int16_t amp = (int16_t)(mut_rand(4u) == 0u ? 32767 : mut_rand(20000u));
        for (uint32_t i = 0; i < count; i++) {
            const int16_t s = (int16_t)(mut_rand(2u) ? (int32_t)amp - (int32_t)mut_rand(2u * (uint32_t)amp + 1u)
                                                     : ((i & 8u) ? amp : -amp));
            wr16(&pl[12u + 2u * i], (uint16_t)s);
        }
        len = 12u + 2u * count;
        break;
    }
    case SD_MSG_STREAM: {
        const uint32_t count = mut_rand(2u) ? 512u : mut_rand(SD_PROTO_MAX_SAMPLES + 1u);
        const int begin = mut_rand(4u) == 0u;
        wr32(&pl[0], mut_rand(2u) ? clip_hint : mut_rand(4u));
        const uint64_t off = begin ? 0u : (mut_rand(4u) ? offset_hint : mut_rand(0xFFFFFFFFu));
        wr32(&pl[4], (uint32_t)off);
        wr32(&pl[8], 0u);
        const int mulaw = mut_rand(4u) == 0u;
        pl[12] = (uint8_t)((begin ? SD_STREAM_BEGIN : 0u) | (mut_rand(8u) == 0u ? SD_STREAM_END : 0u) |
                           (mulaw ? SD_STREAM_MULAW : 0u));
        pl[13] = 0u;
        wr16(&pl[14], count);
        const int16_t amp = (int16_t)(mut_rand(3u) == 0u ? 0 : 1000 + mut_rand(20000u));
        for (uint32_t i = 0; i < count; i++) {
            if (mulaw) {
                pl[16u + i] = (uint8_t)(((i / 9u) & 1u) ? 0x80u + mut_rand(16u) : mut_rand(16u));
            } else {
                wr16(&pl[16u + 2u * i], (uint16_t)(int16_t)(((i / 9u) & 1u) ? amp : -amp));
            }
        }
        len = 16u + (mulaw ? 1u : 2u) * count;
        break;
    }
    case SD_MSG_FEATURES: {
        const uint32_t off = mut_rand(8u) == 0u ? mut_rand(2000u) : mut_rand(SD_PROTO_INPUT_SIZE);
        wr32(&pl[0], clip_hint);
        wr16(&pl[4], off);
        wr16(&pl[6], mut_rand(2u) ? SD_PROTO_INPUT_SIZE - (off % SD_PROTO_INPUT_SIZE) : mut_rand(300u));
        len = SD_FEATURES_REQ_SIZE;
        break;
    }
    case SD_MSG_TENSOR: {
        const uint32_t off = mut_rand(2u) ? 0u : mut_rand(SD_PROTO_INPUT_SIZE);
        const uint32_t cnt = mut_rand(2u) ? SD_PROTO_INPUT_SIZE - off : mut_rand(SD_PROTO_INPUT_SIZE - off + 2u);
        wr16(&pl[0], off);
        wr16(&pl[2], cnt);
        for (uint32_t i = 0; i < cnt; i++) {
            pl[SD_TENSOR_REQ_FIXED + i] = (uint8_t)mut_rand(256u);
        }
        len = SD_TENSOR_REQ_FIXED + cnt;
        break;
    }
    case SD_MSG_CLASSIFY:
        wr32(&pl[0], clip_hint);
        pl[4] = (uint8_t)mut_rand(2u);
        pl[5] = 0u;
        len = 6u;
        break;
    case SD_MSG_INFER: {
        if (mut_rand(3u) == 0u) {
            break; /* empty: the held tensor */
        }
        const uint32_t style = mut_rand(4u);
        for (size_t i = 0; i < SD_PROTO_INPUT_SIZE; i++) {
            pl[i] = style == 0u ? (uint8_t)mut_rand(256u)
                  : style == 1u ? (uint8_t)((i & 1u) ? 0x7Fu : 0x80u)
                  : style == 2u ? (uint8_t)(i * 7u) : (uint8_t)(0x80u + mut_rand(40u));
        }
        len = SD_PROTO_INPUT_SIZE;
        break;
    }
    default:
        break; /* INFO, RESET: empty */
    }
    fix_frame(f, len + 10u);
    return len + 10u;
}

/* Appends [0x00 if lead] + COBS(frame) to out at *o (bounded by cap). */
static int put_frame(uint8_t *out, size_t *o, size_t cap, const uint8_t *f, size_t n, int lead)
{
    const size_t e = ref_cobs_encode(f, n, g_mut_enc);
    if (*o + (lead ? 1u : 0u) + e > cap) {
        return 0;
    }
    if (lead) {
        out[(*o)++] = 0u;
    }
    memcpy(&out[*o], g_mut_enc, e);
    *o += e;
    return 1;
}

static const uint8_t g_zero = 0u;

static int put_bytes(uint8_t *out, size_t *o, size_t cap, const uint8_t *b, size_t n)
{
    if (*o + n > cap) {
        return 0;
    }
    memcpy(&out[*o], b, n);
    *o += n;
    return 1;
}

static size_t mutate_structured(uint8_t *data, size_t size, size_t max_size)
{
    static seg_t segs[MUT_MAX_SEGS];
    const size_t nseg = find_segments(data, size, segs);
    const size_t cap = max_size < MUT_CAP ? max_size : MUT_CAP;
    size_t o = 0;
    /* hints for synthesized requests: a clip id and next offset from an AUDIO frame */
    uint32_t clip_hint = mut_rand(4u);
    uint32_t offset_hint = 0u;
    for (size_t k = 0; k < nseg; k++) {
        int tr = 0;
        const size_t n = ref_cobs_decode(&data[segs[k].start], segs[k].len, g_mut_frame, 32u, &tr);
        if (!tr && n >= 22u && g_mut_frame[1] == SD_MSG_AUDIO && mut_rand(2u)) {
            clip_hint = rd32(&g_mut_frame[6]);
            offset_hint = rd32(&g_mut_frame[10]) + rd16(&g_mut_frame[16]);
        }
        if (!tr && n >= 26u && g_mut_frame[1] == SD_MSG_STREAM && mut_rand(2u)) {
            clip_hint = rd32(&g_mut_frame[6]);
            offset_hint = rd32(&g_mut_frame[10]) + rd16(&g_mut_frame[20]);
        }
    }
    const uint32_t op = mut_rand(100u);
    const size_t pick = mut_rand((uint32_t)nseg);
    const size_t other = mut_rand((uint32_t)nseg);
    if (nseg == 0u || op < 15u) {
        /* insert a fresh request before segment `pick` (or at the end) */
        const size_t at = nseg ? segs[pick].start : size;
        const size_t n = synth_request(g_mut_frame, clip_hint, offset_hint);
        if (!put_bytes(g_mut_out, &o, cap, data, at) || !put_frame(g_mut_out, &o, cap, g_mut_frame, n, 1) ||
            !put_bytes(g_mut_out, &o, cap, &g_zero, 1u) ||
            !put_bytes(g_mut_out, &o, cap, &data[at], size - at)) {
            return 0;
        }
    } else if (op < 30u) {
        /* duplicate frame `pick` after frame `other` (a retry, maybe later) */
        const seg_t *a = &segs[pick];
        const size_t at = segs[other].start + segs[other].len;
        if (!put_bytes(g_mut_out, &o, cap, data, at) || !put_bytes(g_mut_out, &o, cap, &g_zero, 1u) ||
            !put_bytes(g_mut_out, &o, cap, &data[a->start], a->len) ||
            !put_bytes(g_mut_out, &o, cap, &g_zero, 1u) ||
            !put_bytes(g_mut_out, &o, cap, &data[at], size - at)) {
            return 0;
        }
    } else if (op < 38u) {
        /* drop frame `pick` */
        const seg_t *a = &segs[pick];
        if (!put_bytes(g_mut_out, &o, cap, data, a->start) ||
            !put_bytes(g_mut_out, &o, cap, &data[a->start + a->len], size - a->start - a->len)) {
            return 0;
        }
    } else if (op < 45u && nseg >= 2u) {
        /* swap frames `pick` and `other` */
        const seg_t *a = &segs[pick < other ? pick : other];
        const seg_t *b = &segs[pick < other ? other : pick];
        if (a == b) {
            return 0;
        }
        if (!put_bytes(g_mut_out, &o, cap, data, a->start) ||
            !put_bytes(g_mut_out, &o, cap, &data[b->start], b->len) ||
            !put_bytes(g_mut_out, &o, cap, &data[a->start + a->len], b->start - a->start - a->len) ||
            !put_bytes(g_mut_out, &o, cap, &data[a->start], a->len) ||
            !put_bytes(g_mut_out, &o, cap, &data[b->start + b->len], size - b->start - b->len)) {
            return 0;
        }
    } else {
        /* change frame `pick` inside, then (usually) repair length and CRC */
        const seg_t *a = &segs[pick];
        int tr = 0;
        size_t n = ref_cobs_decode(&data[a->start], a->len, g_mut_frame, sizeof g_mut_frame, &tr);
        if (tr || n > sizeof g_mut_frame) {
            return 0;
        }
        const uint32_t how = mut_rand(8u);
        if (how == 0u && n >= 2u) {
            static const uint8_t types[] = {1, 2, 3, 0x10, 0x11, 0x12, 0x13, 0x81, 0xFF, 0};
            g_mut_frame[1] = types[mut_rand(sizeof types)];
        } else if (how == 1u && n >= 4u) {
            wr16(&g_mut_frame[2], rd16(&g_mut_frame[2]) + mut_rand(3u) - 1u);
        } else if (how == 2u && n >= 22u && g_mut_frame[1] == SD_MSG_AUDIO) {
            const uint32_t cnt = rd16(&g_mut_frame[16]);
            const uint32_t r = mut_rand(4u);
            wr32(&g_mut_frame[10], r == 0u ? 0u : r == 1u ? offset_hint : rd32(&g_mut_frame[10]) + cnt);
            g_mut_frame[14] ^= (uint8_t)(mut_rand(2u) ? SD_AUDIO_BEGIN : 0u);
        } else {
            n = LLVMFuzzerMutate(g_mut_frame, n, sizeof g_mut_frame);
        }
        if (n >= 10u && mut_rand(8u) != 0u) {
            fix_frame(g_mut_frame, n);
        }
        if (n == 0u) {
            return 0;
        }
        if (!put_bytes(g_mut_out, &o, cap, data, a->start) ||
            !put_frame(g_mut_out, &o, cap, g_mut_frame, n, 0)) {
            return 0;
        }
        if (!put_bytes(g_mut_out, &o, cap, &data[a->start + a->len], size - a->start - a->len)) {
            return 0;
        }
    }
    if (o == 0u || o > max_size) {
        return 0;
    }
    memcpy(data, g_mut_out, o);
    return o;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    g_mut_rng = seed * 2654435761u + 1u;
    if (mut_rand(3u) != 0u) {
        const size_t n = mutate_structured(data, size, max_size);
        if (n > 0u) {
            return n;
        }
    }
    return LLVMFuzzerMutate(data, size, max_size);
}

/* ---- libFuzzer entry point ---------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    memset(&g, 0, sizeof g);
    g.data = data;
    g.size = size;
    g.rng = 0x2545F491u ^ (uint32_t)size;
    if (setjmp(g.done) == 0) {
        (void)sd_app_main(); /* returns only through longjmp from sd_port_read */
        FUZZ_CHECK(0, "the firmware's main loop returned");
    }
    return 0;
}
