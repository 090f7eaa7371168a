/*
 * Integration: hostile guests against the real vswitchd. Bridge br0 has the well-behaved
 * guests A and B (ports a, b), a hostile guest H (port h) and a port m for raw vhost-user
 * clients.
 *
 * - H publishes garbage on its TX ring (addresses outside its memory, chains that loop, bad
 *   heads, index jumps, ...). Each time its TX queue is cut off: `stats h` shows one more
 *   queue error and one more rx_bad_desc drop; vswitchd keeps running and A and B keep
 *   exchanging frames (1000 each way at the end, every one delivered, in order, intact).
 * - H points its RX buffers outside its memory: its RX queue is cut off (tx_bad_desc), the
 *   flood it was part of still reaches B.
 * - H truncates its guest memory file under the switch's mapping: the SIGBUS that follows is
 *   caught, both of H's queues are cut off (queue_errors 2), and A and B go on.
 * - A raw client on m sends half a message and stalls: nobody waits for it, and it is answered
 *   when it completes the message seconds later.
 * - A raw client on m sends one malformed vhost-user message (unknown request, a header that
 *   claims a 1 MB payload, bad version, wrong sizes, missing fd, bad ring index or size):
 *   it is disconnected, the port counts one more msg_error, its socket then accepts a valid
 *   frontend, and the other ports never notice.
 */
#include "itest.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define EXCHANGE_N      1000
#define EXCHANGE_WINDOW 64 /* frames in flight per direction: well below the 256 RX buffers */

enum { A, B, H, M, N_GUESTS };

struct fx {
    struct itest_daemon d;
    struct vuf_dev *g[N_GUESTS];
    struct vsw_mac mac[N_GUESTS];
    uint32_t seq;
};

static const char *const names[N_GUESTS] = {"A", "B", "H", "M"};
static const char *const ports[N_GUESTS] = {"a", "b", "h", "m"};
static const struct vsw_mac bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

static int setup(void **state)
{
    static struct fx fixture;
    struct fx *f = &fixture;
    memset(f, 0, sizeof(*f));
    *state = f;
    for (int i = 0; i < N_GUESTS; i++)
        f->mac[i] = itest_mac((uint8_t)(0x0a + i));
    itest_daemon_start(&f->d, NULL);
    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    for (int i = 0; i < N_GUESTS; i++)
        itest_ctl_ok(&f->d, "port-add", "br0", ports[i], NULL);
    f->g[A] = itest_guest(&f->d, "a");
    f->g[B] = itest_guest(&f->d, "b");

    /* Learn A and B, so that their traffic is unicast and never reaches H or m. */
    itest_send_frame(f->g[A], &bcast, &f->mac[A], ++f->seq, 64);
    itest_expect_frame(f->g[B], "B", &bcast, &f->mac[A], f->seq, 64);
    itest_send_frame(f->g[B], &f->mac[A], &f->mac[B], ++f->seq, 64);
    itest_expect_frame(f->g[A], "A", &f->mac[A], &f->mac[B], f->seq, 64);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < N_GUESTS; i++)
        vuf_close(f->g[i]);
    return itest_daemon_stop(&f->d);
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static size_t exchange_len(uint32_t i)
{
    return 60 + (i * 37) % 1455; /* 60..1514 */
}

/*
 * A sends n frames to B and B n frames to A, at most EXCHANGE_WINDOW unanswered per
 * direction so no RX ring can overflow; every frame must arrive, in order, byte-exact.
 */
