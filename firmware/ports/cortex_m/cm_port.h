/*
 * cm_port.h - helpers shared by the Cortex-M ports (startup, cost counter,
 * semihosting). Internal to firmware/ports; the core never includes it.
 */
#ifndef CM_PORT_H
#define CM_PORT_H

#include <stdint.h>

/* Exit code a test build reports when an unexpected exception is taken. */
#define CM_EXIT_FAULT 125

/* Stop the program. Test builds (SD_SEMIHOSTING=1) end QEMU with `code`
 * through semihosting SYS_EXIT_EXTENDED; board builds wait for interrupts
 * forever (a semihosting call without a debugger would fault). */
void cm_halt(int code);

/* Cost counter. cm_cost_init() starts SysTick (24-bit, processor clock,
 * interrupt on wrap) and, when `try_dwt` is set, the DWT cycle counter.
 * It returns 1 when DWT CYCCNT runs (real silicon), 0 when it does not (QEMU
 * models no DWT: CYCCNT reads 0); cm_cost_count() then counts in core cycles
 * or in SysTick ticks accordingly, extended to 64 bits. */
int cm_cost_init(int try_dwt);
uint64_t cm_cost_count(void);

#endif /* CM_PORT_H */
