/*
 * vswitchctl: the command-line client of vswitchd's control socket. Turns a command line into
 * one JSON-RPC request (docs/control-protocol.md), waits for the one response line, and
 * prints the result as aligned tables (or the raw JSON result with --json).
 *
 * Single-threaded program. Exit status: 0 success, 1 the daemon reported an error,
 * 2 usage error, 3 cannot reach the daemon (connect, timeout, broken or garbled reply).
 */
#include "common.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef VSW_VERSION
#define VSW_VERSION "unknown"
#endif

#define DEFAULT_SOCK    "/run/vswitch/vswitchd.sock"
#define DEFAULT_TIMEOUT 30.0
#define MAX_RESPONSE    (256u << 20) /* a sanity bound, far above any real reply */

enum { EXIT_DAEMON = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };

static const char *prog = "vswitchctl";

/*
 * What is allocated while fail() may exit, freed at exit so that a sanitizer build reports
 * no leaks on the error paths either.
 */
static struct {
    json_t *params, *resp;
    char *line, *rbuf;
} live;

static void free_live(void)
{
    json_decref(live.params);
    json_decref(live.resp);
    free(live.line);
    free(live.rbuf);
    memset(&live, 0, sizeof(live));
}

static void VSW_PRINTF(2, 3) fail(int status, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

/* ---- tables ---- */

struct table {
    size_t ncols;
    const char *const *hdr;
    const char *right; /* per column: 'r' right-aligned (numbers), else left */
    char **cells;      /* row-major, malloc'd strings */
    size_t nrows;
};

static void table_add(struct table *t, ...)
{
    va_list ap;
    t->cells = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
    if (!t->cells)
        fail(EXIT_DAEMON, "out of memory");
    va_start(ap, t);
    for (size_t i = 0; i < t->ncols; i++) {
        const char *s = va_arg(ap, const char *);
        t->cells[t->nrows * t->ncols + i] = strdup(s ? s : "-");
    }
    va_end(ap);
    t->nrows++;
}

static void table_print(struct table *t)
{
    size_t w[16] = {0};
    for (size_t c = 0; c < t->ncols; c++) {
        w[c] = strlen(t->hdr[c]);
        for (size_t r = 0; r < t->nrows; r++)
            w[c] = MAX(w[c], strlen(t->cells[r * t->ncols + c]));
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = r == 0 ? t->hdr[c] : t->cells[(r - 1) * t->ncols + c];
            bool last = c + 1 == t->ncols;
            if (t->right[c] == 'r')
                printf("%*s%s", (int)w[c], s, last ? "" : "  ");
            else if (last)
                printf("%s", s);
            else
                printf("%-*s  ", (int)w[c], s);
        }
        putchar('\n');
    }
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = 0;
}

/* ---- reading results ---- */

/* Formatted into a rotating set of buffers, so several can appear in one table_add(). */
static char *fmt_buf(void)
{
    static char bufs[16][64];
    static unsigned next;
    return bufs[next++ % ARRAY_SIZE(bufs)];
}

static const char *jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : "-";
}

static const char *jnum(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return "-";
    char *b = fmt_buf();
    snprintf(b, 64, "%lld", (long long)json_integer_value(v));
    return b;
}

