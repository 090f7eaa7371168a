/*
 * vhost-user device lifecycle: creation, connection end, queue readiness, ring address
 * translation, statistics and the listening socket. Control thread, except the queue
 * notification helpers, which the PMD owning the queue calls.
 */
#include "vu_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MOD "vhost"

static void queue_reset(struct vu_queue *q)
{
    if (q->kickfd >= 0)
        close(q->kickfd);
    if (q->callfd >= 0)
        close(q->callfd);
    if (q->errfd >= 0)
        close(q->errfd);
    vu_packed_queue_free(q);
    memset(q, 0, sizeof(*q));
    q->kickfd = q->callfd = q->errfd = -1;
    q->avail_wrap = q->used_wrap = true; /* packed rings start in lap 1 */
}

struct vu_dev *vu_dev_create(const char *name, const struct vu_dev_ops *ops, void *opaque)
{
    struct vu_dev *dev = calloc(1, sizeof(*dev));
    if (!dev) {
        errno = ENOMEM;
        return NULL;
    }
    snprintf(dev->name, sizeof(dev->name), "%s", name);
    dev->ops = ops;
    dev->opaque = opaque;
    dev->vnet_hdr_len = 10;
    dev->log_fd = -1;
    dev->mtu_limit = UINT16_MAX; /* until the owner says otherwise (vu_dev_set_mtu_limit) */
    for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
        dev->q[i].kickfd = dev->q[i].callfd = dev->q[i].errfd = -1;
        dev->q[i].avail_wrap = dev->q[i].used_wrap = true;
    }
    return dev;
}

void vu_dev_destroy(struct vu_dev *dev)
{
    if (!dev)
        return;
    vu_dev_disconnect(dev);
    free(dev);
}

void vu_dev_quiesce_all(struct vu_dev *dev)
{
    for (unsigned i = 0; i < VU_MAX_QUEUES; i++)
        __atomic_store_n(&dev->q[i].ready, false, __ATOMIC_RELEASE);
    if (dev->ops && dev->ops->quiesce)
        dev->ops->quiesce(dev->opaque);
}

void vu_dev_disconnect(struct vu_dev *dev)
{
    vu_dev_quiesce_all(dev);
    for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
        /* Keep the counters: they describe the port, not the connection. */
        struct vu_queue_stats st = dev->q[i].stats;
        queue_reset(&dev->q[i]);
        dev->q[i].stats = st;
    }
    vu_mem_unmap(&dev->mem);
    vu_log_unmap(dev);
    vu_rx_reset(dev);
    if (dev->log_fd >= 0)
        close(dev->log_fd);
    dev->log_fd = -1;
    dev->mtu = 0;
    dev->features = 0;
    dev->protocol_features = 0;
    dev->vnet_hdr_len = 10;
    dev->owner = false;
    dev->status = 0;
    dev->connected = false;
    if (dev->ops && dev->ops->state_changed)
        dev->ops->state_changed(dev->opaque);
}

static void queue_forget_rings(struct vu_queue *q)
{
    q->desc = NULL;
    q->avail = NULL;
    q->used = NULL;
    q->pdesc = NULL;
    q->driver_event = NULL;
    q->device_event = NULL;
}

/*
 * Split: descriptor table (16 * n, 16-aligned), avail ring (2-aligned), used ring
 * (4-aligned). Packed: descriptor ring (16 * n, 16-aligned) and the driver and device event
 * suppression areas (4 bytes each, 4-aligned) in the avail and used addresses. The layout
 * follows the features negotiated now; SET_FEATURES translates again when RING_PACKED changes.
 */
