/*
 * Internal state of a vhost-user backend device, shared by the files of src/vhost_user.
 *
 * Ownership: the control thread writes everything except the datapath fields marked (PMD),
 * and only while the queue is not `ready` and after quiescing the datapath. A PMD reads a
 * queue's configuration only after an acquire load of `ready` returned true.
 */
#ifndef VSW_VU_INT_H
#define VSW_VU_INT_H

#include "vhost_user.h"

#include <stddef.h>
#include <stdint.h>

struct vu_mem_region {
    uint64_t gpa;  /* guest physical start */
    uint64_t size; /* bytes */
    uint64_t uva;  /* frontend's virtual address of the same memory (for ring addresses) */
    uint8_t *host; /* our mapping of gpa */
    void *mmap_addr;
    size_t mmap_size;
};

/* Regions a frontend may add one by one (CONFIGURE_MEM_SLOTS); SET_MEM_TABLE carries at most 8. */
#define VU_MAX_MEM_SLOTS 32

struct vu_mem {
    uint32_t nregions;
    uint32_t faulted; /* atomic; set by vu_guard.c when a region's file shrank under us */
    struct vu_mem_region regions[VU_MAX_MEM_SLOTS];
};

/*
 * Translate [gpa, gpa + len) to a host pointer. *contig is set to how many bytes are
 * contiguous from there inside one region (may be less than len when a buffer crosses into
 * the next region). Returns NULL when gpa is in no region. len 0 is never valid.
 */
static inline uint8_t *vu_mem_gpa_to_host(const struct vu_mem *m, uint64_t gpa, uint64_t len,
                                          uint64_t *contig)
{
    for (uint32_t i = 0; i < m->nregions; i++) {
        const struct vu_mem_region *r = &m->regions[i];
        if (gpa >= r->gpa && gpa - r->gpa < r->size) {
            uint64_t off = gpa - r->gpa;
            *contig = MIN(len, r->size - off);
            return r->host + off;
        }
    }
    return NULL;
}

/* Translate a frontend virtual address range that must lie inside one region, or NULL. */
uint8_t *vu_mem_uva_to_host(const struct vu_mem *m, uint64_t uva, uint64_t len);
/* Map the regions of a SET_MEM_TABLE message, replacing the old table on success (the caller
 * closes the fds afterwards either way). Returns 0, -EPROTO or -errno. */
int vu_mem_map(struct vu_mem *m, const struct vhost_memory *msg, const int *fds, unsigned nfds,
               const char *devname);
void vu_mem_unmap(struct vu_mem *m);
/* Map one more region (ADD_MEM_REG). Returns 0, -EPROTO (bad, overlapping, no slot) or -errno. */
int vu_mem_add(struct vu_mem *m, const struct vhost_memory_region *r, int fd, const char *devname);
/* Unmap the region with this guest address and size (REM_MEM_REG). 0 or -EPROTO. */
int vu_mem_remove(struct vu_mem *m, const struct vhost_memory_region *r, const char *devname);

struct vu_queue_stats {
    uint64_t packets;
    uint64_t bytes;
    uint64_t drops[VSW_DROP__COUNT];
    uint64_t errors; /* times this queue was stopped for a malformed ring */
};

struct vu_queue {
    /* ---- configuration (control thread) ---- */
    uint16_t size; /* 0 until SET_VRING_NUM */
    bool addr_set;
    uint64_t desc_uva, avail_uva, used_uva, log_gpa;
    bool log_used;     /* SET_VRING_ADDR had VHOST_VRING_F_LOG: log_gpa is the used ring's */
    uint64_t desc_gpa; /* guest-physical address of the descriptor ring (packed logging) */
    bool packed;       /* layout of the rings: RING_PACKED negotiated when they were translated */
    /* split layout */
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    /* packed layout: descriptor ring, driver area (avail_uva), device area (used_uva) */
    struct vring_packed_desc *pdesc;
    struct vring_packed_desc_event *driver_event;
    struct vring_packed_desc_event *device_event;
    int kickfd, callfd, errfd;
    bool started;   /* kick fd received (or polling requested) and not stopped since */
    bool enabled;   /* SET_VRING_ENABLE, or implied without protocol features */
    bool announced; /* readiness last reported through ops->state_changed */

    /* ---- datapath (PMD), read by the control thread only while quiesced ---- */
    bool ready;              /* acquire/release: datapath may use this queue */
    bool broken;             /* stopped for a malformed ring, until the frontend sets it up again */
    uint16_t last_avail_idx; /* packed: the next ring slot to look at (< size) */
    uint16_t last_used_idx;  /* next used index to publish; packed: next used slot (< size) */
    uint16_t shadow_used_idx; /* used entries written but not yet published (split) */
    uint16_t signalled_used;  /* used idx when we last notified */
    bool signalled_valid;
    bool notify_on; /* kicks currently requested from the guest */
    uint8_t lock;   /* enqueue from several PMDs: test-and-set spinlock */
    /* packed only (vu_packed.c) */
    bool avail_wrap, used_wrap; /* wrap counters of last_avail_idx and last_used_idx */
    bool pk_head_pending;       /* a used descriptor whose flags wait for the end of a burst */
    uint16_t pk_head_slot, pk_head_flags;
    uint64_t *pk_inflight; /* bitmap of buffer ids we hold (control thread allocates) */
    uint32_t pk_inflight_bits;
    /* Dirty logging (vu_log.c): the device's log while VHOST_F_LOG_ALL is negotiated and a
     * log is mapped, else NULL. Set by the control thread while the queue is not ready. */
    struct vu_log *log;
    struct vu_queue_stats stats;
};

