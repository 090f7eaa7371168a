/*
 * The MAC-learning FDB: a DPDK rte_hash (lock-free readers) mapping {MAC, VLAN} to a key
 * position, and a per-FDB array of entries indexed by that position.
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

#include <rte_common.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_memory.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>
#include <rte_spinlock.h>

#define FDB_BULK_MAX RTE_HASH_LOOKUP_BULK_MAX
#define FDB_F_STATIC 1u
/*
 * A refresh writes last_seen only when it moved by more than this: a busy source would
 * otherwise dirty the entry's cache line on every frame, and every PMD that looks the MAC up
 * would take a miss. 1/16 s is far below any useful age.
 */
#define FDB_REFRESH_NS (1000000000ull / 16)
#define FDB_NAME_MAX   64

struct fdb_key {
    uint8_t mac[ETH_ALEN];
    uint16_t vlan; /* 0 until the bridge is VLAN-aware */
};
_Static_assert(sizeof(struct fdb_key) == 8, "the hash key is two 32-bit words");

struct fdb_entry {
    uint32_t port;      /* atomic; BRIDGE_PORT_NONE while free or being removed */
    uint32_t flags;     /* FDB_F_*; set in a free slot before port is published, then fixed */
    uint64_t last_seen; /* atomic; ns, caller's clock */
};

