/*
 * Tests of the control server (src/switch/ctl_server.c) against a fake method table: the
 * JSON-RPC framing and error codes of docs/control-protocol.md, line limits, pipelining,
 * split and partial I/O, clients that vanish, backpressure, peer credentials and the socket
 * file's life cycle.
 *
 * Threads: the server's loop runs in a thread of its own (the "control thread"); the test
 * thread is the clients. Server state is only inspected while that thread is stopped.
 */
#include "ctl_server.h"

#include "common.h"
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
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

/* ---- fake methods ---- */

struct fake {
    int count;
};

static json_t *m_echo(void *ctx, json_t *params, struct rpc_error *err)
{
    (void)ctx;
    (void)err;
    return json_incref(params);
}

static json_t *m_add(void *ctx, json_t *params, struct rpc_error *err)
{
    (void)ctx;
    json_t *a = json_object_get(params, "a"), *b = json_object_get(params, "b");
    if (!json_is_integer(a) || !json_is_integer(b)) {
        rpc_error_set(err, RPC_INVALID_PARAMS, 0, "\"a\" and \"b\" must be integers");
        return NULL;
    }
    return json_integer(json_integer_value(a) + json_integer_value(b));
}

static json_t *m_fail(void *ctx, json_t *params, struct rpc_error *err)
{
    (void)ctx;
    (void)params;
    rpc_error_set(err, RPC_FAILED, EEXIST, "bridge \"%s\" already exists", "br0");
    return NULL;
}

static json_t *m_nullres(void *ctx, json_t *params, struct rpc_error *err)
{
    (void)ctx;
    (void)params;
    (void)err;
    return NULL; /* no code set: the server says -32603 */
}

static json_t *m_badutf8(void *ctx, json_t *params, struct rpc_error *err)
{
    (void)ctx;
    (void)params;
    rpc_error_set(err, RPC_FAILED, 4095, "bad \xff\xfe bytes \xc3");
    return NULL;
}

static json_t *m_count(void *ctx, json_t *params, struct rpc_error *err)
{
    struct fake *f = ctx;
    (void)params;
    (void)err;
    return json_integer(++f->count);
}

static json_t *m_big(void *ctx, json_t *params, struct rpc_error *err)
{
    (void)ctx;
    json_int_t n = json_integer_value(json_object_get(params, "size"));
    if (n <= 0 || n > 64 << 20) {
        rpc_error_set(err, RPC_INVALID_PARAMS, 0, "bad size");
        return NULL;
    }
    char *s = malloc((size_t)n);
    memset(s, 'x', (size_t)n);
    json_t *r = json_stringn(s, (size_t)n);
    free(s);
    return r;
}

static const struct rpc_method methods[] = {
    {"echo", m_echo},       {"add", m_add},     {"fail", m_fail}, {"nullres", m_nullres},
    {"badutf8", m_badutf8}, {"count", m_count}, {"big", m_big},
};

/* ---- fixture: a server whose loop runs in a thread ---- */

struct env {
    char dir[64];
    char path[128];
    struct vsw_loop *loop;
    struct ctl_server *srv;
    struct fake fake;
    pthread_t th;
    bool running;
};

static void *loop_thread(void *arg)
{
    vsw_loop_run(arg);
    return NULL;
}

static void server_start(struct env *e)
{
    assert_int_equal(pthread_create(&e->th, NULL, loop_thread, e->loop), 0);
    e->running = true;
}

static void server_pause(struct env *e)
{
    if (!e->running)
        return;
    vsw_loop_stop(e->loop);
    pthread_join(e->th, NULL);
    e->running = false;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    strcpy(e->dir, "/tmp/vsw-ctl-test-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    /* A directory that does not exist yet: the server must create it. */
    snprintf(e->path, sizeof(e->path), "%s/run/vswitch/ctl.sock", e->dir);
    e->loop = vsw_loop_create();
    assert_non_null(e->loop);
    e->srv = ctl_server_create(e->loop, e->path, methods, ARRAY_SIZE(methods), &e->fake);
    assert_non_null(e->srv);
    server_start(e);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    server_pause(e);
    ctl_server_destroy(e->srv);
    vsw_loop_destroy(e->loop);
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
    free(e);
    return 0;
}

/* ---- client helpers ---- */

struct cli {
    int fd;
    char *buf;
    size_t len, cap;
};

static int connect_to(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* A missing response fails the test instead of hanging it. */
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static struct cli *cli_open(struct env *e)
{
    struct cli *c = calloc(1, sizeof(*c));
    c->fd = connect_to(e->path);
    assert_true(c->fd >= 0);
    return c;
}

static void cli_close(struct cli *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c);
}

static void cli_write(struct cli *c, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
    }
}

