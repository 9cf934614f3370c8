/*
 * codec_tool.c - the C frame codec (sd_frame.c) on stdin/stdout, so
 * tests/test_protocol.py can check it against host/protocol.py.
 *
 *   codec_tool decode   binary stream in; one line out per frame event:
 *                         "OK <type> <seq> <payload hex or ->"
 *                         "BAD <error code> <have_header> <seq>"
 *   codec_tool encode   lines "<type> <seq> <payload hex or ->" in (decimal
 *                       type and seq); the encoded frames out, back to back.
 */
#include <stdio.h>
#include <string.h>

#include "sd_protocol.h"

static void put_stdout(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    fwrite(data, 1, len, stdout);
}

static int decode(void)
{
    static uint8_t buf[SD_PROTO_MAX_FRAME];
    sd_frame_decoder_t d;
    sd_frame_decoder_init(&d, buf, sizeof buf);
    int c;
    while ((c = getchar()) != EOF) {
        sd_frame_t f;
        sd_frame_event_t e = sd_frame_feed(&d, (uint8_t)c, &f);
        if (e == SD_FRAME_OK) {
            printf("OK %u %u ", f.type, f.seq);
            if (f.payload_len == 0) {
                printf("-");
            }
            for (size_t i = 0; i < f.payload_len; i++) {
                printf("%02x", buf[SD_PROTO_HEADER_SIZE + i]);
            }
            printf("\n");
        } else if (e == SD_FRAME_BAD) {
            printf("BAD %u %u %u\n", f.error, f.have_header, f.have_header ? f.seq : 0u);
        }
    }
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

static int encode(void)
{
    static char line[2 * SD_PROTO_MAX_PAYLOAD + 64];
    static uint8_t frame[SD_PROTO_MAX_FRAME];
    while (fgets(line, sizeof line, stdin) != NULL) {
        unsigned type = 0;
        unsigned seq = 0;
        char hex[2 * SD_PROTO_MAX_PAYLOAD + 2];
        if (sscanf(line, "%u %u %2801s", &type, &seq, hex) != 3) {
            fprintf(stderr, "codec_tool: bad line: %s", line);
            return 2;
        }
        size_t n = 0;
        if (strcmp(hex, "-") != 0) {
            size_t digits = strlen(hex);
            if (digits % 2u != 0u || digits / 2u > SD_PROTO_MAX_PAYLOAD) {
                fprintf(stderr, "codec_tool: bad payload length\n");
                return 2;
            }
            for (; n < digits / 2u; n++) {
                int hi = hexval(hex[2u * n]);
                int lo = hexval(hex[2u * n + 1u]);
                if (hi < 0 || lo < 0) {
                    fprintf(stderr, "codec_tool: bad hex\n");
                    return 2;
                }
                frame[SD_PROTO_HEADER_SIZE + n] = (uint8_t)(hi * 16 + lo);
            }
        }
        size_t len = sd_frame_finish(frame, (uint8_t)type, (uint16_t)seq, n);
        sd_frame_write(frame, len, put_stdout, NULL);
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "decode") == 0) {
        return decode();
    }
    if (argc == 2 && strcmp(argv[1], "encode") == 0) {
        return encode();
    }
    fprintf(stderr, "usage: codec_tool decode|encode\n");
    return 2;
}
