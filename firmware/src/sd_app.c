/*
 * sd_app.c - the firmware's main loop: read the serial port, decode frames,
 * answer each request (docs/protocol.md). The device never speaks first.
 */
#include "sd_port.h"
#include "sd_protocol.h"

/* Bytes taken from the port per read; the stack copy is all the receive
 * buffering the core does (the port may buffer more). */
#define SD_APP_READ_CHUNK 16u

/* All protocol state, including the one frame buffer (SD_PROTO_MAX_FRAME). */
static sd_proto_t s_proto;

static void sd_app_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    sd_port_write(data, len);
}

int main(void)
{
    sd_port_init();
    sd_proto_init(&s_proto, sd_app_write, NULL);
    for (;;) {
        uint8_t rx[SD_APP_READ_CHUNK];
        const size_t n = sd_port_read(rx, sizeof rx);
        sd_proto_feed(&s_proto, rx, n);
    }
}
