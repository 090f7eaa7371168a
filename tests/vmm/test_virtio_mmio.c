/*
 * The virtio-mmio register state machine against a fake device: the driver sequence of
 * virtio 1.2 3.1.1, and every out-of-order or hostile write we refuse. No KVM (vmfd -1).
 */
#include "virtio.h"
#include "vu_proto.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MEM_SIZE (4u << 20)
#define QMAX     256

struct fake {
    uint64_t offered;
    int activate_rc;
    unsigned activations, resets;
    uint64_t features;
    struct virtio_queue_cfg q[2];
    uint8_t config[8];
};

static uint64_t f_features(void *o)
{
    return ((struct fake *)o)->offered;
}

static void f_config_read(void *o, uint32_t off, uint8_t *data, uint32_t len)
{
    memcpy(data, ((struct fake *)o)->config + off, len);
}

static int f_activate(void *o, uint64_t features, const struct virtio_queue_cfg *q, unsigned nq)
{
    struct fake *f = o;
    assert_int_equal(nq, 2);
    f->activations++;
    f->features = features;
    memcpy(f->q, q, sizeof(f->q));
    return f->activate_rc;
}

static void f_reset(void *o)
{
    ((struct fake *)o)->resets++;
}

static const struct virtio_dev_ops fake_ops = {f_features, f_config_read, f_activate, f_reset};

struct env {
    struct vmm vm;
    struct fake fake;
    struct virtio_dev dev;
    struct virtio_mmio *t;
};

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    e->vm.vmfd = e->vm.kvmfd = -1;
    if (vmm_mem_init(&e->vm.mem, MEM_SIZE) < 0)
        return -1;
    e->fake.offered = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC);
    memcpy(e->fake.config, "\x52\x54\x00\x01\x02\x03\x01\x00", 8);
    e->dev = (struct virtio_dev){.device_id = VIRTIO_ID_NET,
                                 .num_queues = 2,
                                 .queue_max = QMAX,
                                 .config_size = 8,
                                 .ops = &fake_ops,
                                 .opaque = &e->fake,
                                 .kick_fd = {-1, -1},
                                 .call_fd = -1};
    e->t = virtio_mmio_create(&e->vm, VMM_MMIO_BASE, 16, &e->dev);
    if (!e->t)
        return -1;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    virtio_mmio_destroy(e->t);
    vmm_mem_fini(&e->vm.mem);
    free(e);
    return 0;
}

static uint32_t rd(struct env *e, uint64_t off)
{
    uint32_t v;
    virtio_mmio_access(e->t, off, (uint8_t *)&v, 4, false);
    return v;
}

static void wr(struct env *e, uint64_t off, uint32_t v)
{
    virtio_mmio_access(e->t, off, (uint8_t *)&v, 4, true);
}

static void wr64(struct env *e, uint64_t off, uint64_t v)
{
    wr(e, off, (uint32_t)v);
    wr(e, off + 4, (uint32_t)(v >> 32));
}

static void set_queue(struct env *e, unsigned qi, uint32_t num, uint64_t base)
{
    wr(e, VIRTIO_MMIO_QUEUE_SEL, qi);
    wr(e, VIRTIO_MMIO_QUEUE_NUM, num);
    wr64(e, VIRTIO_MMIO_QUEUE_DESC_LOW, base);
    wr64(e, VIRTIO_MMIO_QUEUE_DRIVER_LOW, base + 0x1000);
    wr64(e, VIRTIO_MMIO_QUEUE_DEVICE_LOW, base + 0x2000);
    wr(e, VIRTIO_MMIO_QUEUE_READY, 1);
}

