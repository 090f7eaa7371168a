/*
 * A small AML (ACPI Machine Language, ACPI 6.4 chapter 20) encoder: just what the DSDT of
 * vswitch-vmm needs — Scope, Device, Name, Package, integers, strings, EISA ids and buffers
 * (ResourceTemplates and their descriptors). It writes into a caller's buffer; the first error
 * (no room, a malformed name or id) is remembered in a->err and turns every later call into a
 * no-op, so a builder checks once at the end.
 *
 * Package lengths (PkgLength) include their own 1-4 bytes, which are only known when the body
 * is complete: aml_*_begin() returns the body's start and aml_end() moves the body up to make
 * room for the encoded length. Main thread, before the vCPUs start.
 */
#include "vmm_int.h"

#include <errno.h>
#include <string.h>

#define AML_ZERO         0x00
#define AML_ONE          0x01
#define AML_NAME_OP      0x08
#define AML_BYTE_PREFIX  0x0a
#define AML_WORD_PREFIX  0x0b
#define AML_DWORD_PREFIX 0x0c
#define AML_STRING       0x0d
#define AML_QWORD_PREFIX 0x0e
#define AML_SCOPE_OP     0x10
#define AML_BUFFER_OP    0x11
#define AML_PACKAGE_OP   0x12
#define AML_EXT_PREFIX   0x5b
#define AML_DEVICE_OP    0x82 /* after AML_EXT_PREFIX */
#define AML_ROOT_CHAR    0x5c /* '\' */
#define AML_PKGLEN_MAX   ((1u << 28) - 1)

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
    a->buf = buf;
    a->len = 0;
    a->cap = cap;
    a->err = 0;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
    if (a->err)
        return;
    if (n > a->cap - a->len) {
        a->err = -ENOSPC;
        return;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
    aml_bytes(a, &b, 1);
}

static void put_le(struct aml *a, uint64_t v, unsigned n)
{
    uint8_t b[8];
    for (unsigned i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    aml_bytes(a, b, n);
}

static bool lead_char(char c)
{
    return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return lead_char(c) || (c >= '0' && c <= '9');
}

void aml_name(struct aml *a, const char *name)
{
    if (a->err)
        return;
    if (name[0] == '\\') {
        aml_byte(a, AML_ROOT_CHAR);
        name++;
    }
    /* One NameSeg: 1-4 characters, padded with '_' as iasl does. */
    size_t n = strlen(name);
    if (n == 0 || n > 4 || !lead_char(name[0])) {
        a->err = -EINVAL;
        return;
    }
    char seg[4] = {'_', '_', '_', '_'};
    for (size_t i = 0; i < n; i++) {
        if (!name_char(name[i])) {
            a->err = -EINVAL;
            return;
        }
        seg[i] = name[i];
    }
    aml_bytes(a, seg, 4);
}

void aml_integer(struct aml *a, uint64_t v)
{
    if (v == 0) {
        aml_byte(a, AML_ZERO);
    } else if (v == 1) {
        aml_byte(a, AML_ONE);
    } else if (v <= UINT8_MAX) {
        aml_byte(a, AML_BYTE_PREFIX);
        put_le(a, v, 1);
    } else if (v <= UINT16_MAX) {
        aml_byte(a, AML_WORD_PREFIX);
        put_le(a, v, 2);
    } else if (v <= UINT32_MAX) {
        aml_byte(a, AML_DWORD_PREFIX);
        put_le(a, v, 4);
    } else {
        aml_byte(a, AML_QWORD_PREFIX);
        put_le(a, v, 8);
    }
}

void aml_string(struct aml *a, const char *s)
{
    /* AsciiCharList: 0x01-0x7f, then NUL. */
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p > 0x7f) {
            if (!a->err)
                a->err = -EINVAL;
            return;
        }
    }
    aml_byte(a, AML_STRING);
    aml_bytes(a, s, strlen(s) + 1);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int aml_eisaid_value(const char *id, uint32_t *out)
{
    /* Three letters (5 bits each, 'A' = 1) then four hex digits, stored big-endian. */
    if (strlen(id) != 7)
        return -EINVAL;
    uint32_t vendor = 0, product = 0;
    for (int i = 0; i < 3; i++) {
        if (id[i] < 'A' || id[i] > 'Z')
            return -EINVAL;
        vendor = vendor << 5 | (uint32_t)(id[i] - 0x40);
    }
    for (int i = 3; i < 7; i++) {
        int h = hexval(id[i]);
        if (h < 0)
            return -EINVAL;
        product = product << 4 | (uint32_t)h;
    }
    *out = (vendor >> 8) | (vendor & 0xff) << 8 | (product >> 8) << 16 | (product & 0xff) << 24;
    return 0;
}

