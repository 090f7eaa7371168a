/*
 * Unit tests of the FDB (src/bridge/fdb.c): learning, refresh, aging with synthetic clocks,
 * moves, static entries, the limit, flush/del/foreach, and RCU-protected slot reuse with
 * concurrent reader threads. Needs a DPDK EAL (no hugepages, no PCI, private file prefix).
 */
#include "bridge.h"
#include "bridge_test_eal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#define SEC  1000000000ull
#define MSEC 1000000ull
#define T0   (1000 * SEC) /* synthetic clock start: well above 0 and any age */

static struct vsw_mac mac_of(uint32_t i)
{
    /* Locally administered unicast, index in the low bytes. */
    return (struct vsw_mac){
        {0x02, 0x00, (uint8_t)(i >> 24), (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i}};
}

static void learn1(struct bridge_fdb *fdb, struct vsw_mac m, uint32_t port, uint64_t now)
{
    const struct vsw_mac *mp[1] = {&m};
    bridge_fdb_learn_bulk(fdb, mp, &port, 1, now);
}

static uint32_t lookup1(struct bridge_fdb *fdb, struct vsw_mac m, uint64_t now)
{
    const struct vsw_mac *mp[1] = {&m};
    uint32_t port = 0;
    bridge_fdb_lookup_bulk(fdb, mp, &port, 1, now);
    return port;
}

static struct bridge_fdb_stats stats_of(struct bridge_fdb *fdb)
{
    struct bridge_fdb_stats s;
    bridge_fdb_get_stats(fdb, &s);
    return s;
}

static struct bridge_fdb *mk(const char *name, uint32_t max, uint64_t age_ns,
                             struct rte_rcu_qsbr *rcu)
{
    struct bridge_fdb_config cfg = {.max_entries = max, .age_ns = age_ns, .rcu = rcu};
    struct bridge_fdb *fdb = bridge_fdb_create(name, &cfg);
    assert_non_null(fdb);
    return fdb;
}

static void test_create_errors(void **state)
{
    (void)state;
    struct bridge_fdb_config cfg = {0};

    errno = 0;
    assert_null(bridge_fdb_create(NULL, &cfg));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(bridge_fdb_create("", &cfg));
    assert_int_equal(errno, EINVAL);
    cfg.max_entries = UINT32_MAX;
    errno = 0;
    assert_null(bridge_fdb_create("huge", &cfg));
    assert_int_equal(errno, EINVAL);

    /* NULL config: defaults. */
    struct bridge_fdb *a = bridge_fdb_create("dup", NULL);
    assert_non_null(a);
    assert_int_equal(bridge_fdb_get_age(a), BRIDGE_FDB_DEFAULT_AGE_SEC * SEC);
    errno = 0;
    assert_null(bridge_fdb_create("dup", NULL));
    assert_int_equal(errno, EEXIST);

    /* Long names with a common prefix must not collide inside DPDK. */
    struct bridge_fdb *l1 = bridge_fdb_create("a-rather-long-bridge-name-number-1", NULL);
    struct bridge_fdb *l2 = bridge_fdb_create("a-rather-long-bridge-name-number-2", NULL);
    assert_non_null(l1);
    assert_non_null(l2);

    bridge_fdb_destroy(a);
    a = bridge_fdb_create("dup", NULL); /* the name is free again */
    assert_non_null(a);
    bridge_fdb_destroy(a);
    bridge_fdb_destroy(l1);
    bridge_fdb_destroy(l2);
    bridge_fdb_destroy(NULL);
}

static void test_set_age(void **state)
{
    (void)state;
    struct bridge_fdb *fdb = mk("age", 0, 10 * SEC, NULL);

    assert_int_equal(bridge_fdb_get_age(fdb), 10 * SEC);
    learn1(fdb, mac_of(1), 1, T0);
    assert_int_equal(lookup1(fdb, mac_of(1), T0 + 5 * SEC), 1);
    bridge_fdb_set_age(fdb, 2 * SEC); /* takes effect for lookups at once */
    assert_int_equal(bridge_fdb_get_age(fdb), 2 * SEC);
    assert_int_equal(lookup1(fdb, mac_of(1), T0 + 5 * SEC), BRIDGE_PORT_NONE);
    bridge_fdb_set_age(fdb, 0);
    assert_int_equal(bridge_fdb_get_age(fdb), BRIDGE_FDB_DEFAULT_AGE_SEC * SEC);
    assert_int_equal(lookup1(fdb, mac_of(1), T0 + 5 * SEC), 1);
    bridge_fdb_destroy(fdb);
}

static void test_learn_lookup(void **state)
{
    (void)state;
    static const struct {
        struct vsw_mac mac;
        uint32_t port;
        bool learned;
    } cases[] = {
        {{{0x02, 0, 0, 0, 0, 0x01}}, 1, true},
        {{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}}, 7, true},
        {{{0x00, 0x16, 0x3e, 0xaa, 0xbb, 0xcc}}, 0, true},            /* port 0 is a port */
        {{{0x02, 0, 0, 0, 0, 0x02}}, INT32_MAX, true},                /* largest forwardable */
        {{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}}, 1, false},           /* multicast source */
        {{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}, 1, false},           /* broadcast source */
        {{{0, 0, 0, 0, 0, 0}}, 1, false},                             /* zero source */
        {{{0x02, 0, 0, 0, 0, 0x03}}, BRIDGE_PORT_NONE, false},        /* no such port */
        {{{0x02, 0, 0, 0, 0, 0x04}}, (uint32_t)INT32_MAX + 1, false}, /* not an out_port */
    };
    const struct vsw_mac *macs[ARRAY_SIZE(cases)];
    uint32_t ports[ARRAY_SIZE(cases)], out[ARRAY_SIZE(cases)];
    struct bridge_fdb *fdb = mk("learn", 0, 0, NULL);
    unsigned n_learned = 0;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        macs[i] = &cases[i].mac;
        ports[i] = cases[i].port;
        n_learned += cases[i].learned;
    }
    bridge_fdb_learn_bulk(fdb, macs, ports, ARRAY_SIZE(cases), T0);
    bridge_fdb_lookup_bulk(fdb, macs, out, ARRAY_SIZE(cases), T0 + SEC);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_int_equal(out[i], cases[i].learned ? cases[i].port : BRIDGE_PORT_NONE);

    assert_int_equal(lookup1(fdb, mac_of(12345), T0), BRIDGE_PORT_NONE);
    struct bridge_fdb_stats s = stats_of(fdb);
    assert_int_equal(s.learned, n_learned);
    assert_int_equal(s.entries, n_learned);
    assert_int_equal(s.moved, 0);
    assert_int_equal(s.full, 0);

    /* Learning the same sources again neither adds nor moves. */
    bridge_fdb_learn_bulk(fdb, macs, ports, ARRAY_SIZE(cases), T0 + SEC);
    s = stats_of(fdb);
    assert_int_equal(s.learned, n_learned);
    assert_int_equal(s.entries, n_learned);
    assert_int_equal(s.moved, 0);

    bridge_fdb_learn_bulk(fdb, macs, ports, 0, T0); /* empty burst */
    bridge_fdb_lookup_bulk(fdb, macs, out, 0, T0);
    bridge_fdb_destroy(fdb);
}

