# posix: the firmware as a host program serving a pseudo-terminal.
BOARD_KIND := host
PORT_SRCS := ports/posix/sd_port_posix.c
PORT_INCS := ports/posix
