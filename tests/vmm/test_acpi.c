/*
 * ACPI tables and the AML encoder: checksums and lengths of every table, the RSDP -> XSDT ->
 * FADT/MADT -> DSDT pointers, the FADT's hardware-reduced power-off and reset registers, the
 * MADT's entries, and the DSDT read back by an AML parser of its own (independent of aml.c):
 * each device's _HID, _UID and _CRS (MMIO base and size, GSI; the UART's ports and IRQ), \_S5.
 * Then limits and malformed input: CPU and device counts, bad devices, buffers too small
 * (never written beyond), bad names and EISA ids, PkgLength encodings at their boundaries.
 */
#include "vmm_int.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define BASE 0xe0000ull

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return s;
}

/* A table at guest-physical gpa inside buf (which the guest sees at BASE): checked header. */
static const uint8_t *table(const uint8_t *buf, size_t size, uint64_t gpa, const char *sig)
{
    assert_true(gpa >= BASE && gpa - BASE + 36 <= size);
    const uint8_t *t = buf + (gpa - BASE);
    assert_memory_equal(t, sig, 4);
    uint32_t len = rd32(t + 4);
    assert_true(len >= 36 && gpa - BASE + len <= size);
    assert_int_equal(sum(t, len), 0);
    assert_memory_equal(t + 10, "VSWTCH", 6);
    return t;
}

/* ---- a small AML reader, for checking what aml.c wrote ---- */

struct dev {
    char name[5];
    char hid[16];
    long uid;
    uint8_t crs[128];
    size_t crs_len;
};

struct parsed {
    struct dev dev[32];
    unsigned ndev;
    bool s5;
    uint64_t s5_typ[4];
};

static size_t pkglen(const uint8_t *p, size_t avail, size_t *len)
{
    assert_true(avail >= 1);
    unsigned follow = p[0] >> 6;
    assert_true(avail >= 1 + follow);
    if (follow == 0) {
        *len = p[0] & 0x3f;
    } else {
        assert_int_equal(p[0] & 0x30, 0); /* reserved bits */
        *len = p[0] & 0x0f;
        for (unsigned i = 0; i < follow; i++)
            *len |= (size_t)p[1 + i] << (4 + 8 * i);
    }
    assert_true(*len >= 1u + follow && *len <= avail);
    return 1 + follow;
}

static size_t name(const uint8_t *p, size_t avail, char out[5])
{
    size_t n = 0;
    if (avail && p[0] == '\\')
        n++;
    assert_true(avail >= n + 4);
    memcpy(out, p + n, 4);
    out[4] = 0;
    for (int i = 0; i < 4; i++)
        assert_true((out[i] >= 'A' && out[i] <= 'Z') || out[i] == '_' ||
                    (i && out[i] >= '0' && out[i] <= '9'));
    return n + 4;
}

static size_t integer(const uint8_t *p, size_t avail, uint64_t *v)
{
    assert_true(avail >= 1);
    unsigned n;
    switch (p[0]) {
    case 0x00:
        *v = 0;
        return 1;
    case 0x01:
        *v = 1;
        return 1;
    case 0x0a:
        n = 1;
        break;
    case 0x0b:
        n = 2;
        break;
    case 0x0c:
        n = 4;
        break;
    case 0x0e:
        n = 8;
        break;
    default:
        fail_msg("not an integer: opcode %#x", p[0]);
        return 0;
    }
    assert_true(avail >= 1 + n);
    *v = 0;
    for (unsigned i = 0; i < n; i++)
        *v |= (uint64_t)p[1 + i] << (8 * i);
    return 1 + n;
}

static void eisa_to_str(uint32_t v, char out[8])
{
    uint16_t vendor = (uint16_t)((v & 0xff) << 8 | (v >> 8 & 0xff));
    uint16_t product = (uint16_t)((v >> 16 & 0xff) << 8 | (v >> 24));
    out[0] = (char)('@' + (vendor >> 10 & 0x1f));
    out[1] = (char)('@' + (vendor >> 5 & 0x1f));
    out[2] = (char)('@' + (vendor & 0x1f));
    snprintf(out + 3, 5, "%04X", product);
}

static void terms(const uint8_t *p, size_t n, struct parsed *out, struct dev *cur);

