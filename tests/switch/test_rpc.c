/*
 * Tests of the control methods (src/switch/rpc.c) and of vswitchctl, over an in-memory fake
 * of the switch API (switch.h): strict params checking, errno mapping, result shapes per
 * docs/control-protocol.md; then vswitchctl (from $VSWITCHCTL) end to end against a real
 * ctl_server serving these methods: tables, --json, exit codes and messages.
 *
 * Threads: the method-table tests are single-threaded; the vswitchctl tests run the server's
 * loop in a thread and vswitchctl as child processes.
 */
#include "ctl_server.h"
#include "loop.h"
#include "rpc.h"
#include "switch.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

/* ---- a fake switch: bridges and ports in arrays ---- */

struct fake_br {
    char name[VSW_NAME_MAX];
    uint32_t age, max_macs, mtu;
    bool used;
};
struct fake_port {
    char name[VSW_NAME_MAX], bridge[VSW_NAME_MAX], path[64];
    char vm[VSW_NAME_MAX]; /* "" when the port is no VM's */
    uint32_t vm_pid;
    uint32_t index;
    bool used;
};
struct vsw {
    struct fake_br br[4];
    struct fake_port port[8];
    struct vsw_br_opts last_opts;
    uint32_t next_index;
};

static struct fake_br *find_br(struct vsw *sw, const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(sw->br); i++)
        if (sw->br[i].used && strcmp(sw->br[i].name, name) == 0)
            return &sw->br[i];
    return NULL;
}

static struct fake_port *find_port(struct vsw *sw, const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(sw->port); i++)
        if (sw->port[i].used && strcmp(sw->port[i].name, name) == 0)
            return &sw->port[i];
    return NULL;
}

static int set_err(struct vsw_err *err, int r, const char *fmt, const char *name)
{
    if (err)
        snprintf(err->msg, sizeof(err->msg), fmt, name);
    return r;
}

int vsw_br_add(struct vsw *sw, const char *name, const struct vsw_br_opts *opts,
               struct vsw_err *err)
{
    sw->last_opts = *opts;
    if (find_br(sw, name))
        return set_err(err, -EEXIST, "bridge \"%s\" already exists", name);
    for (size_t i = 0; i < ARRAY_SIZE(sw->br); i++) {
        if (!sw->br[i].used) {
            sw->br[i] = (struct fake_br){.used = true,
                                         .age = opts->age_sec ? opts->age_sec : 300,
                                         .max_macs = opts->max_macs ? opts->max_macs : 8192,
                                         .mtu = opts->mtu ? opts->mtu : 1500};
            snprintf(sw->br[i].name, sizeof(sw->br[i].name), "%s", name);
            return 0;
        }
    }
    return set_err(err, -ENOSPC, "too many bridges (adding \"%s\")", name);
}

int vsw_br_del(struct vsw *sw, const char *name, bool force, struct vsw_err *err)
{
    struct fake_br *b = find_br(sw, name);
    if (!b)
        return set_err(err, -ENOENT, "no such bridge \"%s\"", name);
    for (size_t i = 0; i < ARRAY_SIZE(sw->port); i++) {
        if (sw->port[i].used && strcmp(sw->port[i].bridge, name) == 0) {
            if (!force)
                return set_err(err, -EBUSY, "bridge \"%s\" still has ports", name);
            sw->port[i].used = false;
        }
    }
    b->used = false;
    return 0;
}

int vsw_br_set(struct vsw *sw, const char *name, const struct vsw_br_opts *opts,
               struct vsw_err *err)
{
    struct fake_br *b = find_br(sw, name);
    sw->last_opts = *opts;
    if (!b)
        return set_err(err, -ENOENT, "no such bridge \"%s\"", name);
    if (opts->age_sec)
        b->age = opts->age_sec;
    if (opts->max_macs)
        b->max_macs = opts->max_macs;
    if (opts->mtu)
        b->mtu = opts->mtu;
    return 0;
}

static unsigned n_ports_of(struct vsw *sw, const char *br)
{
    unsigned n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(sw->port); i++)
        n += sw->port[i].used && strcmp(sw->port[i].bridge, br) == 0;
    return n;
}

