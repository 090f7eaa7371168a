/*
 * Unit tests of src/net/offload.c: header validation (table of malformed headers), the
 * software checksum and TCP segmentation. Every checksum is verified with a reference
 * written here independently (byte-wise big-endian words, RFC 1071 as printed), on frames
 * spread over source buffers of odd sizes, with and without VLAN tags, IPv4 and IPv6.
 */
#include "offload.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ---- reference computations (independent of the code under test) ---- */

#include "ref_csum.h"

/* True when the L4 checksum of the segment at frame[l4..l4+l4_len) verifies. */
static bool ref_l4_ok(const uint8_t *ip, int ipv, const uint8_t *l4, uint32_t l4_len, uint8_t proto)
{
    return ref_fold(ref_add(ref_pseudo(ip, ipv, l4_len, proto), l4, l4_len)) == 0xffff;
}

/* ---- frame builder ---- */

#define MAC_LEN 12

struct frame_spec {
    int ipv;       /* 4 or 6 */
    int vlans;     /* 0, 1 or 2 tags */
    bool ip6_opts; /* an IPv6 destination options header before TCP */
    uint8_t proto; /* 6 (TCP) or 17 (UDP) */
    uint32_t payload;
    uint8_t tcp_flags;
    uint32_t tcp_opts; /* bytes of TCP options (multiple of 4) */
};

struct frame {
    uint8_t *buf;
    uint32_t len;
    uint32_t l3, l4, pay; /* offsets */
};

/* Headers plus a payload pattern; the L4 checksum field holds the pseudo-header sum (what a
 * sender using checksum offload leaves there). */
static void build(struct frame *f, const struct frame_spec *s)
{
    uint32_t l2 = 14 + 4 * (uint32_t)s->vlans;
    uint32_t l3len = s->ipv == 4 ? 20 : 40 + (s->ip6_opts ? 8 : 0);
    uint32_t l4len = s->proto == 6 ? 20 + s->tcp_opts : 8;
    f->l3 = l2;
    f->l4 = l2 + l3len;
    f->pay = f->l4 + l4len;
    f->len = f->pay + s->payload;
    f->buf = calloc(1, f->len);
    assert_non_null(f->buf);
    uint8_t *b = f->buf;
    for (int i = 0; i < 6; i++) {
        b[i] = (uint8_t)(0x02 + i);
        b[6 + i] = (uint8_t)(0x12 + i);
    }
    uint32_t off = 12;
    for (int v = 0; v < s->vlans; v++) {
        put16(b + off, v == 0 && s->vlans == 2 ? 0x88a8 : 0x8100);
        put16(b + off + 2, (uint16_t)(100 + v));
        off += 4;
    }
    put16(b + off, s->ipv == 4 ? 0x0800 : 0x86dd);
    uint8_t *ip = b + f->l3;
    uint32_t l4_total = l4len + s->payload;
    if (s->ipv == 4) {
        ip[0] = 0x45;
        put16(ip + 2, (uint16_t)((20 + l4_total) & 0xffff));
        put16(ip + 4, 0xfff0); /* identification: wraps during segmentation */
        put16(ip + 6, 0x4000); /* DF */
        ip[8] = 64;
        ip[9] = s->proto;
        memcpy(ip + 12, (uint8_t[]){198, 18, 0, 1, 198, 18, 0, 2}, 8);
    } else {
        ip[0] = 0x60;
        put16(ip + 4, (uint16_t)((l3len - 40 + l4_total) & 0xffff));
        ip[6] = s->ip6_opts ? 60 : s->proto;
        ip[7] = 64;
        for (int i = 0; i < 16; i++) {
            ip[8 + i] = (uint8_t)(0x20 + i);
            ip[24 + i] = (uint8_t)(0x40 + i * 3);
        }
        if (s->ip6_opts) {
            ip[40] = s->proto;
            ip[41] = 0; /* 8 bytes */
            ip[42] = 1; /* PadN */
            ip[43] = 4;
        }
    }
    uint8_t *l4 = b + f->l4;
    put16(l4, 40000);
    put16(l4 + 2, 80);
    if (s->proto == 6) {
        memcpy(l4 + 4, (uint8_t[]){0xff, 0xff, 0xf0, 0x00}, 4); /* seq wraps too */
        memcpy(l4 + 8, (uint8_t[]){0, 0, 0x10, 0}, 4);
        l4[12] = (uint8_t)((l4len / 4) << 4);
        l4[13] = s->tcp_flags;
        put16(l4 + 14, 65535);
        for (uint32_t i = 20; i < l4len; i++)
            l4[i] = 1; /* NOP options */
    } else {
        put16(l4 + 4, (uint16_t)(l4_total & 0xffff));
    }
    for (uint32_t i = 0; i < s->payload; i++)
        b[f->pay + i] = (uint8_t)(i * 131 + (i >> 8) * 7 + 1);
    /* Partial checksum: the folded pseudo-header sum, as Linux leaves it for offload. */
    uint16_t ps = ref_fold(ref_pseudo(ip, s->ipv, l4_total, s->proto));
    put16(l4 + (s->proto == 6 ? 16 : 6), ps);
}