static void cli_send(struct cli *c, const char *s)
{
    cli_write(c, s, strlen(s));
}

/*
 * The next line (malloc'd, without '\n'), or NULL at EOF, on a connection reset or after the
 * 5 s timeout; *err gets 0 (EOF) or the errno.
 */
static char *cli_readline_err(struct cli *c, int *err)
{
    for (;;) {
        char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            char *line = strndup(c->buf, n);
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return line;
        }
        if (c->cap - c->len < 65536) {
            c->cap = c->cap ? c->cap * 2 : 131072;
            c->buf = realloc(c->buf, c->cap);
        }
        ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (r <= 0) {
            if (err)
                *err = r == 0 ? 0 : errno;
            return NULL;
        }
        c->len += (size_t)r;
    }
}

static char *cli_readline(struct cli *c)
{
    return cli_readline_err(c, NULL);
}

static json_t *cli_recv(struct cli *c)
{
    char *line = cli_readline(c);
    assert_non_null(line);
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr);
    if (!j)
        fail_msg("response is not JSON (%s): %.200s", jerr.text, line);
    free(line);
    return j;
}

static json_t *cli_call(struct cli *c, const char *req)
{
    cli_send(c, req);
    cli_send(c, "\n");
    return cli_recv(c);
}

/* The server closed the connection: EOF (or a reset, if our unread input was discarded). */
static void assert_closed(struct cli *c)
{
    int err = -1;
    char *line = cli_readline_err(c, &err);
    if (line)
        fail_msg("expected the connection to be closed, got: %.200s", line);
    assert_true(err == 0 || err == ECONNRESET);
}

/* Check a response's shape: jsonrpc, id (as JSON text), and either result or error code. */
static void check_response(json_t *r, const char *id_json, int code)
{
    assert_true(json_is_object(r));
    assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
    json_t *want_id = json_loads(id_json, JSON_DECODE_ANY, NULL);
    assert_non_null(want_id);
    json_t *id = json_object_get(r, "id");
    assert_non_null(id);
    if (!json_equal(id, want_id)) {
        char *s = json_dumps(r, JSON_COMPACT);
        fail_msg("id mismatch, want %s: %s", id_json, s);
    }
    json_decref(want_id);
    json_t *result = json_object_get(r, "result"), *error = json_object_get(r, "error");
    if (code == 0) {
        assert_non_null(result);
        assert_null(error);
        assert_int_equal(json_object_size(r), 3);
    } else {
        assert_null(result);
        assert_true(json_is_object(error));
        assert_int_equal(json_integer_value(json_object_get(error, "code")), code);
        assert_true(json_is_string(json_object_get(error, "message")));
        assert_true(strlen(json_string_value(json_object_get(error, "message"))) > 0);
    }
}

/* ---- table-driven request cases ---- */

struct req_case {
    const char *request; /* one line, without '\n' */
    const char *id;      /* expected id as JSON */
    int code;            /* 0: a result */
    const char *result;  /* expected result as JSON, or NULL to skip */
    const char *err_no;  /* expected error.data.errno, or NULL for no data */
};

