/*
 * Unit tests of the packed-ring datapath (src/vhost_user/vu_packed.c) against a hand-built
 * guest: memfd memory in three regions, packed rings written directly by a small fake driver
 * (descriptor ring at the split descriptor table's address, driver and device event areas at
 * the avail and used rings' addresses), the device set up through vu_dev_process_msg() with
 * RING_PACKED negotiated. Queue 1 is the guest's TX ring (vu_dev_dequeue_burst), queue 0 its
 * RX ring (vu_dev_enqueue_burst). Tables:
 *   - good TX layouts: bytes, segments, buffer ids, used descriptors;
 *   - counted drops that keep the queue running;
 *   - hostile rings: each stops its queue, is counted once, and leaves every byte of guest
 *     memory and everything outside it untouched;
 *   - RX delivery with and without mergeable buffers, num_buffers, and its drops;
 *   - used-buffer notifications (driver area: ENABLE, DISABLE, DESC with EVENT_IDX);
 * and single cases for ring wrap-around, kick suppression (device area), GET/SET_VRING_BASE
 * encoding, recovery, and the ring layout following the negotiated features.
 */
#include "vu_test_util.h"

#define TXQ 1
#define RXQ 0

#define R0_END  (VUT_R0_GPA + VUT_R0_SIZE)
#define R1_END  (VUT_R1_GPA + VUT_R1_SIZE)
#define R2_END  (VUT_R2_GPA + VUT_R2_SIZE)
#define NOWHERE 0x200000ull /* between R1 and R2: in no region */

#define F_PACKED       (1ull << VIRTIO_F_RING_PACKED)
#define F_ALL          (VUT_F_ALL | F_PACKED)
#define F_NO_MRG       (VUT_F_BASE | F_PACKED)
#define F_NO_EVENT_IDX (F_ALL & ~(1ull << VIRTIO_RING_F_EVENT_IDX))
#define F_NO_INDIRECT  (F_ALL & ~(1ull << VIRTIO_RING_F_INDIRECT_DESC))

#define D_NEXT  VRING_DESC_F_NEXT
#define D_WRITE VRING_DESC_F_WRITE
#define D_IND   VRING_DESC_F_INDIRECT
#define D_AVAIL VRING_PACKED_DESC_F_AVAIL
#define D_USED  VRING_PACKED_DESC_F_USED

#define NO_DROP (-1)
#define HLEN    12 /* VERSION_1: every case here has the 12-byte header */

/* Every case table entry starts with this: setup() reads the features to negotiate. */
struct case_hdr {
    const char *name;
    uint64_t features; /* 0: F_ALL */
};

/* ---- the fake driver of one packed ring ---- */

struct rx_piece {
    uint64_t gpa;
    uint32_t len;
};

struct pdrv {
    uint16_t avail; /* next slot we make available */
    bool avail_wrap;
    uint16_t used; /* next slot a used descriptor comes at */
    bool used_wrap;
    uint16_t next_id;
    uint16_t ndesc[VUT_QSIZE]; /* ring slots each buffer id took */
    struct rx_piece rx[VUT_QSIZE][3];
    unsigned rx_n[VUT_QSIZE];
};

static struct pdrv drv[2];
static struct pkt pkts[64];

static int setup(void **state)
{
    const struct case_hdr *h = *state;
    struct vut *v = vut_new();
    v->tcase = h;
    vut_startup(v, h && h->features ? h->features : F_ALL, VUT_PF_ALL, 2);
    memset(pkts, 0, sizeof(pkts));
    memset(drv, 0, sizeof(drv));
    for (unsigned q = 0; q < 2; q++)
        drv[q].avail_wrap = drv[q].used_wrap = true;
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

static struct vring_packed_desc *ring(struct vut *v, unsigned q)
{
    return vut_g2h(v, VUT_DESC_GPA(q), 16 * VUT_QSIZE);
}

static struct vring_packed_desc_event *driver_area(struct vut *v, unsigned q)
{
    return vut_g2h(v, VUT_AVAIL_GPA(q), 4);
}

static struct vring_packed_desc_event *device_area(struct vut *v, unsigned q)
{
    return vut_g2h(v, VUT_USED_GPA(q), 4);
}

/* AVAIL / USED bits that make a descriptor available in the lap of wrap counter `wrap`. */
static uint16_t avail_bits(bool wrap)
{
    return wrap ? D_AVAIL : D_USED;
}

/* Write one descriptor at the driver's next slot (flags as given, raw) and step past it. */
static uint16_t put_raw(struct vut *v, unsigned q, uint64_t addr, uint32_t len, uint16_t id,
                        uint16_t flags, bool release)
{
    struct pdrv *d = &drv[q];
    uint16_t slot = d->avail;
    struct vring_packed_desc *r = &ring(v, q)[slot];
    r->addr = addr;
    r->len = len;
    r->id = id;
    __atomic_store_n(&r->flags, flags, release ? __ATOMIC_RELEASE : __ATOMIC_RELAXED);
    if (++d->avail == VUT_QSIZE) {
        d->avail = 0;
        d->avail_wrap = !d->avail_wrap;
    }
    return slot;
}

/*
 * Make a buffer of n descriptors available as a driver does: NEXT on all but the last, the
 * AVAIL/USED bits of each slot's lap, the buffer id in every descriptor, the first
 * descriptor's flags stored last. Returns the buffer id.
 */
static uint16_t post(struct vut *v, unsigned q, const struct vring_packed_desc *descs, unsigned n)
{
    struct pdrv *d = &drv[q];
    uint16_t id = d->next_id;
    d->next_id = (uint16_t)((d->next_id + 1) % VUT_QSIZE);
    uint16_t head = d->avail, head_flags = 0;
    for (unsigned i = 0; i < n; i++) {
        uint16_t f =
            (uint16_t)(descs[i].flags | (i + 1 < n ? D_NEXT : 0) | avail_bits(d->avail_wrap));
        if (i == 0) {
            head_flags = f;
            f = ring(v, q)[head].flags; /* unchanged until the rest is written */
        }
        put_raw(v, q, descs[i].addr, descs[i].len, id, f, false);
    }
    __atomic_store_n(&ring(v, q)[head].flags, head_flags, __ATOMIC_RELEASE);
    d->ndesc[id] = (uint16_t)n;
    return id;
}

/* Take the next used descriptor if the device wrote one: its id, len and flags. */
static bool take_used(struct vut *v, unsigned q, uint16_t *id, uint32_t *len, uint16_t *flags)
{
    struct pdrv *d = &drv[q];
    struct vring_packed_desc *r = &ring(v, q)[d->used];
    uint16_t f = __atomic_load_n(&r->flags, __ATOMIC_ACQUIRE);
    if (!!(f & D_AVAIL) != d->used_wrap || !!(f & D_USED) != d->used_wrap)
        return false;
    *id = r->id;
    *len = r->len;
    if (flags)
        *flags = f;
    assert_true(*id < VUT_QSIZE);
    assert_true(d->ndesc[*id] > 0);
    d->used = (uint16_t)(d->used + d->ndesc[*id]);
    if (d->used >= VUT_QSIZE) {
        d->used -= VUT_QSIZE;
        d->used_wrap = !d->used_wrap;
    }
    d->ndesc[*id] = 0;
    return true;
}

static void expect_used(struct vut *v, unsigned q, uint16_t id, uint32_t len)
{
    uint16_t got_id = 0, flags = 0;
    uint32_t got_len = 0;
    if (!take_used(v, q, &got_id, &got_len, &flags))
        fail_msg("queue %u: no used descriptor at slot %u, want id %u", q, drv[q].used, id);
    if (got_id != id || got_len != len)
        fail_msg("queue %u: used {id %u, len %u}, want {%u, %u}", q, got_id, got_len, id, len);
    assert_int_equal(!!(flags & D_WRITE), len > 0);
    assert_int_equal(flags & (D_NEXT | D_IND), 0);
}

static void expect_no_used(struct vut *v, unsigned q)
{
    uint16_t id;
    uint32_t len;
    if (take_used(v, q, &id, &len, NULL))
        fail_msg("queue %u: unexpected used descriptor {id %u, len %u}", q, id, len);
}

/* ====================================================================================== */
/* TX frames                                                                               */

enum layout { DIRECT, INDIRECT, INDIRECT_W, INDIRECT_NEXT };

/*
 * Write `stream` into guest buffers as descriptors of the given piece lengths (a direct
 * chain in the ring, or one indirect table) and make it available. The first piece goes at
 * first_gpa when not 0. Returns the buffer id.
 */
static uint16_t tx_post(struct vut *v, const uint8_t *stream, const uint32_t *pieces,
                        unsigned npieces, enum layout lay, uint64_t first_gpa)
{
    static struct vring_packed_desc d[256];
    assert_true(npieces <= ARRAY_SIZE(d));
    uint32_t off = 0;
    for (unsigned i = 0; i < npieces; i++) {
        uint64_t gpa = i == 0 && first_gpa ? first_gpa : vut_alloc_buf(v, MAX(pieces[i], 1));
        vut_guest_write(v, gpa, stream + off, pieces[i]);
        off += pieces[i];
        d[i] = (struct vring_packed_desc){gpa, pieces[i], 0, 0};
    }
    if (lay == DIRECT)
        return post(v, TXQ, d, npieces);
    /* Packed indirect tables: entries follow each other; DPDK also sets NEXT in them. */
    uint64_t t = vut_alloc_ind(v, npieces);
    struct vring_packed_desc *table = vut_g2h(v, t, 16ull * npieces);
    for (unsigned i = 0; i < npieces; i++) {
        table[i] = d[i];
        if (lay == INDIRECT_NEXT && i + 1 < npieces)
            table[i].flags = D_NEXT;
    }
    struct vring_packed_desc ind = {t, 16 * npieces, 0, D_IND | (lay == INDIRECT_W ? D_WRITE : 0)};
    return post(v, TXQ, &ind, 1);
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
    uint32_t len = vut_make_stream(s, HLEN, frame_len, seed);
    return tx_post(v, s, &len, 1, DIRECT, 0);
}

/* A frame in a chain of `ndesc` descriptors (header alone in the first when ndesc > 1). */
static uint16_t tx_post_chain(struct vut *v, uint32_t frame_len, uint8_t seed, unsigned ndesc)
{
    static uint8_t s[2048];
    uint32_t pieces[8], len = vut_make_stream(s, HLEN, frame_len, seed);
    assert_true(ndesc >= 1 && ndesc <= 8);
    if (ndesc == 1)
        return tx_post(v, s, &len, 1, DIRECT, 0);
    pieces[0] = HLEN;
    for (unsigned i = 1; i < ndesc; i++)
        pieces[i] = frame_len / (ndesc - 1);
    pieces[ndesc - 1] += frame_len % (ndesc - 1);
    return tx_post(v, s, pieces, ndesc, DIRECT, 0);
}

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
    {{"indirect, next flags in the table ignored"}, 1488, {12, 500, 988}, 3, INDIRECT_NEXT, 0, 2},
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
    {{"no EVENT_IDX", F_NO_EVENT_IDX}, 60, {72}, 1, DIRECT, 0, 1},
};

