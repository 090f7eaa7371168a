/* vmm_elf_load(): a valid test-guest image, and table-driven malformed images. */
#include "vmm_int.h"

#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#define MEM_SIZE (4u << 20)
#define LOAD_MIN 0x100000ull

struct image {
    Elf64_Ehdr eh;
    Elf64_Phdr ph[2];
    uint8_t text[64];
};

static void make_image(struct image *im)
{
    memset(im, 0, sizeof(*im));
    memcpy(im->eh.e_ident, ELFMAG, SELFMAG);
    im->eh.e_ident[EI_CLASS] = ELFCLASS64;
    im->eh.e_ident[EI_DATA] = ELFDATA2LSB;
    im->eh.e_ident[EI_VERSION] = EV_CURRENT;
    im->eh.e_type = ET_EXEC;
    im->eh.e_machine = EM_X86_64;
    im->eh.e_version = EV_CURRENT;
    im->eh.e_entry = 0x100000;
    im->eh.e_phoff = offsetof(struct image, ph);
    im->eh.e_ehsize = sizeof(Elf64_Ehdr);
    im->eh.e_phentsize = sizeof(Elf64_Phdr);
    im->eh.e_phnum = 2;
    im->ph[0] = (Elf64_Phdr){.p_type = PT_LOAD,
                             .p_offset = offsetof(struct image, text),
                             .p_paddr = 0x100000,
                             .p_vaddr = 0x100000,
                             .p_filesz = sizeof(im->text),
                             .p_memsz = 4096};
    im->ph[1] = (Elf64_Phdr){.p_type = PT_NOTE};
    memset(im->text, 0xc3, sizeof(im->text));
}

static int setup(void **state)
{
    static struct vmm_mem mem;
    if (vmm_mem_init(&mem, MEM_SIZE) < 0)
        return -1;
    *state = &mem;
    return 0;
}

static int teardown(void **state)
{
    vmm_mem_fini(*state);
    return 0;
}

static void test_valid(void **state)
{
    struct vmm_mem *m = *state;
    struct image im;
    struct vmm_elf_image out;
    make_image(&im);
    uint8_t *dst = vmm_mem_ptr(m, 0x100000, 4096);
    memset(dst, 0x55, 4096);
    assert_int_equal(vmm_elf_load(m, (uint8_t *)&im, sizeof(im), LOAD_MIN, &out), 0);
    assert_int_equal(out.entry, 0x100000);
    assert_int_equal(out.lo, 0x100000);
    assert_int_equal(out.hi, 0x101000);
    assert_memory_equal(dst, im.text, sizeof(im.text));
    for (unsigned i = sizeof(im.text); i < 4096; i++)
        assert_int_equal(dst[i], 0); /* bss zeroed */
}

enum mutation {
    M_SHORT,
    M_MAGIC,
    M_CLASS32,
    M_BIG_ENDIAN,
    M_MACHINE,
    M_DYN,
    M_PHENTSIZE,
    M_PHNUM0,
    M_PHNUM_HUGE,
    M_PHOFF_OUT,
    M_PHOFF_WRAP,
    M_FILESZ_GT_MEMSZ,
    M_OFFSET_OUT,
    M_OFFSET_WRAP,
    M_BELOW_MIN,
    M_BEYOND_MEM,
    M_PADDR_WRAP,
    M_MEMSZ_HUGE,
    M_ENTRY_OUTSIDE,
    M_NO_LOAD,
};

