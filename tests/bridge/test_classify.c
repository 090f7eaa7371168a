/*
 * Unit tests of the L2 decision (src/bridge/classify.c): one table of frames with the
 * expected out_port/drop, run frame by frame and as one burst, plus learning within a burst
 * and decisions taken from the private header copy. Needs a DPDK EAL for the FDB's hash.
 */
#include "bridge.h"
#include "bridge_test_eal.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#define SEC     1000000000ull
#define T0      (1000 * SEC)
#define AGE     (10 * SEC)
#define NO_DROP (-1)

/* clang-format off */
#define MAC(a, b, c, d, e, f) {{0x##a, 0x##b, 0x##c, 0x##d, 0x##e, 0x##f}}
/* clang-format on */

/* What the FDB knows before each case (macros: the case table needs constant initialisers). */
#define K1_    MAC(02, 00, 00, 00, 00, 01) /* on port 1 */
#define K2_    MAC(02, 00, 00, 00, 00, 02) /* on port 2 */
#define KS_    MAC(02, 00, 00, 00, 00, 09) /* static on port 9 */
#define KA_    MAC(02, 00, 00, 00, 00, 0a) /* on port 4, aged out */
#define UNK_   MAC(02, 00, 00, 00, 00, ff) /* never seen */
#define BCAST_ MAC(ff, ff, ff, ff, ff, ff)
static const struct vsw_mac K1 = K1_, K2 = K2_, KS = KS_, KA = KA_, UNK = UNK_, BCAST = BCAST_;

struct frame_case {
    const char *name;
    struct vsw_mac dst, src;
    uint32_t len;
    uint32_t in_port;
    int32_t want_out;
    int want_drop;    /* enum vsw_drop, or NO_DROP */
    bool src_learned; /* the source is in the FDB afterwards, on in_port */
};

/* Sources are distinct per case and never a destination of another case, so the burst run
 * (where every source is learned first) must give the same answers as the one-by-one run. */
static const struct frame_case cases[] = {
    {"broadcast", BCAST_, MAC(02, aa, 00, 00, 00, 01), 60, 3, PKT_OUT_FLOOD, NO_DROP, true},
    {"ipv4 multicast", MAC(01, 00, 5e, 00, 00, 01), MAC(02, aa, 00, 00, 00, 02), 60, 3,
     PKT_OUT_FLOOD, NO_DROP, true},
    {"ipv6 multicast", MAC(33, 33, 00, 00, 00, 01), MAC(02, aa, 00, 00, 00, 03), 60, 3,
     PKT_OUT_FLOOD, NO_DROP, true},
    {"unknown unicast", UNK_, MAC(02, aa, 00, 00, 00, 04), 60, 3, PKT_OUT_FLOOD, NO_DROP, true},
    {"known unicast", K2_, MAC(02, aa, 00, 00, 00, 05), 60, 1, 2, NO_DROP, true},
    {"known unicast 2", K1_, MAC(02, aa, 00, 00, 00, 06), 1514, 2, 1, NO_DROP, true},
    {"static destination", KS_, MAC(02, aa, 00, 00, 00, 07), 60, 1, 9, NO_DROP, true},
    {"aged destination", KA_, MAC(02, aa, 00, 00, 00, 08), 60, 1, PKT_OUT_FLOOD, NO_DROP, true},
    {"hairpin", K1_, MAC(02, aa, 00, 00, 00, 09), 60, 1, PKT_OUT_DROP, VSW_DROP_NO_DEST, true},
    {"header only", K2_, MAC(02, aa, 00, 00, 00, 0a), ETH_HLEN, 1, 2, NO_DROP, true},
    {"runt 13", K2_, MAC(02, aa, 00, 00, 00, 0b), ETH_HLEN - 1, 1, PKT_OUT_DROP, VSW_DROP_RX_RUNT,
     false},
    {"empty", K2_, MAC(02, aa, 00, 00, 00, 0c), 0, 1, PKT_OUT_DROP, VSW_DROP_RX_RUNT, false},
    {"multicast source", K2_, MAC(03, aa, 00, 00, 00, 0d), 60, 1, PKT_OUT_DROP,
     VSW_DROP_RX_SRC_MCAST, false},
    {"broadcast source", K2_, BCAST_, 60, 1, PKT_OUT_DROP, VSW_DROP_RX_SRC_MCAST, false},
    {"zero source", K2_, MAC(00, 00, 00, 00, 00, 00), 60, 1, 2, NO_DROP, false},
};