static void test_good(void **state)
{
    struct vut *v = *state;
    const struct good_case *c = v->tcase;
    static uint8_t s[VSW_MAX_FRAME + 64];
    uint32_t pieces[256];
    unsigned n = expand_pieces(c->pieces, c->npieces, c->frame_len, pieces);
    uint32_t len = vut_make_stream(s, HLEN, c->frame_len, 7), sum = 0;
    for (unsigned i = 0; i < n; i++)
        sum += pieces[i];
    assert_int_equal(sum, len); /* the table is consistent */

    assert_false(vu_dev_queue_has_work(v->dev, TXQ));
    uint16_t id = tx_post(v, s, pieces, n, c->lay, c->first_gpa);
    assert_true(vu_dev_queue_has_work(v->dev, TXQ));
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    struct pkt *p = &pkts[0];
    vut_check_pkt(p, c->frame_len, 7);
    assert_int_equal(p->nseg, c->nseg);
    assert_int_equal(p->src_id, id);
    assert_int_equal(p->out_port, PKT_OUT_DROP);
    struct virtio_net_hdr_v1 want;
    vut_fill_vnet(&want);
    assert_memory_equal(&p->vnet, &want, sizeof(want));

    /* Nothing is returned to the guest before dequeue_done. */
    expect_no_used(v, TXQ);
    assert_false(vu_dev_queue_has_work(v->dev, TXQ));
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts + 1, 32), 0);

    /* The header copy is private: the guest rewriting its buffer does not change it. */
    uint8_t orig[PKT_HDR_COPY];
    memcpy(orig, p->hdr, sizeof(orig));
    for (uint16_t i = 0; i < p->nseg; i++)
        memset((uint8_t *)p->seg[i].addr, 0xee, MIN(p->seg[i].len, PKT_HDR_COPY));
    assert_memory_equal(p->hdr, orig, p->hdr_len);

    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, id, 0);
    expect_no_used(v, TXQ);
    /* The used descriptor sits in the first slot; the rest of the chain is skipped. */
    assert_int_equal(drv[TXQ].used, drv[TXQ].avail);
    assert_int_equal(vut_calls(v, TXQ), 1); /* driver area ENABLE (0) */
    assert_int_equal(vut_calls(v, RXQ), 0);

    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.rx_packets, 1);
    assert_int_equal(st.rx_bytes, c->frame_len);
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
    uint16_t ids[ARRAY_SIZE(good_cases)];
    const struct good_case *cs[ARRAY_SIZE(good_cases)];
    unsigned n = 0;
    uint64_t bytes = 0;
    bool placed_boundary = false;
    for (size_t i = 0; i < ARRAY_SIZE(good_cases); i++) {
        const struct good_case *c = &good_cases[i];
        if (c->h.features)
            continue;
        /* cases placed at the R0/R1 boundary overlap: take the first of them */
        if (c->first_gpa && c->first_gpa < VUT_R1_GPA + 0x100 &&
            c->first_gpa + 0x100 > VUT_R1_GPA) {
            if (placed_boundary)
                continue;
            placed_boundary = true;
        }
        uint32_t pieces[256];
        unsigned np = expand_pieces(c->pieces, c->npieces, c->frame_len, pieces);
        vut_make_stream(s, HLEN, c->frame_len, (uint8_t)i);
        cs[n] = c;
        ids[n++] = tx_post(v, s, pieces, np, c->lay, c->first_gpa);
        bytes += c->frame_len;
    }
    assert_true(n >= 15);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 64), n);
    for (unsigned i = 0; i < n; i++) {
        vut_check_pkt(&pkts[i], cs[i]->frame_len, (uint8_t)(cs[i] - good_cases));
        assert_int_equal(pkts[i].nseg, cs[i]->nseg);
        assert_int_equal(pkts[i].src_id, ids[i]);
    }
    vu_dev_dequeue_done(v->dev, TXQ, pkts, (uint16_t)n);
    for (unsigned i = 0; i < n; i++)
        expect_used(v, TXQ, ids[i], 0);
    expect_no_used(v, TXQ);
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
    uint16_t ids[5];
    for (unsigned i = 0; i < 5; i++)
        ids[i] = tx_post_chain(v, 60 + i, (uint8_t)i, 1 + i % 3);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 2), 2);
    vut_check_pkt(&pkts[0], 60, 0);
    vut_check_pkt(&pkts[1], 61, 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 2);
    expect_used(v, TXQ, ids[0], 0);
    expect_used(v, TXQ, ids[1], 0);
    expect_no_used(v, TXQ);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 3);
    for (unsigned i = 0; i < 3; i++) {
        vut_check_pkt(&pkts[i], 62 + i, (uint8_t)(2 + i));
        assert_int_equal(pkts[i].src_id, ids[2 + i]);
    }
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 3);
    for (unsigned i = 2; i < 5; i++)
        expect_used(v, TXQ, ids[i], 0);
}

/*
 * The ring wraps: 600 frames in chains of 1 to 3 descriptors through a 256-slot ring, so
 * chains cross the end of the ring and both wrap counters flip several times; bursts of up
 * to 5 frames; the buffers are completed out of order once in a while.
 */
