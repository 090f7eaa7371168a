/*
 * itest: the daemon, vswitchctl and guest helpers of the integration tests (see itest.h).
 * Single-threaded; called from cmocka tests, so failures are cmocka assertions.
 */
#include "itest.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#define START_WAIT_MS 15000 /* DPDK start-up under the sanitizers is slow */
#define STOP_WAIT_MS  15000 /* so is the leak check at exit */
#define CTL_TIMEOUT   "10"  /* vswitchctl --timeout, seconds */
#define MAX_ARGS      48

extern char **environ;

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static uint64_t now_ms(void)
{
    return vsw_now_ns() / 1000000ull;
}

/* ---- the daemon ---- */

static bool ctl_accepts(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Reap the daemon if it has exited; remembers its status. */
static bool daemon_reap(struct itest_daemon *d, bool block)
{
    if (d->pid <= 0)
        return true;
    int st;
    pid_t r;
    do {
        r = waitpid(d->pid, &st, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r != d->pid)
        return false;
    d->status = st;
    d->exited = true;
    d->dpdk_pid = d->pid;
    d->pid = 0;
    return true;
}

void itest_daemon_dump_log(const struct itest_daemon *d)
{
    if (!d->log[0])
        return;
    FILE *f = fopen(d->log, "r");
    if (!f)
        return;
    /* The last 60 lines. */
    static char lines[60][512];
    unsigned n = 0;
    while (fgets(lines[n % 60], sizeof(lines[0]), f))
        n++;
    fclose(f);
    fprintf(stderr, "---- vswitchd log (last lines of %s)\n", d->log);
    for (unsigned i = n > 60 ? n - 60 : 0; i < n; i++)
        fputs(lines[i % 60], stderr);
    fprintf(stderr, "----\n");
}

void itest_daemon_start(struct itest_daemon *d, const char *const extra[])
{
    const char *bin = getenv("VSWITCHD");
    memset(d, 0, sizeof(*d));
    if (!bin || access(bin, X_OK) != 0)
        fail_msg("VSWITCHD is not set to an executable (meson's test_env sets it)");
    snprintf(d->dir, sizeof(d->dir), "/tmp/vsw-it.XXXXXX");
    if (!mkdtemp(d->dir))
        fail_msg("mkdtemp: %s", strerror(errno));
    snprintf(d->ctl, sizeof(d->ctl), "%s/vswitchd.sock", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/vswitchd.log", d->dir);

    const char *argv[MAX_ARGS] = {bin, "--run-dir", d->dir, "--ctl", d->ctl};
    size_t n = 5;
    for (size_t i = 0; extra && extra[i]; i++) {
        assert_true(n + 1 < MAX_ARGS);
        argv[n++] = extra[i];
    }
    argv[n] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Never outlive a test that crashed or was killed by its timeout. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int log = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (log < 0 || null < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
            _exit(127);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;

    uint64_t deadline = now_ms() + START_WAIT_MS;
    while (!ctl_accepts(d->ctl)) {
        if (daemon_reap(d, false)) {
            itest_daemon_dump_log(d);
            fail_msg("vswitchd exited during start-up (status %#x)", d->status);
        }
        if (now_ms() > deadline) {
            itest_daemon_dump_log(d);
            fail_msg("vswitchd's control socket %s did not appear within %d ms", d->ctl,
                     START_WAIT_MS);
        }
        sleep_ms(20);
    }
}

bool itest_daemon_alive(struct itest_daemon *d)
{
    return d->pid > 0 && !daemon_reap(d, false);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/*
 * vswitchd's DPDK EAL leaves an empty runtime directory named after its --file-prefix
 * (vswitchd_<pid>) behind; remove it so test runs do not pile them up.
 */
static void remove_dpdk_runtime_dir(pid_t pid)
{
    char path[256];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (getuid() == 0)
        snprintf(path, sizeof(path), "/var/run/dpdk/vswitchd_%d", (int)pid);
    else
        snprintf(path, sizeof(path), "%s/dpdk/vswitchd_%d", xdg ? xdg : "/tmp", (int)pid);
    rmdir(path);
}

int itest_daemon_stop(struct itest_daemon *d)
{
    int rc = 0;
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        uint64_t deadline = now_ms() + STOP_WAIT_MS;
        while (!daemon_reap(d, false) && now_ms() < deadline)
            sleep_ms(10);
        if (d->pid > 0) {
            fprintf(stderr, "vswitchd did not exit within %d ms of SIGTERM: killing it\n",
                    STOP_WAIT_MS);
            kill(d->pid, SIGKILL);
            daemon_reap(d, true);
            rc = -1;
        }
    }
    if (d->exited) {
        if (!WIFEXITED(d->status) || WEXITSTATUS(d->status) != 0) {
            if (WIFSIGNALED(d->status))
                fprintf(stderr, "vswitchd was killed by signal %d\n", WTERMSIG(d->status));
            else
                fprintf(stderr, "vswitchd exited with status %d\n", WEXITSTATUS(d->status));
            rc = -1;
        }
        remove_dpdk_runtime_dir(d->dpdk_pid);
        d->exited = false;
    }
    if (rc < 0)
        itest_daemon_dump_log(d);
    if (d->dir[0]) {
        nftw(d->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        d->dir[0] = '\0';
    }
    d->log[0] = '\0';
    return rc;
}

/* ---- vswitchctl ---- */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    if (f) {
        size_t n;
        while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
            len += n;
            if (cap - len - 1 == 0) {
                cap *= 2;
                buf = realloc(buf, cap);
                assert_non_null(buf);
            }
        }
        fclose(f);
    }
    buf[len] = '\0';
    return buf;
}

int itest_ctl_argv(struct itest_daemon *d, struct itest_run *r, const char *const args[])
{
    const char *bin = getenv("VSWITCHCTL");
    if (!bin || access(bin, X_OK) != 0)
        fail_msg("VSWITCHCTL is not set to an executable (meson's test_env sets it)");
    assert_true(d->dir[0] != '\0');

    const char *argv[MAX_ARGS] = {bin, "--socket", d->ctl, "--timeout", CTL_TIMEOUT};
    size_t n = 5;
    for (size_t i = 0; args[i]; i++) {
        assert_true(n + 1 < MAX_ARGS);
        argv[n++] = args[i];
    }
    argv[n] = NULL;

    char out_path[160], err_path[160];
    snprintf(out_path, sizeof(out_path), "%s/ctl.out", d->dir);
    snprintf(err_path, sizeof(err_path), "%s/ctl.err", d->dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int e = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e)
        fail_msg("cannot run %s: %s", bin, strerror(e));
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            fail_msg("waitpid: %s", strerror(errno));
    }
    int status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (r) {
        r->status = status;
        r->out = read_file(out_path);
        r->err = read_file(err_path);
    }
    return status;
}

static void collect_args(const char *first, va_list ap, const char *argv[], size_t prefix)
{
    size_t n = prefix;
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        assert_true(n + 1 < MAX_ARGS);
        argv[n++] = a;
    }
    argv[n] = NULL;
}

int itest_ctl(struct itest_daemon *d, struct itest_run *r, ...)
{
    const char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, r);
    collect_args(va_arg(ap, const char *), ap, argv, 0);
    va_end(ap);
    return itest_ctl_argv(d, r, argv);
}

