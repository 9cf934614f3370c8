/*
 * test_protocol.c - host tests of the frame codec (sd_frame.c) and the
 * protocol engine (sd_protocol.c), linked with the stubs in this folder.
 *
 *   make -C firmware/tests/protocol test
 *
 * Prints every failed check and "test_protocol: PASS (<n> checks)" at the end;
 * exit code 0 on success. Golden bytes: the worked example of
 * docs/protocol.md, also checked against Python's zlib.crc32 and COBS in
 * tests/test_protocol.py.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sd_protocol.h"
#include "../test_le.h"

static int g_checks;
static int g_failures;

#define CHECK(cond)                                                             \
    do {                                                                        \
        g_checks++;                                                             \
        if (!(cond)) {                                                          \
            g_failures++;                                                       \
            printf("%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
        }                                                                       \
    } while (0)

#define CHECK_EQ(a, b)                                                          \
    do {                                                                        \
        long long va_ = (long long)(a);                                         \
        long long vb_ = (long long)(b);                                         \
        g_checks++;                                                             \
        if (va_ != vb_) {                                                       \
            g_failures++;                                                       \
            printf("%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, \
                   #a, va_, #b, vb_);                                           \
        }                                                                       \
    } while (0)

/* ---- helpers --------------------------------------------------------------- */

static uint32_t g_rng = 12345u;

static uint8_t rnd8(void)
{
    g_rng = g_rng * 1103515245u + 12345u;
    return (uint8_t)(g_rng >> 16);
}

/* Memory sink for encoded bytes. */
typedef struct {
    uint8_t data[16384];
    size_t len;
    int overflow;
} sink_t;

static void sink_write(void *ctx, const uint8_t *data, size_t len)
{
    sink_t *s = (sink_t *)ctx;
    for (size_t i = 0; i < len; i++) {
        if (s->len < sizeof s->data) {
            s->data[s->len++] = data[i];
        } else {
            s->overflow = 1;
        }
    }
}

/* Encodes a frame (header + payload + CRC) into the sink. */
static size_t encode_frame(sink_t *s, uint8_t type, uint16_t seq, const uint8_t *payload, size_t len)
{
    static uint8_t frame[SD_PROTO_MAX_FRAME + 4096];
    if (len > 0u) {
        memcpy(&frame[SD_PROTO_HEADER_SIZE], payload, len);
    }
    size_t n = sd_frame_finish(frame, type, seq, len);
    sd_frame_write(frame, n, sink_write, s);
    return n;
}

/* Feeds bytes to a decoder; records the last event and counts events. */
typedef struct {
    int ok;
    int bad;
    sd_frame_t last;
    sd_frame_event_t last_event;
} feed_result_t;

static feed_result_t feed(sd_frame_decoder_t *d, const uint8_t *data, size_t len)
{
    feed_result_t r;
    memset(&r, 0, sizeof r);
    for (size_t i = 0; i < len; i++) {
        sd_frame_t f;
        sd_frame_event_t e = sd_frame_feed(d, data[i], &f);
        if (e == SD_FRAME_OK) {
            r.ok++;
        } else if (e == SD_FRAME_BAD) {
            r.bad++;
        }
        if (e != SD_FRAME_NONE) {
            r.last = f;
            r.last_event = e;
        }
    }
    return r;
}

/* ---- codec tests ------------------------------------------------------------ */

static void test_crc(void)
{
    CHECK_EQ(sd_crc32_update(0, (const uint8_t *)"123456789", 9), 0xCBF43926u);
    CHECK_EQ(sd_crc32_update(0, NULL, 0), 0u);
    /* Running CRC equals one-shot CRC. */
    uint32_t c = sd_crc32_update(0, (const uint8_t *)"1234", 4);
    CHECK_EQ(sd_crc32_update(c, (const uint8_t *)"56789", 5), 0xCBF43926u);
}

/* The worked example of docs/protocol.md: PING, seq 0x0201, payload 00 11 00. */
static void test_worked_example(void)
{
    static const uint8_t expected[] = {0x06, 0x05, 0x01, 0x01, 0x02, 0x03, 0x01, 0x02,
                                       0x11, 0x01, 0x04, 0xa2, 0xf2, 0x9f, 0x00};
    sink_t s;
    memset(&s, 0, sizeof s);
    const uint8_t payload[] = {0x00, 0x11, 0x00};
    encode_frame(&s, SD_MSG_PING, 0x0201, payload, sizeof payload);
    CHECK_EQ(s.len, sizeof expected);
    CHECK(memcmp(s.data, expected, sizeof expected) == 0);
    if (memcmp(s.data, expected, sizeof expected) != 0) {
        for (size_t i = 0; i < s.len; i++) {
            printf("%02x ", s.data[i]);
        }
        printf("\n");
    }
}

