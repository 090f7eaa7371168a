/*
 * Integration: control-plane errors through vswitchctl against the real vswitchd. Every
 * refused command exits 1 with the daemon's reason (and errno name) on stderr and changes
 * nothing; usage errors exit 2 without reaching the daemon; an unreachable daemon exits 3.
 * Names that could escape the run dir or are too long are refused and create no file.
 * br-del of a bridge with ports is EBUSY unless --force. Garbage on the control socket gets
 * an error reply and the daemon goes on. After each test the daemon must still answer and
 * must exit cleanly (status 0 under the sanitizers).
 */
#include "itest.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

struct fx {
    struct itest_daemon d;
    struct vuf_dev *g;
};

static int setup(void **state)
{
    static struct fx fixture;
    struct fx *f = &fixture;
    memset(f, 0, sizeof(*f));
    *state = f;
    itest_daemon_start(&f->d, NULL);
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    vuf_close(f->g);
    return itest_daemon_stop(&f->d);
}

/* Run vswitchctl ARGS and assert its exit status and, if given, a piece of its stderr. */
static void expect_status(struct fx *f, int status, const char *needle, const char *const argv[])
{
    struct itest_run r;
    char what[256] = "";
    for (size_t i = 0; argv[i]; i++)
        snprintf(what + strlen(what), sizeof(what) - strlen(what), " %s", argv[i]);
    itest_ctl_argv(&f->d, &r, argv);
    if (r.status != status || (needle && !strstr(r.err, needle))) {
        fprintf(stderr, "vswitchctl%s: exit %d (want %d)\nstdout: %s\nstderr: %s\n", what, r.status,
                status, r.out, r.err);
        itest_run_free(&r);
        fail_msg("vswitchctl%s: want exit %d and \"%s\" on stderr", what, status,
                 needle ? needle : "");
    }
    itest_run_free(&r);
}

#define EXPECT(f, status, needle, ...)                                                             \
    expect_status(f, status, needle, (const char *const[]){__VA_ARGS__, NULL})

/* The names of br-list (or port-list), sorted, joined with ",". */
static void list_names(struct fx *f, const char *cmd, char *out, size_t cap)
{
    json_t *l = itest_ctl_json(&f->d, cmd, NULL);
    const char *names[64];
    size_t n = 0, i;
    json_t *e;
    assert_true(json_is_array(l));
    json_array_foreach(l, i, e)
    {
        assert_true(n < 64);
        names[n++] = json_string_value(json_object_get(e, "name"));
    }
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (strcmp(names[a], names[b]) > 0) {
                const char *t = names[a];
                names[a] = names[b];
                names[b] = t;
            }
    out[0] = '\0';
    for (size_t k = 0; k < n; k++) {
        size_t used = strlen(out), len = strlen(names[k]) + (k ? 1 : 0);
        assert_true(used + len < cap);
        if (k)
            out[used++] = ',';
        memcpy(out + used, names[k], strlen(names[k]) + 1);
    }
    json_decref(l);
}

static void assert_names(struct fx *f, const char *cmd, const char *want)
{
    char got[1024];
    list_names(f, cmd, got, sizeof(got));
    assert_string_equal(got, want);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The port sockets in the run dir (not the control socket), sorted, joined with ",". */
static void run_dir_sockets(struct fx *f, char *out, size_t cap)
{
    DIR *d = opendir(f->d.dir);
    struct dirent *e;
    char names[32][256];
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".sock") || strcmp(e->d_name, "vswitchd.sock") == 0)
            continue;
        assert_true(n < 32);
        snprintf(names[n++], sizeof(names[0]), "%s", e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof(names[0]), cmp_str);
    out[0] = '\0';
    for (size_t k = 0; k < n; k++) {
        size_t used = strlen(out), len = strlen(names[k]) + (k ? 1 : 0);
        assert_true(used + len < cap);
        if (k)
            out[used++] = ',';
        memcpy(out + used, names[k], strlen(names[k]) + 1);
    }
}