static void test_bulk_64(void **state)
{
    (void)state;
    struct vsw_mac m[64];
    const struct vsw_mac *mp[64];
    uint32_t ports[64], out[64];
    struct bridge_fdb *fdb = mk("bulk", 0, 0, NULL);

    for (uint32_t i = 0; i < 64; i++) {
        m[i] = mac_of(1000 + i);
        mp[i] = &m[i];
        ports[i] = i % 5;
    }
    /* A burst where every source is new, and repeated: one insert per MAC. */
    bridge_fdb_learn_bulk(fdb, mp, ports, 64, T0);
    bridge_fdb_learn_bulk(fdb, mp, ports, 64, T0);
    bridge_fdb_lookup_bulk(fdb, mp, out, 64, T0);
    for (uint32_t i = 0; i < 64; i++)
        assert_int_equal(out[i], i % 5);
    assert_int_equal(stats_of(fdb).learned, 64);
    assert_int_equal(stats_of(fdb).entries, 64);

    /* The same MAC many times in one burst of new sources. */
    for (uint32_t i = 0; i < 64; i++)
        mp[i] = &m[0];
    bridge_fdb_del(fdb, &m[0]);
    bridge_fdb_learn_bulk(fdb, mp, ports, 64, T0);
    assert_int_equal(stats_of(fdb).learned, 65);
    assert_int_equal(stats_of(fdb).entries, 64);
    bridge_fdb_destroy(fdb);
}

/* Collects foreach output. */
struct collect {
    struct bridge_fdb_entry_info e[64];
    unsigned n;
    int stop_after; /* return non-zero after this many calls (0 = never) */
};

static int collect_fn(const struct bridge_fdb_entry_info *e, void *arg)
{
    struct collect *c = arg;
    if (c->n < ARRAY_SIZE(c->e))
        c->e[c->n] = *e;
    c->n++;
    return c->stop_after && (int)c->n >= c->stop_after ? 7 : 0;
}

static const struct bridge_fdb_entry_info *find_info(const struct collect *c, struct vsw_mac m)
{
    for (unsigned i = 0; i < c->n && i < ARRAY_SIZE(c->e); i++)
        if (vsw_mac_equal(&c->e[i].mac, &m))
            return &c->e[i];
    return NULL;
}

/*
 * The datapath's combined call gives what learning first and looking up second gives: new
 * sources and moves in the burst are seen by its destinations. Checked against a model over
 * random bursts on a table of a few thousand MACs (moves, new MACs, unknown destinations).
 */
