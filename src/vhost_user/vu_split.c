/*
 * Split virtqueue datapath: take frames from a guest's TX ring, copy frames into a guest's
 * RX ring. The public burst functions are here; a queue of a device that negotiated
 * RING_PACKED is handed to vu_packed.c with one branch per burst. Called by the PMD thread
 * that owns the queue (enqueue may come from several PMDs and takes the queue's spinlock once
 * per burst). No syscalls except the call eventfd write, at most once per burst and only
 * when the guest asked for it; no allocation; no locks beyond that spinlock.
 *
 * Guest memory is read once: descriptors and ring entries are copied with single loads
 * before they are checked and used; every buffer is translated and bounds-checked; a chain is
 * bounded by the size of its table. A malformed ring stops the queue (counted, logged).
 */
#include "vu_datapath.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define MOD "vhost"

static inline struct vring_desc desc_read(const struct vring_desc *p)
{
    struct vring_desc d;
    d.addr = __atomic_load_n(&p->addr, __ATOMIC_RELAXED);
    d.len = __atomic_load_n(&p->len, __ATOMIC_RELAXED);
    d.flags = __atomic_load_n(&p->flags, __ATOMIC_RELAXED);
    d.next = __atomic_load_n(&p->next, __ATOMIC_RELAXED);
    return d;
}

/*
 * Walk the descriptor chain at `head`. Device-writable buffers are required for an RX ring
 * (`writable`), forbidden for a TX ring. Returns NULL on success or the reason the ring is
 * malformed.
 */
static const char *chain_collect(const struct vu_dev *dev, const struct vu_queue *q, uint16_t head,
                                 bool writable, struct vu_chain *c)
{
    const struct vring_desc *table = q->desc;
    uint32_t table_size = q->size;
    uint32_t idx = head;
    struct vring_desc d = desc_read(&table[idx]);

    vu_chain_init(c);
    if (d.flags & VRING_DESC_F_INDIRECT) {
        uint64_t contig;
        if (!vu_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC))
            return "indirect descriptor without the feature";
        if (d.flags & VRING_DESC_F_NEXT)
            return "indirect descriptor with the next flag";
        if (d.len == 0 || d.len % sizeof(struct vring_desc) ||
            d.len / sizeof(struct vring_desc) > VIRTQ_MAX_SIZE)
            return "indirect table of bad length";
        if (d.addr % 8)
            return "indirect table misaligned";
        table = (const struct vring_desc *)vu_mem_gpa_to_host(&dev->mem, d.addr, d.len, &contig);
        if (!table || contig < d.len)
            return "indirect table outside guest memory";
        if ((uintptr_t)table & 7)
            return "indirect table misaligned";
        table_size = d.len / sizeof(struct vring_desc);
        idx = 0;
        d = desc_read(&table[0]);
    }
    for (uint32_t visited = 1;; visited++) {
        if (visited > table_size)
            return "descriptor chain loops or is longer than its table";
        if (d.flags & VRING_DESC_F_INDIRECT)
            return "indirect descriptor inside a chain or indirect table";
        if (!!(d.flags & VRING_DESC_F_WRITE) != writable)
            return writable ? "device-readable buffer in an RX ring"
                            : "device-writable buffer in a TX ring";
        const char *why = vu_chain_add(&dev->mem, c, d.addr, d.len);
        if (why)
            return why;
        if (!(d.flags & VRING_DESC_F_NEXT))
            return NULL;
        if (d.next >= table_size)
            return "next descriptor index out of the table";
        idx = d.next;
        d = desc_read(&table[idx]);
    }
}

static inline void used_put(struct vu_queue *q, uint16_t id, uint32_t len)
{
    struct vring_used_elem *e = &q->used->ring[q->shadow_used_idx & (q->size - 1)];
    __atomic_store_n(&e->id, id, __ATOMIC_RELAXED);
    __atomic_store_n(&e->len, len, __ATOMIC_RELAXED);
    q->shadow_used_idx++;
}

/* Publish the used entries written since the last call and notify the guest if it asked. */
static void used_publish(struct vu_dev *dev, struct vu_queue *q)
{
    uint16_t old = q->last_used_idx, new_idx = q->shadow_used_idx;
    if (old == new_idx)
        return;
    __atomic_store_n(&q->used->idx, new_idx, __ATOMIC_RELEASE);
    q->last_used_idx = new_idx;
    if (q->callfd < 0)
        return;
    /* The index must be visible before we read the guest's wish, or a wakeup can be lost. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool need;
    if (vu_has_feature(dev, VIRTIO_RING_F_EVENT_IDX)) {
        uint16_t used_event = __atomic_load_n(&q->avail->ring[q->size], __ATOMIC_RELAXED);
        need = vring_need_event(used_event, new_idx, old);
    } else {
        need = !(__atomic_load_n(&q->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);
    }
    if (need) {
        uint64_t one = 1;
        ssize_t w = write(q->callfd, &one, sizeof(one));
        (void)w; /* a full eventfd counter already means "notified" */
    }
}