void aml_eisaid(struct aml *a, const char *id)
{
    uint32_t v;
    if (a->err)
        return;
    if (aml_eisaid_value(id, &v) < 0) {
        a->err = -EINVAL;
        return;
    }
    aml_byte(a, AML_DWORD_PREFIX);
    put_le(a, v, 4);
}

void aml_end(struct aml *a, size_t mark)
{
    if (a->err)
        return;
    size_t body = a->len - mark;
    /* The length counts its own bytes: 1 byte up to 63, else 2-4 bytes (12, 20, 28 bits). */
    unsigned n = body + 1 <= 0x3f ? 1 : body + 2 < (1u << 12) ? 2 : body + 3 < (1u << 20) ? 3 : 4;
    size_t total = body + n;
    if (total > AML_PKGLEN_MAX) {
        a->err = -ENOSPC;
        return;
    }
    if (n > a->cap - a->len) {
        a->err = -ENOSPC;
        return;
    }
    memmove(a->buf + mark + n, a->buf + mark, body);
    uint8_t *p = a->buf + mark;
    if (n == 1) {
        p[0] = (uint8_t)total;
    } else {
        p[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
        for (unsigned i = 1; i < n; i++)
            p[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
    }
    a->len += n;
}

size_t aml_scope_begin(struct aml *a, const char *name)
{
    aml_byte(a, AML_SCOPE_OP);
    size_t mark = a->len;
    aml_name(a, name);
    return mark;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
    aml_byte(a, AML_EXT_PREFIX);
    aml_byte(a, AML_DEVICE_OP);
    size_t mark = a->len;
    aml_name(a, name);
    return mark;
}

size_t aml_package_begin(struct aml *a, uint8_t nelems)
{
    aml_byte(a, AML_PACKAGE_OP);
    size_t mark = a->len;
    aml_byte(a, nelems);
    return mark;
}

void aml_name_decl(struct aml *a, const char *name)
{
    aml_byte(a, AML_NAME_OP);
    aml_name(a, name);
}

void aml_name_buffer(struct aml *a, const char *name, const uint8_t *data, size_t n)
{
    aml_name_decl(a, name);
    aml_byte(a, AML_BUFFER_OP);
    size_t mark = a->len;
    aml_integer(a, n); /* BufferSize */
    aml_bytes(a, data, n);
    aml_end(a, mark);
}

/* ---- resource descriptors ---- */

void aml_res_io(struct aml *a, uint16_t base, uint8_t len)
{
    /* Small item 0x08 (I/O port), length 7: decode16, min, max, alignment, length. */
    const uint8_t d[] = {
        0x47, 0x01, (uint8_t)base, (uint8_t)(base >> 8), (uint8_t)base, (uint8_t)(base >> 8),
        0x01, len};
    aml_bytes(a, d, sizeof(d));
}

void aml_res_irq(struct aml *a, uint8_t irq)
{
    /* Small item 0x04 (IRQ), length 2: a 16-bit mask; no flags byte = edge, active high. */
    if (irq > 15) {
        if (!a->err)
            a->err = -EINVAL;
        return;
    }
    uint16_t mask = (uint16_t)(1u << irq);
    const uint8_t d[] = {0x22, (uint8_t)mask, (uint8_t)(mask >> 8)};
    aml_bytes(a, d, sizeof(d));
}

void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool rw)
{
    /* Large item 0x06 (32-bit fixed memory range), length 9. */
    aml_byte(a, 0x86);
    put_le(a, 9, 2);
    aml_byte(a, rw ? 1 : 0);
    put_le(a, base, 4);
    put_le(a, len, 4);
}

void aml_res_ext_irq(struct aml *a, uint32_t gsi, bool edge)
{
    /* Large item 0x09 (extended interrupt), length 6 for one interrupt. Flags: bit 0
     * consumer, bit 1 edge, bit 2 active low (no), bit 3 shared (no). */
    aml_byte(a, 0x89);
    put_le(a, 6, 2);
    aml_byte(a, (uint8_t)(0x01 | (edge ? 0x02 : 0)));
    aml_byte(a, 1);
    put_le(a, gsi, 4);
}

void aml_res_end(struct aml *a)
{
    const uint8_t d[] = {0x79, 0x00}; /* a checksum of 0 means "valid" */
    aml_bytes(a, d, sizeof(d));
}
