/*
 * Integration: L2 switching through the real vswitchd. Three simulated guests A, B, C on
 * bridge br0 (ports a, b, c), configured with vswitchctl: flooding of broadcast and unknown
 * unicast (never back to the sender), learning, unicast to a learned MAC reaching only its
 * port, the FDB and the counters as vswitchctl shows them, isolation of two bridges, port-del
 * (port, socket and FDB entries gone), and a MAC moving between ports.
 *
 * Every test has its own daemon and temporary run dir. Frames are checked byte for byte;
 * "nothing arrives" is watched for ITEST_NONE_MS at the end of each step sequence, so a
 * frame delivered where it must not be is still queued and caught then.
 */
#include "itest.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

enum { A, B, C, D, E, N_GUESTS };

struct fx {
    struct itest_daemon d;
    struct vuf_dev *g[N_GUESTS];
    struct vsw_mac mac[N_GUESTS];
    pid_t child;   /* a traffic generator process, killed at teardown if still running */
    long hp_added; /* huge pages this test reserved, given back at teardown */
};

static const char *const names[N_GUESTS] = {"A", "B", "C", "D", "E"};
static const char *const ports[N_GUESTS] = {"a", "b", "c", "d", "e"};
static const struct vsw_mac bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

static int setup_with(void **state, const char *const extra[])
{
    static struct fx fixture;
    struct fx *f = &fixture;
    memset(f, 0, sizeof(*f));
    *state = f;
    for (int i = 0; i < N_GUESTS; i++)
        f->mac[i] = itest_mac((uint8_t)(0x0a + i));
    itest_daemon_start(&f->d, extra);
    /* MTU 9000: some frames below are jumbo (a bridge's default MTU, 1500, would drop them). */
    itest_ctl_ok(&f->d, "br-add", "br0", "--mtu", "9000", NULL);
    for (int i = A; i <= C; i++) {
        itest_ctl_ok(&f->d, "port-add", "br0", ports[i], NULL);
        f->g[i] = itest_guest(&f->d, ports[i]);
    }
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

/* Two PMD threads: the three ports' queues are spread over both. */
static int setup_2pmds(void **state)
{
    static const char *const extra[] = {"--pmds", "2", NULL};
    return setup_with(state, extra);
}

static void hugepages_release(long added);

static int teardown(void **state)
{
    struct fx *f = *state;
    for (int i = 0; i < N_GUESTS; i++)
        vuf_close(f->g[i]);
    if (f->child > 0) {
        kill(f->child, SIGKILL);
        waitpid(f->child, NULL, 0);
    }
    int rc = itest_daemon_stop(&f->d);
    hugepages_release(f->hp_added);
    return rc;
}

static void none(struct fx *f, int first, int last)
{
    struct vuf_dev *gs[N_GUESTS];
    const char *ns[N_GUESTS];
    size_t n = 0;
    for (int i = first; i <= last; i++)
        if (f->g[i]) {
            gs[n] = f->g[i];
            ns[n++] = names[i];
        }
    itest_expect_none(gs, ns, n);
}

static void put(struct fx *f, int from, const struct vsw_mac *dst, uint32_t seq, size_t len)
{
    itest_send_frame(f->g[from], dst, &f->mac[from], seq, len);
}

/* `to` receives the frame `from` sent with put(). */
static void got(struct fx *f, int to, int from, const struct vsw_mac *dst, uint32_t seq, size_t len)
{
    itest_expect_frame(f->g[to], names[to], dst, &f->mac[from], seq, len);
}

static void assert_stats(struct fx *f, const char *port, uint64_t rx_pkts, uint64_t rx_bytes,
                         uint64_t tx_pkts, uint64_t tx_bytes)
{
    json_t *s = itest_port_stats(&f->d, port);
    assert_int_equal(itest_u64(s, "rx_packets"), rx_pkts);
    assert_int_equal(itest_u64(s, "rx_bytes"), rx_bytes);
    assert_int_equal(itest_u64(s, "tx_packets"), tx_pkts);
    assert_int_equal(itest_u64(s, "tx_bytes"), tx_bytes);
    assert_int_equal(itest_u64(s, "msg_errors"), 0);
    assert_int_equal(itest_u64(s, "queue_errors"), 0);
    assert_int_equal(json_object_size(json_object_get(s, "drops")), 0);
    json_decref(s);
}

static const char *mac_of(struct fx *f, int g)
{
    return itest_mac_str(&f->mac[g]);
}

/* Broadcast and unknown unicast flood to everyone but the sender; learned unicast does not. */
static void test_flood_learn_stats(void **state)
{
    struct fx *f = *state;
    const struct vsw_mac unknown = itest_mac(0x99);

    put(f, A, &bcast, 1, 60);
    got(f, B, A, &bcast, 1, 60);
    got(f, C, A, &bcast, 1, 60);

    put(f, A, &unknown, 2, 1514);
    got(f, B, A, &unknown, 2, 1514);
    got(f, C, A, &unknown, 2, 1514);

    /* A is known now: B's reply goes to A alone. */
    put(f, B, &f->mac[A], 3, 100);
    got(f, A, B, &f->mac[A], 3, 100);

    /* B is known now: A's unicast to B reaches only B, also when it spans RX buffers. */
    put(f, A, &f->mac[B], 4, 200);
    put(f, A, &f->mac[B], 5, 9000);
    got(f, B, A, &f->mac[B], 4, 200);
    got(f, B, A, &f->mac[B], 5, 9000);
    none(f, A, C);

    assert_string_equal(itest_fdb_port(&f->d, "br0", mac_of(f, A), 2), "a");
    assert_string_equal(itest_fdb_port(&f->d, "br0", mac_of(f, B), 2), "b");
    assert_null(itest_fdb_port(&f->d, "br0", itest_mac_str(&unknown), 2));
    assert_null(itest_fdb_port(&f->d, "br0", mac_of(f, C), 2));

    /* rx: from the guest into the switch; tx: from the switch to the guest. */
    assert_stats(f, "a", 4, 60 + 1514 + 200 + 9000, 1, 100);
    assert_stats(f, "b", 1, 100, 4, 60 + 1514 + 200 + 9000);
    assert_stats(f, "c", 0, 0, 2, 60 + 1514);

    json_t *all = itest_ctl_json(&f->d, "stats", NULL);
    assert_int_equal(json_array_size(json_object_get(all, "ports")), 3);
    json_t *pmds = json_object_get(all, "pmds"), *p;
    size_t i;
    uint64_t pkts = 0;
    assert_int_equal(json_array_size(pmds), 1);
    json_array_foreach(pmds, i, p)
    {
        pkts += itest_u64(p, "packets");
        assert_int_equal(itest_u64(p, "rxqs"), 3);
        assert_int_equal(json_object_size(json_object_get(p, "drops")), 0);
    }
    assert_int_equal(pkts, 5);
    json_decref(all);

    json_t *br = itest_br_info(&f->d, "br0");
    assert_int_equal(itest_u64(br, "ports"), 3);
    assert_int_equal(itest_u64(br, "fdb_entries"), 2);
    assert_int_equal(itest_u64(br, "learned"), 2);
    assert_int_equal(itest_u64(br, "moved"), 0);
    assert_int_equal(itest_u64(br, "full"), 0);
    json_decref(br);
}

/* Nothing crosses from one bridge to another: not floods, not unicast to a MAC learned there. */
static void test_bridges_isolated(void **state)
{
    struct fx *f = *state;
    itest_ctl_ok(&f->d, "br-add", "br1", NULL);
    for (int i = D; i <= E; i++) {
        itest_ctl_ok(&f->d, "port-add", "br1", ports[i], NULL);
        f->g[i] = itest_guest(&f->d, ports[i]);
    }

    put(f, A, &bcast, 1, 64);
    got(f, B, A, &bcast, 1, 64);
    got(f, C, A, &bcast, 1, 64);
    put(f, D, &bcast, 2, 64);
    got(f, E, D, &bcast, 2, 64);
    put(f, E, &bcast, 3, 64);
    got(f, D, E, &bcast, 3, 64);
    /* E is known on br1 only: on br0 its MAC is unknown unicast and floods br0. */
    put(f, A, &f->mac[E], 4, 64);
    got(f, B, A, &f->mac[E], 4, 64);
    got(f, C, A, &f->mac[E], 4, 64);
    none(f, A, E);

    assert_string_equal(itest_fdb_port(&f->d, "br0", mac_of(f, A), 1), "a");
    assert_null(itest_fdb_port(&f->d, "br0", mac_of(f, E), 1));
    assert_string_equal(itest_fdb_port(&f->d, "br1", mac_of(f, D), 2), "d");
    assert_string_equal(itest_fdb_port(&f->d, "br1", mac_of(f, E), 2), "e");
    assert_stats(f, "d", 1, 64, 1, 64);
    assert_stats(f, "e", 1, 64, 1, 64);
    assert_stats(f, "a", 2, 128, 0, 0);
}

/* port-del removes the port, its socket and its FDB entries; the name can be added again. */
static void test_port_del(void **state)
{
    struct fx *f = *state;
    char path[160];
    struct stat st;
    struct itest_run r;

    put(f, A, &bcast, 1, 64);
    got(f, B, A, &bcast, 1, 64);
    got(f, C, A, &bcast, 1, 64);
    put(f, B, &f->mac[A], 2, 64);
    got(f, A, B, &f->mac[A], 2, 64);
    assert_string_equal(itest_fdb_port(&f->d, "br0", mac_of(f, B), 2), "b");

    itest_ctl_ok(&f->d, "port-del", "b", NULL);
    assert_null(itest_fdb_port(&f->d, "br0", mac_of(f, B), 1));
    assert_string_equal(itest_fdb_port(&f->d, "br0", mac_of(f, A), 1), "a");
    itest_port_path(&f->d, "b", path, sizeof(path));
    assert_int_equal(stat(path, &st), -1);
    assert_int_equal(errno, ENOENT);
    char state_b[32];
    itest_port_state(&f->d, "b", state_b, sizeof(state_b));
    assert_string_equal(state_b, "");
    assert_int_equal(itest_ctl(&f->d, &r, "stats", "b", NULL), 1);
    assert_non_null(strstr(r.err, "ENOENT"));
    itest_run_free(&r);
    json_t *br = itest_br_info(&f->d, "br0");
    assert_int_equal(itest_u64(br, "ports"), 2);
    json_decref(br);

    /* B's MAC is unknown again: A's frame to it floods to C, the only other port. */
    vuf_close(f->g[B]);
    f->g[B] = NULL;
    put(f, A, &f->mac[B], 3, 64);
    got(f, C, A, &f->mac[B], 3, 64);
    none(f, A, C);

    /* The same name again: a fresh port, a fresh socket, no stale entry. */
    itest_ctl_ok(&f->d, "port-add", "br0", "b", NULL);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    f->g[B] = itest_guest(&f->d, "b");
    assert_stats(f, "b", 0, 0, 0, 0);
    put(f, A, &f->mac[B], 4, 64);
    got(f, B, A, &f->mac[B], 4, 64);
    got(f, C, A, &f->mac[B], 4, 64);
    none(f, A, C);
}

/* The same source MAC seen on another port moves its entry there (and back). */
static void test_mac_move(void **state)
{
    struct fx *f = *state;
    const struct vsw_mac *ma = &f->mac[A];

    put(f, A, &bcast, 1, 64);
    got(f, B, A, &bcast, 1, 64);
    got(f, C, A, &bcast, 1, 64);
    assert_string_equal(itest_fdb_port(&f->d, "br0", mac_of(f, A), 1), "a");

    /* C now sends with A's MAC as its source. */
    itest_send_frame(f->g[C], &bcast, ma, 2, 64);
    itest_expect_frame(f->g[A], "A", &bcast, ma, 2, 64);
    itest_expect_frame(f->g[B], "B", &bcast, ma, 2, 64);
    assert_string_equal(itest_fdb_port(&f->d, "br0", mac_of(f, A), 1), "c");
    json_t *br = itest_br_info(&f->d, "br0");
    assert_int_equal(itest_u64(br, "moved"), 1);
    json_decref(br);

    put(f, B, ma, 3, 64);
    itest_expect_frame(f->g[C], "C", ma, &f->mac[B], 3, 64);
    none(f, A, C);

    /* And back. */
    put(f, A, &bcast, 4, 64);
    got(f, B, A, &bcast, 4, 64);
    got(f, C, A, &bcast, 4, 64);
    assert_string_equal(itest_fdb_port(&f->d, "br0", mac_of(f, A), 2), "a");
    br = itest_br_info(&f->d, "br0");
    assert_int_equal(itest_u64(br, "moved"), 2);
    json_decref(br);
    put(f, B, ma, 5, 64);
    got(f, A, B, ma, 5, 64);
    none(f, A, C);
}

/* Receive and discard whatever is queued; returns the count. */
static unsigned drain(struct vuf_dev *g)
{
    static uint8_t buf[VSW_MAX_FRAME];
    unsigned n = 0;
    int rc;
    while ((rc = vuf_recv(g, buf, sizeof(buf))) != -EAGAIN) {
        assert_true(rc >= 0);
        n++;
    }
    return n;
}

/*
 * A child process floods br0 from port a (broadcasts of 1514 bytes, as fast as its TX ring
 * allows, CHURN_MS long) while the test deletes and re-adds port c, reconnects its guest,
 * swaps the FDB table (br-set --max-macs) and changes the age under that traffic. The
 * daemon must survive it and exit cleanly (the sanitizers watch every access), and the
 * bridge must still forward afterwards. Runs with two PMDs, so a flood from one PMD meets
 * the other PMD's enqueues, and the RCU grace periods wait for both.
 */
#define CHURN_MS     3000
#define CHURN_ROUNDS 12

static void flood_child(const char *path)
{
    uint8_t frame[1514];
    const struct vsw_mac src = itest_mac(0x7a);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct vuf_dev *g = vuf_connect(path, NULL);
    if (!g)
        _exit(2);
    uint64_t start = vsw_now_ns(), end = start + CHURN_MS * 1000000ull, last = start, gap = 0;
    unsigned sent = 0;
    for (uint32_t seq = 0; vsw_now_ns() < end;) {
        itest_frame(frame, sizeof(frame), &bcast, &src, seq);
        if (vuf_send(g, frame, sizeof(frame)) == 0) {
            uint64_t now = vsw_now_ns();
            gap = MAX(gap, now - last);
            last = now;
            sent++;
            seq++;
        } else {
            nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
        }
    }
    vuf_close(g);
    /* What a failure needs to be explained: the rate, and the longest wait for a TX slot. */
    fprintf(stderr, "flood child: %u frames in %u ms, longest wait for a TX slot %.1f ms\n", sent,
            CHURN_MS, (double)gap / 1e6);
    _exit(sent >= 1000 ? 0 : 3);
}

static void test_port_churn_under_traffic(void **state)
{
    struct fx *f = *state;
    char path[160];

    vuf_close(f->g[A]);
    f->g[A] = NULL;
    itest_wait_port_state(&f->d, "a", "listening");
    itest_port_path(&f->d, "a", path, sizeof(path));
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0)
        flood_child(path);
    f->child = child;

    unsigned got_b = 0, rounds = 0;
    uint64_t end = vsw_now_ns() + (CHURN_MS - 500) * 1000000ull;
    while (rounds < CHURN_ROUNDS || vsw_now_ns() < end) {
        char max[16], age[16];
        snprintf(max, sizeof(max), "%u", 1000 + rounds);
        snprintf(age, sizeof(age), "%u", 100 + rounds);
        itest_ctl_ok(&f->d, "port-del", "c", NULL);
        vuf_close(f->g[C]);
        f->g[C] = NULL;
        got_b += drain(f->g[B]);
        /* B floods too, from the other PMD. */
        for (uint32_t k = 0; k < 32; k++) {
            static uint8_t fr[1514];
            itest_frame(fr, sizeof(fr), &bcast, &f->mac[B], 1000 * rounds + k);
            if (vuf_send(f->g[B], fr, sizeof(fr)) < 0)
                break;
        }
        itest_ctl_ok(&f->d, "br-set", "br0", "--max-macs", max, NULL);
        itest_ctl_ok(&f->d, "port-add", "br0", "c", NULL);
        f->g[C] = itest_guest(&f->d, "c");
        json_decref(itest_ctl_json(&f->d, "fdb-show", "br0", NULL));
        itest_ctl_ok(&f->d, "br-set", "br0", "--age", age, NULL);
        got_b += drain(f->g[B]);
        drain(f->g[C]);
        assert_true(itest_daemon_alive(&f->d));
        rounds++;
    }

    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    f->child = 0;
    print_message("%u rounds of port churn, B received %u flooded frames meanwhile\n", rounds,
                  got_b);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(itest_daemon_alive(&f->d));
    assert_true(got_b > 0);

    /* Still a working bridge: a fresh guest on a, unicast to B once B is known. B's last
     * floods must be through first, or A could see them. */
    uint64_t deadline = vsw_now_ns() + ITEST_WAIT_MS * 1000000ull;
    while (vuf_tx_pending(f->g[B]) > 0) {
        assert_true(vsw_now_ns() < deadline);
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
    }
    f->g[A] = itest_guest(&f->d, "a");
    drain(f->g[B]);
    drain(f->g[C]);
    put(f, B, &bcast, 1, 64);
    got(f, A, B, &bcast, 1, 64);
    got(f, C, B, &bcast, 1, 64);
    put(f, A, &f->mac[B], 2, 64);
    got(f, B, A, &f->mac[B], 2, 64);
    none(f, A, C);
    json_t *br = itest_br_info(&f->d, "br0");
    assert_int_equal(itest_u64(br, "age"), 100 + rounds - 1);
    assert_int_equal(itest_u64(br, "max_macs"), 1000 + rounds - 1);
    assert_int_equal(itest_u64(br, "ports"), 3);
    json_decref(br);
}

