/*
 * The switch registry: bridges and ports, the configuration snapshot the PMDs read, RCU, the
 * PMD threads' lifecycle and the FDB aging timer. Control thread only (single writer); the
 * PMDs see the registry only through published snapshots.
 */
#include "sw_int.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_rcu_qsbr.h>

#define MOD "switch"

static void set_err(struct vsw_err *err, const char *fmt, ...) VSW_PRINTF(2, 3);
static void set_err(struct vsw_err *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* ---- DPDK: only the EAL's memory for rte_hash; no devices, no hugepages required ---- */
static bool eal_ready;

static int dpdk_init(struct vsw_err *err)
{
    if (eal_ready)
        return 0;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "--file-prefix=vswitchd_%d", (int)getpid());
    /* 1 GiB of address space for the FDBs (a 1M-MAC bridge does not fit in 128 MiB); without
     * hugepages the EAL maps it lazily, so only what the tables use becomes resident. */
    char *argv[] = {"vswitchd",    "--no-huge",      "--no-pci",          "-m",   "1024",
                    "--no-shconf", "--no-telemetry", "--log-level=error", prefix, NULL};
    cpu_set_t saved;
    sched_getaffinity(0, sizeof(saved), &saved);
    int rc = rte_eal_init((int)ARRAY_SIZE(argv) - 1, argv);
    /* The EAL pins its caller to lcore 0; the control thread runs wherever it likes. */
    sched_setaffinity(0, sizeof(saved), &saved);
    if (rc < 0) {
        set_err(err, "DPDK EAL initialisation failed: %s", strerror(rte_errno));
        return -ENODEV;
    }
    eal_ready = true;
    return 0;
}

/* ---- RCU ---- */
void sw_rcu_sync(struct vsw *sw)
{
    if (!sw->rcu)
        return;
    /* Sleeping PMDs are online readers: wake them so they pass a quiescent state. The wake
     * must come after the new token, or a PMD could report the old one and sleep again. */
    uint64_t token = rte_rcu_qsbr_start(sw->rcu);
    for (unsigned i = 0; i < sw->n_pmds; i++) {
        uint64_t one = 1;
        ssize_t w = write(sw->pmds[i].wake_fd, &one, sizeof(one));
        (void)w;
    }
    rte_rcu_qsbr_check(sw->rcu, token, true);
}

void sw_pmds_wake(struct vsw *sw)
{
    for (unsigned i = 0; i < sw->n_pmds; i++) {
        uint64_t one = 1;
        ssize_t w = write(sw->pmds[i].wake_fd, &one, sizeof(one));
        (void)w; /* a full counter wakes it just as well */
    }
}

/* The FDB waits for its readers with this: a plain rte_rcu_qsbr_synchronize() would wait for
 * sleeping PMDs to time out of poll() (up to 1 s, the control thread frozen meanwhile). */
static void fdb_rcu_sync(void *arg)
{
    sw_rcu_sync(arg);
}

/* ---- snapshot ---- */
static void snapshot_free(struct sw_snapshot *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n_bridges; i++)
        free(s->bridges[i].members);
    free(s->bridges);
    for (unsigned i = 0; i < s->n_pmds; i++)
        free(s->pmds[i].rxq);
    free(s->ports);
    free(s->port_br);
    free(s);
}

