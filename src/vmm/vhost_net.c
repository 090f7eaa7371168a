/*
 * vhost-user frontend for a VMM whose guest memory is its own: the message exchange with
 * vswitchd (QEMU docs/interop/vhost-user.rst), using the wire definitions of vu_proto.h.
 * Unlike the simulated guest in src/vhost_user/vu_frontend.c, the rings live wherever the
 * guest driver put them; the caller passes their addresses already translated to this
 * process's virtual addresses (the "user addresses" of the protocol).
 *
 * Called with the owning device's lock held (a vCPU thread or the main thread). Replies are
 * bounded by a socket timeout so a hung backend cannot hang a vCPU forever.
 */
#include "virtio.h"
#include "vhost_user.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MOD                 "vhost-net"
#define VHN_IO_TIMEOUT_S    5
#define VHN_PROTOCOL_WANTED (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK)

/* The wire itself is the frontend library's (src/vhost_user/vu_frontend.c). */
static int send_msg(struct vhost_net *h, uint32_t request, uint32_t flags, const void *payload,
                    uint32_t size, const int *fds, unsigned nfds)
{
    return vu_wire_send(h->sock, request, flags, payload, size, fds, nfds);
}

static int recv_reply(struct vhost_net *h, uint32_t request, void *payload, uint32_t size)
{
    return vu_wire_recv_reply(h->sock, request, payload, size);
}

static int request(struct vhost_net *h, uint32_t req, const void *payload, uint32_t size,
                   const int *fds, unsigned nfds)
{
    return vu_wire_request(h->sock, h->reply_ack, req, payload, size, fds, nfds);
}

static int get_u64(struct vhost_net *h, uint32_t req, uint64_t *out)
{
    return vu_wire_get_u64(h->sock, req, out);
}

static int set_state(struct vhost_net *h, uint32_t req, uint32_t index, uint32_t num)
{
    struct vhost_vring_state s = {.index = index, .num = num};
    return request(h, req, &s, sizeof(s), NULL, 0);
}

int vhost_net_connect(struct vhost_net *h, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int rc;

    memset(h, 0, sizeof(*h));
    h->sock = -1;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    h->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (h->sock < 0)
        return -errno;
    struct timeval tv = {.tv_sec = VHN_IO_TIMEOUT_S};
    setsockopt(h->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(h->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(h->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = -errno;
        goto fail;
    }
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    if (getsockopt(h->sock, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
        h->peer_pid = cred.pid;
    if ((rc = send_msg(h, VHOST_USER_SET_OWNER, 0, NULL, 0, NULL, 0)) < 0 ||
        (rc = get_u64(h, VHOST_USER_GET_FEATURES, &h->features)) < 0)
        goto fail;
    if (h->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
        uint64_t proto;
        if ((rc = get_u64(h, VHOST_USER_GET_PROTOCOL_FEATURES, &proto)) < 0)
            goto fail;
        h->protocol_features = proto & VHN_PROTOCOL_WANTED;
        if ((rc = send_msg(h, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &h->protocol_features,
                           sizeof(uint64_t), NULL, 0)) < 0)
            goto fail;
        h->reply_ack = h->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
    }
    return 0;
fail:
    vhost_net_close(h);
    return rc;
}

void vhost_net_close(struct vhost_net *h)
{
    if (h->sock >= 0)
        close(h->sock);
    h->sock = -1;
}

int vhost_net_start(struct vhost_net *h, uint64_t features, const struct vmm_mem *mem,
                    const struct vhost_net_queue *q, unsigned nq)
{
    int rc;
    bool proto = h->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES);

    if (h->sock < 0)
        return -ENOTCONN;
    if (proto)
        features |= 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
    if ((rc = request(h, VHOST_USER_SET_FEATURES, &features, sizeof(features), NULL, 0)) < 0)
        return rc;

    struct vhost_memory table = {.nregions = mem->nregions};
    int fds[VHOST_MEMORY_MAX_REGIONS];
    for (unsigned i = 0; i < mem->nregions; i++) {
        table.regions[i] = (struct vhost_memory_region){
            .guest_phys_addr = mem->regions[i].gpa,
            .memory_size = mem->regions[i].size,
            .userspace_addr = (uintptr_t)mem->regions[i].host,
            .mmap_offset = mem->regions[i].offset,
        };
        fds[i] = mem->memfd;
    }
    uint32_t size = (uint32_t)(offsetof(struct vhost_memory, regions) +
                               mem->nregions * sizeof(table.regions[0]));
    if ((rc = request(h, VHOST_USER_SET_MEM_TABLE, &table, size, fds, mem->nregions)) < 0)
        return rc;

    for (unsigned i = 0; i < nq; i++) {
        struct vhost_vring_addr a = {
            .index = q[i].index,
            .desc_user_addr = q[i].desc_uva,
            .used_user_addr = q[i].used_uva,
            .avail_user_addr = q[i].avail_uva,
        };
        uint64_t idx = q[i].index;
        if ((rc = set_state(h, VHOST_USER_SET_VRING_NUM, q[i].index, q[i].num)) < 0 ||
            (rc = set_state(h, VHOST_USER_SET_VRING_BASE, q[i].index, q[i].base)) < 0 ||
            (rc = request(h, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0)) < 0 ||
            (rc = request(h, VHOST_USER_SET_VRING_KICK, &idx, sizeof(idx), &q[i].kick_fd, 1)) < 0 ||
            (rc = request(h, VHOST_USER_SET_VRING_CALL, &idx, sizeof(idx), &q[i].call_fd, 1)) < 0)
            return rc;
    }
    if (proto) {
        for (unsigned i = 0; i < nq; i++) {
            if ((rc = set_state(h, VHOST_USER_SET_VRING_ENABLE, q[i].index, 1)) < 0)
                return rc;
        }
    }
    /* Buffers the driver posted before DRIVER_OK: make the backend look at them now. */
    for (unsigned i = 0; i < nq; i++) {
        uint64_t one = 1;
        if (write(q[i].kick_fd, &one, sizeof(one)) < 0) {
            /* EAGAIN: the counter is saturated, a kick is pending anyway. */
        }
    }
    return 0;
}

int vhost_net_stop(struct vhost_net *h, const struct vhost_net_queue *q, unsigned nq)
{
    int rc = 0;
    if (h->sock < 0)
        return -ENOTCONN;
    for (unsigned i = 0; i < nq && rc == 0; i++) {
        struct vhost_vring_state s = {.index = q[i].index};
        if (h->features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
            rc = set_state(h, VHOST_USER_SET_VRING_ENABLE, q[i].index, 0);
        if (rc == 0)
            rc = send_msg(h, VHOST_USER_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0);
        if (rc == 0)
            rc = recv_reply(h, VHOST_USER_GET_VRING_BASE, &s, sizeof(s));
    }
    return rc;
}