static void exchange(struct fx *f, unsigned n)
{
    static uint8_t want[2048], got[2048];
    struct vuf_dev *src[2] = {f->g[A], f->g[B]}, *dst[2] = {f->g[B], f->g[A]};
    const struct vsw_mac *smac[2] = {&f->mac[A], &f->mac[B]};
    const char *dname[2] = {"B", "A"};
    unsigned sent[2] = {0, 0}, rcvd[2] = {0, 0};
    uint32_t base = f->seq + 1;
    uint64_t last_progress = vsw_now_ns();

    f->seq += 2 * n;
    while (rcvd[0] < n || rcvd[1] < n) {
        bool progress = false;
        for (int k = 0; k < 2; k++) {
            while (sent[k] < n && sent[k] - rcvd[k] < EXCHANGE_WINDOW) {
                uint32_t seq = base + 2 * sent[k] + (uint32_t)k;
                itest_send_frame(src[k], smac[1 - k], smac[k], seq, exchange_len(seq));
                sent[k]++;
            }
            int rc;
            while ((rc = vuf_recv(dst[k], got, sizeof(got))) != -EAGAIN) {
                if (rc < 0)
                    fail_msg("guest %s: receive failed: %s", dname[k], strerror(-rc));
                if (rcvd[k] >= n)
                    fail_msg("guest %s: more than the %u frames sent", dname[k], n);
                uint32_t seq = base + 2 * rcvd[k] + (uint32_t)k;
                size_t len = itest_frame(want, exchange_len(seq), smac[1 - k], smac[k], seq);
                if ((size_t)rc != len || memcmp(got, want, len) != 0)
                    fail_msg("guest %s: frame %u of %u is not the one sent (%d bytes, want %zu)",
                             dname[k], rcvd[k], n, rc, len);
                rcvd[k]++;
                progress = true;
            }
        }
        if (progress)
            last_progress = vsw_now_ns();
        else if (vsw_now_ns() - last_progress > ITEST_RECV_MS * 1000000ull)
            fail_msg("exchange stalled: A->B %u/%u, B->A %u/%u received", rcvd[0], n, rcvd[1], n);
        else
            nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL);
    }
    struct vuf_dev *gs[] = {f->g[A], f->g[B]};
    const char *ns[] = {"A", "B"};
    itest_expect_none(gs, ns, 2);
}

/* ---- garbage on H's TX ring ---- */

struct hostile_case {
    const char *what;
    void (*fn)(struct vuf_dev *h);
};

static uint64_t gpa_base(struct vuf_dev *h, uint64_t *size)
{
    uint64_t base;
    vuf_guest_mem(h, &base, size, NULL);
    return base;
}

static void bad_addr_outside(struct vuf_dev *h)
{
    uint64_t size, base = gpa_base(h, &size);
    vuf_tx_desc_table(h)[0] = (struct vring_desc){.addr = base + size + 4096, .len = 64};
    vuf_tx_post_raw(h, 0);
}

static void bad_addr_below(struct vuf_dev *h)
{
    uint64_t size, base = gpa_base(h, &size);
    (void)size;
    vuf_tx_desc_table(h)[0] = (struct vring_desc){.addr = base - 4096, .len = 64};
    vuf_tx_post_raw(h, 0);
}

static void bad_addr_straddles_end(struct vuf_dev *h)
{
    uint64_t size, base = gpa_base(h, &size);
    vuf_tx_desc_table(h)[0] = (struct vring_desc){.addr = base + size - 32, .len = 64};
    vuf_tx_post_raw(h, 0);
}

static void bad_huge_len(struct vuf_dev *h)
{
    uint64_t size, base = gpa_base(h, &size);
    (void)size;
    vuf_tx_desc_table(h)[0] = (struct vring_desc){.addr = base, .len = UINT32_MAX};
    vuf_tx_post_raw(h, 0);
}

static void bad_chain_loop(struct vuf_dev *h)
{
    uint64_t size, base = gpa_base(h, &size);
    (void)size;
    struct vring_desc *t = vuf_tx_desc_table(h);
    t[0] = (struct vring_desc){.addr = base, .len = 32, .flags = VRING_DESC_F_NEXT, .next = 1};
    t[1] = (struct vring_desc){.addr = base, .len = 32, .flags = VRING_DESC_F_NEXT, .next = 0};
    vuf_tx_post_raw(h, 0);
}