static void assert_sockets(struct fx *f, const char *want)
{
    char got[1024];
    run_dir_sockets(f, got, sizeof(got));
    assert_string_equal(got, want);
}

static void assert_daemon_answers(struct fx *f)
{
    assert_true(itest_daemon_alive(&f->d));
    json_t *v = itest_ctl_json(&f->d, "version", NULL);
    assert_true(json_is_string(json_object_get(v, "version")));
    json_decref(v);
}

static void test_duplicates_and_missing(void **state)
{
    struct fx *f = *state;

    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    EXPECT(f, 1, "EEXIST", "br-add", "br0");
    EXPECT(f, 1, "already exists", "br-add", "br0", "--age", "5");
    EXPECT(f, 1, "ENOENT", "port-add", "nobr", "p");
    assert_sockets(f, "");

    itest_ctl_ok(&f->d, "port-add", "br0", "p1", NULL);
    EXPECT(f, 1, "EEXIST", "port-add", "br0", "p1");
    /* Port names are unique across bridges (they name the socket). */
    itest_ctl_ok(&f->d, "br-add", "br1", NULL);
    EXPECT(f, 1, "EEXIST", "port-add", "br1", "p1");

    EXPECT(f, 1, "ENOENT", "port-del", "nope");
    EXPECT(f, 1, "ENOENT", "br-del", "nope");
    EXPECT(f, 1, "ENOENT", "br-set", "nope", "--age", "5");
    EXPECT(f, 1, "ENOENT", "fdb-show", "nope");
    EXPECT(f, 1, "ENOENT", "stats", "nope");
    EXPECT(f, 1, "ENOENT", "port-list", "nope");

    /* Out-of-range options are refused by the daemon; malformed ones by vswitchctl. */
    EXPECT(f, 1, "age", "br-add", "b2", "--age", "0");
    EXPECT(f, 1, "age", "br-add", "b2", "--age", "1000001");
    EXPECT(f, 1, "max_macs", "br-add", "b2", "--max-macs", "0");
    EXPECT(f, 1, "max_macs", "br-set", "br0", "--max-macs", "1048577");
    EXPECT(f, 2, "--age", "br-add", "b2", "--age", "x");
    EXPECT(f, 2, NULL, "br-add");
    EXPECT(f, 2, NULL, "br-set", "br0");
    EXPECT(f, 2, "unknown command", "bogus");
    EXPECT(f, 2, NULL, "br-add", "b2", "--colour", "red");

    /* Nothing changed. */
    assert_names(f, "br-list", "br0,br1");
    assert_names(f, "port-list", "p1");
    assert_sockets(f, "p1.sock");
    json_t *br = itest_br_info(&f->d, "br0");
    assert_int_equal(itest_u64(br, "age"), 300);
    assert_int_equal(itest_u64(br, "max_macs"), 8192);
    json_decref(br);
    assert_daemon_answers(f);
}

static void test_invalid_names(void **state)
{
    struct fx *f = *state;
    char n31[32], n32[33], n40[41];
    memset(n31, 'a', 31), n31[31] = '\0';
    memset(n32, 'b', 32), n32[32] = '\0';
    memset(n40, 'c', 40), n40[40] = '\0';
    const char *const bad[] = {"../x", "a/b",  "/abs", n32,   n40,           ".x", "..",
                               "a b",  "a\tb", "x\n",  "br*", "caf\xc3\xa9", "",   "-x"};
    struct stat st;
    bool escaped_before = stat("/tmp/x.sock", &st) == 0;

    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        print_message("invalid name \"%s\"\n", bad[i]);
        EXPECT(f, 1, "invalid", "br-add", bad[i]);
        EXPECT(f, 1, "invalid", "port-add", "br0", bad[i]);
        EXPECT(f, 1, "invalid", "port-add", bad[i], "p");
    }

    /* The longest valid name works, for bridges and ports. */
    itest_ctl_ok(&f->d, "br-add", n31, NULL);
    itest_ctl_ok(&f->d, "port-add", n31, n31, NULL);
    char sock[64];
    snprintf(sock, sizeof(sock), "%s.sock", n31);

    char want[64];
    snprintf(want, sizeof(want), "%s,br0", n31); /* 'a' sorts before "br0" */
    assert_names(f, "br-list", want);
    assert_names(f, "port-list", n31);
    assert_sockets(f, sock);
    if (!escaped_before)
        assert_int_equal(stat("/tmp/x.sock", &st), -1);
    assert_daemon_answers(f);
}

