/*
 * sd_port_posix.c - the firmware as a host program (Linux, macOS, BSD).
 *
 * Serial: a pseudo-terminal. sd_port_init() creates it, puts it in raw mode,
 *         prints one line `SERIAL <path>` on stdout and flushes; the host
 *         tool opens <path> like any serial port. The port keeps its own
 *         handle on the slave side so that a client may close and reopen the
 *         terminal any number of times (without it the master would report
 *         EIO/HUP after the first close).
 * Exit:   with `--exit-on-eof` on the command line (read from
 *         /proc/self/cmdline) or SD_EXIT_ON_EOF=1 in the environment, the
 *         program exits with status 0 once the first client has connected
 *         (sent a byte) and then closed the terminal.
 * Cost:   clock_gettime(CLOCK_MONOTONIC) in nanoseconds.
 *
 * sd_port_read() is non-blocking in the sense of sd_port.h, but when nothing
 * is pending it waits up to SD_POSIX_IDLE_MS for input to arrive so that a
 * polling main loop does not burn a host core; data that arrives ends the
 * wait at once.
 */
#define _XOPEN_SOURCE 600

#include "sd_port.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef SD_POSIX_IDLE_MS
#define SD_POSIX_IDLE_MS 1
#endif

static int s_master = -1;
static int s_slave = -1;      /* our own slave handle, see above */
static int s_exit_on_eof;
static int s_client_seen;

static void die(const char *what)
{
    fprintf(stderr, "sd_firmware (posix): %s: %s\n", what, strerror(errno));
    exit(2);
}

static int want_exit_on_eof(void)
{
    const char *env = getenv("SD_EXIT_ON_EOF");
    char args[4096];
    size_t len;
    size_t i;
    FILE *f;

    if (env != NULL && strcmp(env, "1") == 0) {
        return 1;
    }
    f = fopen("/proc/self/cmdline", "rb");
    if (f == NULL) {
        return 0;
    }
    len = fread(args, 1, sizeof args - 1u, f);
    fclose(f);
    args[len] = '\0';
    for (i = 0; i < len; i += strlen(args + i) + 1u) {
        if (strcmp(args + i, "--exit-on-eof") == 0) {
            return 1;
        }
    }
    return 0;
}

static void make_raw(int fd)
{
    struct termios t;

    if (tcgetattr(fd, &t) != 0) {
        die("tcgetattr");
    }
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR |
                             IGNCR | ICRNL | IXON | IXOFF);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= CS8 | CREAD | CLOCAL;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &t) != 0) {
        die("tcsetattr");
    }
}

void sd_port_init(void)
{
    const char *name;
    int flags;

    s_exit_on_eof = want_exit_on_eof();
    s_master = posix_openpt(O_RDWR | O_NOCTTY);
    if (s_master < 0) {
        die("posix_openpt");
    }
    if (grantpt(s_master) != 0 || unlockpt(s_master) != 0) {
        die("grantpt/unlockpt");
    }
    name = ptsname(s_master);
    if (name == NULL) {
        die("ptsname");
    }
    s_slave = open(name, O_RDWR | O_NOCTTY);
    if (s_slave < 0) {
        die("open slave");
    }
    make_raw(s_slave);
    flags = fcntl(s_master, F_GETFL);
    if (flags < 0 || fcntl(s_master, F_SETFL, flags | O_NONBLOCK) != 0) {
        die("fcntl O_NONBLOCK");
    }
    printf("SERIAL %s\n", name);
    fflush(stdout);
}

/* The last client closed the terminal (only seen once our own slave handle
 * is gone): exit, or wait for the next client without spinning. */
static void client_gone(void)
{
    if (s_exit_on_eof) {
        exit(0);
    }
    (void)poll(NULL, 0, 10);
}

size_t sd_port_read(uint8_t *buf, size_t max)
{
    int attempt;

    if (max == 0u) {
        return 0u;
    }
    for (attempt = 0; attempt < 2; attempt++) {
        const ssize_t n = read(s_master, buf, max);
        if (n > 0) {
            if (!s_client_seen) {
                s_client_seen = 1;
                if (s_exit_on_eof) {
                    /* From now on the client's close shows as EIO. */
                    close(s_slave);
                    s_slave = -1;
                }
            }
            return (size_t)n;
        }
        if (n < 0 && errno == EIO) {
            client_gone();
            return 0u;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
            errno != EINTR) {
            die("read");
        }
        if (attempt == 0) {
            struct pollfd p;
            p.fd = s_master;
            p.events = POLLIN;
            p.revents = 0;
            (void)poll(&p, 1, SD_POSIX_IDLE_MS);
        }
    }
    return 0u;
}

void sd_port_rx_stats(sd_port_rx_stats_t *out)
{
    /* The pty is flow controlled: bytes wait in the kernel until read, so
     * nothing is dropped and the port itself buffers nothing. */
    out->dropped = 0u;
    out->window = 0u;
    out->high_water = 0u;
}

void sd_port_write(const uint8_t *buf, size_t len)
{
    while (len > 0u) {
        ssize_t n = write(s_master, buf, len);

        if (n > 0) {
            buf += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
                             errno == EINTR)) {
            /* Terminal buffer full: wait until the client reads (a client
             * that opens the port flushes stale input, unblocking us). */
            struct pollfd p;
            p.fd = s_master;
            p.events = POLLOUT;
            p.revents = 0;
            (void)poll(&p, 1, 10);
        } else if (n < 0 && errno == EIO) {
            client_gone();
            return; /* nobody to send to: drop */
        } else {
            die("write");
        }
    }
}

uint64_t sd_port_cost_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *sd_port_cost_unit(void)
{
    return "ns";
}

const char *sd_port_board_name(void)
{
    return "posix";
}

void sd_port_exit(int code)
{
    fflush(stdout);
    exit(code);
}
