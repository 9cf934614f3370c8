/*
 * test_le.h - little-endian reads and writes for the protocol's test programs
 * (tests/protocol/test_protocol.c, tests/fuzz/fuzz_protocol.c). Written from
 * docs/protocol.md on purpose, apart from the firmware's src/sd_le.h, so the
 * tests do not share the code they check.
 */
#ifndef TEST_LE_H
#define TEST_LE_H

#include <stdint.h>

static inline uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

static inline void wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, v);
    wr16(p + 2, v >> 16);
}

#endif /* TEST_LE_H */
