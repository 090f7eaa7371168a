/*
 * PVH boot: the XEN_ELFNOTE_PHYS32_ENTRY note in synthetic ELF images (4- and 8-byte values,
 * other notes around it, and malformed ones: truncated, sizes out of the segment, wrong
 * sizes, a value above 4 GiB, the note segment outside the file), the entry outside every
 * loaded segment, hvm_start_info + modlist + memmap + command line in guest memory, the PVH
 * GDT, the boot registers, rejected loads leaving guest memory untouched, and the --kernel
 * format detection (bzImage / PVH / raw).
 */
#include "vmm_int.h"

#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define LOAD_AT   0x200000ull
#define LOAD_SIZE 0x3000u
#define ENTRY     (LOAD_AT + 0x100)
#define NOTE_OFF  0x1000u /* the notes' place in the file */
#define LOAD_OFF  0x2000u /* the loaded segment's place in the file */
#define IMG_SIZE  (LOAD_OFF + LOAD_SIZE)

static uint8_t img[IMG_SIZE];
static size_t pvh_at; /* the PVH note's offset in the note segment (make_elf) */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Append one note at *off; returns the note's start. */
static size_t note(size_t *off, const char *name, uint32_t namesz, uint32_t type, const void *desc,
                   uint32_t descsz)
{
    size_t at = *off;
    uint8_t *p = img + NOTE_OFF + at;
    wr32(p, namesz);
    wr32(p + 4, descsz);
    wr32(p + 8, type);
    memcpy(p + 12, name, namesz);
    size_t d = 12 + ((namesz + 3) & ~3u);
    memcpy(p + d, desc, descsz);
    *off = at + d + ((descsz + 3) & ~3u);
    return at;
}

/*
 * An ELF64 executable: PT_LOAD of LOAD_SIZE at LOAD_AT, PT_NOTE with a GNU note, a Xen note
 * of another type, then the PVH note (desc of descsz bytes holding value). Returns the size
 * of the note segment.
 */
static size_t make_elf(uint32_t descsz, uint64_t value)
{
    memset(img, 0, sizeof(img));
    Elf64_Ehdr eh = {
        .e_ident = {ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB, EV_CURRENT},
        .e_type = ET_EXEC,
        .e_machine = EM_X86_64,
        .e_version = EV_CURRENT,
        .e_entry = 0xffffffff81000000ull, /* a virtual address: PVH does not use it */
        .e_phoff = sizeof(Elf64_Ehdr),
        .e_ehsize = sizeof(Elf64_Ehdr),
        .e_phentsize = sizeof(Elf64_Phdr),
        .e_phnum = 2,
    };
    memcpy(img, &eh, sizeof(eh));
    size_t off = 0;
    const uint8_t build_id[20] = {1, 2, 3};
    note(&off, "GNU", 4, 3, build_id, sizeof(build_id));
    const char linux_str[] = "linux";
    note(&off, "Xen", 4, 6, linux_str, sizeof(linux_str));
    uint8_t v[16];
    memset(v, 0, sizeof(v));
    for (unsigned i = 0; i < 8; i++)
        v[i] = (uint8_t)(value >> (8 * i));
    pvh_at = note(&off, "Xen", 4, VMM_PVH_NOTE_TYPE, v, descsz);
    Elf64_Phdr ph[2] = {
        {.p_type = PT_LOAD,
         .p_offset = LOAD_OFF,
         .p_vaddr = 0xffffffff81000000ull,
         .p_paddr = LOAD_AT,
         .p_filesz = LOAD_SIZE,
         .p_memsz = LOAD_SIZE + 0x1000, /* plus some bss */
         .p_align = 0x1000},
        {.p_type = PT_NOTE, .p_offset = NOTE_OFF, .p_filesz = off, .p_memsz = off, .p_align = 4},
    };
    memcpy(img + eh.e_phoff, ph, sizeof(ph));
    for (unsigned i = 0; i < LOAD_SIZE; i++)
        img[LOAD_OFF + i] = (uint8_t)(i * 7 + 1);
    return off;
}

static Elf64_Phdr *note_phdr(void)
{
    return (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr));
}

