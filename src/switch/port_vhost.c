/*
 * vhost-user port type: a server-mode unix socket per port, one frontend connection at a
 * time, messages handled on the control thread, rings served by the PMDs through the
 * vhost_user datapath. A frontend that sends a malformed message loses its connection (it
 * may reconnect); the port and every other port go on.
 *
 * MTU: the port's MTU is the bridge's, or the smaller one a guest set with NET_SET_MTU; frames
 * longer than it (plus Ethernet and VLAN header) are dropped at egress (tx_mtu_exceeded), GSO
 * frames excepted (the guest accepted them as such). SEND_RARP: the control thread leaves the
 * MAC in rarp_req; the PMD polling the port's queue 0 turns it into a RARP broadcast that
 * enters the bridge as if the guest had sent it (so the FDB relearns the MAC here).
 */
#include "sw_int.h"
#include "vhost_user.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MOD "port"

struct vhost_port {
    struct sw_port *port;
    struct vu_dev *dev;
    int listen_fd;
    int conn_fd;
    uint16_t npairs;    /* ready queue pairs, for the PMDs' choice of RX queue (relaxed) */
    bool changed;       /* queue state changed: republish after this message */
    uint32_t br_mtu;    /* the bridge's MTU (control thread) */
    uint32_t max_frame; /* egress: the longest frame, MTU + Ethernet and VLAN header (relaxed) */
    uint64_t mtu_drops; /* frames dropped at egress for the MTU (any PMD, atomic) */
    uint64_t rarp_req;  /* VP_RARP_PENDING | MAC in bits 0-47: an announcement to send (atomic) */
    uint64_t rarp_sent; /* announcements injected (PMD of queue 0, relaxed) */
    bool rarp_inflight; /* PMD of queue 0: the last packet of its rx_burst is our RARP */
    uint8_t rarp_frame[60]; /* the minimum Ethernet frame, as QEMU's announcement */
};

#define VP_RARP_PENDING (1ull << 63)
#define VP_VLAN_HLEN    4

static struct vhost_port *vp_of(const struct sw_port *port)
{
    return port->priv;
}

static void vp_quiesce(void *opaque)
{
    struct vhost_port *vp = opaque;
    sw_rcu_sync(vp->port->sw);
}

static void vp_state_changed(void *opaque)
{
    struct vhost_port *vp = opaque;
    vp->changed = true;
}

static void vp_send_rarp(void *opaque, const struct vsw_mac *mac)
{
    struct vhost_port *vp = opaque;
    uint64_t v = VP_RARP_PENDING;
    for (int i = 0; i < ETH_ALEN; i++)
        v |= (uint64_t)mac->b[i] << (8 * i);
    /* A second request before the PMD took the first replaces it: one announcement of the
     * latest MAC is what the frontend wants. */
    __atomic_store_n(&vp->rarp_req, v, __ATOMIC_RELEASE);
    sw_pmds_wake(vp->port->sw); /* the PMD of queue 0 may be asleep on the guest's kicks */
}

static const struct vu_dev_ops vp_ops = {
    .quiesce = vp_quiesce, .state_changed = vp_state_changed, .send_rarp = vp_send_rarp};

/* The port's MTU: the guest's (accepted only up to the bridge's), else the bridge's. */
static uint32_t vp_mtu(const struct vhost_port *vp)
{
    uint32_t g = vu_dev_mtu(vp->dev);
    return g && g < vp->br_mtu ? g : vp->br_mtu;
}

static void vp_update_mtu(struct vhost_port *vp)
{
    __atomic_store_n(&vp->max_frame, vp_mtu(vp) + ETH_HLEN + VP_VLAN_HLEN, __ATOMIC_RELAXED);
}

static void vp_after_change(struct vhost_port *vp)
{
    vp_update_mtu(vp); /* NET_SET_MTU, or a disconnect that forgot the guest's MTU */
    if (!vp->changed)
        return;
    vp->changed = false;
    __atomic_store_n(&vp->npairs, vu_dev_num_queue_pairs(vp->dev), __ATOMIC_RELAXED);
    sw_publish(vp->port->sw);
}

static void vp_drop_conn(struct vhost_port *vp)
{
    if (vp->conn_fd < 0)
        return;
    vsw_loop_del_fd(vp->port->sw->loop, vp->conn_fd);
    close(vp->conn_fd);
    vp->conn_fd = -1;
    vu_dev_disconnect(vp->dev);
    __atomic_store_n(&vp->rarp_req, 0, __ATOMIC_RELAXED); /* the old connection's announcement */
    vp_after_change(vp);
    /* A client port tries again at the next tick (the frontend may be restarting). */
}

