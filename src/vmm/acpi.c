/*
 * ACPI tables (ACPI 6.4) for the guest: RSDP -> XSDT -> {FADT -> DSDT, MADT}.
 *
 *  - FADT: hardware-reduced ACPI (no PM1 blocks, no SCI, no PM timer, no GPEs). The guest
 *    powers off through the SLEEP_CONTROL_REG (an I/O port of power.c: SLP_EN with the
 *    SLP_TYP of the DSDT's \_S5) and resets through the RESET_REG (port 0xcf9, value 6).
 *    IAPC_BOOT_ARCH says: no VGA, no CMOS RTC, no i8042 (so Linux does not probe them).
 *  - MADT: one enabled local APIC per vCPU (APIC id = vCPU index), the IOAPIC with GSI 0-23,
 *    LINT1 as NMI on every CPU. No interrupt source overrides: KVM's default routing maps ISA
 *    IRQ n to IOAPIC pin n, as an override-less MADT says.
 *  - DSDT: \_SB.COM1 (PNP0501, I/O 0x3f8-0x3ff, IRQ 4) and one \_SB.Vnnn per virtio-mmio
 *    device (_HID "LNRO0005", _CRS: Memory32Fixed + an edge, active-high Interrupt on its GSI,
 *    which is what the switch's irqfd pulses give), and \_S5 for the power-off.
 *
 * Everything is built in a plain buffer (testable without a VM) and then copied to guest
 * memory at VMM_ACPI_BASE. Main thread, before the vCPUs start.
 */
#include "vmm_int.h"

#include <errno.h>
#include <string.h>

#define OEM_ID       "VSWTCH"
#define OEM_TABLE_ID "VSWVMM  "
#define CREATOR_ID   "VSWT"
#define SDT_HDR_LEN  36
#define RSDP_LEN     36
#define FADT_LEN     276 /* revision 6 */
#define FADT_REV     6
#define MADT_REV     5
#define DSDT_REV     2 /* 64-bit integers */

/* FADT flags and IAPC_BOOT_ARCH bits */
#define FADT_F_WBINVD        (1u << 0)
#define FADT_F_PWR_BUTTON    (1u << 4) /* no fixed power button */
#define FADT_F_SLP_BUTTON    (1u << 5) /* no fixed sleep button */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define FADT_F_HW_REDUCED    (1u << 20)
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_CMOS_RTC_ABSENT (1u << 5)

/* MADT */
#define MADT_PCAT_COMPAT 1u /* the 8259 pair exists (KVM's in-kernel PIC) */
#define MADT_LAPIC       0
#define MADT_IOAPIC      1
#define MADT_LAPIC_NMI   4

/* Generic Address Structure */
#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_8  1

#define SERIAL_PORT 0x3f8
#define SERIAL_IRQ  4

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, uint32_t v)
{
    wr16(p, (uint16_t)v);
    wr16(p + 2, (uint16_t)(v >> 16));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    return (uint8_t)-s;
}

/* The common header; the length is set and the checksum computed by sdt_finish(). */
static void sdt_header(uint8_t *t, const char *sig, uint8_t rev)
{
    memcpy(t, sig, 4);
    t[8] = rev;
    memcpy(t + 10, OEM_ID, 6);
    memcpy(t + 16, OEM_TABLE_ID, 8);
    wr32(t + 24, 1); /* OEM revision */
    memcpy(t + 28, CREATOR_ID, 4);
    wr32(t + 32, 1); /* creator revision */
}

static void sdt_finish(uint8_t *t, size_t len)
{
    wr32(t + 4, (uint32_t)len);
    t[9] = 0;
    t[9] = checksum(t, len);
}

static void gas_io8(uint8_t *g, uint16_t port)
{
    g[0] = GAS_SYSTEM_IO;
    g[1] = 8; /* bit width */
    g[2] = 0; /* bit offset */
    g[3] = GAS_ACCESS_8;
    wr64(g + 4, port);
}

