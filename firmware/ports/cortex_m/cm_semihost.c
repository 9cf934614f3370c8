/*
 * cm_semihost.c - Arm semihosting calls and the newlib system calls that a
 * test program needs (printf to the host's stdout, exit code to QEMU).
 * Compiled only into test builds (SD_SEMIHOSTING=1).
 *
 * Semihosting (Arm "Semihosting for AArch32 and AArch64"): r0 = operation,
 * r1 = argument (usually a pointer to a parameter block), `bkpt 0xAB` in
 * Thumb state, result in r0.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cm_semihost.h"

#define SH_SYS_OPEN 0x01
#define SH_SYS_WRITE 0x05
#define SH_SYS_EXIT 0x18
#define SH_SYS_EXIT_EXTENDED 0x20
#define SH_ADP_STOPPED_APPLICATION_EXIT 0x20026

static int sh_call(int op, const void *arg)
{
    register int r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void cm_semihost_exit(int code)
{
    uint32_t block[2];

    block[0] = SH_ADP_STOPPED_APPLICATION_EXIT;
    block[1] = (uint32_t)code;
    (void)sh_call(SH_SYS_EXIT_EXTENDED, block);
    /* Hosts without SYS_EXIT_EXTENDED: plain exit (status lost). */
    (void)sh_call(SH_SYS_EXIT, (const void *)SH_ADP_STOPPED_APPLICATION_EXIT);
    for (;;) {
    }
}

/* ":tt" opened with mode 4 ("w") is the host's stdout, mode 8 ("a") its
 * stderr. Handles are opened on first use. */
static int sh_handle(int fd)
{
    static int handles[3] = {-1, -1, -1};
    static const char tt[] = ":tt";

    if (fd < 1 || fd > 2) {
        return -1;
    }
    if (handles[fd] < 0) {
        uint32_t block[3];
        block[0] = (uint32_t)(uintptr_t)tt;
        block[1] = fd == 1 ? 4u : 8u;
        block[2] = sizeof tt - 1u;
        handles[fd] = sh_call(SH_SYS_OPEN, block);
    }
    return handles[fd];
}

int cm_semihost_write(int fd, const void *buf, size_t len)
{
    uint32_t block[3];
    int handle = sh_handle(fd);
    int left;

    if (handle < 0) {
        return -1;
    }
    block[0] = (uint32_t)handle;
    block[1] = (uint32_t)(uintptr_t)buf;
    block[2] = (uint32_t)len;
    left = sh_call(SH_SYS_WRITE, block); /* bytes NOT written */
    return (int)len - left;
}

/* ---- newlib system calls (nano.specs, no startfiles) ---- */

int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _close(int fd);
int _lseek(int fd, int off, int whence);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
void *_sbrk(ptrdiff_t incr);
void _exit(int code);
int _kill(int pid, int sig);
int _getpid(void);

int _write(int fd, const char *buf, int len)
{
    return cm_semihost_write(fd, buf, (size_t)len);
}

int _read(int fd, char *buf, int len)
{
    (void)fd;
    (void)buf;
    (void)len;
    return 0;
}

int _close(int fd)
{
    (void)fd;
    return -1;
}

int _lseek(int fd, int off, int whence)
{
    (void)fd;
    (void)off;
    (void)whence;
    return 0;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    (void)fd;
    return 1;
}

/* Heap from the end of .bss up to CM_STACK_RESERVE bytes below the stack
 * top (test programs only; the firmware allocates nothing). */
#define CM_STACK_RESERVE (16u * 1024u)
extern char _ebss[];
extern char _estack[];

void *_sbrk(ptrdiff_t incr)
{
    static uintptr_t brk;
    uintptr_t old;
    uintptr_t limit = (uintptr_t)_estack - CM_STACK_RESERVE;

    if (brk == 0u) {
        brk = (uintptr_t)_ebss;
    }
    old = brk;
    if (incr < 0 || (uintptr_t)incr > limit - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += (uintptr_t)incr;
    return (void *)old;
}

void _exit(int code)
{
    cm_semihost_exit(code);
}

int _kill(int pid, int sig)
{
    (void)pid;
    (void)sig;
    errno = EINVAL;
    return -1;
}

int _getpid(void)
{
    return 1;
}
