/*
 * vhost_user: the vhost-user backend that serves a guest's virtio-net device from its mapped
 * memory, and a frontend that plays the guest (simulated guests in tests, the benchmark,
 * vswitch-vmm).
 *
 * Security model: nothing a frontend sends is trusted. Every message field and fd count is
 * validated; every guest address is translated through the memory table and bounds-checked;
 * descriptor chains are bounded by the ring size; a malformed message ends that one
 * connection, a malformed ring stops that one queue. Both are counted and logged
 * (rate-limited). Nothing a guest does can make the backend read or write outside the guest
 * memory it was given, or abort the process.
 *
 * Threads: the control thread calls vu_dev_handle_msg() and the lifecycle functions; a PMD
 * thread calls the burst functions for the queues it owns. Before the control thread changes
 * anything the datapath reads (memory table, ring addresses, stop/start), it calls the
 * quiesce hook, which must return only when no PMD is inside a burst on this device (the
 * switch implements it with RCU). Queue state flags are read with acquire semantics.
 */
#ifndef VSW_VHOST_USER_H
#define VSW_VHOST_USER_H

#include "common.h"
#include "net.h"
#include "vu_proto.h"

#include <stdbool.h>
#include <stdint.h>

#define VU_MAX_QUEUE_PAIRS 8
#define VU_MAX_QUEUES      (2 * VU_MAX_QUEUE_PAIRS)

struct vu_dev;

struct vu_dev_ops {
    /* Return when no datapath thread is using this device any more (RCU grace period). */
    void (*quiesce)(void *opaque);
    /* A queue was started or stopped, or the device was reset: the switch may reassign. */
    void (*state_changed)(void *opaque);
    /* SEND_RARP (after a migration): announce `mac` on the guest's behalf. Control thread;
     * must not block. May be NULL (the request is then refused). */
    void (*send_rarp)(void *opaque, const struct vsw_mac *mac);
};

/* Per-device counters; read by the control thread while PMDs write them (relaxed). */
struct vu_dev_stats {
    uint64_t msgs;                 /* messages handled */
    uint64_t msg_errors;           /* malformed messages (each closed the connection) */
    uint64_t msg_refused;          /* valid requests refused with an error reply (NET_SET_MTU
                                      above the limit); the connection stays */
    uint64_t log_errors;           /* dirty-log writes outside the log (not done) */
    uint64_t queue_errors;         /* queues stopped for a malformed ring */
    uint64_t rx_packets, rx_bytes; /* frames taken from the guest (its TX queues) */
    uint64_t tx_packets, tx_bytes; /* frames given to the guest (its RX queues) */
    uint64_t drops[VSW_DROP__COUNT];
};

/*
 * Create a device with no connection. Returns NULL and sets errno (ENOMEM).
 * `name` is used in log lines.
 */
struct vu_dev *vu_dev_create(const char *name, const struct vu_dev_ops *ops, void *opaque);
/* Destroy (the caller quiesced the datapath and removed the device from every PMD). */
void vu_dev_destroy(struct vu_dev *dev);

/*
 * Read what the connected socket `fd` has of the next message without blocking; once it is
 * complete, handle it and send the reply if any. Returns 0 (a message was handled), -EAGAIN
 * (part of a message is kept in `dev`; call again when fd is readable), or a negative errno
 * after which the caller must close the connection and call vu_dev_disconnect():
 * -ECONNRESET (peer closed), -EPROTO (malformed message; logged and counted), or an I/O error.
 */
int vu_dev_handle_msg(struct vu_dev *dev, int fd);

/*
 * Handle one message already read (tests and fuzzing enter here). Takes ownership of fds[]
 * (each is closed unless kept). On success, *reply_out is set when a reply must be sent and
 * `reply` holds it. Returns 0 or -EPROTO.
 */
int vu_dev_process_msg(struct vu_dev *dev, const struct vhost_user_msg *msg, int *fds,
                       unsigned nfds, struct vhost_user_msg *reply, bool *reply_out);

/* The connection ended: stop every queue, unmap memory, forget negotiated state. */
void vu_dev_disconnect(struct vu_dev *dev);

/* True when queue `qid` is running (ring addresses known, kick fd, enabled, not broken). */
bool vu_dev_queue_ready(const struct vu_dev *dev, uint16_t qid);
/* Number of queue pairs the frontend has set up (at least one ring of the pair ready). */
uint16_t vu_dev_num_queue_pairs(const struct vu_dev *dev);
/* The kick eventfd of a queue, or -1 (PMDs sleep on it when idle). */
int vu_dev_queue_kickfd(const struct vu_dev *dev, uint16_t qid);
/*
 * Ask the guest to kick (true) or not to kick (false) when it adds buffers to queue qid.
 * A PMD enables kicks before it sleeps, then checks vu_dev_queue_has_work() once more.
 */
void vu_dev_queue_set_notify(struct vu_dev *dev, uint16_t qid, bool enable);
bool vu_dev_queue_has_work(const struct vu_dev *dev, uint16_t qid);

