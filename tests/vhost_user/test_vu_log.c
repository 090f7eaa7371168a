/*
 * Unit tests of the vhost-user additions for live migration and the network protocol
 * features: dirty-page logging (src/vhost_user/vu_log.c with its hooks in the split and
 * packed datapaths and SET_LOG_BASE / SET_LOG_FD / SET_VRING_ADDR's log flag in vu_msg.c),
 * IN_ORDER (used entries in avail order even when a chain is dropped), NET_SET_MTU and
 * SEND_RARP. Entered through vu_dev_process_msg() and the burst functions, on the fake guest
 * of vu_test_util.h (no sockets, no threads).
 *
 * The log checks are exact: after each operation the set of dirty pages must equal the pages
 * the switch wrote (buffer bytes, used entries, used index), no more and no fewer, and the
 * bytes of the log file outside the log must stay untouched.
 */
#include "vu_test_util.h"

#include <pthread.h>

#define RXQ 0
#define TXQ 1

#define LOG_OFF  0x1000ull /* the log starts this far into its memfd */
#define LOG_FILE 0x3000ull

static struct pkt pkts[64];

struct lfx {
    struct vut *v;
    int log_fd;
    uint8_t *log_file; /* our mapping of the whole log memfd */
    struct vsw_mac rarp[4];
    unsigned n_rarp;
};

static void rarp_hook(void *opaque, const struct vsw_mac *mac)
{
    struct vut *v = opaque;
    struct lfx *f = (struct lfx *)v->tcase;
    if (f->n_rarp < ARRAY_SIZE(f->rarp))
        f->rarp[f->n_rarp] = *mac;
    f->n_rarp++;
}

/* A log memfd as QEMU makes it: its size sealed. */
static int sealed_memfd(size_t len)
{
    int fd = memfd_create("vut-log", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)len), 0);
    assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), 0);
    return fd;
}

static int setup(void **state)
{
    struct lfx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->v = vut_new();
    f->v->tcase = f;
    f->v->ops.send_rarp = rarp_hook;
    f->log_fd = sealed_memfd(LOG_FILE);
    f->log_file = mmap(NULL, LOG_FILE, PROT_READ | PROT_WRITE, MAP_SHARED, f->log_fd, 0);
    assert_true(f->log_file != MAP_FAILED);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct lfx *f = *state;
    munmap(f->log_file, LOG_FILE);
    close(f->log_fd);
    vut_free(f->v);
    free(f);
    return 0;
}

#define PF_LOG (VUT_PF_ALL | 1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD)
#define F_LOG  (VUT_F_ALL | 1ull << VHOST_F_LOG_ALL)

/* One message; returns its rc and, when there is one, the u64 of the reply in *ack. */
static int send_msg(struct vut *v, uint32_t req, uint32_t flags, const void *payload, uint32_t size,
                    int fd, bool *replied, uint64_t *ack)
{
    struct vhost_user_msg m, r;
    bool out = false;
    int fds[1] = {fd};
    vut_msg_init(&m, req, size);
    m.hdr.flags |= flags;
    if (size)
        memcpy(&m.payload, payload, size);
    int rc = vut_process(v, &m, fds, fd >= 0, 0, &r, &out);
    if (replied)
        *replied = out;
    if (out && ack) {
        assert_int_equal(r.hdr.size, 8);
        assert_int_equal(r.hdr.request, req);
        *ack = r.payload.u64;
    }
    return rc;
}

/* SET_LOG_BASE with a dup of our log memfd; must succeed with a zero u64 reply. */
static void set_log_base(struct lfx *f, uint64_t size)
{
    struct vhost_user_log l = {.mmap_size = size, .mmap_offset = LOG_OFF};
    bool replied = false;
    uint64_t ack = 1;
    assert_int_equal(
        send_msg(f->v, VHOST_USER_SET_LOG_BASE, 0, &l, sizeof(l), dup(f->log_fd), &replied, &ack),
        0);
    assert_true(replied);
    assert_int_equal(ack, 0);
}

