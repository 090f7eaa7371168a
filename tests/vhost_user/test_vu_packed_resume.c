/*
 * Unit tests of src/vhost_user/vu_packed_resume.c: where a packed ring stands when the
 * frontend's base is stale (QEMU after vswitchd restarted). Table-driven on a hand-built ring
 * of 16 slots: each case writes the descriptor flags a driver and a device would have left,
 * gives a base, and says whether the base must be replaced and by what. The end-to-end case
 * is tests/qemu/test_qemu_ping.sh packed-reconnect.
 */
#include "vu_test_util.h"

#define N  16
#define A  VRING_PACKED_DESC_F_AVAIL
#define U  VRING_PACKED_DESC_F_USED
#define WR VRING_DESC_F_WRITE

/* Slot states, for a lap with wrap counter 1 or 0. */
#define USED1  (A | U) /* used by the device in lap 1 */
#define AVAIL1 A       /* made available by the driver for lap 1 */
#define USED0  0       /* used in lap 0 */
#define AVAIL0 U       /* made available for lap 0 */

struct resume_case {
    const char *name;
    uint16_t flags[N];
    uint16_t base_slot;
    bool base_wrap;
    bool replaced;
    uint16_t slot;
    bool wrap;
};

static const struct resume_case cases[] = {
    {"fresh ring, slot 0 of lap 1", {0}, 0, true, false, 0, false},
    {"fresh ring with buffers posted", {AVAIL1, AVAIL1, AVAIL1, AVAIL1}, 0, true, false, 0, false},
    {"base agrees: 3 used, the driver posted more",
     {USED1, USED1, USED1, AVAIL1, AVAIL1},
     3,
     true,
     false,
     0,
     false},
    {"stale base 0 (lap 1), 5 used since",
     {USED1, USED1, USED1, USED1, USED1, AVAIL1, AVAIL1},
     0,
     true,
     true,
     5,
     true},
    {"stale base 0, used slots made available again for lap 0",
     {AVAIL0, AVAIL0, USED1 | WR, USED1, AVAIL1, AVAIL1},
     0,
     true,
     true,
     4,
     true},
    {"stale base 0 (lap 1), ring lapped: the device stands at slot 6 of lap 0",
     {USED0, USED0, USED0, AVAIL1, USED0, USED0, AVAIL0, AVAIL0, USED1, USED1, USED1, USED1, USED1,
      USED1, USED1, USED1},
     0,
     true,
     true,
     6,
     false},
    {"stale base 2 (lap 0) of a lap-0 ring that moved to slot 9 (RX: used with WRITE)",
     {USED0 | WR, USED0 | WR, USED0 | WR, USED0 | WR, USED0 | WR, USED0 | WR, USED0 | WR,
      USED0 | WR, USED0 | WR, AVAIL0, USED1, USED1, USED1, USED1, USED1, USED1},
     2,
     false,
     true,
     9,
     false},
    {"the same with TX used descriptors (flags 0): cannot tell, the base stays",
     {USED0, USED0, USED0, USED0, USED0, USED0, USED0, USED0, USED0, AVAIL0, USED1, USED1, USED1,
      USED1, USED1, USED1},
     2,
     false,
     false,
     0,
     false},
    {"chains: the ring cannot tell, the base stays",
     {USED1, AVAIL1, USED1, AVAIL1, USED1, AVAIL1},
     0,
     true,
     false,
     0,
     false},
    {"base at a zeroed slot in lap 0 agrees", {USED1}, 10, false, false, 0, false},
};

static const char *case_name(const void *c)
{
    return ((const struct resume_case *)c)->name;
}

static void test_resume(void **state)
{
    const struct resume_case *c = *state;
    static struct vring_packed_desc ring[N];
    struct vu_queue q;
    memset(&q, 0, sizeof(q));
    memset(ring, 0, sizeof(ring));
    for (unsigned i = 0; i < N; i++)
        ring[i].flags = c->flags[i];
    q.size = N;
    q.pdesc = ring;
    q.last_used_idx = c->base_slot;
    q.used_wrap = c->base_wrap;
    uint16_t slot = 0xffff;
    bool wrap = false;
    bool replaced = vu_packed_ring_position(&q, &slot, &wrap);
    assert_int_equal(replaced, c->replaced);
    if (replaced) {
        assert_int_equal(slot, c->slot);
        assert_int_equal(wrap, c->wrap);
    }
}

/* Whatever a guest writes, the answer is a slot inside the ring. */
static void test_random_flags(void **state)
{
    (void)state;
    static struct vring_packed_desc ring[256];
    struct vu_queue q;
    uint32_t seed = 12345;
    for (int round = 0; round < 2000; round++) {
        memset(&q, 0, sizeof(q));
        q.size = (uint16_t)(1u << (round % 9)); /* 1..256 */
        q.pdesc = ring;
        for (unsigned i = 0; i < q.size; i++) {
            seed = seed * 1103515245u + 12345u;
            ring[i].flags = (uint16_t)(seed >> 16);
        }
        q.last_used_idx = (uint16_t)((seed >> 8) % q.size);
        q.used_wrap = seed & 1;
        uint16_t slot;
        bool wrap;
        if (vu_packed_ring_position(&q, &slot, &wrap))
            assert_true(slot < q.size);
    }
}

int main(void)
{
    vut_main_init();
    int rc = vut_run_table("packed resume", cases, sizeof(cases[0]), ARRAY_SIZE(cases), case_name,
                           test_resume, NULL, NULL);
    const struct CMUnitTest more[] = {cmocka_unit_test(test_random_flags)};
    return rc | cmocka_run_group_tests(more, NULL, NULL);
}