static long nr_hugepages(long set)
{
    FILE *f = fopen("/proc/sys/vm/nr_hugepages", set < 0 ? "r" : "w");
    long v = -1;
    if (!f)
        return -1;
    if (set < 0 ? fscanf(f, "%ld", &v) != 1 : fprintf(f, "%ld\n", set) < 0)
        v = -1;
    if (fclose(f) != 0)
        return -1;
    return set < 0 ? v : set;
}

/*
 * Have at least `need` free 2 MiB pages: reserves more when short. Returns how many it added
 * (for hugepages_release), or -1 when it cannot (not root, no memory; nothing left changed).
 */
static long hugepages_reserve(long need)
{
    long free_pages = -1;
    char line[128];
    FILE *f = fopen("/proc/meminfo", "r");
    while (f && fgets(line, sizeof(line), f))
        sscanf(line, "HugePages_Free: %ld", &free_pages);
    if (f)
        fclose(f);
    if (free_pages < 0)
        return -1;
    if (free_pages >= need)
        return 0;
    long before = nr_hugepages(-1), want = before + need - free_pages;
    if (before < 0 || nr_hugepages(want) < 0 || nr_hugepages(-1) < want) {
        if (before >= 0)
            nr_hugepages(before);
        return -1;
    }
    return want - before;
}