static size_t name_obj(const uint8_t *p, size_t n, struct parsed *out, struct dev *cur)
{
    char nm[5];
    size_t i = name(p, n, nm);
    assert_true(i < n);
    uint64_t v;
    if (p[i] == 0x0d) { /* string */
        const uint8_t *z = memchr(p + i + 1, 0, n - i - 1);
        assert_non_null(z);
        if (cur && strcmp(nm, "_HID") == 0)
            snprintf(cur->hid, sizeof(cur->hid), "%s", (const char *)p + i + 1);
        return i + (size_t)(z - (p + i)) + 1;
    }
    if (p[i] == 0x11) { /* buffer */
        size_t len, hl = pkglen(p + i + 1, n - i - 1, &len);
        size_t il = integer(p + i + 1 + hl, len - hl, &v);
        assert_int_equal(v, len - hl - il); /* BufferSize matches the bytes */
        if (cur && strcmp(nm, "_CRS") == 0) {
            assert_true(v <= sizeof(cur->crs));
            memcpy(cur->crs, p + i + 1 + hl + il, v);
            cur->crs_len = v;
        }
        return i + 1 + len;
    }
    if (p[i] == 0x12) { /* package of integers */
        size_t len, hl = pkglen(p + i + 1, n - i - 1, &len);
        const uint8_t *q = p + i + 1 + hl;
        size_t left = len - hl;
        unsigned count = q[0];
        q++;
        left--;
        assert_string_equal(nm, "_S5_");
        assert_int_equal(count, 4);
        for (unsigned k = 0; k < count; k++) {
            size_t used = integer(q, left, &out->s5_typ[k]);
            q += used;
            left -= used;
        }
        assert_int_equal(left, 0);
        out->s5 = true;
        return i + 1 + len;
    }
    size_t used = integer(p + i, n - i, &v);
    if (cur && strcmp(nm, "_HID") == 0) {
        assert_int_equal(p[i], 0x0c); /* an EISA id is a DWord */
        eisa_to_str((uint32_t)v, cur->hid);
    } else if (cur && strcmp(nm, "_UID") == 0) {
        cur->uid = (long)v;
    }
    return i + used;
}

static void terms(const uint8_t *p, size_t n, struct parsed *out, struct dev *cur)
{
    size_t i = 0;
    while (i < n) {
        size_t len, hl;
        char nm[5];
        if (p[i] == 0x10) { /* Scope */
            hl = pkglen(p + i + 1, n - i - 1, &len);
            size_t nl = name(p + i + 1 + hl, len - hl, nm);
            assert_string_equal(nm, "_SB_");
            terms(p + i + 1 + hl + nl, len - hl - nl, out, NULL);
            i += 1 + len;
        } else if (p[i] == 0x5b && i + 1 < n && p[i + 1] == 0x82) { /* Device */
            hl = pkglen(p + i + 2, n - i - 2, &len);
            assert_true(out->ndev < ARRAY_SIZE(out->dev));
            struct dev *d = &out->dev[out->ndev++];
            memset(d, 0, sizeof(*d));
            d->uid = -1;
            size_t nl = name(p + i + 2 + hl, len - hl, d->name);
            terms(p + i + 2 + hl + nl, len - hl - nl, out, d);
            i += 2 + len;
        } else if (p[i] == 0x08) { /* Name */
            i += 1 + name_obj(p + i + 1, n - i - 1, out, cur);
        } else {
            fail_msg("unexpected AML opcode %#x at %zu", p[i], i);
        }
    }
    assert_int_equal(i, n);
}

static const struct dev *find_dev(const struct parsed *ps, const char *nm)
{
    for (unsigned i = 0; i < ps->ndev; i++)
        if (strcmp(ps->dev[i].name, nm) == 0)
            return &ps->dev[i];
    return NULL;
}

/* Resources of one device. */
struct res {
    uint32_t mem_base, mem_len;
    int mem_rw, n_mem;
    uint32_t irq_gsi;
    uint8_t irq_flags;
    int n_irq;
    uint16_t io_base;
    uint8_t io_len;
    int n_io;
    uint16_t irq_mask;
    int n_legacy_irq;
    bool end;
};

