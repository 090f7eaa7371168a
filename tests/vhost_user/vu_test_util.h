/*
 * Shared helpers of the vhost-user backend unit tests: a hand-built fake guest (memfd
 * memory in three regions, rings laid out at fixed guest addresses: split, or packed with the
 * descriptor ring, driver area and device area where the split parts go), a device with
 * counting ops hooks, and a message helper that enters through vu_dev_process_msg().
 * Single-threaded; everything a helper creates is released by vut_fini().
 *
 * Guest memory (guest-physical addresses):
 *   R0  [0, 0xffe00)            rings, indirect tables, buffers. Backed by memfd 0 at file
 *                               offset 0x1000; the file bytes before and after the region
 *                               are canaries that the backend maps but must never write.
 *   R1  [0xffe00, 0x10fe00)     contiguous with R0 in GPA, separate memfd: a buffer may
 *                               cross from R0 into R1 (two segments).
 *   R2  [2^64-0x2000, 2^64-0x1000)  at the top of the address space, to test wrapping.
 */
#ifndef VU_TEST_UTIL_H
#define VU_TEST_UTIL_H

#include "vu_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <cmocka.h>

#define VUT_NREG   3
#define VUT_QSIZE  256
#define VUT_CANARY 0xa5

#define VUT_R0_GPA  0x0ull
#define VUT_R0_SIZE 0xffe00ull
#define VUT_R0_OFF  0x1000ull
#define VUT_R1_GPA  (VUT_R0_GPA + VUT_R0_SIZE)
#define VUT_R1_SIZE 0x10000ull
#define VUT_R2_GPA  (0ull - 0x2000ull)
#define VUT_R2_SIZE 0x1000ull
#define VUT_UVA(r)  (0x7f0000000000ull + ((uint64_t)(r) << 36))

/* Ring layout in R0 for queue 0 (RX) and 1 (TX); GPA == offset in R0. */
#define VUT_DESC_GPA(q)  (0x0000ull + (uint64_t)(q)*0x4000)
#define VUT_AVAIL_GPA(q) (0x1000ull + (uint64_t)(q)*0x4000)
#define VUT_USED_GPA(q)  (0x2000ull + (uint64_t)(q)*0x4000)
#define VUT_IND_GPA      0x8000ull  /* indirect tables: 0x8000..0x10000 */
#define VUT_BUF_GPA      0x10000ull /* buffers: up to the end of R0 */

#define VUT_F_BASE                                                                                 \
    ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX) |                            \
     (1ull << VIRTIO_RING_F_INDIRECT_DESC) | (1ull << VHOST_USER_F_PROTOCOL_FEATURES))
#define VUT_F_ALL   (VUT_F_BASE | (1ull << VIRTIO_NET_F_MRG_RXBUF))
#define VUT_PF_ALL  ((1ull << VHOST_USER_PROTOCOL_F_MQ) | (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK))
#define VUT_ALL_FDS 0xffffffffu

struct vut {
    /* fake guest */
    int memfd[VUT_NREG];
    uint8_t *file[VUT_NREG]; /* our mapping of each whole file */
    size_t file_len[VUT_NREG];
    uint64_t next_buf, next_ind;
    uint16_t next_desc[2];
    int call[VU_MAX_QUEUES]; /* our end of each call eventfd, or -1 */
    /* device */
    struct vu_dev *dev;
    struct vu_dev_ops ops;
    unsigned quiesce, state_changed;
    uint32_t ready_at_quiesce; /* queues (bitmask) that were ready during any quiesce call */
    int fds_at_start;
    uint64_t features;
    const void *tcase; /* the table entry a case runs */
    bool not_alone;    /* other vuts live: vut_free() leaves the fd/map checks to the test */
};

static inline int vut_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* Mappings of our memfds in this process (ours and the backend's). */
static inline int vut_count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "re");
    assert_non_null(f);
    char line[512];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "/memfd:vut"))
            n++;
    fclose(f);
    return n;
}

