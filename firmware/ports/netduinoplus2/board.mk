# netduinoplus2: STM32F405 under QEMU `-M netduinoplus2` (same STM32F4 code as
# the NUCLEO, with USART1); proves the STM32F4 port in CI.
BOARD_KIND := arm
PORT_SRCS := ports/stm32f4/sd_port_stm32f4.c $(CORTEX_M_SRCS)
PORT_INCS := ports/netduinoplus2 ports/stm32f4 ports/cortex_m
LDSCRIPT := ports/netduinoplus2/stm32f405rg.ld
FLASH_ADDR := 0x08000000
QEMU_MACHINE := netduinoplus2
QEMU_ARGS := -icount shift=0