int vu_queue_translate(struct vu_dev *dev, struct vu_queue *q)
{
    uint64_t n = q->size;
    bool packed = vu_has_feature(dev, VIRTIO_F_RING_PACKED);
    bool event_idx = true; /* size the rings for the event fields whatever is negotiated */
    uint64_t desc_len = 16 * n;
    uint64_t avail_len =
        packed ? sizeof(struct vring_packed_desc_event) : 4 + 2 * n + (event_idx ? 2 : 0);
    uint64_t used_len =
        packed ? sizeof(struct vring_packed_desc_event) : 4 + 8 * n + (event_idx ? 2 : 0);
    uint64_t avail_align = packed ? 4 : 2, used_align = 4;

    queue_forget_rings(q);
    q->packed = packed;
    if ((q->desc_uva & 15) || (q->avail_uva & (avail_align - 1)) ||
        (q->used_uva & (used_align - 1))) {
        VLOG_RL(WARN, MOD, "%s: ring %ld addresses misaligned", dev->name, (long)(q - dev->q));
        return -EPROTO;
    }
    void *desc = vu_mem_uva_to_host(&dev->mem, q->desc_uva, desc_len);
    void *avail = vu_mem_uva_to_host(&dev->mem, q->avail_uva, avail_len);
    void *used = vu_mem_uva_to_host(&dev->mem, q->used_uva, used_len);
    if (!desc || !avail || !used) {
        VLOG_RL(WARN, MOD, "%s: ring %ld addresses are not in guest memory", dev->name,
                (long)(q - dev->q));
        return -EPROTO;
    }
    /* The frontend's addresses were checked above, but a region whose frontend address and
     * our mapping differ in alignment could still give us misaligned rings. */
    if (((uintptr_t)desc & 15) || ((uintptr_t)avail & (avail_align - 1)) ||
        ((uintptr_t)used & (used_align - 1))) {
        VLOG_RL(WARN, MOD, "%s: ring %ld misaligned in our mapping", dev->name, (long)(q - dev->q));
        return -EPROTO;
    }
    /* Packed rings are logged where we write them, in the descriptor ring (log_guest_addr
     * names the device area there); the region lookup above cannot fail now. */
    for (uint32_t i = 0; i < dev->mem.nregions; i++) {
        const struct vu_mem_region *r = &dev->mem.regions[i];
        if (q->desc_uva >= r->uva && q->desc_uva - r->uva < r->size)
            q->desc_gpa = r->gpa + (q->desc_uva - r->uva);
    }
    if (packed) {
        q->pdesc = desc;
        q->driver_event = avail;
        q->device_event = used;
    } else {
        q->desc = desc;
        q->avail = avail;
        q->used = used;
    }
    return 0;
}

void vu_queue_update_ready(struct vu_dev *dev, struct vu_queue *q)
{
    /* A started but disabled TX ring is still drained (its frames dropped), as the
     * vhost-user spec asks; a disabled RX ring gets nothing. */
    bool is_tx = (q - dev->q) & 1;
    bool rings = q->packed ? q->pdesc != NULL : q->desc != NULL;
    bool ready = dev->mem.nregions > 0 && q->size && q->addr_set && rings && q->started &&
                 (q->enabled || is_tx) && !q->broken;
    bool was = __atomic_load_n(&q->ready, __ATOMIC_ACQUIRE);
    if (!was) /* no PMD uses the queue: safe to point it at the log, or away from it */
        q->log = vu_has_feature(dev, VHOST_F_LOG_ALL) && dev->log.bits ? &dev->log : NULL;
    if (ready && !was) {
        if (!q->packed)
            vu_split_queue_start(dev, q);
        else if (vu_packed_queue_start(dev, q) < 0)
            ready = false; /* counted and logged as a stopped queue */
    }
    __atomic_store_n(&q->ready, ready, __ATOMIC_RELEASE);
    /* Handlers clear `ready` before they quiesce, so `was` misses a stop: compare with what
     * we last reported too. */
    bool changed = ready != was || ready != q->announced;
    q->announced = ready;
    if (changed && dev->ops && dev->ops->state_changed)
        dev->ops->state_changed(dev->opaque);
}

void vu_queue_mark_broken(struct vu_dev *dev, struct vu_queue *q, const char *why)
{
    __atomic_store_n(&q->ready, false, __ATOMIC_RELEASE);
    q->broken = true;
    q->stats.errors++;
    VLOG_RL(WARN, MOD, "%s: queue %ld stopped: %s", dev->name, (long)(q - dev->q), why);
}

bool vu_dev_queue_ready(const struct vu_dev *dev, uint16_t qid)
{
    return qid < VU_MAX_QUEUES && __atomic_load_n(&dev->q[qid].ready, __ATOMIC_ACQUIRE);
}

uint16_t vu_dev_num_queue_pairs(const struct vu_dev *dev)
{
    uint16_t pairs = 0;
    for (uint16_t p = 0; p < VU_MAX_QUEUE_PAIRS; p++)
        if (vu_dev_queue_ready(dev, VIRTIO_NET_RXQ(p)) ||
            vu_dev_queue_ready(dev, VIRTIO_NET_TXQ(p)))
            pairs = p + 1;
    return pairs;
}

