/*
 * vhost-user port type: a server-mode unix socket per port, one frontend connection at a
 * time, messages handled on the control thread, rings served by the PMDs through the
 * vhost_user datapath. A frontend that sends a malformed message loses its connection (it
 * may reconnect); the port and every other port go on.
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
    uint16_t npairs; /* ready queue pairs, for the PMDs' choice of RX queue (relaxed) */
    bool changed;    /* queue state changed: republish after this message */
};

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

static const struct vu_dev_ops vp_ops = {.quiesce = vp_quiesce, .state_changed = vp_state_changed};

static void vp_after_change(struct vhost_port *vp)
{
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
    vp_after_change(vp);
    /* A client port tries again at the next tick (the frontend may be restarting). */
}

static void vp_on_msg(int fd, uint32_t events, void *arg)
{
    struct vhost_port *vp = arg;
    (void)events;
    int rc = vu_dev_handle_msg(vp->dev, fd);
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
    /* A frontend that stalls mid-message must not hold the control thread for long. */
    struct timeval tv = {.tv_sec = 1};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
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

static uint16_t vp_rx_burst(struct sw_port *port, uint16_t qid, struct pkt *pkts, uint16_t n)
{
    struct vhost_port *vp = vp_of(port);
    uint16_t got = vu_dev_dequeue_burst(vp->dev, VIRTIO_NET_TXQ(qid), pkts, n);
    for (uint16_t i = 0; i < got; i++)
        pkts[i].in_port = port->index;
    return got;
}

static void vp_rx_release(struct sw_port *port, uint16_t qid, struct pkt *pkts, uint16_t n)
{
    vu_dev_dequeue_done(vp_of(port)->dev, VIRTIO_NET_TXQ(qid), pkts, n);
}

static uint16_t vp_tx_burst(struct sw_port *port, uint16_t qid, struct pkt *const *pkts, uint16_t n)
{
    struct vhost_port *vp = vp_of(port);
    uint16_t pairs = __atomic_load_n(&vp->npairs, __ATOMIC_RELAXED);
    uint16_t q = pairs ? qid % pairs : 0;
    if (q && !vu_dev_queue_ready(vp->dev, VIRTIO_NET_RXQ(q)))
        q = 0; /* that pair's RX ring is disabled: the first one always exists */
    return vu_dev_enqueue_burst(vp->dev, VIRTIO_NET_RXQ(q), pkts, n);
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

static void vp_get_stats(const struct sw_port *port, struct vsw_port_stats *out)
{
    struct vu_dev_stats s;
    vu_dev_get_stats(vp_of(port)->dev, &s);
    out->rx_packets = s.rx_packets;
    out->rx_bytes = s.rx_bytes;
    out->tx_packets = s.tx_packets;
    out->tx_bytes = s.tx_bytes;
    memcpy(out->drops, s.drops, sizeof(out->drops));
    out->msg_errors = s.msg_errors;
    out->queue_errors = s.queue_errors;
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
    .n_rxq = vp_n_rxq,
    .rxq_notify = vp_rxq_notify,
    .rxq_has_work = vp_rxq_has_work,
    .tick = vp_tick,
    .get_stats = vp_get_stats,
    .state = vp_state,
};