static long long jint(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* "rx_runt=3 tx_no_buffer=10" for a drops object, plus extra non-zero counters; "" if none. */
static void drops_line(json_t *drops, json_t *obj, const char *const extra[], char *out,
                       size_t size)
{
    size_t len = 0;
    const char *key;
    json_t *v;
    out[0] = '\0';
    for (size_t i = 0; extra && extra[i]; i++) {
        long long n = jint(obj, extra[i]);
        if (n && len < size)
            len +=
                (size_t)snprintf(out + len, size - len, "%s%s=%lld", len ? " " : "", extra[i], n);
    }
    json_object_foreach(drops, key, v)
    {
        if (len < size)
            len += (size_t)snprintf(out + len, size - len, "%s%s=%lld", len ? " " : "", key,
                                    (long long)json_integer_value(v));
    }
}

/* ---- printers ---- */

static void print_nothing(json_t *r)
{
    (void)r;
}

static void print_version(json_t *r)
{
    printf("vswitchd %s\nvswitchctl %s\n", jstr(r, "version"), VSW_VERSION);
}

static void print_br_list(json_t *r)
{
    static const char *const hdr[] = {"BRIDGE", "PORTS",   "AGE",   "MAX_MACS", "MTU",
                                      "MACS",   "LEARNED", "MOVED", "AGED",     "FULL"};
    struct table t = {ARRAY_SIZE(hdr), hdr, "lrrrrrrrrr"};
    size_t i;
    json_t *b;
    json_array_foreach(r, i, b)
    {
        char *age = fmt_buf();
        snprintf(age, 64, "%ss", jnum(b, "age"));
        table_add(&t, jstr(b, "name"), jnum(b, "ports"), age, jnum(b, "max_macs"), jnum(b, "mtu"),
                  jnum(b, "fdb_entries"), jnum(b, "learned"), jnum(b, "moved"), jnum(b, "aged"),
                  jnum(b, "full"));
    }
    table_print(&t);
}

static void print_port_add(json_t *r)
{
    printf("%s\n", jstr(r, "path"));
}

static void print_port_list(json_t *r)
{
    static const char *const hdr[] = {"PORT",  "BRIDGE", "TYPE", "MODE", "STATE",
                                      "INDEX", "QUEUES", "MTU",  "PATH"};
    struct table t = {ARRAY_SIZE(hdr), hdr, "lllllrrrl"};
    size_t i;
    json_t *p;
    json_array_foreach(r, i, p)
    {
        table_add(&t, jstr(p, "name"), jstr(p, "bridge"), jstr(p, "type"), jstr(p, "mode"),
                  jstr(p, "state"), jnum(p, "index"), jnum(p, "queue_pairs"), jnum(p, "mtu"),
                  jstr(p, "path"));
    }
    table_print(&t);
}

/* One line per VM: its ports as PORT@BRIDGE, comma-separated. */
static void print_vm_list(json_t *r)
{
    static const char *const hdr[] = {"VM", "PID", "PORTS"};
    struct table t = {ARRAY_SIZE(hdr), hdr, "lrl"};
    size_t i, k;
    json_t *vm, *p;
    json_array_foreach(r, i, vm)
    {
        json_t *ports = json_object_get(vm, "ports");
        size_t cap = 1;
        json_array_foreach(ports, k, p)
        {
            cap += strlen(jstr(p, "name")) + strlen(jstr(p, "bridge")) + 2;
        }
        char *list = calloc(1, cap);
        if (!list)
            fail(EXIT_DAEMON, "out of memory");
        size_t len = 0;
        json_array_foreach(ports, k, p)
        {
            len += (size_t)snprintf(list + len, cap - len, "%s%s@%s", k ? "," : "", jstr(p, "name"),
                                    jstr(p, "bridge"));
        }
        table_add(&t, jstr(vm, "name"), jnum(vm, "pid"), list);
        free(list);
    }
    table_print(&t);
}

static int fdb_cmp(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(jstr(x, "port"), jstr(y, "port"));
    return c ? c : strcmp(jstr(x, "mac"), jstr(y, "mac"));
}

/* Like `ovs-appctl fdb/show`: one line per MAC, sorted by port then MAC. */
static void print_fdb(json_t *r)
{
    static const char *const hdr[] = {"PORT", "MAC", "TYPE", "AGE"};
    struct table t = {ARRAY_SIZE(hdr), hdr, "lllr"};
    size_t n = json_array_size(r);
    json_t **e = calloc(n ? n : 1, sizeof(*e));
    if (!e)
        fail(EXIT_DAEMON, "out of memory");
    for (size_t i = 0; i < n; i++)
        e[i] = json_array_get(r, i);
    qsort(e, n, sizeof(*e), fdb_cmp);
    for (size_t i = 0; i < n; i++) {
        bool is_static = json_is_true(json_object_get(e[i], "static"));
        table_add(&t, jstr(e[i], "port"), jstr(e[i], "mac"), is_static ? "static" : "dynamic",
                  is_static ? "-" : jnum(e[i], "age"));
    }
    free(e);
    table_print(&t);
}

static void print_stats(json_t *r)
{
    static const char *const phdr[] = {"PORT", "RX_PACKETS", "RX_BYTES", "TX_PACKETS", "TX_BYTES"};
    static const char *const perr[] = {"msg_errors", "queue_errors", "msg_refused", "log_errors",
                                       NULL};
    struct table t = {ARRAY_SIZE(phdr), phdr, "lrrrr"};
    json_t *ports = json_object_get(r, "ports"), *pmds = json_object_get(r, "pmds");
    char line[2048];
    size_t i;
    json_t *p;

    json_array_foreach(ports, i, p)
    {
        table_add(&t, jstr(p, "name"), jnum(p, "rx_packets"), jnum(p, "rx_bytes"),
                  jnum(p, "tx_packets"), jnum(p, "tx_bytes"));
    }
    table_print(&t);
    /* Only what is non-zero: the interesting part of a stats dump is what went wrong. */
    json_array_foreach(ports, i, p)
    {
        drops_line(json_object_get(p, "drops"), p, perr, line, sizeof(line));
        if (line[0])
            printf("  %s drops: %s\n", jstr(p, "name"), line);
    }

    static const char *const mhdr[] = {"PMD",  "CORE",   "RXQS",        "PACKETS",
                                       "BUSY", "SLEEPS", "IDLE_POLL_US"};
    struct table m = {ARRAY_SIZE(mhdr), mhdr, "rrrrrrr"};
    json_array_foreach(pmds, i, p)
    {
        double busy = (double)jint(p, "busy_cycles"), idle = (double)jint(p, "idle_cycles");
        char *pct = fmt_buf();
        if (busy + idle > 0)
            snprintf(pct, 64, "%.1f%%", 100.0 * busy / (busy + idle));
        else
            snprintf(pct, 64, "-");
        table_add(&m, jnum(p, "id"), jint(p, "core") < 0 ? "-" : jnum(p, "core"), jnum(p, "rxqs"),
                  jnum(p, "packets"), pct, jnum(p, "sleeps"), jnum(p, "idle_poll_us"));
    }
    putchar('\n');
    table_print(&m);
    json_array_foreach(pmds, i, p)
    {
        drops_line(json_object_get(p, "drops"), p, NULL, line, sizeof(line));
        if (line[0])
            printf("  pmd %s drops: %s\n", jnum(p, "id"), line);
    }
}

/* ---- commands ---- */

enum opt_type { OPT_UINT, OPT_FLAG, OPT_STRING };

struct opt_spec {
    const char *flag; /* "--age" */
    const char *key;  /* JSON member */
    enum opt_type type;
};

struct cmd_spec {
    const char *name;
    const char *args; /* usage after the command name */
    const char *help;
    const char *pos[3]; /* JSON members of the positional arguments, in order */
    const char *pos_name[3];
    int n_required;
    struct opt_spec opts[3];
    bool need_opt; /* at least one option must be given (br-set) */
    void (*print)(json_t *result);
};

static const struct cmd_spec cmds[] = {
    {"br-add",
     "BR [--age SEC] [--max-macs N] [--mtu N]",
     "create a bridge (MTU 68..65535, default 1500)",
     {"name"},
     {"BR"},
     1,
     {{"--age", "age", OPT_UINT}, {"--max-macs", "max_macs", OPT_UINT}, {"--mtu", "mtu", OPT_UINT}},
     false,
     print_nothing},
    {"br-del",
     "BR [--force]",
     "delete a bridge (--force: and its ports)",
     {"name"},
     {"BR"},
     1,
     {{"--force", "force", OPT_FLAG}},
     false,
     print_nothing},
    {"br-set",
     "BR [--age SEC] [--max-macs N] [--mtu N]",
     "change a bridge's FDB age, size limit or MTU",
     {"name"},
     {"BR"},
     1,
     {{"--age", "age", OPT_UINT}, {"--max-macs", "max_macs", OPT_UINT}, {"--mtu", "mtu", OPT_UINT}},
     true,
     print_nothing},
    {"br-list",
     "",
     "list bridges with their FDB counters",
     {NULL},
     {NULL},
     0,
     {{NULL}},
     false,
     print_br_list},
    {"port-add",
     "BR PORT [--mode server|client] [--path SOCK]",
     "add a vhost-user port; prints its socket path",
     {"bridge", "name"},
     {"BR", "PORT"},
     2,
     {{"--type", "type", OPT_STRING},
      {"--mode", "mode", OPT_STRING},
      {"--path", "path", OPT_STRING}},
     false,
     print_port_add},
    {"port-del", "PORT", "delete a port", {"name"}, {"PORT"}, 1, {{NULL}}, false, print_nothing},
    {"port-list",
     "[BR]",
     "list ports (of one bridge)",
     {"bridge"},
     {"BR"},
     0,
     {{NULL}},
     false,
     print_port_list},
    {"fdb-show",
     "BR",
     "show a bridge's MAC table",
     {"bridge"},
     {"BR"},
     1,
     {{NULL}},
     false,
     print_fdb},
    {"fdb-add",
     "BR MAC PORT",
     "add a static MAC entry (never ages or moves)",
     {"bridge", "mac", "port"},
     {"BR", "MAC", "PORT"},
     3,
     {{NULL}},
     false,
     print_nothing},
    {"fdb-del",
     "BR MAC",
     "remove a MAC entry",
     {"bridge", "mac"},
     {"BR", "MAC"},
     2,
     {{NULL}},
     false,
     print_nothing},
    {"stats",
     "[PORT]",
     "packet, byte and drop counters per port and per PMD",
     {"port"},
     {"PORT"},
     0,
     {{NULL}},
     false,
     print_stats},
    {"vm-list",
     "",
     "list the VMs (vswitch-vmm) that asked for ports, with their ports",
     {NULL},
     {NULL},
     0,
     {{NULL}},
     false,
     print_vm_list},
    {"version", "", "show the daemon's version", {NULL}, {NULL}, 0, {{NULL}}, false, print_version},
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--socket PATH] [--json] [--timeout SEC] COMMAND [ARGS]\n"
            "\n"
            "Commands:\n",
            prog);
    for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
        char left[64];
        snprintf(left, sizeof(left), "%s %s", cmds[i].name, cmds[i].args);
        fprintf(f, "  %-38s %s\n", left, cmds[i].help);
    }
    fprintf(f,
            "  %-38s %s\n"
            "\n"
            "Options:\n"
            "  --socket PATH   control socket (default: $VSWITCH_SOCK, else %s)\n"
            "  --json          print the result as JSON\n"
            "  --timeout SEC   give up after SEC seconds (default %.0f; 0: wait forever)\n"
            "\n"
            "Exit status: 0 ok, 1 the daemon reported an error, 2 usage error,\n"
            "3 cannot talk to the daemon.\n",
            "help", "show this help", DEFAULT_SOCK, DEFAULT_TIMEOUT);
}