static void test_round_trips(void)
{
    static uint8_t payload[SD_PROTO_MAX_PAYLOAD];
    static uint8_t buf[SD_PROTO_MAX_FRAME];
    static const size_t lengths[] = {0, 1, 2, 243, 244, 245, 248, 249, 250, 253, 254, 255,
                                     500, 507, 508, 509, 1000, 1399, 1400};
    for (int pattern = 0; pattern < 5; pattern++) {
        for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
            const size_t len = lengths[li];
            for (size_t i = 0; i < len; i++) {
                payload[i] = pattern == 0 ? 0x00 : pattern == 1 ? 0x11 : pattern == 2 ? 0xFF
                           : pattern == 3 ? (uint8_t)(i % 3 == 0 ? 0 : i) : rnd8();
            }
            sink_t s;
            memset(&s, 0, sizeof s);
            const uint16_t seq = (uint16_t)((size_t)pattern * 1000u + li);
            const size_t flen = encode_frame(&s, SD_MSG_PING, seq, payload, len);
            CHECK_EQ(flen, len + 10u);
            /* COBS: exactly one 0x00, at the end; overhead <= 1 + ceil(n/254). */
            CHECK_EQ(s.data[s.len - 1], 0);
            CHECK(memchr(s.data, 0, s.len - 1) == NULL);
            CHECK(s.len <= flen + 1u + (flen + 253u) / 254u + 1u);
            sd_frame_decoder_t d;
            sd_frame_decoder_init(&d, buf, sizeof buf);
            feed_result_t r = feed(&d, s.data, s.len);
            CHECK_EQ(r.ok, 1);
            CHECK_EQ(r.bad, 0);
            CHECK_EQ(r.last.version, SD_PROTO_VERSION);
            CHECK_EQ(r.last.type, SD_MSG_PING);
            CHECK_EQ(r.last.seq, seq);
            CHECK_EQ(r.last.payload_len, len);
            CHECK(memcmp(&buf[SD_PROTO_HEADER_SIZE], payload, len) == 0);
        }
    }
}

static void test_crc_damage(void)
{
    static uint8_t frame[64];
    static uint8_t buf[SD_PROTO_MAX_FRAME];
    const uint8_t payload[] = {1, 2, 3, 0, 5, 6, 7, 8};
    /* Every single-bit error in the decoded frame is caught by the CRC. */
    for (size_t pos = 0; pos < SD_PROTO_HEADER_SIZE + sizeof payload + SD_PROTO_CRC_SIZE; pos++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(&frame[SD_PROTO_HEADER_SIZE], payload, sizeof payload);
            size_t n = sd_frame_finish(frame, SD_MSG_PING, 77, sizeof payload);
            frame[pos] ^= (uint8_t)(1u << bit);
            sink_t s;
            memset(&s, 0, sizeof s);
            sd_frame_write(frame, n, sink_write, &s);
            sd_frame_decoder_t d;
            sd_frame_decoder_init(&d, buf, sizeof buf);
            feed_result_t r = feed(&d, s.data, s.len);
            CHECK_EQ(r.ok, 0);
            CHECK_EQ(r.bad, 1);
            CHECK_EQ(r.last.error, SD_ERR_BAD_CRC);
        }
    }
    /* Random damage to the encoded stream, followed by a good frame: the
     * damaged frame never passes, the good one always does. */
    for (int trial = 0; trial < 2000; trial++) {
        sink_t s;
        memset(&s, 0, sizeof s);
        uint8_t pl[40];
        for (size_t i = 0; i < sizeof pl; i++) {
            pl[i] = rnd8();
        }
        encode_frame(&s, SD_MSG_PING, 1, pl, sizeof pl);
        size_t first = s.len;
        s.data[rnd8() % (first - 1)] ^= (uint8_t)(1u << (rnd8() % 8));
        encode_frame(&s, SD_MSG_PING, 2, pl, sizeof pl);
        sd_frame_decoder_t d;
        sd_frame_decoder_init(&d, buf, sizeof buf);
        feed_result_t r1 = feed(&d, s.data, first);
        CHECK_EQ(r1.ok, 0);
        feed_result_t r2 = feed(&d, &s.data[first], s.len - first);
        CHECK_EQ(r2.ok, 1);
        CHECK_EQ(r2.last.seq, 2);
    }
}

static void test_malformed(void)
{
    static uint8_t buf[SD_PROTO_MAX_FRAME];
    sd_frame_decoder_t d;
    sd_frame_decoder_init(&d, buf, sizeof buf);
    /* Spare delimiters are skipped silently. */
    const uint8_t zeros[] = {0, 0, 0};
    feed_result_t r = feed(&d, zeros, sizeof zeros);
    CHECK_EQ(r.ok + r.bad, 0);
    /* A delimiter inside a COBS block: truncated. */
    const uint8_t trunc[] = {0x05, 0x01, 0x02, 0x00};
    r = feed(&d, trunc, sizeof trunc);
    CHECK_EQ(r.bad, 1);
    CHECK_EQ(r.last.error, SD_ERR_BAD_FRAME);
    CHECK_EQ(r.last.have_header, 0);
    /* Shorter than header + CRC. */
    const uint8_t shortf[] = {0x04, 0x01, 0x01, 0x02, 0x00};
    r = feed(&d, shortf, sizeof shortf);
    CHECK_EQ(r.bad, 1);
    CHECK_EQ(r.last.error, SD_ERR_BAD_FRAME);
    /* Length field disagrees with the frame size (CRC correct). */
    uint8_t frame[32];
    memset(frame, 0x33, sizeof frame);
    size_t n = sd_frame_finish(frame, SD_MSG_PING, 9, 4);
    frame[4] = 5; /* claims 5 payload bytes, has 4 */
    wr32(&frame[n - 4], sd_crc32_update(0, frame, n - 4));
    sink_t s;
    memset(&s, 0, sizeof s);
    sd_frame_write(frame, n, sink_write, &s);
    r = feed(&d, s.data, s.len);
    CHECK_EQ(r.bad, 1);
    CHECK_EQ(r.last.error, SD_ERR_BAD_FRAME);
    CHECK_EQ(r.last.have_header, 1);
    CHECK_EQ(r.last.seq, 9);
}