void vu_split_queue_start(struct vu_dev *dev, struct vu_queue *q)
{
    uint16_t used_idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
    if (used_idx != q->last_used_idx) {
        /* A frontend restarted with frames in flight: trust its used index. */
        VLOG_RL(INFO, MOD, "%s: queue %ld resumes at used index %u (base was %u)", dev->name,
                (long)(q - dev->q), used_idx, q->last_used_idx);
        q->last_avail_idx = used_idx;
        q->last_used_idx = used_idx;
    }
    q->shadow_used_idx = q->last_used_idx;
    q->broken = false;
    /* Poll mode: ask the guest not to kick until a PMD wants to sleep. */
    q->notify_on = true;
    q->ready = true; /* set_notify checks it; the caller publishes the final value */
    vu_dev_queue_set_notify(dev, (uint16_t)(q - dev->q), false);
}

/*
 * Start the cache misses of a whole burst before touching any frame: the descriptors first,
 * then the first two lines of each buffer (for writing on an RX ring). At 64 B the PMD
 * otherwise stalls once per frame on a line the guest's core just wrote; measured in bench/:
 * ~390 -> ~313 cycles per frame. Hints only: nothing read here is used for a decision, and
 * an address is prefetched only after it translated into guest memory.
 */
static void prefetch_burst(const struct vu_dev *dev, const struct vu_queue *q, uint16_t count,
                           bool write)
{
    const uint16_t mask = q->size - 1;
    for (uint16_t i = 0; i < count; i++) {
        uint16_t h = __atomic_load_n(&q->avail->ring[(uint16_t)(q->last_avail_idx + i) & mask],
                                     __ATOMIC_RELAXED);
        if (h < q->size)
            __builtin_prefetch(&q->desc[h]);
    }
    for (uint16_t i = 0; i < count; i++) {
        uint16_t h = __atomic_load_n(&q->avail->ring[(uint16_t)(q->last_avail_idx + i) & mask],
                                     __ATOMIC_RELAXED);
        if (h >= q->size)
            continue;
        uint64_t contig;
        const uint8_t *hp = vu_mem_gpa_to_host(
            &dev->mem, __atomic_load_n(&q->desc[h].addr, __ATOMIC_RELAXED), 128, &contig);
        if (!hp)
            continue;
        if (write) {
            __builtin_prefetch(hp, 1);
            if (contig > 64)
                __builtin_prefetch(hp + 64, 1);
        } else {
            __builtin_prefetch(hp);
            if (contig > 64)
                __builtin_prefetch(hp + 64);
        }
    }
}

uint16_t vu_dev_dequeue_burst(struct vu_dev *dev, uint16_t qid, struct pkt *pkts, uint16_t n)
{
    struct vu_queue *q = &dev->q[qid];
    if (!__atomic_load_n(&q->ready, __ATOMIC_ACQUIRE))
        return 0;
    if (q->packed)
        return vu_packed_dequeue_burst(dev, q, pkts, n);
    uint16_t avail_idx = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
    uint16_t count = (uint16_t)(avail_idx - q->last_avail_idx);
    if (count == 0)
        return 0;
    if (count > q->size) {
        q->stats.drops[VSW_DROP_RX_BAD_DESC]++;
        vu_queue_mark_broken(dev, q, "avail index moved by more than the ring size");
        return 0;
    }
    count = MIN(count, n);
    prefetch_burst(dev, q, count, false);

    uint16_t out = 0;
    const uint16_t mask = q->size - 1;
    struct vu_chain c;
    for (uint16_t i = 0; i < count; i++) {
        uint16_t head =
            __atomic_load_n(&q->avail->ring[q->last_avail_idx & mask], __ATOMIC_RELAXED);
        const char *why = head < q->size ? chain_collect(dev, q, head, false, &c)
                                         : "descriptor head out of the ring";
        if (why) {
            q->stats.drops[VSW_DROP_RX_BAD_DESC]++;
            vu_queue_mark_broken(dev, q, why);
            break;
        }
        q->last_avail_idx++;

        struct pkt *p = &pkts[out];
        enum vsw_drop drop = vu_pkt_from_chain(dev, q, &c, p);
        if (drop != VSW_DROP__COUNT) {
            q->stats.drops[drop]++;
            used_put(q, head, 0);
            continue;
        }
        p->src_id = head;
        q->stats.packets++;
        q->stats.bytes += p->len;
        out++;
    }
    return out;
}

