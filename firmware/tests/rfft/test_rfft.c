/*
 * test_rfft.c - CMSIS-DSP arm_rfft_fast_f32 (512 points) against numpy.
 *
 * Golden data: rfft_ref.h, made by gen_rfft_ref.py (numpy.fft.rfft in
 * float64 of a float32 test signal). Run on the host and under QEMU:
 *
 *   make -C firmware BOARD=posix      TEST_LIB=0 TEST_MAIN=tests/rfft/test_rfft.c test
 *   make -C firmware BOARD=mps2-an386 TEST_LIB=0 TEST_MAIN=tests/rfft/test_rfft.c test
 *
 * CMSIS-DSP's packed output (N = 512 real inputs -> N floats):
 *   out[0] = Re X[0] (DC; Im is 0), out[1] = Re X[N/2] (Nyquist; Im is 0),
 *   out[2k] = Re X[k], out[2k+1] = Im X[k] for k = 1 .. N/2-1.
 * The transform is unscaled (like numpy's "backward" norm) and overwrites
 * its input buffer.
 *
 * Tolerance: max |out - ref| <= RFFT_TOL * max |ref| (float32 rounding over
 * log2(512) = 9 butterfly stages). Also printed: the cost of one transform
 * and a hash of the output bits, to compare boards (the host and QEMU builds
 * both use -ffp-contract=off).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "arm_math.h"
#include "rfft_ref.h"
#include "sd_port.h"

#define RFFT_TOL 1e-6f

static float32_t work[RFFT_N];
static float32_t out[RFFT_N];

static uint32_t fnv1a(const float32_t *v, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;
    size_t b;

    for (i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        for (b = 0; b < 4u; b++) {
            h = (h ^ ((bits >> (8u * b)) & 0xFFu)) * 16777619u;
        }
    }
    return h;
}

int main(void)
{
    arm_rfft_fast_instance_f32 fft;
    float max_err = 0.0f;
    float max_ref = 0.0f;
    int worst = 0;
    int ok;
    int i;
    uint64_t t0;
    uint64_t t1;

    sd_port_init();
    if (arm_rfft_fast_init_512_f32(&fft) != ARM_MATH_SUCCESS) {
        puts("FAIL: arm_rfft_fast_init_512_f32");
        sd_port_exit(1);
        return 1;
    }
    memcpy(work, rfft_input, sizeof work);
    t0 = sd_port_cost_now();
    arm_rfft_fast_f32(&fft, work, out, 0);
    t1 = sd_port_cost_now();

    for (i = 0; i < RFFT_N; i++) {
        float err = fabsf(out[i] - rfft_ref[i]);
        if (err > max_err) {
            max_err = err;
            worst = i;
        }
        if (fabsf(rfft_ref[i]) > max_ref) {
            max_ref = fabsf(rfft_ref[i]);
        }
    }
    ok = max_err <= RFFT_TOL * max_ref;
    printf("board %s: rfft 512 max_abs_err %.3e at out[%d] (%.3e of max |X| "
           "%.3f), tolerance %.1e\n",
           sd_port_board_name(), (double)max_err, worst,
           (double)(max_err / max_ref), (double)max_ref, (double)RFFT_TOL);
    printf("out[0] DC %.6f (ref %.6f), out[1] Nyquist %.6f (ref %.6f)\n",
           (double)out[0], (double)rfft_ref[0], (double)out[1],
           (double)rfft_ref[1]);
    printf("cost %lu %s, output hash 0x%08lx\n", (unsigned long)(t1 - t0),
           sd_port_cost_unit(), (unsigned long)fnv1a(out, RFFT_N));
    puts(ok ? "PASS" : "FAIL");
    sd_port_exit(ok ? 0 : 1);
    return ok ? 0 : 1;
}