static void test_tx_wrap(void **state)
{
    struct vut *v = *state;
    unsigned frame = 0, slots = 0;
    uint64_t bytes = 0;
    for (unsigned round = 0; frame < 600; round++) {
        unsigned burst = 1 + round % 5;
        uint16_t ids[5];
        for (unsigned i = 0; i < burst; i++) {
            ids[i] =
                tx_post_chain(v, 60 + (frame + i) % 50, (uint8_t)(frame + i), 1 + (frame + i) % 3);
            bytes += 60 + (frame + i) % 50;
            slots += 1 + (frame + i) % 3;
        }
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), burst);
        for (unsigned i = 0; i < burst; i++)
            vut_check_pkt(&pkts[i], 60 + (frame + i) % 50, (uint8_t)(frame + i));
        if (round % 7 == 3 && burst > 1) { /* complete in reverse order */
            for (unsigned i = 0; i < burst / 2; i++) {
                struct pkt t = pkts[i];
                pkts[i] = pkts[burst - 1 - i];
                pkts[burst - 1 - i] = t;
                uint16_t x = ids[i];
                ids[i] = ids[burst - 1 - i];
                ids[burst - 1 - i] = x;
            }
        }
        vu_dev_dequeue_done(v->dev, TXQ, pkts, (uint16_t)burst);
        for (unsigned i = 0; i < burst; i++)
            expect_used(v, TXQ, ids[i], 0);
        expect_no_used(v, TXQ);
        assert_int_equal(drv[TXQ].used, drv[TXQ].avail);
        assert_int_equal(drv[TXQ].used_wrap, drv[TXQ].avail_wrap);
        frame += burst;
    }
    assert_true(slots > 4 * VUT_QSIZE); /* around the ring several times */
    assert_int_equal(drv[TXQ].avail, slots % VUT_QSIZE);
    assert_int_equal(drv[TXQ].avail_wrap, (slots / VUT_QSIZE) % 2 == 0);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.rx_packets, frame);
    assert_int_equal(st.rx_bytes, bytes);
    assert_int_equal(st.queue_errors, 0);
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
    {{"runt: header only"}, {12}, 1, DIRECT, VSW_DROP_RX_RUNT},
    {{"runt: shorter than the header"}, {8}, 1, DIRECT, VSW_DROP_RX_RUNT},
    {{"runt: one zero-length descriptor"}, {0}, 1, DIRECT, VSW_DROP_RX_RUNT},
    {{"runt: zero-length indirect entries"}, {0, 0}, 2, INDIRECT, VSW_DROP_RX_RUNT},
    {{"65 descriptors"}, {0}, 65, DIRECT, VSW_DROP_RX_TOO_MANY_SEGS},
    {{"65 descriptors, indirect"}, {0}, 65, INDIRECT, VSW_DROP_RX_TOO_MANY_SEGS},
    {{"200 descriptors"}, {0}, 200, DIRECT, VSW_DROP_RX_TOO_MANY_SEGS},
    {{"65563-byte frame"}, {12 + VSW_MAX_FRAME + 1}, 1, DIRECT, VSW_DROP_RX_TOO_BIG},
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
    vut_make_stream(s, HLEN, total > 12 ? total - 12 : 0, 1);

    uint16_t bad = tx_post(v, s, pieces, n, c->lay, 0);
    uint16_t good = tx_post_good(v, 60, 9);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 60, 9);
    assert_int_equal(pkts[0].src_id, good);
    struct vu_dev_stats st = vut_stats(v);
    vut_check_drops(&st, c->drop, 1);
    assert_int_equal(st.queue_errors, 0);
    assert_int_equal(st.rx_packets, 1);
    assert_true(vu_dev_queue_ready(v->dev, TXQ));
    expect_no_used(v, TXQ); /* the dropped chain waits for the burst's end too */

    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, bad, 0);
    expect_used(v, TXQ, good, 0);
    assert_int_equal(vut_calls(v, TXQ), 1);
    /* and the queue goes on */
    uint16_t next = tx_post_good(v, 100, 4);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 100, 4);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, next, 0);
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
    const uint32_t runt[1] = {HLEN + 13};
    uint16_t a = tx_post_good(v, 60, 1);
    vut_make_stream(s, HLEN, 13, 2);
    uint16_t bad = tx_post(v, s, runt, 1, DIRECT, 0);
    uint16_t b = tx_post_good(v, 70, 3), c = tx_post_good(v, 80, 4);

    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 60, 1);
    assert_int_equal(pkts[0].src_id, a);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, a, 0);
    expect_no_used(v, TXQ);

    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 2);
    vut_check_pkt(&pkts[0], 70, 3);
    assert_int_equal(pkts[0].src_id, b);
    vut_check_pkt(&pkts[1], 80, 4);
    assert_int_equal(pkts[1].src_id, c);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 2);
    expect_used(v, TXQ, bad, 0);
    expect_used(v, TXQ, b, 0);
    expect_used(v, TXQ, c, 0);
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
    uint16_t a = tx_post_good(v, 60, 1), b = tx_post_chain(v, 70, 2, 3);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 0);
    expect_used(v, TXQ, a, 0);
    expect_used(v, TXQ, b, 0);
    struct vu_dev_stats st = vut_stats(v);
    vut_check_drops(&st, VSW_DROP_RX_Q_STOPPED, 2);
    assert_int_equal(st.rx_packets, 0);
    vut_state(v, VHOST_USER_SET_VRING_ENABLE, TXQ, 1);
    tx_post_good(v, 80, 3);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 80, 3);
}

/*
 * A burst whose every frame is dropped gives the PMD nothing to forward, so it never calls
 * dequeue_done: the buffers must be back in the ring when dequeue_burst returns, or a guest
 * sending only such frames fills its ring and waits forever. Here the whole ring, lap after
 * lap, is runts (and no dequeue_done is ever called).
 */
static void test_tx_all_dropped_returned(void **state)
{
    struct vut *v = *state;
    static uint8_t s[64];
    uint32_t runt = 20; /* header + 8 bytes: shorter than an Ethernet header */
    vut_make_stream(s, HLEN, runt - HLEN, 1);
    for (unsigned lap = 0; lap < 3; lap++) {
        uint16_t ids[VUT_QSIZE];
        for (unsigned i = 0; i < VUT_QSIZE; i++)
            ids[i] = tx_post(v, s, &runt, 1, DIRECT, 0);
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
        /* the first burst's buffers are back at once ... */
        for (unsigned i = 0; i < 32; i++)
            expect_used(v, TXQ, ids[i], 0);
        expect_no_used(v, TXQ);
        /* ... and every later one's */
        for (unsigned b = 32; b < VUT_QSIZE; b += 32) {
            assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
            for (unsigned i = b; i < b + 32 && i < VUT_QSIZE; i++)
                expect_used(v, TXQ, ids[i], 0);
        }
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
        expect_no_used(v, TXQ);
    }
    struct vu_dev_stats st = vut_stats(v);
    vut_check_drops(&st, VSW_DROP_RX_RUNT, 3 * VUT_QSIZE);
    assert_int_equal(st.queue_errors, 0);
    /* and a good frame still goes through */
    uint16_t good = tx_post_good(v, 60, 7);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 60, 7);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, good, 0);
    assert_true(vut_canaries_ok(v));
}

/* ====================================================================================== */
/* Hostile rings: the queue stops, counted once, nothing outside touched                   */

struct hostile_case {
    struct case_hdr h;
    bool rx; /* on the RX ring (enqueue), else the TX ring (dequeue) */
    void (*post)(struct vut *v, unsigned q, uint16_t wflag);
    bool writes_ok; /* the backend may fill the guest's good buffers before the bad one */
};

/* One descriptor made available. */
static uint16_t post1(struct vut *v, unsigned q, uint64_t addr, uint32_t len, uint16_t flags)
{
    struct vring_packed_desc d = {addr, len, 0, flags};
    return post(v, q, &d, 1);
}

/* A chain of two: a valid first buffer, then `second` (its flags get NEXT off). */
static void post2(struct vut *v, unsigned q, uint16_t wflag, struct vring_packed_desc second)
{
    struct vring_packed_desc d[2] = {{vut_alloc_buf(v, 64), 64, 0, wflag}, second};
    post(v, q, d, 2);
}

/* An indirect table of `n` good entries at gpa (0: allocate), made available with `len`. */
static struct vring_packed_desc *post_ind(struct vut *v, unsigned q, uint64_t gpa, unsigned n,
                                          uint32_t len, uint16_t flags, uint16_t wflag)
{
    if (!gpa)
        gpa = vut_alloc_ind(v, n);
    struct vring_packed_desc *t = vut_g2h(v, gpa, 16ull * n);
    for (unsigned i = 0; i < n; i++)
        t[i] = (struct vring_packed_desc){vut_alloc_buf(v, 64), 64, 0, wflag};
    post1(v, q, gpa, len, flags | D_IND);
    return t;
}

#define HOSTILE(fn) static void fn(struct vut *v, unsigned q, uint16_t w)

