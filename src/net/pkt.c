/* Packet descriptor helpers: private header copy and range reads. Pure; any thread. */
#include "net.h"

#include <errno.h>
#include <string.h>

uint32_t pkt_read(const struct pkt *p, uint32_t off, void *dst, uint32_t len)
{
    uint8_t *out = dst;
    uint32_t done = 0;

    if (off >= p->len)
        return 0;
    if (len > p->len - off)
        len = p->len - off;
    if (off < p->hdr_len) {
        uint32_t n = MIN(len, (uint32_t)p->hdr_len - off);
        memcpy(out, p->hdr + off, n);
        done = n;
        off += n;
    }
    /* Walk the segments to `off`. Frames have few segments; a linear walk is cheapest. */
    uint32_t base = 0;
    for (uint16_t i = 0; i < p->nseg && done < len; i++) {
        uint32_t slen = p->seg[i].len;
        if (off < base + slen) {
            uint32_t in = off - base;
            uint32_t n = MIN(len - done, slen - in);
            /* A guest may point its RX buffer at the very bytes it transmits (or two ports
             * at shared memory): the ranges can overlap. memmove costs memcpy's price. */
            memmove(out + done, p->seg[i].addr + in, n);
            done += n;
            off += n;
        }
        base += slen;
    }
    return done;
}

int pkt_snapshot_header_multi(struct pkt *p)
{
    uint32_t want = MIN(p->len, (uint32_t)PKT_HDR_COPY), got = 0;
    for (uint16_t i = 0; i < p->nseg && got < want; i++) {
        uint32_t n = MIN(want - got, p->seg[i].len);
        memcpy(p->hdr + got, p->seg[i].addr, n);
        got += n;
    }
    p->hdr_len = (uint16_t)got;
    return got == want ? 0 : -EINVAL;
}

void pkt_from_buffer(struct pkt *p, const void *buf, uint32_t len)
{
    memset(&p->vnet, 0, sizeof(p->vnet));
    p->len = len;
    p->nseg = 1;
    p->seg[0].addr = buf;
    p->seg[0].len = len;
    p->out_port = PKT_OUT_DROP;
    p->drop = 0;
    pkt_snapshot_header(p);
}
