/*
 * sd_le.h - little-endian field access for the protocol (byte by byte, so
 * no alignment or struct-layout assumptions). Shared by sd_frame.c and
 * sd_protocol.c.
 */
#ifndef SD_LE_H
#define SD_LE_H

#include <stdint.h>

static inline uint16_t sd_rd16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | ((uint16_t)p[1] << 8));
}

static inline uint32_t sd_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void sd_wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
}

static inline void sd_wr32(uint8_t *p, uint32_t v)
{
    sd_wr16(p, v & 0xFFFFu);
    sd_wr16(p + 2, v >> 16);
}

static inline void sd_wr64(uint8_t *p, uint64_t v)
{
    sd_wr32(p, (uint32_t)(v & 0xFFFFFFFFu));
    sd_wr32(p + 4, (uint32_t)(v >> 32));
}

#endif /* SD_LE_H */
