/*
 * vsw-bench: L2 forwarding rate, cost and latency of vswitchd between simulated guests.
 *
 * Starts vswitchd (or uses a running one with --socket), makes a bridge with 2..64
 * vhost-user ports and attaches one simulated guest (the frontend library) per port in this
 * process. A point is one combination of the dimensions below; a scenario is a named set of
 * lists for those dimensions (the table `scenarios[]`), and every combination of its lists is
 * a point. Dimensions:
 *   mode   the traffic matrix: uni (guest 2k -> 2k+1), bidir (2k <-> 2k+1), ring
 *          (i -> i+1 mod N), bcast (guest 0 -> broadcast), unknown (guest 0 -> a MAC nobody
 *          has: flooded like broadcast)
 *   ports  simulated guests on the bridge          size   frame bytes without FCS
 *   flows  source MACs per guest (all learnt)      mrg    mergeable RX buffers on/off
 *   pmds   vswitchd PMD threads                    sleep  PMDs may sleep when idle
 *   rate   offered load per sending guest, Mpps (0: as fast as the switch takes frames);
 *          paced points carry a timestamp in every frame and report one-way latency
 * Learning: before each point every guest sends one broadcast from each of its MACs, so
 * unicast traffic is known unicast. Over a window of --duration seconds after --warmup it
 * measures the frames the sinks received (Mpps, Gbit/s), the PMDs' packets and busy cycles
 * (`vswitchctl stats`) for cycles per packet, and the PMD threads' CPU time (/proc).
 *
 * Threads: main (set-up, sampling, output) and the traffic thread(s). With the generator and
 * sink on the same core (the default on this 2-core machine) one traffic thread owns every
 * guest and alternates send and receive bursts, so none starves at the scheduler's whim;
 * with --sink-core on another core the odd guests get a second thread. A vuf_dev is only
 * ever touched by the thread that owns it; counters are published with relaxed atomic stores.
 *
 * --smoke: a few seconds, a tiny instance of each kind of point; asserts only that frames
 * arrive where they should (the test suite runs it).
 */
#include "vhost_user.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_LIST      16
#define MAX_PORTS     64
#define MAX_FLOWS     (1u << 20) /* per guest */
#define MAX_BURST     256
#define MAX_ROUNDS    100
#define MAX_POINTS    256
#define MAX_PMDS      2
#define CTL_TIMEOUT   "10"
#define START_WAIT_S  15
#define TS_OFF        42 /* after the Ethernet, IPv4 and UDP headers */
#define TS_MAGIC      0x76737762u
#define TS_CAP        64 /* bytes of each frame a timing sink copies out */
#define LEARN_SIZE    64
#define DEST_NONE     (-1)
#define DEST_BCAST    (-2)
#define DEST_UNKNOWN  (-3)
#define MAC_GUEST_OFF 0x10 /* MAC byte 1 of guest i: a unicast MAC nobody else uses */
#define MAC_UNKNOWN   0xee /* MAC byte 1 of the destination nobody has */
/*
 * A paced thread with nothing in flight naps until shortly before its next frame is due:
 * sparse traffic must not need a busy core here, or it would skew the idle PMD's wake-up.
 * nanosleep overshoots by tens of microseconds, hence the margin; the rest is spun.
 */
#define NAP_MIN_NS    300000ull
#define NAP_MARGIN_NS 150000ull
#define LOST_NS       20000000ull /* in flight this long without arrivals: lost */

/* Latency histogram: 32 linear buckets per power of two (~3 % resolution), in ns. */
#define LAT_SUB_BITS 5
#define LAT_SUB      (1u << LAT_SUB_BITS)
#define LAT_BUCKETS  (48 * LAT_SUB)

enum mode { MODE_UNI, MODE_BIDIR, MODE_RING, MODE_BCAST, MODE_UNKNOWN, MODE__COUNT };
static const char *const mode_names[MODE__COUNT] = {"uni", "bidir", "ring", "bcast", "unknown"};

/* Lists for every dimension; a point is one value of each. */
struct dims {
    unsigned modes[MODE__COUNT], n_modes;
    unsigned sizes[MAX_LIST], n_sizes;
    unsigned flows[MAX_LIST], n_flows;
    unsigned ports[MAX_LIST], n_ports;
    unsigned mrg[2], n_mrg;
    unsigned pmds[MAX_LIST], n_pmds;
    unsigned sleep[2], n_sleep;
    double rates[MAX_LIST];
    unsigned n_rates;
};

enum dim { D_MODES, D_SIZES, D_FLOWS, D_PORTS, D_MRG, D_PMDS, D_SLEEP, D_RATES, D__COUNT };

/*
 * Named scenarios: lists for some dimensions; the others keep their defaults (or what the
 * command line gave). Adding a scenario is one line here (and a line in bench/README.md).
 */
static const struct scenario {
    const char *name, *what;
    const char *v[D__COUNT]; /* indexed by enum dim; NULL: not set by the scenario */
} scenarios[] = {
    {"sizes",
     "L2 VM-VM by frame size (mergeable RX buffers)",
     {[D_MODES] = "bidir", [D_SIZES] = "64,128,256,512,1024,1518,9000"}},
    {"mrg",
     "large frames without mergeable RX buffers (one big buffer per frame)",
     {[D_MODES] = "bidir", [D_SIZES] = "1518,9000", [D_MRG] = "off"}},
    {"ports",
     "2 to 64 guests, in pairs and in a ring",
     {[D_MODES] = "bidir,ring", [D_SIZES] = "64", [D_PORTS] = "2,4,8,16,32,64"}},
    {"macs",
     "1k to 1M learnt MACs (flows per guest x 2 guests)",
     {[D_MODES] = "bidir", [D_SIZES] = "64", [D_FLOWS] = "512,8192,65536,524288"}},
    {"flood",
     "broadcast and unknown unicast from one guest to N-1",
     {[D_MODES] = "bcast,unknown", [D_SIZES] = "64", [D_PORTS] = "4,16"}},
    {"pmds",
     "1 vs 2 PMD threads, 2 pairs (the 2nd PMD shares the generator's core)",
     {[D_MODES] = "bidir", [D_SIZES] = "64", [D_PORTS] = "4", [D_PMDS] = "1,2"}},
    {"latency",
     "one-way latency at a fixed load below saturation",
     {[D_MODES] = "uni", [D_SIZES] = "64,1518", [D_RATES] = "0.5"}},
    {"idle",
     "one frame every 10 ms: PMD sleeping on kicks vs busy-polling",
     {[D_MODES] = "uni", [D_SIZES] = "64", [D_RATES] = "0.0001", [D_SLEEP] = "on,off"}},
    {"gaps",
     "one frame every 100 us to 10 ms: the adaptive idle window vs busy-polling",
     {[D_MODES] = "uni",
      [D_SIZES] = "64",
      [D_RATES] = "0.01,0.002,0.0005,0.0001",
      [D_SLEEP] = "on,off"}},
};
/* The smoke test: a tiny instance of each kind of point. */
static const struct scenario smoke_scenarios[] = {
    {"smoke-pairs", "", {[D_MODES] = "uni,bidir", [D_SIZES] = "64", [D_FLOWS] = "4"}},
    {"smoke-ring", "", {[D_MODES] = "ring", [D_SIZES] = "64", [D_PORTS] = "4"}},
    {"smoke-flood", "", {[D_MODES] = "bcast,unknown", [D_SIZES] = "64", [D_PORTS] = "3"}},
    {"smoke-jumbo", "", {[D_MODES] = "uni", [D_SIZES] = "9000", [D_MRG] = "on,off"}},
    {"smoke-latency", "", {[D_MODES] = "uni", [D_SIZES] = "64", [D_RATES] = "0.002"}},
};

struct opts {
    const char *vswitchd, *vswitchctl, *socket;
    double duration, warmup;
    struct dims d;      /* from the command line (and defaults) */
    bool set[D__COUNT]; /* dimension given on the command line: overrides scenarios */
    const char *scen[32];
    unsigned n_scen;
    bool quick;
    unsigned rounds;
    unsigned burst;
    unsigned queue_size;
    bool guest_huge;                              /* guest memory on 2 MiB huge pages */
    int pmd_cores[MAX_PMDS], gen_core, sink_core; /* -1: not pinned */
    bool json, smoke, verbose;
};

