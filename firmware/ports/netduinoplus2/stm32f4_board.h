/*
 * stm32f4_board.h - Netduino Plus 2 (STM32F405RG) settings for the shared
 * STM32F4 port (ports/stm32f4/). QEMU's `-M netduinoplus2` connects its
 * first -serial to USART1 (0x40011000); on the board USART1 is on PA9 (TX) /
 * PA10 (RX), alternate function 7.
 */
#ifndef STM32F4_BOARD_H
#define STM32F4_BOARD_H

#define STM32F4_BOARD_NAME "netduinoplus2"
#define STM32F4_USART 1        /* USART1: APB2, IRQ 37 */
#define STM32F4_TX_PIN 9       /* PA9 */
#define STM32F4_RX_PIN 10      /* PA10 */
#define STM32F4_NUM_IRQ 82     /* STM32F405 vector table: IRQ 0..81 */

#endif /* STM32F4_BOARD_H */
