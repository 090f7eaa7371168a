/*
 * vhost-user message handling: one handler per request, found through a table indexed by
 * request id that also says how large the payload must be and how many fds it carries.
 * Control thread only.
 *
 * Security model: no field of a message is trusted. The dispatcher checks the version flags,
 * the payload size and the fd count before a handler runs; handlers check every index, size
 * and address against what was negotiated and mapped. Any violation returns -EPROTO, which
 * ends this one connection (logged, rate-limited, and counted); fds not kept are closed.
 * A well-formed request we decline (an MTU above the bridge's) returns VU_REFUSED instead:
 * logged and counted, answered with a non-zero ack when the frontend asked for one, and the
 * connection stays.
 */
#include "vu_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MOD "vhost"

enum fd_rule { FDS_NONE, FDS_ONE_UNLESS_NOFD, FDS_PER_REGION, FDS_ONE };

#define VU_REFUSED 1

struct vu_handler {
    const char *name;
    /* Returns 0 (reply filled when the request has one), VU_REFUSED or -EPROTO. */
    int (*fn)(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds, unsigned nfds,
              struct vhost_user_msg *reply);
    uint32_t min_size, max_size; /* payload bytes */
    enum fd_rule fds;
    bool has_reply; /* the request always has a reply of its own */
};

static void reply_u64(struct vhost_user_msg *reply, uint64_t v)
{
    reply->hdr.size = sizeof(uint64_t);
    reply->payload.u64 = v;
}

static struct vu_queue *queue_of(struct vu_dev *dev, uint32_t index, const char *what)
{
    if (index >= VU_MAX_QUEUES) {
        VLOG_RL(WARN, MOD, "%s: %s for queue %u, only %u supported", dev->name, what, index,
                VU_MAX_QUEUES);
        return NULL;
    }
    return &dev->q[index];
}

static int h_get_features(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                          unsigned nfds, struct vhost_user_msg *reply)
{
    (void)dev, (void)msg, (void)fds, (void)nfds;
    reply_u64(reply, VU_OFFERED_FEATURES);
    return 0;
}

static int h_set_features(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                          unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    uint64_t f = msg->payload.u64;
    if (f & ~VU_OFFERED_FEATURES) {
        VLOG_RL(WARN, MOD, "%s: SET_FEATURES %#" PRIx64 " has bits we did not offer (%#" PRIx64 ")",
                dev->name, f, f & ~(uint64_t)VU_OFFERED_FEATURES);
        return -EPROTO;
    }
    if (f != dev->features) {
        /* The ring layout (split or packed) follows the features: translate again. */
        bool relayout = (f ^ dev->features) & (1ull << VIRTIO_F_RING_PACKED);
        VLOG_RL(INFO, MOD, "%s: features %#" PRIx64 " (%s rings)", dev->name, f,
                f & (1ull << VIRTIO_F_RING_PACKED) ? "packed" : "split");
        vu_dev_quiesce_all(dev);
        dev->features = f;
        dev->vnet_hdr_len =
            (f & ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF))) ? 12 : 10;
        for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
            /* Without protocol features a ring is enabled as soon as it starts. */
            if (!(f & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) && dev->q[i].started)
                dev->q[i].enabled = true;
            if (relayout && dev->q[i].addr_set && vu_queue_translate(dev, &dev->q[i]) < 0)
                dev->q[i].addr_set = false; /* the frontend must send SET_VRING_ADDR again */
            vu_queue_update_ready(dev, &dev->q[i]);
        }
    }
    return 0;
}

static int h_set_owner(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                       unsigned nfds, struct vhost_user_msg *reply)
{
    (void)msg, (void)fds, (void)nfds, (void)reply;
    dev->owner = true;
    return 0;
}

static int h_reset_owner(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                         unsigned nfds, struct vhost_user_msg *reply)
{
    (void)msg, (void)fds, (void)nfds, (void)reply;
    /* Same as a new connection: forget rings, memory and negotiation. */
    vu_dev_disconnect(dev);
    dev->connected = true;
    return 0;
}