static void test_oversize_and_resync(void)
{
    static uint8_t buf[SD_PROTO_MAX_FRAME + 2]; /* 2 guard bytes past cap */
    static uint8_t payload[SD_PROTO_MAX_PAYLOAD + 200];
    memset(payload, 0xAB, sizeof payload);
    sd_frame_decoder_t d;
    buf[SD_PROTO_MAX_FRAME] = 0x5A;
    buf[SD_PROTO_MAX_FRAME + 1] = 0x5A;
    sd_frame_decoder_init(&d, buf, SD_PROTO_MAX_FRAME);

    /* One byte too large. */
    sink_t s;
    memset(&s, 0, sizeof s);
    encode_frame(&s, SD_MSG_PING, 0x1234, payload, SD_PROTO_MAX_PAYLOAD + 1u);
    feed_result_t r = feed(&d, s.data, s.len);
    CHECK_EQ(r.bad, 1);
    CHECK_EQ(r.last.error, SD_ERR_TOO_LARGE);
    CHECK_EQ(r.last.have_header, 1);
    CHECK_EQ(r.last.seq, 0x1234);
    CHECK_EQ(buf[SD_PROTO_MAX_FRAME], 0x5A);
    CHECK_EQ(buf[SD_PROTO_MAX_FRAME + 1], 0x5A);

    /* The largest legal frame right after it decodes. */
    memset(&s, 0, sizeof s);
    encode_frame(&s, SD_MSG_PING, 0x1235, payload, SD_PROTO_MAX_PAYLOAD);
    r = feed(&d, s.data, s.len);
    CHECK_EQ(r.ok, 1);
    CHECK_EQ(r.last.payload_len, SD_PROTO_MAX_PAYLOAD);

    /* 100,000 bytes of non-zero noise, then a delimiter, then a good frame. */
    for (int i = 0; i < 100000; i++) {
        uint8_t b = (uint8_t)(rnd8() | 1u);
        sd_frame_t f;
        CHECK(sd_frame_feed(&d, b, &f) == SD_FRAME_NONE || i < 0);
    }
    const uint8_t z = 0;
    r = feed(&d, &z, 1);
    CHECK_EQ(r.bad, 1);
    CHECK_EQ(r.last.error, SD_ERR_TOO_LARGE);
    memset(&s, 0, sizeof s);
    encode_frame(&s, SD_MSG_INFO, 7, payload, 0);
    r = feed(&d, s.data, s.len);
    CHECK_EQ(r.ok, 1);
    CHECK_EQ(r.last.seq, 7);
    CHECK_EQ(r.last.payload_len, 0);
    CHECK_EQ(buf[SD_PROTO_MAX_FRAME], 0x5A);
}

static void test_garbage_resync(void)
{
    static uint8_t buf[SD_PROTO_MAX_FRAME];
    sd_frame_decoder_t d;
    sd_frame_decoder_init(&d, buf, sizeof buf);
    for (int trial = 0; trial < 500; trial++) {
        uint8_t garbage[300];
        size_t glen = 1u + rnd8() % 255u;
        for (size_t i = 0; i < glen; i++) {
            garbage[i] = rnd8();
        }
        feed_result_t r = feed(&d, garbage, glen);
        CHECK_EQ(r.ok, 0);
        sink_t s;
        memset(&s, 0, sizeof s);
        const uint8_t delim = 0;
        sink_write(&s, &delim, 1); /* the host's leading delimiter */
        const uint8_t pl[] = {1, 2, 3};
        encode_frame(&s, SD_MSG_PING, (uint16_t)trial, pl, sizeof pl);
        r = feed(&d, s.data, s.len);
        CHECK_EQ(r.ok, 1);
        CHECK_EQ(r.last.seq, trial);
    }
}

/* ---- protocol engine tests ------------------------------------------------ */

static sd_proto_t g_proto;
static sink_t g_out;
static uint8_t g_rsp_buf[SD_PROTO_MAX_FRAME];
static uint8_t *const g_rsp = &g_rsp_buf[SD_PROTO_HEADER_SIZE]; /* response payload */

/* Sends one request (optionally with a raw-frame patch applied), returns the
 * number of responses and leaves the last one in g_rsp / *out. */
static int transact_raw(const uint8_t *wire, size_t wire_len, sd_frame_t *out)
{
    memset(&g_out, 0, sizeof g_out);
    sd_proto_feed(&g_proto, wire, wire_len);
    sd_frame_decoder_t d;
    sd_frame_decoder_init(&d, g_rsp_buf, sizeof g_rsp_buf);
    feed_result_t r = feed(&d, g_out.data, g_out.len);
    CHECK_EQ(r.bad, 0);
    CHECK(!g_out.overflow);
    if (out != NULL) {
        *out = r.last;
    }
    return r.ok;
}

