/*
 * Packed virtqueue datapath (virtio 1.2, 2.8): take frames from a guest's TX ring, copy frames
 * into a guest's RX ring, event suppression in both directions, and the GET/SET_VRING_BASE
 * encoding of a packed queue's position. The vu_dev_* burst functions (vu_split.c) hand a
 * queue here when the device negotiated RING_PACKED. Called by the PMD thread that owns the
 * queue (enqueue under the queue's spinlock); start, base and free by the control thread with
 * the queue quiesced. No syscalls except the call eventfd write, at most once per burst and
 * only when the guest asked for it; no allocation on the datapath.
 *
 * One ring of 16-byte descriptors {addr, len, id, flags}. The driver makes a buffer available
 * by writing its descriptors at the next slots with AVAIL equal to its wrap counter and USED
 * the opposite (the first descriptor's flags last); we return a buffer by writing one used
 * descriptor {id, len, flags AVAIL = USED = our used wrap counter} at the next used slot and
 * skipping as many slots as the buffer took. Used descriptors of a burst are written with the
 * flags of the first one last (release), so the guest sees the burst at once, and a frame
 * spread over several mergeable buffers is complete when it sees its first.
 *
 * Security model, as for the split ring: each descriptor field is loaded once into a private
 * copy before it is checked and used; every buffer is translated and bounds-checked; a direct
 * chain is bounded by the ring size and each of its descriptors must be marked available for
 * the lap it sits in; an indirect table is bounded by its length, aligned, inside one region,
 * and holds no indirect descriptor; buffer ids must be below the ring size and not held by us
 * already. A violation stops the queue (counted, logged rate-limited). Every ring index we use
 * stays below the ring size, whatever the guest writes.
 */
#include "vu_datapath.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "vhost"

/*
 * Most RX buffers one frame may take with MRG_RXBUF. Linux posts mergeable buffers of at
 * least 1518 bytes and DPDK of about 2 KiB, so the largest frame (64 KiB) needs 44 at most;
 * a guest posting tiny buffers gets such frames dropped as too big instead.
 */
#define PK_MAX_RX_BUFS 256

#define PK_AVAIL VRING_PACKED_DESC_F_AVAIL
#define PK_USED  VRING_PACKED_DESC_F_USED

/* ---- ring positions ---- */

static inline void pk_avail_advance(struct vu_queue *q, uint16_t ndesc)
{
    uint32_t next = (uint32_t)q->last_avail_idx + ndesc; /* ndesc <= size */
    if (next >= q->size) {
        next -= q->size;
        q->avail_wrap = !q->avail_wrap;
    }
    q->last_avail_idx = (uint16_t)next;
}

/*
 * The driver made this slot available in the lap of wrap counter `wrap`: AVAIL == wrap and
 * USED != wrap. Anything else is "not yet": a used descriptor of the previous lap, a
 * descriptor of the previous lap that a chain's single used descriptor skipped, or memory
 * never written (a ring that started mid-way through SET_VRING_BASE).
 */
static inline bool pk_desc_avail(uint16_t flags, bool wrap)
{
    return !!(flags & PK_AVAIL) == wrap && !!(flags & PK_USED) != wrap;
}

/* ---- buffer ids we hold (taken from the ring, not yet returned) ---- */

static inline bool pk_id_take(struct vu_queue *q, uint16_t id)
{
    uint64_t bit = 1ull << (id & 63), *w = &q->pk_inflight[id >> 6];
    if (*w & bit)
        return false;
    *w |= bit;
    return true;
}

static inline void pk_id_release(struct vu_queue *q, uint16_t id)
{
    q->pk_inflight[id >> 6] &= ~(1ull << (id & 63));
}

/* ---- reading descriptors ---- */

/* The fields after flags (already loaded, with acquire for the first of a chain). */
static inline struct vring_packed_desc pk_desc_read(const struct vring_packed_desc *p,
                                                    uint16_t flags)
{
    struct vring_packed_desc d;
    d.addr = __atomic_load_n(&p->addr, __ATOMIC_RELAXED);
    d.len = __atomic_load_n(&p->len, __ATOMIC_RELAXED);
    d.id = __atomic_load_n(&p->id, __ATOMIC_RELAXED);
    d.flags = flags;
    return d;
}

