/*
 * The MAC-learning FDB: a DPDK rte_hash (lock-free readers) mapping {MAC, VLAN} to a key
 * position, and a per-FDB array of entries indexed by that position.
 *
 * The datapath mostly bypasses rte_hash. A lookup there touches four random cache lines (both
 * candidate buckets, which it always prefetches, the key slot and then our entry); with a
 * million MACs each is a cache and TLB miss. So the FDB keeps its own "direct index": one
 * cache line per hash bucket, eight words of {32-bit hash, position + 1}, and each entry holds
 * its key. A hit costs two lines (index bucket, entry), both prefetched a whole burst ahead, in
 * memory advised for transparent huge pages. The index is only a hint: a hit counts only after
 * the entry's key is checked (see fdb_entry_check), and whatever it misses (a bucket that was
 * full at insert time, a new MAC, an unknown destination) is looked up in rte_hash, which
 * stays the authority. The index is changed only under fdb->lock, next to the hash.
 * Measured with vsw-bench (64 B bidir, 3 A/B pairs): 1k-128k MACs 20-30 cycles/pkt fewer; at
 * 1M MACs about the same as rte_hash alone (~265), bound by the index lines that still miss
 * (two a frame); huge pages are worth ~17 of those cycles there.
 *
 * Threads and locks:
 * - bridge_fdb_lookup_bulk() and the refresh/move part of bridge_fdb_learn_bulk() run on PMD
 *   threads without a lock: an entry's port and last-seen time are single atomic words.
 * - inserts, deletes, flushes and the aging sweep take fdb->lock (a spinlock: PMDs take it
 *   to insert a new MAC, which is rare and short) and look the key up again under it. All
 *   rte_hash writes, including the RCU reclamation that rte_hash runs inside add/del, happen
 *   under this lock, which is why the hash needs no writer lock of its own.
 * - create/destroy/set_age/foreach/stats: control thread.
 *
 * Entry life cycle. A free slot's port is BRIDGE_PORT_NONE. An insert adds the key, then
 * fills the entry and publishes the port last (release), so a reader that finds the key
 * early sees NONE and floods. A removal claims the entry by setting its port to NONE before
 * deleting the key, so a reader that found the key just before sees NONE, never a stale
 * port. With an RCU variable, rte_hash (DQ mode) returns the slot to its free list only after
 * a grace period, so a reader holding a position from rte_hash_lookup_bulk() never reads an
 * entry that was reused for another MAC. Without one there must be no concurrent readers.
 * A move is a compare-and-swap from the port the learner read, so it fails on a claimed
 * entry; a learning thread is a reader too and must be registered with the RCU variable.
 * Flags never change on a live key (a dynamic entry made static gets a fresh slot), which
 * rules out an ABA move of a static entry. Counters are relaxed atomics.
 */
#include "bridge.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_memory.h>
#include <rte_prefetch.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>
#include <rte_spinlock.h>

#define FDB_BULK_MAX RTE_HASH_LOOKUP_BULK_MAX
#define FDB_FIND_MAX (2 * FDB_BULK_MAX) /* a burst's sources and destinations, found together */
#define FDB_F_STATIC 1u
/*
 * A refresh writes last_seen only when it moved by more than this: a busy source would
 * otherwise dirty the entry's cache line on every frame, and every PMD that looks the MAC up
 * would take a miss. 1/16 s is far below any useful age.
 */
#define FDB_REFRESH_NS (1000000000ull / 16)
#define FDB_NAME_MAX   64
#define FDB_DIX_WAYS   8 /* index words per bucket: one 64-byte line */
#define FDB_HUGE_PAGE  (2u << 20)

static const char MOD[] = "fdb";

struct fdb_key {
    uint8_t mac[ETH_ALEN];
    uint16_t vlan; /* 0 until the bridge is VLAN-aware */
};
_Static_assert(sizeof(struct fdb_key) == 8, "the hash key is two 32-bit words");

/*
 * 32 bytes, two to a line, never split across lines. The port is stored inverted so that a
 * zero page is an array of free entries: the arrays are mapped lazily and a 1M-MAC table
 * costs memory only where it is used.
 */
struct fdb_entry {
    uint64_t key;       /* atomic; the fdb_key as a word; written while free, before port */
    uint32_t port_inv;  /* atomic; ~port: 0 = BRIDGE_PORT_NONE, free or being removed */
    uint32_t flags;     /* FDB_F_*; set in a free slot before port is published, then fixed */
    uint64_t last_seen; /* atomic; ns, caller's clock */
    uint64_t unused;
};
_Static_assert(sizeof(struct fdb_entry) == 32, "two entries per cache line");

struct bridge_fdb {
    /* Read by every lookup; written only at creation (age: control thread, atomically). */
    struct rte_hash *h;
    struct fdb_entry *entries; /* indexed by key position */
    uint64_t *dix;             /* the direct index: (dix_mask + 1) buckets of FDB_DIX_WAYS */
    uint32_t dix_mask;
    uint32_t seed;               /* of fdb_hash; the same for rte_hash and the index */
    uint32_t n_slots;            /* positions the hash can return */
    size_t entries_len, dix_len; /* mapped bytes */
    uint32_t max_entries;
    uint64_t age_ns;
    struct rte_rcu_qsbr *rcu;
    void (*rcu_sync)(void *arg);
    void *rcu_sync_arg;
    char *name;
    struct bridge_fdb *next; /* live FDBs, under fdb_list_lock */