static void bad_self_loop(struct vuf_dev *h)
{
    uint64_t size, base = gpa_base(h, &size);
    (void)size;
    struct vring_desc *t = vuf_tx_desc_table(h);
    t[5] = (struct vring_desc){.addr = base, .len = 32, .flags = VRING_DESC_F_NEXT, .next = 5};
    vuf_tx_post_raw(h, 5);
}

static void bad_next_index(struct vuf_dev *h)
{
    uint64_t size, base = gpa_base(h, &size);
    (void)size;
    vuf_tx_desc_table(h)[0] = (struct vring_desc){
        .addr = base, .len = 32, .flags = VRING_DESC_F_NEXT, .next = vuf_queue_size(h)};
    vuf_tx_post_raw(h, 0);
}

static void bad_writable_tx(struct vuf_dev *h)
{
    uint64_t size, base = gpa_base(h, &size);
    (void)size;
    vuf_tx_desc_table(h)[0] =
        (struct vring_desc){.addr = base, .len = 64, .flags = VRING_DESC_F_WRITE};
    vuf_tx_post_raw(h, 0);
}

static void bad_indirect(struct vuf_dev *h)
{
    uint64_t size, base = gpa_base(h, &size);
    (void)size;
    vuf_tx_desc_table(h)[0] =
        (struct vring_desc){.addr = base, .len = 64, .flags = VRING_DESC_F_INDIRECT};
    vuf_tx_post_raw(h, 0);
}

static void bad_head(struct vuf_dev *h)
{
    vuf_tx_post_raw(h, (uint16_t)(vuf_queue_size(h) + 3));
}

static void bad_avail_jump(struct vuf_dev *h)
{
    vuf_tx_set_avail_idx(h, (uint16_t)(vuf_queue_size(h) + 10));
}

static const struct hostile_case hostile_cases[] = {
    {"buffer above guest memory", bad_addr_outside},
    {"buffer below guest memory", bad_addr_below},
    {"buffer straddling the end of guest memory", bad_addr_straddles_end},
    {"buffer of 4 GiB", bad_huge_len},
    {"chain 0 -> 1 -> 0", bad_chain_loop},
    {"descriptor chained to itself", bad_self_loop},
    {"next index past the table", bad_next_index},
    {"device-writable buffer on TX", bad_writable_tx},
    {"indirect descriptor not negotiated", bad_indirect},
    {"head index past the ring", bad_head},
    {"avail index jumps past the ring size", bad_avail_jump},
};

static void wait_queue_cut(struct fx *f, uint64_t errors, uint64_t bad)
{
    uint64_t deadline = vsw_now_ns() + ITEST_WAIT_MS * 1000000ull;
    for (;;) {
        json_t *s = itest_port_stats(&f->d, "h");
        uint64_t qe = itest_u64(s, "queue_errors"), bd = itest_drop(s, "rx_bad_desc");
        uint64_t rx = itest_u64(s, "rx_packets");
        json_decref(s);
        assert_int_equal(rx, 0); /* nothing H posted was ever forwarded */
        if (qe >= errors && bd >= bad) {
            assert_int_equal(qe, errors);
            assert_int_equal(bd, bad);
            return;
        }
        if (vsw_now_ns() > deadline)
            fail_msg("port h: queue_errors %llu rx_bad_desc %llu, want %llu and %llu",
                     (unsigned long long)qe, (unsigned long long)bd, (unsigned long long)errors,
                     (unsigned long long)bad);
        sleep_ms(20);
    }
}