static inline const char *pk_dir_check(uint16_t flags, bool writable)
{
    if (!!(flags & VRING_DESC_F_WRITE) != writable)
        return writable ? "device-readable buffer in an RX ring"
                        : "device-writable buffer in a TX ring";
    return NULL;
}

/*
 * An indirect table (packed format: the entries follow each other, their number is the
 * table length / 16; only the WRITE flag counts in them, but an INDIRECT flag is refused).
 */
static const char *pk_indirect_collect(const struct vu_dev *dev, const struct vring_packed_desc *d,
                                       bool writable, struct vu_chain *c)
{
    uint64_t contig;
    if (!vu_has_feature(dev, VIRTIO_RING_F_INDIRECT_DESC))
        return "indirect descriptor without the feature";
    if (d->flags & VRING_DESC_F_NEXT)
        return "indirect descriptor with the next flag";
    if (d->len == 0 || d->len % sizeof(struct vring_packed_desc) ||
        d->len / sizeof(struct vring_packed_desc) > VIRTQ_MAX_SIZE)
        return "indirect table of bad length";
    if (d->addr % 8)
        return "indirect table misaligned";
    const struct vring_packed_desc *t =
        (const struct vring_packed_desc *)vu_mem_gpa_to_host(&dev->mem, d->addr, d->len, &contig);
    if (!t || contig < d->len)
        return "indirect table outside guest memory";
    if ((uintptr_t)t & 7)
        return "indirect table misaligned";
    uint32_t entries = d->len / sizeof(struct vring_packed_desc);
    for (uint32_t i = 0; i < entries; i++) {
        struct vring_packed_desc e =
            pk_desc_read(&t[i], __atomic_load_n(&t[i].flags, __ATOMIC_RELAXED));
        if (e.flags & VRING_DESC_F_INDIRECT)
            return "indirect descriptor inside an indirect table";
        const char *why = pk_dir_check(e.flags, writable);
        if (!why)
            why = vu_chain_add(&dev->mem, c, e.addr, e.len);
        if (why)
            return why;
    }
    return NULL;
}

/*
 * Walk the buffer whose first descriptor sits at q->last_avail_idx; `flags` are that
 * descriptor's flags, loaded with acquire and seen available.
 * Device-writable buffers are required for an RX ring (`writable`), forbidden for a TX ring.
 * On success *id is the buffer id and *ndesc the ring slots the buffer takes. Returns NULL,
 * or the reason the ring is malformed.
 */
static const char *pk_collect(const struct vu_dev *dev, const struct vu_queue *q, uint16_t flags,
                              bool writable, struct vu_chain *c, uint16_t *id, uint16_t *ndesc)
{
    const struct vring_packed_desc *ring = q->pdesc;
    uint32_t slot = q->last_avail_idx;
    bool wrap = q->avail_wrap;

    vu_chain_reset(c);
    for (uint32_t n = 1;; n++) {
        struct vring_packed_desc d = pk_desc_read(&ring[slot], flags);
        const char *why;
        if (d.flags & VRING_DESC_F_INDIRECT) {
            if (n > 1)
                return "indirect descriptor inside a chain";
            why = pk_indirect_collect(dev, &d, writable, c);
        } else {
            why = pk_dir_check(d.flags, writable);
            if (!why)
                why = vu_chain_add(&dev->mem, c, d.addr, d.len);
        }
        if (why)
            return why;
        if ((d.flags & VRING_DESC_F_INDIRECT) || !(d.flags & VRING_DESC_F_NEXT)) {
            if (d.id >= q->size)
                return "buffer id out of the ring";
            *id = d.id;
            *ndesc = (uint16_t)n;
            return NULL;
        }
        if (n == q->size)
            return "descriptor chain longer than the ring";
        if (++slot == q->size) {
            slot = 0;
            wrap = !wrap;
        }
        /* The first descriptor's acquire load ordered the rest of the chain for us. */
        flags = __atomic_load_n(&ring[slot].flags, __ATOMIC_RELAXED);
        if (!pk_desc_avail(flags, wrap)) /* it was written before the first one */
            return "descriptor in a chain not marked available (wrong wrap flags)";
    }
}

