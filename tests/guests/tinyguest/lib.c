/* tinyguest: the bits of libc it needs, the UART, time, command line parsing, power-off. */
#include "tg.h"

#define COM1 0x3f8

uint64_t tg_tsc_khz = 1000000; /* 1 GHz until the command line says */

void *memcpy(void *d, const void *s, size_t n)
{
    uint8_t *dp = d;
    const uint8_t *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memset(void *d, int c, size_t n)
{
    uint8_t *dp = d;
    while (n--)
        *dp++ = (uint8_t)c;
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i])
            return x[i] - y[i];
    }
    return 0;
}

static void putc_(char c)
{
    while (!(inb(COM1 + 5) & 0x20))
        ;
    outb(COM1, (uint8_t)c);
}

void puts_(const char *s)
{
    while (*s)
        putc_(*s++);
}

void put_dec(uint64_t v)
{
    char b[24];
    int i = 0;
    do {
        b[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i)
        putc_(b[--i]);
}

void put_hex(uint64_t v)
{
    puts_("0x");
    for (int i = 60; i >= 0; i -= 4) {
        unsigned d = (v >> i) & 0xf;
        if (d || i == 0 || (v >> i))
            putc_("0123456789abcdef"[d]);
    }
}

void put_ip(uint32_t ip)
{
    const uint8_t *b = (const uint8_t *)&ip;
    for (int i = 0; i < 4; i++) {
        if (i)
            putc_('.');
        put_dec(b[i]);
    }
}

void put_mac(const uint8_t *m)
{
    for (int i = 0; i < 6; i++) {
        if (i)
            putc_(':');
        putc_("0123456789abcdef"[m[i] >> 4]);
        putc_("0123456789abcdef"[m[i] & 15]);
    }
}

void poweroff(uint8_t status)
{
    outb(TG_EXIT_PORT, status);
    for (;;)
        __asm__ volatile("hlt");
}

uint64_t now_ms(void)
{
    return rdtsc() / tg_tsc_khz;
}

bool cmdline_get(const char *c, const char *key, char *buf, size_t cap)
{
    size_t klen = 0;
    while (key[klen])
        klen++;
    while (*c) {
        while (*c == ' ')
            c++;
        const char *w = c;
        while (*c && *c != ' ')
            c++;
        if ((size_t)(c - w) > klen && w[klen] == '=' && memcmp(w, key, klen) == 0) {
            size_t n = (size_t)(c - w) - klen - 1;
            if (n >= cap)
                return false;
            memcpy(buf, w + klen + 1, n);
            buf[n] = 0;
            return true;
        }
    }
    return false;
}

bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    unsigned base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (unsigned)(*s - 'A' + 10);
        else
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

bool parse_ip(const char *s, uint32_t *out)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++) {
        unsigned v = 0, nd = 0;
        while (*s >= '0' && *s <= '9' && nd < 4) {
            v = v * 10 + (unsigned)(*s++ - '0');
            nd++;
        }
        if (!nd || v > 255 || (i < 3 && *s++ != '.'))
            return false;
        b[i] = (uint8_t)v;
    }
    if (*s)
        return false;
    memcpy(out, b, 4);
    return true;
}