static void parse_crs(const uint8_t *p, size_t n, struct res *r)
{
    memset(r, 0, sizeof(*r));
    size_t i = 0;
    while (i < n && !r->end) {
        uint8_t tag = p[i];
        if (tag & 0x80) { /* large item */
            assert_true(i + 3 <= n);
            size_t len = (size_t)(p[i + 1] | p[i + 2] << 8);
            assert_true(i + 3 + len <= n);
            const uint8_t *d = p + i + 3;
            if (tag == 0x86) {
                assert_int_equal(len, 9);
                r->mem_rw = d[0] & 1;
                r->mem_base = rd32(d + 1);
                r->mem_len = rd32(d + 5);
                r->n_mem++;
            } else if (tag == 0x89) {
                assert_int_equal(len, 6);
                r->irq_flags = d[0];
                assert_int_equal(d[1], 1);
                r->irq_gsi = rd32(d + 2);
                r->n_irq++;
            } else {
                fail_msg("unexpected large resource %#x", tag);
            }
            i += 3 + len;
        } else {
            size_t len = tag & 7;
            assert_true(i + 1 + len <= n);
            const uint8_t *d = p + i + 1;
            switch (tag >> 3) {
            case 0x08: /* I/O */
                assert_int_equal(len, 7);
                assert_int_equal(d[0], 1); /* decode16 */
                r->io_base = (uint16_t)(d[1] | d[2] << 8);
                assert_int_equal((uint16_t)(d[3] | d[4] << 8), r->io_base);
                r->io_len = d[6];
                r->n_io++;
                break;
            case 0x04: /* IRQ */
                assert_int_equal(len, 2);
                r->irq_mask = (uint16_t)(d[0] | d[1] << 8);
                r->n_legacy_irq++;
                break;
            case 0x0f: /* end tag */
                assert_int_equal(len, 1);
                r->end = true;
                break;
            default:
                fail_msg("unexpected small resource %#x", tag);
            }
            i += 1 + len;
        }
    }
    assert_true(r->end);
    assert_int_equal(i, n); /* nothing after the end tag */
}