HOSTILE(h_outside)
{
    post1(v, q, NOWHERE, 72, w);
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
    post1(v, q, R2_END - 16, 0x2000, w); /* would wrap to GPA 0xff0 */
}
HOSTILE(h_huge_len)
{
    post1(v, q, VUT_BUF_GPA, 0xffffffffu, w); /* through R0 and R1 into the gap */
}
HOSTILE(h_second_outside)
{
    post2(v, q, w, (struct vring_packed_desc){NOWHERE, 64, 0, w});
}
HOSTILE(h_longer_than_ring)
{
    /* Every slot of the ring in one chain whose last descriptor still says NEXT. */
    uint64_t b = vut_alloc_buf(v, 16);
    for (unsigned i = 0; i < VUT_QSIZE; i++)
        put_raw(v, q, b, 16, 0, (uint16_t)(w | D_NEXT | avail_bits(true)), i + 1 == VUT_QSIZE);
}
HOSTILE(h_chain_not_avail)
{
    /* The second descriptor of the chain still carries the previous lap's flags. */
    uint64_t b = vut_alloc_buf(v, 2048);
    ring(v, q)[1] = (struct vring_packed_desc){b, 2048, 0, w}; /* AVAIL 0, USED 0 */
    put_raw(v, q, vut_alloc_buf(v, 64), 64, 0, (uint16_t)(w | D_NEXT | avail_bits(true)), true);
}
HOSTILE(h_chain_wrong_wrap)
{
    /* The second descriptor is marked available for the other lap (AVAIL 0, USED 1). */
    uint64_t b = vut_alloc_buf(v, 2048);
    ring(v, q)[1] = (struct vring_packed_desc){b, 2048, 0, (uint16_t)(w | avail_bits(false))};
    put_raw(v, q, vut_alloc_buf(v, 64), 64, 0, (uint16_t)(w | D_NEXT | avail_bits(true)), true);
}
HOSTILE(h_id_oob)
{
    put_raw(v, q, vut_alloc_buf(v, 2048), 2048, VUT_QSIZE, (uint16_t)(w | avail_bits(true)), true);
}
HOSTILE(h_id_ffff)
{
    put_raw(v, q, vut_alloc_buf(v, 2048), 2048, 0xffff, (uint16_t)(w | avail_bits(true)), true);
}
HOSTILE(h_id_oob_in_chain)
{
    /* The id that counts is the last descriptor's. */
    uint16_t f = avail_bits(true);
    ring(v, q)[1] =
        (struct vring_packed_desc){vut_alloc_buf(v, 2048), 2048, 0x1234, (uint16_t)(w | f)};
    put_raw(v, q, vut_alloc_buf(v, 64), 64, 0, (uint16_t)(w | D_NEXT | f), true);
}
HOSTILE(h_id_twice)
{
    /* Two buffers with the same id, both needed by one merged RX frame */
    uint16_t f = (uint16_t)(w | avail_bits(true));
    put_raw(v, q, vut_alloc_buf(v, 16), 16, 7, f, true);
    put_raw(v, q, vut_alloc_buf(v, 2048), 2048, 7, f, true);
}
HOSTILE(h_ind_in_ind)
{
    uint64_t inner = vut_alloc_ind(v, 2);
    struct vring_packed_desc *t = vut_g2h(v, inner, 32);
    t[0] = (struct vring_packed_desc){vut_alloc_buf(v, 64), 64, 0, w};
    t[1] = (struct vring_packed_desc){vut_alloc_buf(v, 64), 64, 0, w};
    struct vring_packed_desc *outer = post_ind(v, q, 0, 2, 32, 0, w);
    outer[1] = (struct vring_packed_desc){inner, 32, 0, D_IND};
}
HOSTILE(h_ind_in_chain)
{
    uint64_t t = vut_alloc_ind(v, 1);
    *(struct vring_packed_desc *)vut_g2h(v, t, 16) =
        (struct vring_packed_desc){vut_alloc_buf(v, 64), 64, 0, w};
    post2(v, q, w, (struct vring_packed_desc){t, 16, 0, D_IND});
}
HOSTILE(h_ind_next_flag)
{
    uint64_t t = vut_alloc_ind(v, 1);
    *(struct vring_packed_desc *)vut_g2h(v, t, 16) =
        (struct vring_packed_desc){vut_alloc_buf(v, 72), 72, 0, w};
    struct vring_packed_desc d[2] = {{t, 16, 0, D_IND}, {vut_alloc_buf(v, 72), 72, 0, w}};
    post(v, q, d, 2);
}
HOSTILE(h_ind_misaligned)
{
    uint64_t t = vut_alloc_ind(v, 3) + 4;
    struct vring_packed_desc d[2] = {{vut_alloc_buf(v, 72), 72, 0, w}, {0}};
    memcpy(vut_g2h(v, t, 32), d, 32);
    post1(v, q, t, 32, D_IND);
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
    struct vring_packed_desc d = {vut_alloc_buf(v, 72), 72, 0, w};
    memcpy(v->file[1] + 4 + 0x100, &d, sizeof(d));
    post1(v, q, VUT_R1_GPA + 0x100, 16, D_IND);
}
HOSTILE(h_ind_outside)
{
    (void)w;
    post1(v, q, NOWHERE, 32, D_IND);
}
HOSTILE(h_ind_past_r1_end)
{
    post_ind(v, q, R1_END - 16, 1, 32, 0, w);
}
HOSTILE(h_ind_wraps)
{
    (void)w;
    post1(v, q, R2_END - 16, 0x2000, D_IND);
}
HOSTILE(h_ind_len_24)
{
    post_ind(v, q, 0, 2, 24, 0, w);
}
HOSTILE(h_ind_len_0)
{
    post_ind(v, q, 0, 1, 0, 0, w);
}
HOSTILE(h_ind_too_many)
{
    (void)w;
    post1(v, q, VUT_BUF_GPA, 16u * (VIRTQ_MAX_SIZE + 1), D_IND);
}
HOSTILE(h_ind_entry_outside)
{
    struct vring_packed_desc *t = post_ind(v, q, 0, 2, 32, 0, w);
    t[1].addr = NOWHERE;
}
HOSTILE(h_ind_entry_wrong_dir)
{
    struct vring_packed_desc *t = post_ind(v, q, 0, 2, 32, 0, w);
    t[1].flags = w ^ D_WRITE;
}
HOSTILE(h_ind_id_oob)
{
    (void)w;
    uint64_t t = vut_alloc_ind(v, 1);
    *(struct vring_packed_desc *)vut_g2h(v, t, 16) =
        (struct vring_packed_desc){vut_alloc_buf(v, 2048), 2048, 0, w};
    put_raw(v, q, t, 16, VUT_QSIZE + 5, (uint16_t)(D_IND | avail_bits(true)), true);
}
HOSTILE(h_wrong_dir)
{
    post1(v, q, vut_alloc_buf(v, 2048), 2048, w ^ D_WRITE);
}
HOSTILE(h_wrong_dir_second)
{
    post2(v, q, w, (struct vring_packed_desc){vut_alloc_buf(v, 2048), 2048, 0, w ^ D_WRITE});
}
HOSTILE(h_ind_without_feature)
{
    post_ind(v, q, 0, 1, 16, 0, w)[0].len = 2048;
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

static const struct hostile_case hostile_cases[] = {
    TXH("tx: address in no region", h_outside),
    TXH("tx: length past the end of R1", h_past_r1_end),
    TXH("tx: length past the end of R2", h_past_r2_end),
    TXH("tx: addr + len wraps 2^64 into R0", h_wrap),
    TXH("tx: length 4 GiB", h_huge_len),
    TXH("tx: second descriptor in no region", h_second_outside),
    TXH("tx: chain longer than the ring", h_longer_than_ring),
    TXH("tx: wrong wrap flags: chain runs into a used slot", h_chain_not_avail),
    TXH("tx: wrong wrap flags: chain runs into the other lap", h_chain_wrong_wrap),
    TXH("tx: buffer id = ring size", h_id_oob),
    TXH("tx: buffer id 0xffff", h_id_ffff),
    TXH("tx: buffer id of the chain's last descriptor out of range", h_id_oob_in_chain),
    TXH("tx: buffer id of an indirect descriptor out of range", h_ind_id_oob),
    TXH("tx: indirect inside indirect", h_ind_in_ind),
    TXH("tx: indirect descriptor inside a chain", h_ind_in_chain),
    TXH("tx: indirect with the next flag", h_ind_next_flag),
    TXH("tx: indirect table misaligned", h_ind_misaligned),
    TXH("tx: indirect table misaligned in our mapping", h_ind_misaligned_in_mapping),
    TXH("tx: indirect table in no region", h_ind_outside),
    TXH("tx: indirect table past the end of R1", h_ind_past_r1_end),
    TXH("tx: indirect table wraps 2^64", h_ind_wraps),
    TXH("tx: indirect length 24", h_ind_len_24),
    TXH("tx: indirect length 0", h_ind_len_0),
    TXH("tx: indirect table of 32769 entries", h_ind_too_many),
    TXH("tx: indirect entry in no region", h_ind_entry_outside),
    TXH("tx: device-writable indirect entry", h_ind_entry_wrong_dir),
    TXH("tx: device-writable buffer", h_wrong_dir),
    TXH("tx: device-writable second buffer", h_wrong_dir_second),
    {{"tx: indirect not negotiated", F_NO_INDIRECT}, false, h_ind_without_feature},
    RXH("rx: device-readable buffer", h_wrong_dir),
    RXH("rx: device-readable second buffer", h_wrong_dir_second),
    RXH("rx: device-readable indirect entry", h_ind_entry_wrong_dir),
    RXH("rx: address in no region", h_outside),
    RXH("rx: length past the end of R2", h_past_r2_end),
    RXH("rx: addr + len wraps 2^64 into R0", h_wrap),
    RXH("rx: length 4 GiB", h_huge_len),
    RXH("rx: chain longer than the ring", h_longer_than_ring),
    RXH("rx: wrong wrap flags: chain runs into the other lap", h_chain_wrong_wrap),
    RXH("rx: buffer id = ring size", h_id_oob),
    RXH("rx: buffer id of an indirect descriptor out of range", h_ind_id_oob),
    RXH("rx: indirect inside indirect", h_ind_in_ind),
    RXH("rx: indirect table misaligned", h_ind_misaligned),
    RXH("rx: indirect table in no region", h_ind_outside),
    RXH("rx: indirect length 24", h_ind_len_24),
    {{"rx: indirect not negotiated", F_NO_INDIRECT}, true, h_ind_without_feature},
    {{"rx: same buffer id made available twice"}, true, h_id_twice, true},
    {{"rx: bad second buffer of a merged frame"}, true, h_bad_after_good, true},
};

static void test_hostile(void **state)
{
    struct vut *v = *state;
    const struct hostile_case *c = v->tcase;
    unsigned q = c->rx ? RXQ : TXQ, other = c->rx ? TXQ : RXQ;
    int reason = c->rx ? VSW_DROP_TX_BAD_DESC : VSW_DROP_RX_BAD_DESC;
    static uint8_t frame[3000];
    struct vut_snapshot snap;
    struct pkt *src = &pkts[40];

    c->post(v, q, c->rx ? D_WRITE : 0);
    memset(frame, 0x42, sizeof(frame));
    pkt_from_buffer(src, frame, c->writes_ok ? 3000 : 60);
    vut_snap_take(v, &snap);

    assert_true(vu_dev_queue_has_work(v->dev, (uint16_t)q));
    if (c->rx)
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &src, 1), 0);
    else
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);

    /* Not a byte changed anywhere (the used descriptors live in the ring: none written). */
    for (unsigned r = 0; r < VUT_NREG; r++) {
        if (!c->writes_ok && memcmp(snap.file[r], v->file[r], v->file_len[r]))
            fail_msg("guest memory of region %u changed", r);
        free(snap.file[r]);
    }
    assert_true(vut_canaries_ok(v));
    assert_false(vu_dev_queue_ready(v->dev, (uint16_t)q));
    assert_true(vu_dev_queue_ready(v->dev, (uint16_t)other));
    expect_no_used(v, q);
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
    expect_no_used(v, q);
    assert_false(vu_dev_queue_has_work(v->dev, (uint16_t)q));
    assert_int_equal(vu_dev_queue_kickfd(v->dev, (uint16_t)q), -1);
}