void itest_run_free(struct itest_run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

static void describe(const char *const argv[], char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; argv[i] && len + 1 < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? " " : "", argv[i]);
}

void itest_ctl_ok(struct itest_daemon *d, ...)
{
    const char *argv[MAX_ARGS];
    va_list ap;
    va_start(ap, d);
    collect_args(va_arg(ap, const char *), ap, argv, 0);
    va_end(ap);
    struct itest_run r;
    if (itest_ctl_argv(d, &r, argv) != 0) {
        char what[512];
        describe(argv, what, sizeof(what));
        fprintf(stderr, "vswitchctl %s: exit %d\nstdout: %s\nstderr: %s\n", what, r.status, r.out,
                r.err);
        itest_run_free(&r);
        fail_msg("vswitchctl %s failed", what);
    }
    itest_run_free(&r);
}

json_t *itest_ctl_json(struct itest_daemon *d, ...)
{
    const char *argv[MAX_ARGS] = {"--json"};
    va_list ap;
    va_start(ap, d);
    collect_args(va_arg(ap, const char *), ap, argv, 1);
    va_end(ap);
    struct itest_run r;
    char what[512];
    describe(argv, what, sizeof(what));
    if (itest_ctl_argv(d, &r, argv) != 0) {
        fprintf(stderr, "vswitchctl %s: exit %d\nstderr: %s\n", what, r.status, r.err);
        itest_run_free(&r);
        fail_msg("vswitchctl %s failed", what);
    }
    json_error_t jerr;
    json_t *j = json_loads(r.out, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        fprintf(stderr, "vswitchctl %s printed:\n%s\n", what, r.out);
        itest_run_free(&r);
        fail_msg("vswitchctl %s: not JSON: %s", what, jerr.text);
    }
    itest_run_free(&r);
    return j;
}

/* ---- results ---- */