static inline bool vut_fd_closed(int fd)
{
    errno = 0;
    return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

static inline bool vut_fd_open(int fd)
{
    return fd >= 0 && fcntl(fd, F_GETFD) != -1;
}

static inline void vut_quiesce_hook(void *opaque)
{
    struct vut *v = opaque;
    v->quiesce++;
    for (uint16_t q = 0; q < VU_MAX_QUEUES; q++)
        if (vu_dev_queue_ready(v->dev, q))
            v->ready_at_quiesce |= 1u << q;
}

static inline void vut_state_hook(void *opaque)
{
    struct vut *v = opaque;
    v->state_changed++;
}

static inline uint32_t vut_ready_mask(const struct vut *v)
{
    uint32_t m = 0;
    for (uint16_t q = 0; q < VU_MAX_QUEUES; q++)
        if (vu_dev_queue_ready(v->dev, q))
            m |= 1u << q;
    return m;
}

static inline int vut_memfd(size_t len)
{
    int fd = memfd_create("vut", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)len), 0);
    return fd;
}

static inline int vut_eventfd(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(fd >= 0);
    return fd;
}

static const uint64_t vut_reg_gpa[VUT_NREG] = {VUT_R0_GPA, VUT_R1_GPA, VUT_R2_GPA};
static const uint64_t vut_reg_size[VUT_NREG] = {VUT_R0_SIZE, VUT_R1_SIZE, VUT_R2_SIZE};
static const uint64_t vut_reg_off[VUT_NREG] = {VUT_R0_OFF, 0, 0};

static inline struct vut *vut_new(void)
{
    struct vut *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    v->fds_at_start = vut_count_fds();
    for (unsigned r = 0; r < VUT_NREG; r++) {
        /* R0: canary page before the region, and the rest of the last page after it */
        v->file_len[r] = r == 0 ? VUT_R0_OFF + 0x100000 : vut_reg_size[r];
        v->memfd[r] = vut_memfd(v->file_len[r]);
        v->file[r] = mmap(NULL, v->file_len[r], PROT_READ | PROT_WRITE, MAP_SHARED, v->memfd[r], 0);
        assert_true(v->file[r] != MAP_FAILED);
    }
    memset(v->file[0], VUT_CANARY, v->file_len[0]);
    memset(v->file[0] + VUT_R0_OFF, 0, VUT_R0_SIZE);
    for (unsigned q = 0; q < VU_MAX_QUEUES; q++)
        v->call[q] = -1;
    v->next_buf = VUT_BUF_GPA;
    v->next_ind = VUT_IND_GPA;
    v->ops.quiesce = vut_quiesce_hook;
    v->ops.state_changed = vut_state_hook;
    v->dev = vu_dev_create("vut", &v->ops, v);
    assert_non_null(v->dev);
    vu_dev_set_connected(v->dev);
    return v;
}

/* Destroy everything and check that no fd leaked (kept fds are closed by the backend). */
static inline void vut_free(struct vut *v)
{
    if (!v)
        return;
    vu_dev_destroy(v->dev);
    for (unsigned q = 0; q < VU_MAX_QUEUES; q++)
        if (v->call[q] >= 0)
            close(v->call[q]);
    for (unsigned r = 0; r < VUT_NREG; r++) {
        munmap(v->file[r], v->file_len[r]);
        close(v->memfd[r]);
    }
    int fds = v->fds_at_start;
    bool alone = !v->not_alone;
    free(v);
    if (alone) {
        assert_int_equal(vut_count_fds(), fds);
        assert_int_equal(vut_count_maps(), 0); /* the backend unmapped all guest memory */
    }
}

/* Our pointer to [gpa, gpa + len), which must lie inside one region. */
static inline void *vut_g2h(struct vut *v, uint64_t gpa, uint64_t len)
{
    for (unsigned r = 0; r < VUT_NREG; r++) {
        if (gpa >= vut_reg_gpa[r] && gpa - vut_reg_gpa[r] <= vut_reg_size[r] &&
            len <= vut_reg_size[r] - (gpa - vut_reg_gpa[r]))
            return v->file[r] + vut_reg_off[r] + (gpa - vut_reg_gpa[r]);
    }
    fail_msg("test bug: gpa %#llx+%#llx not in guest memory", (unsigned long long)gpa,
             (unsigned long long)len);
    return NULL;
}

