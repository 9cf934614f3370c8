/*
 * stack_main.c - peak stack depth of one clip on a Cortex-M (QEMU mps2-an386).
 *
 *   make -C firmware BOARD=mps2-an386 TEST_MAIN=tests/stack/stack_main.c test
 *
 * Paints the free stack below the current stack pointer with a pattern, runs
 * one clip through (1) the library calls the app makes - sd_frontend_begin /
 * push / end and sd_model_invoke with cost accounting - and (2) the serial
 * protocol path - AUDIO chunks and CLASSIFY fed to sd_proto_feed as encoded
 * frames - then finds the lowest word that no longer holds the pattern.
 * Prints `stack bytes N`: bytes from the top of the stack (_estack, so the
 * startup code and main's own frame count) down to that word, interrupts
 * included. Prints `data+bss bytes N` from the linker symbols of this test
 * image (the app's own figure comes from arm-none-eabi-size). Exit status 0
 * when the protocol answered CLASSIFY and both paths agree on the label.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sd_frontend.h"
#include "sd_frontend_config.h" /* generated: SD_CLIP_SAMPLES */
#include "sd_model.h"
#include "sd_port.h"
#include "sd_protocol.h"

#define PAINT 0xC0FFEE5Au
#define PAINT_WINDOW (48u * 1024u) /* bytes painted below the caller's frame */

extern uint32_t _estack[];
extern uint32_t _ebss[];
extern uint32_t _sdata[];

/* Lowest address painted; the scan starts there. */
static uint32_t *s_low;

static __attribute__((noinline)) uint32_t *current_sp(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Paints [low, sp - 64) where sp is this function's own stack pointer;
 * nothing lives below it. */
static __attribute__((noinline)) void paint_stack(void)
{
    uint32_t *top = current_sp() - 16;
    uint32_t *low = top - PAINT_WINDOW / 4u;
    if (low < _ebss) {
        low = _ebss;
    }
    s_low = low;
    for (volatile uint32_t *p = low; p < top; ++p) {
        *p = PAINT;
    }
}

static uint32_t *high_water(void)
{
    uint32_t *p = s_low;
    while (p < _estack && *p == PAINT) {
        ++p;
    }
    return p;
}

/* ---- one synthetic clip ------------------------------------------------- */

static int16_t s_clip[SD_CLIP_SAMPLES];

static void make_clip(void)
{
    uint32_t lcg = 12345u;
    for (uint32_t i = 0; i < SD_CLIP_SAMPLES; ++i) {
        lcg = lcg * 1664525u + 1013904223u;
        const int32_t tone = ((i / 9u) & 1u) ? 6000 : -6000; /* ~444 Hz square */
        const int32_t env = (int32_t)(i < 2000u ? i : 4000u - i);
        s_clip[i] = (int16_t)(tone * env / 2000 + (int32_t)(lcg >> 22) - 512);
    }
}

static int argmax(const int8_t *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; ++i) {
        if (v[i] > v[best]) {
            best = i;
        }
    }
    return best;
}

/* ---- protocol path ------------------------------------------------------ */

static sd_proto_t s_proto;
static uint8_t s_frame[SD_PROTO_MAX_FRAME];
static uint8_t s_enc[SD_PROTO_MAX_FRAME + SD_PROTO_MAX_FRAME / 254u + 4u];
static size_t s_enc_len;
static uint8_t s_rsp[2048];
static size_t s_rsp_len;

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void enc_sink(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (s_enc_len + len <= sizeof s_enc) {
        memcpy(s_enc + s_enc_len, data, len);
        s_enc_len += len;
    }
}

/* Keeps the last response's encoded bytes (the handler's write target). */
static void rsp_sink(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (s_rsp_len + len <= sizeof s_rsp) {
        memcpy(s_rsp + s_rsp_len, data, len);
        s_rsp_len += len;
    }
}

static void send(uint8_t type, uint16_t seq, size_t payload_len)
{
    const size_t n = sd_frame_finish(s_frame, type, seq, payload_len);
    s_enc_len = 0;
    sd_frame_write(s_frame, n, enc_sink, 0);
    s_rsp_len = 0;
    sd_proto_feed(&s_proto, s_enc, s_enc_len);
}

/* Decodes the last response; returns its type, or 0. Label in *label. */
static int last_response(int *label)
{
    static uint8_t buf[SD_PROTO_MAX_FRAME];
    sd_frame_decoder_t d;
    sd_frame_t f;
    sd_frame_decoder_init(&d, buf, sizeof buf);
    for (size_t i = 0; i < s_rsp_len; ++i) {
        if (sd_frame_feed(&d, s_rsp[i], &f) == SD_FRAME_OK) {
            *label = buf[SD_PROTO_HEADER_SIZE + 4];
            return f.type;
        }
    }
    return 0;
}

static int run_protocol(void)
{
    uint16_t seq = 1;
    uint8_t *pl = s_frame + SD_PROTO_HEADER_SIZE;
    sd_proto_init(&s_proto, rsp_sink, 0);
    for (uint32_t off = 0; off < SD_CLIP_SAMPLES; off += SD_PROTO_MAX_SAMPLES) {
        const uint32_t n =
            (SD_CLIP_SAMPLES - off < SD_PROTO_MAX_SAMPLES) ? SD_CLIP_SAMPLES - off : SD_PROTO_MAX_SAMPLES;
        put_u32(pl, 7u);
        put_u32(pl + 4, off);
        pl[8] = off == 0 ? (uint8_t)SD_AUDIO_BEGIN : 0u;
        pl[9] = 0;
        pl[10] = (uint8_t)n;
        pl[11] = (uint8_t)(n >> 8);
        for (uint32_t i = 0; i < n; ++i) {
            const uint16_t v = (uint16_t)s_clip[off + i];
            pl[SD_AUDIO_REQ_FIXED + 2 * i] = (uint8_t)v;
            pl[SD_AUDIO_REQ_FIXED + 2 * i + 1] = (uint8_t)(v >> 8);
        }
        send(SD_MSG_AUDIO, seq++, SD_AUDIO_REQ_FIXED + 2 * n);
    }
    put_u32(pl, 7u);
    pl[4] = SD_CLASSIFY_WANT_FEATURES;
    pl[5] = 0;
    send(SD_MSG_CLASSIFY, seq, SD_CLASSIFY_REQ_SIZE);
    int label = -1;
    const int type = last_response(&label);
    return type == (SD_MSG_CLASSIFY | SD_MSG_RESPONSE) ? label : -1;
}