static void test_note(void **state)
{
    (void)state;
    uint32_t entry = 0;
    make_elf(4, ENTRY);
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), 0);
    assert_int_equal(entry, ENTRY);
    make_elf(8, ENTRY); /* Linux's _ASM_PTR on x86-64 */
    entry = 0;
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), 0);
    assert_int_equal(entry, ENTRY);

    /* No PVH note: a Xen note of another type only. */
    size_t len;
    make_elf(4, ENTRY);
    wr32(img + NOTE_OFF + pvh_at + 8, 17); /* the last note's type */
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -ENOENT);
    /* "Xen" without its NUL is another owner. */
    make_elf(4, ENTRY);
    wr32(img + NOTE_OFF + pvh_at, 3);
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -ENOENT);
    /* No PT_NOTE at all. */
    make_elf(4, ENTRY);
    note_phdr()->p_type = PT_NULL;
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -ENOENT);

    /* Malformed PVH notes. */
    const uint32_t bad_sizes[] = {0, 2, 6, 16};
    for (unsigned i = 0; i < ARRAY_SIZE(bad_sizes); i++) {
        make_elf(bad_sizes[i], ENTRY);
        assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -EINVAL);
    }
    make_elf(8, 0x100000000ull | ENTRY); /* not a 32-bit address */
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -EINVAL);

    /* Truncated: the segment ends inside a note header, inside a name, inside a desc. */
    len = make_elf(4, ENTRY);
    const size_t cuts[] = {4, 11, 14, 34, pvh_at + 8, len - 2};
    for (unsigned i = 0; i < ARRAY_SIZE(cuts); i++) {
        make_elf(4, ENTRY);
        note_phdr()->p_filesz = cuts[i];
        if (vmm_elf_pvh_entry(img, IMG_SIZE, &entry) != -EINVAL)
            fail_msg("note segment cut to %zu bytes accepted", cuts[i]);
    }
    /* Sizes that point beyond the segment (and would wrap a 32-bit sum). */
    const uint32_t huge[] = {0x1000, 0xfffffffc, 0xffffffff};
    for (unsigned i = 0; i < ARRAY_SIZE(huge); i++) {
        make_elf(4, ENTRY);
        wr32(img + NOTE_OFF + pvh_at, huge[i]); /* PVH note namesz */
        assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -EINVAL);
        make_elf(4, ENTRY);
        wr32(img + NOTE_OFF + pvh_at + 4, huge[i]); /* descsz */
        assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -EINVAL);
        make_elf(4, ENTRY);
        wr32(img + NOTE_OFF + 4, huge[i]); /* the first note's descsz */
        assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -EINVAL);
    }
    /* The note segment outside the file, or wrapping. */
    make_elf(4, ENTRY);
    note_phdr()->p_offset = IMG_SIZE - 8;
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -EINVAL);
    make_elf(4, ENTRY);
    note_phdr()->p_offset = UINT64_MAX - 4;
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -EINVAL);
    /* The file cut before the notes. */
    make_elf(4, ENTRY);
    assert_int_equal(vmm_elf_pvh_entry(img, NOTE_OFF + 20, &entry), -EINVAL);

    /* Not an ELF64 x86-64 executable. */
    make_elf(4, ENTRY);
    img[EI_CLASS] = ELFCLASS32;
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -ENOEXEC);
    make_elf(4, ENTRY);
    assert_int_equal(vmm_elf_pvh_entry(img, 40, &entry), -ENOEXEC);
    memset(img, 0, 64);
    assert_int_equal(vmm_elf_pvh_entry(img, IMG_SIZE, &entry), -ENOEXEC);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static void test_load(void **state)
{
    (void)state;
    static uint8_t initrd[12345];
    struct vmm_mem m;
    struct vmm_boot_regs regs;
    memset(initrd, 0x5a, sizeof(initrd));
    assert_int_equal(vmm_mem_init(&m, 16u << 20), 0);
    make_elf(8, ENTRY);
    assert_int_equal(
        vmm_pvh_load(&m, img, IMG_SIZE, initrd, sizeof(initrd), "console=ttyS0 quiet", &regs), 0);

    /* Registers: 32-bit protected mode at the note's entry, %ebx = start info. */
    assert_int_equal(regs.rip, ENTRY);
    assert_int_equal(regs.rbx, VMM_PVH_START_INFO);
    assert_true(regs.protected32);
    assert_false(regs.long_mode);

    /* The kernel, its bss cleared. */
    assert_memory_equal(vmm_mem_ptr(&m, LOAD_AT, LOAD_SIZE), img + LOAD_OFF, LOAD_SIZE);
    assert_true(all_zero(vmm_mem_ptr(&m, LOAD_AT + LOAD_SIZE, 0x1000), 0x1000));

    /* hvm_start_info */
    const uint8_t *si = vmm_mem_ptr(&m, VMM_PVH_START_INFO, 56);
    assert_int_equal(rd32(si), 0x336ec578);
    assert_int_equal(rd32(si + 4), 1); /* version 1: has the memory map */
    assert_int_equal(rd32(si + 8), 0);
    assert_int_equal(rd32(si + 12), 1); /* one module */
    assert_int_equal(rd64(si + 32), VMM_ACPI_BASE);
    assert_string_equal((const char *)vmm_mem_ptr(&m, rd64(si + 24), 1), "console=ttyS0 quiet");
    /* The module: the initrd, page-aligned, above the kernel, inside RAM. */
    const uint8_t *mod = vmm_mem_ptr(&m, rd64(si + 16), 32);
    uint64_t at = rd64(mod), size = rd64(mod + 8);
    assert_int_equal(size, sizeof(initrd));
    assert_int_equal(at % 4096, 0);
    assert_true(at >= LOAD_AT + LOAD_SIZE + 0x1000);
    assert_true(at + size <= (16u << 20));
    assert_memory_equal(vmm_mem_ptr(&m, at, size), initrd, size);
    assert_int_equal(rd64(mod + 16), 0); /* no module command line */
    /* The memory map: the e820 ranges; RAM at 1 MiB and up to the end; the ACPI area is
     * reserved; sorted, no overlap. */
    uint32_t n = rd32(si + 48);
    struct vmm_e820 e[8];
    assert_int_equal(n, vmm_e820_build(&m, e, 8));
    const uint8_t *mm = vmm_mem_ptr(&m, rd64(si + 40), n * 24);
    bool acpi_reserved = false;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *d = mm + i * 24;
        assert_int_equal(rd64(d), e[i].addr);
        assert_int_equal(rd64(d + 8), e[i].size);
        assert_int_equal(rd32(d + 16), e[i].type);
        assert_int_equal(rd32(d + 20), 0);
        if (i)
            assert_true(rd64(d - 24) + rd64(d - 16) <= rd64(d));
        if (rd64(d) <= VMM_ACPI_BASE && rd64(d) + rd64(d + 8) >= 0x100000 &&
            rd32(d + 16) == VMM_E820_RESERVED)
            acpi_reserved = true;
    }
    assert_true(acpi_reserved);
    assert_int_equal(rd64(mm + (n - 1) * 24) + rd64(mm + (n - 1) * 24 + 8), 16u << 20);

    /* The GDT: flat 32-bit code and data, and a 32-bit TSS. */
    const uint64_t *gdt = vmm_mem_ptr(&m, VMM_RAW_GDT, VMM_PVH_GDT_ENTRIES * 8);
    assert_int_equal(gdt[0], 0);
    assert_int_equal(gdt[VMM_GDT_CODE / 8], 0x00cf9b000000ffffull);
    assert_int_equal(gdt[VMM_GDT_DATA / 8], 0x00cf93000000ffffull);
    assert_int_equal(gdt[VMM_PVH_GDT_TSS / 8], 0x00008b0000000067ull);

    /* Without an initrd: no module. */
    assert_int_equal(vmm_pvh_load(&m, img, IMG_SIZE, NULL, 0, "", &regs), 0);
    assert_int_equal(rd32(si + 12), 0);
    assert_int_equal(rd64(si + 16), 0);
    vmm_mem_fini(&m);
}