void vu_dev_get_stats(const struct vu_dev *dev, struct vu_dev_stats *out);
/*
 * Offloads (OFFLOAD_* bits of offload.h) the guest negotiated: what it accepts on its RX
 * queues (GUEST_CSUM, GUEST_TSO4/6, GUEST_ECN) and what it may ask for on its TX queues
 * (CSUM, HOST_TSO4/6, HOST_ECN). 0 before SET_FEATURES. Any thread (a relaxed read).
 */
uint32_t vu_dev_rx_offloads(const struct vu_dev *dev);
uint32_t vu_dev_tx_offloads(const struct vu_dev *dev);
/*
 * MTU (VHOST_USER_PROTOCOL_F_NET_MTU). Control thread. set_mtu_limit: NET_SET_MTU above `mtu`
 * is refused (an error reply when the frontend asked for one; logged and counted in
 * msg_refused). vu_dev_mtu: the MTU the frontend set and we accepted, 0 if none.
 */
void vu_dev_set_mtu_limit(struct vu_dev *dev, uint16_t mtu);
uint16_t vu_dev_mtu(const struct vu_dev *dev);
/* Virtio features the frontend acknowledged (SET_FEATURES), 0 before. Control thread. */
uint64_t vu_dev_features(const struct vu_dev *dev);
const char *vu_dev_name(const struct vu_dev *dev);
bool vu_dev_connected(const struct vu_dev *dev);
/* A frontend connected (the caller accepted it): messages may follow. */
void vu_dev_set_connected(struct vu_dev *dev);

/*
 * Datapath, PMD thread (one thread per queue at a time).
 *
 * dequeue: take up to n frames the guest transmitted on TX queue `qid` (odd). Each packet's
 * segments point into guest memory and stay valid until vu_dev_dequeue_done() returns the
 * descriptors to the guest; call it once for every dequeue, with the same packets.
 * Malformed chains stop the queue (counted as RX_BAD_DESC); they are never returned.
 */
uint16_t vu_dev_dequeue_burst(struct vu_dev *dev, uint16_t qid, struct pkt *pkts, uint16_t n);
void vu_dev_dequeue_done(struct vu_dev *dev, uint16_t qid, struct pkt *pkts, uint16_t n);

/*
 * enqueue: copy up to n frames into the guest's RX buffers on queue `qid` (even), one copy
 * from the packet's segments. Returns the number delivered; the rest are counted as drops
 * (no buffer, not ready, ...) and left to the caller, who still owns them. Notifies the
 * guest at most once per call, and only when the guest asked for it.
 */
uint16_t vu_dev_enqueue_burst(struct vu_dev *dev, uint16_t qid, struct pkt *const *pkts,
                              uint16_t n);

/* ---- server socket helpers (control thread) ---- */

/* Create a listening unix socket at path (removing a stale socket file). Returns fd or -errno. */
int vu_listen(const char *path);

/* ======================================================================================
 * Frontend side of the wire (simulated guests, vswitch-vmm): blocking calls on a connected
 * socket; a timeout set on the socket (SO_RCVTIMEO/SO_SNDTIMEO) turns into -ETIMEDOUT.
 */
/* Send one message with up to VHOST_USER_MAX_FDS fds. 0 or -errno (-EINVAL: too big). */
int vu_wire_send(int sock, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
                 const int *fds, unsigned nfds);
/* Read the reply to `request`; its payload must be exactly `size` bytes, else -EPROTO. */
int vu_wire_recv_reply(int sock, uint32_t request, void *payload, uint32_t size);
/* A request without a reply of its own; with REPLY_ACK, wait for the verdict (-EIO if refused). */
int vu_wire_request(int sock, bool reply_ack, uint32_t request, const void *payload, uint32_t size,
                    const int *fds, unsigned nfds);
/* A GET_* request whose reply is one u64. */
int vu_wire_get_u64(int sock, uint32_t request, uint64_t *out);

/* ======================================================================================
 * Frontend: a simulated guest. Owns memfd-backed "guest memory", one queue pair of split
 * rings, kick and call eventfds. Single-threaded: one thread uses one vuf_dev.
 */
struct vuf_dev;

struct vuf_config {
    uint32_t mem_size;          /* guest memory bytes (default 4 MiB, more if the rings need it) */
    uint16_t queue_size;        /* ring size, power of two (default 256) */
    uint32_t buf_size;          /* RX buffer size (default 2048) */
    uint64_t features;          /* features to ask for; 0 = VERSION_1 | MRG_RXBUF | EVENT_IDX */
    bool notify;                /* ask for call notifications (default false: the guest polls) */
    bool huge;                  /* guest memory on 2 MiB huge pages (memfd MFD_HUGETLB; needs
                                   reserved pages); the size is rounded up to 2 MiB */
    uint64_t protocol_features; /* protocol features to ask for besides REPLY_ACK and MQ
                                   (NET_MTU, RARP, LOG_SHMFD), if offered */
};

/*
 * Connect to a backend's socket and run the start-up sequence (features, memory table, both
 * rings, enable). Returns NULL and sets errno on failure.
 */