static struct sw_snapshot *snapshot_build(struct vsw *sw)
{
    struct sw_snapshot *s = calloc(1, sizeof(*s) + sizeof(struct snap_pmd) * sw->n_pmds);
    if (!s)
        return NULL;
    s->gen = ++sw->gen;
    s->n_pmds = sw->n_pmds;
    uint32_t n_ports = 0, n_br = 0, n_rxq_total = 0;
    for (struct sw_port *p = sw->ports; p; p = p->next) {
        n_ports = MAX(n_ports, p->index + 1);
        n_rxq_total += p->cls->n_rxq(p);
    }
    for (struct sw_bridge *b = sw->bridges; b; b = b->next)
        n_br++;
    s->n_ports = n_ports;
    s->ports = calloc(n_ports ? n_ports : 1, sizeof(*s->ports));
    s->port_br = calloc(n_ports ? n_ports : 1, sizeof(*s->port_br));
    s->bridges = calloc(n_br ? n_br : 1, sizeof(*s->bridges));
    bool ok = s->ports && s->port_br && s->bridges;
    for (unsigned i = 0; i < sw->n_pmds && ok; i++) {
        s->pmds[i].rxq = calloc(n_rxq_total ? n_rxq_total : 1, sizeof(struct snap_rxq));
        ok = s->pmds[i].rxq != NULL;
    }
    uint32_t bi = 0;
    for (struct sw_bridge *b = sw->bridges; b && ok; b = b->next, bi++) {
        struct snap_bridge *sb = &s->bridges[bi];
        sb->fdb = b->fdb;
        sb->members = calloc(b->n_ports ? b->n_ports : 1, sizeof(*sb->members));
        ok = sb->members != NULL;
        for (struct sw_port *p = sw->ports; p && ok; p = p->next) {
            if (p->br != b)
                continue;
            sb->members[sb->n_members++] = p;
            s->ports[p->index] = p;
            s->port_br[p->index] = sb;
        }
    }
    s->n_bridges = bi;
    /* Spread rx queues over the PMDs round-robin, in registry order. */
    unsigned next = 0;
    for (struct sw_port *p = sw->ports; p && ok; p = p->next) {
        uint16_t nq = p->cls->n_rxq(p);
        for (uint16_t q = 0; q < nq; q++) {
            struct snap_pmd *sp = &s->pmds[next++ % sw->n_pmds];
            sp->rxq[sp->n_rxq++] = (struct snap_rxq){.port = p, .qid = q};
        }
    }
    if (!ok) {
        snapshot_free(s);
        return NULL;
    }
    return s;
}

void sw_publish(struct vsw *sw)
{
    struct sw_snapshot *fresh = snapshot_build(sw);
    if (!fresh) {
        /* Keep forwarding with the old snapshot; the next change retries. */
        VLOG(ERR, MOD, "out of memory building the configuration snapshot");
        return;
    }
    struct sw_snapshot *old = sw->snap;
    __atomic_store_n(&sw->snap, fresh, __ATOMIC_RELEASE);
    sw_rcu_sync(sw);
    snapshot_free(old);
}

/* ---- PMDs ---- */
int sw_pmds_start(struct vsw *sw, struct vsw_err *err)
{
    for (unsigned i = 0; i < sw->n_pmds; i++) {
        struct sw_pmd *pmd = &sw->pmds[i];
        pmd->sw = sw;
        pmd->id = i;
        pmd->core = sw->cfg.pmd_cores ? sw->cfg.pmd_cores[i] : -1;
        pmd->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (pmd->wake_fd < 0) {
            set_err(err, "eventfd: %s", strerror(errno));
            return -errno;
        }
    }
    for (unsigned i = 0; i < sw->n_pmds; i++) {
        int rc = pthread_create(&sw->pmds[i].thread, NULL, sw_pmd_main, &sw->pmds[i]);
        if (rc) {
            set_err(err, "cannot start PMD thread: %s", strerror(rc));
            sw->n_pmds = i; /* stop those already running */
            return -rc;
        }
        char name[16];
        snprintf(name, sizeof(name), "pmd%u", i);
        pthread_setname_np(sw->pmds[i].thread, name);
    }
    return 0;
}

void sw_pmds_stop(struct vsw *sw)
{
    __atomic_store_n(&sw->stopping, true, __ATOMIC_RELEASE);
    for (unsigned i = 0; i < sw->n_pmds; i++) {
        uint64_t one = 1;
        ssize_t w = write(sw->pmds[i].wake_fd, &one, sizeof(one));
        (void)w;
        pthread_join(sw->pmds[i].thread, NULL);
    }
}

