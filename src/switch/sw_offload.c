/*
 * Software offloads for destinations that cannot take a frame's requests (see sw_offload.h).
 * PMD thread; the segments are built in the PMD's scratch packets (SW_BURST of them,
 * allocated when the PMD starts), and each group of them is handed to tx_burst, which copies
 * them before returning, so the scratch is free again for the next group. The order of frames
 * to one destination is kept.
 *
 * The source frame's headers were checked when it entered the switch (the vhost-user port
 * drops a frame whose virtio-net header does not match it or asks for what its guest did
 * not negotiate), so the requests here are known to fit the frame's private header copy.
 */
#include "sw_offload.h"

#define MOD "offload"

struct tx_batch {
    struct sw_port *port;
    uint16_t qid;
    uint16_t nout, nscr;
    struct pkt *scr; /* SW_BURST scratch packets */
    struct pkt *out[SW_BURST];
};

static void batch_flush(struct tx_batch *b)
{
    if (b->nout)
        b->port->cls->tx_burst(b->port, b->qid, b->out, b->nout);
    b->nout = 0;
    b->nscr = 0;
}

static void batch_add(struct tx_batch *b, struct pkt *p)
{
    b->out[b->nout++] = p;
    if (b->nout == SW_BURST)
        batch_flush(b);
}

/* Room for k more scratch packets, flushing what is pending if needed. */
static struct pkt *batch_scratch(struct tx_batch *b, uint16_t *room)
{
    if (b->nscr == SW_BURST || b->nout == SW_BURST)
        batch_flush(b);
    *room = (uint16_t)MIN(SW_BURST - b->nscr, SW_BURST - b->nout);
    return &b->scr[b->nscr];
}

static void segment(struct sw_pmd *pmd, struct tx_batch *b, const struct pkt *p)
{
    struct offload_tso t;
    const char *why = "?";
    if (offload_tso_init(&t, p, &why) == 0) {
        for (;;) {
            uint16_t room;
            struct pkt *s = batch_scratch(b, &room);
            int k = offload_tso_next(&t, s, room);
            if (k == 0)
                return;
            if (k < 0) {
                why = "a segment would span more buffers than a packet holds";
                break;
            }
            for (int i = 0; i < k; i++)
                b->out[b->nout++] = &b->scr[b->nscr++];
        }
    }
    /* Segments already queued go out; the rest of the frame is lost, like a lost frame. */
    pmd->stats.drops[VSW_DROP_TX_OFFLOAD]++;
    VLOG_RL(WARN, MOD, "pmd %u: cannot segment a %u-byte TSO frame for port %s: %s", pmd->id,
            p->len, b->port->name, why);
}

void sw_offload_tx(struct sw_pmd *pmd, struct sw_port *port, struct pkt *const *pkts, uint16_t n)
{
    const struct port_class *cls = port->cls;
    uint32_t caps = cls->tx_offloads ? offload_caps_normalize(cls->tx_offloads(port)) : 0;
    struct tx_batch b = {.port = port, .qid = (uint16_t)pmd->id, .scr = pmd->offload_scratch};

    for (uint16_t i = 0; i < n; i++) {
        struct pkt *p = pkts[i];
        uint32_t needs = offload_needs(p);
        if (!(needs & ~caps)) {
            batch_add(&b, p);
        } else if (offload_needs_segmentation(needs, caps)) {
            segment(pmd, &b, p);
        } else {
            uint16_t room;
            struct pkt *s = batch_scratch(&b, &room);
            offload_csum_finish(s, p);
            b.nscr++;
            batch_add(&b, s);
        }
    }
    batch_flush(&b);
}
