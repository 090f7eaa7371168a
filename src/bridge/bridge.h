/*
 * bridge: the MAC-learning forwarding database (FDB) and the L2 forwarding decision.
 *
 * Knows nothing of threads, sockets or port types: a batch of packets in, a destination per
 * packet out. Ports are the switch's port indices (uint32_t).
 *
 * Concurrency (modelled on Linux net/bridge/br_fdb.c):
 * - lookups and refreshes are lock-free (DPDK rte_hash with RW_CONCURRENCY_LF); an entry's
 *   port and last-seen time are single atomic words;
 * - inserts, deletes and the aging sweep take the FDB's spinlock and look again under it;
 * - a deleted entry's slot is reused only after every reader registered with the RCU
 *   variable given at creation has passed a quiescent state (none given: no concurrent
 *   readers, e.g. unit tests).
 */
#ifndef VSW_BRIDGE_H
#define VSW_BRIDGE_H

#include "common.h"
#include "net.h"

#include <stdint.h>

struct rte_rcu_qsbr;
struct bridge_fdb;

#define BRIDGE_FDB_DEFAULT_MAX     8192
#define BRIDGE_FDB_DEFAULT_AGE_SEC 300
#define BRIDGE_PORT_NONE           UINT32_MAX

struct bridge_fdb_config {
    uint32_t max_entries;     /* learned + static; 0 = BRIDGE_FDB_DEFAULT_MAX */
    uint64_t age_ns;          /* 0 = BRIDGE_FDB_DEFAULT_AGE_SEC */
    struct rte_rcu_qsbr *rcu; /* readers' RCU, or NULL */
    /* How to wait for a grace period when the FDB is destroyed, for readers that sleep
     * while online and must be woken (NULL: rte_rcu_qsbr_synchronize()). */
    void (*rcu_sync)(void *arg);
    void *rcu_sync_arg;
};

struct bridge_fdb_stats {
    uint64_t learned; /* new dynamic entries */
    uint64_t moved;   /* a known MAC seen on another port */
    uint64_t aged;    /* entries removed by aging */
    uint64_t full;    /* learns refused because the table was at its limit */
    uint32_t entries; /* entries now */
};

/*
 * Create an FDB. `name` must be unique among live FDBs (it names the DPDK hash).
 * Requires an initialised DPDK EAL. Returns NULL and sets errno (EINVAL, ENOMEM, EEXIST).
 */
struct bridge_fdb *bridge_fdb_create(const char *name, const struct bridge_fdb_config *cfg);
void bridge_fdb_destroy(struct bridge_fdb *fdb);

/* Change the age (control thread). Takes effect for lookups at once. */
void bridge_fdb_set_age(struct bridge_fdb *fdb, uint64_t age_ns);
uint64_t bridge_fdb_get_age(const struct bridge_fdb *fdb);

/*
 * Learn `n` (<= 64) source addresses: refresh known ones, move ones seen on a new port,
 * insert new ones (taking the lock only then). Multicast sources are ignored. Static
 * entries never move. Any thread.
 */
void bridge_fdb_learn_bulk(struct bridge_fdb *fdb, const struct vsw_mac *const macs[],
                           const uint32_t ports[], uint16_t n, uint64_t now_ns);

/*
 * Look up `n` (<= 64) destination addresses; ports_out[i] is the port, or BRIDGE_PORT_NONE
 * when unknown or aged out. Lock-free; any registered reader thread.
 */
void bridge_fdb_lookup_bulk(struct bridge_fdb *fdb, const struct vsw_mac *const macs[],
                            uint32_t ports_out[], uint16_t n, uint64_t now_ns);

/*
 * bridge_fdb_learn_bulk(srcs) then bridge_fdb_lookup_bulk(dsts), with the same result, in
 * one pass over the table (n_src, n_dst <= 64). The datapath's call.
 */
void bridge_fdb_learn_lookup_bulk(struct bridge_fdb *fdb, const struct vsw_mac *const srcs[],
                                  const uint32_t src_ports[], uint16_t n_src,
                                  const struct vsw_mac *const dsts[], uint32_t dst_ports[],
                                  uint16_t n_dst, uint64_t now_ns);

/* Add or replace a static entry (never ages, never moves). Returns 0, -ENOSPC or -EINVAL. */
int bridge_fdb_add_static(struct bridge_fdb *fdb, const struct vsw_mac *mac, uint32_t port);
/* Remove an entry (static or dynamic). Returns 0 or -ENOENT. */
int bridge_fdb_del(struct bridge_fdb *fdb, const struct vsw_mac *mac);
/* Remove every entry pointing at `port` (the port left the bridge). Returns the number removed. */
unsigned bridge_fdb_flush_port(struct bridge_fdb *fdb, uint32_t port);
/* Remove every dynamic entry idle for longer than the age. Control thread. Returns the number. */
unsigned bridge_fdb_age_sweep(struct bridge_fdb *fdb, uint64_t now_ns);

struct bridge_fdb_entry_info {
    struct vsw_mac mac;
    uint32_t port;
    bool is_static;
    uint64_t idle_ns; /* time since last seen (0 for static) */
};
/* Call fn for every live entry (not aged). Stops and returns fn's value if non-zero. */
int bridge_fdb_foreach(struct bridge_fdb *fdb, uint64_t now_ns,
                       int (*fn)(const struct bridge_fdb_entry_info *e, void *arg), void *arg);

void bridge_fdb_get_stats(const struct bridge_fdb *fdb, struct bridge_fdb_stats *out);

/*
 * The L2 decision for a burst from one bridge: learn every valid source (pkt->in_port), then
 * set each packet's out_port to a port index, PKT_OUT_FLOOD (broadcast, multicast, unknown
 * unicast) or PKT_OUT_DROP with pkt->drop set (runt, multicast source, destination learned
 * on the ingress port). `n` <= 64.
 */
void bridge_classify_burst(struct bridge_fdb *fdb, struct pkt *const pkts[], uint16_t n,
                           uint64_t now_ns);

#endif
