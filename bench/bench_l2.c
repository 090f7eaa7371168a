/*
 * vsw-bench: L2 forwarding rate of vswitchd between two simulated guests.
 *
 * Starts vswitchd (or uses a running one with --socket), makes a bridge with two vhost-user
 * ports and attaches two simulated guests (the frontend library) in this process. Guest A
 * generates frames towards guest B (uni) or both send to each other (bidir); every frame
 * carries one of --flows source/destination MAC pairs, and the destination MACs are taught
 * to the switch before each measurement, so the traffic is known unicast. Over a window of
 * --duration seconds after --warmup, it measures frames and bytes received by the sinks
 * (Mpps, Gbit/s of Ethernet frames without FCS) and reads the PMDs' packets and busy
 * cycles from `vswitchctl stats --json` for cycles per packet.
 *
 * Threads: main (set-up, sampling, output) and the traffic thread(s). With the generator and
 * sink on the same core (the default on this 2-core machine) one traffic thread owns both
 * guests and alternates a send burst and a receive burst, so neither starves the other at the
 * scheduler's whim; with --sink-core on another core each guest gets its own thread. A
 * vuf_dev is only ever touched by the thread that owns it; the counters are published with
 * relaxed atomic stores and read by main.
 *
 * --smoke: about one second, asserts only that frames arrive (the test suite runs it).
 */
#include "vhost_user.h"

#include <jansson.h>

#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZES    8
#define MAX_FLOWS    65536
#define MAX_BURST    256
#define MAX_ROUNDS   100
#define CTL_TIMEOUT  "10"
#define START_WAIT_S 15

enum mode { MODE_UNI, MODE_BIDIR, MODE__COUNT };
static const char *const mode_names[MODE__COUNT] = {"uni", "bidir"};

struct opts {
    const char *vswitchd, *vswitchctl, *socket;
    double duration, warmup;
    unsigned sizes[MAX_SIZES], n_sizes;
    unsigned flows[MAX_SIZES], n_flows;
    bool modes[MODE__COUNT];
    unsigned rounds;
    unsigned burst;
    unsigned queue_size;
    int pmd_core, gen_core, sink_core; /* -1: not pinned */
    bool no_sleep;
    bool json, smoke, verbose;
};

/* Counters one traffic thread publishes for one guest. */
struct guest_counters {
    uint64_t tx, tx_full, rx, rx_bytes, rx_errors;
};

struct guest {
    const char *name; /* "a" or "b" */
    struct vuf_dev *dev;
    char port[VSW_NAME_MAX];
    char path[4096];
    uint8_t side; /* MAC byte 4 of this guest's addresses */
    struct guest_counters c __attribute__((aligned(64)));
};

struct traffic {
    struct guest *g[2];
    bool send[2]; /* guest i transmits (guest i always receives) */
    unsigned n_guests;
    unsigned burst;
    unsigned size;
    unsigned flows;
    uint8_t *frames[2]; /* per sending guest: flows x size bytes */
    int core;
    pthread_t tid;
};

/* One sample of everything we read at the edges of the window. */
struct sample {
    uint64_t t_ns;
    struct guest_counters c[2];
    uint64_t pmd_packets, busy, idle, sw_drops;
    bool have_pmd;
    uint64_t cpu_busy, cpu_ours; /* jiffies: all CPUs, this process + children + daemon */
    bool have_cpu;
};

struct result {
    double rx_mpps, tx_mpps, gbps, loss, cycles_per_pkt, busy_pct;
    double
        others_pct; /* CPU time of other processes in the window, % of the machine; < 0: unknown */
    uint64_t sw_drops;
    bool have_pmd;
};

static volatile sig_atomic_t interrupted;
static bool traffic_stop;
static const char *prog = "vsw-bench";

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void VSW_PRINTF(1, 2) die(const char *fmt, ...);

/* ---- the daemon, through vswitchctl ---- */

static pid_t daemon_pid = -1;
static char run_dir[PATH_MAX];
static char ctl_sock[PATH_MAX + 16];
static char br_name[VSW_NAME_MAX];
static bool br_made;
static struct guest guests[2] = {{.name = "a", .side = 0x0a}, {.name = "b", .side = 0x0b}};
static const struct opts *g_opts;

