/*
 * White-box tests of the FDB's direct index (src/bridge/fdb.c, included here to reach its
 * internals): keys whose index bucket is full are still found through rte_hash, deletes,
 * moves and aging keep the index consistent with the table, a stale index word never yields
 * another key's port, and large tables get 2 MiB-aligned arrays advised for huge pages
 * without breaking a --no-huge EAL.
 */
#include "fdb.c"
#include "bridge_test_eal.h"

#include <inttypes.h>
#include <sched.h>
#include <unistd.h>

#include <rte_eal.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#define SEC 1000000000ull
#define T0  (1000 * SEC)

static struct vsw_mac mac_of(uint32_t i)
{
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

static uint32_t bucket_of(const struct bridge_fdb *fdb, const struct vsw_mac *m)
{
    return fdb_hash_word(fdb, fdb_key_word(m)) & fdb->dix_mask;
}

/*
 * Every index word names a live entry whose key hashes to the word's hash and bucket, and no
 * key is indexed twice. Returns the number of words in use.
 */
static uint32_t check_dix(struct bridge_fdb *fdb)
{
    uint32_t used = 0;

    for (uint32_t b = 0; b <= fdb->dix_mask; b++) {
        for (uint32_t w = 0; w < FDB_DIX_WAYS; w++) {
            uint64_t x = fdb->dix[b * FDB_DIX_WAYS + w];
            if (x == 0)
                continue;
            uint32_t hv = (uint32_t)(x >> 32);
            struct fdb_entry *e = fdb_entry_at(fdb, (int32_t)((uint32_t)x - 1));
            assert_non_null(e);
            if (!e) /* for the compiler: cmocka's failure does not return */
                continue;
            assert_int_not_equal(port_load_relaxed(e), BRIDGE_PORT_NONE);
            assert_int_equal(fdb_hash_word(fdb, e->key), hv);
            assert_int_equal(hv & fdb->dix_mask, b);
            for (uint32_t v = w + 1; v < FDB_DIX_WAYS; v++)
                assert_true(fdb->dix[b * FDB_DIX_WAYS + v] != x);
            used++;
        }
    }
    return used;
}

/* Up to `n` MACs whose index bucket is `bucket`, from index `from` on. */
static uint32_t macs_in_bucket(const struct bridge_fdb *fdb, uint32_t bucket, uint32_t from,
                               struct vsw_mac *out, uint32_t n)
{
    uint32_t got = 0;

