/* Unit tests of src/common: MAC parsing and formatting, name validation, drop-reason names,
 * the log rate limiter. */
#include "common.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void test_mac_parse_table(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int rc;
        uint8_t b[6];
    } cases[] = {
        {"02:00:00:00:00:01", 0, {2, 0, 0, 0, 0, 1}},
        {"ff:FF:fF:00:aB:9c", 0, {0xff, 0xff, 0xff, 0, 0xab, 0x9c}},
        {"02:00:00:00:00:0", -EINVAL, {0}},
        {"02:00:00:00:00:001", -EINVAL, {0}},
        {"02-00-00-00-00-01", -EINVAL, {0}},
        {"0g:00:00:00:00:01", -EINVAL, {0}},
        {"", -EINVAL, {0}},
        {NULL, -EINVAL, {0}},
        {"02:00:00:00:00:01 ", -EINVAL, {0}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct vsw_mac m = {{0}};
        assert_int_equal(vsw_mac_parse(cases[i].in, &m), cases[i].rc);
        if (cases[i].rc == 0)
            assert_memory_equal(m.b, cases[i].b, 6);
    }
}

static void test_mac_format_roundtrip(void **state)
{
    (void)state;
    struct vsw_mac m = {{0xde, 0xad, 0xbe, 0xef, 0x00, 0x42}}, back;
    char buf[18];
    assert_string_equal(vsw_mac_format(&m, buf), "de:ad:be:ef:00:42");
    assert_int_equal(vsw_mac_parse(buf, &back), 0);
    assert_memory_equal(&m, &back, sizeof(m));
}

static void test_name_valid_table(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        bool ok;
    } cases[] = {
        {"br0", true},
        {"vm-1.eth_0", true},
        {"A", true},
        {"0123456789012345678901234567890", true},   /* 31 bytes */
        {"01234567890123456789012345678901", false}, /* 32 bytes */
        {"", false},
        {NULL, false},
        {".hidden", false},
        {"-opt", false},
        {"../x", false},
        {"a/b", false},
        {"a b", false},
        {"tab\t", false},
        {"ü", false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_int_equal(vsw_name_valid(cases[i].name), cases[i].ok);
}

static void test_drop_names(void **state)
{
    (void)state;
    assert_string_equal(vsw_drop_name(VSW_DROP_RX_BAD_DESC), "rx_bad_desc");
    assert_string_equal(vsw_drop_name(VSW_DROP_TX_NO_BUF), "tx_no_buffer");
    assert_string_equal(vsw_drop_name(VSW_DROP__COUNT), "?");
    /* Every reason has a distinct, non-empty name. */
    for (unsigned i = 0; i < VSW_DROP__COUNT; i++) {
        assert_true(strlen(vsw_drop_name(i)) > 0);
        assert_true(strlen(vsw_drop_help(i)) > 0);
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(vsw_drop_name(i), vsw_drop_name(j));
    }
}

static void test_ratelimit(void **state)
{
    (void)state;
    struct vsw_ratelimit rl = {0};
    uint32_t supp, passed = 0;
    for (int i = 0; i < 100; i++)
        passed += vsw_ratelimit_pass(&rl, 5, 60ull * 1000000000ull, &supp);
    assert_int_equal(passed, 5);
    assert_int_equal(rl.suppressed, 95);
    /* A new window reports what was suppressed in the old one. */
    rl.window_start -= 61ull * 1000000000ull;
    assert_true(vsw_ratelimit_pass(&rl, 5, 60ull * 1000000000ull, &supp));
    assert_int_equal(supp, 95);
}

static void test_log_level_parse(void **state)
{
    (void)state;
    enum vsw_log_level l;
    assert_int_equal(vsw_log_parse_level("debug", &l), 0);
    assert_int_equal(l, VSW_LOG_DEBUG);
    assert_int_equal(vsw_log_parse_level("warn", &l), 0);
    assert_int_equal(l, VSW_LOG_WARN);
    assert_int_equal(vsw_log_parse_level("verbose", &l), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mac_parse_table),  cmocka_unit_test(test_mac_format_roundtrip),
        cmocka_unit_test(test_name_valid_table), cmocka_unit_test(test_drop_names),
        cmocka_unit_test(test_ratelimit),        cmocka_unit_test(test_log_level_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
