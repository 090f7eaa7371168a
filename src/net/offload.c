/*
 * Offload checks, software checksums and TCP segmentation (see offload.h). Pure; any thread.
 *
 * Sums are accumulated over 64-bit loads with an end-around carry and folded at the end: the
 * ones' complement sum does not care about the word size or the byte order it is computed in
 * (RFC 1071), as long as a chunk that starts at an odd offset of the summed stream has its
 * folded sum byte-swapped, which is how frames spread over several buffers are summed.
 */
#include "offload.h"

#include <errno.h>
#include <string.h>

#define ETH_P_IPV4   0x0800
#define ETH_P_IPV6   0x86dd
#define ETH_P_8021AD 0x88a8
#define IPPROTO_TCP_ 6
#define IP6_HOPOPTS  0
#define IP6_DSTOPTS  60
#define TCP_FIN      0x01
#define TCP_PSH      0x08
#define TCP_CWR      0x80
#define TCP_CSUM_OFF 16
#define IPV6_HLEN    40

static inline uint16_t rd16(const uint8_t *b)
{
    return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t rd32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline void wr16(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}

static inline void wr32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

static inline int fail(const char **why, const char *reason)
{
    if (why)
        *why = reason;
    return -EINVAL;
}

int offload_parse_tcp(const struct pkt *p, struct offload_l34 *out, const char **why)
{
    const uint8_t *h = p->hdr;
    uint32_t lim = p->hdr_len; /* MIN(len, PKT_HDR_COPY): past it is neither ours nor the frame */
    uint32_t off = ETH_HLEN;

    if (lim < ETH_HLEN)
        return fail(why, "frame shorter than an Ethernet header");
    uint16_t type = rd16(h + 12);
    for (int tags = 0; type == ETH_P_8021Q || type == ETH_P_8021AD; tags++) {
        if (tags == 2)
            return fail(why, "more than two VLAN tags");
        if (off + 4 > lim)
            return fail(why, "VLAN tag past the header copy");
        type = rd16(h + off + 2);
        off += 4;
    }
    out->l3_off = (uint16_t)off;
    if (type == ETH_P_IPV4) {
        if (off + 20 > lim)
            return fail(why, "IPv4 header past the header copy");
        uint32_t ihl = (h[off] & 0xfu) * 4;
        if (h[off] >> 4 != 4 || ihl < 20)
            return fail(why, "bad IPv4 version or header length");
        if (off + ihl > lim)
            return fail(why, "IPv4 options past the header copy");
        if (rd16(h + off + 6) & 0x3fff)
            return fail(why, "IPv4 fragment");
        if (h[off + 9] != IPPROTO_TCP_)
            return fail(why, "IPv4 payload is not TCP");
        off += ihl;
        out->ipv = 4;
    } else if (type == ETH_P_IPV6) {
        if (off + IPV6_HLEN > lim)
            return fail(why, "IPv6 header past the header copy");
        if (h[off] >> 4 != 6)
            return fail(why, "bad IPv6 version");
        uint8_t nh = h[off + 6];
        off += IPV6_HLEN;
        /* Only options headers: a routing header changes the pseudo-header's destination and
         * a fragment header cannot be segmented. The copy's size bounds the loop. */
        while (nh != IPPROTO_TCP_) {
            if (nh != IP6_HOPOPTS && nh != IP6_DSTOPTS)
                return fail(why, "IPv6 payload is not TCP (after options headers)");
            if (off + 8 > lim)
                return fail(why, "IPv6 extension header past the header copy");
            uint32_t len = ((uint32_t)h[off + 1] + 1) * 8;
            nh = h[off];
            off += len;
            if (off > lim)
                return fail(why, "IPv6 extension header past the header copy");
        }
        out->ipv = 6;
    } else {
        return fail(why, "not IPv4 or IPv6");
    }
    out->l4_off = (uint16_t)off;
    if (off + 20 > lim)
        return fail(why, "TCP header past the header copy");
    uint32_t thl = (uint32_t)(h[off + 12] >> 4) * 4;
    if (thl < 20)
        return fail(why, "bad TCP header length");
    if (off + thl > lim)
        return fail(why, "TCP options past the header copy");
    out->pay_off = (uint16_t)(off + thl);
    return 0;
}

int offload_validate(const struct pkt *p, uint32_t allowed, const char **why)
{
    const struct virtio_net_hdr_v1 *v = &p->vnet;
    uint8_t gso = v->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

    if (v->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
        return fail(why, "flags other than NEEDS_CSUM");
    if (gso != VIRTIO_NET_HDR_GSO_NONE && gso != VIRTIO_NET_HDR_GSO_TCPV4 &&
        gso != VIRTIO_NET_HDR_GSO_TCPV6)
        return fail(why, "unknown or unsupported gso_type");
    if (gso == VIRTIO_NET_HDR_GSO_NONE && (v->gso_type & VIRTIO_NET_HDR_GSO_ECN))
        return fail(why, "GSO_ECN without a GSO type");
    if (offload_needs(p) & ~offload_caps_normalize(allowed))
        return fail(why, "offload requested but not negotiated");
    if (v->hdr_len > p->len)
        return fail(why, "hdr_len past the end of the frame");
    if (v->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        uint32_t field = (uint32_t)v->csum_start + v->csum_offset;
        if (v->csum_start < ETH_HLEN || v->csum_start >= p->len)
            return fail(why, "csum_start outside the frame");
        if (field + 2 > p->len)
            return fail(why, "checksum field outside the frame");
        if (field + 2 > p->hdr_len)
            return fail(why, "checksum field past the header copy");
    }
    if (gso == VIRTIO_NET_HDR_GSO_NONE)
        return 0;

    struct offload_l34 l;
    if (offload_parse_tcp(p, &l, why) < 0)
        return -EINVAL;
    if ((gso == VIRTIO_NET_HDR_GSO_TCPV4) != (l.ipv == 4))
        return fail(why, "gso_type does not match the IP version");
    if ((v->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
        (v->csum_start != l.l4_off || v->csum_offset != TCP_CSUM_OFF))
        return fail(why, "checksum request is not the TCP checksum");
    if (v->gso_size < OFFLOAD_MIN_MSS)
        return fail(why, "gso_size too small");
    if (p->len <= l.pay_off)
        return fail(why, "TSO frame without payload");
    uint32_t seg = MIN((uint32_t)v->gso_size, p->len - l.pay_off);
    uint32_t iplen = l.pay_off - l.l3_off + seg - (l.ipv == 6 ? IPV6_HLEN : 0);
    if (iplen > 0xffff)
        return fail(why, "segment too long for its IP length field");
    if (!(v->gso_type & VIRTIO_NET_HDR_GSO_ECN) && (p->hdr[l.l4_off + 13] & TCP_CWR))
        return fail(why, "CWR set without GSO_ECN");
    return 0;
}

static inline uint64_t add_carry(uint64_t acc, uint64_t v)
{
    acc += v;
    return acc + (acc < v);
}

static uint64_t sum_chunk(const uint8_t *b, uint32_t n)
{
    uint64_t acc = 0;
    /* Four independent loads per round: the adds pipeline; the carries are folded later. */
    while (n >= 32) {
        uint64_t v[4];
        memcpy(v, b, sizeof(v));
        acc = add_carry(acc, v[0]);
        acc = add_carry(acc, v[1]);
        acc = add_carry(acc, v[2]);
        acc = add_carry(acc, v[3]);
        b += 32;
        n -= 32;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, b, 8);
        acc = add_carry(acc, v);
        b += 8;
        n -= 8;
    }
    if (n >= 4) {
        uint32_t v;
        memcpy(&v, b, 4);
        acc = add_carry(acc, v);
        b += 4;
        n -= 4;
    }
    if (n >= 2) {
        uint16_t v;
        memcpy(&v, b, 2);
        acc = add_carry(acc, v);
        b += 2;
        n -= 2;
    }
    if (n) {
        /* The odd last byte is the first byte of a word whose second byte is zero. */
        uint8_t t[2] = {b[0], 0};
        uint16_t v;
        memcpy(&v, t, 2);
        acc = add_carry(acc, v);
    }
    return acc;
}

static inline uint16_t fold(uint64_t acc)
{
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffu) + (acc >> 16);
    acc = (acc & 0xffffu) + (acc >> 16);
    acc = (acc & 0xffffu) + (acc >> 16);
    return (uint16_t)acc;
}

uint16_t offload_sum_buf(const void *buf, uint32_t len)
{
    return fold(sum_chunk(buf, len));
}

uint16_t offload_sum(const struct pkt *p, uint32_t off, uint32_t len)
{
    uint64_t acc = 0;
    uint32_t pos = 0; /* bytes summed so far: their parity says how the next chunk pairs up */

    if (off >= p->len)
        return 0;
    len = MIN(len, p->len - off);
    if (off < p->hdr_len) {
        uint32_t n = MIN(len, (uint32_t)p->hdr_len - off);
        acc = sum_chunk(p->hdr + off, n);
        pos = n;
        off += n;
    }
    uint32_t base = 0;
    for (uint16_t i = 0; i < p->nseg && pos < len; i++) {
        uint32_t slen = p->seg[i].len;
        if (off < base + slen) {
            uint32_t in = off - base;
            uint32_t n = MIN(len - pos, slen - in);
            uint16_t s = fold(sum_chunk(p->seg[i].addr + in, n));
            if (pos & 1)
                s = (uint16_t)(s << 8 | s >> 8);
            acc = add_carry(acc, s);
            pos += n;
            off += n;
        }
        base += slen;
    }
    return fold(acc);
}

static void pkt_copy_meta(struct pkt *dst, const struct pkt *src)
{
    dst->in_port = src->in_port;
    dst->src_id = src->src_id;
    dst->src_aux = src->src_aux;
    dst->out_port = src->out_port;
    dst->drop = 0;
    memset(&dst->vnet, 0, sizeof(dst->vnet));
}

void offload_csum_finish(struct pkt *dst, const struct pkt *src)
{
    pkt_copy_meta(dst, src);
    dst->len = src->len;
    dst->nseg = src->nseg;
    dst->hdr_len = src->hdr_len;
    memcpy(dst->hdr, src->hdr, src->hdr_len);
    memcpy(dst->seg, src->seg, src->nseg * sizeof(src->seg[0]));

    uint32_t start = src->vnet.csum_start;
    uint32_t field = start + src->vnet.csum_offset;
    /* The field holds the pseudo-header sum the sender left: it is part of the sum. */
    uint16_t c = (uint16_t)~offload_sum(dst, start, dst->len - start);
    if (c == 0)
        c = 0xffff;
    memcpy(dst->hdr + field, &c, sizeof(c));
}

int offload_tso_init(struct offload_tso *t, const struct pkt *src, const char **why)
{
    memset(t, 0, sizeof(*t));
    if (offload_parse_tcp(src, &t->l, why) < 0)
        return -EINVAL;
    if (src->vnet.gso_size == 0 || src->len <= t->l.pay_off)
        return fail(why, "nothing to segment");
    t->src = src;
    t->mss = src->vnet.gso_size;
    t->pay_len = src->len - t->l.pay_off;
    t->seq = rd32(src->hdr + t->l.l4_off + 4);
    if (t->l.ipv == 4)
        t->ip_id = rd16(src->hdr + t->l.l3_off + 4);
    return 0;
}

/* Append the source frame's bytes [off, off + len) to o's segments. */
static int slice(const struct pkt *src, uint32_t off, uint32_t len, struct pkt *o)
{
    uint32_t base = 0;
    for (uint16_t i = 0; i < src->nseg && len; i++) {
        uint32_t slen = src->seg[i].len;
        if (off < base + slen) {
            uint32_t in = off - base, n = MIN(len, slen - in);
            if (o->nseg == PKT_MAX_SEGS)
                return -E2BIG;
            o->seg[o->nseg].addr = src->seg[i].addr + in;
            o->seg[o->nseg].len = n;
            o->nseg++;
            off += n;
            len -= n;
        }
        base += slen;
    }
    return len ? -EINVAL : 0;
}

static uint16_t tcp_pseudo_sum(const uint8_t *ip, uint8_t ipv, uint32_t tcp_len)
{
    uint8_t ph[40];
    uint32_t n;
    if (ipv == 4) {
        memcpy(ph, ip + 12, 8); /* source and destination addresses */
        ph[8] = 0;
        ph[9] = IPPROTO_TCP_;
        wr16(ph + 10, tcp_len);
        n = 12;
    } else {
        memcpy(ph, ip + 8, 32);
        wr32(ph + 32, tcp_len);
        ph[36] = ph[37] = ph[38] = 0;
        ph[39] = IPPROTO_TCP_;
        n = 40;
    }
    return offload_sum_buf(ph, n);
}

int offload_tso_next(struct offload_tso *t, struct pkt *out, uint16_t n)
{
    const struct pkt *src = t->src;
    const uint32_t h = t->l.pay_off, l3 = t->l.l3_off, l4 = t->l.l4_off;
    int made = 0;

    while (made < n && t->next_pay < t->pay_len) {
        struct pkt *o = &out[made];
        uint32_t seglen = MIN(t->mss, t->pay_len - t->next_pay);
        bool first = t->next_pay == 0, last = t->next_pay + seglen == t->pay_len;

        pkt_copy_meta(o, src);
        memcpy(o->hdr, src->hdr, h);
        o->hdr_len = (uint16_t)h;
        o->len = h + seglen;
        /* The header bytes are read from hdr[]; this segment only keeps offsets in step. */
        o->seg[0].addr = o->hdr;
        o->seg[0].len = h;
        o->nseg = 1;
        int rc = slice(src, h + t->next_pay, seglen, o);
        if (rc < 0)
            return rc;

        uint8_t *ip = o->hdr + l3, *th = o->hdr + l4;
        if (t->l.ipv == 4) {
            wr16(ip + 2, h - l3 + seglen);
            wr16(ip + 4, (uint16_t)(t->ip_id + t->index));
            ip[10] = ip[11] = 0;
            uint16_t c = (uint16_t)~offload_sum_buf(ip, l4 - l3);
            memcpy(ip + 10, &c, sizeof(c));
        } else {
            wr16(ip + 4, h - l3 - IPV6_HLEN + seglen);
        }
        wr32(th + 4, t->seq + t->next_pay);
        if (!last)
            th[13] &= (uint8_t) ~(TCP_FIN | TCP_PSH);
        if (!first)
            th[13] &= (uint8_t)~TCP_CWR;
        th[16] = th[17] = 0;
        uint32_t tcp_len = h - l4 + seglen;
        uint64_t acc = tcp_pseudo_sum(ip, t->l.ipv, tcp_len);
        acc += offload_sum(o, l4, tcp_len);
        uint16_t c = (uint16_t)~fold(acc);
        memcpy(th + 16, &c, sizeof(c));

        t->next_pay += seglen;
        t->index++;
        made++;
    }
    return made;
}
