/*
 * Guest memory table: maps the regions a frontend sends with SET_MEM_TABLE and translates
 * guest-physical and frontend-virtual addresses. Control thread maps and unmaps (with the
 * datapath quiesced); translation is called by PMDs and is read-only.
 *
 * Nothing in the message is trusted: region counts, sizes and offsets are checked for
 * overflow and overlap, and each fd must really be as large as the region it backs (a
 * shorter file would turn a guest access into SIGBUS in the switch). A file truncated after
 * we mapped it is caught by vu_guard.c.
 */
#include "vu_int.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

uint8_t *vu_mem_uva_to_host(const struct vu_mem *m, uint64_t uva, uint64_t len)
{
    if (len == 0 || uva + len < uva)
        return NULL;
    for (uint32_t i = 0; i < m->nregions; i++) {
        const struct vu_mem_region *r = &m->regions[i];
        if (uva >= r->uva && uva - r->uva < r->size && len <= r->size - (uva - r->uva))
            return r->host + (uva - r->uva);
    }
    return NULL;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

static int check_table(const struct vhost_memory *msg, const char *devname)
{
    if (msg->nregions == 0 || msg->nregions > VHOST_MEMORY_MAX_REGIONS) {
        VLOG_RL(WARN, "vhost", "%s: memory table with %u regions", devname, msg->nregions);
        return -EPROTO;
    }
    for (uint32_t i = 0; i < msg->nregions; i++) {
        const struct vhost_memory_region *r = &msg->regions[i];
        if (r->memory_size == 0 || r->guest_phys_addr + r->memory_size < r->guest_phys_addr ||
            r->userspace_addr + r->memory_size < r->userspace_addr ||
            r->mmap_offset + r->memory_size < r->mmap_offset ||
            r->mmap_offset + r->memory_size > (uint64_t)INT64_MAX) {
            VLOG_RL(WARN, "vhost", "%s: memory region %u size/offset overflows", devname, i);
            return -EPROTO;
        }
        for (uint32_t j = 0; j < i; j++) {
            const struct vhost_memory_region *o = &msg->regions[j];
            if (ranges_overlap(r->guest_phys_addr, r->memory_size, o->guest_phys_addr,
                               o->memory_size) ||
                ranges_overlap(r->userspace_addr, r->memory_size, o->userspace_addr,
                               o->memory_size)) {
                VLOG_RL(WARN, "vhost", "%s: memory regions %u and %u overlap", devname, j, i);
                return -EPROTO;
            }
        }
    }
    return 0;
}

/* Check one region's arithmetic and map it from fd into *out. */
static int map_region(const struct vhost_memory_region *r, int fd, struct vu_mem_region *out,
                      const char *devname, unsigned i)
{
    if (r->memory_size == 0 || r->guest_phys_addr + r->memory_size < r->guest_phys_addr ||
        r->userspace_addr + r->memory_size < r->userspace_addr ||
        r->mmap_offset + r->memory_size < r->mmap_offset ||
        r->mmap_offset + r->memory_size > (uint64_t)INT64_MAX) {
        VLOG_RL(WARN, "vhost", "%s: memory region %u size/offset overflows", devname, i);
        return -EPROTO;
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    uint64_t need = r->mmap_offset + r->memory_size;
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < need) {
        VLOG_RL(WARN, "vhost",
                "%s: region %u fd is %" PRIu64 " bytes, shorter than offset+size %" PRIu64, devname,
                i, (uint64_t)st.st_size, need);
        return -EPROTO;
    }
    /* hugetlbfs wants lengths in whole huge pages; st_blksize is the page size there. */
    uint64_t align = st.st_blksize > 0 ? (uint64_t)st.st_blksize : 4096;
    uint64_t len = (need + align - 1) / align * align;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        int e = -errno;
        VLOG_RL(WARN, "vhost", "%s: mmap of region %u (%" PRIu64 " bytes): %s", devname, i, len,
                strerror(errno));
        return e;
    }
    out->gpa = r->guest_phys_addr;
    out->size = r->memory_size;
    out->uva = r->userspace_addr;
    out->mmap_addr = p;
    out->mmap_size = len;
    out->host = (uint8_t *)p + r->mmap_offset;
    return 0;
}

int vu_mem_add(struct vu_mem *m, const struct vhost_memory_region *r, int fd, const char *devname)
{
    if (m->nregions == VU_MAX_MEM_SLOTS) {
        VLOG_RL(WARN, "vhost", "%s: all %d memory slots in use", devname, VU_MAX_MEM_SLOTS);
        return -EPROTO;
    }
    for (uint32_t j = 0; j < m->nregions; j++) {
        const struct vu_mem_region *o = &m->regions[j];
        if (r->guest_phys_addr + r->memory_size >= r->guest_phys_addr &&
            r->userspace_addr + r->memory_size >= r->userspace_addr &&
            (ranges_overlap(r->guest_phys_addr, r->memory_size, o->gpa, o->size) ||
             ranges_overlap(r->userspace_addr, r->memory_size, o->uva, o->size))) {
            VLOG_RL(WARN, "vhost", "%s: added memory region overlaps region %u", devname, j);
            return -EPROTO;
        }
    }
    int rc = map_region(r, fd, &m->regions[m->nregions], devname, m->nregions);
    if (rc == 0) {
        vu_guard_add(m->regions[m->nregions].mmap_addr, m->regions[m->nregions].mmap_size,
                     &m->faulted);
        m->nregions++;
    }
    return rc;
}

int vu_mem_remove(struct vu_mem *m, const struct vhost_memory_region *r, const char *devname)
{
    for (uint32_t j = 0; j < m->nregions; j++) {
        struct vu_mem_region *o = &m->regions[j];
        if (o->gpa == r->guest_phys_addr && o->size == r->memory_size) {
            vu_guard_del(o->mmap_addr);
            munmap(o->mmap_addr, o->mmap_size);
            m->regions[j] = m->regions[--m->nregions];
            memset(&m->regions[m->nregions], 0, sizeof(m->regions[0]));
            return 0;
        }
    }
    VLOG_RL(WARN, "vhost", "%s: no memory region at %#" PRIx64 " to remove", devname,
            r->guest_phys_addr);
    return -EPROTO;
}

int vu_mem_map(struct vu_mem *m, const struct vhost_memory *msg, const int *fds, unsigned nfds,
               const char *devname)
{
    int rc = check_table(msg, devname);
    if (rc)
        return rc;
    if (nfds != msg->nregions) {
        VLOG_RL(WARN, "vhost", "%s: memory table has %u regions but %u fds", devname, msg->nregions,
                nfds);
        return -EPROTO;
    }

    struct vu_mem fresh = {0};
    for (uint32_t i = 0; i < msg->nregions; i++) {
        rc = map_region(&msg->regions[i], fds[i], &fresh.regions[i], devname, i);
        if (rc)
            goto fail;
        fresh.nregions++;
    }
    vu_mem_unmap(m);
    *m = fresh;
    for (uint32_t i = 0; i < m->nregions; i++)
        vu_guard_add(m->regions[i].mmap_addr, m->regions[i].mmap_size, &m->faulted);
    return 0; /* the caller closes the fds: the mappings keep the memory */
fail:
    vu_mem_unmap(&fresh);
    return rc;
}

void vu_mem_unmap(struct vu_mem *m)
{
    for (uint32_t i = 0; i < m->nregions; i++) {
        vu_guard_del(m->regions[i].mmap_addr);
        munmap(m->regions[i].mmap_addr, m->regions[i].mmap_size);
    }
    memset(m, 0, sizeof(*m));
}