    for (uint32_t i = from; got < n && i < from + 1000000; i++) {
        struct vsw_mac m = mac_of(i);
        if (bucket_of(fdb, &m) == bucket)
            out[got++] = m;
    }
    return got;
}

static void test_overflow(void **state)
{
    (void)state;
    struct bridge_fdb_config cfg = {.max_entries = 64};
    struct bridge_fdb *fdb = bridge_fdb_create("dix_overflow", &cfg);
    struct vsw_mac m[FDB_DIX_WAYS + 4];
    const uint32_t n = FDB_DIX_WAYS + 4;

    assert_non_null(fdb);
    assert_int_equal(fdb->dix_mask + 1, fdb->n_slots / FDB_DIX_WAYS);
    assert_int_equal(macs_in_bucket(fdb, 3, 1, m, n), n);

    for (uint32_t i = 0; i < n; i++)
        learn1(fdb, m[i], 10 + i, T0);
    assert_int_equal(fdb->dix_full, n - FDB_DIX_WAYS);
    assert_int_equal(check_dix(fdb), FDB_DIX_WAYS);
    for (uint32_t i = 0; i < n; i++)
        assert_int_equal(lookup1(fdb, m[i], T0), 10 + i);

    /* A key that lives only in rte_hash moves and refreshes like any other. */
    learn1(fdb, m[n - 1], 99, T0 + SEC);
    assert_int_equal(lookup1(fdb, m[n - 1], T0 + SEC), 99);

    /* A delete frees its way; a key learnt later takes it. */
    assert_int_equal(bridge_fdb_del(fdb, &m[0]), 0);
    assert_int_equal(lookup1(fdb, m[0], T0), BRIDGE_PORT_NONE);
    assert_int_equal(check_dix(fdb), FDB_DIX_WAYS - 1);
    learn1(fdb, m[0], 50, T0 + SEC);
    assert_int_equal(check_dix(fdb), FDB_DIX_WAYS);
    assert_int_equal(lookup1(fdb, m[0], T0 + SEC), 50);

    /* A dynamic entry made static gets a fresh slot: the index follows it. */
    assert_int_equal(bridge_fdb_add_static(fdb, &m[1], 7), 0);
    assert_int_equal(lookup1(fdb, m[1], T0), 7);
    check_dix(fdb);

    /* Flushing and aging remove the index words with the keys. */
    assert_int_equal(bridge_fdb_flush_port(fdb, 12), 1);
    assert_int_equal(lookup1(fdb, m[2], T0), BRIDGE_PORT_NONE);
    check_dix(fdb);
    bridge_fdb_age_sweep(fdb, T0 + 1000 * SEC);
    assert_int_equal(check_dix(fdb), 1); /* only the static entry is left */
    assert_int_equal(lookup1(fdb, m[1], T0 + 1000 * SEC), 7);
    bridge_fdb_destroy(fdb);
}

/* The index is only a hint: a word naming another key's entry must not give its port. */
static void test_stale_hint(void **state)
{
    (void)state;
    struct bridge_fdb *fdb = bridge_fdb_create("dix_stale", NULL);
    struct vsw_mac a = mac_of(1), b = mac_of(2);
    uint32_t ha, hb;

    assert_non_null(fdb);
    learn1(fdb, a, 1, T0);
    learn1(fdb, b, 2, T0);
    ha = fdb_hash_word(fdb, fdb_key_word(&a));
    hb = fdb_hash_word(fdb, fdb_key_word(&b));
    int32_t pa = dix_find(fdb, ha), pb = dix_find(fdb, hb);
    assert_true(pa >= 0 && pb >= 0 && pa != pb);

    /* Point a's word at b's entry, as a word left behind by a reused slot would. */
    uint64_t *w = dix_bucket(fdb, ha);
    for (unsigned i = 0; i < FDB_DIX_WAYS; i++)
        if (w[i] == dix_word(ha, pa))
            w[i] = dix_word(ha, pb);
    assert_int_equal(dix_find(fdb, ha), pb);
    assert_int_equal(lookup1(fdb, a, T0), 1); /* found through rte_hash */
    assert_int_equal(lookup1(fdb, b, T0), 2);
    /* Learning through the bad word must not move b either. */
    learn1(fdb, a, 5, T0);
    assert_int_equal(lookup1(fdb, a, T0), 5);
    assert_int_equal(lookup1(fdb, b, T0), 2);

    /* Restore the word so destroy sees a consistent table. */
    for (unsigned i = 0; i < FDB_DIX_WAYS; i++)
        if (w[i] == dix_word(ha, pb))
            w[i] = dix_word(ha, pa);
    check_dix(fdb);
    bridge_fdb_destroy(fdb);
}

static unsigned long anon_huge_kb(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[256];
    unsigned long lo, hi, kb = 0;
    bool in = false;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
        else if (in && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
            break;
    }
    fclose(f);
    return in ? kb : 0;
}

/* A table whose entries take 2 MiB or more gets aligned, lazily zeroed, huge-page arrays. */
static void test_large_table(void **state)
{
    (void)state;
    struct bridge_fdb_config cfg = {.max_entries = 65536};
    struct bridge_fdb *fdb = bridge_fdb_create("dix_large", &cfg);
    const uint32_t n = 40000;

    assert_non_null(fdb);
    assert_true(sizeof(struct fdb_entry) * fdb->n_slots >= FDB_HUGE_PAGE);
    assert_int_equal((uintptr_t)fdb->entries % FDB_HUGE_PAGE, 0);
    assert_int_equal(fdb->entries_len % FDB_HUGE_PAGE, 0);
    /* Untouched entries read as free. */
    assert_int_equal(port_load_relaxed(&fdb->entries[fdb->n_slots - 1]), BRIDGE_PORT_NONE);

    for (uint32_t base = 0; base < n; base += 64) {
        struct vsw_mac m[64];
        const struct vsw_mac *mp[64];
        uint32_t ports[64];
        for (uint32_t i = 0; i < 64; i++) {
            m[i] = mac_of(base + i);
            mp[i] = &m[i];
            ports[i] = (base + i) % 5;
        }
        bridge_fdb_learn_bulk(fdb, mp, ports, 64, T0);
    }
    struct bridge_fdb_stats s;
    bridge_fdb_get_stats(fdb, &s);
    assert_int_equal(s.entries, n);
    for (uint32_t i = 0; i < n; i += 7)
        assert_int_equal(lookup1(fdb, mac_of(i), T0), i % 5);
    /* Most keys are in the index; the few in full buckets are found all the same. */
    assert_true(check_dix(fdb) + fdb->dix_full == n);
    assert_true(fdb->dix_full < n / 50);
    printf("large table: %u keys, %" PRIu64 " outside the index, entries on %lu kB of huge "
           "pages (0 when THP is off or no huge page was free)\n",
           n, fdb->dix_full, anon_huge_kb(fdb->entries));
    bridge_fdb_destroy(fdb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_stale_hint),
        cmocka_unit_test(test_large_table),
    };
    int ret;

    if (bridge_test_eal_init("test_fdb_dix", "128") != 0) {
        fprintf(stderr, "test_fdb_dix: rte_eal_init failed\n");
        return 1;
    }
    ret = cmocka_run_group_tests(tests, NULL, NULL);
    rte_eal_cleanup();
    return ret;
}