/*
 * A port whose socket path is a live socket (here the control socket, run_dir/vswitchd.sock,
 * which is where it lives by default) is refused; the control socket keeps working.
 */
static void test_port_name_of_live_socket(void **state)
{
    struct fx *f = *state;
    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    EXPECT(f, 1, "EADDRINUSE", "port-add", "br0", "vswitchd");
    assert_names(f, "port-list", "");
    assert_names(f, "br-list", "br0");
    assert_daemon_answers(f);
    /* A stale socket file (nobody listening) is replaced. */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    itest_port_path(&f->d, "old", sa.sun_path, sizeof(sa.sun_path));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    itest_ctl_ok(&f->d, "port-add", "br0", "old", NULL);
    f->g = itest_guest(&f->d, "old");
}

static void test_br_del_busy(void **state)
{
    struct fx *f = *state;
    char path[160];
    struct stat st;

    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    itest_ctl_ok(&f->d, "br-add", "br1", NULL);
    itest_ctl_ok(&f->d, "port-add", "br0", "p1", NULL);
    itest_ctl_ok(&f->d, "port-add", "br0", "p2", NULL);
    itest_ctl_ok(&f->d, "port-add", "br1", "q1", NULL);
    f->g = itest_guest(&f->d, "p1");

    EXPECT(f, 1, "EBUSY", "br-del", "br0");
    assert_names(f, "br-list", "br0,br1");
    assert_names(f, "port-list", "p1,p2,q1");
    assert_sockets(f, "p1.sock,p2.sock,q1.sock");
    json_t *br = itest_br_info(&f->d, "br0");
    assert_int_equal(itest_u64(br, "ports"), 2);
    json_decref(br);
    char st_p1[32];
    itest_port_state(&f->d, "p1", st_p1, sizeof(st_p1));
    assert_string_equal(st_p1, "running");

    /* An empty bridge goes without --force. */
    itest_ctl_ok(&f->d, "port-del", "q1", NULL);
    itest_ctl_ok(&f->d, "br-del", "br1", NULL);
    assert_names(f, "br-list", "br0");

    /* --force takes the ports (and the live guest's connection) with it. */
    itest_ctl_ok(&f->d, "br-del", "br0", "--force", NULL);
    assert_names(f, "br-list", "");
    assert_names(f, "port-list", "");
    assert_sockets(f, "");
    itest_port_path(&f->d, "p1", path, sizeof(path));
    assert_int_equal(stat(path, &st), -1);
    EXPECT(f, 1, "ENOENT", "fdb-show", "br0");
    EXPECT(f, 1, "ENOENT", "br-del", "br0", "--force");

    /* The names are free again. */
    vuf_close(f->g);
    f->g = NULL;
    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    itest_ctl_ok(&f->d, "port-add", "br0", "p1", NULL);
    f->g = itest_guest(&f->d, "p1");
    assert_daemon_answers(f);
}

/* ---- the control socket itself ---- */