static void vp_on_msg(int fd, uint32_t events, void *arg)
{
    struct vhost_port *vp = arg;
    (void)events;
    int rc = vu_dev_handle_msg(vp->dev, fd);
    if (rc == -EAGAIN) /* the rest of the message is still on its way */
        return;
    if (rc == -ECONNRESET) {
        VLOG(INFO, MOD, "%s: frontend disconnected", vp->port->name);
        vp_drop_conn(vp);
        return;
    }
    if (rc < 0) {
        VLOG_RL(WARN, MOD, "%s: closing the vhost-user connection: %s", vp->port->name,
                rc == -EPROTO ? "malformed message" : strerror(-rc));
        vp_drop_conn(vp);
        return;
    }
    vp_after_change(vp);
}

/* Take a connected socket (accepted, or connected in client mode) as this port's frontend. */
static int vp_attach(struct vhost_port *vp, int c)
{
    /* No timeouts: vu_dev_handle_msg() never blocks on the frontend. */
    int rc = vsw_loop_add_fd(vp->port->sw->loop, c, EPOLLIN, vp_on_msg, vp);
    if (rc < 0) {
        close(c);
        return rc;
    }
    vp->conn_fd = c;
    vu_dev_set_connected(vp->dev);
    VLOG(INFO, MOD, "%s: frontend connected", vp->port->name);
    return 0;
}

static void vp_on_accept(int fd, uint32_t events, void *arg)
{
    struct vhost_port *vp = arg;
    (void)events;
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    if (vp->conn_fd >= 0) {
        VLOG_RL(WARN, MOD, "%s: refusing a second vhost-user connection", vp->port->name);
        close(c);
        return;
    }
    vp_attach(vp, c);
}

/* Client mode: one connection attempt; failures are quiet (the frontend may not be up yet). */
static void vp_try_connect(struct vhost_port *vp)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", vp->port->path);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0)
        return;
    if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        VLOG(DEBUG, MOD, "%s: connect %s: %s", vp->port->name, sa.sun_path, strerror(errno));
        close(c);
        return;
    }
    vp_attach(vp, c);
}

static void vp_tick(struct sw_port *port)
{
    struct vhost_port *vp = port->priv;
    if (port->mode == VSW_PORT_CLIENT && vp->conn_fd < 0)
        vp_try_connect(vp);
}

static int vp_open(struct sw_port *port, struct vsw_err *err)
{
    struct vhost_port *vp = calloc(1, sizeof(*vp));
    if (!vp)
        return -ENOMEM;
    vp->port = port;
    vp->conn_fd = -1;
    vp->br_mtu = VSW_MTU_DEFAULT; /* until the switch calls set_mtu, right after open */
    vp->dev = vu_dev_create(port->name, &vp_ops, vp);
    if (!vp->dev) {
        free(vp);
        return -ENOMEM;
    }
    vp->listen_fd = -1;
    if (port->mode == VSW_PORT_CLIENT) {
        port->priv = vp;
        vp_try_connect(vp);
        return 0;
    }
    int n = snprintf(port->path, sizeof(port->path), "%s/%s.sock", port->sw->run_dir, port->name);
    if (n < 0 || (size_t)n >= sizeof(port->path)) {
        snprintf(err->msg, sizeof(err->msg), "socket path too long");
        vu_dev_destroy(vp->dev);
        free(vp);
        return -ENAMETOOLONG;
    }
    vp->listen_fd = vu_listen(port->path);
    if (vp->listen_fd < 0) {
        int rc = vp->listen_fd;
        snprintf(err->msg, sizeof(err->msg), "cannot listen on %s: %s", port->path, strerror(-rc));
        vu_dev_destroy(vp->dev);
        free(vp);
        return rc;
    }
    chmod(port->path, 0660);
    int rc = vsw_loop_add_fd(port->sw->loop, vp->listen_fd, EPOLLIN, vp_on_accept, vp);
    if (rc < 0) {
        snprintf(err->msg, sizeof(err->msg), "cannot watch the socket: %s", strerror(-rc));
        close(vp->listen_fd);
        unlink(port->path);
        vu_dev_destroy(vp->dev);
        free(vp);
        return rc;
    }
    port->priv = vp;
    return 0;
}

