/*
 * Integration: the vhost-user protocol features of issue 3 through the real vswitchd, with
 * simulated guests on bridge br0:
 *   - MTU: bridges have one (br-add/br-set --mtu, br-list); a guest's NET_SET_MTU above it is
 *     refused (REPLY_ACK error, counted, the connection stays), a valid one is the port's MTU
 *     (port-list); frames longer than a port's MTU + 18 are dropped at that port
 *     (tx_mtu_exceeded) while the other ports get them;
 *   - SEND_RARP: a guest on a new port announces a MAC that was learnt elsewhere (as after a
 *     migration): the others get the RARP broadcast and the FDB moves the MAC to the new port;
 *   - dirty logging: a guest that starts a migration (log memfd, LOG_ALL) gets the pages the
 *     switch wrote marked in its log, and only pages of its rings and RX buffers.
 */
#include "itest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

enum { A, B, C, D, N_GUESTS };

struct fx {
    struct itest_daemon d;
    struct vuf_dev *g[N_GUESTS];
    struct vsw_mac mac[N_GUESTS];
};

static const char *const names[N_GUESTS] = {"A", "B", "C", "D"};
static const char *const ports[N_GUESTS] = {"a", "b", "c", "d"};
static const struct vsw_mac bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

#define PROTO_ALL                                                                                  \
    ((1ull << VHOST_USER_PROTOCOL_F_NET_MTU) | (1ull << VHOST_USER_PROTOCOL_F_RARP) |              \
     (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD))

static struct vuf_dev *guest(struct fx *f, int i)
{
    char path[160];
    itest_port_path(&f->d, ports[i], path, sizeof(path));
    struct vuf_config cfg = {.protocol_features = PROTO_ALL};
    struct vuf_dev *g = vuf_connect(path, &cfg);
    if (!g)
        fail_msg("guest %s cannot connect: %s", names[i], strerror(errno));
    itest_wait_port_state(&f->d, ports[i], "running");
    assert_int_equal(vuf_protocol_features(g) & PROTO_ALL, PROTO_ALL);
    return g;
}

static int setup(void **state)
{
    static struct fx fixture;
    struct fx *f = &fixture;
    memset(f, 0, sizeof(*f));
    *state = f;
    for (int i = 0; i < N_GUESTS; i++)
        f->mac[i] = itest_mac((uint8_t)(0x20 + i));
    itest_daemon_start(&f->d, NULL);
    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    for (int i = A; i <= C; i++) {
        itest_ctl_ok(&f->d, "port-add", "br0", ports[i], NULL);
        f->g[i] = guest(f, i);
    }
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < N_GUESTS; i++)
        vuf_close(f->g[i]);
    return itest_daemon_stop(&f->d);
}

/* A port's entry of port-list (a new reference). */
static json_t *port_entry(struct fx *f, const char *port)
{
    json_t *list = itest_ctl_json(&f->d, "port-list", NULL), *p, *found = NULL;
    size_t i;
    json_array_foreach(list, i, p)
    {
        if (strcmp(json_string_value(json_object_get(p, "name")), port) == 0)
            found = json_incref(p);
    }
    json_decref(list);
    if (!found)
        fail_msg("no port %s in port-list", port);
    return found;
}

static uint64_t port_u64(struct fx *f, const char *port, const char *key)
{
    json_t *p = port_entry(f, port);
    uint64_t v = itest_u64(p, key);
    json_decref(p);
    return v;
}

static uint64_t stat_u64(struct fx *f, const char *port, const char *key)
{
    json_t *s = itest_port_stats(&f->d, port);
    uint64_t v = itest_u64(s, key);
    json_decref(s);
    return v;
}

static uint64_t mtu_drops(struct fx *f, const char *port)
{
    json_t *s = itest_port_stats(&f->d, port);
    uint64_t v = itest_drop(s, "tx_mtu_exceeded");
    json_decref(s);
    return v;
}

static int set_mtu(struct fx *f, int i, uint64_t mtu)
{
    return vuf_request(f->g[i], VHOST_USER_NET_SET_MTU, &mtu, sizeof(mtu), NULL, 0);
}

/* B sends `len` bytes to guest `to`; it arrives there (want) or nowhere. */
static void send_expect(struct fx *f, int to, size_t len, bool want, uint32_t seq)
{
    itest_send_frame(f->g[B], &f->mac[to], &f->mac[B], seq, len);
    if (want)
        itest_expect_frame(f->g[to], names[to], &f->mac[to], &f->mac[B], seq, len);
    struct vuf_dev *const gs[] = {f->g[A], f->g[B], f->g[C]};
    itest_expect_none(gs, names, 3);
}