uint64_t itest_u64(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v))
        fail_msg("\"%s\" is missing or not an integer", key);
    assert_true(json_integer_value(v) >= 0);
    return (uint64_t)json_integer_value(v);
}

json_t *itest_port_stats(struct itest_daemon *d, const char *port)
{
    json_t *s = itest_ctl_json(d, "stats", port, NULL);
    json_t *ports = json_object_get(s, "ports");
    assert_true(json_is_array(ports));
    assert_int_equal(json_array_size(ports), 1);
    json_t *p = json_array_get(ports, 0);
    assert_string_equal(json_string_value(json_object_get(p, "name")), port);
    json_incref(p);
    json_decref(s);
    return p;
}

uint64_t itest_drop(const json_t *port_stats, const char *reason)
{
    json_t *drops = json_object_get(port_stats, "drops");
    assert_true(json_is_object(drops));
    json_t *v = json_object_get(drops, reason);
    if (!v)
        return 0;
    assert_true(json_is_integer(v));
    return (uint64_t)json_integer_value(v);
}

void itest_port_state(struct itest_daemon *d, const char *port, char *out, size_t cap)
{
    json_t *list = itest_ctl_json(d, "port-list", NULL);
    size_t i;
    json_t *p;
    out[0] = '\0';
    assert_true(json_is_array(list));
    json_array_foreach(list, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (name && strcmp(name, port) == 0) {
            const char *st = json_string_value(json_object_get(p, "state"));
            assert_non_null(st);
            snprintf(out, cap, "%s", st);
        }
    }
    json_decref(list);
}

void itest_wait_port_state(struct itest_daemon *d, const char *port, const char *state)
{
    char cur[32];
    uint64_t deadline = now_ms() + ITEST_WAIT_MS;
    for (;;) {
        itest_port_state(d, port, cur, sizeof(cur));
        if (strcmp(cur, state) == 0)
            return;
        if (now_ms() > deadline)
            fail_msg("port %s is \"%s\", not \"%s\", after %d ms", port, cur, state, ITEST_WAIT_MS);
        sleep_ms(20);
    }
}

json_t *itest_br_info(struct itest_daemon *d, const char *bridge)
{
    json_t *list = itest_ctl_json(d, "br-list", NULL);
    size_t i;
    json_t *b, *found = NULL;
    assert_true(json_is_array(list));
    json_array_foreach(list, i, b)
    {
        const char *name = json_string_value(json_object_get(b, "name"));
        if (name && strcmp(name, bridge) == 0)
            found = b;
    }
    if (!found)
        fail_msg("bridge %s is not in br-list", bridge);
    json_incref(found);
    json_decref(list);
    return found;
}

const char *itest_fdb_port(struct itest_daemon *d, const char *bridge, const char *mac,
                           int n_entries)
{
    static char port[VSW_NAME_MAX];
    json_t *fdb = itest_ctl_json(d, "fdb-show", bridge, NULL);
    size_t i;
    json_t *e;
    bool found = false;
    assert_true(json_is_array(fdb));
    if (n_entries >= 0)
        assert_int_equal(json_array_size(fdb), n_entries);
    json_array_foreach(fdb, i, e)
    {
        const char *m = json_string_value(json_object_get(e, "mac"));
        assert_non_null(m);
        assert_true(json_is_false(json_object_get(e, "static")));
        if (strcmp(m, mac) == 0) {
            assert_false(found); /* one entry per MAC */
            const char *p = json_string_value(json_object_get(e, "port"));
            assert_non_null(p);
            snprintf(port, sizeof(port), "%s", p);
            found = true;
        }
    }
    json_decref(fdb);
    return found ? port : NULL;
}

/* ---- guests ---- */

void itest_port_path(const struct itest_daemon *d, const char *port, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.sock", d->dir, port);
}

struct vuf_dev *itest_guest(struct itest_daemon *d, const char *port)
{
    struct vuf_config cfg = {.notify = false};
    return itest_guest_cfg(d, port, &cfg);
}

struct vuf_dev *itest_guest_cfg(struct itest_daemon *d, const char *port,
                                const struct vuf_config *cfg)
{
    char path[160];
    itest_port_path(d, port, path, sizeof(path));
    struct vuf_dev *g = vuf_connect(path, cfg);
    if (!g)
        fail_msg("guest cannot connect to %s: %s", path, strerror(errno));
    /* Running: the switch published the port's queues to the PMDs. */
    itest_wait_port_state(d, port, "running");
    return g;
}

struct vsw_mac itest_mac(uint8_t last)
{
    return (struct vsw_mac){{0x02, 0, 0, 0, 0, last}};
}