/* Run vswitchctl --json with the given arguments; returns its parsed output or NULL. */
static json_t *ctl_json(const char *const *args, bool quiet)
{
    const char *argv[16];
    unsigned n = 0;
    int pipefd[2];

    argv[n++] = g_opts->vswitchctl;
    argv[n++] = "--socket";
    argv[n++] = ctl_sock;
    argv[n++] = "--timeout";
    argv[n++] = CTL_TIMEOUT;
    argv[n++] = "--json";
    for (unsigned i = 0; args[i] && n < ARRAY_SIZE(argv) - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        if (quiet) {
            int dn = open("/dev/null", O_WRONLY);
            if (dn >= 0)
                dup2(dn, STDERR_FILENO);
        }
        execv(argv[0], (char *const *)argv);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 16384);
            if (!nb)
                break;
            buf = nb;
        }
        ssize_t r = read(pipefd[0], buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(pipefd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    json_t *j = NULL;
    if (buf && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        buf[len] = '\0';
        j = json_loads(buf, JSON_DECODE_ANY, NULL);
        if (!j)
            j = json_object(); /* commands without a result print nothing */
    }
    free(buf);
    return j;
}

static bool ctl_ok(const char *const *args, bool quiet)
{
    json_t *j = ctl_json(args, quiet);
    json_decref(j);
    return j != NULL;
}

static uint64_t jget(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (uint64_t)json_integer_value(v) : 0;
}

static uint64_t sum_drops(json_t *drops)
{
    const char *k;
    json_t *v;
    uint64_t s = 0;
    json_object_foreach(drops, k, v)
    {
        (void)k;
        if (json_is_integer(v))
            s += (uint64_t)json_integer_value(v);
    }
    return s;
}

/* PMD counters summed over every PMD, and every drop counter of our ports and the PMDs. */
static bool read_switch_stats(struct sample *s)
{
    static const char *const args[] = {"stats", NULL};
    json_t *j = ctl_json(args, false);
    if (!j)
        return false;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(j, "pmds"), i, p)
    {
        s->pmd_packets += jget(p, "packets");
        s->busy += jget(p, "busy_cycles");
        s->idle += jget(p, "idle_cycles");
        s->sw_drops += sum_drops(json_object_get(p, "drops"));
    }
    json_array_foreach(json_object_get(j, "ports"), i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (name && (!strcmp(name, guests[0].port) || !strcmp(name, guests[1].port)))
            s->sw_drops += sum_drops(json_object_get(p, "drops"));
    }
    json_decref(j);
    s->have_pmd = true;
    return true;
}

static void exe_dir(char *out, size_t n)
{
    ssize_t r = readlink("/proc/self/exe", out, n - 1);
    if (r <= 0) {
        snprintf(out, n, ".");
        return;
    }
    out[r] = '\0';
    char *slash = strrchr(out, '/');
    if (slash)
        *slash = '\0';
}

/* --option, else $ENV, else the build tree next to us, else PATH. */
static const char *find_tool(const char *opt, const char *env, const char *rel, const char *name)
{
    static char paths[2][PATH_MAX + 64];
    static unsigned used;
    char dir[PATH_MAX];

    if (opt)
        return opt;
    const char *e = getenv(env);
    if (e && *e)
        return e;
    exe_dir(dir, sizeof(dir));
    char *p = paths[used++ % 2];
    snprintf(p, sizeof(paths[0]), "%s/%s", dir, rel);
    if (access(p, X_OK) == 0)
        return p;
    return name;
}

/* vswitchd's EAL leaves its (empty) runtime directory behind (file prefix vswitchd_<pid>). */
static void remove_eal_dir(pid_t pid)
{
    char dir[PATH_MAX];
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (getuid() == 0)
        snprintf(dir, sizeof(dir), "/var/run/dpdk/vswitchd_%d", (int)pid);
    else
        snprintf(dir, sizeof(dir), "%s/dpdk/vswitchd_%d", xdg ? xdg : "/tmp", (int)pid);
    rmdir(dir);
}

static void stop_daemon(void)
{
    if (daemon_pid <= 0)
        return;
    pid_t pid = daemon_pid;
    kill(pid, SIGTERM);
    int i = 0;
    while (waitpid(pid, NULL, WNOHANG) != pid) {
        if (++i == 50) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        usleep(100000);
    }
    daemon_pid = -1;
    remove_eal_dir(pid);
}