int vsw_br_foreach(struct vsw *sw, int (*fn)(const struct vsw_br_info *, void *), void *arg)
{
    for (size_t i = 0; i < ARRAY_SIZE(sw->br); i++) {
        if (!sw->br[i].used)
            continue;
        struct vsw_br_info info = {.name = sw->br[i].name,
                                   .n_ports = n_ports_of(sw, sw->br[i].name),
                                   .age_sec = sw->br[i].age,
                                   .max_macs = sw->br[i].max_macs,
                                   .mtu = sw->br[i].mtu,
                                   .fdb = {.learned = 5, .moved = 1, .aged = 2, .entries = 2}};
        int r = fn(&info, arg);
        if (r)
            return r;
    }
    return 0;
}

int vsw_port_add(struct vsw *sw, const char *bridge, const char *name,
                 const struct vsw_port_opts *opts, struct vsw_err *err)
{
    assert_int_equal(opts->type, VSW_PORT_VHOST_USER);
    if (!find_br(sw, bridge))
        return set_err(err, -ENOENT, "no such bridge \"%s\"", bridge);
    if (find_port(sw, name))
        return set_err(err, -EEXIST, "port \"%s\" already exists", name);
    for (size_t i = 0; i < ARRAY_SIZE(sw->port); i++) {
        struct fake_port *p = &sw->port[i];
        if (!p->used) {
            p->used = true;
            p->index = sw->next_index++;
            snprintf(p->name, sizeof(p->name), "%s", name);
            snprintf(p->bridge, sizeof(p->bridge), "%s", bridge);
            snprintf(p->path, sizeof(p->path), "/run/vswitch/%s.sock", name);
            snprintf(p->vm, sizeof(p->vm), "%s", opts->vm_name ? opts->vm_name : "");
            p->vm_pid = opts->vm_name ? opts->vm_pid : 0;
            return 0;
        }
    }
    return set_err(err, -ENOSPC, "too many ports (adding \"%s\")", name);
}

int vsw_port_del(struct vsw *sw, const char *name, struct vsw_err *err)
{
    struct fake_port *p = find_port(sw, name);
    if (!p)
        return set_err(err, -ENOENT, "no such port \"%s\"", name);
    p->used = false;
    return 0;
}

static void port_info(const struct fake_port *p, struct vsw_port_info *out)
{
    *out = (struct vsw_port_info){.name = p->name,
                                  .bridge = p->bridge,
                                  .type = "vhost-user",
                                  .mode = "server",
                                  .path = p->path,
                                  .state = "listening",
                                  .index = p->index,
                                  .n_queue_pairs = 1,
                                  .mtu = 1500,
                                  .features = 0x140000000ull,
                                  .vm_name = p->vm[0] ? p->vm : NULL,
                                  .vm_pid = p->vm_pid};
    out->stats.rx_packets = 10 + p->index;
    out->stats.rx_bytes = 640 + p->index;
    out->stats.tx_packets = 20;
    out->stats.tx_bytes = 1280;
    out->stats.drops[VSW_DROP_TX_NO_BUF] = 3;
    out->stats.msg_errors = p->index; /* 0 for the first port: must not be listed */
}

int vsw_port_foreach(struct vsw *sw, const char *bridge,
                     int (*fn)(const struct vsw_port_info *, void *), void *arg)
{
    if (bridge && !find_br(sw, bridge))
        return -ENOENT;
    for (size_t i = 0; i < ARRAY_SIZE(sw->port); i++) {
        if (!sw->port[i].used || (bridge && strcmp(sw->port[i].bridge, bridge) != 0))
            continue;
        struct vsw_port_info info;
        port_info(&sw->port[i], &info);
        int r = fn(&info, arg);
        if (r)
            return r;
    }
    return 0;
}

int vsw_port_get(struct vsw *sw, const char *name, struct vsw_port_info *out)
{
    struct fake_port *p = find_port(sw, name);
    if (!p)
        return -ENOENT;
    port_info(p, out);
    return 0;
}

int vsw_fdb_foreach(struct vsw *sw, const char *bridge,
                    int (*fn)(const struct vsw_fdb_entry *, void *), void *arg)
{
    if (!find_br(sw, bridge))
        return -ENOENT;
    struct vsw_fdb_entry e[2] = {
        {.e = {.mac = {{0x52, 0x54, 0, 0, 0, 2}}, .port = 1, .idle_ns = 12500000000ull},
         .port_name = "vm2"},
        {.e = {.mac = {{0x52, 0x54, 0, 0, 0, 1}}, .port = 0, .is_static = true},
         .port_name = "vm1"},
    };
    for (int i = 0; i < 2; i++) {
        int r = fn(&e[i], arg);
        if (r)
            return r;
    }
    return 0;
}