/* Build for cfg, check every table, parse the DSDT into ps. */
static void build_and_check(const struct vmm_acpi_cfg *cfg, struct parsed *ps)
{
    static uint8_t buf[VMM_ACPI_SIZE];
    struct vmm_acpi_layout lay;
    memset(buf, 0xee, sizeof(buf));
    assert_int_equal(vmm_acpi_build(cfg, buf, sizeof(buf), BASE, &lay), 0);
    assert_true(lay.size > 0 && lay.size <= sizeof(buf));

    /* RSDP: the first 20 bytes and all 36 sum to zero; revision 2; the XSDT's address. */
    assert_int_equal(lay.rsdp, BASE);
    const uint8_t *r = buf;
    assert_memory_equal(r, "RSD PTR ", 8);
    assert_int_equal(sum(r, 20), 0);
    assert_int_equal(rd32(r + 20), 36);
    assert_int_equal(sum(r, 36), 0);
    assert_int_equal(r[15], 2);
    assert_int_equal(rd64(r + 24), lay.xsdt);

    /* XSDT: exactly the FADT and the MADT. */
    const uint8_t *x = table(buf, lay.size, lay.xsdt, "XSDT");
    assert_int_equal(rd32(x + 4), 36 + 16);
    assert_int_equal(rd64(x + 36), lay.fadt);
    assert_int_equal(rd64(x + 44), lay.madt);

    /* FADT: revision 6, 276 bytes, hardware-reduced, DSDT, sleep and reset registers. */
    const uint8_t *f = table(buf, lay.size, lay.fadt, "FACP");
    assert_int_equal(rd32(f + 4), 276);
    assert_int_equal(f[8], 6);
    assert_int_equal(rd32(f + 40), lay.dsdt);
    assert_int_equal(rd64(f + 140), lay.dsdt);
    uint32_t flags = rd32(f + 112);
    assert_true(flags & (1u << 20));        /* HW_REDUCED_ACPI */
    assert_true(flags & (1u << 10));        /* RESET_REG_SUP */
    assert_int_equal(rd32(f + 56), 0);      /* no PM1a event block */
    assert_int_equal(rd32(f + 64), 0);      /* no PM1a control block */
    assert_int_equal(f[116], 1);            /* RESET_REG: system I/O ... */
    assert_int_equal(rd64(f + 120), 0xcf9); /* ... port 0xcf9 */
    assert_int_equal(f[128], 6);            /* RESET_VALUE */
    assert_int_equal(f[244], 1);            /* SLEEP_CONTROL_REG in I/O space */
    assert_int_equal(f[245], 8);            /* 8 bits wide */
    assert_int_equal(rd64(f + 248), VMM_ACPI_SLP_CNT);
    assert_int_equal(rd64(f + 260), VMM_ACPI_SLP_STS);
    assert_int_equal(rd32(f + 109) & 0xffff & (1u << 1), 0); /* no i8042 */

    /* MADT: one enabled LAPIC per CPU, the IOAPIC at GSI 0, LINT1 NMI; nothing else. */
    const uint8_t *m = table(buf, lay.size, lay.madt, "APIC");
    uint32_t mlen = rd32(m + 4);
    assert_int_equal(rd32(m + 36), VMM_LAPIC_ADDR);
    unsigned nlapic = 0, nioapic = 0, nnmi = 0;
    for (uint32_t off = 44; off < mlen;) {
        const uint8_t *e = m + off;
        assert_true(off + 2 <= mlen && e[1] >= 2 && off + e[1] <= mlen);
        switch (e[0]) {
        case 0:
            assert_int_equal(e[1], 8);
            assert_int_equal(e[3], nlapic); /* APIC id = vCPU index */
            assert_int_equal(rd32(e + 4) & 1, 1);
            nlapic++;
            break;
        case 1:
            assert_int_equal(e[1], 12);
            assert_int_equal(rd32(e + 4), VMM_IOAPIC_ADDR);
            assert_int_equal(rd32(e + 8), 0);
            nioapic++;
            break;
        case 4:
            assert_int_equal(e[1], 6);
            assert_int_equal(e[5], 1);
            nnmi++;
            break;
        default:
            fail_msg("unexpected MADT entry %u", e[0]);
        }
        off += e[1];
    }
    assert_int_equal(nlapic, cfg->ncpus);
    assert_int_equal(nioapic, 1);
    assert_int_equal(nnmi, 1);

    /* DSDT: parse its AML completely. */
    const uint8_t *d = table(buf, lay.size, lay.dsdt, "DSDT");
    uint32_t dlen = rd32(d + 4);
    assert_int_equal(lay.dsdt - BASE + dlen, lay.size); /* the DSDT is last */
    memset(ps, 0, sizeof(*ps));
    terms(d + 36, dlen - 36, ps, NULL);

    /* The tables do not overlap, in the order RSDP, XSDT, FADT, MADT, DSDT. */
    assert_true(lay.rsdp + 36 <= lay.xsdt);
    assert_true(lay.xsdt + rd32(x + 4) <= lay.fadt);
    assert_true(lay.fadt + 276 <= lay.madt);
    assert_true(lay.madt + mlen <= lay.dsdt);
    assert_int_equal(lay.xsdt % 8, 0);
    /* Nothing was written after the tables. */
    for (size_t i = lay.size; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xee);
}

static void test_tables(void **state)
{
    (void)state;
    const struct vmm_acpi_dev devs[] = {
        {0xd0000000, 0x200, 16},
        {0xd0001000, 0x200, 17},
        {0xd0002000, 0x200, 18},
    };
    struct vmm_acpi_cfg cfg = {.ncpus = 2, .ndevs = 3, .devs = devs, .serial = true};
    static struct parsed ps;
    build_and_check(&cfg, &ps);

    assert_int_equal(ps.ndev, 4);
    const struct dev *com = find_dev(&ps, "COM1");
    assert_non_null(com);
    assert_string_equal(com->hid, "PNP0501");
    assert_int_equal(com->uid, 0);
    struct res r;
    parse_crs(com->crs, com->crs_len, &r);
    assert_int_equal(r.n_io, 1);
    assert_int_equal(r.io_base, 0x3f8);
    assert_int_equal(r.io_len, 8);
    assert_int_equal(r.n_legacy_irq, 1);
    assert_int_equal(r.irq_mask, 1u << 4);
    assert_int_equal(r.n_mem + r.n_irq, 0);

    for (unsigned i = 0; i < 3; i++) {
        char nm[5];
        snprintf(nm, sizeof(nm), "V%03u", i);
        const struct dev *v = find_dev(&ps, nm);
        assert_non_null(v);
        assert_string_equal(v->hid, "LNRO0005");
        assert_int_equal(v->uid, i);
        parse_crs(v->crs, v->crs_len, &r);
        assert_int_equal(r.n_mem, 1);
        assert_int_equal(r.mem_base, devs[i].base);
        assert_int_equal(r.mem_len, devs[i].size);
        assert_int_equal(r.mem_rw, 1);
        assert_int_equal(r.n_irq, 1);
        assert_int_equal(r.irq_gsi, devs[i].gsi);
        assert_int_equal(r.irq_flags, 0x03); /* consumer, edge, active high, exclusive */
        assert_int_equal(r.n_io + r.n_legacy_irq, 0);
    }
    assert_true(ps.s5);
    assert_int_equal(ps.s5_typ[0], VMM_ACPI_SLP_TYP_S5);
}