/* SET_VRING_ADDR of queue q again, with the log flag and the used ring's guest address. */
static void set_addr_logged(struct vut *v, uint32_t q)
{
    struct vhost_vring_addr a = vut_ring_addr(q);
    a.flags = 1u << VHOST_VRING_F_LOG;
    a.log_guest_addr = VUT_USED_GPA(q);
    vut_ok(v, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, 0, NULL);
    assert_true(vu_dev_queue_ready(v->dev, (uint16_t)q));
}

/* Migration starts: log base, logged rings, then LOG_ALL (QEMU's order). */
static void start_logging(struct lfx *f, uint64_t features, uint64_t log_size)
{
    set_log_base(f, log_size);
    set_addr_logged(f->v, RXQ);
    set_addr_logged(f->v, TXQ);
    vut_u64(f->v, VHOST_USER_SET_FEATURES, features | 1ull << VHOST_F_LOG_ALL);
    assert_true(vu_dev_queue_ready(f->v->dev, RXQ));
    assert_true(vu_dev_queue_ready(f->v->dev, TXQ));
}

static void log_clear(struct lfx *f)
{
    memset(f->log_file, 0, LOG_FILE);
}

/* The dirty pages are exactly want[0..n) (page numbers), and nothing outside the log moved. */
static void log_expect(struct lfx *f, uint64_t log_size, const uint64_t *want, size_t n)
{
    const uint8_t *bits = f->log_file + LOG_OFF;
    for (uint64_t page = 0; page < log_size * 8; page++) {
        bool set = bits[page / 8] & (1u << (page % 8)), wanted = false;
        for (size_t i = 0; i < n; i++)
            wanted |= want[i] == page;
        if (set != wanted)
            fail_msg("page %#llx (gpa %#llx) is %s", (unsigned long long)page,
                     (unsigned long long)(page * VHOST_LOG_PAGE), set ? "dirty" : "clean");
    }
    for (uint64_t i = 0; i < LOG_FILE; i++)
        if ((i < LOG_OFF || i >= LOG_OFF + log_size) && f->log_file[i])
            fail_msg("log file byte %#llx outside the log was written", (unsigned long long)i);
}

#define PAGE(gpa) ((gpa) / VHOST_LOG_PAGE)

/* An RX chain of two buffers: 100 bytes at 0x10000, then 4096 bytes at 0x23fe0 (the second
 * crosses into page 0x24, the frame's end does not reach page 0x25). */
static uint16_t post_rx_chain(struct vut *v)
{
    struct vring_desc *d = vut_desc(v, RXQ);
    uint16_t h = vut_alloc_desc(v, RXQ, 2);
    vut_set_desc(&d[h], 0x10000, 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (uint16_t)(h + 1));
    vut_set_desc(&d[h + 1], 0x23fe0, 4096, VRING_DESC_F_WRITE, 0);
    vut_post(v, RXQ, h);
    return h;
}

static uint16_t post_tx_frame(struct vut *v, uint32_t frame_len, uint8_t seed)
{
    static uint8_t stream[2048];
    uint32_t len = vut_make_stream(stream, 12, frame_len, seed);
    uint64_t gpa = vut_alloc_buf(v, len);
    vut_guest_write(v, gpa, stream, len);
    uint16_t h = vut_alloc_desc(v, TXQ, 1);
    vut_set_desc(&vut_desc(v, TXQ)[h], gpa, len, 0, 0);
    vut_post(v, TXQ, h);
    return h;
}

