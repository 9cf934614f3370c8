/*
 * test_rfft_q15.c - the integer FFT and power spectrum (src/sd_rfft_q15.c)
 * against its Python definition (train/intfront.py steps 2-3), exactly.
 *
 * Golden data: rfft_q15_ref.h, made by gen_rfft_q15_ref.py. Run on the host
 * (plain C helpers) and under QEMU (the Cortex-M4's SIMD instructions):
 *
 *   make -C firmware BOARD=posix      TEST_LIB=0 TEST_MAIN=tests/rfft/test_rfft_q15.c \
 *        TEST_SRCS="src/sd_rfft_q15.c generated/sd_frontend_tables.c" test
 *
 * Every power must be identical; a mismatch prints frame, bin, device and
 * reference. Also printed: the cost of one transform and a hash of all the
 * outputs, to compare boards.
 */
#include <stdio.h>
#include <string.h>

#include "rfft_q15_ref.h"
#include "sd_frontend_config.h"
#include "sd_port.h"
#include "sd_rfft_q15.h"

#if RFFT_Q15_N != SD_CFFT_N || RFFT_Q15_BINS != SD_N_BINS
#error "rfft_q15_ref.h was made for another FFT size: run gen_rfft_q15_ref.py"
#endif

static uint32_t work[RFFT_Q15_N];
static uint32_t power[RFFT_Q15_BINS];

int main(void)
{
    uint32_t hash = 2166136261u;
    unsigned bad = 0;
    uint64_t cost = 0;

    sd_port_init();
    for (unsigned f = 0; f < RFFT_Q15_FRAMES; f++) {
        memcpy(work, rfft_q15_input[f], sizeof work);
        const uint64_t t0 = sd_port_cost_now();
        sd_rfft_power_q15(work, power);
        cost = sd_port_cost_now() - t0;
        for (unsigned k = 0; k < RFFT_Q15_BINS; k++) {
            if (power[k] != rfft_q15_power[f][k]) {
                if (bad < 10u) {
                    printf("frame %u bin %u: device %lu reference %lu\n", f, k, (unsigned long)power[k],
                           (unsigned long)rfft_q15_power[f][k]);
                }
                bad++;
            }
            for (unsigned b = 0; b < 4u; b++) {
                hash = (hash ^ ((power[k] >> (8u * b)) & 0xFFu)) * 16777619u;
            }
        }
    }
    printf("rfft_q15: %u frames, %u mismatches, output hash 0x%08lx, cost %lu %s\n", (unsigned)RFFT_Q15_FRAMES, bad,
           (unsigned long)hash, (unsigned long)cost, sd_port_cost_unit());
    puts(bad == 0u ? "PASS" : "FAIL");
    sd_port_exit(bad == 0u ? 0 : 1);
    return bad == 0u ? 0 : 1;
}