static sd_frame_t transact(uint8_t type, uint16_t seq, const uint8_t *payload, size_t len)
{
    static sink_t req;
    memset(&req, 0, sizeof req);
    encode_frame(&req, type, seq, payload, len);
    sd_frame_t f;
    memset(&f, 0, sizeof f);
    CHECK_EQ(transact_raw(req.data, req.len, &f), 1);
    CHECK_EQ(f.seq, seq);
    CHECK_EQ(f.version, SD_PROTO_VERSION);
    return f;
}

static void check_error(sd_frame_t f, uint8_t code, uint8_t request_type)
{
    CHECK_EQ(f.type, SD_MSG_ERROR);
    CHECK_EQ(g_rsp[0], code);
    CHECK_EQ(g_rsp[1], request_type);
    CHECK(f.payload_len > 2u && f.payload_len <= 2u + SD_PROTO_MAX_TEXT);
}

static sd_frame_t send_audio(uint16_t seq, uint32_t clip, uint32_t offset, uint8_t flags,
                             const int16_t *samples, size_t n)
{
    static uint8_t pl[SD_PROTO_MAX_PAYLOAD + 64];
    wr32(&pl[0], clip);
    wr32(&pl[4], offset);
    pl[8] = flags;
    pl[9] = 0;
    wr16(&pl[10], (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        wr16(&pl[12 + 2 * i], (uint16_t)samples[i]);
    }
    return transact(SD_MSG_AUDIO, seq, pl, 12u + 2u * n);
}

/* Stub front end + model, computed here independently (see stub_*.c). */
static void expected_features(const int16_t *x, size_t n, int8_t *features)
{
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc * 31u + (uint16_t)x[i];
    }
    for (uint32_t i = 0; i < SD_PROTO_INPUT_SIZE; i++) {
        features[i] = (int8_t)(uint8_t)((acc >> (i % 24u)) + i);
    }
}

static void expected_scores(const int8_t *features, int8_t *scores, uint8_t *label)
{
    for (size_t k = 0; k < SD_PROTO_OUTPUT_SIZE; k++) {
        uint32_t sum = 0;
        for (size_t j = k; j < SD_PROTO_INPUT_SIZE; j += SD_PROTO_OUTPUT_SIZE) {
            sum += (uint8_t)features[j];
        }
        scores[k] = (int8_t)(uint8_t)sum;
    }
    *label = 0;
    for (uint8_t k = 1; k < SD_PROTO_OUTPUT_SIZE; k++) {
        if (scores[k] > scores[*label]) {
            *label = k;
        }
    }
}

static void test_ping_info_reset(void)
{
    static uint8_t pl[SD_PROTO_MAX_PAYLOAD];
    for (size_t i = 0; i < sizeof pl; i++) {
        pl[i] = (uint8_t)i;
    }
    sd_frame_t f = transact(SD_MSG_PING, 1, pl, 0);
    CHECK_EQ(f.type, SD_MSG_PING | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, 0);
    f = transact(SD_MSG_PING, 2, pl, SD_PROTO_MAX_PAYLOAD);
    CHECK_EQ(f.type, SD_MSG_PING | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, SD_PROTO_MAX_PAYLOAD);
    CHECK(memcmp(g_rsp, pl, SD_PROTO_MAX_PAYLOAD) == 0);

    f = transact(SD_MSG_INFO, 3, pl, 0);
    CHECK_EQ(f.type, SD_MSG_INFO | SD_MSG_RESPONSE);
    CHECK_EQ(g_rsp[0], SD_PROTO_VERSION);
    CHECK_EQ(rd16(&g_rsp[2]), SD_PROTO_MAX_PAYLOAD);
    CHECK_EQ(rd16(&g_rsp[4]), SD_PROTO_MAX_SAMPLES);
    CHECK_EQ(rd16(&g_rsp[6]), 1280);
    CHECK_EQ(rd16(&g_rsp[8]), SD_LABEL_COUNT); /* the stub's 12 labels */
    CHECK_EQ(SD_LABEL_COUNT, 12);
    CHECK_EQ(rd32(&g_rsp[10]), 8000);
    CHECK_EQ(g_rsp[14], 0x00);
    CHECK_EQ(g_rsp[15], 0x11);
    CHECK_EQ(g_rsp[14 + 31], 0x10);
    CHECK_EQ(g_rsp[14 + 24], 0xFE); /* upper-case hex digits parse too */
    CHECK_EQ(g_rsp[46], 0xA5);
    CHECK_EQ(g_rsp[46 + 31], 0xA5);
    CHECK_EQ(g_rsp[78], 0x5A); /* the stream config's hash */
    CHECK_EQ(g_rsp[78 + 31], 0x5A);
    CHECK_EQ(g_rsp[110], 0x3C); /* the labels' hash */
    CHECK_EQ(g_rsp[110 + 31], 0x3C);
    size_t pos = SD_INFO_RSP_FIXED;
    CHECK_EQ(g_rsp[pos], strlen(SD_FIRMWARE_VERSION));
    CHECK(memcmp(&g_rsp[pos + 1], SD_FIRMWARE_VERSION, strlen(SD_FIRMWARE_VERSION)) == 0);
    pos += 1u + g_rsp[pos];
    CHECK_EQ(g_rsp[pos], 4);
    CHECK(memcmp(&g_rsp[pos + 1], "stub", 4) == 0);
    pos += 1u + g_rsp[pos];
    CHECK_EQ(g_rsp[pos], 5);
    CHECK(memcmp(&g_rsp[pos + 1], "ticks", 5) == 0);
    pos += 1u + g_rsp[pos];
    CHECK_EQ(f.payload_len, pos);

    f = transact(SD_MSG_INFO, 4, pl, 1);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_INFO);

    /* STATS: the engine's counters and the stub port's (dropped 3, window 64,
     * high water 17). Every byte fed so far, this request's included. */
    const uint32_t ok_before = g_proto.frames_ok;
    f = transact(SD_MSG_STATS, 40, pl, 0);
    CHECK_EQ(f.type, SD_MSG_STATS | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, SD_STATS_RSP_SIZE);
    CHECK_EQ(rd32(&g_rsp[0]), g_proto.rx_bytes);
    CHECK(g_proto.rx_bytes > 1400u);
    CHECK_EQ(rd32(&g_rsp[4]), 3u);
    CHECK_EQ(rd32(&g_rsp[8]), ok_before + 1u);
    CHECK_EQ(rd32(&g_rsp[12]), g_proto.frames_bad_crc);
    CHECK_EQ(rd32(&g_rsp[16]), g_proto.frames_bad_frame);
    CHECK_EQ(rd32(&g_rsp[20]), g_proto.frames_too_large);
    CHECK_EQ(rd16(&g_rsp[24]), 64u);
    CHECK_EQ(rd16(&g_rsp[26]), 17u);
    f = transact(SD_MSG_STATS, 41, pl, 1);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_STATS);
    f = transact(SD_MSG_RESET, 5, pl, 0);
    CHECK_EQ(f.type, SD_MSG_RESET | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, 0);
    f = transact(SD_MSG_RESET, 6, pl, 2);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_RESET);
}

