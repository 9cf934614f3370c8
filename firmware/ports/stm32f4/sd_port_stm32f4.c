/*
 * sd_port_stm32f4.c - register-level board port shared by the STM32F4 boards
 * (NUCLEO-F446RE, Netduino Plus 2 / QEMU netduinoplus2). No vendor header or
 * HAL: the few registers used are defined below from the reference manuals
 * (RM0390 for the F446, RM0090 for the F405; identical at these offsets).
 * Board specifics (USART number, pins, vector count) come from
 * stm32f4_board.h in the board's folder.
 *
 * Clock:  the reset default, HSI 16 MHz, no PLL; APB1 = APB2 = 16 MHz, flash
 *         at 0 wait states with prefetch and caches on.
 * Serial: USARTx 8N1 at SD_BAUD (default 115200). Reception is interrupt
 *         driven into a ring buffer that holds a whole request (the USART
 *         holds one byte; the core may be busy for longer than one byte
 *         time). Lost bytes (ring full, overrun, framing or noise error) are
 *         counted and reported by STATS. Transmission polls.
 * Cost:   DWT CYCCNT in core cycles on silicon. QEMU does not model the DWT
 *         (CYCCNT stays 0): there SysTick is used, on QEMU's 168 MHz
 *         netduinoplus2 clock, and converted to instructions assuming
 *         `-icount shift=0` (1 instruction per virtual ns).
 */
#include "sd_port.h"

#include "cm_port.h"
#include "cm_regs.h"
#include "stm32f4_board.h"

#ifndef SD_BAUD
#define SD_BAUD 115200u
#endif
/* Receive ring (power of two), filled by the RXNE interrupt. It must hold a
 * whole request as it arrives on the wire (a 1410-byte frame is at most
 * 1416 COBS bytes, plus the host's leading and two trailing delimiters:
 * 1419), because nothing guarantees that the main loop drains it while the
 * request arrives. Measured under QEMU netduinoplus2: with a 256-byte ring,
 * up to 231 bytes of one AUDIO request waited in it on a lightly loaded
 * machine, and on a busy one the ring overflowed (STATS rx_dropped > 0, the
 * request answered BAD_CRC / BAD_FRAME). The size is reported by STATS as
 * the receive window: the host never sends more than that before it waits
 * for the response (docs/protocol.md, "Flow control"), so a build with a
 * smaller ring stays correct, with smaller AUDIO chunks. */
#ifndef SD_RX_RING_SIZE
#define SD_RX_RING_SIZE 2048u
#endif
#if (SD_RX_RING_SIZE & (SD_RX_RING_SIZE - 1u)) != 0
#error "SD_RX_RING_SIZE must be a power of two"
#endif

#define STM32F4_PCLK_HZ 16000000u       /* HSI, no prescaler */
#define STM32F4_QEMU_SYSCLK_HZ 168000000u /* QEMU netduinoplus2 SYSCLK */

/* RCC */
#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR CM_REG(RCC_BASE + 0x30u)
#define RCC_APB1ENR CM_REG(RCC_BASE + 0x40u)
#define RCC_APB2ENR CM_REG(RCC_BASE + 0x44u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB1ENR_USART2EN (1u << 17)
#define RCC_APB2ENR_USART1EN (1u << 4)

/* Flash interface */
#define FLASH_ACR CM_REG(0x40023C00u)
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)

/* GPIOA */
#define GPIOA_BASE 0x40020000u
#define GPIOA_MODER CM_REG(GPIOA_BASE + 0x00u)
#define GPIOA_OSPEEDR CM_REG(GPIOA_BASE + 0x08u)
#define GPIOA_PUPDR CM_REG(GPIOA_BASE + 0x0Cu)
#define GPIOA_AFR(n) CM_REG(GPIOA_BASE + 0x20u + 4u * (uint32_t)(n))
#define GPIO_MODE_AF 2u
#define GPIO_SPEED_HIGH 2u
#define GPIO_PULL_UP 1u
#define GPIO_AF_USART 7u

/* USART (USART1 0x40011000 on APB2, USART2 0x40004400 on APB1) */
#if STM32F4_USART == 1
#define USART_BASE 0x40011000u
#define USART_IRQ 37
#elif STM32F4_USART == 2
#define USART_BASE 0x40004400u
#define USART_IRQ 38
#else
#error "STM32F4_USART must be 1 or 2"
#endif
#define USART_SR CM_REG(USART_BASE + 0x00u)
#define USART_DR CM_REG(USART_BASE + 0x04u)
#define USART_BRR CM_REG(USART_BASE + 0x08u)
#define USART_CR1 CM_REG(USART_BASE + 0x0Cu)
#define USART_CR2 CM_REG(USART_BASE + 0x10u)
#define USART_CR3 CM_REG(USART_BASE + 0x14u)
#define USART_SR_FE (1u << 1)
#define USART_SR_NF (1u << 2)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)

/* NVIC */
#define NVIC_ISER(n) CM_REG(0xE000E100u + 4u * (uint32_t)(n))

/* ---- receive ring: written by the ISR, read by sd_port_read ---- */
static volatile uint8_t s_rx[SD_RX_RING_SIZE];
static volatile uint32_t s_rx_head; /* next write (ISR) */
static volatile uint32_t s_rx_tail; /* next read (main) */
static volatile uint32_t s_rx_dropped; /* bytes lost: ring full, ORE, FE or NF */
static volatile uint32_t s_rx_high; /* most bytes ever waiting in the ring */
static int s_cost_is_cycles;