static size_t build_fadt(uint8_t *t, uint64_t dsdt)
{
    memset(t, 0, FADT_LEN);
    sdt_header(t, "FACP", FADT_REV);
    wr32(t + 40, (uint32_t)dsdt); /* DSDT; X_DSDT below says the same */
    wr16(t + 109, IAPC_VGA_NOT_PRESENT | IAPC_CMOS_RTC_ABSENT);
    wr32(t + 112, FADT_F_WBINVD | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON | FADT_F_RESET_REG_SUP |
                      FADT_F_HW_REDUCED);
    gas_io8(t + 116, VMM_RESET_PORT); /* RESET_REG */
    t[128] = 0x06;                    /* RESET_VALUE: RST_CPU | SYS_RST */
    t[131] = 4;                       /* FADT minor version: ACPI 6.4 */
    wr64(t + 140, dsdt);              /* X_DSDT */
    gas_io8(t + 244, VMM_ACPI_SLP_CNT);
    gas_io8(t + 256, VMM_ACPI_SLP_STS);
    memcpy(t + 268, "VSWTVMM\0", 8); /* hypervisor vendor identity */
    sdt_finish(t, FADT_LEN);
    return FADT_LEN;
}

static size_t madt_len(unsigned ncpus)
{
    return SDT_HDR_LEN + 8 + 8 * (size_t)ncpus + 12 + 6;
}

static size_t build_madt(uint8_t *t, unsigned ncpus)
{
    size_t len = madt_len(ncpus);
    memset(t, 0, len);
    sdt_header(t, "APIC", MADT_REV);
    wr32(t + 36, (uint32_t)VMM_LAPIC_ADDR);
    wr32(t + 40, MADT_PCAT_COMPAT);
    uint8_t *e = t + 44;
    for (unsigned i = 0; i < ncpus; i++, e += 8) {
        e[0] = MADT_LAPIC;
        e[1] = 8;
        e[2] = (uint8_t)i; /* ACPI processor UID */
        e[3] = (uint8_t)i; /* APIC id (vcpu.c puts the vCPU index in CPUID) */
        wr32(e + 4, 1);    /* enabled */
    }
    e[0] = MADT_IOAPIC;
    e[1] = 12;
    e[2] = 0; /* IOAPIC id: KVM's in-kernel IOAPIC resets to 0 */
    wr32(e + 4, (uint32_t)VMM_IOAPIC_ADDR);
    wr32(e + 8, 0); /* GSI base */
    e += 12;
    e[0] = MADT_LAPIC_NMI;
    e[1] = 6;
    e[2] = 0xff;    /* all processors */
    wr16(e + 3, 0); /* flags: conforming */
    e[5] = 1;       /* LINT1 */
    sdt_finish(t, len);
    return len;
}

/* The DSDT's AML after the header. */
static void dsdt_body(struct aml *a, const struct vmm_acpi_cfg *cfg)
{
    uint8_t res[64];
    struct aml r;

    size_t sb = aml_scope_begin(a, "\\_SB");
    if (cfg->serial) {
        size_t dev = aml_device_begin(a, "COM1");
        aml_name_decl(a, "_HID");
        aml_eisaid(a, "PNP0501");
        aml_name_decl(a, "_UID");
        aml_integer(a, 0);
        aml_init(&r, res, sizeof(res));
        aml_res_io(&r, SERIAL_PORT, 8);
        aml_res_irq(&r, SERIAL_IRQ);
        aml_res_end(&r);
        if (r.err && !a->err)
            a->err = r.err;
        aml_name_buffer(a, "_CRS", res, r.len);
        aml_end(a, dev);
    }
    for (unsigned i = 0; i < cfg->ndevs; i++) {
        const struct vmm_acpi_dev *d = &cfg->devs[i];
        char name[5];
        name[0] = 'V';
        name[1] = (char)('0' + i / 100 % 10);
        name[2] = (char)('0' + i / 10 % 10);
        name[3] = (char)('0' + i % 10);
        name[4] = 0;
        size_t dev = aml_device_begin(a, name);
        aml_name_decl(a, "_HID");
        aml_string(a, "LNRO0005");
        aml_name_decl(a, "_UID");
        aml_integer(a, i);
        aml_init(&r, res, sizeof(res));
        aml_res_mem32_fixed(&r, (uint32_t)d->base, d->size, true);
        aml_res_ext_irq(&r, d->gsi, true);
        aml_res_end(&r);
        if (r.err && !a->err)
            a->err = r.err;
        aml_name_buffer(a, "_CRS", res, r.len);
        aml_end(a, dev);
    }
    aml_end(a, sb);

    /* \_S5: SLP_TYPa, SLP_TYPb, reserved, reserved. */
    aml_name_decl(a, "\\_S5");
    size_t pkg = aml_package_begin(a, 4);
    aml_integer(a, VMM_ACPI_SLP_TYP_S5);
    aml_integer(a, VMM_ACPI_SLP_TYP_S5);
    aml_integer(a, 0);
    aml_integer(a, 0);
    aml_end(a, pkg);
}