/* The canaries around R0 are intact: the backend never wrote outside the region. */
static inline bool vut_canaries_ok(const struct vut *v)
{
    for (size_t i = 0; i < VUT_R0_OFF; i++)
        if (v->file[0][i] != VUT_CANARY)
            return false;
    for (size_t i = VUT_R0_OFF + VUT_R0_SIZE; i < v->file_len[0]; i++)
        if (v->file[0][i] != VUT_CANARY)
            return false;
    return true;
}

static inline void vut_mem_table(struct vhost_memory *m, unsigned nregions)
{
    memset(m, 0, sizeof(*m));
    m->nregions = nregions;
    for (unsigned r = 0; r < nregions; r++) {
        m->regions[r].guest_phys_addr = vut_reg_gpa[r];
        m->regions[r].memory_size = vut_reg_size[r];
        m->regions[r].userspace_addr = VUT_UVA(r);
        m->regions[r].mmap_offset = vut_reg_off[r];
    }
}

static inline void vut_msg_init(struct vhost_user_msg *m, uint32_t req, uint32_t size)
{
    memset(m, 0, sizeof(*m));
    m->hdr.request = req;
    m->hdr.flags = VHOST_USER_VERSION;
    m->hdr.size = size;
}

/*
 * Hand one message to the backend. Every fd whose bit is not in `kept` must be closed when
 * the call returns (checked immediately, before any other fd can take its number); the
 * others must still be open.
 */
static inline int vut_process(struct vut *v, const struct vhost_user_msg *m, int *fds,
                              unsigned nfds, uint32_t kept, struct vhost_user_msg *reply,
                              bool *reply_out)
{
    int saved[VHOST_USER_MAX_FDS + 4];
    assert_true(nfds <= ARRAY_SIZE(saved));
    if (nfds)
        memcpy(saved, fds, nfds * sizeof(int));
    int rc = vu_dev_process_msg(v->dev, m, fds, nfds, reply, reply_out);
    for (unsigned i = 0; i < nfds; i++) {
        if (kept & (1u << i)) {
            if (!vut_fd_open(saved[i]))
                fail_msg("fd %u (%d) of request %u was closed but should be kept", i, saved[i],
                         m->hdr.request);
        } else if (!vut_fd_closed(saved[i])) {
            fail_msg("fd %u (%d) of request %u (rc %d) left open", i, saved[i], m->hdr.request, rc);
        }
    }
    return rc;
}

/* Send a request that must succeed; returns whether a reply was produced. */
static inline bool vut_ok(struct vut *v, uint32_t req, const void *payload, uint32_t size, int *fds,
                          unsigned nfds, uint32_t kept, struct vhost_user_msg *reply)
{
    struct vhost_user_msg m, r;
    bool out;
    vut_msg_init(&m, req, size);
    if (size)
        memcpy(&m.payload, payload, size);
    int rc = vut_process(v, &m, fds, nfds, kept, reply ? reply : &r, &out);
    if (rc != 0)
        fail_msg("request %u refused: %d", req, rc);
    return out;
}

static inline void vut_u64(struct vut *v, uint32_t req, uint64_t val)
{
    vut_ok(v, req, &val, sizeof(val), NULL, 0, 0, NULL);
}

static inline void vut_state(struct vut *v, uint32_t req, uint32_t index, uint32_t num)
{
    struct vhost_vring_state s = {index, num};
    vut_ok(v, req, &s, sizeof(s), NULL, 0, 0, NULL);
}

static inline struct vhost_vring_addr vut_ring_addr(uint32_t q)
{
    struct vhost_vring_addr a = {.index = q,
                                 .desc_user_addr = VUT_UVA(0) + VUT_DESC_GPA(q),
                                 .used_user_addr = VUT_UVA(0) + VUT_USED_GPA(q),
                                 .avail_user_addr = VUT_UVA(0) + VUT_AVAIL_GPA(q)};
    return a;
}

