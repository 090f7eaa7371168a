/*
 * switch: the registry of bridges and ports, the PMD threads, and the control-plane API that
 * the control server (JSON-RPC) calls. Every vsw_* function below runs on the control thread
 * only; the control thread is the single writer of the configuration, which it publishes to
 * the PMDs as an immutable snapshot through RCU.
 *
 * Errors: functions return 0 or a negative errno, with a message for the user in `err`
 * (struct vsw_err) when it is not NULL:
 *   -EINVAL bad name or option, -EEXIST already exists, -ENOENT no such bridge/port,
 *   -ENOSPC a limit was reached, -EBUSY bridge still has ports, other -errno from the system.
 */
#ifndef VSW_SWITCH_H
#define VSW_SWITCH_H

#include "bridge.h"
#include "common.h"
#include "loop.h"

#include <stdbool.h>
#include <stdint.h>

struct vsw;

struct vsw_err {
    char msg[256];
};

struct vsw_config {
    const char *run_dir;    /* vhost-user sockets go here (default /run/vswitch) */
    unsigned n_pmds;        /* PMD threads (default 1) */
    const int *pmd_cores;   /* CPU of each PMD, or NULL to leave unpinned */
    bool pmd_no_sleep;      /* busy-poll even when idle (default: sleep on kicks when idle) */
    uint64_t idle_sleep_us; /* idle time before a PMD sleeps (default 200 us) */
    uint64_t idle_max_us;   /* adaptive: the longest it may grow to (default 1000 us; equal to
                               idle_sleep_us: fixed) */
    const char *state_path; /* configuration file, loaded at start and rewritten on every
                               change; NULL: no persistence */
};

struct vsw *vsw_create(const struct vsw_config *cfg, struct vsw_loop *loop, struct vsw_err *err);
/* Stop the PMDs, close every port and free everything. */
void vsw_destroy(struct vsw *sw);

/* ---- bridges ---- */
#define VSW_MTU_DEFAULT 1500
#define VSW_MTU_MIN     68
#define VSW_MTU_MAX     65535

struct vsw_br_opts {
    uint32_t age_sec;  /* FDB age; 0 = default 300 */
    uint32_t max_macs; /* FDB limit; 0 = default 8192 */
    uint32_t mtu;      /* VSW_MTU_MIN..VSW_MTU_MAX; 0 = default 1500 */
};
struct vsw_br_info {
    const char *name;
    unsigned n_ports;
    uint32_t age_sec;
    uint32_t max_macs;
    uint32_t mtu;
    struct bridge_fdb_stats fdb;
};
int vsw_br_add(struct vsw *sw, const char *name, const struct vsw_br_opts *opts,
               struct vsw_err *err);
/* Fails with -EBUSY while ports remain unless `force` (then the ports are deleted too). */
int vsw_br_del(struct vsw *sw, const char *name, bool force, struct vsw_err *err);
/* Change options of an existing bridge (a field of 0 keeps the current value). */
int vsw_br_set(struct vsw *sw, const char *name, const struct vsw_br_opts *opts,
               struct vsw_err *err);
int vsw_br_foreach(struct vsw *sw, int (*fn)(const struct vsw_br_info *, void *), void *arg);

/* ---- ports ---- */
enum vsw_port_type { VSW_PORT_VHOST_USER };

enum vsw_port_mode {
    VSW_PORT_SERVER, /* vswitchd listens on run_dir/NAME.sock */
    VSW_PORT_CLIENT, /* vswitchd connects to `path` and reconnects when it goes away */
};

struct vsw_port_opts {
    enum vsw_port_type type;
    enum vsw_port_mode mode;
    const char *path;    /* client mode: the frontend's server socket */
    const char *vm_name; /* the VM the port is for (a valid name), or NULL (vm-list) */
    uint32_t vm_pid;     /* its process (the VMM's pid, > 0) when vm_name is set */
};

struct vsw_port_stats {
    uint64_t rx_packets, rx_bytes; /* from the port into the switch */
    uint64_t tx_packets, tx_bytes; /* from the switch out of the port */
    uint64_t drops[VSW_DROP__COUNT];
    uint64_t msg_errors;   /* vhost-user: malformed messages */
    uint64_t queue_errors; /* vhost-user: queues stopped for malformed rings */
    uint64_t msg_refused;  /* vhost-user: requests refused, connection kept (NET_SET_MTU) */
    uint64_t rarp_sent;    /* vhost-user: SEND_RARP announcements injected */
    uint64_t log_errors;   /* vhost-user: dirty-log writes outside the log (migration) */
};

struct vsw_port_info {
    const char *name;
    const char *bridge;
    const char *type;  /* "vhost-user" */
    const char *path;  /* socket path */
    const char *mode;  /* "server" or "client" */
    const char *state; /* "listening", "connecting", "connected", "running" */
    uint32_t index;    /* switch port index (as in the FDB) */
    uint16_t n_queue_pairs;
    uint32_t mtu;        /* frames longer than this (plus Ethernet and VLAN header) are dropped
                            at egress: the guest's MTU if it set one, capped by the bridge's */
    uint32_t guest_mtu;  /* the MTU the guest set (NET_SET_MTU), 0 if none */
    uint64_t features;   /* vhost-user: virtio features negotiated (0 before) */
    const char *vm_name; /* the VM that asked for the port, or NULL */
    uint32_t vm_pid;     /* 0 when vm_name is NULL */
    struct vsw_port_stats stats;
};

/* Add a port. For a vhost-user server port the socket path is run_dir/NAME.sock; a client
 * port connects to opts->path (absolute) and retries every second until it can. */
int vsw_port_add(struct vsw *sw, const char *bridge, const char *name,
                 const struct vsw_port_opts *opts, struct vsw_err *err);
int vsw_port_del(struct vsw *sw, const char *name, struct vsw_err *err);
/* Every port, or only the ports of `bridge` when not NULL (-ENOENT if no such bridge). */
int vsw_port_foreach(struct vsw *sw, const char *bridge,
                     int (*fn)(const struct vsw_port_info *, void *), void *arg);
int vsw_port_get(struct vsw *sw, const char *name, struct vsw_port_info *out);

/* ---- FDB ---- */
struct vsw_fdb_entry {
    struct bridge_fdb_entry_info e;
    const char *port_name;
};
int vsw_fdb_foreach(struct vsw *sw, const char *bridge,
                    int (*fn)(const struct vsw_fdb_entry *, void *), void *arg);
/* Pin `mac` to `port` (a member of `bridge`): never ages, never moves. */
int vsw_fdb_add(struct vsw *sw, const char *bridge, const struct vsw_mac *mac, const char *port,
                struct vsw_err *err);
/* Forget `mac` (static or learnt). */
int vsw_fdb_del(struct vsw *sw, const char *bridge, const struct vsw_mac *mac, struct vsw_err *err);

/* ---- PMD statistics ---- */
struct vsw_pmd_info {
    unsigned id;
    int core; /* -1 when not pinned */
    unsigned n_rxqs;
    uint64_t packets; /* frames received */
    uint64_t busy_cycles, idle_cycles;
    uint64_t sleeps;                 /* times it went to sleep on the kicks */
    uint64_t idle_poll_us;           /* how long it now polls an idle ring before sleeping */
    uint64_t drops[VSW_DROP__COUNT]; /* classification drops (no dest, runt, ...) */
};
int vsw_pmd_foreach(struct vsw *sw, int (*fn)(const struct vsw_pmd_info *, void *), void *arg);

#endif