/* ---- writing used descriptors ---- */

/*
 * Return buffer `id` (which took ndesc slots) with len bytes written. The flags of the first
 * used descriptor of a burst wait in pk_head_* for pk_publish(); the others are stored now,
 * invisible to the guest until then because it reads used descriptors in ring order.
 */
static inline void pk_used_write(struct vu_queue *q, uint16_t id, uint32_t len, uint16_t ndesc)
{
    uint16_t slot = q->last_used_idx;
    struct vring_packed_desc *d = &q->pdesc[slot];
    uint16_t flags = (q->used_wrap ? PK_AVAIL | PK_USED : 0) | (len ? VRING_DESC_F_WRITE : 0);
    __atomic_store_n(&d->id, id, __ATOMIC_RELAXED);
    __atomic_store_n(&d->len, len, __ATOMIC_RELAXED);
    if (!q->pk_head_pending) {
        q->pk_head_pending = true;
        q->pk_head_slot = slot;
        q->pk_head_flags = flags;
    } else {
        __atomic_store_n(&d->flags, flags, __ATOMIC_RELAXED);
    }
    if (unlikely(q->log)) /* live migration: mark what we wrote (vu_log.c) */
        vu_log_packed_used(q, slot);
    uint32_t next = (uint32_t)slot + ndesc;
    if (next >= q->size) {
        next -= q->size;
        q->used_wrap = !q->used_wrap;
    }
    q->last_used_idx = (uint16_t)next;
}

/*
 * The driver asked (DESC) for a notification when the used descriptor at off_wrap is
 * written: was it among those from `old` (wrap old_wrap) up to the next used slot now? The
 * positions are made comparable by moving those of the previous lap back by the ring size.
 */
static inline bool pk_need_event(const struct vu_queue *q, uint16_t off_wrap, uint16_t old,
                                 bool old_wrap)
{
    uint16_t event = off_wrap & VHOST_VRING_PACKED_IDX_MASK;
    uint16_t new_idx = q->last_used_idx;
    if (!!(off_wrap >> VRING_PACKED_EVENT_F_WRAP_CTR) != q->used_wrap)
        event = (uint16_t)(event - q->size);
    if (old_wrap != q->used_wrap)
        old = (uint16_t)(old - q->size);
    return vring_need_event(event, new_idx, old);
}

/* Make the used descriptors of this burst visible and notify the guest if it asked. */
static void pk_publish(struct vu_dev *dev, struct vu_queue *q)
{
    if (!q->pk_head_pending)
        return;
    uint16_t old = q->pk_head_slot;
    bool old_wrap = q->pk_head_flags & PK_USED;
    __atomic_store_n(&q->pdesc[old].flags, q->pk_head_flags, __ATOMIC_RELEASE);
    q->pk_head_pending = false;
    if (q->callfd < 0)
        return;
    /* The descriptors must be visible before we read the guest's wish, or a wakeup is lost. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t flags = __atomic_load_n(&q->driver_event->flags, __ATOMIC_RELAXED);
    bool need;
    if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
        need = false;
    else if (flags != VRING_PACKED_EVENT_FLAG_DESC || !vu_has_feature(dev, VIRTIO_RING_F_EVENT_IDX))
        need = true; /* ENABLE (or a value we do not know: notifying is always safe) */
    else
        need = pk_need_event(q, __atomic_load_n(&q->driver_event->off_wrap, __ATOMIC_RELAXED), old,
                             old_wrap);
    if (need) {
        uint64_t one = 1;
        ssize_t w = write(q->callfd, &one, sizeof(one));
        (void)w; /* a full eventfd counter already means "notified" */
    }
}

/* ---- TX (the guest transmits, we dequeue) ---- */

/* What pass 1 of a TX burst learnt about each buffer (the segments are in the packet). */
struct pk_tx {
    uint64_t len;
    uint16_t id, ndesc;
    uint16_t slot; /* where the buffer starts: the position to rewind to if it is not taken */
    bool wrap;
    bool truncated;
    uint16_t nseg;
};