static const struct req_case cases[] = {
    /* valid calls */
    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"x\":[1,\"y\"]}}", "1", 0,
     "{\"x\":[1,\"y\"]}", NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"add\",\"params\":{\"a\":2,\"b\":3}}",
     "\"abc\"", 0, "5", NULL},
    {"  {\"method\":\"echo\",\"id\":-7,\"jsonrpc\":\"2.0\"}\r", "-7", 0, "{}", NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":2.5,\"method\":\"echo\",\"params\":[]}", "2.5", 0, "{}", NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"echo\"}", "null", 0, "{}", NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"echo\",\"extra\":1}", "3", 0, "{}", NULL},
    /* unknown method */
    {"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"nope\"}", "7", RPC_METHOD_NOT_FOUND, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"\"}", "7", RPC_METHOD_NOT_FOUND, NULL, NULL},
    /* parse errors */
    {"{\"jsonrpc\":", "null", RPC_PARSE_ERROR, NULL, NULL},
    {"nope", "null", RPC_PARSE_ERROR, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"} {}", "null", RPC_PARSE_ERROR, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"e\xff\"}", "null", RPC_PARSE_ERROR, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"echo\"}", "null", RPC_PARSE_ERROR, NULL,
     NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ec\\u0000ho\"}", "null", RPC_PARSE_ERROR, NULL,
     NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":1e999,\"method\":\"echo\"}", "null", RPC_PARSE_ERROR, NULL, NULL},
    /* not a request object */
    {"[]", "null", RPC_INVALID_REQUEST, NULL, NULL},
    {"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}]", "null", RPC_INVALID_REQUEST, NULL,
     NULL},
    {"1", "null", RPC_INVALID_REQUEST, NULL, NULL},
    {"\"echo\"", "null", RPC_INVALID_REQUEST, NULL, NULL},
    {"null", "null", RPC_INVALID_REQUEST, NULL, NULL},
    /* invalid requests: the id is echoed when it is valid */
    {"{\"id\":2,\"method\":\"echo\"}", "2", RPC_INVALID_REQUEST, NULL, NULL},
    {"{\"jsonrpc\":\"1.0\",\"id\":2,\"method\":\"echo\"}", "2", RPC_INVALID_REQUEST, NULL, NULL},
    {"{\"jsonrpc\":2.0,\"id\":2,\"method\":\"echo\"}", "2", RPC_INVALID_REQUEST, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":2}", "2", RPC_INVALID_REQUEST, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":5}", "2", RPC_INVALID_REQUEST, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":\"x\"}", "2",
     RPC_INVALID_REQUEST, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\",\"params\":null}", "2", RPC_INVALID_REQUEST,
     NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"echo\"}", "null", RPC_INVALID_REQUEST, NULL,
     NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"echo\"}", "null", RPC_INVALID_REQUEST, NULL,
     NULL},
    {"{\"jsonrpc\":\"2.0\",\"method\":5}", "null", RPC_INVALID_REQUEST, NULL, NULL},
    /* invalid params */
    {"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"add\",\"params\":{\"a\":\"1\",\"b\":2}}", "4",
     RPC_INVALID_PARAMS, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"add\",\"params\":{\"a\":1}}", "4",
     RPC_INVALID_PARAMS, NULL, NULL},
    {"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"echo\",\"params\":[1]}", "4", RPC_INVALID_PARAMS,
     NULL, NULL},
    /* method failures */
    {"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"fail\"}", "5", RPC_FAILED, NULL, "EEXIST"},
    {"{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"badutf8\"}", "5", RPC_FAILED, NULL, "E4095"},
    {"{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"nullres\"}", "6", RPC_INTERNAL_ERROR, NULL, NULL},
};

static void test_request_table(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct req_case *t = &cases[i];
        print_message("case %zu: %s\n", i, t->request);
        json_t *r = cli_call(c, t->request);
        check_response(r, t->id, t->code);
        if (t->result) {
            json_t *want = json_loads(t->result, JSON_DECODE_ANY, NULL);
            assert_non_null(want);
            assert_true(json_equal(json_object_get(r, "result"), want));
            json_decref(want);
        }
        if (t->code) {
            json_t *data = json_object_get(json_object_get(r, "error"), "data");
            if (t->err_no)
                assert_string_equal(json_string_value(json_object_get(data, "errno")), t->err_no);
            else
                assert_null(data);
        }
        json_decref(r);
    }
    /* The same connection still works after every error above. */
    json_t *r = cli_call(c, "{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"echo\"}");
    check_response(r, "99", 0);
    json_decref(r);
    cli_close(c);
}