static void second_tick(void *arg)
{
    struct vsw *sw = arg;
    uint64_t now = vsw_now_ns();
    for (struct sw_bridge *b = sw->bridges; b; b = b->next)
        bridge_fdb_age_sweep(b->fdb, now);
    for (struct sw_port *p = sw->ports; p; p = p->next)
        if (p->cls->tick)
            p->cls->tick(p);
    /* A VMM that died without deleting its ports (kill -9) leaves them to us. */
    for (struct sw_port *p = sw->ports, *next; p; p = next) {
        next = p->next;
        if (p->vm_name[0] && p->vm_pid && kill((pid_t)p->vm_pid, 0) < 0 && errno == ESRCH) {
            char name[VSW_NAME_MAX];
            snprintf(name, sizeof(name), "%s", p->name);
            VLOG(INFO, MOD, "port %s: VM %s (pid %u) is gone, deleting the port", name, p->vm_name,
                 p->vm_pid);
            vsw_port_del(sw, name, NULL);
        }
    }
}

struct vsw *vsw_create(const struct vsw_config *cfg, struct vsw_loop *loop, struct vsw_err *err)
{
    if (dpdk_init(err) < 0)
        return NULL;
    struct vsw *sw = calloc(1, sizeof(*sw));
    if (!sw) {
        set_err(err, "out of memory");
        return NULL;
    }
    sw->cfg = *cfg;
    sw->loop = loop;
    sw->n_pmds = cfg->n_pmds ? cfg->n_pmds : 1;
    if (sw->n_pmds > SW_MAX_PMDS) {
        set_err(err, "at most %d PMD threads", SW_MAX_PMDS);
        free(sw);
        return NULL;
    }
    if (!sw->cfg.idle_sleep_us)
        sw->cfg.idle_sleep_us = 200;
    if (!sw->cfg.idle_max_us)
        sw->cfg.idle_max_us = 1000;
    sw->cfg.idle_max_us = MAX(sw->cfg.idle_max_us, sw->cfg.idle_sleep_us);
    snprintf(sw->run_dir, sizeof(sw->run_dir), "%s", cfg->run_dir ? cfg->run_dir : "/run/vswitch");
    sw->cfg.run_dir = sw->run_dir;
    if (mkdir(sw->run_dir, 0755) < 0 && errno != EEXIST) {
        set_err(err, "cannot create %s: %s", sw->run_dir, strerror(errno));
        free(sw);
        return NULL;
    }

    size_t sz = rte_rcu_qsbr_get_memsize(sw->n_pmds);
    sw->rcu = aligned_alloc(RTE_CACHE_LINE_SIZE,
                            (sz + RTE_CACHE_LINE_SIZE - 1) & ~(size_t)(RTE_CACHE_LINE_SIZE - 1));
    if (!sw->rcu || rte_rcu_qsbr_init(sw->rcu, sw->n_pmds) < 0) {
        set_err(err, "cannot set up RCU");
        free(sw->rcu);
        free(sw);
        return NULL;
    }
    sw->snap = snapshot_build(sw);
    if (!sw->snap) {
        set_err(err, "out of memory");
        free(sw->rcu);
        free(sw);
        return NULL;
    }
    if (sw_pmds_start(sw, err) < 0) {
        vsw_destroy(sw);
        return NULL;
    }
    sw->age_timer = vsw_loop_add_timer(loop, 1000, second_tick, sw);
    if (cfg->state_path) {
        snprintf(sw->state_path, sizeof(sw->state_path), "%s", cfg->state_path);
        sw_state_load(sw); /* a bad file is reported and set aside; we start empty */
    }
    return sw;
}

static void port_free(struct vsw *sw, struct sw_port *p);

void vsw_destroy(struct vsw *sw)
{
    if (!sw)
        return;
    sw_pmds_stop(sw);
    while (sw->ports)
        port_free(sw, sw->ports);
    while (sw->bridges) {
        struct sw_bridge *b = sw->bridges;
        sw->bridges = b->next;
        bridge_fdb_destroy(b->fdb);
        free(b);
    }
    for (unsigned i = 0; i < sw->n_pmds; i++)
        close(sw->pmds[i].wake_fd);
    snapshot_free(sw->snap);
    free(sw->rcu);
    free(sw);
    if (eal_ready) {
        /* The EAL leaves an empty runtime directory per process: take it with us. */
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
        rte_eal_cleanup();
        rmdir(dir);
        eal_ready = false;
    }
}