static void test_learn_lookup_combined(void **state)
{
    (void)state;
    enum { N_MACS = 4096, ROUNDS = 400, UNKNOWN = N_MACS };
    static uint32_t model[N_MACS + 1]; /* port of MAC i, BRIDGE_PORT_NONE: not learnt */
    struct bridge_fdb *fdb = mk("combined", 0, 0, NULL);
    struct vsw_mac sm[64], dm[64];
    const struct vsw_mac *sp[64], *dp[64];
    uint32_t sport[64], out[64];
    unsigned seed = 12345;

    for (uint32_t i = 0; i <= N_MACS; i++)
        model[i] = BRIDGE_PORT_NONE;
    /* The simple cases first: a new source and a move, each seen by a destination. */
    struct vsw_mac a = mac_of(1), b = mac_of(2);
    learn1(fdb, b, 4, T0);
    sm[0] = a, sport[0] = 3, sm[1] = b, sport[1] = 5;
    dm[0] = a, dm[1] = b, dm[2] = mac_of(3);
    for (unsigned i = 0; i < 3; i++)
        sp[i] = &sm[i], dp[i] = &dm[i];
    bridge_fdb_learn_lookup_bulk(fdb, sp, sport, 2, dp, out, 3, T0 + SEC);
    assert_int_equal(out[0], 3);
    assert_int_equal(out[1], 5);
    assert_int_equal(out[2], BRIDGE_PORT_NONE);
    bridge_fdb_learn_lookup_bulk(fdb, sp, sport, 0, dp, out, 2, T0 + SEC); /* no sources */
    assert_int_equal(out[1], 5);
    bridge_fdb_learn_lookup_bulk(fdb, sp, sport, 2, dp, out, 0, T0 + SEC); /* no destinations */
    bridge_fdb_del(fdb, &a);
    bridge_fdb_del(fdb, &b);

    for (unsigned r = 0; r < ROUNDS; r++) {
        uint16_t ns = (uint16_t)(rand_r(&seed) % 65), nd = (uint16_t)(rand_r(&seed) % 65);
        uint32_t di[64], in_port = (uint32_t)rand_r(&seed) % 8; /* a burst has one in port */
        for (unsigned i = 0; i < ns; i++) {
            uint32_t m = (uint32_t)rand_r(&seed) % N_MACS;
            sm[i] = mac_of(100 + m);
            sp[i] = &sm[i];
            sport[i] = in_port;
            model[m] = in_port;
        }
        for (unsigned j = 0; j < nd; j++) {
            di[j] = rand_r(&seed) % 16 ? (uint32_t)rand_r(&seed) % N_MACS : UNKNOWN;
            dm[j] = mac_of(100 + di[j]);
            dp[j] = &dm[j];
        }
        bridge_fdb_learn_lookup_bulk(fdb, sp, sport, ns, dp, out, nd, T0 + r * MSEC);
        for (unsigned j = 0; j < nd; j++)
            assert_int_equal(out[j], model[di[j]]);
    }
    bridge_fdb_destroy(fdb);
}

