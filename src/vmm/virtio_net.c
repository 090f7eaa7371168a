/*
 * virtio-net device whose backend is vswitchd over vhost-user: the VMM only negotiates and
 * hands over the rings; frames never pass through it. One queue pair (RX 0, TX 1), no control
 * queue. The MAC and link status live in our config space (VIRTIO_NET_F_MAC, F_STATUS); every
 * other feature is what the backend offers, within what we know how to pass through.
 *
 * Kicks: a KVM ioeventfd per queue on QueueNotify, created here and handed to vswitchd in
 * SET_VRING_KICK. Interrupts: one call eventfd, a KVM irqfd, in SET_VRING_CALL.
 *
 * vswitchd restarts: the main thread notices the socket closing (vmm_net_poll), reconnects
 * once a second and, if the driver had the device running, starts the rings again with the
 * used index as the base (what the backend had finished; split rings complete in order for
 * our backend). The guest sees a pause, not a reset. A port we created (--net BRIDGE) that a
 * new vswitchd does not have (it ran without its state file) is created again; one the same
 * vswitchd deleted (an administrator's port-del) is not: the NIC then stays down.
 *
 * Threads: activate/reset on vCPU threads (transport lock held), poll on the main thread;
 * `lock` serializes them.
 */
#include "virtio.h"
#include "vu_proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MOD                  "vmm-net"
#define NET_QUEUE_MAX        256
#define NET_CONNECT_TRIES    50 /* x 100 ms: the socket appears right after port-add */
#define VIRTIO_NET_S_LINK_UP 1