static void test_error_message(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    json_t *r = cli_call(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"fail\"}");
    json_t *err = json_object_get(r, "error");
    assert_string_equal(json_string_value(json_object_get(err, "message")),
                        "bridge \"br0\" already exists");
    json_decref(r);
    /* The message of a parse error says where. */
    r = cli_call(c, "{\"jsonrpc\" \"2.0\"}");
    err = json_object_get(r, "error");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "column"));
    json_decref(r);
    cli_close(c);
}

/* Nesting far past jansson's depth limit must be a parse error, not a stack overflow. */
static void test_deep_nesting(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    char *s = malloc(CTL_MAX_LINE + 2);
    size_t half = CTL_MAX_LINE / 2;
    memset(s, '[', half);
    memset(s + half, ']', half);
    s[2 * half] = '\n';
    cli_write(c, s, 2 * half + 1);
    json_t *r = cli_recv(c);
    check_response(r, "null", RPC_PARSE_ERROR);
    json_decref(r);
    memset(s, '{', half);
    s[half] = '\n';
    cli_write(c, s, half + 1);
    r = cli_recv(c);
    check_response(r, "null", RPC_PARSE_ERROR);
    json_decref(r);
    free(s);
    cli_close(c);
}

static void test_nul_byte(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    static const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\0junk\n";
    cli_write(c, req, sizeof(req) - 1);
    json_t *r = cli_recv(c);
    check_response(r, "null", RPC_PARSE_ERROR);
    json_decref(r);
    cli_close(c);
}

/* ---- framing ---- */

static void test_two_requests_one_write(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    cli_send(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"add\",\"params\":{\"a\":1,\"b\":1}}\n"
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"add\",\"params\":{\"a\":2,\"b\":2}}\n");
    for (int i = 1; i <= 2; i++) {
        json_t *r = cli_recv(c);
        char id[8];
        snprintf(id, sizeof(id), "%d", i);
        check_response(r, id, 0);
        assert_int_equal(json_integer_value(json_object_get(r, "result")), 2 * i);
        json_decref(r);
    }
    cli_close(c);
}

static void test_split_request(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    const char *req = "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"echo\"}\n";
    /* Byte by byte, with pauses so the server sees many partial reads. */
    for (size_t i = 0; req[i]; i++) {
        cli_write(c, &req[i], 1);
        if (i % 8 == 0)
            usleep(2000);
    }
    json_t *r = cli_recv(c);
    check_response(r, "\"s\"", 0);
    json_decref(r);
    /* A request whose end arrives together with the start of the next one. */
    cli_send(c, "{\"jsonrpc\":\"2.0\",\"id\":1,");
    usleep(10000);
    cli_send(c, "\"method\":\"echo\"}\n{\"jsonrpc\":");
    usleep(10000);
    cli_send(c, "\"2.0\",\"id\":2,\"method\":\"echo\"}\n");
    for (int i = 1; i <= 2; i++) {
        r = cli_recv(c);
        check_response(r, i == 1 ? "1" : "2", 0);
        json_decref(r);
    }
    cli_close(c);
}

static void test_blank_lines_ignored(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    cli_send(c, "\n\r\n  \t \n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n\n");
    json_t *r = cli_recv(c);
    check_response(r, "1", 0);
    json_decref(r);
    r = cli_call(c, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}");
    check_response(r, "2", 0); /* no response was owed for the blank lines */
    json_decref(r);
    cli_close(c);
}

static void test_notification(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    /* Notifications run but get no response, not even an error. */
    cli_send(c, "{\"jsonrpc\":\"2.0\",\"method\":\"count\"}\n"
                "{\"jsonrpc\":\"2.0\",\"method\":\"count\",\"params\":{}}\n"
                "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}\n"
                "{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}\n"
                "{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[1]}\n");
    json_t *r = cli_call(c, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"count\"}");
    check_response(r, "5", 0);
    assert_int_equal(json_integer_value(json_object_get(r, "result")), 3);
    json_decref(r);
    cli_close(c);
}

