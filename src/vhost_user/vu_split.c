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

bool vu_have_prefetchw;

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

__attribute__((constructor)) static void detect_prefetchw(void)
{
    unsigned a, b, c, d;
    vu_have_prefetchw = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & bit_PRFCHW);
}
#endif

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

    vu_chain_reset(c);
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
    if (unlikely(q->log)) /* live migration: mark what we wrote (vu_log.c) */
        vu_log_split_used(q, old, new_idx);
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
 * Bursts are taken in passes so that the cache misses of a whole burst overlap instead of
 * being taken one frame after another (at 64 B the PMD otherwise stalls once per frame on a
 * line the guest's core just wrote): first every head's descriptor is prefetched, then every
 * chain is translated and the first lines of its buffer prefetched, and only then are frame
 * bytes touched; each chain is translated once, straight into its packet. With the
 * single-buffer fast paths below and PREFETCHW (vu_prefetch_w) this took vsw-bench at 64 B
 * from ~290 to ~150 PMD cycles per frame (bench/README.md, "Optimisations").
 */
#define BURST_MAX 64

/* Pass 1: the heads of this burst, their descriptors prefetched. */
static inline void prefetch_heads(const struct vu_queue *q, uint16_t *heads, uint16_t count)
{
    const uint16_t mask = q->size - 1;
    for (uint16_t i = 0; i < count; i++) {
        uint16_t h = __atomic_load_n(&q->avail->ring[(uint16_t)(q->last_avail_idx + i) & mask],
                                     __ATOMIC_RELAXED);
        heads[i] = h;
        if (h < q->size)
            __builtin_prefetch(&q->desc[h]);
    }
    if (!count)
        return;
    /* The used entries this burst will fill and the used index: the guest reads those
     * lines, so each first store would wait for ownership. */
    for (uint16_t i = 0; i < count; i += 8)
        vu_prefetch_w(&q->used->ring[(uint16_t)(q->shadow_used_idx + i) & mask]);
    vu_prefetch_w(&q->used->ring[(uint16_t)(q->shadow_used_idx + count - 1) & mask]);
    vu_prefetch_w(&q->used->idx);
}

/* What pass 2 of a TX burst learnt about each chain (the segments are in the packet). */
struct tx_chain {
    uint64_t len;
    uint16_t nseg;
    bool truncated;
};

uint16_t vu_dev_dequeue_burst(struct vu_dev *dev, uint16_t qid, struct pkt *pkts, uint16_t n)
{
    struct vu_queue *q = &dev->q[qid];
    if (!__atomic_load_n(&q->ready, __ATOMIC_ACQUIRE) || vu_mem_lost(dev, q))
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
    count = MIN(count, MIN(n, (uint16_t)BURST_MAX));

    uint16_t heads[BURST_MAX];
    struct tx_chain info[BURST_MAX];
    prefetch_heads(q, heads, count);

    /* Pass 2: each chain straight into its packet's segments; start loading the frames. */
    const char *why = NULL;
    uint16_t ok = 0;
    for (; ok < count; ok++) {
        struct pkt_seg *seg = pkts[ok].seg;
        if (unlikely(heads[ok] >= q->size)) {
            why = "descriptor head out of the ring";
            break;
        }
        /* One device-readable descriptor holding header and frame (Linux and DPDK guests):
         * no chain walk. Anything else goes through chain_collect(), which reads the
         * descriptor again and checks it from scratch. */
        struct vring_desc d = desc_read(&q->desc[heads[ok]]);
        uint64_t contig = 0;
        uint8_t *host =
            d.flags == 0 && d.len ? vu_mem_gpa_to_host(&dev->mem, d.addr, d.len, &contig) : NULL;
        if (likely(host && contig == d.len)) {
            seg[0] = (struct pkt_seg){host, d.len};
            info[ok] = (struct tx_chain){d.len, 1, false};
        } else {
            struct vu_chain c;
            vu_chain_init(&c, seg, PKT_MAX_SEGS);
            why = chain_collect(dev, q, heads[ok], false, &c);
            if (why)
                break;
            info[ok] = (struct tx_chain){c.len, c.nseg, c.truncated};
            if (!c.nseg)
                continue;
        }
        __builtin_prefetch(seg[0].addr);
        if (seg[0].len > 64)
            __builtin_prefetch(seg[0].addr + 64);
    }

    /* Pass 3: virtio-net header, private header copy, checks. */
    uint16_t out = 0, i = 0;
    for (; i < ok; i++) {
        struct pkt *p = &pkts[i];
        const struct vu_chain c = {.seg = p->seg,
                                   .cap = PKT_MAX_SEGS,
                                   .nseg = info[i].nseg,
                                   .truncated = info[i].truncated,
                                   .len = info[i].len};
        enum vsw_drop drop = vu_pkt_from_chain(dev, q, &c, p);
        if (drop != VSW_DROP__COUNT) {
            if (out) {
                /* Chains go back in avail order (IN_ORDER): the good ones before this one
                 * return in dequeue_done, so this one starts the next burst. */
                break;
            }
            q->last_avail_idx++;
            q->stats.drops[drop]++;
            used_put(q, heads[i], 0);
            continue;
        }
        q->last_avail_idx++;
        if (unlikely(out != i))
            pkts[out] = *p; /* only after a dropped first chain */
        p = &pkts[out];
        p->src_id = heads[i];
        q->stats.packets++;
        q->stats.bytes += p->len;
        out++;
    }
    if (why && i == ok) {
        q->stats.drops[VSW_DROP_RX_BAD_DESC]++;
        vu_queue_mark_broken(dev, q, why);
    }
    /* With nothing to forward the caller never calls dequeue_done: the dropped chains must
     * go back now, or a guest sending only such frames fills its ring and is stuck. */
    if (!out)
        used_publish(dev, q);
    return out;
}

void vu_dev_dequeue_done(struct vu_dev *dev, uint16_t qid, struct pkt *pkts, uint16_t n)
{
    struct vu_queue *q = &dev->q[qid];
    if (q->packed) {
        vu_packed_dequeue_done(dev, q, pkts, n);
        return;
    }
    if (!q->used) /* the ring stays mapped until the control thread quiesces us */
        return;
    /* The whole burst in one loop: used_put() would reload the ring pointers per entry. */
    struct vring_used_elem *ring = q->used->ring;
    const uint16_t mask = q->size - 1;
    uint16_t idx = q->shadow_used_idx;
    for (uint16_t i = 0; i < n; i++, idx++) {
        __atomic_store_n(&ring[idx & mask].id, pkts[i].src_id, __ATOMIC_RELAXED);
        __atomic_store_n(&ring[idx & mask].len, 0, __ATOMIC_RELAXED);
    }
    q->shadow_used_idx = idx;
    used_publish(dev, q);
}

/* A simple RX buffer: one device-writable descriptor, contiguous in our mapping. */
struct rx_buf {
    uint8_t *addr;
    uint64_t gpa; /* for the dirty log: captured now, the guest may reuse the slot later */
    uint32_t len;
    uint16_t head;
};

/*
 * Pass 1 of an RX burst: translate the simple buffers at the front of the ring (the layout
 * Linux and DPDK guests post) once and prefetch them for writing. Stops at the first other
 * chain (indirect, several descriptors, anything malformed): the general path reads and
 * checks those itself. Returns how many of bufs[] are filled.
 */
static uint16_t rx_reserve(const struct vu_dev *dev, const struct vu_queue *q, uint16_t count,
                           uint16_t *heads, struct rx_buf *bufs)
{
    prefetch_heads(q, heads, count);
    for (uint16_t i = 0; i < count; i++) {
        uint16_t h = heads[i];
        if (h >= q->size)
            return i;
        struct vring_desc d = desc_read(&q->desc[h]);
        uint64_t contig = 0;
        uint8_t *host = d.flags == VRING_DESC_F_WRITE && d.len
                            ? vu_mem_gpa_to_host(&dev->mem, d.addr, d.len, &contig)
                            : NULL;
        if (!host || contig < d.len)
            return i;
        bufs[i] = (struct rx_buf){host, d.addr, d.len, h};
        vu_rx_prefetch(host, d.len, dev->vnet_hdr_len);
    }
    return count;
}

/*
 * Large frames: while one frame is copied, start the misses of the next one beyond the two
 * lines rx_reserve() and the dequeue already asked for (its source lines, and its destination
 * lines for writing), so the copies overlap the transfers between cores.
 */
static inline void prefetch_rest(const struct pkt *p, const struct rx_buf *b, uint32_t hlen)
{
    uint32_t total = MIN(hlen + p->len, b->len);
    if (total <= 128)
        return;
    for (uint32_t off = 128; off < total; off += 64)
        vu_prefetch_w(b->addr + off);
    if (p->nseg && p->seg[0].len > 128 - hlen)
        for (uint32_t off = 128 - hlen; off < p->seg[0].len; off += 64)
            __builtin_prefetch(p->seg[0].addr + off);
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
    if (!__atomic_load_n(&q->ready, __ATOMIC_RELAXED) || /* another PMD stopped it */
        vu_mem_lost(dev, q)) {
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
    struct pkt_seg segs[PKT_MAX_SEGS];
    struct vu_chain c;
    struct vu_rx_writer w;

    vu_chain_init(&c, segs, PKT_MAX_SEGS);

    if ((uint16_t)(avail_idx - q->last_avail_idx) > q->size) {
        q->stats.drops[VSW_DROP_TX_BAD_DESC] += n;
        vu_queue_mark_broken(dev, q, "avail index moved by more than the ring size");
        goto out;
    }
    /* Frames that fit the next simple buffer: header and frame written in one go. */
    uint16_t heads[BURST_MAX];
    struct rx_buf bufs[BURST_MAX];
    const uint16_t avail = (uint16_t)(avail_idx - q->last_avail_idx);
    uint16_t nbuf = rx_reserve(dev, q, MIN(avail, MIN(n, (uint16_t)BURST_MAX)), heads, bufs);
    for (; sent < nbuf; sent++) {
        const struct pkt *p = pkts[sent];
        const struct rx_buf *b = &bufs[sent];
        const uint32_t hlen = dev->vnet_hdr_len;
        if (hlen + p->len > b->len)
            break; /* the general path below takes it from here */
        if (sent + 1 < nbuf)
            prefetch_rest(pkts[sent + 1], &bufs[sent + 1], hlen);
        struct virtio_net_hdr_v1 h = p->vnet;
        h.num_buffers = 1; /* what a 12-byte header says with or without MRG_RXBUF */
        vu_rx_put_hdr(b->addr, &h, hlen);
        if (unlikely(pkt_copy_frame(p, b->addr + hlen) != p->len))
            break; /* a packet shorter than it says: dropped below as before */
        if (unlikely(q->log))
            vu_log_write(q->log, b->gpa, hlen + p->len);
        used_put(q, b->head, hlen + p->len);
        q->last_avail_idx++;
        q->stats.packets++;
        q->stats.bytes += p->len;
    }
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
            if (unlikely(q->log))
                vu_log_segs(dev, q->log, c.seg, c.nseg, wrote);
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
        if (unlikely(q->log) && nbufs > 1)
            vu_log_num_buffers(dev, q->log, &w);
        q->last_avail_idx = cur;
        q->stats.packets++;
        q->stats.bytes += p->len;
    }
out:
    used_publish(dev, q);
    __atomic_clear(&q->lock, __ATOMIC_RELEASE);
    return sent;
}
