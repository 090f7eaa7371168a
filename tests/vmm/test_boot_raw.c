/* Raw boot structures: GDT encoding, identity page tables, command line; guest memory and
 * the I/O bus they rely on. */
#include "vmm_int.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void test_gdt_entry(void **state)
{
    (void)state;
    /* The classic flat descriptors (Linux's GDT_ENTRY(0xa09b, 0, 0xfffff) and friends). */
    assert_int_equal(vmm_gdt_entry(0xa09b, 0, 0xfffff), 0x00af9b000000ffffull);
    assert_int_equal(vmm_gdt_entry(0xc093, 0, 0xfffff), 0x00cf93000000ffffull);
    assert_int_equal(vmm_gdt_entry(0x0089, 0x12345678, 0x67), 0x1200893456780067ull);
}

/* Walk the guest's page tables as the MMU would (4-level, 2 MiB leaves). */
static int walk(struct vmm_mem *m, uint64_t va, uint64_t *pa)
{
    uint64_t *pml4 = vmm_mem_ptr(m, VMM_RAW_PML4, 4096);
    uint64_t e = pml4[(va >> 39) & 511];
    if (!(e & 1))
        return -1;
    uint64_t *pdpt = vmm_mem_ptr(m, e & ~0xfffull, 4096);
    e = pdpt[(va >> 30) & 511];
    if (!(e & 1))
        return -1;
    uint64_t *pd = vmm_mem_ptr(m, e & ~0xfffull, 4096);
    e = pd[(va >> 21) & 511];
    if (!(e & 1) || !(e & (1ull << 7)) || !(e & 2))
        return -1;
    *pa = (e & ~0x1fffffull) | (va & 0x1fffff);
    return 0;
}

static void test_tables(void **state)
{
    (void)state;
    struct vmm_mem m;
    assert_int_equal(vmm_mem_init(&m, 2u << 20), 0);
    assert_int_equal(vmm_raw_build_tables(&m), 0);
    uint64_t *gdt = vmm_mem_ptr(&m, VMM_RAW_GDT, 24);
    assert_int_equal(gdt[0], 0);
    assert_int_equal(gdt[VMM_GDT_CODE / 8], 0x00af9b000000ffffull);
    assert_int_equal(gdt[VMM_GDT_DATA / 8], 0x00cf93000000ffffull);

    const uint64_t probes[] = {0,          0x1000,     0x100000,   0x1fffff,  0x200000,
                               0xd0000000, 0xd0000050, 0xfee00000, 0xffffffff};
    for (unsigned i = 0; i < ARRAY_SIZE(probes); i++) {
        uint64_t pa;
        assert_int_equal(walk(&m, probes[i], &pa), 0);
        assert_int_equal(pa, probes[i]);
    }
    uint64_t pa;
    assert_int_equal(walk(&m, 0x100000000ull, &pa), -1); /* only 4 GiB mapped */
    /* The tables do not overlap the command line, the stack top or the load address. */
    assert_true(VMM_RAW_PD + 4 * 4096 <= VMM_RAW_CMDLINE);
    assert_true(VMM_RAW_CMDLINE + VMM_RAW_CMDLINE_MAX <= VMM_RAW_STACK_TOP);
    assert_true(VMM_RAW_STACK_TOP <= VMM_RAW_LOAD_MIN);
    vmm_mem_fini(&m);
}

static void test_cmdline(void **state)
{
    (void)state;
    struct vmm_mem m;
    static char big[VMM_RAW_CMDLINE_MAX + 1];
    assert_int_equal(vmm_mem_init(&m, 2u << 20), 0);
    assert_int_equal(vmm_raw_put_cmdline(&m, "ip=10.0.0.1 peer=10.0.0.2"), 0);
    assert_string_equal((char *)vmm_mem_ptr(&m, VMM_RAW_CMDLINE, 1), "ip=10.0.0.1 peer=10.0.0.2");
    memset(big, 'a', VMM_RAW_CMDLINE_MAX);
    assert_int_equal(vmm_raw_put_cmdline(&m, big), -E2BIG); /* no room for the NUL */
    big[VMM_RAW_CMDLINE_MAX - 1] = 0;
    assert_int_equal(vmm_raw_put_cmdline(&m, big), 0);
    vmm_mem_fini(&m);
}

