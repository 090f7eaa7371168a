/*
 * ctl_server: JSON-RPC 2.0 over a unix stream socket, one request per line
 * (docs/control-protocol.md). Accepts many clients, all non-blocking, on the control thread's
 * vsw_loop; each client has a line buffer for its input and a buffer for output the socket
 * did not take yet. Requests of one client are answered in order, one response line each
 * (none for notifications).
 *
 * Thread: control thread only (loop callbacks). No locks.
 *
 * Nothing a client sends is trusted: lines are bounded, JSON is parsed by jansson (which
 * bounds nesting depth and checks UTF-8), every member of the request is type-checked before
 * use, and writes use MSG_NOSIGNAL so a vanished client cannot kill the daemon with SIGPIPE.
 */
#include "ctl_server.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MOD "ctl"

/* Reads and accepts per callback, so one busy client cannot starve the others. */
#define READS_PER_CALL   16
#define ACCEPTS_PER_CALL 16
#define LISTEN_BACKLOG   64
#define IN_CAP           (CTL_MAX_LINE + 1) /* a maximal line plus its '\n' */

struct ctl_client {
    struct ctl_server *srv;
    struct ctl_client *prev, *next;
    int fd;
    uint32_t events; /* what the loop watches for now */
    bool eof;        /* the peer shut down its sending side: no more requests */
    bool closing;    /* close once the output is flushed (after a fatal error) */

    char *in;
    size_t in_len;

    char *out;
    size_t out_off, out_len, out_cap;
};

struct ctl_server {
    struct vsw_loop *loop;
    char *path;
    dev_t dev; /* the socket file we created, so destroy never unlinks a successor's */
    ino_t ino;
    int fd;
    int reserve_fd; /* spare fd given up to accept-and-close a client when out of fds */
    uid_t euid;
    const struct rpc_method *methods;
    size_t n_methods;
    void *ctx;
    struct ctl_client *clients;
    size_t n_clients;
};

/* ---- errors ---- */