static void test_clip(void)
{
    static int16_t x[1300];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) {
        x[i] = (int16_t)(rnd8() << 8 | rnd8());
    }
    x[0] = -32768;
    x[1] = 32767;
    const uint32_t clip = 0xC0FFEE01u;
    uint16_t seq = 100;

    /* Chunks 512, 512, 0 (empty chunk), 276 with a resent chunk in between. */
    sd_frame_t f = send_audio(seq++, clip, 0, SD_AUDIO_BEGIN, x, 512);
    CHECK_EQ(f.type, SD_MSG_AUDIO | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, 8);
    CHECK_EQ(rd32(&g_rsp[0]), clip);
    CHECK_EQ(rd32(&g_rsp[4]), 512);
    f = send_audio(seq, clip, 512, 0, &x[512], 512);
    CHECK_EQ(f.type, SD_MSG_AUDIO | SD_MSG_RESPONSE);
    CHECK_EQ(rd32(&g_rsp[4]), 1024);
    f = send_audio(seq++, clip, 512, 0, &x[512], 512); /* resent: ack, no push */
    CHECK_EQ(f.type, SD_MSG_AUDIO | SD_MSG_RESPONSE);
    CHECK_EQ(rd32(&g_rsp[4]), 1024);
    f = send_audio(seq++, clip, 1024, 0, x, 0);
    CHECK_EQ(f.type, SD_MSG_AUDIO | SD_MSG_RESPONSE);
    CHECK_EQ(rd32(&g_rsp[4]), 1024);
    /* Errors leave the clip as it was. */
    f = send_audio(seq++, clip, 1000, 0, x, 10);
    check_error(f, SD_ERR_SEQUENCE, SD_MSG_AUDIO);
    f = send_audio(seq++, clip, 2000, 0, x, 10);
    check_error(f, SD_ERR_SEQUENCE, SD_MSG_AUDIO);
    f = send_audio(seq++, clip + 1, 1024, 0, x, 10);
    check_error(f, SD_ERR_CLIP_MISMATCH, SD_MSG_AUDIO);
    f = send_audio(seq++, clip, 1024, 0x02, x, 10);
    check_error(f, SD_ERR_BAD_ARGUMENT, SD_MSG_AUDIO);
    f = send_audio(seq++, clip, 1024, 0, x, 513);
    check_error(f, SD_ERR_TOO_LARGE, SD_MSG_AUDIO);
    uint8_t bad_len[13] = {0};
    wr32(&bad_len[0], clip);
    wr32(&bad_len[4], 1024);
    f = transact(SD_MSG_AUDIO, seq++, bad_len, sizeof bad_len);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_AUDIO);
    f = transact(SD_MSG_AUDIO, seq++, bad_len, 11);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_AUDIO);
    f = send_audio(seq++, clip, 1024, 0, &x[1024], 276);
    CHECK_EQ(f.type, SD_MSG_AUDIO | SD_MSG_RESPONSE);
    CHECK_EQ(rd32(&g_rsp[4]), 1300);

    /* CLASSIFY with the input tensor. */
    uint8_t req[6];
    wr32(&req[0], clip + 1);
    req[4] = SD_CLASSIFY_WANT_FEATURES;
    req[5] = 0;
    f = transact(SD_MSG_CLASSIFY, seq++, req, 6);
    check_error(f, SD_ERR_CLIP_MISMATCH, SD_MSG_CLASSIFY);
    f = transact(SD_MSG_CLASSIFY, seq++, req, 5);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_CLASSIFY);
    req[4] = 0x03;
    wr32(&req[0], clip);
    f = transact(SD_MSG_CLASSIFY, seq++, req, 6);
    check_error(f, SD_ERR_BAD_ARGUMENT, SD_MSG_CLASSIFY);
    req[4] = SD_CLASSIFY_WANT_FEATURES;
    const uint16_t classify_seq = seq++;
    f = transact(SD_MSG_CLASSIFY, classify_seq, req, 6);
    CHECK_EQ(f.type, SD_MSG_CLASSIFY | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, SD_CLASSIFY_RSP_FIXED + SD_PROTO_INPUT_SIZE);
    static int8_t feat[SD_PROTO_INPUT_SIZE];
    int8_t scores[SD_PROTO_OUTPUT_SIZE];
    uint8_t label;
    expected_features(x, 1300, feat);
    expected_scores(feat, scores, &label);
    CHECK_EQ(rd32(&g_rsp[0]), clip);
    CHECK_EQ(g_rsp[4], label);
    CHECK_EQ(g_rsp[5], SD_RESULT_FEATURES);
    CHECK_EQ(rd32(&g_rsp[6]), 1300);
    CHECK(rd64(&g_rsp[10]) > 0u); /* front end cost: stub counter */
    CHECK_EQ(rd64(&g_rsp[18]), 1000u + (uint8_t)feat[0]);
    CHECK_EQ(rd64(&g_rsp[26]), 7u);
    CHECK(memcmp(&g_rsp[SD_CLASSIFY_RSP_HEAD], scores, SD_PROTO_OUTPUT_SIZE) == 0);
    const uint32_t feat_crc = sd_crc32_update(0u, (const uint8_t *)feat, SD_PROTO_INPUT_SIZE);
    CHECK_EQ(rd32(&g_rsp[34]), feat_crc);
    CHECK(memcmp(&g_rsp[SD_CLASSIFY_RSP_FIXED], feat, SD_PROTO_INPUT_SIZE) == 0);
    static uint8_t first[SD_CLASSIFY_RSP_FIXED];
    memcpy(first, g_rsp, sizeof first);

    /* FEATURES reads the tensor again, in parts; the response repeats the request. */
    uint8_t fq[SD_FEATURES_REQ_SIZE];
    wr32(&fq[0], clip);
    wr16(&fq[4], 0);
    wr16(&fq[6], SD_PROTO_INPUT_SIZE);
    f = transact(SD_MSG_FEATURES, seq++, fq, sizeof fq);
    CHECK_EQ(f.type, SD_MSG_FEATURES | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, SD_FEATURES_REQ_SIZE + SD_PROTO_INPUT_SIZE);
    CHECK(memcmp(g_rsp, fq, sizeof fq) == 0);
    CHECK(memcmp(&g_rsp[8], feat, SD_PROTO_INPUT_SIZE) == 0);
    wr16(&fq[4], 1237);
    wr16(&fq[6], 43);
    f = transact(SD_MSG_FEATURES, seq++, fq, sizeof fq);
    CHECK_EQ(f.payload_len, SD_FEATURES_REQ_SIZE + 43u);
    CHECK(memcmp(&g_rsp[8], &feat[1237], 43) == 0);
    wr16(&fq[6], 44); /* one byte past the end */
    f = transact(SD_MSG_FEATURES, seq++, fq, sizeof fq);
    check_error(f, SD_ERR_BAD_ARGUMENT, SD_MSG_FEATURES);
    f = transact(SD_MSG_FEATURES, seq++, fq, sizeof fq - 1u);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_FEATURES);
    wr32(&fq[0], clip + 1);
    wr16(&fq[6], 1);
    f = transact(SD_MSG_FEATURES, seq++, fq, sizeof fq);
    check_error(f, SD_ERR_NO_CLIP, SD_MSG_FEATURES);
    wr32(&fq[0], clip);

    /* The same CLASSIFY again (response lost): replayed, without features. */
    f = transact(SD_MSG_CLASSIFY, classify_seq, req, 6);
    CHECK_EQ(f.type, SD_MSG_CLASSIFY | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, SD_CLASSIFY_RSP_FIXED);
    CHECK_EQ(g_rsp[5], SD_RESULT_REPLAYED);
    CHECK(memcmp(g_rsp, first, 5) == 0);
    CHECK(memcmp(&g_rsp[6], &first[6], SD_CLASSIFY_RSP_FIXED - 6u) == 0);
    /* ... and its features can still be read. */
    f = transact(SD_MSG_FEATURES, seq++, fq, sizeof fq);
    CHECK_EQ(f.type, SD_MSG_FEATURES | SD_MSG_RESPONSE);
    CHECK_EQ(g_rsp[8], (uint8_t)feat[1237]);
    /* A new CLASSIFY (other seq) finds no open clip. */
    f = transact(SD_MSG_CLASSIFY, seq++, req, 6);
    check_error(f, SD_ERR_NO_CLIP, SD_MSG_CLASSIFY);
    f = send_audio(seq++, clip, 1300, 0, x, 1);
    check_error(f, SD_ERR_NO_CLIP, SD_MSG_AUDIO);
    f = send_audio(seq++, clip, 5, SD_AUDIO_BEGIN, x, 1);
    check_error(f, SD_ERR_BAD_ARGUMENT, SD_MSG_AUDIO);
    f = transact(SD_MSG_FEATURES, seq++, fq, sizeof fq); /* a rejected AUDIO changes nothing */
    CHECK_EQ(f.type, SD_MSG_FEATURES | SD_MSG_RESPONSE);

    /* Empty clip, no features; BEGIN resent twice is still one clip. */
    f = send_audio(seq++, 9, 0, SD_AUDIO_BEGIN, x, 3);
    CHECK_EQ(f.type, SD_MSG_AUDIO | SD_MSG_RESPONSE);
    CHECK_EQ(rd32(&g_rsp[4]), 3);
    f = transact(SD_MSG_FEATURES, seq++, fq, sizeof fq); /* a new clip: the old tensor is gone */
    check_error(f, SD_ERR_NO_CLIP, SD_MSG_FEATURES);
    f = send_audio(seq++, 9, 0, SD_AUDIO_BEGIN, x, 0);
    CHECK_EQ(f.type, SD_MSG_AUDIO | SD_MSG_RESPONSE);
    CHECK_EQ(rd32(&g_rsp[4]), 0);
    req[4] = 0;
    wr32(&req[0], 9);
    f = transact(SD_MSG_CLASSIFY, seq++, req, 6);
    CHECK_EQ(f.type, SD_MSG_CLASSIFY | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, SD_CLASSIFY_RSP_FIXED);
    CHECK_EQ(g_rsp[5], 0);
    CHECK_EQ(rd32(&g_rsp[6]), 0);
    expected_features(x, 0, feat);
    expected_scores(feat, scores, &label);
    CHECK(memcmp(&g_rsp[SD_CLASSIFY_RSP_HEAD], scores, SD_PROTO_OUTPUT_SIZE) == 0);

    /* RESET drops an open clip. */
    f = send_audio(seq++, 10, 0, SD_AUDIO_BEGIN, x, 3);
    CHECK_EQ(f.type, SD_MSG_AUDIO | SD_MSG_RESPONSE);
    f = transact(SD_MSG_RESET, seq++, req, 0);
    CHECK_EQ(f.type, SD_MSG_RESET | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, 0);
    wr32(&req[0], 10);
    f = transact(SD_MSG_CLASSIFY, seq++, req, 6);
    check_error(f, SD_ERR_NO_CLIP, SD_MSG_CLASSIFY);
}