int vu_dev_queue_kickfd(const struct vu_dev *dev, uint16_t qid)
{
    return vu_dev_queue_ready(dev, qid) ? dev->q[qid].kickfd : -1;
}

void vu_dev_queue_set_notify(struct vu_dev *dev, uint16_t qid, bool enable)
{
    if (!vu_dev_queue_ready(dev, qid))
        return;
    struct vu_queue *q = &dev->q[qid];
    /*
     * Enabling always writes the request: the flag may be stale when the queue just moved
     * between PMDs (its old owner, woken late, may still be switching it off), and an enable
     * skipped on a stale "already on" would leave the guest an old avail_event and the new
     * owner asleep without kicks. Disabling twice is skipped (every wake-up disables).
     */
    if (!enable && !__atomic_load_n(&q->notify_on, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&q->notify_on, enable, __ATOMIC_RELAXED);
    if (q->packed) {
        vu_packed_set_notify(dev, q, enable);
        if (unlikely(q->log) && q->log_used) /* the device area */
            vu_log_write(q->log, q->log_gpa, sizeof(struct vring_packed_desc_event));
        return;
    }
    if (vu_has_feature(dev, VIRTIO_RING_F_EVENT_IDX)) {
        /* avail_event sits after the used ring; a stale value means "kick rarely". */
        uint16_t *avail_event = (uint16_t *)&q->used->ring[q->size];
        if (enable)
            __atomic_store_n(avail_event, q->last_avail_idx, __ATOMIC_RELAXED);
        if (unlikely(q->log) && q->log_used && enable)
            vu_log_write(q->log, q->log_gpa + offsetof(struct vring_used, ring) + 8ull * q->size,
                         sizeof(uint16_t));
    } else {
        __atomic_store_n(&q->used->flags, enable ? 0 : VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
        if (unlikely(q->log) && q->log_used)
            vu_log_write(q->log, q->log_gpa, sizeof(uint16_t));
    }
    /* The guest must see the request before we look at its index again. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool vu_dev_queue_has_work(const struct vu_dev *dev, uint16_t qid)
{
    if (!vu_dev_queue_ready(dev, qid))
        return false;
    const struct vu_queue *q = &dev->q[qid];
    if (q->packed)
        return vu_packed_has_work(q);
    return __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE) != q->last_avail_idx;
}

void vu_dev_get_stats(const struct vu_dev *dev, struct vu_dev_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->msgs = __atomic_load_n(&dev->msgs, __ATOMIC_RELAXED);
    out->msg_errors = __atomic_load_n(&dev->msg_errors, __ATOMIC_RELAXED);
    out->msg_refused = __atomic_load_n(&dev->msg_refused, __ATOMIC_RELAXED);
    out->log_errors = __atomic_load_n(&dev->log.errors, __ATOMIC_RELAXED);
    for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
        const struct vu_queue_stats *s = &dev->q[i].stats;
        bool tx = i & 1; /* the guest's TX queue is our receive side */
        if (tx) {
            out->rx_packets += s->packets;
            out->rx_bytes += s->bytes;
        } else {
            out->tx_packets += s->packets;
            out->tx_bytes += s->bytes;
        }
        out->queue_errors += s->errors;
        for (unsigned d = 0; d < VSW_DROP__COUNT; d++)
            out->drops[d] += s->drops[d];
    }
}

void vu_dev_set_mtu_limit(struct vu_dev *dev, uint16_t mtu)
{
    dev->mtu_limit = mtu;
}

uint16_t vu_dev_mtu(const struct vu_dev *dev)
{
    return dev->mtu;
}

uint64_t vu_dev_features(const struct vu_dev *dev)
{
    return dev->features;
}

const char *vu_dev_name(const struct vu_dev *dev)
{
    return dev->name;
}

bool vu_dev_connected(const struct vu_dev *dev)
{
    return dev->connected;
}

void vu_dev_set_connected(struct vu_dev *dev)
{
    dev->connected = true;
}

int vu_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            close(fd);
            return -EEXIST; /* never remove something that is not a stale socket */
        }
        /* A socket something still listens on (our own control socket, another daemon's
         * port) is not stale: refuse rather than steal its path. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int r = probe < 0 ? -1 : connect(probe, (struct sockaddr *)&sa, sizeof(sa));
        int e = errno;
        if (probe >= 0)
            close(probe);
        if (probe >= 0 && (r == 0 || e == EAGAIN)) {
            close(fd);
            return -EADDRINUSE;
        }
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    return fd;
}