static inline void vut_set_mem_table(struct vut *v)
{
    struct vhost_memory m;
    int fds[VUT_NREG];
    vut_mem_table(&m, VUT_NREG);
    for (unsigned r = 0; r < VUT_NREG; r++) {
        fds[r] = dup(v->memfd[r]);
        assert_true(fds[r] >= 0);
    }
    vut_ok(v, VHOST_USER_SET_MEM_TABLE, &m, 8 + VUT_NREG * sizeof(m.regions[0]), fds, VUT_NREG, 0,
           NULL);
}

/* SET_VRING_KICK with a fresh eventfd (kept by the backend). */
static inline void vut_kick(struct vut *v, uint32_t q)
{
    int fd = vut_eventfd(), fds[1] = {fd}; /* the backend marks a kept fd -1 in its array */
    uint64_t idx = q;
    vut_ok(v, VHOST_USER_SET_VRING_KICK, &idx, 8, fds, 1, 1, NULL);
    assert_int_equal(vu_dev_queue_kickfd(v->dev, (uint16_t)q),
                     vu_dev_queue_ready(v->dev, (uint16_t)q) ? fd : -1);
}

/* SET_VRING_CALL with a fresh eventfd; we keep the other end in v->call[q]. */
static inline void vut_call(struct vut *v, uint32_t q)
{
    if (v->call[q] >= 0)
        close(v->call[q]);
    v->call[q] = vut_eventfd();
    int fd = dup(v->call[q]);
    assert_true(fd >= 0);
    uint64_t idx = q;
    vut_ok(v, VHOST_USER_SET_VRING_CALL, &idx, 8, &fd, 1, 1, NULL);
}

/*
 * The start-up sequence of a frontend for queues 0..nq-1 (nq <= 2: the fake guest has rings
 * for one pair): features, memory table, ring size, base, addresses, kick, call, enable.
 */
static inline void vut_startup(struct vut *v, uint64_t features, uint64_t proto, unsigned nq)
{
    struct vhost_user_msg r;
    assert_true(nq <= 2);
    assert_true(vut_ok(v, VHOST_USER_GET_FEATURES, NULL, 0, NULL, 0, 0, &r));
    assert_int_equal(r.payload.u64, VU_OFFERED_FEATURES);
    vut_ok(v, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, 0, NULL);
    if (features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
        assert_true(vut_ok(v, VHOST_USER_GET_PROTOCOL_FEATURES, NULL, 0, NULL, 0, 0, &r));
        assert_int_equal(r.payload.u64, VU_OFFERED_PROTOCOL_FEATURES);
        vut_u64(v, VHOST_USER_SET_PROTOCOL_FEATURES, proto);
    }
    vut_u64(v, VHOST_USER_SET_FEATURES, features);
    v->features = features;
    vut_set_mem_table(v);
    for (uint32_t q = 0; q < nq; q++) {
        struct vhost_vring_addr a = vut_ring_addr(q);
        vut_state(v, VHOST_USER_SET_VRING_NUM, q, VUT_QSIZE);
        /* a packed ring starts at slot 0 with wrap counters 1 (DPDK's encoding) */
        vut_state(v, VHOST_USER_SET_VRING_BASE, q,
                  features & (1ull << VIRTIO_F_RING_PACKED) ? VHOST_VRING_PACKED_WRAP : 0);
        vut_ok(v, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, 0, NULL);
        vut_call(v, q);
        bool enabled = v->dev->q[q].enabled; /* still enabled from an earlier start-up */
        vut_kick(v, q);
        if (features & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) {
            /* an RX ring waits to be enabled; a TX ring is drained until then */
            assert_int_equal(vu_dev_queue_ready(v->dev, (uint16_t)q), (q & 1) || enabled);
            vut_state(v, VHOST_USER_SET_VRING_ENABLE, q, 1);
        }
        assert_true(vu_dev_queue_ready(v->dev, (uint16_t)q));
    }
}

static inline struct vring_desc *vut_desc(struct vut *v, unsigned q)
{
    return vut_g2h(v, VUT_DESC_GPA(q), 16 * VUT_QSIZE);
}

static inline struct vring_avail *vut_avail(struct vut *v, unsigned q)
{
    return vut_g2h(v, VUT_AVAIL_GPA(q), 6 + 2 * VUT_QSIZE);
}