static void VSW_PRINTF(2, 3) usage_error(const struct cmd_spec *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    if (c)
        fprintf(stderr, "%s: ", c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c)
        fprintf(stderr, "usage: %s %s %s\n", prog, c->name, c->args);
    else
        fprintf(stderr, "Try '%s help'.\n", prog);
    exit(EXIT_USAGE);
}

static bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 19)
        return false;
    errno = 0;
    *out = strtoull(s, NULL, 10);
    return errno == 0 && *out <= max;
}

static json_t *arg_string(const struct cmd_spec *c, const char *s)
{
    json_t *j = json_string(s);
    if (!j)
        usage_error(c, "\"%s\" is not valid UTF-8", s);
    return j;
}

/* The params object for a command line (argv after the command name). */
static json_t *build_params(const struct cmd_spec *c, int argc, char **argv)
{
    json_t *params = live.params = json_object();
    int npos = 0, nopts = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--") == 0) {
            if (strcmp(arg, "--") == 0)
                usage_error(c, "unexpected \"--\"");
            if (npos >= 3 || !c->pos[npos])
                usage_error(c, "unexpected argument \"%s\"", arg);
            json_object_set_new(params, c->pos[npos++], arg_string(c, arg));
            continue;
        }
        const char *eq = strchr(arg, '=');
        size_t flen = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct opt_spec *o = NULL;
        for (size_t k = 0; k < ARRAY_SIZE(c->opts) && c->opts[k].flag; k++)
            if (strlen(c->opts[k].flag) == flen && strncmp(c->opts[k].flag, arg, flen) == 0)
                o = &c->opts[k];
        if (!o)
            usage_error(c, "unknown option \"%.*s\"", (int)flen, arg);
        nopts++;
        if (o->type == OPT_FLAG) {
            if (eq)
                usage_error(c, "%s takes no value", o->flag);
            json_object_set_new(params, o->key, json_true());
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val)
            usage_error(c, "%s needs a value", o->flag);
        if (o->type == OPT_STRING) {
            json_object_set_new(params, o->key, arg_string(c, val));
        } else {
            unsigned long long n;
            if (!parse_uint(val, UINT32_MAX, &n))
                usage_error(c, "%s: \"%s\" is not a number from 0 to %u", o->flag, val, UINT32_MAX);
            json_object_set_new(params, o->key, json_integer((json_int_t)n));
        }
    }
    if (npos < c->n_required)
        usage_error(c, "missing %s", c->pos_name[npos]);
    if (c->need_opt && nopts == 0)
        usage_error(c, "nothing to change");
    live.params = NULL;
    return params;
}

