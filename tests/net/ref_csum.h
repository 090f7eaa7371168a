/*
 * Reference Internet checksum (RFC 1071 as printed: big-endian 16-bit words, end-around carry)
 * and byte-order helpers for tests. Deliberately naive and independent of src/net/offload.c, so
 * the tests of the real implementation compare it against something it does not share code with.
 */
#ifndef VSW_TEST_REF_CSUM_H
#define VSW_TEST_REF_CSUM_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t ref_add(uint32_t acc, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        acc += i % 2 == 0 ? (uint32_t)b[i] << 8 : b[i];
    return acc;
}

static inline uint16_t ref_fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

static inline uint16_t get16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t get32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline void put16(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

/* Pseudo-header sum of an L4 segment of l4_len bytes with protocol `proto`; ip is the IP header. */
static inline uint32_t ref_pseudo(const uint8_t *ip, int ipv, uint32_t l4_len, uint8_t proto)
{
    uint32_t acc = ipv == 4 ? ref_add(0, ip + 12, 8) : ref_add(0, ip + 8, 32);
    return acc + proto + (l4_len >> 16) + (l4_len & 0xffff);
}

#endif
