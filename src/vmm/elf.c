/*
 * ELF64 loader for raw-booted test guests: copies PT_LOAD segments to their physical
 * addresses. The image is untrusted input: every offset and size is checked before use and
 * all arithmetic is overflow-safe. Main thread, before the vCPUs start.
 */
#include "vmm_int.h"

#include <elf.h>
#include <errno.h>
#include <string.h>

#define VMM_ELF_MAX_PHDRS 64

static bool range_in(uint64_t off, uint64_t len, uint64_t total)
{
    return off <= total && len <= total - off;
}

int vmm_elf_load(const struct vmm_mem *m, const uint8_t *img, size_t len, uint64_t min_gpa,
                 struct vmm_elf_image *out)
{
    Elf64_Ehdr eh;

    if (len < sizeof(eh))
        return -ENOEXEC;
    memcpy(&eh, img, sizeof(eh));
    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
        return -ENOEXEC;
    if (eh.e_type != ET_EXEC)
        return -ENOEXEC;
    if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > VMM_ELF_MAX_PHDRS ||
        !range_in(eh.e_phoff, (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr), len))
        return -EINVAL;

    /* First pass: validate everything, so a bad image leaves guest memory untouched. */
    uint64_t lo = UINT64_MAX, hi = 0;
    bool entry_ok = false;
    unsigned nload = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, img + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        if (ph.p_filesz > ph.p_memsz || !range_in(ph.p_offset, ph.p_filesz, len))
            return -EINVAL;
        if (ph.p_paddr < min_gpa || !vmm_mem_ptr(m, ph.p_paddr, ph.p_memsz))
            return -ERANGE;
        if (eh.e_entry >= ph.p_paddr && eh.e_entry - ph.p_paddr < ph.p_memsz)
            entry_ok = true;
        lo = MIN(lo, ph.p_paddr);
        hi = MAX(hi, ph.p_paddr + ph.p_memsz);
        nload++;
    }
    if (nload == 0 || !entry_ok)
        return -EINVAL;

    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, img + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        uint8_t *dst = vmm_mem_ptr(m, ph.p_paddr, ph.p_memsz);
        memcpy(dst, img + ph.p_offset, ph.p_filesz);
        memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
    }
    out->entry = eh.e_entry;
    out->lo = lo;
    out->hi = hi;
    return 0;
}