/* ---- transport ---- */

struct conn {
    int fd;
    const char *path;
    double deadline; /* CLOCK_MONOTONIC seconds, or 0 for none */
};

static double now_s(void)
{
    return (double)vsw_now_ns() / 1e9;
}

/* Wait for `events` until the deadline; exits with EXIT_CONNECT on timeout. */
static void wait_io(struct conn *c, short events)
{
    for (;;) {
        int ms = -1;
        if (c->deadline > 0) {
            double left = c->deadline - now_s();
            if (left <= 0)
                fail(EXIT_CONNECT, "no answer from vswitchd at %s (timed out)", c->path);
            ms = (int)(left * 1000) + 1;
        }
        struct pollfd p = {.fd = c->fd, .events = events};
        int r = poll(&p, 1, ms);
        if (r > 0)
            return;
        if (r < 0 && errno != EINTR)
            fail(EXIT_CONNECT, "poll: %s", strerror(errno));
    }
}

static void conn_open(struct conn *c)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(c->path) >= sizeof(sa.sun_path))
        fail(EXIT_CONNECT, "cannot connect to %s: socket path too long", c->path);
    memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        fail(EXIT_CONNECT, "socket: %s", strerror(errno));
    if (c->deadline > 0) {
        /* A unix connect() blocks only while the listener's backlog is full. */
        double left = MAX(c->deadline - now_s(), 0.001);
        struct timeval tv = {.tv_sec = (time_t)left,
                             .tv_usec = (suseconds_t)((left - (double)(time_t)left) * 1e6)};
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;
        const char *hint = "";
        if (e == ENOENT || e == ECONNREFUSED)
            hint = " (is vswitchd running?)";
        else if (e == EACCES || e == EPERM)
            hint = " (run as root or as vswitchd's user)";
        else if (e == EAGAIN)
            hint = " (vswitchd is not accepting connections)";
        fail(EXIT_CONNECT, "cannot connect to %s: %s%s", c->path, strerror(e), hint);
    }
}