#define PK_BURST_MAX 64

/*
 * Two passes, as the split ring does: first every buffer is collected straight into its
 * packet and the first lines of its frame prefetched, then the headers are read, so the cache
 * misses of the burst overlap.
 */
uint16_t vu_packed_dequeue_burst(struct vu_dev *dev, struct vu_queue *q, struct pkt *pkts,
                                 uint16_t n)
{
    struct pk_tx tx[PK_BURST_MAX];
    const char *why = NULL;
    uint16_t ok = 0;

    n = MIN(n, (uint16_t)PK_BURST_MAX);
    for (; ok < n; ok++) {
        uint16_t flags = __atomic_load_n(&q->pdesc[q->last_avail_idx].flags, __ATOMIC_ACQUIRE);
        if (!pk_desc_avail(flags, q->avail_wrap))
            break;
        uint16_t id, ndesc;
        struct vu_chain c;
        vu_chain_init(&c, pkts[ok].seg, PKT_MAX_SEGS);
        why = pk_collect(dev, q, flags, false, &c, &id, &ndesc);
        if (!why && !pk_id_take(q, id))
            why = "buffer id made available twice";
        if (why)
            break;
        tx[ok] = (struct pk_tx){.len = c.len,
                                .id = id,
                                .ndesc = ndesc,
                                .slot = q->last_avail_idx,
                                .wrap = q->avail_wrap,
                                .truncated = c.truncated,
                                .nseg = c.nseg};
        pk_avail_advance(q, ndesc);
        if (c.nseg) {
            __builtin_prefetch(c.seg[0].addr);
            if (c.seg[0].len > 64)
                __builtin_prefetch(c.seg[0].addr + 64);
        }
    }

    uint16_t out = 0, i = 0;
    for (; i < ok; i++) {
        struct pkt *p = &pkts[i];
        const struct vu_chain c = {.seg = p->seg,
                                   .cap = PKT_MAX_SEGS,
                                   .nseg = tx[i].nseg,
                                   .truncated = tx[i].truncated,
                                   .len = tx[i].len};
        enum vsw_drop drop = vu_pkt_from_chain(dev, q, &c, p);
        if (drop != VSW_DROP__COUNT && out) {
            /* Buffers go back in ring order (IN_ORDER): the good ones before this one return
             * in dequeue_done, so this one starts the next burst. */
            break;
        }
        if (drop != VSW_DROP__COUNT) {
            q->stats.drops[drop]++;
            pk_used_write(q, tx[i].id, 0, tx[i].ndesc);
            pk_id_release(q, tx[i].id);
            continue;
        }
        if (unlikely(out != i))
            pkts[out] = *p; /* only after a dropped first buffer */
        p = &pkts[out];
        p->src_id = tx[i].id;
        p->src_aux = tx[i].ndesc;
        q->stats.packets++;
        q->stats.bytes += p->len;
        out++;
    }
    if (i < ok) {
        /* Not taken this time: the ring position goes back to buffer i, the ids with it. */
        q->last_avail_idx = tx[i].slot;
        q->avail_wrap = tx[i].wrap;
        for (uint16_t j = i; j < ok; j++)
            pk_id_release(q, tx[j].id);
    } else if (why) {
        q->stats.drops[VSW_DROP_RX_BAD_DESC]++;
        vu_queue_mark_broken(dev, q, why);
    }
    /* With nothing to forward the caller never calls dequeue_done: the dropped buffers must
     * go back now, or a guest sending only such frames fills its ring and is stuck. */
    if (!out)
        pk_publish(dev, q);
    return out;
}

void vu_packed_dequeue_done(struct vu_dev *dev, struct vu_queue *q, struct pkt *pkts, uint16_t n)
{
    if (!q->pdesc) /* the ring stays mapped until the control thread quiesces us */
        return;
    for (uint16_t i = 0; i < n; i++) {
        uint16_t id = (uint16_t)pkts[i].src_id;
        pk_used_write(q, id, 0, (uint16_t)pkts[i].src_aux);
        pk_id_release(q, id);
    }
    pk_publish(dev, q);
}