static void test_sizes(void **state)
{
    (void)state;
    static struct parsed ps;
    /* The smallest machine: one CPU, no devices, no UART. */
    struct vmm_acpi_cfg cfg = {.ncpus = 1};
    build_and_check(&cfg, &ps);
    assert_int_equal(ps.ndev, 0);
    assert_true(ps.s5);

    /* The largest: every CPU, every GSI. */
    struct vmm_acpi_dev devs[VMM_ACPI_MAX_DEVS];
    for (unsigned i = 0; i < VMM_ACPI_MAX_DEVS; i++)
        devs[i] = (struct vmm_acpi_dev){0xd0000000 + i * 0x1000, 0x200, 16 + i};
    cfg = (struct vmm_acpi_cfg){
        .ncpus = VMM_MAX_CPUS, .ndevs = VMM_ACPI_MAX_DEVS, .devs = devs, .serial = true};
    build_and_check(&cfg, &ps);
    assert_int_equal(ps.ndev, VMM_ACPI_MAX_DEVS + 1);
    for (unsigned i = 0; i < VMM_ACPI_MAX_DEVS; i++) {
        char nm[5];
        snprintf(nm, sizeof(nm), "V%03u", i);
        const struct dev *v = find_dev(&ps, nm);
        assert_non_null(v);
        struct res r;
        parse_crs(v->crs, v->crs_len, &r);
        assert_int_equal(r.mem_base, devs[i].base);
        assert_int_equal(r.irq_gsi, devs[i].gsi);
    }
}

static void test_limits(void **state)
{
    (void)state;
    static uint8_t buf[VMM_ACPI_SIZE];
    struct vmm_acpi_dev devs[VMM_ACPI_MAX_DEVS + 1];
    for (unsigned i = 0; i <= VMM_ACPI_MAX_DEVS; i++)
        devs[i] = (struct vmm_acpi_dev){0xd0000000 + i * 0x1000, 0x200, 16 + i % 8};
    struct vmm_acpi_cfg cfg = {.ncpus = 1, .ndevs = 1, .devs = devs};
    assert_int_equal(vmm_acpi_build(&cfg, buf, sizeof(buf), BASE, NULL), 0);

    const struct {
        unsigned ncpus, ndevs;
        struct vmm_acpi_dev bad; /* replaces devs[0] when size != 1 */
        const char *what;
    } cases[] = {
        {0, 1, {0, 1, 0}, "no CPU"},
        {VMM_MAX_CPUS + 1, 1, {0, 1, 0}, "too many CPUs"},
        {1, VMM_ACPI_MAX_DEVS + 1, {0, 1, 0}, "too many devices"},
        {1, 1, {0xd0000000, 0, 16}, "device of size 0"},
        {1, 1, {0x100000000ull, 0x200, 16}, "device above 4 GiB"},
        {1, 1, {0xfffff000, 0x2000, 16}, "device crossing 4 GiB"},
        {1, 1, {0xd0000000, 0x200, 15}, "GSI below 16 (ISA)"},
        {1, 1, {0xd0000000, 0x200, 24}, "GSI beyond the IOAPIC"},
        {1, 2, {0xd0001000, 0x200, 16}, "two devices on one GSI"},
        {1, 2, {0xd0000100, 0x200, 18}, "overlapping MMIO ranges"},
    };
    for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
        struct vmm_acpi_dev d[VMM_ACPI_MAX_DEVS + 1];
        memcpy(d, devs, sizeof(d));
        if (cases[i].bad.size != 1) {
            /* two-device cases: devs[0] stays, the bad one is second */
            d[cases[i].ndevs - 1] = cases[i].bad;
        }
        cfg = (struct vmm_acpi_cfg){.ncpus = cases[i].ncpus, .ndevs = cases[i].ndevs, .devs = d};
        int rc = vmm_acpi_build(&cfg, buf, sizeof(buf), BASE, NULL);
        if (rc != -EINVAL)
            fail_msg("%s: got %d", cases[i].what, rc);
    }
    /* Devices promised but missing; a misaligned or too high base. */
    cfg = (struct vmm_acpi_cfg){.ncpus = 1, .ndevs = 1, .devs = NULL};
    assert_int_equal(vmm_acpi_build(&cfg, buf, sizeof(buf), BASE, NULL), -EINVAL);
    cfg.ndevs = 0;
    assert_int_equal(vmm_acpi_build(&cfg, buf, sizeof(buf), BASE + 4, NULL), -EINVAL);
    assert_int_equal(vmm_acpi_build(&cfg, buf, sizeof(buf), 0xfffffff0ull, NULL), -EINVAL);
}

