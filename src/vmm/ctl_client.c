/*
 * The vswitchd control client the VMM needs: port-add (saying which VM the port is for, for
 * vm-list) and port-del, one JSON-RPC 2.0 request per connection (docs/control-protocol.md).
 * Main thread, at start-up and tear-down.
 */
#include "virtio.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MOD           "vmm-ctl"
#define CTL_TIMEOUT_S 5
#define CTL_REPLY_MAX (64 * 1024)

static int ctl_connect(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {.tv_sec = CTL_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* Send one request, return its "result" (new reference) or NULL with *err set. Quiet: a
 * vswitchd that is not there (yet) is not an error worth a line. */
static json_t *ctl_call(const char *sock, const char *method, json_t *params, int *err, bool quiet)
{
    json_t *req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1, "method", method,
                            "params", params);
    char *line = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    char *buf = NULL;
    json_t *reply = NULL, *result = NULL;
    int fd = -1;

    *err = -ENOMEM;
    if (!line)
        goto out;
    if ((fd = ctl_connect(sock)) < 0) {
        *err = fd;
        if (!quiet)
            VLOG(ERR, MOD, "%s: %s", sock, strerror(-fd));
        goto out;
    }
    size_t len = strlen(line);
    line[len] = '\n'; /* replaces the NUL; the length is kept */
    for (size_t off = 0; off < len + 1;) {
        ssize_t n = send(fd, line + off, len + 1 - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            *err = n < 0 ? -errno : -EIO;
            goto out;
        }
        off += (size_t)n;
    }
    buf = malloc(CTL_REPLY_MAX + 1);
    size_t got = 0;
    while (buf && got < CTL_REPLY_MAX && !memchr(buf, '\n', got)) {
        ssize_t n = recv(fd, buf + got, CTL_REPLY_MAX - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (!buf || !memchr(buf, '\n', got)) {
        *err = -EPROTO;
        VLOG(ERR, MOD, "%s: no reply to %s", sock, method);
        goto out;
    }
    buf[got] = 0;
    json_error_t jerr;
    reply = json_loads(buf, JSON_DISABLE_EOF_CHECK, &jerr);
    json_t *e = reply ? json_object_get(reply, "error") : NULL;
    if (e) {
        json_t *msg = json_object_get(e, "message");
        VLOG(ERR, MOD, "%s failed: %s", method, json_is_string(msg) ? json_string_value(msg) : "?");
        *err = -EIO;
        goto out;
    }
    result = reply ? json_object_get(reply, "result") : NULL;
    if (!result) {
        *err = -EPROTO;
        VLOG(ERR, MOD, "%s: malformed reply", method);
        goto out;
    }
    json_incref(result);
    *err = 0;
out:
    json_decref(reply);
    free(buf);
    free(line);
    if (fd >= 0)
        close(fd);
    return result;
}

static int port_add(const char *ctl_socket, const char *bridge, const char *name,
                    const char *vm_name, char *path, size_t cap, bool quiet)
{
    int err;
    json_t *r = ctl_call(ctl_socket, "port-add",
                         json_pack("{s:s, s:s, s:{s:s, s:i}}", "bridge", bridge, "name", name, "vm",
                                   "name", vm_name, "pid", (int)getpid()),
                         &err, quiet);
    if (!r)
        return err;
    json_t *p = json_object_get(r, "path");
    if (!json_is_string(p) || strlen(json_string_value(p)) >= cap) {
        json_decref(r);
        VLOG(ERR, MOD, "port-add: reply without a usable path");
        return -EPROTO;
    }
    strcpy(path, json_string_value(p));
    json_decref(r);
    return 0;
}

int vmm_ctl_port_add(const char *ctl_socket, const char *bridge, const char *name,
                     const char *vm_name, char *path, size_t cap)
{
    return port_add(ctl_socket, bridge, name, vm_name, path, cap, false);
}

int vmm_ctl_port_readd(const char *ctl_socket, const char *bridge, const char *name,
                       const char *vm_name, char *path, size_t cap)
{
    return port_add(ctl_socket, bridge, name, vm_name, path, cap, true);
}

int vmm_ctl_peer_pid(const char *ctl_socket, pid_t *pid)
{
    int fd = ctl_connect(ctl_socket);
    if (fd < 0)
        return fd;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    int rc = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ? -errno : 0;
    close(fd);
    if (rc == 0)
        *pid = cred.pid;
    return rc;
}

int vmm_ctl_port_del(const char *ctl_socket, const char *name)
{
    int err;
    json_t *r = ctl_call(ctl_socket, "port-del", json_pack("{s:s}", "name", name), &err, false);
    json_decref(r);
    return err;
}
