/*
 * Unit tests of the split-ring datapath (src/vhost_user/vu_split.c) against a hand-built
 * guest: memfd memory in three regions, rings written directly, the device set up through
 * vu_dev_process_msg(). Queue 1 is the guest's TX ring (vu_dev_dequeue_burst), queue 0 its RX
 * ring (vu_dev_enqueue_burst). Tables:
 *   - good TX layouts: bytes, lengths, segments, private header copy, used ring;
 *   - counted drops that keep the queue running (runt, too many segments, too big);
 *   - hostile rings: each stops its queue, is counted once, and leaves every byte of guest
 *     memory (but the used rings) and everything outside it untouched;
 *   - RX delivery with and without mergeable buffers, and its drops;
 *   - call notifications with and without EVENT_IDX;
 *   - recovery of a stopped queue.
 */
#include "vu_test_util.h"

#define TXQ 1
#define RXQ 0

#define R0_END  (VUT_R0_GPA + VUT_R0_SIZE)
#define R1_END  (VUT_R1_GPA + VUT_R1_SIZE)
#define R2_END  (VUT_R2_GPA + VUT_R2_SIZE)
#define NOWHERE 0x200000ull /* between R1 and R2: in no region */

#define F_LEGACY                                                                                   \
    ((1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |                   \
     (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
#define F_NO_EVENT_IDX (VUT_F_ALL & ~(1ull << VIRTIO_RING_F_EVENT_IDX))
#define F_NO_INDIRECT  (VUT_F_ALL & ~(1ull << VIRTIO_RING_F_INDIRECT_DESC))

#define NO_DROP (-1)

/* Every case table entry starts with this: setup() reads the features to negotiate. */
struct case_hdr {
    const char *name;
    uint64_t features; /* 0: VUT_F_ALL */
};

static struct pkt pkts[64];

static int setup(void **state)
{
    const struct case_hdr *h = *state;
    struct vut *v = vut_new();
    v->tcase = h;
    vut_startup(v, h && h->features ? h->features : VUT_F_ALL, VUT_PF_ALL, 2);
    memset(pkts, 0, sizeof(pkts));
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    vut_free(*state);
    return 0;
}

static const char *case_name(const void *c)
{
    return ((const struct case_hdr *)c)->name;
}

static uint32_t hdr_len_of(const struct vut *v)
{
    return v->features & ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF)) ? 12
                                                                                           : 10;
}

/* ---- guest memory helpers ---- */

/* Everything but the used rings (where entries may be staged and not published) is intact. */
static void snap_check(struct vut *v, struct vut_snapshot *s)
{
    for (unsigned r = 0; r < VUT_NREG; r++) {
        for (size_t i = 0; i < v->file_len[r]; i++) {
            if (s->file[r][i] == v->file[r][i])
                continue;
            uint64_t gpa = vut_reg_gpa[r] + i - vut_reg_off[r];
            bool used_ring = r == 0 && i >= vut_reg_off[0] &&
                             ((gpa >= VUT_USED_GPA(0) && gpa < VUT_USED_GPA(0) + 0x1000) ||
                              (gpa >= VUT_USED_GPA(1) && gpa < VUT_USED_GPA(1) + 0x1000));
            if (!used_ring)
                fail_msg("guest memory changed: region %u file offset %#zx (%#x -> %#x)", r, i,
                         s->file[r][i], v->file[r][i]);
        }
        free(s->file[r]);
        s->file[r] = NULL;
    }
}

/* ---- frames ---- */

enum layout { DIRECT, INDIRECT, INDIRECT_W };

/*
 * Write `stream` into the TX ring as descriptors of the given piece lengths (direct chain,
 * or one indirect table) and publish it. The first piece goes at first_gpa when not 0.
 * Returns the head.
 */
static uint16_t tx_post(struct vut *v, const uint8_t *stream, const uint32_t *pieces,
                        unsigned npieces, enum layout lay, uint64_t first_gpa)
{
    struct vring_desc *table;
    uint16_t base, head;
    if (lay == DIRECT) {
        base = vut_alloc_desc(v, TXQ, npieces);
        table = vut_desc(v, TXQ) + base;
        head = base;
    } else {
        uint64_t t = vut_alloc_ind(v, npieces);
        table = vut_g2h(v, t, 16ull * npieces);
        base = 0;
        head = vut_alloc_desc(v, TXQ, 1);
        vut_set_desc(&vut_desc(v, TXQ)[head], t, 16 * npieces,
                     VRING_DESC_F_INDIRECT | (lay == INDIRECT_W ? VRING_DESC_F_WRITE : 0), 0);
    }
    uint32_t off = 0;
    for (unsigned i = 0; i < npieces; i++) {
        uint64_t gpa = i == 0 && first_gpa ? first_gpa : vut_alloc_buf(v, MAX(pieces[i], 1));
        vut_guest_write(v, gpa, stream + off, pieces[i]);
        off += pieces[i];
        bool last = i + 1 == npieces;
        vut_set_desc(&table[i], gpa, pieces[i], last ? 0 : VRING_DESC_F_NEXT,
                     last ? 0 : (uint16_t)(base + i + 1));
    }
    vut_post(v, TXQ, head);
    return head;
}

/* Piece lengths of a case: up to 8 listed, or (n > 8) a 12-byte piece then n-1 equal ones. */
static unsigned expand_pieces(const uint32_t *listed, unsigned n, uint32_t frame_len, uint32_t *out)
{
    if (n <= 8) {
        memcpy(out, listed, n * sizeof(*out));
        return n;
    }
    out[0] = 12;
    for (unsigned i = 1; i < n; i++)
        out[i] = frame_len / (n - 1);
    out[n - 1] += frame_len % (n - 1);
    return n;
}

static uint16_t tx_post_good(struct vut *v, uint32_t frame_len, uint8_t seed)
{
    static uint8_t s[2048];
    uint32_t len = vut_make_stream(s, hdr_len_of(v), frame_len, seed);
    return tx_post(v, s, &len, 1, DIRECT, 0);
}

static void check_used(struct vut *v, unsigned q, uint16_t slot, uint16_t id, uint32_t len)
{
    struct vring_used_elem *e = &vut_used(v, q)->ring[slot % VUT_QSIZE];
    if (e->id != id || e->len != len)
        fail_msg("used[%u] of queue %u is {%u, %u}, want {%u, %u}", slot, q, e->id, e->len, id,
                 len);
}

/* ====================================================================================== */
/* Good TX layouts                                                                         */

struct good_case {
    struct case_hdr h;
    uint32_t frame_len;
    uint32_t pieces[8];
    unsigned npieces;
    enum layout lay;
    uint64_t first_gpa;
    uint16_t nseg; /* segments of the packet (header stripped) */
};

static const struct good_case good_cases[] = {
    {{"single descriptor"}, 60, {72}, 1, DIRECT, 0, 1},
    {{"header and frame in two descriptors"}, 60, {12, 60}, 2, DIRECT, 0, 1},
    {{"header over three descriptors"}, 200, {5, 4, 3, 200}, 4, DIRECT, 0, 1},
    {{"chain of four, header shares a buffer"}, 200, {5, 20, 100, 87}, 4, DIRECT, 0, 3},
    {{"zero-length descriptors inside the chain"}, 60, {12, 0, 30, 0, 30}, 5, DIRECT, 0, 2},
    {{"indirect table of three"}, 1488, {12, 500, 988}, 3, INDIRECT, 0, 2},
    {{"indirect table of one"}, 60, {72}, 1, INDIRECT, 0, 1},
    {{"indirect, write flag on the table descriptor ignored"}, 60, {12, 60}, 2, INDIRECT_W, 0, 1},
    {{"1514-byte frame"}, 1514, {1526}, 1, DIRECT, 0, 1},
    {{"14-byte frame"}, 14, {26}, 1, DIRECT, 0, 1},
    {{"largest frame (65562 bytes)"}, VSW_MAX_FRAME, {12 + VSW_MAX_FRAME}, 1, DIRECT, 0, 1},
    {{"frame crossing from R0 into R1"}, 100, {112}, 1, DIRECT, VUT_R1_GPA - 40, 2},
    {{"header crossing from R0 into R1"}, 60, {72}, 1, DIRECT, VUT_R1_GPA - 6, 1},
    {{"frame in the region at the top of the address space"}, 60, {72}, 1, DIRECT, VUT_R2_GPA, 1},
    {{"frame ending at the end of the top region"}, 60, {72}, 1, DIRECT, R2_END - 72, 1},
    {{"64 descriptors (PKT_MAX_SEGS)"}, 1260, {0}, 64, DIRECT, 0, 63},
    {{"64 descriptors, indirect"}, 1260, {0}, 64, INDIRECT, 0, 63},
    {{"10-byte header without VERSION_1", F_LEGACY}, 60, {70}, 1, DIRECT, 0, 1},
    {{"10-byte header in its own descriptor", F_LEGACY}, 60, {10, 60}, 2, DIRECT, 0, 1},
};

static void test_good(void **state)
{
    struct vut *v = *state;
    const struct good_case *c = v->tcase;
    static uint8_t s[VSW_MAX_FRAME + 64];
    uint32_t pieces[256];
    unsigned n = expand_pieces(c->pieces, c->npieces, c->frame_len, pieces);
    uint32_t hlen = hdr_len_of(v), len = vut_make_stream(s, hlen, c->frame_len, 7), sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += pieces[i];
    assert_int_equal(sum, len); /* the table is consistent */

    uint16_t head = tx_post(v, s, pieces, n, c->lay, c->first_gpa);
    assert_true(vu_dev_queue_has_work(v->dev, TXQ));
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    struct pkt *p = &pkts[0];
    vut_check_pkt(p, c->frame_len, 7);
    assert_int_equal(p->nseg, c->nseg);
    assert_int_equal(p->src_id, head);
    assert_int_equal(p->out_port, PKT_OUT_DROP);
    struct virtio_net_hdr_v1 want;
    vut_fill_vnet(&want);
    memset((uint8_t *)&want + hlen, 0, sizeof(want) - hlen);
    assert_memory_equal(&p->vnet, &want, sizeof(want));

    /* Nothing is returned to the guest before dequeue_done. */
    assert_int_equal(vut_used_idx(v, TXQ), 0);
    assert_false(vu_dev_queue_has_work(v->dev, TXQ));
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts + 1, 32), 0);

    /* The header copy is private: the guest rewriting its buffer does not change it. */
    uint8_t orig[PKT_HDR_COPY];
    memcpy(orig, p->hdr, sizeof(orig));
    for (uint16_t i = 0; i < p->nseg; i++)
        memset((uint8_t *)p->seg[i].addr, 0xee, MIN(p->seg[i].len, PKT_HDR_COPY));
    assert_memory_equal(p->hdr, orig, p->hdr_len);
    uint8_t again[PKT_HDR_COPY];
    assert_int_equal(pkt_read(p, 0, again, p->hdr_len), p->hdr_len);
    assert_memory_equal(again, orig, p->hdr_len);

    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    assert_int_equal(vut_used_idx(v, TXQ), 1);
    check_used(v, TXQ, 0, head, 0);
    assert_int_equal(vut_calls(v, TXQ), 1); /* EVENT_IDX, used_event 0: crossed */
    assert_int_equal(vut_calls(v, RXQ), 0);

    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.rx_packets, 1);
    assert_int_equal(st.rx_bytes, c->frame_len);
    assert_int_equal(st.tx_packets, 0);
    assert_int_equal(st.queue_errors, 0);
    vut_check_drops(&st, NO_DROP, 0);
    assert_true(vu_dev_queue_ready(v->dev, TXQ));
    assert_true(vut_canaries_ok(v));
}

