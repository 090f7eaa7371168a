/*
 * PVH boot (xen/include/public/arch-x86/hvm/start_info.h, Linux arch/x86/platform/pvh): an
 * ELF vmlinux whose XEN_ELFNOTE_PHYS32_ENTRY note names a 32-bit entry point. The VMM loads the
 * PT_LOAD segments at their physical addresses, the initrd as a module, the command line, and
 * an hvm_start_info (version 1, with the memory map: the same ranges as the e820 of the Linux
 * boot protocol) whose address goes to %ebx. The BSP starts in 32-bit protected mode with
 * paging off, flat 4 GiB code and data segments from our GDT and a 32-bit TSS in TR, as the
 * PVH ABI requires; interrupts off. The RSDP address is in the start info.
 *
 * The image is untrusted input: everything is checked before guest memory is written. Main
 * thread, before the vCPUs start.
 */
#include "vmm_int.h"

#include <errno.h>
#include <string.h>

/* struct hvm_start_info (56 bytes) */
#define SI_MAGIC          0
#define SI_VERSION        4
#define SI_FLAGS          8
#define SI_NR_MODULES     12
#define SI_MODLIST_PADDR  16
#define SI_CMDLINE_PADDR  24
#define SI_RSDP_PADDR     32
#define SI_MEMMAP_PADDR   40
#define SI_MEMMAP_ENTRIES 48
#define SI_SIZE           56
#define MOD_ENTRY_SIZE    32 /* hvm_modlist_entry: paddr, size, cmdline_paddr, reserved */
#define MEMMAP_ENTRY_SIZE 24 /* hvm_memmap_table_entry: addr, size, type, reserved */

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}

int vmm_pvh_build_gdt(const struct vmm_mem *m)
{
    uint64_t *gdt = vmm_mem_ptr(m, VMM_RAW_GDT, VMM_PVH_GDT_ENTRIES * 8);
    if (!gdt)
        return -ERANGE;
    memset(gdt, 0, VMM_PVH_GDT_ENTRIES * 8);
    gdt[VMM_GDT_CODE / 8] = vmm_gdt_entry(0xc09b, 0, 0xfffff); /* G, D/B, P, code RX, A */
    gdt[VMM_GDT_DATA / 8] = vmm_gdt_entry(0xc093, 0, 0xfffff); /* G, D/B, P, data RW, A */
    gdt[VMM_PVH_GDT_TSS / 8] = vmm_gdt_entry(0x008b, 0, 0x67); /* P, 32-bit TSS (busy) */
    return 0;
}

int vmm_pvh_load(const struct vmm_mem *m, const uint8_t *img, size_t len, const uint8_t *initrd,
                 size_t initrd_len, const char *cmdline, struct vmm_boot_regs *regs)
{
    uint32_t entry;
    int rc = vmm_elf_pvh_entry(img, len, &entry);
    if (rc < 0)
        return rc;
    /* Check the whole image first (the entry must lie in a loaded segment). */
    struct vmm_elf_image elf;
    if ((rc = vmm_elf_load_entry(m, img, len, VMM_RAW_LOAD_MIN, entry, false, &elf)) < 0)
        return rc;
    size_t clen = strlen(cmdline) + 1;
    if (clen > VMM_PVH_CMDLINE_MAX)
        return -E2BIG;

    uint64_t low = vmm_mem_low_size(m);
    uint64_t initrd_at = 0;
    if (initrd_len) {
        /* As high in low RAM as it fits, page-aligned, above the kernel. */
        uint64_t kend = (elf.hi + 0xfff) & ~0xfffull;
        if (initrd_len > low || ((low - initrd_len) & ~0xfffull) < kend)
            return -ERANGE;
        initrd_at = (low - initrd_len) & ~0xfffull;
    }
    uint8_t *si = vmm_mem_ptr(m, VMM_PVH_START_INFO, SI_SIZE);
    uint8_t *mod = vmm_mem_ptr(m, VMM_PVH_MODLIST, MOD_ENTRY_SIZE);
    uint8_t *mm = vmm_mem_ptr(m, VMM_PVH_MEMMAP, VMM_PVH_MEMMAP_MAX * MEMMAP_ENTRY_SIZE);
    char *cl = vmm_mem_ptr(m, VMM_LINUX_CMDLINE, VMM_PVH_CMDLINE_MAX);
    if (!si || !mod || !mm || !cl || elf.lo < VMM_RAW_LOAD_MIN)
        return -ERANGE;

    /* Everything fits: write. */
    if ((rc = vmm_elf_load_entry(m, img, len, VMM_RAW_LOAD_MIN, entry, true, &elf)) < 0 ||
        (rc = vmm_pvh_build_gdt(m)) < 0)
        return rc;
    if (initrd_len)
        memcpy(vmm_mem_ptr(m, initrd_at, initrd_len), initrd, initrd_len);
    memset(cl, 0, VMM_PVH_CMDLINE_MAX);
    memcpy(cl, cmdline, clen);

    struct vmm_e820 e[VMM_PVH_MEMMAP_MAX];
    unsigned n = vmm_e820_build(m, e, VMM_PVH_MEMMAP_MAX);
    memset(mm, 0, VMM_PVH_MEMMAP_MAX * MEMMAP_ENTRY_SIZE);
    for (unsigned i = 0; i < n; i++) {
        uint8_t *d = mm + i * MEMMAP_ENTRY_SIZE;
        wr64(d, e[i].addr);
        wr64(d + 8, e[i].size);
        wr32(d + 16, e[i].type);
    }
    memset(mod, 0, MOD_ENTRY_SIZE);
    if (initrd_len) {
        wr64(mod, initrd_at);
        wr64(mod + 8, initrd_len);
    }
    memset(si, 0, SI_SIZE);
    wr32(si + SI_MAGIC, VMM_PVH_MAGIC);
    wr32(si + SI_VERSION, 1);
    wr32(si + SI_NR_MODULES, initrd_len ? 1 : 0);
    wr64(si + SI_MODLIST_PADDR, initrd_len ? VMM_PVH_MODLIST : 0);
    wr64(si + SI_CMDLINE_PADDR, VMM_LINUX_CMDLINE);
    wr64(si + SI_RSDP_PADDR, VMM_ACPI_BASE);
    wr64(si + SI_MEMMAP_PADDR, VMM_PVH_MEMMAP);
    wr32(si + SI_MEMMAP_ENTRIES, n);

    *regs = (struct vmm_boot_regs){
        .rip = entry,
        .rbx = VMM_PVH_START_INFO,
        .rsp = VMM_RAW_STACK_TOP,
        .protected32 = true,
    };
    return 0;
}
