/*
 * Fuzz target: the vhost-user message handler, then the datapath over whatever state the
 * messages left. Input: a sequence of records [u8 nfds][vhost_user_hdr][payload of hdr.size
 * (capped)]; the fds are fresh memfds (1 MiB, filled with the input's bytes) or eventfds. Any
 * message may be malformed; the handler must refuse it cleanly (no crash, no leak, no access
 * outside the mappings — ASan), and bursts on the queues afterwards must stay inside guest
 * memory however the rings were set up.
 */
#include "vu_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEMFD_SIZE (1u << 20)

static void nop(void *opaque)
{
    (void)opaque;
}

static const struct vu_dev_ops ops = {.quiesce = nop, .state_changed = nop};

static int make_memfd(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, MEMFD_SIZE) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* Guest memory = the input repeated: ring contents come from the fuzzer too. */
    if (size) {
        uint8_t *p = mmap(NULL, MEMFD_SIZE, PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            for (size_t off = 0; off < MEMFD_SIZE; off += size)
                memcpy(p + off, data, MIN(size, MEMFD_SIZE - off));
            munmap(p, MEMFD_SIZE);
        }
    }
    /* Sealed as QEMU seals its dirty log, so SET_LOG_BASE (and logging) is reachable too. */
    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vu_dev *dev = vu_dev_create("fuzz", &ops, NULL);
    if (!dev)
        return 0;
    size_t off = 0;
    unsigned msgs = 0;
    while (off + 1 + sizeof(struct vhost_user_hdr) <= size && msgs++ < 64) {
        uint8_t fdspec = data[off++];
        struct vhost_user_msg msg, reply;
        memset(&msg, 0, sizeof(msg));
        memcpy(&msg.hdr, data + off, sizeof(msg.hdr));
        off += sizeof(msg.hdr);
        size_t plen = MIN((size_t)msg.hdr.size, sizeof(msg.payload));
        plen = MIN(plen, size - off);
        memcpy(&msg.payload, data + off, plen);
        off += plen;
        /* The socket layer refuses oversized payloads before the handler sees them. */
        if (msg.hdr.size > sizeof(msg.payload))
            continue;
        int fds[VHOST_USER_MAX_FDS];
        unsigned nfds = fdspec & 7;
        for (unsigned i = 0; i < nfds; i++)
            fds[i] =
                (fdspec & 0x80) ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : make_memfd(data, size);
        bool has_reply;
        vu_dev_process_msg(dev, &msg, fds, nfds, &reply, &has_reply);
    }

    /* Whatever state we are in: run the datapath. */
    static struct pkt pkts[32];
    uint8_t frame[1514] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1};
    struct pkt src;
    pkt_from_buffer(&src, frame, sizeof(frame));
    struct pkt *srcs[4] = {&src, &src, &src, &src};
    for (uint16_t q = 0; q < 4; q++) {
        if (!vu_dev_queue_ready(dev, q))
            continue;
        if (q & 1) {
            uint16_t n = vu_dev_dequeue_burst(dev, q, pkts, 32);
            uint8_t sink[256];
            for (uint16_t i = 0; i < n; i++)
                pkt_read(&pkts[i], 0, sink, sizeof(sink));
            vu_dev_dequeue_done(dev, q, pkts, n);
        } else {
            vu_dev_enqueue_burst(dev, q, srcs, 4);
        }
    }
    vu_dev_destroy(dev);
    return 0;
}
