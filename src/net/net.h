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
 * After a source filled seg[] and len: take the private copy of the first bytes.
 * Returns 0, or -EINVAL when the segments hold fewer than len bytes.
 */
int pkt_snapshot_header(struct pkt *p);

/* Fill a packet from one flat buffer (tests, TAP-like sources). `buf` must outlive the packet. */
void pkt_from_buffer(struct pkt *p, const void *buf, uint32_t len);

#endif