static inline struct vring_used *vut_used(struct vut *v, unsigned q)
{
    return vut_g2h(v, VUT_USED_GPA(q), 6 + 8 * VUT_QSIZE);
}

static inline uint16_t vut_used_idx(struct vut *v, unsigned q)
{
    return __atomic_load_n(&vut_used(v, q)->idx, __ATOMIC_ACQUIRE);
}

/* Put `head` in the next avail slot and publish it. */
static inline void vut_post(struct vut *v, unsigned q, uint16_t head)
{
    struct vring_avail *a = vut_avail(v, q);
    uint16_t idx = a->idx;
    a->ring[idx % VUT_QSIZE] = head;
    __atomic_store_n(&a->idx, (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static inline uint16_t vut_alloc_desc(struct vut *v, unsigned q, unsigned n)
{
    uint16_t first = v->next_desc[q];
    assert_true(first + n <= VUT_QSIZE);
    v->next_desc[q] = (uint16_t)(first + n);
    return first;
}

static inline uint64_t vut_alloc_buf(struct vut *v, uint64_t len)
{
    uint64_t gpa = v->next_buf;
    v->next_buf = (v->next_buf + len + 63) & ~63ull;
    assert_true(v->next_buf <= VUT_R0_GPA + VUT_R0_SIZE);
    return gpa;
}

static inline uint64_t vut_alloc_ind(struct vut *v, unsigned entries)
{
    uint64_t gpa = v->next_ind;
    v->next_ind += 16ull * entries;
    assert_true(v->next_ind <= VUT_BUF_GPA);
    return gpa;
}

static inline void vut_set_desc(struct vring_desc *d, uint64_t addr, uint32_t len, uint16_t flags,
                                uint16_t next)
{
    d->addr = addr;
    d->len = len;
    d->flags = flags;
    d->next = next;
}

/* ---- guest memory, frames and counters (the datapath tests) ---- */

/* Write or read guest memory at a GPA range that may cross from one region into the next. */
static inline void vut_guest_write(struct vut *v, uint64_t gpa, const void *src, uint64_t len)
{
    const uint8_t *s = src;
    while (len) {
        uint64_t n = len;
        for (unsigned r = 0; r < VUT_NREG; r++)
            if (gpa >= vut_reg_gpa[r] && gpa - vut_reg_gpa[r] < vut_reg_size[r])
                n = MIN(len, vut_reg_size[r] - (gpa - vut_reg_gpa[r]));
        memcpy(vut_g2h(v, gpa, n), s, n);
        gpa += n;
        s += n;
        len -= n;
    }
}

static inline void vut_guest_read(struct vut *v, uint64_t gpa, void *dst, uint64_t len)
{
    uint8_t *d = dst;
    while (len) {
        uint64_t n = len;
        for (unsigned r = 0; r < VUT_NREG; r++)
            if (gpa >= vut_reg_gpa[r] && gpa - vut_reg_gpa[r] < vut_reg_size[r])
                n = MIN(len, vut_reg_size[r] - (gpa - vut_reg_gpa[r]));
        memcpy(d, vut_g2h(v, gpa, n), n);
        gpa += n;
        d += n;
        len -= n;
    }
}

/* A copy of all guest memory files, to prove hostile rings change nothing. */
struct vut_snapshot {
    uint8_t *file[VUT_NREG];
};

static inline void vut_snap_take(struct vut *v, struct vut_snapshot *s)
{
    for (unsigned r = 0; r < VUT_NREG; r++) {
        s->file[r] = malloc(v->file_len[r]);
        assert_non_null(s->file[r]);
        memcpy(s->file[r], v->file[r], v->file_len[r]);
    }
}

static inline uint8_t vut_frame_byte(uint32_t i, uint8_t seed)
{
    return (uint8_t)(seed + i * 31 + (i >> 8));
}

static inline void vut_fill_vnet(struct virtio_net_hdr_v1 *h)
{
    memset(h, 0, sizeof(*h));
    /* No offload request (flags and gso_type 0): a request must be negotiated and fit the
     * frame (vu_offload.c); these fields only have to travel unchanged. */
    h->hdr_len = 14;
    h->csum_start = 34;
    h->csum_offset = 16;
}

/* virtio-net header (hlen bytes) then frame_len pattern bytes; returns the stream length. */
static inline uint32_t vut_make_stream(uint8_t *s, uint32_t hlen, uint32_t frame_len, uint8_t seed)
{
    struct virtio_net_hdr_v1 h;
    vut_fill_vnet(&h);
    memcpy(s, &h, hlen);
    for (uint32_t i = 0; i < frame_len; i++)
        s[hlen + i] = vut_frame_byte(i, seed);
    return hlen + frame_len;
}

/* The packet holds exactly this frame, and its private header copy too. */
static inline void vut_check_pkt(const struct pkt *p, uint32_t frame_len, uint8_t seed)
{
    static uint8_t buf[VSW_MAX_FRAME + 64];
    assert_int_equal(p->len, frame_len);
    assert_int_equal(pkt_read(p, 0, buf, sizeof(buf)), frame_len);
    for (uint32_t i = 0; i < frame_len; i++)
        if (buf[i] != vut_frame_byte(i, seed))
            fail_msg("frame byte %u is %#x, want %#x", i, buf[i], vut_frame_byte(i, seed));
    assert_int_equal(p->hdr_len, MIN(frame_len, PKT_HDR_COPY));
    for (uint32_t i = 0; i < p->hdr_len; i++)
        assert_int_equal(p->hdr[i], vut_frame_byte(i, seed));
    uint64_t seglen = 0;
    for (uint16_t i = 0; i < p->nseg; i++) {
        assert_true(p->seg[i].len > 0);
        seglen += p->seg[i].len;
    }
    assert_int_equal(seglen, frame_len);
}

static inline void vut_check_drops(const struct vu_dev_stats *st, int reason, uint64_t n)
{
    for (int d = 0; d < VSW_DROP__COUNT; d++)
        if (st->drops[d] != (d == reason ? n : 0))
            fail_msg("drops[%s] = %llu, want %llu", vsw_drop_name((unsigned)d),
                     (unsigned long long)st->drops[d], (unsigned long long)(d == reason ? n : 0));
}

/* Read (and so reset) the call eventfd counter of queue q: 0 when no call was made. */
static inline uint64_t vut_calls(struct vut *v, unsigned q)
{
    uint64_t n = 0;
    if (read(v->call[q], &n, sizeof(n)) != (ssize_t)sizeof(n)) {
        assert_int_equal(errno, EAGAIN);
        return 0;
    }
    return n;
}

static inline struct vu_dev_stats vut_stats(const struct vut *v)
{
    struct vu_dev_stats s;
    vu_dev_get_stats(v->dev, &s);
    return s;
}

/* Environment knobs for debugging: VUT_LOG=1 logs at debug level, VUT_FILTER=pattern runs
 * only the matching cases. */
static inline void vut_main_init(void)
{
    vsw_log_set_level(getenv("VUT_LOG") ? VSW_LOG_DEBUG : VSW_LOG_ERR);
    if (getenv("VUT_FILTER"))
        cmocka_set_test_filter(getenv("VUT_FILTER"));
}

/* Run a table of cases: one cmocka test per entry, named after it, state = &cases[i]. */
static inline int vut_run_table(const char *group, const void *cases, size_t case_size, size_t n,
                                const char *(*name_of)(const void *), CMUnitTestFunction fn,
                                CMFixtureFunction setup, CMFixtureFunction teardown)
{
    struct CMUnitTest *t = calloc(n, sizeof(*t));
    assert_non_null(t);
    for (size_t i = 0; i < n; i++) {
        const void *c = (const char *)cases + i * case_size;
        t[i].name = name_of(c);
        t[i].test_func = fn;
        t[i].setup_func = setup;
        t[i].teardown_func = teardown;
        t[i].initial_state = (void *)c;
    }
    int rc = _cmocka_run_group_tests(group, t, n, NULL, NULL);
    free(t);
    return rc;
}

#endif
