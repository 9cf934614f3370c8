/*
 * test_cost.c - checks a port's cost counter against a loop of known length.
 *
 * On Arm the loop is `subs r0, #1; bne` (2 instructions per iteration, run
 * under QEMU -icount shift=0), so a counter in "instructions" must advance by
 * 2 * N, give or take one SysTick tick (40 instructions on mps2, ~6 on
 * netduinoplus2). With LOOPS_LONG iterations the counter also crosses
 * several 24-bit SysTick wraps, which tests the 64-bit extension.
 * On the host ("ns") the test only checks that time is monotonic.
 * Prints one line per measurement and PASS/FAIL; exit status 0 on PASS.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sd_port.h"

#if defined(__arm__)
static void spin(uint32_t n)
{
    __asm volatile(
        "   cmp %0, #0\n"
        "   beq 2f\n"
        "1: subs %0, %0, #1\n"
        "   bne 1b\n"
        "2:\n"
        : "+r"(n)::"cc");
}
#else
static void spin(uint32_t n)
{
    volatile uint32_t i;
    for (i = 0; i < n; i++) {
    }
}
#endif

/* Decimal text of a 64-bit value (newlib-nano's printf has no %llu). */
static const char *u64s(uint64_t v, char buf[24])
{
    char *p = buf + 23;
    *p = '\0';
    do {
        *--p = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    return p;
}

#ifndef LOOPS_LONG
#define LOOPS_LONG 400000000u /* 8e8 instructions: >= 1 wrap on mps2, 8 on netduinoplus2 */
#endif

static int measure(uint32_t n, uint64_t overhead, int check)
{
    uint64_t t0 = sd_port_cost_now();
    uint64_t t1;
    uint64_t got;
    int64_t err;
    uint64_t expect = 2u * (uint64_t)n;
    uint64_t tol = 80u + expect / 100000u; /* 2 ticks + 10 ppm */

    spin(n);
    t1 = sd_port_cost_now();
    got = t1 - t0 - overhead;
    err = (int64_t)got - (int64_t)expect;
    char b1[24], b2[24];

    printf("loop n=%lu: %s %s (expected %s, error %ld)\n", (unsigned long)n,
           u64s(got, b1), sd_port_cost_unit(), u64s(expect, b2), (long)err);
    if (t1 < t0) {
        return 0;
    }
    return !check || (err < 0 ? (uint64_t)-err : (uint64_t)err) <= tol;
}

int main(void)
{
    int instructions;
    int ok = 1;
    uint64_t overhead = 0;

    sd_port_init();
    instructions = sd_port_cost_unit()[0] == 'i';
    /* the very first measurement after boot (once off by a SysTick wrap),
     * checked once the call overhead is known */
    const uint64_t first0 = sd_port_cost_now();
    spin(1000u);
    const uint64_t first1 = sd_port_cost_now();
    printf("board %s, cost unit %s\n", sd_port_board_name(),
           sd_port_cost_unit());
    if (instructions) {
        /* overhead of the two calls: smallest of a few empty measurements */
        overhead = UINT64_MAX;
        for (int i = 0; i < 8; i++) {
            uint64_t a = sd_port_cost_now();
            uint64_t b = sd_port_cost_now();
            if (b - a < overhead) {
                overhead = b - a;
            }
        }
        char b[24];
        printf("call overhead: %s instructions\n", u64s(overhead, b));
    }
    {
        char b1[24];
        const uint64_t got = first1 - first0 - overhead;
        const int64_t err = (int64_t)got - 2000;
        printf("first loop after boot n=1000: %s %s (expected 2000, error %ld)\n", u64s(got, b1),
               sd_port_cost_unit(), (long)err);
        ok &= first1 >= first0 && (!instructions || (err < 0 ? -err : err) <= 80);
    }
    ok &= measure(1000u, overhead, instructions);
    ok &= measure(1000000u, overhead, instructions);
    ok &= measure(LOOPS_LONG, overhead, instructions);
    puts(ok ? "PASS" : "FAIL");
    sd_port_exit(ok ? 0 : 1);
    return ok ? 0 : 1;
}