static struct vsw_mac fake_last_mac;

int vsw_fdb_add(struct vsw *sw, const char *bridge, const struct vsw_mac *mac, const char *port,
                struct vsw_err *err)
{
    if (!find_br(sw, bridge) || strcmp(port, "vm1") != 0) {
        snprintf(err->msg, sizeof(err->msg), "no port \"%s\" on bridge \"%s\"", port, bridge);
        return -ENOENT;
    }
    fake_last_mac = *mac;
    return 0;
}

int vsw_fdb_del(struct vsw *sw, const char *bridge, const struct vsw_mac *mac, struct vsw_err *err)
{
    if (!find_br(sw, bridge))
        return -ENOENT;
    if (memcmp(mac, &fake_last_mac, sizeof(*mac)) != 0) {
        snprintf(err->msg, sizeof(err->msg), "\"mac\" not in the MAC table");
        return -ENOENT;
    }
    memset(&fake_last_mac, 0, sizeof(fake_last_mac));
    return 0;
}

int vsw_pmd_foreach(struct vsw *sw, int (*fn)(const struct vsw_pmd_info *, void *), void *arg)
{
    (void)sw;
    struct vsw_pmd_info p = {.id = 0,
                             .core = -1,
                             .n_rxqs = 2,
                             .packets = 1000,
                             .busy_cycles = 250,
                             .idle_cycles = 750,
                             .sleeps = 4,
                             .idle_poll_us = 400};
    p.drops[VSW_DROP_NO_DEST] = 7;
    return fn(&p, arg);
}

/* ---- calling methods directly ---- */

static json_t *call(struct vsw *sw, const char *method, const char *params_json,
                    struct rpc_error *err)
{
    size_t n;
    const struct rpc_method *m = vsw_rpc_methods(&n);
    json_t *params = json_loads(params_json, 0, NULL);
    assert_non_null(params);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].name, method) == 0) {
            memset(err, 0, sizeof(*err));
            json_t *r = m[i].fn(sw, params, err);
            json_decref(params);
            return r;
        }
    }
    fail_msg("no method %s", method);
    return NULL;
}

struct rpc_case {
    const char *method;
    const char *params;
    int code;           /* 0: success */
    const char *expect; /* exact result JSON, or (error) errno name; NULL: not checked */
};

