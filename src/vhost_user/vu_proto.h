/*
 * vhost-user wire protocol and virtio split- and packed-ring layouts (QEMU
 * docs/interop/vhost-user.rst, virtio 1.2 sections 2.7 and 2.8). Shared by the backend (vswitchd)
 * and the frontend (simulated guests, vswitch-vmm). Definitions only.
 */
#ifndef VSW_VU_PROTO_H
#define VSW_VU_PROTO_H

#include <stdint.h>

/* ---- virtio feature bits ---- */
#define VIRTIO_NET_F_CSUM              0
#define VIRTIO_NET_F_GUEST_CSUM        1
#define VIRTIO_NET_F_MTU               3
#define VIRTIO_NET_F_MAC               5
#define VIRTIO_NET_F_GUEST_TSO4        7
#define VIRTIO_NET_F_GUEST_TSO6        8
#define VIRTIO_NET_F_GUEST_ECN         9
#define VIRTIO_NET_F_HOST_TSO4         11
#define VIRTIO_NET_F_HOST_TSO6         12
#define VIRTIO_NET_F_HOST_ECN          13
#define VIRTIO_NET_F_MRG_RXBUF         15
#define VIRTIO_NET_F_STATUS            16
#define VIRTIO_NET_F_CTRL_VQ           17
#define VIRTIO_NET_F_GUEST_ANNOUNCE    21
#define VIRTIO_NET_F_MQ                22
#define VIRTIO_F_NOTIFY_ON_EMPTY       24
#define VIRTIO_RING_F_INDIRECT_DESC    28
#define VIRTIO_RING_F_EVENT_IDX        29
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VHOST_F_LOG_ALL                26
#define VIRTIO_F_VERSION_1             32
#define VIRTIO_F_ACCESS_PLATFORM       33
#define VIRTIO_F_RING_PACKED           34
#define VIRTIO_F_IN_ORDER              35

/* ---- vhost-user protocol feature bits ---- */
#define VHOST_USER_PROTOCOL_F_MQ                  0
#define VHOST_USER_PROTOCOL_F_LOG_SHMFD           1
#define VHOST_USER_PROTOCOL_F_RARP                2
#define VHOST_USER_PROTOCOL_F_REPLY_ACK           3
#define VHOST_USER_PROTOCOL_F_NET_MTU             4
#define VHOST_USER_PROTOCOL_F_BACKEND_REQ         5
#define VHOST_USER_PROTOCOL_F_CONFIG              9
#define VHOST_USER_PROTOCOL_F_RESET_DEVICE        13
#define VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15
#define VHOST_USER_PROTOCOL_F_STATUS              16

/* ---- requests (frontend to backend) ---- */
#define VHOST_USER_REQUESTS(X)                                                                     \
    X(GET_FEATURES, 1)                                                                             \
    X(SET_FEATURES, 2)                                                                             \
    X(SET_OWNER, 3)                                                                                \
    X(RESET_OWNER, 4)                                                                              \
    X(SET_MEM_TABLE, 5)                                                                            \
    X(SET_LOG_BASE, 6)                                                                             \
    X(SET_LOG_FD, 7)                                                                               \
    X(SET_VRING_NUM, 8)                                                                            \
    X(SET_VRING_ADDR, 9)                                                                           \
    X(SET_VRING_BASE, 10)                                                                          \
    X(GET_VRING_BASE, 11)                                                                          \
    X(SET_VRING_KICK, 12)                                                                          \
    X(SET_VRING_CALL, 13)                                                                          \
    X(SET_VRING_ERR, 14)                                                                           \
    X(GET_PROTOCOL_FEATURES, 15)                                                                   \
    X(SET_PROTOCOL_FEATURES, 16)                                                                   \
    X(GET_QUEUE_NUM, 17)                                                                           \
    X(SET_VRING_ENABLE, 18)                                                                        \
    X(SEND_RARP, 19)                                                                               \
    X(NET_SET_MTU, 20)                                                                             \
    X(SET_BACKEND_REQ_FD, 21)                                                                      \
    X(IOTLB_MSG, 22)                                                                               \
    X(SET_VRING_ENDIAN, 23)                                                                        \
    X(GET_CONFIG, 24)                                                                              \
    X(SET_CONFIG, 25)                                                                              \
    X(RESET_DEVICE, 34)                                                                            \
    X(GET_MAX_MEM_SLOTS, 36)                                                                       \
    X(ADD_MEM_REG, 37)                                                                             \
    X(REM_MEM_REG, 38)                                                                             \
    X(SET_STATUS, 39)                                                                              \
    X(GET_STATUS, 40)

enum vhost_user_request {
#define VU_REQ_ENUM_(name, id) VHOST_USER_##name = id,
    VHOST_USER_REQUESTS(VU_REQ_ENUM_)
#undef VU_REQ_ENUM_
        VHOST_USER_MAX_REQUEST = 64
};

