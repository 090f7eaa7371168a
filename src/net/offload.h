/*
 * offload: the virtio-net header's offload requests (partial checksum, TCP segmentation) checked
 * against the frame, and done in software for a receiver that cannot take them.
 *
 * A sender may hand us a frame whose TCP/UDP checksum is only partial (NEEDS_CSUM: the
 * pseudo-header sum sits in the checksum field, the rest is left to whoever receives it) and
 * a TCP segment of up to 64 KiB that the receiver is to cut into MSS-sized segments (GSO
 * TCPV4/TCPV6). A receiver that negotiated GUEST_CSUM / GUEST_TSO4/6 / GUEST_ECN takes such
 * frames as they are; for any other one this module completes the checksum and segments.
 *
 * Every decision is taken on the packet's private header copy (p->hdr): the checksum field,
 * the L2/L3/L4 headers of a TSO frame and their rewrites all have to lie inside it. Payload
 * is read from the source buffers (checksums) and never copied here: a segment is a packet
 * whose private copy holds its rewritten headers and whose segments point into the source
 * frame's buffers, so the destination still copies each payload byte exactly once.
 *
 * Pure functions; no threads, sockets, allocation or logging.
 */
#ifndef VSW_OFFLOAD_H
#define VSW_OFFLOAD_H

#include "net.h"

#include <stdbool.h>
#include <stdint.h>

/* virtio-net header fields (virtio 1.2, 5.1.6). */
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_HDR_GSO_TCPV4    1
#define VIRTIO_NET_HDR_GSO_UDP      3
#define VIRTIO_NET_HDR_GSO_TCPV6    4
#define VIRTIO_NET_HDR_GSO_ECN      0x80

/*
 * Offloads, as a set of bits: what a port's consumer accepts (a vhost-user guest that
 * negotiated GUEST_CSUM, GUEST_TSO4, ...) or what its producer may ask for (CSUM, HOST_TSO4,
 * ...). TSO4/TSO6/ECN without CSUM is not a valid set (the virtio spec makes them depend on
 * it); offload_caps_normalize() enforces that.
 */
#define OFFLOAD_CSUM 0x1u /* partial checksums (NEEDS_CSUM) */
#define OFFLOAD_TSO4 0x2u /* TCP over IPv4 segmentation (GSO_TCPV4) */
#define OFFLOAD_TSO6 0x4u /* TCP over IPv6 segmentation (GSO_TCPV6) */
#define OFFLOAD_ECN  0x8u /* segmentation of frames with CWR set (GSO_ECN) */

/*
 * Smallest gso_size we segment: Linux's TCP_MIN_MSS. It bounds the segments one frame can
 * turn into (about 750 for 64 KiB), i.e. the work one guest can make a PMD do per frame.
 */
#define OFFLOAD_MIN_MSS 88

static inline uint32_t offload_caps_normalize(uint32_t caps)
{
    return caps & OFFLOAD_CSUM ? caps : 0;
}

/* True when the frame asks for any offload (the fast path tests only this). */
static inline bool offload_requested(const struct pkt *p)
{
    return (p->vnet.flags | p->vnet.gso_type) != 0;
}

/* The offloads frame p asks of its receiver (OFFLOAD_* bits). Valid for a validated frame. */
static inline uint32_t offload_needs(const struct pkt *p)
{
    uint32_t n = p->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM ? OFFLOAD_CSUM : 0;
    uint8_t gso = p->vnet.gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    if (gso == VIRTIO_NET_HDR_GSO_TCPV4)
        n |= OFFLOAD_TSO4;
    else if (gso == VIRTIO_NET_HDR_GSO_TCPV6)
        n |= OFFLOAD_TSO6;
    if (p->vnet.gso_type & VIRTIO_NET_HDR_GSO_ECN)
        n |= OFFLOAD_ECN;
    return n;
}

/* True when the frame needs segmenting for a receiver that accepts `caps`. */
static inline bool offload_needs_segmentation(uint32_t needs, uint32_t caps)
{
    return (needs & ~caps & (OFFLOAD_TSO4 | OFFLOAD_TSO6 | OFFLOAD_ECN)) != 0;
}