static void start_daemon(const struct opts *o)
{
    char tmpl[] = "/tmp/vsw-bench.XXXXXX";
    if (!mkdtemp(tmpl))
        die("mkdtemp: %s", strerror(errno));
    snprintf(run_dir, sizeof(run_dir), "%s", tmpl);
    snprintf(ctl_sock, sizeof(ctl_sock), "%s/ctl.sock", run_dir);
    char log[PATH_MAX + 16], cores[16];
    snprintf(log, sizeof(log), "%s/vswitchd.log", run_dir);
    snprintf(cores, sizeof(cores), "%d", o->pmd_core);

    const char *argv[16];
    unsigned n = 0;
    argv[n++] = o->vswitchd;
    argv[n++] = "--run-dir";
    argv[n++] = run_dir;
    argv[n++] = "--ctl";
    argv[n++] = ctl_sock;
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    if (o->pmd_core >= 0) {
        argv[n++] = "--pmd-cores";
        argv[n++] = cores;
    }
    if (o->no_sleep)
        argv[n++] = "--no-sleep";
    argv[n] = NULL;

    daemon_pid = fork();
    if (daemon_pid < 0)
        die("fork: %s", strerror(errno));
    if (daemon_pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execv(argv[0], (char *const *)argv);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    static const char *const ver[] = {"version", NULL};
    for (int i = 0; i < START_WAIT_S * 20; i++) {
        int status;
        if (waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
            daemon_pid = -1;
            die("vswitchd (%s) exited at start-up; see %s", o->vswitchd, log);
        }
        if (access(ctl_sock, F_OK) == 0 && ctl_ok(ver, true))
            return;
        usleep(50000);
    }
    die("vswitchd did not answer on %s within %d s", ctl_sock, START_WAIT_S);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void cleanup(void)
{
    for (unsigned i = 0; i < 2; i++) {
        if (guests[i].dev)
            vuf_close(guests[i].dev);
        guests[i].dev = NULL;
    }
    if (daemon_pid > 0) {
        stop_daemon();
    } else if (br_made) {
        /* Someone else's daemon: leave it as we found it. */
        const char *const del[] = {"br-del", br_name, "--force", NULL};
        ctl_ok(del, true);
    }
    br_made = false;
    if (run_dir[0]) {
        /* Ours (mkdtemp): the daemon's log, sockets and state file. */
        nftw(run_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        run_dir[0] = '\0';
    }
}

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (run_dir[0] && daemon_pid > 0) {
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "tail -n 20 %s/vswitchd.log >&2", run_dir);
        if (system(cmd) < 0) {
            /* best effort */
        }
    }
    cleanup();
    exit(1);
}

static void setup_switch(const struct opts *o)
{
    snprintf(br_name, sizeof(br_name), "vswb%d", (int)getpid() % 1000000);
    /* Room for every MAC of both guests (the default limit is 8192), or frames would flood. */
    unsigned max_flows = 0;
    for (unsigned i = 0; i < o->n_flows; i++)
        max_flows = MAX(max_flows, o->flows[i]);
    char max_macs[16];
    snprintf(max_macs, sizeof(max_macs), "%u", MAX(8192u, 2 * max_flows + 64));
    const char *const add[] = {"br-add", br_name, "--max-macs", max_macs, NULL};
    if (!ctl_ok(add, false))
        die("br-add %s failed", br_name);
    br_made = true;
    for (unsigned i = 0; i < 2; i++) {
        struct guest *g = &guests[i];
        snprintf(g->port, sizeof(g->port), "%s%s", br_name, g->name);
        const char *const padd[] = {"port-add", br_name, g->port, NULL};
        json_t *j = ctl_json(padd, false);
        const char *path = json_string_value(json_object_get(j, "path"));
        if (!path) {
            json_decref(j);
            die("port-add %s %s failed", br_name, g->port);
        }
        snprintf(g->path, sizeof(g->path), "%s", path);
        json_decref(j);
        struct vuf_config cfg = {.queue_size = (uint16_t)o->queue_size};
        g->dev = vuf_connect(g->path, &cfg);
        if (!g->dev)
            die("cannot attach a guest to %s: %s", g->path, strerror(errno));
    }
}

/* ---- traffic ---- */

static void put_mac(uint8_t *p, uint8_t side, unsigned flow)
{
    p[0] = 0x02; /* locally administered unicast */
    p[1] = 0x42;
    p[2] = 0x00;
    p[3] = side;
    p[4] = (uint8_t)(flow >> 8);
    p[5] = (uint8_t)flow;
}

/* An Ethernet/IPv4/UDP frame of `size` bytes from `from` to `to`, flow `flow`. */
static void build_frame(uint8_t *f, unsigned size, const struct guest *from, const struct guest *to,
                        unsigned flow)
{
    memset(f, 0, size);
    put_mac(f, to->side, flow);
    put_mac(f + 6, from->side, flow);
    f[12] = 0x08; /* IPv4 */
    f[13] = 0x00;
    if (size < 14 + 28)
        return;
    uint8_t *ip = f + 14;
    unsigned ip_len = size - 14;
    ip[0] = 0x45;
    ip[2] = (uint8_t)(ip_len >> 8);
    ip[3] = (uint8_t)ip_len;
    ip[8] = 64;
    ip[9] = 17; /* UDP */
    /* 198.18.0.0/15: benchmarking addresses (RFC 2544). */
    ip[12] = 198, ip[13] = 18, ip[14] = from->side, ip[15] = (uint8_t)flow;
    ip[16] = 198, ip[17] = 19, ip[18] = to->side, ip[19] = (uint8_t)flow;
    uint32_t sum = 0;
    for (unsigned i = 0; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = (uint8_t)(~sum >> 8);
    ip[11] = (uint8_t)~sum;
    uint8_t *udp = ip + 20;
    unsigned udp_len = ip_len - 20;
    udp[0] = 0x04, udp[1] = (uint8_t)(flow >> 8), udp[2] = 0x04, udp[3] = (uint8_t)flow;
    udp[4] = (uint8_t)(udp_len >> 8);
    udp[5] = (uint8_t)udp_len;
}

static void publish(struct guest *g, const struct guest_counters *c)
{
    __atomic_store_n(&g->c.tx, c->tx, __ATOMIC_RELAXED);
    __atomic_store_n(&g->c.tx_full, c->tx_full, __ATOMIC_RELAXED);
    __atomic_store_n(&g->c.rx, c->rx, __ATOMIC_RELAXED);
    __atomic_store_n(&g->c.rx_bytes, c->rx_bytes, __ATOMIC_RELAXED);
    __atomic_store_n(&g->c.rx_errors, c->rx_errors, __ATOMIC_RELAXED);
}

static void pin_self(int core, const char *what)
{
    if (core < 0)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc)
        fprintf(stderr, "%s: warning: cannot pin the %s to core %d: %s\n", prog, what, core,
                strerror(rc));
}

static void *traffic_main(void *arg)
{
    struct traffic *t = arg;
    struct guest_counters c[2];
    const void *ptrs[2][MAX_BURST];
    uint32_t lens[MAX_BURST], rlens[MAX_BURST];
    unsigned cursor[2] = {0, 0};

    pin_self(t->core, "traffic thread");
    for (unsigned i = 0; i < t->n_guests; i++)
        c[i] = t->g[i]->c;
    for (unsigned k = 0; k < t->burst; k++)
        lens[k] = t->size;

    while (!__atomic_load_n(&traffic_stop, __ATOMIC_RELAXED)) {
        for (unsigned i = 0; i < t->n_guests; i++) {
            if (!t->send[i])
                continue;
            for (unsigned k = 0; k < t->burst; k++) {
                ptrs[i][k] = t->frames[i] + (size_t)cursor[i] * t->size;
                if (++cursor[i] == t->flows)
                    cursor[i] = 0;
            }
            int n = vuf_send_burst(t->g[i]->dev, ptrs[i], lens, t->burst);
            if (n < 0)
                n = 0;
            c[i].tx += (unsigned)n;
            /* Frames not taken are re-offered next time: rewind the flow cursor. */
            cursor[i] = (cursor[i] + t->flows - (t->burst - (unsigned)n) % t->flows) % t->flows;
            if ((unsigned)n < t->burst)
                c[i].tx_full++;
        }
        for (unsigned i = 0; i < t->n_guests; i++) {
            int n = vuf_recv_burst(t->g[i]->dev, NULL, 0, rlens, t->burst);
            if (n < 0) {
                c[i].rx_errors++;
                continue;
            }
            c[i].rx += (unsigned)n;
            for (int k = 0; k < n; k++)
                c[i].rx_bytes += rlens[k];
        }
        for (unsigned i = 0; i < t->n_guests; i++)
            publish(t->g[i], &c[i]);
    }
    return NULL;
}

/* Drain both guests' RX rings until nothing has arrived for `quiet_ms`. */
static void drain(unsigned quiet_ms)
{
    uint32_t lens[MAX_BURST];
    uint64_t last = vsw_now_ns();
    while (vsw_now_ns() - last < quiet_ms * 1000000ull) {
        bool any = false;
        for (unsigned i = 0; i < 2; i++) {
            int n = vuf_recv_burst(guests[i].dev, NULL, 0, lens, MAX_BURST);
            if (n > 0)
                any = true;
            vuf_tx_pending(guests[i].dev);
        }
        if (any)
            last = vsw_now_ns();
        else
            usleep(1000);
    }
}

/*
 * Teach the switch every MAC of both guests: each guest sends one frame per flow from each
 * of its addresses (to the broadcast address: the other guest receives it, we discard it).
 */
static void learn(unsigned flows)
{
    uint8_t frame[64];
    for (unsigned i = 0; i < 2; i++) {
        struct guest *g = &guests[i], *peer = &guests[1 - i];
        for (unsigned f = 0; f < flows; f++) {
            build_frame(frame, sizeof(frame), g, peer, f);
            memset(frame, 0xff, 6);
            uint64_t deadline = vsw_now_ns() + 2000000000ull;
            uint32_t lens[MAX_BURST];
            while (vuf_send(g->dev, frame, sizeof(frame)) == -EAGAIN) {
                vuf_recv_burst(peer->dev, NULL, 0, lens, MAX_BURST);
                if (vsw_now_ns() > deadline)
                    die("the switch takes no frames from guest %s", g->name);
                usleep(100);
            }
            /* Keep the peer's RX ring from filling up (the switch would count drops). */
            if (f % 64 == 63) {
                usleep(200);
                vuf_recv_burst(peer->dev, NULL, 0, lens, MAX_BURST);
            }
        }
    }
    drain(50);
}

/* Busy jiffies of all CPUs (user nice system irq softirq steal). */
static bool cpu_busy_jiffies(uint64_t *out)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return false;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return false;
    *out = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return true;
}