#define VHOST_USER_VERSION        0x1
#define VHOST_USER_VERSION_MASK   0x3
#define VHOST_USER_REPLY_MASK     (1u << 2)
#define VHOST_USER_NEED_REPLY     (1u << 3)
#define VHOST_USER_VRING_IDX_MASK 0xffu
#define VHOST_USER_VRING_NOFD     (1ull << 8)
/* SET_VRING_ADDR flags: log_guest_addr is valid and used-ring writes are to be logged. */
#define VHOST_VRING_F_LOG 0
/* Dirty log (SET_LOG_BASE): one bit per page of guest-physical memory, bit (gpa / 4096). */
#define VHOST_LOG_PAGE           ((uint64_t)4096)
#define VHOST_MEMORY_MAX_REGIONS 8
#define VHOST_USER_MAX_FDS       8

struct vhost_vring_state {
    uint32_t index;
    uint32_t num;
};

struct vhost_vring_addr {
    uint32_t index;
    uint32_t flags;
    uint64_t desc_user_addr;
    uint64_t used_user_addr;
    uint64_t avail_user_addr;
    uint64_t log_guest_addr;
};

struct vhost_memory_region {
    uint64_t guest_phys_addr;
    uint64_t memory_size;
    uint64_t userspace_addr;
    uint64_t mmap_offset;
};

struct vhost_memory {
    uint32_t nregions;
    uint32_t padding;
    struct vhost_memory_region regions[VHOST_MEMORY_MAX_REGIONS];
};

struct vhost_memory_single {
    uint64_t padding;
    struct vhost_memory_region region;
};

struct vhost_user_log {
    uint64_t mmap_size;
    uint64_t mmap_offset;
};

struct vhost_user_hdr {
    uint32_t request;
    uint32_t flags;
    uint32_t size; /* payload bytes following the header */
} __attribute__((packed));

union vhost_user_payload {
    uint64_t u64;
    struct vhost_vring_state state;
    struct vhost_vring_addr addr;
    struct vhost_memory memory;
    struct vhost_memory_single mem_reg;
    struct vhost_user_log log;
    uint8_t raw[256];
};

struct vhost_user_msg {
    struct vhost_user_hdr hdr;
    union vhost_user_payload payload;
} __attribute__((packed));

/* ---- split virtqueue layout (virtio 1.2, 2.7) ---- */
#define VRING_DESC_F_NEXT          1
#define VRING_DESC_F_WRITE         2
#define VRING_DESC_F_INDIRECT      4
#define VRING_USED_F_NO_NOTIFY     1
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_MAX_SIZE             32768

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[]; /* then uint16_t used_event */
};

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[]; /* then uint16_t avail_event */
};

/* True when an event index crossed between old and new_idx (virtio 1.2, 2.7.10). */
static inline int vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old);
}

/* ---- packed virtqueue layout (virtio 1.2, 2.8) ---- */
/* Descriptor flags beyond NEXT, WRITE and INDIRECT: the driver makes a descriptor available
 * with AVAIL == its wrap counter and USED != it; the device marks it used with both equal to
 * its own wrap counter. Both counters start at 1. */
#define VRING_PACKED_DESC_F_AVAIL (1u << 7)
#define VRING_PACKED_DESC_F_USED  (1u << 15)
/* Event suppression flags (driver area: the driver's wish about used-buffer notifications;
 * device area: ours about available-buffer notifications, i.e. kicks). */
#define VRING_PACKED_EVENT_FLAG_ENABLE  0
#define VRING_PACKED_EVENT_FLAG_DISABLE 1
#define VRING_PACKED_EVENT_FLAG_DESC    2 /* only with EVENT_IDX: at off_wrap */
#define VRING_PACKED_EVENT_F_WRAP_CTR   15

struct vring_packed_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t id; /* buffer id (in the last descriptor of a chain) */
    uint16_t flags;
};

struct vring_packed_desc_event {
    uint16_t off_wrap; /* bits 0-14 ring offset, bit 15 wrap counter */
    uint16_t flags;
};

/* GET/SET_VRING_BASE for a packed ring: bits 0-14 the next available descriptor, bit 15 the
 * avail wrap counter; QEMU puts the used pair the same way in bits 16-31. */
#define VHOST_VRING_PACKED_IDX_MASK 0x7fffu
#define VHOST_VRING_PACKED_WRAP     0x8000u

/* virtio-net queue numbering: queue pair i has RX at 2i and TX at 2i + 1. */
#define VIRTIO_NET_RXQ(pair) ((pair)*2)
#define VIRTIO_NET_TXQ(pair) ((pair)*2 + 1)

#endif
