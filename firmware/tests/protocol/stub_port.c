/*
 * stub_port.c - TEST STUB of sd_port.h on POSIX: serial = stdin/stdout (a
 * pipe or a pty master), cost = a counter that advances by 5 per read.
 * Exits 0 when stdin ends (EOF or EIO: the pty's other side closed).
 */
#define _POSIX_C_SOURCE 200809L

#include "sd_port.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

static uint64_t s_cost;

void sd_port_init(void)
{
    s_cost = 0;
}

size_t sd_port_read(uint8_t *buf, size_t max)
{
    struct pollfd pfd = {0, POLLIN, 0};
    int r = poll(&pfd, 1, 10);
    if (r <= 0) {
        return 0;
    }
    ssize_t n = read(0, buf, max);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
        return 0;
    }
    if (n <= 0) {
        exit(0);
    }
    return (size_t)n;
}

/* A stub that reports 3 dropped bytes and a 64-byte window, so a test can
 * tell the port's numbers from zeros. */
void sd_port_rx_stats(sd_port_rx_stats_t *out)
{
    out->dropped = 3u;
    out->window = 64u;
    out->high_water = 17u;
}

void sd_port_write(const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(1, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            exit(1);
        }
        buf += n;
        len -= (size_t)n;
    }
}

uint64_t sd_port_cost_now(void)
{
    s_cost += 5u;
    return s_cost;
}

const char *sd_port_cost_unit(void)
{
    return "ticks";
}

const char *sd_port_board_name(void)
{
    return "stub";
}

void sd_port_exit(int code)
{
    exit(code);
}