/* ---- bridges ---- */
static struct sw_bridge *br_find(struct vsw *sw, const char *name)
{
    for (struct sw_bridge *b = sw->bridges; b; b = b->next)
        if (strcmp(b->name, name) == 0)
            return b;
    return NULL;
}

int vsw_br_add(struct vsw *sw, const char *name, const struct vsw_br_opts *opts,
               struct vsw_err *err)
{
    if (!vsw_name_valid(name)) {
        set_err(err, "invalid bridge name '%s' (1-31 of A-Z a-z 0-9 _ . -)", name ? name : "");
        return -EINVAL;
    }
    if (br_find(sw, name)) {
        set_err(err, "bridge %s already exists", name);
        return -EEXIST;
    }
    struct sw_bridge *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    snprintf(b->name, sizeof(b->name), "%s", name);
    b->age_sec = opts && opts->age_sec ? opts->age_sec : BRIDGE_FDB_DEFAULT_AGE_SEC;
    b->max_macs = opts && opts->max_macs ? opts->max_macs : BRIDGE_FDB_DEFAULT_MAX;
    b->mtu = opts && opts->mtu ? opts->mtu : VSW_MTU_DEFAULT;
    if (b->mtu < VSW_MTU_MIN || b->mtu > VSW_MTU_MAX) {
        set_err(err, "MTU %u is outside %d..%d", b->mtu, VSW_MTU_MIN, VSW_MTU_MAX);
        free(b);
        return -EINVAL;
    }
    struct bridge_fdb_config fc = {.max_entries = b->max_macs,
                                   .age_ns = (uint64_t)b->age_sec * 1000000000ull,
                                   .rcu = sw->rcu,
                                   .rcu_sync = fdb_rcu_sync,
                                   .rcu_sync_arg = sw};
    char hname[VSW_NAME_MAX + 8];
    snprintf(hname, sizeof(hname), "fdb_%s", name);
    b->fdb = bridge_fdb_create(hname, &fc);
    if (!b->fdb) {
        int e = errno ? errno : ENOMEM;
        set_err(err, "cannot create the FDB of %s: %s", name, strerror(e));
        free(b);
        return -e;
    }
    struct sw_bridge **tail = &sw->bridges; /* keep creation order for listings */
    while (*tail)
        tail = &(*tail)->next;
    *tail = b;
    sw_publish(sw);
    VLOG(INFO, MOD, "bridge %s added (age %us, max %u MACs, MTU %u)", name, b->age_sec, b->max_macs,
         b->mtu);
    sw_state_save(sw);
    return 0;
}

int vsw_br_set(struct vsw *sw, const char *name, const struct vsw_br_opts *opts,
               struct vsw_err *err)
{
    struct sw_bridge *b = br_find(sw, name ? name : "");
    if (!b) {
        set_err(err, "no bridge %s", name ? name : "");
        return -ENOENT;
    }
    if (opts->mtu && (opts->mtu < VSW_MTU_MIN || opts->mtu > VSW_MTU_MAX)) {
        set_err(err, "MTU %u is outside %d..%d", opts->mtu, VSW_MTU_MIN, VSW_MTU_MAX);
        return -EINVAL;
    }
    if (opts->max_macs && opts->max_macs != b->max_macs) {
        /* A new limit needs a new table: swap it in, the PMDs relearn. */
        struct bridge_fdb_config fc = {.max_entries = opts->max_macs,
                                       .age_ns = (uint64_t)b->age_sec * 1000000000ull,
                                       .rcu = sw->rcu,
                                       .rcu_sync = fdb_rcu_sync,
                                       .rcu_sync_arg = sw};
        char hname[VSW_NAME_MAX + 16];
        snprintf(hname, sizeof(hname), "fdb_%s_%lu", name, (unsigned long)sw->gen);
        struct bridge_fdb *fresh = bridge_fdb_create(hname, &fc);
        if (!fresh) {
            set_err(err, "cannot create the new FDB: %s", strerror(errno));
            return -errno;
        }
        struct bridge_fdb *old = b->fdb;
        b->fdb = fresh;
        b->max_macs = opts->max_macs;
        sw_publish(sw);
        bridge_fdb_destroy(old);
    }
    if (opts->age_sec) {
        b->age_sec = opts->age_sec;
        bridge_fdb_set_age(b->fdb, (uint64_t)opts->age_sec * 1000000000ull);
    }
    if (opts->mtu && opts->mtu != b->mtu) {
        /* Guests connected already keep the MTU they set; frames above the new bridge MTU
         * are dropped at their ports from now on, and new NET_SET_MTU requests see it. */
        b->mtu = opts->mtu;
        for (struct sw_port *p = sw->ports; p; p = p->next)
            if (p->br == b && p->cls->set_mtu)
                p->cls->set_mtu(p, b->mtu);
        VLOG(INFO, MOD, "bridge %s: MTU %u", b->name, b->mtu);
    }
    sw_state_save(sw);
    return 0;
}