static int ctl_connect(struct fx *f)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->d.ctl);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Read one response line and parse it. */
static json_t *ctl_read(int fd)
{
    char buf[4096];
    size_t len = 0;
    while (len + 1 < sizeof(buf)) {
        ssize_t n = recv(fd, buf + len, 1, 0);
        if (n <= 0)
            fail_msg("control socket: no complete response line");
        if (buf[len++] == '\n')
            break;
    }
    buf[len] = '\0';
    json_error_t e;
    json_t *j = json_loads(buf, 0, &e);
    if (!j)
        fail_msg("control socket: response is not JSON: %s", buf);
    return j;
}

static void ctl_write(int fd, const char *s, size_t len)
{
    while (len) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return; /* the daemon may close mid-line when a line is too long */
        s += n;
        len -= (size_t)n;
    }
}

static int error_code(json_t *resp)
{
    json_t *e = json_object_get(resp, "error");
    assert_true(json_is_object(e));
    assert_true(json_is_integer(json_object_get(e, "code")));
    return (int)json_integer_value(json_object_get(e, "code"));
}

static void test_garbage_on_control_socket(void **state)
{
    struct fx *f = *state;
    int fd = ctl_connect(f);

    const char *junk = "this is not json\n";
    ctl_write(fd, junk, strlen(junk));
    json_t *r = ctl_read(fd);
    assert_int_equal(error_code(r), -32700);
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);

    const char *no_method = "{\"jsonrpc\":\"2.0\",\"id\":3}\n";
    ctl_write(fd, no_method, strlen(no_method));
    r = ctl_read(fd);
    assert_int_equal(error_code(r), -32600);
    json_decref(r);

    const char *unknown = "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"rm-rf\"}\n";
    ctl_write(fd, unknown, strlen(unknown));
    r = ctl_read(fd);
    assert_int_equal(error_code(r), -32601);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 4);
    json_decref(r);

    const char *misspelt =
        "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"br-add\",\"params\":{\"nmae\":\"x\"}}\n";
    ctl_write(fd, misspelt, strlen(misspelt));
    r = ctl_read(fd);
    assert_int_equal(error_code(r), -32602);
    json_decref(r);

    /* The same connection still works. */
    const char *ok = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"version\"}\n";
    ctl_write(fd, ok, strlen(ok));
    r = ctl_read(fd);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
    assert_true(json_is_string(json_object_get(json_object_get(r, "result"), "version")));
    json_decref(r);

    /* A line over the 64 KiB limit: an error, then the connection is closed. */
    size_t big = 70000;
    char *line = malloc(big + 1);
    assert_non_null(line);
    memset(line, 'x', big);
    line[big] = '\n';
    ctl_write(fd, line, big + 1);
    free(line);
    r = ctl_read(fd);
    assert_int_equal(error_code(r), -32600);
    json_decref(r);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, ITEST_WAIT_MS), 1);
    char c;
    ssize_t n = recv(fd, &c, 1, 0);
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
    close(fd);

    /* A client that connects and goes away mid-request changes nothing either. */
    fd = ctl_connect(f);
    const char *half = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"br-a";
    ctl_write(fd, half, strlen(half));
    close(fd);

    itest_ctl_ok(&f->d, "br-add", "br0", NULL);
    assert_names(f, "br-list", "br0");
    assert_daemon_answers(f);
}

static void test_unreachable_daemon(void **state)
{
    struct fx *f = *state;
    struct itest_run r;
    char ctl[sizeof(f->d.ctl)];
    /* vswitchctl pointed at a socket nobody listens on. */
    memcpy(ctl, f->d.ctl, sizeof(ctl));
    snprintf(f->d.ctl, sizeof(f->d.ctl), "%s/nobody.sock", f->d.dir);
    assert_int_equal(itest_ctl(&f->d, &r, "br-list", NULL), 3);
    assert_non_null(strstr(r.err, "cannot connect"));
    itest_run_free(&r);
    memcpy(f->d.ctl, ctl, sizeof(ctl));
    assert_daemon_answers(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_duplicates_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_name_of_live_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_br_del_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_on_control_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_daemon, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