struct frame {
    uint8_t buf[1514];
    struct pkt pkt;
};

static void build(struct frame *f, const struct vsw_mac *dst, const struct vsw_mac *src,
                  uint32_t len, uint32_t in_port)
{
    memset(f->buf, 0, sizeof(f->buf));
    memcpy(f->buf, dst->b, ETH_ALEN);
    memcpy(f->buf + ETH_ALEN, src->b, ETH_ALEN);
    f->buf[12] = 0x08; /* IPv4, for looks */
    memset(&f->pkt, 0, sizeof(f->pkt));
    pkt_from_buffer(&f->pkt, f->buf, len);
    f->pkt.in_port = in_port;
    f->pkt.out_port = 12345; /* must be overwritten */
}

static uint32_t lookup1(struct bridge_fdb *fdb, const struct vsw_mac *m, uint64_t now)
{
    const struct vsw_mac *mp[1] = {m};
    uint32_t port;
    bridge_fdb_lookup_bulk(fdb, mp, &port, 1, now);
    return port;
}

static void learn1(struct bridge_fdb *fdb, const struct vsw_mac *m, uint32_t port, uint64_t now)
{
    const struct vsw_mac *mp[1] = {m};
    bridge_fdb_learn_bulk(fdb, mp, &port, 1, now);
}

static struct bridge_fdb *fdb_with_known(void)
{
    static unsigned seq;
    struct bridge_fdb_config cfg = {.age_ns = AGE};
    char name[32];

    /* Unique names: a failed case leaks its FDB and must not break the next one. */
    snprintf(name, sizeof(name), "classify%u", seq++);
    struct bridge_fdb *fdb = bridge_fdb_create(name, &cfg);

    assert_non_null(fdb);
    learn1(fdb, &K1, 1, T0);
    learn1(fdb, &K2, 2, T0);
    learn1(fdb, &KA, 4, T0 - 2 * AGE);
    assert_int_equal(bridge_fdb_add_static(fdb, &KS, 9), 0);
    return fdb;
}

static void check(const struct frame_case *c, const struct pkt *p, struct bridge_fdb *fdb)
{
    if (p->out_port != c->want_out || (c->want_drop != NO_DROP && p->drop != c->want_drop))
        fail_msg("case \"%s\": out_port %d drop %u, want %d drop %d", c->name, p->out_port, p->drop,
                 c->want_out, c->want_drop);
    uint32_t learned = lookup1(fdb, &c->src, T0);
    if (c->src_learned ? learned != c->in_port : learned != BRIDGE_PORT_NONE)
        fail_msg("case \"%s\": source on port %u after classify", c->name, learned);
}

static void test_cases_one_by_one(void **state)
{
    (void)state;
    struct frame *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct bridge_fdb *fdb = fdb_with_known();
        struct pkt *p = &f->pkt;

        build(f, &cases[i].dst, &cases[i].src, cases[i].len, cases[i].in_port);
        bridge_classify_burst(fdb, &p, 1, T0);
        check(&cases[i], p, fdb);
        bridge_fdb_destroy(fdb);
    }
    free(f);
}

static void test_cases_one_burst(void **state)
{
    (void)state;
    enum { N = ARRAY_SIZE(cases) };
    struct frame *f = calloc(N, sizeof(*f));
    struct pkt *pkts[N];
    struct bridge_fdb *fdb = fdb_with_known();

    assert_non_null(f);
    for (size_t i = 0; i < N; i++) {
        build(&f[i], &cases[i].dst, &cases[i].src, cases[i].len, cases[i].in_port);
        pkts[i] = &f[i].pkt;
    }
    bridge_classify_burst(fdb, pkts, N, T0);
    for (size_t i = 0; i < N; i++)
        check(&cases[i], pkts[i], fdb);
    bridge_fdb_destroy(fdb);
    free(f);
}