/* A request of exactly CTL_MAX_LINE bytes is served; one byte more is refused and closed. */
static char *padded_request(size_t len)
{
    const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}";
    char *s = malloc(len + 1);
    memset(s, ' ', len);
    memcpy(s, req, strlen(req));
    s[len] = '\n';
    return s;
}

static void test_line_limit(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    char *s = padded_request(CTL_MAX_LINE);
    cli_write(c, s, CTL_MAX_LINE + 1);
    json_t *r = cli_recv(c);
    check_response(r, "1", 0);
    json_decref(r);
    free(s);

    s = padded_request(CTL_MAX_LINE + 1);
    cli_write(c, s, CTL_MAX_LINE + 2);
    r = cli_recv(c);
    check_response(r, "null", RPC_INVALID_REQUEST);
    json_decref(r);
    assert_closed(c);
    free(s);
    cli_close(c);
}

static void test_oversized_no_newline(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    struct cli *other = cli_open(e);
    /* A valid request first: it is answered before the oversized line is refused. */
    cli_send(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n");
    size_t n = 3 * CTL_MAX_LINE;
    char *s = malloc(n);
    memset(s, 'x', n);
    /* The server closes while we write: the tail may fail with EPIPE (no SIGPIPE). */
    ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
    assert_true(w > 0 || errno == EPIPE || errno == ECONNRESET);
    free(s);
    json_t *r = cli_recv(c);
    check_response(r, "1", 0);
    json_decref(r);
    r = cli_recv(c);
    check_response(r, "null", RPC_INVALID_REQUEST);
    assert_non_null(strstr(
        json_string_value(json_object_get(json_object_get(r, "error"), "message")), "longer"));
    json_decref(r);
    assert_closed(c);
    cli_close(c);
    /* Others are unaffected. */
    r = cli_call(other, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}");
    check_response(r, "2", 0);
    json_decref(r);
    cli_close(other);
}

/* ---- clients that go away ---- */

static void test_disconnect_mid_line(void **state)
{
    struct env *e = *state;
    struct cli *a = cli_open(e), *b = cli_open(e);
    cli_send(a, "{\"jsonrpc\":\"2.0\",\"id\":1,\"meth");
    usleep(10000);
    cli_close(a);
    /* A client that sends requests and leaves without reading the answers. */
    struct cli *d = cli_open(e);
    for (int i = 0; i < 100; i++)
        cli_send(d,
                 "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"big\",\"params\":{\"size\":10000}}\n");
    cli_close(d);
    /* And one that resets with unread data. */
    struct cli *f = cli_open(e);
    cli_send(f,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"big\",\"params\":{\"size\":1000000}}\n");
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(f->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    cli_close(f);

    for (int i = 0; i < 3; i++) {
        json_t *r = cli_call(b, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}");
        check_response(r, "2", 0);
        json_decref(r);
        usleep(10000);
    }
    cli_close(b);

    /* The server freed all four (checked with its loop stopped). */
    usleep(50000);
    server_pause(e);
    assert_int_equal(ctl_server_n_clients(e->srv), 0);
    server_start(e);
}

static void test_half_close(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    cli_send(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}\n"
                "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}\n"
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ec"); /* never finished */
    shutdown(c->fd, SHUT_WR);
    for (int i = 1; i <= 2; i++) {
        json_t *r = cli_recv(c);
        check_response(r, i == 1 ? "1" : "2", 0);
        json_decref(r);
    }
    assert_closed(c);
    cli_close(c);
}

/* ---- output buffering ---- */

static void test_big_responses_slow_reader(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    /* 3 x 3 MiB: more than the socket buffer and more than CTL_OUT_HIGH in flight. */
    const int n = 3, size = 3 << 20;
    char req[128];
    for (int i = 0; i < n; i++) {
        snprintf(req, sizeof(req),
                 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"big\",\"params\":{\"size\":%d}}\n", i,
                 size);
        cli_send(c, req);
    }
    /* Meanwhile another client is served. */
    struct cli *other = cli_open(e);
    json_t *r = cli_call(other, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"echo\"}");
    check_response(r, "7", 0);
    json_decref(r);
    cli_close(other);

    usleep(100000);
    for (int i = 0; i < n; i++) {
        r = cli_recv(c);
        char id[8];
        snprintf(id, sizeof(id), "%d", i);
        check_response(r, id, 0);
        const char *s = json_string_value(json_object_get(r, "result"));
        assert_non_null(s);
        assert_int_equal(strlen(s), size);
        assert_true(s[0] == 'x' && s[size - 1] == 'x');
        json_decref(r);
    }
    cli_close(c);
}

static void test_pipelined(void **state)
{
    struct env *e = *state;
    struct cli *c = cli_open(e);
    enum { N = 2000 };
    size_t cap = N * 80, len = 0;
    char *buf = malloc(cap);
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(buf + len, cap - len,
                                "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"echo\"}\n", i);
    cli_write(c, buf, len);
    free(buf);
    for (int i = 0; i < N; i++) {
        json_t *r = cli_recv(c);
        assert_int_equal(json_integer_value(json_object_get(r, "id")), i);
        json_decref(r);
    }
    cli_close(c);
}

static void test_many_clients(void **state)
{
    struct env *e = *state;
    enum { N = 40 };
    struct cli *c[N];
    for (int i = 0; i < N; i++)
        c[i] = cli_open(e);
    for (int i = N - 1; i >= 0; i--) {
        char req[96];
        snprintf(req, sizeof(req), "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"echo\"}\n", i);
        cli_send(c[i], req);
    }
    for (int i = 0; i < N; i++) {
        json_t *r = cli_recv(c[i]);
        assert_int_equal(json_integer_value(json_object_get(r, "id")), i);
        json_decref(r);
        cli_close(c[i]);
    }
}

static void test_too_many_clients(void **state)
{
    struct env *e = *state;
    struct cli *c[CTL_MAX_CLIENTS];
    for (int i = 0; i < CTL_MAX_CLIENTS; i++) {
        c[i] = cli_open(e);
        /* A round trip, so the server has accepted this one before the next connects. */
        json_t *r = cli_call(c[i], "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}");
        json_decref(r);
    }
    struct cli *extra = cli_open(e);
    json_t *r = cli_recv(extra);
    check_response(r, "null", RPC_FAILED);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(r, "error"), "data"), "errno")),
                        "EAGAIN");
    json_decref(r);
    assert_closed(extra);
    cli_close(extra);
    cli_close(c[0]);
    usleep(50000);
    extra = cli_open(e); /* room again */
    r = cli_call(extra, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}");
    check_response(r, "1", 0);
    json_decref(r);
    cli_close(extra);
    for (int i = 1; i < CTL_MAX_CLIENTS; i++)
        cli_close(c[i]);
}