/* A good frame before the bad one in the same burst is delivered; the queue then stops. */
static void test_hostile_mid_burst(void **state)
{
    struct vut *v = *state;
    uint16_t good = tx_post_good(v, 60, 1);
    h_ind_in_ind(v, TXQ, 0);
    tx_post_good(v, 60, 2);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 60, 1);
    assert_false(vu_dev_queue_ready(v->dev, TXQ));
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, good, 0);
    expect_no_used(v, TXQ);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.queue_errors, 1);
    vut_check_drops(&st, VSW_DROP_RX_BAD_DESC, 1);
    assert_int_equal(st.rx_packets, 1);
}

/*
 * Slots that are not available for our lap are left alone, whatever else they hold: a used
 * descriptor of this lap written by the driver (AVAIL = USED = 1), one of the other lap, or
 * zeroes in lap 0 (a ring started mid-way). Nothing is taken, nothing is counted.
 */
static void test_not_available(void **state)
{
    struct vut *v = *state;
    static const uint16_t lap1[] = {D_AVAIL | D_USED, 0, D_USED};
    for (unsigned i = 0; i < ARRAY_SIZE(lap1); i++) {
        ring(v, TXQ)[0] = (struct vring_packed_desc){vut_alloc_buf(v, 72), 72, 0, lap1[i]};
        assert_false(vu_dev_queue_has_work(v->dev, TXQ));
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
    }
    /* both sides at slot 10 of lap 0 */
    vut_state(v, VHOST_USER_SET_VRING_BASE, TXQ, 10);
    drv[TXQ].avail = drv[TXQ].used = 10;
    drv[TXQ].avail_wrap = drv[TXQ].used_wrap = false;
    static const uint16_t lap0[] = {0, D_AVAIL, D_AVAIL | D_USED};
    for (unsigned i = 0; i < ARRAY_SIZE(lap0); i++) {
        ring(v, TXQ)[10] = (struct vring_packed_desc){vut_alloc_buf(v, 72), 72, 0, lap0[i]};
        assert_false(vu_dev_queue_has_work(v->dev, TXQ));
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
    }
    assert_true(vu_dev_queue_ready(v->dev, TXQ));
    /* and the guest's first real buffer in lap 0 is taken */
    uint16_t id = tx_post_good(v, 60, 1);
    assert_true(vu_dev_queue_has_work(v->dev, TXQ));
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 60, 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, id, 0);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.queue_errors, 0);
    vut_check_drops(&st, NO_DROP, 0);
}

/* A TX buffer id the guest makes available again while we still hold it stops the queue. */
static void test_tx_id_twice(void **state)
{
    struct vut *v = *state;
    uint16_t id = tx_post_good(v, 60, 1);
    drv[TXQ].next_id = id; /* the next frame reuses the id */
    tx_post_good(v, 61, 2);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 60, 1);
    assert_false(vu_dev_queue_ready(v->dev, TXQ));
    drv[TXQ].ndesc[id] = 1;
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, id, 0);
    expect_no_used(v, TXQ);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.queue_errors, 1);
    vut_check_drops(&st, VSW_DROP_RX_BAD_DESC, 1);
}

/* ====================================================================================== */
/* RX: delivery into the guest                                                             */

enum bufmode { BUF_SINGLE, BUF_CHAIN3, BUF_INDIRECT2 };

/* Make one RX buffer of the given kind available; returns its id. */
static uint16_t rx_post(struct vut *v, enum bufmode mode, uint32_t size)
{
    struct vring_packed_desc d[3] = {{0}};
    unsigned n = 0;
    switch (mode) {
    case BUF_SINGLE:
        d[n++] = (struct vring_packed_desc){vut_alloc_buf(v, size), size, 0, D_WRITE};
        break;
    case BUF_CHAIN3:
        d[n++] = (struct vring_packed_desc){vut_alloc_buf(v, 12), 12, 0, D_WRITE};
        d[n++] = (struct vring_packed_desc){vut_alloc_buf(v, 2048), 2048, 0, D_WRITE};
        d[n++] = (struct vring_packed_desc){vut_alloc_buf(v, 2048), 2048, 0, D_WRITE};
        break;
    case BUF_INDIRECT2:
        d[n++] = (struct vring_packed_desc){vut_alloc_buf(v, 2048), 2048, 0, D_WRITE};
        d[n++] = (struct vring_packed_desc){vut_alloc_buf(v, 2048), 2048, 0, D_WRITE};
        break;
    }
    uint16_t id;
    if (mode == BUF_INDIRECT2) {
        uint64_t t = vut_alloc_ind(v, 2);
        memcpy(vut_g2h(v, t, 32), d, 32);
        struct vring_packed_desc ind = {t, 32, 0, D_IND};
        id = post(v, RXQ, &ind, 1);
    } else {
        id = post(v, RXQ, d, n);
    }
    for (unsigned i = 0; i < n; i++)
        drv[RXQ].rx[id][i] = (struct rx_piece){d[i].addr, d[i].len};
    drv[RXQ].rx_n[id] = n;
    return id;
}

