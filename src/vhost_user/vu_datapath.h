/*
 * Pieces shared by the split (vu_split.c) and packed (vu_packed.c) datapaths: a descriptor
 * chain collected into host segments, the virtio-net header taken off a guest frame, and the
 * writer that fills RX buffers. Static inline so each datapath gets its own inlined copy.
 * Called by the PMD that owns the queue; no locks.
 */
#ifndef VSW_VU_DATAPATH_H
#define VSW_VU_DATAPATH_H

#include "offload.h"
#include "vu_int.h"

#include <stddef.h>
#include <string.h>

/* The CPU has PREFETCHW (set once at start-up, vu_split.c). */
extern bool vu_have_prefetchw;

/*
 * Prefetch a guest RX buffer line we are about to write. The guest's core read it last, so
 * a plain prefetch brings it in shared and the store still waits for the invalidation; the
 * write prefetch asks for ownership at once. GCC emits a plain prefetch for
 * __builtin_prefetch(p, 1) unless built for a CPU with PREFETCHW (DPDK's -march=corei7 is
 * not), hence the instruction by hand, behind the CPUID check. With it the 64 B enqueue no
 * longer stalls on its first store to each buffer (perf: 37 % of the PMD's samples there).
 */
static inline void vu_prefetch_w(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
    if (likely(vu_have_prefetchw)) {
        __asm__ volatile("prefetchw %0" : : "m"(*(const volatile char *)p));
        return;
    }
#endif
    __builtin_prefetch(p, 1);
}

/*
 * Prefetch a simple RX buffer (one descriptor at `host`, `len` bytes) before writing header
 * and frame into it. When the frame starts on a new cache line, the header's line is only
 * read-prefetched: rx_put_hdr() may leave it untouched, and taking it for writing would
 * invalidate the guest's copy for nothing.
 */
static inline void vu_rx_prefetch(const uint8_t *host, uint32_t len, uint32_t hlen)
{
    if ((((uintptr_t)host + hlen) & 63) == 0 && len > hlen) {
        __builtin_prefetch(host, 0);
        vu_prefetch_w(host + hlen);
        if (len > hlen + 64)
            vu_prefetch_w(host + hlen + 64);
        return;
    }
    vu_prefetch_w(host);
    if (len > 64)
        vu_prefetch_w(host + 64);
}

/*
 * Write the virtio-net header into an RX buffer, unless the buffer already holds exactly
 * this header. A guest that recycles its buffers (DPDK keeps them in a pool) usually finds
 * last time's header there, and a DPDK guest keeps the header on a line of its own in front
 * of the frame: left clean, that line is still in the guest's cache when it reads
 * num_buffers. Rewriting it cost the testpmd generator a miss per frame (perf: 22 % of its
 * core at 64 B, on that one load).
 */
static inline void vu_rx_put_hdr(uint8_t *dst, const struct virtio_net_hdr_v1 *h, uint32_t hlen)
{
    if (likely(hlen == sizeof(*h))) {
        uint64_t a, b;
        uint32_t c, d;
        memcpy(&a, dst, 8);
        memcpy(&b, h, 8);
        memcpy(&c, dst + 8, 4);
        memcpy(&d, (const uint8_t *)h + 8, 4);
        if (a != b || c != d)
            __builtin_memcpy(dst, h, sizeof(*h));
        return;
    }
    if (memcmp(dst, h, hlen) != 0)
        memcpy(dst, h, hlen);
}

/*
 * A descriptor chain translated to host segments, written into storage the caller provides:
 * a packet's own seg[] for a TX chain (no copy of the segment list afterwards), a local
 * array for an RX chain.
 */
struct vu_chain {
    struct pkt_seg *seg;
    uint16_t cap; /* entries in seg[] */
    uint16_t nseg;
    bool truncated; /* more pieces than seg[] holds */
    uint64_t len;   /* bytes described by the chain */
};

/* Forget the chain's contents, keep its storage. */
static inline void vu_chain_reset(struct vu_chain *c)
{
    c->nseg = 0;
    c->len = 0;
    c->truncated = false;
}