static void hugepages_release(long added)
{
    long now = nr_hugepages(-1);
    if (added > 0 && now >= added)
        nr_hugepages(now - added);
}

/*
 * Guests whose memory is on 2 MiB huge pages (QEMU with hugetlbfs or memfd hugetlb=on, the
 * usual vhost-user set-up): the switch maps their tables and forwards between them and a
 * guest on small pages, every size up to jumbo, byte for byte. Reserves the pages it needs
 * and gives them back; skipped (and said so) where none can be reserved.
 */
static void test_hugepage_guests(void **state)
{
    struct fx *f = *state;
    f->hp_added = hugepages_reserve(4);
    if (f->hp_added < 0) {
        print_message("SKIP: cannot reserve 2 MiB huge pages here\n");
        skip();
    }
    itest_ctl_ok(&f->d, "port-add", "br0", ports[D], NULL);
    itest_ctl_ok(&f->d, "port-add", "br0", ports[E], NULL);
    struct vuf_config cfg = {.huge = true};
    f->g[D] = itest_guest_cfg(&f->d, ports[D], &cfg);
    f->g[E] = itest_guest_cfg(&f->d, ports[E], &cfg);

    static const size_t sizes[] = {60, 64, 1514, 4000, 9000};
    uint32_t seq = 0;
    put(f, D, &bcast, seq, 64); /* D learnt; flooded to A, B, C and E */
    for (int g = A; g <= C; g++)
        got(f, g, D, &bcast, seq, 64);
    got(f, E, D, &bcast, seq++, 64);
    put(f, A, &bcast, seq, 64); /* A learnt */
    got(f, B, A, &bcast, seq, 64);
    got(f, C, A, &bcast, seq, 64);
    got(f, D, A, &bcast, seq, 64);
    got(f, E, A, &bcast, seq++, 64);
    put(f, E, &bcast, seq, 64); /* E learnt */
    for (int g = A; g <= D; g++)
        got(f, g, E, &bcast, seq, 64);
    seq++;
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++, seq++) {
        put(f, D, &f->mac[E], seq, sizes[i]); /* huge to huge */
        got(f, E, D, &f->mac[E], seq, sizes[i]);
        put(f, E, &f->mac[A], ++seq, sizes[i]); /* huge to small */
        got(f, A, E, &f->mac[A], seq, sizes[i]);
        put(f, A, &f->mac[D], ++seq, sizes[i]); /* small to huge */
        got(f, D, A, &f->mac[D], seq, sizes[i]);
    }
    none(f, A, E);
    vuf_close(f->g[D]);
    vuf_close(f->g[E]);
    f->g[D] = f->g[E] = NULL;
}