/* Every rejected load leaves guest memory as it was. */
static void test_rejects(void **state)
{
    (void)state;
    struct vmm_mem m;
    struct vmm_boot_regs regs;
    assert_int_equal(vmm_mem_init(&m, 4u << 20), 0);
    static uint8_t initrd[4096];

    /* Entry outside every loaded segment (below, past memsz, in a gap). */
    const uint64_t outside[] = {LOAD_AT - 1, LOAD_AT + LOAD_SIZE + 0x1000, 0x100000};
    for (unsigned i = 0; i < ARRAY_SIZE(outside); i++) {
        make_elf(4, outside[i]);
        assert_int_equal(vmm_pvh_load(&m, img, IMG_SIZE, NULL, 0, "", &regs), -EINVAL);
    }
    /* A command line longer than Linux takes. */
    char *big = malloc(VMM_PVH_CMDLINE_MAX + 1);
    memset(big, 'x', VMM_PVH_CMDLINE_MAX);
    big[VMM_PVH_CMDLINE_MAX] = 0;
    make_elf(4, ENTRY);
    assert_int_equal(vmm_pvh_load(&m, img, IMG_SIZE, NULL, 0, big, &regs), -E2BIG);
    big[VMM_PVH_CMDLINE_MAX - 1] = 0; /* 2047 characters + NUL fit */
    free(big);
    /* An initrd that does not fit above the kernel (4 MiB of RAM, kernel ends at 2 MiB + 16K). */
    uint8_t *huge = calloc(1, 2u << 20);
    assert_int_equal(vmm_pvh_load(&m, img, IMG_SIZE, huge, 2u << 20, "", &regs), -ERANGE);
    free(huge);
    /* A segment beyond guest memory. */
    make_elf(4, ENTRY);
    Elf64_Phdr *load = (Elf64_Phdr *)(img + sizeof(Elf64_Ehdr));
    load->p_memsz = 8u << 20;
    assert_int_equal(vmm_pvh_load(&m, img, IMG_SIZE, initrd, sizeof(initrd), "", &regs), -ERANGE);
    /* Malformed notes fail the load the same way. */
    make_elf(6, ENTRY);
    assert_int_equal(vmm_pvh_load(&m, img, IMG_SIZE, NULL, 0, "", &regs), -EINVAL);
    assert_true(all_zero(m.base, m.size));

    /* 2047 characters are accepted. */
    char *fits = malloc(VMM_PVH_CMDLINE_MAX);
    memset(fits, 'y', VMM_PVH_CMDLINE_MAX - 1);
    fits[VMM_PVH_CMDLINE_MAX - 1] = 0;
    make_elf(4, ENTRY);
    assert_int_equal(vmm_pvh_load(&m, img, IMG_SIZE, NULL, 0, fits, &regs), 0);
    free(fits);
    vmm_mem_fini(&m);
}