/* utime + stime (+ cutime + cstime: the vswitchctl children we waited for) of a process. */
static bool proc_jiffies(pid_t pid, bool children, uint64_t *out)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut, st, cut, cst;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ut,
                     &st, &cut, &cst) != 4)
        return false;
    *out = ut + st + (children ? cut + cst : 0);
    return true;
}

static void take_sample(struct sample *s, bool with_pmd)
{
    memset(s, 0, sizeof(*s));
    s->t_ns = vsw_now_ns();
    uint64_t self, daemon;
    /* Only with our own daemon do we know every process that is "us". */
    s->have_cpu = daemon_pid > 0 && cpu_busy_jiffies(&s->cpu_busy) &&
                  proc_jiffies(getpid(), true, &self) && proc_jiffies(daemon_pid, false, &daemon);
    s->cpu_ours = self + daemon;
    for (unsigned i = 0; i < 2; i++) {
        struct guest_counters *c = &guests[i].c;
        s->c[i].tx = __atomic_load_n(&c->tx, __ATOMIC_RELAXED);
        s->c[i].tx_full = __atomic_load_n(&c->tx_full, __ATOMIC_RELAXED);
        s->c[i].rx = __atomic_load_n(&c->rx, __ATOMIC_RELAXED);
        s->c[i].rx_bytes = __atomic_load_n(&c->rx_bytes, __ATOMIC_RELAXED);
        s->c[i].rx_errors = __atomic_load_n(&c->rx_errors, __ATOMIC_RELAXED);
    }
    if (with_pmd && !read_switch_stats(s))
        s->have_pmd = false;
}

