/* Unit tests of src/net: the packet descriptor's private header copy and range reads. */
#include "net.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A frame of `len` bytes (byte i = i * 7 + 3) split into segments of the given sizes. */
static void make_pkt(struct pkt *p, uint8_t *frame, uint32_t len, const uint32_t *sizes,
                     unsigned nsizes)
{
    for (uint32_t i = 0; i < len; i++)
        frame[i] = (uint8_t)(i * 7 + 3);
    memset(p, 0, sizeof(*p));
    uint32_t off = 0;
    for (unsigned i = 0; i < nsizes; i++) {
        p->seg[i].addr = frame + off;
        p->seg[i].len = sizes[i];
        off += sizes[i];
    }
    p->nseg = (uint16_t)nsizes;
    p->len = len;
}

static void test_snapshot_and_read_across_segments(void **state)
{
    (void)state;
    static const uint32_t splits[][5] = {
        {1500}, {14, 1486}, {1, 1, 1, 1, 1496}, {127, 2, 1371}, {128, 1372}, {700, 700, 100},
    };
    static const unsigned nsplits[] = {1, 2, 5, 3, 2, 3};
    for (size_t s = 0; s < ARRAY_SIZE(nsplits); s++) {
        uint8_t frame[1500], out[1500];
        struct pkt *p = malloc(sizeof(*p));
        make_pkt(p, frame, sizeof(frame), splits[s], nsplits[s]);
        assert_int_equal(pkt_snapshot_header(p), 0);
        assert_int_equal(p->hdr_len, PKT_HDR_COPY);
        assert_memory_equal(p->hdr, frame, PKT_HDR_COPY);
        /* Every window, including ones straddling hdr[] and segment boundaries. */
        static const uint32_t offs[] = {0, 1, 13, 127, 128, 129, 699, 700, 1400, 1499};
        for (size_t o = 0; o < ARRAY_SIZE(offs); o++) {
            uint32_t want = 1500 - offs[o];
            memset(out, 0, sizeof(out));
            assert_int_equal(pkt_read(p, offs[o], out, want), want);
            assert_memory_equal(out, frame + offs[o], want);
        }
        free(p);
    }
}

static void test_private_copy_wins(void **state)
{
    (void)state;
    /* A guest rewriting its buffer after the snapshot must not change the header we use. */
    uint8_t frame[200], out[200];
    struct pkt *p = malloc(sizeof(*p));
    uint32_t sz = 200;
    make_pkt(p, frame, 200, &sz, 1);
    pkt_snapshot_header(p);
    uint8_t orig0 = frame[0], orig150 = frame[150];
    frame[0] ^= 0xff;
    frame[150] ^= 0xff;
    assert_int_equal(pkt_read(p, 0, out, 200), 200);
    assert_int_equal(out[0], orig0);                       /* from hdr[] */
    assert_int_equal(out[150], (uint8_t)(orig150 ^ 0xff)); /* payload is read live */
    free(p);
}

static void test_read_bounds(void **state)
{
    (void)state;
    uint8_t frame[64], out[128];
    struct pkt *p = malloc(sizeof(*p));
    uint32_t sz = 64;
    make_pkt(p, frame, 64, &sz, 1);
    pkt_snapshot_header(p);
    assert_int_equal(p->hdr_len, 64);
    assert_int_equal(pkt_read(p, 64, out, 10), 0);
    assert_int_equal(pkt_read(p, 1000, out, 10), 0);
    assert_int_equal(pkt_read(p, 60, out, 100), 4);
    assert_memory_equal(out, frame + 60, 4);
    free(p);
}

static void test_snapshot_short_segments(void **state)
{
    (void)state;
    uint8_t frame[100];
    struct pkt *p = malloc(sizeof(*p));
    uint32_t sz = 50;
    make_pkt(p, frame, 100, &sz, 1); /* claims 100 bytes, segments hold 50 */
    assert_int_equal(pkt_snapshot_header(p), -EINVAL);
    free(p);
}

static void test_from_buffer(void **state)
{
    (void)state;
    uint8_t frame[60] = {1, 2, 3};
    struct pkt *p = malloc(sizeof(*p));
    pkt_from_buffer(p, frame, sizeof(frame));
    assert_int_equal(p->len, 60);
    assert_int_equal(p->nseg, 1);
    assert_int_equal(p->hdr_len, 60);
    assert_int_equal(p->out_port, PKT_OUT_DROP);
    assert_memory_equal(p->hdr, frame, 60);
    free(p);
}

/* Every size the inline copy handles, at odd alignments: exactly n bytes, nothing around. */
static void test_copy_small_sizes(void **state)
{
    (void)state;
    uint8_t src[PKT_HDR_COPY + 8], dst[PKT_HDR_COPY + 16];
    for (uint32_t i = 0; i < sizeof(src); i++)
        src[i] = (uint8_t)(i * 13 + 5);
    for (uint32_t n = 0; n <= PKT_HDR_COPY; n++)
        for (uint32_t a = 0; a < 3; a++) {
            memset(dst, 0xcc, sizeof(dst));
            pkt_copy_small(dst + 1 + a, src + a, n);
            for (uint32_t a2 = 0; a2 <= a; a2++)
                assert_int_equal(dst[a2], 0xcc);
            assert_memory_equal(dst + 1 + a, src + a, n);
            for (uint32_t i = 1 + a + n; i < sizeof(dst); i++)
                if (dst[i] != 0xcc)
                    fail_msg("n %u align %u: byte %u past the end was written", n, a, i);
        }
}

/* The whole frame comes out: private copy first (it wins), then the segments; a packet
 * whose segments hold less than its length says how much it wrote. */
static void test_copy_frame(void **state)
{
    (void)state;
    static const uint32_t lens[] = {14, 60, 64, 127, 128, 129, 1514, 9000};
    static uint8_t frame[9000], out[9100];
    struct pkt *p = malloc(sizeof(*p));
    for (size_t l = 0; l < ARRAY_SIZE(lens); l++) {
        uint32_t sizes[3] = {lens[l] / 3, lens[l] / 3, lens[l] - 2 * (lens[l] / 3)};
        make_pkt(p, frame, lens[l], sizes, 3);
        assert_int_equal(pkt_snapshot_header(p), 0);
        p->hdr[0] ^= 0xff; /* a rewritten header byte must reach the destination */
        memset(out, 0xcc, sizeof(out));
        assert_int_equal(pkt_copy_frame(p, out), lens[l]);
        assert_int_equal(out[0], frame[0] ^ 0xff);
        assert_memory_equal(out + 1, frame + 1, lens[l] - 1);
        assert_int_equal(out[lens[l]], 0xcc);
    }
    uint32_t sz = 200;
    make_pkt(p, frame, 300, &sz, 1); /* claims 300 bytes, segments hold 200 */
    pkt_snapshot_header(p);
    assert_int_equal(pkt_copy_frame(p, out), 200);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_and_read_across_segments),
        cmocka_unit_test(test_private_copy_wins),
        cmocka_unit_test(test_read_bounds),
        cmocka_unit_test(test_snapshot_short_segments),
        cmocka_unit_test(test_from_buffer),
        cmocka_unit_test(test_copy_small_sizes),
        cmocka_unit_test(test_copy_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
