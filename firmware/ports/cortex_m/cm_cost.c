/*
 * cm_cost.c - 64-bit cost counter from DWT CYCCNT or SysTick.
 *
 * SysTick runs in both modes, reloading every 2^24 processor clocks with its
 * interrupt enabled:
 *  - SysTick mode (QEMU): the handler counts wraps; a reading combines the
 *    wrap count with the current (down-counting) value. A wrap whose
 *    exception is still pending (ICSR.PENDSTSET) is added by the reader.
 *  - DWT mode (silicon): CYCCNT is 32 bits; the handler samples it at least
 *    once per 2^24 cycles, so every 2^32 wrap is seen and counted.
 */
#include "cm_port.h"
#include "cm_regs.h"

static volatile uint32_t s_wraps;     /* SysTick mode: reloads so far */
static volatile uint32_t s_cyc_hi;    /* DWT mode: upper 32 bits */
static volatile uint32_t s_cyc_last;  /* DWT mode: last CYCCNT seen */
static int s_use_dwt;

static uint64_t dwt_extend(void)
{
    uint32_t primask = cm_irq_save();
    uint32_t now = CM_DWT_CYCCNT;
    uint64_t value;

    if (now < s_cyc_last) {
        s_cyc_hi = s_cyc_hi + 1u;
    }
    s_cyc_last = now;
    value = ((uint64_t)s_cyc_hi << 32) | now;
    cm_irq_restore(primask);
    return value;
}

void SysTick_Handler(void)
{
    if (s_use_dwt) {
        (void)dwt_extend();
    } else {
        s_wraps = s_wraps + 1u;
    }
}

static int dwt_start(void)
{
    uint32_t first;
    volatile uint32_t spin;

    CM_DEMCR |= CM_DEMCR_TRCENA;
    CM_DWT_LAR = 0xC5ACCE55u;
    CM_DWT_CYCCNT = 0u;
    CM_DWT_CTRL |= CM_DWT_CTRL_CYCCNTENA;
    first = CM_DWT_CYCCNT;
    for (spin = 0u; spin < 16u; spin++) {
    }
    return CM_DWT_CYCCNT != first;
}

int cm_cost_init(int try_dwt)
{
    uint32_t primask;

    s_use_dwt = try_dwt ? dwt_start() : 0;
    s_wraps = 0u;
    s_cyc_hi = 0u;
    s_cyc_last = s_use_dwt ? CM_DWT_CYCCNT : 0u;

    CM_SYST_CSR = 0u;
    CM_SYST_RVR = CM_SYST_RELOAD_MAX;
    CM_SYST_CVR = 0u; /* any write clears the counter and COUNTFLAG */
    primask = cm_irq_save();
    CM_SYST_CSR = CM_SYST_CSR_CLKSOURCE | CM_SYST_CSR_TICKINT |
                  CM_SYST_CSR_ENABLE;
    /* The first reload (from the 0 written above) is not a wrap, but QEMU
     * pends the exception for it, which made the first reading after boot
     * one wrap (2^24 ticks) off. Wait for the reload, then drop that. */
    while (CM_SYST_CVR == 0u) {
    }
    CM_SCB_ICSR = CM_ICSR_PENDSTCLR;
    s_wraps = 0u;
    cm_irq_restore(primask);
    return s_use_dwt;
}

uint64_t cm_cost_count(void)
{
    uint32_t primask;
    uint32_t wraps;
    uint32_t current;

    if (s_use_dwt) {
        return dwt_extend();
    }
    primask = cm_irq_save();
    wraps = s_wraps;
    current = CM_SYST_CVR;
    if (CM_SCB_ICSR & CM_ICSR_PENDSTSET) {
        /* wrapped, handler not run yet: re-read after the wrap */
        current = CM_SYST_CVR;
        wraps++;
    }
    cm_irq_restore(primask);
    return (uint64_t)wraps * (CM_SYST_RELOAD_MAX + 1u) +
           (CM_SYST_RELOAD_MAX - current);
}