static void test_hostile_descriptors(void **state)
{
    struct fx *f = *state;
    json_t *sa0 = itest_port_stats(&f->d, "a"), *sb0 = itest_port_stats(&f->d, "b");

    for (size_t i = 0; i < ARRAY_SIZE(hostile_cases); i++) {
        const struct hostile_case *c = &hostile_cases[i];
        print_message("hostile guest: %s\n", c->what);
        f->g[H] = itest_guest(&f->d, "h");
        c->fn(f->g[H]);
        wait_queue_cut(f, i + 1, i + 1);
        assert_true(itest_daemon_alive(&f->d));
        /* The broken queue stays cut off: H's port is still up, its garbage still there. */
        exchange(f, 20);
        wait_queue_cut(f, i + 1, i + 1);
        if (i + 1 < ARRAY_SIZE(hostile_cases)) {
            vuf_close(f->g[H]);
            f->g[H] = NULL;
            itest_wait_port_state(&f->d, "h", "listening");
        }
    }

    /* With the last hostile guest still attached, A and B exchange a lot. */
    exchange(f, EXCHANGE_N);
    assert_true(itest_daemon_alive(&f->d));

    const unsigned n = (unsigned)ARRAY_SIZE(hostile_cases) * 20 + EXCHANGE_N;
    json_t *sa = itest_port_stats(&f->d, "a"), *sb = itest_port_stats(&f->d, "b");
    assert_int_equal(itest_u64(sa, "rx_packets") - itest_u64(sa0, "rx_packets"), n);
    assert_int_equal(itest_u64(sa, "tx_packets") - itest_u64(sa0, "tx_packets"), n);
    assert_int_equal(itest_u64(sb, "rx_packets") - itest_u64(sb0, "rx_packets"), n);
    assert_int_equal(itest_u64(sb, "tx_packets") - itest_u64(sb0, "tx_packets"), n);
    json_t *const all[] = {sa, sb};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(itest_u64(all[i], "queue_errors"), 0);
        assert_int_equal(itest_u64(all[i], "msg_errors"), 0);
        assert_int_equal(json_object_size(json_object_get(all[i], "drops")), 0);
    }
    json_decref(sa);
    json_decref(sb);
    json_decref(sa0);
    json_decref(sb0);
}

/*
 * H points all its RX buffers outside its memory (the frontend keeps the RX descriptor table
 * at the start of guest memory). A flood from A reaches B; H's RX queue is cut off and
 * counted (tx_bad_desc); A and B go on.
 */
static void test_hostile_rx_descriptors(void **state)
{
    struct fx *f = *state;
    uint64_t base, size;
    void *host;

    f->g[H] = itest_guest(&f->d, "h");
    /* The set-up's broadcast found h not connected yet. */
    json_t *s = itest_port_stats(&f->d, "h");
    uint64_t not_ready = itest_drop(s, "tx_not_ready");
    json_decref(s);
    vuf_guest_mem(f->g[H], &base, &size, &host);
    struct vring_desc *rx = host;
    for (uint16_t i = 0; i < vuf_queue_size(f->g[H]); i++)
        __atomic_store_n(&rx[i].addr, base + size + 4096ull * i, __ATOMIC_RELEASE);

    for (uint32_t k = 0; k < 3; k++) {
        itest_send_frame(f->g[A], &bcast, &f->mac[A], ++f->seq, 200);
        itest_expect_frame(f->g[B], "B", &bcast, &f->mac[A], f->seq, 200);
    }
    s = itest_port_stats(&f->d, "h");
    assert_int_equal(itest_u64(s, "queue_errors"), 1);
    assert_int_equal(itest_u64(s, "tx_packets"), 0);
    assert_int_equal(itest_drop(s, "tx_bad_desc"), 1);
    /* The frames after the first found the queue stopped. */
    assert_int_equal(itest_drop(s, "tx_not_ready") - not_ready, 2);
    json_decref(s);
    assert_true(itest_daemon_alive(&f->d));
    exchange(f, 200);
}