/* Run in order on one fake switch: later cases see what earlier ones created. */
static const struct rpc_case rpc_cases[] = {
    {"version", "{}", 0, "{\"version\":\"" VSW_VERSION "\"}"},
    {"version", "{\"x\":1}", RPC_INVALID_PARAMS, NULL},
    /* br-add: names and ranges */
    {"br-add", "{}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":5}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":null}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"\"}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"a/b\"}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"../x\"}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"-x\"}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"abcdefghijabcdefghijabcdefghij12\"}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"age\":0}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"age\":1000001}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"age\":-1}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"age\":\"60\"}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"age\":60.0}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"age\":true}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"age\":9223372036854775807}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"max_macs\":0}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"max_macs\":1048577}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"br0\",\"maxmacs\":10}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"abcdefghijabcdefghijabcdefghij1\",\"age\":1,\"max_macs\":1}", 0,
     "{\"name\":\"abcdefghijabcdefghijabcdefghij1\"}"},
    {"br-add", "{\"name\":\"br0\",\"age\":1000000,\"max_macs\":1048576}", 0, "{\"name\":\"br0\"}"},
    {"br-add", "{\"name\":\"br0\"}", RPC_FAILED, "EEXIST"},
    {"br-del", "{\"name\":\"abcdefghijabcdefghijabcdefghij1\"}", 0, "{}"},
    /* br-set */
    {"br-set", "{\"name\":\"br0\",\"age\":60}", 0, "{}"},
    {"br-set", "{\"name\":\"br0\",\"max_macs\":100}", 0, "{}"},
    {"br-set", "{\"name\":\"br0\",\"mtu\":9000}", 0, "{}"},
    {"br-set", "{\"name\":\"br0\",\"mtu\":67}", RPC_INVALID_PARAMS, NULL},
    {"br-set", "{\"name\":\"br0\",\"mtu\":65536}", RPC_INVALID_PARAMS, NULL},
    {"br-add", "{\"name\":\"brx\",\"mtu\":\"9000\"}", RPC_INVALID_PARAMS, NULL},
    {"br-set", "{\"name\":\"nope\",\"age\":60}", RPC_FAILED, "ENOENT"},
    {"br-set", "{\"name\":\"br0\",\"age\":0}", RPC_INVALID_PARAMS, NULL},
    {"br-set", "{\"name\":\"br0\",\"force\":true}", RPC_INVALID_PARAMS, NULL},
    {"br-list", "{}", 0,
     "[{\"name\":\"br0\",\"ports\":0,\"age\":60,\"max_macs\":100,\"mtu\":9000,\"fdb_entries\":2,"
     "\"learned\":5,\"moved\":1,\"aged\":2,\"full\":0}]"},
    {"br-list", "{\"name\":\"br0\"}", RPC_INVALID_PARAMS, NULL},
    /* ports */
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm1\"}", 0,
     "{\"name\":\"vm1\",\"bridge\":\"br0\",\"type\":\"vhost-user\","
     "\"path\":\"/run/vswitch/vm1.sock\"}"},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm2\",\"type\":\"vhost-user\"}", 0, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm1\"}", RPC_FAILED, "EEXIST"},
    {"port-add", "{\"bridge\":\"nope\",\"name\":\"vm3\"}", RPC_FAILED, "ENOENT"},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm3\",\"type\":\"tap\"}", RPC_INVALID_PARAMS,
     NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm3\",\"type\":1}", RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"name\":\"vm3\"}", RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\"}", RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm 3\"}", RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm3\",\"mode\":\"client\"}", RPC_INVALID_PARAMS,
     NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm3\",\"path\":\"/x\"}", RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm3\",\"mode\":\"sideways\"}", RPC_INVALID_PARAMS,
     NULL},
    {"port-list", "{\"bridge\":\"br0\"}", 0,
     "[{\"name\":\"vm1\",\"bridge\":\"br0\",\"type\":\"vhost-user\",\"mode\":\"server\","
     "\"path\":\"/run/vswitch/vm1.sock\",\"state\":\"listening\",\"index\":0,"
     "\"queue_pairs\":1,\"mtu\":1500,\"guest_mtu\":0,\"features\":\"0x140000000\"},"
     "{\"name\":\"vm2\",\"bridge\":\"br0\",\"type\":\"vhost-user\",\"mode\":\"server\","
     "\"path\":\"/run/vswitch/vm2.sock\",\"state\":\"listening\",\"index\":1,"
     "\"queue_pairs\":1,\"mtu\":1500,\"guest_mtu\":0,\"features\":\"0x140000000\"}]"},
    {"port-list", "{\"bridge\":\"nope\"}", RPC_FAILED, "ENOENT"},
    {"port-list", "{\"bridge\":7}", RPC_INVALID_PARAMS, NULL},
    /* ports a VM asked for (vswitch-vmm), and vm-list */
    {"vm-list", "{}", 0, "[]"}, /* vm1 and vm2 are no VM's */
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm3\",\"vm\":{\"name\":\"web\",\"pid\":100}}", 0,
     NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm4\",\"vm\":{\"pid\":200,\"name\":\"db\"}}", 0,
     NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm5\",\"vm\":{\"name\":\"web\",\"pid\":100}}", 0,
     NULL},
    /* the same name in another process is another VM */
    {"port-add",
     "{\"bridge\":\"br0\",\"name\":\"vm6\",\"vm\":{\"name\":\"web\",\"pid\":2147483647}}", 0, NULL},
    {"vm-list", "{}", 0,
     "[{\"name\":\"web\",\"pid\":100,\"ports\":[{\"name\":\"vm3\",\"bridge\":\"br0\","
     "\"state\":\"listening\"},{\"name\":\"vm5\",\"bridge\":\"br0\",\"state\":\"listening\"}]},"
     "{\"name\":\"db\",\"pid\":200,\"ports\":[{\"name\":\"vm4\",\"bridge\":\"br0\","
     "\"state\":\"listening\"}]},"
     "{\"name\":\"web\",\"pid\":2147483647,\"ports\":[{\"name\":\"vm6\",\"bridge\":\"br0\","
     "\"state\":\"listening\"}]}]"},
    {"vm-list", "{\"name\":\"web\"}", RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":\"web\"}", RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":null}", RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"web\"}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"pid\":5}}", RPC_INVALID_PARAMS,
     NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"a b\",\"pid\":5}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"../x\",\"pid\":5}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"\",\"pid\":5}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":7,\"pid\":5}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"web\",\"pid\":0}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"web\",\"pid\":-1}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"web\",\"pid\":\"5\"}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"web\",\"pid\":5.0}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add",
     "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"web\",\"pid\":2147483648}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add",
     "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"web\",\"pid\":5,\"x\":1}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-add", "{\"bridge\":\"br0\",\"name\":\"vm7\",\"vm\":{\"name\":\"web\",\"pid\":true}}",
     RPC_INVALID_PARAMS, NULL},
    {"port-del", "{\"name\":\"vm3\"}", 0, "{}"},
    {"port-del", "{\"name\":\"vm4\"}", 0, "{}"},
    {"vm-list", "{}", 0,
     "[{\"name\":\"web\",\"pid\":100,\"ports\":[{\"name\":\"vm5\",\"bridge\":\"br0\","
     "\"state\":\"listening\"}]},"
     "{\"name\":\"web\",\"pid\":2147483647,\"ports\":[{\"name\":\"vm6\",\"bridge\":\"br0\","
     "\"state\":\"listening\"}]}]"},
    {"port-del", "{\"name\":\"vm5\"}", 0, "{}"},
    {"port-del", "{\"name\":\"vm6\"}", 0, "{}"},
    {"vm-list", "{}", 0, "[]"},
    /* fdb */
    {"fdb-show", "{\"bridge\":\"br0\"}", 0,
     "[{\"mac\":\"52:54:00:00:00:02\",\"port\":\"vm2\",\"static\":false,\"age\":12},"
     "{\"mac\":\"52:54:00:00:00:01\",\"port\":\"vm1\",\"static\":true,\"age\":0}]"},
    {"fdb-show", "{}", RPC_INVALID_PARAMS, NULL},
    {"fdb-show", "{\"bridge\":\"nope\"}", RPC_FAILED, "ENOENT"},
    {"fdb-add", "{\"bridge\":\"br0\",\"mac\":\"02:00:00:00:00:07\",\"port\":\"vm1\"}", 0, "{}"},
    {"fdb-add", "{\"bridge\":\"br0\",\"mac\":\"02:00:00:00:00:07\",\"port\":\"vm9\"}", RPC_FAILED,
     "ENOENT"},
    {"fdb-add", "{\"bridge\":\"br0\",\"mac\":\"02:00:00:00:07\",\"port\":\"vm1\"}",
     RPC_INVALID_PARAMS, NULL},
    {"fdb-add", "{\"bridge\":\"br0\",\"mac\":7,\"port\":\"vm1\"}", RPC_INVALID_PARAMS, NULL},
    {"fdb-add", "{\"bridge\":\"br0\",\"port\":\"vm1\"}", RPC_INVALID_PARAMS, NULL},
    {"fdb-del", "{\"bridge\":\"br0\",\"mac\":\"02:00:00:00:00:07\"}", 0, "{}"},
    {"fdb-del", "{\"bridge\":\"br0\",\"mac\":\"02:00:00:00:00:07\"}", RPC_FAILED, "ENOENT"},
    {"fdb-del", "{\"bridge\":\"br0\",\"mac\":\"x\",\"extra\":1}", RPC_INVALID_PARAMS, NULL},
    /* stats */
    {"stats", "{\"port\":\"vm2\"}", 0,
     "{\"ports\":[{\"name\":\"vm2\",\"rx_packets\":11,\"rx_bytes\":641,\"tx_packets\":20,"
     "\"tx_bytes\":1280,\"msg_errors\":1,\"queue_errors\":0,\"msg_refused\":0,\"rarp_sent\":0,"
     "\"log_errors\":0,\"drops\":{\"tx_no_buffer\":3}}],"
     "\"pmds\":[{\"id\":0,\"core\":-1,\"rxqs\":2,\"packets\":1000,\"busy_cycles\":250,"
     "\"idle_cycles\":750,\"sleeps\":4,\"idle_poll_us\":400,\"drops\":{\"no_dest\":7}}]}"},
    {"stats", "{\"port\":\"nope\"}", RPC_FAILED, "ENOENT"},
    {"stats", "{\"port\":\"\"}", RPC_INVALID_PARAMS, NULL},
    /* deletion */
    {"br-del", "{\"name\":\"br0\"}", RPC_FAILED, "EBUSY"},
    {"br-del", "{\"name\":\"br0\",\"force\":1}", RPC_INVALID_PARAMS, NULL},
    {"port-del", "{\"name\":\"vm1\"}", 0, "{}"},
    {"port-del", "{\"name\":\"vm1\"}", RPC_FAILED, "ENOENT"},
    {"port-del", "{}", RPC_INVALID_PARAMS, NULL},
    {"br-del", "{\"name\":\"br0\",\"force\":true}", 0, "{}"},
    {"port-list", "{}", 0, "[]"},
    {"br-del", "{\"name\":\"br0\"}", RPC_FAILED, "ENOENT"},
};

