/*
 * Unit tests of the vhost-user message handler (src/vhost_user/vu_msg.c, vu_mem.c, vu_dev.c)
 * entered through vu_dev_process_msg(): no sockets. Table driven:
 *   - valid sequences, each step with its exact reply, queue readiness afterwards, and the
 *     quiesce / state_changed hooks it must call;
 *   - REPLY_ACK behaviour;
 *   - malformed messages, each run on a fresh and on a running device: -EPROTO, counted,
 *     every fd closed, no mapping left behind, and the device usable again afterwards.
 * Every fd handed to the backend is checked right after the call (closed unless kept), and
 * each case ends with no fd and no mapping leaked.
 */
#include "vu_test_util.h"

#include <sys/socket.h>

/* The tables build variants by overriding one field of a macro-built message. */
#pragma GCC diagnostic ignored "-Woverride-init"

#define Q0 (1u << 0)
#define Q1 (1u << 1)
#define Q2 (1u << 2)
#define Q3 (1u << 3)

enum fdk { FD_NONE, FD_R0, FD_R1, FD_R2, FD_EVENT, FD_SHORT };

struct step {
    const char *name;
    uint32_t req;
    bool raw_flags; /* hdr.flags = flags as is (else VHOST_USER_VERSION | flags) */
    uint32_t flags;
    uint32_t size;
    union vhost_user_payload pl;
    uint8_t nfds;
    uint8_t fdk[12];
    uint32_t kept; /* fds (bitmask) the backend keeps */
    int rc;        /* 0 or -EPROTO */
    bool reply;
    uint32_t reply_size;
    uint64_t reply_u64;
    uint32_t ready; /* exact ready-queue mask afterwards (valid sequences) */
    uint32_t stops; /* queues that must already be stopped when quiesce runs */
};

/* ---- payload builders (constant expressions, for the tables) ---- */
#define U64(x)            .size = 8, .pl = {.u64 = (x)}
#define STATE(i, n)       .size = 8, .pl = {.state = {(i), (n)}}
#define REPLY64(x)        .reply = true, .reply_size = 8, .reply_u64 = (x)
#define REPLY_STATE(i, n) REPLY64((uint64_t)(i) | (uint64_t)(n) << 32)
#define ADDR_AT(...)      ADDR_AT_(__VA_ARGS__)
#define ADDR_AT_(q, d, a, u)                                                                       \
    .size = sizeof(struct vhost_vring_addr), .pl = {.addr = {.index = (q),                         \
                                                             .desc_user_addr = (d),                \
                                                             .used_user_addr = (u),                \
                                                             .avail_user_addr = (a)}}
#define ADDR(q)                                                                                    \
    ADDR_AT(q, VUT_UVA(0) + VUT_DESC_GPA(q), VUT_UVA(0) + VUT_AVAIL_GPA(q),                        \
            VUT_UVA(0) + VUT_USED_GPA(q))
/* clang-format off */
#define REG0 {VUT_R0_GPA, VUT_R0_SIZE, VUT_UVA(0), VUT_R0_OFF}
#define REG1 {VUT_R1_GPA, VUT_R1_SIZE, VUT_UVA(1), 0}
#define REG2 {VUT_R2_GPA, VUT_R2_SIZE, VUT_UVA(2), 0}
/* clang-format on */
#define MEMSZ(n) (8 + (n)*32)
#define MEM3                                                                                       \
    .size = MEMSZ(3), .pl = {.memory = {.nregions = 3, .regions = {REG0, REG1, REG2}}}, .nfds = 3, \
    .fdk = {FD_R0, FD_R1, FD_R2}
#define MEM1(reg, fd)                                                                              \
    .size = MEMSZ(1), .pl = {.memory = {.nregions = 1, .regions = {reg}}}, .nfds = 1, .fdk = {fd}
#define EVFD .nfds = 1, .fdk = {FD_EVENT}
#define NOFD VHOST_USER_VRING_NOFD
#define BAD  .rc = -EPROTO
#define NR   VHOST_USER_NEED_REPLY

#define R(name) .req = VHOST_USER_##name

/* The start-up a frontend such as QEMU sends, for queues 0 and 1. */
/* A started TX ring (odd) runs while disabled (drained, frames dropped); an RX ring waits for
 * SET_VRING_ENABLE. */