/* Every default-feature layout of the table in one ring, taken in one burst. */
static void test_good_burst(void **state)
{
    struct vut *v = *state;
    static uint8_t s[VSW_MAX_FRAME + 64];
    uint16_t heads[ARRAY_SIZE(good_cases)];
    const struct good_case *cs[ARRAY_SIZE(good_cases)];
    unsigned n = 0;
    uint64_t bytes = 0, placed_end = 0;
    for (size_t i = 0; i < ARRAY_SIZE(good_cases); i++) {
        const struct good_case *c = &good_cases[i];
        if (c->h.features)
            continue;
        /* cases placed at the R0/R1 boundary overlap: take the first of them */
        if (c->first_gpa && c->first_gpa < VUT_R1_GPA + 0x100 &&
            c->first_gpa + 0x100 > VUT_R1_GPA) {
            if (placed_end)
                continue;
            placed_end = 1;
        }
        uint32_t pieces[256];
        unsigned np = expand_pieces(c->pieces, c->npieces, c->frame_len, pieces);
        vut_make_stream(s, 12, c->frame_len, (uint8_t)i);
        cs[n] = c;
        heads[n++] = tx_post(v, s, pieces, np, c->lay, c->first_gpa);
        bytes += c->frame_len;
    }
    assert_true(n >= 15);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 64), n);
    for (unsigned i = 0; i < n; i++) {
        vut_check_pkt(&pkts[i], cs[i]->frame_len, (uint8_t)(cs[i] - good_cases));
        assert_int_equal(pkts[i].nseg, cs[i]->nseg);
        assert_int_equal(pkts[i].src_id, heads[i]);
    }
    vu_dev_dequeue_done(v->dev, TXQ, pkts, (uint16_t)n);
    assert_int_equal(vut_used_idx(v, TXQ), n);
    for (unsigned i = 0; i < n; i++)
        check_used(v, TXQ, (uint16_t)i, heads[i], 0);
    assert_int_equal(vut_calls(v, TXQ), 1); /* one notification for the burst */
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.rx_packets, n);
    assert_int_equal(st.rx_bytes, bytes);
    vut_check_drops(&st, NO_DROP, 0);
}

/* A burst smaller than what is posted takes the oldest frames, then the rest. */
static void test_partial_bursts(void **state)
{
    struct vut *v = *state;
    uint16_t heads[5];
    for (unsigned i = 0; i < 5; i++)
        heads[i] = tx_post_good(v, 60 + i, (uint8_t)i);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 2), 2);
    vut_check_pkt(&pkts[0], 60, 0);
    vut_check_pkt(&pkts[1], 61, 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 2);
    assert_int_equal(vut_used_idx(v, TXQ), 2);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 3);
    for (unsigned i = 0; i < 3; i++) {
        vut_check_pkt(&pkts[i], 62 + i, (uint8_t)(2 + i));
        assert_int_equal(pkts[i].src_id, heads[2 + i]);
    }
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 3);
    assert_int_equal(vut_used_idx(v, TXQ), 5);
    for (unsigned i = 0; i < 5; i++)
        check_used(v, TXQ, (uint16_t)i, heads[i], 0);
}

/* The indices wrap: 600 frames through a 256-entry ring, reusing descriptors. */
static void test_index_wrap(void **state)
{
    struct vut *v = *state;
    static uint8_t s[128];
    uint32_t len = vut_make_stream(s, 12, 64, 3);
    uint64_t gpa = vut_alloc_buf(v, len);
    vut_guest_write(v, gpa, s, len);
    for (unsigned round = 0; round < 600; round++) {
        uint16_t head = (uint16_t)(round % 7);
        vut_set_desc(&vut_desc(v, TXQ)[head], gpa, len, 0, 0);
        vut_post(v, TXQ, head);
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
        vut_check_pkt(&pkts[0], 64, 3);
        vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
        assert_int_equal(vut_used_idx(v, TXQ), (uint16_t)(round + 1));
        check_used(v, TXQ, (uint16_t)round, head, 0);
    }
    assert_int_equal(vut_stats(v).rx_packets, 600);
}

/* ====================================================================================== */
/* Counted drops: the queue keeps running                                                  */

struct drop_case {
    struct case_hdr h;
    uint32_t pieces[8]; /* stream pieces (content: a valid-looking stream) */
    unsigned npieces;   /* > 8: a 12-byte piece then npieces-1 pieces of 20 bytes */
    enum layout lay;
    int drop;
};

static const struct drop_case drop_cases[] = {
    {{"runt: 13-byte frame"}, {25}, 1, DIRECT, VSW_DROP_RX_RUNT},
    {{"runt: 13 bytes over two descriptors"}, {12, 13}, 2, DIRECT, VSW_DROP_RX_RUNT},
    {{"runt: header only"}, {12}, 1, DIRECT, VSW_DROP_RX_RUNT},
    {{"runt: shorter than the header"}, {8}, 1, DIRECT, VSW_DROP_RX_RUNT},
    {{"runt: one zero-length descriptor"}, {0}, 1, DIRECT, VSW_DROP_RX_RUNT},
    {{"runt: only zero-length descriptors"}, {0, 0, 0, 0}, 4, DIRECT, VSW_DROP_RX_RUNT},
    {{"runt: zero-length indirect entries"}, {0, 0}, 2, INDIRECT, VSW_DROP_RX_RUNT},
    {{"runt: 9 bytes without VERSION_1", F_LEGACY}, {19}, 1, DIRECT, VSW_DROP_RX_RUNT},
    {{"65 descriptors"}, {0}, 65, DIRECT, VSW_DROP_RX_TOO_MANY_SEGS},
    {{"65 descriptors, indirect"}, {0}, 65, INDIRECT, VSW_DROP_RX_TOO_MANY_SEGS},
    {{"200 descriptors"}, {0}, 200, DIRECT, VSW_DROP_RX_TOO_MANY_SEGS},
    {{"65563-byte frame"}, {12 + VSW_MAX_FRAME + 1}, 1, DIRECT, VSW_DROP_RX_TOO_BIG},
    {{"65563-byte frame in three"},
     {12, 40000, VSW_MAX_FRAME + 1 - 40000},
     3,
     DIRECT,
     VSW_DROP_RX_TOO_BIG},
};