static void test_methods_table(void **state)
{
    (void)state;
    static const char *const names[] = {"version",  "br-add",   "br-del",    "br-set",   "br-list",
                                        "port-add", "port-del", "port-list", "fdb-show", "fdb-add",
                                        "fdb-del",  "stats",    "vm-list"};
    size_t n;
    const struct rpc_method *m = vsw_rpc_methods(&n);
    assert_int_equal(n, ARRAY_SIZE(names));
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t k = 0; k < n; k++)
            found |= strcmp(m[k].name, names[i]) == 0;
        assert_true(found);
        assert_non_null(m[i].fn);
    }
}

static void test_rpc_cases(void **state)
{
    (void)state;
    struct vsw sw = {0};
    for (size_t i = 0; i < ARRAY_SIZE(rpc_cases); i++) {
        const struct rpc_case *t = &rpc_cases[i];
        struct rpc_error err;
        print_message("case %zu: %s %s\n", i, t->method, t->params);
        json_t *r = call(&sw, t->method, t->params, &err);
        if (t->code == 0) {
            if (!r)
                fail_msg("failed: %d %s", err.code, err.message);
            if (t->expect) {
                json_t *want = json_loads(t->expect, JSON_DECODE_ANY, NULL);
                assert_non_null(want);
                if (!json_equal(r, want)) {
                    char *s = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
                    fail_msg("got %s", s);
                }
                json_decref(want);
            }
            json_decref(r);
        } else {
            if (r)
                fail_msg("succeeded, expected error %d", t->code);
            assert_int_equal(err.code, t->code);
            assert_true(err.message[0] != '\0');
            if (t->code == RPC_FAILED) {
                assert_string_equal(rpc_errno_name(err.errnum), t->expect);
                /* The switch's words reach the user. */
                assert_non_null(strstr(err.message, "\""));
            } else {
                assert_int_equal(err.errnum, 0);
            }
        }
    }
}