/* ---- RX (we enqueue into the guest's buffers) ---- */

struct pk_rx_buf {
    uint16_t id, ndesc;
    uint32_t len;
};

/* A simple RX buffer: one device-writable descriptor, contiguous in our mapping. */
struct pk_rx_simple {
    uint8_t *addr;
    uint32_t len;
    uint16_t id;
};

/*
 * Pass 1 of an RX burst, as the split ring's rx_reserve(): translate the simple buffers at the
 * front of the ring once, each descriptor loaded once (flags with acquire, checked for the lap
 * it sits in) and its id checked, and prefetch them for writing so the misses of the burst
 * overlap. Reads only: the ring position does not move. Stops at the first other buffer
 * (chained, indirect, anything malformed): the general path reads and checks that one itself.
 */
static uint16_t pk_rx_reserve(const struct vu_dev *dev, const struct vu_queue *q, uint16_t n,
                              struct pk_rx_simple *bufs)
{
    uint32_t slot = q->last_avail_idx;
    bool wrap = q->avail_wrap;
    n = MIN(n, q->size);
    for (uint16_t i = 0; i < n; i++) {
        const struct vring_packed_desc *p = &q->pdesc[slot];
        uint16_t flags = __atomic_load_n(&p->flags, __ATOMIC_ACQUIRE);
        if (!pk_desc_avail(flags, wrap) || (flags & (VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT |
                                                     VRING_DESC_F_WRITE)) != VRING_DESC_F_WRITE)
            return i;
        struct vring_packed_desc d = pk_desc_read(p, flags);
        uint64_t contig = 0;
        uint8_t *host =
            d.len && d.id < q->size ? vu_mem_gpa_to_host(&dev->mem, d.addr, d.len, &contig) : NULL;
        if (!host || contig < d.len)
            return i;
        bufs[i] = (struct pk_rx_simple){host, d.len, d.id};
        vu_rx_prefetch(host, d.len, dev->vnet_hdr_len);
        if (++slot == q->size) {
            slot = 0;
            wrap = !wrap;
        }
    }
    return n;
}