static void test_drop(void **state)
{
    struct vut *v = *state;
    const struct drop_case *c = v->tcase;
    static uint8_t s[VSW_MAX_FRAME + 64];
    uint32_t pieces[256], total = 0;
    unsigned n = c->npieces;
    if (n <= 8) {
        memcpy(pieces, c->pieces, n * sizeof(pieces[0]));
    } else {
        pieces[0] = 12;
        for (unsigned i = 1; i < n; i++)
            pieces[i] = 20;
    }
    for (unsigned i = 0; i < n; i++)
        total += pieces[i];
    vut_make_stream(s, hdr_len_of(v), total > 12 ? total - 12 : 0, 1);

    uint16_t bad = tx_post(v, s, pieces, n, c->lay, 0);
    uint16_t good = tx_post_good(v, 60, 9);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 60, 9);
    assert_int_equal(pkts[0].src_id, good);
    struct vu_dev_stats st = vut_stats(v);
    vut_check_drops(&st, c->drop, 1);
    assert_int_equal(st.queue_errors, 0);
    assert_int_equal(st.rx_packets, 1);
    assert_int_equal(st.rx_bytes, 60);
    assert_true(vu_dev_queue_ready(v->dev, TXQ));

    /* The dropped chain goes back to the guest with the burst. */
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    assert_int_equal(vut_used_idx(v, TXQ), 2);
    check_used(v, TXQ, 0, bad, 0);
    check_used(v, TXQ, 1, good, 0);
    /* and the queue goes on */
    tx_post_good(v, 100, 4);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 100, 4);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    assert_int_equal(vut_used_idx(v, TXQ), 3);
    assert_true(vut_canaries_ok(v));
}

/*
 * A chain to drop behind good ones in a burst: chains go back in ring order (IN_ORDER), so
 * the burst ends before it; the next burst returns it first and delivers the frames behind
 * it whole (they were collected into later packets of the array and move to the front).
 */
static void test_drop_mid_burst(void **state)
{
    struct vut *v = *state;
    static uint8_t s[64];
    const uint32_t runt[1] = {hdr_len_of(v) + 13};
    uint16_t a = tx_post_good(v, 60, 1);
    vut_make_stream(s, hdr_len_of(v), 13, 2);
    uint16_t bad = tx_post(v, s, runt, 1, DIRECT, 0);
    uint16_t b = tx_post_good(v, 70, 3), c = tx_post_good(v, 80, 4);

    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 60, 1);
    assert_int_equal(pkts[0].src_id, a);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    assert_int_equal(vut_used_idx(v, TXQ), 1);

    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 2);
    vut_check_pkt(&pkts[0], 70, 3);
    assert_int_equal(pkts[0].src_id, b);
    vut_check_pkt(&pkts[1], 80, 4);
    assert_int_equal(pkts[1].src_id, c);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 2);
    assert_int_equal(vut_used_idx(v, TXQ), 4);
    check_used(v, TXQ, 0, a, 0);
    check_used(v, TXQ, 1, bad, 0);
    check_used(v, TXQ, 2, b, 0);
    check_used(v, TXQ, 3, c, 0);
    struct vu_dev_stats st = vut_stats(v);
    vut_check_drops(&st, VSW_DROP_RX_RUNT, 1);
    assert_int_equal(st.rx_packets, 3);
    assert_int_equal(st.queue_errors, 0);
    assert_true(vu_dev_queue_ready(v->dev, TXQ));
}

/* A disabled TX ring is drained: frames are returned and counted, not forwarded. */
static void test_tx_disabled_drained(void **state)
{
    struct vut *v = *state;
    vut_state(v, VHOST_USER_SET_VRING_ENABLE, TXQ, 0);
    assert_true(vu_dev_queue_ready(v->dev, TXQ));
    uint16_t a = tx_post_good(v, 60, 1), b = tx_post_good(v, 70, 2);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 0);
    assert_int_equal(vut_used_idx(v, TXQ), 2);
    check_used(v, TXQ, 0, a, 0);
    check_used(v, TXQ, 1, b, 0);
    struct vu_dev_stats st = vut_stats(v);
    vut_check_drops(&st, VSW_DROP_RX_Q_STOPPED, 2);
    assert_int_equal(st.rx_packets, 0);
    vut_state(v, VHOST_USER_SET_VRING_ENABLE, TXQ, 1);
    tx_post_good(v, 80, 3);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 80, 3);
}

/* ====================================================================================== */
/* Hostile rings: the queue stops, counted once, nothing outside touched                   */

struct hostile_case {
    struct case_hdr h;
    bool rx; /* on the RX ring (enqueue), else the TX ring (dequeue) */
    void (*post)(struct vut *v, unsigned q, uint16_t wflag);
    bool writes_ok; /* the backend may fill the guest's good buffers before the bad one */
};

/* One descriptor, published. */
static void post1(struct vut *v, unsigned q, uint64_t addr, uint32_t len, uint16_t flags)
{
    uint16_t d = vut_alloc_desc(v, q, 1);
    vut_set_desc(&vut_desc(v, q)[d], addr, len, flags, 0);
    vut_post(v, q, d);
}

/* A chain of two: a valid first buffer, then `second`. */
static void post2(struct vut *v, unsigned q, uint16_t wflag, struct vring_desc second)
{
    uint16_t d = vut_alloc_desc(v, q, 2);
    vut_set_desc(&vut_desc(v, q)[d], vut_alloc_buf(v, 64), 64, wflag | VRING_DESC_F_NEXT,
                 (uint16_t)(d + 1));
    vut_desc(v, q)[d + 1] = second;
    vut_post(v, q, d);
}

/* An indirect table of `n` entries at gpa (0: allocate), published; returns the table. */
static struct vring_desc *post_ind(struct vut *v, unsigned q, uint64_t gpa, unsigned n,
                                   uint32_t len, uint16_t flags)
{
    if (!gpa)
        gpa = vut_alloc_ind(v, n);
    struct vring_desc *t = vut_g2h(v, gpa, 16ull * n);
    for (unsigned i = 0; i < n; i++)
        vut_set_desc(&t[i], vut_alloc_buf(v, 64), 64, 0, 0);
    post1(v, q, gpa, len, flags | VRING_DESC_F_INDIRECT);
    return t;
}

#define HOSTILE(fn) static void fn(struct vut *v, unsigned q, uint16_t w)