#define KICKED(q) ((q)&1 ? 1u << (q) : 0)
#define QUEUE_STEPS(q, before)                                                                     \
    {"SET_VRING_NUM " #q, R(SET_VRING_NUM), STATE(q, VUT_QSIZE), .ready = before},                 \
        {"SET_VRING_BASE " #q, R(SET_VRING_BASE), STATE(q, 0), .ready = before},                   \
        {"SET_VRING_ADDR " #q, R(SET_VRING_ADDR), ADDR(q), .ready = before},                       \
        {"SET_VRING_CALL " #q, R(SET_VRING_CALL), U64(q), EVFD, .kept = 1, .ready = before},       \
        {"SET_VRING_KICK " #q,       R(SET_VRING_KICK), U64(q), EVFD, .kept = 1,                   \
         .ready = before | KICKED(q)},                                                             \
    {                                                                                              \
        "SET_VRING_ENABLE " #q, R(SET_VRING_ENABLE), STATE(q, 1), .ready = before | 1u << (q)      \
    }

#define STARTUP_STEPS                                                                              \
    {"GET_FEATURES", R(GET_FEATURES), REPLY64(VU_OFFERED_FEATURES)}, {"SET_OWNER", R(SET_OWNER)},  \
        {"GET_PROTOCOL_FEATURES", R(GET_PROTOCOL_FEATURES),                                        \
         REPLY64(VU_OFFERED_PROTOCOL_FEATURES)},                                                   \
        {"SET_PROTOCOL_FEATURES", R(SET_PROTOCOL_FEATURES), U64(VUT_PF_ALL)},                      \
        {"GET_QUEUE_NUM", R(GET_QUEUE_NUM), REPLY64(VU_MAX_QUEUE_PAIRS)},                          \
        {"SET_FEATURES", R(SET_FEATURES), U64(VUT_F_ALL)},                                         \
        {"SET_MEM_TABLE (need reply)", R(SET_MEM_TABLE), .flags = NR, MEM3, REPLY64(0)},           \
        QUEUE_STEPS(0, 0), QUEUE_STEPS(1, Q0)

static const struct step seq_startup[] = {STARTUP_STEPS};

static const struct step seq_legacy[] = {
    {"GET_FEATURES", R(GET_FEATURES), REPLY64(VU_OFFERED_FEATURES)},
    {"SET_OWNER", R(SET_OWNER)},
    {"SET_FEATURES", R(SET_FEATURES), U64(1ull << VIRTIO_F_VERSION_1)},
    /* without REPLY_ACK negotiated NEED_REPLY gets no reply */
    {"SET_MEM_TABLE", R(SET_MEM_TABLE), .flags = NR, MEM3},
    {"SET_VRING_NUM 1", R(SET_VRING_NUM), STATE(1, 64)},
    {"SET_VRING_ADDR 1", R(SET_VRING_ADDR), ADDR(1)},
    {"SET_VRING_BASE 1", R(SET_VRING_BASE), STATE(1, 0)},
    /* no protocol features: the ring is enabled as soon as it is kicked */
    {"SET_VRING_KICK 1", R(SET_VRING_KICK), U64(1), EVFD, .kept = 1, .ready = Q1},
    {"SET_VRING_CALL 1", R(SET_VRING_CALL), U64(1), EVFD, .kept = 1, .ready = Q1, .stops = Q1},
    {"SET_VRING_NUM 0", R(SET_VRING_NUM), STATE(0, 32768), .ready = Q1},
    {"SET_VRING_ADDR 0", R(SET_VRING_ADDR), ADDR(0), .ready = Q1},
    {"SET_VRING_KICK 0 polling", R(SET_VRING_KICK), U64(0 | NOFD), .ready = Q0 | Q1},
    {"GET_VRING_BASE 1", R(GET_VRING_BASE), STATE(1, 0), REPLY_STATE(1, 0), .ready = Q0,
     .stops = Q1},
};

static const struct step seq_reset_owner[] = {
    STARTUP_STEPS,
    {"RESET_OWNER", R(RESET_OWNER), .ready = 0, .stops = Q0 | Q1},
    STARTUP_STEPS,
};

static const struct step seq_mem_replaced[] = {
    STARTUP_STEPS,
    /* the rings are in R0: a table without it stops both queues */
    {"SET_MEM_TABLE R1 only", R(SET_MEM_TABLE), MEM1(REG1, FD_R1), .ready = 0, .stops = Q0 | Q1},
    /* ring addresses were dropped with the old table: they must be sent again */
    {"SET_MEM_TABLE all", R(SET_MEM_TABLE), MEM3, .ready = 0},
    {"SET_VRING_ADDR 0", R(SET_VRING_ADDR), ADDR(0), .ready = Q0},
    {"SET_VRING_ADDR 1", R(SET_VRING_ADDR), ADDR(1), .ready = Q0 | Q1},
    /* same table again while running: queues stop for the swap and come back */
    {"SET_MEM_TABLE again", R(SET_MEM_TABLE), MEM3, .ready = Q0 | Q1, .stops = Q0 | Q1},
};

static const struct step seq_queue_ops[] = {
    STARTUP_STEPS,
    {"disable 0", R(SET_VRING_ENABLE), STATE(0, 0), .ready = Q1, .stops = Q0},
    {"disable 0 again", R(SET_VRING_ENABLE), STATE(0, 0), .ready = Q1},
    {"enable 0", R(SET_VRING_ENABLE), STATE(0, 1), .ready = Q0 | Q1},
    {"enable 0 again", R(SET_VRING_ENABLE), STATE(0, 1), .ready = Q0 | Q1},
    /* a disabled TX ring keeps running: it is drained */
    {"disable 1", R(SET_VRING_ENABLE), STATE(1, 0), .ready = Q0 | Q1, .stops = Q1},
    {"enable 1", R(SET_VRING_ENABLE), STATE(1, 1), .ready = Q0 | Q1},
    {"GET_VRING_BASE 0", R(GET_VRING_BASE), STATE(0, 0), REPLY_STATE(0, 0), .ready = Q1,
     .stops = Q0},
    {"kick 0 restarts", R(SET_VRING_KICK), U64(0), EVFD, .kept = 1, .ready = Q0 | Q1},
    {"SET_VRING_NUM 1 forgets addresses", R(SET_VRING_NUM), STATE(1, 128), .ready = Q0,
     .stops = Q1},
    {"SET_VRING_ADDR 1", R(SET_VRING_ADDR), ADDR(1), .ready = Q0 | Q1},
    {"call 0 polling", R(SET_VRING_CALL), U64(0 | NOFD), .ready = Q0 | Q1, .stops = Q0},
    {"call 0 fd", R(SET_VRING_CALL), U64(0), EVFD, .kept = 1, .ready = Q0 | Q1, .stops = Q0},
    {"SET_VRING_BASE 1", R(SET_VRING_BASE), STATE(1, 0), .ready = Q0 | Q1, .stops = Q1},
    {"SET_VRING_ADDR 1 moves", R(SET_VRING_ADDR), ADDR(1), .ready = Q0 | Q1, .stops = Q1},
    {"SET_VRING_ERR 0", R(SET_VRING_ERR), U64(0), EVFD, .kept = 1, .ready = Q0 | Q1},
    {"SET_VRING_ERR 0 none", R(SET_VRING_ERR), U64(0 | NOFD), .ready = Q0 | Q1},
    {"SET_FEATURES change", R(SET_FEATURES), U64(VUT_F_BASE), .ready = Q0 | Q1, .stops = Q0 | Q1},
    {"SET_FEATURES same", R(SET_FEATURES), U64(VUT_F_BASE), .ready = Q0 | Q1},
    {"SET_OWNER again", R(SET_OWNER), .ready = Q0 | Q1},
};

/* A second queue pair (MQ): rings of queues 2 and 3 at 0x8000 and 0xc000. */
static const struct step seq_two_pairs[] = {
    STARTUP_STEPS,
    QUEUE_STEPS(3, Q0 | Q1),
    QUEUE_STEPS(2, Q0 | Q1 | Q3),
    {"disable 0", R(SET_VRING_ENABLE), STATE(0, 0), .ready = Q1 | Q2 | Q3, .stops = Q0},
};

/* R0 mapped 8 bytes off: frontend addresses aligned, our pointers not. */
/* clang-format off */
#define REG0_SKEWED {VUT_R0_GPA, VUT_R0_SIZE, VUT_UVA(0), VUT_R0_OFF + 8}
/* clang-format on */

static const struct step seq_skewed_mapping[] = {
    STARTUP_STEPS,
    {"SET_MEM_TABLE skewed R0", R(SET_MEM_TABLE), .size = MEMSZ(3),
     .pl = {.memory = {.nregions = 3, .regions = {REG0_SKEWED, REG1, REG2}}}, .nfds = 3,
     .fdk = {FD_R0, FD_R1, FD_R2}, .ready = 0, .stops = Q0 | Q1},
    {"SET_VRING_ADDR 0 misaligned in our mapping", R(SET_VRING_ADDR), ADDR(0), .rc = -EPROTO},
};

struct seq {
    const char *name;
    const struct step *steps;
    size_t n;
    uint16_t pairs;  /* vu_dev_num_queue_pairs() at the end */
    unsigned errors; /* steps that are refused */
};

static const struct seq seqs[] = {
    {"start-up with protocol features", seq_startup, ARRAY_SIZE(seq_startup), 1},
    {"legacy start-up, no protocol features", seq_legacy, ARRAY_SIZE(seq_legacy), 1},
    {"RESET_OWNER forgets everything", seq_reset_owner, ARRAY_SIZE(seq_reset_owner), 1},
    {"memory table replaced", seq_mem_replaced, ARRAY_SIZE(seq_mem_replaced), 1},
    {"queue stop, restart, reconfigure", seq_queue_ops, ARRAY_SIZE(seq_queue_ops), 1},
    {"two queue pairs", seq_two_pairs, ARRAY_SIZE(seq_two_pairs), 2},
    {"rings misaligned in our mapping", seq_skewed_mapping, ARRAY_SIZE(seq_skewed_mapping), 0, 1},
};

#define CHECK_EQ(s, a, b)                                                                          \
    do {                                                                                           \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);             \
        if (a_ != b_)                                                                              \
            fail_msg("step \"%s\": %s is %#llx, want %#llx", (s)->name, #a, a_, b_);               \
    } while (0)

static int make_fd(struct vut *v, enum fdk k)
{
    int fd = -1;
    switch (k) {
    case FD_R0:
    case FD_R1:
    case FD_R2:
        fd = dup(v->memfd[k - FD_R0]);
        break;
    case FD_EVENT:
        fd = vut_eventfd();
        break;
    case FD_SHORT:
        fd = vut_memfd(4096);
        break;
    case FD_NONE:
        fail_msg("test bug: fd kind none");
    }
    assert_true(fd >= 0);
    return fd;
}

/* Run one step and check everything it promises. */
static void run_step(struct vut *v, const struct step *s, bool check_ready)
{
    struct vhost_user_msg m, r;
    int fds[ARRAY_SIZE(s->fdk)];
    bool out = true;

    memset(&m, 0, sizeof(m));
    memset(&r, 0xee, sizeof(r));
    m.hdr.request = s->req;
    m.hdr.flags = s->raw_flags ? s->flags : (VHOST_USER_VERSION | s->flags);
    m.hdr.size = s->size;
    m.payload = s->pl;
    for (unsigned i = 0; i < s->nfds; i++)
        fds[i] = make_fd(v, (enum fdk)s->fdk[i]);

    struct vu_dev_stats before = vut_stats(v);
    unsigned quiesce = v->quiesce, changed = v->state_changed;
    uint32_t mask = vut_ready_mask(v);
    int maps = vut_count_maps();
    v->ready_at_quiesce = 0;

    int rc = vut_process(v, &m, fds, s->nfds, s->rc ? 0 : s->kept, &r, &out);

    struct vu_dev_stats after = vut_stats(v);
    CHECK_EQ(s, rc, s->rc);
    CHECK_EQ(s, out, s->reply);
    if (s->reply) {
        CHECK_EQ(s, r.hdr.request, s->req);
        CHECK_EQ(s, r.hdr.flags, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
        CHECK_EQ(s, r.hdr.size, s->reply_size);
        CHECK_EQ(s, r.payload.u64, s->reply_u64);
    }
    CHECK_EQ(s, after.msgs, before.msgs + (rc == 0));
    CHECK_EQ(s, after.msg_errors, before.msg_errors + (rc != 0));
    /* Only an accepted memory table (or a reset) changes the mappings; a refused one leaves
     * the old table mapped and nothing of the new one. */
    if (rc != 0 || (s->req != VHOST_USER_SET_MEM_TABLE && s->req != VHOST_USER_RESET_OWNER))
        CHECK_EQ(s, vut_count_maps(), maps);
    if (check_ready)
        CHECK_EQ(s, vut_ready_mask(v), s->ready);
    if (s->stops) {
        if (v->quiesce == quiesce)
            fail_msg("step \"%s\": stopped queues %#x without quiescing", s->name, s->stops);
        CHECK_EQ(s, v->ready_at_quiesce & s->stops, 0);
    }
    /* A queue that started or stopped must be reported (the switch reassigns on it). After a
     * refused message the caller disconnects, which reports it. */
    if (rc == 0 && vut_ready_mask(v) != mask && v->state_changed == changed)
        fail_msg("step \"%s\": ready queues went %#x -> %#x without state_changed", s->name, mask,
                 vut_ready_mask(v));
    if (!vut_canaries_ok(v))
        fail_msg("step \"%s\": wrote outside guest memory", s->name);
}

static int setup(void **state)
{
    struct vut *v = vut_new();
    v->tcase = *state;
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    vut_free(*state);
    return 0;
}

static const char *seq_name(const void *c)
{
    return ((const struct seq *)c)->name;
}

static void test_sequence(void **state)
{
    struct vut *v = *state;
    const struct seq *sq = v->tcase;
    for (size_t i = 0; i < sq->n; i++)
        run_step(v, &sq->steps[i], true);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.msgs, sq->n - sq->errors);
    assert_int_equal(st.msg_errors, sq->errors);
    assert_int_equal(vu_dev_num_queue_pairs(v->dev), sq->pairs);
    for (uint16_t q = 0; q < VU_MAX_QUEUES; q++) {
        int kfd = vu_dev_queue_kickfd(v->dev, q);
        assert_true(vu_dev_queue_ready(v->dev, q) ? kfd == -1 || vut_fd_open(kfd) : kfd == -1);
    }
    /* a disconnect stops everything and forgets the negotiation */
    vu_dev_disconnect(v->dev);
    assert_int_equal(vut_ready_mask(v), 0);
    assert_int_equal(vu_dev_num_queue_pairs(v->dev), 0);
    assert_false(vu_dev_connected(v->dev));
}

/* ---- REPLY_ACK ---- */

struct ack_case {
    const char *name;
    uint64_t proto; /* protocol features negotiated first */
    struct step s;
};

#define ACK .flags = NR, REPLY64(0)
static const struct ack_case ack_cases[] = {
    {"ack: SET_VRING_NUM", VUT_PF_ALL, {"num", R(SET_VRING_NUM), STATE(2, 64), ACK}},
    {"ack: SET_VRING_ADDR", VUT_PF_ALL, {"addr", R(SET_VRING_ADDR), ADDR(1), ACK}},
    {"ack: SET_MEM_TABLE", VUT_PF_ALL, {"mem", R(SET_MEM_TABLE), MEM3, ACK}},
    {"ack: SET_FEATURES", VUT_PF_ALL, {"features", R(SET_FEATURES), U64(VUT_F_ALL), ACK}},
    {"ack: SET_VRING_ENABLE", VUT_PF_ALL, {"enable", R(SET_VRING_ENABLE), STATE(0, 1), ACK}},
    {"ack: SET_VRING_KICK with fd",
     VUT_PF_ALL,
     {"kick", R(SET_VRING_KICK), U64(1), EVFD, .kept = 1, ACK}},
    {"ack: SET_OWNER", VUT_PF_ALL, {"owner", R(SET_OWNER), ACK}},
    {"ack: not asked", VUT_PF_ALL, {"num", R(SET_VRING_NUM), STATE(2, 64)}},
    {"ack: asked, REPLY_ACK not negotiated",
     1ull << VHOST_USER_PROTOCOL_F_MQ,
     {"num", R(SET_VRING_NUM), .flags = NR, STATE(2, 64)}},
    {"ack: asked, no protocol features", 0, {"num", R(SET_VRING_NUM), .flags = NR, STATE(2, 64)}},
    {"ack: GET_FEATURES gets its own reply only",
     VUT_PF_ALL,
     {"get features", R(GET_FEATURES), .flags = NR, REPLY64(VU_OFFERED_FEATURES)}},
    {"ack: GET_QUEUE_NUM gets its own reply only",
     VUT_PF_ALL,
     {"get queue num", R(GET_QUEUE_NUM), .flags = NR, REPLY64(VU_MAX_QUEUE_PAIRS)}},
    {"ack: GET_VRING_BASE gets its own reply only",
     VUT_PF_ALL,
     {"get base", R(GET_VRING_BASE), .flags = NR, STATE(1, 0), REPLY_STATE(1, 0)}},
    {"ack: refused request gets no reply",
     VUT_PF_ALL,
     {"bad num", R(SET_VRING_NUM), .flags = NR, STATE(2, 3), BAD}},
};

static const char *ack_name(const void *c)
{
    return ((const struct ack_case *)c)->name;
}

static void test_ack(void **state)
{
    struct vut *v = *state;
    const struct ack_case *c = v->tcase;
    vut_startup(v, VUT_F_ALL, c->proto, 2);
    run_step(v, &c->s, false);
}

/* ---- GET_VRING_BASE ---- */

static void test_get_vring_base(void **state)
{
    struct vut *v = *state;
    static const uint16_t bases[] = {0, 7, 0x8000, 0xffff};
    vut_startup(v, VUT_F_ALL, VUT_PF_ALL, 2);

    for (size_t i = 0; i < ARRAY_SIZE(bases); i++) {
        struct vhost_user_msg m, r;
        bool out;
        /* stop, move the ring to the new base (guest and backend agree), restart */
        vut_msg_init(&m, VHOST_USER_GET_VRING_BASE, 8);
        m.payload.state.index = 1;
        assert_int_equal(vut_process(v, &m, NULL, 0, 0, &r, &out), 0);
        assert_false(vu_dev_queue_ready(v->dev, 1));
        vut_used(v, 1)->idx = bases[i];
        vut_avail(v, 1)->idx = bases[i];
        vut_state(v, VHOST_USER_SET_VRING_BASE, 1, bases[i]);
        vut_kick(v, 1);
        assert_true(vu_dev_queue_ready(v->dev, 1));

        int kickfd = vu_dev_queue_kickfd(v->dev, 1);
        assert_true(vut_fd_open(kickfd));
        unsigned quiesce = v->quiesce, changed = v->state_changed;
        v->ready_at_quiesce = 0;
        memset(&r, 0xee, sizeof(r));
        vut_msg_init(&m, VHOST_USER_GET_VRING_BASE, 8);
        m.payload.state.index = 1;
        m.payload.state.num = 12345; /* ignored */
        assert_int_equal(vut_process(v, &m, NULL, 0, 0, &r, &out), 0);
        assert_true(vut_fd_closed(kickfd)); /* the ring is stopped: its kick fd is let go */
        assert_true(out);
        assert_int_equal(r.hdr.request, VHOST_USER_GET_VRING_BASE);
        assert_int_equal(r.hdr.flags, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK);
        assert_int_equal(r.hdr.size, 8);
        assert_int_equal(r.payload.state.index, 1);
        assert_int_equal(r.payload.state.num, bases[i]);
        assert_false(vu_dev_queue_ready(v->dev, 1));
        assert_true(vu_dev_queue_ready(v->dev, 0));
        assert_int_equal(vu_dev_queue_kickfd(v->dev, 1), -1);
        assert_true(v->quiesce > quiesce);
        assert_int_equal(v->ready_at_quiesce & Q1, 0);
        assert_true(v->state_changed > changed);
        /* and it starts again where it stopped */
        vut_kick(v, 1);
        assert_true(vu_dev_queue_ready(v->dev, 1));
    }
}

/* ---- malformed messages ---- */

#define RING_OK(q) VUT_UVA(0) + VUT_DESC_GPA(q), VUT_UVA(0) + VUT_AVAIL_GPA(q)
#define R0_END_UVA (VUT_UVA(0) + VUT_R0_SIZE)
#define MEM_BAD(n, ...)                                                                            \
    .size = MEMSZ(n), .pl = {.memory = {.nregions = (n), .regions = {__VA_ARGS__}}}, .nfds = (n),  \
    .fdk = {FD_R0, FD_R1, FD_R2}
/* Region built from REG0 with one field replaced. */
/* clang-format off */
#define REG(gpa, size, uva, off) {(gpa), (size), (uva), (off)}
/* clang-format on */

static const struct step bad_cases[] = {
    /* header flags */
    {"version 0", R(GET_FEATURES), .raw_flags = true, .flags = 0, BAD},
    {"version 2", R(GET_FEATURES), .raw_flags = true, .flags = 2, BAD},
    {"version 3", R(GET_FEATURES), .raw_flags = true, .flags = 3, BAD},
    {"reply flag in a request", R(SET_OWNER), .raw_flags = true, .flags = 1 | 4, BAD},
    {"unknown flag bit 4", R(SET_OWNER), .raw_flags = true, .flags = 1 | 0x10, BAD},
    {"unknown flag bit 31", R(SET_OWNER), .raw_flags = true, .flags = 1 | 0x80000000u, BAD},
    {"bad version with need-reply", R(SET_OWNER), .raw_flags = true, .flags = 2 | NR, BAD},
    /* request ids */
    {"request 0", .req = 0, BAD},
    {"request 26 (gap)", .req = 26, BAD},
    {"request 35 (gap)", .req = 35, BAD},
    {"request 63", .req = 63, BAD},
    {"request 64", .req = 64, BAD},
    {"request 65", .req = 65, BAD},
    {"request 0xffffffff", .req = 0xffffffffu, BAD},
    {"SET_LOG_BASE (LOG_SHMFD not negotiated)", R(SET_LOG_BASE), .size = 16, .nfds = 1,
     .fdk = {FD_EVENT}, BAD},
    {"SET_LOG_FD (LOG_SHMFD not negotiated)", R(SET_LOG_FD), EVFD, BAD},
    {"NET_SET_MTU (NET_MTU not negotiated)", R(NET_SET_MTU), U64(1500), BAD},
    {"SEND_RARP (RARP not negotiated)", R(SEND_RARP), U64(0x0100000002ull), BAD},
    {"SET_CONFIG (not offered)", R(SET_CONFIG), .size = 12, BAD},
    {"SET_BACKEND_REQ_FD (not offered)", R(SET_BACKEND_REQ_FD), EVFD, BAD},
    /* payload sizes */
    {"GET_FEATURES with 8 bytes", R(GET_FEATURES), U64(0), BAD},
    {"SET_OWNER with 8 bytes", R(SET_OWNER), U64(0), BAD},
    {"SET_FEATURES with 0 bytes", R(SET_FEATURES), .size = 0, BAD},
    {"SET_FEATURES with 4 bytes", R(SET_FEATURES), .size = 4, BAD},
    {"SET_FEATURES with 16 bytes", R(SET_FEATURES), .size = 16, BAD},
    {"SET_FEATURES with 0xffffffff bytes", R(SET_FEATURES), .size = 0xffffffffu, BAD},
    {"SET_VRING_NUM with 4 bytes", R(SET_VRING_NUM), .size = 4, BAD},
    {"SET_VRING_ADDR with 32 bytes", R(SET_VRING_ADDR), ADDR(0), .size = 32, BAD},
    {"SET_VRING_ADDR with 48 bytes", R(SET_VRING_ADDR), ADDR(0), .size = 48, BAD},
    {"SET_VRING_KICK with 4 bytes", R(SET_VRING_KICK), .size = 4, EVFD, BAD},
    {"RESET_OWNER with 16 bytes", R(RESET_OWNER), .size = 16, BAD},
    {"SET_MEM_TABLE with 8 bytes", R(SET_MEM_TABLE), MEM3, .size = 8, BAD},
    {"SET_MEM_TABLE with 265 bytes", R(SET_MEM_TABLE), MEM3, .size = 265, BAD},
    /* features */
    {"SET_FEATURES GUEST_UFO not offered", R(SET_FEATURES), U64(VUT_F_ALL | (1ull << 10)), BAD},
    {"SET_FEATURES CTRL_VQ not offered", R(SET_FEATURES),
     U64(VUT_F_ALL | 1ull << VIRTIO_NET_F_CTRL_VQ), BAD},
    {"SET_FEATURES ACCESS_PLATFORM not offered", R(SET_FEATURES),
     U64(VUT_F_ALL | 1ull << VIRTIO_F_ACCESS_PLATFORM), BAD},
    {"SET_FEATURES bit 63", R(SET_FEATURES), U64(1ull << 63), BAD},
    {"SET_FEATURES all ones", R(SET_FEATURES), U64(~0ull), BAD},
    {"SET_PROTOCOL_FEATURES CONFIG not offered", R(SET_PROTOCOL_FEATURES),
     U64(VUT_PF_ALL | 1ull << VHOST_USER_PROTOCOL_F_CONFIG), BAD},
    {"SET_PROTOCOL_FEATURES BACKEND_REQ not offered", R(SET_PROTOCOL_FEATURES),
     U64(1ull << VHOST_USER_PROTOCOL_F_BACKEND_REQ), BAD},
    {"SET_PROTOCOL_FEATURES bit 63", R(SET_PROTOCOL_FEATURES), U64(1ull << 63), BAD},
    /* fd counts */
    {"SET_VRING_KICK without fd or NOFD", R(SET_VRING_KICK), U64(0), BAD},
    {"SET_VRING_CALL without fd or NOFD", R(SET_VRING_CALL), U64(1), BAD},
    {"SET_VRING_ERR without fd or NOFD", R(SET_VRING_ERR), U64(1), BAD},
    {"SET_VRING_KICK with NOFD and an fd", R(SET_VRING_KICK), U64(0 | NOFD), EVFD, BAD},
    {"SET_VRING_CALL with NOFD and an fd", R(SET_VRING_CALL), U64(1 | NOFD), EVFD, BAD},
    {"SET_VRING_KICK with two fds", R(SET_VRING_KICK), U64(0), .nfds = 2,
     .fdk = {FD_EVENT, FD_EVENT}, BAD},
    {"SET_VRING_KICK with unknown payload bit 9", R(SET_VRING_KICK), U64(0 | 1ull << 9), EVFD, BAD},
    {"SET_VRING_KICK with payload bit 63", R(SET_VRING_KICK), U64(1 | 1ull << 63), EVFD, BAD},
    {"GET_FEATURES with an fd", R(GET_FEATURES), EVFD, BAD},
    {"SET_FEATURES with an fd", R(SET_FEATURES), U64(VUT_F_ALL), EVFD, BAD},
    {"SET_VRING_NUM with a memfd", R(SET_VRING_NUM), STATE(0, 256), .nfds = 1, .fdk = {FD_R0}, BAD},
    {"SET_VRING_ENABLE with an fd", R(SET_VRING_ENABLE), STATE(0, 1), EVFD, BAD},
    {"GET_VRING_BASE with an fd", R(GET_VRING_BASE), STATE(0, 0), EVFD, BAD},
    {"SET_OWNER with 9 fds", R(SET_OWNER), .nfds = 9,
     .fdk = {FD_EVENT, FD_EVENT, FD_EVENT, FD_EVENT, FD_EVENT, FD_EVENT, FD_EVENT, FD_EVENT,
             FD_EVENT},
     BAD},
    /* queue indices */
    {"SET_VRING_NUM queue 16", R(SET_VRING_NUM), STATE(16, 256), BAD},
    {"SET_VRING_NUM queue 0xffffffff", R(SET_VRING_NUM), STATE(0xffffffffu, 256), BAD},
    {"SET_VRING_ADDR queue 16", R(SET_VRING_ADDR), ADDR(16), BAD},
    {"SET_VRING_BASE queue 16", R(SET_VRING_BASE), STATE(16, 0), BAD},
    {"GET_VRING_BASE queue 16", R(GET_VRING_BASE), STATE(16, 0), BAD},
    {"GET_VRING_BASE queue 0x80000000", R(GET_VRING_BASE), STATE(0x80000000u, 0), BAD},
    {"SET_VRING_ENABLE queue 16", R(SET_VRING_ENABLE), STATE(16, 1), BAD},
    {"SET_VRING_KICK queue 16", R(SET_VRING_KICK), U64(16), EVFD, BAD},
    {"SET_VRING_CALL queue 255", R(SET_VRING_CALL), U64(255), EVFD, BAD},
    {"SET_VRING_ERR queue 16 NOFD", R(SET_VRING_ERR), U64(16 | NOFD), BAD},
    /* ring size */
    {"ring size 0", R(SET_VRING_NUM), STATE(0, 0), BAD},
    {"ring size 3", R(SET_VRING_NUM), STATE(0, 3), BAD},
    {"ring size 255", R(SET_VRING_NUM), STATE(1, 255), BAD},
    {"ring size 65536", R(SET_VRING_NUM), STATE(0, 65536), BAD},
    {"ring size 0x80000000", R(SET_VRING_NUM), STATE(0, 0x80000000u), BAD},
    {"ring size 0xffffffff", R(SET_VRING_NUM), STATE(0, 0xffffffffu), BAD},
    /* ring addresses */
    {"SET_VRING_ADDR before SET_VRING_NUM", R(SET_VRING_ADDR), ADDR(2), BAD},
    {"desc not in memory", R(SET_VRING_ADDR),
     ADDR_AT(0, 0x1000, VUT_UVA(0) + VUT_AVAIL_GPA(0), VUT_UVA(0) + VUT_USED_GPA(0)), BAD},
    {"avail not in memory", R(SET_VRING_ADDR),
     ADDR_AT(0, VUT_UVA(0), VUT_UVA(3), VUT_UVA(0) + VUT_USED_GPA(0)), BAD},
    {"used not in memory", R(SET_VRING_ADDR), ADDR_AT(0, RING_OK(0), VUT_UVA(0) - 64), BAD},
    {"ring address given as a GPA", R(SET_VRING_ADDR),
     ADDR_AT(0, VUT_DESC_GPA(0), VUT_AVAIL_GPA(0), VUT_USED_GPA(0)), BAD},
    {"desc table runs past the region", R(SET_VRING_ADDR),
     ADDR_AT(0, R0_END_UVA - 16 * 255, VUT_UVA(0) + VUT_AVAIL_GPA(0), VUT_UVA(0) + VUT_USED_GPA(0)),
     BAD},
    {"used ring runs past the region (event field)", R(SET_VRING_ADDR),
     ADDR_AT(0, RING_OK(0), R0_END_UVA - 4 - 8 * 256), BAD},
    {"avail ring runs past the region (event field)", R(SET_VRING_ADDR),
     ADDR_AT(0, VUT_UVA(0), R0_END_UVA - 4 - 2 * 256, VUT_UVA(0) + VUT_USED_GPA(0)), BAD},
    {"desc address near 2^64", R(SET_VRING_ADDR),
     ADDR_AT(0, 0xfffffffffffffff0ull, VUT_UVA(0) + VUT_AVAIL_GPA(0), VUT_UVA(0) + VUT_USED_GPA(0)),
     BAD},
    {"desc misaligned by 8", R(SET_VRING_ADDR),
     ADDR_AT(0, VUT_UVA(0) + 8, VUT_UVA(0) + VUT_AVAIL_GPA(0), VUT_UVA(0) + VUT_USED_GPA(0)), BAD},
    {"avail misaligned by 1", R(SET_VRING_ADDR),
     ADDR_AT(0, VUT_UVA(0), VUT_UVA(0) + VUT_AVAIL_GPA(0) + 1, VUT_UVA(0) + VUT_USED_GPA(0)), BAD},
    {"used misaligned by 2", R(SET_VRING_ADDR),
     ADDR_AT(0, RING_OK(0), VUT_UVA(0) + VUT_USED_GPA(0) + 2), BAD},
    /* memory tables */
    {"0 regions", R(SET_MEM_TABLE), .size = MEMSZ(0), .nfds = 1, .fdk = {FD_R0}, BAD},
    {"0 regions, one region of payload", R(SET_MEM_TABLE), MEM1(REG0, FD_R0),
     .pl = {.memory = {.nregions = 0, .regions = {REG0}}}, BAD},
    {"9 regions", R(SET_MEM_TABLE), .size = MEMSZ(9), .pl = {.memory = {.nregions = 9}}, .nfds = 9,
     .fdk = {FD_R0, FD_R0, FD_R0, FD_R0, FD_R0, FD_R0, FD_R0, FD_R0, FD_R0}, BAD},
    {"9 regions in 8 regions of payload", R(SET_MEM_TABLE), .size = MEMSZ(8),
     .pl = {.memory = {.nregions = 9}}, .nfds = 8,
     .fdk = {FD_R0, FD_R0, FD_R0, FD_R0, FD_R0, FD_R0, FD_R0, FD_R0}, BAD},
    {"0xffffffff regions", R(SET_MEM_TABLE), MEM3, .pl = {.memory = {.nregions = 0xffffffffu}},
     BAD},
    {"size says 1 region, nregions 2", R(SET_MEM_TABLE), MEM_BAD(2, REG0, REG1), .size = MEMSZ(1),
     BAD},
    {"size says 3 regions, nregions 2", R(SET_MEM_TABLE), MEM_BAD(2, REG0, REG1), .size = MEMSZ(3),
     BAD},
    {"size not a whole region", R(SET_MEM_TABLE), MEM3, .size = MEMSZ(2) + 8, BAD},
    {"1 region, 2 fds", R(SET_MEM_TABLE), MEM1(REG0, FD_R0), .nfds = 2, .fdk = {FD_R0, FD_R1}, BAD},
    {"2 regions, 1 fd", R(SET_MEM_TABLE), MEM_BAD(2, REG0, REG1), .nfds = 1, BAD},
    {"1 region, no fd", R(SET_MEM_TABLE), MEM1(REG0, FD_R0), .nfds = 0, BAD},
    {"3 regions, 9 fds", R(SET_MEM_TABLE), MEM3, .nfds = 9,
     .fdk = {FD_R0, FD_R1, FD_R2, FD_R0, FD_R0, FD_R0, FD_R0, FD_R0, FD_R0}, BAD},
    {"overlapping GPA", R(SET_MEM_TABLE),
     MEM_BAD(2, REG0, REG(VUT_R1_GPA - 0x1000, VUT_R1_SIZE, VUT_UVA(1), 0)), BAD},
    {"overlapping GPA, one inside the other", R(SET_MEM_TABLE),
     MEM_BAD(2, REG0, REG(0x20000, 0x1000, VUT_UVA(1), 0)), BAD},
    {"overlapping UVA", R(SET_MEM_TABLE),
     MEM_BAD(2, REG0, REG(VUT_R1_GPA, VUT_R1_SIZE, VUT_UVA(0) + 0x1000, 0)), BAD},
    {"same region twice", R(SET_MEM_TABLE), MEM_BAD(2, REG0, REG0), BAD},
    {"region of size 0", R(SET_MEM_TABLE), MEM1(REG(0, 0, VUT_UVA(0), 0), FD_R0), BAD},
    {"second region of size 0", R(SET_MEM_TABLE),
     MEM_BAD(2, REG0, REG(VUT_R1_GPA, 0, VUT_UVA(1), 0)), BAD},
    {"gpa + size overflows", R(SET_MEM_TABLE),
     MEM1(REG(0xfffffffffffff000ull, 0x2000, VUT_UVA(0), 0), FD_R1), BAD},
    {"gpa + size is exactly 2^64", R(SET_MEM_TABLE),
     MEM1(REG(0ull - 0x1000, 0x1000, VUT_UVA(0), 0), FD_R2), BAD},
    {"uva + size overflows", R(SET_MEM_TABLE),
     MEM1(REG(0, 0x1000, 0xfffffffffffff800ull, 0), FD_R1), BAD},
    {"mmap_offset + size overflows", R(SET_MEM_TABLE),
     MEM1(REG(0, 0x1000, VUT_UVA(0), 0xfffffffffffff800ull), FD_R1), BAD},
    {"mmap_offset + size beyond 2^63", R(SET_MEM_TABLE),
     MEM1(REG(0, 0x1000, VUT_UVA(0), 0x7ffffffffffff800ull), FD_R1), BAD},
    {"size 2^64-1", R(SET_MEM_TABLE), MEM1(REG(0, ~0ull, VUT_UVA(0), 0), FD_R1), BAD},
    {"fd shorter than size", R(SET_MEM_TABLE), MEM1(REG(0, 0x2000, VUT_UVA(0), 0), FD_SHORT), BAD},
    {"fd shorter than offset + size", R(SET_MEM_TABLE),
     MEM1(REG(0, VUT_R1_SIZE, VUT_UVA(0), 0x1000), FD_R1), BAD},
    {"last of three fds too short", R(SET_MEM_TABLE), MEM3, .fdk = {FD_R0, FD_R1, FD_SHORT},
     .pl = {.memory = {.nregions = 3,
                       .regions = {REG0, REG1, REG(VUT_R2_GPA, 0x2000, VUT_UVA(2), 0)}}},
     BAD},
    {"memory fd is an eventfd", R(SET_MEM_TABLE), MEM1(REG0, FD_EVENT), BAD},
    /* indices and flags */
    {"SET_VRING_BASE 0x10000", R(SET_VRING_BASE), STATE(0, 0x10000), BAD},
    {"SET_VRING_BASE 0xffffffff", R(SET_VRING_BASE), STATE(1, 0xffffffffu), BAD},
    {"SET_VRING_ENABLE 2", R(SET_VRING_ENABLE), STATE(0, 2), BAD},
    {"SET_VRING_ENABLE 0xffffffff", R(SET_VRING_ENABLE), STATE(1, 0xffffffffu), BAD},
};

struct bad_run {
    char name[96];
    const struct step *s;
    bool running; /* on a device with both queues running (else fresh) */
};

static struct bad_run bad_runs[2 * ARRAY_SIZE(bad_cases)];

static const char *bad_name(const void *c)
{
    return ((const struct bad_run *)c)->name;
}

static void test_bad(void **state)
{
    struct vut *v = *state;
    const struct bad_run *b = v->tcase;
    if (b->running)
        vut_startup(v, VUT_F_ALL, VUT_PF_ALL, 2);
    run_step(v, b->s, false);
    assert_int_equal(vut_stats(v).msg_errors, 1);

    /* The device is still usable: a full start-up on the same connection works... */
    vut_startup(v, VUT_F_ALL, VUT_PF_ALL, 2);
    assert_int_equal(vut_ready_mask(v), Q0 | Q1);
    /* ...and after the disconnect the caller does on -EPROTO, a new connection works. */
    vu_dev_disconnect(v->dev);
    assert_int_equal(vut_ready_mask(v), 0);
    vu_dev_set_connected(v->dev);
    vut_startup(v, VUT_F_ALL, VUT_PF_ALL, 2);
    assert_int_equal(vut_ready_mask(v), Q0 | Q1);
    struct vu_dev_stats st = vut_stats(v);
    assert_int_equal(st.msg_errors, 1);
    assert_int_equal(st.queue_errors, 0);
    assert_true(vut_canaries_ok(v));
}

/* ---- messages arriving in pieces over a real socket (vu_dev_handle_msg) ---- */

static void sock_send(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
    assert_int_equal(vuf_sock_send(fd, buf, len, fds, nfds), 0);
}

/*
 * A frontend that sends its messages a few bytes at a time, or stops half-way, only delays
 * itself: every call returns at once with -EAGAIN until the message is whole (the control
 * thread is never held), fds that came with the first piece stay with their message, and a
 * connection closed mid-message leaves no fd behind.
 */
static void test_messages_in_pieces(void **state)
{
    struct vut *v = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    const int fds0 = vut_count_fds();

    /* GET_FEATURES, its header in three pieces. */
    struct vhost_user_msg m;
    vut_msg_init(&m, VHOST_USER_GET_FEATURES, 0);
    assert_int_equal(vu_dev_handle_msg(v->dev, sv[0]), -EAGAIN); /* nothing yet */
    sock_send(sv[1], &m, 5, NULL, 0);
    assert_int_equal(vu_dev_handle_msg(v->dev, sv[0]), -EAGAIN);
    sock_send(sv[1], (char *)&m + 5, 4, NULL, 0);
    assert_int_equal(vu_dev_handle_msg(v->dev, sv[0]), -EAGAIN);
    sock_send(sv[1], (char *)&m + 9, sizeof(m.hdr) - 9, NULL, 0);
    assert_int_equal(vu_dev_handle_msg(v->dev, sv[0]), 0);
    struct vhost_user_msg r;
    assert_int_equal(recv(sv[1], &r, sizeof(r), MSG_DONTWAIT), (ssize_t)(sizeof(r.hdr) + 8));
    assert_int_equal(r.hdr.request, VHOST_USER_GET_FEATURES);
    assert_int_equal(r.payload.u64, VU_OFFERED_FEATURES);

    /* SET_MEM_TABLE: header and fds first, the payload in two later pieces. */
    vut_u64(v, VHOST_USER_SET_FEATURES, VUT_F_ALL);
    uint32_t size = 8 + VUT_NREG * sizeof(m.payload.memory.regions[0]);
    vut_msg_init(&m, VHOST_USER_SET_MEM_TABLE, size);
    struct vhost_memory table;
    vut_mem_table(&table, VUT_NREG);
    memcpy(&m.payload, &table, size);
    int mfds[VUT_NREG];
    for (unsigned i = 0; i < VUT_NREG; i++)
        mfds[i] = v->memfd[i];
    sock_send(sv[1], &m, sizeof(m.hdr) + 3, mfds, VUT_NREG);
    assert_int_equal(vu_dev_handle_msg(v->dev, sv[0]), -EAGAIN);
    assert_int_equal(vut_count_fds(), fds0 + VUT_NREG); /* held with the partial message */
    sock_send(sv[1], (char *)&m + sizeof(m.hdr) + 3, size - 3, NULL, 0);
    assert_int_equal(vu_dev_handle_msg(v->dev, sv[0]), 0);
    assert_int_equal(v->dev->mem.nregions, VUT_NREG);
    assert_int_equal(vut_count_fds(), fds0); /* mapped and closed */

    /* Half a message with an fd, then the frontend goes away. */
    int efd = vut_eventfd();
    vut_msg_init(&m, VHOST_USER_SET_VRING_KICK, 8);
    sock_send(sv[1], &m, 6, &efd, 1);
    close(efd);
    assert_int_equal(vu_dev_handle_msg(v->dev, sv[0]), -EAGAIN);
    assert_int_equal(vut_count_fds(), fds0 + 1);
    close(sv[1]);
    assert_int_equal(vu_dev_handle_msg(v->dev, sv[0]), -ECONNRESET);
    vu_dev_disconnect(v->dev);
    assert_int_equal(vut_count_fds(), fds0 - 1);
    assert_int_equal(vut_stats(v).msg_errors, 0);
    close(sv[0]);
}

/* A header that announces more payload than any message has is refused as soon as it is in. */
static void test_oversized_header_over_socket(void **state)
{
    struct vut *v = *state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct vhost_user_msg m;
    vut_msg_init(&m, VHOST_USER_SET_FEATURES, 1u << 20);
    sock_send(sv[1], &m, sizeof(m.hdr), NULL, 0);
    assert_int_equal(vu_dev_handle_msg(v->dev, sv[0]), -EPROTO);
    assert_int_equal(vut_stats(v).msg_errors, 1);
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    int rc = 0;
    vut_main_init();
    rc |= vut_run_table("sequences", seqs, sizeof(seqs[0]), ARRAY_SIZE(seqs), seq_name,
                        test_sequence, setup, teardown);
    rc |= vut_run_table("reply_ack", ack_cases, sizeof(ack_cases[0]), ARRAY_SIZE(ack_cases),
                        ack_name, test_ack, setup, teardown);
    const struct CMUnitTest base[] = {
        cmocka_unit_test_setup_teardown(test_get_vring_base, setup, teardown),
        cmocka_unit_test_setup_teardown(test_messages_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_header_over_socket, setup, teardown),
    };
    rc |= cmocka_run_group_tests_name("get_vring_base", base, NULL, NULL);

    for (size_t i = 0; i < ARRAY_SIZE(bad_cases); i++) {
        for (unsigned running = 0; running < 2; running++) {
            struct bad_run *b = &bad_runs[2 * i + running];
            snprintf(b->name, sizeof(b->name), "%s: %s", running ? "running" : "fresh",
                     bad_cases[i].name);
            b->s = &bad_cases[i];
            b->running = running;
        }
    }
    rc |= vut_run_table("malformed", bad_runs, sizeof(bad_runs[0]), ARRAY_SIZE(bad_runs), bad_name,
                        test_bad, setup, teardown);
    return rc;
}
