/*
 * Linux x86 boot protocol, 64-bit entry (Documentation/arch/x86/boot.rst): parse and check
 * a bzImage's setup header, load the protected-mode kernel at 1 MiB, the initrd as high in
 * low RAM as the kernel allows, the command line, and a zero page (struct boot_params) with
 * the e820 map and the ACPI RSDP's address. The vCPU then starts in long mode (the raw boot's GDT
 * and identity tables) at the 64-bit entry (load address + 0x200) with %rsi = the zero page.
 *
 * The image is untrusted input: every header field is range-checked and no arithmetic can
 * wrap. Main thread, before the vCPUs start.
 */
#include "vmm_int.h"

#include <errno.h>
#include <string.h>

#define HDR_SETUP_SECTS  0x1f1
#define HDR_SYSSIZE      0x1f4 /* protected-mode code, in 16-byte units */
#define HDR_BOOT_FLAG    0x1fe
#define HDR_JUMP         0x200
#define HDR_MAGIC        0x202
#define HDR_VERSION      0x206
#define HDR_LOADER_TYPE  0x210
#define HDR_LOADFLAGS    0x211
#define HDR_RAMDISK_IMG  0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END     0x224
#define HDR_CMDLINE_PTR  0x228
#define HDR_INITRD_MAX   0x22c
#define HDR_XLOADFLAGS   0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_INIT_SIZE    0x260
#define BP_ACPI_RSDP     0x070 /* boot_params.acpi_rsdp_addr (64-bit) */
#define BP_E820_ENTRIES  0x1e8
#define BP_E820_TABLE    0x2d0
#define BP_E820_MAX      128

#define LOADED_HIGH   0x01
#define CAN_USE_HEAP  0x80
#define XLF_KERNEL_64 0x01

static uint16_t rd16(const uint8_t *p, size_t off)
{
    return (uint16_t)(p[off] | p[off + 1] << 8);
}

static uint32_t rd32(const uint8_t *p, size_t off)
{
    return (uint32_t)rd16(p, off) | (uint32_t)rd16(p, off + 2) << 16;
}

static void wr16(uint8_t *p, size_t off, uint16_t v)
{
    p[off] = (uint8_t)v;
    p[off + 1] = (uint8_t)(v >> 8);
}

static void wr32(uint8_t *p, size_t off, uint32_t v)
{
    wr16(p, off, (uint16_t)v);
    wr16(p, off + 2, (uint16_t)(v >> 16));
}

int vmm_bzimage_parse(const uint8_t *img, size_t len, struct vmm_bzimage *out)
{
    if (len < 0x264 || rd16(img, HDR_BOOT_FLAG) != 0xaa55 || rd32(img, HDR_MAGIC) != 0x53726448)
        return -ENOEXEC;
    uint16_t version = rd16(img, HDR_VERSION);
    if (version < 0x020c) /* 2.12: xloadflags, the 64-bit entry */
        return -ENOTSUP;
    if (!(img[HDR_LOADFLAGS] & LOADED_HIGH) || !(rd16(img, HDR_XLOADFLAGS) & XLF_KERNEL_64))
        return -ENOTSUP;
    unsigned sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
    size_t setup = (size_t)(sects + 1) * 512;
    size_t hdr_end = 0x202 + img[0x201]; /* the jump at 0x200 skips the header */
    if (setup >= len || hdr_end > setup || hdr_end > 0x1000)
        return -EINVAL;
    out->version = version;
    out->setup_size = setup;
    out->hdr_end = hdr_end;
    out->kernel_size = len - setup;
    if ((uint64_t)rd32(img, HDR_SYSSIZE) * 16 > (uint64_t)out->kernel_size + 15)
        return -EINVAL; /* a truncated image */
    out->init_size = rd32(img, HDR_INIT_SIZE);
    out->initrd_addr_max = rd32(img, HDR_INITRD_MAX);
    out->cmdline_size = rd32(img, HDR_CMDLINE_SIZE);
    if (out->init_size < out->kernel_size)
        out->init_size = out->kernel_size;
    return 0;
}