static void test_split_log_exact(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    static uint8_t frame[150];
    vut_startup(v, VUT_F_ALL, PF_LOG, 2);
    start_logging(f, VUT_F_ALL, 64);
    log_clear(f);

    /* RX: 12 + 150 bytes land as 100 in the first buffer and 62 in the second. */
    post_rx_chain(v);
    memset(frame, 0x5a, sizeof(frame));
    struct pkt *p = &pkts[40];
    pkt_from_buffer(p, frame, sizeof(frame));
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    const uint64_t rx_pages[] = {PAGE(VUT_USED_GPA(RXQ)), PAGE(0x10000), PAGE(0x23fe0),
                                 PAGE(0x24000)};
    log_expect(f, 64, rx_pages, ARRAY_SIZE(rx_pages));

    /* TX: the frame's buffer is only read; the used entry and index are written. */
    log_clear(f);
    post_tx_frame(v, 60, 1);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    const uint64_t tx_pages[] = {PAGE(VUT_USED_GPA(TXQ))};
    log_expect(f, 64, tx_pages, ARRAY_SIZE(tx_pages));
    assert_int_equal(vut_stats(v).log_errors, 0);

    /* Migration over: LOG_ALL off, nothing is logged any more. */
    vut_u64(v, VHOST_USER_SET_FEATURES, VUT_F_ALL);
    log_clear(f);
    post_rx_chain(v);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    log_expect(f, 64, NULL, 0);
    assert_true(vut_canaries_ok(v));
}

/* A log without LOG_ALL is not used; LOG_ALL without a log logs nothing (and does not crash). */
static void test_split_log_needs_both(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    static uint8_t frame[60];
    struct pkt *p = &pkts[40];
    pkt_from_buffer(p, frame, sizeof(frame));
    vut_startup(v, F_LOG, PF_LOG, 2); /* LOG_ALL from the start, no log yet */
    post_rx_chain(v);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    vut_u64(v, VHOST_USER_SET_FEATURES, VUT_F_ALL);
    set_log_base(f, 64);
    set_addr_logged(v, RXQ);
    log_clear(f);
    post_rx_chain(v);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    log_expect(f, 64, NULL, 0);
}

/* A log too small for the guest's memory: those pages are counted, never written. */
static void test_split_log_too_small(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    static uint8_t frame[150];
    struct pkt *p = &pkts[40];
    pkt_from_buffer(p, frame, sizeof(frame));
    vut_startup(v, VUT_F_ALL, PF_LOG, 2);
    start_logging(f, VUT_F_ALL, 1); /* 8 pages: the rings, not the buffers at 0x10000 */
    log_clear(f);
    post_rx_chain(v);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    const uint64_t pages[] = {PAGE(VUT_USED_GPA(RXQ))};
    log_expect(f, 1, pages, ARRAY_SIZE(pages));
    assert_int_equal(vut_stats(v).log_errors, 2); /* the two buffers (pages 0x10, 0x23) */
}