/* Every buffer shorter than the tables fails with -ENOSPC and writes nothing beyond its end
 * (each is its own allocation, so AddressSanitizer sees any overrun). */
static void test_small_buffers(void **state)
{
    (void)state;
    struct vmm_acpi_dev devs[3] = {
        {0xd0000000, 0x200, 16}, {0xd0001000, 0x200, 17}, {0xd0002000, 0x200, 18}};
    struct vmm_acpi_cfg cfg = {.ncpus = 2, .ndevs = 3, .devs = devs, .serial = true};
    static uint8_t full[VMM_ACPI_SIZE];
    struct vmm_acpi_layout lay;
    assert_int_equal(vmm_acpi_build(&cfg, full, sizeof(full), BASE, &lay), 0);
    for (size_t cap = 0; cap < lay.size; cap++) {
        uint8_t *b = malloc(cap ? cap : 1);
        assert_non_null(b);
        assert_int_equal(vmm_acpi_build(&cfg, b, cap, BASE, NULL), -ENOSPC);
        free(b);
    }
    uint8_t *b = malloc(lay.size);
    assert_int_equal(vmm_acpi_build(&cfg, b, lay.size, BASE, NULL), 0);
    assert_memory_equal(b, full, lay.size);
    free(b);
}

/* In guest memory: a legacy scan of 0xe0000-0xfffff finds the RSDP on a 16-byte boundary. */
static void test_install(void **state)
{
    (void)state;
    struct vmm_mem m;
    assert_int_equal(vmm_mem_init(&m, 2u << 20), 0);
    struct vmm_acpi_cfg cfg = {.ncpus = 1, .serial = true};
    struct vmm_acpi_layout lay;
    assert_int_equal(vmm_acpi_install(&m, &cfg, &lay), 0);
    uint64_t found = 0;
    for (uint64_t a = 0xe0000; a < 0x100000 && !found; a += 16) {
        const uint8_t *p = vmm_mem_ptr(&m, a, 36);
        if (memcmp(p, "RSD PTR ", 8) == 0 && sum(p, 20) == 0)
            found = a;
    }
    assert_int_equal(found, VMM_ACPI_BASE);
    const uint8_t *r = vmm_mem_ptr(&m, VMM_ACPI_BASE, 36);
    const uint8_t *x = vmm_mem_ptr(&m, rd64(r + 24), 36);
    assert_non_null(x);
    assert_memory_equal(x, "XSDT", 4);
    vmm_mem_fini(&m);
}

/* ---- the encoder itself ---- */

