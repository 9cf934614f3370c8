/*
 * sd_rfft_q15.h - the integer real FFT and power spectrum of front end v2
 * (src/sd_rfft_q15.c; train/intfront.py steps 2-3). Tables and sizes come
 * from the generated sd_frontend_config.h.
 */
#ifndef SD_RFFT_Q15_H
#define SD_RFFT_Q15_H

#include <stdint.h>

/* z: SD_CFFT_N packed complex points (real part in the low half), every part
 * in [-2^14, 2^14); overwritten. power: SD_N_BINS values, each < 2^31. */
void sd_rfft_power_q15(uint32_t *z, uint32_t *power);

#endif /* SD_RFFT_Q15_H */