/* The buffers of an indirect RX table are logged too. */
static void test_split_log_indirect(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    static uint8_t frame[5000];
    struct pkt *p = &pkts[40];
    pkt_from_buffer(p, frame, sizeof(frame));
    vut_startup(v, VUT_F_ALL, PF_LOG, 2);
    start_logging(f, VUT_F_ALL, 64);
    log_clear(f);
    uint64_t ind = vut_alloc_ind(v, 2);
    struct vring_desc t[2];
    vut_set_desc(&t[0], 0x30000, 3000, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
    vut_set_desc(&t[1], 0x40000, 8192, VRING_DESC_F_WRITE, 0);
    vut_guest_write(v, ind, t, sizeof(t));
    uint16_t h = vut_alloc_desc(v, RXQ, 1);
    vut_set_desc(&vut_desc(v, RXQ)[h], ind, sizeof(t), VRING_DESC_F_INDIRECT, 0);
    vut_post(v, RXQ, h);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    /* 12 + 5000 bytes: 3000 at 0x30000 (page 0x30), 2012 at 0x40000 (page 0x40 only) */
    const uint64_t pages[] = {PAGE(VUT_USED_GPA(RXQ)), 0x30, 0x40};
    log_expect(f, 64, pages, ARRAY_SIZE(pages));
}

/*
 * A guest that takes a buffer back the moment the used index moves and reuses its descriptor
 * for another buffer (Linux refills its RX ring this way). The pages the switch wrote must be
 * dirty by the time the index is visible, and stay the ones logged: the switch logs before it
 * publishes, from the addresses it wrote through, never by reading the descriptors again.
 * (The migrated QEMU guest of the qemu-migrate suite once panicked on a page missed so.)
 */
#define RECYCLED_GPA 0x90000ull

struct recycler {
    struct lfx *f;
    uint16_t d0;      /* first descriptor of the buffer being posted */
    uint64_t want[2]; /* its pages, which must be dirty once the index moves */
    unsigned nwant;
    uint16_t seen; /* used index the guest has handled (release) */
    bool stop;
    unsigned missed;
};

static bool page_dirty(const struct lfx *f, uint64_t page)
{
    return __atomic_load_n(&f->log_file[LOG_OFF + page / 8], __ATOMIC_RELAXED) & (1u << (page % 8));
}

static void *recycling_guest(void *arg)
{
    struct recycler *r = arg;
    struct vut *v = r->f->v;
    struct vring_desc *d = vut_desc(v, RXQ);
    uint16_t seen = 0;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        uint16_t idx = vut_used_idx(v, RXQ);
        if (idx == seen) {
            __builtin_ia32_pause();
            continue;
        }
        for (unsigned i = 0; i < r->nwant; i++)
            if (!page_dirty(r->f, r->want[i]))
                r->missed++;
        __atomic_store_n(&d[r->d0].addr, RECYCLED_GPA, __ATOMIC_RELAXED);
        __atomic_store_n(&d[r->d0 + 1].addr, RECYCLED_GPA, __ATOMIC_RELAXED);
        seen = idx;
        __atomic_store_n(&r->seen, seen, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void test_split_log_before_publish(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    static uint8_t frame[1000];
    struct pkt *p = &pkts[40];
    vut_startup(v, VUT_F_ALL, PF_LOG, 2);
    start_logging(f, VUT_F_ALL, 64);
    struct vring_desc *d = vut_desc(v, RXQ);
    struct recycler r = {.f = f, .d0 = vut_alloc_desc(v, RXQ, 2)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, recycling_guest, &r), 0);
    for (unsigned i = 0; i < 4000; i++) {
        bool simple = i % 2 == 0; /* the one-descriptor fast path, then the general path */
        log_clear(f);
        if (simple) {
            vut_set_desc(&d[r.d0], 0x60000, 2048, VRING_DESC_F_WRITE, 0);
            r.want[0] = PAGE(0x60000);
            r.nwant = 1;
            pkt_from_buffer(p, frame, 200);
        } else {
            vut_set_desc(&d[r.d0], 0x70000, 100, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
                         (uint16_t)(r.d0 + 1));
            vut_set_desc(&d[r.d0 + 1], 0x80000, 4096, VRING_DESC_F_WRITE, 0);
            r.want[0] = PAGE(0x70000);
            r.want[1] = PAGE(0x80000);
            r.nwant = 2;
            pkt_from_buffer(p, frame, sizeof(frame));
        }
        vut_post(v, RXQ, r.d0);
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
        uint16_t want_idx = (uint16_t)(i + 1);
        while (__atomic_load_n(&r.seen, __ATOMIC_ACQUIRE) != want_idx)
            __builtin_ia32_pause();
        const uint64_t pages[] = {PAGE(VUT_USED_GPA(RXQ)), r.want[0], r.want[1]};
        log_expect(f, 64, pages, 1 + r.nwant);
    }
    __atomic_store_n(&r.stop, true, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    assert_int_equal(r.missed, 0);
}

static void test_packed_log_exact(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    static uint8_t frame[150];
    uint64_t feat = VUT_F_ALL | 1ull << VIRTIO_F_RING_PACKED;
    vut_startup(v, feat, PF_LOG, 2);
    start_logging(f, feat, 64);
    log_clear(f);

    /* One RX buffer of two descriptors in slots 0 and 1 (lap 1: AVAIL set, USED clear). */
    struct vring_packed_desc *d = vut_g2h(v, VUT_DESC_GPA(RXQ), 16 * VUT_QSIZE);
    d[1] = (struct vring_packed_desc){0x23fe0, 4096, 7,
                                      VRING_PACKED_DESC_F_AVAIL | VRING_DESC_F_WRITE};
    d[0] = (struct vring_packed_desc){
        0x10000, 100, 7, VRING_PACKED_DESC_F_AVAIL | VRING_DESC_F_WRITE | VRING_DESC_F_NEXT};
    struct pkt *p = &pkts[40];
    pkt_from_buffer(p, frame, sizeof(frame));
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    assert_int_equal(d[0].id, 7);
    assert_int_equal(d[0].len, 162);
    /* the used descriptor went into the descriptor ring (page 0), the bytes into 0x10, 0x23-0x24 */
    const uint64_t pages[] = {PAGE(VUT_DESC_GPA(RXQ)), 0x10, 0x23, 0x24};
    log_expect(f, 64, pages, ARRAY_SIZE(pages));
    assert_int_equal(vut_stats(v).log_errors, 0);
}

/*
 * Single-descriptor RX buffers (the enqueue fast path), two frames in one burst: each buffer
 * straddles a page boundary, so exactly the pages the header and frame touched are marked.
 */
static void test_packed_log_simple(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    static uint8_t frame[150];
    uint64_t feat = VUT_F_ALL | 1ull << VIRTIO_F_RING_PACKED;
    vut_startup(v, feat, PF_LOG, 2);
    start_logging(f, feat, 64);
    log_clear(f);

    const uint16_t fl = VRING_PACKED_DESC_F_AVAIL | VRING_DESC_F_WRITE;
    struct vring_packed_desc *d = vut_g2h(v, VUT_DESC_GPA(RXQ), 16 * VUT_QSIZE);
    d[1] = (struct vring_packed_desc){0x40fa0, 2048, 9, fl};
    d[0] = (struct vring_packed_desc){0x31fe0, 2048, 8, fl};
    struct pkt *ps[2] = {&pkts[40], &pkts[41]};
    pkt_from_buffer(ps[0], frame, sizeof(frame));
    pkt_from_buffer(ps[1], frame, sizeof(frame));
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, ps, 2), 2);
    assert_int_equal(d[0].id, 8);
    assert_int_equal(d[0].len, 162);
    assert_int_equal(d[1].id, 9);
    assert_int_equal(d[1].len, 162);
    /* 0x31fe0 + 162 ends in page 0x32, 0x40fa0 + 162 in page 0x41; 2048 would reach further */
    const uint64_t pages[] = {PAGE(VUT_DESC_GPA(RXQ)), 0x31, 0x32, 0x40, 0x41};
    log_expect(f, 64, pages, ARRAY_SIZE(pages));
    assert_int_equal(vut_stats(v).log_errors, 0);
}

static void test_log_base_hostile(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    vut_startup(v, VUT_F_ALL, PF_LOG, 2);
    static const struct vhost_user_log bad[] = {
        {.mmap_size = 0, .mmap_offset = 0},              /* empty */
        {.mmap_size = LOG_FILE, .mmap_offset = LOG_OFF}, /* past the end of the fd */
        {.mmap_size = 16, .mmap_offset = ~0ull - 8},     /* offset + size overflows */
        {.mmap_size = 1ull << 40, .mmap_offset = 0},     /* absurdly large */
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        assert_int_equal(send_msg(v, VHOST_USER_SET_LOG_BASE, 0, &bad[i], sizeof(bad[i]),
                                  dup(f->log_fd), NULL, NULL),
                         -EPROTO);
        assert_null(v->dev->log.bits);
    }
    /* a log the frontend could still shrink (no seal) */
    int unsealed = vut_memfd(LOG_FILE);
    struct vhost_user_log ok = {.mmap_size = 64, .mmap_offset = LOG_OFF};
    assert_int_equal(send_msg(v, VHOST_USER_SET_LOG_BASE, 0, &ok, sizeof(ok), unsealed, NULL, NULL),
                     -EPROTO);
    assert_null(v->dev->log.bits);
    /* a pipe cannot be mapped */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    close(pfd[1]);
    struct vhost_user_log l = {.mmap_size = 16, .mmap_offset = 0};
    assert_int_equal(send_msg(v, VHOST_USER_SET_LOG_BASE, 0, &l, sizeof(l), pfd[0], NULL, NULL),
                     -EPROTO);
    /* SET_LOG_FD keeps its fd (closed at disconnect, checked by vut_free) */
    int efd = vut_eventfd(), fds[1] = {efd};
    struct vhost_user_msg m, r;
    bool out;
    vut_msg_init(&m, VHOST_USER_SET_LOG_FD, 0);
    assert_int_equal(vut_process(v, &m, fds, 1, 1, &r, &out), 0);
    /* unknown SET_VRING_ADDR flags */
    struct vhost_vring_addr a = vut_ring_addr(RXQ);
    a.flags = 2;
    assert_int_equal(send_msg(v, VHOST_USER_SET_VRING_ADDR, 0, &a, sizeof(a), -1, NULL, NULL),
                     -EPROTO);
}

/* ---- IN_ORDER: a dropped TX chain goes back between the good ones, in avail order ---- */

static void test_split_in_order(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    vut_startup(v, VUT_F_ALL | 1ull << VIRTIO_F_IN_ORDER, VUT_PF_ALL, 2);
    uint16_t h[5];
    h[0] = post_tx_frame(v, 60, 1);
    h[1] = post_tx_frame(v, 5, 2); /* runt: dropped */
    h[2] = post_tx_frame(v, 60, 3);
    h[3] = post_tx_frame(v, 5, 4); /* runt */
    h[4] = post_tx_frame(v, 60, 5);
    unsigned got = 0;
    for (int burst = 0; burst < 8 && vut_used_idx(v, TXQ) < 5; burst++) {
        uint16_t n = vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32);
        got += n;
        vu_dev_dequeue_done(v->dev, TXQ, pkts, n);
    }
    assert_int_equal(got, 3);
    assert_int_equal(vut_used_idx(v, TXQ), 5);
    struct vring_used *u = vut_used(v, TXQ);
    for (unsigned i = 0; i < 5; i++)
        assert_int_equal(u->ring[i].id, h[i]);
    assert_int_equal(vut_stats(v).drops[VSW_DROP_RX_RUNT], 2);
}