static void test_refresh(void **state)
{
    (void)state;
    struct bridge_fdb *fdb = mk("refresh", 0, 10 * SEC, NULL);
    struct vsw_mac a = mac_of(1);
    struct collect c = {0};

    learn1(fdb, a, 3, T0);
    learn1(fdb, a, 3, T0 + 8 * SEC); /* traffic keeps it alive */
    assert_int_equal(lookup1(fdb, a, T0 + 15 * SEC), 3);
    assert_int_equal(lookup1(fdb, a, T0 + 17 * SEC), 3);
    assert_int_equal(bridge_fdb_age_sweep(fdb, T0 + 17 * SEC), 0);
    assert_int_equal(lookup1(fdb, a, T0 + 18 * SEC + 500 * MSEC), BRIDGE_PORT_NONE);

    /* Refreshes closer than 1/16 s apart are not written (no cache-line ping-pong)... */
    learn1(fdb, a, 3, T0 + 8 * SEC + 10 * MSEC);
    assert_int_equal(bridge_fdb_foreach(fdb, T0 + 9 * SEC, collect_fn, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.e[0].idle_ns, 1 * SEC);
    /* ...farther ones are. */
    learn1(fdb, a, 3, T0 + 8 * SEC + 100 * MSEC);
    c.n = 0;
    bridge_fdb_foreach(fdb, T0 + 9 * SEC, collect_fn, &c);
    assert_int_equal(c.e[0].idle_ns, 900 * MSEC);
    /* A clock slightly behind the last refresh (another thread's) reads as fresh. */
    c.n = 0;
    bridge_fdb_foreach(fdb, T0 + 8 * SEC, collect_fn, &c);
    assert_int_equal(c.e[0].idle_ns, 0);
    assert_int_equal(lookup1(fdb, a, T0), 3);
    assert_int_equal(stats_of(fdb).learned, 1);
    bridge_fdb_destroy(fdb);
}

static void test_aging(void **state)
{
    (void)state;
    static const struct {
        uint32_t idx;
        uint64_t seen; /* offset from T0 */
        bool alive_at_2s;
    } cases[] = {
        {1, 0, false},          {2, 500 * MSEC, false},
        {3, 1 * SEC, true}, /* idle exactly the age: still alive */
        {4, 1500 * MSEC, true}, {5, 2 * SEC, true},
    };
    struct bridge_fdb *fdb = mk("aging", 0, 1 * SEC, NULL);
    struct collect c = {0};
    unsigned n_alive = 0;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        learn1(fdb, mac_of(cases[i].idx), 10 + cases[i].idx, T0 + cases[i].seen);
        n_alive += cases[i].alive_at_2s;
    }
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_int_equal(lookup1(fdb, mac_of(cases[i].idx), T0 + 2 * SEC),
                         cases[i].alive_at_2s ? 10 + cases[i].idx : BRIDGE_PORT_NONE);
    /* Aged entries are invisible before the sweep removes them... */
    assert_int_equal(bridge_fdb_foreach(fdb, T0 + 2 * SEC, collect_fn, &c), 0);
    assert_int_equal(c.n, n_alive);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        assert_true((find_info(&c, mac_of(cases[i].idx)) != NULL) == cases[i].alive_at_2s);
    assert_int_equal(stats_of(fdb).entries, ARRAY_SIZE(cases));

    /* ...which counts them. */
    assert_int_equal(bridge_fdb_age_sweep(fdb, T0 + 2 * SEC), ARRAY_SIZE(cases) - n_alive);
    struct bridge_fdb_stats s = stats_of(fdb);
    assert_int_equal(s.aged, ARRAY_SIZE(cases) - n_alive);
    assert_int_equal(s.entries, n_alive);
    assert_int_equal(bridge_fdb_age_sweep(fdb, T0 + 2 * SEC), 0);

    /* Everything goes eventually; a MAC seen again is learned anew. */
    assert_int_equal(bridge_fdb_age_sweep(fdb, T0 + 100 * SEC), n_alive);
    assert_int_equal(stats_of(fdb).entries, 0);
    assert_int_equal(stats_of(fdb).aged, ARRAY_SIZE(cases));
    learn1(fdb, mac_of(1), 9, T0 + 100 * SEC);
    assert_int_equal(lookup1(fdb, mac_of(1), T0 + 100 * SEC), 9);
    assert_int_equal(stats_of(fdb).learned, ARRAY_SIZE(cases) + 1);
    bridge_fdb_destroy(fdb);
}

static void test_move(void **state)
{
    (void)state;
    struct bridge_fdb *fdb = mk("move", 0, 1 * SEC, NULL);
    struct vsw_mac a = mac_of(1);

    learn1(fdb, a, 1, T0);
    assert_int_equal(lookup1(fdb, a, T0), 1);
    learn1(fdb, a, 2, T0 + 10 * MSEC); /* the VM migrated, or a loop */
    assert_int_equal(lookup1(fdb, a, T0 + 10 * MSEC), 2);
    learn1(fdb, a, 2, T0 + 20 * MSEC);
    struct bridge_fdb_stats s = stats_of(fdb);
    assert_int_equal(s.moved, 1);
    assert_int_equal(s.learned, 1);
    assert_int_equal(s.entries, 1);

    /* A move refreshes: the entry lives a full age from the move. */
    assert_int_equal(lookup1(fdb, a, T0 + 1010 * MSEC), 2);

    /* Seen on another port after it aged out: a re-learn, not a move. */
    learn1(fdb, a, 3, T0 + 5 * SEC);
    assert_int_equal(lookup1(fdb, a, T0 + 5 * SEC), 3);
    assert_int_equal(stats_of(fdb).moved, 1);
    bridge_fdb_destroy(fdb);
}