/* Sleep `sec` seconds unless interrupted. */
static void nap(double sec)
{
    uint64_t end = vsw_now_ns() + (uint64_t)(sec * 1e9);
    while (!interrupted) {
        uint64_t now = vsw_now_ns();
        if (now >= end)
            return;
        uint64_t left = end - now;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)MIN(left, 50000000ull)};
        nanosleep(&ts, NULL);
    }
}

static struct result measure(const struct opts *o, enum mode mode, unsigned size, unsigned flows)
{
    struct traffic t[2];
    unsigned n_threads = o->gen_core == o->sink_core ? 1 : 2;
    uint8_t *frames[2] = {NULL, NULL};
    bool send[2] = {true, mode == MODE_BIDIR};

    for (unsigned i = 0; i < 2; i++) {
        if (!send[i])
            continue;
        frames[i] = malloc((size_t)flows * size);
        if (!frames[i])
            die("out of memory");
        for (unsigned f = 0; f < flows; f++)
            build_frame(frames[i] + (size_t)f * size, size, &guests[i], &guests[1 - i], f);
    }
    learn(flows);
    for (unsigned i = 0; i < 2; i++)
        memset(&guests[i].c, 0, sizeof(guests[i].c));

    memset(t, 0, sizeof(t));
    __atomic_store_n(&traffic_stop, false, __ATOMIC_RELAXED);
    for (unsigned k = 0; k < n_threads; k++) {
        struct traffic *tt = &t[k];
        tt->burst = o->burst;
        tt->size = size;
        tt->flows = flows;
        if (n_threads == 1) {
            tt->n_guests = 2;
            for (unsigned i = 0; i < 2; i++) {
                tt->g[i] = &guests[i];
                tt->send[i] = send[i];
                tt->frames[i] = frames[i];
            }
            tt->core = o->gen_core;
        } else {
            tt->n_guests = 1;
            tt->g[0] = &guests[k];
            tt->send[0] = send[k];
            tt->frames[0] = frames[k];
            tt->core = k == 0 ? o->gen_core : o->sink_core;
        }
        int rc = pthread_create(&tt->tid, NULL, traffic_main, tt);
        if (rc)
            die("pthread_create: %s", strerror(rc));
    }

    struct sample s0, s1;
    nap(o->warmup);
    take_sample(&s0, true);
    nap(o->duration);
    take_sample(&s1, true);
    __atomic_store_n(&traffic_stop, true, __ATOMIC_RELAXED);
    for (unsigned k = 0; k < n_threads; k++)
        pthread_join(t[k].tid, NULL);
    drain(20);
    free(frames[0]);
    free(frames[1]);

    struct result r = {0};
    double dt = (double)(s1.t_ns - s0.t_ns) / 1e9;
    uint64_t rx = 0, tx = 0, bytes = 0;
    for (unsigned i = 0; i < 2; i++) {
        rx += s1.c[i].rx - s0.c[i].rx;
        tx += s1.c[i].tx - s0.c[i].tx;
        bytes += s1.c[i].rx_bytes - s0.c[i].rx_bytes;
    }
    r.rx_mpps = (double)rx / dt / 1e6;
    r.tx_mpps = (double)tx / dt / 1e6;
    r.gbps = (double)bytes * 8 / dt / 1e9;
    r.loss = tx ? ((double)tx - (double)rx) / (double)tx : 0;
    if (r.loss < 0)
        r.loss = 0; /* frames in flight at the window's edges */
    r.have_pmd = s0.have_pmd && s1.have_pmd;
    r.others_pct = -1;
    if (s0.have_cpu && s1.have_cpu) {
        double all = dt * (double)sysconf(_SC_CLK_TCK) * (double)sysconf(_SC_NPROCESSORS_ONLN);
        double other = (double)(s1.cpu_busy - s0.cpu_busy) - (double)(s1.cpu_ours - s0.cpu_ours);
        r.others_pct = MAX(0.0, 100.0 * other / all);
    }
    if (r.have_pmd) {
        uint64_t pk = s1.pmd_packets - s0.pmd_packets, busy = s1.busy - s0.busy;
        uint64_t idle = s1.idle - s0.idle;
        r.cycles_per_pkt = pk ? (double)busy / (double)pk : 0;
        r.busy_pct = busy + idle ? 100.0 * (double)busy / (double)(busy + idle) : 0;
        r.sw_drops = s1.sw_drops - s0.sw_drops;
    }
    /* In bidir, each guest must have received: one dead direction is a failure too. */
    if (mode == MODE_BIDIR && (s1.c[0].rx == s0.c[0].rx || s1.c[1].rx == s0.c[1].rx))
        r.rx_mpps = 0;
    return r;
}