/* Where the headers of a TCP frame are (offsets into the frame). */
struct offload_l34 {
    uint16_t l3_off;  /* IPv4 / IPv6 header (after Ethernet and up to two VLAN tags) */
    uint16_t l4_off;  /* TCP header (after IPv6 extension headers) */
    uint16_t pay_off; /* payload: the end of the TCP header */
    uint8_t ipv;      /* 4 or 6 */
};

/*
 * Parse Ethernet (up to two 802.1Q/802.1ad tags), IPv4 or IPv6 (hop-by-hop, routing and
 * destination options extension headers) and TCP from p->hdr. Returns 0, or -EINVAL with
 * *why saying what is wrong: not TCP, a fragment, a header that runs past the frame or past
 * the private copy (PKT_HDR_COPY bytes).
 */
int offload_parse_tcp(const struct pkt *p, struct offload_l34 *out, const char **why);

/*
 * Check the virtio-net header of a frame a producer sent against the frame and against the
 * offloads it negotiated (`allowed`, OFFLOAD_* bits). Rejected: flags other than NEEDS_CSUM
 * (DATA_VALID and RSC_INFO are the device's, never the driver's); a request not negotiated;
 * an unknown gso_type (UDP fragmentation is not offered); a checksum start or field outside
 * the frame or the private copy; for TSO: gso_size below OFFLOAD_MIN_MSS, headers that do
 * not parse as TCP of the right IP version, a checksum request not at the TCP checksum, no
 * payload, a segment too long for its IP length field, CWR set without GSO_ECN (virtio
 * 5.1.6.2). Returns 0, or -EINVAL with *why set to a short reason for the log.
 */
int offload_validate(const struct pkt *p, uint32_t allowed, const char **why);

/*
 * Ones' complement sum (not complemented, folded to 16 bits, in memory byte order so it
 * can be stored with memcpy) of `len` frame bytes from `off`, read like pkt_read(): the
 * private copy first, then the segments. Bytes past the end of the frame count as absent.
 */
uint16_t offload_sum(const struct pkt *p, uint32_t off, uint32_t len);

/* Ones' complement sum of a flat buffer, same convention (pseudo-headers, IPv4 headers). */
uint16_t offload_sum_buf(const void *buf, uint32_t len);

/*
 * dst = src with its partial checksum completed: the sum from csum_start to the end of the
 * frame is folded into the field at csum_start + csum_offset (in dst's private copy; a result
 * of 0 is stored as 0xffff, which means the same and is what UDP needs), and the virtio-net
 * header cleared. dst's segments are src's. src must have been validated and need CSUM.
 */
void offload_csum_finish(struct pkt *dst, const struct pkt *src);

/* Software segmentation of one TSO frame, a few segments per call. */
struct offload_tso {
    const struct pkt *src;
    struct offload_l34 l;
    uint32_t mss;
    uint32_t pay_len;  /* payload bytes of the whole frame */
    uint32_t next_pay; /* payload offset of the next segment */
    uint32_t seq;      /* TCP sequence number of the first payload byte */
    uint16_t ip_id;    /* IPv4 identification of the first segment */
    uint16_t index;    /* segments produced so far */
};

/* Start segmenting src (validated, needs TSO4 or TSO6). Returns 0 or -EINVAL with *why. */
int offload_tso_init(struct offload_tso *t, const struct pkt *src, const char **why);

/*
 * Produce up to n next segments into out[0..n): each a packet of at most hdr + mss bytes
 * with its own headers (IPv4 total length, id + index and header checksum; IPv6 payload
 * length; TCP sequence number; FIN and PSH only on the last segment, CWR only on the first;
 * full TCP checksum) and a cleared virtio-net header; its segments point into src's buffers
 * (seg[0] covers the headers and points at out[i].hdr itself, so the packet must not be
 * moved). Returns the number produced (0 once the frame is done), or -E2BIG when a segment
 * would span more than PKT_MAX_SEGS - 1 source buffers (the rest of the frame is then lost).
 */
int offload_tso_next(struct offload_tso *t, struct pkt *out, uint16_t n);

/* Segments the whole frame becomes. */
static inline uint32_t offload_tso_count(const struct offload_tso *t)
{
    return (t->pay_len + t->mss - 1) / t->mss;
}

#endif
