/*
 * echo_main.c - smoke test for a board port: every byte received on the
 * serial port is sent back unchanged. Built with `make BOARD=... echo` and
 * driven by tests/test_ports.py through host/emulator.py.
 */
#include "sd_port.h"

int main(void)
{
    uint8_t buf[64];

    sd_port_init();
    for (;;) {
        size_t n = sd_port_read(buf, sizeof buf);
        if (n > 0u) {
            sd_port_write(buf, n);
        }
    }
}