static int h_get_protocol_features(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                                   unsigned nfds, struct vhost_user_msg *reply)
{
    (void)dev, (void)msg, (void)fds, (void)nfds;
    reply_u64(reply, VU_OFFERED_PROTOCOL_FEATURES);
    return 0;
}

static int h_set_protocol_features(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                                   unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    uint64_t f = msg->payload.u64;
    if (f & ~VU_OFFERED_PROTOCOL_FEATURES) {
        VLOG_RL(WARN, MOD, "%s: SET_PROTOCOL_FEATURES %#" PRIx64 " has bits we did not offer",
                dev->name, f);
        return -EPROTO;
    }
    dev->protocol_features = f;
    return 0;
}

static int h_get_queue_num(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                           unsigned nfds, struct vhost_user_msg *reply)
{
    (void)dev, (void)msg, (void)fds, (void)nfds;
    reply_u64(reply, VU_MAX_QUEUE_PAIRS);
    return 0;
}

static void retranslate_queues(struct vu_dev *dev);

static int h_set_mem_table(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                           unsigned nfds, struct vhost_user_msg *reply)
{
    (void)reply;
    const struct vhost_memory mt = msg->payload.memory, *mem = &mt;
    if (msg->hdr.size != offsetof(struct vhost_memory, regions) +
                             (uint64_t)mem->nregions * sizeof(struct vhost_memory_region)) {
        VLOG_RL(WARN, MOD, "%s: SET_MEM_TABLE size %u does not match %u regions", dev->name,
                msg->hdr.size, mem->nregions);
        return -EPROTO;
    }
    /* Rings point into the old mapping: stop them before it goes away. */
    vu_dev_quiesce_all(dev);
    int rc = vu_mem_map(&dev->mem, mem, fds, nfds, dev->name);
    retranslate_queues(dev); /* also on failure: the quiesce above stopped every queue */
    return rc ? -EPROTO : 0;
}

static int h_set_vring_num(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                           unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    const struct vhost_vring_state st = msg->payload.state, *s = &st;
    struct vu_queue *q = queue_of(dev, s->index, "SET_VRING_NUM");
    if (!q)
        return -EPROTO;
    if (s->num == 0 || s->num > VIRTQ_MAX_SIZE || (s->num & (s->num - 1))) {
        VLOG_RL(WARN, MOD, "%s: ring size %u is not a power of two in 1..%u", dev->name, s->num,
                VIRTQ_MAX_SIZE);
        return -EPROTO;
    }
    q->ready = false;
    if (dev->ops && dev->ops->quiesce)
        dev->ops->quiesce(dev->opaque);
    q->size = (uint16_t)s->num;
    q->addr_set = false; /* the ring layout depends on the size */
    vu_queue_update_ready(dev, q);
    return 0;
}

static int h_set_vring_addr(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                            unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    const struct vhost_vring_addr at = msg->payload.addr, *a = &at;
    struct vu_queue *q = queue_of(dev, a->index, "SET_VRING_ADDR");
    if (!q)
        return -EPROTO;
    if (a->flags & ~(1u << VHOST_VRING_F_LOG)) {
        VLOG_RL(WARN, MOD, "%s: SET_VRING_ADDR flags %#x unknown", dev->name, a->flags);
        return -EPROTO;
    }
    if (q->size == 0) {
        VLOG_RL(WARN, MOD, "%s: SET_VRING_ADDR for queue %u before SET_VRING_NUM", dev->name,
                a->index);
        return -EPROTO;
    }
    q->ready = false;
    if (dev->ops && dev->ops->quiesce)
        dev->ops->quiesce(dev->opaque);
    q->desc_uva = a->desc_user_addr;
    q->avail_uva = a->avail_user_addr;
    q->used_uva = a->used_user_addr;
    q->log_gpa = a->log_guest_addr;
    q->log_used = a->flags & (1u << VHOST_VRING_F_LOG);
    q->addr_set = true;
    if (vu_queue_translate(dev, q) < 0) {
        q->addr_set = false;
        return -EPROTO;
    }
    vu_queue_update_ready(dev, q);
    return 0;
}