HOSTILE(h_outside)
{
    post1(v, q, NOWHERE, 72, w);
}
HOSTILE(h_gap_after_r1)
{
    post1(v, q, R1_END, 72, w);
}
HOSTILE(h_below_r2)
{
    post1(v, q, VUT_R2_GPA - 64, 128, w);
}
HOSTILE(h_past_r1_end)
{
    post1(v, q, R1_END - 16, 100, w);
}
HOSTILE(h_past_r2_end)
{
    post1(v, q, R2_END - 16, 100, w);
}
HOSTILE(h_wrap)
{
    post1(v, q, R2_END - 16, 0x2000, w); /* would wrap to GPA 0xff0: the RX ring */
}
HOSTILE(h_wrap_max)
{
    post1(v, q, ~0ull - 7, 0xffffffffu, w);
}
HOSTILE(h_huge_len)
{
    post1(v, q, VUT_BUF_GPA, 0xffffffffu, w); /* through R0 and R1 into the gap */
}
HOSTILE(h_second_outside)
{
    post2(v, q, w, (struct vring_desc){NOWHERE, 64, w, 0});
}
HOSTILE(h_loop2)
{
    uint16_t d = vut_alloc_desc(v, q, 2);
    uint64_t b = vut_alloc_buf(v, 64);
    vut_set_desc(&vut_desc(v, q)[d], b, 64, w | VRING_DESC_F_NEXT, (uint16_t)(d + 1));
    vut_set_desc(&vut_desc(v, q)[d + 1], b, 64, w | VRING_DESC_F_NEXT, d);
    vut_post(v, q, d);
}
HOSTILE(h_loop_self)
{
    uint16_t d = vut_alloc_desc(v, q, 1);
    vut_set_desc(&vut_desc(v, q)[d], vut_alloc_buf(v, 64), 64, w | VRING_DESC_F_NEXT, d);
    vut_post(v, q, d);
}
HOSTILE(h_longer_than_ring)
{
    uint64_t b = vut_alloc_buf(v, 16);
    vut_alloc_desc(v, q, VUT_QSIZE);
    for (unsigned i = 0; i < VUT_QSIZE; i++)
        vut_set_desc(&vut_desc(v, q)[i], b, 16, w | VRING_DESC_F_NEXT,
                     (uint16_t)((i + 1) % VUT_QSIZE));
    vut_post(v, q, 0);
}
HOSTILE(h_next_oob)
{
    post2(v, q, w, (struct vring_desc){0});
    vut_desc(v, q)[v->next_desc[q] - 2].next = VUT_QSIZE;
}
HOSTILE(h_next_ffff)
{
    post2(v, q, w, (struct vring_desc){0});
    vut_desc(v, q)[v->next_desc[q] - 2].next = 0xffff;
}
HOSTILE(h_head_oob)
{
    (void)w;
    vut_post(v, q, VUT_QSIZE);
}
HOSTILE(h_head_ffff)
{
    (void)w;
    vut_post(v, q, 0xffff);
}
HOSTILE(h_ind_in_ind)
{
    uint64_t inner = vut_alloc_ind(v, 2);
    struct vring_desc *t = vut_g2h(v, inner, 32);
    vut_set_desc(&t[0], vut_alloc_buf(v, 64), 64, w, 0);
    vut_set_desc(&t[1], vut_alloc_buf(v, 64), 64, w, 0);
    struct vring_desc *outer = post_ind(v, q, 0, 1, 16, 0);
    vut_set_desc(&outer[0], inner, 32, VRING_DESC_F_INDIRECT, 0);
}
HOSTILE(h_ind_in_ind_second)
{
    uint64_t inner = vut_alloc_ind(v, 1);
    vut_set_desc(vut_g2h(v, inner, 16), vut_alloc_buf(v, 64), 64, w, 0);
    struct vring_desc *outer = post_ind(v, q, 0, 2, 32, 0);
    outer[0].flags = w | VRING_DESC_F_NEXT;
    outer[0].next = 1;
    vut_set_desc(&outer[1], inner, 16, VRING_DESC_F_INDIRECT, 0);
}
HOSTILE(h_ind_misaligned)
{
    uint64_t t = vut_alloc_ind(v, 3) + 4;
    struct vring_desc d[2] = {{vut_alloc_buf(v, 72), 72, w, 0}, {0}};
    memcpy(vut_g2h(v, t, 32), d, 32);
    post1(v, q, t, 32, VRING_DESC_F_INDIRECT);
}
/* R1 remapped 4 bytes off: an 8-aligned table GPA gives a misaligned pointer in our mapping. */
HOSTILE(h_ind_misaligned_in_mapping)
{
    struct vhost_memory m;
    int fds[VUT_NREG];
    vut_mem_table(&m, VUT_NREG);
    m.regions[1].memory_size -= 0x1000;
    m.regions[1].mmap_offset = 4;
    for (unsigned r = 0; r < VUT_NREG; r++)
        fds[r] = dup(v->memfd[r]);
    vut_ok(v, VHOST_USER_SET_MEM_TABLE, &m, 8 + VUT_NREG * 32, fds, VUT_NREG, 0, NULL);
    assert_true(vu_dev_queue_ready(v->dev, (uint16_t)q)); /* the rings are in R0 */
    struct vring_desc d = {vut_alloc_buf(v, 72), 72, w, 0};
    memcpy(v->file[1] + 4 + 0x100, &d, sizeof(d));
    post1(v, q, VUT_R1_GPA + 0x100, 16, VRING_DESC_F_INDIRECT);
}
HOSTILE(h_ind_outside)
{
    (void)w;
    post1(v, q, NOWHERE, 32, VRING_DESC_F_INDIRECT);
}
HOSTILE(h_ind_past_r1_end)
{
    post_ind(v, q, R1_END - 16, 1, 32, 0);
    (void)w;
}
HOSTILE(h_ind_wraps)
{
    (void)w;
    post1(v, q, R2_END - 16, 0x2000, VRING_DESC_F_INDIRECT);
}
HOSTILE(h_ind_len_24)
{
    struct vring_desc *t = post_ind(v, q, 0, 2, 24, 0);
    t[0].flags = w;
}
HOSTILE(h_ind_len_0)
{
    struct vring_desc *t = post_ind(v, q, 0, 1, 0, 0);
    t[0].flags = w;
}
HOSTILE(h_ind_len_8)
{
    struct vring_desc *t = post_ind(v, q, 0, 1, 8, 0);
    t[0].flags = w;
}
HOSTILE(h_ind_too_many)
{
    (void)w;
    post1(v, q, VUT_BUF_GPA, 16u * (VIRTQ_MAX_SIZE + 1), VRING_DESC_F_INDIRECT);
}
HOSTILE(h_ind_next_flag)
{
    uint16_t d = vut_alloc_desc(v, q, 2);
    uint64_t t = vut_alloc_ind(v, 1);
    vut_set_desc(vut_g2h(v, t, 16), vut_alloc_buf(v, 72), 72, w, 0);
    vut_set_desc(&vut_desc(v, q)[d], t, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT,
                 (uint16_t)(d + 1));
    vut_set_desc(&vut_desc(v, q)[d + 1], vut_alloc_buf(v, 72), 72, w, 0);
    vut_post(v, q, d);
}
HOSTILE(h_ind_next_oob)
{
    struct vring_desc *t = post_ind(v, q, 0, 2, 32, 0);
    t[0].flags = w | VRING_DESC_F_NEXT;
    t[0].next = 2;
}
HOSTILE(h_ind_loop)
{
    struct vring_desc *t = post_ind(v, q, 0, 2, 32, 0);
    t[0].flags = w | VRING_DESC_F_NEXT;
    t[0].next = 1;
    t[1].flags = w | VRING_DESC_F_NEXT;
    t[1].next = 0;
}
HOSTILE(h_ind_entry_outside)
{
    struct vring_desc *t = post_ind(v, q, 0, 1, 16, 0);
    vut_set_desc(&t[0], NOWHERE, 72, w, 0);
}
HOSTILE(h_ind_entry_wrong_dir)
{
    struct vring_desc *t = post_ind(v, q, 0, 2, 32, 0);
    t[0].flags = w | VRING_DESC_F_NEXT;
    t[0].next = 1;
    t[1].flags = w ^ VRING_DESC_F_WRITE;
}
HOSTILE(h_wrong_dir)
{
    post1(v, q, vut_alloc_buf(v, 2048), 2048, w ^ VRING_DESC_F_WRITE);
}
HOSTILE(h_wrong_dir_second)
{
    post2(v, q, w, (struct vring_desc){vut_alloc_buf(v, 2048), 2048, w ^ VRING_DESC_F_WRITE, 0});
}
HOSTILE(h_ind_without_feature)
{
    struct vring_desc *t = post_ind(v, q, 0, 1, 16, 0);
    t[0].flags = w;
    t[0].len = 2048;
    t[0].addr = vut_alloc_buf(v, 2048);
}
HOSTILE(h_ind_in_chain)
{
    uint64_t t = vut_alloc_ind(v, 1);
    vut_set_desc(vut_g2h(v, t, 16), vut_alloc_buf(v, 64), 64, w, 0);
    post2(v, q, w, (struct vring_desc){t, 16, VRING_DESC_F_INDIRECT, 0});
}
HOSTILE(h_avail_jump)
{
    (void)w;
    __atomic_store_n(&vut_avail(v, q)->idx, VUT_QSIZE + 1, __ATOMIC_RELEASE);
}
HOSTILE(h_avail_jump_half)
{
    (void)w;
    __atomic_store_n(&vut_avail(v, q)->idx, 0x8000, __ATOMIC_RELEASE);
}
HOSTILE(h_avail_backwards)
{
    (void)w;
    __atomic_store_n(&vut_avail(v, q)->idx, 0xffff, __ATOMIC_RELEASE);
}
HOSTILE(h_bad_after_good)
{
    /* MRG: the first buffer is fine (and written), the second is not */
    post1(v, q, vut_alloc_buf(v, 16), 16, w);
    post1(v, q, NOWHERE, 2048, w);
}

#define TXH(name, fn)                                                                              \
    {                                                                                              \
        {name}, false, fn                                                                          \
    }
#define RXH(name, fn)                                                                              \
    {                                                                                              \
        {name}, true, fn                                                                           \
    }
#define TXHF(name, f, fn)                                                                          \
    {                                                                                              \
        {name, f}, false, fn                                                                       \
    }
#define RXHF(name, f, fn)                                                                          \
    {                                                                                              \
        {name, f}, true, fn                                                                        \
    }