static void test_aml_pkglen(void **state)
{
    (void)state;
    static uint8_t buf[1 << 21];
    /* A package whose body is n bytes: its PkgLength takes 1, 2, 3 or 4 bytes. */
    const struct {
        size_t body;
        size_t lenbytes;
    } cases[] = {
        {1, 1}, {62, 1}, {63, 2}, {4093, 2}, {4094, 3}, {(1 << 20) - 4, 3}, {(1 << 20) - 3, 4}};
    for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
        struct aml a;
        aml_init(&a, buf, sizeof(buf));
        size_t mark = a.len;
        static uint8_t fill[1 << 20];
        aml_bytes(&a, fill, cases[i].body);
        aml_end(&a, mark);
        assert_int_equal(a.err, 0);
        assert_int_equal(a.len, cases[i].body + cases[i].lenbytes);
        size_t len;
        assert_int_equal(pkglen(buf, a.len, &len), cases[i].lenbytes);
        assert_int_equal(len, a.len);
    }
    /* No room for the length bytes. */
    struct aml a;
    aml_init(&a, buf, 63);
    aml_bytes(&a, buf + 100, 63);
    aml_end(&a, 0);
    assert_int_equal(a.err, -ENOSPC);
}

static void test_aml_values(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct aml a;
    const struct {
        uint64_t v;
        size_t n;
        uint8_t op;
    } ints[] = {{0, 1, 0x00},       {1, 1, 0x01},          {2, 2, 0x0a},
                {0xff, 2, 0x0a},    {0x100, 3, 0x0b},      {0xffff, 3, 0x0b},
                {0x10000, 5, 0x0c}, {0xffffffff, 5, 0x0c}, {0x100000000ull, 9, 0x0e}};
    for (unsigned i = 0; i < ARRAY_SIZE(ints); i++) {
        aml_init(&a, buf, sizeof(buf));
        aml_integer(&a, ints[i].v);
        assert_int_equal(a.len, ints[i].n);
        assert_int_equal(buf[0], ints[i].op);
        uint64_t v;
        assert_int_equal(integer(buf, a.len, &v), ints[i].n);
        assert_int_equal(v, ints[i].v);
    }

    uint32_t id;
    assert_int_equal(aml_eisaid_value("PNP0501", &id), 0);
    assert_int_equal(id, 0x0105d041);
    assert_int_equal(aml_eisaid_value("PNP0A03", &id), 0);
    assert_int_equal(id, 0x030ad041);
    const char *bad_ids[] = {"pnp0501", "PNP050", "PNP05011", "PNP050G", "P1P0501", ""};
    for (unsigned i = 0; i < ARRAY_SIZE(bad_ids); i++) {
        assert_int_equal(aml_eisaid_value(bad_ids[i], &id), -EINVAL);
        aml_init(&a, buf, sizeof(buf));
        aml_eisaid(&a, bad_ids[i]);
        assert_int_equal(a.err, -EINVAL);
    }

    /* Names: padded to 4, root prefix, and refusals. */
    aml_init(&a, buf, sizeof(buf));
    aml_name(&a, "\\_SB");
    aml_name(&a, "V0");
    assert_int_equal(a.err, 0);
    assert_memory_equal(buf, "\\_SB_V0__", 9);
    const char *bad_names[] = {"", "1ABC", "ABCDE", "ab", "A-B", "\\"};
    for (unsigned i = 0; i < ARRAY_SIZE(bad_names); i++) {
        aml_init(&a, buf, sizeof(buf));
        aml_name(&a, bad_names[i]);
        if (a.err != -EINVAL)
            fail_msg("name \"%s\" accepted", bad_names[i]);
        /* ... and the error sticks: nothing more is written. */
        size_t len = a.len;
        aml_integer(&a, 5);
        assert_int_equal(a.len, len);
    }
    /* A string must be ASCII. */
    aml_init(&a, buf, sizeof(buf));
    aml_string(&a, "caf\xc3\xa9");
    assert_int_equal(a.err, -EINVAL);
    aml_init(&a, buf, sizeof(buf));
    aml_res_irq(&a, 16); /* legacy IRQ descriptors stop at 15 */
    assert_int_equal(a.err, -EINVAL);
    /* Out of room. */
    aml_init(&a, buf, 3);
    aml_string(&a, "LNRO0005");
    assert_int_equal(a.err, -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),     cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_limits),     cmocka_unit_test(test_small_buffers),
        cmocka_unit_test(test_install),    cmocka_unit_test(test_aml_pkglen),
        cmocka_unit_test(test_aml_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
