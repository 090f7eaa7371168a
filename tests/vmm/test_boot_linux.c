/* Linux boot protocol: bzImage header checks (malformed images), e820, the zero page. */
#include "vmm_int.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SETUP_SECTS 1
#define SETUP_LEN   ((SETUP_SECTS + 1) * 512)
#define KERNEL_LEN  4096
#define IMG_LEN     (SETUP_LEN + KERNEL_LEN)

static void put16(uint8_t *p, size_t off, uint16_t v)
{
    p[off] = (uint8_t)v;
    p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
    put16(p, off, (uint16_t)v);
    put16(p, off + 2, (uint16_t)(v >> 16));
}

static uint32_t get32(const uint8_t *p, size_t off)
{
    return (uint32_t)(p[off] | p[off + 1] << 8 | p[off + 2] << 16 | (uint32_t)p[off + 3] << 24);
}

static void make_bzimage(uint8_t *img)
{
    memset(img, 0, IMG_LEN);
    img[0x1f1] = SETUP_SECTS;
    put16(img, 0x1fe, 0xaa55);
    img[0x200] = 0xeb;
    img[0x201] = 0x66; /* header ends at 0x268 */
    put32(img, 0x202, 0x53726448);
    put16(img, 0x206, 0x020f);
    img[0x211] = 0x01;
    put32(img, 0x22c, 0x7fffffff);
    put16(img, 0x236, 0x0003);
    put32(img, 0x238, 2047);
    put32(img, 0x260, 0x10000);
    for (unsigned i = 0; i < KERNEL_LEN; i++)
        img[SETUP_LEN + i] = (uint8_t)(i * 13);
}

static void test_parse(void **state)
{
    (void)state;
    static uint8_t img[IMG_LEN];
    struct vmm_bzimage bz;
    make_bzimage(img);
    assert_int_equal(vmm_bzimage_parse(img, IMG_LEN, &bz), 0);
    assert_int_equal(bz.setup_size, SETUP_LEN);
    assert_int_equal(bz.kernel_size, KERNEL_LEN);
    assert_int_equal(bz.hdr_end, 0x268);
    assert_int_equal(bz.init_size, 0x10000);

    const struct {
        size_t off;
        int width; /* 0: cut the image to `val` bytes */
        uint32_t val;
        int expect;
        const char *what;
    } cases[] = {
        {0, 0, 0x200, -ENOEXEC, "shorter than the header"},
        {0, 0, 0, -ENOEXEC, "empty"},
        {0x1fe, 2, 0x55aa, -ENOEXEC, "bad boot flag"},
        {0x202, 4, 0x53726449, -ENOEXEC, "bad HdrS magic"},
        {0x206, 2, 0x020b, -ENOTSUP, "protocol 2.11"},
        {0x211, 1, 0x00, -ENOTSUP, "not LOADED_HIGH"},
        {0x236, 2, 0x0002, -ENOTSUP, "no 64-bit entry"},
        {0x1f1, 1, 200, -EINVAL, "setup sectors beyond the file"},
        {0x1f4, 4, KERNEL_LEN / 16 + 1, -EINVAL, "syssize beyond the file (truncated)"},
        {0x1f4, 4, KERNEL_LEN / 16, 0, "syssize: exactly the file"},
        {0x1f1, 1, 0, 0, "setup_sects 0 means 4"},
        {0x201, 1, 0xff, 0, "header end 0x301 within 1 KiB setup"},
        {0, 0, SETUP_LEN, -EINVAL, "no protected-mode kernel"},
    };
    for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
        make_bzimage(img);
        size_t len = IMG_LEN;
        if (cases[i].width == 0)
            len = cases[i].val;
        else if (cases[i].width == 1)
            img[cases[i].off] = (uint8_t)cases[i].val;
        else if (cases[i].width == 2)
            put16(img, cases[i].off, (uint16_t)cases[i].val);
        else
            put32(img, cases[i].off, cases[i].val);
        int rc = vmm_bzimage_parse(img, len, &bz);
        if (rc != cases[i].expect)
            fail_msg("case '%s': got %d, want %d", cases[i].what, rc, cases[i].expect);
    }
    /* The jump byte may not push the header past the setup code. */
    make_bzimage(img);
    img[0x1f1] = 0; /* 4 sectors + boot sector = 2560 bytes, header end at most 0x301 */
    assert_int_equal(vmm_bzimage_parse(img, IMG_LEN, &bz), 0);
}

