/*
 * sd_broadcast.h - the 4-D broadcast walk shared by the binary kernels
 * (ADD, MUL): visits the output in order and hands each element's two input
 * values to the op. Internal to the kernels.
 */
#ifndef SD_BROADCAST_H
#define SD_BROADCAST_H

#include <stdint.h>

#include "sd_kernels.h"

/* One output element from two input values; `params` is the op's own struct. */
typedef int8_t (*sd_binary_op_t)(const void *params, int32_t x1, int32_t x2);

/* Writes dims[0]*dims[1]*dims[2]*dims[3] outputs. Reads input1/input2 at the
 * strides in `bcast` (0 = repeat). The caller owns every buffer. */
void sd_broadcast_binary(const sd_broadcast_t *bcast, const int8_t *input1, const int8_t *input2,
                         int8_t *output, sd_binary_op_t op, const void *params);

#endif /* SD_BROADCAST_H */
