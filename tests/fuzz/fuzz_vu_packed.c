/*
 * Fuzz target: packed-ring descriptor walking. A valid device with RING_PACKED is set up once
 * per input (one 1 MiB region, rings of 64 entries); the input then becomes the guest's TX
 * and RX descriptor rings, their driver event areas, where each ring starts (slot and wrap
 * counter, through SET_VRING_BASE) and the start of the buffer area, so every descriptor
 * address, length, id, flag, wrap bit, indirect table and event suppression field is the
 * fuzzer's. The backend must stay inside guest memory (ASan) and either forward, drop or stop
 * the queue; GET/SET_VRING_BASE and a restart in the middle must keep it consistent.
 *
 * Input: [features][TX base][RX base][RX ring 1024][RX driver area 4][TX ring 1024]
 *        [TX driver area 4][rest: guest memory from GPA + 0x8000]
 * features: bit 0 MRG_RXBUF, bit 1 EVENT_IDX, bit 2 INDIRECT_DESC. base: bits 0-5 the slot,
 * bit 6 set for wrap counter 0.
 */
#include "vu_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE  (1u << 20)
#define GPA       0x40000000ull
#define QSIZE     64
#define RING_LEN  (QSIZE * 16)
#define AREA_LEN  4
#define FIXED_LEN (3 + 2 * (RING_LEN + AREA_LEN))
/* Ring layout inside guest memory: queue q at q * 0x4000: descriptors, driver area at
 * +0x1000, device area at +0x2000 */
#define RING(q) ((uint64_t)(q)*0x4000)

static void nop(void *opaque)
{
    (void)opaque;
}
static const struct vu_dev_ops ops = {.quiesce = nop, .state_changed = nop};

static int send_msg(struct vu_dev *dev, uint32_t req, const void *payload, uint32_t len, int *fds,
                    unsigned nfds, struct vhost_user_msg *reply)
{
    struct vhost_user_msg msg, r;
    bool has_reply;
    memset(&msg, 0, sizeof(msg));
    msg.hdr.request = req;
    msg.hdr.flags = VHOST_USER_VERSION;
    msg.hdr.size = len;
    memcpy(&msg.payload, payload, len);
    return vu_dev_process_msg(dev, &msg, fds, nfds, reply ? reply : &r, &has_reply);
}

static void kick(struct vu_dev *dev, uint32_t q)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    uint64_t idx = q;
    send_msg(dev, VHOST_USER_SET_VRING_KICK, &idx, 8, &fd, 1, NULL);
}

/* TX to RX through the switch's burst functions, and the sleep/wake notification dance. */
static void traffic(struct vu_dev *dev)
{
    static struct pkt pkts[32];
    for (int round = 0; round < 3; round++) {
        uint16_t n = vu_dev_dequeue_burst(dev, 1, pkts, 32);
        struct pkt *ptrs[32];
        uint8_t sink[2048];
        for (uint16_t i = 0; i < n; i++) {
            pkt_read(&pkts[i], 0, sink, sizeof(sink));
            ptrs[i] = &pkts[i];
        }
        vu_dev_enqueue_burst(dev, 0, ptrs, n);
        vu_dev_dequeue_done(dev, 1, pkts, n);
        for (uint16_t q = 0; q < 2; q++) {
            vu_dev_queue_set_notify(dev, q, true);
            (void)vu_dev_queue_has_work(dev, q);
            vu_dev_queue_set_notify(dev, q, false);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A short input (truncated by a mutation) is padded with zeroes: empty slots. */
    static uint8_t in[FIXED_LEN];
    if (size < FIXED_LEN) {
        memset(in, 0, sizeof(in));
        memcpy(in, data, size);
        data = in;
        size = FIXED_LEN;
    }
    int memfd = memfd_create("fuzz", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, MEM_SIZE) < 0)
        abort();
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (mem == MAP_FAILED)
        abort();
    uint64_t features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES) |
                        (1ull << VIRTIO_F_RING_PACKED);
    if (data[0] & 1)
        features |= 1ull << VIRTIO_NET_F_MRG_RXBUF;
    if (data[0] & 2)
        features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
    if (data[0] & 4)
        features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
    uint32_t base[2];
    for (unsigned q = 0; q < 2; q++) {
        uint8_t b = data[q == 1 ? 1 : 2];
        base[q] = (b & (QSIZE - 1)) | (b & 0x40 ? 0 : VHOST_VRING_PACKED_WRAP);
    }
    const uint8_t *p = data + 3;
    for (unsigned q = 0; q < 2; q++) { /* RX (0) first, then TX (1) */
        memcpy(mem + RING(q), p, RING_LEN);
        memcpy(mem + RING(q) + 0x1000, p + RING_LEN, AREA_LEN);
        p += RING_LEN + AREA_LEN;
    }
    /* Buffers and indirect tables live anywhere in the first MiB: the rest goes there. */
    memcpy(mem + 0x8000, p, MIN(size - FIXED_LEN, (size_t)(MEM_SIZE - 0x8000)));

    struct vu_dev *dev = vu_dev_create("fuzz", &ops, NULL);
    send_msg(dev, VHOST_USER_SET_FEATURES, &features, 8, NULL, 0, NULL);
    struct vhost_memory table = {.nregions = 1};
    table.regions[0] = (struct vhost_memory_region){
        .guest_phys_addr = GPA, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)mem};
    int fd = dup(memfd);
    send_msg(dev, VHOST_USER_SET_MEM_TABLE, &table, 8 + 32, &fd, 1, NULL);
    for (uint32_t q = 0; q < 2; q++) {
        struct vhost_vring_state st = {.index = q, .num = QSIZE};
        send_msg(dev, VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0, NULL);
        st.num = base[q];
        send_msg(dev, VHOST_USER_SET_VRING_BASE, &st, 8, NULL, 0, NULL);
        struct vhost_vring_addr a = {.index = q,
                                     .desc_user_addr = (uint64_t)mem + RING(q),
                                     .avail_user_addr = (uint64_t)mem + RING(q) + 0x1000,
                                     .used_user_addr = (uint64_t)mem + RING(q) + 0x2000};
        send_msg(dev, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL);
        int call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        uint64_t idx = q;
        send_msg(dev, VHOST_USER_SET_VRING_CALL, &idx, 8, &call, 1, NULL);
        kick(dev, q);
        struct vhost_vring_state en = {.index = q, .num = 1};
        send_msg(dev, VHOST_USER_SET_VRING_ENABLE, &en, 8, NULL, 0, NULL);
    }
    traffic(dev);

    /* Stop both rings as QEMU does, hand the positions back, and run on from there. */
    for (uint32_t q = 0; q < 2; q++) {
        struct vhost_vring_state st = {.index = q};
        struct vhost_user_msg reply;
        if (send_msg(dev, VHOST_USER_GET_VRING_BASE, &st, 8, NULL, 0, &reply) == 0) {
            st.num = reply.payload.state.num;
            send_msg(dev, VHOST_USER_SET_VRING_BASE, &st, 8, NULL, 0, NULL);
            kick(dev, q);
        }
    }
    traffic(dev);

    vu_dev_destroy(dev);
    munmap(mem, MEM_SIZE);
    close(memfd);
    return 0;
}