static void test_mem(void **state)
{
    (void)state;
    struct vmm_mem m;
    assert_int_equal(vmm_mem_init(&m, 1u << 20), -EINVAL);   /* below the minimum */
    assert_int_equal(vmm_mem_init(&m, (3u << 20)), -EINVAL); /* not a 2 MiB multiple */
    assert_int_equal(vmm_mem_init(&m, VMM_MEM_MAX + (2u << 20)), -EINVAL);

    assert_int_equal(vmm_mem_init(&m, 4u << 20), 0);
    assert_int_equal(m.nregions, 1);
    assert_non_null(vmm_mem_ptr(&m, 0, 4u << 20));
    assert_null(vmm_mem_ptr(&m, 0, (4u << 20) + 1));
    assert_null(vmm_mem_ptr(&m, (4u << 20) - 1, 2));
    assert_non_null(vmm_mem_ptr(&m, (4u << 20) - 1, 1));
    assert_null(vmm_mem_ptr(&m, UINT64_MAX, 2));
    assert_null(vmm_mem_ptr(&m, 16, UINT64_MAX));
    vmm_mem_fini(&m);

    /* Above 3 GiB the rest moves above the 32-bit hole (sparse memfd: costs nothing). */
    assert_int_equal(vmm_mem_init(&m, 4ull << 30), 0);
    assert_int_equal(m.nregions, 2);
    assert_int_equal(m.regions[0].size, VMM_LOW_RAM_MAX);
    assert_int_equal(m.regions[1].gpa, VMM_HIGH_RAM_START);
    assert_int_equal(m.regions[1].size, (4ull << 30) - VMM_LOW_RAM_MAX);
    assert_null(vmm_mem_ptr(&m, VMM_MMIO_BASE, 4));
    assert_null(vmm_mem_ptr(&m, VMM_LOW_RAM_MAX - 4, 8)); /* does not span regions */
    assert_ptr_equal(vmm_mem_ptr(&m, VMM_HIGH_RAM_START, 8), m.base + VMM_LOW_RAM_MAX);
    vmm_mem_fini(&m);
}

static unsigned io_calls;
static void io_fn(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
    (void)opaque;
    (void)is_write;
    io_calls++;
    if (!is_write)
        memset(data, (int)off, len);
}

static void test_bus(void **state)
{
    (void)state;
    struct vmm_bus b = {0};
    uint8_t d[8];
    assert_int_equal(vmm_bus_add(&b, 0x3f8, 8, io_fn, NULL, "a"), 0);
    assert_int_equal(vmm_bus_add(&b, 0x3fc, 8, io_fn, NULL, "b"), -EEXIST);
    assert_int_equal(vmm_bus_add(&b, 0x3f0, 9, io_fn, NULL, "c"), -EEXIST);
    assert_int_equal(vmm_bus_add(&b, UINT64_MAX - 1, 4, io_fn, NULL, "d"), -EINVAL);
    assert_int_equal(vmm_bus_add(&b, 0x400, 0, io_fn, NULL, "e"), -EINVAL);
    assert_true(vmm_bus_access(&b, "pio", 0x3fa, d, 1, false));
    assert_int_equal(d[0], 2);
    assert_false(vmm_bus_access(&b, "pio", 0x3ff, d, 2, false)); /* crosses the end */
    assert_false(vmm_bus_access(&b, "pio", 0x500, d, 4, false));
    assert_int_equal(d[0], 0xff);
    assert_int_equal(io_calls, 1);
    for (unsigned i = 0; i < ARRAY_SIZE(b.r) - 1; i++)
        assert_int_equal(vmm_bus_add(&b, 0x1000 + i * 16, 16, io_fn, NULL, "x"), 0);
    assert_int_equal(vmm_bus_add(&b, 0x9000, 16, io_fn, NULL, "full"), -ENOSPC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gdt_entry), cmocka_unit_test(test_tables),
        cmocka_unit_test(test_cmdline),   cmocka_unit_test(test_mem),
        cmocka_unit_test(test_bus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