static void test_static(void **state)
{
    (void)state;
    struct bridge_fdb *fdb = mk("static", 0, 1 * SEC, NULL);
    struct vsw_mac s = mac_of(1), d = mac_of(2), mc = {{0x01, 0, 0x5e, 0, 0, 1}}, zero = {{0}};
    struct collect c = {0};

    assert_int_equal(bridge_fdb_add_static(fdb, &s, 5), 0);
    learn1(fdb, s, 3, T0); /* never moves */
    assert_int_equal(lookup1(fdb, s, T0), 5);
    assert_int_equal(lookup1(fdb, s, T0 + 1000000 * SEC), 5); /* never ages */
    assert_int_equal(bridge_fdb_age_sweep(fdb, T0 + 1000000 * SEC), 0);
    assert_int_equal(stats_of(fdb).moved, 0);
    assert_int_equal(stats_of(fdb).learned, 0);

    /* Replace. */
    assert_int_equal(bridge_fdb_add_static(fdb, &s, 6), 0);
    assert_int_equal(lookup1(fdb, s, T0), 6);
    assert_int_equal(stats_of(fdb).entries, 1);

    /* A learned entry made static stops aging. */
    learn1(fdb, d, 4, T0);
    assert_int_equal(bridge_fdb_add_static(fdb, &d, 4), 0);
    assert_int_equal(lookup1(fdb, d, T0 + 100 * SEC), 4);
    assert_int_equal(bridge_fdb_age_sweep(fdb, T0 + 100 * SEC), 0);
    assert_int_equal(stats_of(fdb).entries, 2);

    bridge_fdb_foreach(fdb, T0 + 100 * SEC, collect_fn, &c);
    assert_int_equal(c.n, 2);
    for (unsigned i = 0; i < c.n; i++) {
        assert_true(c.e[i].is_static);
        assert_int_equal(c.e[i].idle_ns, 0);
    }

    assert_int_equal(bridge_fdb_add_static(fdb, &mc, 1), -EINVAL);
    assert_int_equal(bridge_fdb_add_static(fdb, &zero, 1), -EINVAL);
    assert_int_equal(bridge_fdb_add_static(fdb, &s, BRIDGE_PORT_NONE), -EINVAL);
    assert_int_equal(bridge_fdb_add_static(fdb, &s, (uint32_t)INT32_MAX + 1), -EINVAL);
    assert_int_equal(bridge_fdb_add_static(fdb, NULL, 1), -EINVAL);
    assert_int_equal(lookup1(fdb, s, T0), 6);

    /* Static entries can be deleted. */
    assert_int_equal(bridge_fdb_del(fdb, &s), 0);
    assert_int_equal(lookup1(fdb, s, T0), BRIDGE_PORT_NONE);
    bridge_fdb_destroy(fdb);
}

static void test_limit(void **state)
{
    (void)state;
    struct bridge_fdb *fdb = mk("limit", 4, 0, NULL);

    for (uint32_t i = 0; i < 6; i++)
        learn1(fdb, mac_of(i), i, T0);
    struct bridge_fdb_stats s = stats_of(fdb);
    assert_int_equal(s.entries, 4);
    assert_int_equal(s.learned, 4);
    assert_int_equal(s.full, 2);
    for (uint32_t i = 0; i < 6; i++)
        assert_int_equal(lookup1(fdb, mac_of(i), T0), i < 4 ? i : BRIDGE_PORT_NONE);

    /* Known MACs still refresh and move at the limit. */
    learn1(fdb, mac_of(0), 9, T0 + SEC);
    assert_int_equal(lookup1(fdb, mac_of(0), T0 + SEC), 9);
    assert_int_equal(stats_of(fdb).moved, 1);
    assert_int_equal(stats_of(fdb).full, 2);

    assert_int_equal(bridge_fdb_add_static(fdb, &(struct vsw_mac){{0x02, 9, 9, 9, 9, 9}}, 1),
                     -ENOSPC);
    /* Replacing an existing entry needs no room. */
    assert_int_equal(bridge_fdb_add_static(fdb, &(struct vsw_mac){{0x02, 0, 0, 0, 0, 1}}, 1), 0);
    assert_int_equal(lookup1(fdb, mac_of(1), T0), 1);

    /* Room again after a delete. */
    struct vsw_mac m0 = mac_of(0);
    assert_int_equal(bridge_fdb_del(fdb, &m0), 0);
    learn1(fdb, mac_of(5), 5, T0 + SEC);
    assert_int_equal(lookup1(fdb, mac_of(5), T0 + SEC), 5);
    assert_int_equal(stats_of(fdb).entries, 4);
    bridge_fdb_destroy(fdb);
}

static void test_fill_and_churn(void **state)
{
    (void)state;
    /* Exactly max distinct MACs fit (the hash has headroom); slots are reused after deletes. */
    const uint32_t max = 1000;
    struct bridge_fdb *fdb = mk("churn", max, 0, NULL);

    for (uint32_t i = 0; i < max; i++)
        learn1(fdb, mac_of(i), i % 13, T0);
    assert_int_equal(stats_of(fdb).entries, max);
    assert_int_equal(stats_of(fdb).full, 0);
    for (uint32_t i = 0; i < 20 * max; i++) {
        struct vsw_mac m = mac_of(i);
        assert_int_equal(bridge_fdb_del(fdb, &m), 0);
        learn1(fdb, mac_of(i + max), (i + max) % 13, T0);
    }
    assert_int_equal(stats_of(fdb).entries, max);
    assert_int_equal(stats_of(fdb).full, 0);
    for (uint32_t i = 20 * max; i < 21 * max; i++)
        assert_int_equal(lookup1(fdb, mac_of(i), T0), i % 13);
    bridge_fdb_destroy(fdb);
}