static void test_opts_passed(void **state)
{
    (void)state;
    struct vsw sw = {0};
    struct rpc_error err;
    json_t *r = call(&sw, "br-add", "{\"name\":\"b\",\"age\":7,\"max_macs\":9,\"mtu\":9000}", &err);
    json_decref(r);
    assert_int_equal(sw.last_opts.age_sec, 7);
    assert_int_equal(sw.last_opts.max_macs, 9);
    assert_int_equal(sw.last_opts.mtu, 9000);
    r = call(&sw, "br-set", "{\"name\":\"b\",\"max_macs\":5}", &err);
    json_decref(r);
    assert_int_equal(sw.last_opts.age_sec, 0); /* 0: keep */
    assert_int_equal(sw.last_opts.max_macs, 5);
    assert_int_equal(sw.last_opts.mtu, 0); /* 0: keep */
    r = call(&sw, "br-add", "{\"name\":\"c\"}", &err);
    json_decref(r);
    assert_int_equal(sw.last_opts.age_sec, 0); /* 0: the switch's default */
    assert_int_equal(sw.last_opts.max_macs, 0);
}

/* ---- vswitchctl end to end ---- */

struct ctl_env {
    char dir[64], sock[128], out[128], err[128];
    struct vsw sw;
    struct vsw_loop *loop;
    struct ctl_server *srv;
    pthread_t th;
    const char *ctl;
};

static void *loop_thread(void *arg)
{
    vsw_loop_run(arg);
    return NULL;
}

