/*
 * Pieces shared by the split (vu_split.c) and packed (vu_packed.c) datapaths: a descriptor
 * chain collected into host segments, the virtio-net header taken off a guest frame, and the
 * writer that fills RX buffers. Static inline so each datapath gets its own inlined copy.
 * Called by the PMD that owns the queue; no locks.
 */
#ifndef VSW_VU_DATAPATH_H
#define VSW_VU_DATAPATH_H

#include "vu_int.h"

#include <stddef.h>
#include <string.h>

/* A descriptor chain translated to host segments. */
struct vu_chain {
    struct pkt_seg seg[PKT_MAX_SEGS];
    uint16_t nseg;
    bool truncated; /* more pieces than seg[] holds */
    uint64_t len;   /* bytes described by the chain */
};

static inline void vu_chain_init(struct vu_chain *c)
{
    c->nseg = 0;
    c->len = 0;
    c->truncated = false;
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
        if (c->nseg < PKT_MAX_SEGS) {
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

/* Strip the virtio-net header from the front of the chain into p->vnet. */
static inline bool vu_take_vnet_hdr(const struct vu_dev *dev, struct pkt *p)
{
    uint32_t need = dev->vnet_hdr_len, got = 0;
    uint8_t hdr[sizeof(struct virtio_net_hdr_v1)] = {0};
    uint16_t i = 0;
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
 * Turn a guest TX chain into packet p (segments, header stripped, private header copy).
 * Returns VSW_DROP__COUNT when p is good, else the reason to drop it (the chain goes back
 * to the guest either way).
 */
static inline enum vsw_drop vu_pkt_from_chain(const struct vu_dev *dev, const struct vu_queue *q,
                                              const struct vu_chain *c, struct pkt *p)
{
    memcpy(p->seg, c->seg, c->nseg * sizeof(c->seg[0]));
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

#endif
