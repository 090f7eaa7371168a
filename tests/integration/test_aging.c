/*
 * Integration: FDB aging in the real vswitchd. A MAC learned on a bridge with a 1 s age
 * (set at br-add, or lowered later with br-set) disappears from fdb-show, is counted as aged
 * by the control thread's sweep (every second), and unicast to it floods again. A source that
 * keeps sending keeps its entry.
 *
 * Waits for aging are bounded (AGE_WAIT_MS), never assumed: the test polls until the entry
 * is gone and fails only if it never goes.
 */
#include "itest.h"

#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define AGE_WAIT_MS 8000 /* age 1 s, a sweep every 1 s: gone after about 2 s */

enum { A, B, C, N_GUESTS };

struct fx {
    struct itest_daemon d;
    struct vuf_dev *g[N_GUESTS];
    struct vsw_mac mac[N_GUESTS];
};

static const char *const names[N_GUESTS] = {"A", "B", "C"};
static const char *const ports[N_GUESTS] = {"a", "b", "c"};
static const struct vsw_mac bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    static struct fx fixture;
    struct fx *f = &fixture;
    memset(f, 0, sizeof(*f));
    *state = f;
    for (int i = 0; i < N_GUESTS; i++)
        f->mac[i] = itest_mac((uint8_t)(0x0a + i));
    itest_daemon_start(&f->d, NULL);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < N_GUESTS; i++)
        vuf_close(f->g[i]);
    return itest_daemon_stop(&f->d);
}

static void add_ports(struct fx *f)
{
    for (int i = 0; i < N_GUESTS; i++) {
        itest_ctl_ok(&f->d, "port-add", "br0", ports[i], NULL);
        f->g[i] = itest_guest(&f->d, ports[i]);
    }
}

/* A broadcasts; B and C get it; A is learned on port a. */
static void learn_a(struct fx *f, uint32_t seq)
{
    itest_send_frame(f->g[A], &bcast, &f->mac[A], seq, 64);
    itest_expect_frame(f->g[B], "B", &bcast, &f->mac[A], seq, 64);
    itest_expect_frame(f->g[C], "C", &bcast, &f->mac[A], seq, 64);
}

static uint64_t br_stat(struct fx *f, const char *key)
{
    json_t *br = itest_br_info(&f->d, "br0");
    uint64_t v = itest_u64(br, key);
    json_decref(br);
    return v;
}

/* Poll until A's entry is out of fdb-show and the sweep has removed it from the table. */
static void wait_aged_out(struct fx *f)
{
    const char *ma = itest_mac_str(&f->mac[A]);
    uint64_t deadline = vsw_now_ns() + AGE_WAIT_MS * 1000000ull;
    for (;;) {
        bool listed = itest_fdb_port(&f->d, "br0", ma, -1) != NULL;
        json_t *br = itest_br_info(&f->d, "br0");
        uint64_t aged = itest_u64(br, "aged"), entries = itest_u64(br, "fdb_entries");
        json_decref(br);
        if (!listed && aged == 1 && entries == 0)
            break;
        if (vsw_now_ns() > deadline)
            fail_msg("after %d ms: A listed %d, aged %llu, entries %llu", AGE_WAIT_MS, listed,
                     (unsigned long long)aged, (unsigned long long)entries);
        sleep_ms(100);
    }
    /* Nothing else was in the table. */
    assert_null(itest_fdb_port(&f->d, "br0", ma, 0));
}

/* With A forgotten, B's unicast to A floods to A and C again. */
static void unicast_floods(struct fx *f, uint32_t seq)
{
    itest_send_frame(f->g[B], &f->mac[A], &f->mac[B], seq, 64);
    itest_expect_frame(f->g[A], "A", &f->mac[A], &f->mac[B], seq, 64);
    itest_expect_frame(f->g[C], "C", &f->mac[A], &f->mac[B], seq, 64);
    itest_expect_none(f->g, names, N_GUESTS);
}

static void test_age_at_br_add(void **state)
{
    struct fx *f = *state;
    itest_ctl_ok(&f->d, "br-add", "br0", "--age", "1", NULL);
    assert_int_equal(br_stat(f, "age"), 1);
    add_ports(f);

    learn_a(f, 1);
    assert_string_equal(itest_fdb_port(&f->d, "br0", itest_mac_str(&f->mac[A]), 1), "a");
    /* While A is known, B's unicast goes to A only. */
    itest_send_frame(f->g[B], &f->mac[A], &f->mac[B], 2, 64);
    itest_expect_frame(f->g[A], "A", &f->mac[A], &f->mac[B], 2, 64);
    itest_expect_none(f->g, names, N_GUESTS);

    /* B was learned by that frame too; both age out. */
    const char *mb = itest_mac_str(&f->mac[B]);
    uint64_t deadline = vsw_now_ns() + AGE_WAIT_MS * 1000000ull;
    while (br_stat(f, "aged") < 2) {
        if (vsw_now_ns() > deadline)
            fail_msg("A and B did not age out within %d ms", AGE_WAIT_MS);
        sleep_ms(100);
    }
    assert_int_equal(br_stat(f, "aged"), 2);
    assert_int_equal(br_stat(f, "fdb_entries"), 0);
    assert_null(itest_fdb_port(&f->d, "br0", mb, 0));
    unicast_floods(f, 3);
}

static void test_age_lowered_by_br_set(void **state)
{
    struct fx *f = *state;
    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    assert_int_equal(br_stat(f, "age"), 300);
    add_ports(f);

    learn_a(f, 1);
    /* With the default age of 300 s an idle second and a half changes nothing. */
    sleep_ms(1500);
    json_t *fdb = itest_ctl_json(&f->d, "fdb-show", "br0", NULL);
    assert_int_equal(json_array_size(fdb), 1);
    json_t *e = json_array_get(fdb, 0);
    assert_string_equal(json_string_value(json_object_get(e, "mac")), itest_mac_str(&f->mac[A]));
    assert_string_equal(json_string_value(json_object_get(e, "port")), "a");
    assert_true(itest_u64(e, "age") >= 1);
    json_decref(fdb);
    assert_int_equal(br_stat(f, "aged"), 0);

    itest_ctl_ok(&f->d, "br-set", "br0", "--age", "1", NULL);
    assert_int_equal(br_stat(f, "age"), 1);
    wait_aged_out(f);
    unicast_floods(f, 2);
}

/* A source that keeps sending (every 250 ms, age 1 s) is never aged out. */
static void test_refresh_keeps_entry(void **state)
{
    struct fx *f = *state;
    itest_ctl_ok(&f->d, "br-add", "br0", "--age", "1", NULL);
    add_ports(f);

    for (uint32_t seq = 1; seq <= 10; seq++) {
        learn_a(f, seq);
        sleep_ms(250);
    }
    assert_string_equal(itest_fdb_port(&f->d, "br0", itest_mac_str(&f->mac[A]), 1), "a");
    assert_int_equal(br_stat(f, "aged"), 0);
    assert_int_equal(br_stat(f, "learned"), 1);
    /* Then it stops, and goes. */
    wait_aged_out(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_age_at_br_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_age_lowered_by_br_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_keeps_entry, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
