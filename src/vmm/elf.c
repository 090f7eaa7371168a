/*
 * ELF64 loader for raw-booted test guests and PVH kernels: copies PT_LOAD segments to their
 * physical addresses, and finds the PVH entry note. The image is untrusted input: every
 * offset and size is checked before use and all arithmetic is overflow-safe. Main thread,
 * before the vCPUs start.
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

/* The ELF header of an x86-64 executable with a sane program header table. */
static int read_ehdr(const uint8_t *img, size_t len, Elf64_Ehdr *eh)
{
    if (len < sizeof(*eh))
        return -ENOEXEC;
    memcpy(eh, img, sizeof(*eh));
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64)
        return -ENOEXEC;
    if (eh->e_type != ET_EXEC)
        return -ENOEXEC;
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 ||
        eh->e_phnum > VMM_ELF_MAX_PHDRS ||
        !range_in(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), len))
        return -EINVAL;
    return 0;
}

int vmm_elf_load(const struct vmm_mem *m, const uint8_t *img, size_t len, uint64_t min_gpa,
                 struct vmm_elf_image *out)
{
    Elf64_Ehdr eh;
    int rc = read_ehdr(img, len, &eh);
    if (rc < 0)
        return rc;
    return vmm_elf_load_entry(m, img, len, min_gpa, eh.e_entry, true, out);
}

int vmm_elf_load_entry(const struct vmm_mem *m, const uint8_t *img, size_t len, uint64_t min_gpa,
                       uint64_t entry, bool load, struct vmm_elf_image *out)
{
    Elf64_Ehdr eh;
    int rc = read_ehdr(img, len, &eh);
    if (rc < 0)
        return rc;

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
        if (entry >= ph.p_paddr && entry - ph.p_paddr < ph.p_memsz)
            entry_ok = true;
        lo = MIN(lo, ph.p_paddr);
        hi = MAX(hi, ph.p_paddr + ph.p_memsz);
        nload++;
    }
    if (nload == 0 || !entry_ok)
        return -EINVAL;

    for (unsigned i = 0; load && i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, img + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
            continue;
        uint8_t *dst = vmm_mem_ptr(m, ph.p_paddr, ph.p_memsz);
        memcpy(dst, img + ph.p_offset, ph.p_filesz);
        memset(dst + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
    }
    out->entry = entry;
    out->lo = lo;
    out->hi = hi;
    return 0;
}

#define XEN_NOTE_NAME "Xen"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Walk one PT_NOTE segment [off, off + size) of the file. 0 found, -ENOENT not here. */
static int find_pvh_note(const uint8_t *img, uint64_t off, uint64_t size, uint32_t *entry)
{
    uint64_t pos = 0;
    while (pos < size) {
        /* Elf64_Nhdr: namesz, descsz, type (4 bytes each), then name and desc, each padded
         * to 4 bytes. The sizes are 32-bit, so the 64-bit sums below cannot wrap. */
        if (size - pos < 12)
            return -EINVAL; /* a truncated header */
        const uint8_t *h = img + off + pos;
        uint64_t namesz = rd32(h), descsz = rd32(h + 4);
        uint32_t type = rd32(h + 8);
        uint64_t name_at = pos + 12;
        uint64_t desc_at = name_at + ((namesz + 3) & ~3ull);
        uint64_t next = desc_at + ((descsz + 3) & ~3ull);
        if (desc_at > size || next > size || desc_at + descsz > size)
            return -EINVAL; /* name or desc beyond the segment */
        if (namesz == sizeof(XEN_NOTE_NAME) &&
            memcmp(img + off + name_at, XEN_NOTE_NAME, sizeof(XEN_NOTE_NAME)) == 0 &&
            type == VMM_PVH_NOTE_TYPE) {
            const uint8_t *d = img + off + desc_at;
            /* Linux writes it as a pointer-sized value (_ASM_PTR): 4 or 8 bytes. */
            if (descsz == 4) {
                *entry = rd32(d);
            } else if (descsz == 8) {
                if (rd32(d + 4) != 0)
                    return -EINVAL; /* the PVH entry is a 32-bit physical address */
                *entry = rd32(d);
            } else {
                return -EINVAL;
            }
            return 0;
        }
        pos = next;
    }
    return -ENOENT;
}

int vmm_elf_pvh_entry(const uint8_t *img, size_t len, uint32_t *entry)
{
    Elf64_Ehdr eh;
    int rc = read_ehdr(img, len, &eh);
    if (rc < 0)
        return rc;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, img + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
        if (ph.p_type != PT_NOTE)
            continue;
        if (!range_in(ph.p_offset, ph.p_filesz, len))
            return -EINVAL;
        rc = find_pvh_note(img, ph.p_offset, ph.p_filesz, entry);
        if (rc != -ENOENT)
            return rc;
    }
    return -ENOENT;
}