static const struct hostile_case hostile_cases[] = {
    TXH("tx: address in no region", h_outside),
    TXH("tx: address just past R1", h_gap_after_r1),
    TXH("tx: buffer starting below R2", h_below_r2),
    TXH("tx: length past the end of R1", h_past_r1_end),
    TXH("tx: length past the end of R2", h_past_r2_end),
    TXH("tx: addr + len wraps 2^64 into R0", h_wrap),
    TXH("tx: address 2^64-8, length 4 GiB", h_wrap_max),
    TXH("tx: length 4 GiB", h_huge_len),
    TXH("tx: second descriptor in no region", h_second_outside),
    TXH("tx: chain loops a->b->a", h_loop2),
    TXH("tx: descriptor chained to itself", h_loop_self),
    TXH("tx: chain longer than the ring", h_longer_than_ring),
    TXH("tx: next index = ring size", h_next_oob),
    TXH("tx: next index 0xffff", h_next_ffff),
    TXH("tx: head index = ring size", h_head_oob),
    TXH("tx: head index 0xffff", h_head_ffff),
    TXH("tx: indirect inside indirect", h_ind_in_ind),
    TXH("tx: indirect inside indirect, second entry", h_ind_in_ind_second),
    TXH("tx: indirect table misaligned", h_ind_misaligned),
    TXH("tx: indirect table misaligned in our mapping", h_ind_misaligned_in_mapping),
    TXH("tx: indirect table in no region", h_ind_outside),
    TXH("tx: indirect table past the end of R1", h_ind_past_r1_end),
    TXH("tx: indirect table wraps 2^64", h_ind_wraps),
    TXH("tx: indirect length 24", h_ind_len_24),
    TXH("tx: indirect length 0", h_ind_len_0),
    TXH("tx: indirect length 8", h_ind_len_8),
    TXH("tx: indirect table of 32769 entries", h_ind_too_many),
    TXH("tx: indirect with the next flag", h_ind_next_flag),
    TXH("tx: indirect entry next out of the table", h_ind_next_oob),
    TXH("tx: indirect entries loop", h_ind_loop),
    TXH("tx: indirect entry in no region", h_ind_entry_outside),
    TXH("tx: device-writable indirect entry", h_ind_entry_wrong_dir),
    TXH("tx: device-writable buffer", h_wrong_dir),
    TXH("tx: device-writable second buffer", h_wrong_dir_second),
    TXHF("tx: indirect not negotiated", F_NO_INDIRECT, h_ind_without_feature),
    TXH("tx: indirect descriptor inside a chain", h_ind_in_chain),
    TXH("tx: avail index jumps by ring size + 1", h_avail_jump),
    TXH("tx: avail index jumps by 0x8000", h_avail_jump_half),
    TXH("tx: avail index moves backwards", h_avail_backwards),
    RXH("rx: device-readable buffer", h_wrong_dir),
    RXH("rx: device-readable second buffer", h_wrong_dir_second),
    RXH("rx: device-readable indirect entry", h_ind_entry_wrong_dir),
    RXH("rx: address in no region", h_outside),
    RXH("rx: length past the end of R1", h_past_r1_end),
    RXH("rx: length past the end of R2", h_past_r2_end),
    RXH("rx: addr + len wraps 2^64 into R0", h_wrap),
    RXH("rx: length 4 GiB", h_huge_len),
    RXH("rx: second descriptor in no region", h_second_outside),
    RXH("rx: chain loops a->b->a", h_loop2),
    RXH("rx: chain longer than the ring", h_longer_than_ring),
    RXH("rx: next index = ring size", h_next_oob),
    RXH("rx: head index = ring size", h_head_oob),
    RXH("rx: head index 0xffff", h_head_ffff),
    RXH("rx: indirect inside indirect", h_ind_in_ind),
    RXH("rx: indirect table misaligned", h_ind_misaligned),
    RXH("rx: indirect table misaligned in our mapping", h_ind_misaligned_in_mapping),
    RXH("rx: indirect table in no region", h_ind_outside),
    RXH("rx: indirect length 24", h_ind_len_24),
    RXH("rx: indirect length 0", h_ind_len_0),
    RXH("rx: indirect with the next flag", h_ind_next_flag),
    RXH("rx: indirect entries loop", h_ind_loop),
    RXHF("rx: indirect not negotiated", F_NO_INDIRECT, h_ind_without_feature),
    RXH("rx: avail index jumps by ring size + 1", h_avail_jump),
    RXH("rx: avail index moves backwards", h_avail_backwards),
    {{"rx: bad second buffer of a merged frame"}, true, h_bad_after_good, true},
};

static void test_hostile(void **state)
{
    struct vut *v = *state;
    const struct hostile_case *c = v->tcase;
    unsigned q = c->rx ? RXQ : TXQ, other = c->rx ? TXQ : RXQ;
    int reason = c->rx ? VSW_DROP_TX_BAD_DESC : VSW_DROP_RX_BAD_DESC;
    static uint8_t frame[64];
    struct vut_snapshot snap;
    struct pkt *src = &pkts[40];

    c->post(v, q, c->rx ? VRING_DESC_F_WRITE : 0);
    memset(frame, 0x42, sizeof(frame));
    pkt_from_buffer(src, frame, 60);
    vut_snap_take(v, &snap);

    if (c->rx)
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &src, 1), 0);
    else
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);

    if (c->writes_ok) {
        for (unsigned r = 0; r < VUT_NREG; r++)
            free(snap.file[r]);
        assert_true(vut_canaries_ok(v));
    } else {
        snap_check(v, &snap); /* also checks the canaries around R0 */
    }
    assert_false(vu_dev_queue_ready(v->dev, (uint16_t)q));
    assert_true(vu_dev_queue_ready(v->dev, (uint16_t)other));
    assert_int_equal(vut_used_idx(v, q), 0);
    assert_int_equal(vut_calls(v, q), 0);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.queue_errors, 1);
    vut_check_drops(&st, reason, 1);
    assert_int_equal(st.rx_packets + st.tx_packets, 0);

    /* Stopped means stopped: no second error, the burst functions just return. */
    if (c->rx) {
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &src, 1), 0);
        st = vut_stats(v);
        assert_int_equal(st.drops[VSW_DROP_TX_NOT_READY], 1);
        assert_int_equal(st.drops[reason], 1);
    } else {
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
        vu_dev_dequeue_done(v->dev, TXQ, pkts, 0);
        st = vut_stats(v);
        vut_check_drops(&st, reason, 1);
    }
    assert_int_equal(st.queue_errors, 1);
    assert_int_equal(vut_used_idx(v, q), 0);
    assert_false(vu_dev_queue_has_work(v->dev, (uint16_t)q));
    assert_int_equal(vu_dev_queue_kickfd(v->dev, (uint16_t)q), -1);
}

/* A good frame before the bad chain in the same burst is delivered; the queue then stops. */
static void test_hostile_mid_burst(void **state)
{
    struct vut *v = *state;
    uint16_t good = tx_post_good(v, 60, 1);
    h_loop2(v, TXQ, 0);
    tx_post_good(v, 60, 2);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 60, 1);
    assert_false(vu_dev_queue_ready(v->dev, TXQ));
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    assert_int_equal(vut_used_idx(v, TXQ), 1);
    check_used(v, TXQ, 0, good, 0);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.queue_errors, 1);
    vut_check_drops(&st, VSW_DROP_RX_BAD_DESC, 1);
    assert_int_equal(st.rx_packets, 1);
}

/* ====================================================================================== */
/* RX: delivery into the guest                                                             */

enum bufmode { BUF_SINGLE, BUF_CHAIN3, BUF_INDIRECT2 };

struct enq_case {
    struct case_hdr h;
    uint32_t frames[4];
    unsigned nframes;
    uint32_t bufsize; /* each posted buffer (BUF_SINGLE) */
    unsigned nbufs;
    enum bufmode mode;
    uint16_t sent;
    uint16_t used;        /* used entries published */
    uint32_t lens[8];     /* their lengths */
    uint16_t nbuffers[4]; /* num_buffers in each delivered frame's header (0: not checked) */
    int drop;
    uint64_t ndrop;
};

static const struct enq_case enq_cases[] = {
    {{"one frame, one buffer"}, {60}, 1, 2048, 8, BUF_SINGLE, 1, 1, {72}, {1}, NO_DROP, 0},
    {{"frame filling a buffer exactly"},
     {2036},
     1,
     2048,
     2,
     BUF_SINGLE,
     1,
     1,
     {2048},
     {1},
     NO_DROP,
     0},
    {{"9000 bytes over 2048-byte buffers"},
     {9000},
     1,
     2048,
     8,
     BUF_SINGLE,
     1,
     5,
     {2048, 2048, 2048, 2048, 820},
     {5},
     NO_DROP,
     0},
    {{"9000 bytes over 4096-byte buffers"},
     {9000},
     1,
     4096,
     4,
     BUF_SINGLE,
     1,
     3,
     {4096, 4096, 820},
     {3},
     NO_DROP,
     0},
    {{"largest frame over 2048-byte buffers"},
     {VSW_MAX_FRAME},
     1,
     2048,
     40,
     BUF_SINGLE,
     1,
     33,
     {2048},
     {33},
     NO_DROP,
     0},
    {{"burst of three"},
     {60, 1514, 3000},
     3,
     2048,
     8,
     BUF_SINGLE,
     3,
     4,
     {72, 1526, 2048, 964},
     {1, 1, 2},
     NO_DROP,
     0},
    {{"burst of three, merged frame first"},
     {3000, 60, 1514},
     3,
     2048,
     8,
     BUF_SINGLE,
     3,
     4,
     {2048, 964, 72, 1526},
     {2, 1, 1},
     NO_DROP,
     0},
    {{"no buffers"}, {60}, 1, 2048, 0, BUF_SINGLE, 0, 0, {0}, {0}, VSW_DROP_TX_NO_BUF, 1},
    {{"burst of three, two buffers"},
     {60, 61, 62},
     3,
     2048,
     2,
     BUF_SINGLE,
     2,
     2,
     {72, 73},
     {1, 1},
     VSW_DROP_TX_NO_BUF,
     1},
    {{"burst of four, no buffers"},
     {60, 61, 62, 63},
     4,
     2048,
     0,
     BUF_SINGLE,
     0,
     0,
     {0},
     {0},
     VSW_DROP_TX_NO_BUF,
     4},
    {{"9000 bytes, two buffers"},
     {9000},
     1,
     2048,
     2,
     BUF_SINGLE,
     0,
     0,
     {0},
     {0},
     VSW_DROP_TX_NO_BUF,
     1},
    {{"indirect RX buffer"}, {3000}, 1, 0, 1, BUF_INDIRECT2, 1, 1, {3012}, {1}, NO_DROP, 0},
    {{"chained RX buffer"}, {3000}, 1, 0, 1, BUF_CHAIN3, 1, 1, {3012}, {1}, NO_DROP, 0},
    {{"zero-length buffer"}, {60}, 1, 0, 1, BUF_SINGLE, 0, 0, {0}, {0}, VSW_DROP_TX_TOO_BIG, 1},
    {{"no MRG: one buffer", VUT_F_BASE}, {60}, 1, 2048, 2, BUF_SINGLE, 1, 1, {72}, {1}, NO_DROP, 0},
    {{"no MRG: frame larger than the buffer", VUT_F_BASE},
     {3000},
     1,
     2048,
     4,
     BUF_SINGLE,
     0,
     0,
     {0},
     {0},
     VSW_DROP_TX_TOO_BIG,
     1},
    {{"no MRG: chained buffer holds it", VUT_F_BASE},
     {3000},
     1,
     0,
     1,
     BUF_CHAIN3,
     1,
     1,
     {3012},
     {1},
     NO_DROP,
     0},
    {{"no MRG: indirect buffer holds it", VUT_F_BASE},
     {3000},
     1,
     0,
     1,
     BUF_INDIRECT2,
     1,
     1,
     {3012},
     {1},
     NO_DROP,
     0},
    {{"legacy 10-byte header", F_LEGACY},
     {60},
     1,
     2048,
     1,
     BUF_SINGLE,
     1,
     1,
     {70},
     {0},
     NO_DROP,
     0},
};