/* ---- output ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, n * sizeof(*v));
    qsort(s, n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

struct row {
    enum mode mode;
    unsigned size, flows, n;
    struct result r[MAX_ROUNDS];
    double med_mpps, med_gbps, med_cpp, med_busy, med_loss, med_others, min_mpps, max_mpps;
};

static void row_summarise(struct row *w)
{
    double v[6][MAX_ROUNDS];
    for (unsigned i = 0; i < w->n; i++) {
        v[0][i] = w->r[i].rx_mpps;
        v[1][i] = w->r[i].gbps;
        v[2][i] = w->r[i].cycles_per_pkt;
        v[3][i] = w->r[i].busy_pct;
        v[4][i] = w->r[i].loss;
        v[5][i] = w->r[i].others_pct;
    }
    w->med_mpps = median(v[0], w->n);
    w->med_gbps = median(v[1], w->n);
    w->med_cpp = median(v[2], w->n);
    w->med_busy = median(v[3], w->n);
    w->med_loss = median(v[4], w->n);
    w->med_others = median(v[5], w->n); /* < 0 when unknown: every round is alike */
    w->min_mpps = w->max_mpps = v[0][0];
    for (unsigned i = 1; i < w->n; i++) {
        w->min_mpps = MIN(w->min_mpps, v[0][i]);
        w->max_mpps = MAX(w->max_mpps, v[0][i]);
    }
}

static void print_table_header(void)
{
    printf("%-6s %5s %6s %9s %15s %8s %8s %9s %6s %6s %7s\n", "mode", "size", "flows", "Mpps",
           "(min-max)", "Gbit/s", "loss%", "cyc/pkt", "busy%", "oth%", "rounds");
}

static void print_row(const struct row *w)
{
    char range[32], cpp[16], busy[16], oth[16] = "-";
    snprintf(range, sizeof(range), "(%.3f-%.3f)", w->min_mpps, w->max_mpps);
    if (w->r[0].have_pmd) {
        snprintf(cpp, sizeof(cpp), "%.0f", w->med_cpp);
        snprintf(busy, sizeof(busy), "%.1f", w->med_busy);
    } else {
        snprintf(cpp, sizeof(cpp), "-");
        snprintf(busy, sizeof(busy), "-");
    }
    if (w->med_others >= 0)
        snprintf(oth, sizeof(oth), "%.0f", w->med_others);
    printf("%-6s %5u %6u %9.3f %15s %8.3f %8.3f %9s %6s %6s %7u\n", mode_names[w->mode], w->size,
           w->flows, w->med_mpps, range, w->med_gbps, 100 * w->med_loss, cpp, busy, oth, w->n);
    fflush(stdout);
}

static json_t *row_json(const struct row *w)
{
    json_t *rounds = json_array();
    for (unsigned i = 0; i < w->n; i++) {
        const struct result *r = &w->r[i];
        json_t *o =
            json_pack("{sf sf sf sf sI}", "rx_mpps", r->rx_mpps, "tx_mpps", r->tx_mpps, "gbps",
                      r->gbps, "loss", r->loss, "switch_drops", (json_int_t)r->sw_drops);
        if (r->have_pmd) {
            json_object_set_new(o, "cycles_per_pkt", json_real(r->cycles_per_pkt));
            json_object_set_new(o, "pmd_busy_pct", json_real(r->busy_pct));
        }
        if (r->others_pct >= 0)
            json_object_set_new(o, "others_pct", json_real(r->others_pct));
        json_array_append_new(rounds, o);
    }
    json_t *med =
        json_pack("{sf sf sf}", "rx_mpps", w->med_mpps, "gbps", w->med_gbps, "loss", w->med_loss);
    if (w->r[0].have_pmd) {
        json_object_set_new(med, "cycles_per_pkt", json_real(w->med_cpp));
        json_object_set_new(med, "pmd_busy_pct", json_real(w->med_busy));
    }
    if (w->med_others >= 0)
        json_object_set_new(med, "others_pct", json_real(w->med_others));
    return json_pack("{ss si si so so}", "mode", mode_names[w->mode], "size", (int)w->size, "flows",
                     (int)w->flows, "median", med, "rounds", rounds);
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options]\n"
            "  --duration SEC      measurement window per point (default 5)\n"
            "  --warmup SEC        traffic before the window opens (default 1)\n"
            "  --sizes LIST        frame sizes in bytes without FCS (default 64,1518)\n"
            "  --flows LIST        distinct MAC pairs per direction (default 1)\n"
            "  --modes LIST        uni, bidir (default uni,bidir)\n"
            "  --bidir             same as --modes bidir\n"
            "  --rounds N          repeat every point, report the median (default 1)\n"
            "  --burst N           frames per send/receive call (default 32)\n"
            "  --queue-size N      guest ring size (default 256)\n"
            "  --pmd-core N        core of vswitchd's PMD (default 1; -1: not pinned)\n"
            "  --gen-core N        core of the generator (default 0; -1: not pinned)\n"
            "  --sink-core N       core of the sink (default: the generator's; the same core\n"
            "                      means one thread serves both guests)\n"
            "  --sleep             let the PMD sleep when idle (default: --no-sleep)\n"
            "  --socket PATH       use the vswitchd listening on this control socket\n"
            "  --vswitchd PATH     daemon to start (default $VSWITCHD, then the build tree)\n"
            "  --vswitchctl PATH   control client (default $VSWITCHCTL, then the build tree)\n"
            "  --json              print JSON instead of the table\n"
            "  --smoke             ~1 s check that frames flow (exit 1 if not); for the tests\n"
            "  --verbose, --help\n",
            prog);
}