/* A request and its reply in one burst: the reply already finds the requester's port. */
static void test_learn_within_burst(void **state)
{
    (void)state;
    struct frame *f = calloc(3, sizeof(*f));
    struct pkt *pkts[3] = {&f[0].pkt, &f[1].pkt, &f[2].pkt};
    struct bridge_fdb *fdb = bridge_fdb_create("burst", NULL);
    const struct vsw_mac a = MAC(02, 00, 00, 00, 0a, 01), b = MAC(02, 00, 00, 00, 0b, 01);
    struct bridge_fdb_stats s;

    assert_non_null(f);
    assert_non_null(fdb);
    build(&f[0], &BCAST, &a, 42, 1); /* ARP request from a */
    build(&f[1], &a, &b, 42, 2);     /* reply from b */
    build(&f[2], &b, &a, 60, 1);     /* a talks to b */
    bridge_classify_burst(fdb, pkts, 3, T0);
    assert_int_equal(pkts[0]->out_port, PKT_OUT_FLOOD);
    assert_int_equal(pkts[1]->out_port, 1);
    assert_int_equal(pkts[2]->out_port, 2);
    bridge_fdb_get_stats(fdb, &s);
    assert_int_equal(s.learned, 2);
    assert_int_equal(s.entries, 2);

    /* a shows up behind port 3: counted as a move, traffic follows. */
    build(&f[0], &b, &a, 60, 3);
    build(&f[1], &a, &b, 60, 2);
    bridge_classify_burst(fdb, pkts, 2, T0 + SEC);
    assert_int_equal(pkts[0]->out_port, 2);
    assert_int_equal(pkts[1]->out_port, 3);
    bridge_fdb_get_stats(fdb, &s);
    assert_int_equal(s.moved, 1);

    bridge_classify_burst(fdb, pkts, 0, T0); /* empty burst */
    bridge_fdb_destroy(fdb);
    free(f);
}

/* Decisions use the private copy: a guest rewriting its buffer afterwards changes nothing. */
static void test_uses_private_copy(void **state)
{
    (void)state;
    struct frame *f = calloc(1, sizeof(*f));
    struct pkt *p = &f->pkt;
    struct bridge_fdb *fdb = fdb_with_known();
    const struct vsw_mac src = MAC(02, 00, 00, 00, 0c, 01);

    assert_non_null(f);
    build(f, &K2, &src, 60, 1);
    memcpy(f->buf, BCAST.b, ETH_ALEN);         /* dst rewritten after the snapshot */
    memset(f->buf + ETH_ALEN, 0x01, ETH_ALEN); /* src made multicast */
    bridge_classify_burst(fdb, &p, 1, T0);
    assert_int_equal(p->out_port, 2);
    assert_int_equal(lookup1(fdb, &src, T0), 1);
    bridge_fdb_destroy(fdb);
    free(f);
}

/* A full burst of 64, half to known ports, some hairpins, some floods. */
static void test_burst_64(void **state)
{
    (void)state;
    enum { N = 64 };
    struct frame *f = calloc(N, sizeof(*f));
    struct pkt *pkts[N];
    struct bridge_fdb *fdb = fdb_with_known();

    assert_non_null(f);
    for (uint32_t i = 0; i < N; i++) {
        struct vsw_mac src = MAC(02, bb, 00, 00, 00, 00);
        src.b[5] = (uint8_t)i;
        const struct vsw_mac *dst = i % 4 == 0   ? &K1
                                    : i % 4 == 1 ? &K2
                                    : i % 4 == 2 ? &BCAST
                                                 : &UNK;
        build(&f[i], dst, &src, 64, 1 + i % 2);
        pkts[i] = &f[i].pkt;
    }
    bridge_classify_burst(fdb, pkts, N, T0);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t in = 1 + i % 2;
        switch (i % 4) {
        case 0: /* to K1 on port 1 */
        case 1: /* to K2 on port 2 */
            if (in == i % 4 + 1) {
                assert_int_equal(pkts[i]->out_port, PKT_OUT_DROP);
                assert_int_equal(pkts[i]->drop, VSW_DROP_NO_DEST);
            } else {
                assert_int_equal(pkts[i]->out_port, (int32_t)(i % 4 + 1));
            }
            break;
        default:
            assert_int_equal(pkts[i]->out_port, PKT_OUT_FLOOD);
        }
    }
    struct bridge_fdb_stats s;
    bridge_fdb_get_stats(fdb, &s);
    assert_int_equal(s.entries, 4 + N);
    bridge_fdb_destroy(fdb);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases_one_by_one),   cmocka_unit_test(test_cases_one_burst),
        cmocka_unit_test(test_learn_within_burst), cmocka_unit_test(test_uses_private_copy),
        cmocka_unit_test(test_burst_64),
    };
    int ret;

    if (bridge_test_eal_init("test_classify", "64") != 0) {
        fprintf(stderr, "test_classify: rte_eal_init failed\n");
        return 1;
    }
    ret = cmocka_run_group_tests(tests, NULL, NULL);
    rte_eal_cleanup();
    return ret;
}
