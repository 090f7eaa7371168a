/*
 * PMD (poll-mode driver) threads. Each owns the rx queues the snapshot gives it and
 * busy-polls them in bursts of SW_BURST. A burst is classified as a whole by the bridge, then
 * flushed per destination: one tx_burst per destination port, so a destination queue is
 * locked and notified once per burst. Frames are copied once, from the source's buffers into
 * the destination's (port classes do the copy); the source buffers are released after every
 * destination got its copy.
 *
 * Idle: after a window without a frame, the PMD asks its guests to kick, checks the rings
 * once more and sleeps in poll() on their kick eventfds and its wake eventfd. It stays an
 * online RCU reader while asleep; sw_rcu_sync() wakes it before waiting for it. Waking costs
 * what the kernel takes to schedule a sleeping thread again (tens of microseconds on a VM,
 * whose halted vCPU the host must wake), so the window adapts, like the kernel's halt
 * polling: a kick soon after going to sleep doubles it (up to cfg.idle_max_us: traffic with
 * short gaps is then served by polling), a long sleep halves it (down to cfg.idle_sleep_us:
 * an idle switch costs next to nothing).
 *
 * No syscall, lock or allocation per packet.
 */
#include "sw_int.h"
#include "sw_offload.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_rcu_qsbr.h>

#define MOD "pmd"

struct dest {
    struct sw_port *port;
    uint16_t n;
    struct pkt *pkts[SW_BURST];
};

static void process_burst(struct sw_pmd *pmd, const struct sw_snapshot *snap, struct sw_port *in,
                          uint16_t qid, struct pkt *pkts, uint16_t n)
{
    struct pkt *ptrs[SW_BURST];
    struct pkt *flood[SW_BURST];
    struct dest dests[SW_BURST];
    uint16_t nflood = 0, ndest = 0;
    const struct snap_bridge *sb = snap->port_br[in->index];

    for (uint16_t i = 0; i < n; i++)
        ptrs[i] = &pkts[i];
    bridge_classify_burst(sb->fdb, ptrs, n, vsw_now_ns());

    /* Frames of a flow come in runs: a frame for the previous frame's port skips the checks
     * and the search. */
    int32_t last_out = INT32_MIN; /* only ever a port index that passed the checks */
    struct dest *last = NULL;
    for (uint16_t i = 0; i < n; i++) {
        struct pkt *p = ptrs[i];
        int32_t out = p->out_port;
        if (out == last_out) {
            last->pkts[last->n++] = p;
            continue;
        }
        if (out == PKT_OUT_FLOOD) {
            flood[nflood++] = p;
            continue;
        }
        if (out == PKT_OUT_DROP) {
            pmd->stats.drops[p->drop < VSW_DROP__COUNT ? p->drop : VSW_DROP_NO_DEST]++;
            continue;
        }
        struct sw_port *dp = (uint32_t)out < snap->n_ports ? snap->ports[out] : NULL;
        if (!dp || snap->port_br[out] != sb || dp == in) {
            pmd->stats.drops[VSW_DROP_NO_DEST]++;
            continue;
        }
        uint16_t d = 0;
        while (d < ndest && dests[d].port != dp)
            d++;
        if (d == ndest) {
            dests[ndest].port = dp;
            dests[ndest].n = 0;
            ndest++;
        }
        dests[d].pkts[dests[d].n++] = p;
        last_out = out;
        last = &dests[d];
    }

    for (uint16_t d = 0; d < ndest; d++)
        sw_port_tx(pmd, dests[d].port, dests[d].pkts, dests[d].n);
    if (nflood) {
        bool any = false;
        for (uint32_t m = 0; m < sb->n_members; m++) {
            struct sw_port *dp = sb->members[m];
            if (dp == in)
                continue;
            any = true;
            sw_port_tx(pmd, dp, flood, nflood);
        }
        if (!any)
            pmd->stats.drops[VSW_DROP_NO_DEST] += nflood;
    }
    in->cls->rx_release(in, qid, pkts, n);
    pmd->stats.packets += n;
}

/*
 * The next idle window after a sleep that ended idle_ns after the last frame: grown when the
 * gap was one a longer window would have polled through, shrunk when it was longer than the
 * longest window.
 */
uint64_t sw_pmd_idle_window(uint64_t window, uint64_t idle_ns, uint64_t min_ns, uint64_t max_ns)
{
    if (idle_ns <= max_ns)
        window *= 2;
    else
        window /= 2;
    return MIN(MAX(window, min_ns), max_ns);
}

/*
 * Sleep until a guest kicks one of our queues or the control thread wakes us. True when a
 * guest's kick (or its frames, found before sleeping) ended it.
 */