static void conn_send(struct conn *c, const char *buf, size_t n)
{
    while (n > 0) {
        wait_io(c, POLLOUT);
        ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (w < 0)
            fail(EXIT_CONNECT, "sending to vswitchd at %s: %s", c->path, strerror(errno));
        buf += w;
        n -= (size_t)w;
    }
}

/* One line from the daemon (malloc'd, without '\n'). */
static char *conn_recv_line(struct conn *c)
{
    size_t len = 0, cap = 65536;
    live.rbuf = malloc(cap);
    for (;;) {
        if (!live.rbuf)
            fail(EXIT_CONNECT, "out of memory");
        char *nl = memchr(live.rbuf, '\n', len);
        if (nl) {
            char *line = live.rbuf;
            *nl = '\0';
            live.rbuf = NULL;
            return line;
        }
        if (len == cap) {
            if (cap >= MAX_RESPONSE)
                fail(EXIT_CONNECT, "reply from vswitchd too long");
            cap *= 2;
            char *p = realloc(live.rbuf, cap);
            if (!p)
                fail(EXIT_CONNECT, "out of memory");
            live.rbuf = p;
            continue;
        }
        wait_io(c, POLLIN);
        ssize_t r = recv(c->fd, live.rbuf + len, cap - len, MSG_DONTWAIT);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r < 0)
            fail(EXIT_CONNECT, "reading from vswitchd at %s: %s", c->path, strerror(errno));
        if (r == 0)
            fail(EXIT_CONNECT, "vswitchd closed the connection without answering");
        len += (size_t)r;
    }
}