static void vp_close(struct sw_port *port)
{
    struct vhost_port *vp = vp_of(port);
    if (!vp)
        return;
    if (vp->conn_fd >= 0) {
        vsw_loop_del_fd(port->sw->loop, vp->conn_fd);
        close(vp->conn_fd);
    }
    if (vp->listen_fd >= 0) {
        vsw_loop_del_fd(port->sw->loop, vp->listen_fd);
        close(vp->listen_fd);
        unlink(port->path); /* ours; a client port's socket belongs to the frontend */
    }
    vu_dev_destroy(vp->dev); /* the port is already out of every snapshot */
    free(vp);
    port->priv = NULL;
}

/*
 * PMD of queue 0: build the RARP announcement (RFC 903 "reverse request", the frame QEMU
 * sends for a migrated guest that cannot announce itself) in p. The frame lives in the port
 * until rx_release.
 */
static void vp_rarp_build(struct vhost_port *vp, uint64_t req, struct pkt *p)
{
    uint8_t *f = vp->rarp_frame, mac[ETH_ALEN];
    for (int i = 0; i < ETH_ALEN; i++)
        mac[i] = (uint8_t)(req >> (8 * i));
    memset(f, 0, sizeof(vp->rarp_frame));
    memset(f, 0xff, ETH_ALEN);                     /* broadcast */
    memcpy(f + 6, mac, ETH_ALEN);                  /* from the guest */
    static const uint8_t arp_hdr[] = {0x80, 0x35,  /* ethertype RARP */
                                      0x00, 0x01,  /* hardware: Ethernet */
                                      0x08, 0x00,  /* protocol: IPv4 */
                                      6,    4,     /* address lengths */
                                      0x00, 0x03}; /* reverse request */
    memcpy(f + 12, arp_hdr, sizeof(arp_hdr));
    memcpy(f + 22, mac, ETH_ALEN); /* sender hardware address, sender IP 0 */
    memcpy(f + 32, mac, ETH_ALEN); /* target hardware address, target IP 0 */
    pkt_from_buffer(p, f, sizeof(vp->rarp_frame));
    p->in_port = vp->port->index;
}

static uint16_t vp_rx_burst(struct sw_port *port, uint16_t qid, struct pkt *pkts, uint16_t n)
{
    struct vhost_port *vp = vp_of(port);
    uint16_t got = vu_dev_dequeue_burst(vp->dev, VIRTIO_NET_TXQ(qid), pkts, n);
    for (uint16_t i = 0; i < got; i++)
        pkts[i].in_port = port->index;
    if (unlikely(qid == 0 && __atomic_load_n(&vp->rarp_req, __ATOMIC_RELAXED)) && got < n) {
        uint64_t req = __atomic_exchange_n(&vp->rarp_req, 0, __ATOMIC_ACQUIRE);
        if (req) {
            vp_rarp_build(vp, req, &pkts[got++]);
            vp->rarp_inflight = true;
            __atomic_store_n(&vp->rarp_sent, vp->rarp_sent + 1, __ATOMIC_RELAXED);
        }
    }
    return got;
}

static void vp_rx_release(struct sw_port *port, uint16_t qid, struct pkt *pkts, uint16_t n)
{
    struct vhost_port *vp = vp_of(port);
    if (unlikely(qid == 0 && vp->rarp_inflight)) { /* ours, not the guest's: nothing to return */
        vp->rarp_inflight = false;
        n--;
    }
    vu_dev_dequeue_done(vp->dev, VIRTIO_NET_TXQ(qid), pkts, n);
}

static uint16_t vp_tx_send(struct vhost_port *vp, uint16_t qid, struct pkt *const *pkts, uint16_t n)
{
    uint16_t pairs = __atomic_load_n(&vp->npairs, __ATOMIC_RELAXED);
    uint16_t q = pairs ? qid % pairs : 0;
    if (q && !vu_dev_queue_ready(vp->dev, VIRTIO_NET_RXQ(q)))
        q = 0; /* that pair's RX ring is disabled: the first one always exists */
    return vu_dev_enqueue_burst(vp->dev, VIRTIO_NET_RXQ(q), pkts, n);
}