/* A packet over f->buf, split into segments of the sizes given (the last one takes the
 * rest); sizes may be odd. */
static struct pkt *pkt_over(const struct frame *f, const uint32_t *sizes, unsigned n)
{
    struct pkt *p = aligned_alloc(64, sizeof(*p));
    assert_non_null(p);
    memset(p, 0, sizeof(*p));
    uint32_t off = 0;
    unsigned i = 0;
    for (; i < n && off < f->len; i++) {
        uint32_t k = MIN(sizes[i], f->len - off);
        p->seg[i].addr = f->buf + off;
        p->seg[i].len = k;
        off += k;
    }
    if (off < f->len) {
        p->seg[i].addr = f->buf + off;
        p->seg[i].len = f->len - off;
        i++;
    }
    p->nseg = (uint16_t)i;
    p->len = f->len;
    assert_int_equal(pkt_snapshot_header(p), 0);
    return p;
}

static void set_csum(struct pkt *p, const struct frame *f, bool tcp)
{
    p->vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    p->vnet.csum_start = (uint16_t)f->l4;
    p->vnet.csum_offset = tcp ? 16 : 6;
}

static void set_tso(struct pkt *p, const struct frame *f, int ipv, uint16_t mss, bool ecn)
{
    set_csum(p, f, true);
    p->vnet.gso_type = (uint8_t)((ipv == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6) |
                                 (ecn ? VIRTIO_NET_HDR_GSO_ECN : 0));
    p->vnet.gso_size = mss;
    p->vnet.hdr_len = (uint16_t)f->pay;
}

static uint8_t *flatten(const struct pkt *p)
{
    uint8_t *out = malloc(p->len ? p->len : 1);
    assert_non_null(out);
    assert_int_equal(pkt_read(p, 0, out, p->len), p->len);
    return out;
}

static const uint32_t all = OFFLOAD_CSUM | OFFLOAD_TSO4 | OFFLOAD_TSO6 | OFFLOAD_ECN;

/* ---- sums ---- */

static void test_sum_matches_reference(void **state)
{
    (void)state;
    static const uint32_t splits[][6] = {
        {100000},
        {1, 1, 1, 1, 1, 1},
        {7, 13, 1000, 1, 3, 2},
        {127, 2, 1371, 5, 5, 5},
        {128, 1, 64, 33, 17, 9},
    };
    struct frame f = {.len = 3001};
    f.buf = malloc(f.len);
    srand(7);
    for (uint32_t i = 0; i < f.len; i++)
        f.buf[i] = (uint8_t)rand();
    for (size_t s = 0; s < ARRAY_SIZE(splits); s++) {
        struct pkt *p = pkt_over(&f, splits[s], 6);
        static const uint32_t offs[] = {0, 1, 2, 13, 127, 128, 129, 1000, 2999, 3000};
        for (size_t o = 0; o < ARRAY_SIZE(offs); o++) {
            for (uint32_t len = 0; len <= f.len - offs[o]; len += len < 70 ? 1 : 97) {
                uint16_t got = offload_sum(p, offs[o], len);
                uint8_t b[2];
                memcpy(b, &got, 2);
                uint16_t want = ref_fold(ref_add(0, f.buf + offs[o], len));
                /* 0 and 0xffff are the same number in ones' complement. */
                if (want == 0xffff && get16(b) == 0)
                    want = 0;
                assert_int_equal(get16(b), want);
            }
        }
        free(p);
    }
    free(f.buf);
}