static void test_packed_in_order(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    vut_startup(v, VUT_F_ALL | 1ull << VIRTIO_F_RING_PACKED | 1ull << VIRTIO_F_IN_ORDER, VUT_PF_ALL,
                2);
    struct vring_packed_desc *d = vut_g2h(v, VUT_DESC_GPA(TXQ), 16 * VUT_QSIZE);
    static const uint32_t lens[] = {60, 5, 60, 60, 5};
    static uint8_t stream[128];
    for (uint16_t i = 0; i < ARRAY_SIZE(lens); i++) {
        uint32_t len = vut_make_stream(stream, 12, lens[i], (uint8_t)i);
        uint64_t gpa = vut_alloc_buf(v, len);
        vut_guest_write(v, gpa, stream, len);
        d[i] = (struct vring_packed_desc){gpa, len, (uint16_t)(10 + i), VRING_PACKED_DESC_F_AVAIL};
    }
    unsigned got = 0;
    for (int burst = 0; burst < 8; burst++) {
        uint16_t n = vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32);
        got += n;
        vu_dev_dequeue_done(v->dev, TXQ, pkts, n);
    }
    assert_int_equal(got, 3);
    for (uint16_t i = 0; i < ARRAY_SIZE(lens); i++) {
        assert_int_equal(d[i].id, 10 + i); /* used in ring order */
        assert_int_equal(d[i].flags & (VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED),
                         VRING_PACKED_DESC_F_AVAIL | VRING_PACKED_DESC_F_USED);
    }
    assert_int_equal(vut_stats(v).drops[VSW_DROP_RX_RUNT], 2);
}