struct bridge_fdb {
    /* Read by every lookup; written only at creation (age: control thread, atomically). */
    struct rte_hash *h;
    struct fdb_entry *entries; /* indexed by key position */
    uint32_t n_slots;          /* positions the hash can return */
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

static inline void fdb_key_make(struct fdb_key *k, const struct vsw_mac *mac)
{
    memcpy(k->mac, mac->b, ETH_ALEN);
    k->vlan = 0;
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
static inline uint32_t fdb_entry_port(const struct fdb_entry *e, uint64_t now_ns, uint64_t age_ns)
{
    /* Acquire pairs with the release that published the port after flags and last_seen. */
    uint32_t port = __atomic_load_n(&e->port, __ATOMIC_ACQUIRE);

    if (port == BRIDGE_PORT_NONE || fdb_entry_aged(e, now_ns, age_ns))
        return BRIDGE_PORT_NONE;
    return port;
}

static inline struct fdb_entry *fdb_entry_at(struct bridge_fdb *fdb, int32_t pos)
{
    if (pos < 0 || (uint32_t)pos >= fdb->n_slots)
        return NULL;
    return &fdb->entries[pos];
}

/*
 * Refresh or move an existing entry for a source seen on `port`. Lock-free. Returns false
 * when the entry is being inserted or removed (port NONE) or another thread changed it under
 * us; the caller then decides under the lock.
 */
static bool fdb_entry_update(struct bridge_fdb *fdb, struct fdb_entry *e, uint32_t port,
                             uint64_t now_ns)
{
    uint32_t cur = __atomic_load_n(&e->port, __ATOMIC_ACQUIRE);

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
        if (!__atomic_compare_exchange_n(&e->port, &cur, port, false, __ATOMIC_RELEASE,
                                         __ATOMIC_RELAXED))
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

/* Learn one source under fdb->lock: look again, then update or insert. */
static void fdb_learn_locked(struct bridge_fdb *fdb, const struct fdb_key *key, uint32_t port,
                             uint64_t now_ns)
{
    struct fdb_entry *e = fdb_entry_at(fdb, rte_hash_lookup(fdb->h, key));

    if (e) {
        /*
         * Under the lock a present key always has a port (only lock holders set NONE and they
         * delete the key before unlocking). A false return means a lock-free mover won the
         * race; its port is as recent as ours.
         */
        (void)fdb_entry_update(fdb, e, port, now_ns);
        return;
    }
    if (count_get(fdb) >= fdb->max_entries) {
        stat_inc(&fdb->full);
        return;
    }
    /* -ENOSPC here means every spare slot is still waiting for an RCU grace period. */
    e = fdb_entry_at(fdb, rte_hash_add_key(fdb->h, key));
    if (!e) {
        stat_inc(&fdb->full);
        return;
    }
    __atomic_store_n(&e->flags, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&e->last_seen, now_ns, __ATOMIC_RELAXED);
    __atomic_store_n(&e->port, port, __ATOMIC_RELEASE);
    count_add(fdb, 1);
    stat_inc(&fdb->learned);
}

/*
 * Remove a key whose entry the caller has already claimed (port set to NONE). Under
 * fdb->lock. Without RCU the slot is free at once (no concurrent readers by contract); with
 * RCU rte_hash queues it and frees it after a grace period.
 */
static void fdb_remove_claimed(struct bridge_fdb *fdb, const void *key)
{
    int32_t pos = rte_hash_del_key(fdb->h, key);

    if (pos < 0)
        return;
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
    free(fdb->entries);
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
    fdb->entries = malloc(sizeof(*fdb->entries) * fdb->n_slots);
    fdb->name = strdup(name);
    if (!fdb->entries || !fdb->name) {
        fdb_free(fdb);
        errno = ENOMEM;
        return NULL;
    }
    for (uint32_t i = 0; i < fdb->n_slots; i++)
        fdb->entries[i] = (struct fdb_entry){.port = BRIDGE_PORT_NONE};

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
        .hash_func_init_val = (uint32_t)rte_rand(),
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

void bridge_fdb_learn_bulk(struct bridge_fdb *fdb, const struct vsw_mac *const macs[],
                           const uint32_t ports[], uint16_t n, uint64_t now_ns)
{
    struct fdb_key keys[FDB_BULK_MAX];
    const void *kp[FDB_BULK_MAX];
    uint32_t kport[FDB_BULK_MAX];
    int32_t pos[FDB_BULK_MAX];
    uint32_t slow[FDB_BULK_MAX];

    for (uint32_t base = 0; base < n; base += FDB_BULK_MAX) {
        uint32_t chunk = MIN(n - base, (uint32_t)FDB_BULK_MAX), nk = 0, nslow = 0;

        for (uint32_t i = base; i < base + chunk; i++) {
            if (vsw_mac_is_multicast(macs[i]) || vsw_mac_is_zero(macs[i]) ||
                !fdb_port_valid(ports[i]))
                continue;
            fdb_key_make(&keys[nk], macs[i]);
            kp[nk] = &keys[nk];
            kport[nk] = ports[i];
            nk++;
        }
        if (nk == 0 || rte_hash_lookup_bulk(fdb->h, kp, nk, pos) != 0)
            continue;
        for (uint32_t k = 0; k < nk; k++) {
            struct fdb_entry *e = fdb_entry_at(fdb, pos[k]);
            if (!e || !fdb_entry_update(fdb, e, kport[k], now_ns))
                slow[nslow++] = k;
        }
        if (nslow == 0)
            continue;
        /* New sources: one lock for the burst. Repeats of one new MAC hit the second look. */
        rte_spinlock_lock(&fdb->lock);
        for (uint32_t s = 0; s < nslow; s++)
            fdb_learn_locked(fdb, &keys[slow[s]], kport[slow[s]], now_ns);
        rte_spinlock_unlock(&fdb->lock);
    }
}

void bridge_fdb_lookup_bulk(struct bridge_fdb *fdb, const struct vsw_mac *const macs[],
                            uint32_t ports_out[], uint16_t n, uint64_t now_ns)
{
    struct fdb_key keys[FDB_BULK_MAX];
    const void *kp[FDB_BULK_MAX];
    int32_t pos[FDB_BULK_MAX];
    uint64_t age_ns = __atomic_load_n(&fdb->age_ns, __ATOMIC_RELAXED);

    for (uint32_t base = 0; base < n; base += FDB_BULK_MAX) {
        uint32_t chunk = MIN(n - base, (uint32_t)FDB_BULK_MAX);

        for (uint32_t i = 0; i < chunk; i++) {
            fdb_key_make(&keys[i], macs[base + i]);
            kp[i] = &keys[i];
        }
        if (rte_hash_lookup_bulk(fdb->h, kp, chunk, pos) != 0) {
            for (uint32_t i = 0; i < chunk; i++)
                ports_out[base + i] = BRIDGE_PORT_NONE;
            continue;
        }
        for (uint32_t i = 0; i < chunk; i++) {
            const struct fdb_entry *e = fdb_entry_at(fdb, pos[i]);
            ports_out[base + i] = e ? fdb_entry_port(e, now_ns, age_ns) : BRIDGE_PORT_NONE;
        }
    }
}

int bridge_fdb_add_static(struct bridge_fdb *fdb, const struct vsw_mac *mac, uint32_t port)
{
    struct fdb_key key;
    struct fdb_entry *e;
    int ret = 0;

    if (!mac || vsw_mac_is_multicast(mac) || vsw_mac_is_zero(mac) || !fdb_port_valid(port))
        return -EINVAL;
    fdb_key_make(&key, mac);

    rte_spinlock_lock(&fdb->lock);
    e = fdb_entry_at(fdb, rte_hash_lookup(fdb->h, &key));
    if (e && fdb_entry_is_static(e)) {
        /* Lock-free learners never write a static entry: a plain publish is enough. */
        __atomic_store_n(&e->port, port, __ATOMIC_RELEASE);
        goto out;
    }
    if (e) {
        /*
         * A dynamic entry becomes static in a fresh slot. Changing flags in place would race
         * with a lock-free mover that read "dynamic, port P" and whose compare-and-swap from
         * P succeeds again if the static port is also P (ABA). Removing the old entry makes
         * that CAS fail: its port stays NONE until the mover has passed a quiescent state.
         */
        __atomic_store_n(&e->port, BRIDGE_PORT_NONE, __ATOMIC_SEQ_CST);
        fdb_remove_claimed(fdb, &key);
    }
    if (count_get(fdb) >= fdb->max_entries ||
        !(e = fdb_entry_at(fdb, rte_hash_add_key(fdb->h, &key)))) {
        ret = -ENOSPC;
        goto out;
    }
    count_add(fdb, 1);
    __atomic_store_n(&e->flags, FDB_F_STATIC, __ATOMIC_RELAXED);
    __atomic_store_n(&e->last_seen, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&e->port, port, __ATOMIC_RELEASE);
out:
    rte_spinlock_unlock(&fdb->lock);
    return ret;
}

int bridge_fdb_del(struct bridge_fdb *fdb, const struct vsw_mac *mac)
{
    struct fdb_key key;
    struct fdb_entry *e;

    if (!mac)
        return -ENOENT;
    fdb_key_make(&key, mac);
    rte_spinlock_lock(&fdb->lock);
    e = fdb_entry_at(fdb, rte_hash_lookup(fdb->h, &key));
    if (e) {
        __atomic_store_n(&e->port, BRIDGE_PORT_NONE, __ATOMIC_SEQ_CST);
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
        if (!__atomic_compare_exchange_n(&e->port, &cur, BRIDGE_PORT_NONE, false, __ATOMIC_SEQ_CST,
                                         __ATOMIC_RELAXED))
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
    return __atomic_load_n(&e->port, __ATOMIC_RELAXED) == port;
}

static bool pick_aged(struct fdb_entry *e, uint64_t now_ns, uint64_t age_ns, uint32_t port,
                      uint32_t *claim_from)
{
    (void)port;
    *claim_from = __atomic_load_n(&e->port, __ATOMIC_ACQUIRE);
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
