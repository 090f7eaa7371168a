/*
 * The L2 forwarding decision for a burst: learn the sources, then look up the destinations,
 * in bulk (one pass over the table for both). PMD threads; lock-free except when a new source
 * is inserted (see fdb.c). Reads only the packets' private header copies (pkt_eth()), never
 * guest memory, so a guest rewriting its buffer cannot change a decision after the fact.
 */
#include "bridge.h"

#define CLASSIFY_BULK_MAX 64

static inline void pkt_drop(struct pkt *p, enum vsw_drop reason)
{
    p->out_port = PKT_OUT_DROP;
    p->drop = (uint16_t)reason;
}

static void classify_chunk(struct bridge_fdb *fdb, struct pkt *const pkts[], uint16_t n,
                           uint64_t now_ns)
{
    const struct vsw_mac *srcs[CLASSIFY_BULK_MAX], *dsts[CLASSIFY_BULK_MAX];
    uint32_t src_ports[CLASSIFY_BULK_MAX], dst_ports[CLASSIFY_BULK_MAX];
    uint16_t slot[CLASSIFY_BULK_MAX]; /* per packet: its destination's lookup slot */
    uint16_t n_src = 0, n_dst = 0;
    const struct vsw_mac *last_src = NULL, *last_dst = NULL;

    /* Pass 1: validate, collect sources and unicast destinations. A burst usually comes
     * from one sender and a flow's frames come in runs: each run of equal addresses is
     * probed once. */
    for (uint16_t i = 0; i < n; i++) {
        struct pkt *p = pkts[i];

        slot[i] = UINT16_MAX;
        if (p->len < ETH_HLEN || p->hdr_len < ETH_HLEN) {
            pkt_drop(p, VSW_DROP_RX_RUNT);
            continue;
        }
        const struct eth_hdr *eth = pkt_eth(p);
        if (vsw_mac_is_multicast(&eth->src)) {
            pkt_drop(p, VSW_DROP_RX_SRC_MCAST);
            continue;
        }
        p->out_port = PKT_OUT_FLOOD; /* until the lookup says otherwise */
        if (!last_src || !vsw_mac_equal(last_src, &eth->src) ||
            src_ports[n_src - 1] != p->in_port) {
            last_src = srcs[n_src] = &eth->src;
            src_ports[n_src] = p->in_port;
            n_src++;
        }
        if (vsw_mac_is_multicast(&eth->dst)) /* includes broadcast */
            continue;
        if (!last_dst || !vsw_mac_equal(last_dst, &eth->dst))
            last_dst = dsts[n_dst++] = &eth->dst;
        slot[i] = n_dst - 1;
    }
    if (n_src == 0)
        return;
    /*
     * Learnt before looked up, so a reply later in the same burst already finds the port of
     * a request earlier in it.
     */
    bridge_fdb_learn_lookup_bulk(fdb, srcs, src_ports, n_src, dsts, dst_ports, n_dst, now_ns);
    if (n_dst == 0)
        return;

    for (uint16_t i = 0; i < n; i++) {
        if (slot[i] == UINT16_MAX)
            continue;
        struct pkt *p = pkts[i];
        uint32_t port = dst_ports[slot[i]];
        if (port == BRIDGE_PORT_NONE)
            continue; /* unknown unicast: flood */
        if (port == p->in_port)
            pkt_drop(p, VSW_DROP_NO_DEST); /* the destination sits behind the ingress port */
        else
            p->out_port = (int32_t)port;
    }
}

void bridge_classify_burst(struct bridge_fdb *fdb, struct pkt *const pkts[], uint16_t n,
                           uint64_t now_ns)
{
    /* The contract is n <= 64; take longer bursts in chunks rather than overrun the arrays. */
    for (uint32_t base = 0; base < n; base += CLASSIFY_BULK_MAX)
        classify_chunk(fdb, pkts + base, (uint16_t)MIN(n - base, (uint32_t)CLASSIFY_BULK_MAX),
                       now_ns);
}