static int h_set_vring_base(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                            unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    const struct vhost_vring_state st = msg->payload.state, *s = &st;
    struct vu_queue *q = queue_of(dev, s->index, "SET_VRING_BASE");
    if (!q)
        return -EPROTO;
    bool packed = vu_has_feature(dev, VIRTIO_F_RING_PACKED);
    if (!packed && s->num > 0xffff) {
        VLOG_RL(WARN, MOD, "%s: SET_VRING_BASE %u does not fit a split ring index", dev->name,
                s->num);
        return -EPROTO;
    }
    q->ready = false;
    if (dev->ops && dev->ops->quiesce)
        dev->ops->quiesce(dev->opaque);
    if (packed) {
        if (vu_packed_set_base(dev, q, s->num) < 0)
            return -EPROTO;
    } else {
        q->last_avail_idx = (uint16_t)s->num;
        q->last_used_idx = (uint16_t)s->num;
        q->shadow_used_idx = (uint16_t)s->num;
    }
    vu_queue_update_ready(dev, q);
    return 0;
}

static int h_get_vring_base(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                            unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds;
    const struct vhost_vring_state st = msg->payload.state, *s = &st;
    struct vu_queue *q = queue_of(dev, s->index, "GET_VRING_BASE");
    if (!q)
        return -EPROTO;
    /* Stops the ring: after the reply the frontend may reuse its memory. */
    q->ready = false;
    if (dev->ops && dev->ops->quiesce)
        dev->ops->quiesce(dev->opaque);
    q->started = false;
    if (q->kickfd >= 0)
        close(q->kickfd);
    q->kickfd = -1;
    reply->hdr.size = sizeof(struct vhost_vring_state);
    reply->payload.state.index = s->index;
    /* Packed: avail slot and wrap counter in bits 0-15, the used pair in bits 16-31. */
    reply->payload.state.num =
        vu_has_feature(dev, VIRTIO_F_RING_PACKED) ? vu_packed_get_base(q) : q->last_avail_idx;
    vu_queue_update_ready(dev, q);
    return 0;
}

/* SET_VRING_KICK / CALL / ERR: u64 index in bits 0-7, bit 8 = no fd. */
static int vring_fd_msg(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                        unsigned nfds, const char *what, struct vu_queue **qout, int *fdout)
{
    uint64_t v = msg->payload.u64;
    if (v & ~(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD)) {
        VLOG_RL(WARN, MOD, "%s: %s payload %#" PRIx64 " has unknown bits", dev->name, what, v);
        return -EPROTO;
    }
    struct vu_queue *q = queue_of(dev, (uint32_t)(v & VHOST_USER_VRING_IDX_MASK), what);
    if (!q)
        return -EPROTO;
    bool nofd = v & VHOST_USER_VRING_NOFD;
    if (nofd != (nfds == 0)) {
        VLOG_RL(WARN, MOD, "%s: %s with %u fds but no-fd flag %d", dev->name, what, nfds, nofd);
        return -EPROTO;
    }
    *qout = q;
    *fdout = nofd ? -1 : fds[0];
    if (!nofd)
        fds[0] = -1; /* kept */
    return 0;
}

static int h_set_vring_kick(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                            unsigned nfds, struct vhost_user_msg *reply)
{
    (void)reply;
    struct vu_queue *q;
    int fd;
    int rc = vring_fd_msg(dev, msg, fds, nfds, "SET_VRING_KICK", &q, &fd);
    if (rc)
        return rc;
    q->ready = false;
    if (dev->ops && dev->ops->quiesce)
        dev->ops->quiesce(dev->opaque);
    if (q->kickfd >= 0)
        close(q->kickfd);
    q->kickfd = fd;
    q->started = true;
    q->broken = false; /* a restart of the ring gives a broken queue another chance */
    if (!vu_has_feature(dev, VHOST_USER_F_PROTOCOL_FEATURES))
        q->enabled = true;
    vu_queue_update_ready(dev, q);
    return 0;
}