/* Features we can pass between the driver and the backend unchanged. */
#define NET_PASSTHROUGH                                                                            \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |                             \
     (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |                   \
     (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |                             \
     (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |                       \
     (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6))
/* Features the VMM itself implements (config space). */
#define NET_OWN ((1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS))

struct virtio_net_config {
    uint8_t mac[6];
    uint16_t status;
    uint16_t max_virtqueue_pairs;
    uint16_t mtu;
} __attribute__((packed));

struct vmm_net {
    struct vmm *vm;
    pthread_mutex_t lock;
    char name[VSW_NAME_MAX]; /* our port name, when we created the port */
    char bridge[VSW_NAME_MAX];
    char ctl_socket[108];
    char path[108];
    bool port_created;
    struct vhost_net vh;
    uint64_t features; /* offered to the driver */
    uint64_t acked;    /* negotiated, while active */
    bool active;
    struct vhost_net_queue q[2];
    struct virtio_net_config config;
    struct virtio_dev vdev;
    uint64_t next_reconnect_ns;
    pid_t backend_pid;   /* the vswitchd we were last connected to */
    bool deleted_logged; /* "port deleted" said once */
};

static uint64_t net_features(void *opaque)
{
    struct vmm_net *n = opaque;
    return n->features;
}

static void net_config_read(void *opaque, uint32_t off, uint8_t *data, uint32_t len)
{
    struct vmm_net *n = opaque;
    memcpy(data, (uint8_t *)&n->config + off, len);
}

/* Translate the driver's ring addresses (checked by the transport) to our addresses. */
static int fill_queues(struct vmm_net *n, const struct virtio_queue_cfg *qc, unsigned nq)
{
    if (nq < 2 || !qc[0].ready || !qc[1].ready) {
        VLOG_RL(WARN, MOD, "%s: DRIVER_OK without both RX and TX queues ready", n->path);
        return -EINVAL;
    }
    for (unsigned i = 0; i < 2; i++) {
        void *d = vmm_mem_ptr(&n->vm->mem, qc[i].desc, 16ull * qc[i].num);
        void *a = vmm_mem_ptr(&n->vm->mem, qc[i].driver, 6 + 2ull * qc[i].num);
        void *u = vmm_mem_ptr(&n->vm->mem, qc[i].device, 6 + 8ull * qc[i].num);
        if (!d || !a || !u)
            return -EFAULT;
        n->q[i].index = (uint16_t)i;
        n->q[i].num = qc[i].num;
        n->q[i].base = 0;
        n->q[i].desc_uva = (uintptr_t)d;
        n->q[i].avail_uva = (uintptr_t)a;
        n->q[i].used_uva = (uintptr_t)u;
    }
    return 0;
}

static int net_activate(void *opaque, uint64_t features, const struct virtio_queue_cfg *qc,
                        unsigned nq)
{
    struct vmm_net *n = opaque;
    int rc;
    pthread_mutex_lock(&n->lock);
    if ((rc = fill_queues(n, qc, nq)) == 0) {
        n->acked = features;
        n->active = true; /* even if the backend is away: a reconnect starts the rings */
        rc = vhost_net_start(&n->vh, features & ~NET_OWN, &n->vm->mem, n->q, 2);
        if (rc == -ENOTCONN)
            rc = 0;
        if (rc < 0) {
            VLOG(WARN, MOD, "%s: starting the rings failed: %s", n->path, strerror(-rc));
            n->active = false;
        } else {
            VLOG(INFO, MOD, "%s: running, features %#llx, rings %u/%u", n->path,
                 (unsigned long long)features, n->q[0].num, n->q[1].num);
        }
    }
    pthread_mutex_unlock(&n->lock);
    return rc;
}

static void net_reset(void *opaque)
{
    struct vmm_net *n = opaque;
    pthread_mutex_lock(&n->lock);
    if (n->active && n->vh.sock >= 0) {
        int rc = vhost_net_stop(&n->vh, n->q, 2);
        if (rc < 0)
            VLOG(WARN, MOD, "%s: stopping the rings: %s", n->path, strerror(-rc));
    }
    n->active = false;
    pthread_mutex_unlock(&n->lock);
}

static const struct virtio_dev_ops net_ops = {
    .features = net_features,
    .config_read = net_config_read,
    .activate = net_activate,
    .reset = net_reset,
};

static int connect_backend(struct vmm_net *n, unsigned tries)
{
    int rc = -ENOENT;
    for (unsigned i = 0; i < tries; i++) {
        rc = vhost_net_connect(&n->vh, n->path);
        if (rc != -ENOENT && rc != -ECONNREFUSED)
            break;
        usleep(100000);
    }
    return rc;
}

static void compute_features(struct vmm_net *n)
{
    n->features = (n->vh.features & NET_PASSTHROUGH) | NET_OWN;
}

struct vmm_net *vmm_net_create(struct vmm *vm, const struct vmm_net_cfg *cfg,
                               const char *ctl_socket, unsigned index)
{
    struct vmm_net *n = calloc(1, sizeof(*n));
    int rc;
    if (!n)
        return NULL;
    n->vm = vm;
    n->vh.sock = -1;
    pthread_mutex_init(&n->lock, NULL);
    n->vdev = (struct virtio_dev){
        .device_id = VIRTIO_ID_NET,
        .num_queues = 2,
        .queue_max = NET_QUEUE_MAX,
        .config_size = sizeof(n->config),
        .ops = &net_ops,
        .opaque = n,
        .kick_fd = {-1, -1},
        .call_fd = -1,
    };
    for (unsigned i = 0; i < 2; i++) {
        n->vdev.kick_fd[i] = n->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (n->vdev.kick_fd[i] < 0)
            goto fail;
    }
    n->vdev.call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (n->vdev.call_fd < 0)
        goto fail;
    n->q[0].call_fd = n->q[1].call_fd = n->vdev.call_fd;

    if (cfg->mac_set) {
        memcpy(n->config.mac, cfg->mac, 6);
    } else {
        /* Locally administered, unique per VMM process and NIC. */
        uint32_t pid = (uint32_t)getpid();
        uint8_t mac[6] = {0x52,         0x54,          (uint8_t)(pid >> 16), (uint8_t)(pid >> 8),
                          (uint8_t)pid, (uint8_t)index};
        memcpy(n->config.mac, mac, 6);
    }
    n->config.status = VIRTIO_NET_S_LINK_UP;
    n->config.max_virtqueue_pairs = 1;

    if (cfg->vhost_path[0]) {
        snprintf(n->path, sizeof(n->path), "%s", cfg->vhost_path);
    } else {
        snprintf(n->ctl_socket, sizeof(n->ctl_socket), "%s", ctl_socket);
        snprintf(n->name, sizeof(n->name), "vm%u-%u", (unsigned)getpid(), index);
        snprintf(n->bridge, sizeof(n->bridge), "%s", cfg->bridge);
        rc = vmm_ctl_port_add(ctl_socket, cfg->bridge, n->name, vm->name, n->path, sizeof(n->path));
        if (rc < 0) {
            VLOG(ERR, MOD, "port-add %s on bridge %s: %s", n->name, cfg->bridge, strerror(-rc));
            goto fail;
        }
        n->port_created = true;
    }
    if ((rc = connect_backend(n, NET_CONNECT_TRIES)) < 0) {
        VLOG(ERR, MOD, "%s: vhost-user connect: %s", n->path, strerror(-rc));
        goto fail;
    }
    if (!(n->vh.features & (1ull << VIRTIO_F_VERSION_1))) {
        VLOG(ERR, MOD, "%s: the backend does not offer VIRTIO_F_VERSION_1", n->path);
        goto fail;
    }
    compute_features(n);
    n->backend_pid = n->vh.peer_pid;
    char mac[18];
    vsw_mac_format((const struct vsw_mac *)n->config.mac, mac);
    if (n->port_created)
        VLOG(INFO, MOD, "net%u: port %s on bridge %s", index, n->name, cfg->bridge);
    VLOG(INFO, MOD, "net%u: mac %s, vhost-user %s, device features %#llx", index, mac, n->path,
         (unsigned long long)n->features);
    return n;
fail:
    vmm_net_destroy(n);
    return NULL;
}

void vmm_net_destroy(struct vmm_net *n)
{
    if (!n)
        return;
    net_reset(n);
    vhost_net_close(&n->vh);
    if (n->port_created) {
        int rc = vmm_ctl_port_del(n->ctl_socket, n->name);
        if (rc < 0)
            VLOG(WARN, MOD, "port-del %s: %s", n->name, strerror(-rc));
    }
    for (unsigned i = 0; i < 2; i++) {
        if (n->vdev.kick_fd[i] >= 0)
            close(n->vdev.kick_fd[i]);
    }
    if (n->vdev.call_fd >= 0)
        close(n->vdev.call_fd);
    pthread_mutex_destroy(&n->lock);
    free(n);
}

struct virtio_dev *vmm_net_virtio(struct vmm_net *n)
{
    return &n->vdev;
}

int vmm_net_pollfd(struct vmm_net *n)
{
    pthread_mutex_lock(&n->lock);
    int fd = n->vh.sock;
    pthread_mutex_unlock(&n->lock);
    return fd;
}

/* The backend's progress: after a crash it is the used index (nothing is in flight). */
static void bases_from_used(struct vmm_net *n)
{
    for (unsigned i = 0; i < 2; i++) {
        const struct vring_used *u = (const struct vring_used *)(uintptr_t)n->q[i].used_uva;
        n->q[i].base = __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
    }
}

/*
 * Our port's socket is not there (or nobody listens on it). If a different vswitchd now runs
 * (it restarted without its state file), create the port again; if it is the one we were
 * connected to, someone deleted the port on purpose: leave it. Lock held.
 */
static bool readd_port(struct vmm_net *n)
{
    pid_t pid;
    char path[sizeof(n->path)];
    if (!n->port_created || vmm_ctl_peer_pid(n->ctl_socket, &pid) < 0)
        return false; /* no vswitchd yet */
    if (pid == n->backend_pid) {
        if (!n->deleted_logged)
            VLOG(WARN, MOD, "port %s was deleted in vswitchd (pid %d): the NIC stays down", n->name,
                 (int)pid);
        n->deleted_logged = true;
        return false;
    }
    if (vmm_ctl_port_readd(n->ctl_socket, n->bridge, n->name, n->vm->name, path, sizeof(path)) < 0)
        return false;
    VLOG(INFO, MOD, "port %s created again on bridge %s (vswitchd pid %d did not have it)", n->name,
         n->bridge, (int)pid);
    snprintf(n->path, sizeof(n->path), "%s", path);
    return true;
}

/* Connect to the backend again and, if the driver runs the device, restart the rings. */
static void reconnect(struct vmm_net *n)
{
    int rc = vhost_net_connect(&n->vh, n->path);
    if ((rc == -ENOENT || rc == -ECONNREFUSED) && readd_port(n))
        rc = connect_backend(n, NET_CONNECT_TRIES);
    if (rc < 0)
        return;
    n->backend_pid = n->vh.peer_pid;
    n->deleted_logged = false;
    if ((n->vh.features & NET_PASSTHROUGH & n->acked) != (n->acked & ~NET_OWN)) {
        VLOG(WARN, MOD, "%s: the new backend lacks features the driver uses", n->path);
        vhost_net_close(&n->vh);
    } else if (n->active) {
        bases_from_used(n);
        rc = vhost_net_start(&n->vh, n->acked & ~NET_OWN, &n->vm->mem, n->q, 2);
        VLOG(INFO, MOD, "%s: reconnected%s%s", n->path, rc < 0 ? ", restart failed: " : "",
             rc < 0 ? strerror(-rc) : "");
        if (rc < 0)
            vhost_net_close(&n->vh);
    } else {
        VLOG(INFO, MOD, "%s: reconnected", n->path);
    }
}

void vmm_net_poll(struct vmm_net *n)
{
    pthread_mutex_lock(&n->lock);
    if (n->vh.sock >= 0) {
        /* The backend never sends unrequested messages: readable means closed or broken. */
        char c;
        ssize_t r = recv(n->vh.sock, &c, 1, MSG_DONTWAIT | MSG_PEEK);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            VLOG(WARN, MOD, "%s: vswitchd went away; reconnecting", n->path);
            vhost_net_close(&n->vh);
            n->next_reconnect_ns = vsw_now_ns() + 1000000000ull;
        }
    } else if (vsw_now_ns() >= n->next_reconnect_ns) {
        n->next_reconnect_ns = vsw_now_ns() + 1000000000ull;
        reconnect(n);
    }
    pthread_mutex_unlock(&n->lock);
}