/* Read the first len bytes the backend wrote into RX buffer `id`. */
static uint32_t rx_read(struct vut *v, uint16_t id, uint32_t len, uint8_t *out)
{
    uint32_t got = 0;
    for (unsigned i = 0; i < drv[RXQ].rx_n[id] && got < len; i++) {
        uint32_t n = MIN(len - got, drv[RXQ].rx[id][i].len);
        vut_guest_read(v, drv[RXQ].rx[id][i].gpa, out + got, n);
        got += n;
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

struct enq_case {
    struct case_hdr h;
    uint32_t frames[4];
    unsigned nframes;
    uint32_t bufsize; /* each posted buffer (BUF_SINGLE) */
    unsigned nbufs;
    enum bufmode mode;
    uint16_t sent;
    uint16_t used;        /* used descriptors written */
    uint32_t lens[8];     /* their lengths (0: not checked) */
    uint16_t nbuffers[4]; /* num_buffers in each delivered frame's header */
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
    {{"frame needing more than 256 buffers"},
     {3100},
     1,
     12,
     256,
     BUF_SINGLE,
     0,
     0,
     {0},
     {0},
     VSW_DROP_TX_TOO_BIG,
     1},
    {{"indirect RX buffer"}, {3000}, 1, 0, 1, BUF_INDIRECT2, 1, 1, {3012}, {1}, NO_DROP, 0},
    {{"chained RX buffer"}, {3000}, 1, 0, 1, BUF_CHAIN3, 1, 1, {3012}, {1}, NO_DROP, 0},
    {{"chained RX buffers, merged frame"},
     {6000},
     1,
     0,
     2,
     BUF_CHAIN3,
     1,
     2,
     {4108, 1904},
     {2},
     NO_DROP,
     0},
    {{"zero-length buffer"}, {60}, 1, 0, 1, BUF_SINGLE, 0, 0, {0}, {0}, VSW_DROP_TX_TOO_BIG, 1},
    {{"no MRG: one buffer", F_NO_MRG}, {60}, 1, 2048, 2, BUF_SINGLE, 1, 1, {72}, {1}, NO_DROP, 0},
    {{"no MRG: burst of two", F_NO_MRG},
     {60, 1514},
     2,
     2048,
     2,
     BUF_SINGLE,
     2,
     2,
     {72, 1526},
     {1, 1},
     NO_DROP,
     0},
    {{"no MRG: frame larger than the buffer", F_NO_MRG},
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
    {{"no MRG: chained buffer holds it", F_NO_MRG},
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
    {{"no MRG: indirect buffer holds it", F_NO_MRG},
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
};

static void test_enqueue(void **state)
{
    struct vut *v = *state;
    const struct enq_case *c = v->tcase;
    static uint8_t src[4][VSW_MAX_FRAME], got[VSW_MAX_FRAME + 64];
    struct pkt *ps[4];
    uint16_t ids[256];
    uint64_t bytes = 0;

    for (unsigned i = 0; i < c->nbufs; i++)
        ids[i] = rx_post(v, c->mode, c->bufsize);
    for (unsigned i = 0; i < c->nframes; i++) {
        ps[i] = &pkts[i];
        make_src(ps[i], src[i], c->frames[i], (uint8_t)(i + 1));
    }
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, ps, (uint16_t)c->nframes), c->sent);

    /* Each delivered frame: its used descriptors in order, header, num_buffers, bytes. */
    unsigned u = 0;
    for (unsigned f = 0; f < c->sent; f++) {
        uint32_t total = HLEN + c->frames[f], off = 0;
        while (off < total) {
            uint16_t id = 0, flags = 0;
            uint32_t len = 0;
            if (!take_used(v, RXQ, &id, &len, &flags))
                fail_msg("frame %u: used descriptor %u missing", f, u);
            assert_int_equal(id, ids[u]);
            assert_true(flags & D_WRITE);
            if (u < ARRAY_SIZE(c->lens) && c->lens[u])
                assert_int_equal(len, c->lens[u]);
            assert_true(len > 0 && len <= total - off);
            assert_int_equal(rx_read(v, id, len, got + off), len);
            off += len;
            u++;
        }
        struct virtio_net_hdr_v1 h, want;
        memcpy(&h, got, HLEN);
        vut_fill_vnet(&want);
        assert_memory_equal(&h, &want, 10);
        assert_int_equal(h.num_buffers, c->nbuffers[f]);
        for (uint32_t i = 0; i < c->frames[f]; i++)
            if (got[HLEN + i] != src[f][i])
                fail_msg("frame %u byte %u is %#x, want %#x", f, i, got[HLEN + i], src[f][i]);
        bytes += c->frames[f];
    }
    assert_int_equal(u, c->used);
    expect_no_used(v, RXQ);
    assert_int_equal(vut_calls(v, RXQ), c->used ? 1 : 0);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.tx_packets, c->sent);
    assert_int_equal(st.tx_bytes, bytes);
    vut_check_drops(&st, c->drop, c->ndrop);
    assert_int_equal(st.queue_errors, 0);
    assert_true(vu_dev_queue_ready(v->dev, RXQ));
    assert_true(vut_canaries_ok(v));
}

/* A frame that found too few buffers leaves them all to the guest; once it posts more, the
 * same frame goes into the first of them (the backend rolled its position back). */
static void test_enqueue_waits_for_buffers(void **state)
{
    struct vut *v = *state;
    static uint8_t src[9000], got[9100];
    struct pkt *p = &pkts[0];
    make_src(p, src, 9000, 5);
    uint16_t ids[5];
    for (unsigned i = 0; i < 2; i++)
        ids[i] = rx_post(v, BUF_SINGLE, 2048);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 0);
    expect_no_used(v, RXQ);
    assert_int_equal(vut_calls(v, RXQ), 0);
    for (unsigned i = 2; i < 5; i++)
        ids[i] = rx_post(v, BUF_SINGLE, 2048);
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    uint32_t off = 0;
    for (unsigned i = 0; i < 5; i++) {
        uint16_t id = 0;
        uint32_t len = 0;
        assert_true(take_used(v, RXQ, &id, &len, NULL));
        assert_int_equal(id, ids[i]);
        off += rx_read(v, id, len, got + off);
    }
    assert_int_equal(off, 9012);
    assert_memory_equal(got + 12, src, 9000);
    assert_int_equal(got[10] | got[11] << 8, 5);
    struct vu_dev_stats st = vut_stats(v);
    vut_check_drops(&st, VSW_DROP_TX_NO_BUF, 1);
    assert_int_equal(st.tx_packets, 1);
}

/* 700 frames through the RX ring in buffers of one and of three descriptors: chains cross
 * the end of the ring, the wrap counters flip, every frame arrives intact. */
static void test_rx_wrap(void **state)
{
    struct vut *v = *state;
    static uint8_t src[3000], got[3100];
    for (unsigned i = 0; i < 700; i++) {
        struct pkt *p = &pkts[0];
        uint32_t len = 60 + (i * 37) % 2900;
        make_src(p, src, len, (uint8_t)i);
        v->next_buf = VUT_BUF_GPA; /* buffers are free again once used */
        uint16_t id = rx_post(v, i % 3 ? BUF_SINGLE : BUF_CHAIN3, 4096);
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
        uint16_t uid;
        uint32_t ulen = 0;
        assert_true(take_used(v, RXQ, &uid, &ulen, NULL));
        assert_int_equal(uid, id);
        assert_int_equal(ulen, len + HLEN);
        rx_read(v, id, ulen, got);
        assert_memory_equal(got + HLEN, src, len);
        assert_int_equal(got[10] | got[11] << 8, 1);
    }
    assert_int_equal(vut_stats(v).tx_packets, 700);
}

/* VM to VM: a frame dequeued from the TX ring goes straight into the RX ring. */
static void test_tx_to_rx(void **state)
{
    struct vut *v = *state;
    static uint8_t s[5100], got[5100];
    uint32_t pieces[] = {12, 700, 1300, 3000};
    vut_make_stream(s, 12, 5000, 11);
    uint16_t tid = tx_post(v, s, pieces, 4, DIRECT, 0);
    uint16_t h[3];
    for (unsigned i = 0; i < 3; i++)
        h[i] = rx_post(v, BUF_SINGLE, 2048);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    struct pkt *p = &pkts[0];
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, tid, 0);
    uint32_t off = 0;
    for (unsigned i = 0; i < 3; i++) {
        uint16_t id = 0;
        uint32_t len = 0;
        assert_true(take_used(v, RXQ, &id, &len, NULL));
        assert_int_equal(id, h[i]);
        off += rx_read(v, id, len, got + off);
    }
    assert_int_equal(off, 5012);
    assert_memory_equal(got, s, 10); /* the header went through */
    assert_int_equal(got[10] | got[11] << 8, 3);
    assert_memory_equal(got + 12, s + 12, 5000);
}

/* A guest whose RX buffer is the very memory its TX frame sits in gets garbage, nothing
 * worse: the copy is defined for overlapping ranges. */
static void test_tx_to_rx_overlap(void **state)
{
    struct vut *v = *state;
    static uint8_t s[600];
    uint32_t len = vut_make_stream(s, 12, 500, 3);
    uint64_t b = vut_alloc_buf(v, 2048);
    vut_guest_write(v, b, s, len);
    struct vring_packed_desc t = {b, len, 0, 0}, r = {b + 16, 1024, 0, D_WRITE};
    uint16_t tid = post(v, TXQ, &t, 1), rid = post(v, RXQ, &r, 1);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    struct pkt *p = &pkts[0];
    assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, tid, 0);
    expect_used(v, RXQ, rid, 512);
    assert_true(vut_canaries_ok(v));
}