/* H's memory file shrinks to nothing while a flood from A is on its way to it. */
static void test_truncated_guest_memory(void **state)
{
    struct fx *f = *state;
    f->g[H] = itest_guest(&f->d, "h");
    itest_send_frame(f->g[A], &bcast, &f->mac[A], ++f->seq, 200);
    itest_expect_frame(f->g[B], "B", &bcast, &f->mac[A], f->seq, 200);
    assert_int_equal(vuf_truncate_guest_mem(f->g[H]), 0);
    for (uint32_t k = 0; k < 3; k++) {
        itest_send_frame(f->g[A], &bcast, &f->mac[A], ++f->seq, 200);
        itest_expect_frame(f->g[B], "B", &bcast, &f->mac[A], f->seq, 200);
    }
    uint64_t deadline = vsw_now_ns() + ITEST_WAIT_MS * 1000000ull, qe;
    for (;;) {
        json_t *s = itest_port_stats(&f->d, "h");
        qe = itest_u64(s, "queue_errors");
        json_decref(s);
        if (qe >= 2 || vsw_now_ns() > deadline)
            break;
        sleep_ms(20);
    }
    assert_int_equal(qe, 2); /* its RX and TX queues, each once */
    assert_true(itest_daemon_alive(&f->d));
    exchange(f, 200);
}

/* ---- malformed vhost-user messages on port m ---- */

struct raw_msg {
    const char *what;
    struct vhost_user_hdr hdr;
    uint8_t payload[64];
    uint32_t payload_len; /* bytes actually sent after the header */
};

#define STATE(i, n)                                                                                \
    {                                                                                              \
        (uint8_t)(i), 0, 0, 0, (uint8_t)(n), (uint8_t)((n) >> 8), 0, 0                             \
    }

static const struct raw_msg raw_msgs[] = {
    {"unknown request 99", {99, VHOST_USER_VERSION, 0}, {0}, 0},
    {"header claiming a 1 MB payload",
     {VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, 1u << 20},
     {0},
     16},
    {"version 2 in the flags", {VHOST_USER_GET_FEATURES, 2, 0}, {0}, 0},
    {"unknown flag bits", {VHOST_USER_GET_FEATURES, VHOST_USER_VERSION | 0x100, 0}, {0}, 0},
    {"SET_FEATURES with a 4-byte payload",
     {VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, 4},
     {0},
     4},
    {"SET_FEATURES with bits never offered",
     {VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, 8},
     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
     8},
    {"SET_MEM_TABLE without an fd",
     {VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, 40},
     {1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}, /* one region at 0x100000, the rest 0 */
     40},
    {"SET_VRING_NUM for queue 200",
     {VHOST_USER_SET_VRING_NUM, VHOST_USER_VERSION, 8},
     STATE(200, 256),
     8},
    {"SET_VRING_NUM of 100 entries",
     {VHOST_USER_SET_VRING_NUM, VHOST_USER_VERSION, 8},
     STATE(0, 100),
     8},
    {"SET_VRING_ADDR before SET_VRING_NUM",
     {VHOST_USER_SET_VRING_ADDR, VHOST_USER_VERSION, 40},
     {0},
     40},
};

