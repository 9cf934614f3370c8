/*
 * sd_frame.c - frame layer of the serial protocol (docs/protocol.md, "Frame").
 *
 * Decoded frame: version u8 | type u8 | seq u16 | length u16 | payload | CRC-32.
 * On the wire: COBS(decoded frame) followed by 0x00.
 *
 * No allocation, no stdio: the decoder writes into a caller-owned buffer and
 * the encoder reads the caller's frame in place.
 */
#include "sd_protocol.h"
#include "sd_le.h"

/* CRC-32/IEEE, reflected polynomial 0xEDB88320, four bits per step:
 * 64 bytes of table instead of 1 KB. */
static const uint32_t sd_crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t sd_crc32_update(uint32_t crc, const uint8_t *data, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        crc = sd_crc_nibble[crc & 0x0Fu] ^ (crc >> 4);
        crc = sd_crc_nibble[crc & 0x0Fu] ^ (crc >> 4);
    }
    return ~crc;
}

static void sd_decoder_restart(sd_frame_decoder_t *d)
{
    d->len = 0;
    d->raw = 0;
    d->left = 0;
    d->code = 0;
    d->overflow = 0;
}

void sd_frame_decoder_init(sd_frame_decoder_t *d, uint8_t *buf, size_t cap)
{
    d->buf = buf;
    d->cap = cap;
    sd_decoder_restart(d);
}

/* Appends one decoded byte; past cap the frame is marked oversize and the
 * byte is dropped (never written). */
static void sd_decoder_put(sd_frame_decoder_t *d, uint8_t b)
{
    if (d->len < d->cap) {
        d->buf[d->len++] = b;
    } else {
        d->overflow = 1;
    }
}

/* Called at a 0x00: classifies the frame that just ended. */
static sd_frame_event_t sd_decoder_finish(sd_frame_decoder_t *d, sd_frame_t *out)
{
    const size_t len = d->len;
    out->version = 0;
    out->type = 0;
    out->seq = 0;
    out->payload_len = 0;
    out->have_header = 0;
    out->error = SD_ERR_NONE;
    if (len >= SD_PROTO_HEADER_SIZE) {
        out->version = d->buf[0];
        out->type = d->buf[1];
        out->seq = sd_rd16(&d->buf[2]);
        out->payload_len = sd_rd16(&d->buf[4]);
        out->have_header = 1;
    }
    if (d->overflow) {
        out->error = SD_ERR_TOO_LARGE;
    } else if (d->left != 0 || len < SD_PROTO_HEADER_SIZE + SD_PROTO_CRC_SIZE) {
        /* d->left != 0: the delimiter came inside a COBS block (truncated). */
        out->error = SD_ERR_BAD_FRAME;
    } else if (sd_crc32_update(0, d->buf, len - SD_PROTO_CRC_SIZE) !=
               sd_rd32(&d->buf[len - SD_PROTO_CRC_SIZE])) {
        out->error = SD_ERR_BAD_CRC;
    } else if ((size_t)out->payload_len != len - SD_PROTO_HEADER_SIZE - SD_PROTO_CRC_SIZE) {
        out->error = SD_ERR_BAD_FRAME;
    }
    sd_decoder_restart(d);
    return out->error == SD_ERR_NONE ? SD_FRAME_OK : SD_FRAME_BAD;
}

sd_frame_event_t sd_frame_feed(sd_frame_decoder_t *d, uint8_t byte, sd_frame_t *out)
{
    if (byte == 0x00u) {
        if (d->raw == 0) {
            return SD_FRAME_NONE; /* empty frame: a spare delimiter, skip it */
        }
        return sd_decoder_finish(d, out);
    }
    if (d->raw < SIZE_MAX) {
        d->raw++;
    }
    if (d->overflow) {
        return SD_FRAME_NONE; /* drop until the next delimiter */
    }
    if (d->left == 0) {
        /* A code byte. The block before it (if any) ended in an implied 0x00
         * unless it was a full 254-byte block (code 0xFF). */
        if (d->code != 0 && d->code != 0xFFu) {
            sd_decoder_put(d, 0x00u);
        }
        d->code = byte;
        d->left = (uint8_t)(byte - 1u);
    } else {
        sd_decoder_put(d, byte);
        d->left--;
    }
    return SD_FRAME_NONE;
}

size_t sd_frame_finish(uint8_t *buf, uint8_t type, uint16_t seq, size_t payload_len)
{
    const size_t body = SD_PROTO_HEADER_SIZE + payload_len;
    buf[0] = (uint8_t)SD_PROTO_VERSION;
    buf[1] = type;
    sd_wr16(&buf[2], seq);
    sd_wr16(&buf[4], (uint32_t)payload_len);
    sd_wr32(&buf[body], sd_crc32_update(0, buf, body));
    return body + SD_PROTO_CRC_SIZE;
}

void sd_frame_write(const uint8_t *frame, size_t len, sd_write_fn write, void *ctx)
{
    size_t pos = 0;
    for (;;) {
        size_t run = 0;
        while (run < 254u && pos + run < len && frame[pos + run] != 0x00u) {
            run++;
        }
        const uint8_t code = (uint8_t)(run + 1u);
        write(ctx, &code, 1);
        if (run > 0) {
            write(ctx, &frame[pos], run);
        }
        pos += run;
        if (pos >= len) {
            break; /* the final block needs no zero after it */
        }
        if (run < 254u) {
            pos++; /* skip the 0x00 this block's code stands for */
        }
    }
    static const uint8_t delimiter = 0x00u;
    write(ctx, &delimiter, 1);
}