static void test_mtu(void **state)
{
    struct fx *f = *state;
    json_t *br = itest_br_info(&f->d, "br0");
    assert_int_equal(itest_u64(br, "mtu"), 1500);
    json_decref(br);
    assert_int_equal(port_u64(f, "a", "mtu"), 1500);
    assert_int_equal(port_u64(f, "a", "guest_mtu"), 0);

    /* Every guest is learnt first (broadcasts), so the frames below are unicast. */
    for (int i = A; i <= C; i++) {
        itest_send_frame(f->g[i], &bcast, &f->mac[i], 100 + i, 60);
        for (int j = A; j <= C; j++)
            if (j != i)
                itest_expect_frame(f->g[j], names[j], &bcast, &f->mac[i], 100 + i, 60);
    }

    /* Above the bridge's MTU: refused with an error ack; counted; A stays connected. */
    assert_int_equal(set_mtu(f, A, 9000), -EIO);
    assert_int_equal(stat_u64(f, "a", "msg_refused"), 1);
    assert_int_equal(stat_u64(f, "a", "msg_errors"), 0);
    assert_int_equal(port_u64(f, "a", "guest_mtu"), 0);
    assert_int_equal(set_mtu(f, A, 1400), 0);
    assert_int_equal(port_u64(f, "a", "guest_mtu"), 1400);
    assert_int_equal(port_u64(f, "a", "mtu"), 1400);

    /* A's port: 1400 + 18 passes, one byte more is dropped there (and only there). */
    send_expect(f, A, 1418, true, 1);
    send_expect(f, A, 1419, false, 2);
    assert_int_equal(mtu_drops(f, "a"), 1);
    send_expect(f, C, 1518, true, 3);
    send_expect(f, C, 1519, false, 4);
    assert_int_equal(mtu_drops(f, "c"), 1);
    assert_int_equal(mtu_drops(f, "b"), 0);

    /* A larger bridge MTU: C takes jumbo frames now; A keeps the MTU it set. */
    itest_ctl_ok(&f->d, "br-set", "br0", "--mtu", "9000", NULL);
    br = itest_br_info(&f->d, "br0");
    assert_int_equal(itest_u64(br, "mtu"), 9000);
    json_decref(br);
    assert_int_equal(port_u64(f, "c", "mtu"), 9000);
    assert_int_equal(port_u64(f, "a", "mtu"), 1400);
    send_expect(f, C, 9018, true, 5);
    send_expect(f, A, 1419, false, 6);
    assert_int_equal(mtu_drops(f, "a"), 2);
    assert_int_equal(set_mtu(f, A, 9000), 0);
    send_expect(f, A, 9018, true, 7);

    /* Lowering the bridge's MTU caps a guest's larger one. */
    itest_ctl_ok(&f->d, "br-set", "br0", "--mtu", "1500", NULL);
    assert_int_equal(port_u64(f, "a", "mtu"), 1500);
    assert_int_equal(port_u64(f, "a", "guest_mtu"), 9000);
    send_expect(f, A, 1519, false, 8);
    assert_int_equal(mtu_drops(f, "a"), 3);

    /* Range checks of the control API. */
    struct itest_run r;
    assert_int_equal(itest_ctl(&f->d, &r, "br-set", "br0", "--mtu", "67", NULL), 1);
    itest_run_free(&r);
    assert_int_equal(itest_ctl(&f->d, &r, "br-add", "br1", "--mtu", "65536", NULL), 1);
    itest_run_free(&r);
    itest_ctl_ok(&f->d, "br-add", "br1", "--mtu", "65535", NULL);
    br = itest_br_info(&f->d, "br1");
    assert_int_equal(itest_u64(br, "mtu"), 65535);
    json_decref(br);
    assert_true(itest_daemon_alive(&f->d));
}

static void test_rarp(void **state)
{
    struct fx *f = *state;
    /* A is learnt on port a. */
    itest_send_frame(f->g[A], &bcast, &f->mac[A], 1, 60);
    itest_expect_frame(f->g[B], "B", &bcast, &f->mac[A], 1, 60);
    itest_expect_frame(f->g[C], "C", &bcast, &f->mac[A], 1, 60);
    assert_string_equal(itest_fdb_port(&f->d, "br0", itest_mac_str(&f->mac[A]), 1), "a");

    /* A "migrated" to port d: the frontend there asks us to announce A's MAC. */
    itest_ctl_ok(&f->d, "port-add", "br0", "d", NULL);
    f->g[D] = guest(f, D);
    uint64_t mac = 0;
    memcpy(&mac, f->mac[A].b, 6);
    assert_int_equal(vuf_request(f->g[D], VHOST_USER_SEND_RARP, &mac, sizeof(mac), NULL, 0), 0);

    uint8_t want[60] = {0};
    memset(want, 0xff, 6);
    memcpy(want + 6, f->mac[A].b, 6);
    static const uint8_t rarp[] = {0x80, 0x35, 0, 1, 8, 0, 6, 4, 0, 3};
    memcpy(want + 12, rarp, sizeof(rarp));
    memcpy(want + 22, f->mac[A].b, 6);
    memcpy(want + 32, f->mac[A].b, 6);
    for (int i = A; i <= C; i++)
        itest_expect(f->g[i], names[i], want, sizeof(want));
    struct vuf_dev *const gs[] = {f->g[A], f->g[B], f->g[C], f->g[D]};
    itest_expect_none(gs, names, 4);
    assert_string_equal(itest_fdb_port(&f->d, "br0", itest_mac_str(&f->mac[A]), 1), "d");
    assert_int_equal(stat_u64(f, "d", "rarp_sent"), 1);

    /* Unicast to A now reaches port d only. */
    itest_send_frame(f->g[B], &f->mac[A], &f->mac[B], 2, 100);
    itest_expect_frame(f->g[D], "D", &f->mac[A], &f->mac[B], 2, 100);
    itest_expect_none(gs, names, 4);

    /* A multicast MAC is refused, nothing is sent. */
    uint64_t mcast = 0x0100005e0001ull;
    assert_int_equal(vuf_request(f->g[D], VHOST_USER_SEND_RARP, &mcast, 8, NULL, 0), -EIO);
    itest_expect_none(gs, names, 4);
    assert_int_equal(stat_u64(f, "d", "rarp_sent"), 1);
    assert_int_equal(stat_u64(f, "d", "msg_refused"), 1);
}

