/*
 * net: Ethernet definitions and the packet descriptor that moves through the dataplane.
 *
 * A `struct pkt` does not own frame memory. It describes a frame that still sits in its
 * source's buffers (a guest's TX descriptors, mapped) as a list of segments, plus a private
 * copy of the first bytes. Every decision (and every header rewrite) uses the private copy,
 * so a guest that changes its buffer after we looked cannot change what we decided; the
 * destination gets the private copy for those bytes and the source buffers for the rest.
 * This is what lets a frame be copied exactly once, sender's buffer to receiver's buffer.
 *
 * Pure functions; no threads, sockets or allocation.
 */
#ifndef VSW_NET_H
#define VSW_NET_H

#include "common.h"

#include <stdint.h>

#define ETH_ALEN      6
#define ETH_HLEN      14
#define ETH_MIN_FRAME 14
#define ETH_P_8021Q   0x8100
#define VSW_MAX_FRAME 65562 /* 64 KiB TSO frame + Ethernet and VLAN header */

struct eth_hdr {
    struct vsw_mac dst;
    struct vsw_mac src;
    uint16_t type; /* network byte order */
} __attribute__((packed));

static inline bool vsw_mac_is_multicast(const struct vsw_mac *m)
{
    return m->b[0] & 1;
}

static inline bool vsw_mac_is_zero(const struct vsw_mac *m)
{
    return (m->b[0] | m->b[1] | m->b[2] | m->b[3] | m->b[4] | m->b[5]) == 0;
}

static inline bool vsw_mac_equal(const struct vsw_mac *a, const struct vsw_mac *b)
{
    return __builtin_memcmp(a, b, ETH_ALEN) == 0;
}

/* virtio-net header as carried with every frame (virtio 1.x layout, 12 bytes). */
struct virtio_net_hdr_v1 {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};

#define PKT_HDR_COPY 128 /* bytes of each frame copied privately (headers for decisions) */
#define PKT_MAX_SEGS 64  /* source buffers one frame may span; more is dropped and counted */

struct pkt_seg {
    const uint8_t *addr;
    uint32_t len;
};

struct pkt {
    uint32_t len;     /* frame length in bytes, without the virtio-net header */
    uint16_t nseg;    /* segments in seg[] */
    uint16_t hdr_len; /* valid bytes in hdr[] = MIN(len, PKT_HDR_COPY) */
    uint32_t in_port; /* switch port index the frame came from */
    uint32_t src_id;  /* source-private (e.g. descriptor head) */
    uint32_t src_aux; /* source-private (e.g. descriptors used by the chain) */
    int32_t out_port; /* classification result: port index, PKT_OUT_FLOOD or PKT_OUT_DROP */
    uint16_t drop;    /* enum vsw_drop when out_port == PKT_OUT_DROP */
    struct virtio_net_hdr_v1 vnet;
    uint8_t hdr[PKT_HDR_COPY] __attribute__((aligned(64)));
    struct pkt_seg seg[PKT_MAX_SEGS]; /* whole frame, including the bytes copied to hdr[] */
};

#define PKT_OUT_FLOOD (-1)
#define PKT_OUT_DROP  (-2)

static inline const struct eth_hdr *pkt_eth(const struct pkt *p)
{
    return (const struct eth_hdr *)p->hdr;
}

/*
 * Copy `len` bytes of the frame starting at `off` into dst: bytes below hdr_len come from the
 * private copy, the rest from the segments. Returns the bytes copied (less than len only when
 * off + len runs past the frame).
 */
uint32_t pkt_read(const struct pkt *p, uint32_t off, void *dst, uint32_t len);

/*
 * Copy n <= PKT_HDR_COPY bytes with at most two fixed-size moves per size class instead of a
 * call to memcpy: at 64 B frames the library call and its size dispatch were a visible share
 * of the per-frame cost (callgrind, see bench/README.md). The two moves of a class overlap;
 * dst and src must not overlap each other (one side is always a packet's private copy).
 */
static inline void pkt_copy_small(void *dst, const void *src, uint32_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (n >= 64) {
        __builtin_memcpy(d, s, 64);
        if (n > 64)
            __builtin_memcpy(d + n - 64, s + n - 64, 64);
    } else if (n >= 32) {
        __builtin_memcpy(d, s, 32);
        __builtin_memcpy(d + n - 32, s + n - 32, 32);
    } else if (n >= 16) {
        __builtin_memcpy(d, s, 16);
        __builtin_memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        __builtin_memcpy(d, s, 8);
        __builtin_memcpy(d + n - 8, s + n - 8, 8);
    } else {
        for (uint32_t i = 0; i < n; i++)
            d[i] = s[i];
    }
}

/* pkt_snapshot_header() for a frame whose first bytes span several segments. */
int pkt_snapshot_header_multi(struct pkt *p);

/*
 * After a source filled seg[] and len: take the private copy of the first bytes.
 * Returns 0, or -EINVAL when the segments hold fewer than len bytes.
 */
static inline int pkt_snapshot_header(struct pkt *p)
{
    uint32_t want = MIN(p->len, (uint32_t)PKT_HDR_COPY);
    if (__builtin_expect(p->nseg > 0 && p->seg[0].len >= want, 1)) {
        pkt_copy_small(p->hdr, p->seg[0].addr, want);
        p->hdr_len = (uint16_t)want;
        return 0;
    }
    return pkt_snapshot_header_multi(p);
}

/*
 * Write the whole frame (p->len bytes) to dst: the private copy for the first hdr_len bytes,
 * the segments for the rest. dst may overlap the segments (a guest may point its RX buffer at
 * its own TX buffer), never the private copy. Returns the bytes written: less than p->len only
 * when the segments hold less than the frame.
 */
static inline uint32_t pkt_copy_frame(const struct pkt *p, uint8_t *dst)
{
    pkt_copy_small(dst, p->hdr, p->hdr_len);
    if (p->len <= p->hdr_len)
        return p->len;
    return p->hdr_len + pkt_read(p, p->hdr_len, dst + p->hdr_len, p->len - p->hdr_len);
}

/* Fill a packet from one flat buffer (tests, TAP-like sources). `buf` must outlive the packet. */
void pkt_from_buffer(struct pkt *p, const void *buf, uint32_t len);

#endif
