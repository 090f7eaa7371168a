/*
 * Offload features of a vhost-user device: which offloads a guest negotiated, and the check
 * of the virtio-net header of each frame it transmits against them. PMD threads (the check,
 * per frame that asks for an offload) and any thread (the accessors); no locks: the features
 * are read with relaxed loads, as SET_FEATURES changes them only while the rings are quiesced.
 */
#include "offload.h"
#include "vu_int.h"

#define MOD "vhost"

static uint32_t offloads_of(uint64_t f, unsigned csum, unsigned tso4, unsigned tso6, unsigned ecn)
{
    uint32_t caps = 0;
    if (f & (1ull << csum))
        caps |= OFFLOAD_CSUM;
    if (f & (1ull << tso4))
        caps |= OFFLOAD_TSO4;
    if (f & (1ull << tso6))
        caps |= OFFLOAD_TSO6;
    if (f & (1ull << ecn))
        caps |= OFFLOAD_ECN;
    /* TSO and ECN depend on CSUM (virtio 5.1.3.1): a driver that acked them alone gets none. */
    return offload_caps_normalize(caps);
}

uint32_t vu_dev_rx_offloads(const struct vu_dev *dev)
{
    return offloads_of(__atomic_load_n(&dev->features, __ATOMIC_RELAXED), VIRTIO_NET_F_GUEST_CSUM,
                       VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_ECN);
}

uint32_t vu_dev_tx_offloads(const struct vu_dev *dev)
{
    return offloads_of(__atomic_load_n(&dev->features, __ATOMIC_RELAXED), VIRTIO_NET_F_CSUM,
                       VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_HOST_ECN);
}

bool vu_vnet_hdr_ok(const struct vu_dev *dev, const struct pkt *p)
{
    const char *why = "?";
    if (offload_validate(p, vu_dev_tx_offloads(dev), &why) == 0)
        return true;
    VLOG_RL(WARN, MOD,
            "%s: dropping a frame with a bad virtio-net header: %s (flags %#x gso_type %#x "
            "gso_size %u hdr_len %u csum_start %u csum_offset %u, frame %u bytes)",
            dev->name, why, p->vnet.flags, p->vnet.gso_type, p->vnet.gso_size, p->vnet.hdr_len,
            p->vnet.csum_start, p->vnet.csum_offset, p->len);
    return false;
}
