/*
 * Internal structures of src/switch: the port and bridge registry (control thread), the
 * immutable snapshot the PMDs read (published with RCU), and the PMD threads.
 *
 * Lock order: there are no locks on the control thread (it is the single writer); PMDs take
 * only a destination queue's spinlock inside a port's tx_burst. Anything a PMD can reach is
 * freed only after rte_rcu_qsbr_synchronize() (sw_rcu_sync()).
 */
#ifndef VSW_SW_INT_H
#define VSW_SW_INT_H

#include "bridge.h"
#include "port.h"
#include "switch.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#define SW_MAX_PORTS 4096
#define SW_MAX_PMDS  64
#define SW_BURST     32

struct sw_bridge;

struct sw_port {
    char name[VSW_NAME_MAX];
    uint32_t index;
    struct sw_bridge *br;
    const struct port_class *cls;
    struct vsw *sw;
    void *priv;     /* the port type's state */
    char path[108]; /* vhost-user socket path */
    enum vsw_port_mode mode;
    char vm_name[VSW_NAME_MAX]; /* the VM the port is for; "" if none */
    uint32_t vm_pid;
    struct sw_port *next; /* registry list */
};

struct sw_bridge {
    char name[VSW_NAME_MAX];
    struct bridge_fdb *fdb;
    uint32_t age_sec, max_macs;
    uint32_t mtu;
    unsigned n_ports;
    struct sw_bridge *next;
};

/* What a PMD needs about one bridge: its FDB and its members (for flooding). */
struct snap_bridge {
    struct bridge_fdb *fdb;
    uint32_t n_members;
    struct sw_port **members;
};

struct snap_rxq {
    struct sw_port *port;
    uint16_t qid;
};

struct snap_pmd {
    uint32_t n_rxq;
    struct snap_rxq *rxq;
};

/* Immutable once published. */
struct sw_snapshot {
    uint64_t gen;
    uint32_t n_ports;             /* size of the arrays below (max index + 1) */
    struct sw_port **ports;       /* by port index; NULL for a free index */
    struct snap_bridge **port_br; /* by port index: the bridge of that port */
    uint32_t n_bridges;
    struct snap_bridge *bridges;
    unsigned n_pmds;
    struct snap_pmd pmds[]; /* n_pmds */
};

struct pmd_stats {
    uint64_t packets;
    uint64_t busy_cycles, idle_cycles;
    uint64_t sleeps;
    uint64_t drops[VSW_DROP__COUNT];
};

struct sw_pmd {
    struct vsw *sw;
    unsigned id;
    int core;
    pthread_t thread;
    int wake_fd; /* eventfd: the control thread wakes a sleeping PMD */
    struct pmd_stats stats;
    uint64_t idle_window_ns; /* poll this long without frames before sleeping (adaptive) */
    uint32_t n_rxq_seen;
    struct pkt *offload_scratch; /* SW_BURST packets: software segmentation (sw_offload.c) */
};

struct vsw {
    struct vsw_config cfg;
    char run_dir[PATH_MAX / 2];
    struct vsw_loop *loop;
    struct rte_rcu_qsbr *rcu;
    struct sw_snapshot *snap; /* RCU-published */
    uint64_t gen;
    bool stopping;
    unsigned n_pmds;
    struct sw_pmd pmds[SW_MAX_PMDS];
    struct sw_port *ports;
    struct sw_bridge *bridges;
    uint32_t next_index;
    int age_timer;
    char state_path[PATH_MAX / 2]; /* empty: no persistence */
    bool state_loading;
};

/* Persistence (state.c): save after every configuration change; load once at start. */
void sw_state_save(struct vsw *sw);
int sw_state_load(struct vsw *sw);

/* Rebuild the snapshot from the registry and publish it; waits for the PMDs to let go of the
 * old one before freeing it. */
void sw_publish(struct vsw *sw);
/* Wait until no PMD is inside a burst that started before this call. */
void sw_rcu_sync(struct vsw *sw);
/* Wake the PMDs sleeping on their kicks (work for them appeared elsewhere). Never blocks. */
void sw_pmds_wake(struct vsw *sw);

int sw_pmds_start(struct vsw *sw, struct vsw_err *err);
void sw_pmds_stop(struct vsw *sw);
void *sw_pmd_main(void *arg);
uint64_t sw_pmd_idle_window(uint64_t window, uint64_t idle_ns, uint64_t min_ns, uint64_t max_ns);

#endif
