/*
 * Raw 64-bit entry for test guests: the VMM does what a boot loader would. It writes a flat
 * GDT (null, null, code64 0x10, data 0x18) and identity page tables for the first 4 GiB (2 MiB
 * pages, so the MMIO devices in the 32-bit hole are reachable), and the vCPU starts in long mode at
 * the ELF entry (vcpu.c sets the registers). The command line goes to VMM_RAW_CMDLINE and
 * its address in %rdi. Main thread, before the vCPUs start.
 */
#include "vmm_int.h"

#include <errno.h>
#include <string.h>

#define PTE_P  (1ull << 0)
#define PTE_RW (1ull << 1)
#define PTE_PS (1ull << 7)

uint64_t vmm_gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
    return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf0ffu) << 40) |
           ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)(base & 0x00ffffffu) << 16) |
           (uint64_t)(limit & 0x0000ffffu);
}

int vmm_raw_build_tables(const struct vmm_mem *m)
{
    uint64_t *gdt = vmm_mem_ptr(m, VMM_RAW_GDT, VMM_GDT_ENTRIES * 8);
    uint64_t *pml4 = vmm_mem_ptr(m, VMM_RAW_PML4, 4096);
    uint64_t *pdpt = vmm_mem_ptr(m, VMM_RAW_PDPT, 4096);
    uint64_t *pd = vmm_mem_ptr(m, VMM_RAW_PD, 4 * 4096);
    if (!gdt || !pml4 || !pdpt || !pd)
        return -ERANGE;

    memset(gdt, 0, VMM_GDT_ENTRIES * 8);
    gdt[VMM_GDT_CODE / 8] = vmm_gdt_entry(0xa09b, 0, 0xfffff); /* G, L, P, DPL0, code RX, A */
    gdt[VMM_GDT_DATA / 8] = vmm_gdt_entry(0xc093, 0, 0xfffff); /* G, D/B, P, DPL0, data RW, A */

    memset(pml4, 0, 4096);
    memset(pdpt, 0, 4096);
    pml4[0] = VMM_RAW_PDPT | PTE_P | PTE_RW;
    for (uint64_t i = 0; i < 4; i++) {
        pdpt[i] = (VMM_RAW_PD + i * 4096) | PTE_P | PTE_RW;
        for (uint64_t j = 0; j < 512; j++)
            pd[i * 512 + j] = ((i * 512 + j) << 21) | PTE_P | PTE_RW | PTE_PS;
    }
    return 0;
}

int vmm_raw_put_cmdline(const struct vmm_mem *m, const char *cmdline)
{
    size_t n = strlen(cmdline) + 1;
    if (n > VMM_RAW_CMDLINE_MAX)
        return -E2BIG;
    char *dst = vmm_mem_ptr(m, VMM_RAW_CMDLINE, VMM_RAW_CMDLINE_MAX);
    if (!dst)
        return -ERANGE;
    memset(dst, 0, VMM_RAW_CMDLINE_MAX);
    memcpy(dst, cmdline, n);
    return 0;
}
