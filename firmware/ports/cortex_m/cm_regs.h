/*
 * cm_regs.h - the few Cortex-M4 core registers the ports use (ARMv7-M
 * Architecture Reference Manual, "System Control Space"). Written for this
 * project; no CMSIS-Core or vendor header is used.
 */
#ifndef CM_REGS_H
#define CM_REGS_H

#include <stdint.h>

#define CM_REG(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* System Control Block */
#define CM_SCB_ICSR CM_REG(0xE000ED04u)   /* interrupt control and state */
#define CM_SCB_VTOR CM_REG(0xE000ED08u)   /* vector table offset */
#define CM_SCB_CPACR CM_REG(0xE000ED88u)  /* coprocessor access control */
#define CM_ICSR_PENDSTSET (1u << 26)      /* SysTick exception pending */
#define CM_ICSR_PENDSTCLR (1u << 25)      /* write 1: clear a pending SysTick */
#define CM_CPACR_CP10_CP11_FULL (0xFu << 20)

/* SysTick: 24-bit down counter */
#define CM_SYST_CSR CM_REG(0xE000E010u)
#define CM_SYST_RVR CM_REG(0xE000E014u)
#define CM_SYST_CVR CM_REG(0xE000E018u)
#define CM_SYST_CSR_ENABLE (1u << 0)
#define CM_SYST_CSR_TICKINT (1u << 1)
#define CM_SYST_CSR_CLKSOURCE (1u << 2)   /* 1 = processor clock */
#define CM_SYST_RELOAD_MAX 0x00FFFFFFu

/* Debug: DEMCR.TRCENA gates the DWT; DWT.CYCCNT counts core cycles */
#define CM_DEMCR CM_REG(0xE000EDFCu)
#define CM_DEMCR_TRCENA (1u << 24)
#define CM_DWT_CTRL CM_REG(0xE0001000u)
#define CM_DWT_CYCCNT CM_REG(0xE0001004u)
#define CM_DWT_LAR CM_REG(0xE0001FB0u)    /* lock access (harmless on M4) */
#define CM_DWT_CTRL_CYCCNTENA (1u << 0)

static inline uint32_t cm_irq_save(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static inline void cm_irq_restore(uint32_t primask)
{
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

static inline void cm_dsb_isb(void)
{
    __asm volatile("dsb\n\tisb" ::: "memory");
}

#endif /* CM_REGS_H */
