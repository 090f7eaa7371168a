/*
 * Offloads on the way out of the switch: a destination gets each frame's virtio-net offload
 * requests (partial checksum, TSO) as they are when it accepts them, and the finished work
 * (checksum completed, TSO frame cut into segments) when it does not. Each destination of a
 * flooded frame decides for itself. PMD threads; no locks, no allocation.
 */
#ifndef VSW_SW_OFFLOAD_H
#define VSW_SW_OFFLOAD_H

#include "offload.h"
#include "sw_int.h"

/* The slow path of sw_port_tx(): some frame of the batch asks for an offload. */
void sw_offload_tx(struct sw_pmd *pmd, struct sw_port *port, struct pkt *const *pkts, uint16_t n);

/*
 * Hand a batch to port->cls->tx_burst. A batch in which no frame asks for an offload (all
 * virtio-net headers zero: the common case without offloads) costs one OR per frame and one
 * branch per batch on top of tx_burst.
 */
static inline void sw_port_tx(struct sw_pmd *pmd, struct sw_port *port, struct pkt *const *pkts,
                              uint16_t n)
{
    uint8_t any = 0;
    for (uint16_t i = 0; i < n; i++)
        any |= pkts[i]->vnet.flags | pkts[i]->vnet.gso_type;
    if (any)
        sw_offload_tx(pmd, port, pkts, n);
    else
        port->cls->tx_burst(port, (uint16_t)pmd->id, pkts, n);
}

#endif