static void test_flush_port(void **state)
{
    (void)state;
    struct bridge_fdb *fdb = mk("flush", 0, 0, NULL);
    struct vsw_mac st = mac_of(3);

    learn1(fdb, mac_of(0), 1, T0);
    learn1(fdb, mac_of(1), 1, T0);
    learn1(fdb, mac_of(2), 2, T0);
    assert_int_equal(bridge_fdb_add_static(fdb, &st, 1), 0);
    assert_int_equal(bridge_fdb_flush_port(fdb, 7), 0);
    assert_int_equal(bridge_fdb_flush_port(fdb, 1), 3); /* static ones too: the port is gone */
    assert_int_equal(stats_of(fdb).entries, 1);
    assert_int_equal(stats_of(fdb).aged, 0);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(lookup1(fdb, mac_of(i), T0), i == 2 ? 2 : BRIDGE_PORT_NONE);
    assert_int_equal(bridge_fdb_flush_port(fdb, 1), 0);
    assert_int_equal(bridge_fdb_flush_port(fdb, BRIDGE_PORT_NONE), 0);
    assert_int_equal(bridge_fdb_flush_port(fdb, 2), 1);
    assert_int_equal(stats_of(fdb).entries, 0);
    bridge_fdb_destroy(fdb);
}

static void test_del(void **state)
{
    (void)state;
    struct bridge_fdb *fdb = mk("del", 0, 0, NULL);
    struct vsw_mac a = mac_of(1), b = mac_of(2);

    learn1(fdb, a, 1, T0);
    learn1(fdb, b, 2, T0);
    assert_int_equal(bridge_fdb_del(fdb, &a), 0);
    assert_int_equal(bridge_fdb_del(fdb, &a), -ENOENT);
    assert_int_equal(bridge_fdb_del(fdb, NULL), -ENOENT);
    assert_int_equal(lookup1(fdb, a, T0), BRIDGE_PORT_NONE);
    assert_int_equal(lookup1(fdb, b, T0), 2);
    assert_int_equal(stats_of(fdb).entries, 1);
    learn1(fdb, a, 3, T0);
    assert_int_equal(lookup1(fdb, a, T0), 3);
    assert_int_equal(stats_of(fdb).learned, 3);
    assert_int_equal(stats_of(fdb).moved, 0);
    bridge_fdb_destroy(fdb);
}

static int del_from_fn(const struct bridge_fdb_entry_info *e, void *arg)
{
    /* fn runs without the FDB lock: it may change the FDB. */
    return bridge_fdb_del(arg, &e->mac);
}

static void test_foreach(void **state)
{
    (void)state;
    struct bridge_fdb *fdb = mk("foreach", 0, 10 * SEC, NULL);
    struct collect c = {0};
    struct vsw_mac st = mac_of(4);

    assert_int_equal(bridge_fdb_foreach(fdb, T0, collect_fn, &c), 0);
    assert_int_equal(c.n, 0);

    learn1(fdb, mac_of(1), 1, T0);
    learn1(fdb, mac_of(2), 2, T0 + 2 * SEC);
    learn1(fdb, mac_of(3), 3, T0 + 5 * SEC);
    learn1(fdb, mac_of(5), 5, T0 - 20 * SEC); /* aged at T0 + 5 s */
    assert_int_equal(bridge_fdb_add_static(fdb, &st, 4), 0);

    assert_int_equal(bridge_fdb_foreach(fdb, T0 + 5 * SEC, collect_fn, &c), 0);
    assert_int_equal(c.n, 4);
    static const struct {
        uint32_t idx, port;
        bool is_static;
        uint64_t idle;
    } want[] = {{1, 1, false, 5 * SEC}, {2, 2, false, 3 * SEC}, {3, 3, false, 0}, {4, 4, true, 0}};
    for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
        const struct bridge_fdb_entry_info *e = find_info(&c, mac_of(want[i].idx));
        assert_non_null(e);
        assert_int_equal(e->port, want[i].port);
        assert_int_equal(e->is_static, want[i].is_static);
        assert_int_equal(e->idle_ns, want[i].idle);
    }
    assert_null(find_info(&c, mac_of(5)));

    /* fn's non-zero value stops the walk. */
    struct collect stop = {.stop_after = 2};
    assert_int_equal(bridge_fdb_foreach(fdb, T0 + 5 * SEC, collect_fn, &stop), 7);
    assert_int_equal(stop.n, 2);

    assert_int_equal(bridge_fdb_foreach(fdb, T0 + 5 * SEC, del_from_fn, fdb), 0);
    assert_int_equal(stats_of(fdb).entries, 1); /* only the aged one is left */
    bridge_fdb_destroy(fdb);
}

/* ---- RCU ---- */