/* ---- peer credentials ---- */

static void test_peercred_rejects_other_uid(void **state)
{
    struct env *e = *state;
    if (geteuid() != 0) {
        print_message("not root: cannot connect as another uid; skipped\n");
        skip();
    }
    /* Let uid 65534 reach the socket, so that only SO_PEERCRED stands in its way. */
    char dir[128];
    snprintf(dir, sizeof(dir), "%s", e->path);
    for (char *p = strrchr(dir, '/'); p && p > dir + strlen(e->dir); p = strrchr(dir, '/')) {
        *p = '\0';
        chmod(dir, 0755);
    }
    chmod(e->dir, 0755);
    chmod(e->path, 0666);

    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Only async-signal-safe calls here: the parent has other threads. */
        char buf[512] = {0};
        int ok = setgid(65534) == 0 && setuid(65534) == 0;
        int fd = ok ? socket(AF_UNIX, SOCK_STREAM, 0) : -1;
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        memcpy(sa.sun_path, e->path, strlen(e->path) + 1);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
            size_t n = 0;
            ssize_t r;
            while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t)r;
        } else {
            memcpy(buf, "connect failed", 15);
        }
        ssize_t w = write(pfd[1], buf, strlen(buf));
        (void)w;
        _exit(0);
    }
    close(pfd[1]);
    char buf[512] = {0};
    size_t n = 0;
    ssize_t r;
    while (n < sizeof(buf) - 1 && (r = read(pfd[0], buf + n, sizeof(buf) - 1 - n)) > 0)
        n += (size_t)r;
    close(pfd[0]);
    int status;
    waitpid(pid, &status, 0);
    json_t *j = json_loads(buf, 0, NULL);
    if (!j)
        fail_msg("unexpected answer to uid 65534: %s", buf);
    check_response(j, "null", RPC_FAILED);
    json_t *err = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(json_object_get(err, "data"), "errno")),
                        "EACCES");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "65534"));
    json_decref(j);

    /* Root still gets in. */
    struct cli *c = cli_open(e);
    json_t *res = cli_call(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}");
    check_response(res, "1", 0);
    json_decref(res);
    cli_close(c);
}