static void test_infer(void)
{
    static int8_t in[SD_PROTO_INPUT_SIZE];
    for (size_t i = 0; i < sizeof in; i++) {
        in[i] = (int8_t)rnd8();
    }
    int8_t scores[SD_PROTO_OUTPUT_SIZE];
    uint8_t label;
    expected_scores(in, scores, &label);
    sd_frame_t f = transact(SD_MSG_INFER, 500, (const uint8_t *)in, sizeof in);
    CHECK_EQ(f.type, SD_MSG_INFER | SD_MSG_RESPONSE);
    CHECK_EQ(f.payload_len, SD_INFER_RSP_SIZE);
    CHECK_EQ(g_rsp[0], label);
    CHECK_EQ(g_rsp[1], 0);
    CHECK_EQ(rd64(&g_rsp[2]), 0u);
    CHECK_EQ(rd64(&g_rsp[10]), 1000u + (uint8_t)in[0]);
    CHECK_EQ(rd64(&g_rsp[18]), 7u);
    CHECK(memcmp(&g_rsp[SD_INFER_RSP_HEAD], scores, SD_PROTO_OUTPUT_SIZE) == 0);
    const uint32_t crc = sd_crc32_update(0u, (const uint8_t *)in, sizeof in);
    CHECK_EQ(rd32(&g_rsp[26]), crc);
    static uint8_t first[SD_INFER_RSP_SIZE];
    memcpy(first, g_rsp, sizeof first);

    /* The same tensor written in parts (TENSOR), then INFER with an empty payload. */
    static uint8_t part[4u + SD_PROTO_INPUT_SIZE];
    uint16_t seq = 510;
    for (uint32_t off = 0; off < SD_PROTO_INPUT_SIZE; off += 300u) {
        const uint32_t n = (SD_PROTO_INPUT_SIZE - off < 300u) ? SD_PROTO_INPUT_SIZE - off : 300u;
        wr16(&part[0], off);
        wr16(&part[2], n);
        memcpy(&part[4], &in[off], n);
        f = transact(SD_MSG_TENSOR, seq++, part, 4u + n);
        CHECK_EQ(f.type, SD_MSG_TENSOR | SD_MSG_RESPONSE);
        CHECK_EQ(f.payload_len, 4u);
        CHECK(memcmp(g_rsp, part, 4) == 0);
        if (off == 600u) { /* resent: written again, same result */
            f = transact(SD_MSG_TENSOR, seq++, part, 4u + n);
            CHECK_EQ(f.type, SD_MSG_TENSOR | SD_MSG_RESPONSE);
        }
    }
    f = transact(SD_MSG_INFER, seq++, NULL, 0);
    CHECK_EQ(f.type, SD_MSG_INFER | SD_MSG_RESPONSE);
    CHECK(memcmp(g_rsp, first, sizeof first) == 0);
    /* Malformed parts. */
    wr16(&part[0], 1280);
    wr16(&part[2], 1);
    f = transact(SD_MSG_TENSOR, seq++, part, 5);
    check_error(f, SD_ERR_BAD_ARGUMENT, SD_MSG_TENSOR);
    wr16(&part[0], 0);
    wr16(&part[2], 10);
    f = transact(SD_MSG_TENSOR, seq++, part, 13);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_TENSOR);
    f = transact(SD_MSG_TENSOR, seq++, part, 3);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_TENSOR);
    /* One changed byte: another CRC in the answer. */
    wr16(&part[2], 1);
    part[4] = (uint8_t)(in[0] + 1);
    f = transact(SD_MSG_TENSOR, seq++, part, 5);
    CHECK_EQ(f.type, SD_MSG_TENSOR | SD_MSG_RESPONSE);
    f = transact(SD_MSG_INFER, seq++, NULL, 0);
    CHECK_EQ(f.type, SD_MSG_INFER | SD_MSG_RESPONSE);
    CHECK(rd32(&g_rsp[26]) != crc);

    f = transact(SD_MSG_INFER, 501, (const uint8_t *)in, sizeof in - 1u);
    check_error(f, SD_ERR_BAD_LENGTH, SD_MSG_INFER);
    in[0] = in[1] = in[2] = in[3] = 0x7F; /* the stub model fails on this */
    f = transact(SD_MSG_INFER, 502, (const uint8_t *)in, sizeof in);
    check_error(f, SD_ERR_MODEL, SD_MSG_INFER);
}