    /* Writers. Kept off the readers' cache line. */
    rte_spinlock_t lock __rte_cache_aligned;
    uint32_t count; /* keys in the hash; written under lock, read atomically */
    uint64_t learned, moved, aged, full;
    uint64_t dix_full; /* keys that found their index bucket full: rte_hash only */
};

/* Live FDBs, to refuse a duplicate name (EEXIST). The DPDK names are generated (see create). */
static pthread_mutex_t fdb_list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bridge_fdb *fdb_list;
static uint32_t fdb_seq;

static inline void stat_inc(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

/* fdb->count: changed only under fdb->lock, read by get_stats without it. */
static inline uint32_t count_get(const struct bridge_fdb *fdb)
{
    return __atomic_load_n(&fdb->count, __ATOMIC_RELAXED);
}

static inline void count_add(struct bridge_fdb *fdb, int32_t d)
{
    __atomic_store_n(&fdb->count, count_get(fdb) + (uint32_t)d, __ATOMIC_RELAXED);
}

/*
 * jhash with a per-FDB random salt, not CRC: guests choose their source MACs, and CRC is
 * linear, so two keys that collide under one seed collide under every seed. With a keyed
 * jhash a guest cannot aim many MACs at one bucket.
 */
static uint32_t fdb_hash(const void *key, uint32_t key_len, uint32_t init_val)
{
    uint32_t w[2];

    (void)key_len;
    memcpy(w, key, sizeof(w));
    return rte_jhash_2words(w[0], w[1], init_val);
}

static inline uint64_t fdb_key_word(const struct vsw_mac *mac)
{
    struct fdb_key k;
    uint64_t w;

    memcpy(k.mac, mac->b, ETH_ALEN);
    k.vlan = 0;
    memcpy(&w, &k, sizeof(w));
    return w;
}

/* fdb_hash() of a key held as a word: the same value rte_hash computes for it. */
static inline uint32_t fdb_hash_word(const struct bridge_fdb *fdb, uint64_t key)
{
    return fdb_hash(&key, sizeof(key), fdb->seed);
}

/*
 * Port accessors. Acquire pairs with the release that published the port after key, flags
 * and last_seen.
 */
static inline uint32_t port_load_acquire(const struct fdb_entry *e)
{
    return ~__atomic_load_n(&e->port_inv, __ATOMIC_ACQUIRE);
}

static inline uint32_t port_load_relaxed(const struct fdb_entry *e)
{
    return ~__atomic_load_n(&e->port_inv, __ATOMIC_RELAXED);
}

static inline void port_publish(struct fdb_entry *e, uint32_t port)
{
    __atomic_store_n(&e->port_inv, ~port, __ATOMIC_RELEASE);
}

/* Claim an entry for removal: readers and movers see NONE from now on. */
static inline void port_claim(struct fdb_entry *e)
{
    __atomic_store_n(&e->port_inv, ~BRIDGE_PORT_NONE, __ATOMIC_SEQ_CST);
}

static inline bool port_cas(struct fdb_entry *e, uint32_t from, uint32_t to, int success_order)
{
    uint32_t expect = ~from;

    return __atomic_compare_exchange_n(&e->port_inv, &expect, ~to, false, success_order,
                                       __ATOMIC_RELAXED);
}

static inline bool fdb_idle_too_long(uint64_t last_seen, uint64_t now_ns, uint64_t age_ns)
{
    /* Clocks of different threads may disagree slightly: "seen in the future" is fresh. */
    return now_ns > last_seen && now_ns - last_seen > age_ns;
}

static inline bool fdb_entry_is_static(const struct fdb_entry *e)
{
    return __atomic_load_n(&e->flags, __ATOMIC_RELAXED) & FDB_F_STATIC;
}

static inline bool fdb_entry_aged(const struct fdb_entry *e, uint64_t now_ns, uint64_t age_ns)
{
    return !fdb_entry_is_static(e) &&
           fdb_idle_too_long(__atomic_load_n(&e->last_seen, __ATOMIC_RELAXED), now_ns, age_ns);
}

/* The entry's port as a lookup sees it: NONE when free, being removed or aged out. */
static inline uint32_t fdb_port_seen(const struct fdb_entry *e, uint32_t port, uint64_t now_ns,
                                     uint64_t age_ns)
{
    if (port == BRIDGE_PORT_NONE || fdb_entry_aged(e, now_ns, age_ns))
        return BRIDGE_PORT_NONE;
    return port;
}

static inline uint32_t fdb_entry_port(const struct fdb_entry *e, uint64_t now_ns, uint64_t age_ns)
{
    return fdb_port_seen(e, port_load_acquire(e), now_ns, age_ns);
}

static inline struct fdb_entry *fdb_entry_at(struct bridge_fdb *fdb, int32_t pos)
{
    if (pos < 0 || (uint32_t)pos >= fdb->n_slots)
        return NULL;
    return &fdb->entries[pos];
}

/* ---- the direct index (hint only; changed under fdb->lock) ---- */

static inline uint64_t *dix_bucket(const struct bridge_fdb *fdb, uint32_t hv)
{
    return &fdb->dix[(size_t)(hv & fdb->dix_mask) * FDB_DIX_WAYS];
}

static inline uint64_t dix_word(uint32_t hv, int32_t pos)
{
    return (uint64_t)hv << 32 | ((uint32_t)pos + 1); /* 0 is an empty way */
}

/* The position of the first way holding hash `hv`, or -1. Lock-free. */
static inline int32_t dix_find(const struct bridge_fdb *fdb, uint32_t hv)
{
    const uint64_t *b = dix_bucket(fdb, hv);

    for (unsigned w = 0; w < FDB_DIX_WAYS; w++) {
        uint64_t x = __atomic_load_n(&b[w], __ATOMIC_RELAXED);
        if ((uint32_t)(x >> 32) == hv && (uint32_t)x != 0)
            return (int32_t)((uint32_t)x - 1);
    }
    return -1;
}

/* Under fdb->lock. A full bucket leaves the key to rte_hash alone. */
static void dix_add(struct bridge_fdb *fdb, uint32_t hv, int32_t pos)
{
    uint64_t *b = dix_bucket(fdb, hv);

    for (unsigned w = 0; w < FDB_DIX_WAYS; w++) {
        if (__atomic_load_n(&b[w], __ATOMIC_RELAXED) == 0) {
            __atomic_store_n(&b[w], dix_word(hv, pos), __ATOMIC_RELAXED);
            return;
        }
    }
    stat_inc(&fdb->dix_full);
}

/* Under fdb->lock. */
static void dix_del(struct bridge_fdb *fdb, uint32_t hv, int32_t pos)
{
    uint64_t *b = dix_bucket(fdb, hv);
    uint64_t word = dix_word(hv, pos);

    for (unsigned w = 0; w < FDB_DIX_WAYS; w++) {
        if (__atomic_load_n(&b[w], __ATOMIC_RELAXED) == word) {
            __atomic_store_n(&b[w], 0, __ATOMIC_RELAXED);
            return;
        }
    }
}

/*
 * Whether `e` holds `key`, with *port the port read before the key was checked (NONE while
 * the entry is being inserted or removed). The order is what makes a stale hint harmless: a
 * port published for another key was released after that key was written, so the acquire
 * makes the check see that key and fail. A port seen before a removal's claim belongs to
 * `key`, because the position cannot be reused until this reader passes a quiescent state.
 */
static inline bool fdb_entry_check(const struct fdb_entry *e, uint64_t key, uint32_t *port)
{
    *port = port_load_acquire(e);
    return __atomic_load_n(&e->key, __ATOMIC_RELAXED) == key;
}

/*
 * Find keys[0..n) (n <= FDB_FIND_MAX): ent[i] is the entry holding keys[i] and port[i] the
 * port it had (see fdb_entry_check), or ent[i] is NULL when the key is not in the table.
 * Lock-free. Three passes so that each pass's misses overlap: hash and prefetch the index
 * buckets, search them and prefetch the entries, check the entries. Keys the index does not
 * resolve go to rte_hash in bulk, with the hashes already computed.
 */
static void fdb_find_bulk(struct bridge_fdb *fdb, const uint64_t keys[], uint32_t n,
                          struct fdb_entry *ent[], uint32_t port[])
{
    hash_sig_t hv[FDB_FIND_MAX], miss_hv[FDB_FIND_MAX];
    int32_t pos[FDB_FIND_MAX];
    const void *miss_key[FDB_FIND_MAX];
    uint32_t miss[FDB_FIND_MAX], nmiss = 0;

    for (uint32_t i = 0; i < n; i++) {
        hv[i] = fdb_hash_word(fdb, keys[i]);
        rte_prefetch0(dix_bucket(fdb, hv[i]));
    }
    for (uint32_t i = 0; i < n; i++) {
        pos[i] = dix_find(fdb, hv[i]);
        if (pos[i] >= 0)
            rte_prefetch0(&fdb->entries[pos[i]]);
    }
    for (uint32_t i = 0; i < n; i++) {
        struct fdb_entry *e = fdb_entry_at(fdb, pos[i]);

        if (e && fdb_entry_check(e, keys[i], &port[i])) {
            ent[i] = e;
            continue;
        }
        ent[i] = NULL;
        miss_key[nmiss] = &keys[i];
        miss_hv[nmiss] = hv[i];
        miss[nmiss++] = i;
    }
    for (uint32_t base = 0; base < nmiss; base += FDB_BULK_MAX) {
        uint32_t chunk = MIN(nmiss - base, (uint32_t)FDB_BULK_MAX);

        if (rte_hash_lookup_with_hash_bulk(fdb->h, miss_key + base, miss_hv + base, chunk, pos) !=
            0)
            continue;
        for (uint32_t m = 0; m < chunk; m++) {
            struct fdb_entry *e = fdb_entry_at(fdb, pos[m]);
            uint32_t i = miss[base + m];

            if (e && fdb_entry_check(e, keys[i], &port[i]))
                ent[i] = e;
        }
    }
}

/*
 * Refresh or move an existing entry for a source seen on `port`; `cur` is the port the
 * caller read with the entry's key check. Lock-free. Returns false when the entry is being
 * inserted or removed (cur NONE) or another thread changed it under us; the caller then
 * decides under the lock.
 */
static bool fdb_entry_update(struct bridge_fdb *fdb, struct fdb_entry *e, uint32_t cur,
                             uint32_t port, uint64_t now_ns)
{
    if (cur == BRIDGE_PORT_NONE)
        return false;
    if (fdb_entry_is_static(e))
        return true; /* static entries never move and need no refresh */

    uint64_t last = __atomic_load_n(&e->last_seen, __ATOMIC_RELAXED);
    if (cur != port) {
        bool was_known =
            !fdb_idle_too_long(last, now_ns, __atomic_load_n(&fdb->age_ns, __ATOMIC_RELAXED));
        /*
         * A compare-and-swap, not a store: a lock holder removing the entry sets NONE first,
         * and a plain store here could resurrect the port of an entry whose key is gone.
         */
        if (!port_cas(e, cur, port, __ATOMIC_RELEASE))
            return false;
        __atomic_store_n(&e->last_seen, now_ns, __ATOMIC_RELAXED);
        if (was_known) /* an aged-out entry seen again is a re-learn, not a move */
            stat_inc(&fdb->moved);
        return true;
    }
    if (now_ns > last && now_ns - last > FDB_REFRESH_NS)
        __atomic_store_n(&e->last_seen, now_ns, __ATOMIC_RELAXED);
    return true;
}

/* Under fdb->lock: the entry of a key, or NULL. */
static struct fdb_entry *fdb_find_locked(struct bridge_fdb *fdb, uint64_t key, uint32_t hv)
{
    return fdb_entry_at(fdb, rte_hash_lookup_with_hash(fdb->h, &key, hv));
}

/*
 * Under fdb->lock: insert a key known to be absent and publish it. Returns 0 or -ENOSPC
 * (the limit, or every spare slot still waiting for an RCU grace period).
 */
static int fdb_insert_locked(struct bridge_fdb *fdb, uint64_t key, uint32_t hv, uint32_t port,
                             uint32_t flags, uint64_t last_seen)
{
    struct fdb_entry *e;
    int32_t pos;

    if (count_get(fdb) >= fdb->max_entries)
        return -ENOSPC;
    pos = rte_hash_add_key_with_hash(fdb->h, &key, hv);
    if (!(e = fdb_entry_at(fdb, pos)))
        return -ENOSPC;
    /* The slot's port is NONE (free): fill it, then publish the port last. */
    __atomic_store_n(&e->key, key, __ATOMIC_RELAXED);
    __atomic_store_n(&e->flags, flags, __ATOMIC_RELAXED);
    __atomic_store_n(&e->last_seen, last_seen, __ATOMIC_RELAXED);
    port_publish(e, port);
    dix_add(fdb, hv, pos);
    count_add(fdb, 1);
    return 0;
}

/* Learn one source under fdb->lock: look again, then update or insert. */
static void fdb_learn_locked(struct bridge_fdb *fdb, uint64_t key, uint32_t port, uint64_t now_ns)
{
    uint32_t hv = fdb_hash_word(fdb, key);
    struct fdb_entry *e = fdb_find_locked(fdb, key, hv);

    if (e) {
        /*
         * Under the lock a present key always has a port (only lock holders set NONE and they
         * delete the key before unlocking). A false return means a lock-free mover won the
         * race; its port is as recent as ours.
         */
        (void)fdb_entry_update(fdb, e, port_load_acquire(e), port, now_ns);
        return;
    }
    if (fdb_insert_locked(fdb, key, hv, port, 0, now_ns) != 0) {
        stat_inc(&fdb->full);
        return;
    }
    stat_inc(&fdb->learned);
}

/*
 * Remove a key whose entry the caller has already claimed (port set to NONE). Under
 * fdb->lock. Without RCU the slot is free at once (no concurrent readers by contract); with
 * RCU rte_hash queues it and frees it after a grace period.
 */
static void fdb_remove_claimed(struct bridge_fdb *fdb, const void *key)
{
    uint64_t kw;

    memcpy(&kw, key, sizeof(kw));
    uint32_t hv = fdb_hash_word(fdb, kw);
    int32_t pos = rte_hash_del_key_with_hash(fdb->h, key, hv);

    if (pos < 0)
        return;
    dix_del(fdb, hv, pos);
    if (!fdb->rcu)
        rte_hash_free_key_with_position(fdb->h, pos);
    count_add(fdb, -1);
}

static bool fdb_name_taken(const char *name)
{
    for (const struct bridge_fdb *f = fdb_list; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return true;
    return false;
}

/*
 * Zeroed, lazily populated memory for the entries and the index. Arrays of 2 MiB or more are
 * aligned to 2 MiB and advised for transparent huge pages: their accesses are random, and
 * with 4 KiB pages a large table misses the TLB on nearly every one. Smaller arrays stay on
 * small pages (a huge page would make a small bridge cost 2 MiB of RSS per array).
 */
static void *fdb_mem_alloc(size_t size, size_t *len_out)
{
    static bool advice_refused;
    size_t len = RTE_ALIGN_CEIL(size, (size_t)4096);
    bool huge = size >= FDB_HUGE_PAGE;
    uint8_t *p, *a;

    if (huge)
        len = RTE_ALIGN_CEIL(size, (size_t)FDB_HUGE_PAGE);
    p = mmap(NULL, len + (huge ? FDB_HUGE_PAGE : 0), PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    a = p;
    if (huge) {
        /* Over-allocated by one huge page: trim to an aligned range. */
        a = (uint8_t *)RTE_ALIGN_CEIL((uintptr_t)p, (uintptr_t)FDB_HUGE_PAGE);
        if (a > p)
            munmap(p, (size_t)(a - p));
        if (a + len < p + len + FDB_HUGE_PAGE)
            munmap(a + len, (size_t)(p + len + FDB_HUGE_PAGE - (a + len)));
        if (madvise(a, len, MADV_HUGEPAGE) != 0 &&
            !__atomic_exchange_n(&advice_refused, true, __ATOMIC_RELAXED))
            VLOG(INFO, MOD, "transparent huge pages refused (%s): FDB tables use 4 KiB pages",
                 strerror(errno));
    }
    *len_out = len;
    return a;
}

static void fdb_mem_free(void *p, size_t len)
{
    if (p)
        munmap(p, len);
}

static void fdb_free(struct bridge_fdb *fdb)
{
    if (fdb->h) {
        /*
         * Readers that found this FDB before the caller unpublished it may still be inside a
         * lookup; wait them out. This also lets rte_hash_free() reclaim its whole defer queue
         * (it silently leaks the queue when entries are still pending).
         */
        if (fdb->rcu && fdb->rcu_sync)
            fdb->rcu_sync(fdb->rcu_sync_arg);
        else if (fdb->rcu)
            rte_rcu_qsbr_synchronize(fdb->rcu, RTE_QSBR_THRID_INVALID);
        rte_hash_free(fdb->h);
    }
    fdb_mem_free(fdb->entries, fdb->entries_len);
    fdb_mem_free(fdb->dix, fdb->dix_len);
    free(fdb->name);
    free(fdb);
}

struct bridge_fdb *bridge_fdb_create(const char *name, const struct bridge_fdb_config *cfg)
{
    static const struct bridge_fdb_config defaults;
    struct bridge_fdb *fdb;
    char hname[RTE_HASH_NAMESIZE];
    int err;

    if (!cfg)
        cfg = &defaults;
    if (!name || !name[0] || strnlen(name, FDB_NAME_MAX) == FDB_NAME_MAX ||
        cfg->max_entries > RTE_HASH_ENTRIES_MAX / 2) {
        errno = EINVAL;
        return NULL;
    }
    if (posix_memalign((void **)&fdb, RTE_CACHE_LINE_SIZE, sizeof(*fdb)) != 0) {
        errno = ENOMEM;
        return NULL;
    }
    memset(fdb, 0, sizeof(*fdb));
    rte_spinlock_init(&fdb->lock);
    fdb->max_entries = cfg->max_entries ? cfg->max_entries : BRIDGE_FDB_DEFAULT_MAX;
    fdb->age_ns = cfg->age_ns ? cfg->age_ns : BRIDGE_FDB_DEFAULT_AGE_SEC * 1000000000ull;
    fdb->rcu = cfg->rcu;
    fdb->rcu_sync = cfg->rcu_sync;
    fdb->rcu_sync_arg = cfg->rcu_sync_arg;
    /*
     * Twice the limit: at half load cuckoo inserts stay fast and practically never fail, and
     * the spare half holds slots that wait for an RCU grace period after a delete.
     */
    fdb->n_slots = MAX(64u, rte_align32pow2(fdb->max_entries) * 2);
    /*
     * One index way per slot: at the limit (half the slots) a bucket holds 4 keys on average
     * and fewer than 1 % of the keys find theirs full.
     */
    fdb->dix_mask = fdb->n_slots / FDB_DIX_WAYS - 1;
    fdb->seed = (uint32_t)rte_rand();
    fdb->entries = fdb_mem_alloc(sizeof(*fdb->entries) * fdb->n_slots, &fdb->entries_len);
    fdb->dix = fdb_mem_alloc(sizeof(*fdb->dix) * fdb->n_slots, &fdb->dix_len);
    fdb->name = strdup(name);
    if (!fdb->entries || !fdb->dix || !fdb->name) {
        fdb_free(fdb);
        errno = ENOMEM;
        return NULL;
    }

    pthread_mutex_lock(&fdb_list_lock);
    if (fdb_name_taken(name)) {
        err = EEXIST;
        goto fail;
    }
    /*
     * DPDK derives ring names from the hash name ("HT_<name>", "HASH_RCU_<name>") and
     * truncates them to 28 bytes, so two long names with a common prefix would collide.
     * A short generated name avoids that; `name` stays ours for uniqueness and logs.
     */
    snprintf(hname, sizeof(hname), "fdb%u", fdb_seq++);
    struct rte_hash_parameters hp = {
        .name = hname,
        .entries = fdb->n_slots,
        .key_len = sizeof(struct fdb_key),
        .hash_func = fdb_hash,
        .hash_func_init_val = fdb->seed,
        .socket_id = SOCKET_ID_ANY,
        .extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF,
    };
    fdb->h = rte_hash_create(&hp);
    if (!fdb->h) {
        err = rte_errno == EEXIST ? EEXIST : ENOMEM;
        goto fail;
    }
    if (fdb->rcu) {
        /*
         * DQ mode: a delete queues the slot with a grace-period token and returns at once;
         * queued slots are freed by later adds/deletes (under our lock) once every reader
         * registered with the RCU variable has reported quiescence. SYNC mode would block
         * the deleting thread in rte_rcu_qsbr_synchronize(), and deadlock a PMD that deletes
         * while itself an online reader. No free_key_data_func: we store no key data, and
         * rte_hash only calls it when set. Default queue size (all slots) cannot overflow.
         */
        struct rte_hash_rcu_config rc = {
            .v = fdb->rcu,
            .mode = RTE_HASH_QSBR_MODE_DQ,
        };
        if (rte_hash_rcu_qsbr_add(fdb->h, &rc) != 0) {
            err = rte_errno == EINVAL ? EINVAL : ENOMEM;
            goto fail;
        }
    }
    fdb->next = fdb_list;
    fdb_list = fdb;
    pthread_mutex_unlock(&fdb_list_lock);
    return fdb;

fail:
    pthread_mutex_unlock(&fdb_list_lock);
    fdb_free(fdb);
    errno = err;
    return NULL;
}

/*
 * Control thread. Readers must no longer be able to reach the FDB; with RCU this waits for
 * a grace period, so it must not be called by an online reader of that RCU variable.
 */
void bridge_fdb_destroy(struct bridge_fdb *fdb)
{
    if (!fdb)
        return;
    pthread_mutex_lock(&fdb_list_lock);
    for (struct bridge_fdb **pp = &fdb_list; *pp; pp = &(*pp)->next) {
        if (*pp == fdb) {
            *pp = fdb->next;
            break;
        }
    }
    pthread_mutex_unlock(&fdb_list_lock);
    fdb_free(fdb);
}

void bridge_fdb_set_age(struct bridge_fdb *fdb, uint64_t age_ns)
{
    if (!age_ns)
        age_ns = BRIDGE_FDB_DEFAULT_AGE_SEC * 1000000000ull;
    __atomic_store_n(&fdb->age_ns, age_ns, __ATOMIC_RELAXED);
}

uint64_t bridge_fdb_get_age(const struct bridge_fdb *fdb)
{
    return __atomic_load_n(&fdb->age_ns, __ATOMIC_RELAXED);
}

/* Ports go into pkt->out_port (int32_t), so larger indices can't be forwarded to. */
static inline bool fdb_port_valid(uint32_t port)
{
    return port <= INT32_MAX;
}

/*
 * Keep the learnable sources of macs[0..n) (n <= FDB_BULK_MAX) as keys[] and kport[];
 * returns how many.
 */
static uint32_t fdb_learn_keys(const struct vsw_mac *const macs[], const uint32_t ports[],
                               uint32_t n, uint64_t keys[], uint32_t kport[])
{
    uint32_t nk = 0;

    for (uint32_t i = 0; i < n; i++) {
        if (vsw_mac_is_multicast(macs[i]) || vsw_mac_is_zero(macs[i]) || !fdb_port_valid(ports[i]))
            continue;
        keys[nk] = fdb_key_word(macs[i]);
        kport[nk] = ports[i];
        nk++;
    }
    return nk;
}

/*
 * Learn keys[0..nk) (nk <= FDB_BULK_MAX) whose entries fdb_find_bulk() found. Returns how
 * many needed the lock (new sources, or entries changing under us).
 */
static uint32_t fdb_learn_found(struct bridge_fdb *fdb, const uint64_t keys[],
                                const uint32_t kport[], struct fdb_entry *const ent[],
                                const uint32_t cur[], uint32_t nk, uint64_t now_ns)
{
    uint32_t slow[FDB_BULK_MAX], nslow = 0;

    for (uint32_t k = 0; k < nk; k++) {
        if (!ent[k] || !fdb_entry_update(fdb, ent[k], cur[k], kport[k], now_ns))
            slow[nslow++] = k;
    }
    if (nslow == 0)
        return 0;
    /* New sources: one lock for the burst. Repeats of one new MAC hit the second look. */
    rte_spinlock_lock(&fdb->lock);
    for (uint32_t s = 0; s < nslow; s++)
        fdb_learn_locked(fdb, keys[slow[s]], kport[slow[s]], now_ns);
    rte_spinlock_unlock(&fdb->lock);
    return nslow;
}

void bridge_fdb_learn_bulk(struct bridge_fdb *fdb, const struct vsw_mac *const macs[],
                           const uint32_t ports[], uint16_t n, uint64_t now_ns)
{
    uint64_t keys[FDB_BULK_MAX];
    uint32_t kport[FDB_BULK_MAX], cur[FDB_BULK_MAX];
    struct fdb_entry *ent[FDB_BULK_MAX];

    for (uint32_t base = 0; base < n; base += FDB_BULK_MAX) {
        uint32_t chunk = MIN(n - base, (uint32_t)FDB_BULK_MAX);
        uint32_t nk = fdb_learn_keys(macs + base, ports + base, chunk, keys, kport);

        if (nk == 0)
            continue;
        fdb_find_bulk(fdb, keys, nk, ent, cur);
        fdb_learn_found(fdb, keys, kport, ent, cur, nk, now_ns);
    }
}

/*
 * Both lookups of a burst in one fdb_find_bulk(): with a table far bigger than the caches,
 * each of its passes waits for memory, and one pass over sources and destinations together
 * waits half as often as a pass for each. The result is what learning first and looking up
 * second gives: a destination's port is read again after the sources were learnt (its entry
 * is in L1 by then), and destinations not found are looked up again when learning inserted
 * something.
 */
void bridge_fdb_learn_lookup_bulk(struct bridge_fdb *fdb, const struct vsw_mac *const srcs[],
                                  const uint32_t src_ports[], uint16_t n_src,
                                  const struct vsw_mac *const dsts[], uint32_t dst_ports[],
                                  uint16_t n_dst, uint64_t now_ns)
{
    uint64_t keys[FDB_FIND_MAX], again_keys[FDB_BULK_MAX];
    uint32_t kport[FDB_BULK_MAX], cur[FDB_FIND_MAX], again[FDB_BULK_MAX], n_again = 0;
    struct fdb_entry *ent[FDB_FIND_MAX];
    uint64_t age_ns = __atomic_load_n(&fdb->age_ns, __ATOMIC_RELAXED);

    if (n_src > FDB_BULK_MAX || n_dst > FDB_BULK_MAX) {
        bridge_fdb_learn_bulk(fdb, srcs, src_ports, n_src, now_ns);
        bridge_fdb_lookup_bulk(fdb, dsts, dst_ports, n_dst, now_ns);
        return;
    }
    uint32_t nk = fdb_learn_keys(srcs, src_ports, n_src, keys, kport);
    for (uint32_t j = 0; j < n_dst; j++)
        keys[nk + j] = fdb_key_word(dsts[j]);
    fdb_find_bulk(fdb, keys, nk + n_dst, ent, cur);
    bool inserted = fdb_learn_found(fdb, keys, kport, ent, cur, nk, now_ns) > 0;

    for (uint32_t j = 0; j < n_dst; j++) {
        struct fdb_entry *e = ent[nk + j];
        uint32_t port;

        if (e && fdb_entry_check(e, keys[nk + j], &port)) {
            dst_ports[j] = fdb_port_seen(e, port, now_ns, age_ns);
            continue;
        }
        dst_ports[j] = BRIDGE_PORT_NONE;
        if (inserted) {
            again_keys[n_again] = keys[nk + j];
            again[n_again++] = j;
        }
    }
    if (n_again == 0)
        return;
    fdb_find_bulk(fdb, again_keys, n_again, ent, cur);
    for (uint32_t a = 0; a < n_again; a++)
        if (ent[a])
            dst_ports[again[a]] = fdb_port_seen(ent[a], cur[a], now_ns, age_ns);
}

void bridge_fdb_lookup_bulk(struct bridge_fdb *fdb, const struct vsw_mac *const macs[],
                            uint32_t ports_out[], uint16_t n, uint64_t now_ns)
{
    uint64_t keys[FDB_BULK_MAX];
    uint32_t cur[FDB_BULK_MAX];
    struct fdb_entry *ent[FDB_BULK_MAX];
    uint64_t age_ns = __atomic_load_n(&fdb->age_ns, __ATOMIC_RELAXED);

    for (uint32_t base = 0; base < n; base += FDB_BULK_MAX) {
        uint32_t chunk = MIN(n - base, (uint32_t)FDB_BULK_MAX);

        for (uint32_t i = 0; i < chunk; i++)
            keys[i] = fdb_key_word(macs[base + i]);
        fdb_find_bulk(fdb, keys, chunk, ent, cur);
        for (uint32_t i = 0; i < chunk; i++)
            ports_out[base + i] =
                ent[i] ? fdb_port_seen(ent[i], cur[i], now_ns, age_ns) : BRIDGE_PORT_NONE;
    }
}

int bridge_fdb_add_static(struct bridge_fdb *fdb, const struct vsw_mac *mac, uint32_t port)
{
    uint64_t key;
    uint32_t hv;
    struct fdb_entry *e;
    int ret = 0;

    if (!mac || vsw_mac_is_multicast(mac) || vsw_mac_is_zero(mac) || !fdb_port_valid(port))
        return -EINVAL;
    key = fdb_key_word(mac);
    hv = fdb_hash_word(fdb, key);

    rte_spinlock_lock(&fdb->lock);
    e = fdb_find_locked(fdb, key, hv);
    if (e && fdb_entry_is_static(e)) {
        /* Lock-free learners never write a static entry: a plain publish is enough. */
        port_publish(e, port);
        goto out;
    }
    if (e) {
        /*
         * A dynamic entry becomes static in a fresh slot. Changing flags in place would race
         * with a lock-free mover that read "dynamic, port P" and whose compare-and-swap from
         * P succeeds again if the static port is also P (ABA). Removing the old entry makes
         * that CAS fail: its port stays NONE until the mover has passed a quiescent state.
         */
        port_claim(e);
        fdb_remove_claimed(fdb, &key);
    }
    ret = fdb_insert_locked(fdb, key, hv, port, FDB_F_STATIC, 0);
out:
    rte_spinlock_unlock(&fdb->lock);
    return ret;
}

int bridge_fdb_del(struct bridge_fdb *fdb, const struct vsw_mac *mac)
{
    uint64_t key;
    struct fdb_entry *e;

    if (!mac)
        return -ENOENT;
    key = fdb_key_word(mac);
    rte_spinlock_lock(&fdb->lock);
    e = fdb_find_locked(fdb, key, fdb_hash_word(fdb, key));
    if (e) {
        port_claim(e);
        fdb_remove_claimed(fdb, &key);
    }
    rte_spinlock_unlock(&fdb->lock);
    return e ? 0 : -ENOENT;
}
/*
 * Walk every key under fdb->lock and remove those `pick` selects. Deleting the key just
 * returned by rte_hash_iterate() is safe: without the extendable-bucket table a delete never
 * moves other keys, so the walk neither skips nor repeats one. The walk holds the lock for
 * the whole table (tens of microseconds at the default size); only PMDs learning a new MAC
 * wait for it.
 */
static unsigned fdb_remove_if(struct bridge_fdb *fdb, uint64_t now_ns, uint32_t port,
                              bool (*pick)(struct fdb_entry *e, uint64_t now_ns, uint64_t age_ns,
                                           uint32_t port, uint32_t *claim_from))
{
    uint64_t age_ns = __atomic_load_n(&fdb->age_ns, __ATOMIC_RELAXED);
    const void *key;
    void *data;
    uint32_t next = 0;
    unsigned removed = 0;
    int32_t pos;

    rte_spinlock_lock(&fdb->lock);
    while ((pos = rte_hash_iterate(fdb->h, &key, &data, &next)) >= 0) {
        struct fdb_entry *e = fdb_entry_at(fdb, pos);
        uint32_t cur;

        if (!e || !pick(e, now_ns, age_ns, port, &cur))
            continue;
        /* CAS: if a lock-free learner moved the entry since, it is in use; keep it. */
        if (!port_cas(e, cur, BRIDGE_PORT_NONE, __ATOMIC_SEQ_CST))
            continue;
        fdb_remove_claimed(fdb, key);
        removed++;
    }
    rte_spinlock_unlock(&fdb->lock);
    return removed;
}

static bool pick_port(struct fdb_entry *e, uint64_t now_ns, uint64_t age_ns, uint32_t port,
                      uint32_t *claim_from)
{
    (void)now_ns;
    (void)age_ns;
    *claim_from = port;
    return port_load_relaxed(e) == port;
}

static bool pick_aged(struct fdb_entry *e, uint64_t now_ns, uint64_t age_ns, uint32_t port,
                      uint32_t *claim_from)
{
    (void)port;
    *claim_from = port_load_acquire(e);
    return *claim_from != BRIDGE_PORT_NONE && fdb_entry_aged(e, now_ns, age_ns);
}

unsigned bridge_fdb_flush_port(struct bridge_fdb *fdb, uint32_t port)
{
    if (port == BRIDGE_PORT_NONE)
        return 0;
    return fdb_remove_if(fdb, 0, port, pick_port);
}

unsigned bridge_fdb_age_sweep(struct bridge_fdb *fdb, uint64_t now_ns)
{
    unsigned n = fdb_remove_if(fdb, now_ns, 0, pick_aged);

    __atomic_fetch_add(&fdb->aged, n, __ATOMIC_RELAXED);
    return n;
}

/*
 * Snapshot the live entries under the lock, then call fn without it: fn may be slow (it
 * formats replies) and may call back into the FDB (e.g. bridge_fdb_del). Returns fn's first
 * non-zero value, 0, or -ENOMEM.
 */
int bridge_fdb_foreach(struct bridge_fdb *fdb, uint64_t now_ns,
                       int (*fn)(const struct bridge_fdb_entry_info *e, void *arg), void *arg)
{
    uint64_t age_ns = __atomic_load_n(&fdb->age_ns, __ATOMIC_RELAXED);
    struct bridge_fdb_entry_info *snap = NULL;
    uint32_t n = 0, cap;
    const void *key;
    void *data;
    uint32_t next = 0;
    int32_t pos;
    int ret = 0;

    rte_spinlock_lock(&fdb->lock);
    cap = count_get(fdb);
    if (cap && !(snap = malloc(sizeof(*snap) * cap))) {
        rte_spinlock_unlock(&fdb->lock);
        return -ENOMEM;
    }
    while (n < cap && (pos = rte_hash_iterate(fdb->h, &key, &data, &next)) >= 0) {
        const struct fdb_entry *e = fdb_entry_at(fdb, pos);
        uint32_t port;

        if (!e || (port = fdb_entry_port(e, now_ns, age_ns)) == BRIDGE_PORT_NONE)
            continue;
        struct bridge_fdb_entry_info *info = &snap[n++];
        const struct fdb_key *k = key;
        memcpy(info->mac.b, k->mac, ETH_ALEN);
        info->port = port;
        info->is_static = fdb_entry_is_static(e);
        uint64_t last = __atomic_load_n(&e->last_seen, __ATOMIC_RELAXED);
        info->idle_ns = info->is_static || now_ns <= last ? 0 : now_ns - last;
    }
    rte_spinlock_unlock(&fdb->lock);

    for (uint32_t i = 0; i < n && ret == 0; i++)
        ret = fn(&snap[i], arg);
    free(snap);
    return ret;
}

void bridge_fdb_get_stats(const struct bridge_fdb *fdb, struct bridge_fdb_stats *out)
{
    out->learned = __atomic_load_n(&fdb->learned, __ATOMIC_RELAXED);
    out->moved = __atomic_load_n(&fdb->moved, __ATOMIC_RELAXED);
    out->aged = __atomic_load_n(&fdb->aged, __ATOMIC_RELAXED);
    out->full = __atomic_load_n(&fdb->full, __ATOMIC_RELAXED);
    out->entries = count_get(fdb);
}