/* ====================================================================================== */
/* Used-buffer notifications: the driver area                                              */

struct notify_case {
    struct case_hdr h;
    bool tx;        /* completion of TX buffers (dequeue_done), else RX delivery */
    uint16_t start; /* ring slot both sides start at (SET_VRING_BASE), wrap counters 1 */
    uint16_t flags; /* driver area */
    uint16_t off_wrap;
    unsigned nframes;  /* in one burst */
    uint64_t calls;    /* eventfd counter afterwards */
    unsigned nframes2; /* a second burst, the guest not having changed the driver area */
    uint64_t calls2;
};

#define EV_EN   VRING_PACKED_EVENT_FLAG_ENABLE
#define EV_DIS  VRING_PACKED_EVENT_FLAG_DISABLE
#define EV_DESC VRING_PACKED_EVENT_FLAG_DESC
#define W1      VHOST_VRING_PACKED_WRAP

static const struct notify_case notify_cases[] = {
    {{"enable: one call per burst"}, false, 0, EV_EN, 0, 3, 1, 2, 1},
    {{"disable: no call"}, false, 0, EV_DIS, 0, 3, 0, 1, 0},
    {{"desc 0: crossed by the first burst"}, false, 0, EV_DESC, 0 | W1, 1, 1, 1, 0},
    {{"desc 5: not reached by 3, crossed by 3 more"}, false, 0, EV_DESC, 5 | W1, 3, 0, 3, 1},
    {{"desc 2: crossed by a burst of 3"}, false, 0, EV_DESC, 2 | W1, 3, 1, 1, 0},
    {{"desc 3: not crossed by a burst of 3"}, false, 0, EV_DESC, 3 | W1, 3, 0, 1, 1},
    {{"desc in the previous lap: long passed"}, false, 0, EV_DESC, 10, 3, 0, 3, 0},
    {{"desc 255 crossed while wrapping"}, false, 254, EV_DESC, 255 | W1, 4, 1, 1, 0},
    {{"desc 1 of the next lap crossed while wrapping"}, false, 254, EV_DESC, 1, 4, 1, 1, 0},
    {{"desc 2 of the next lap: not crossed, then crossed"}, false, 254, EV_DESC, 2, 4, 0, 1, 1},
    {{"desc without EVENT_IDX means enable", F_NO_EVENT_IDX},
     false,
     0,
     EV_DESC,
     9 | W1,
     1,
     1,
     1,
     1},
    {{"no EVENT_IDX: disable", F_NO_EVENT_IDX}, false, 0, EV_DIS, 0, 2, 0, 2, 0},
    {{"tx done: desc 1 crossed"}, true, 0, EV_DESC, 1 | W1, 2, 1, 1, 0},
    {{"tx done: desc 9 not reached"}, true, 0, EV_DESC, 9 | W1, 2, 0, 2, 0},
    {{"tx done: disable"}, true, 0, EV_DIS, 0, 2, 0, 1, 0},
    {{"tx done: desc 0 of the next lap while wrapping"}, true, 255, EV_DESC, 0, 2, 1, 1, 0},
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
    for (unsigned i = 0; i < n; i++) {
        uint16_t id = 0;
        uint32_t len = 0;
        assert_true(take_used(v, tx ? TXQ : RXQ, &id, &len, NULL));
    }
}

/* Both sides of queue q start at `slot` (wrap counters 1). */
static void start_at(struct vut *v, unsigned q, uint16_t slot)
{
    vut_state(v, VHOST_USER_SET_VRING_BASE, q, slot | VHOST_VRING_PACKED_WRAP);
    assert_true(vu_dev_queue_ready(v->dev, (uint16_t)q));
    drv[q].avail = drv[q].used = slot;
}

static void test_notify(void **state)
{
    struct vut *v = *state;
    const struct notify_case *c = v->tcase;
    unsigned q = c->tx ? TXQ : RXQ;
    if (c->start)
        start_at(v, q, c->start);
    struct vring_packed_desc_event *ev = driver_area(v, q);
    ev->off_wrap = c->off_wrap;
    ev->flags = c->flags;
    notify_burst(v, c->tx, c->nframes);
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
}

/* ====================================================================================== */
/* Kick suppression: the device area                                                       */

static void test_kick_suppression(void **state)
{
    struct vut *v = *state;
    struct vring_packed_desc_event *ev = device_area(v, TXQ);
    assert_int_equal(ev->flags, EV_DIS); /* poll mode after start */
    assert_false(vu_dev_queue_has_work(v->dev, TXQ));
    for (unsigned i = 0; i < 3; i++)
        tx_post_chain(v, 60, 1, 2);
    assert_true(vu_dev_queue_has_work(v->dev, TXQ));
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 3);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 3);
    assert_false(vu_dev_queue_has_work(v->dev, TXQ));
    vu_dev_queue_set_notify(v->dev, TXQ, true);
    assert_int_equal(ev->flags, EV_DESC); /* kick me when you fill slot 6 of lap 1 */
    assert_int_equal(ev->off_wrap, 6 | W1);
    vu_dev_queue_set_notify(v->dev, TXQ, false);
    assert_int_equal(ev->flags, EV_DIS);

    /* Across the end of the ring the wrap bit follows our position. */
    start_at(v, TXQ, 255);
    tx_post_chain(v, 60, 1, 3);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    vu_dev_queue_set_notify(v->dev, TXQ, true);
    assert_int_equal(ev->flags, EV_DESC);
    assert_int_equal(ev->off_wrap, 2);
    assert_int_equal(device_area(v, RXQ)->flags, EV_DIS);
}

static void test_kick_suppression_no_event_idx(void **state)
{
    struct vut *v = *state;
    struct vring_packed_desc_event *ev = device_area(v, TXQ);
    assert_int_equal(ev->flags, EV_DIS);
    vu_dev_queue_set_notify(v->dev, TXQ, true);
    assert_int_equal(ev->flags, EV_EN);
    vu_dev_queue_set_notify(v->dev, TXQ, false);
    assert_int_equal(ev->flags, EV_DIS);
}

/* ====================================================================================== */
/* Ring position: GET/SET_VRING_BASE                                                       */

static uint32_t get_base(struct vut *v, unsigned q)
{
    struct vhost_user_msg m, r;
    bool out;
    vut_msg_init(&m, VHOST_USER_GET_VRING_BASE, 8);
    m.payload.state.index = q;
    assert_int_equal(vut_process(v, &m, NULL, 0, 0, &r, &out), 0);
    assert_true(out);
    assert_int_equal(r.payload.state.index, q);
    assert_false(vu_dev_queue_ready(v->dev, (uint16_t)q)); /* GET stops the ring */
    return r.payload.state.num;
}

static int set_base(struct vut *v, unsigned q, uint32_t num)
{
    struct vhost_user_msg m, r;
    bool out;
    vut_msg_init(&m, VHOST_USER_SET_VRING_BASE, 8);
    m.payload.state.index = q;
    m.payload.state.num = num;
    return vut_process(v, &m, NULL, 0, 0, &r, &out);
}

/* GET reports slot and wrap counter of both positions; SET resumes there. */
static void test_vring_base_after_traffic(void **state)
{
    struct vut *v = *state;
    uint16_t ids[3];
    for (unsigned i = 0; i < 3; i++)
        ids[i] = tx_post_chain(v, 60, (uint8_t)i, 2);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 3);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 3);
    for (unsigned i = 0; i < 3; i++)
        expect_used(v, TXQ, ids[i], 0);
    notify_burst(v, false, 2);

    assert_int_equal(get_base(v, TXQ), (6 | W1) | (6 | W1) << 16);
    assert_int_equal(get_base(v, RXQ), (2 | W1) | (2 | W1) << 16);
    /* stopped rings take nothing */
    uint16_t id = tx_post_good(v, 61, 9);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);

    /* DPDK sends the avail pair only */
    assert_int_equal(set_base(v, TXQ, 6 | W1), 0);
    vut_kick(v, TXQ);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 61, 9);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, id, 0);

    /* QEMU sends what GET said, used pair in the high half */
    uint32_t b = get_base(v, TXQ);
    assert_int_equal(b, (7 | W1) | (7 | W1) << 16);
    assert_int_equal(set_base(v, TXQ, b), 0);
    vut_kick(v, TXQ);
    id = tx_post_good(v, 62, 3);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vut_check_pkt(&pkts[0], 62, 3);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, id, 0);
    assert_int_equal(vut_stats(v).queue_errors, 0);
}