void rpc_error_set(struct rpc_error *err, int code, int errnum, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    err->errnum = errnum;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

const char *rpc_errno_name(int errnum)
{
    static __thread char buf[16];
    const char *name = errnum > 0 ? strerrorname_np(errnum) : NULL;
    if (name)
        return name;
    snprintf(buf, sizeof(buf), "E%d", errnum);
    return buf;
}

/*
 * A JSON string from text that may not be valid UTF-8 (a message truncated inside a
 * multi-byte character, a parser message quoting bad input): replace what jansson refuses.
 */
static json_t *safe_string(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char buf[512];
    size_t i;
    for (i = 0; i < sizeof(buf) - 1 && s[i]; i++)
        buf[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    buf[i] = '\0';
    return json_string(buf);
}

static json_t *error_response(json_t *id, int code, int errnum, const char *message)
{
    json_t *e = json_object();
    json_object_set_new(e, "code", json_integer(code));
    json_object_set_new(e, "message", safe_string(message));
    if (errnum > 0) {
        json_t *data = json_object();
        json_object_set_new(data, "errno", json_string(rpc_errno_name(errnum)));
        json_object_set_new(e, "data", data);
    }
    json_t *r = json_object();
    json_object_set_new(r, "jsonrpc", json_string("2.0"));
    json_object_set(r, "id", id ? id : json_null());
    json_object_set_new(r, "error", e);
    return r;
}

/* ---- dispatch ---- */

static const struct rpc_method *find_method(const struct ctl_server *srv, const char *name)
{
    for (size_t i = 0; i < srv->n_methods; i++)
        if (strcmp(srv->methods[i].name, name) == 0)
            return &srv->methods[i];
    return NULL;
}

/* The response to one parsed request, or NULL when none is due (a notification). */
static json_t *dispatch(struct ctl_server *srv, json_t *req)
{
    if (!json_is_object(req))
        return error_response(NULL, RPC_INVALID_REQUEST, 0,
                              json_is_array(req) ? "batch requests are not supported"
                                                 : "request must be a JSON object");

    /* An id of a forbidden type cannot be echoed: answer with null, as for no id at all. */
    json_t *id = json_object_get(req, "id");
    if (id && !json_is_string(id) && !json_is_number(id) && !json_is_null(id))
        return error_response(NULL, RPC_INVALID_REQUEST, 0,
                              "\"id\" must be a string, a number or null");

    json_t *v = json_object_get(req, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0)
        return error_response(id, RPC_INVALID_REQUEST, 0, "\"jsonrpc\" must be \"2.0\"");
    json_t *m = json_object_get(req, "method");
    if (!json_is_string(m))
        return error_response(id, RPC_INVALID_REQUEST, 0, "\"method\" must be a string");
    json_t *params = json_object_get(req, "params");
    if (params && !json_is_object(params) && !json_is_array(params))
        return error_response(id, RPC_INVALID_REQUEST, 0,
                              "\"params\" must be an object or an array");

    const char *name = json_string_value(m);
    const struct rpc_method *method = find_method(srv, name);
    char msg[sizeof(((struct rpc_error *)0)->message)];
    if (!method) {
        if (!id)
            return NULL;
        snprintf(msg, sizeof(msg), "unknown method \"%.64s\"", name);
        return error_response(id, RPC_METHOD_NOT_FOUND, 0, msg);
    }

    /* Methods always see an object: every method takes named parameters. */
    json_t *obj;
    if (!params || (json_is_array(params) && json_array_size(params) == 0)) {
        obj = json_object();
    } else if (json_is_array(params)) {
        if (!id)
            return NULL;
        return error_response(id, RPC_INVALID_PARAMS, 0,
                              "\"params\" must be an object (named parameters)");
    } else {
        obj = json_incref(params);
    }
    if (!obj)
        return id ? error_response(id, RPC_INTERNAL_ERROR, ENOMEM, "out of memory") : NULL;

    struct rpc_error err = {0};
    json_t *result = method->fn(srv->ctx, obj, &err);
    json_decref(obj);
    if (!id) {
        json_decref(result);
        return NULL;
    }
    if (!result) {
        if (err.code == 0)
            rpc_error_set(&err, RPC_INTERNAL_ERROR, 0, "internal error in \"%.64s\"", name);
        return error_response(id, err.code, err.errnum, err.message);
    }
    json_t *r = json_object();
    json_object_set_new(r, "jsonrpc", json_string("2.0"));
    json_object_set(r, "id", id);
    json_object_set_new(r, "result", result);
    return r;
}

/* ---- client I/O ---- */

static void client_cb(int fd, uint32_t events, void *arg);

static void client_close(struct ctl_client *c)
{
    struct ctl_server *srv = c->srv;
    vsw_loop_del_fd(srv->loop, c->fd);
    /*
     * Read what the peer already sent: closing a unix socket with unread input makes the
     * peer's next read fail with ECONNRESET instead of ending at EOF after our last reply.
     */
    char sink[4096];
    for (int i = 0; i < 64 && read(c->fd, sink, sizeof(sink)) > 0; i++)
        ;
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_clients--;
    free(c->in);
    free(c->out);
    free(c);
}

/* json_dump_callback sink. The caller compacted the buffer, so out_off stays 0 here. */
static int out_append(const char *buf, size_t size, void *arg)
{
    struct ctl_client *c = arg;
    if (c->out_len + size > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + size)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p)
            return -1;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, buf, size);
    c->out_len += size;
    return 0;
}