static int h_set_vring_call(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                            unsigned nfds, struct vhost_user_msg *reply)
{
    (void)reply;
    struct vu_queue *q;
    int fd;
    int rc = vring_fd_msg(dev, msg, fds, nfds, "SET_VRING_CALL", &q, &fd);
    if (rc)
        return rc;
    q->ready = false;
    if (dev->ops && dev->ops->quiesce)
        dev->ops->quiesce(dev->opaque);
    if (q->callfd >= 0)
        close(q->callfd);
    q->callfd = fd;
    vu_queue_update_ready(dev, q);
    return 0;
}

static int h_set_vring_err(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                           unsigned nfds, struct vhost_user_msg *reply)
{
    (void)reply;
    struct vu_queue *q;
    int fd;
    int rc = vring_fd_msg(dev, msg, fds, nfds, "SET_VRING_ERR", &q, &fd);
    if (rc)
        return rc;
    if (q->errfd >= 0)
        close(q->errfd);
    q->errfd = fd;
    return 0;
}

static int h_set_vring_enable(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                              unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    const struct vhost_vring_state st = msg->payload.state, *s = &st;
    struct vu_queue *q = queue_of(dev, s->index, "SET_VRING_ENABLE");
    if (!q)
        return -EPROTO;
    if (s->num > 1) {
        VLOG_RL(WARN, MOD, "%s: SET_VRING_ENABLE value %u", dev->name, s->num);
        return -EPROTO;
    }
    if (q->enabled && !s->num) {
        q->ready = false;
        if (dev->ops && dev->ops->quiesce)
            dev->ops->quiesce(dev->opaque);
    }
    __atomic_store_n(&q->enabled, s->num != 0, __ATOMIC_RELAXED);
    vu_queue_update_ready(dev, q);
    return 0;
}

static int h_get_max_mem_slots(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                               unsigned nfds, struct vhost_user_msg *reply)
{
    (void)dev, (void)msg, (void)fds, (void)nfds;
    reply_u64(reply, VU_MAX_MEM_SLOTS);
    return 0;
}

/* After the log changed (every queue quiesced): queues start again, on the new log. */
static void refresh_queues(struct vu_dev *dev)
{
    for (unsigned i = 0; i < VU_MAX_QUEUES; i++)
        vu_queue_update_ready(dev, &dev->q[i]);
}

/* After the memory layout changed: ring addresses may now point nowhere. */
static void retranslate_queues(struct vu_dev *dev)
{
    for (unsigned i = 0; i < VU_MAX_QUEUES; i++) {
        struct vu_queue *q = &dev->q[i];
        if (q->addr_set && vu_queue_translate(dev, q) < 0)
            q->addr_set = false; /* the frontend must send SET_VRING_ADDR again */
        vu_queue_update_ready(dev, q);
    }
}

static int h_add_mem_reg(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                         unsigned nfds, struct vhost_user_msg *reply)
{
    (void)nfds, (void)reply;
    const struct vhost_memory_single one = msg->payload.mem_reg;
    /* Adding never moves existing mappings, but the table itself changes under the PMDs. */
    vu_dev_quiesce_all(dev);
    int rc = vu_mem_add(&dev->mem, &one.region, fds[0], dev->name);
    retranslate_queues(dev);
    return rc ? -EPROTO : 0;
}

static int h_rem_mem_reg(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                         unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    const struct vhost_memory_single one = msg->payload.mem_reg;
    vu_dev_quiesce_all(dev); /* no PMD may touch the region we unmap */
    int rc = vu_mem_remove(&dev->mem, &one.region, dev->name);
    retranslate_queues(dev);
    return rc ? -EPROTO : 0;
}

static int h_set_status(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                        unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    if (msg->payload.u64 > 0xff) {
        VLOG_RL(WARN, MOD, "%s: SET_STATUS %#" PRIx64 " is not a status byte", dev->name,
                (uint64_t)msg->payload.u64);
        return -EPROTO;
    }
    dev->status = (uint8_t)msg->payload.u64;
    return 0;
}