static void test_dirty_log(void **state)
{
    struct fx *f = *state;
    const uint64_t log_size = 4096, log_off = 4096; /* covers 128 MiB of guest memory */
    int fd = memfd_create("vsw-test-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)(log_off + log_size)), 0);
    /* sealed as QEMU seals its log: vswitchd refuses a log that could shrink under it */
    assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    uint8_t *file = mmap(NULL, log_off + log_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(file != MAP_FAILED);
    const uint8_t *bits = file + log_off;

    /* B's MAC is learnt before logging starts. */
    itest_send_frame(f->g[B], &bcast, &f->mac[B], 1, 60);
    itest_expect_frame(f->g[A], "A", &bcast, &f->mac[B], 1, 60);
    itest_expect_frame(f->g[C], "C", &bcast, &f->mac[B], 1, 60);

    assert_int_equal(vuf_log_start(f->g[B], fd, log_size, log_off), 0);
    json_t *pb = port_entry(f, "b");
    uint64_t feat = strtoull(json_string_value(json_object_get(pb, "features")), NULL, 16);
    json_decref(pb);
    assert_true(feat & (1ull << VHOST_F_LOG_ALL));
    memset(file, 0, log_off + log_size);

    for (uint32_t i = 0; i < 20; i++)
        itest_send_frame(f->g[A], &f->mac[B], &f->mac[A], 10 + i, 1000);
    for (uint32_t i = 0; i < 20; i++)
        itest_expect_frame(f->g[B], "B", &f->mac[B], &f->mac[A], 10 + i, 1000);

    uint64_t rx_used, rx_bufs, rx_len, tx_used, tx_bufs, tx_len;
    vuf_layout_gpa(f->g[B], false, &rx_used, &rx_bufs, &rx_len);
    vuf_layout_gpa(f->g[B], true, &tx_used, &tx_bufs, &tx_len);
    unsigned n_bufs = 0;
    for (uint64_t page = 0; page < log_size * 8; page++) {
        if (!(bits[page / 8] & (1u << (page % 8))))
            continue;
        uint64_t gpa = page * 4096;
        /* Used rings: entries and index, and avail_event (the PMD asks B's TX ring for kicks
         * before it sleeps), which sits after the used entries. */
        bool ring = page == rx_used / 4096 || page == (rx_used + 4 + 8 * 256) / 4096 ||
                    page == tx_used / 4096 || page == (tx_used + 4 + 8 * 256) / 4096;
        bool buf = gpa + 4096 > rx_bufs && gpa < rx_bufs + rx_len;
        if (!ring && !buf)
            fail_msg("page %#llx is dirty, but the switch writes no such page of guest B",
                     (unsigned long long)page);
        n_bufs += buf;
    }
    assert_true(bits[(rx_used / 4096) / 8] & (1u << ((rx_used / 4096) % 8)));
    /* 20 frames of 1012 bytes in 2 KiB buffers: 10 pages at least */
    assert_true(n_bufs >= 10);
    for (uint64_t i = 0; i < log_off; i++)
        assert_int_equal(file[i], 0); /* never before the log */

    /* B transmits: its TX used ring is marked too. */
    itest_send_frame(f->g[B], &f->mac[A], &f->mac[B], 99, 60);
    itest_expect_frame(f->g[A], "A", &f->mac[A], &f->mac[B], 99, 60);
    for (int tries = 0; tries < 100 && vuf_tx_pending(f->g[B]); tries++)
        usleep(10000);
    assert_true(bits[(tx_used / 4096) / 8] & (1u << ((tx_used / 4096) % 8)));
    assert_int_equal(stat_u64(f, "b", "log_errors"), 0);
    munmap(file, log_off + log_size);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mtu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rarp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_log, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