static void test_errors(void)
{
    /* Unknown type, a response type sent as a request, wrong version. */
    sd_frame_t f = transact(0x55, 600, NULL, 0);
    check_error(f, SD_ERR_UNKNOWN_TYPE, 0x55);
    f = transact(SD_MSG_PING | SD_MSG_RESPONSE, 601, NULL, 0);
    check_error(f, SD_ERR_UNKNOWN_TYPE, SD_MSG_PING | SD_MSG_RESPONSE);
    uint8_t frame[32];
    size_t n = sd_frame_finish(frame, SD_MSG_PING, 602, 0);
    frame[0] = SD_PROTO_VERSION + 1u;
    wr32(&frame[n - 4], sd_crc32_update(0, frame, n - 4));
    sink_t s;
    memset(&s, 0, sizeof s);
    sd_frame_write(frame, n, sink_write, &s);
    CHECK_EQ(transact_raw(s.data, s.len, &f), 1);
    CHECK_EQ(f.seq, 602);
    check_error(f, SD_ERR_BAD_VERSION, SD_MSG_PING);

    /* Damaged request with a plausible header: ERROR BAD_CRC, its seq. */
    n = sd_frame_finish(frame, SD_MSG_INFO, 603, 0);
    frame[n - 1] ^= 0x40;
    memset(&s, 0, sizeof s);
    sd_frame_write(frame, n, sink_write, &s);
    CHECK_EQ(transact_raw(s.data, s.len, &f), 1);
    CHECK_EQ(f.seq, 603);
    check_error(f, SD_ERR_BAD_CRC, SD_MSG_INFO);

    /* Line noise (no header or not our version): no reply at all. */
    const uint8_t noise[] = {0x03, 0x77, 0x88, 0x00, 0x09, 0x07, 0x01, 0x01, 0x01, 0x01, 0x01,
                             0x01, 0x01, 0x01, 0x00, 0x00};
    CHECK_EQ(transact_raw(noise, sizeof noise, NULL), 0);

    /* Oversize request: ERROR TOO_LARGE with its seq, then normal service. */
    static uint8_t big[SD_PROTO_MAX_PAYLOAD + 1];
    memset(big, 1, sizeof big);
    memset(&s, 0, sizeof s);
    encode_frame(&s, SD_MSG_PING, 604, big, sizeof big);
    CHECK_EQ(transact_raw(s.data, s.len, &f), 1);
    CHECK_EQ(f.seq, 604);
    check_error(f, SD_ERR_TOO_LARGE, SD_MSG_PING);
    f = transact(SD_MSG_PING, 605, big, 3);
    CHECK_EQ(f.type, SD_MSG_PING | SD_MSG_RESPONSE);

    /* Two requests in one read: two responses, in order. */
    memset(&s, 0, sizeof s);
    encode_frame(&s, SD_MSG_PING, 606, big, 1);
    encode_frame(&s, SD_MSG_PING, 607, big, 2);
    CHECK_EQ(transact_raw(s.data, s.len, &f), 2);
    CHECK_EQ(f.seq, 607);
    CHECK(g_proto.frames_bad >= 3u);
    CHECK_EQ(g_proto.frames_bad, g_proto.frames_bad_crc + g_proto.frames_bad_frame + g_proto.frames_too_large);
    CHECK(g_proto.frames_bad_crc >= 1u && g_proto.frames_too_large >= 1u);
}

int main(void)
{
    test_crc();
    test_worked_example();
    test_round_trips();
    test_crc_damage();
    test_malformed();
    test_oversize_and_resync();
    test_garbage_resync();
    sd_proto_init(&g_proto, sink_write, &g_out);
    CHECK_EQ((uintptr_t)(g_proto.buf + SD_PROTO_HEADER_SIZE) % 4u, 0);
    test_ping_info_reset();
    test_clip();
    test_infer();
    test_errors();
    if (g_failures != 0) {
        printf("test_protocol: FAIL (%d of %d checks)\n", g_failures, g_checks);
        return 1;
    }
    printf("test_protocol: PASS (%d checks)\n", g_checks);
    return 0;
}