void vu_dev_dequeue_done(struct vu_dev *dev, uint16_t qid, struct pkt *pkts, uint16_t n)
{
    struct vu_queue *q = &dev->q[qid];
    if (q->packed) {
        vu_packed_dequeue_done(dev, q, pkts, n);
        return;
    }
    for (uint16_t i = 0; i < n; i++)
        used_put(q, (uint16_t)pkts[i].src_id, 0);
    if (q->used) /* the ring stays mapped until the control thread quiesces us */
        used_publish(dev, q);
}

uint16_t vu_dev_enqueue_burst(struct vu_dev *dev, uint16_t qid, struct pkt *const *pkts, uint16_t n)
{
    struct vu_queue *q = &dev->q[qid];
    if (!__atomic_load_n(&q->ready, __ATOMIC_ACQUIRE)) {
        __atomic_add_fetch(&q->stats.drops[VSW_DROP_TX_NOT_READY], n, __ATOMIC_RELAXED);
        return 0;
    }
    uint16_t sent = 0;
    while (__atomic_test_and_set(&q->lock, __ATOMIC_ACQUIRE))
        __builtin_ia32_pause();
    if (!__atomic_load_n(&q->ready, __ATOMIC_RELAXED)) { /* another PMD stopped it */
        __atomic_clear(&q->lock, __ATOMIC_RELEASE);
        __atomic_add_fetch(&q->stats.drops[VSW_DROP_TX_NOT_READY], n, __ATOMIC_RELAXED);
        return 0;
    }

    if (q->packed) {
        sent = vu_packed_enqueue_burst(dev, q, pkts, n);
        __atomic_clear(&q->lock, __ATOMIC_RELEASE);
        return sent;
    }

    const bool mrg = vu_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF);
    const uint16_t mask = q->size - 1;
    uint16_t avail_idx = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
    struct vu_chain c;
    struct vu_rx_writer w;

    if ((uint16_t)(avail_idx - q->last_avail_idx) > q->size) {
        q->stats.drops[VSW_DROP_TX_BAD_DESC] += n;
        vu_queue_mark_broken(dev, q, "avail index moved by more than the ring size");
        goto out;
    }
    prefetch_burst(dev, q, MIN((uint16_t)(avail_idx - q->last_avail_idx), n), true);
    for (; sent < n; sent++) {
        const struct pkt *p = pkts[sent];
        vu_rx_writer_init(&w, dev, p);

        uint16_t cur = q->last_avail_idx, used_start = q->shadow_used_idx, nbufs = 0;
        enum vsw_drop drop = VSW_DROP__COUNT;
        while (w.off < w.total) {
            if (cur == avail_idx) {
                drop = VSW_DROP_TX_NO_BUF;
                break;
            }
            uint16_t head = __atomic_load_n(&q->avail->ring[cur & mask], __ATOMIC_RELAXED);
            const char *why = head < q->size ? chain_collect(dev, q, head, true, &c)
                                             : "descriptor head out of the ring";
            if (why) {
                drop = VSW_DROP_TX_BAD_DESC;
                vu_queue_mark_broken(dev, q, why);
                break;
            }
            uint32_t wrote = vu_rx_write_chain(&w, &c);
            if (!mrg && w.off < w.total) {
                drop = VSW_DROP_TX_TOO_BIG; /* one chain must hold it: keep the buffer */
                break;
            }
            if (wrote == 0) {
                drop = VSW_DROP_TX_TOO_BIG; /* an empty buffer can never make progress */
                break;
            }
            used_put(q, head, wrote);
            cur++;
            nbufs++;
        }
        if (drop != VSW_DROP__COUNT) {
            /* Undo: nothing was published, the buffers stay the guest's. */
            q->shadow_used_idx = used_start;
            q->stats.drops[drop] += n - sent;
            break;
        }
        vu_rx_set_num_buffers(&w, mrg, nbufs);
        q->last_avail_idx = cur;
        q->stats.packets++;
        q->stats.bytes += p->len;
    }
out:
    used_publish(dev, q);
    __atomic_clear(&q->lock, __ATOMIC_RELEASE);
    return sent;
}