static unsigned parse_list(const char *s, unsigned *out, unsigned max_n, unsigned lo, unsigned hi,
                           const char *what)
{
    unsigned n = 0;
    char *dup = strdup(s), *save = NULL;
    if (!dup)
        die("out of memory");
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(tok, &end, 10);
        if (errno || *end || end == tok || v < lo || v > hi || n == max_n) {
            free(dup);
            die("invalid %s '%s' (%u..%u, at most %u values)", what, s, lo, hi, max_n);
        }
        out[n++] = (unsigned)v;
    }
    free(dup);
    if (!n)
        die("empty %s list", what);
    return n;
}

static double parse_double(const char *s, const char *what, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi))
        die("invalid %s '%s' (%g..%g)", what, s, lo, hi);
    return v;
}

static int parse_core(const char *s, const char *what)
{
    return (int)parse_double(s, what, -1, CPU_SETSIZE - 1);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
    enum {
        O_DURATION = 256,
        O_WARMUP,
        O_SIZES,
        O_FLOWS,
        O_MODES,
        O_BIDIR,
        O_ROUNDS,
        O_BURST,
        O_QSIZE,
        O_PMD_CORE,
        O_GEN_CORE,
        O_SINK_CORE,
        O_SLEEP,
        O_SOCKET,
        O_VSWITCHD,
        O_VSWITCHCTL,
        O_JSON,
        O_SMOKE,
        O_VERBOSE,
        O_HELP,
    };
    static const struct option lopts[] = {
        {"duration", required_argument, NULL, O_DURATION},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"sizes", required_argument, NULL, O_SIZES},
        {"flows", required_argument, NULL, O_FLOWS},
        {"modes", required_argument, NULL, O_MODES},
        {"bidir", no_argument, NULL, O_BIDIR},
        {"rounds", required_argument, NULL, O_ROUNDS},
        {"burst", required_argument, NULL, O_BURST},
        {"queue-size", required_argument, NULL, O_QSIZE},
        {"pmd-core", required_argument, NULL, O_PMD_CORE},
        {"gen-core", required_argument, NULL, O_GEN_CORE},
        {"sink-core", required_argument, NULL, O_SINK_CORE},
        {"sleep", no_argument, NULL, O_SLEEP},
        {"socket", required_argument, NULL, O_SOCKET},
        {"vswitchd", required_argument, NULL, O_VSWITCHD},
        {"vswitchctl", required_argument, NULL, O_VSWITCHCTL},
        {"json", no_argument, NULL, O_JSON},
        {"smoke", no_argument, NULL, O_SMOKE},
        {"verbose", no_argument, NULL, O_VERBOSE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    bool sink_set = false, sizes_set = false, modes_set = false, flows_set = false;
    const char *vswitchd = NULL, *vswitchctl = NULL;
    int c;

    *o = (struct opts){.duration = 5,
                       .warmup = 1,
                       .sizes = {64, 1518},
                       .n_sizes = 2,
                       .flows = {1},
                       .n_flows = 1,
                       .modes = {true, true},
                       .rounds = 1,
                       .burst = 32,
                       .queue_size = 256,
                       .pmd_core = 1,
                       .gen_core = 0,
                       .no_sleep = true};
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case O_DURATION:
            o->duration = parse_double(optarg, "duration", 0.05, 3600);
            break;
        case O_WARMUP:
            o->warmup = parse_double(optarg, "warm-up", 0, 600);
            break;
        case O_SIZES:
            o->n_sizes = parse_list(optarg, o->sizes, MAX_SIZES, 60, VSW_MAX_FRAME, "sizes");
            sizes_set = true;
            break;
        case O_FLOWS:
            o->n_flows = parse_list(optarg, o->flows, MAX_SIZES, 1, MAX_FLOWS, "flows");
            flows_set = true;
            break;
        case O_MODES: {
            unsigned n = 0;
            char *dup = strdup(optarg), *save = NULL;
            memset(o->modes, 0, sizeof(o->modes));
            for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                unsigned m = 0;
                while (m < MODE__COUNT && strcmp(tok, mode_names[m]))
                    m++;
                if (m == MODE__COUNT)
                    die("invalid mode '%s' (uni, bidir)", tok);
                o->modes[m] = true;
                n++;
            }
            free(dup);
            if (!n)
                die("empty mode list");
            modes_set = true;
            break;
        }
        case O_BIDIR:
            o->modes[MODE_UNI] = false;
            o->modes[MODE_BIDIR] = true;
            modes_set = true;
            break;
        case O_ROUNDS:
            o->rounds = (unsigned)parse_double(optarg, "rounds", 1, MAX_ROUNDS);
            break;
        case O_BURST:
            o->burst = (unsigned)parse_double(optarg, "burst", 1, MAX_BURST);
            break;
        case O_QSIZE:
            o->queue_size = (unsigned)parse_double(optarg, "queue size", 64, 1024);
            if (o->queue_size & (o->queue_size - 1))
                die("--queue-size must be a power of two");
            break;
        case O_PMD_CORE:
            o->pmd_core = parse_core(optarg, "PMD core");
            break;
        case O_GEN_CORE:
            o->gen_core = parse_core(optarg, "generator core");
            break;
        case O_SINK_CORE:
            o->sink_core = parse_core(optarg, "sink core");
            sink_set = true;
            break;
        case O_SLEEP:
            o->no_sleep = false;
            break;
        case O_SOCKET:
            o->socket = optarg;
            break;
        case O_VSWITCHD:
            vswitchd = optarg;
            break;
        case O_VSWITCHCTL:
            vswitchctl = optarg;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_SMOKE:
            o->smoke = true;
            break;
        case O_VERBOSE:
            o->verbose = true;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind < argc) {
        usage(stderr);
        exit(2);
    }
    if (!sink_set)
        o->sink_core = o->gen_core;
    if (o->smoke) {
        /* Quick and polite: the test suite runs it next to other tests. */
        o->duration = 0.4;
        o->warmup = 0.1;
        o->rounds = 1;
        if (!sizes_set) {
            o->sizes[0] = 64;
            o->n_sizes = 1;
        }
        if (!flows_set) {
            o->flows[0] = 4;
            o->n_flows = 1;
        }
        if (!modes_set)
            o->modes[MODE_UNI] = o->modes[MODE_BIDIR] = true;
        o->pmd_core = o->gen_core = o->sink_core = -1;
        o->no_sleep = false;
    }
    o->vswitchd = find_tool(vswitchd, "VSWITCHD", "../src/switch/vswitchd", "vswitchd");
    o->vswitchctl = find_tool(vswitchctl, "VSWITCHCTL", "../ctl/vswitchctl", "vswitchctl");
}