/* After a lap the wrap counters are 0: bit 15 and bit 31 clear. */
static void test_vring_base_wrapped(void **state)
{
    struct vut *v = *state;
    for (unsigned i = 0; i < 300; i++)
        notify_burst(v, true, 1);
    assert_int_equal(get_base(v, TXQ), 44 | 44 << 16);
    /* and SET with wrap 0 resumes in lap 0 */
    assert_int_equal(set_base(v, TXQ, 44 | 44 << 16), 0);
    vut_kick(v, TXQ);
    notify_burst(v, true, 3);
    assert_int_equal(get_base(v, TXQ), 47 | 47 << 16);
}

/* A used position behind the avail one: the buffers in between are taken again. */
static void test_vring_base_used_behind(void **state)
{
    struct vut *v = *state;
    uint16_t a = tx_post_good(v, 60, 1), b = tx_post_good(v, 61, 2);
    /* a previous backend took both and returned none: avail 2, used 0 */
    assert_int_equal(set_base(v, TXQ, (2 | W1) | (0 | W1) << 16), 0);
    vut_kick(v, TXQ);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 2);
    vut_check_pkt(&pkts[0], 60, 1);
    vut_check_pkt(&pkts[1], 61, 2);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 2);
    expect_used(v, TXQ, a, 0);
    expect_used(v, TXQ, b, 0);
}

/* Positions outside the ring are refused, or stop the queue when the ring shrank later. */
static void test_vring_base_bad(void **state)
{
    struct vut *v = *state;
    assert_int_equal(set_base(v, TXQ, 256 | W1), -EPROTO);
    vut_free(v);
    *state = v = vut_new();
    vut_startup(v, F_ALL, VUT_PF_ALL, 2);
    assert_int_equal(set_base(v, TXQ, 0xffffffffu), -EPROTO);
    vut_free(v);
    *state = v = vut_new();
    vut_startup(v, F_ALL, VUT_PF_ALL, 2);
    assert_int_equal(set_base(v, TXQ, (3 | W1) | (300u | W1) << 16), -EPROTO);
    vut_free(v);
    *state = v = vut_new();
    vut_startup(v, F_ALL, VUT_PF_ALL, 2);

    /* base 200, then the ring becomes 128 entries */
    assert_int_equal(set_base(v, TXQ, 200 | W1), 0);
    vut_state(v, VHOST_USER_SET_VRING_NUM, TXQ, 128);
    struct vhost_vring_addr a = vut_ring_addr(TXQ);
    vut_ok(v, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, 0, NULL);
    assert_false(vu_dev_queue_ready(v->dev, TXQ));
    assert_int_equal(vut_stats(v).queue_errors, 1);
    assert_true(vu_dev_queue_ready(v->dev, RXQ));
    /* a good base and a restart bring it back */
    assert_int_equal(set_base(v, TXQ, 0 | W1), 0);
    vut_kick(v, TXQ);
    assert_true(vu_dev_queue_ready(v->dev, TXQ));
}

/* ====================================================================================== */
/* Recovery and layout                                                                     */

struct recover_case {
    struct case_hdr h;
    bool rx;
    void (*brk)(struct vut *v, unsigned q, uint16_t w);
};

static const struct recover_case recover_cases[] = {
    {{"recover: tx id out of the ring"}, false, h_id_oob},
    {{"recover: tx wrong wrap flags"}, false, h_chain_wrong_wrap},
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

    c->brk(v, q, c->rx ? D_WRITE : 0);
    if (c->rx)
        assert_int_equal(vu_dev_enqueue_burst(v->dev, RXQ, &p, 1), 0);
    else
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 0);
    assert_false(vu_dev_queue_ready(v->dev, (uint16_t)q));

    /* The guest repairs slot 0 of its ring: a valid single buffer, id 3. */
    uint64_t b = vut_alloc_buf(v, 2048);
    uint32_t len = vut_make_stream(s, 12, 60, 6);
    vut_guest_write(v, b, s, len);
    struct vring_packed_desc *r = &ring(v, q)[0];
    r->addr = b;
    r->len = c->rx ? 2048 : len;
    r->id = 3;
    __atomic_store_n(&r->flags, (uint16_t)((c->rx ? D_WRITE : 0) | avail_bits(true)),
                     __ATOMIC_RELEASE);
    drv[q].avail = 1;
    drv[q].used = 0;
    drv[q].ndesc[3] = 1;

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
        expect_used(v, RXQ, 3, 72);
        vut_guest_read(v, b, got, 72);
        assert_memory_equal(got + 12, src, 60);
    } else {
        assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
        vut_check_pkt(&pkts[0], 60, 6);
        vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
        expect_used(v, TXQ, 3, 0);
    }
    assert_int_equal(vut_stats(v).queue_errors, 1);
}

/* The event areas are 4 bytes: a device area in the last word of R0 is fine for a packed
 * ring (a split used ring there would run out of memory); a 2-aligned one is refused. */
static void test_layout(void **state)
{
    struct vut *v = *state;
    struct vhost_vring_addr a = vut_ring_addr(TXQ);
    a.used_user_addr = VUT_UVA(0) + VUT_R0_SIZE - 4;
    vut_ok(v, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, 0, NULL);
    vut_kick(v, TXQ);
    assert_true(vu_dev_queue_ready(v->dev, TXQ));
    uint16_t id = tx_post_good(v, 60, 1);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, id, 0);
    vu_dev_queue_set_notify(v->dev, TXQ, true);
    struct vring_packed_desc_event *ev = vut_g2h(v, VUT_R0_SIZE - 4, 4);
    assert_int_equal(ev->flags, EV_DESC);
    assert_int_equal(ev->off_wrap, 1 | W1);
    assert_true(vut_canaries_ok(v));

    struct vhost_user_msg m, r;
    bool out;
    a = vut_ring_addr(TXQ);
    a.avail_user_addr += 2;
    vut_msg_init(&m, VHOST_USER_SET_VRING_ADDR, sizeof(a));
    memcpy(&m.payload, &a, sizeof(a));
    assert_int_equal(vut_process(v, &m, NULL, 0, 0, &r, &out), -EPROTO);
}

/* A frontend that changes its mind (split, then packed) gets the layout it asked for last. */
static void test_features_relayout(void **state)
{
    struct vut *v = *state;
    vu_dev_disconnect(v->dev);
    memset(vut_g2h(v, 0, 0x8000), 0, 0x8000); /* the guest driver resets its rings */
    vu_dev_set_connected(v->dev);
    vut_startup(v, VUT_F_ALL, VUT_PF_ALL, 2); /* split rings */
    assert_false(v->dev->q[TXQ].packed);
    vut_u64(v, VHOST_USER_SET_FEATURES, F_ALL);
    assert_true(v->dev->q[TXQ].packed);
    assert_true(vu_dev_queue_ready(v->dev, TXQ));
    assert_true(vu_dev_queue_ready(v->dev, RXQ));
    uint16_t id = tx_post_good(v, 60, 1);
    assert_int_equal(vu_dev_dequeue_burst(v->dev, TXQ, pkts, 32), 1);
    vu_dev_dequeue_done(v->dev, TXQ, pkts, 1);
    expect_used(v, TXQ, id, 0);
    /* and back to split: the used ring of 256 entries still fits where it was */
    vut_u64(v, VHOST_USER_SET_FEATURES, VUT_F_ALL);
    assert_false(v->dev->q[TXQ].packed);
    assert_true(vu_dev_queue_ready(v->dev, TXQ));
}

int main(void)
{
    int rc = 0;
    vut_main_init();
#define TABLE(group, cases, fn)                                                                    \
    rc |= vut_run_table(group, cases, sizeof(cases[0]), ARRAY_SIZE(cases), case_name, fn, setup,   \
                        teardown)
    TABLE("packed good", good_cases, test_good);
    TABLE("packed drops", drop_cases, test_drop);
    TABLE("packed hostile", hostile_cases, test_hostile);
    TABLE("packed enqueue", enq_cases, test_enqueue);
    TABLE("packed notify", notify_cases, test_notify);
    TABLE("packed recover", recover_cases, test_recover);

    static const struct case_hdr no_evidx = {"", F_NO_EVENT_IDX};
    const struct CMUnitTest single[] = {
        cmocka_unit_test_setup_teardown(test_good_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_bursts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_mid_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_disabled_drained, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_all_dropped_returned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_mid_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_id_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_available, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enqueue_waits_for_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rx_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_to_rx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tx_to_rx_overlap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_no_callfd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kick_suppression, setup, teardown),
        cmocka_unit_test_prestate_setup_teardown(test_kick_suppression_no_event_idx, setup,
                                                 teardown, (void *)&no_evidx),
        cmocka_unit_test_setup_teardown(test_vring_base_after_traffic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vring_base_wrapped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vring_base_used_behind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vring_base_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_layout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_relayout, setup, teardown),
    };
    rc |= cmocka_run_group_tests_name("packed", single, NULL, NULL);
    return rc;
}
