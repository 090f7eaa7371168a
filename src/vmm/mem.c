/*
 * Guest memory: one memfd mapped MAP_SHARED once, so vswitchd can map the same pages from the
 * fd it receives in SET_MEM_TABLE. RAM above VMM_LOW_RAM_MAX moves above 4 GiB (the 32-bit
 * hole holds the MMIO devices, IOAPIC and LAPIC). Set up by the main thread before any vCPU
 * runs; read-only afterwards, so lookups take no lock.
 */
#include "vmm_int.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

int vmm_mem_init(struct vmm_mem *m, uint64_t size)
{
    memset(m, 0, sizeof(*m));
    m->memfd = -1;
    if (size < VMM_MEM_MIN || size > VMM_MEM_MAX || size % (2ull << 20))
        return -EINVAL;

    int fd = memfd_create("vswitch-vmm-ram", MFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (ftruncate(fd, (off_t)size) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return -e;
    }
    madvise(p, size, MADV_MERGEABLE);
    m->memfd = fd;
    m->base = p;
    m->size = size;

    uint64_t low = MIN(size, VMM_LOW_RAM_MAX);
    m->regions[0] = (struct vmm_mem_region){.gpa = 0, .size = low, .offset = 0, .host = m->base};
    m->nregions = 1;
    if (size > low) {
        m->regions[1] = (struct vmm_mem_region){
            .gpa = VMM_HIGH_RAM_START, .size = size - low, .offset = low, .host = m->base + low};
        m->nregions = 2;
    }
    return 0;
}

void vmm_mem_fini(struct vmm_mem *m)
{
    if (m->base)
        munmap(m->base, m->size);
    if (m->memfd >= 0)
        close(m->memfd);
    m->base = NULL;
    m->memfd = -1;
}

int vmm_mem_register(const struct vmm_mem *m, int vmfd)
{
    for (unsigned i = 0; i < m->nregions; i++) {
        struct kvm_userspace_memory_region r = {
            .slot = i,
            .guest_phys_addr = m->regions[i].gpa,
            .memory_size = m->regions[i].size,
            .userspace_addr = (uintptr_t)m->regions[i].host,
        };
        if (ioctl(vmfd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
            return -errno;
    }
    return 0;
}

void *vmm_mem_ptr(const struct vmm_mem *m, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < m->nregions; i++) {
        const struct vmm_mem_region *r = &m->regions[i];
        /* Written so that no sum can overflow: gpa and len come from the guest. */
        if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
            return r->host + (gpa - r->gpa);
    }
    return NULL;
}

uint64_t vmm_mem_low_size(const struct vmm_mem *m)
{
    return m->regions[0].size;
}
