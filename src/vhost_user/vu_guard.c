/*
 * Guest memory a frontend takes away under us. A region is a MAP_SHARED mapping of the
 * frontend's file; vu_mem.c checks the file is large enough when it maps it, but a file that
 * is not sealed against shrinking (hugetlbfs files, memfds without seals: DPDK virtio-user,
 * many VMMs) can be truncated later, and the next access to a page past the new end raises
 * SIGBUS in whichever thread touched it — a PMD serving every port, or the control thread.
 * One lying guest must not take the switch down.
 *
 * So every region mapping is registered here, and a SIGBUS handler that finds the faulting
 * address in one replaces the whole mapping with anonymous zero pages (mmap MAP_FIXED is
 * async-signal-safe) and raises the owning memory table's `faulted` flag. The faulting
 * access is then retried and reads zeros or writes into pages nobody shares. The datapath
 * checks the flag once per burst and stops that device's queues with a log line and a
 * counter; a new memory table from the frontend starts it again. A SIGBUS at any other
 * address is not ours: the previous disposition is restored and the access faults again.
 *
 * Threads: vu_guard_add/del on the control thread (serialised by a mutex, so tests with
 * several devices may call them from anywhere); the handler on any thread, lock-free: a slot
 * is published by a release store of its start address and retired by storing 0, and a
 * mapping is unregistered before it is unmapped.
 */
#include "vu_int.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>

#define MOD          "vhost"
#define VU_GUARD_MAX 4096 /* mappings: devices x memory slots */

struct guard_slot {
    uintptr_t start; /* atomic; 0 = free */
    size_t len;
    uint32_t *faulted;
};

static struct guard_slot slots[VU_GUARD_MAX];
static uint32_t n_slots; /* high-water mark; atomic */
static uint64_t n_faults;
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
static struct sigaction previous;

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    const uintptr_t a = (uintptr_t)si->si_addr;
    const uint32_t n = __atomic_load_n(&n_slots, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        const uintptr_t s = __atomic_load_n(&slots[i].start, __ATOMIC_ACQUIRE);
        if (s == 0 || a < s || a - s >= slots[i].len)
            continue;
        void *p = mmap((void *)s, slots[i].len, PROT_READ | PROT_WRITE,
                       MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            break;
        __atomic_store_n(slots[i].faulted, 1, __ATOMIC_RELEASE);
        __atomic_add_fetch(&n_faults, 1, __ATOMIC_RELAXED);
        return;
    }
    /* Not guest memory: a bug of ours. Let it fault again with what was there before. */
    sigaction(sig, &previous, NULL);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &previous) < 0)
        VLOG(WARN, MOD, "cannot catch SIGBUS: a frontend truncating its memory would stop us");
}

void vu_guard_add(void *addr, size_t len, uint32_t *faulted)
{
    pthread_once(&installed, install);
    pthread_mutex_lock(&slots_lock);
    uint32_t n = __atomic_load_n(&n_slots, __ATOMIC_RELAXED), i = 0;
    while (i < n && __atomic_load_n(&slots[i].start, __ATOMIC_RELAXED) != 0)
        i++;
    if (i == VU_GUARD_MAX) {
        pthread_mutex_unlock(&slots_lock);
        VLOG_RL(WARN, MOD, "more than %d guest mappings: this one is not guarded against SIGBUS",
                VU_GUARD_MAX);
        return;
    }
    slots[i].len = len;
    slots[i].faulted = faulted;
    __atomic_store_n(&slots[i].start, (uintptr_t)addr, __ATOMIC_RELEASE);
    if (i == n)
        __atomic_store_n(&n_slots, n + 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&slots_lock);
}

void vu_guard_del(void *addr)
{
    pthread_mutex_lock(&slots_lock);
    uint32_t n = __atomic_load_n(&n_slots, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < n; i++)
        if (__atomic_load_n(&slots[i].start, __ATOMIC_RELAXED) == (uintptr_t)addr)
            __atomic_store_n(&slots[i].start, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&slots_lock);
}

uint64_t vu_guard_faults(void)
{
    return __atomic_load_n(&n_faults, __ATOMIC_RELAXED);
}