/* Egress, slow path: drop the frames longer than the port's MTU and send the others. */
static uint16_t vp_tx_mtu(struct sw_port *port, uint16_t qid, struct pkt *const *pkts, uint16_t n,
                          uint32_t max)
{
    struct vhost_port *vp = vp_of(port);
    struct pkt *ok[SW_BURST];
    uint16_t sent = 0, dropped = 0;
    for (uint16_t i = 0; i < n;) {
        uint16_t nok = 0;
        for (; i < n && nok < SW_BURST; i++) {
            if (pkts[i]->len <= max || pkts[i]->vnet.gso_type)
                ok[nok++] = pkts[i];
            else
                dropped++;
        }
        if (nok)
            sent += vp_tx_send(vp, qid, ok, nok);
    }
    __atomic_add_fetch(&vp->mtu_drops, dropped, __ATOMIC_RELAXED);
    VLOG_RL(INFO, MOD, "%s: %u frame(s) longer than the port's MTU %u dropped", port->name, dropped,
            max - ETH_HLEN - VP_VLAN_HLEN);
    return sent;
}

static uint16_t vp_tx_burst(struct sw_port *port, uint16_t qid, struct pkt *const *pkts, uint16_t n)
{
    struct vhost_port *vp = vp_of(port);
    uint32_t max = __atomic_load_n(&vp->max_frame, __ATOMIC_RELAXED);
    for (uint16_t i = 0; i < n; i++)
        if (unlikely(pkts[i]->len > max) && !pkts[i]->vnet.gso_type)
            return vp_tx_mtu(port, qid, pkts, n, max);
    return vp_tx_send(vp, qid, pkts, n);
}

static uint32_t vp_tx_offloads(const struct sw_port *port)
{
    return vu_dev_rx_offloads(vp_of(port)->dev);
}

static uint16_t vp_n_rxq(const struct sw_port *port)
{
    return vu_dev_num_queue_pairs(vp_of(port)->dev);
}

static int vp_rxq_notify(struct sw_port *port, uint16_t qid, bool enable)
{
    struct vhost_port *vp = vp_of(port);
    vu_dev_queue_set_notify(vp->dev, VIRTIO_NET_TXQ(qid), enable);
    return vu_dev_queue_kickfd(vp->dev, VIRTIO_NET_TXQ(qid));
}

static bool vp_rxq_has_work(struct sw_port *port, uint16_t qid)
{
    return vu_dev_queue_has_work(vp_of(port)->dev, VIRTIO_NET_TXQ(qid));
}

static void vp_set_mtu(struct sw_port *port, uint32_t mtu)
{
    struct vhost_port *vp = vp_of(port);
    vp->br_mtu = mtu;
    vu_dev_set_mtu_limit(vp->dev, (uint16_t)MIN(mtu, (uint32_t)UINT16_MAX));
    vp_update_mtu(vp);
}

static void vp_get_info(const struct sw_port *port, struct vsw_port_info *out)
{
    const struct vhost_port *vp = vp_of(port);
    out->mtu = vp_mtu(vp);
    out->guest_mtu = vu_dev_mtu(vp->dev);
    out->features = vu_dev_features(vp->dev);
}

static void vp_get_stats(const struct sw_port *port, struct vsw_port_stats *out)
{
    const struct vhost_port *vp = vp_of(port);
    struct vu_dev_stats s;
    vu_dev_get_stats(vp->dev, &s);
    out->rx_packets = s.rx_packets;
    out->rx_bytes = s.rx_bytes;
    out->tx_packets = s.tx_packets;
    out->tx_bytes = s.tx_bytes;
    memcpy(out->drops, s.drops, sizeof(out->drops));
    out->msg_errors = s.msg_errors;
    out->queue_errors = s.queue_errors;
    out->msg_refused = s.msg_refused;
    out->log_errors = s.log_errors;
    out->rarp_sent = __atomic_load_n(&vp->rarp_sent, __ATOMIC_RELAXED);
    out->drops[VSW_DROP_TX_MTU] += __atomic_load_n(&vp->mtu_drops, __ATOMIC_RELAXED);
}

static const char *vp_state(const struct sw_port *port)
{
    const struct vhost_port *vp = vp_of(port);
    if (vp->conn_fd < 0)
        return port->mode == VSW_PORT_CLIENT ? "connecting" : "listening";
    return vu_dev_num_queue_pairs(vp->dev) ? "running" : "connected";
}

const struct port_class port_vhost_class = {
    .type = "vhost-user",
    .open = vp_open,
    .close = vp_close,
    .rx_burst = vp_rx_burst,
    .rx_release = vp_rx_release,
    .tx_burst = vp_tx_burst,
    .tx_offloads = vp_tx_offloads,
    .n_rxq = vp_n_rxq,
    .rxq_notify = vp_rxq_notify,
    .rxq_has_work = vp_rxq_has_work,
    .set_mtu = vp_set_mtu,
    .get_info = vp_get_info,
    .tick = vp_tick,
    .get_stats = vp_get_stats,
    .state = vp_state,
};
