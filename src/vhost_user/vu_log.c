/*
 * Dirty-page logging for live migration (VHOST_F_LOG_ALL with VHOST_USER_PROTOCOL_F_LOG_SHMFD):
 * while the frontend migrates a guest, every page of guest memory the switch writes must be
 * marked in a bitmap the frontend shares with us (SET_LOG_BASE), one bit per 4 KiB page of
 * guest-physical memory, so the frontend copies it again.
 *
 * What we write into guest memory: RX buffers (frame bytes and virtio-net header), used ring
 * entries and the used index (split, through log_guest_addr as the spec asks), used
 * descriptors (packed, in the descriptor ring). The datapath calls in here from
 * `unlikely(q->log)` branches, so nothing changes on the hot path when no migration runs.
 *
 * Order: a buffer is logged after its bytes are written and before its used entry is
 * published, from the addresses the datapath translated. Never after publishing by reading
 * the descriptors again: the guest may already have taken the buffer back and reused the
 * descriptor for another one (a race we had: the page written went unlogged, and the migrated
 * guest found a stale page).
 *
 * Threads: vu_log_map/unmap on the control thread with every queue quiesced (the PMDs reach the
 * log only through q->log, which is set while the queue is stopped). The write functions on
 * the PMD owning the queue; bits are set with atomic OR because the frontend reads and clears
 * the bitmap concurrently, and several PMDs share one log.
 *
 * Security model: the log size and offset come from the frontend; the mapping is checked
 * against the fd's size and the fd must be sealed against shrinking (QEMU seals its log
 * memfd): a frontend that truncated the log after we mapped it would SIGBUS the PMDs, and so
 * every port. Every bit index is checked against the log size: a page outside the log is
 * counted and logged (rate-limited), never written.
 */
#include "vu_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOD "vhost"

/* Larger logs would describe more than 2^47 bytes of guest memory: surely a bad message. */
#define VU_LOG_MAX_SIZE (1ull << 32)

int vu_log_map(struct vu_dev *dev, const struct vhost_user_log *l, int fd)
{
    uint64_t size = l->mmap_size, off = l->mmap_offset;
    struct stat st;
    if (size == 0 || size > VU_LOG_MAX_SIZE || off > UINT64_MAX - size) {
        VLOG_RL(WARN, MOD, "%s: SET_LOG_BASE size %" PRIu64 " offset %" PRIu64 " refused",
                dev->name, size, off);
        return -EPROTO;
    }
    /* A mapping past the end of the file would SIGBUS us on the first write; so would a file
     * the frontend may still shrink. */
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        VLOG_RL(WARN, MOD, "%s: SET_LOG_BASE: the log fd is not sealed against shrinking",
                dev->name);
        return -EPROTO;
    }
    if (fstat(fd, &st) < 0 || st.st_size < 0 || (uint64_t)st.st_size < off + size) {
        VLOG_RL(WARN, MOD,
                "%s: SET_LOG_BASE: the log fd is smaller than offset + size (%" PRIu64 " + %" PRIu64
                ")",
                dev->name, off, size);
        return -EPROTO;
    }
    void *m = mmap(NULL, off + size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        VLOG_RL(WARN, MOD, "%s: SET_LOG_BASE: mmap: %s", dev->name, strerror(errno));
        return -EPROTO;
    }
    vu_log_unmap(dev);
    dev->log.mmap_addr = m;
    dev->log.mmap_size = off + size;
    dev->log.bits = (uint8_t *)m + off;
    dev->log.size = size;
    VLOG_RL(INFO, MOD, "%s: dirty log of %" PRIu64 " bytes (%" PRIu64 " MiB of guest memory)",
            dev->name, size, size * 8 * VHOST_LOG_PAGE >> 20);
    return 0;
}

void vu_log_unmap(struct vu_dev *dev)
{
    if (dev->log.mmap_addr)
        munmap(dev->log.mmap_addr, dev->log.mmap_size);
    dev->log.mmap_addr = NULL;
    dev->log.mmap_size = 0;
    dev->log.bits = NULL;
    dev->log.size = 0;
}

void vu_log_write(struct vu_log *log, uint64_t gpa, uint64_t len)
{
    if (len == 0)
        return;
    uint64_t first = gpa / VHOST_LOG_PAGE;
    uint64_t last =
        len - 1 > UINT64_MAX - gpa ? UINT64_MAX / VHOST_LOG_PAGE : (gpa + len - 1) / VHOST_LOG_PAGE;
    for (uint64_t page = first; page <= last; page++) {
        if (page / 8 >= log->size) {
            __atomic_add_fetch(&log->errors, 1, __ATOMIC_RELAXED);
            VLOG_RL(WARN, MOD,
                    "dirty log of %" PRIu64 " bytes too small for guest address %#" PRIx64,
                    log->size, page * VHOST_LOG_PAGE);
            return;
        }
        __atomic_fetch_or(&log->bits[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELAXED);
    }
}

/* The guest-physical address of a host pointer into guest memory, or false. */
static bool host_to_gpa(const struct vu_mem *m, const uint8_t *h, uint64_t *gpa)
{
    for (uint32_t i = 0; i < m->nregions; i++) {
        const struct vu_mem_region *r = &m->regions[i];
        if (h >= r->host && (uint64_t)(h - r->host) < r->size) {
            *gpa = r->gpa + (uint64_t)(h - r->host);
            return true;
        }
    }
    return false;
}

void vu_log_segs(const struct vu_dev *dev, struct vu_log *log, const struct pkt_seg *seg,
                 uint16_t nseg, uint32_t len)
{
    for (uint16_t i = 0; i < nseg && len; i++) {
        uint32_t n = MIN(len, seg[i].len);
        uint64_t gpa;
        if (n && host_to_gpa(&dev->mem, seg[i].addr, &gpa))
            vu_log_write(log, gpa, n);
        len -= n;
    }
}

void vu_log_split_used(struct vu_queue *q, uint16_t old, uint16_t new_idx)
{
    const uint16_t mask = q->size - 1;
    if (!q->log_used)
        return;
    /* The entries may wrap around the end of the ring: log them as one or two ranges. */
    uint64_t ring = q->log_gpa + offsetof(struct vring_used, ring);
    uint16_t n = (uint16_t)(new_idx - old), start = old & mask;
    uint16_t first = (uint16_t)MIN((uint32_t)n, (uint32_t)q->size - start);
    vu_log_write(q->log, ring + (uint64_t)start * sizeof(struct vring_used_elem),
                 (uint64_t)first * sizeof(struct vring_used_elem));
    if (n > first)
        vu_log_write(q->log, ring, (uint64_t)(n - first) * sizeof(struct vring_used_elem));
    vu_log_write(q->log, q->log_gpa + offsetof(struct vring_used, idx), sizeof(uint16_t));
}

void vu_log_packed_used(struct vu_queue *q, uint16_t slot)
{
    vu_log_write(q->log, q->desc_gpa + (uint64_t)slot * sizeof(struct vring_packed_desc),
                 sizeof(struct vring_packed_desc));
}