/* Queue one response line. On failure (out of memory) the client cannot be answered: close. */
static int send_response(struct ctl_client *c, json_t *resp)
{
    if (c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    size_t mark = c->out_len;
    int r = json_dump_callback(resp, out_append, c, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (r == 0)
        r = out_append("\n", 1, c);
    if (r != 0) {
        c->out_len = mark; /* drop the partial line: a truncated reply would confuse the peer */
        VLOG_RL(ERR, MOD, "out of memory for a response; closing the client");
        c->closing = true;
        return -ENOMEM;
    }
    return 0;
}

static bool is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static void handle_line(struct ctl_client *c, const char *line, size_t len)
{
    if (is_blank(line, len))
        return;
    json_error_t jerr;
    json_t *req = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    json_t *resp;
    if (!req) {
        char msg[256];
        snprintf(msg, sizeof(msg), "parse error at column %d: %s", jerr.column, jerr.text);
        resp = error_response(NULL, RPC_PARSE_ERROR, 0, msg);
    } else {
        resp = dispatch(c->srv, req);
        json_decref(req);
    }
    if (resp) {
        send_response(c, resp);
        json_decref(resp);
    }
}

static bool out_high(const struct ctl_client *c)
{
    return c->out_len - c->out_off >= CTL_OUT_HIGH;
}

/* Answer the complete lines in the input buffer, as far as output backpressure allows. */
static void process_lines(struct ctl_client *c)
{
    size_t start = 0;
    bool no_more_lines = false;
    while (!c->closing && !out_high(c)) {
        char *nl = memchr(c->in + start, '\n', c->in_len - start);
        if (!nl) {
            no_more_lines = true;
            break;
        }
        size_t len = (size_t)(nl - (c->in + start));
        handle_line(c, c->in + start, len);
        start += len + 1;
    }
    if (c->closing) {
        c->in_len = 0;
        return;
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    if (no_more_lines && c->in_len >= IN_CAP) {
        char msg[128];
        snprintf(msg, sizeof(msg), "request line longer than %d bytes", CTL_MAX_LINE);
        json_t *resp = error_response(NULL, RPC_INVALID_REQUEST, 0, msg);
        send_response(c, resp);
        json_decref(resp);
        VLOG_RL(WARN, MOD, "client sent a line longer than %d bytes; closing it", CTL_MAX_LINE);
        c->closing = true;
        c->in_len = 0;
    }
}

/* Send what the socket takes. Returns 0, or -errno when the client is gone. */
static int flush_out(struct ctl_client *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n =
            send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return n < 0 ? -errno : -EPIPE;
        }
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* Read while there is room and no backpressure. Returns 0, or -errno when the client is gone. */
static int read_in(struct ctl_client *c)
{
    for (int i = 0; i < READS_PER_CALL; i++) {
        process_lines(c);
        if (c->closing || c->eof || out_high(c) || c->in_len >= IN_CAP)
            return 0;
        ssize_t n = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
        if (n > 0) {
            c->in_len += (size_t)n;
        } else if (n == 0) {
            /* Half-close (shutdown(SHUT_WR)): still answer what was received. */
            c->eof = true;
            process_lines(c);
            return 0;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else {
            return -errno;
        }
    }
    /* Budget spent with data possibly left: the loop calls us again (level-triggered). */
    process_lines(c);
    return 0;
}

/*
 * Watch for what the client needs next, or close it when it needs nothing: no output left
 * and either closing or at EOF. (Requests left unanswered at EOF imply output over
 * CTL_OUT_HIGH, so EPOLLOUT is wanted and read_in() answers them once it drains.)
 */
static void client_update(struct ctl_client *c)
{
    uint32_t want = 0;
    bool pending_out = c->out_off < c->out_len;
    if (pending_out)
        want |= EPOLLOUT;
    if (!c->closing && !c->eof && !out_high(c))
        want |= EPOLLIN;
    if (want == 0) {
        client_close(c);
        return;
    }
    if (want == c->events)
        return;
    /* The loop has no "modify": re-add. Safe inside our own callback (loop.h). */
    vsw_loop_del_fd(c->srv->loop, c->fd);
    int r = vsw_loop_add_fd(c->srv->loop, c->fd, want, client_cb, c);
    if (r < 0) {
        VLOG_RL(ERR, MOD, "cannot watch a client: %s", strerror(-r));
        client_close(c);
        return;
    }
    c->events = want;
}

static void client_cb(int fd, uint32_t events, void *arg)
{
    struct ctl_client *c = arg;
    (void)fd;
    /* EPOLLHUP: both directions are shut, nobody can read our answers. */
    if (events & (EPOLLERR | EPOLLHUP)) {
        client_close(c);
        return;
    }
    if (flush_out(c) < 0 || read_in(c) < 0 || flush_out(c) < 0) {
        client_close(c);
        return;
    }
    client_update(c);
}

/* ---- accepting ---- */

/* Tell a client why it is turned away, best effort (a new socket has room), and close it. */
static void reject(int fd, int errnum, const char *message)
{
    json_t *resp = error_response(NULL, RPC_FAILED, errnum, message);
    char *s = json_dumps(resp, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(resp);
    char line[512];
    int len = s ? snprintf(line, sizeof(line), "%s\n", s) : -1;
    if (len > 0 && (size_t)len < sizeof(line)) {
        ssize_t w = send(fd, line, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
    free(s);
    close(fd);
}

static void client_new(struct ctl_server *srv, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        VLOG_RL(WARN, MOD, "SO_PEERCRED: %s; rejecting the client", strerror(errno));
        reject(fd, EACCES, "permission denied: cannot identify the peer");
        return;
    }
    if (cred.uid != 0 && cred.uid != srv->euid) {
        char msg[128];
        snprintf(msg, sizeof(msg), "permission denied: uid %u may not use the control socket",
                 (unsigned)cred.uid);
        VLOG_RL(WARN, MOD, "rejected a client with uid %u (pid %d)", (unsigned)cred.uid,
                (int)cred.pid);
        reject(fd, EACCES, msg);
        return;
    }
    if (srv->n_clients >= CTL_MAX_CLIENTS) {
        VLOG_RL(WARN, MOD, "too many control clients (%d); rejecting one", CTL_MAX_CLIENTS);
        reject(fd, EAGAIN, "too many clients, try again later");
        return;
    }

    struct ctl_client *c = calloc(1, sizeof(*c));
    if (c)
        c->in = malloc(IN_CAP);
    if (!c || !c->in) {
        free(c);
        VLOG_RL(ERR, MOD, "out of memory for a client");
        close(fd);
        return;
    }
    c->srv = srv;
    c->fd = fd;
    c->events = EPOLLIN;
    int r = vsw_loop_add_fd(srv->loop, fd, c->events, client_cb, c);
    if (r < 0) {
        VLOG_RL(ERR, MOD, "cannot watch a client: %s", strerror(-r));
        free(c->in);
        free(c);
        close(fd);
        return;
    }
    c->next = srv->clients;
    if (c->next)
        c->next->prev = c;
    srv->clients = c;
    srv->n_clients++;
}

static void listen_cb(int fd, uint32_t events, void *arg)
{
    struct ctl_server *srv = arg;
    (void)events;
    for (int i = 0; i < ACCEPTS_PER_CALL; i++) {
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            client_new(srv, cfd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if ((errno == EMFILE || errno == ENFILE) && srv->reserve_fd >= 0) {
            /*
             * Out of fds the pending connection would keep the listener readable and spin
             * the loop: spend the reserve fd to accept it and close it at once.
             */
            VLOG_RL(ERR, MOD, "out of file descriptors; dropping a control connection");
            close(srv->reserve_fd);
            cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd >= 0)
                close(cfd);
            srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            continue;
        }
        VLOG_RL(ERR, MOD, "accept: %s", strerror(errno));
        return;
    }
}

/* ---- creation ---- */

/* mkdir -p of the directory part of `path`, new directories mode 0755. */
static int make_parent_dirs(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -ENOMEM;
    char *slash = strrchr(dir, '/');
    int r = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1;; p++) {
            if (*p != '/' && *p != '\0')
                continue;
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                r = -errno;
                break;
            }
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    free(dir);
    return r;
}

/* Remove a socket left by a dead server. -EADDRINUSE when one is listening there. */
static int remove_stale(const char *path, const struct sockaddr_un *sa)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISSOCK(st.st_mode))
        return -EEXIST; /* never delete a file that is not ours to delete */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
    int e = errno;
    close(fd);
    if (r == 0 || e == EAGAIN)
        return -EADDRINUSE; /* live (EAGAIN: live with a full backlog) */
    if (e != ECONNREFUSED)
        return -e;
    if (unlink(path) < 0 && errno != ENOENT)
        return -errno;
    VLOG(INFO, MOD, "removed stale socket %s", path);
    return 0;
}

struct ctl_server *ctl_server_create(struct vsw_loop *loop, const char *path,
                                     const struct rpc_method *methods, size_t n, void *ctx)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!loop || !path || !*path || (n && !methods)) {
        errno = EINVAL;
        return NULL;
    }
    if (strlen(path) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);

    struct ctl_server *srv = calloc(1, sizeof(*srv));
    if (!srv || !(srv->path = strdup(path))) {
        free(srv);
        errno = ENOMEM;
        return NULL;
    }
    srv->loop = loop;
    srv->fd = -1;
    srv->reserve_fd = -1;
    srv->euid = geteuid();
    srv->methods = methods;
    srv->n_methods = n;
    srv->ctx = ctx;

    int r = make_parent_dirs(path);
    if (r == 0)
        r = remove_stale(path, &sa);
    if (r < 0)
        goto fail;
    srv->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->fd < 0 || bind(srv->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        goto fail;
    }
    /* chmod before listen(): until then every connect is refused, so no window at umask. */
    struct stat st;
    if (chmod(path, 0660) < 0 || lstat(path, &st) < 0 || listen(srv->fd, LISTEN_BACKLOG) < 0) {
        r = -errno;
        unlink(path);
        goto fail;
    }
    srv->dev = st.st_dev;
    srv->ino = st.st_ino;
    r = vsw_loop_add_fd(loop, srv->fd, EPOLLIN, listen_cb, srv);
    if (r < 0) {
        unlink(path);
        goto fail;
    }
    srv->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    VLOG(INFO, MOD, "listening on %s", path);
    return srv;

fail:
    if (srv->fd >= 0)
        close(srv->fd);
    free(srv->path);
    free(srv);
    errno = -r;
    return NULL;
}

void ctl_server_destroy(struct ctl_server *srv)
{
    if (!srv)
        return;
    while (srv->clients)
        client_close(srv->clients);
    vsw_loop_del_fd(srv->loop, srv->fd);
    close(srv->fd);
    if (srv->reserve_fd >= 0)
        close(srv->reserve_fd);
    struct stat st;
    if (lstat(srv->path, &st) == 0 && st.st_dev == srv->dev && st.st_ino == srv->ino)
        unlink(srv->path);
    free(srv->path);
    free(srv);
}

size_t ctl_server_n_clients(const struct ctl_server *srv)
{
    return srv->n_clients;
}
