/*
 * Integration: offloads through the real vswitchd. Guest A negotiated CSUM and HOST_TSO4/6/ECN
 * (it sends partial checksums and 64 KiB TCP frames), guest B negotiated GUEST_CSUM and
 * GUEST_TSO4/6/ECN (it takes them as they are), guest C negotiated none of them (the switch
 * must complete checksums and segment for it). Frames go to an unknown MAC, so each is
 * flooded to B and C and each destination decides for itself.
 *
 * Checked independently of the switch's code: C's segments have valid IPv4 header and TCP
 * checksums (a byte-wise RFC 1071 sum written here), the right lengths, sequence numbers and
 * flags, and their payloads put together equal the original; B's frame is byte for byte what
 * A sent, with A's virtio-net header. A guest that sends offload requests it did not
 * negotiate, or a header that does not match its frame, has the frame dropped and counted
 * (rx_bad_vnet_hdr on its port) while the others' traffic goes on.
 */
#include "itest.h"
#include "offload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

enum { A, B, C, N_GUESTS };

#define BASE_FEATURES                                                                              \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |                             \
     (1ull << VIRTIO_RING_F_EVENT_IDX))
#define RX_CAP 70000

struct fx {
    struct itest_daemon d;
    struct vuf_dev *g[N_GUESTS];
    struct vsw_mac mac[N_GUESTS];
    uint8_t *rx;
};

static const char *const ports[N_GUESTS] = {"a", "b", "c"};

static struct vuf_dev *guest(struct itest_daemon *d, const char *port, uint64_t features)
{
    char path[160];
    itest_port_path(d, port, path, sizeof(path));
    struct vuf_config cfg = {.features = features, .mem_size = 16u << 20};
    struct vuf_dev *g = vuf_connect(path, &cfg);
    if (!g)
        fail_msg("guest cannot connect to %s: %s", path, strerror(errno));
    itest_wait_port_state(d, port, "running");
    return g;
}

static int setup(void **state)
{
    static struct fx fixture;
    struct fx *f = &fixture;
    memset(f, 0, sizeof(*f));
    *state = f;
    f->rx = malloc(RX_CAP);
    assert_non_null(f->rx);
    for (int i = 0; i < N_GUESTS; i++)
        f->mac[i] = itest_mac((uint8_t)(0x0a + i));
    itest_daemon_start(&f->d, NULL);
    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    for (int i = 0; i < N_GUESTS; i++)
        itest_ctl_ok(&f->d, "port-add", "br0", ports[i], NULL);
    f->g[A] = guest(&f->d, "a",
                    BASE_FEATURES | (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_HOST_TSO4) |
                        (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_HOST_ECN));
    f->g[B] = guest(&f->d, "b",
                    BASE_FEATURES | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
                        (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |
                        (1ull << VIRTIO_NET_F_GUEST_ECN));
    f->g[C] = guest(&f->d, "c", BASE_FEATURES);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < N_GUESTS; i++)
        vuf_close(f->g[i]);
    free(f->rx);
    return itest_daemon_stop(&f->d);
}

/* ---- reference sums (independent of the code under test) ---- */

#include "../net/ref_csum.h"

/* ---- frames ---- */

struct tcp_frame {
    uint8_t *buf;
    uint32_t len, l3, l4, pay;
    struct virtio_net_hdr_v1 vnet;
};

/* Ethernet + IPv4/IPv6 + TCP with 12 bytes of options + payload, with a partial checksum (the
 * pseudo-header sum in the field) and a TSO request for `mss`. */