static struct rte_rcu_qsbr *rcu_new(uint32_t max_threads)
{
    size_t sz = rte_rcu_qsbr_get_memsize(max_threads);
    struct rte_rcu_qsbr *v = rte_zmalloc("test_rcu", sz, RTE_CACHE_LINE_SIZE);
    assert_non_null(v);
    assert_int_equal(rte_rcu_qsbr_init(v, max_threads), 0);
    return v;
}

/*
 * A registered reader that stops reporting quiescence: deletes must not block (DQ mode), and
 * deleted slots must not be reused until it reports.
 */
static void test_rcu_stalled_reader(void **state)
{
    (void)state;
    struct rte_rcu_qsbr *v = rcu_new(4);
    struct bridge_fdb *fdb = mk("rcu-stall", 8, 0, v); /* 8 entries -> 64 slots */
    struct vsw_mac m;
    uint32_t i;

    assert_int_equal(rte_rcu_qsbr_thread_register(v, 2), 0);
    rte_rcu_qsbr_thread_online(v, 2);

    /* Churn through every slot while the reader is stuck. */
    for (i = 0; stats_of(fdb).full == 0 && i < 1000; i++) {
        m = mac_of(i);
        learn1(fdb, m, 1, T0);
        if (lookup1(fdb, m, T0) == 1)
            assert_int_equal(bridge_fdb_del(fdb, &m), 0);
    }
    assert_int_equal(stats_of(fdb).full, 1);
    assert_int_equal(stats_of(fdb).learned, 64);
    assert_int_equal(stats_of(fdb).entries, 0);

    /* Once it reports, the queued slots come back. */
    rte_rcu_qsbr_quiescent(v, 2);
    learn1(fdb, mac_of(5000), 1, T0);
    assert_int_equal(lookup1(fdb, mac_of(5000), T0), 1);
    assert_int_equal(stats_of(fdb).full, 1);

    rte_rcu_qsbr_thread_offline(v, 2);
    rte_rcu_qsbr_thread_unregister(v, 2);
    bridge_fdb_destroy(fdb);
    rte_free(v);
}

#define RCU_READERS 2
#define RCU_MACS    512

/* Every MAC i is only ever on one of two ports; a reader seeing any other port read an entry
 * that belongs to another MAC (a slot reused too early). */
static uint32_t port_a(uint32_t i)
{
    return i % 16;
}
static uint32_t port_b(uint32_t i)
{
    return 16 + i % 16;
}

struct rcu_shared {
    struct bridge_fdb *fdb;
    struct rte_rcu_qsbr *v;
    uint64_t clock; /* synthetic, advanced by the main thread */
    bool stop;
};

struct rcu_reader {
    struct rcu_shared *sh;
    unsigned id;
    bool learns; /* also learn (like a PMD), to race lock-free moves against removals */
    uint64_t lookups, hits, bad;
    pthread_t thr;
};

static void *rcu_reader_main(void *arg)
{
    struct rcu_reader *r = arg;
    struct rcu_shared *sh = r->sh;
    unsigned seed = r->id * 7919u + 1;
    struct vsw_mac m[64];
    const struct vsw_mac *mp[64];
    uint32_t idx[64], ports[64];

    rte_rcu_qsbr_thread_register(sh->v, r->id);
    rte_rcu_qsbr_thread_online(sh->v, r->id);
    for (uint64_t it = 0; !__atomic_load_n(&sh->stop, __ATOMIC_ACQUIRE); it++) {
        uint64_t now = __atomic_load_n(&sh->clock, __ATOMIC_RELAXED);
        for (int k = 0; k < 64; k++) {
            idx[k] = (uint32_t)rand_r(&seed) % RCU_MACS;
            m[k] = mac_of(idx[k]);
            mp[k] = &m[k];
            ports[k] = (rand_r(&seed) & 1) ? port_a(idx[k]) : port_b(idx[k]);
        }
        if (r->learns && it % 4 == 0)
            bridge_fdb_learn_bulk(sh->fdb, mp, ports, 16, now);
        bridge_fdb_lookup_bulk(sh->fdb, mp, ports, 64, now);
        for (int k = 0; k < 64; k++) {
            if (ports[k] == BRIDGE_PORT_NONE)
                continue;
            r->hits++;
            if (ports[k] != port_a(idx[k]) && ports[k] != port_b(idx[k]))
                r->bad++;
        }
        r->lookups += 64;
        rte_rcu_qsbr_quiescent(sh->v, r->id);
        if (it % 64 == 0)
            sched_yield(); /* two cores shared with the writer */
    }
    rte_rcu_qsbr_thread_offline(sh->v, r->id);
    rte_rcu_qsbr_thread_unregister(sh->v, r->id);
    return NULL;
}

