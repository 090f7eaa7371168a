/*
 * vhost-user frontend: a simulated guest. It owns memfd-backed "guest memory" holding one
 * queue pair of split rings and their buffers, connects to a backend's unix socket, runs the
 * start-up sequence QEMU and DPDK virtio-user use, then drives the rings as a virtio-net
 * driver would: TX frames from private slots, RX into pre-posted buffers.
 *
 * Threads: single-threaded; one thread owns one vuf_dev (no locks). The backend is another
 * process or thread that shares the rings, so ring indices are published with release
 * stores and read with acquire loads, and a full fence separates "publish" from "does the
 * other side want a notification" (virtio 1.2, 2.7.7 and 2.7.10).
 *
 * Guest memory layout (offsets from the start of the memfd; guest-physical = VUF_GPA_BASE +
 * offset, deliberately unlike the host address so a backend that forgets to translate reads
 * the wrong bytes and a test notices):
 *   RX ring: desc | avail | used, TX ring: desc | avail | used, each part on its own 4 KiB page(s)
 *   RX buffers: queue_size x buf_size, descriptor i always owns buffer i
 *   TX slots: queue_size equal slots, descriptor i always owns slot i; a frame that does not
 *   fit one slot is chained over several free descriptors.
 */
#include "vhost_user.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define VUF_GPA_BASE     0x100000ull
#define VUF_PAGE         4096ull
#define VUF_HUGE_PAGE    (2u << 20)
#define VUF_DEF_MEM      (4u << 20)
#define VUF_DEF_QSIZE    256
#define VUF_DEF_BUF      2048
#define VUF_MIN_BUF      64
#define VUF_MAX_BUF      65536
#define VUF_MIN_TX_SLOT  256
#define VUF_IO_TIMEOUT_S 5 /* a backend silent this long during set-up is dead */
#define VUF_POLL_NS      50000

#define VUF_DEF_FEATURES                                                                           \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |                             \
     (1ull << VIRTIO_RING_F_EVENT_IDX))
/*
 * Features this driver cannot honour even if asked: one queue pair and no control queue,
 * split rings only, no IOTLB, no dirty logging. PROTOCOL_FEATURES is handled on its own.
 */