static int ctl_setup(void **state)
{
    struct ctl_env *e = calloc(1, sizeof(*e));
    e->ctl = getenv("VSWITCHCTL");
    strcpy(e->dir, "/tmp/vsw-rpc-test-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->sock, sizeof(e->sock), "%s/ctl.sock", e->dir);
    snprintf(e->out, sizeof(e->out), "%s/out", e->dir);
    snprintf(e->err, sizeof(e->err), "%s/err", e->dir);
    size_t n;
    const struct rpc_method *m = vsw_rpc_methods(&n);
    e->loop = vsw_loop_create();
    e->srv = ctl_server_create(e->loop, e->sock, m, n, &e->sw);
    assert_non_null(e->srv);
    assert_int_equal(pthread_create(&e->th, NULL, loop_thread, e->loop), 0);
    *state = e;
    return 0;
}

static int ctl_teardown(void **state)
{
    struct ctl_env *e = *state;
    vsw_loop_stop(e->loop);
    pthread_join(e->th, NULL);
    ctl_server_destroy(e->srv);
    vsw_loop_destroy(e->loop);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
    free(e);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

struct run {
    int status;
    char *out, *err;
};

/* Run vswitchctl with VSWITCH_SOCK pointing at our server; args are shell words. */
static struct run run_ctl(struct ctl_env *e, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "VSWITCH_SOCK='%s' '%s' %s >'%s' 2>'%s'", e->sock, e->ctl, args,
             e->out, e->err);
    int st = system(cmd);
    struct run r = {
        .status = WIFEXITED(st) ? WEXITSTATUS(st) : -1, .out = slurp(e->out), .err = slurp(e->err)};
    print_message("$ vswitchctl %s -> %d\n%s%s", args, r.status, r.out, r.err);
    return r;
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

/* Expect an exit status, and substrings of stdout / stderr (NULL: not checked, "": empty). */
static void expect(struct ctl_env *e, const char *args, int status, const char *out,
                   const char *err)
{
    struct run r = run_ctl(e, args);
    assert_int_equal(r.status, status);
    if (out && !*out)
        assert_string_equal(r.out, "");
    else if (out && !strstr(r.out, out))
        fail_msg("stdout lacks \"%s\"", out);
    if (err && !*err)
        assert_string_equal(r.err, "");
    else if (err && !strstr(r.err, err))
        fail_msg("stderr lacks \"%s\"", err);
    run_free(&r);
}

static bool have_ctl(struct ctl_env *e)
{
    if (e->ctl && access(e->ctl, X_OK) == 0)
        return true;
    print_message("VSWITCHCTL is not set to an executable; skipped\n");
    return false;
}

static void test_ctl_commands(void **state)
{
    struct ctl_env *e = *state;
    if (!have_ctl(e))
        skip();
    expect(e, "version", 0, "vswitchd " VSW_VERSION "\nvswitchctl " VSW_VERSION "\n", "");
    expect(e, "br-add br0 --age 60 --max-macs=100", 0, "", "");
    expect(e, "br-add br0", 1, "", "vswitchctl: bridge \"br0\" already exists (EEXIST)\n");
    expect(e, "br-add br1 --age 0", 1, "", "\"age\" must be between 1 and 1000000");
    expect(e, "port-add br0 vm1", 0, "/run/vswitch/vm1.sock\n", "");
    expect(e, "port-add br0 vm2 --type vhost-user", 0, "/run/vswitch/vm2.sock\n", "");
    expect(e, "br-list", 0,
           "BRIDGE  PORTS  AGE  MAX_MACS   MTU  MACS  LEARNED  MOVED  AGED  FULL\n"
           "br0         2  60s       100  1500     2        5      1     2     0\n",
           "");
    expect(e, "port-list", 0,
           "PORT  BRIDGE  TYPE        MODE    STATE      INDEX  QUEUES   MTU  PATH\n", "");
    expect(
        e, "port-list br0", 0,
        "vm2   br0     vhost-user  server  listening      1       1  1500  /run/vswitch/vm2.sock\n",
        "");
    expect(e, "port-list nope", 1, "", "no such bridge \"nope\" (ENOENT)");
    expect(e, "fdb-show br0", 0,
           "PORT  MAC                TYPE     AGE\n"
           "vm1   52:54:00:00:00:01  static     -\n"
           "vm2   52:54:00:00:00:02  dynamic   12\n",
           "");
    expect(e, "stats", 0,
           "PORT  RX_PACKETS  RX_BYTES  TX_PACKETS  TX_BYTES\n"
           "vm1           10       640          20      1280\n"
           "vm2           11       641          20      1280\n"
           "  vm1 drops: tx_no_buffer=3\n"
           "  vm2 drops: msg_errors=1 tx_no_buffer=3\n"
           "\n"
           "PMD  CORE  RXQS  PACKETS   BUSY  SLEEPS  IDLE_POLL_US\n"
           "  0     -     2     1000  25.0%       4           400\n"
           "  pmd 0 drops: no_dest=7\n",
           "");
    expect(e, "stats vm1", 0, "vm1           10", "");
    expect(e, "--json br-list", 0, "\"max_macs\": 100", "");
    expect(e, "br-set br0 --age 30", 0, "", "");
    expect(e, "br-del br0", 1, "", "still has ports (EBUSY)");
    /* vm-list: ports a VM asked for (as vswitch-vmm does with port-add's "vm"). The server
     * thread touches the fake switch only while a vswitchctl runs, so this is not a race. */
    expect(e, "vm-list", 0, "VM  PID  PORTS\n", "");
    const struct vsw_port_opts web = {.vm_name = "web", .vm_pid = 4242};
    const struct vsw_port_opts db = {.vm_name = "db", .vm_pid = 77};
    assert_int_equal(vsw_port_add(&e->sw, "br0", "web-0", &web, NULL), 0);
    assert_int_equal(vsw_port_add(&e->sw, "br0", "db-0", &db, NULL), 0);
    assert_int_equal(vsw_port_add(&e->sw, "br0", "web-1", &web, NULL), 0);
    expect(e, "vm-list", 0,
           "VM    PID  PORTS\n"
           "web  4242  web-0@br0,web-1@br0\n"
           "db     77  db-0@br0\n",
           "");
    expect(e, "--json vm-list", 0, "\"pid\": 4242", "");
    expect(e, "vm-list extra", 2, "", "unexpected argument");
    expect(e, "port-del vm1", 0, "", "");
    expect(e, "br-del br0 --force", 0, "", "");
    expect(e, "vm-list", 0, "VM  PID  PORTS\n", "");
    expect(e, "--json port-list", 0, "[]\n", "");

    /* The JSON output is the result itself. */
    struct run r = run_ctl(e, "--json version");
    json_t *j = json_loads(r.out, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "version")), VSW_VERSION);
    json_decref(j);
    run_free(&r);
}