const char *itest_mac_str(const struct vsw_mac *m)
{
    static char bufs[8][18];
    static unsigned next;
    char *b = bufs[next++ % 8];
    return vsw_mac_format(m, b);
}

size_t itest_frame(uint8_t *buf, size_t len, const struct vsw_mac *dst, const struct vsw_mac *src,
                   uint32_t seq)
{
    assert_true(len >= 22);
    memcpy(buf, dst->b, 6);
    memcpy(buf + 6, src->b, 6);
    buf[12] = ITEST_ETHERTYPE >> 8;
    buf[13] = ITEST_ETHERTYPE & 0xff;
    memcpy(buf + 14, "ITST", 4);
    buf[18] = (uint8_t)(seq >> 24);
    buf[19] = (uint8_t)(seq >> 16);
    buf[20] = (uint8_t)(seq >> 8);
    buf[21] = (uint8_t)seq;
    for (size_t i = 22; i < len; i++)
        buf[i] = (uint8_t)(seq * 7 + i);
    return len;
}

void itest_send(struct vuf_dev *g, const uint8_t *frame, size_t len)
{
    uint64_t deadline = now_ms() + ITEST_WAIT_MS;
    for (;;) {
        int rc = vuf_send(g, frame, (uint32_t)len);
        if (rc == 0)
            return;
        if (rc != -EAGAIN)
            fail_msg("vuf_send: %s", strerror(-rc));
        if (now_ms() > deadline)
            fail_msg("the TX ring stayed full for %d ms", ITEST_WAIT_MS);
        sleep_ms(1);
    }
}

void itest_send_frame(struct vuf_dev *g, const struct vsw_mac *dst, const struct vsw_mac *src,
                      uint32_t seq, size_t len)
{
    static uint8_t f[VSW_MAX_FRAME];
    assert_true(len <= sizeof(f));
    itest_send(g, f, itest_frame(f, len, dst, src, seq));
}

static uint8_t rxbuf[VSW_MAX_FRAME];

void itest_expect(struct vuf_dev *g, const char *name, const uint8_t *frame, size_t len)
{
    int n = vuf_recv_wait(g, rxbuf, sizeof(rxbuf), ITEST_RECV_MS);
    if (n == -EAGAIN)
        fail_msg("guest %s: no frame within %d ms", name, ITEST_RECV_MS);
    if (n < 0)
        fail_msg("guest %s: receive failed: %s", name, strerror(-n));
    if ((size_t)n != len || memcmp(rxbuf, frame, len) != 0) {
        uint32_t seq = n >= 22 ? (uint32_t)rxbuf[18] << 24 | (uint32_t)rxbuf[19] << 16 |
                                     (uint32_t)rxbuf[20] << 8 | rxbuf[21]
                               : 0;
        fail_msg("guest %s: got %d bytes (src %s dst %s seq %u), want %zu bytes (src %s dst "
                 "%s seq %u)",
                 name, n, itest_mac_str((const struct vsw_mac *)(rxbuf + 6)),
                 itest_mac_str((const struct vsw_mac *)rxbuf), seq, len,
                 itest_mac_str((const struct vsw_mac *)(frame + 6)),
                 itest_mac_str((const struct vsw_mac *)frame),
                 (uint32_t)frame[18] << 24 | (uint32_t)frame[19] << 16 | (uint32_t)frame[20] << 8 |
                     frame[21]);
    }
}

void itest_expect_frame(struct vuf_dev *g, const char *name, const struct vsw_mac *dst,
                        const struct vsw_mac *src, uint32_t seq, size_t len)
{
    static uint8_t f[VSW_MAX_FRAME];
    assert_true(len <= sizeof(f));
    itest_expect(g, name, f, itest_frame(f, len, dst, src, seq));
}

void itest_expect_none(struct vuf_dev *const gs[], const char *const names[], size_t n)
{
    uint64_t deadline = now_ms() + ITEST_NONE_MS;
    do {
        for (size_t i = 0; i < n; i++) {
            int rc = vuf_recv(gs[i], rxbuf, sizeof(rxbuf));
            if (rc >= 0)
                fail_msg("guest %s received an unexpected frame of %d bytes (src %s dst %s)",
                         names[i], rc, itest_mac_str((const struct vsw_mac *)(rxbuf + 6)),
                         itest_mac_str((const struct vsw_mac *)rxbuf));
            if (rc != -EAGAIN)
                fail_msg("guest %s: receive failed: %s", names[i], strerror(-rc));
        }
        sleep_ms(1);
    } while (now_ms() < deadline);
}
