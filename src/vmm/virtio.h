/*
 * virtio inside the VMM: the transport (virtio-mmio) talks to a device through
 * struct virtio_dev_ops, the device (virtio-net) to its backend (vswitchd over vhost-user).
 * Like kvmtool's struct virtio_ops, one ops table per boundary.
 *
 * Threads: the transport calls the ops on a vCPU thread with the transport lock held; the
 * main thread calls vmm_net_poll(). Lock order: transport, then device.
 */
#ifndef VSW_VMM_VIRTIO_H
#define VSW_VMM_VIRTIO_H

#include "vmm.h"
#include "vmm_int.h"

#include <sys/types.h>

/* virtio 1.2, 2.1 device status */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

#define VIRTIO_ID_NET     1
#define VIRTIO_MAX_QUEUES 2

/* virtio-mmio registers (virtio 1.2, 4.2.2) */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100
#define VIRTIO_MMIO_MAGIC               0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR              0x56535754 /* "VSWT" */
#define VIRTIO_MMIO_INT_VRING           1

/* A queue as the driver configured it (guest-physical addresses, already range-checked). */
struct virtio_queue_cfg {
    uint16_t num;
    bool ready;
    uint64_t desc, driver, device;
};

struct virtio_dev_ops {
    /* Device features offered to the driver (fixed once the device exists). */
    uint64_t (*features)(void *opaque);
    /* Config space access; off + len <= the config size checked by the transport. */
    void (*config_read)(void *opaque, uint32_t off, uint8_t *data, uint32_t len);
    /*
     * DRIVER_OK: start the device with the negotiated features and the queues. 0, or a
     * negative errno: the transport then sets DEVICE_NEEDS_RESET and the device stays failed
     * until the driver resets it.
     */
    int (*activate)(void *opaque, uint64_t features, const struct virtio_queue_cfg *q, unsigned nq);
    /* The driver wrote 0 to status (or the transport is going away): stop everything. */
    void (*reset)(void *opaque);
};

struct virtio_dev {
    uint32_t device_id;
    uint16_t num_queues; /* <= VIRTIO_MAX_QUEUES */
    uint16_t queue_max;  /* largest ring the device accepts */
    uint32_t config_size;
    const struct virtio_dev_ops *ops;
    void *opaque;
    int kick_fd[VIRTIO_MAX_QUEUES]; /* KVM ioeventfd on QueueNotify == queue index */
    int call_fd;                    /* KVM irqfd on the transport's GSI (all queues) */
};

/* ---- virtio-mmio transport (virtio_mmio.c) ---- */
struct virtio_mmio;

/* What a driver did wrong, counted per transport (and logged rate-limited). One list gives the
 * enum and the names. */
#define VIRTIO_MMIO_ERRORS(X)                                                                      \
    X(UNALIGNED, "unaligned")       /* a register access not 32 bits wide and aligned */           \
    X(BAD_REGISTER, "bad_register") /* a write to a read-only or unknown register, or a read       \
                                       of a write-only one */                                      \
    X(CONFIG, "config")             /* config space: beyond its end, or a write */                 \
    X(SEQUENCE, "out_of_order")     /* a write outside the driver sequence of virtio 1.2 3.1.1 */  \
    X(FEATURES, "bad_features")     /* features not offered, or without VERSION_1 */               \
    X(NO_QUEUE, "no_such_queue") /* a queue register or notify for a queue that does not exist */  \
    X(BAD_RING, "bad_ring")      /* ring size or addresses: the device failed */                   \
    X(BACKEND, "backend_failed") /* DRIVER_OK, but the backend could not start: failed */