/* Counters one traffic thread publishes for one guest. */
struct guest_counters {
    uint64_t tx, tx_full, rx, rx_bytes, rx_errors;
};

struct guest {
    unsigned idx;
    struct vuf_dev *dev;
    char port[VSW_NAME_MAX];
    struct guest_counters c __attribute__((aligned(64)));
};

/* One point: its dimensions, then what its rounds measured. */
struct result {
    double rx_mpps, tx_mpps, gbps, loss, cycles_per_pkt, busy_pct;
    double pmd_cpu_pct; /* CPU time of the PMD threads, % of one core per PMD; < 0: unknown */
    double others_pct;  /* CPU time of other processes, % of the machine; < 0: unknown */
    uint64_t sw_drops;
    int64_t fdb_entries; /* < 0: unknown */
    bool have_pmd;
};

struct point {
    const char *scen;
    enum mode mode;
    unsigned size, flows, ports, pmds;
    bool mrg, sleep;
    double rate; /* Mpps per sending guest; 0: unpaced */
    unsigned n;
    struct result r[MAX_ROUNDS];
    uint64_t lat[LAT_BUCKETS]; /* all rounds merged */
    double med_mpps, med_tx, med_gbps, med_cpp, med_busy, med_loss, med_others, med_pmd_cpu;
    double min_mpps, max_mpps;
    bool failed;
};

struct traffic {
    struct guest *g[MAX_PORTS];
    int dest[MAX_PORTS]; /* per owned guest: destination guest, DEST_* */
    unsigned n_guests;
    unsigned burst, size, flows, copies;
    double pps;       /* per sending guest; 0: unpaced */
    uint8_t *scratch; /* burst frames per owned guest */
    bool solo;        /* owns every guest: may nap when paced */
    int core;
    uint64_t lat[LAT_BUCKETS];
    pthread_t tid;
};

/* One sample of everything we read at the edges of the window. */
struct sample {
    uint64_t t_ns;
    struct guest_counters c[MAX_PORTS];
    uint64_t pmd_packets, busy, idle, sw_drops;
    bool have_pmd;
    uint64_t cpu_busy, cpu_ours; /* jiffies: all CPUs, this process + children + daemon */
    bool have_cpu;
    uint64_t pmd_jiffies;
    unsigned n_pmd_threads;
};

static volatile sig_atomic_t interrupted;
static bool traffic_stop, recording;
static const char *prog = "vsw-bench";

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void VSW_PRINTF(1, 2) die(const char *fmt, ...);

/* ---- the daemon, through vswitchctl ---- */

static pid_t daemon_pid = -1;
static bool daemon_sleep;
static unsigned daemon_pmds;
static char run_dir[PATH_MAX];
static char ctl_sock[PATH_MAX + 16];
static char br_name[16]; /* "vswb<pid>": ports append "p<N>" within VSW_NAME_MAX */
static bool br_made;
static unsigned br_max_macs;
static struct guest guests[MAX_PORTS];
static unsigned n_guests;
static bool guests_mrg;
static uint32_t guests_buf;
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

static bool is_our_port(const char *name)
{
    for (unsigned i = 0; name && i < n_guests; i++)
        if (!strcmp(name, guests[i].port))
            return true;
    return false;
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
        if (is_our_port(json_string_value(json_object_get(p, "name"))))
            s->sw_drops += sum_drops(json_object_get(p, "drops"));
    }
    json_decref(j);
    s->have_pmd = true;
    return true;
}

