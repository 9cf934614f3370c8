/*
 * sd_port.h - the only interface between the portable core and a board.
 *
 * Each board implements these functions in firmware/ports/<board>/. The core
 * (firmware/src) never includes a vendor or board header: everything it needs
 * from the hardware goes through this file.
 */
#ifndef SD_PORT_H
#define SD_PORT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bring up clocks, the serial port and the cost counter. Called once. */
void sd_port_init(void);

/* Non-blocking read: copies at most `max` bytes that have already arrived
 * into `buf` and returns how many (0 when nothing is pending). */
size_t sd_port_read(uint8_t *buf, size_t max);

/* What the receive path lost and how full it got, for the STATS message
 * (docs/protocol.md). Counters start at 0 in sd_port_init and wrap. */
typedef struct {
    uint32_t dropped;    /* received bytes lost before sd_port_read saw them:
                          * receive buffer full, UART overrun, framing or
                          * noise error (0 where the port cannot lose bytes) */
    uint16_t window;     /* receive window: the most bytes the host may send
                          * before it waits for the response, whatever the
                          * core is doing meanwhile (the interrupt-fed ring's
                          * size); 0 = no limit (the link is flow controlled,
                          * or a polled UART that QEMU back-pressures) */
    uint16_t high_water; /* most bytes ever waiting in the port's buffer */
} sd_port_rx_stats_t;

void sd_port_rx_stats(sd_port_rx_stats_t *out);

/* Blocking write of all `len` bytes. */
void sd_port_write(const uint8_t *buf, size_t len);

/* Monotonic cost counter in the unit named by sd_port_cost_unit(). */
uint64_t sd_port_cost_now(void);

/* "ns" (host clock), "instructions" (QEMU -icount), "cycles" (DWT CYCCNT). */
const char *sd_port_cost_unit(void);

/* Board name as used by `make BOARD=...`, e.g. "mps2-an386". */
const char *sd_port_board_name(void);

/* End the program with `code` (tests only: semihosting exit under QEMU,
 * exit() on the host; a board build without a debugger spins forever). */
void sd_port_exit(int code);

#ifdef __cplusplus
}
#endif

#endif /* SD_PORT_H */