static bool pmd_sleep(struct sw_pmd *pmd, const struct snap_pmd *sp)
{
    struct pollfd fds[1 + 256];
    unsigned nfds = 0;
    bool work = false;

    fds[nfds++] = (struct pollfd){.fd = pmd->wake_fd, .events = POLLIN};
    for (uint32_t i = 0; i < sp->n_rxq && nfds < ARRAY_SIZE(fds); i++) {
        struct snap_rxq *r = &sp->rxq[i];
        int fd = r->port->cls->rxq_notify(r->port, r->qid, true);
        if (fd >= 0)
            fds[nfds++] = (struct pollfd){.fd = fd, .events = POLLIN};
    }
    /* Frames that arrived before the guest saw our request would not kick: look again. */
    for (uint32_t i = 0; i < sp->n_rxq && !work; i++)
        work = sp->rxq[i].port->cls->rxq_has_work(sp->rxq[i].port, sp->rxq[i].qid);
    bool kicked = work;
    if (!work && sp->n_rxq <= ARRAY_SIZE(fds) - 1) {
        pmd->stats.sleeps++;
        if (poll(fds, nfds, 1000) > 0) {
            uint64_t v;
            for (unsigned i = 0; i < nfds; i++)
                if (fds[i].revents & POLLIN) {
                    ssize_t r = read(fds[i].fd, &v, sizeof(v)); /* eventfds: clear the counter */
                    (void)r;
                    kicked |= i > 0;
                }
        }
    }
    /*
     * Kicks off again, but only on queues still ours: one that moved to another PMD while we
     * slept belongs to the new owner, and switching it off now could undo the request the new
     * owner made before it went to sleep itself (without EVENT_IDX: a lost kick).
     */
    const struct sw_snapshot *now = __atomic_load_n(&pmd->sw->snap, __ATOMIC_ACQUIRE);
    const struct snap_pmd *cur = &now->pmds[pmd->id];
    for (uint32_t i = 0; i < sp->n_rxq; i++) {
        const struct snap_rxq *r = &sp->rxq[i];
        bool ours = false;
        for (uint32_t j = 0; j < cur->n_rxq && !ours; j++)
            ours = cur->rxq[j].port == r->port && cur->rxq[j].qid == r->qid;
        if (ours)
            r->port->cls->rxq_notify(r->port, r->qid, false);
    }
    return kicked;
}

void *sw_pmd_main(void *arg)
{
    struct sw_pmd *pmd = arg;
    struct vsw *sw = pmd->sw;
    struct pkt *pkts = aligned_alloc(64, sizeof(struct pkt) * SW_BURST);
    pmd->offload_scratch = aligned_alloc(64, sizeof(struct pkt) * SW_BURST);
    if (!pkts || !pmd->offload_scratch) {
        VLOG(ERR, MOD, "pmd %u: out of memory", pmd->id);
        free(pkts);
        free(pmd->offload_scratch);
        pmd->offload_scratch = NULL;
        return NULL;
    }
    if (pmd->core >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(pmd->core, &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
            VLOG(WARN, MOD, "pmd %u: cannot pin to core %d: %s", pmd->id, pmd->core,
                 strerror(errno));
    }
    rte_rcu_qsbr_thread_register(sw->rcu, pmd->id);
    rte_rcu_qsbr_thread_online(sw->rcu, pmd->id);

    const uint64_t idle_min = sw->cfg.idle_sleep_us * 1000, idle_max = sw->cfg.idle_max_us * 1000;
    uint64_t idle_ns = idle_min;
    uint64_t last_work = vsw_now_ns();
    __atomic_store_n(&pmd->idle_window_ns, idle_ns, __ATOMIC_RELAXED);
    uint64_t t_prev = vsw_rdtsc();
    while (!__atomic_load_n(&sw->stopping, __ATOMIC_ACQUIRE)) {
        const struct sw_snapshot *snap = __atomic_load_n(&sw->snap, __ATOMIC_ACQUIRE);
        const struct snap_pmd *sp = &snap->pmds[pmd->id];
        uint32_t got = 0;
        for (uint32_t i = 0; i < sp->n_rxq; i++) {
            struct sw_port *port = sp->rxq[i].port;
            uint16_t n = port->cls->rx_burst(port, sp->rxq[i].qid, pkts, SW_BURST);
            if (n) {
                process_burst(pmd, snap, port, sp->rxq[i].qid, pkts, n);
                got += n;
            }
        }
        uint64_t t = vsw_rdtsc();
        if (got)
            pmd->stats.busy_cycles += t - t_prev;
        else
            pmd->stats.idle_cycles += t - t_prev;
        t_prev = t;
        pmd->n_rxq_seen = sp->n_rxq;

        if (got) {
            /* Reading the clock only when busy keeps the idle check cheap. */
            last_work = 0;
        } else if (!sw->cfg.pmd_no_sleep) {
            uint64_t now = vsw_now_ns();
            if (last_work == 0)
                last_work = now;
            else if (now - last_work > idle_ns) {
                bool kicked = pmd_sleep(pmd, sp);
                /* A wake by the control thread alone says nothing about the traffic. */
                uint64_t slept = vsw_now_ns() - last_work;
                if (kicked || slept > idle_max) {
                    idle_ns = sw_pmd_idle_window(idle_ns, slept, idle_min, idle_max);
                    __atomic_store_n(&pmd->idle_window_ns, idle_ns, __ATOMIC_RELAXED);
                }
                last_work = 0;
                t_prev = vsw_rdtsc();
            }
        }
        rte_rcu_qsbr_quiescent(sw->rcu, pmd->id);
    }

    rte_rcu_qsbr_thread_offline(sw->rcu, pmd->id);
    rte_rcu_qsbr_thread_unregister(sw->rcu, pmd->id);
    free(pkts);
    free(pmd->offload_scratch);
    pmd->offload_scratch = NULL;
    return NULL;
}
