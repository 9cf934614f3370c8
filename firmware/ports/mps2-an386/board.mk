# mps2-an386: QEMU's Arm MPS2 AN386 (Cortex-M4F), CMSDK UART0, SysTick cost.
BOARD_KIND := arm
PORT_SRCS := ports/mps2-an386/sd_port_mps2.c $(CORTEX_M_SRCS)
PORT_INCS := ports/mps2-an386 ports/cortex_m
LDSCRIPT := ports/mps2-an386/mps2_an386.ld
QEMU_MACHINE := mps2-an386
# 1 instruction per virtual ns: SysTick counts are deterministic.
QEMU_ARGS := -icount shift=0