/* ---- checksum completion ---- */

static void check_csum_finish(const struct frame_spec *s, const uint32_t *sizes, unsigned n)
{
    struct frame f;
    build(&f, s);
    uint8_t *orig = malloc(f.len);
    memcpy(orig, f.buf, f.len);
    struct pkt *p = pkt_over(&f, sizes, n);
    set_csum(p, &f, s->proto == 6);
    const char *why = NULL;
    assert_int_equal(offload_validate(p, OFFLOAD_CSUM, &why), 0);
    assert_int_equal(offload_needs(p), OFFLOAD_CSUM);

    struct pkt *d = aligned_alloc(64, sizeof(*d));
    offload_csum_finish(d, p);
    assert_int_equal(d->vnet.flags, 0);
    assert_int_equal(d->vnet.gso_type, 0);
    assert_int_equal(d->len, f.len);
    uint8_t *out = flatten(d);
    const uint8_t *ip = out + f.l3;
    assert_true(ref_l4_ok(ip, s->ipv, out + f.l4, f.len - f.l4, s->proto));
    /* Only the checksum field changed, and the sender's buffer was not written. */
    uint32_t field = f.l4 + (s->proto == 6 ? 16 : 6);
    assert_memory_equal(out, orig, field);
    assert_memory_equal(out + field + 2, orig + field + 2, f.len - field - 2);
    assert_memory_equal(f.buf, orig, f.len);
    free(out);
    free(d);
    free(p);
    free(orig);
    free(f.buf);
}

static void test_csum_finish_tcp4(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {33, 7, 1001, 3};
    for (uint32_t pay = 0; pay < 40; pay += 3)
        check_csum_finish(&(struct frame_spec){.ipv = 4, .proto = 6, .payload = pay}, sizes, 4);
    check_csum_finish(&(struct frame_spec){.ipv = 4, .proto = 6, .payload = 1459}, sizes, 4);
}

static void test_csum_finish_udp6_vlan(void **state)
{
    (void)state;
    static const uint32_t sizes[] = {61, 1, 1, 2000};
    for (uint32_t pay = 1; pay < 30; pay += 7)
        check_csum_finish(
            &(struct frame_spec){.ipv = 6, .vlans = 1, .proto = 17, .payload = pay * 111}, sizes,
            4);
    check_csum_finish(
        &(struct frame_spec){.ipv = 6, .vlans = 2, .ip6_opts = true, .proto = 17, .payload = 8999},
        sizes, 4);
}

/* A sum of 0 is written as 0xffff: for UDP 0 would mean "no checksum". */
static void test_csum_finish_zero_becomes_ffff(void **state)
{
    (void)state;
    struct frame f;
    build(&f, &(struct frame_spec){.ipv = 4, .proto = 17, .payload = 2});
    /* Choose the two payload bytes so that the complete sum is 0xffff, i.e. checksum 0. */
    f.buf[f.pay] = f.buf[f.pay + 1] = 0;
    /* What is summed is the UDP header (its checksum field holds the pseudo-header sum) and
     * the payload: make the payload word the complement of the rest. */
    uint16_t rest = ref_fold(ref_add(0, f.buf + f.l4, 8));
    put16(f.buf + f.pay, (uint16_t)~rest);
    struct pkt *p = pkt_over(&f, (uint32_t[]){1000}, 1);
    set_csum(p, &f, false);
    struct pkt *d = aligned_alloc(64, sizeof(*d));
    offload_csum_finish(d, p);
    uint8_t *out = flatten(d);
    assert_int_equal(get16(out + f.l4 + 6), 0xffff);
    assert_true(ref_l4_ok(out + f.l3, 4, out + f.l4, 10, 17));
    free(out);
    free(d);
    free(p);
    free(f.buf);
}

/* ---- segmentation ---- */

struct tso_case {
    struct frame_spec s;
    uint16_t mss;
    bool ecn;
    uint16_t chunk; /* segments asked for per call */
    uint32_t sizes[6];
};