/* Post one RX buffer (chain) of the case's kind; returns its head. */
static uint16_t rx_post(struct vut *v, enum bufmode mode, uint32_t size)
{
    struct vring_desc *d = vut_desc(v, RXQ);
    uint16_t h = 0;
    switch (mode) {
    case BUF_SINGLE:
        h = vut_alloc_desc(v, RXQ, 1);
        vut_set_desc(&d[h], vut_alloc_buf(v, size), size, VRING_DESC_F_WRITE, 0);
        break;
    case BUF_CHAIN3:
        h = vut_alloc_desc(v, RXQ, 3);
        vut_set_desc(&d[h], vut_alloc_buf(v, 12), 12, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
                     (uint16_t)(h + 1));
        vut_set_desc(&d[h + 1], vut_alloc_buf(v, 2048), 2048,
                     VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, (uint16_t)(h + 2));
        vut_set_desc(&d[h + 2], vut_alloc_buf(v, 2048), 2048, VRING_DESC_F_WRITE, 0);
        break;
    case BUF_INDIRECT2: {
        uint64_t t = vut_alloc_ind(v, 2);
        struct vring_desc *it = vut_g2h(v, t, 32);
        vut_set_desc(&it[0], vut_alloc_buf(v, 2048), 2048, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
                     1);
        vut_set_desc(&it[1], vut_alloc_buf(v, 2048), 2048, VRING_DESC_F_WRITE, 0);
        h = vut_alloc_desc(v, RXQ, 1);
        vut_set_desc(&d[h], t, 32, VRING_DESC_F_INDIRECT, 0);
        break;
    }
    default:
        fail();
    }
    vut_post(v, RXQ, h);
    return h;
}

/* Read the bytes the backend wrote for used entry `slot` (buffer `head` of the case's kind). */
static uint32_t rx_read(struct vut *v, uint16_t head, uint32_t len, uint8_t *out)
{
    struct vring_desc *table = vut_desc(v, RXQ);
    struct vring_desc d = table[head];
    if (d.flags & VRING_DESC_F_INDIRECT) {
        table = vut_g2h(v, d.addr, d.len);
        d = table[0];
    }
    uint32_t got = 0;
    for (;;) {
        uint32_t n = MIN(len - got, d.len);
        vut_guest_read(v, d.addr, out + got, n);
        got += n;
        if (got == len || !(d.flags & VRING_DESC_F_NEXT))
            break;
        d = table[d.next];
    }
    return got;
}

/* A packet of `len` pattern bytes spread over segments of at most 1000 bytes. */
static void make_src(struct pkt *p, uint8_t *buf, uint32_t len, uint8_t seed)
{
    for (uint32_t i = 0; i < len; i++)
        buf[i] = vut_frame_byte(i, seed);
    memset(p, 0, sizeof(*p));
    p->len = len;
    for (uint32_t off = 0; off < len; off += 1000) {
        p->seg[p->nseg].addr = buf + off;
        p->seg[p->nseg].len = MIN(1000, len - off);
        p->nseg++;
    }
    vut_fill_vnet(&p->vnet);
    p->vnet.num_buffers = 0x7777; /* the backend sets it */
    assert_int_equal(pkt_snapshot_header(p), 0);
}

static void test_enqueue(void **state)
{
    struct vut *v = *state;
    const struct enq_case *c = v->tcase;
    static uint8_t src[4][VSW_MAX_FRAME], got[VSW_MAX_FRAME + 64];
    struct pkt *ps[4];
    uint16_t heads[64];
    uint32_t hlen = hdr_len_of(v);
    uint64_t bytes = 0;

    for (unsigned i = 0; i < c->nbufs; i++)
        heads[i] = rx_post(v, c->mode, c->bufsize);
    for (unsigned i = 0; i < c->nframes; i++) {
        ps[i] = &pkts[i];
        make_src(ps[i], src[i], c->frames[i], (uint8_t)(i + 1));
    }
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, ps, (uint16_t)c->nframes), c->sent);
    assert_int_equal(vut_used_idx(v, RXQ), c->used);

    /* Each delivered frame: its used entries in order, header, num_buffers, bytes. */
    uint16_t slot = 0;
    for (unsigned f = 0; f < c->sent; f++) {
        uint32_t total = hlen + c->frames[f], off = 0;
        while (off < total) {
            struct vring_used_elem *e = &vut_used(v, RXQ)->ring[slot];
            assert_int_equal(e->id, heads[slot]);
            if (slot < ARRAY_SIZE(c->lens) && c->lens[slot])
                assert_int_equal(e->len, c->lens[slot]);
            assert_true(e->len > 0 && e->len <= total - off);
            assert_int_equal(rx_read(v, heads[slot], e->len, got + off), e->len);
            off += e->len;
            slot++;
        }
        struct virtio_net_hdr_v1 h, want;
        memcpy(&h, got, hlen);
        vut_fill_vnet(&want);
        assert_memory_equal(&h, &want, 10);
        if (c->nbuffers[f])
            assert_int_equal(h.num_buffers, c->nbuffers[f]);
        for (uint32_t i = 0; i < c->frames[f]; i++)
            if (got[hlen + i] != src[f][i])
                fail_msg("frame %u byte %u is %#x, want %#x", f, i, got[hlen + i], src[f][i]);
        bytes += c->frames[f];
    }
    assert_int_equal(slot, c->used);
    assert_int_equal(vut_calls(v, RXQ), c->used ? 1 : 0);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.tx_packets, c->sent);
    assert_int_equal(st.tx_bytes, bytes);
    vut_check_drops(&st, c->drop, c->ndrop);
    assert_int_equal(st.queue_errors, 0);
    assert_true(vu_dev_queue_ready(v->dev, RXQ));
    assert_true(vut_canaries_ok(v));
}

/* Without MRG_RXBUF but with VERSION_1 the 12-byte header still says num_buffers = 1. */
static void test_enqueue_num_buffers_no_mrg(void **state)
{
    struct vut *v = *state;
    static uint8_t buf[64], got[128];
    uint16_t h = rx_post(v, BUF_SINGLE, 2048);
    make_src(&pkts[0], buf, 60, 1);
    struct pkt *p = &pkts[0];
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    rx_read(v, h, 72, got);
    struct virtio_net_hdr_v1 hdr;
    memcpy(&hdr, got, sizeof(hdr));
    assert_int_equal(hdr.num_buffers, 1); /* virtio 1.x 5.1.6.4.1 */
}

/* A frame that needs more buffers than posted waits for them, and is then delivered. */
static void test_enqueue_waits_for_buffers(void **state)
{
    struct vut *v = *state;
    static uint8_t src[9000], got[9100];
    uint16_t heads[5];
    struct pkt *p = &pkts[0];
    make_src(p, src, 9000, 5);
    heads[0] = rx_post(v, BUF_SINGLE, 2048);
    heads[1] = rx_post(v, BUF_SINGLE, 2048);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 0);
    assert_int_equal(vut_used_idx(v, RXQ), 0);
    assert_int_equal(vut_calls(v, RXQ), 0);
    for (unsigned i = 2; i < 5; i++)
        heads[i] = rx_post(v, BUF_SINGLE, 2048);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    assert_int_equal(vut_used_idx(v, RXQ), 5);
    uint32_t off = 0;
    for (unsigned i = 0; i < 5; i++) {
        check_used(v, RXQ, (uint16_t)i, heads[i], i < 4 ? 2048 : 820);
        off += rx_read(v, heads[i], i < 4 ? 2048 : 820, got + off);
    }
    assert_int_equal(off, 9012);
    assert_memory_equal(got + 12, src, 9000);
    assert_int_equal(got[10] | got[11] << 8, 5);
    struct vu_dev_stats st = vut_stats(v);
    vut_check_drops(&st, VSW_DROP_TX_NO_BUF, 1);
    assert_int_equal(st.tx_packets, 1);
}