static int h_get_status(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                        unsigned nfds, struct vhost_user_msg *reply)
{
    (void)msg, (void)fds, (void)nfds;
    reply_u64(reply, dev->status);
    return 0;
}

static bool has_protocol_feature(const struct vu_dev *dev, unsigned bit, const char *what)
{
    if (dev->protocol_features & (1ull << bit))
        return true;
    VLOG_RL(WARN, MOD, "%s: %s without its protocol feature", dev->name, what);
    return false;
}

/* The frontend's MTU: accepted up to the bridge's (the owner's limit); recorded on the device. */
static int h_net_set_mtu(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                         unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    if (!has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_NET_MTU, "NET_SET_MTU"))
        return -EPROTO;
    uint64_t mtu = msg->payload.u64;
    if (mtu < VU_MIN_MTU || mtu > dev->mtu_limit) {
        VLOG_RL(WARN, MOD, "%s: NET_SET_MTU %" PRIu64 " refused: the bridge allows %u..%u",
                dev->name, mtu, VU_MIN_MTU, dev->mtu_limit);
        return VU_REFUSED;
    }
    __atomic_store_n(&dev->mtu, (uint16_t)mtu, __ATOMIC_RELAXED);
    VLOG_RL(INFO, MOD, "%s: MTU %" PRIu64, dev->name, mtu);
    return 0;
}

/* The dirty log for live migration; its fd is in the message (LOG_SHMFD). */
static int h_set_log_base(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                          unsigned nfds, struct vhost_user_msg *reply)
{
    (void)nfds;
    if (!has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_LOG_SHMFD, "SET_LOG_BASE"))
        return -EPROTO;
    const struct vhost_user_log l = msg->payload.log;
    /* The PMDs write into the old log until they let go of it. */
    vu_dev_quiesce_all(dev);
    int rc = vu_log_map(dev, &l, fds[0]); /* the fd is closed by the caller: the map stays */
    refresh_queues(dev);
    if (rc)
        return -EPROTO;
    /* QEMU waits for a reply once the log is mapped (it then starts using it). */
    reply_u64(reply, 0);
    return 0;
}

static int h_set_log_fd(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                        unsigned nfds, struct vhost_user_msg *reply)
{
    (void)msg, (void)nfds, (void)reply;
    if (!has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_LOG_SHMFD, "SET_LOG_FD"))
        return -EPROTO;
    if (dev->log_fd >= 0)
        close(dev->log_fd);
    dev->log_fd = fds[0];
    fds[0] = -1; /* kept */
    return 0;
}

/* After a migration the frontend asks us to announce the guest's MAC (RARP broadcast). */
static int h_send_rarp(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                       unsigned nfds, struct vhost_user_msg *reply)
{
    (void)fds, (void)nfds, (void)reply;
    if (!has_protocol_feature(dev, VHOST_USER_PROTOCOL_F_RARP, "SEND_RARP"))
        return -EPROTO;
    struct vsw_mac mac;
    memcpy(mac.b, msg->payload.raw, ETH_ALEN);
    char buf[18];
    if (vsw_mac_is_multicast(&mac) || vsw_mac_is_zero(&mac) || !dev->ops || !dev->ops->send_rarp) {
        VLOG_RL(WARN, MOD, "%s: SEND_RARP for %s refused", dev->name, vsw_mac_format(&mac, buf));
        return VU_REFUSED;
    }
    VLOG_RL(INFO, MOD, "%s: SEND_RARP %s", dev->name, vsw_mac_format(&mac, buf));
    dev->ops->send_rarp(dev->opaque, &mac);
    return 0;
}

static int h_reset_device(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                          unsigned nfds, struct vhost_user_msg *reply)
{
    return h_reset_owner(dev, msg, fds, nfds, reply);
}

#define PAYLOAD(member) sizeof(((union vhost_user_payload *)0)->member)

