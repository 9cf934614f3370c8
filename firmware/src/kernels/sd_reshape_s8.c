/*
 * sd_reshape_s8.c - RESHAPE: the bytes do not change; copy unless in place.
 */
#include <string.h>

#include "sd_kernels.h"

sd_status_t sd_reshape_s8(const int8_t *input, int8_t *output, int32_t size)
{
    if (input == 0 || output == 0 || size < 0) {
        return SD_STATUS_ERROR_ARGUMENT;
    }
    if (input != output) {
        memmove(output, input, (size_t)size);
    }
    return SD_STATUS_OK;
}
