/*
 * stm32f4_board.h - NUCLEO-F446RE settings for the shared STM32F4 port
 * (ports/stm32f4/). USART2 on PA2 (TX) / PA3 (RX), alternate function 7, is
 * wired to the ST-LINK virtual COM port (/dev/ttyACM0 on Linux).
 */
#ifndef STM32F4_BOARD_H
#define STM32F4_BOARD_H

#define STM32F4_BOARD_NAME "nucleo-f446re"
#define STM32F4_USART 2        /* USART2: APB1, IRQ 38 */
#define STM32F4_TX_PIN 2       /* PA2 */
#define STM32F4_RX_PIN 3       /* PA3 */
#define STM32F4_NUM_IRQ 97     /* STM32F446 vector table: IRQ 0..96 */

#endif /* STM32F4_BOARD_H */
