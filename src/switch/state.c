/*
 * Persistence of the configuration (bridges, ports, static MAC entries) in one JSON file,
 * written atomically after every change (temp file, fsync, rename, fsync of the directory)
 * and loaded at start. A file that cannot be parsed or applied is reported and moved aside
 * (FILE.corrupt-<time>), never silently replaced. Control thread only.
 */
#include "sw_int.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MOD           "state"
#define STATE_VERSION 1

static int static_one(const struct vsw_fdb_entry *f, void *arg)
{
    if (!f->e.is_static)
        return 0;
    char mac[18];
    json_t *e =
        json_pack("{s:s, s:s}", "mac", vsw_mac_format(&f->e.mac, mac), "port", f->port_name);
    return e ? json_array_append_new(arg, e) : -ENOMEM;
}

static json_t *state_build(struct vsw *sw)
{
    json_t *bridges = json_array(), *ports = json_array();
    json_t *root =
        json_pack("{s:i, s:o, s:o}", "version", STATE_VERSION, "bridges", bridges, "ports", ports);
    if (!root)
        return NULL;
    for (struct sw_bridge *b = sw->bridges; b; b = b->next) {
        json_t *stat = json_array();
        json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:o}", "name", b->name, "age", (int)b->age_sec,
                              "max_macs", (int)b->max_macs, "mtu", (int)b->mtu, "static", stat);
        if (!o || json_array_append_new(bridges, o) < 0 ||
            vsw_fdb_foreach(sw, b->name, static_one, stat) < 0) {
            json_decref(root);
            return NULL;
        }
    }
    /* Registry order is newest first: store oldest first so indices come back the same. */
    struct sw_port *list[SW_MAX_PORTS];
    unsigned n = 0;
    for (struct sw_port *p = sw->ports; p && n < SW_MAX_PORTS; p = p->next)
        list[n++] = p;
    while (n--) {
        struct sw_port *p = list[n];
        json_t *o = json_pack("{s:s, s:s, s:s}", "name", p->name, "bridge", p->br->name, "mode",
                              p->mode == VSW_PORT_CLIENT ? "client" : "server");
        if (o && p->mode == VSW_PORT_CLIENT)
            json_object_set_new(o, "path", json_string(p->path));
        if (o && p->vm_name[0])
            json_object_set_new(
                o, "vm", json_pack("{s:s, s:I}", "name", p->vm_name, "pid", (json_int_t)p->vm_pid));
        if (!o || json_array_append_new(ports, o) < 0) {
            json_decref(root);
            return NULL;
        }
    }
    return root;
}

void sw_state_save(struct vsw *sw)
{
    if (!sw->state_path[0] || sw->state_loading)
        return;
    json_t *root = state_build(sw);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) {
        VLOG(ERR, MOD, "out of memory saving the state; the previous file is kept");
        return;
    }
    char tmp[sizeof(sw->state_path) + 16];
    snprintf(tmp, sizeof(tmp), "%s.tmp", sw->state_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 &&
              fsync(fd) == 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    free(text);
    if (ok && rename(tmp, sw->state_path) == 0) {
        char dir[sizeof(sw->state_path)];
        snprintf(dir, sizeof(dir), "%s", sw->state_path);
        int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        return;
    }
    VLOG(ERR, MOD, "cannot write %s: %s; the previous file is kept", sw->state_path,
         strerror(ok ? errno : e));
    unlink(tmp);
}

static void set_aside(const char *path, const char *why)
{
    char aside[PATH_MAX];
    snprintf(aside, sizeof(aside), "%s.corrupt-%ld", path, (long)time(NULL));
    if (rename(path, aside) == 0)
        VLOG(ERR, MOD, "%s: %s; moved it to %s and started with an empty configuration", path, why,
             aside);
    else
        VLOG(ERR, MOD, "%s: %s; could not move it aside (%s)", path, why, strerror(errno));
}