uint16_t vu_packed_enqueue_burst(struct vu_dev *dev, struct vu_queue *q, struct pkt *const *pkts,
                                 uint16_t n)
{
    const bool mrg = vu_has_feature(dev, VIRTIO_NET_F_MRG_RXBUF);
    struct pk_rx_buf bufs[PK_MAX_RX_BUFS];
    struct pkt_seg segs[PKT_MAX_SEGS];
    struct vu_chain c;
    struct vu_rx_writer w;
    uint16_t sent = 0;

    vu_chain_init(&c, segs, PKT_MAX_SEGS);

    /* Frames that fit the next simple buffer: header and frame written in one go, in ring
     * order (IN_ORDER), one used descriptor each. */
    struct pk_rx_simple simple[PK_BURST_MAX];
    const uint32_t hlen = dev->vnet_hdr_len;
    uint16_t nsimple = pk_rx_reserve(dev, q, MIN(n, (uint16_t)PK_BURST_MAX), simple);
    for (; sent < nsimple; sent++) {
        const struct pkt *p = pkts[sent];
        const struct pk_rx_simple *b = &simple[sent];
        if (hlen + p->len > b->len || !pk_id_take(q, b->id))
            break; /* the general path below takes it from here (and judges the id) */
        struct virtio_net_hdr_v1 h = p->vnet;
        h.num_buffers = 1; /* what a 12-byte header says with or without MRG_RXBUF */
        vu_rx_put_hdr(b->addr, &h, hlen);
        if (unlikely(pkt_copy_frame(p, b->addr + hlen) != p->len)) {
            pk_id_release(q, b->id);
            break; /* a packet shorter than it says: dropped below as before */
        }
        if (unlikely(q->log)) {
            const struct pkt_seg seg = {b->addr, b->len};
            vu_log_segs(dev, q->log, &seg, 1, hlen + p->len);
        }
        pk_avail_advance(q, 1);
        pk_used_write(q, b->id, hlen + p->len, 1);
        pk_id_release(q, b->id);
        q->stats.packets++;
        q->stats.bytes += p->len;
    }

    for (; sent < n; sent++) {
        const struct pkt *p = pkts[sent];
        vu_rx_writer_init(&w, dev, p);

        uint16_t slot0 = q->last_avail_idx, nbufs = 0;
        bool wrap0 = q->avail_wrap;
        enum vsw_drop drop = VSW_DROP__COUNT;
        while (w.off < w.total) {
            if (nbufs == PK_MAX_RX_BUFS) {
                drop = VSW_DROP_TX_TOO_BIG;
                break;
            }
            uint16_t flags = __atomic_load_n(&q->pdesc[q->last_avail_idx].flags, __ATOMIC_ACQUIRE);
            if (!pk_desc_avail(flags, q->avail_wrap)) {
                drop = VSW_DROP_TX_NO_BUF;
                break;
            }
            uint16_t id, ndesc;
            const char *why = pk_collect(dev, q, flags, true, &c, &id, &ndesc);
            if (!why && !pk_id_take(q, id))
                why = "buffer id made available twice";
            if (why) {
                drop = VSW_DROP_TX_BAD_DESC;
                vu_queue_mark_broken(dev, q, why);
                break;
            }
            pk_avail_advance(q, ndesc);
            uint32_t wrote = vu_rx_write_chain(&w, &c);
            if (unlikely(q->log))
                vu_log_segs(dev, q->log, c.seg, c.nseg, wrote);
            bufs[nbufs++] = (struct pk_rx_buf){id, ndesc, wrote};
            if (!mrg && w.off < w.total) {
                drop = VSW_DROP_TX_TOO_BIG; /* one chain must hold it: keep the buffer */
                break;
            }
            if (wrote == 0) {
                drop = VSW_DROP_TX_TOO_BIG; /* an empty buffer can never make progress */
                break;
            }
        }
        if (drop != VSW_DROP__COUNT) {
            /* Undo: nothing was returned, the buffers stay the guest's. */
            for (uint16_t i = 0; i < nbufs; i++)
                pk_id_release(q, bufs[i].id);
            q->last_avail_idx = slot0;
            q->avail_wrap = wrap0;
            q->stats.drops[drop] += n - sent;
            break;
        }
        vu_rx_set_num_buffers(&w, mrg, nbufs);
        if (unlikely(q->log) && nbufs > 1)
            vu_log_num_buffers(dev, q->log, &w);
        for (uint16_t i = 0; i < nbufs; i++) {
            pk_used_write(q, bufs[i].id, bufs[i].len, bufs[i].ndesc);
            pk_id_release(q, bufs[i].id);
        }
        q->stats.packets++;
        q->stats.bytes += p->len;
    }
    pk_publish(dev, q);
    return sent;
}

/* ---- kick suppression (device area) ---- */