#define VUF_UNSUPPORTED                                                                            \
    ((1ull << VIRTIO_NET_F_MQ) | (1ull << VIRTIO_NET_F_CTRL_VQ) | (1ull << VIRTIO_F_RING_PACKED) | \
     (1ull << VIRTIO_F_ACCESS_PLATFORM) | (1ull << VHOST_F_LOG_ALL) |                              \
     (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
#define VUF_PROTOCOL_WANTED                                                                        \
    ((1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) | (1ull << VHOST_USER_PROTOCOL_F_MQ))

struct vuf_ring {
    uint16_t index; /* vhost-user queue index */
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    uint64_t desc_off, avail_off, used_off;
    uint16_t avail_idx; /* next avail index we publish */
    uint16_t last_used; /* next used entry we consume */
    int kickfd, callfd;
    /* TX only: free list threaded through next[], chain length per in-flight head. */
    uint16_t *next;
    uint16_t *chain_len;
    uint16_t free_head, num_free;
    unsigned inflight; /* frames */
};

struct vuf_dev {
    int sock;
    int memfd;
    uint8_t *mem;
    uint64_t mem_size;
    uint16_t qsize;
    uint32_t buf_size;
    uint32_t tx_slot;
    uint64_t rx_buf_off, tx_buf_off;
    uint64_t features;
    uint64_t protocol_features;
    bool reply_ack;
    bool log_rings; /* SET_VRING_ADDR with the log flag (vuf_log_start) */
    bool event_idx;
    bool mrg_rxbuf;
    bool notify;
    uint32_t hdr_len; /* virtio-net header bytes in front of each frame */
    struct vuf_ring rx, tx;
    struct virtio_net_hdr_v1 last_rx_vnet; /* header of the frame vuf_recv() returned last */
};

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

/* used_event lives after the avail ring, avail_event after the used ring (virtio 2.7.10). */
static uint16_t *ring_used_event(const struct vuf_dev *f, struct vuf_ring *r)
{
    return &r->avail->ring[f->qsize];
}

static uint16_t *ring_avail_event(const struct vuf_dev *f, struct vuf_ring *r)
{
    return (uint16_t *)&r->used->ring[f->qsize];
}

static void ring_kick(struct vuf_ring *r)
{
    uint64_t one = 1;
    if (write(r->kickfd, &one, sizeof(one)) < 0) {
        /* EAGAIN: the counter is saturated, so the backend has a pending kick anyway. */
    }
}

/* Publish avail entries up to r->avail_idx; kick when the backend asked for it. */
static void ring_publish(struct vuf_dev *f, struct vuf_ring *r, uint16_t old)
{
    uint16_t new_idx = r->avail_idx;
    bool kick;

    __atomic_store_n(&r->avail->idx, new_idx, __ATOMIC_RELEASE);
    /* The backend may be re-enabling notifications right now: our index store must be
     * visible before we read its wish, or both sides can miss each other. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (f->event_idx)
        kick = vring_need_event(__atomic_load_n(ring_avail_event(f, r), __ATOMIC_RELAXED), new_idx,
                                old);
    else
        kick = !(__atomic_load_n(&r->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
    if (kick)
        ring_kick(r);
}

/*
 * Keep the backend from signalling a ring: with EVENT_IDX it honours only used_event, so
 * park that half the index space ahead of what we have consumed.
 */
static void ring_park_used_event(struct vuf_dev *f, struct vuf_ring *r)
{
    if (f->event_idx)
        __atomic_store_n(ring_used_event(f, r), (uint16_t)(r->last_used + 0x8000),
                         __ATOMIC_RELAXED);
}

/* ---- control messages ---- */

int vuf_sock_send(int fd, const void *buf, size_t len, const int *fds, unsigned nfds)
{
    const uint8_t *p = buf;
    union {
        char buf[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
        struct cmsghdr align;
    } ctl;

    if (nfds > VHOST_USER_MAX_FDS)
        return -EINVAL;
    while (len > 0) {
        struct iovec iov = {.iov_base = (void *)p, .iov_len = len};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (nfds) {
            memset(&ctl, 0, sizeof(ctl));
            mh.msg_control = ctl.buf;
            mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
            memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
        }
        ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
        /* The fds travel with the first byte; never send them twice. */
        nfds = 0;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int sock_recv_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;

    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n == 0)
            return -ECONNRESET;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int vu_wire_send(int sock, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
                 const int *fds, unsigned nfds)
{
    struct vhost_user_msg msg;

    if (size > sizeof(msg.payload))
        return -EINVAL;
    memset(&msg, 0, sizeof(msg));
    msg.hdr.request = request;
    msg.hdr.flags = VHOST_USER_VERSION | flags;
    msg.hdr.size = size;
    if (size)
        memcpy(&msg.payload, payload, size);
    return vuf_sock_send(sock, &msg, sizeof(msg.hdr) + size, fds, nfds);
}

/* Read the reply to `request`; the payload must be exactly `size` bytes. */
int vu_wire_recv_reply(int sock, uint32_t request, void *payload, uint32_t size)
{
    struct vhost_user_msg msg;
    int rc = sock_recv_all(sock, &msg.hdr, sizeof(msg.hdr));
    if (rc < 0)
        return rc;
    if (msg.hdr.size > sizeof(msg.payload))
        return -EPROTO;
    rc = sock_recv_all(sock, &msg.payload, msg.hdr.size);
    if (rc < 0)
        return rc;
    if (msg.hdr.request != request || !(msg.hdr.flags & VHOST_USER_REPLY_MASK) ||
        (msg.hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION || msg.hdr.size != size) {
        VLOG_RL(WARN, "vuf", "bad reply to request %u: request %u flags %#x size %u", request,
                msg.hdr.request, msg.hdr.flags, msg.hdr.size);
        return -EPROTO;
    }
    memcpy(payload, &msg.payload, size);
    return 0;
}

/*
 * Send a request that has no reply of its own. When REPLY_ACK was negotiated, ask for an ack
 * and wait for it, so a backend that rejects a step fails the connect right there.
 */
int vu_wire_request(int sock, bool reply_ack, uint32_t request, const void *payload, uint32_t size,
                    const int *fds, unsigned nfds)
{
    uint64_t ack;
    int rc = vu_wire_send(sock, request, reply_ack ? VHOST_USER_NEED_REPLY : 0, payload, size, fds,
                          nfds);
    if (rc < 0 || !reply_ack)
        return rc;
    rc = vu_wire_recv_reply(sock, request, &ack, sizeof(ack));
    if (rc < 0)
        return rc;
    if (ack != 0) {
        VLOG_RL(WARN, "vuf", "backend rejected request %u (ack %#llx)", request,
                (unsigned long long)ack);
        return -EIO;
    }
    return 0;
}

int vu_wire_get_u64(int sock, uint32_t request, uint64_t *out)
{
    int rc = vu_wire_send(sock, request, 0, NULL, 0, NULL, 0);
    return rc < 0 ? rc : vu_wire_recv_reply(sock, request, out, sizeof(*out));
}

/* The device's own shorthands. */
static int vu_send(struct vuf_dev *f, uint32_t request, uint32_t flags, const void *payload,
                   uint32_t size, const int *fds, unsigned nfds)
{
    return vu_wire_send(f->sock, request, flags, payload, size, fds, nfds);
}

static int vu_request(struct vuf_dev *f, uint32_t request, const void *payload, uint32_t size,
                      const int *fds, unsigned nfds)
{
    return vu_wire_request(f->sock, f->reply_ack, request, payload, size, fds, nfds);
}

static int vu_get_u64(struct vuf_dev *f, uint32_t request, uint64_t *out)
{
    return vu_wire_get_u64(f->sock, request, out);
}

static int vu_set_u64(struct vuf_dev *f, uint32_t request, uint64_t v)
{
    return vu_request(f, request, &v, sizeof(v), NULL, 0);
}

static int vu_set_state(struct vuf_dev *f, uint32_t request, uint32_t index, uint32_t num)
{
    struct vhost_vring_state s = {.index = index, .num = num};
    return vu_request(f, request, &s, sizeof(s), NULL, 0);
}

static int vu_set_ring(struct vuf_dev *f, struct vuf_ring *r)
{
    uintptr_t host = (uintptr_t)f->mem;
    /* Ring addresses are the frontend's own virtual addresses, translated by the backend
     * through the memory table's userspace_addr (QEMU does the same). */
    struct vhost_vring_addr a = {
        .index = r->index,
        .flags = f->log_rings ? 1u << VHOST_VRING_F_LOG : 0,
        .desc_user_addr = host + r->desc_off,
        .used_user_addr = host + r->used_off,
        .avail_user_addr = host + r->avail_off,
        .log_guest_addr = VUF_GPA_BASE + r->used_off,
    };
    uint64_t idx = r->index;
    int rc;

    if ((rc = vu_set_state(f, VHOST_USER_SET_VRING_NUM, r->index, f->qsize)) < 0 ||
        (rc = vu_set_state(f, VHOST_USER_SET_VRING_BASE, r->index, 0)) < 0 ||
        (rc = vu_request(f, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0)) < 0 ||
        (rc = vu_request(f, VHOST_USER_SET_VRING_KICK, &idx, sizeof(idx), &r->kickfd, 1)) < 0 ||
        (rc = vu_request(f, VHOST_USER_SET_VRING_CALL, &idx, sizeof(idx), &r->callfd, 1)) < 0)
        return rc;
    return 0;
}

static int vu_handshake(struct vuf_dev *f, uint64_t want)
{
    uint64_t offered, proto = 0;
    int rc;

    /* SET_OWNER first, as QEMU and virtio-user both do. */
    if ((rc = vu_send(f, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0)) < 0 ||
        (rc = vu_get_u64(f, VHOST_USER_GET_FEATURES, &offered)) < 0)
        return rc;
    f->features = want & offered & ~VUF_UNSUPPORTED;
    if (offered & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
        f->features |= 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
        if ((rc = vu_get_u64(f, VHOST_USER_GET_PROTOCOL_FEATURES, &proto)) < 0)
            return rc;
        f->protocol_features = proto & (VUF_PROTOCOL_WANTED | f->protocol_features);
        /* Not acked itself: REPLY_ACK only applies once it has been negotiated. */
        if ((rc = vu_send(f, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &f->protocol_features,
                          sizeof(uint64_t), NULL, 0)) < 0)
            return rc;
        f->reply_ack = f->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
    }
    if ((rc = vu_set_u64(f, VHOST_USER_SET_FEATURES, f->features)) < 0)
        return rc;

    f->event_idx = f->features & (1ull << VIRTIO_RING_F_EVENT_IDX);
    f->mrg_rxbuf = f->features & (1ull << VIRTIO_NET_F_MRG_RXBUF);
    f->hdr_len = (f->features & ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF)))
                     ? sizeof(struct virtio_net_hdr_v1)
                     : 10;

    struct vhost_memory mem = {.nregions = 1};
    mem.regions[0] = (struct vhost_memory_region){
        .guest_phys_addr = VUF_GPA_BASE,
        .memory_size = f->mem_size,
        .userspace_addr = (uintptr_t)f->mem,
        .mmap_offset = 0,
    };
    uint32_t mem_size = offsetof(struct vhost_memory, regions) + sizeof(mem.regions[0]);
    if ((rc = vu_request(f, VHOST_USER_SET_MEM_TABLE, &mem, mem_size, &f->memfd, 1)) < 0)
        return rc;

    /* Suppression must be in place before the backend can see the rings. */
    __atomic_store_n(&f->tx.avail->flags, VRING_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
    ring_park_used_event(f, &f->tx);
    if (!f->notify) {
        __atomic_store_n(&f->rx.avail->flags, VRING_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
        ring_park_used_event(f, &f->rx);
    }

    if ((rc = vu_set_ring(f, &f->rx)) < 0 || (rc = vu_set_ring(f, &f->tx)) < 0)
        return rc;
    if (f->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
        if ((rc = vu_set_state(f, VHOST_USER_SET_VRING_ENABLE, f->rx.index, 1)) < 0 ||
            (rc = vu_set_state(f, VHOST_USER_SET_VRING_ENABLE, f->tx.index, 1)) < 0)
            return rc;
    }
    /* Tell the backend about the pre-posted RX buffers in case it waits for a kick. */
    ring_kick(&f->rx);
    return 0;
}

/* ---- set-up ---- */

static uint64_t ring_bytes(uint16_t q)
{
    return align_up(16ull * q, VUF_PAGE) + align_up(4 + 2ull * q + 2, VUF_PAGE) +
           align_up(4 + 8ull * q + 2, VUF_PAGE);
}

static void ring_place(struct vuf_dev *f, struct vuf_ring *r, uint64_t *off)
{
    uint16_t q = f->qsize;
    r->desc_off = *off;
    *off += align_up(16ull * q, VUF_PAGE);
    r->avail_off = *off;
    *off += align_up(4 + 2ull * q + 2, VUF_PAGE);
    r->used_off = *off;
    *off += align_up(4 + 8ull * q + 2, VUF_PAGE);
    r->desc = (struct vring_desc *)(f->mem + r->desc_off);
    r->avail = (struct vring_avail *)(f->mem + r->avail_off);
    r->used = (struct vring_used *)(f->mem + r->used_off);
}

static int vuf_layout(struct vuf_dev *f, uint32_t mem_cfg)
{
    uint64_t fixed = 2 * ring_bytes(f->qsize) + (uint64_t)f->qsize * f->buf_size;
    uint64_t need = align_up(fixed, 64) + (uint64_t)f->qsize * VUF_MIN_TX_SLOT;

    if (mem_cfg) {
        f->mem_size = align_up(mem_cfg, VUF_PAGE);
        if (f->mem_size < need)
            return -EINVAL;
    } else {
        /* 4 MiB unless the ring size asks for more. */
        f->mem_size = align_up(MAX(need, (uint64_t)VUF_DEF_MEM), VUF_PAGE);
    }
    if (f->mem_size > UINT32_MAX + 1ull)
        return -EINVAL;
    f->rx_buf_off = 2 * ring_bytes(f->qsize);
    f->tx_buf_off = align_up(f->rx_buf_off + (uint64_t)f->qsize * f->buf_size, 64);
    uint64_t slot = (f->mem_size - f->tx_buf_off) / f->qsize / 64 * 64;
    f->tx_slot =
        (uint32_t)MIN(slot, align_up(sizeof(struct virtio_net_hdr_v1) + VSW_MAX_FRAME, 64));
    return 0;
}

static void vuf_init_rings(struct vuf_dev *f)
{
    uint16_t q = f->qsize;
    uint64_t off = 0;

    f->rx.index = VIRTIO_NET_RXQ(0);
    f->tx.index = VIRTIO_NET_TXQ(0);
    ring_place(f, &f->rx, &off);
    ring_place(f, &f->tx, &off);

    /* Every RX buffer is posted before the backend sees the ring, like a driver at probe. */
    for (uint16_t i = 0; i < q; i++) {
        f->rx.desc[i] = (struct vring_desc){
            .addr = VUF_GPA_BASE + f->rx_buf_off + (uint64_t)i * f->buf_size,
            .len = f->buf_size,
            .flags = VRING_DESC_F_WRITE,
        };
        f->rx.avail->ring[i] = i;
    }
    f->rx.avail_idx = q;
    __atomic_store_n(&f->rx.avail->idx, f->rx.avail_idx, __ATOMIC_RELEASE);

    for (uint16_t i = 0; i < q; i++)
        f->tx.next[i] = (uint16_t)(i + 1);
    f->tx.free_head = 0;
    f->tx.num_free = q;
}

static void vuf_free(struct vuf_dev *f)
{
    if (!f)
        return;
    /* The socket first: the backend stops using the rings when the connection ends. */
    if (f->sock >= 0)
        close(f->sock);
    struct vuf_ring *rings[] = {&f->rx, &f->tx};
    for (unsigned i = 0; i < ARRAY_SIZE(rings); i++) {
        if (rings[i]->kickfd >= 0)
            close(rings[i]->kickfd);
        if (rings[i]->callfd >= 0)
            close(rings[i]->callfd);
    }
    if (f->mem)
        munmap(f->mem, f->mem_size);
    if (f->memfd >= 0)
        close(f->memfd);
    free(f->tx.next);
    free(f->tx.chain_len);
    free(f);
}

static int vuf_open_socket(struct vuf_dev *f, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = VUF_IO_TIMEOUT_S};

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    f->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (f->sock < 0)
        return -errno;
    /* A backend that stops answering must not hang the guest forever. */
    if (setsockopt(f->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(f->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        return -errno;
    if (connect(f->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        return -errno;
    return 0;
}

struct vuf_dev *vuf_connect(const char *path, const struct vuf_config *cfg)
{
    struct vuf_config c = cfg ? *cfg : (struct vuf_config){0};
    struct vuf_dev *f;
    int rc;

    if (!path) {
        errno = EINVAL;
        return NULL;
    }
    if (!c.queue_size)
        c.queue_size = VUF_DEF_QSIZE;
    if (!c.buf_size)
        c.buf_size = VUF_DEF_BUF;
    if (!c.features)
        c.features = VUF_DEF_FEATURES;
    if (c.queue_size > VIRTQ_MAX_SIZE || (c.queue_size & (c.queue_size - 1)) ||
        c.buf_size < VUF_MIN_BUF || c.buf_size > VUF_MAX_BUF) {
        errno = EINVAL;
        return NULL;
    }

    f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->sock = f->memfd = -1;
    f->rx.kickfd = f->rx.callfd = f->tx.kickfd = f->tx.callfd = -1;
    f->qsize = c.queue_size;
    f->buf_size = c.buf_size;
    f->notify = c.notify;
    f->protocol_features = c.protocol_features; /* asked for; the handshake keeps what is offered */
    if ((rc = vuf_layout(f, c.mem_size)) < 0)
        goto fail;
    if (c.huge)
        f->mem_size = align_up(f->mem_size, VUF_HUGE_PAGE);

    f->memfd = memfd_create("vuf-guest", MFD_CLOEXEC | (c.huge ? MFD_HUGETLB : 0));
    if (f->memfd < 0 || ftruncate(f->memfd, (off_t)f->mem_size) < 0) {
        rc = -errno;
        goto fail;
    }
    void *m = mmap(NULL, f->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->memfd, 0);
    if (m == MAP_FAILED) {
        rc = -errno;
        goto fail;
    }
    f->mem = m;
    f->tx.next = calloc(f->qsize, sizeof(uint16_t));
    f->tx.chain_len = calloc(f->qsize, sizeof(uint16_t));
    if (!f->tx.next || !f->tx.chain_len) {
        rc = -ENOMEM;
        goto fail;
    }
    struct vuf_ring *rings[] = {&f->rx, &f->tx};
    for (unsigned i = 0; i < ARRAY_SIZE(rings); i++) {
        rings[i]->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        rings[i]->callfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (rings[i]->kickfd < 0 || rings[i]->callfd < 0) {
            rc = -errno;
            goto fail;
        }
    }
    vuf_init_rings(f);

    if ((rc = vuf_open_socket(f, path)) < 0)
        goto fail;
    if ((rc = vu_handshake(f, c.features)) < 0) {
        VLOG(WARN, "vuf", "%s: start-up sequence failed: %s", path, strerror(-rc));
        goto fail;
    }
    VLOG(DEBUG, "vuf",
         "%s: connected, features %#llx protocol %#llx, %u-entry rings, %u-byte TX slots", path,
         (unsigned long long)f->features, (unsigned long long)f->protocol_features, f->qsize,
         f->tx_slot);
    return f;

fail:
    vuf_free(f);
    errno = -rc;
    return NULL;
}

void vuf_close(struct vuf_dev *f)
{
    vuf_free(f);
}

/* ---- TX ---- */

static void tx_reclaim(struct vuf_dev *f)
{
    struct vuf_ring *r = &f->tx;
    uint16_t used_idx = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);
    bool any = false;

    while (r->last_used != used_idx) {
        uint32_t id = r->used->ring[r->last_used & (f->qsize - 1)].id;
        r->last_used++;
        any = true;
        /* Raw posts (hostile tests) come back here too; they were never ours to free. */
        if (id >= f->qsize || !r->chain_len[id]) {
            VLOG_RL(DEBUG, "vuf", "TX used id %u is not an in-flight chain", id);
            continue;
        }
        uint16_t d = (uint16_t)id;
        for (uint16_t k = r->chain_len[id]; k > 0; k--) {
            uint16_t nxt = r->next[d];
            r->next[d] = r->free_head;
            r->free_head = d;
            d = nxt;
        }
        r->num_free += r->chain_len[id];
        r->chain_len[id] = 0;
        r->inflight--;
    }
    if (any)
        ring_park_used_event(f, r);
}

/* One frame is a burst of one: placed, published, kicked if the backend asked. */
int vuf_send(struct vuf_dev *f, const void *frame, uint32_t len)
{
    int rc = vuf_send_burst(f, &frame, &len, 1);
    return rc < 0 ? rc : rc == 1 ? 0 : -EAGAIN;
}

unsigned vuf_tx_pending(struct vuf_dev *f)
{
    tx_reclaim(f);
    return f->tx.inflight;
}

/* ---- RX ---- */

static const uint8_t *rx_buf(const struct vuf_dev *f, uint32_t id)
{
    return f->mem + f->rx_buf_off + (uint64_t)id * f->buf_size;
}

int vuf_recv(struct vuf_dev *f, void *buf, uint32_t cap)
{
    struct vuf_ring *r = &f->rx;
    uint16_t mask = (uint16_t)(f->qsize - 1);
    uint16_t used_idx = __atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE);
    uint16_t ready = (uint16_t)(used_idx - r->last_used);
    uint8_t *out = buf;
    int rc;

    if (ready == 0)
        return -EAGAIN;
    if (ready > f->qsize) {
        VLOG_RL(WARN, "vuf", "RX used index jumped by %u (ring size %u)", ready, f->qsize);
        return -EPROTO;
    }

    struct vring_used_elem first = r->used->ring[r->last_used & mask];
    uint16_t nbuf = 1;
    if (first.id < f->qsize && first.len >= f->hdr_len && first.len <= f->buf_size &&
        f->mrg_rxbuf) {
        struct virtio_net_hdr_v1 h;
        memcpy(&h, rx_buf(f, first.id), sizeof(h));
        nbuf = h.num_buffers;
    }
    if (nbuf == 0 || nbuf > f->qsize)
        nbuf = 1; /* garbage count: consume just this entry and report it below */
    /* A backend publishes a frame's buffers with one index update; wait if it has not. */
    if (ready < nbuf)
        return -EAGAIN;

    uint64_t total = 0;
    rc = 0;
    uint16_t old = r->avail_idx;
    for (uint16_t i = 0; i < nbuf; i++) {
        struct vring_used_elem e = r->used->ring[r->last_used & mask];
        r->last_used++;
        if (e.id >= f->qsize) {
            VLOG_RL(WARN, "vuf", "RX used id %u out of range", e.id);
            rc = -EPROTO;
            continue; /* not ours to repost */
        }
        uint32_t skip = i == 0 ? f->hdr_len : 0;
        if (e.len > f->buf_size || e.len < skip) {
            VLOG_RL(WARN, "vuf", "RX used len %u bad for buffer of %u", e.len, f->buf_size);
            rc = -EPROTO;
        } else if (rc == 0) {
            if (i == 0) {
                memset(&f->last_rx_vnet, 0, sizeof(f->last_rx_vnet));
                memcpy(&f->last_rx_vnet, rx_buf(f, e.id), f->hdr_len);
            }
            uint32_t n = e.len - skip;
            if (total + n <= cap)
                memcpy(out + total, rx_buf(f, e.id) + skip, n);
            total += n;
        }
        r->avail->ring[r->avail_idx & mask] = (uint16_t)e.id;
        r->avail_idx++;
    }
    if (r->avail_idx != old)
        ring_publish(f, r, old);
    if (!f->notify)
        ring_park_used_event(f, r);
    if (rc < 0)
        return rc;
    if (total > cap || total > INT32_MAX)
        return -EMSGSIZE;
    return (int)total;
}

static int deadline_left_ms(uint64_t deadline)
{
    uint64_t now = vsw_now_ns();
    if (now >= deadline)
        return 0;
    return (int)MIN((deadline - now + 999999) / 1000000, (uint64_t)INT32_MAX);
}

/* A negative timeout waits forever. */
int vuf_recv_wait(struct vuf_dev *f, void *buf, uint32_t cap, int timeout_ms)
{
    uint64_t deadline =
        timeout_ms < 0 ? UINT64_MAX : vsw_now_ns() + (uint64_t)timeout_ms * 1000000ull;

    for (;;) {
        int rc = vuf_recv(f, buf, cap);
        if (rc != -EAGAIN)
            return rc;
        int left = deadline_left_ms(deadline);
        if (left == 0)
            return -EAGAIN;
        if (!f->notify) {
            struct timespec ts = {.tv_nsec = VUF_POLL_NS};
            nanosleep(&ts, NULL);
            continue;
        }
        /* Arm: ask for a call at the next used entry, then look once more before sleeping,
         * or a frame that arrived in between would not wake us. */
        if (f->event_idx) {
            uint16_t seen = __atomic_load_n(&f->rx.used->idx, __ATOMIC_ACQUIRE);
            __atomic_store_n(ring_used_event(f, &f->rx), seen, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (__atomic_load_n(&f->rx.used->idx, __ATOMIC_ACQUIRE) != seen)
                continue;
        }
        /* Bounded sleeps: a backend that never signals still only costs latency. */
        struct pollfd p = {.fd = f->rx.callfd, .events = POLLIN};
        if (poll(&p, 1, MIN(left, 100)) > 0) {
            uint64_t v;
            if (read(f->rx.callfd, &v, sizeof(v)) < 0) {
                /* EAGAIN: another reader cannot exist; nothing to drain. */
            }
        }
    }
}

/* ---- bursts: one index update and at most one notification per burst ---- */

/* Place one frame on the TX ring without publishing it (vuf_send_burst). */
static int tx_place(struct vuf_dev *f, const void *frame, uint32_t len,
                    const struct virtio_net_hdr_v1 *vnet)
{
    struct vuf_ring *r = &f->tx;
    const uint8_t *src = frame;
    uint64_t total = (uint64_t)f->hdr_len + len;
    uint64_t k = (total + f->tx_slot - 1) / f->tx_slot;

    if (k > f->qsize)
        return -EMSGSIZE;
    if (k > r->num_free)
        return -EAGAIN;

    uint16_t head = r->free_head, d = head;
    uint64_t pos = 0;
    for (uint64_t i = 0; i < k; i++) {
        uint32_t n = (uint32_t)MIN((uint64_t)f->tx_slot, total - pos);
        uint64_t off = f->tx_buf_off + (uint64_t)d * f->tx_slot;
        uint8_t *dst = f->mem + off;
        uint32_t done = 0;
        if (pos < f->hdr_len) {
            done = (uint32_t)MIN((uint64_t)n, f->hdr_len - pos);
            if (vnet)
                memcpy(dst, (const uint8_t *)vnet + pos, done);
            else
                memset(dst, 0, done);
        }
        if (done < n)
            memcpy(dst + done, src + (pos + done - f->hdr_len), n - done);
        bool last = i + 1 == k;
        r->desc[d] = (struct vring_desc){
            .addr = VUF_GPA_BASE + off,
            .len = n,
            .flags = last ? 0 : VRING_DESC_F_NEXT,
            .next = last ? 0 : r->next[d],
        };
        pos += n;
        if (!last)
            d = r->next[d];
    }
    r->free_head = r->next[d];
    r->num_free -= (uint16_t)k;
    r->chain_len[head] = (uint16_t)k;
    r->inflight++;
    r->avail->ring[r->avail_idx & (f->qsize - 1)] = head;
    r->avail_idx++;
    return 0;
}

int vuf_send_burst(struct vuf_dev *f, const void *const *frames, const uint32_t *lens, unsigned n)
{
    struct vuf_ring *r = &f->tx;
    uint16_t old = r->avail_idx;
    unsigned sent = 0;
    int rc = 0;

    tx_reclaim(f);
    for (; sent < n; sent++) {
        rc = tx_place(f, frames[sent], lens[sent], NULL);
        if (rc < 0)
            break;
    }
    if (r->avail_idx != old)
        ring_publish(f, r, old);
    if (sent == 0 && rc == -EMSGSIZE)
        return rc;
    return (int)sent;
}

int vuf_send_vnet(struct vuf_dev *f, const struct virtio_net_hdr_v1 *vnet, const void *frame,
                  uint32_t len)
{
    struct vuf_ring *r = &f->tx;
    uint16_t old = r->avail_idx;
    tx_reclaim(f);
    int rc = tx_place(f, frame, len, vnet);
    if (r->avail_idx != old)
        ring_publish(f, r, old);
    return rc;
}

void vuf_last_rx_vnet(const struct vuf_dev *f, struct virtio_net_hdr_v1 *out)
{
    *out = f->last_rx_vnet;
}

/*
 * Check the used entries of the next received frame without consuming them. Returns the
 * number of entries it spans (0: not complete yet) or -EPROTO.
 */
static int rx_peek_frame(struct vuf_dev *f, uint16_t ready)
{
    struct vuf_ring *r = &f->rx;
    uint16_t mask = (uint16_t)(f->qsize - 1);
    struct vring_used_elem first = r->used->ring[r->last_used & mask];
    uint16_t nbuf = 1;

    if (first.id >= f->qsize || first.len < f->hdr_len || first.len > f->buf_size)
        return -EPROTO;
    if (f->mrg_rxbuf) {
        struct virtio_net_hdr_v1 h;
        memcpy(&h, rx_buf(f, first.id), sizeof(h));
        nbuf = h.num_buffers;
        if (nbuf == 0 || nbuf > f->qsize)
            return -EPROTO;
    }
    if (ready < nbuf)
        return 0;
    for (uint16_t i = 1; i < nbuf; i++) {
        struct vring_used_elem e = r->used->ring[(uint16_t)(r->last_used + i) & mask];
        if (e.id >= f->qsize || e.len > f->buf_size)
            return -EPROTO;
    }
    return nbuf;
}

/* Consume a frame of nbuf checked entries into out (up to cap bytes); repost its buffers. */
static uint32_t rx_take_frame(struct vuf_dev *f, uint16_t nbuf, uint8_t *out, uint32_t cap)
{
    struct vuf_ring *r = &f->rx;
    uint16_t mask = (uint16_t)(f->qsize - 1);
    uint32_t total = 0;

    for (uint16_t i = 0; i < nbuf; i++) {
        struct vring_used_elem e = r->used->ring[r->last_used & mask];
        uint32_t skip = i == 0 ? f->hdr_len : 0;
        uint32_t n = e.len - skip;
        r->last_used++;
        if (out && total < cap)
            memcpy(out + total, rx_buf(f, e.id) + skip, MIN(n, cap - total));
        total += n;
        r->avail->ring[r->avail_idx & mask] = (uint16_t)e.id;
        r->avail_idx++;
    }
    return total;
}

/*
 * Bad used entries: the first one is consumed (its buffers reposted when the id is in
 * range) so that the ring makes progress, as vuf_recv() does.
 */
static void rx_skip_bad(struct vuf_dev *f)
{
    struct vuf_ring *r = &f->rx;
    uint16_t mask = (uint16_t)(f->qsize - 1);
    struct vring_used_elem e = r->used->ring[r->last_used & mask];
    r->last_used++;
    if (e.id < f->qsize) {
        r->avail->ring[r->avail_idx & mask] = (uint16_t)e.id;
        r->avail_idx++;
    }
    VLOG_RL(WARN, "vuf", "RX used entry (id %u, len %u) is malformed", e.id, e.len);
}

int vuf_recv_burst(struct vuf_dev *f, void *const *bufs, uint32_t cap, uint32_t *lens, unsigned n)
{
    struct vuf_ring *r = &f->rx;
    uint16_t old = r->avail_idx;
    unsigned got = 0;
    int rc = 0;

    while (got < n) {
        uint16_t ready =
            (uint16_t)(__atomic_load_n(&r->used->idx, __ATOMIC_ACQUIRE) - r->last_used);
        if (ready == 0)
            break;
        if (ready > f->qsize) {
            VLOG_RL(WARN, "vuf", "RX used index jumped by %u (ring size %u)", ready, f->qsize);
            rc = -EPROTO;
            break;
        }
        int nbuf = rx_peek_frame(f, ready);
        if (nbuf == 0)
            break;
        if (nbuf < 0) {
            /* Report it on its own: frames before it are returned first. */
            if (got == 0) {
                rx_skip_bad(f);
                rc = -EPROTO;
            }
            break;
        }
        lens[got] = rx_take_frame(f, (uint16_t)nbuf, bufs ? bufs[got] : NULL, cap);
        got++;
    }
    if (r->avail_idx != old)
        ring_publish(f, r, old);
    if (!f->notify)
        ring_park_used_event(f, r);
    return got ? (int)got : rc;
}

/* ---- raw access for hostile-guest tests ---- */

struct vring_desc *vuf_tx_desc_table(struct vuf_dev *f)
{
    return f->tx.desc;
}

uint16_t vuf_queue_size(const struct vuf_dev *f)
{
    return f->qsize;
}

void vuf_guest_mem(struct vuf_dev *f, uint64_t *gpa_base, uint64_t *size, void **host)
{
    if (gpa_base)
        *gpa_base = VUF_GPA_BASE;
    if (size)
        *size = f->mem_size;
    if (host)
        *host = f->mem;
}

int vuf_truncate_guest_mem(struct vuf_dev *f)
{
    return ftruncate(f->memfd, 0) < 0 ? -errno : 0;
}

/* Raw posts always kick: a hostile test wants the backend to look now. */
void vuf_tx_post_raw(struct vuf_dev *f, uint16_t head)
{
    struct vuf_ring *r = &f->tx;
    r->avail->ring[r->avail_idx & (f->qsize - 1)] = head;
    r->avail_idx++;
    __atomic_store_n(&r->avail->idx, r->avail_idx, __ATOMIC_RELEASE);
    ring_kick(r);
}

void vuf_tx_set_avail_idx(struct vuf_dev *f, uint16_t idx)
{
    struct vuf_ring *r = &f->tx;
    r->avail_idx = idx;
    __atomic_store_n(&r->avail->idx, idx, __ATOMIC_RELEASE);
    ring_kick(r);
}

/* ---- protocol extras: raw requests, dirty logging (migration tests) ---- */

int vuf_request(struct vuf_dev *f, uint32_t request, const void *payload, uint32_t size,
                const int *fds, unsigned nfds)
{
    return vu_request(f, request, payload, size, fds, nfds);
}

uint64_t vuf_protocol_features(const struct vuf_dev *f)
{
    return f->protocol_features;
}

/*
 * What QEMU does when a migration starts: hand over the log (SET_LOG_BASE, whose reply says
 * it is mapped), give both rings' used addresses for logging (SET_VRING_ADDR with the log
 * flag), then turn on VHOST_F_LOG_ALL.
 */
int vuf_log_start(struct vuf_dev *f, int log_fd, uint64_t size, uint64_t offset)
{
    struct vhost_user_log l = {.mmap_size = size, .mmap_offset = offset};
    uint64_t ack;
    int rc;
    if (!(f->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD)))
        return -ENOTSUP;
    if ((rc = vu_send(f, VHOST_USER_SET_LOG_BASE, 0, &l, sizeof(l), &log_fd, 1)) < 0 ||
        (rc = vu_wire_recv_reply(f->sock, VHOST_USER_SET_LOG_BASE, &ack, sizeof(ack))) < 0)
        return rc;
    if (ack)
        return -EIO;
    f->log_rings = true;
    struct vuf_ring *rings[] = {&f->rx, &f->tx};
    for (unsigned i = 0; i < ARRAY_SIZE(rings); i++) {
        uintptr_t host = (uintptr_t)f->mem;
        struct vhost_vring_addr a = {
            .index = rings[i]->index,
            .flags = 1u << VHOST_VRING_F_LOG,
            .desc_user_addr = host + rings[i]->desc_off,
            .used_user_addr = host + rings[i]->used_off,
            .avail_user_addr = host + rings[i]->avail_off,
            .log_guest_addr = VUF_GPA_BASE + rings[i]->used_off,
        };
        if ((rc = vu_request(f, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0)) < 0)
            return rc;
    }
    return vu_set_u64(f, VHOST_USER_SET_FEATURES, f->features | 1ull << VHOST_F_LOG_ALL);
}

void vuf_layout_gpa(const struct vuf_dev *f, bool tx, uint64_t *used_gpa, uint64_t *bufs_gpa,
                    uint64_t *bufs_len)
{
    const struct vuf_ring *r = tx ? &f->tx : &f->rx;
    if (used_gpa)
        *used_gpa = VUF_GPA_BASE + r->used_off;
    if (bufs_gpa)
        *bufs_gpa = VUF_GPA_BASE + (tx ? f->tx_buf_off : f->rx_buf_off);
    if (bufs_len)
        *bufs_len = (uint64_t)f->qsize * (tx ? f->tx_slot : f->buf_size);
}