/* The streaming path: 4096 quiet samples (the detector's warm-up), the clip,
 * 2048 quiet samples, as STREAM chunks, the last with END. Returns the number
 * of events the acknowledgements carried (the model runs for each). */
static int run_stream(void)
{
    static int16_t s_stream[4096u + SD_CLIP_SAMPLES + 2048u];
    const uint32_t total = (uint32_t)(sizeof s_stream / sizeof s_stream[0]);
    uint32_t lcg = 777u;
    for (uint32_t i = 0; i < total; ++i) {
        lcg = lcg * 1664525u + 1013904223u;
        s_stream[i] = (int16_t)((int32_t)(lcg >> 26) - 32);
    }
    memcpy(&s_stream[4096], s_clip, sizeof s_clip);
    uint8_t *pl = s_frame + SD_PROTO_HEADER_SIZE;
    int events = 0;
    uint16_t seq = 100;
    for (uint32_t off = 0; off < total; off += SD_PROTO_MAX_SAMPLES) {
        uint32_t n = total - off;
        if (n > SD_PROTO_MAX_SAMPLES) {
            n = SD_PROTO_MAX_SAMPLES;
        }
        memset(pl, 0, SD_STREAM_REQ_FIXED);
        put_u32(pl, 9u);
        put_u32(pl + 4, off);
        pl[12] = (uint8_t)((off == 0 ? SD_STREAM_BEGIN : 0u) | (off + n >= total ? SD_STREAM_END : 0u));
        pl[14] = (uint8_t)n;
        pl[15] = (uint8_t)(n >> 8);
        for (uint32_t i = 0; i < n; ++i) {
            const uint16_t v = (uint16_t)s_stream[off + i];
            pl[SD_STREAM_REQ_FIXED + 2 * i] = (uint8_t)v;
            pl[SD_STREAM_REQ_FIXED + 2 * i + 1] = (uint8_t)(v >> 8);
        }
        send(SD_MSG_STREAM, seq++, SD_STREAM_REQ_FIXED + 2 * n);
        static uint8_t buf[SD_PROTO_MAX_FRAME];
        sd_frame_decoder_t d;
        sd_frame_t f;
        sd_frame_decoder_init(&d, buf, sizeof buf);
        for (size_t i = 0; i < s_rsp_len; ++i) {
            if (sd_frame_feed(&d, s_rsp[i], &f) == SD_FRAME_OK) {
                if (f.type != (SD_MSG_STREAM | SD_MSG_RESPONSE)) {
                    return -1;
                }
                events += buf[SD_PROTO_HEADER_SIZE + 17];
            }
        }
    }
    return events;
}

int main(void)
{
    static int8_t features[SD_MODEL_INPUT_SIZE];
    static int8_t out[SD_MODEL_OUTPUT_SIZE];
    sd_port_init();
    make_clip();
    paint_stack();

    sd_frontend_t *fe = sd_frontend_instance();
    sd_frontend_begin(fe);
    for (uint32_t off = 0; off < SD_CLIP_SAMPLES; off += SD_PROTO_MAX_SAMPLES) {
        const uint32_t n =
            (SD_CLIP_SAMPLES - off < SD_PROTO_MAX_SAMPLES) ? SD_CLIP_SAMPLES - off : SD_PROTO_MAX_SAMPLES;
        sd_frontend_push(fe, s_clip + off, n);
    }
    (void)sd_frontend_end(fe, features);
    sd_model_cost_t cost;
    const int direct_ok = sd_model_invoke(features, out, &cost) == SD_MODEL_OK;
    const int direct_label = argmax(out, SD_MODEL_OUTPUT_SIZE);
    uint32_t *after_direct = high_water();

    const int proto_label = run_protocol();
    uint32_t *after_clip = high_water();
    const int stream_events = run_stream();
    uint32_t *low = high_water();

    const unsigned long total = (unsigned long)((uintptr_t)_estack - (uintptr_t)low);
    printf("stack bytes %lu (library path %lu, painted %lu)\n", total,
           (unsigned long)((uintptr_t)_estack - (uintptr_t)after_direct),
           (unsigned long)((uintptr_t)_estack - (uintptr_t)s_low));
    printf("data+bss bytes %lu (this test image)\n",
           (unsigned long)((uintptr_t)_ebss - (uintptr_t)_sdata));
    printf("stream path: %d event(s), stack bytes %lu up to the clip protocol path\n", stream_events,
           (unsigned long)((uintptr_t)_estack - (uintptr_t)after_clip));
    printf("label direct %d protocol %d\n", direct_label, proto_label);
    if (low <= s_low) {
        printf("FAIL: the stack reached the bottom of the painted window\n");
        return 2;
    }
    if (stream_events < 1) {
        printf("FAIL: the stream path reported no event\n");
        return 1;
    }
    if (!direct_ok || proto_label != direct_label) {
        printf("FAIL: protocol and library paths disagree\n");
        return 1;
    }
    printf("PASS\n");
    return 0;
}