/* The dirty-page bitmap of SET_LOG_BASE (vu_log.c). */
struct vu_log {
    uint8_t *bits;   /* one bit per VHOST_LOG_PAGE of guest-physical memory */
    uint64_t size;   /* bytes of bits[] */
    void *mmap_addr; /* our mapping (offset + size bytes of the frontend's fd) */
    size_t mmap_size;
    uint64_t errors; /* writes outside the log (counted, never done); relaxed */
};

/* A message arriving in pieces (vu_dev_handle_msg): what we have of it, and its fds. */
struct vu_rx {
    struct vhost_user_msg msg;
    size_t have; /* bytes of header + payload received */
    int fds[VHOST_USER_MAX_FDS];
    unsigned nfds;
};

struct vu_dev {
    char name[VSW_NAME_MAX];
    const struct vu_dev_ops *ops;
    void *opaque;
    bool connected;
    bool owner;
    uint64_t features;          /* acknowledged by SET_FEATURES */
    uint64_t protocol_features; /* acknowledged by SET_PROTOCOL_FEATURES */
    uint32_t vnet_hdr_len;      /* 12 with VERSION_1 or MRG_RXBUF, else 10 */
    struct vu_mem mem;
    struct vu_queue q[VU_MAX_QUEUES];
    uint64_t msgs, msg_errors;
    uint8_t status; /* virtio device status (SET_STATUS) */
    struct vu_log log;
    int log_fd;           /* SET_LOG_FD (kept, not used: we never ask the frontend to sync) */
    uint16_t mtu;         /* NET_SET_MTU accepted, 0: none */
    uint16_t mtu_limit;   /* the largest NET_SET_MTU we accept (the bridge's MTU) */
    uint64_t msg_refused; /* requests refused with an error reply, connection kept (relaxed) */
    struct vu_rx rx;      /* the message being received */
};

#define VU_OFFERED_FEATURES                                                                        \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_NET_F_MRG_RXBUF) |                             \
     (1ull << VIRTIO_RING_F_EVENT_IDX) | (1ull << VIRTIO_RING_F_INDIRECT_DESC) |                   \
     (1ull << VIRTIO_NET_F_MQ) | (1ull << VIRTIO_F_RING_PACKED) |                                  \
     (1ull << VHOST_USER_F_PROTOCOL_FEATURES) | VU_OFFLOAD_FEATURES | (1ull << VHOST_F_LOG_ALL) |  \
     (1ull << VIRTIO_NET_F_MTU) | (1ull << VIRTIO_F_IN_ORDER))

/* The smallest MTU a frontend may set (virtio 1.2, 5.1.4.1: 68, the IPv4 minimum). */
#define VU_MIN_MTU 68

/* Offloads (vu_offload.c): taken from a guest when it negotiated CSUM / HOST_*, given to it as
 * they are when it negotiated GUEST_*, done in software by the switch otherwise. */