/* The PMD's idle window (stats: idle_poll_us) and its sleeps. */
static void pmd_idle(struct fx *f, uint64_t *window_us, uint64_t *sleeps)
{
    json_t *all = itest_ctl_json(&f->d, "stats", NULL);
    json_t *p = json_array_get(json_object_get(all, "pmds"), 0);
    assert_non_null(p);
    *window_us = itest_u64(p, "idle_poll_us");
    *sleeps = itest_u64(p, "sleeps");
    json_decref(all);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, us % 1000000 * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/*
 * Adaptive idle polling: frames ~300 us apart (more on a loaded machine, but well under the
 * 1000 us maximum) find the PMD asleep at first (window 200 us); each early kick doubles the
 * window until it spans the gap (400 us, then 800), and the PMD stops sleeping between frames.
 * Frames 30 ms apart (longer than the 1000 us maximum) halve it back to 200 us. Every frame is
 * delivered throughout.
 */
static void test_adaptive_idle(void **state)
{
    struct fx *f = *state;
    uint64_t window, sleeps, sleeps0;
    uint32_t seq = 0;

    put(f, B, &bcast, seq, 64); /* learn B */
    got(f, A, B, &bcast, seq, 64);
    got(f, C, B, &bcast, seq++, 64);
    sleep_us(50000);
    pmd_idle(f, &window, &sleeps0);
    assert_int_equal(window, 200);

    for (int i = 0; i < 40; i++, seq++) {
        put(f, A, &f->mac[B], seq, 64);
        got(f, B, A, &f->mac[B], seq, 64);
        sleep_us(300);
    }
    pmd_idle(f, &window, &sleeps);
    print_message("300 us gaps: window %" PRIu64 " us, %" PRIu64 " sleeps for 40 frames\n", window,
                  sleeps - sleeps0);
    assert_true(window >= 400 && window <= 1000);
    /* From then on it polls through the gaps: far fewer sleeps than frames (a scheduling
     * hiccup of a loaded machine may still cost one now and then). */
    sleeps0 = sleeps;
    for (int i = 0; i < 40; i++, seq++) {
        put(f, A, &f->mac[B], seq, 64);
        got(f, B, A, &f->mac[B], seq, 64);
        sleep_us(300);
    }
    pmd_idle(f, &window, &sleeps);
    print_message("then: %" PRIu64 " sleeps for 40 frames\n", sleeps - sleeps0);
    assert_true(sleeps - sleeps0 < 20);

    for (int i = 0; i < 6; i++, seq++) {
        sleep_us(30000);
        put(f, A, &f->mac[B], seq, 64);
        got(f, B, A, &f->mac[B], seq, 64);
    }
    pmd_idle(f, &window, &sleeps);
    assert_int_equal(window, 200);
    none(f, A, C);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flood_learn_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bridges_isolated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mac_move, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_churn_under_traffic, setup_2pmds, teardown),
        cmocka_unit_test_setup_teardown(test_adaptive_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hugepage_guests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