void vu_packed_set_notify(struct vu_dev *dev, struct vu_queue *q, bool enable)
{
    uint16_t flags = VRING_PACKED_EVENT_FLAG_DISABLE;
    if (enable && vu_has_feature(dev, VIRTIO_RING_F_EVENT_IDX)) {
        /* Kick me when you make the descriptor at our next slot available. */
        uint16_t off_wrap =
            (uint16_t)(q->last_avail_idx | (q->avail_wrap ? VHOST_VRING_PACKED_WRAP : 0));
        __atomic_store_n(&q->device_event->off_wrap, off_wrap, __ATOMIC_RELAXED);
        flags = VRING_PACKED_EVENT_FLAG_DESC;
    } else if (enable) {
        flags = VRING_PACKED_EVENT_FLAG_ENABLE;
    }
    __atomic_store_n(&q->device_event->flags, flags, __ATOMIC_RELEASE);
    /* The guest must see the request before we look at the ring again. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

bool vu_packed_has_work(const struct vu_queue *q)
{
    uint16_t flags = __atomic_load_n(&q->pdesc[q->last_avail_idx].flags, __ATOMIC_ACQUIRE);
    return pk_desc_avail(flags, q->avail_wrap);
}

/* ---- control thread ---- */

uint32_t vu_packed_get_base(const struct vu_queue *q)
{
    uint32_t avail = q->last_avail_idx | (q->avail_wrap ? VHOST_VRING_PACKED_WRAP : 0);
    uint32_t used = q->last_used_idx | (q->used_wrap ? VHOST_VRING_PACKED_WRAP : 0);
    return avail | used << 16;
}

/*
 * Bits 0-15: the next available slot and its wrap counter. Bits 16-31: the used pair as QEMU
 * sends it, or 0 as DPDK virtio-user sends it (then the same as the avail pair). We hold no
 * buffer across a stop, so a used position behind the avail one means buffers a previous
 * backend took and never returned: we take them again from there, as the split ring does.
 */
int vu_packed_set_base(struct vu_dev *dev, struct vu_queue *q, uint32_t num)
{
    uint16_t avail = (uint16_t)num, used = (uint16_t)(num >> 16);
    if (used == 0)
        used = avail;
    uint16_t ai = avail & VHOST_VRING_PACKED_IDX_MASK, ui = used & VHOST_VRING_PACKED_IDX_MASK;
    if (q->size && (ai >= q->size || ui >= q->size)) {
        VLOG_RL(WARN, MOD, "%s: SET_VRING_BASE %#x is outside packed ring %ld of %u entries",
                dev->name, num, (long)(q - dev->q), q->size);
        return -EPROTO;
    }
    q->last_used_idx = ui;
    q->used_wrap = used & VHOST_VRING_PACKED_WRAP;
    q->last_avail_idx = ui;
    q->avail_wrap = q->used_wrap;
    if (ui != ai || (avail ^ used) & VHOST_VRING_PACKED_WRAP)
        VLOG_RL(INFO, MOD, "%s: packed queue %ld resumes at used slot %u (avail was %u)", dev->name,
                (long)(q - dev->q), ui, ai);
    return 0;
}

void vu_packed_queue_free(struct vu_queue *q)
{
    free(q->pk_inflight);
    q->pk_inflight = NULL;
    q->pk_inflight_bits = 0;
}

int vu_packed_queue_start(struct vu_dev *dev, struct vu_queue *q)
{
    if (q->last_avail_idx >= q->size || q->last_used_idx >= q->size) {
        /* SET_VRING_NUM made the ring smaller after SET_VRING_BASE */
        vu_queue_mark_broken(dev, q, "ring position outside the packed ring");
        return -EPROTO;
    }
    /* A frontend that lost the ring's position (QEMU after we restarted) sends a stale base:
     * the ring's own USED bits win when they tell (vu_packed_resume.c). */
    uint16_t slot;
    bool wrap;
    if (vu_packed_ring_position(q, &slot, &wrap)) {
        VLOG_RL(INFO, MOD, "%s: packed queue %ld resumes at slot %u wrap %d (base was %u wrap %d)",
                dev->name, (long)(q - dev->q), slot, wrap, q->last_used_idx, q->used_wrap);
        q->last_used_idx = q->last_avail_idx = slot;
        q->used_wrap = q->avail_wrap = wrap;
    }
    size_t words = (q->size + 63u) / 64u;
    if (q->pk_inflight && q->pk_inflight_bits >= q->size) {
        memset(q->pk_inflight, 0, words * sizeof(uint64_t));
    } else {
        vu_packed_queue_free(q);
        q->pk_inflight = calloc(words, sizeof(uint64_t));
        if (!q->pk_inflight) {
            VLOG_RL(WARN, MOD, "%s: queue %ld: out of memory", dev->name, (long)(q - dev->q));
            return -ENOMEM;
        }
        q->pk_inflight_bits = q->size;
    }
    q->pk_head_pending = false;
    q->broken = false;
    /* Poll mode: ask the guest not to kick until a PMD wants to sleep. */
    q->notify_on = true;
    q->ready = true; /* set_notify checks it; the caller publishes the final value */
    vu_dev_queue_set_notify(dev, (uint16_t)(q - dev->q), false);
    return 0;
}