static void check_tso(const struct tso_case *c)
{
    struct frame f;
    build(&f, &c->s);
    struct pkt *p = pkt_over(&f, c->sizes, 6);
    set_tso(p, &f, c->s.ipv, c->mss, c->ecn);
    const char *why = "";
    assert_int_equal(offload_validate(p, all, &why), 0);
    assert_true(offload_needs_segmentation(offload_needs(p), OFFLOAD_CSUM));
    assert_false(offload_needs_segmentation(offload_needs(p), all));

    struct offload_tso t;
    assert_int_equal(offload_tso_init(&t, p, &why), 0);
    uint32_t want_n = (c->s.payload + c->mss - 1) / c->mss;
    assert_int_equal(offload_tso_count(&t), want_n);

    struct pkt *segs = aligned_alloc(64, sizeof(struct pkt) * c->chunk);
    uint8_t *payload = malloc(c->s.payload);
    uint32_t got_pay = 0, k = 0;
    const uint8_t *oip = f.buf + f.l3, *oth = f.buf + f.l4;
    uint32_t seq0 = get32(oth + 4);
    uint16_t id0 = get16(oip + 4);
    int made;
    while ((made = offload_tso_next(&t, segs, c->chunk)) > 0) {
        assert_true(made <= c->chunk);
        for (int i = 0; i < made; i++, k++) {
            const struct pkt *o = &segs[i];
            uint32_t seglen = MIN((uint32_t)c->mss, c->s.payload - k * c->mss);
            assert_int_equal(o->len, f.pay + seglen);
            assert_int_equal(o->vnet.flags, 0);
            assert_int_equal(o->vnet.gso_type, 0);
            assert_true(o->nseg <= PKT_MAX_SEGS);
            uint8_t *b = flatten(o);
            /* L2 unchanged, IP header lengths and checksum, TCP fields and checksum. */
            assert_memory_equal(b, f.buf, f.l3);
            const uint8_t *ip = b + f.l3, *th = b + f.l4;
            if (c->s.ipv == 4) {
                assert_int_equal(get16(ip + 2), o->len - f.l3);
                assert_int_equal(get16(ip + 4), (uint16_t)(id0 + k));
                assert_int_equal(ref_fold(ref_add(0, ip, 20)), 0xffff);
                assert_memory_equal(ip + 6, oip + 6, 4); /* flags, TTL, protocol */
            } else {
                assert_int_equal(get16(ip + 4), o->len - f.l3 - 40);
                assert_memory_equal(ip + 6, oip + 6, f.l4 - f.l3 - 6);
            }
            assert_int_equal(get32(th + 4), seq0 + k * c->mss);
            assert_memory_equal(th + 8, oth + 8, 5); /* ack, data offset */
            bool first = k == 0, last = k + 1 == want_n;
            uint8_t fl = oth[13];
            if (!last)
                fl &= (uint8_t)~0x09;
            if (!first)
                fl &= (uint8_t)~0x80;
            assert_int_equal(th[13], fl);
            assert_memory_equal(th + 18, oth + 18, f.pay - f.l4 - 18); /* urg ptr, options */
            assert_true(ref_l4_ok(ip, c->s.ipv, th, o->len - f.l4, 6));
            memcpy(payload + got_pay, b + f.pay, seglen);
            got_pay += seglen;
            free(b);
        }
    }
    assert_int_equal(made, 0);
    assert_int_equal(k, want_n);
    assert_int_equal(got_pay, c->s.payload);
    assert_memory_equal(payload, f.buf + f.pay, c->s.payload);
    assert_int_equal(offload_tso_next(&t, segs, c->chunk), 0);
    free(payload);
    free(segs);
    free(p);
    free(f.buf);
}