unsigned vmm_e820_build(const struct vmm_mem *m, struct vmm_e820 *e, unsigned max)
{
    const struct vmm_e820 fixed[] = {
        {0, 0x9fc00, VMM_E820_RAM},
        {0x9fc00, 0x400, VMM_E820_RESERVED},               /* EBDA */
        {VMM_ACPI_BASE, VMM_ACPI_SIZE, VMM_E820_RESERVED}, /* BIOS area: the ACPI tables */
    };
    unsigned n = 0;
    for (unsigned i = 0; i < ARRAY_SIZE(fixed) && n < max; i++)
        e[n++] = fixed[i];
    for (unsigned i = 0; i < m->nregions && n < max; i++) {
        const struct vmm_mem_region *r = &m->regions[i];
        uint64_t start = r->gpa < VMM_LINUX_KERNEL ? VMM_LINUX_KERNEL : r->gpa;
        if (r->gpa + r->size > start)
            e[n++] = (struct vmm_e820){start, r->gpa + r->size - start, VMM_E820_RAM};
    }
    return n;
}

int vmm_linux_load(const struct vmm_mem *m, const uint8_t *img, size_t len, const uint8_t *initrd,
                   size_t initrd_len, const char *cmdline, struct vmm_boot_regs *regs)
{
    struct vmm_bzimage bz;
    int rc = vmm_bzimage_parse(img, len, &bz);
    if (rc < 0)
        return rc;
    uint64_t low = vmm_mem_low_size(m);
    uint8_t *kernel = vmm_mem_ptr(m, VMM_LINUX_KERNEL, bz.init_size);
    if (!kernel)
        return -ERANGE;
    size_t clen = strlen(cmdline) + 1;
    if (clen > VMM_LINUX_CMDLINE_MAX || (bz.cmdline_size && clen - 1 > bz.cmdline_size))
        return -E2BIG;

    uint64_t initrd_at = 0;
    if (initrd_len) {
        uint64_t top = MIN(low, (uint64_t)bz.initrd_addr_max + 1);
        uint64_t kend = VMM_LINUX_KERNEL + bz.init_size;
        if (initrd_len > top || ((top - initrd_len) & ~0xfffull) < kend)
            return -ERANGE;
        initrd_at = (top - initrd_len) & ~0xfffull;
        if (initrd_at > UINT32_MAX)
            return -ERANGE;
    }
    if ((rc = vmm_raw_build_tables(m)) < 0)
        return rc;

    uint8_t *bp = vmm_mem_ptr(m, VMM_LINUX_BOOT_PARAMS, 4096);
    char *cl = vmm_mem_ptr(m, VMM_LINUX_CMDLINE, VMM_LINUX_CMDLINE_MAX);
    if (!bp || !cl)
        return -ERANGE;
    memset(bp, 0, 4096);
    memcpy(bp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS, bz.hdr_end - HDR_SETUP_SECTS);
    bp[HDR_LOADER_TYPE] = 0xff; /* undefined loader */
    bp[HDR_LOADFLAGS] |= CAN_USE_HEAP;
    wr16(bp, HDR_HEAP_END, 0xfe00);
    wr32(bp, HDR_CMDLINE_PTR, (uint32_t)VMM_LINUX_CMDLINE);
    wr32(bp, HDR_RAMDISK_IMG, (uint32_t)initrd_at);
    wr32(bp, HDR_RAMDISK_SIZE, (uint32_t)initrd_len);
    struct vmm_e820 e[BP_E820_MAX];
    unsigned n = vmm_e820_build(m, e, BP_E820_MAX);
    bp[BP_E820_ENTRIES] = (uint8_t)n;
    wr32(bp, BP_ACPI_RSDP, (uint32_t)VMM_ACPI_BASE); /* the high half stays 0 */
    for (unsigned i = 0; i < n; i++) {
        uint8_t *d = bp + BP_E820_TABLE + i * 20;
        wr32(d, 0, (uint32_t)e[i].addr);
        wr32(d, 4, (uint32_t)(e[i].addr >> 32));
        wr32(d, 8, (uint32_t)e[i].size);
        wr32(d, 12, (uint32_t)(e[i].size >> 32));
        wr32(d, 16, e[i].type);
    }
    memset(cl, 0, VMM_LINUX_CMDLINE_MAX);
    memcpy(cl, cmdline, clen);
    memcpy(kernel, img + bz.setup_size, bz.kernel_size);
    memset(kernel + bz.kernel_size, 0, bz.init_size - bz.kernel_size);
    if (initrd_len)
        memcpy(vmm_mem_ptr(m, initrd_at, initrd_len), initrd, initrd_len);

    *regs = (struct vmm_boot_regs){
        .rip = VMM_LINUX_KERNEL + 0x200,
        .rsp = VMM_RAW_STACK_TOP,
        .rsi = VMM_LINUX_BOOT_PARAMS,
        .long_mode = true,
    };
    return 0;
}