static int check_cfg(const struct vmm_acpi_cfg *cfg)
{
    if (cfg->ncpus == 0 || cfg->ncpus > VMM_MAX_CPUS || cfg->ndevs > VMM_ACPI_MAX_DEVS ||
        (cfg->ndevs && !cfg->devs))
        return -EINVAL;
    for (unsigned i = 0; i < cfg->ndevs; i++) {
        const struct vmm_acpi_dev *d = &cfg->devs[i];
        if (d->size == 0 || d->base > UINT32_MAX || d->size > (1ull << 32) - d->base ||
            d->gsi < VMM_MMIO_GSI_BASE || d->gsi >= VMM_IOAPIC_PINS)
            return -EINVAL;
        for (unsigned j = 0; j < i; j++) {
            const struct vmm_acpi_dev *o = &cfg->devs[j];
            if (o->gsi == d->gsi || (d->base < o->base + o->size && o->base < d->base + d->size))
                return -EINVAL; /* interrupts are exclusive; ranges must not overlap */
        }
    }
    return 0;
}

static size_t align16(size_t x)
{
    return (x + 15) & ~(size_t)15;
}

int vmm_acpi_build(const struct vmm_acpi_cfg *cfg, uint8_t *buf, size_t cap, uint64_t gpa,
                   struct vmm_acpi_layout *out)
{
    if (check_cfg(cfg) < 0 || gpa % 16 || gpa > UINT32_MAX || cap > UINT32_MAX - gpa)
        return -EINVAL;
    /* RSDP, XSDT (2 entries), FADT, MADT, then the DSDT, whose size is known last. */
    size_t o_rsdp = 0, o_xsdt = align16(RSDP_LEN), o_fadt = align16(o_xsdt + SDT_HDR_LEN + 16);
    size_t o_madt = align16(o_fadt + FADT_LEN), o_dsdt = align16(o_madt + madt_len(cfg->ncpus));
    if (cap < o_dsdt + SDT_HDR_LEN)
        return -ENOSPC;
    memset(buf, 0, o_dsdt);

    struct aml a;
    aml_init(&a, buf + o_dsdt + SDT_HDR_LEN, cap - o_dsdt - SDT_HDR_LEN);
    dsdt_body(&a, cfg);
    if (a.err)
        return a.err;
    memset(buf + o_dsdt, 0, SDT_HDR_LEN);
    sdt_header(buf + o_dsdt, "DSDT", DSDT_REV);
    sdt_finish(buf + o_dsdt, SDT_HDR_LEN + a.len);

    build_fadt(buf + o_fadt, gpa + o_dsdt);
    build_madt(buf + o_madt, cfg->ncpus);

    uint8_t *x = buf + o_xsdt;
    sdt_header(x, "XSDT", 1);
    wr64(x + SDT_HDR_LEN, gpa + o_fadt);
    wr64(x + SDT_HDR_LEN + 8, gpa + o_madt);
    sdt_finish(x, SDT_HDR_LEN + 16);

    uint8_t *r = buf + o_rsdp;
    memcpy(r, "RSD PTR ", 8);
    memcpy(r + 9, OEM_ID, 6);
    r[15] = 2;       /* revision: ACPI 2.0+ (XSDT) */
    wr32(r + 16, 0); /* no RSDT */
    wr32(r + 20, RSDP_LEN);
    wr64(r + 24, gpa + o_xsdt);
    r[8] = checksum(r, 20);
    r[32] = checksum(r, RSDP_LEN);

    if (out)
        *out = (struct vmm_acpi_layout){.rsdp = gpa + o_rsdp,
                                        .xsdt = gpa + o_xsdt,
                                        .fadt = gpa + o_fadt,
                                        .madt = gpa + o_madt,
                                        .dsdt = gpa + o_dsdt,
                                        .size = o_dsdt + SDT_HDR_LEN + a.len};
    return 0;
}

int vmm_acpi_install(const struct vmm_mem *m, const struct vmm_acpi_cfg *cfg,
                     struct vmm_acpi_layout *out)
{
    uint8_t *p = vmm_mem_ptr(m, VMM_ACPI_BASE, VMM_ACPI_SIZE);
    if (!p)
        return -ERANGE;
    memset(p, 0, VMM_ACPI_SIZE);
    return vmm_acpi_build(cfg, p, VMM_ACPI_SIZE, VMM_ACPI_BASE, out);
}