struct vuf_dev *vuf_connect(const char *path, const struct vuf_config *cfg);
void vuf_close(struct vuf_dev *f);

/* Queue one frame on the TX ring (kicks only if the backend asked). 0, or -EAGAIN if full,
 * -EMSGSIZE if the frame needs more TX buffers than the ring has. */
int vuf_send(struct vuf_dev *f, const void *frame, uint32_t len);
/* vuf_send with the frame's virtio-net header given (offload requests; its first 10 or 12
 * bytes are used, as negotiated). Same returns. */
int vuf_send_vnet(struct vuf_dev *f, const struct virtio_net_hdr_v1 *vnet, const void *frame,
                  uint32_t len);
/* The virtio-net header of the frame vuf_recv() / vuf_recv_wait() returned last. */
void vuf_last_rx_vnet(const struct vuf_dev *f, struct virtio_net_hdr_v1 *out);
/* Take one received frame (without virtio-net header). Returns its length or -EAGAIN;
 * -EMSGSIZE: longer than cap (dropped); -EPROTO: the backend wrote a bad used entry. */
int vuf_recv(struct vuf_dev *f, void *buf, uint32_t cap);
/* Like vuf_recv but waits up to timeout_ms (< 0: forever) for a frame. */
int vuf_recv_wait(struct vuf_dev *f, void *buf, uint32_t cap, int timeout_ms);
/* Reclaim completed TX buffers; returns the count of frames still in flight. */
unsigned vuf_tx_pending(struct vuf_dev *f);

/*
 * Burst forms (the benchmark's generator and sink): one avail index update and at most one
 * kick per call instead of one per frame.
 * vuf_send_burst: queue frames[0..n) (lengths lens[]) in order until the ring is full.
 * Returns the number queued (0 when the ring is full), or -EMSGSIZE when frames[0] needs
 * more TX buffers than the ring has (a later oversized frame ends the burst before it).
 * vuf_recv_burst: take up to n complete received frames. lens[i] gets frame i's length
 * (without the virtio-net header); when bufs is not NULL, the first cap bytes of frame i are
 * copied to bufs[i] (a longer frame is truncated there; lens[i] still says its length). With
 * bufs NULL the frames are only counted. Returns the number taken (0: none ready), or -EPROTO
 * when the next used entry is malformed (it is consumed; frames before it are returned by the
 * call before).
 */
int vuf_send_burst(struct vuf_dev *f, const void *const *frames, const uint32_t *lens, unsigned n);
int vuf_recv_burst(struct vuf_dev *f, void *const *bufs, uint32_t cap, uint32_t *lens, unsigned n);

/* A request without a reply of its own (acked with REPLY_ACK): 0, -EIO if the backend
 * refused it, or -errno. For protocol tests (NET_SET_MTU, SEND_RARP). */
int vuf_request(struct vuf_dev *f, uint32_t request, const void *payload, uint32_t size,
                const int *fds, unsigned nfds);
/* Protocol features negotiated. */
uint64_t vuf_protocol_features(const struct vuf_dev *f);
/* Start dirty logging as QEMU does for a migration: SET_LOG_BASE (log_fd: a memfd holding
 * offset + size bytes, sealed against shrinking as QEMU's is; not taken), both rings logged,
 * VHOST_F_LOG_ALL. 0, -ENOTSUP (no LOG_SHMFD), -EIO or -errno. */
int vuf_log_start(struct vuf_dev *f, int log_fd, uint64_t size, uint64_t offset);
/* Guest-physical addresses of a ring's used ring and of its buffers (RX buffers, TX slots). */
void vuf_layout_gpa(const struct vuf_dev *f, bool tx, uint64_t *used_gpa, uint64_t *bufs_gpa,
                    uint64_t *bufs_len);

/* Raw access for hostile-guest tests: the TX ring's descriptor table, its size, and the
 * guest-physical base and size of guest memory. */
struct vring_desc *vuf_tx_desc_table(struct vuf_dev *f);
uint16_t vuf_queue_size(const struct vuf_dev *f);
void vuf_guest_mem(struct vuf_dev *f, uint64_t *gpa_base, uint64_t *size, void **host);
/* Publish descriptor `head` (already written in the table) on the TX ring and kick. */
void vuf_tx_post_raw(struct vuf_dev *f, uint16_t head);
/* Publish an arbitrary avail index on the TX ring (to test index jumps). */
void vuf_tx_set_avail_idx(struct vuf_dev *f, uint16_t idx);
/* Send len bytes on a unix socket, the fds with the first byte (the frontend's message
 * writer, for tests that send messages in pieces). 0 or a negative errno. */
int vuf_sock_send(int fd, const void *buf, size_t len, const int *fds, unsigned nfds);
/* Shrink the guest memory file to nothing under the backend's mapping (a frontend that
 * truncates its memory). Only vuf_close() may be called on f afterwards. */
int vuf_truncate_guest_mem(struct vuf_dev *f);

#endif