static void test_rcu_concurrent(void **state)
{
    (void)state;
    struct rcu_shared sh = {.clock = T0};
    struct rcu_reader rd[RCU_READERS];
    unsigned seed = 42;
    uint64_t t_end = vsw_now_ns() + 1500 * MSEC, rounds = 0;

    sh.v = rcu_new(RCU_READERS + 1);
    /* Small table (128 entries, 256 slots) for 512 MACs: slots are reused all the time. */
    sh.fdb = mk("rcu-conc", 128, 50 * MSEC, sh.v);
    for (unsigned i = 0; i < RCU_READERS; i++) {
        rd[i] = (struct rcu_reader){.sh = &sh, .id = i, .learns = (i == 0)};
        assert_int_equal(pthread_create(&rd[i].thr, NULL, rcu_reader_main, &rd[i]), 0);
    }

    /* The control thread: learns, deletes, flushes and ages while the readers run. */
    while (vsw_now_ns() < t_end || rounds < 200) {
        uint64_t now = __atomic_load_n(&sh.clock, __ATOMIC_RELAXED);
        struct vsw_mac m[32];
        const struct vsw_mac *mp[32];
        uint32_t ports[32];

        for (int k = 0; k < 32; k++) {
            uint32_t i = (uint32_t)rand_r(&seed) % RCU_MACS;
            m[k] = mac_of(i);
            mp[k] = &m[k];
            ports[k] = (rand_r(&seed) & 1) ? port_a(i) : port_b(i);
        }
        bridge_fdb_learn_bulk(sh.fdb, mp, ports, 32, now);
        if (rounds % 2 == 0)
            for (int k = 0; k < 8; k++)
                bridge_fdb_del(sh.fdb, &m[k]);
        if (rounds % 8 == 0)
            bridge_fdb_age_sweep(sh.fdb, now);
        if (rounds % 64 == 0)
            bridge_fdb_flush_port(sh.fdb, (uint32_t)rand_r(&seed) % 32);
        if (rounds % 16 == 0) {
            /* A MAC the readers use turns static (in a fresh slot) and goes away again. */
            uint32_t i = (uint32_t)rand_r(&seed) % RCU_MACS;
            struct vsw_mac st = mac_of(i);
            bridge_fdb_add_static(sh.fdb, &st, port_a(i));
            if (rounds % 32 == 0)
                bridge_fdb_del(sh.fdb, &st);
        }
        __atomic_store_n(&sh.clock, now + 10 * MSEC, __ATOMIC_RELAXED);
        rounds++;
    }
    __atomic_store_n(&sh.stop, true, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < RCU_READERS; i++)
        pthread_join(rd[i].thr, NULL);

    struct bridge_fdb_stats s = stats_of(sh.fdb);
    uint64_t lookups = 0, hits = 0, bad = 0;
    for (unsigned i = 0; i < RCU_READERS; i++) {
        lookups += rd[i].lookups;
        hits += rd[i].hits;
        bad += rd[i].bad;
    }
    print_message("rcu: %llu rounds, %llu lookups, %llu hits; learned %llu moved %llu aged %llu "
                  "full %llu entries %u\n",
                  (unsigned long long)rounds, (unsigned long long)lookups, (unsigned long long)hits,
                  (unsigned long long)s.learned, (unsigned long long)s.moved,
                  (unsigned long long)s.aged, (unsigned long long)s.full, s.entries);
    assert_int_equal(bad, 0);
    assert_true(lookups > 0);
    assert_true(s.entries <= 128);
    assert_true(s.learned > 256); /* more inserts than slots: slots were reused */

    /* The count matches what a walk sees. */
    struct collect c = {0};
    bridge_fdb_set_age(sh.fdb, 1000000 * SEC);
    bridge_fdb_foreach(sh.fdb, sh.clock, collect_fn, &c);
    assert_int_equal(c.n, s.entries);

    bridge_fdb_destroy(sh.fdb);
    rte_free(sh.v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_errors),  cmocka_unit_test(test_set_age),
        cmocka_unit_test(test_learn_lookup),   cmocka_unit_test(test_bulk_64),
        cmocka_unit_test(test_refresh),        cmocka_unit_test(test_aging),
        cmocka_unit_test(test_move),           cmocka_unit_test(test_static),
        cmocka_unit_test(test_limit),          cmocka_unit_test(test_fill_and_churn),
        cmocka_unit_test(test_flush_port),     cmocka_unit_test(test_del),
        cmocka_unit_test(test_foreach),        cmocka_unit_test(test_rcu_stalled_reader),
        cmocka_unit_test(test_rcu_concurrent), cmocka_unit_test(test_learn_lookup_combined),
    };
    int ret;

    if (bridge_test_eal_init("test_fdb", "64") != 0) {
        fprintf(stderr, "test_fdb: rte_eal_init failed\n");
        return 1;
    }
    ret = cmocka_run_group_tests(tests, NULL, NULL);
    rte_eal_cleanup();
    return ret;
}