static inline void vu_chain_init(struct vu_chain *c, struct pkt_seg *seg, uint16_t cap)
{
    c->seg = seg;
    c->cap = cap;
    vu_chain_reset(c);
}

/*
 * Append the guest buffer [addr, addr + len) to the chain, one segment per memory region it
 * touches. Returns NULL, or why the buffer is malformed (some byte outside guest memory).
 */
static inline const char *vu_chain_add(const struct vu_mem *mem, struct vu_chain *c, uint64_t addr,
                                       uint32_t len)
{
    uint64_t rem = len;
    while (rem) {
        uint64_t contig;
        uint8_t *h = vu_mem_gpa_to_host(mem, addr, rem, &contig);
        if (!h)
            return "buffer outside guest memory";
        if (c->nseg < c->cap) {
            c->seg[c->nseg].addr = h;
            c->seg[c->nseg].len = (uint32_t)contig;
            c->nseg++;
        } else {
            c->truncated = true;
        }
        addr += contig;
        rem -= contig;
    }
    c->len += len;
    return NULL;
}

/* Strip the virtio-net header from the front of the packet's segments into p->vnet. */
static inline bool vu_take_vnet_hdr(const struct vu_dev *dev, struct pkt *p)
{
    uint32_t need = dev->vnet_hdr_len, got = 0;
    uint8_t hdr[sizeof(struct virtio_net_hdr_v1)] = {0};
    uint16_t i = 0;
    if (need > sizeof(hdr))
        return false;
    /* Header and frame in one buffer (what Linux and DPDK guests send) or the header alone
     * in the first: one copy, no segment loop. */
    if (likely(p->nseg && p->seg[0].len >= need)) {
        if (need == sizeof(hdr))
            __builtin_memcpy(hdr, p->seg[0].addr, sizeof(hdr));
        else
            memcpy(hdr, p->seg[0].addr, need);
        p->seg[0].addr += need;
        p->seg[0].len -= need;
        got = need;
        i = p->seg[0].len == 0;
    }
    while (got < need && i < p->nseg) {
        uint32_t n = MIN(need - got, p->seg[i].len);
        memcpy(hdr + got, p->seg[i].addr, n);
        got += n;
        p->seg[i].addr += n;
        p->seg[i].len -= n;
        if (p->seg[i].len == 0)
            i++;
    }
    if (got < need)
        return false;
    if (i) {
        memmove(p->seg, p->seg + i, (p->nseg - i) * sizeof(p->seg[0]));
        p->nseg -= i;
    }
    memcpy(&p->vnet, hdr, sizeof(p->vnet));
    p->vnet.num_buffers = 0;
    return true;
}

/*
 * Turn a guest TX chain, collected into p->seg (c->seg == p->seg), into packet p (header
 * stripped, private header copy). Returns VSW_DROP__COUNT when p is good, else the reason to
 * drop it (the chain goes back to the guest either way).
 */
static inline enum vsw_drop vu_pkt_from_chain(const struct vu_dev *dev, const struct vu_queue *q,
                                              const struct vu_chain *c, struct pkt *p)
{
    p->nseg = c->nseg;
    if (c->truncated)
        return VSW_DROP_RX_TOO_MANY_SEGS;
    if (c->len > (uint64_t)dev->vnet_hdr_len + VSW_MAX_FRAME)
        return VSW_DROP_RX_TOO_BIG;
    if (c->len < (uint64_t)dev->vnet_hdr_len + ETH_HLEN || !vu_take_vnet_hdr(dev, p))
        return VSW_DROP_RX_RUNT;
    if (unlikely(!__atomic_load_n(&q->enabled, __ATOMIC_RELAXED)))
        return VSW_DROP_RX_Q_STOPPED; /* disabled: drained, not forwarded */
    p->len = (uint32_t)(c->len - dev->vnet_hdr_len);
    p->out_port = PKT_OUT_DROP;
    p->drop = 0;
    pkt_snapshot_header(p);
    if (unlikely(offload_requested(p)) && !vu_vnet_hdr_ok(dev, p))
        return VSW_DROP_RX_BAD_VNET_HDR;
    return VSW_DROP__COUNT;
}