static void test_detect(void **state)
{
    (void)state;
    int err;
    make_elf(4, ENTRY);
    assert_int_equal(vmm_boot_detect(img, IMG_SIZE, &err), VMM_BOOT_PVH);
    assert_int_equal(err, 0);
    note_phdr()->p_type = PT_NULL;
    assert_int_equal(vmm_boot_detect(img, IMG_SIZE, &err), VMM_BOOT_RAW);
    assert_int_equal(err, 0);
    make_elf(2, ENTRY); /* a broken PVH note is an error, not a raw boot */
    assert_int_equal(vmm_boot_detect(img, IMG_SIZE, &err), VMM_BOOT_RAW);
    assert_int_equal(err, -EINVAL);

    /* A bzImage by its "HdrS"; a broken one says why. */
    memset(img, 0, sizeof(img));
    memcpy(img + 0x202, "HdrS", 4);
    assert_int_equal(vmm_boot_detect(img, IMG_SIZE, &err), VMM_BOOT_BZIMAGE);
    assert_int_equal(err, -ENOEXEC); /* no boot flag */
    img[0x1fe] = 0x55;
    img[0x1ff] = 0xaa;
    img[0x206] = 0x0f;
    img[0x207] = 0x02; /* 2.15 */
    img[0x211] = 0x01;
    img[0x236] = 0x01;
    img[0x1f1] = 1;
    img[0x201] = 0x66;
    assert_int_equal(vmm_boot_detect(img, IMG_SIZE, &err), VMM_BOOT_BZIMAGE);
    assert_int_equal(err, 0);

    /* Neither: the raw loader will say it is not an ELF. */
    memset(img, 0x90, sizeof(img));
    assert_int_equal(vmm_boot_detect(img, IMG_SIZE, &err), VMM_BOOT_RAW);
    assert_int_equal(err, -ENOEXEC);
    assert_int_equal(vmm_boot_detect(img, 10, &err), VMM_BOOT_RAW);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_note),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_detect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