/* Requests we do not list are refused: we never offered the features that use them. */
static const struct vu_handler handlers[VHOST_USER_MAX_REQUEST] = {
    [VHOST_USER_GET_FEATURES] = {"GET_FEATURES", h_get_features, 0, 0, FDS_NONE, true},
    [VHOST_USER_SET_FEATURES] = {"SET_FEATURES", h_set_features, 8, 8, FDS_NONE, false},
    [VHOST_USER_SET_OWNER] = {"SET_OWNER", h_set_owner, 0, 0, FDS_NONE, false},
    [VHOST_USER_RESET_OWNER] = {"RESET_OWNER", h_reset_owner, 0, 8, FDS_NONE, false},
    [VHOST_USER_SET_MEM_TABLE] = {"SET_MEM_TABLE", h_set_mem_table, 8 + 32, PAYLOAD(memory),
                                  FDS_PER_REGION, false},
    [VHOST_USER_SET_LOG_BASE] = {"SET_LOG_BASE", h_set_log_base, PAYLOAD(log), PAYLOAD(log),
                                 FDS_ONE, true},
    [VHOST_USER_SET_LOG_FD] = {"SET_LOG_FD", h_set_log_fd, 0, 8, FDS_ONE, false},
    [VHOST_USER_SET_VRING_NUM] = {"SET_VRING_NUM", h_set_vring_num, 8, 8, FDS_NONE, false},
    [VHOST_USER_SET_VRING_ADDR] = {"SET_VRING_ADDR", h_set_vring_addr, PAYLOAD(addr), PAYLOAD(addr),
                                   FDS_NONE, false},
    [VHOST_USER_SET_VRING_BASE] = {"SET_VRING_BASE", h_set_vring_base, 8, 8, FDS_NONE, false},
    [VHOST_USER_GET_VRING_BASE] = {"GET_VRING_BASE", h_get_vring_base, 8, 8, FDS_NONE, true},
    [VHOST_USER_SET_VRING_KICK] = {"SET_VRING_KICK", h_set_vring_kick, 8, 8, FDS_ONE_UNLESS_NOFD,
                                   false},
    [VHOST_USER_SET_VRING_CALL] = {"SET_VRING_CALL", h_set_vring_call, 8, 8, FDS_ONE_UNLESS_NOFD,
                                   false},
    [VHOST_USER_SET_VRING_ERR] = {"SET_VRING_ERR", h_set_vring_err, 8, 8, FDS_ONE_UNLESS_NOFD,
                                  false},
    [VHOST_USER_GET_PROTOCOL_FEATURES] = {"GET_PROTOCOL_FEATURES", h_get_protocol_features, 0, 0,
                                          FDS_NONE, true},
    [VHOST_USER_SET_PROTOCOL_FEATURES] = {"SET_PROTOCOL_FEATURES", h_set_protocol_features, 8, 8,
                                          FDS_NONE, false},
    [VHOST_USER_GET_QUEUE_NUM] = {"GET_QUEUE_NUM", h_get_queue_num, 0, 0, FDS_NONE, true},
    [VHOST_USER_SET_VRING_ENABLE] = {"SET_VRING_ENABLE", h_set_vring_enable, 8, 8, FDS_NONE, false},
    [VHOST_USER_SEND_RARP] = {"SEND_RARP", h_send_rarp, 8, 8, FDS_NONE, false},
    [VHOST_USER_NET_SET_MTU] = {"NET_SET_MTU", h_net_set_mtu, 8, 8, FDS_NONE, false},
    [VHOST_USER_RESET_DEVICE] = {"RESET_DEVICE", h_reset_device, 0, 8, FDS_NONE, false},
    [VHOST_USER_GET_MAX_MEM_SLOTS] = {"GET_MAX_MEM_SLOTS", h_get_max_mem_slots, 0, 0, FDS_NONE,
                                      true},
    [VHOST_USER_ADD_MEM_REG] = {"ADD_MEM_REG", h_add_mem_reg, PAYLOAD(mem_reg), PAYLOAD(mem_reg),
                                FDS_ONE, false},
    /* QEMU sends the region's fd with REM_MEM_REG, other frontends do not: both are fine. */
    [VHOST_USER_REM_MEM_REG] = {"REM_MEM_REG", h_rem_mem_reg, PAYLOAD(mem_reg), PAYLOAD(mem_reg),
                                FDS_ONE_UNLESS_NOFD, false},
    [VHOST_USER_SET_STATUS] = {"SET_STATUS", h_set_status, 8, 8, FDS_NONE, false},
    [VHOST_USER_GET_STATUS] = {"GET_STATUS", h_get_status, 0, 0, FDS_NONE, true},
};