int vsw_br_del(struct vsw *sw, const char *name, bool force, struct vsw_err *err)
{
    struct sw_bridge *b = br_find(sw, name ? name : "");
    if (!b) {
        set_err(err, "no bridge %s", name ? name : "");
        return -ENOENT;
    }
    if (b->n_ports && !force) {
        set_err(err, "bridge %s still has %u ports (use --force to delete them too)", name,
                b->n_ports);
        return -EBUSY;
    }
    struct sw_port **pp = &sw->ports;
    while (*pp) {
        struct sw_port *p = *pp;
        if (p->br == b) {
            *pp = p->next;
            b->n_ports--;
            sw_publish(sw);
            port_free(sw, p);
        } else {
            pp = &p->next;
        }
    }
    for (struct sw_bridge **bp = &sw->bridges; *bp; bp = &(*bp)->next)
        if (*bp == b) {
            *bp = b->next;
            break;
        }
    sw_publish(sw);
    bridge_fdb_destroy(b->fdb);
    VLOG(INFO, MOD, "bridge %s deleted", b->name);
    free(b);
    sw_state_save(sw);
    return 0;
}

int vsw_br_foreach(struct vsw *sw, int (*fn)(const struct vsw_br_info *, void *), void *arg)
{
    for (struct sw_bridge *b = sw->bridges; b; b = b->next) {
        struct vsw_br_info info = {.name = b->name,
                                   .n_ports = b->n_ports,
                                   .age_sec = b->age_sec,
                                   .max_macs = b->max_macs,
                                   .mtu = b->mtu};
        bridge_fdb_get_stats(b->fdb, &info.fdb);
        int rc = fn(&info, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- ports ---- */
static struct sw_port *port_find(struct vsw *sw, const char *name)
{
    for (struct sw_port *p = sw->ports; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static int alloc_index(struct vsw *sw, uint32_t *out)
{
    for (uint32_t tries = 0; tries < SW_MAX_PORTS; tries++) {
        uint32_t idx = sw->next_index++ % SW_MAX_PORTS;
        bool used = false;
        for (struct sw_port *p = sw->ports; p && !used; p = p->next)
            used = p->index == idx;
        if (!used) {
            *out = idx;
            return 0;
        }
    }
    return -ENOSPC;
}

/* The port is out of the registry and of every published snapshot. */
static void port_free(struct vsw *sw, struct sw_port *p)
{
    if (sw->ports == p)
        sw->ports = p->next;
    bridge_fdb_flush_port(p->br->fdb, p->index);
    p->cls->close(p);
    free(p);
}

int vsw_port_add(struct vsw *sw, const char *bridge, const char *name,
                 const struct vsw_port_opts *opts, struct vsw_err *err)
{
    struct sw_bridge *b = br_find(sw, bridge ? bridge : "");
    if (!b) {
        set_err(err, "no bridge %s", bridge ? bridge : "");
        return -ENOENT;
    }
    if (!vsw_name_valid(name)) {
        set_err(err, "invalid port name '%s' (1-31 of A-Z a-z 0-9 _ . -)", name ? name : "");
        return -EINVAL;
    }
    if (port_find(sw, name)) {
        set_err(err, "port %s already exists", name);
        return -EEXIST;
    }
    struct sw_port *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    if (alloc_index(sw, &p->index) < 0) {
        set_err(err, "at most %d ports", SW_MAX_PORTS);
        free(p);
        return -ENOSPC;
    }
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->mode = opts ? opts->mode : VSW_PORT_SERVER;
    if (opts && opts->vm_name) {
        if (!vsw_name_valid(opts->vm_name) || opts->vm_pid == 0) {
            set_err(err, "invalid VM '%s' (a name of 1-31 of A-Z a-z 0-9 _ . - and a pid > 0)",
                    opts->vm_name);
            free(p);
            return -EINVAL;
        }
        snprintf(p->vm_name, sizeof(p->vm_name), "%s", opts->vm_name);
        p->vm_pid = opts->vm_pid;
    }
    if (p->mode == VSW_PORT_CLIENT) {
        const char *path = opts->path;
        if (!path || path[0] != '/' || strlen(path) >= sizeof(p->path)) {
            set_err(err, "client mode needs an absolute socket path shorter than %zu bytes",
                    sizeof(p->path));
            free(p);
            return -EINVAL;
        }
        for (struct sw_port *o = sw->ports; o; o = o->next)
            if (strcmp(o->path, path) == 0) {
                set_err(err, "port %s already uses %s", o->name, path);
                free(p);
                return -EEXIST;
            }
        snprintf(p->path, sizeof(p->path), "%s", path);
    }
    p->br = b;
    p->sw = sw;
    p->cls = &port_vhost_class;
    int rc = p->cls->open(p, err);
    if (rc < 0) {
        free(p);
        return rc;
    }
    if (p->cls->set_mtu)
        p->cls->set_mtu(p, b->mtu);
    p->next = sw->ports;
    sw->ports = p;
    b->n_ports++;
    sw_publish(sw);
    VLOG(INFO, MOD, "port %s added to %s (%s %s)", name, b->name, p->cls->type, p->path);
    sw_state_save(sw);
    return 0;
}

int vsw_port_del(struct vsw *sw, const char *name, struct vsw_err *err)
{
    struct sw_port **pp = &sw->ports;
    while (*pp && strcmp((*pp)->name, name ? name : "") != 0)
        pp = &(*pp)->next;
    struct sw_port *p = *pp;
    if (!p) {
        set_err(err, "no port %s", name ? name : "");
        return -ENOENT;
    }
    *pp = p->next;
    p->br->n_ports--;
    sw_publish(sw); /* after this no PMD can reach the port */
    VLOG(INFO, MOD, "port %s deleted", p->name);
    port_free(sw, p);
    sw_state_save(sw);
    return 0;
}

static void port_info(const struct sw_port *p, struct vsw_port_info *out)
{
    memset(out, 0, sizeof(*out));
    out->name = p->name;
    out->bridge = p->br->name;
    out->type = p->cls->type;
    out->path = p->path;
    out->mode = p->mode == VSW_PORT_CLIENT ? "client" : "server";
    out->state = p->cls->state(p);
    out->index = p->index;
    out->n_queue_pairs = p->cls->n_rxq(p);
    out->vm_name = p->vm_name[0] ? p->vm_name : NULL;
    out->vm_pid = p->vm_name[0] ? p->vm_pid : 0;
    out->mtu = p->br->mtu;
    if (p->cls->get_info)
        p->cls->get_info(p, out);
    p->cls->get_stats(p, &out->stats);
}

int vsw_port_foreach(struct vsw *sw, const char *bridge,
                     int (*fn)(const struct vsw_port_info *, void *), void *arg)
{
    struct sw_bridge *b = NULL;
    if (bridge && !(b = br_find(sw, bridge)))
        return -ENOENT;
    /* The registry is newest first; show ports in the order they were added. */
    struct sw_port *list[SW_MAX_PORTS];
    unsigned n = 0;
    for (struct sw_port *p = sw->ports; p && n < SW_MAX_PORTS; p = p->next)
        if (!b || p->br == b)
            list[n++] = p;
    while (n--) {
        struct vsw_port_info info;
        port_info(list[n], &info);
        int rc = fn(&info, arg);
        if (rc)
            return rc;
    }
    return 0;
}

int vsw_port_get(struct vsw *sw, const char *name, struct vsw_port_info *out)
{
    struct sw_port *p = port_find(sw, name ? name : "");
    if (!p)
        return -ENOENT;
    port_info(p, out);
    return 0;
}

struct fdb_walk {
    struct vsw *sw;
    int (*fn)(const struct vsw_fdb_entry *, void *);
    void *arg;
};

static int fdb_walk_one(const struct bridge_fdb_entry_info *e, void *arg)
{
    struct fdb_walk *w = arg;
    struct vsw_fdb_entry out = {.e = *e, .port_name = "?"};
    for (struct sw_port *p = w->sw->ports; p; p = p->next)
        if (p->index == e->port)
            out.port_name = p->name;
    return w->fn(&out, w->arg);
}

int vsw_fdb_foreach(struct vsw *sw, const char *bridge,
                    int (*fn)(const struct vsw_fdb_entry *, void *), void *arg)
{
    struct sw_bridge *b = br_find(sw, bridge ? bridge : "");
    if (!b)
        return -ENOENT;
    struct fdb_walk w = {.sw = sw, .fn = fn, .arg = arg};
    return bridge_fdb_foreach(b->fdb, vsw_now_ns(), fdb_walk_one, &w);
}

int vsw_fdb_add(struct vsw *sw, const char *bridge, const struct vsw_mac *mac, const char *port,
                struct vsw_err *err)
{
    struct sw_bridge *b = br_find(sw, bridge ? bridge : "");
    if (!b) {
        set_err(err, "no bridge %s", bridge ? bridge : "");
        return -ENOENT;
    }
    struct sw_port *p = port_find(sw, port ? port : "");
    if (!p || p->br != b) {
        set_err(err, "no port %s on bridge %s", port ? port : "", b->name);
        return -ENOENT;
    }
    if (vsw_mac_is_multicast(mac) || vsw_mac_is_zero(mac)) {
        set_err(err, "a static entry needs a unicast MAC");
        return -EINVAL;
    }
    int rc = bridge_fdb_add_static(b->fdb, mac, p->index);
    if (rc == -ENOSPC)
        set_err(err, "the MAC table of %s is full (%u entries)", b->name, b->max_macs);
    else if (rc < 0)
        set_err(err, "cannot add the entry: %s", strerror(-rc));
    if (rc == 0)
        sw_state_save(sw);
    return rc;
}

int vsw_fdb_del(struct vsw *sw, const char *bridge, const struct vsw_mac *mac, struct vsw_err *err)
{
    struct sw_bridge *b = br_find(sw, bridge ? bridge : "");
    if (!b) {
        set_err(err, "no bridge %s", bridge ? bridge : "");
        return -ENOENT;
    }
    char buf[18];
    int rc = bridge_fdb_del(b->fdb, mac);
    if (rc == -ENOENT)
        set_err(err, "%s is not in the MAC table of %s", vsw_mac_format(mac, buf), b->name);
    if (rc == 0)
        sw_state_save(sw);
    return rc;
}

int vsw_pmd_foreach(struct vsw *sw, int (*fn)(const struct vsw_pmd_info *, void *), void *arg)
{
    for (unsigned i = 0; i < sw->n_pmds; i++) {
        const struct sw_pmd *pmd = &sw->pmds[i];
        struct vsw_pmd_info info = {
            .id = i,
            .core = pmd->core,
            .n_rxqs = sw->snap->pmds[i].n_rxq,
            .packets = pmd->stats.packets,
            .busy_cycles = pmd->stats.busy_cycles,
            .idle_cycles = pmd->stats.idle_cycles,
            .sleeps = pmd->stats.sleeps,
            .idle_poll_us = __atomic_load_n(&pmd->idle_window_ns, __ATOMIC_RELAXED) / 1000,
        };
        memcpy(info.drops, pmd->stats.drops, sizeof(info.drops));
        int rc = fn(&info, arg);
        if (rc)
            return rc;
    }
    return 0;
}
