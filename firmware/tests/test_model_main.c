/*
 * test_model_main.c - host driver for the whole-model parity test
 * (tests/test_kernels.py): reads N int8 input tensors from a file, runs
 * sd_model_invoke on each, writes the N int8 output tensors to a file.
 *
 * usage: test_model INPUT.bin OUTPUT.bin N
 */
#include <stdio.h>
#include <stdlib.h>

#include "sd_model.h"

int main(int argc, char **argv)
{
    static int8_t in[SD_MODEL_INPUT_SIZE];
    static int8_t out[SD_MODEL_OUTPUT_SIZE];
    if (argc != 4) {
        fprintf(stderr, "usage: %s INPUT.bin OUTPUT.bin N\n", argv[0]);
        return 2;
    }
    FILE *fi = fopen(argv[1], "rb");
    FILE *fo = fopen(argv[2], "wb");
    const long n = strtol(argv[3], NULL, 10);
    if (fi == NULL || fo == NULL || n < 0) {
        fprintf(stderr, "cannot open files\n");
        return 2;
    }
    for (long k = 0; k < n; ++k) {
        sd_model_cost_t cost;
        if (fread(in, 1, sizeof in, fi) != sizeof in) {
            fprintf(stderr, "short input at %ld\n", k);
            return 2;
        }
        if (sd_model_invoke(in, out, &cost) != SD_MODEL_OK) {
            fprintf(stderr, "invoke failed at %ld\n", k);
            return 1;
        }
        if (fwrite(out, 1, sizeof out, fo) != sizeof out) {
            return 2;
        }
    }
    fclose(fi);
    fclose(fo);
    return 0;
}
