/*
 * The port abstraction: every port type (vhost-user now; TAP, AF_XDP and DPDK uplinks later)
 * implements `struct port_class`, one file per type. src/switch is the only place that knows
 * all of them.
 */
#ifndef VSW_PORT_H
#define VSW_PORT_H

#include "net.h"
#include "switch.h"

struct sw_port;

struct port_class {
    const char *type; /* "vhost-user" */

    /*
     * Control thread. Create the port's resources (sockets, devices) and register its fds
     * with the loop. Returns 0 or -errno with err filled.
     */
    int (*open)(struct sw_port *port, struct vsw_err *err);
    /* Control thread, after the port left every PMD snapshot: release everything. */
    void (*close)(struct sw_port *port);

    /*
     * PMD thread owning rx queue `qid`. Fill up to n packets. Their segments point into
     * memory the port owns and stay valid until rx_release(); call rx_release exactly once
     * per rx_burst with the same packets, after every copy of them is done. Never blocks.
     * Returns the number of packets (0 when the queue is not running).
     */
    uint16_t (*rx_burst)(struct sw_port *port, uint16_t qid, struct pkt *pkts, uint16_t n);
    void (*rx_release)(struct sw_port *port, uint16_t qid, struct pkt *pkts, uint16_t n);

    /*
     * Any PMD thread. Copy the packets into the port's queue `qid` (modulo its queue count).
     * The packets' memory stays the caller's. Every packet not sent is counted by the port
     * as a drop with its reason; the return value (sent) is informative. Never blocks.
     */
    uint16_t (*tx_burst)(struct sw_port *port, uint16_t qid, struct pkt *const *pkts, uint16_t n);
    /*
     * Any PMD thread, once per burst sent to the port: the offloads (OFFLOAD_* of offload.h)
     * its consumer accepts as they are. A frame asking for more reaches tx_burst checksummed
     * and segmented in software (sw_offload.c), so tx_burst never sees a request it cannot
     * honour. Never blocks. NULL: accepts none.
     */
    uint32_t (*tx_offloads)(const struct sw_port *port);

    /* Control thread: rx queues the PMDs should poll now (0 when not running). */
    uint16_t (*n_rxq)(const struct sw_port *port);
    /*
     * PMD thread, before it sleeps: enable notifications on rx queue qid and return the fd
     * that becomes readable when frames arrive (-1: cannot sleep on it); after waking, call
     * again with enable = false. Returns true from has_work when frames are already waiting.
     */
    int (*rxq_notify)(struct sw_port *port, uint16_t qid, bool enable);
    bool (*rxq_has_work)(struct sw_port *port, uint16_t qid);

    /* Control thread: the port's bridge has this MTU now (also right after open). The port
     * drops frames longer than its MTU at egress, GSO frames excepted. May be NULL. */
    void (*set_mtu)(struct sw_port *port, uint32_t mtu);
    /* Control thread: MTU, features and the like for port-list (fields of vsw_port_info). May
     * be NULL. */
    void (*get_info)(const struct sw_port *port, struct vsw_port_info *out);

    /* Control thread, once a second (reconnects, housekeeping). May be NULL. */
    void (*tick)(struct sw_port *port);

    /* Control thread. */
    void (*get_stats)(const struct sw_port *port, struct vsw_port_stats *out);
    const char *(*state)(const struct sw_port *port);
};

extern const struct port_class port_vhost_class;

#endif