/* The guest receives the private header copy (possibly rewritten, e.g. by NAT), not what
 * the source buffer holds now. */
static void test_enqueue_uses_private_header(void **state)
{
    struct vut *v = *state;
    static uint8_t src[300], got[400];
    struct pkt *p = &pkts[0];
    make_src(p, src, 300, 3);
    for (unsigned i = 0; i < 12; i++)
        p->hdr[i] = (uint8_t)(0xc0 + i); /* rewritten MACs */
    memset(src, 0xee, 20);               /* the source changed its buffer afterwards */
    uint16_t h = rx_post(v, BUF_SINGLE, 2048);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    rx_read(v, h, 312, got);
    for (unsigned i = 0; i < 300; i++) {
        uint8_t want = i < 12 ? (uint8_t)(0xc0 + i) : vut_frame_byte(i, 3);
        if (got[12 + i] != want)
            fail_msg("byte %u is %#x, want %#x", i, got[12 + i], want);
    }
}

/* VM to VM: a frame dequeued from the TX ring goes straight into the RX ring. */
static void test_tx_to_rx(void **state)
{
    struct vut *v = *state;
    static uint8_t s[5100], got[5100];
    uint32_t pieces[] = {12, 700, 1300, 3000};
    vut_make_stream(s, 12, 5000, 11);
    tx_post(v, s, pieces, 4, DIRECT, 0);
    uint16_t h[3];
    for (unsigned i = 0; i < 3; i++)
        h[i] = rx_post(v, BUF_SINGLE, 2048);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    struct pkt *p = &pkts[0];
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    uint32_t off = 0;
    for (unsigned i = 0; i < 3; i++)
        off += rx_read(v, h[i], vut_used(v, RXQ)->ring[i].len, got + off);
    assert_int_equal(off, 5012);
    assert_memory_equal(got, s, 10); /* the header went through */
    assert_int_equal(got[10] | got[11] << 8, 3);
    assert_memory_equal(got + 12, s + 12, 5000);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.rx_packets, 1);
    assert_int_equal(st.tx_packets, 1);
    assert_int_equal(st.rx_bytes, 5000);
    assert_int_equal(st.tx_bytes, 5000);
}

/* An RX queue that is not running counts what it could not take. */
static void test_enqueue_not_ready(void **state)
{
    struct vut *v = *state;
    static uint8_t src[60];
    struct pkt *ps[3] = {&pkts[0], &pkts[1], &pkts[2]};
    for (unsigned i = 0; i < 3; i++)
        make_src(ps[i], src, 60, 1);
    rx_post(v, BUF_SINGLE, 2048);
    vut_state(v, VHOST_USER_SET_VRING_ENABLE, RXQ, 0);
    assert_false(vu_dev_queue_ready(v->dev, RXQ));
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, ps, 3), 0);
    assert_int_equal(vut_used_idx(v, RXQ), 0);
    struct vu_dev_stats st = vut_stats(v);
    vut_check_drops(&st, VSW_DROP_TX_NOT_READY, 3);
    vut_state(v, VHOST_USER_SET_VRING_ENABLE, RXQ, 1);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, ps, 1), 1);
}

/* ====================================================================================== */
/* Notifications                                                                           */

struct notify_case {
    struct case_hdr h;
    bool tx;             /* completion of TX buffers (dequeue_done), else RX delivery */
    uint16_t used_event; /* written after the ring (EVENT_IDX) */
    uint16_t avail_flags;
    unsigned nframes;  /* in one burst */
    uint64_t calls;    /* eventfd counter afterwards */
    unsigned nframes2; /* a second burst, the guest not having moved used_event */
    uint64_t calls2;
};

static const struct notify_case notify_cases[] = {
    {{"event idx: one frame"}, false, 0, 0, 1, 1, 1, 0},
    {{"event idx: burst of three, one call"}, false, 0, 0, 3, 1, 0, 0},
    {{"event idx: used_event 5 not reached"}, false, 5, 0, 1, 0, 4, 0},
    {{"event idx: used_event 5 crossed by the second burst"}, false, 5, 0, 3, 0, 3, 1},
    {{"event idx: used_event 2 crossed by a burst of 3"}, false, 2, 0, 3, 1, 0, 0},
    {{"event idx: used_event 3 not crossed by a burst of 3"}, false, 3, 0, 3, 0, 1, 1},
    {{"event idx: NO_INTERRUPT flag ignored"}, false, 0, VRING_AVAIL_F_NO_INTERRUPT, 1, 1, 0, 0},
    {{"no event idx: NO_INTERRUPT", F_NO_EVENT_IDX},
     false,
     0,
     VRING_AVAIL_F_NO_INTERRUPT,
     2,
     0,
     2,
     0},
    {{"no event idx: interrupts on", F_NO_EVENT_IDX}, false, 0, 0, 3, 1, 2, 1},
    {{"no event idx: used_event ignored", F_NO_EVENT_IDX}, false, 9, 0, 1, 1, 0, 0},
    {{"tx done, event idx: used_event 0"}, true, 0, 0, 2, 1, 1, 0},
    {{"tx done, event idx: used_event 9"}, true, 9, 0, 2, 0, 0, 0},
    {{"tx done, no event idx: NO_INTERRUPT", F_NO_EVENT_IDX},
     true,
     0,
     VRING_AVAIL_F_NO_INTERRUPT,
     2,
     0,
     1,
     0},
    {{"tx done, no event idx: interrupts on", F_NO_EVENT_IDX}, true, 0, 0, 2, 1, 1, 1},
};

static void notify_burst(struct vut *v, bool tx, unsigned n)
{
    static uint8_t src[60];
    if (tx) {
        for (unsigned i = 0; i < n; i++)
            tx_post_good(v, 60, 1);
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), n);
        vu_dev_dequeue_done(v->dev, TXQ, pkts, (uint16_t)n);
    } else {
        struct pkt *ps[8];
        for (unsigned i = 0; i < n; i++) {
            rx_post(v, BUF_SINGLE, 2048);
            ps[i] = &pkts[i];
            make_src(ps[i], src, 60, 1);
        }
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, ps, (uint16_t)n), n);
    }
}

static void test_notify(void **state)
{
    struct vut *v = *state;
    const struct notify_case *c = v->tcase;
    unsigned q = c->tx ? TXQ : RXQ;
    struct vring_avail *a = vut_avail(v, q);
    a->flags = c->avail_flags;
    a->ring[VUT_QSIZE] = c->used_event;
    notify_burst(v, c->tx, c->nframes);
    assert_int_equal(vut_used_idx(v, q), c->nframes);
    assert_int_equal(vut_calls(v, q), c->calls);
    if (c->nframes2) {
        notify_burst(v, c->tx, c->nframes2);
        assert_int_equal(vut_calls(v, q), c->calls2);
    }
    assert_int_equal(vut_calls(v, c->tx ? RXQ : TXQ), 0);
}

/* Polling queues (SET_VRING_CALL without fd) are never notified, and nothing breaks. */
static void test_notify_no_callfd(void **state)
{
    struct vut *v = *state;
    uint64_t idx = RXQ | VHOST_USER_VRING_NOFD;
    vut_ok(v, VHOST_USER_SET_VRING_CALL, &idx, 8, NULL, 0, 0, NULL);
    idx = TXQ | VHOST_USER_VRING_NOFD;
    vut_ok(v, VHOST_USER_SET_VRING_CALL, &idx, 8, NULL, 0, 0, NULL);
    notify_burst(v, false, 2);
    notify_burst(v, true, 2);
    assert_int_equal(vut_calls(v, RXQ), 0);
    assert_int_equal(vut_calls(v, TXQ), 0);
    assert_int_equal(vut_used_idx(v, RXQ), 2);
    assert_int_equal(vut_used_idx(v, TXQ), 2);
}

/* Kick suppression for PMDs that sleep: avail_event / NO_NOTIFY, and has_work. */
static void test_kick_suppression(void **state)
{
    struct vut *v = *state;
    struct vring_used *u = vut_used(v, TXQ);
    uint16_t *avail_event = (uint16_t *)&u->ring[VUT_QSIZE];
    assert_false(vu_dev_queue_has_work(v->dev, TXQ));
    tx_post_good(v, 60, 1);
    assert_true(vu_dev_queue_has_work(v->dev, TXQ));
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    assert_false(vu_dev_queue_has_work(v->dev, TXQ));
    *avail_event = 0x5555;
    vu_dev_queue_set_notify(v->dev, TXQ, true);
    assert_int_equal(*avail_event, 1); /* kick me when you add entry 1 */
    vu_dev_queue_set_notify(v->dev, TXQ, false);
    assert_int_equal(*avail_event, 1); /* stale: kicks become rare */

    /* A queue handed from a sleeping PMD to another one: the new owner enables kicks while
     * the old owner has not yet woken to disable them. The request must be written again at
     * the current position, or the new owner sleeps through the guest's frames. */
    vu_dev_queue_set_notify(v->dev, TXQ, true); /* old owner goes to sleep */
    assert_int_equal(*avail_event, 1);
    tx_post_good(v, 60, 2); /* traffic while it sleeps... */
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1); /* ...taken by the new one */
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    vu_dev_queue_set_notify(v->dev, TXQ, true); /* the new owner goes to sleep */
    assert_int_equal(*avail_event, 2);
    vu_dev_queue_set_notify(v->dev, TXQ, false); /* the old owner wakes late */
    vu_dev_queue_set_notify(v->dev, TXQ, true);
    assert_int_equal(*avail_event, 2);
}

