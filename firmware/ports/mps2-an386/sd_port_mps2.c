/*
 * sd_port_mps2.c - board port for QEMU's `-M mps2-an386` (Cortex-M4F).
 *
 * Serial: CMSDK APB UART0 at 0x40004000 (QEMU's first -serial), polled.
 * Cost:   SysTick on the 25 MHz processor clock. Under `-icount shift=0`
 *         QEMU retires one instruction per virtual nanosecond, so one tick
 *         is exactly 40 instructions; the counter reports instructions
 *         (not Cortex-M4 cycles). Without -icount the same number tracks
 *         host time (1 unit = 1 ns) and is not deterministic.
 */
#include "sd_port.h"

#include "cm_port.h"
#include "cm_regs.h"

#define MPS2_SYSCLK_HZ 25000000u
#define MPS2_NS_PER_TICK (1000000000u / MPS2_SYSCLK_HZ) /* = 40 */

#ifndef SD_BAUD
#define SD_BAUD 115200u
#endif

/* CMSDK APB UART (Arm DDI0479C, Cortex-M System Design Kit TRM) */
#define UART0_BASE 0x40004000u
#define UART_DATA CM_REG(UART0_BASE + 0x00u)
#define UART_STATE CM_REG(UART0_BASE + 0x04u)
#define UART_CTRL CM_REG(UART0_BASE + 0x08u)
#define UART_BAUDDIV CM_REG(UART0_BASE + 0x10u)
#define UART_STATE_TXFULL (1u << 0)
#define UART_STATE_RXFULL (1u << 1)
#define UART_STATE_OVERRUNS (3u << 2) /* write 1 to clear */
#define UART_STATE_RXOVERRUN (1u << 3)
#define UART_CTRL_TX_EN (1u << 0)
#define UART_CTRL_RX_EN (1u << 1)

void sd_port_init(void)
{
    UART_CTRL = 0u;
    UART_BAUDDIV = MPS2_SYSCLK_HZ / SD_BAUD; /* >= 16 required */
    UART_STATE = UART_STATE_OVERRUNS;
    UART_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN;
    (void)cm_cost_init(0);
}

static uint32_t s_rx_dropped; /* RX overruns seen (each lost >= 1 byte) */
static uint16_t s_rx_high;    /* 1 once a byte has been received */

size_t sd_port_read(uint8_t *buf, size_t max)
{
    size_t n = 0;

    if (UART_STATE & UART_STATE_RXOVERRUN) {
        UART_STATE = UART_STATE_RXOVERRUN;
        s_rx_dropped++;
    }

    while (n < max && (UART_STATE & UART_STATE_RXFULL)) {
        buf[n++] = (uint8_t)UART_DATA;
        s_rx_high = 1u;
    }
    return n;
}

void sd_port_rx_stats(sd_port_rx_stats_t *out)
{
    out->dropped = s_rx_dropped;
    /* Polled, one data register: QEMU's UART holds the next byte back until
     * the register is read (no limit); on silicon the polling loop must keep
     * up, and RX overruns are counted above. */
    out->window = 0u;
    out->high_water = s_rx_high;
}

void sd_port_write(const uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        while (UART_STATE & UART_STATE_TXFULL) {
        }
        UART_DATA = buf[i];
    }
}

uint64_t sd_port_cost_now(void)
{
    return cm_cost_count() * MPS2_NS_PER_TICK;
}

const char *sd_port_cost_unit(void)
{
    return "instructions";
}

const char *sd_port_board_name(void)
{
    return "mps2-an386";
}

void sd_port_exit(int code)
{
    cm_halt(code);
}