static void test_e820(void **state)
{
    (void)state;
    struct vmm_mem m;
    struct vmm_e820 e[8];
    assert_int_equal(vmm_mem_init(&m, 16u << 20), 0);
    unsigned n = vmm_e820_build(&m, e, 8);
    assert_int_equal(n, 4);
    assert_int_equal(e[0].addr, 0);
    assert_int_equal(e[0].type, VMM_E820_RAM);
    assert_int_equal(e[1].type, VMM_E820_RESERVED);
    assert_int_equal(e[3].addr, 0x100000);
    assert_int_equal(e[3].size, (16u << 20) - 0x100000);
    assert_int_equal(vmm_e820_build(&m, e, 2), 2); /* bounded */
    /* Entries are sorted and do not overlap. */
    for (unsigned i = 1; i < n; i++)
        assert_true(e[i - 1].addr + e[i - 1].size <= e[i].addr);
    vmm_mem_fini(&m);

    assert_int_equal(vmm_mem_init(&m, 4ull << 30), 0);
    n = vmm_e820_build(&m, e, 8);
    assert_int_equal(n, 5);
    assert_int_equal(e[3].addr + e[3].size, VMM_LOW_RAM_MAX);
    assert_int_equal(e[4].addr, VMM_HIGH_RAM_START);
    assert_int_equal(e[4].size, (4ull << 30) - VMM_LOW_RAM_MAX);
    vmm_mem_fini(&m);
}

static void test_load(void **state)
{
    (void)state;
    static uint8_t img[IMG_LEN];
    static uint8_t initrd[10000];
    struct vmm_mem m;
    struct vmm_boot_regs regs;
    make_bzimage(img);
    memset(initrd, 0xab, sizeof(initrd));
    assert_int_equal(vmm_mem_init(&m, 16u << 20), 0);
    assert_int_equal(
        vmm_linux_load(&m, img, IMG_LEN, initrd, sizeof(initrd), "console=ttyS0", &regs), 0);
    assert_int_equal(regs.rip, VMM_LINUX_KERNEL + 0x200);
    assert_int_equal(regs.rsi, VMM_LINUX_BOOT_PARAMS);
    assert_true(regs.long_mode);
    assert_memory_equal(vmm_mem_ptr(&m, VMM_LINUX_KERNEL, KERNEL_LEN), img + SETUP_LEN, KERNEL_LEN);
    const uint8_t *bp = vmm_mem_ptr(&m, VMM_LINUX_BOOT_PARAMS, 4096);
    assert_int_equal(bp[0x210], 0xff);
    assert_int_equal(get32(bp, 0x202), 0x53726448); /* the header was copied */
    assert_int_equal(get32(bp, 0x228), VMM_LINUX_CMDLINE);
    assert_string_equal((const char *)vmm_mem_ptr(&m, VMM_LINUX_CMDLINE, 1), "console=ttyS0");
    uint32_t rd = get32(bp, 0x218);
    assert_int_equal(get32(bp, 0x21c), sizeof(initrd));
    assert_int_equal(rd % 4096, 0);
    assert_true(rd >= VMM_LINUX_KERNEL + 0x10000);
    assert_true(rd + sizeof(initrd) <= (16u << 20));
    assert_memory_equal(vmm_mem_ptr(&m, rd, sizeof(initrd)), initrd, sizeof(initrd));
    assert_int_equal(bp[0x1e8], 4);
    assert_int_equal(get32(bp, 0x2d0 + 3 * 20), 0x100000);
    assert_int_equal(get32(bp, 0x2d0 + 3 * 20 + 16), VMM_E820_RAM);

    /* Command line longer than the kernel accepts. */
    char *big = malloc(4096);
    memset(big, 'x', 4095);
    big[4095] = 0;
    assert_int_equal(vmm_linux_load(&m, img, IMG_LEN, NULL, 0, big, &regs), -E2BIG);
    free(big);
    /* An initrd that cannot fit above the kernel. */
    uint8_t *huge = calloc(1, 15u << 20);
    assert_int_equal(vmm_linux_load(&m, img, IMG_LEN, huge, 15u << 20, "", &regs), -ERANGE);
    free(huge);
    /* initrd_addr_max below the kernel. */
    put32(img, 0x22c, 0x100000);
    assert_int_equal(vmm_linux_load(&m, img, IMG_LEN, initrd, sizeof(initrd), "", &regs), -ERANGE);
    /* A kernel whose init_size does not fit in memory. */
    make_bzimage(img);
    put32(img, 0x260, 0xffffff00);
    assert_int_equal(vmm_linux_load(&m, img, IMG_LEN, NULL, 0, "", &regs), -ERANGE);
    vmm_mem_fini(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_e820),
        cmocka_unit_test(test_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