static void close_fds(int *fds, unsigned nfds)
{
    for (unsigned i = 0; i < nfds; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

static const char *request_name(uint32_t req)
{
    switch (req) {
#define VU_REQ_NAME_(name, id)                                                                     \
    case id:                                                                                       \
        return #name;
        VHOST_USER_REQUESTS(VU_REQ_NAME_)
#undef VU_REQ_NAME_
    default:
        return "unknown";
    }
}

static int validate(struct vu_dev *dev, const struct vhost_user_msg *msg, unsigned nfds,
                    const struct vu_handler **hout)
{
    uint32_t req = msg->hdr.request;
    if ((msg->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
        (msg->hdr.flags & ~(VHOST_USER_VERSION_MASK | VHOST_USER_NEED_REPLY))) {
        VLOG_RL(WARN, MOD, "%s: message %u with bad flags %#x", dev->name, req, msg->hdr.flags);
        return -EPROTO;
    }
    const struct vu_handler *h = req < VHOST_USER_MAX_REQUEST ? &handlers[req] : NULL;
    if (!h || !h->fn) {
        VLOG_RL(WARN, MOD, "%s: unsupported request %u (%s)", dev->name, req, request_name(req));
        return -EPROTO;
    }
    if (msg->hdr.size < h->min_size || msg->hdr.size > h->max_size) {
        VLOG_RL(WARN, MOD, "%s: %s payload of %u bytes, want %u..%u", dev->name, h->name,
                msg->hdr.size, h->min_size, h->max_size);
        return -EPROTO;
    }
    bool fds_ok;
    switch (h->fds) {
    case FDS_NONE:
        fds_ok = nfds == 0;
        break;
    case FDS_ONE:
        fds_ok = nfds == 1;
        break;
    case FDS_ONE_UNLESS_NOFD:
        fds_ok = nfds <= 1; /* the handler matches it against the no-fd flag */
        break;
    case FDS_PER_REGION:
        fds_ok = nfds >= 1; /* the handler matches it against the region count */
        break;
    default:
        fds_ok = false;
    }
    if (!fds_ok) {
        VLOG_RL(WARN, MOD, "%s: %s with %u fds", dev->name, h->name, nfds);
        return -EPROTO;
    }
    *hout = h;
    return 0;
}

int vu_dev_process_msg(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                       unsigned nfds, struct vhost_user_msg *reply, bool *reply_out)
{
    const struct vu_handler *h = NULL;
    *reply_out = false;
    memset(&reply->hdr, 0, sizeof(reply->hdr));
    int rc = validate(dev, msg, nfds, &h);
    if (rc == 0) {
        rc = h->fn(dev, msg, fds, nfds, reply);
        if (rc < 0)
            VLOG_RL(WARN, MOD, "%s: %s refused, closing the connection", dev->name, h->name);
    }
    close_fds(fds, nfds);
    if (rc < 0) {
        __atomic_add_fetch(&dev->msg_errors, 1, __ATOMIC_RELAXED);
        return -EPROTO;
    }
    __atomic_add_fetch(&dev->msgs, 1, __ATOMIC_RELAXED);
    if (rc == VU_REFUSED)
        __atomic_add_fetch(&dev->msg_refused, 1, __ATOMIC_RELAXED);
    reply->hdr.request = msg->hdr.request;
    reply->hdr.flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK;
    if (h->has_reply) {
        *reply_out = true;
    } else if ((msg->hdr.flags & VHOST_USER_NEED_REPLY) &&
               (dev->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK))) {
        reply_u64(reply, rc == VU_REFUSED ? 1 : 0);
        *reply_out = true;
    }
    return 0;
}

void vu_rx_reset(struct vu_dev *dev)
{
    close_fds(dev->rx.fds, dev->rx.nfds);
    dev->rx.nfds = 0;
    dev->rx.have = 0;
}

/*
 * Read what the socket has of the current message, without blocking: a frontend that sends a
 * message in pieces, or stalls in the middle of one, only delays itself — the control thread
 * goes back to its loop and we continue when epoll reports more. Each read stops at the
 * message's end (the header first, then the payload its size announces), so fds that arrive
 * belong to this message. Returns 1 when the message is complete, 0 when more is to come,
 * or a negative errno (-EPROTO: counted as a malformed message).
 */
static int rx_more(struct vu_dev *dev, int fd)
{
    struct vu_rx *rx = &dev->rx;
    const size_t hlen = sizeof(rx->msg.hdr);
    for (;;) {
        size_t total = rx->have < hlen ? hlen : hlen + rx->msg.hdr.size;
        if (rx->have == total)
            return 1;
        char control[CMSG_SPACE(sizeof(int) * VHOST_USER_MAX_FDS)];
        struct iovec iov = {.iov_base = rx->have < hlen
                                            ? (char *)&rx->msg.hdr + rx->have
                                            : (char *)&rx->msg.payload + (rx->have - hlen),
                            .iov_len = total - rx->have};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = control,
                            .msg_controllen = sizeof(control)};
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n == 0)
            return -ECONNRESET;
        if (n < 0)
            return -errno;
        bool too_many = mh.msg_flags & MSG_CTRUNC;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            unsigned cnt = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            for (unsigned i = 0; i < cnt; i++) {
                int one;
                memcpy(&one, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                if (rx->nfds < VHOST_USER_MAX_FDS)
                    rx->fds[rx->nfds++] = one;
                else {
                    close(one);
                    too_many = true;
                }
            }
        }
        if (too_many) {
            VLOG_RL(WARN, MOD, "%s: message carried more than %d fds", dev->name,
                    VHOST_USER_MAX_FDS);
            return -EPROTO;
        }
        rx->have += (size_t)n;
        if (rx->have == hlen && rx->msg.hdr.size > sizeof(rx->msg.payload)) {
            VLOG_RL(WARN, MOD, "%s: message %u claims %u payload bytes (max %zu)", dev->name,
                    rx->msg.hdr.request, rx->msg.hdr.size, sizeof(rx->msg.payload));
            return -EPROTO;
        }
    }
}