int main(int argc, char **argv)
{
    struct opts o;
    static struct row rows[MODE__COUNT * MAX_SIZES * MAX_SIZES];
    unsigned n_rows = 0;

    parse_args(argc, argv, &o);
    g_opts = &o;
    vsw_log_set_level(o.verbose ? VSW_LOG_DEBUG : VSW_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (o.socket)
        snprintf(ctl_sock, sizeof(ctl_sock), "%s", o.socket);
    else
        start_daemon(&o);
    setup_switch(&o);

    for (unsigned m = 0; m < MODE__COUNT; m++)
        if (o.modes[m])
            for (unsigned s = 0; s < o.n_sizes; s++)
                for (unsigned f = 0; f < o.n_flows; f++)
                    rows[n_rows++] =
                        (struct row){.mode = m, .size = o.sizes[s], .flows = o.flows[f]};

    if (!o.json) {
        printf("vsw-bench: vswitchd PMD on core %d, generator on core %d, sink on core %d, "
               "%.1f s windows after %.1f s warm-up, %u round(s) per point\n",
               o.pmd_core, o.gen_core, o.sink_core, o.duration, o.warmup, o.rounds);
        print_table_header();
    }
    /* Rounds outermost: one point's rounds are spread over the run, not back to back, so
     * a slow spell of the host does not land on a single point. */
    for (unsigned r = 0; r < o.rounds && !interrupted; r++)
        for (unsigned i = 0; i < n_rows && !interrupted; i++) {
            struct row *w = &rows[i];
            struct result res = measure(&o, w->mode, w->size, w->flows);
            if (interrupted)
                break; /* a cut-short window is no sample */
            w->r[w->n++] = res;
            if (o.verbose)
                fprintf(stderr, "round %u %s %u B %u flows: %.3f Mpps\n", r + 1,
                        mode_names[w->mode], w->size, w->flows, w->r[w->n - 1].rx_mpps);
            if (r + 1 == o.rounds) {
                row_summarise(w);
                if (!o.json)
                    print_row(w);
            }
        }
    if (interrupted) {
        cleanup();
        fprintf(stderr, "%s: interrupted\n", prog);
        return 130;
    }

    int status = 0;
    if (o.json) {
        char date[32];
        time_t now = time(NULL);
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        json_t *res = json_array();
        for (unsigned i = 0; i < n_rows; i++)
            json_array_append_new(res, row_json(&rows[i]));
        json_t *top = json_pack("{ss ss si si si sf sf si si so}", "tool", "vsw-bench", "date",
                                date, "pmd_core", o.pmd_core, "gen_core", o.gen_core, "sink_core",
                                o.sink_core, "duration_s", o.duration, "warmup_s", o.warmup,
                                "rounds", (int)o.rounds, "burst", (int)o.burst, "results", res);
        char *text = json_dumps(top, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(top);
    }
    for (unsigned i = 0; i < n_rows; i++)
        if (!(rows[i].med_mpps > 0)) {
            fprintf(stderr, "%s: FAIL: no frames arrived (%s, %u B, %u flows)\n", prog,
                    mode_names[rows[i].mode], rows[i].size, rows[i].flows);
            status = 1;
        }
    cleanup();
    if (o.smoke && status == 0)
        printf("vsw-bench: smoke OK\n");
    return status;
}