static const struct {
    enum mutation m;
    int expect;
    const char *name;
} cases[] = {
    {M_SHORT, -ENOEXEC, "shorter than the ELF header"},
    {M_MAGIC, -ENOEXEC, "bad magic"},
    {M_CLASS32, -ENOEXEC, "ELF32"},
    {M_BIG_ENDIAN, -ENOEXEC, "big endian"},
    {M_MACHINE, -ENOEXEC, "not x86-64"},
    {M_DYN, -ENOEXEC, "ET_DYN"},
    {M_PHENTSIZE, -EINVAL, "wrong phentsize"},
    {M_PHNUM0, -EINVAL, "no program headers"},
    {M_PHNUM_HUGE, -EINVAL, "65535 program headers"},
    {M_PHOFF_OUT, -EINVAL, "program headers past the end"},
    {M_PHOFF_WRAP, -EINVAL, "phoff wraps"},
    {M_FILESZ_GT_MEMSZ, -EINVAL, "filesz > memsz"},
    {M_OFFSET_OUT, -EINVAL, "segment data past the end of the file"},
    {M_OFFSET_WRAP, -EINVAL, "p_offset + p_filesz wraps"},
    {M_BELOW_MIN, -ERANGE, "segment below the load minimum"},
    {M_BEYOND_MEM, -ERANGE, "segment beyond guest memory"},
    {M_PADDR_WRAP, -ERANGE, "p_paddr + p_memsz wraps"},
    {M_MEMSZ_HUGE, -ERANGE, "memsz larger than memory"},
    {M_ENTRY_OUTSIDE, -EINVAL, "entry outside every segment"},
    {M_NO_LOAD, -EINVAL, "no PT_LOAD"},
};

static void mutate(struct image *im, enum mutation m, size_t *len)
{
    switch (m) {
    case M_SHORT:
        *len = sizeof(Elf64_Ehdr) - 1;
        break;
    case M_MAGIC:
        im->eh.e_ident[1] = 'X';
        break;
    case M_CLASS32:
        im->eh.e_ident[EI_CLASS] = ELFCLASS32;
        break;
    case M_BIG_ENDIAN:
        im->eh.e_ident[EI_DATA] = ELFDATA2MSB;
        break;
    case M_MACHINE:
        im->eh.e_machine = EM_AARCH64;
        break;
    case M_DYN:
        im->eh.e_type = ET_DYN;
        break;
    case M_PHENTSIZE:
        im->eh.e_phentsize = 32;
        break;
    case M_PHNUM0:
        im->eh.e_phnum = 0;
        break;
    case M_PHNUM_HUGE:
        im->eh.e_phnum = 0xffff;
        break;
    case M_PHOFF_OUT:
        im->eh.e_phoff = sizeof(*im) - 8;
        break;
    case M_PHOFF_WRAP:
        im->eh.e_phoff = UINT64_MAX - 8;
        break;
    case M_FILESZ_GT_MEMSZ:
        im->ph[0].p_filesz = im->ph[0].p_memsz + 1;
        break;
    case M_OFFSET_OUT:
        im->ph[0].p_offset = sizeof(*im);
        break;
    case M_OFFSET_WRAP:
        im->ph[0].p_offset = UINT64_MAX - 16;
        break;
    case M_BELOW_MIN:
        im->ph[0].p_paddr = 0x1000;
        im->eh.e_entry = 0x1000;
        break;
    case M_BEYOND_MEM:
        im->ph[0].p_paddr = MEM_SIZE - 2048;
        im->eh.e_entry = MEM_SIZE - 2048;
        break;
    case M_PADDR_WRAP:
        im->ph[0].p_paddr = UINT64_MAX - 100;
        im->eh.e_entry = UINT64_MAX - 100;
        break;
    case M_MEMSZ_HUGE:
        im->ph[0].p_memsz = UINT64_MAX;
        break;
    case M_ENTRY_OUTSIDE:
        im->eh.e_entry = 0x200000;
        break;
    case M_NO_LOAD:
        im->ph[0].p_type = PT_NOTE;
        break;
    }
}

static void test_malformed(void **state)
{
    struct vmm_mem *m = *state;
    uint8_t *dst = vmm_mem_ptr(m, 0x100000, 4096);
    for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
        struct image im;
        struct vmm_elf_image out = {0};
        size_t len = sizeof(im);
        make_image(&im);
        mutate(&im, cases[i].m, &len);
        memset(dst, 0x55, 4096);
        int rc = vmm_elf_load(m, (uint8_t *)&im, len, LOAD_MIN, &out);
        if (rc != cases[i].expect)
            fail_msg("case '%s': got %d, want %d", cases[i].name, rc, cases[i].expect);
        /* A rejected image leaves guest memory untouched. */
        for (unsigned k = 0; k < 4096; k++)
            assert_int_equal(dst[k], 0x55);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