#define VU_OFFLOAD_FEATURES                                                                        \
    ((1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |                             \
     (1ull << VIRTIO_NET_F_HOST_TSO4) | (1ull << VIRTIO_NET_F_HOST_TSO6) |                         \
     (1ull << VIRTIO_NET_F_HOST_ECN) | (1ull << VIRTIO_NET_F_GUEST_TSO4) |                         \
     (1ull << VIRTIO_NET_F_GUEST_TSO6) | (1ull << VIRTIO_NET_F_GUEST_ECN))

/* PMD, dequeue: false (after a rate-limited log line) when a guest's virtio-net header asks
 * for an offload it did not negotiate or does not fit the frame (offload_validate()). */
bool vu_vnet_hdr_ok(const struct vu_dev *dev, const struct pkt *p);

#define VU_OFFERED_PROTOCOL_FEATURES                                                               \
    ((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK) |              \
     (1ull << VHOST_USER_PROTOCOL_F_RESET_DEVICE) |                                                \
     (1ull << VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |                                         \
     (1ull << VHOST_USER_PROTOCOL_F_STATUS) | (1ull << VHOST_USER_PROTOCOL_F_NET_MTU) |            \
     (1ull << VHOST_USER_PROTOCOL_F_LOG_SHMFD) | (1ull << VHOST_USER_PROTOCOL_F_RARP))

static inline bool vu_has_feature(const struct vu_dev *dev, unsigned bit)
{
    return dev->features & (1ull << bit);
}

/* Queue lifecycle (vu_dev.c): recompute `ready` after a configuration change. */
void vu_queue_update_ready(struct vu_dev *dev, struct vu_queue *q);
/* Take every queue out of the datapath and wait for the PMDs to let go. */
void vu_dev_quiesce_all(struct vu_dev *dev);
/* Re-translate ring addresses after a memory table change. Returns 0 or -EPROTO. */
int vu_queue_translate(struct vu_dev *dev, struct vu_queue *q);
/* Split ring (vu_split.c): initialise shadow indices when a queue starts. */
void vu_split_queue_start(struct vu_dev *dev, struct vu_queue *q);
/* Packed ring (vu_packed.c), control thread: initialise a queue that starts. Returns 0, or
 * -EPROTO (its base index does not fit the ring) or -ENOMEM; the queue must not run then. */
int vu_packed_queue_start(struct vu_dev *dev, struct vu_queue *q);
void vu_packed_queue_free(struct vu_queue *q);
/* Packed ring datapath, called by the vu_dev_* burst functions once `ready` was seen (and,
 * for enqueue, under the queue's lock). Same contracts as those. */
uint16_t vu_packed_dequeue_burst(struct vu_dev *dev, struct vu_queue *q, struct pkt *pkts,
                                 uint16_t n);
void vu_packed_dequeue_done(struct vu_dev *dev, struct vu_queue *q, struct pkt *pkts, uint16_t n);
uint16_t vu_packed_enqueue_burst(struct vu_dev *dev, struct vu_queue *q, struct pkt *const *pkts,
                                 uint16_t n);
/* PMD: kick suppression in the device area, and whether the next descriptor is available. */
void vu_packed_set_notify(struct vu_dev *dev, struct vu_queue *q, bool enable);
bool vu_packed_has_work(const struct vu_queue *q);
/* GET/SET_VRING_BASE encoding of a packed queue's position (control thread). */
uint32_t vu_packed_get_base(const struct vu_queue *q);
int vu_packed_set_base(struct vu_dev *dev, struct vu_queue *q, uint32_t num);
/*
 * Dirty-page logging (vu_log.c). Control thread: map the log of a SET_LOG_BASE (takes fd),
 * unmap it, and point every queue at it (or not) after the features or the log changed,
 * with the queues quiesced. Returns 0 or -EPROTO.
 */
int vu_log_map(struct vu_dev *dev, const struct vhost_user_log *l, int fd);
void vu_log_unmap(struct vu_dev *dev);
/* PMD: mark [gpa, gpa + len) dirty; a page outside the log is counted, not written. */
void vu_log_write(struct vu_log *log, uint64_t gpa, uint64_t len);
/* PMD: mark dirty the first `len` bytes of a chain's host segments (guest buffers we wrote;
 * each segment lies in one region, as vu_chain_add() makes them). */
void vu_log_segs(const struct vu_dev *dev, struct vu_log *log, const struct pkt_seg *seg,
                 uint16_t nseg, uint32_t len);
/* PMD, split ring: log what used_publish() made visible (used entries old..new_idx - 1 and
 * the used index; the buffers were logged as they were written). */
void vu_log_split_used(struct vu_queue *q, uint16_t old, uint16_t new_idx);
/* PMD, packed ring: log the used descriptor written at `slot`. */
void vu_log_packed_used(struct vu_queue *q, uint16_t slot);

/*
 * Packed ring (vu_packed_resume.c), control thread: true when the base the queue was given
 * (last_used_idx, used_wrap) contradicts the ring and the ring's USED bits tell where the
 * device stands instead (*slot, *wrap); false: keep the base.
 */
bool vu_packed_ring_position(const struct vu_queue *q, uint16_t *slot, bool *wrap);

/* Stop a queue for a malformed ring (PMD thread): counted and logged. */
void vu_queue_mark_broken(struct vu_dev *dev, struct vu_queue *q, const char *why);
/* Forget a partly received message and close its fds (vu_msg.c). */
void vu_rx_reset(struct vu_dev *dev);
/*
 * SIGBUS guard (vu_guard.c): register a guest mapping before anyone touches it, unregister it
 * before unmapping it. A SIGBUS inside one replaces it with zero pages and sets *faulted.
 */
void vu_guard_add(void *addr, size_t len, uint32_t *faulted);
void vu_guard_del(void *addr);
uint64_t vu_guard_faults(void); /* mappings replaced so far, process-wide */

/* PMD, once per burst: stop queue q if its device's memory was taken away under us. */
static inline bool vu_mem_lost(struct vu_dev *dev, struct vu_queue *q)
{
    if (likely(!__atomic_load_n(&dev->mem.faulted, __ATOMIC_RELAXED)))
        return false;
    vu_queue_mark_broken(dev, q,
                         "the frontend truncated guest memory under us (SIGBUS); stopped until "
                         "it sends a new memory table");
    return true;
}

#endif
