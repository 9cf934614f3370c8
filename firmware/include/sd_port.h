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