static void tcp_frame(struct tcp_frame *t, const struct fx *f, int ipv, uint32_t payload,
                      uint16_t mss, uint8_t flags, bool ecn)
{
    t->l3 = 14;
    t->l4 = t->l3 + (ipv == 4 ? 20 : 40);
    t->pay = t->l4 + 32;
    t->len = t->pay + payload;
    t->buf = calloc(1, t->len);
    assert_non_null(t->buf);
    uint8_t *b = t->buf;
    struct vsw_mac unknown = itest_mac(0x99);
    memcpy(b, unknown.b, 6);
    memcpy(b + 6, f->mac[A].b, 6);
    put16(b + 12, ipv == 4 ? 0x0800 : 0x86dd);
    uint8_t *ip = b + t->l3, *th = b + t->l4;
    uint32_t l4_len = t->len - t->l4;
    if (ipv == 4) {
        ip[0] = 0x45;
        put16(ip + 2, MIN(t->len - t->l3, 0xffffu));
        put16(ip + 4, 0x1234);
        put16(ip + 6, 0x4000);
        ip[8] = 64;
        ip[9] = 6;
        memcpy(ip + 12, (uint8_t[]){198, 18, 0, 1, 198, 18, 0, 2}, 8);
        uint16_t c = (uint16_t)~ref_fold(ref_add(0, ip, 20));
        put16(ip + 10, c);
    } else {
        ip[0] = 0x60;
        put16(ip + 4, MIN(l4_len, 0xffffu));
        ip[6] = 6;
        ip[7] = 64;
        for (int i = 0; i < 16; i++) {
            ip[8 + i] = (uint8_t)(0xfd + i);
            ip[24 + i] = (uint8_t)(0x33 * i);
        }
    }
    put16(th, 40000);
    put16(th + 2, 80);
    memcpy(th + 4, (uint8_t[]){0x7f, 0xff, 0xff, 0x00}, 4);
    memcpy(th + 8, (uint8_t[]){0, 0, 0, 1}, 4);
    th[12] = 8 << 4;
    th[13] = flags;
    put16(th + 14, 512);
    memcpy(th + 20, (uint8_t[]){1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, 12); /* timestamps */
    for (uint32_t i = 0; i < payload; i++)
        b[t->pay + i] = (uint8_t)(i * 251 + (i >> 9));
    put16(th + 16, ref_fold(ref_pseudo(ip, ipv, l4_len, 6)));
    memset(&t->vnet, 0, sizeof(t->vnet));
    t->vnet.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    t->vnet.gso_type = (uint8_t)((ipv == 4 ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6) |
                                 (ecn ? VIRTIO_NET_HDR_GSO_ECN : 0));
    t->vnet.gso_size = mss;
    t->vnet.hdr_len = (uint16_t)t->pay;
    t->vnet.csum_start = (uint16_t)t->l4;
    t->vnet.csum_offset = 16;
}

static void send_vnet(struct vuf_dev *g, const struct virtio_net_hdr_v1 *vh, const uint8_t *b,
                      uint32_t len)
{
    for (int tries = 0; tries < 5000; tries++) {
        int rc = vuf_send_vnet(g, vh, b, len);
        if (rc == 0)
            return;
        assert_int_equal(rc, -EAGAIN);
        struct timespec ts = {.tv_nsec = 1000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("TX ring stayed full");
}

static int recv_one(struct vuf_dev *g, uint8_t *buf, struct virtio_net_hdr_v1 *vh)
{
    int n = vuf_recv_wait(g, buf, RX_CAP, ITEST_RECV_MS);
    if (n < 0)
        fail_msg("no frame within %d ms: %s", ITEST_RECV_MS, strerror(-n));
    vuf_last_rx_vnet(g, vh);
    return n;
}

/* B (GUEST_TSO, GUEST_CSUM, GUEST_ECN) gets the frame and its header exactly as A sent them. */
static void expect_intact(struct fx *f, const struct tcp_frame *t)
{
    struct virtio_net_hdr_v1 vh;
    int n = recv_one(f->g[B], f->rx, &vh);
    assert_int_equal(n, t->len);
    assert_memory_equal(f->rx, t->buf, t->len);
    assert_int_equal(vh.flags, t->vnet.flags);
    assert_int_equal(vh.gso_type, t->vnet.gso_type);
    assert_int_equal(vh.gso_size, t->vnet.gso_size);
    assert_int_equal(vh.hdr_len, t->vnet.hdr_len);
    assert_int_equal(vh.csum_start, t->vnet.csum_start);
    assert_int_equal(vh.csum_offset, t->vnet.csum_offset);
}

/* C (no offloads) gets ceil(payload / mss) complete, checksummed TCP segments. */
static void expect_segments(struct fx *f, const struct tcp_frame *t, int ipv, bool ecn)
{
    uint32_t payload = t->len - t->pay, mss = t->vnet.gso_size;
    uint32_t nseg = (payload + mss - 1) / mss, got = 0;
    uint8_t *joined = malloc(payload);
    const uint8_t *oth = t->buf + t->l4;
    for (uint32_t k = 0; k < nseg; k++) {
        struct virtio_net_hdr_v1 vh;
        int n = recv_one(f->g[C], f->rx, &vh);
        uint32_t seglen = MIN(mss, payload - k * mss);
        if ((uint32_t)n != t->pay + seglen)
            fail_msg("segment %u: %d bytes, want %u", k, n, t->pay + seglen);
        assert_int_equal(vh.flags, 0);
        assert_int_equal(vh.gso_type, 0);
        const uint8_t *ip = f->rx + t->l3, *th = f->rx + t->l4;
        assert_memory_equal(f->rx, t->buf, t->l3);
        if (ipv == 4) {
            assert_int_equal(ref_fold(ref_add(0, ip, 20)), 0xffff);
            assert_int_equal(get16(ip + 2), (uint32_t)n - t->l3);
            assert_int_equal(get16(ip + 4), (uint16_t)(0x1234 + k));
        } else {
            assert_int_equal(get16(ip + 4), (uint32_t)n - t->l4);
        }
        uint32_t l4_len = (uint32_t)n - t->l4;
        if (ref_fold(ref_add(ref_pseudo(ip, ipv, l4_len, 6), th, l4_len)) != 0xffff)
            fail_msg("segment %u: bad TCP checksum", k);
        assert_int_equal(get32(th + 4), get32(oth + 4) + k * mss);
        uint8_t fl = oth[13];
        if (k + 1 < nseg)
            fl &= (uint8_t)~0x09; /* FIN, PSH: last only */
        if (k > 0 || !ecn)
            fl &= (uint8_t)~0x80; /* CWR: first only */
        assert_int_equal(th[13], fl);
        memcpy(joined + got, f->rx + t->pay, seglen);
        got += seglen;
    }
    assert_int_equal(got, payload);
    assert_memory_equal(joined, t->buf + t->pay, payload);
    free(joined);
}

static void expect_quiet(struct fx *f)
{
    static const char *const names[] = {"A", "B", "C"};
    itest_expect_none(f->g, names, N_GUESTS);
}

/* The headline case: a 64 KiB TSO frame with NEEDS_CSUM and CWR (GSO_ECN) from A. */
static void test_tso4_64k(void **state)
{
    struct fx *f = *state;
    struct tcp_frame t;
    tcp_frame(&t, f, 4, 65536 - 66, 1448, 0x80 | 0x19, true); /* CWR, PSH, ACK, FIN */
    send_vnet(f->g[A], &t.vnet, t.buf, t.len);
    expect_intact(f, &t);
    expect_segments(f, &t, 4, true);
    expect_quiet(f);
    free(t.buf);
}

static void test_tso6(void **state)
{
    struct fx *f = *state;
    struct tcp_frame t;
    tcp_frame(&t, f, 6, 20001, 1428, 0x18, false);
    send_vnet(f->g[A], &t.vnet, t.buf, t.len);
    expect_intact(f, &t);
    expect_segments(f, &t, 6, false);
    expect_quiet(f);
    free(t.buf);
}

/* Checksum only (no GSO), UDP: B gets the partial checksum, C the completed one. */
static void test_csum_udp(void **state)
{
    struct fx *f = *state;
    uint32_t pay = 999, len = 14 + 20 + 8 + pay;
    uint8_t *b = calloc(1, len);
    struct vsw_mac unknown = itest_mac(0x99);
    memcpy(b, unknown.b, 6);
    memcpy(b + 6, f->mac[A].b, 6);
    put16(b + 12, 0x0800);
    uint8_t *ip = b + 14, *uh = b + 34;
    ip[0] = 0x45;
    put16(ip + 2, len - 14);
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 12, (uint8_t[]){198, 18, 0, 1, 198, 18, 0, 2}, 8);
    put16(ip + 10, (uint16_t)~ref_fold(ref_add(0, ip, 20)));
    put16(uh, 5353);
    put16(uh + 2, 5353);
    put16(uh + 4, 8 + pay);
    for (uint32_t i = 0; i < pay; i++)
        b[42 + i] = (uint8_t)(i ^ 0x5a);
    put16(uh + 6, ref_fold(ref_pseudo(ip, 4, 8 + pay, 17)));
    struct virtio_net_hdr_v1 vh = {
        .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6};
    send_vnet(f->g[A], &vh, b, len);

    struct virtio_net_hdr_v1 got;
    assert_int_equal(recv_one(f->g[B], f->rx, &got), len);
    assert_memory_equal(f->rx, b, len);
    assert_int_equal(got.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
    assert_int_equal(got.csum_start, 34);
    assert_int_equal(got.csum_offset, 6);

    assert_int_equal(recv_one(f->g[C], f->rx, &got), len);
    assert_int_equal(got.flags, 0);
    assert_memory_equal(f->rx, b, 40); /* all but the checksum field unchanged */
    assert_memory_equal(f->rx + 42, b + 42, pay);
    assert_int_not_equal(get16(f->rx + 40), 0);
    assert_int_equal(ref_fold(ref_add(ref_pseudo(f->rx + 14, 4, 8 + pay, 17), f->rx + 34, 8 + pay)),
                     0xffff);
    expect_quiet(f);
    free(b);
}

/* Bad headers are dropped at the sender's port and counted; the others' traffic goes on. */
static void test_bad_headers(void **state)
{
    struct fx *f = *state;
    struct tcp_frame t;
    tcp_frame(&t, f, 4, 5000, 1448, 0x18, false);

    /* C did not negotiate CSUM or HOST_TSO4: its offload requests are refused. */
    send_vnet(f->g[C], &t.vnet, t.buf, t.len);
    struct virtio_net_hdr_v1 csum_only = t.vnet;
    csum_only.gso_type = 0;
    csum_only.gso_size = 0;
    send_vnet(f->g[C], &csum_only, t.buf, t.len);
    /* A negotiated them, but these headers do not match the frame. */
    struct virtio_net_hdr_v1 bad[4];
    for (int i = 0; i < 4; i++)
        bad[i] = t.vnet;
    bad[0].gso_size = 10;                        /* MSS below the minimum */
    bad[1].gso_type = VIRTIO_NET_HDR_GSO_TCPV6;  /* an IPv4 frame */
    bad[2].csum_start = (uint16_t)(t.len + 10);  /* past the frame */
    bad[3].flags |= VIRTIO_NET_HDR_F_DATA_VALID; /* a device-only flag */
    for (int i = 0; i < 4; i++)
        send_vnet(f->g[A], &bad[i], t.buf, t.len);
    expect_quiet(f);

    json_t *sc = itest_port_stats(&f->d, "c");
    json_t *sa = itest_port_stats(&f->d, "a");
    assert_int_equal(itest_drop(sc, "rx_bad_vnet_hdr"), 2);
    assert_int_equal(itest_drop(sa, "rx_bad_vnet_hdr"), 4);
    json_decref(sc);
    json_decref(sa);

    /* A good frame from A right after still reaches both, each in its own way. */
    send_vnet(f->g[A], &t.vnet, t.buf, t.len);
    expect_intact(f, &t);
    expect_segments(f, &t, 4, false);
    /* And plain frames from C still flow. */
    itest_send_frame(f->g[C], &f->mac[B], &f->mac[C], 7, 200);
    itest_expect_frame(f->g[B], "B", &f->mac[B], &f->mac[C], 7, 200);
    itest_expect_frame(f->g[A], "A", &f->mac[B], &f->mac[C], 7, 200); /* B's MAC is unknown */
    expect_quiet(f);
    free(t.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tso4_64k, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tso6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_csum_udp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_headers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
