/*
 * cm_halt.c - end of program on a Cortex-M.
 *
 * With SD_SEMIHOSTING=1 (test builds only, run under QEMU with
 * -semihosting-config enable=on,target=native) the program exits through
 * semihosting SYS_EXIT_EXTENDED, so QEMU's exit status is `code`. Board
 * builds never execute BKPT: without a debugger it would escalate to a
 * HardFault.
 */
#include "cm_port.h"

#if defined(SD_SEMIHOSTING) && SD_SEMIHOSTING
#include "cm_semihost.h"

void cm_halt(int code)
{
    cm_semihost_exit(code);
}
#else
void cm_halt(int code)
{
    (void)code;
    for (;;) {
        __asm volatile("wfi");
    }
}
#endif