enum virtio_mmio_error {
#define VIRTIO_MMIO_ERR_ENUM(e, s) VIRTIO_MMIO_ERR_##e,
    VIRTIO_MMIO_ERRORS(VIRTIO_MMIO_ERR_ENUM)
#undef VIRTIO_MMIO_ERR_ENUM
        VIRTIO_MMIO_ERR_MAX
};
extern const char *const virtio_mmio_error_names[VIRTIO_MMIO_ERR_MAX];
/* A snapshot of the counters (any thread). */
void virtio_mmio_errors(struct virtio_mmio *t, uint64_t out[VIRTIO_MMIO_ERR_MAX]);
/*
 * Create the transport at `base` on the MMIO bus with interrupt `gsi`. When the VM has a
 * KVM fd, the device's kick fds become ioeventfds and its call fd an irqfd.
 * Returns NULL and sets errno.
 */
struct virtio_mmio *virtio_mmio_create(struct vmm *vm, uint64_t base, uint32_t gsi,
                                       struct virtio_dev *dev);
void virtio_mmio_destroy(struct virtio_mmio *t);
/* One register access, as a vCPU's MMIO exit delivers it (tests call it directly). */
void virtio_mmio_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
                        bool is_write);
uint32_t virtio_mmio_status(struct virtio_mmio *t);

/* ---- virtio-net over vhost-user (virtio_net.c) ---- */
struct vmm_net;
/*
 * Create NIC `index`: ask vswitchd (control socket ctl_socket) for a port on cfg->bridge, or
 * use cfg->vhost_path, connect and read the backend's features. NULL on failure (logged).
 */
struct vmm_net *vmm_net_create(struct vmm *vm, const struct vmm_net_cfg *cfg,
                               const char *ctl_socket, unsigned index);
/* Stop the backend, close the connection, delete the port we created. NULL is fine. */
void vmm_net_destroy(struct vmm_net *n);
struct virtio_dev *vmm_net_virtio(struct vmm_net *n);
/* The fd the main thread polls (the vhost-user socket; -1 while disconnected). */
int vmm_net_pollfd(struct vmm_net *n);
/* Main thread: the socket is readable (peer gone) or a second passed: reconnect if needed. */
void vmm_net_poll(struct vmm_net *n);

/* ---- vhost-user frontend for memory the VMM owns (vhost_net.c) ---- */
struct vhost_net {
    int sock;
    pid_t peer_pid;             /* the backend process (SO_PEERCRED), 0 if unknown */
    uint64_t features;          /* offered by the backend */
    uint64_t protocol_features; /* negotiated */
    bool reply_ack;
};

struct vhost_net_queue {
    uint16_t index, num, base;
    uint64_t desc_uva, avail_uva, used_uva;
    int kick_fd, call_fd;
};

/* Connect and run SET_OWNER, GET_FEATURES and the protocol-feature exchange. 0 or -errno. */
int vhost_net_connect(struct vhost_net *h, const char *path);
void vhost_net_close(struct vhost_net *h);
/* SET_FEATURES, SET_MEM_TABLE (every region of `mem`, its memfd), then each queue. */
int vhost_net_start(struct vhost_net *h, uint64_t features, const struct vmm_mem *mem,
                    const struct vhost_net_queue *q, unsigned nq);
/* Disable and stop each queue (GET_VRING_BASE). */
int vhost_net_stop(struct vhost_net *h, const struct vhost_net_queue *q, unsigned nq);

/* ---- vswitchd control client (ctl_client.c) ---- */
/* port-add for VM vm_name (this process): on success path holds the vhost-user socket path.
 * 0 or -errno (logged). */
int vmm_ctl_port_add(const char *ctl_socket, const char *bridge, const char *name,
                     const char *vm_name, char *path, size_t cap);
int vmm_ctl_port_del(const char *ctl_socket, const char *name);
/* port-add again for a port a restarted vswitchd does not know (it ran without its state
 * file): as vmm_ctl_port_add, but a vswitchd that is not up yet is not logged. */
int vmm_ctl_port_readd(const char *ctl_socket, const char *bridge, const char *name,
                       const char *vm_name, char *path, size_t cap);
/* The pid of the vswitchd serving ctl_socket (SO_PEERCRED). 0 or -errno. */
int vmm_ctl_peer_pid(const char *ctl_socket, pid_t *pid);

#endif