int vu_dev_handle_msg(struct vu_dev *dev, int fd)
{
    int rc = rx_more(dev, fd);
    if (rc == 0)
        return -EAGAIN;
    if (rc < 0) {
        vu_rx_reset(dev);
        if (rc == -EPROTO)
            __atomic_add_fetch(&dev->msg_errors, 1, __ATOMIC_RELAXED);
        return rc;
    }
    /* Complete: take it out of dev->rx (the handlers close the fds). */
    struct vhost_user_msg msg, reply;
    int fds[VHOST_USER_MAX_FDS];
    unsigned nfds = dev->rx.nfds;
    memcpy(&msg, &dev->rx.msg, sizeof(msg.hdr) + dev->rx.msg.hdr.size);
    memcpy(fds, dev->rx.fds, sizeof(int) * nfds);
    dev->rx.nfds = 0;
    dev->rx.have = 0;
    VLOG(DEBUG, MOD, "%s: %s size %u fds %u", dev->name, request_name(msg.hdr.request),
         msg.hdr.size, nfds);

    bool has_reply;
    rc = vu_dev_process_msg(dev, &msg, fds, nfds, &reply, &has_reply);
    if (rc)
        return rc;
    if (has_reply) {
        /* Replies are small; a frontend whose socket buffer is full of unread replies is
         * not waited for. */
        size_t len = sizeof(reply.hdr) + reply.hdr.size;
        ssize_t w;
        do {
            w = send(fd, &reply, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (w < 0 && errno == EINTR);
        if (w != (ssize_t)len)
            return w < 0 ? -errno : -EIO;
    }
    return 0;
}
