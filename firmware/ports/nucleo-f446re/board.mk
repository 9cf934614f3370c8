# nucleo-f446re: STM32F446RE, USART2 (ST-LINK virtual COM), DWT cycle cost.
BOARD_KIND := arm
PORT_SRCS := ports/stm32f4/sd_port_stm32f4.c $(CORTEX_M_SRCS)
PORT_INCS := ports/nucleo-f446re ports/stm32f4 ports/cortex_m
LDSCRIPT := ports/nucleo-f446re/stm32f446re.ld
FLASH_ADDR := 0x08000000
OPENOCD_CFG := board/st_nucleo_f4.cfg
