/*
 * cm_semihost.h - Arm semihosting for test builds under QEMU
 * (-semihosting-config enable=on,target=native). Never linked into board
 * builds: see cm_halt.c.
 */
#ifndef CM_SEMIHOST_H
#define CM_SEMIHOST_H

#include <stddef.h>

/* Ends the program; QEMU exits with status `code` (SYS_EXIT_EXTENDED). */
void cm_semihost_exit(int code) __attribute__((noreturn));

/* Writes `len` bytes to the host's stdout (fd 1) or stderr (fd 2).
 * Returns the number of bytes written, or -1. */
int cm_semihost_write(int fd, const void *buf, size_t len);

#endif /* CM_SEMIHOST_H */