/* Writes the stream "virtio-net header, then frame" into the pieces of RX chains. */
struct vu_rx_writer {
    const struct pkt *p;
    uint8_t hdr[sizeof(struct virtio_net_hdr_v1)];
    uint32_t hdr_len;
    uint32_t off;   /* stream offset written so far */
    uint32_t total; /* hdr_len + frame length */
    uint8_t *nb[2]; /* where the two bytes of num_buffers landed */
};

static inline void vu_rx_writer_init(struct vu_rx_writer *w, const struct vu_dev *dev,
                                     const struct pkt *p)
{
    memset(w, 0, sizeof(*w));
    w->p = p;
    w->hdr_len = dev->vnet_hdr_len;
    memcpy(w->hdr, &p->vnet, sizeof(w->hdr));
    w->total = w->hdr_len + p->len;
}

/* Fill one chain; returns the bytes written into it. */
static inline uint32_t vu_rx_write_chain(struct vu_rx_writer *w, const struct vu_chain *c)
{
    uint32_t written = 0;
    /* Header and frame fit the first buffer (the common case at any MTU-sized frame): two
     * copies and no stream bookkeeping. */
    if (likely(w->off == 0 && c->nseg && c->seg[0].len >= w->total)) {
        uint8_t *dst = (uint8_t *)c->seg[0].addr;
        if (w->hdr_len == sizeof(struct virtio_net_hdr_v1)) {
            __builtin_memcpy(dst, w->hdr, sizeof(struct virtio_net_hdr_v1));
            w->nb[0] = dst + offsetof(struct virtio_net_hdr_v1, num_buffers);
            w->nb[1] = w->nb[0] + 1;
        } else {
            memcpy(dst, w->hdr, w->hdr_len);
        }
        w->off = w->hdr_len + pkt_copy_frame(w->p, dst + w->hdr_len);
        return w->off;
    }
    for (uint16_t i = 0; i < c->nseg && w->off < w->total; i++) {
        uint8_t *dst = (uint8_t *)c->seg[i].addr;
        uint32_t room = c->seg[i].len;
        while (room && w->off < w->total) {
            uint32_t n;
            if (w->off < w->hdr_len) {
                n = MIN(room, w->hdr_len - w->off);
                memcpy(dst, w->hdr + w->off, n);
                for (uint32_t b = 0; b < n; b++) {
                    uint32_t so = w->off + b;
                    if (so == offsetof(struct virtio_net_hdr_v1, num_buffers))
                        w->nb[0] = dst + b;
                    else if (so == offsetof(struct virtio_net_hdr_v1, num_buffers) + 1)
                        w->nb[1] = dst + b;
                }
            } else {
                n = pkt_read(w->p, w->off - w->hdr_len, dst, MIN(room, w->total - w->off));
                if (n == 0)
                    return written;
            }
            dst += n;
            room -= n;
            w->off += n;
            written += n;
        }
    }
    return written;
}

/* The frame is complete in nbufs buffers: write num_buffers where the header landed. */
static inline void vu_rx_set_num_buffers(const struct vu_rx_writer *w, bool mrg, uint16_t nbufs)
{
    if (mrg && nbufs > 1 && w->nb[0] && w->nb[1]) {
        *w->nb[0] = (uint8_t)(nbufs & 0xff);
        *w->nb[1] = (uint8_t)(nbufs >> 8);
    } else if (w->nb[0] && w->nb[1]) { /* a 12-byte header without MRG_RXBUF says 1 too */
        *w->nb[0] = 1;
        *w->nb[1] = 0;
    }
}

/* Dirty log: num_buffers is written after its chain was logged (a sync in between would
 * miss it), so its two bytes are logged again once they hold the count. */
static inline void vu_log_num_buffers(const struct vu_dev *dev, struct vu_log *log,
                                      const struct vu_rx_writer *w)
{
    for (int i = 0; i < 2; i++) {
        if (w->nb[i]) {
            const struct pkt_seg s = {.addr = w->nb[i], .len = 1};
            vu_log_segs(dev, log, &s, 1, 1);
        }
    }
}

#endif
