/*
 * startup.c - reset handler and core vector table for a Cortex-M4F.
 *
 * Only the 16 core exception vectors are populated: the ports poll their
 * peripherals and use no device interrupt, so no NVIC line is ever enabled.
 * Symbols come from the board's linker script (see sections.ld):
 *   _estack            initial stack pointer (top of RAM)
 *   _sidata            load address of .data (in flash)
 *   _sdata, _edata     .data in RAM
 *   _sbss, _ebss       .bss in RAM
 */
#include <stddef.h>
#include <stdint.h>

#include "cm_regs.h"
#include "cm_port.h"

extern uint32_t _estack[];
extern const uint32_t _sidata[];
extern uint32_t _sdata[];
extern uint32_t _edata[];
extern uint32_t _sbss[];
extern uint32_t _ebss[];

int main(void);

void Reset_Handler(void);
void cm_default_handler(void);
void NMI_Handler(void) __attribute__((weak, alias("cm_default_handler")));
void HardFault_Handler(void) __attribute__((weak, alias("cm_default_handler")));
void MemManage_Handler(void) __attribute__((weak, alias("cm_default_handler")));
void BusFault_Handler(void) __attribute__((weak, alias("cm_default_handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("cm_default_handler")));
void SVC_Handler(void) __attribute__((weak, alias("cm_default_handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("cm_default_handler")));
void PendSV_Handler(void) __attribute__((weak, alias("cm_default_handler")));
void SysTick_Handler(void) __attribute__((weak, alias("cm_default_handler")));

typedef void (*cm_vector_t)(void);

__attribute__((section(".isr_vector"), used))
const cm_vector_t cm_vectors[16] = {
    (cm_vector_t)(uintptr_t)_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
};

/* Naked so that nothing (not even a prologue) runs before the FPU is on:
 * with -mfloat-abi=hard any VFP instruction faults while CPACR is 0 (and
 * QEMU locks up). */
__attribute__((naked, noreturn)) void Reset_Handler(void)
{
    __asm volatile(
        "ldr r0, =0xE000ED88\n\t"   /* CPACR */
        "ldr r1, [r0]\n\t"
        "orr r1, r1, #(0xF << 20)\n\t" /* CP10, CP11 full access */
        "str r1, [r0]\n\t"
        "dsb\n\t"
        "isb\n\t"
        "b cm_reset_c\n\t");
}

__attribute__((noreturn, used)) void cm_reset_c(void)
{
    /* sizes from addresses: the symbols are distinct objects to C */
    size_t data_words = ((uintptr_t)_edata - (uintptr_t)_sdata) / 4u;
    size_t bss_words = ((uintptr_t)_ebss - (uintptr_t)_sbss) / 4u;
    size_t i;

    for (i = 0; i < data_words; i++) {
        _sdata[i] = _sidata[i];
    }
    for (i = 0; i < bss_words; i++) {
        _sbss[i] = 0u;
    }
    CM_SCB_VTOR = (uint32_t)(uintptr_t)cm_vectors;
    cm_dsb_isb();

    {
        int status = main();
        for (;;) {
            cm_halt(status); /* test builds: QEMU exits with main's status */
        }
    }
}

/* Any unexpected exception: report it (test builds exit QEMU with code
 * CM_EXIT_FAULT through semihosting) or stop here for a debugger. */
void cm_default_handler(void)
{
    for (;;) {
        cm_halt(CM_EXIT_FAULT);
    }
}