/* Send the request; return the result (new reference), or exit on any error. */
static json_t *call(struct conn *c, const char *method, json_t *params)
{
    json_t *req = json_pack("{s:s, s:i, s:s, s:o}", "jsonrpc", "2.0", "id", 1, "method", method,
                            "params", params);
    live.line = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!live.line)
        fail(EXIT_USAGE, "cannot encode the request");
    size_t n = strlen(live.line);
    if (n >= 65536)
        fail(EXIT_USAGE, "request too long");
    char *p = realloc(live.line, n + 2);
    if (!p)
        fail(EXIT_USAGE, "out of memory");
    live.line = p;
    p[n] = '\n';
    p[n + 1] = '\0';

    conn_open(c);
    conn_send(c, live.line, n + 1);
    free(live.line);
    live.line = NULL;
    live.line = conn_recv_line(c);
    close(c->fd);

    json_error_t jerr;
    json_t *resp = live.resp = json_loads(live.line, 0, &jerr);
    if (!json_is_object(resp))
        fail(EXIT_CONNECT, "garbled reply from vswitchd: %s", resp ? "not an object" : jerr.text);
    free(live.line);
    live.line = NULL;
    json_t *err = json_object_get(resp, "error");
    if (err) {
        /* Also for an unsolicited error (id null): permission denied, too many clients. */
        json_t *msg = json_object_get(err, "message");
        json_t *no = json_object_get(json_object_get(err, "data"), "errno");
        if (json_is_string(no))
            fail(EXIT_DAEMON, "%s (%s)", json_is_string(msg) ? json_string_value(msg) : "error",
                 json_string_value(no));
        fail(EXIT_DAEMON, "%s", json_is_string(msg) ? json_string_value(msg) : "error");
    }
    json_t *result = json_object_get(resp, "result");
    json_t *id = json_object_get(resp, "id");
    if (!result || !json_is_integer(id) || json_integer_value(id) != 1)
        fail(EXIT_CONNECT, "unexpected reply from vswitchd");
    json_incref(result);
    json_decref(resp);
    live.resp = NULL;
    return result;
}

int main(int argc, char **argv)
{
    const char *sock = getenv("VSWITCH_SOCK");
    bool json_out = false;
    double timeout = DEFAULT_TIMEOUT;
    int i = 1;

    atexit(free_live);
    if (!sock || !*sock)
        sock = DEFAULT_SOCK;
    for (; i < argc && strncmp(argv[i], "-", 1) == 0; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        size_t flen = eq ? (size_t)(eq - a) : strlen(a);
#define IS(s) (flen == strlen(s) && strncmp(a, s, flen) == 0)
        if (IS("--json") && !eq) {
            json_out = true;
        } else if (IS("-h") || IS("--help")) {
            usage(stdout);
            return 0;
        } else if (IS("--version") && !eq) {
            printf("vswitchctl %s\n", VSW_VERSION);
            return 0;
        } else if (IS("--socket") || IS("--timeout")) {
            const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!val || !*val)
                usage_error(NULL, "%.*s needs a value", (int)flen, a);
            if (IS("--socket")) {
                sock = val;
            } else {
                char *end;
                errno = 0;
                timeout = strtod(val, &end);
                if (errno || *end || !(timeout >= 0) || timeout > 1e6)
                    usage_error(NULL, "--timeout: \"%s\" is not a number of seconds", val);
            }
        } else {
            usage_error(NULL, "unknown option \"%s\"", a);
        }
#undef IS
    }
    if (i >= argc)
        usage_error(NULL, "no command given");
    const char *name = argv[i++];
    if (strcmp(name, "help") == 0) {
        usage(stdout);
        return 0;
    }
    const struct cmd_spec *c = NULL;
    for (size_t k = 0; k < ARRAY_SIZE(cmds); k++)
        if (strcmp(cmds[k].name, name) == 0)
            c = &cmds[k];
    if (!c)
        usage_error(NULL, "unknown command \"%s\"", name);
    json_t *params = build_params(c, argc - i, argv + i);

    struct conn conn = {.fd = -1, .path = sock, .deadline = timeout > 0 ? now_s() + timeout : 0};
    json_t *result = live.resp = call(&conn, c->name, params);
    if (json_out) {
        char *s = json_dumps(result, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        c->print(result);
    }
    json_decref(result);
    live.resp = NULL;
    if (fflush(stdout) != 0)
        fail(EXIT_DAEMON, "writing output: %s", strerror(errno));
    return 0;
}