/* ---- NET_SET_MTU and SEND_RARP ---- */

#define PF_NET                                                                                     \
    (VUT_PF_ALL | 1ull << VHOST_USER_PROTOCOL_F_NET_MTU | 1ull << VHOST_USER_PROTOCOL_F_RARP)

static void test_net_set_mtu(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    vut_startup(v, VUT_F_ALL | 1ull << VIRTIO_NET_F_MTU, PF_NET, 2);
    vu_dev_set_mtu_limit(v->dev, 1500);
    static const struct {
        uint64_t mtu;
        bool ok;
    } cases[] = {{1400, true}, {1500, true}, {1501, false}, {9000, false},
                 {67, false},  {68, true},   {0, false},    {1ull << 32 | 1400, false}};
    uint16_t now = 0;
    uint64_t refused = 0;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        bool replied = false;
        uint64_t ack = 77;
        assert_int_equal(send_msg(v, VHOST_USER_NET_SET_MTU, VHOST_USER_NEED_REPLY, &cases[i].mtu,
                                  8, -1, &replied, &ack),
                         0);
        assert_true(replied);
        if (cases[i].ok)
            now = (uint16_t)cases[i].mtu;
        else
            refused++;
        assert_int_equal(ack != 0, !cases[i].ok);
        assert_int_equal(vu_dev_mtu(v->dev), now);
        assert_int_equal(vut_stats(v).msg_refused, refused);
        assert_int_equal(vut_stats(v).msg_errors, 0);
        /* a refusal never stops the device */
        assert_true(vu_dev_queue_ready(v->dev, RXQ) && vu_dev_queue_ready(v->dev, TXQ));
    }
    /* without NEED_REPLY a refusal has no reply, and is still counted */
    uint64_t big = 9000;
    bool replied = true;
    assert_int_equal(send_msg(v, VHOST_USER_NET_SET_MTU, 0, &big, 8, -1, &replied, NULL), 0);
    assert_false(replied);
    assert_int_equal(vut_stats(v).msg_refused, refused + 1);
    /* a larger limit (bridge MTU raised) admits it */
    vu_dev_set_mtu_limit(v->dev, 9000);
    assert_int_equal(send_msg(v, VHOST_USER_NET_SET_MTU, 0, &big, 8, -1, NULL, NULL), 0);
    assert_int_equal(vu_dev_mtu(v->dev), 9000);
    /* the MTU belongs to the connection */
    vu_dev_disconnect(v->dev);
    assert_int_equal(vu_dev_mtu(v->dev), 0);
}