/* Entries in our bridge's FDB, or -1. */
static int64_t read_fdb_entries(void)
{
    static const char *const args[] = {"br-list", NULL};
    json_t *j = ctl_json(args, false);
    int64_t n = -1;
    size_t i;
    json_t *b;
    json_array_foreach(j, i, b)
    {
        const char *name = json_string_value(json_object_get(b, "name"));
        if (name && !strcmp(name, br_name))
            n = (int64_t)jget(b, "fdb_entries");
    }
    json_decref(j);
    return n;
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

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void detach_guests(bool del_ports)
{
    for (unsigned i = 0; i < n_guests; i++) {
        if (guests[i].dev)
            vuf_close(guests[i].dev);
        guests[i].dev = NULL;
        if (del_ports) {
            const char *const del[] = {"port-del", guests[i].port, NULL};
            ctl_ok(del, true);
        }
    }
    n_guests = 0;
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
    br_made = false;
    remove_eal_dir(pid);
    if (run_dir[0]) {
        /* Ours (mkdtemp): the daemon's log, sockets and state file. */
        nftw(run_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        run_dir[0] = '\0';
    }
}

static void cleanup(void)
{
    detach_guests(daemon_pid <= 0 && br_made);
    if (daemon_pid > 0) {
        stop_daemon();
    } else if (br_made) {
        /* Someone else's daemon: leave it as we found it. */
        const char *const del[] = {"br-del", br_name, "--force", NULL};
        ctl_ok(del, true);
    }
    br_made = false;
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

static void start_daemon(const struct opts *o, bool sleep_ok, unsigned pmds)
{
    char tmpl[] = "/tmp/vsw-bench.XXXXXX";
    if (!mkdtemp(tmpl))
        die("mkdtemp: %s", strerror(errno));
    snprintf(run_dir, sizeof(run_dir), "%s", tmpl);
    snprintf(ctl_sock, sizeof(ctl_sock), "%s/ctl.sock", run_dir);
    char log[PATH_MAX + 16], cores[32] = "", npmds[16];
    snprintf(log, sizeof(log), "%s/vswitchd.log", run_dir);
    snprintf(npmds, sizeof(npmds), "%u", pmds);
    bool pinned = true;
    for (unsigned i = 0; i < pmds; i++) {
        if (o->pmd_cores[i] < 0)
            pinned = false;
        size_t l = strlen(cores);
        snprintf(cores + l, sizeof(cores) - l, "%s%d", i ? "," : "", o->pmd_cores[i]);
    }

    const char *argv[16];
    unsigned n = 0;
    argv[n++] = o->vswitchd;
    argv[n++] = "--run-dir";
    argv[n++] = run_dir;
    argv[n++] = "--ctl";
    argv[n++] = ctl_sock;
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    argv[n++] = "--pmds";
    argv[n++] = npmds;
    if (pinned) {
        argv[n++] = "--pmd-cores";
        argv[n++] = cores;
    }
    if (!sleep_ok)
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
    daemon_sleep = sleep_ok;
    daemon_pmds = pmds;
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

static void make_bridge(void)
{
    snprintf(br_name, sizeof(br_name), "vswb%d", (int)getpid() % 1000000);
    char max_macs[16];
    snprintf(max_macs, sizeof(max_macs), "%u", br_max_macs);
    /* MTU 9000: bridges drop frames above their MTU (default 1500) and we send jumbo ones. */
    const char *const add[] = {"br-add", br_name, "--max-macs", max_macs, "--mtu", "9000", NULL};
    if (!ctl_ok(add, false))
        die("br-add %s --max-macs %s failed (a bridge holds at most 1M MACs)", br_name, max_macs);
    br_made = true;
}

/* A daemon with the PMD settings of the point (restarted when they change), with our bridge. */
static void ensure_daemon(const struct opts *o, const struct point *p)
{
    if (o->socket) {
        if (!br_made)
            make_bridge();
        return;
    }
    if (daemon_pid > 0 && daemon_sleep == p->sleep && daemon_pmds == p->pmds)
        return;
    detach_guests(false);
    stop_daemon();
    start_daemon(o, p->sleep, p->pmds);
    make_bridge();
}

/* Without mergeable buffers one RX buffer must hold the whole frame and its header. */
static uint32_t rx_buf_size(const struct point *p)
{
    if (p->mrg)
        return 2048;
    uint32_t need = (uint32_t)sizeof(struct virtio_net_hdr_v1) + p->size;
    return MAX(2048u, (need + 1023) / 1024 * 1024);
}

/* `ports` guests attached with the point's RX buffer set-up (re-attached when it changes). */
static void ensure_guests(const struct opts *o, const struct point *p)
{
    uint32_t buf = rx_buf_size(p);
    if (n_guests == p->ports && guests_mrg == p->mrg && guests_buf == buf)
        return;
    detach_guests(true);
    for (unsigned i = 0; i < p->ports; i++) {
        struct guest *g = &guests[i];
        memset(g, 0, sizeof(*g));
        g->idx = i;
        snprintf(g->port, sizeof(g->port), "%sp%u", br_name, i);
        const char *const padd[] = {"port-add", br_name, g->port, NULL};
        json_t *j = ctl_json(padd, false);
        const char *path = json_string_value(json_object_get(j, "path"));
        if (!path) {
            json_decref(j);
            die("port-add %s %s failed", br_name, g->port);
        }
        n_guests = i + 1; /* the port exists: clean it up from now on */
        struct vuf_config cfg = {
            .queue_size = (uint16_t)o->queue_size, .buf_size = buf, .huge = o->guest_huge};
        if (!p->mrg)
            cfg.features = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_RING_F_EVENT_IDX);
        g->dev = vuf_connect(path, &cfg);
        int e = errno;
        json_decref(j);
        if (!g->dev)
            die("cannot attach a guest to port %s: %s%s", g->port, strerror(e),
                o->guest_huge ? " (--guest-hugepages needs 2 MiB pages reserved: 2 per guest)"
                              : "");
    }
    guests_mrg = p->mrg;
    guests_buf = buf;
}

/* ---- traffic ---- */

/* Where guest g of n sends in `mode`: a guest index, DEST_BCAST, DEST_UNKNOWN or DEST_NONE. */
static int mode_dest(enum mode mode, unsigned g, unsigned n)
{
    switch (mode) {
    case MODE_UNI:
        return g % 2 == 0 && g + 1 < n ? (int)g + 1 : DEST_NONE;
    case MODE_BIDIR:
        return (g ^ 1u) < n ? (int)(g ^ 1u) : DEST_NONE;
    case MODE_RING:
        return (int)((g + 1) % n);
    case MODE_BCAST:
        return g == 0 ? DEST_BCAST : DEST_NONE;
    case MODE_UNKNOWN:
        return g == 0 ? DEST_UNKNOWN : DEST_NONE;
    default:
        return DEST_NONE;
    }
}

/* Receivers of each frame: one for unicast, every other guest for a flood. */
static unsigned mode_copies(enum mode mode, unsigned n)
{
    return mode == MODE_BCAST || mode == MODE_UNKNOWN ? n - 1 : 1;
}

/* Flow f of guest g: 02:<0x10 + g>:<f, 32 bits>. */
static void put_mac(uint8_t *p, unsigned g, unsigned flow)
{
    p[0] = 0x02; /* locally administered unicast */
    p[1] = (uint8_t)(MAC_GUEST_OFF + g);
    p[2] = (uint8_t)(flow >> 24);
    p[3] = (uint8_t)(flow >> 16);
    p[4] = (uint8_t)(flow >> 8);
    p[5] = (uint8_t)flow;
}

static void put_dest(uint8_t *p, int dest, unsigned flow)
{
    if (dest == DEST_BCAST) {
        memset(p, 0xff, 6);
    } else if (dest == DEST_UNKNOWN) {
        put_mac(p, 0, flow);
        p[1] = MAC_UNKNOWN;
    } else {
        put_mac(p, (unsigned)dest, flow);
    }
}

/*
 * An Ethernet/IPv4/UDP frame of `size` bytes from guest `from`. The MACs are patched per
 * frame (flow), so one template serves any number of flows; the IP addresses stay those of
 * flow 0 (an L2 switch never looks at them).
 */
static void build_frame(uint8_t *f, unsigned size, unsigned from, int dest)
{
    memset(f, 0, size);
    put_dest(f, dest, 0);
    put_mac(f + 6, from, 0);
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
    ip[12] = 198, ip[13] = 18, ip[14] = 0, ip[15] = (uint8_t)from;
    ip[16] = 198, ip[17] = 19, ip[18] = 0, ip[19] = (uint8_t)(dest >= 0 ? dest : 255);
    uint32_t sum = 0;
    for (unsigned i = 0; i < 20; i += 2)
        sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    ip[10] = (uint8_t)(~sum >> 8);
    ip[11] = (uint8_t)~sum;
    uint8_t *udp = ip + 20;
    unsigned udp_len = ip_len - 20;
    udp[0] = 0x04, udp[1] = 0x00, udp[2] = 0x04, udp[3] = 0x01;
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

static unsigned lat_bucket(uint64_t ns)
{
    if (ns < LAT_SUB)
        return (unsigned)ns;
    unsigned shift = (unsigned)(63 - __builtin_clzll(ns)) - LAT_SUB_BITS;
    unsigned b = (shift + 1) * LAT_SUB + (unsigned)((ns >> shift) & (LAT_SUB - 1));
    return MIN(b, LAT_BUCKETS - 1);
}

/* The middle of bucket b, in ns. */
static double lat_value(unsigned b)
{
    if (b < LAT_SUB)
        return b;
    unsigned shift = b / LAT_SUB - 1;
    double lo = (double)((uint64_t)(LAT_SUB + b % LAT_SUB) << shift);
    return lo + (double)(1ull << shift) / 2;
}

static void nap_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
                          .tv_nsec = (long)(ns % 1000000000ull)};
    nanosleep(&ts, NULL);
}

static void *traffic_main(void *arg)
{
    struct traffic *t = arg;
    struct guest_counters c[MAX_PORTS];
    uint64_t sent[MAX_PORTS] = {0};
    unsigned cursor[MAX_PORTS] = {0};
    const void *ptrs[MAX_BURST];
    uint32_t lens[MAX_BURST], rlens[MAX_BURST];
    static __thread uint8_t rxcopy[MAX_BURST][TS_CAP];
    void *bufs[MAX_BURST];
    const bool timed = t->pps > 0;
    uint64_t expect = 0, got = 0, last_rx = 0;

    pin_self(t->core, "traffic thread");
    for (unsigned i = 0; i < t->n_guests; i++)
        c[i] = t->g[i]->c;
    for (unsigned k = 0; k < MAX_BURST; k++) {
        lens[k] = t->size;
        bufs[k] = rxcopy[k];
    }
    const uint64_t t0 = vsw_now_ns();
    while (!__atomic_load_n(&traffic_stop, __ATOMIC_RELAXED)) {
        uint64_t now = timed ? vsw_now_ns() : 0;
        uint64_t next_due = UINT64_MAX;
        for (unsigned i = 0; i < t->n_guests; i++) {
            if (t->dest[i] == DEST_NONE)
                continue;
            unsigned k = t->burst;
            if (timed) {
                uint64_t due = (uint64_t)((double)(now - t0) * t->pps / 1e9) + 1;
                if (due <= sent[i]) {
                    uint64_t at = t0 + (uint64_t)((double)sent[i] * 1e9 / t->pps);
                    next_due = MIN(next_due, at);
                    continue;
                }
                k = (unsigned)MIN((uint64_t)k, due - sent[i]);
            }
            uint8_t *base = t->scratch + (size_t)i * t->burst * t->size;
            unsigned cur = cursor[i];
            for (unsigned j = 0; j < k; j++) {
                uint8_t *f = base + (size_t)j * t->size;
                put_dest(f, t->dest[i], cur);
                put_mac(f + 6, t->g[i]->idx, cur);
                if (timed) {
                    uint32_t magic = TS_MAGIC;
                    memcpy(f + TS_OFF, &now, sizeof(now));
                    memcpy(f + TS_OFF + 8, &magic, sizeof(magic));
                }
                ptrs[j] = f;
                if (++cur == t->flows)
                    cur = 0;
            }
            int n = vuf_send_burst(t->g[i]->dev, ptrs, lens, k);
            if (n < 0)
                n = 0;
            c[i].tx += (unsigned)n;
            sent[i] += (unsigned)n;
            expect += (uint64_t)n * t->copies;
            /* Frames not taken are offered again next time, with the same flows. */
            cursor[i] = (cursor[i] + (unsigned)n) % t->flows;
            if ((unsigned)n < k)
                c[i].tx_full++;
        }
        bool rec = timed && __atomic_load_n(&recording, __ATOMIC_RELAXED);
        for (unsigned i = 0; i < t->n_guests; i++) {
            int n = vuf_recv_burst(t->g[i]->dev, timed ? bufs : NULL, TS_CAP, rlens, t->burst);
            if (n < 0) {
                c[i].rx_errors++;
                continue;
            }
            if (n == 0)
                continue;
            c[i].rx += (unsigned)n;
            got += (unsigned)n;
            for (int k = 0; k < n; k++)
                c[i].rx_bytes += rlens[k];
            if (!timed)
                continue;
            uint64_t at = vsw_now_ns();
            last_rx = at;
            for (int k = 0; k < n && rec; k++) {
                uint64_t ts;
                uint32_t magic;
                if (rlens[k] < TS_OFF + 12)
                    continue;
                memcpy(&ts, rxcopy[k] + TS_OFF, sizeof(ts));
                memcpy(&magic, rxcopy[k] + TS_OFF + 8, sizeof(magic));
                if (magic == TS_MAGIC && ts <= at)
                    t->lat[lat_bucket(at - ts)]++;
            }
        }
        for (unsigned i = 0; i < t->n_guests; i++)
            publish(t->g[i], &c[i]);
        if (timed && t->solo && next_due != UINT64_MAX) {
            /* Nap only with nothing in flight (or what is in flight is lost), so a nap never
             * delays the receive side of a latency sample. */
            uint64_t now2 = vsw_now_ns();
            bool idle = got >= expect || now2 - MAX(last_rx, now) > LOST_NS;
            if (idle && next_due > now2 + NAP_MIN_NS)
                nap_ns(next_due - now2 - NAP_MARGIN_NS);
        }
    }
    return NULL;
}

/* Drain every guest's RX ring until nothing has arrived for `quiet_ms`. */
static void drain(unsigned quiet_ms)
{
    uint32_t lens[MAX_BURST];
    uint64_t last = vsw_now_ns();
    while (vsw_now_ns() - last < quiet_ms * 1000000ull) {
        bool any = false;
        for (unsigned i = 0; i < n_guests; i++) {
            while (vuf_recv_burst(guests[i].dev, NULL, 0, lens, MAX_BURST) > 0)
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
 * Teach the switch every MAC of every guest: each guest sends one broadcast from each of
 * its addresses, a burst at a time; the copies the others receive are discarded (some may
 * be dropped for want of RX buffers: learning happens on the way in, so that is harmless,
 * and the drop counters are read only inside the window).
 */
static void learn(unsigned flows)
{
    static uint8_t frames[MAX_BURST][LEARN_SIZE];
    const void *ptrs[MAX_BURST];
    uint32_t lens[MAX_BURST], rl[MAX_BURST];
    const unsigned burst = 32;

    for (unsigned k = 0; k < burst; k++) {
        ptrs[k] = frames[k];
        lens[k] = LEARN_SIZE;
    }
    for (unsigned f0 = 0; f0 < flows && !interrupted; f0 += burst) {
        unsigned k = MIN(burst, flows - f0);
        for (unsigned i = 0; i < n_guests; i++) {
            struct guest *g = &guests[i];
            for (unsigned j = 0; j < k; j++) {
                build_frame(frames[j], LEARN_SIZE, i, DEST_BCAST);
                put_mac(frames[j] + 6, i, f0 + j);
            }
            unsigned done = 0;
            uint64_t deadline = vsw_now_ns() + 2000000000ull;
            while (done < k) {
                int n = vuf_send_burst(g->dev, ptrs + done, lens + done, k - done);
                if (n > 0) {
                    done += (unsigned)n;
                    continue;
                }
                for (unsigned r = 0; r < n_guests; r++)
                    while (vuf_recv_burst(guests[r].dev, NULL, 0, rl, MAX_BURST) > 0)
                        ;
                if (vsw_now_ns() > deadline)
                    die("the switch takes no frames from guest %u", i);
                usleep(50);
            }
        }
        for (unsigned r = 0; r < n_guests; r++)
            while (vuf_recv_burst(guests[r].dev, NULL, 0, rl, MAX_BURST) > 0)
                ;
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

/* utime + stime (+ cutime + cstime: the vswitchctl children we waited for) from a stat file. */
static bool stat_jiffies(const char *path, bool children, uint64_t *out)
{
    char buf[1024];
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

static bool proc_jiffies(pid_t pid, bool children, uint64_t *out)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    return stat_jiffies(path, children, out);
}

/* CPU time of the daemon's PMD threads (named pmd<N> by vswitchd). */
static bool pmd_thread_jiffies(pid_t pid, uint64_t *out, unsigned *n_threads)
{
    char dir[64], path[PATH_MAX], comm[32];
    snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
    DIR *d = opendir(dir);
    if (!d)
        return false;
    struct dirent *e;
    *out = 0;
    *n_threads = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s/comm", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        bool pmd = fgets(comm, sizeof(comm), f) && !strncmp(comm, "pmd", 3);
        fclose(f);
        uint64_t j;
        snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
        if (pmd && stat_jiffies(path, false, &j)) {
            *out += j;
            ++*n_threads;
        }
    }
    closedir(d);
    return *n_threads > 0;
}

static void take_sample(struct sample *s)
{
    memset(s, 0, sizeof(*s));
    s->t_ns = vsw_now_ns();
    uint64_t self = 0, dmn = 0;
    /* Only with our own daemon do we know every process that is "us". */
    s->have_cpu = daemon_pid > 0 && cpu_busy_jiffies(&s->cpu_busy) &&
                  proc_jiffies(getpid(), true, &self) && proc_jiffies(daemon_pid, false, &dmn);
    s->cpu_ours = self + dmn;
    if (daemon_pid > 0)
        pmd_thread_jiffies(daemon_pid, &s->pmd_jiffies, &s->n_pmd_threads);
    for (unsigned i = 0; i < n_guests; i++) {
        struct guest_counters *c = &guests[i].c;
        s->c[i].tx = __atomic_load_n(&c->tx, __ATOMIC_RELAXED);
        s->c[i].tx_full = __atomic_load_n(&c->tx_full, __ATOMIC_RELAXED);
        s->c[i].rx = __atomic_load_n(&c->rx, __ATOMIC_RELAXED);
        s->c[i].rx_bytes = __atomic_load_n(&c->rx_bytes, __ATOMIC_RELAXED);
        s->c[i].rx_errors = __atomic_load_n(&c->rx_errors, __ATOMIC_RELAXED);
    }
    if (!read_switch_stats(s))
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

static struct result measure(const struct opts *o, struct point *p)
{
    static struct traffic t[2];
    unsigned n_threads = o->gen_core == o->sink_core ? 1 : 2;

    ensure_daemon(o, p);
    ensure_guests(o, p);
    learn(p->flows);
    struct result r = {.others_pct = -1, .pmd_cpu_pct = -1, .fdb_entries = read_fdb_entries()};
    uint64_t want = (uint64_t)p->ports * p->flows;
    if (r.fdb_entries >= 0 && (uint64_t)r.fdb_entries < want)
        fprintf(stderr, "%s: warning: the FDB holds %lld of the %llu MACs (%s %u ports)\n", prog,
                (long long)r.fdb_entries, (unsigned long long)want, mode_names[p->mode], p->ports);
    for (unsigned i = 0; i < n_guests; i++)
        memset(&guests[i].c, 0, sizeof(guests[i].c));

    memset(t, 0, sizeof(t));
    __atomic_store_n(&traffic_stop, false, __ATOMIC_RELAXED);
    for (unsigned k = 0; k < n_threads; k++) {
        struct traffic *tt = &t[k];
        tt->burst = o->burst;
        tt->size = p->size;
        tt->flows = p->flows;
        tt->copies = mode_copies(p->mode, p->ports);
        tt->pps = p->rate * 1e6;
        tt->solo = n_threads == 1;
        tt->core = k == 0 ? o->gen_core : o->sink_core;
        for (unsigned i = k; i < n_guests; i += n_threads) {
            tt->g[tt->n_guests] = &guests[i];
            tt->dest[tt->n_guests] = mode_dest(p->mode, i, p->ports);
            tt->n_guests++;
        }
        tt->scratch = malloc((size_t)tt->n_guests * tt->burst * tt->size);
        if (!tt->scratch)
            die("out of memory");
        for (unsigned i = 0; i < tt->n_guests; i++)
            for (unsigned j = 0; j < tt->burst; j++)
                build_frame(tt->scratch + ((size_t)i * tt->burst + j) * tt->size, tt->size,
                            tt->g[i]->idx, tt->dest[i]);
        int rc = pthread_create(&tt->tid, NULL, traffic_main, tt);
        if (rc)
            die("pthread_create: %s", strerror(rc));
    }

    struct sample s0, s1;
    nap(o->warmup);
    take_sample(&s0);
    __atomic_store_n(&recording, true, __ATOMIC_RELAXED);
    nap(o->duration);
    __atomic_store_n(&recording, false, __ATOMIC_RELAXED);
    take_sample(&s1);
    __atomic_store_n(&traffic_stop, true, __ATOMIC_RELAXED);
    for (unsigned k = 0; k < n_threads; k++) {
        pthread_join(t[k].tid, NULL);
        free(t[k].scratch);
        for (unsigned b = 0; b < LAT_BUCKETS; b++)
            p->lat[b] += t[k].lat[b];
    }
    drain(20);

    double dt = (double)(s1.t_ns - s0.t_ns) / 1e9;
    uint64_t rx = 0, tx = 0, bytes = 0, errors = 0;
    for (unsigned i = 0; i < n_guests; i++) {
        rx += s1.c[i].rx - s0.c[i].rx;
        tx += s1.c[i].tx - s0.c[i].tx;
        bytes += s1.c[i].rx_bytes - s0.c[i].rx_bytes;
        errors += s1.c[i].rx_errors - s0.c[i].rx_errors;
    }
    double offered = (double)tx * mode_copies(p->mode, p->ports);
    r.rx_mpps = (double)rx / dt / 1e6;
    r.tx_mpps = (double)tx / dt / 1e6;
    r.gbps = (double)bytes * 8 / dt / 1e9;
    r.loss = offered > 0 ? MAX(0.0, (offered - (double)rx) / offered) : 0;
    r.have_pmd = s0.have_pmd && s1.have_pmd;
    long hz = sysconf(_SC_CLK_TCK);
    if (s0.have_cpu && s1.have_cpu) {
        double all = dt * (double)hz * (double)sysconf(_SC_NPROCESSORS_ONLN);
        double other = (double)(s1.cpu_busy - s0.cpu_busy) - (double)(s1.cpu_ours - s0.cpu_ours);
        r.others_pct = MAX(0.0, 100.0 * other / all);
    }
    if (s0.n_pmd_threads && s0.n_pmd_threads == s1.n_pmd_threads)
        r.pmd_cpu_pct = 100.0 * (double)(s1.pmd_jiffies - s0.pmd_jiffies) /
                        (dt * (double)hz * s1.n_pmd_threads);
    if (r.have_pmd) {
        uint64_t pk = s1.pmd_packets - s0.pmd_packets, busy = s1.busy - s0.busy;
        uint64_t idle = s1.idle - s0.idle;
        r.cycles_per_pkt = pk ? (double)busy / (double)pk : 0;
        r.busy_pct = busy + idle ? 100.0 * (double)busy / (double)(busy + idle) : 0;
        r.sw_drops = s1.sw_drops - s0.sw_drops;
    }
    /* Every guest that should receive must have: one dead direction fails the point. */
    for (unsigned i = 0; i < n_guests; i++) {
        bool dst = false;
        for (unsigned g = 0; g < n_guests && !dst; g++) {
            int d = mode_dest(p->mode, g, p->ports);
            dst = d == (int)i || ((d == DEST_BCAST || d == DEST_UNKNOWN) && g != i);
        }
        if (dst && s1.c[i].rx == s0.c[i].rx) {
            fprintf(stderr, "%s: guest %u received nothing (%s, %u ports, %u B)\n", prog, i,
                    mode_names[p->mode], p->ports, p->size);
            p->failed = true;
        }
    }
    if (errors) {
        fprintf(stderr, "%s: %llu malformed used entries (%s, %u B)\n", prog,
                (unsigned long long)errors, mode_names[p->mode], p->size);
        p->failed = true;
    }
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
    if (!n)
        return 0;
    memcpy(s, v, n * sizeof(*v));
    qsort(s, n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static void point_summarise(struct point *w)
{
    double v[8][MAX_ROUNDS];
    for (unsigned i = 0; i < w->n; i++) {
        v[0][i] = w->r[i].rx_mpps;
        v[1][i] = w->r[i].gbps;
        v[2][i] = w->r[i].cycles_per_pkt;
        v[3][i] = w->r[i].busy_pct;
        v[4][i] = w->r[i].loss;
        v[5][i] = w->r[i].others_pct;
        v[6][i] = w->r[i].pmd_cpu_pct;
        v[7][i] = w->r[i].tx_mpps;
    }
    w->med_mpps = median(v[0], w->n);
    w->med_gbps = median(v[1], w->n);
    w->med_cpp = median(v[2], w->n);
    w->med_busy = median(v[3], w->n);
    w->med_loss = median(v[4], w->n);
    w->med_others = median(v[5], w->n); /* < 0 when unknown: every round is alike */
    w->med_pmd_cpu = median(v[6], w->n);
    w->med_tx = median(v[7], w->n);
    w->min_mpps = w->max_mpps = w->n ? v[0][0] : 0;
    for (unsigned i = 1; i < w->n; i++) {
        w->min_mpps = MIN(w->min_mpps, v[0][i]);
        w->max_mpps = MAX(w->max_mpps, v[0][i]);
    }
}

static uint64_t lat_count(const struct point *w)
{
    uint64_t n = 0;
    for (unsigned b = 0; b < LAT_BUCKETS; b++)
        n += w->lat[b];
    return n;
}

/* The q-quantile of the merged latency histogram, in microseconds; NAN without samples. */
static double lat_quantile(const struct point *w, double q)
{
    uint64_t n = lat_count(w), seen = 0;
    if (!n)
        return NAN;
    uint64_t rank = (uint64_t)ceil(q * (double)n);
    if (rank == 0)
        rank = 1;
    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
        seen += w->lat[b];
        if (seen >= rank)
            return lat_value(b) / 1000;
    }
    return lat_value(LAT_BUCKETS - 1) / 1000;
}

static void fmt_rate(char *out, size_t n, double rate)
{
    if (rate > 0)
        snprintf(out, n, "%g", rate);
    else
        snprintf(out, n, "max");
}

static void print_table_header(void)
{
    printf("%-8s %-7s %5s %7s %5s %3s %3s %3s %6s %8s %15s %7s %6s %7s %5s %6s %4s %7s %7s %7s "
           "%3s\n",
           "scenario", "mode", "ports", "macs", "size", "mrg", "pmd", "slp", "rate", "Mpps",
           "(min-max)", "Gbit/s", "loss%", "cyc/pkt", "busy%", "pmdcpu", "oth%", "p50us", "p99us",
           "p99.9us", "rnd");
}

static void print_row(const struct point *w)
{
    char range[40], cpp[16] = "-", busy[16] = "-", oth[16] = "-", pcpu[16] = "-", rate[16];
    char l50[16] = "-", l99[16] = "-", l999[16] = "-";
    snprintf(range, sizeof(range), "(%.3f-%.3f)", w->min_mpps, w->max_mpps);
    if (w->r[0].have_pmd) {
        snprintf(cpp, sizeof(cpp), "%.0f", w->med_cpp);
        snprintf(busy, sizeof(busy), "%.1f", w->med_busy);
    }
    if (w->med_others >= 0)
        snprintf(oth, sizeof(oth), "%.0f", w->med_others);
    if (w->med_pmd_cpu >= 0)
        snprintf(pcpu, sizeof(pcpu), "%.1f", w->med_pmd_cpu);
    if (lat_count(w)) {
        snprintf(l50, sizeof(l50), "%.1f", lat_quantile(w, 0.5));
        snprintf(l99, sizeof(l99), "%.1f", lat_quantile(w, 0.99));
        snprintf(l999, sizeof(l999), "%.1f", lat_quantile(w, 0.999));
    }
    fmt_rate(rate, sizeof(rate), w->rate);
    printf("%-8s %-7s %5u %7u %5u %3s %3u %3s %6s %8.3f %15s %7.3f %6.2f %7s %5s %6s %4s %7s %7s "
           "%7s %3u\n",
           w->scen, mode_names[w->mode], w->ports, w->ports * w->flows, w->size,
           w->mrg ? "on" : "off", w->pmds, w->sleep ? "on" : "off", rate, w->med_mpps, range,
           w->med_gbps, 100 * w->med_loss, cpp, busy, pcpu, oth, l50, l99, l999, w->n);
    fflush(stdout);
}

static json_t *point_json(const struct point *w)
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
        if (r->pmd_cpu_pct >= 0)
            json_object_set_new(o, "pmd_cpu_pct", json_real(r->pmd_cpu_pct));
        if (r->others_pct >= 0)
            json_object_set_new(o, "others_pct", json_real(r->others_pct));
        if (r->fdb_entries >= 0)
            json_object_set_new(o, "fdb_entries", json_integer(r->fdb_entries));
        json_array_append_new(rounds, o);
    }
    json_t *med = json_pack("{sf sf sf sf}", "rx_mpps", w->med_mpps, "tx_mpps", w->med_tx, "gbps",
                            w->med_gbps, "loss", w->med_loss);
    if (w->n && w->r[0].have_pmd) {
        json_object_set_new(med, "cycles_per_pkt", json_real(w->med_cpp));
        json_object_set_new(med, "pmd_busy_pct", json_real(w->med_busy));
    }
    if (w->med_pmd_cpu >= 0)
        json_object_set_new(med, "pmd_cpu_pct", json_real(w->med_pmd_cpu));
    if (w->med_others >= 0)
        json_object_set_new(med, "others_pct", json_real(w->med_others));
    json_t *o =
        json_pack("{ss ss si si si si si sb si sb sf so so}", "scenario", w->scen, "mode",
                  mode_names[w->mode], "ports", (int)w->ports, "flows_per_guest", (int)w->flows,
                  "macs", (int)(w->ports * w->flows), "size", (int)w->size, "pmds", (int)w->pmds,
                  "sleep", w->sleep, "rx_buf_size", (int)rx_buf_size(w), "mrg", w->mrg, "rate_mpps",
                  w->rate, "median", med, "rounds", rounds);
    uint64_t n = lat_count(w);
    if (n)
        json_object_set_new(o, "latency_us",
                            json_pack("{sI sf sf sf sf}", "samples", (json_int_t)n, "p50",
                                      lat_quantile(w, 0.5), "p99", lat_quantile(w, 0.99), "p99_9",
                                      lat_quantile(w, 0.999), "max", lat_quantile(w, 1.0)));
    json_object_set_new(o, "ok", json_boolean(!w->failed && w->med_mpps > 0));
    return o;
}

/* ---- options ---- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [options]\n"
            "Points (every combination of the lists; see --scenario):\n"
            "  --modes LIST        uni, bidir, ring, bcast, unknown (default uni,bidir)\n"
            "  --bidir             same as --modes bidir\n"
            "  --sizes LIST        frame sizes in bytes without FCS, 60..9000 (default 64,1518)\n"
            "  --flows LIST        source MACs per guest, 1..%u (default 1); learnt MACs =\n"
            "                      flows x ports\n"
            "  --ports LIST        simulated guests on the bridge, 2..%d (default 2)\n"
            "  --mrg LIST          on, off: mergeable RX buffers (default on)\n"
            "  --pmds LIST         vswitchd PMD threads, 1..%d (default 1)\n"
            "  --sleep-modes LIST  on, off: PMDs may sleep when idle (default off)\n"
            "  --rate LIST         offered Mpps per sending guest, 0 = unpaced (default 0);\n"
            "                      paced points report one-way latency p50/p99/p99.9\n"
            "  --scenario LIST     named sets of lists (run every one; 'all' = all of them):\n",
            prog, MAX_FLOWS, MAX_PORTS, MAX_PMDS);
    for (unsigned i = 0; i < ARRAY_SIZE(scenarios); i++)
        fprintf(f, "                        %-8s %s\n", scenarios[i].name, scenarios[i].what);
    fprintf(f,
            "                      a list given on the command line overrides the scenario's\n"
            "  --quick             keep only the first and last value of each scenario list\n"
            "Measurement:\n"
            "  --duration SEC      measurement window per point (default 5)\n"
            "  --warmup SEC        traffic before the window opens (default 1)\n"
            "  --rounds N          repeat every point, report the median (default 1); rounds\n"
            "                      are interleaved over the whole run\n"
            "  --burst N           frames per send/receive call (default 32)\n"
            "  --queue-size N      guest ring size (default 256)\n"
            "  --guest-hugepages   guest memory on 2 MiB huge pages (as QEMU guests backed by\n"
            "                      hugetlbfs); needs pages reserved, 2 per guest\n"
            "  --pmd-core N        core of vswitchd's first PMD (default 1; -1: not pinned)\n"
            "  --pmd-cores LIST    cores of the PMDs (default 1,0: the 2nd on the generator's)\n"
            "  --gen-core N        core of the generator (default 0; -1: not pinned)\n"
            "  --sink-core N       core of the odd guests' thread (default: the generator's; the\n"
            "                      same core means one thread serves every guest)\n"
            "  --sleep             same as --sleep-modes on\n"
            "  --socket PATH       use the vswitchd listening on this control socket (its PMD\n"
            "                      settings apply: --pmds and --sleep-modes are ignored)\n"
            "  --vswitchd PATH     daemon to start (default $VSWITCHD, then the build tree)\n"
            "  --vswitchctl PATH   control client (default $VSWITCHCTL, then the build tree)\n"
            "  --json              print JSON instead of the table\n"
            "  --smoke             a few seconds, a tiny point of each kind; exit 1 unless\n"
            "                      frames arrive everywhere they should (the test suite)\n"
            "  --verbose, --help\n");
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

/* A list of names; out[i] = index of the name in names[]. */
static unsigned parse_names(const char *s, unsigned *out, unsigned max_n, const char *const *names,
                            unsigned n_names, const char *what)
{
    unsigned n = 0;
    char *dup = strdup(s), *save = NULL;
    if (!dup)
        die("out of memory");
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned m = 0;
        while (m < n_names && strcmp(tok, names[m]))
            m++;
        if (m == n_names || n == max_n) {
            free(dup);
            die("invalid %s '%s'", what, s);
        }
        out[n++] = m;
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

static void parse_dim(struct dims *d, enum dim which, const char *s)
{
    static const char *const offon[] = {"off", "on"};
    switch (which) {
    case D_MODES:
        d->n_modes = parse_names(s, d->modes, MODE__COUNT, mode_names, MODE__COUNT, "mode");
        break;
    case D_SIZES:
        d->n_sizes = parse_list(s, d->sizes, MAX_LIST, 60, 9000, "sizes");
        break;
    case D_FLOWS:
        d->n_flows = parse_list(s, d->flows, MAX_LIST, 1, MAX_FLOWS, "flows");
        break;
    case D_PORTS:
        d->n_ports = parse_list(s, d->ports, MAX_LIST, 2, MAX_PORTS, "ports");
        break;
    case D_MRG:
        d->n_mrg = parse_names(s, d->mrg, 2, offon, 2, "mrg (on, off)");
        break;
    case D_PMDS:
        d->n_pmds = parse_list(s, d->pmds, MAX_LIST, 1, MAX_PMDS, "pmds");
        break;
    case D_SLEEP:
        d->n_sleep = parse_names(s, d->sleep, 2, offon, 2, "sleep modes (on, off)");
        break;
    case D_RATES: {
        unsigned n = 0;
        char *dup = strdup(s), *save = NULL;
        if (!dup)
            die("out of memory");
        for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (n == MAX_LIST)
                die("too many rates in '%s'", s);
            d->rates[n++] = parse_double(tok, "rate (Mpps)", 0, 1000);
        }
        free(dup);
        if (!n)
            die("empty rate list");
        d->n_rates = n;
        break;
    }
    default:
        break;
    }
}

/* --quick: the first and the last value of a list. */
static void shorten(unsigned *v, unsigned *n)
{
    if (*n > 2) {
        v[1] = v[*n - 1];
        *n = 2;
    }
}

static void quicken(struct dims *d)
{
    shorten(d->sizes, &d->n_sizes);
    shorten(d->flows, &d->n_flows);
    shorten(d->ports, &d->n_ports);
    shorten(d->pmds, &d->n_pmds);
}

static bool same_point(const struct point *a, const struct point *b)
{
    return a->mode == b->mode && a->size == b->size && a->flows == b->flows &&
           a->ports == b->ports && a->pmds == b->pmds && a->mrg == b->mrg && a->sleep == b->sleep &&
           a->rate == b->rate;
}

/* Every combination of the lists; a point some earlier scenario already has is kept once. */
static unsigned expand(const struct dims *d, const char *scen, struct point *pts, unsigned n)
{
    for (unsigned a = 0; a < d->n_modes; a++)
        for (unsigned b = 0; b < d->n_ports; b++)
            for (unsigned c = 0; c < d->n_flows; c++)
                for (unsigned e = 0; e < d->n_sizes; e++)
                    for (unsigned f = 0; f < d->n_mrg; f++)
                        for (unsigned g = 0; g < d->n_pmds; g++)
                            for (unsigned h = 0; h < d->n_sleep; h++)
                                for (unsigned k = 0; k < d->n_rates; k++) {
                                    struct point p = {.scen = scen,
                                                      .mode = d->modes[a],
                                                      .ports = d->ports[b],
                                                      .flows = d->flows[c],
                                                      .size = d->sizes[e],
                                                      .mrg = d->mrg[f],
                                                      .pmds = d->pmds[g],
                                                      .sleep = d->sleep[h],
                                                      .rate = d->rates[k]};
                                    bool dup = false;
                                    for (unsigned i = 0; i < n && !dup; i++)
                                        dup = same_point(&pts[i], &p);
                                    if (dup)
                                        continue;
                                    if (n == MAX_POINTS)
                                        die("more than %d points", MAX_POINTS);
                                    pts[n++] = p;
                                }
    return n;
}

static unsigned build_points(const struct opts *o, struct point *pts)
{
    if (!o->n_scen)
        return expand(&o->d, "custom", pts, 0);
    unsigned n = 0;
    const struct scenario *table = o->smoke ? smoke_scenarios : scenarios;
    unsigned n_table = o->smoke ? ARRAY_SIZE(smoke_scenarios) : ARRAY_SIZE(scenarios);
    for (unsigned s = 0; s < n_table; s++) {
        bool want = false;
        for (unsigned i = 0; i < o->n_scen && !want; i++)
            want = !strcmp(o->scen[i], "all") || !strcmp(o->scen[i], table[s].name);
        if (!want)
            continue;
        struct dims d = o->d;
        for (unsigned k = 0; k < D__COUNT; k++)
            if (table[s].v[k] && !o->set[k])
                parse_dim(&d, (enum dim)k, table[s].v[k]);
        if (o->quick)
            quicken(&d);
        n = expand(&d, table[s].name, pts, n);
    }
    for (unsigned i = 0; i < o->n_scen; i++) {
        bool known = !strcmp(o->scen[i], "all");
        for (unsigned s = 0; s < n_table && !known; s++)
            known = !strcmp(o->scen[i], table[s].name);
        if (!known)
            die("unknown scenario '%s' (see --help)", o->scen[i]);
    }
    return n;
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
        O_PORTS,
        O_MRG,
        O_PMDS,
        O_SLEEP_MODES,
        O_RATE,
        O_SCENARIO,
        O_QUICK,
        O_ROUNDS,
        O_BURST,
        O_QSIZE,
        O_GUEST_HUGE,
        O_PMD_CORE,
        O_PMD_CORES,
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
        {"ports", required_argument, NULL, O_PORTS},
        {"mrg", required_argument, NULL, O_MRG},
        {"pmds", required_argument, NULL, O_PMDS},
        {"sleep-modes", required_argument, NULL, O_SLEEP_MODES},
        {"rate", required_argument, NULL, O_RATE},
        {"scenario", required_argument, NULL, O_SCENARIO},
        {"quick", no_argument, NULL, O_QUICK},
        {"rounds", required_argument, NULL, O_ROUNDS},
        {"burst", required_argument, NULL, O_BURST},
        {"queue-size", required_argument, NULL, O_QSIZE},
        {"guest-hugepages", no_argument, NULL, O_GUEST_HUGE},
        {"pmd-core", required_argument, NULL, O_PMD_CORE},
        {"pmd-cores", required_argument, NULL, O_PMD_CORES},
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
    bool sink_set = false, duration_set = false, warmup_set = false;
    const char *vswitchd = NULL, *vswitchctl = NULL;
    int c;

    *o = (struct opts){.duration = 5,
                       .warmup = 1,
                       .d = {.modes = {MODE_UNI, MODE_BIDIR},
                             .n_modes = 2,
                             .sizes = {64, 1518},
                             .n_sizes = 2,
                             .flows = {1},
                             .n_flows = 1,
                             .ports = {2},
                             .n_ports = 1,
                             .mrg = {1},
                             .n_mrg = 1,
                             .pmds = {1},
                             .n_pmds = 1,
                             .sleep = {0},
                             .n_sleep = 1,
                             .rates = {0},
                             .n_rates = 1},
                       .rounds = 1,
                       .burst = 32,
                       .queue_size = 256,
                       .pmd_cores = {1, 0},
                       .gen_core = 0};
    while ((c = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
        switch (c) {
        case O_DURATION:
            o->duration = parse_double(optarg, "duration", 0.05, 3600);
            duration_set = true;
            break;
        case O_WARMUP:
            o->warmup = parse_double(optarg, "warm-up", 0, 600);
            warmup_set = true;
            break;
        case O_SIZES:
            parse_dim(&o->d, D_SIZES, optarg);
            o->set[D_SIZES] = true;
            break;
        case O_FLOWS:
            parse_dim(&o->d, D_FLOWS, optarg);
            o->set[D_FLOWS] = true;
            break;
        case O_MODES:
            parse_dim(&o->d, D_MODES, optarg);
            o->set[D_MODES] = true;
            break;
        case O_BIDIR:
            parse_dim(&o->d, D_MODES, "bidir");
            o->set[D_MODES] = true;
            break;
        case O_PORTS:
            parse_dim(&o->d, D_PORTS, optarg);
            o->set[D_PORTS] = true;
            break;
        case O_MRG:
            parse_dim(&o->d, D_MRG, optarg);
            o->set[D_MRG] = true;
            break;
        case O_PMDS:
            parse_dim(&o->d, D_PMDS, optarg);
            o->set[D_PMDS] = true;
            break;
        case O_SLEEP_MODES:
            parse_dim(&o->d, D_SLEEP, optarg);
            o->set[D_SLEEP] = true;
            break;
        case O_SLEEP:
            parse_dim(&o->d, D_SLEEP, "on");
            o->set[D_SLEEP] = true;
            break;
        case O_RATE:
            parse_dim(&o->d, D_RATES, optarg);
            o->set[D_RATES] = true;
            break;
        case O_SCENARIO: {
            char *dup = strdup(optarg), *save = NULL;
            if (!dup)
                die("out of memory");
            for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (o->n_scen == ARRAY_SIZE(o->scen))
                    die("too many scenarios");
                /* Kept for the whole run (the points point at their scenario's name). */
                o->scen[o->n_scen++] = strdup(tok);
            }
            free(dup);
            break;
        }
        case O_QUICK:
            o->quick = true;
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
        case O_GUEST_HUGE:
            o->guest_huge = true;
            break;
        case O_PMD_CORE:
            o->pmd_cores[0] = parse_core(optarg, "PMD core");
            break;
        case O_PMD_CORES: {
            unsigned v[MAX_PMDS], n = parse_list(optarg, v, MAX_PMDS, 0, CPU_SETSIZE - 1, "cores");
            for (unsigned i = 0; i < n; i++)
                o->pmd_cores[i] = (int)v[i];
            break;
        }
        case O_GEN_CORE:
            o->gen_core = parse_core(optarg, "generator core");
            break;
        case O_SINK_CORE:
            o->sink_core = parse_core(optarg, "sink core");
            sink_set = true;
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
        /* Quick and polite: the test suite runs it next to other tests, under ASan. */
        if (!duration_set)
            o->duration = 0.3;
        if (!warmup_set)
            o->warmup = 0.1;
        o->rounds = 1;
        if (!o->n_scen) {
            for (unsigned i = 0; i < ARRAY_SIZE(smoke_scenarios); i++)
                o->scen[o->n_scen++] = smoke_scenarios[i].name;
        }
        o->pmd_cores[0] = o->pmd_cores[1] = o->gen_core = o->sink_core = -1;
        parse_dim(&o->d, D_SLEEP, "on");
    }
    o->vswitchd = find_tool(vswitchd, "VSWITCHD", "../src/switch/vswitchd", "vswitchd");
    o->vswitchctl = find_tool(vswitchctl, "VSWITCHCTL", "../ctl/vswitchctl", "vswitchctl");
}

/*
 * The anchor for the idle points: how long this machine takes to wake a thread that sleeps in
 * poll() on an eventfd, woken from another core - exactly what an idle PMD pays when a guest
 * kicks. A sleeping PMD cannot wake faster than this; on a VM the host's vCPU halt and wake
 * dominate it. The sleeper is pinned to the PMD's core, the writer to the generator's.
 */
#define WAKE_SAMPLES 300

struct wake_floor {
    int efd, core;
    volatile uint64_t sent_ns;
    uint64_t lat_ns[WAKE_SAMPLES];
    volatile unsigned done;
};

static void *wake_sleeper(void *arg)
{
    struct wake_floor *wf = arg;
    if (wf->core >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(wf->core, &set);
        sched_setaffinity(0, sizeof(set), &set);
    }
    for (unsigned i = 0; i < WAKE_SAMPLES; i++) {
        struct pollfd pfd = {.fd = wf->efd, .events = POLLIN};
        uint64_t v;
        if (poll(&pfd, 1, 1000) != 1 || read(wf->efd, &v, sizeof(v)) != sizeof(v))
            break;
        wf->lat_ns[i] = vsw_now_ns() - wf->sent_ns;
        __atomic_store_n(&wf->done, i + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* p50 and p99 in microseconds; false if the measurement could not run. */
static bool measure_wake_floor(int sleeper_core, int waker_core, uint64_t gap_ns, double *p50,
                               double *p99)
{
    static struct wake_floor wf;
    memset(&wf, 0, sizeof(wf));
    wf.core = sleeper_core;
    wf.efd = eventfd(0, EFD_CLOEXEC);
    if (wf.efd < 0)
        return false;
    cpu_set_t saved;
    sched_getaffinity(0, sizeof(saved), &saved);
    if (waker_core >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(waker_core, &set);
        sched_setaffinity(0, sizeof(set), &set);
    }
    pthread_t t;
    bool ok = pthread_create(&t, NULL, wake_sleeper, &wf) == 0;
    for (unsigned i = 0; ok && i < WAKE_SAMPLES; i++) {
        /* The idle point's spacing: a core asleep longer may sleep deeper. */
        struct timespec gap = {(time_t)(gap_ns / 1000000000u), (long)(gap_ns % 1000000000u)};
        nanosleep(&gap, NULL);
        wf.sent_ns = vsw_now_ns();
        uint64_t one = 1;
        if (write(wf.efd, &one, sizeof(one)) != sizeof(one))
            break;
        while (__atomic_load_n(&wf.done, __ATOMIC_ACQUIRE) <= i &&
               vsw_now_ns() - wf.sent_ns < 1000000000ull)
            sched_yield();
        if (__atomic_load_n(&wf.done, __ATOMIC_ACQUIRE) <= i)
            break;
    }
    if (ok)
        pthread_join(t, NULL);
    sched_setaffinity(0, sizeof(saved), &saved);
    close(wf.efd);
    if (wf.done != WAKE_SAMPLES)
        return false;
    qsort(wf.lat_ns, WAKE_SAMPLES, sizeof(wf.lat_ns[0]), cmp_u64);
    *p50 = (double)wf.lat_ns[WAKE_SAMPLES / 2] / 1000.0;
    *p99 = (double)wf.lat_ns[WAKE_SAMPLES * 99 / 100] / 1000.0;
    return true;
}

int main(int argc, char **argv)
{
    static struct opts o;
    static struct point pts[MAX_POINTS];

    parse_args(argc, argv, &o);
    g_opts = &o;
    vsw_log_set_level(o.verbose ? VSW_LOG_DEBUG : VSW_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    unsigned n_pts = build_points(&o, pts);
    if (!n_pts)
        die("no points to measure");
    /* One bridge for the run: room for the largest point's MACs, at least the default. */
    unsigned need = 0;
    for (unsigned i = 0; i < n_pts; i++)
        need = MAX(need, pts[i].ports * pts[i].flows);
    br_max_macs = MAX(8192u, need);
    if (o.socket) {
        snprintf(ctl_sock, sizeof(ctl_sock), "%s", o.socket);
        for (unsigned i = 0; i < n_pts; i++) {
            pts[i].pmds = 0; /* unknown: the daemon's own */
            pts[i].sleep = false;
        }
    }

    if (!o.json) {
        printf("vsw-bench: %u point(s); PMD core(s) %d,%d, generator on core %d, odd guests on "
               "core %d, %.1f s windows after %.1f s warm-up, %u round(s) per point\n",
               n_pts, o.pmd_cores[0], o.pmd_cores[1], o.gen_core, o.sink_core, o.duration, o.warmup,
               o.rounds);
        print_table_header();
    }
    /* Rounds outermost: one point's rounds are spread over the run, not back to back, so
     * a slow spell of the host does not land on a single point. */
    for (unsigned r = 0; r < o.rounds && !interrupted; r++)
        for (unsigned i = 0; i < n_pts && !interrupted; i++) {
            struct point *w = &pts[i];
            struct result res = measure(&o, w);
            if (interrupted)
                break; /* a cut-short window is no sample */
            w->r[w->n++] = res;
            if (o.verbose)
                fprintf(stderr, "round %u %s %s %u ports %u B: %.3f Mpps\n", r + 1, w->scen,
                        mode_names[w->mode], w->ports, w->size, res.rx_mpps);
            if (r + 1 == o.rounds) {
                point_summarise(w);
                if (!o.json)
                    print_row(w);
            }
        }
    if (interrupted) {
        cleanup();
        fprintf(stderr, "%s: interrupted\n", prog);
        return 130;
    }

    /*
     * Idle points (a sleeping PMD under sparse traffic) get the platform's wake floor, taken
     * with the switch under test gone: a PMD still polling on the sleeper's core would keep
     * that core awake and halve the figure (a woken thread preempting a running one is
     * cheaper than waking a halted vCPU).
     */
    cleanup();
    bool have_floor = false;
    double floor50 = 0, floor99 = 0;
    for (unsigned i = 0; i < n_pts && !have_floor; i++)
        if (pts[i].sleep && pts[i].rate > 0 && !o.smoke)
            have_floor = measure_wake_floor(o.pmd_cores[0], o.gen_core,
                                            (uint64_t)MIN(MAX(1000.0 / pts[i].rate, 1e6), 2e7),
                                            &floor50, &floor99);
    if (have_floor && !o.json)
        printf(
            "wake floor of this machine (eventfd, thread in poll() on core %d woken from core %d, "
            "%d samples, same spacing as the idle point): p50 %.1f us, p99 %.1f us\n",
            o.pmd_cores[0], o.gen_core, WAKE_SAMPLES, floor50, floor99);

    int status = 0;
    if (o.json) {
        char date[32];
        time_t now = time(NULL);
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        json_t *res = json_array();
        for (unsigned i = 0; i < n_pts; i++)
            json_array_append_new(res, point_json(&pts[i]));
        json_t *top =
            json_pack("{ss ss si si si si sf sf si si si sb so}", "tool", "vsw-bench", "date", date,
                      "pmd_core", o.pmd_cores[0], "pmd_core2", o.pmd_cores[1], "gen_core",
                      o.gen_core, "sink_core", o.sink_core, "duration_s", o.duration, "warmup_s",
                      o.warmup, "rounds", (int)o.rounds, "burst", (int)o.burst, "queue_size",
                      (int)o.queue_size, "guest_hugepages", o.guest_huge, "results", res);
        if (have_floor)
            json_object_set_new(top, "wake_floor_us",
                                json_pack("{sf sf}", "p50", floor50, "p99", floor99));
        char *text = json_dumps(top, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(top);
    }
    for (unsigned i = 0; i < n_pts; i++) {
        const struct point *w = &pts[i];
        if (w->failed || !(w->med_mpps > 0)) {
            fprintf(stderr, "%s: FAIL: frames missing (%s: %s, %u ports, %u B, mrg %s)\n", prog,
                    w->scen, mode_names[w->mode], w->ports, w->size, w->mrg ? "on" : "off");
            status = 1;
        }
        if (w->rate > 0 && !lat_count(w)) {
            fprintf(stderr, "%s: FAIL: no latency samples (%s: %s, %u B)\n", prog, w->scen,
                    mode_names[w->mode], w->size);
            status = 1;
        }
    }
    cleanup();
    if (o.smoke && status == 0)
        printf("vsw-bench: smoke OK\n");
    return status;
}
