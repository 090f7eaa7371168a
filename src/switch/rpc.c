/*
 * rpc: the JSON-RPC methods of docs/control-protocol.md over the switch API. Params are
 * checked here, strictly, before the switch sees them (unknown members are refused so a
 * misspelt option is an error, not a silent default); the switch's -errno becomes -32000
 * with data.errno and its message.
 *
 * Thread: control thread, called by ctl_server one request at a time. No locks here; the
 * switch API is control-thread-only.
 */
#include "rpc.h"

#include "switch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifndef VSW_VERSION
#define VSW_VERSION "unknown"
#endif

/* ---- params ---- */

static int VSW_PRINTF(2, 3) invalid(struct rpc_error *err, const char *fmt, ...)
{
    va_list ap;
    err->code = RPC_INVALID_PARAMS;
    err->errnum = 0;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -1;
}

/* Refuse members outside `allowed` (NULL-terminated). */
static int check_members(json_t *params, const char *const allowed[], struct rpc_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            rpc_error_set(err, RPC_INVALID_PARAMS, 0, "unknown parameter \"%.40s\"", key);
            return -1;
        }
    }
    return 0;
}

/* A bridge or port name; *out stays NULL when absent and optional. */
static int get_name(json_t *params, const char *key, bool required, const char **out,
                    struct rpc_error *err)
{
    json_t *v = json_object_get(params, key);
    *out = NULL;
    if (!v)
        return required ? invalid(err, "missing parameter \"%s\"", key) : 0;
    if (!json_is_string(v))
        return invalid(err, "\"%s\" must be a string", key);
    if (!vsw_name_valid(json_string_value(v))) {
        rpc_error_set(err, RPC_INVALID_PARAMS, 0,
                      "invalid %s \"%.40s\": use 1 to %d characters of A-Z a-z 0-9 _ . -, "
                      "not starting with . or -",
                      key, json_string_value(v), VSW_NAME_MAX - 1);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* An optional integer in [min, max]; *out is left alone when absent. */
static int get_u32(json_t *params, const char *key, uint32_t min, uint32_t max, uint32_t *out,
                   struct rpc_error *err)
{
    json_t *v = json_object_get(params, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return invalid(err, "\"%s\" must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < (json_int_t)min || x > (json_int_t)max) {
        rpc_error_set(err, RPC_INVALID_PARAMS, 0, "\"%s\" must be between %u and %u", key, min,
                      max);
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

static int get_bool(json_t *params, const char *key, bool *out, struct rpc_error *err)
{
    json_t *v = json_object_get(params, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return invalid(err, "\"%s\" must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* ---- results ---- */

/* A switch call failed with r (-errno): -32000, its errno's name, the switch's words. */
static json_t *failed(struct rpc_error *err, int r, const struct vsw_err *verr)
{
    int e = r < 0 ? -r : EIO;
    rpc_error_set(err, RPC_FAILED, e, "%s", verr && verr->msg[0] ? verr->msg : strerror(e));
    return NULL;
}

static json_t *oom(struct rpc_error *err)
{
    rpc_error_set(err, RPC_INTERNAL_ERROR, ENOMEM, "out of memory");
    return NULL;
}

/* Strings the switch hands out are expected non-NULL; be safe anyway. */
static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

static json_t *u64(uint64_t v)
{
    /* JSON integers here are signed 64-bit; a counter past that is clamped, not wrapped. */
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Add every pair; any failure (allocation) fails the whole object. Steals the values. */
static json_t *obj_build(json_t *o, const char *const keys[], json_t *const vals[], size_t n)
{
    int bad = !o;
    for (size_t i = 0; i < n; i++) {
        if (bad || !vals[i]) {
            json_decref(vals[i]);
            bad = 1;
            continue;
        }
        bad = json_object_set_new(o, keys[i], vals[i]) != 0;
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
#define OBJ(keys, ...)                                                                             \
    obj_build(json_object(), keys, (json_t *const[]){__VA_ARGS__}, ARRAY_SIZE(keys))

static int append(json_t *arr, json_t *v)
{
    return v && json_array_append_new(arr, v) == 0 ? 0 : -ENOMEM;
}

static json_t *drops_json(const uint64_t drops[VSW_DROP__COUNT])
{
    json_t *o = json_object();
    for (unsigned i = 0; o && i < VSW_DROP__COUNT; i++) {
        if (drops[i] && json_object_set_new(o, vsw_drop_name(i), u64(drops[i])) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* ---- methods ---- */

static json_t *m_version(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {NULL};
    (void)ctx;
    if (check_members(params, allowed, err))
        return NULL;
    json_t *r = json_pack("{ss}", "version", VSW_VERSION);
    return r ? r : oom(err);
}

static json_t *m_br_add(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"name", "age", "max_macs", "mtu", NULL};
    const char *name;
    struct vsw_br_opts opts = {0};
    if (check_members(params, allowed, err) || get_name(params, "name", true, &name, err) ||
        get_u32(params, "age", RPC_AGE_MIN, RPC_AGE_MAX, &opts.age_sec, err) ||
        get_u32(params, "max_macs", RPC_MAX_MACS_MIN, RPC_MAX_MACS_MAX, &opts.max_macs, err) ||
        get_u32(params, "mtu", VSW_MTU_MIN, VSW_MTU_MAX, &opts.mtu, err))
        return NULL;
    struct vsw_err verr = {{0}};
    int r = vsw_br_add(ctx, name, &opts, &verr);
    if (r < 0)
        return failed(err, r, &verr);
    json_t *res = json_pack("{ss}", "name", name);
    return res ? res : oom(err);
}

static json_t *m_br_del(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"name", "force", NULL};
    const char *name;
    bool force = false;
    if (check_members(params, allowed, err) || get_name(params, "name", true, &name, err) ||
        get_bool(params, "force", &force, err))
        return NULL;
    struct vsw_err verr = {{0}};
    int r = vsw_br_del(ctx, name, force, &verr);
    if (r < 0)
        return failed(err, r, &verr);
    json_t *res = json_object();
    return res ? res : oom(err);
}

static json_t *m_br_set(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"name", "age", "max_macs", "mtu", NULL};
    const char *name;
    struct vsw_br_opts opts = {0}; /* 0 keeps the current value */
    if (check_members(params, allowed, err) || get_name(params, "name", true, &name, err) ||
        get_u32(params, "age", RPC_AGE_MIN, RPC_AGE_MAX, &opts.age_sec, err) ||
        get_u32(params, "max_macs", RPC_MAX_MACS_MIN, RPC_MAX_MACS_MAX, &opts.max_macs, err) ||
        get_u32(params, "mtu", VSW_MTU_MIN, VSW_MTU_MAX, &opts.mtu, err))
        return NULL;
    struct vsw_err verr = {{0}};
    int r = vsw_br_set(ctx, name, &opts, &verr);
    if (r < 0)
        return failed(err, r, &verr);
    json_t *res = json_object();
    return res ? res : oom(err);
}

static int br_list_one(const struct vsw_br_info *b, void *arg)
{
    static const char *const keys[] = {"name",        "ports",   "age",   "max_macs", "mtu",
                                       "fdb_entries", "learned", "moved", "aged",     "full"};
    return append(arg, OBJ(keys, str_or_null(b->name), json_integer(b->n_ports),
                           json_integer(b->age_sec), json_integer(b->max_macs),
                           json_integer(b->mtu), json_integer(b->fdb.entries), u64(b->fdb.learned),
                           u64(b->fdb.moved), u64(b->fdb.aged), u64(b->fdb.full)));
}

static json_t *m_br_list(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {NULL};
    if (check_members(params, allowed, err))
        return NULL;
    json_t *arr = json_array();
    if (!arr)
        return oom(err);
    int r = vsw_br_foreach(ctx, br_list_one, arr);
    if (r < 0) {
        json_decref(arr);
        return r == -ENOMEM ? oom(err) : failed(err, r, NULL);
    }
    return arr;
}

static const char *port_type_name(enum vsw_port_type t)
{
    switch (t) {
    case VSW_PORT_VHOST_USER:
        return "vhost-user";
    }
    return "?";
}

/* "vm": {"name": NAME, "pid": N}, optional: the VM a port is for (a VMM says so). */
static int get_vm(json_t *params, struct vsw_port_opts *opts, struct rpc_error *err)
{
    static const char *const allowed[] = {"name", "pid", NULL};
    json_t *vm = json_object_get(params, "vm");
    if (!vm)
        return 0;
    if (!json_is_object(vm))
        return invalid(err, "\"vm\" must be an object {\"name\", \"pid\"}");
    uint32_t pid = 0;
    if (check_members(vm, allowed, err) || get_name(vm, "name", true, &opts->vm_name, err))
        return -1;
    if (!json_object_get(vm, "pid"))
        return invalid(err, "missing parameter \"pid\" in \"vm\"");
    if (get_u32(vm, "pid", 1, INT32_MAX, &pid, err))
        return -1;
    opts->vm_pid = pid;
    return 0;
}

static json_t *m_port_add(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"bridge", "name", "type", "mode", "path", "vm", NULL};
    const char *bridge, *name;
    struct vsw_port_opts opts = {.type = VSW_PORT_VHOST_USER, .mode = VSW_PORT_SERVER};
    if (check_members(params, allowed, err) || get_name(params, "bridge", true, &bridge, err) ||
        get_name(params, "name", true, &name, err) || get_vm(params, &opts, err))
        return NULL;
    json_t *mode = json_object_get(params, "mode"), *path = json_object_get(params, "path");
    if (mode && (!json_is_string(mode) || (strcmp(json_string_value(mode), "server") != 0 &&
                                           strcmp(json_string_value(mode), "client") != 0))) {
        invalid(err, "\"mode\" must be \"server\" or \"client\"");
        return NULL;
    }
    if (mode && strcmp(json_string_value(mode), "client") == 0)
        opts.mode = VSW_PORT_CLIENT;
    if (path && !json_is_string(path)) {
        invalid(err, "\"path\" must be a string");
        return NULL;
    }
    if ((opts.mode == VSW_PORT_CLIENT) != (path != NULL)) {
        invalid(err, "\"path\" is required in client mode and only there");
        return NULL;
    }
    opts.path = path ? json_string_value(path) : NULL;
    json_t *type = json_object_get(params, "type");
    if (type && !json_is_string(type)) {
        invalid(err, "\"%s\" must be a string", "type");
        return NULL;
    }
    if (type && strcmp(json_string_value(type), port_type_name(VSW_PORT_VHOST_USER)) != 0) {
        rpc_error_set(err, RPC_INVALID_PARAMS, 0,
                      "unsupported port type \"%.40s\" (supported: vhost-user)",
                      json_string_value(type));
        return NULL;
    }
    struct vsw_err verr = {{0}};
    int r = vsw_port_add(ctx, bridge, name, &opts, &verr);
    if (r < 0)
        return failed(err, r, &verr);
    struct vsw_port_info info;
    r = vsw_port_get(ctx, name, &info);
    if (r < 0)
        return failed(err, r, NULL);
    static const char *const keys[] = {"name", "bridge", "type", "path"};
    json_t *res = OBJ(keys, str_or_null(info.name), str_or_null(info.bridge),
                      str_or_null(info.type), str_or_null(info.path));
    return res ? res : oom(err);
}

static json_t *m_port_del(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"name", NULL};
    const char *name;
    if (check_members(params, allowed, err) || get_name(params, "name", true, &name, err))
        return NULL;
    struct vsw_err verr = {{0}};
    int r = vsw_port_del(ctx, name, &verr);
    if (r < 0)
        return failed(err, r, &verr);
    json_t *res = json_object();
    return res ? res : oom(err);
}

static int port_list_one(const struct vsw_port_info *p, void *arg)
{
    static const char *const keys[] = {"name", "bridge",    "type",    "mode",
                                       "path", "state",     "index",   "queue_pairs",
                                       "mtu",  "guest_mtu", "features"};
    /* A hex string: the virtio feature bits as the specs and logs write them. */
    char features[24];
    snprintf(features, sizeof(features), "%#" PRIx64, p->features);
    return append(arg,
                  OBJ(keys, str_or_null(p->name), str_or_null(p->bridge), str_or_null(p->type),
                      str_or_null(p->mode), str_or_null(p->path), str_or_null(p->state),
                      json_integer(p->index), json_integer(p->n_queue_pairs), json_integer(p->mtu),
                      json_integer(p->guest_mtu), json_string(features)));
}

static json_t *no_such(struct rpc_error *err, int r, const char *what, const char *name)
{
    struct vsw_err verr;
    if (r == -ENOENT)
        snprintf(verr.msg, sizeof(verr.msg), "no such %s \"%s\"", what, name);
    else
        verr.msg[0] = '\0';
    return failed(err, r, &verr);
}

static json_t *m_port_list(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"bridge", NULL};
    const char *bridge;
    if (check_members(params, allowed, err) || get_name(params, "bridge", false, &bridge, err))
        return NULL;
    json_t *arr = json_array();
    if (!arr)
        return oom(err);
    int r = vsw_port_foreach(ctx, bridge, port_list_one, arr);
    if (r < 0) {
        json_decref(arr);
        return r == -ENOMEM ? oom(err) : no_such(err, r, "bridge", bridge);
    }
    return arr;
}

static int fdb_one(const struct vsw_fdb_entry *f, void *arg)
{
    static const char *const keys[] = {"mac", "port", "static", "age"};
    char mac[18];
    vsw_mac_format(&f->e.mac, mac);
    return append(arg, OBJ(keys, json_string(mac), str_or_null(f->port_name),
                           json_boolean(f->e.is_static), u64(f->e.idle_ns / 1000000000ull)));
}

static json_t *m_fdb_show(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"bridge", NULL};
    const char *bridge;
    if (check_members(params, allowed, err) || get_name(params, "bridge", true, &bridge, err))
        return NULL;
    json_t *arr = json_array();
    if (!arr)
        return oom(err);
    int r = vsw_fdb_foreach(ctx, bridge, fdb_one, arr);
    if (r < 0) {
        json_decref(arr);
        return r == -ENOMEM ? oom(err) : no_such(err, r, "bridge", bridge);
    }
    return arr;
}

static int get_mac(json_t *params, struct vsw_mac *out, struct rpc_error *err)
{
    json_t *v = json_object_get(params, "mac");
    if (!v)
        return invalid(err, "missing parameter \"mac\"");
    if (!json_is_string(v) || vsw_mac_parse(json_string_value(v), out) < 0)
        return invalid(err, "\"mac\" must be a string like 02:00:00:00:00:01");
    return 0;
}

static json_t *m_fdb_add(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"bridge", "mac", "port", NULL};
    const char *bridge, *port;
    struct vsw_mac mac;
    if (check_members(params, allowed, err) || get_name(params, "bridge", true, &bridge, err) ||
        get_mac(params, &mac, err) || get_name(params, "port", true, &port, err))
        return NULL;
    struct vsw_err verr = {{0}};
    int r = vsw_fdb_add(ctx, bridge, &mac, port, &verr);
    if (r < 0)
        return failed(err, r, &verr);
    json_t *res = json_object();
    return res ? res : oom(err);
}

static json_t *m_fdb_del(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"bridge", "mac", NULL};
    const char *bridge;
    struct vsw_mac mac;
    if (check_members(params, allowed, err) || get_name(params, "bridge", true, &bridge, err) ||
        get_mac(params, &mac, err))
        return NULL;
    struct vsw_err verr = {{0}};
    int r = vsw_fdb_del(ctx, bridge, &mac, &verr);
    if (r < 0)
        return failed(err, r, &verr);
    json_t *res = json_object();
    return res ? res : oom(err);
}

static int port_stats_one(const struct vsw_port_info *p, void *arg)
{
    static const char *const keys[] = {"name",      "rx_packets", "rx_bytes",     "tx_packets",
                                       "tx_bytes",  "msg_errors", "queue_errors", "msg_refused",
                                       "rarp_sent", "log_errors", "drops"};
    const struct vsw_port_stats *s = &p->stats;
    return append(arg, OBJ(keys, str_or_null(p->name), u64(s->rx_packets), u64(s->rx_bytes),
                           u64(s->tx_packets), u64(s->tx_bytes), u64(s->msg_errors),
                           u64(s->queue_errors), u64(s->msg_refused), u64(s->rarp_sent),
                           u64(s->log_errors), drops_json(s->drops)));
}

static int pmd_stats_one(const struct vsw_pmd_info *p, void *arg)
{
    static const char *const keys[] = {"id",      "core",         "rxqs",
                                       "packets", "busy_cycles",  "idle_cycles",
                                       "sleeps",  "idle_poll_us", "drops"};
    return append(arg,
                  OBJ(keys, json_integer(p->id), json_integer(p->core), json_integer(p->n_rxqs),
                      u64(p->packets), u64(p->busy_cycles), u64(p->idle_cycles), u64(p->sleeps),
                      u64(p->idle_poll_us), drops_json(p->drops)));
}

static json_t *m_stats(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {"port", NULL};
    const char *port;
    if (check_members(params, allowed, err) || get_name(params, "port", false, &port, err))
        return NULL;
    json_t *ports = json_array(), *pmds = json_array();
    int r = ports && pmds ? 0 : -ENOMEM;
    if (r == 0 && port) {
        struct vsw_port_info info;
        r = vsw_port_get(ctx, port, &info);
        if (r == 0)
            r = port_stats_one(&info, ports);
    } else if (r == 0) {
        r = vsw_port_foreach(ctx, NULL, port_stats_one, ports);
    }
    if (r == 0)
        r = vsw_pmd_foreach(ctx, pmd_stats_one, pmds);
    if (r < 0) {
        json_decref(ports);
        json_decref(pmds);
        return r == -ENOMEM ? oom(err) : no_such(err, r, "port", port ? port : "");
    }
    static const char *const keys[] = {"ports", "pmds"};
    json_t *res = OBJ(keys, ports, pmds);
    return res ? res : oom(err);
}

/* vm-list: the ports grouped by the VM they were created for, VMs in the order of their first
 * port. A VM is its (name, pid): two VMMs may share a name. */
struct vm_walk {
    json_t *vms; /* the result array */
};

static int vm_list_one(const struct vsw_port_info *p, void *arg)
{
    struct vm_walk *w = arg;
    if (!p->vm_name)
        return 0;
    size_t i;
    json_t *vm, *found = NULL;
    json_array_foreach(w->vms, i, vm)
    {
        if (strcmp(json_string_value(json_object_get(vm, "name")), p->vm_name) == 0 &&
            json_integer_value(json_object_get(vm, "pid")) == (json_int_t)p->vm_pid) {
            found = vm;
            break;
        }
    }
    if (!found) {
        static const char *const keys[] = {"name", "pid", "ports"};
        found = OBJ(keys, json_string(p->vm_name), json_integer(p->vm_pid), json_array());
        if (append(w->vms, found) < 0)
            return -ENOMEM;
    }
    static const char *const pkeys[] = {"name", "bridge", "state"};
    return append(json_object_get(found, "ports"),
                  OBJ(pkeys, str_or_null(p->name), str_or_null(p->bridge), str_or_null(p->state)));
}

static json_t *m_vm_list(void *ctx, json_t *params, struct rpc_error *err)
{
    static const char *const allowed[] = {NULL};
    if (check_members(params, allowed, err))
        return NULL;
    struct vm_walk w = {.vms = json_array()};
    if (!w.vms)
        return oom(err);
    int r = vsw_port_foreach(ctx, NULL, vm_list_one, &w);
    if (r < 0) {
        json_decref(w.vms);
        return r == -ENOMEM ? oom(err) : failed(err, r, NULL);
    }
    return w.vms;
}

static const struct rpc_method methods[] = {
    {"version", m_version},   {"br-add", m_br_add},       {"br-del", m_br_del},
    {"br-set", m_br_set},     {"br-list", m_br_list},     {"port-add", m_port_add},
    {"port-del", m_port_del}, {"port-list", m_port_list}, {"fdb-show", m_fdb_show},
    {"fdb-add", m_fdb_add},   {"fdb-del", m_fdb_del},     {"stats", m_stats},
    {"vm-list", m_vm_list},
};

const struct rpc_method *vsw_rpc_methods(size_t *n)
{
    *n = ARRAY_SIZE(methods);
    return methods;
}
