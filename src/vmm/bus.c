/*
 * Port-I/O and MMIO dispatch: a short table of ranges, filled before the vCPUs start and
 * read-only afterwards (no lock). Called on a vCPU thread for every I/O exit; a device's
 * handler does its own locking. Accesses nobody claims (or that cross a device's end) are
 * logged (rate-limited), counted, and read as all ones, like an empty bus.
 */
#include "vmm_int.h"

#include <errno.h>
#include <string.h>

int vmm_bus_add(struct vmm_bus *b, uint64_t base, uint64_t len, vmm_io_fn fn, void *opaque,
                const char *name)
{
    if (len == 0 || base + len < base)
        return -EINVAL;
    if (b->n >= ARRAY_SIZE(b->r))
        return -ENOSPC;
    for (unsigned i = 0; i < b->n; i++) {
        if (base < b->r[i].base + b->r[i].len && b->r[i].base < base + len)
            return -EEXIST;
    }
    b->r[b->n++] = (struct vmm_bus_range){base, len, fn, opaque, name};
    return 0;
}

bool vmm_bus_access(struct vmm_bus *b, const char *what, uint64_t addr, uint8_t *data, uint32_t len,
                    bool is_write)
{
    for (unsigned i = 0; i < b->n; i++) {
        const struct vmm_bus_range *r = &b->r[i];
        if (addr >= r->base && addr - r->base < r->len) {
            if (len > r->len - (addr - r->base)) {
                VLOG_RL(WARN, VMM_MODULE, "%s %s at %#llx len %u crosses the end of %s", what,
                        is_write ? "write" : "read", (unsigned long long)addr, len, r->name);
                __atomic_fetch_add(&b->unclaimed, 1, __ATOMIC_RELAXED);
                if (!is_write)
                    memset(data, 0xff, len);
                return false;
            }
            r->fn(r->opaque, addr - r->base, data, len, is_write);
            return true;
        }
    }
    /* Port 0x80 is the POST/delay port Linux writes all the time: not worth a line. */
    if (!(what[0] == 'p' && addr == 0x80)) {
        __atomic_fetch_add(&b->unclaimed, 1, __ATOMIC_RELAXED);
        VLOG_RL(INFO, VMM_MODULE, "unclaimed %s %s at %#llx len %u (ignored)", what,
                is_write ? "write" : "read", (unsigned long long)addr, len);
    }
    if (!is_write)
        memset(data, 0xff, len);
    return false;
}