void stm32f4_usart_irq(void);
void stm32f4_usart_irq(void)
{
    uint32_t sr = USART_SR;

    if (sr & (USART_SR_RXNE | USART_SR_ORE)) {
        uint8_t byte = (uint8_t)USART_DR; /* SR then DR read clears ORE */
        uint32_t head = s_rx_head;

        const uint32_t used = head - s_rx_tail;

        /* ORE: at least one byte was lost before this one; FE / NF: this
         * byte is damaged (it is kept: the frame's CRC rejects it). */
        if (sr & (USART_SR_ORE | USART_SR_FE | USART_SR_NF)) {
            s_rx_dropped = s_rx_dropped + 1u;
        }
        if (used < SD_RX_RING_SIZE) {
            s_rx[head & (SD_RX_RING_SIZE - 1u)] = byte;
            s_rx_head = head + 1u;
            if (used + 1u > s_rx_high) {
                s_rx_high = used + 1u;
            }
        } else {
            s_rx_dropped = s_rx_dropped + 1u;
        }
    }
}

/* Device interrupt vectors, placed by sections.ld right after the 16 core
 * vectors. Only the USART line is enabled; every other entry points at the
 * default handler. (Range designators are a GNU C extension.) */
typedef void (*cm_vector_t)(void);
void cm_default_handler(void);
__attribute__((section(".isr_vector_irq"), used))
const cm_vector_t stm32f4_irq_vectors[STM32F4_NUM_IRQ] = {
    [0 ... USART_IRQ - 1] = cm_default_handler,
    [USART_IRQ] = stm32f4_usart_irq,
    [USART_IRQ + 1 ... STM32F4_NUM_IRQ - 1] = cm_default_handler,
};

static void gpio_af_pin(unsigned pin)
{
    GPIOA_MODER = (GPIOA_MODER & ~(3u << (2u * pin))) |
                  (GPIO_MODE_AF << (2u * pin));
    GPIOA_OSPEEDR = (GPIOA_OSPEEDR & ~(3u << (2u * pin))) |
                    (GPIO_SPEED_HIGH << (2u * pin));
    GPIOA_AFR(pin / 8u) = (GPIOA_AFR(pin / 8u) & ~(0xFu << (4u * (pin % 8u)))) |
                          (GPIO_AF_USART << (4u * (pin % 8u)));
}

void sd_port_init(void)
{
    FLASH_ACR = FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN; /* 0 WS */

    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
#if STM32F4_USART == 1
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR; /* let the enable settle before the first access */
#else
    RCC_APB1ENR |= RCC_APB1ENR_USART2EN;
    (void)RCC_APB1ENR;
#endif
    gpio_af_pin(STM32F4_TX_PIN);
    gpio_af_pin(STM32F4_RX_PIN);
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(3u << (2u * STM32F4_RX_PIN))) |
                  (GPIO_PULL_UP << (2u * STM32F4_RX_PIN));

    /* 8N1, oversampling by 16: BRR = fPCLK / baud, rounded (mantissa and
     * 4-bit fraction in one number). 16 MHz / 115200 -> 139 (0.08 % off). */
    USART_CR1 = 0u;
    USART_CR2 = 0u;
    USART_CR3 = 0u;
    USART_BRR = (STM32F4_PCLK_HZ + SD_BAUD / 2u) / SD_BAUD;
    USART_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
    NVIC_ISER(USART_IRQ / 32) = 1u << (USART_IRQ % 32);

    s_cost_is_cycles = cm_cost_init(1);
}

size_t sd_port_read(uint8_t *buf, size_t max)
{
    uint32_t tail = s_rx_tail;
    uint32_t avail = s_rx_head - tail;
    size_t n = 0;

    while (n < max && n < avail) {
        buf[n] = s_rx[(tail + (uint32_t)n) & (SD_RX_RING_SIZE - 1u)];
        n++;
    }
    s_rx_tail = tail + (uint32_t)n;
    return n;
}

void sd_port_rx_stats(sd_port_rx_stats_t *out)
{
    out->dropped = s_rx_dropped;
    out->window = (uint16_t)SD_RX_RING_SIZE;
    out->high_water = (uint16_t)s_rx_high;
}

void sd_port_write(const uint8_t *buf, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        while (!(USART_SR & USART_SR_TXE)) {
        }
        USART_DR = buf[i];
    }
}

uint64_t sd_port_cost_now(void)
{
    uint64_t count = cm_cost_count();

    if (s_cost_is_cycles) {
        return count;
    }
    /* SysTick ticks at 168 MHz -> ns = instructions under -icount shift=0:
     * ticks * 1e9 / 168e6 = ticks * 125 / 21, split to avoid overflow. */
    return (count / 21u) * 125u + ((count % 21u) * 125u) / 21u;
}

const char *sd_port_cost_unit(void)
{
    return s_cost_is_cycles ? "cycles" : "instructions";
}

const char *sd_port_board_name(void)
{
    return STM32F4_BOARD_NAME;
}

void sd_port_exit(int code)
{
    cm_halt(code);
}