/*
 * An RX buffer that already holds the right virtio-net header (a recycled DPDK buffer) is
 * not written there: the header's page is made read-only in the switch's own mapping, and
 * the frame still arrives. A different header is rewritten.
 */
static void test_rx_header_left_clean(void **state)
{
    struct vut *v = *state;
    const uint64_t frame_gpa = 0x40000, hdr_gpa = frame_gpa - 12;
    struct virtio_net_hdr_v1 want = {.num_buffers = 1}, got;
    static uint8_t frame[60];
    for (unsigned i = 0; i < sizeof(frame); i++)
        frame[i] = (uint8_t)(i * 7 + 1);
    struct pkt *p = &pkts[0];
    uint64_t contig;
    uint8_t *hdr_page = vu_mem_gpa_to_host(&v->dev->mem, frame_gpa - 4096, 4096, &contig);
    assert_non_null(hdr_page);

    for (int round = 0; round < 2; round++) {
        struct virtio_net_hdr_v1 old = want;
        if (round == 1)
            old.num_buffers = 7; /* stale: must be rewritten */
        vut_guest_write(v, hdr_gpa, &old, sizeof(old));
        uint16_t h = (uint16_t)(v->next_desc[RXQ]++);
        vut_set_desc(&vut_desc(v, RXQ)[h], hdr_gpa, 2048, VRING_DESC_F_WRITE, 0);
        vut_post(v, RXQ, h);
        pkt_from_buffer(p, frame, sizeof(frame));
        if (round == 0)
            assert_int_equal(mprotect(hdr_page, 4096, PROT_READ), 0);
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
        assert_int_equal(mprotect(hdr_page, 4096, PROT_READ | PROT_WRITE), 0);
        vut_guest_read(v, hdr_gpa, &got, sizeof(got));
        assert_memory_equal(&got, &want, sizeof(want));
        uint8_t back[sizeof(frame)];
        vut_guest_read(v, frame_gpa, back, sizeof(back));
        assert_memory_equal(back, frame, sizeof(frame));
    }
    assert_int_equal(vut_used_idx(v, RXQ), 2);
}

static void test_kick_suppression_no_event_idx(void **state)
{
    struct vut *v = *state;
    struct vring_used *u = vut_used(v, TXQ);
    assert_int_equal(u->flags, VRING_USED_F_NO_NOTIFY); /* poll mode after start */
    vu_dev_queue_set_notify(v->dev, TXQ, true);
    assert_int_equal(u->flags, 0);
    vu_dev_queue_set_notify(v->dev, TXQ, false);
    assert_int_equal(u->flags, VRING_USED_F_NO_NOTIFY);
}

/* ====================================================================================== */
/* Recovery and ring state                                                                 */

struct recover_case {
    struct case_hdr h;
    bool rx;
    void (*brk)(struct vut *v, unsigned q, uint16_t w);
};

static const struct recover_case recover_cases[] = {
    {{"recover: tx head out of the ring"}, false, h_head_oob},
    {{"recover: tx chain loop"}, false, h_loop2},
    {{"recover: tx avail index jump"}, false, h_avail_jump},
    {{"recover: tx indirect in indirect"}, false, h_ind_in_ind},
    {{"recover: rx readable buffer"}, true, h_wrong_dir},
    {{"recover: rx address in no region"}, true, h_outside},
};

static void test_recover(void **state)
{
    struct vut *v = *state;
    const struct recover_case *c = v->tcase;
    unsigned q = c->rx ? RXQ : TXQ;
    static uint8_t src[60], s[128], got[128];
    struct pkt *p = &pkts[40];
    make_src(p, src, 60, 2);

    c->brk(v, q, c->rx ? VRING_DESC_F_WRITE : 0);
    if (c->rx)
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 0);
    else
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
    assert_false(vu_dev_queue_ready(v->dev, (uint16_t)q));

    /* The guest repairs slot 0 of its ring: a valid single buffer. */
    uint16_t d = vut_alloc_desc(v, q, 1);
    uint64_t b = vut_alloc_buf(v, 2048);
    uint32_t len = vut_make_stream(s, 12, 60, 6);
    vut_guest_write(v, b, s, len);
    vut_set_desc(&vut_desc(v, q)[d], b, c->rx ? 2048 : len, c->rx ? VRING_DESC_F_WRITE : 0, 0);
    vut_avail(v, q)->ring[0] = d;
    __atomic_store_n(&vut_avail(v, q)->idx, 1, __ATOMIC_RELEASE);

    /* Still stopped until the frontend restarts the ring. */
    if (c->rx)
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 0);
    else
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
    assert_false(vu_dev_queue_ready(v->dev, (uint16_t)q));

    vut_kick(v, q);
    assert_true(vu_dev_queue_ready(v->dev, (uint16_t)q));
    if (c->rx) {
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
        check_used(v, RXQ, 0, d, 72);
        rx_read(v, d, 72, got);
        assert_memory_equal(got + 12, src, 60);
    } else {
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
        vut_check_pkt(&pkts[0], 60, 6);
        vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
        check_used(v, TXQ, 0, d, 0);
    }
    assert_int_equal(vut_used_idx(v, q), 1);
    assert_int_equal(vut_stats(v).queue_errors, 1);
}

/* After a disconnect, a fresh start-up on zeroed rings works. */
static void test_recover_by_reconnect(void **state)
{
    struct vut *v = *state;
    h_loop2(v, TXQ, 0);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
    assert_false(vu_dev_queue_ready(v->dev, TXQ));
    vu_dev_disconnect(v->dev);
    memset(vut_g2h(v, 0, 0x8000), 0, 0x8000); /* the guest driver resets its rings */
    v->next_desc[0] = v->next_desc[1] = 0;
    vu_dev_set_connected(v->dev);
    vut_startup(v, VUT_F_ALL, VUT_PF_ALL, 2);
    tx_post_good(v, 90, 8);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 90, 8);
    assert_int_equal(vut_stats(v).queue_errors, 1); /* counters describe the port */
}

/* GET_VRING_BASE reports where the rings stopped; SET_VRING_BASE resumes there. */
static void test_vring_base_after_traffic(void **state)
{
    struct vut *v = *state;
    struct vhost_user_msg m, r;
    bool out;
    for (unsigned i = 0; i < 3; i++)
        tx_post_good(v, 60, (uint8_t)i);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 3);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 3);
    notify_burst(v, false, 2);

    for (unsigned q = 0; q < 2; q++) {
        vut_msg_init(&m, VHOST_USER_GET_VRING_BASE, 8);
        m.payload.state.index = q;
        assert_int_equal(vut_process(v, &m, NULL, 0, 0, &r, &out), 0);
        assert_true(out);
        assert_int_equal(r.payload.state.index, q);
        assert_int_equal(r.payload.state.num, q == TXQ ? 3 : 2);
        assert_false(vu_dev_queue_ready(v->dev, (uint16_t)q));
    }
    /* stopped rings take nothing */
    tx_post_good(v, 61, 9);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);

    vut_state(v, VHOST_USER_SET_VRING_BASE, TXQ, 3);
    vut_kick(v, TXQ);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 61, 9);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    assert_int_equal(vut_used_idx(v, TXQ), 4);
}

int main(void)
{
    int rc = 0;
    vut_main_init();
#define TABLE(group, cases, fn)                                                                    \
    rc |= vut_run_table(group, cases, sizeof(cases[0]), ARRAY_SIZE(cases), case_name, fn, setup,   \
                        teardown)
    TABLE("good", good_cases, test_good);
    TABLE("drops", drop_cases, test_drop);
    TABLE("hostile", hostile_cases, test_hostile);
    TABLE("enqueue", enq_cases, test_enqueue);
    TABLE("notify", notify_cases, test_notify);
    TABLE("recover", recover_cases, test_recover);

    static const struct case_hdr no_mrg = {"", VUT_F_BASE}, no_evidx = {"", F_NO_EVENT_IDX};
    const struct CMUnitTest single[] = {
        cmocka_unit_test_setup_teardown(test_good_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_bursts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_mid_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_disabled_drained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_mid_burst, setup, teardown),
        cmocka_unit_test_prestate_setup_teardown(test_enqueue_num_buffers_no_mrg, setup, teardown,
                                                 (void *)&no_mrg),
        cmocka_unit_test_setup_teardown(test_enqueue_waits_for_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_uses_private_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_to_rx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_not_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_no_callfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kick_suppression, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_header_left_clean, setup, teardown),
        cmocka_unit_test_prestate_setup_teardown(test_kick_suppression_no_event_idx, setup,
                                                 teardown, (void *)&no_evidx),
        cmocka_unit_test_setup_teardown(test_recover_by_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vring_base_after_traffic, setup, teardown),
    };
    rc |= cmocka_run_group_tests_name("split", single, NULL, NULL);
    return rc;
}