/* ---- the socket file ---- */

static void test_socket_file(void **state)
{
    struct env *e = *state;
    struct stat st;
    assert_int_equal(lstat(e->path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0660);
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/run/vswitch", e->dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0755);

    /* A second server on a live socket is refused, and leaves the first one working. */
    struct vsw_loop *loop2 = vsw_loop_create();
    errno = 0;
    assert_null(ctl_server_create(loop2, e->path, methods, ARRAY_SIZE(methods), NULL));
    assert_int_equal(errno, EADDRINUSE);
    struct cli *c = cli_open(e);
    json_t *r = cli_call(c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\"}");
    check_response(r, "1", 0);
    json_decref(r);
    cli_close(c);

    /* A stale socket (nobody listening) is replaced. */
    char stale[160];
    snprintf(stale, sizeof(stale), "%s/stale.sock", e->dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, stale);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    struct ctl_server *s2 = ctl_server_create(loop2, stale, methods, ARRAY_SIZE(methods), NULL);
    assert_non_null(s2);
    ctl_server_destroy(s2);
    assert_int_equal(lstat(stale, &st), -1); /* destroy removed it */

    /* A file that is not a socket is never deleted. */
    fd = open(stale, O_CREAT | O_WRONLY, 0600);
    close(fd);
    errno = 0;
    assert_null(ctl_server_create(loop2, stale, methods, ARRAY_SIZE(methods), NULL));
    assert_int_equal(errno, EEXIST);
    assert_int_equal(lstat(stale, &st), 0);
    assert_true(S_ISREG(st.st_mode));

    char longpath[200];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    errno = 0;
    assert_null(ctl_server_create(loop2, longpath, methods, ARRAY_SIZE(methods), NULL));
    assert_int_equal(errno, ENAMETOOLONG);
    errno = 0;
    assert_null(ctl_server_create(loop2, "", methods, ARRAY_SIZE(methods), NULL));
    assert_int_equal(errno, EINVAL);
    vsw_loop_destroy(loop2);
}

static void test_errno_names(void **state)
{
    (void)state;
    assert_string_equal(rpc_errno_name(EEXIST), "EEXIST");
    assert_string_equal(rpc_errno_name(ENOENT), "ENOENT");
    assert_string_equal(rpc_errno_name(EBUSY), "EBUSY");
    assert_string_equal(rpc_errno_name(ENOSPC), "ENOSPC");
    assert_string_equal(rpc_errno_name(EINVAL), "EINVAL");
    assert_string_equal(rpc_errno_name(4095), "E4095");
    assert_string_equal(rpc_errno_name(0), "E0");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        T(test_request_table),
        T(test_error_message),
        T(test_deep_nesting),
        T(test_nul_byte),
        T(test_two_requests_one_write),
        T(test_split_request),
        T(test_blank_lines_ignored),
        T(test_notification),
        T(test_line_limit),
        T(test_oversized_no_newline),
        T(test_disconnect_mid_line),
        T(test_half_close),
        T(test_big_responses_slow_reader),
        T(test_pipelined),
        T(test_many_clients),
        T(test_too_many_clients),
        T(test_peercred_rejects_other_uid),
        T(test_socket_file),
        cmocka_unit_test(test_errno_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
