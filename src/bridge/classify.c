/*
 * The L2 forwarding decision for a burst: learn the sources, then look up the destinations,
 * both in bulk (one hash probe pass each). PMD threads; lock-free except when a new source
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
    const struct vsw_mac *macs[CLASSIFY_BULK_MAX];
    uint32_t ports[CLASSIFY_BULK_MAX];
    uint16_t slot[CLASSIFY_BULK_MAX]; /* per packet: its destination's lookup slot */
    uint16_t n_src = 0, n_dst = 0;
    const struct vsw_mac *last = NULL;

    /* Pass 1: validate and collect sources. */
    for (uint16_t i = 0; i < n; i++) {
        struct pkt *p = pkts[i];

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
        /* A burst usually comes from one sender: probe each run of equal sources once. */
        if (last && vsw_mac_equal(last, &eth->src) && ports[n_src - 1] == p->in_port)
            continue;
        last = macs[n_src] = &eth->src;
        ports[n_src] = p->in_port;
        n_src++;
    }
    if (n_src == 0)
        return;
    /*
     * Learn before looking up, so a reply later in the same burst already finds the port of
     * a request earlier in it.
     */
    bridge_fdb_learn_bulk(fdb, macs, ports, n_src, now_ns);

    /* Pass 2: unicast destinations of the surviving packets; runs of equal ones share a
     * probe (a flow's frames come in runs). */
    last = NULL;
    for (uint16_t i = 0; i < n; i++) {
        struct pkt *p = pkts[i];

        slot[i] = UINT16_MAX;
        if (p->out_port != PKT_OUT_FLOOD)
            continue;
        const struct eth_hdr *eth = pkt_eth(p);
        if (vsw_mac_is_multicast(&eth->dst)) /* includes broadcast */
            continue;
        if (!last || !vsw_mac_equal(last, &eth->dst))
            last = macs[n_dst++] = &eth->dst;
        slot[i] = n_dst - 1;
    }
    if (n_dst == 0)
        return;
    bridge_fdb_lookup_bulk(fdb, macs, ports, n_dst, now_ns);

    for (uint16_t i = 0; i < n; i++) {
        if (slot[i] == UINT16_MAX)
            continue;
        struct pkt *p = pkts[i];
        uint32_t port = ports[slot[i]];
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