static void test_tso4(void **state)
{
    (void)state;
    const struct tso_case cases[] = {
        /* 64 KiB-ish frame, Linux-like MSS, in one big chunk and in small ones */
        {{.ipv = 4, .proto = 6, .payload = 65000, .tcp_flags = 0x18, .tcp_opts = 12},
         1448,
         false,
         64,
         {60, 3, 7777, 1, 20000, 1}},
        {{.ipv = 4, .proto = 6, .payload = 65000, .tcp_flags = 0x19, .tcp_opts = 12},
         1448,
         false,
         3,
         {66, 1, 1, 1, 1, 1}},
        /* exact multiple of the MSS; CWR with GSO_ECN */
        {{.ipv = 4, .proto = 6, .payload = 4000, .tcp_flags = 0x98},
         1000,
         true,
         2,
         {54, 1000, 999, 2}},
        /* odd sizes, one VLAN, payload just over one segment */
        {{.ipv = 4, .vlans = 1, .proto = 6, .payload = 1001, .tcp_flags = 0x10},
         1000,
         false,
         8,
         {13, 13, 13, 13, 13}},
        /* smallest MSS */
        {{.ipv = 4, .vlans = 2, .proto = 6, .payload = 5001, .tcp_flags = 0x11},
         88,
         false,
         32,
         {101}},
        /* payload smaller than the MSS: one segment */
        {{.ipv = 4, .proto = 6, .payload = 77, .tcp_flags = 0x19}, 1448, false, 4, {1000}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        check_tso(&cases[i]);
}

static void test_tso6(void **state)
{
    (void)state;
    const struct tso_case cases[] = {
        {{.ipv = 6, .proto = 6, .payload = 64000, .tcp_flags = 0x18, .tcp_opts = 12},
         1428,
         false,
         32,
         {86, 1, 30000, 7, 5, 3}},
        {{.ipv = 6, .vlans = 1, .ip6_opts = true, .proto = 6, .payload = 4001, .tcp_flags = 0x99},
         1000,
         true,
         1,
         {3, 5, 7, 11, 13, 17}},
        {{.ipv = 6, .vlans = 2, .proto = 6, .payload = 9000, .tcp_flags = 0x10, .tcp_opts = 40},
         1500,
         false,
         5,
         {129, 1, 128}},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        check_tso(&cases[i]);
}

/* A segment that would span more source buffers than a packet holds is refused, not cut. */
static void test_tso_too_many_pieces(void **state)
{
    (void)state;
    struct frame f;
    build(&f, &(struct frame_spec){.ipv = 4, .proto = 6, .payload = 12 + 63 * 20});
    uint32_t sizes[PKT_MAX_SEGS];
    sizes[0] = f.pay + 12;
    for (int i = 1; i < PKT_MAX_SEGS; i++)
        sizes[i] = 20;
    struct pkt *p = pkt_over(&f, sizes, PKT_MAX_SEGS);
    assert_int_equal(p->nseg, PKT_MAX_SEGS);
    set_tso(p, &f, 4, (uint16_t)(12 + 63 * 20), false);
    assert_int_equal(offload_validate(p, all, NULL), 0);
    struct offload_tso t;
    assert_int_equal(offload_tso_init(&t, p, NULL), 0);
    struct pkt *o = aligned_alloc(64, sizeof(*o));
    assert_int_equal(offload_tso_next(&t, o, 1), -E2BIG);
    free(o);
    free(p);
    free(f.buf);
}

/* ---- validation ---- */

enum mut {
    M_NONE,
    M_FLAGS_DATA_VALID,
    M_FLAGS_UNKNOWN,
    M_GSO_UDP,
    M_GSO_UNKNOWN,
    M_ECN_ALONE,
    M_CSUM_START_LOW,
    M_CSUM_START_PAST,
    M_CSUM_FIELD_PAST,
    M_CSUM_NOT_TCP,
    M_HDR_LEN_PAST,
    M_MSS_SMALL,
    M_MSS_ZERO,
    M_WRONG_IPV,
    M_NOT_TCP,
    M_FRAGMENT,
    M_IHL_SHORT,
    M_TCP_DOFF_SHORT,
    M_CWR_NO_ECN,
    M_NO_PAYLOAD,
    M_THREE_VLANS,
    M_NOT_IP,
    M_IP6_FRAG_HDR,
    M_HDRS_PAST_COPY,
    M_TRUNCATED,
};

struct vcase {
    const char *name;
    int ipv;
    enum mut m;
    uint32_t allowed;
    bool ok;
};

static void check_validate(const struct vcase *c)
{
    struct frame_spec s = {.ipv = c->ipv, .proto = 6, .payload = 3000, .tcp_flags = 0x18};
    if (c->m == M_NO_PAYLOAD)
        s.payload = 0;
    if (c->m == M_THREE_VLANS)
        s.vlans = 2;
    if (c->m == M_HDRS_PAST_COPY) {
        s.vlans = 2;
        s.tcp_opts = 40;
        s.ip6_opts = true;
    }
    struct frame f;
    build(&f, &s);
    uint8_t *ip = f.buf + f.l3, *th = f.buf + f.l4;
    switch (c->m) {
    case M_NOT_TCP:
        ip[c->ipv == 4 ? 9 : 6] = 17;
        break;
    case M_FRAGMENT:
        put16(ip + 6, 0x2000);
        break;
    case M_IHL_SHORT:
        ip[0] = 0x44;
        break;
    case M_TCP_DOFF_SHORT:
        th[12] = 0x40;
        break;
    case M_CWR_NO_ECN:
        th[13] |= 0x80;
        break;
    case M_THREE_VLANS:
        put16(f.buf + 20, 0x8100); /* the second tag's type says a third follows */
        break;
    case M_NOT_IP:
        put16(f.buf + 12, 0x0806);
        break;
    case M_IP6_FRAG_HDR:
        ip[6] = 44;
        break;
    default:
        break;
    }
    struct pkt *p = pkt_over(&f, (uint32_t[]){40, 1}, 2);
    if (c->m == M_TRUNCATED) {
        p->len = f.l4 + 10; /* the TCP header is cut by the end of the frame */
        p->nseg = 1;
        p->seg[0].len = p->len;
        pkt_snapshot_header(p);
    }
    set_tso(p, &f, c->ipv, 1448, false);
    struct virtio_net_hdr_v1 *v = &p->vnet;
    switch (c->m) {
    case M_FLAGS_DATA_VALID:
        v->flags |= VIRTIO_NET_HDR_F_DATA_VALID;
        break;
    case M_FLAGS_UNKNOWN:
        v->flags |= 0x40;
        break;
    case M_GSO_UDP:
        v->gso_type = VIRTIO_NET_HDR_GSO_UDP;
        break;
    case M_GSO_UNKNOWN:
        v->gso_type = 9;
        break;
    case M_ECN_ALONE:
        v->gso_type = VIRTIO_NET_HDR_GSO_ECN;
        break;
    case M_CSUM_START_LOW:
        v->gso_type = 0;
        v->csum_start = 10;
        break;
    case M_CSUM_START_PAST:
        v->gso_type = 0;
        v->csum_start = (uint16_t)p->len;
        v->csum_offset = 0;
        break;
    case M_CSUM_FIELD_PAST:
        v->gso_type = 0;
        v->csum_offset = 200; /* inside the frame, past the header copy */
        break;
    case M_CSUM_NOT_TCP:
        v->csum_offset = 6;
        break;
    case M_HDR_LEN_PAST:
        v->hdr_len = (uint16_t)(p->len + 1);
        break;
    case M_MSS_SMALL:
        v->gso_size = OFFLOAD_MIN_MSS - 1;
        break;
    case M_MSS_ZERO:
        v->gso_size = 0;
        break;
    case M_WRONG_IPV:
        v->gso_type = c->ipv == 4 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
        break;
    default:
        break;
    }
    const char *why = NULL;
    int rc = offload_validate(p, c->allowed, &why);
    if (c->ok) {
        if (rc != 0)
            fail_msg("%s: rejected (%s)", c->name, why ? why : "?");
    } else {
        if (rc != -EINVAL)
            fail_msg("%s: accepted", c->name);
        assert_non_null(why);
    }
    free(p);
    free(f.buf);
}

static void test_validate_table(void **state)
{
    (void)state;
    const uint32_t csum = OFFLOAD_CSUM;
    const struct vcase cases[] = {
        {"good tso4", 4, M_NONE, all, true},
        {"good tso6", 6, M_NONE, all, true},
        {"tso4 only negotiated", 4, M_NONE, csum | OFFLOAD_TSO4, true},
        {"tso4 not negotiated", 4, M_NONE, csum | OFFLOAD_TSO6, false},
        {"tso6 not negotiated", 6, M_NONE, csum | OFFLOAD_TSO4, false},
        {"tso without csum negotiated", 4, M_NONE, OFFLOAD_TSO4, false},
        {"nothing negotiated", 4, M_NONE, 0, false},
        {"DATA_VALID from a driver", 4, M_FLAGS_DATA_VALID, all, false},
        {"unknown flag", 4, M_FLAGS_UNKNOWN, all, false},
        {"UFO", 4, M_GSO_UDP, all, false},
        {"unknown gso_type", 4, M_GSO_UNKNOWN, all, false},
        {"GSO_ECN alone", 4, M_ECN_ALONE, all, false},
        {"csum_start in the Ethernet header", 4, M_CSUM_START_LOW, all, false},
        {"csum_start past the frame", 4, M_CSUM_START_PAST, all, false},
        {"checksum field past the copy", 4, M_CSUM_FIELD_PAST, all, false},
        {"tso checksum not at TCP's", 4, M_CSUM_NOT_TCP, all, false},
        {"hdr_len past the frame", 4, M_HDR_LEN_PAST, all, false},
        {"mss below minimum", 4, M_MSS_SMALL, all, false},
        {"mss zero", 6, M_MSS_ZERO, all, false},
        {"TCPV6 on IPv4", 4, M_WRONG_IPV, all, false},
        {"TCPV4 on IPv6", 6, M_WRONG_IPV, all, false},
        {"UDP under TSO4", 4, M_NOT_TCP, all, false},
        {"UDP under TSO6", 6, M_NOT_TCP, all, false},
        {"IPv4 fragment", 4, M_FRAGMENT, all, false},
        {"IPv4 ihl 4", 4, M_IHL_SHORT, all, false},
        {"TCP data offset 4", 4, M_TCP_DOFF_SHORT, all, false},
        {"CWR without GSO_ECN", 4, M_CWR_NO_ECN, all, false},
        {"no payload", 4, M_NO_PAYLOAD, all, false},
        {"three VLAN tags", 4, M_THREE_VLANS, all, false},
        {"ARP", 4, M_NOT_IP, all, false},
        {"IPv6 fragment header", 6, M_IP6_FRAG_HDR, all, false},
        {"headers past the copy", 6, M_HDRS_PAST_COPY, all, false},
        {"truncated TCP header", 4, M_TRUNCATED, all, false},
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
        check_validate(&cases[i]);
}

/* Checksum-only requests: any protocol, checked against the frame only. */
static void test_validate_csum_only(void **state)
{
    (void)state;
    struct frame f;
    build(&f, &(struct frame_spec){.ipv = 6, .vlans = 1, .proto = 17, .payload = 100});
    struct pkt *p = pkt_over(&f, (uint32_t[]){5}, 1);
    set_csum(p, &f, false);
    assert_int_equal(offload_validate(p, OFFLOAD_CSUM, NULL), 0);
    assert_int_equal(offload_validate(p, 0, NULL), -EINVAL);
    assert_int_equal(offload_needs(p), OFFLOAD_CSUM);
    assert_true(offload_requested(p));
    /* The last two bytes of the frame are a valid checksum field; one further is not. */
    p->vnet.csum_offset = (uint16_t)(p->len - 2 - p->vnet.csum_start);
    p->len = PKT_HDR_COPY;
    assert_int_equal(offload_validate(p, OFFLOAD_CSUM, NULL), -EINVAL);
    p->vnet.csum_offset = (uint16_t)(PKT_HDR_COPY - 2 - p->vnet.csum_start);
    assert_int_equal(offload_validate(p, OFFLOAD_CSUM, NULL), 0);
    p->vnet.csum_offset++;
    assert_int_equal(offload_validate(p, OFFLOAD_CSUM, NULL), -EINVAL);
    memset(&p->vnet, 0, sizeof(p->vnet));
    assert_false(offload_requested(p));
    assert_int_equal(offload_validate(p, 0, NULL), 0);
    free(p);
    free(f.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_matches_reference),
        cmocka_unit_test(test_csum_finish_tcp4),
        cmocka_unit_test(test_csum_finish_udp6_vlan),
        cmocka_unit_test(test_csum_finish_zero_becomes_ffff),
        cmocka_unit_test(test_tso4),
        cmocka_unit_test(test_tso6),
        cmocka_unit_test(test_tso_too_many_pieces),
        cmocka_unit_test(test_validate_table),
        cmocka_unit_test(test_validate_csum_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
