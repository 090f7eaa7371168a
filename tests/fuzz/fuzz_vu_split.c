/*
 * Fuzz target: split-ring descriptor walking. A valid device is set up once per input (one
 * 1 MiB region, rings of 64 entries); the input then becomes the guest's TX and RX rings
 * (descriptor tables, avail rings and the start of the buffer area), so every descriptor
 * address, length, flag, next index, indirect table and avail index is the fuzzer's. The
 * backend must stay inside guest memory (ASan) and either forward, drop or stop the queue.
 */
#include "vu_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE (1u << 20)
#define GPA      0x40000000ull
#define QSIZE    64
/* Ring layout inside guest memory: queue q at q * 0x4000: desc, avail at +0x1000, used at +0x2000
 */
#define RING(q) ((uint64_t)(q)*0x4000)

static void nop(void *opaque)
{
    (void)opaque;
}
static const struct vu_dev_ops ops = {.quiesce = nop, .state_changed = nop};

static int send_msg(struct vu_dev *dev, uint32_t req, const void *payload, uint32_t len, int *fds,
                    unsigned nfds)
{
    struct vhost_user_msg msg, reply;
    bool has_reply;
    memset(&msg, 0, sizeof(msg));
    msg.hdr.request = req;
    msg.hdr.flags = VHOST_USER_VERSION;
    msg.hdr.size = len;
    memcpy(&msg.payload, payload, len);
    return vu_dev_process_msg(dev, &msg, fds, nfds, &reply, &has_reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    int memfd = memfd_create("fuzz", MFD_CLOEXEC);
    if (memfd < 0 || ftruncate(memfd, MEM_SIZE) < 0)
        abort();
    uint8_t *mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (mem == MAP_FAILED)
        abort();
    /* First byte picks the features; the rest is laid over both rings. */
    uint64_t features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES);
    if (data[0] & 1)
        features |= 1ull << VIRTIO_NET_F_MRG_RXBUF;
    if (data[0] & 2)
        features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
    if (data[0] & 4)
        features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
    data++, size--;
    for (unsigned q = 0; q < 2; q++) {
        size_t half = size / 2, base = q * half;
        size_t n = MIN(half, (size_t)0x3000);
        memcpy(mem + RING(q), data + base, n);
    }
    /* Buffers and indirect tables live anywhere in the first MiB: seed it too. */
    memcpy(mem + 0x8000, data, MIN(size, (size_t)(MEM_SIZE - 0x8000)));

    /* Used rings start clean so the backend begins at index 0. */
    memset(mem + RING(0) + 0x2000, 0, 0x1000);
    memset(mem + RING(1) + 0x2000, 0, 0x1000);

    struct vu_dev *dev = vu_dev_create("fuzz", &ops, NULL);
    uint64_t v = features;
    send_msg(dev, VHOST_USER_SET_FEATURES, &v, 8, NULL, 0);
    struct vhost_memory table = {.nregions = 1};
    table.regions[0] = (struct vhost_memory_region){
        .guest_phys_addr = GPA, .memory_size = MEM_SIZE, .userspace_addr = (uint64_t)mem};
    int fd = dup(memfd);
    send_msg(dev, VHOST_USER_SET_MEM_TABLE, &table, 8 + 32, &fd, 1);
    for (uint32_t q = 0; q < 2; q++) {
        struct vhost_vring_state st = {.index = q, .num = QSIZE};
        send_msg(dev, VHOST_USER_SET_VRING_NUM, &st, 8, NULL, 0);
        st.num = 0;
        send_msg(dev, VHOST_USER_SET_VRING_BASE, &st, 8, NULL, 0);
        struct vhost_vring_addr a = {.index = q,
                                     .desc_user_addr = (uint64_t)mem + RING(q),
                                     .avail_user_addr = (uint64_t)mem + RING(q) + 0x1000,
                                     .used_user_addr = (uint64_t)mem + RING(q) + 0x2000};
        send_msg(dev, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
        int kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        uint64_t idx = q;
        send_msg(dev, VHOST_USER_SET_VRING_KICK, &idx, 8, &kick, 1);
        struct vhost_vring_state en = {.index = q, .num = 1};
        send_msg(dev, VHOST_USER_SET_VRING_ENABLE, &en, 8, NULL, 0);
    }

    static struct pkt pkts[32];
    for (int round = 0; round < 2; round++) {
        uint16_t n = vu_dev_dequeue_burst(dev, 1, pkts, 32);
        struct pkt *ptrs[32];
        uint8_t sink[2048];
        for (uint16_t i = 0; i < n; i++) {
            pkt_read(&pkts[i], 0, sink, sizeof(sink));
            ptrs[i] = &pkts[i];
        }
        vu_dev_enqueue_burst(dev, 0, ptrs, n);
        vu_dev_dequeue_done(dev, 1, pkts, n);
    }
    vu_dev_destroy(dev);
    munmap(mem, MEM_SIZE);
    close(memfd);
    return 0;
}