static void test_ctl_usage_errors(void **state)
{
    struct ctl_env *e = *state;
    if (!have_ctl(e))
        skip();
    expect(e, "", 2, "", "no command");
    expect(e, "frob", 2, "", "unknown command \"frob\"");
    expect(e, "br-add", 2, "", "usage: vswitchctl br-add BR");
    expect(e, "br-add a b", 2, "", "unexpected argument \"b\"");
    expect(e, "br-add a --age", 2, "", "--age needs a value");
    expect(e, "br-add a --age x", 2, "", "not a number");
    expect(e, "br-add a --age -5", 2, "", "not a number");
    expect(e, "br-add a --bogus", 2, "", "unknown option \"--bogus\"");
    expect(e, "br-del a --force=yes", 2, "", "takes no value");
    expect(e, "br-set a", 2, "", "nothing to change");
    expect(e, "--frob version", 2, "", "unknown option");
    expect(e, "--timeout abc version", 2, "", "--timeout");
    expect(e, "help", 0, "usage: vswitchctl", "");
    expect(e, "--help", 0, "fdb-show BR", "");
    /* Names are checked by the daemon: one place decides what a valid name is. */
    expect(e, "br-add ../etc", 1, "", "invalid name");
}

static void test_ctl_connect_errors(void **state)
{
    struct ctl_env *e = *state;
    if (!have_ctl(e))
        skip();
    expect(e, "--socket /nonexistent/vswitchd.sock version", 3, "",
           "vswitchctl: cannot connect to /nonexistent/vswitchd.sock: No such file or directory "
           "(is vswitchd running?)\n");

    /* A socket that accepts connections but never answers: the timeout. */
    char mute[160];
    snprintf(mute, sizeof(mute), "%s/mute.sock", e->dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, mute);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    char args[256];
    snprintf(args, sizeof(args), "--timeout 0.3 --socket=%s version", mute);
    uint64_t t0 = vsw_now_ns();
    expect(e, args, 3, "", "timed out");
    assert_true(vsw_now_ns() - t0 < 5000000000ull);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_methods_table),
        cmocka_unit_test(test_rpc_cases),
        cmocka_unit_test(test_opts_passed),
        cmocka_unit_test_setup_teardown(test_ctl_commands, ctl_setup, ctl_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_usage_errors, ctl_setup, ctl_teardown),
        cmocka_unit_test_setup_teardown(test_ctl_connect_errors, ctl_setup, ctl_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