/* The spec's sequence up to FEATURES_OK. */
static void negotiate(struct env *e, uint64_t feat)
{
    wr(e, VIRTIO_MMIO_STATUS, 0);
    wr(e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    wr(e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(e, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)feat);
    wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(e, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(feat >> 32));
    wr(e, VIRTIO_MMIO_STATUS,
       VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
}

#define S_FEAT (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)
#define S_LIVE (S_FEAT | VIRTIO_STATUS_DRIVER_OK)
#define FEAT   ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MAC))

static void test_identity(void **state)
{
    struct env *e = *state;
    assert_int_equal(rd(e, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
    assert_int_equal(rd(e, VIRTIO_MMIO_VERSION), 2);
    assert_int_equal(rd(e, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
    wr(e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_int_equal(rd(e, VIRTIO_MMIO_DEVICE_FEATURES), 1); /* VERSION_1 = bit 32 */
    wr(e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    assert_int_equal(rd(e, VIRTIO_MMIO_DEVICE_FEATURES), 1u << VIRTIO_NET_F_MAC);
    wr(e, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
    assert_int_equal(rd(e, VIRTIO_MMIO_DEVICE_FEATURES), 0);
    uint8_t mac[6];
    virtio_mmio_access(e->t, VIRTIO_MMIO_CONFIG, mac, 6, false);
    assert_memory_equal(mac, "\x52\x54\x00\x01\x02\x03", 6);
    uint8_t b[4] = {1, 2, 3, 4};
    virtio_mmio_access(e->t, VIRTIO_MMIO_CONFIG + 6, b, 4, false); /* runs past the end */
    assert_memory_equal(b, "\0\0\0\0", 4);
    assert_int_equal(rd(e, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

static void test_happy_path(void **state)
{
    struct env *e = *state;
    negotiate(e, FEAT);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_FEAT);
    wr(e, VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_NUM_MAX), QMAX);
    assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 0);
    set_queue(e, 0, 16, 0x10000);
    set_queue(e, 1, 256, 0x20000);
    assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 1);
    wr(e, VIRTIO_MMIO_STATUS, S_LIVE);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_LIVE);
    assert_int_equal(e->fake.activations, 1);
    assert_int_equal(e->fake.features, FEAT);
    assert_int_equal(e->fake.q[0].num, 16);
    assert_int_equal(e->fake.q[0].desc, 0x10000);
    assert_int_equal(e->fake.q[1].driver, 0x21000);
    assert_int_equal(e->fake.q[1].device, 0x22000);
    assert_int_equal(rd(e, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_MMIO_INT_VRING);

    /* Live device: queue registers are frozen. */
    wr(e, VIRTIO_MMIO_QUEUE_SEL, 0);
    wr(e, VIRTIO_MMIO_QUEUE_NUM, 32);
    wr(e, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x30000);
    wr(e, VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(e->fake.resets, 1);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), 0);
    assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 0);
    /* A second reset of a device that is not running does not reach the device. */
    wr(e, VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(e->fake.resets, 1);
}

static void test_features_out_of_order(void **state)
{
    struct env *e = *state;
    /* Features written before DRIVER are ignored, so FEATURES_OK (no VERSION_1) fails. */
    wr(e, VIRTIO_MMIO_STATUS, 0);
    wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(e, VIRTIO_MMIO_DRIVER_FEATURES, 1);
    wr(e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(e, VIRTIO_MMIO_STATUS, S_FEAT);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);

    /* Features the device never offered. */
    negotiate(e, FEAT | (1ull << VIRTIO_NET_F_CTRL_VQ));
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);
    /* Legacy driver (no VERSION_1). */
    negotiate(e, 1ull << VIRTIO_NET_F_MAC);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK, 0);

    /* After FEATURES_OK the features are frozen. */
    negotiate(e, FEAT);
    wr(e, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(e, VIRTIO_MMIO_DRIVER_FEATURES, 0);
    set_queue(e, 0, 16, 0x10000);
    set_queue(e, 1, 16, 0x20000);
    wr(e, VIRTIO_MMIO_STATUS, S_LIVE);
    assert_int_equal(e->fake.features, FEAT);
}

static void test_status_rules(void **state)
{
    struct env *e = *state;
    unsigned acts = e->fake.activations;
    /* DRIVER_OK without FEATURES_OK. */
    wr(e, VIRTIO_MMIO_STATUS, 0);
    wr(e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    wr(e, VIRTIO_MMIO_STATUS,
       VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK, 0);
    assert_int_equal(e->fake.activations, acts);
    /* Clearing bits without a reset. */
    wr(e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    /* Queue set-up before FEATURES_OK is ignored. */
    set_queue(e, 0, 16, 0x10000);
    assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 0);
    /* A queue that is not ready when DRIVER_OK comes: activate sees it not ready. */
    negotiate(e, FEAT);
    set_queue(e, 0, 16, 0x10000);
    wr(e, VIRTIO_MMIO_STATUS, S_LIVE);
    assert_int_equal(e->fake.activations, acts + 1);
    assert_false(e->fake.q[1].ready);
    /* Activation refused by the backend: NEEDS_RESET, not DRIVER_OK. */
    e->fake.activate_rc = -EIO;
    negotiate(e, FEAT);
    set_queue(e, 0, 16, 0x10000);
    set_queue(e, 1, 16, 0x20000);
    wr(e, VIRTIO_MMIO_STATUS, S_LIVE);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_FEAT | VIRTIO_STATUS_NEEDS_RESET);
    e->fake.activate_rc = 0;
    wr(e, VIRTIO_MMIO_STATUS, 0);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), 0);
}

static void test_bad_queues(void **state)
{
    struct env *e = *state;
    const struct {
        uint32_t num;
        uint64_t desc, driver, device;
        const char *what;
    } bad[] = {
        {0, 0x10000, 0x11000, 0x12000, "size 0"},
        {24, 0x10000, 0x11000, 0x12000, "size not a power of two"},
        {512, 0x10000, 0x11000, 0x12000, "size above the maximum"},
        {16, 0x10008, 0x11000, 0x12000, "descriptor table misaligned"},
        {16, 0x10000, 0x11001, 0x12000, "avail ring misaligned"},
        {16, 0x10000, 0x11000, 0x12002, "used ring misaligned"},
        {16, MEM_SIZE - 128, 0x11000, 0x12000, "descriptor table runs off memory"},
        {16, 0x10000, MEM_SIZE, 0x12000, "avail ring outside memory"},
        {16, 0x10000, 0x11000, VMM_MMIO_BASE, "used ring on the MMIO hole"},
        {16, 0xfffffffffffff000ull, 0x11000, 0x12000, "descriptor table wraps"},
        {16, 0x10000, 0x11000, UINT64_MAX - 3, "used ring wraps"},
    };
    for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
        unsigned acts = e->fake.activations;
        negotiate(e, FEAT);
        wr(e, VIRTIO_MMIO_QUEUE_SEL, 0);
        wr(e, VIRTIO_MMIO_QUEUE_NUM, bad[i].num);
        wr64(e, VIRTIO_MMIO_QUEUE_DESC_LOW, bad[i].desc);
        wr64(e, VIRTIO_MMIO_QUEUE_DRIVER_LOW, bad[i].driver);
        wr64(e, VIRTIO_MMIO_QUEUE_DEVICE_LOW, bad[i].device);
        wr(e, VIRTIO_MMIO_QUEUE_READY, 1);
        if (rd(e, VIRTIO_MMIO_QUEUE_READY) != 0 ||
            !(rd(e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET))
            fail_msg("%s: accepted", bad[i].what);
        /* A failed device ignores DRIVER_OK until reset. */
        set_queue(e, 1, 16, 0x20000);
        wr(e, VIRTIO_MMIO_STATUS, S_LIVE | VIRTIO_STATUS_NEEDS_RESET);
        assert_int_equal(e->fake.activations, acts);
        assert_int_equal(rd(e, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK, 0);
    }
    /* Reset recovers. */
    negotiate(e, FEAT);
    set_queue(e, 0, 16, 0x10000);
    set_queue(e, 1, 16, 0x20000);
    wr(e, VIRTIO_MMIO_STATUS, S_LIVE);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), S_LIVE);
    wr(e, VIRTIO_MMIO_STATUS, 0);
}

static void test_odd_accesses(void **state)
{
    struct env *e = *state;
    uint8_t b[8];
    /* Registers take aligned 32-bit accesses only. */
    memset(b, 0, sizeof(b));
    virtio_mmio_access(e->t, VIRTIO_MMIO_MAGIC_VALUE, b, 2, false);
    assert_int_equal(b[0], 0xff);
    virtio_mmio_access(e->t, VIRTIO_MMIO_STATUS + 1, b, 4, false);
    assert_int_equal(b[0], 0xff);
    b[0] = VIRTIO_STATUS_ACKNOWLEDGE;
    virtio_mmio_access(e->t, VIRTIO_MMIO_STATUS, b, 1, true);
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS), 0);
    /* Unknown registers, queue index out of range, config writes: ignored. */
    wr(e, 0x0f0, 0x1234);
    assert_int_equal(rd(e, 0x0f0), 0);
    negotiate(e, FEAT);
    wr(e, VIRTIO_MMIO_QUEUE_SEL, 7);
    assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
    wr(e, VIRTIO_MMIO_QUEUE_NUM, 16);
    wr(e, VIRTIO_MMIO_QUEUE_READY, 1);
    assert_int_equal(rd(e, VIRTIO_MMIO_QUEUE_READY), 0);
    wr(e, VIRTIO_MMIO_QUEUE_NOTIFY, 9);
    wr(e, VIRTIO_MMIO_CONFIG, 0);
    uint8_t mac[6];
    virtio_mmio_access(e->t, VIRTIO_MMIO_CONFIG, mac, 6, false);
    assert_memory_equal(mac, "\x52\x54\x00\x01\x02\x03", 6);
    wr(e, VIRTIO_MMIO_STATUS, 0x1ff); /* bits above the 8-bit register */
    assert_int_equal(rd(e, VIRTIO_MMIO_STATUS) & ~0xffu, 0);
    wr(e, VIRTIO_MMIO_STATUS, 0);
}

/*
 * Every kind of driver error, one row each: the device starts in a given state, takes a few
 * accesses, and must end with exactly the expected error counters and status (the error is
 * ignored, or fails the device).
 */
enum start { RESET, DRIVER, FEATURES, QUEUES, LIVE };
struct access {
    uint64_t off;
    uint32_t len, val;
    bool write;
};
#define W(o, v)                                                                                    \
    {                                                                                              \
        (o), 4, (v), true                                                                          \
    }
#define R(o)                                                                                       \
    {                                                                                              \
        (o), 4, 0, false                                                                           \
    }

static void start_in(struct env *e, enum start st)
{
    wr(e, VIRTIO_MMIO_STATUS, 0);
    if (st == RESET)
        return;
    if (st == DRIVER) {
        wr(e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
        wr(e, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
        return;
    }
    negotiate(e, FEAT);
    if (st == FEATURES)
        return;
    set_queue(e, 0, 16, 0x10000);
    set_queue(e, 1, 16, 0x20000);
    if (st == LIVE)
        wr(e, VIRTIO_MMIO_STATUS, S_LIVE);
}

#define S_DRV (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER)
#define NR    VIRTIO_STATUS_NEEDS_RESET

static void test_error_table(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        enum start start;
        int activate_rc;
        struct access a[6];
        uint8_t want[VIRTIO_MMIO_ERR_MAX];
        uint32_t status;
    } rows[] = {
        {"byte write to Status",
         RESET,
         0,
         {{VIRTIO_MMIO_STATUS, 1, 1, true}},
         {[VIRTIO_MMIO_ERR_UNALIGNED] = 1},
         0},
        {"misaligned read",
         RESET,
         0,
         {{VIRTIO_MMIO_STATUS + 2, 4, 0, false}},
         {[VIRTIO_MMIO_ERR_UNALIGNED] = 1},
         0},
        {"8-byte write",
         FEATURES,
         0,
         {{VIRTIO_MMIO_QUEUE_DESC_LOW, 8, 0, true}},
         {[VIRTIO_MMIO_ERR_UNALIGNED] = 1},
         S_FEAT},
        {"write to MagicValue",
         RESET,
         0,
         {W(VIRTIO_MMIO_MAGIC_VALUE, 1)},
         {[VIRTIO_MMIO_ERR_BAD_REGISTER] = 1},
         0},
        {"read of QueueNum (write-only)",
         RESET,
         0,
         {R(VIRTIO_MMIO_QUEUE_NUM)},
         {[VIRTIO_MMIO_ERR_BAD_REGISTER] = 1},
         0},
        {"unknown register",
         RESET,
         0,
         {W(0x0f0, 1), R(0x0f0)},
         {[VIRTIO_MMIO_ERR_BAD_REGISTER] = 2},
         0},
        {"config write",
         LIVE,
         0,
         {{VIRTIO_MMIO_CONFIG, 1, 0, true}},
         {[VIRTIO_MMIO_ERR_CONFIG] = 1},
         S_LIVE},
        {"config read past its end",
         RESET,
         0,
         {{VIRTIO_MMIO_CONFIG + 7, 2, 0, false}},
         {[VIRTIO_MMIO_ERR_CONFIG] = 1},
         0},
        {"features before DRIVER",
         RESET,
         0,
         {W(VIRTIO_MMIO_DRIVER_FEATURES, 1)},
         {[VIRTIO_MMIO_ERR_SEQUENCE] = 1},
         0},
        {"features after FEATURES_OK",
         FEATURES,
         0,
         {W(VIRTIO_MMIO_DRIVER_FEATURES, 0)},
         {[VIRTIO_MMIO_ERR_SEQUENCE] = 1},
         S_FEAT},
        {"features not offered",
         DRIVER,
         0,
         {W(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0), W(VIRTIO_MMIO_DRIVER_FEATURES, 1u << 3),
          W(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1), W(VIRTIO_MMIO_DRIVER_FEATURES, 1),
          W(VIRTIO_MMIO_STATUS, S_FEAT)},
         {[VIRTIO_MMIO_ERR_FEATURES] = 1},
         S_DRV},
        {"no VERSION_1",
         DRIVER,
         0,
         {W(VIRTIO_MMIO_STATUS, S_FEAT)},
         {[VIRTIO_MMIO_ERR_FEATURES] = 1},
         S_DRV},
        {"features word 2",
         DRIVER,
         0,
         {W(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 2), W(VIRTIO_MMIO_DRIVER_FEATURES, 1)},
         {[VIRTIO_MMIO_ERR_FEATURES] = 1},
         S_DRV},
        {"queue set-up before FEATURES_OK",
         DRIVER,
         0,
         {W(VIRTIO_MMIO_QUEUE_NUM, 16), W(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x10000),
          W(VIRTIO_MMIO_QUEUE_READY, 1)},
         {[VIRTIO_MMIO_ERR_SEQUENCE] = 3},
         S_DRV},
        {"queue change while live",
         LIVE,
         0,
         {W(VIRTIO_MMIO_QUEUE_DESC_LOW, 0x30000), W(VIRTIO_MMIO_QUEUE_NUM, 32)},
         {[VIRTIO_MMIO_ERR_SEQUENCE] = 2},
         S_LIVE},
        {"queue change once ready",
         QUEUES,
         0,
         {W(VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0x40000)},
         {[VIRTIO_MMIO_ERR_SEQUENCE] = 1},
         S_FEAT},
        {"status bit cleared",
         FEATURES,
         0,
         {W(VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE)},
         {[VIRTIO_MMIO_ERR_SEQUENCE] = 1},
         S_FEAT},
        {"DRIVER_OK without FEATURES_OK",
         DRIVER,
         0,
         {W(VIRTIO_MMIO_STATUS, S_DRV | VIRTIO_STATUS_DRIVER_OK)},
         {[VIRTIO_MMIO_ERR_SEQUENCE] = 1},
         S_DRV},
        {"queue that does not exist",
         FEATURES,
         0,
         {W(VIRTIO_MMIO_QUEUE_SEL, 5), W(VIRTIO_MMIO_QUEUE_NUM, 16), W(VIRTIO_MMIO_QUEUE_READY, 1)},
         {[VIRTIO_MMIO_ERR_NO_QUEUE] = 2},
         S_FEAT},
        {"notify of a queue that does not exist",
         LIVE,
         0,
         {W(VIRTIO_MMIO_QUEUE_NOTIFY, 9)},
         {[VIRTIO_MMIO_ERR_NO_QUEUE] = 1},
         S_LIVE},
        {"ring size 3",
         FEATURES,
         0,
         {W(VIRTIO_MMIO_QUEUE_SEL, 0), W(VIRTIO_MMIO_QUEUE_NUM, 3), W(VIRTIO_MMIO_QUEUE_READY, 1)},
         {[VIRTIO_MMIO_ERR_BAD_RING] = 1},
         S_FEAT | NR},
        {"ring above guest memory",
         FEATURES,
         0,
         {W(VIRTIO_MMIO_QUEUE_SEL, 0), W(VIRTIO_MMIO_QUEUE_NUM, 16),
          W(VIRTIO_MMIO_QUEUE_DESC_HIGH, 1), W(VIRTIO_MMIO_QUEUE_READY, 1)},
         {[VIRTIO_MMIO_ERR_BAD_RING] = 1},
         S_FEAT | NR},
        {"DRIVER_OK on a failed device",
         FEATURES,
         0,
         {W(VIRTIO_MMIO_QUEUE_SEL, 0), W(VIRTIO_MMIO_QUEUE_NUM, 3), W(VIRTIO_MMIO_QUEUE_READY, 1),
          W(VIRTIO_MMIO_STATUS, S_LIVE | NR)},
         {[VIRTIO_MMIO_ERR_BAD_RING] = 1, [VIRTIO_MMIO_ERR_SEQUENCE] = 1},
         S_FEAT | NR},
        {"backend cannot start",
         QUEUES,
         -EIO,
         {W(VIRTIO_MMIO_STATUS, S_LIVE)},
         {[VIRTIO_MMIO_ERR_BACKEND] = 1},
         S_FEAT | NR},
        {"a clean run counts nothing", LIVE, 0, {W(VIRTIO_MMIO_STATUS, 0)}, {0}, 0},
    };
    for (unsigned i = 0; i < ARRAY_SIZE(rows); i++) {
        void *st;
        assert_int_equal(setup(&st), 0);
        struct env *e = st;
        start_in(e, rows[i].start);
        uint64_t before[VIRTIO_MMIO_ERR_MAX], after[VIRTIO_MMIO_ERR_MAX];
        virtio_mmio_errors(e->t, before);
        e->fake.activate_rc = rows[i].activate_rc;
        for (unsigned k = 0; k < ARRAY_SIZE(rows[i].a) && rows[i].a[k].len; k++) {
            uint8_t buf[8];
            uint32_t v = rows[i].a[k].val;
            memset(buf, 0, sizeof(buf));
            memcpy(buf, &v, 4);
            virtio_mmio_access(e->t, rows[i].a[k].off, buf, rows[i].a[k].len, rows[i].a[k].write);
        }
        virtio_mmio_errors(e->t, after);
        for (unsigned k = 0; k < VIRTIO_MMIO_ERR_MAX; k++) {
            if (before[k] != 0 || after[k] != rows[i].want[k])
                fail_msg("%s: %s = %llu (before %llu), want %u", rows[i].what,
                         virtio_mmio_error_names[k], (unsigned long long)after[k],
                         (unsigned long long)before[k], rows[i].want[k]);
        }
        if (rd(e, VIRTIO_MMIO_STATUS) != rows[i].status)
            fail_msg("%s: status %#x, want %#x", rows[i].what, rd(e, VIRTIO_MMIO_STATUS),
                     rows[i].status);
        teardown(&st);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_happy_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_features_out_of_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_accesses, setup, teardown),
        cmocka_unit_test(test_error_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