static void test_send_rarp(void **state)
{
    struct lfx *f = *state;
    struct vut *v = f->v;
    vut_startup(v, VUT_F_ALL, PF_NET, 2);
    uint64_t mac = 0;
    static const uint8_t m1[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    memcpy(&mac, m1, 6);
    bool replied;
    uint64_t ack = 5;
    assert_int_equal(
        send_msg(v, VHOST_USER_SEND_RARP, VHOST_USER_NEED_REPLY, &mac, 8, -1, &replied, &ack), 0);
    assert_true(replied);
    assert_int_equal(ack, 0);
    assert_int_equal(f->n_rarp, 1);
    assert_memory_equal(f->rarp[0].b, m1, 6);
    /* multicast and zero MACs are refused (counted), never announced */
    uint64_t mcast = 0x010000005e01ull, zero = 0;
    assert_int_equal(
        send_msg(v, VHOST_USER_SEND_RARP, VHOST_USER_NEED_REPLY, &mcast, 8, -1, &replied, &ack), 0);
    assert_true(ack != 0);
    assert_int_equal(send_msg(v, VHOST_USER_SEND_RARP, 0, &zero, 8, -1, NULL, NULL), 0);
    assert_int_equal(f->n_rarp, 1);
    assert_int_equal(vut_stats(v).msg_refused, 2);
    /* without a hook in the owner, it is refused as well */
    v->ops.send_rarp = NULL;
    assert_int_equal(
        send_msg(v, VHOST_USER_SEND_RARP, VHOST_USER_NEED_REPLY, &mac, 8, -1, &replied, &ack), 0);
    assert_true(ack != 0);
    assert_int_equal(f->n_rarp, 1);
}

int main(void)
{
    vut_main_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_split_log_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_log_needs_both, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_log_too_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_log_indirect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_log_before_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_packed_log_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_packed_log_simple, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_base_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_packed_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_net_set_mtu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_rarp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