static int apply(struct vsw *sw, json_t *root, char *why, size_t whylen)
{
    json_t *bridges, *ports;
    int version;
    json_error_t jerr;
    if (json_unpack_ex(root, &jerr, 0, "{s:i, s:o, s:o}", "version", &version, "bridges", &bridges,
                       "ports", &ports) < 0 ||
        !json_is_array(bridges) || !json_is_array(ports)) {
        snprintf(why, whylen, "not a vswitch state file (%s)", jerr.text);
        return -EINVAL;
    }
    if (version != STATE_VERSION) {
        snprintf(why, whylen, "state version %d, this vswitchd reads %d", version, STATE_VERSION);
        return -EINVAL;
    }
    struct vsw_err err = {{0}};
    size_t i;
    json_t *o;
    json_array_foreach(bridges, i, o)
    {
        const char *name;
        int age = 0, max = 0, mtu = 0; /* mtu absent: a file from before bridges had one */
        if (json_unpack_ex(o, &jerr, 0, "{s:s, s?i, s?i, s?i}", "name", &name, "age", &age,
                           "max_macs", &max, "mtu", &mtu) < 0 ||
            age < 0 || max < 0 || mtu < 0) {
            snprintf(why, whylen, "bridge %zu: %s", i,
                     age < 0 || max < 0 || mtu < 0 ? "negative" : jerr.text);
            return -EINVAL;
        }
        struct vsw_br_opts opts = {
            .age_sec = (uint32_t)age, .max_macs = (uint32_t)max, .mtu = (uint32_t)mtu};
        if (vsw_br_add(sw, name, &opts, &err) < 0) {
            snprintf(why, whylen, "bridge %s: %s", name, err.msg);
            return -EINVAL;
        }
    }
    json_array_foreach(ports, i, o)
    {
        const char *name, *bridge, *mode = "server", *path = NULL, *vm_name = NULL;
        json_int_t vm_pid = 0;
        if (json_unpack_ex(o, &jerr, 0, "{s:s, s:s, s?s, s?s, s?{s:s, s:I}}", "name", &name,
                           "bridge", &bridge, "mode", &mode, "path", &path, "vm", "name", &vm_name,
                           "pid", &vm_pid) < 0 ||
            vm_pid < 0 || vm_pid > UINT32_MAX) {
            snprintf(why, whylen, "port %zu: %s", i, jerr.text);
            return -EINVAL;
        }
        struct vsw_port_opts opts = {.type = VSW_PORT_VHOST_USER,
                                     .mode = strcmp(mode, "client") == 0 ? VSW_PORT_CLIENT
                                                                         : VSW_PORT_SERVER,
                                     .path = path,
                                     .vm_name = vm_name,
                                     .vm_pid = (uint32_t)vm_pid};
        if (vsw_port_add(sw, bridge, name, &opts, &err) < 0) {
            snprintf(why, whylen, "port %s: %s", name, err.msg);
            return -EINVAL;
        }
    }
    json_array_foreach(bridges, i, o)
    {
        const char *name = json_string_value(json_object_get(o, "name"));
        json_t *stat = json_object_get(o, "static"), *e;
        size_t k;
        json_array_foreach(stat, k, e)
        {
            const char *mac, *port;
            struct vsw_mac m;
            if (json_unpack(e, "{s:s, s:s}", "mac", &mac, "port", &port) < 0 ||
                vsw_mac_parse(mac, &m) < 0 || vsw_fdb_add(sw, name, &m, port, &err) < 0) {
                snprintf(why, whylen, "static entry %zu of %s: %s", k, name,
                         err.msg[0] ? err.msg : "malformed");
                return -EINVAL;
            }
        }
    }
    return 0;
}

static void clear_all(struct vsw *sw)
{
    while (sw->bridges)
        vsw_br_del(sw, sw->bridges->name, true, NULL);
}

int sw_state_load(struct vsw *sw)
{
    if (!sw->state_path[0])
        return 0;
    json_error_t jerr;
    json_t *root = json_load_file(sw->state_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (access(sw->state_path, F_OK) != 0 && errno == ENOENT)
            return 0; /* first start */
        char why[300];
        snprintf(why, sizeof(why), "cannot parse (line %d: %s)", jerr.line, jerr.text);
        set_aside(sw->state_path, why);
        return -EINVAL;
    }
    char why[300] = "";
    sw->state_loading = true;
    int rc = apply(sw, root, why, sizeof(why));
    json_decref(root);
    if (rc < 0)
        clear_all(sw); /* all or nothing: no half-applied configuration */
    sw->state_loading = false;
    if (rc < 0) {
        set_aside(sw->state_path, why);
        return rc;
    }
    unsigned nb = 0, np = 0;
    for (struct sw_bridge *b = sw->bridges; b; b = b->next)
        nb++;
    for (struct sw_port *p = sw->ports; p; p = p->next)
        np++;
    VLOG(INFO, MOD, "restored %u bridge(s) and %u port(s) from %s", nb, np, sw->state_path);
    return 0;
}