static int raw_connect(struct fx *f)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    itest_port_path(&f->d, "m", sa.sun_path, sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void raw_send(int fd, const void *buf, size_t len)
{
    assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* A valid GET_FEATURES gets its answer: the connection is live. */
static void raw_get_features(int fd)
{
    struct vhost_user_hdr h = {VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0};
    struct {
        struct vhost_user_hdr h;
        uint64_t features;
    } __attribute__((packed)) reply;
    raw_send(fd, &h, sizeof(h));
    assert_int_equal(recv(fd, &reply, sizeof(reply), MSG_WAITALL), (ssize_t)sizeof(reply));
    assert_int_equal(reply.h.request, VHOST_USER_GET_FEATURES);
    assert_int_equal(reply.h.flags, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
    assert_int_equal(reply.h.size, 8);
    assert_true(reply.features & (1ull << VIRTIO_F_VERSION_1));
}

/* The daemon closes the connection: EOF (or a reset, if our bytes were still unread). */
static void raw_expect_closed(int fd, const char *what)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char c;
    if (poll(&p, 1, ITEST_WAIT_MS) != 1)
        fail_msg("%s: the connection stayed open", what);
    ssize_t n = recv(fd, &c, 1, 0);
    if (!(n == 0 || (n < 0 && errno == ECONNRESET)))
        fail_msg("%s: expected the connection closed, recv returned %zd (%s)", what, n,
                 n < 0 ? strerror(errno) : "data");
}

/*
 * A frontend on m sends half a message and stalls. The daemon does not wait for it: H
 * connects and sets up meanwhile, A and B exchange frames, and two seconds later (longer
 * than any socket timeout) the stalled message is completed and answered on the same
 * connection.
 */
static void test_stalled_message(void **state)
{
    struct fx *f = *state;
    int fd = raw_connect(f);
    struct vhost_user_hdr h = {VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0};
    raw_send(fd, &h, 6);
    f->g[H] = itest_guest(&f->d, "h");
    itest_wait_port_state(&f->d, "h", "running");
    exchange(f, 100);
    sleep_ms(2000);
    struct {
        struct vhost_user_hdr h;
        uint64_t features;
    } __attribute__((packed)) reply;
    raw_send(fd, (const char *)&h + 6, sizeof(h) - 6);
    assert_int_equal(recv(fd, &reply, sizeof(reply), MSG_WAITALL), (ssize_t)sizeof(reply));
    assert_int_equal(reply.h.request, VHOST_USER_GET_FEATURES);
    assert_true(reply.features & (1ull << VIRTIO_F_VERSION_1));
    raw_get_features(fd);
    json_t *s = itest_port_stats(&f->d, "m");
    assert_int_equal(itest_u64(s, "msg_errors"), 0);
    json_decref(s);
    close(fd);
}

static void test_malformed_messages(void **state)
{
    struct fx *f = *state;

    for (size_t i = 0; i < ARRAY_SIZE(raw_msgs); i++) {
        const struct raw_msg *m = &raw_msgs[i];
        print_message("malformed message: %s\n", m->what);
        int fd = raw_connect(f);
        raw_get_features(fd);
        uint8_t buf[sizeof(m->hdr) + sizeof(m->payload)];
        memcpy(buf, &m->hdr, sizeof(m->hdr));
        memcpy(buf + sizeof(m->hdr), m->payload, m->payload_len);
        raw_send(fd, buf, sizeof(m->hdr) + m->payload_len);
        raw_expect_closed(fd, m->what);
        close(fd);
        itest_wait_port_state(&f->d, "m", "listening");
        json_t *s = itest_port_stats(&f->d, "m");
        assert_int_equal(itest_u64(s, "msg_errors"), i + 1);
        json_decref(s);
        assert_true(itest_daemon_alive(&f->d));
    }

    /* The port takes a valid frontend afterwards, and it works both ways. */
    f->g[M] = itest_guest(&f->d, "m");
    itest_send_frame(f->g[M], &bcast, &f->mac[M], ++f->seq, 64);
    itest_expect_frame(f->g[A], "A", &bcast, &f->mac[M], f->seq, 64);
    itest_expect_frame(f->g[B], "B", &bcast, &f->mac[M], f->seq, 64);
    itest_send_frame(f->g[A], &f->mac[M], &f->mac[A], ++f->seq, 100);
    itest_expect_frame(f->g[M], "M", &f->mac[M], &f->mac[A], f->seq, 100);
    itest_expect_none(f->g, names, 2);
    json_t *s = itest_port_stats(&f->d, "m");
    assert_int_equal(itest_u64(s, "msg_errors"), ARRAY_SIZE(raw_msgs));
    assert_int_equal(itest_u64(s, "rx_packets"), 1);
    assert_int_equal(itest_u64(s, "tx_packets"), 1);
    json_decref(s);

    /* The other ports never noticed. */
    const char *const others[] = {"a", "b"};
    for (size_t i = 0; i < 2; i++) {
        char st[32];
        itest_port_state(&f->d, others[i], st, sizeof(st));
        assert_string_equal(st, "running");
        s = itest_port_stats(&f->d, others[i]);
        assert_int_equal(itest_u64(s, "msg_errors"), 0);
        assert_int_equal(itest_u64(s, "queue_errors"), 0);
        json_decref(s);
    }
    exchange(f, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hostile_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_rx_descriptors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_guest_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stalled_message, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_messages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
